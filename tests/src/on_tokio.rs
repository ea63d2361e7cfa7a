//! The async half of the vocabulary (feature `tokio`, lesson 9 and later):
//! the student's async functions run on a tokio runtime with ONE thread, as
//! the lesson's program runs them, on a thread of the check's own with a
//! deadline. A function that blocks that thread (a std read, a std sleep)
//! stops every task of the runtime, and the checks see it. The check itself
//! still plays its side with plain std sockets ([`crate::peer::Peer`]).

use std::future::Future;
use std::net::{TcpListener, TcpStream};

use crate::bounded::{self, Running};
use crate::report::Step;

/// A runtime with one thread, built here, as the lesson's program builds
/// its own: every task shares that thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the check could not build a tokio runtime")
}

/// Runs `future` to its end on a runtime with one thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// A std connection (the check's socket pair) handed to tokio. Call it
/// inside the runtime (in the future given to [`block_on`]).
pub fn stream(connection: TcpStream) -> std::io::Result<tokio::net::TcpStream> {
    connection.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(connection)
}

/// A std listener (the check's, on port 0) handed to tokio. Call it inside
/// the runtime.
pub fn listener(listener: TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// Starts `serve(connection, index)` for each of `connections` at once, as
/// tasks on ONE runtime thread (a bounded call named `call`), and returns
/// what each returned, in the order of `connections`.
///
/// A second handle of each connection keeps it open until the task that
/// serves it has ended well: if it panics, the panic is recorded first, so a
/// check that sees the connection close already knows why. A task's panic is
/// reported at once, as a panic of the student's code, whatever the others
/// still do.
pub fn start_tasks<F, Fut, T>(
    step: &Step,
    call: &str,
    connections: Vec<TcpStream>,
    serve: F,
) -> Running<Vec<T>>
where
    F: Fn(TcpStream, usize) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let keep: Vec<Option<TcpStream>> = connections
        .iter()
        .map(|connection| {
            let spare = connection
                .try_clone()
                .expect("the check could not clone its socket");
            Some(spare)
        })
        .collect();
    bounded::start_with(step, call, keep, move |keep| {
        block_on(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, connection) in connections.into_iter().enumerate() {
                let served = serve(connection, index);
                tasks.spawn(async move { (index, served.await) });
            }
            let mut results: Vec<Option<T>> = keep.iter().map(|_| None).collect();
            while let Some(ended) = tasks.join_next().await {
                match ended {
                    Ok((index, result)) => {
                        results[index] = Some(result);
                        keep[index] = None;
                    }
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(error) => panic!("a task of the check was cancelled: {error}"),
                }
            }
            results.into_iter().flatten().collect()
        })
    })
}

/// Runs the student's async server in the background (lesson 12): `serve`
/// makes its future on a thread of its own, inside a runtime with one
/// thread, and the returned channel brings back what it returned. A panic,
/// in the server or in a task it spawned (which tokio would otherwise keep
/// to itself), is the student's, and the report of the step shows it as the
/// cause; the channel then closes without a value. The report does not wait
/// for this thread: a server runs until it is stopped.
pub fn serve_in_background<F, Fut, T>(serve: F) -> std::sync::mpsc::Receiver<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (sender, returned) = std::sync::mpsc::channel();
    // Not marked as a thread of the student's code: its panics (the task's
    // too) go to the report as panics of threads the student's code runs.
    std::thread::spawn(move || {
        let value = block_on(async move { serve().await });
        let _ = sender.send(value);
    });
    returned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::connected_pair;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn tasks_share_one_thread_and_report_in_order() {
        let step = Step::new("a step of the support crate's own tests", "00-test");
        let (mut first, one) = connected_pair(&step);
        let (mut second, two) = connected_pair(&step);
        let running = start_tasks(
            &step,
            "two echoes",
            vec![one, two],
            |connection, index| async move {
                let mut connection = stream(connection).unwrap();
                let mut byte = [0u8; 1];
                connection.read_exact(&mut byte).await.unwrap();
                connection.write_all(&byte).await.unwrap();
                (index, std::thread::current().id())
            },
        );
        // The second is served while the first still waits for its byte.
        second.send(b"2");
        assert_eq!(second.read_for(crate::DEADLINE).bytes, b"2");
        first.send(b"1");
        assert_eq!(first.read_for(crate::DEADLINE).bytes, b"1");
        let results = running.finish(&step, "the tasks hang");
        assert_eq!(results[0].0, 0);
        assert_eq!(results[1].0, 1);
        assert_eq!(results[0].1, results[1].1);
    }
}
