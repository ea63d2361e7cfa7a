//! The conversation of a chat room (lessons 11 and 12): the check plays
//! members of the student's room, each a real connection.
//!
//! ```text
//! let mut alice = Member::join(&step, addr, "alice", &[]);
//! let mut bob = Member::join(&step, addr, "bob", &["alice"]);
//! alice.expect_entered("bob", "tell the others who joined");
//! bob.say("hi");
//! alice.expect_said("bob", "hi", "every other member hears each line");
//! bob.expect_quiet(QUIET, "never back to the sender");
//! ```
//!
//! The lines are the protocol's own, written here, never taken from the
//! student's code.

use std::net::SocketAddr;
use std::time::Duration;

use crate::peer::{End, Peer};
use crate::report::Step;

/// `* NAME has entered the room\n`.
pub fn entered(name: &str) -> Vec<u8> {
    format!("* {name} has entered the room\n").into_bytes()
}

/// `* NAME has left the room\n`.
pub fn left(name: &str) -> Vec<u8> {
    format!("* {name} has left the room\n").into_bytes()
}

/// `[NAME] text\n`.
pub fn said(name: &str, text: &str) -> Vec<u8> {
    format!("[{name}] {text}\n").into_bytes()
}

/// The words of a presence line (`* ...`): the runs of ASCII letters and
/// digits, where names are. `None` if the line does not start with `*`.
pub fn presence_words(line: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(line.strip_prefix(b"*")?);
    let words = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect();
    Some(words)
}

/// True when a presence line names every one of `others`, and not `own`.
pub fn lists_exactly(line: &[u8], own: &str, others: &[&str]) -> bool {
    match presence_words(line) {
        Some(words) => {
            others
                .iter()
                .all(|name| words.iter().any(|word| word == name))
                && !words.iter().any(|word| word == own)
                && line.ends_with(b"\n")
        }
        None => false,
    }
}

/// Connects to the room and reads the greeting: any one line.
pub fn greeted(step: &Step, addr: SocketAddr, label: &str) -> Peer {
    let mut peer = Peer::connect(step, addr).named(label);
    let greeting = peer.read_line();
    if greeting.end != End::Newline || greeting.bytes.len() < 2 {
        step.report()
            .expected("one line of greeting that asks for a name")
            .got(&greeting.describe())
            .hint("write GREETING to every newcomer first, before reading its name.")
            .fail();
    }
    peer
}

/// The hint when a newcomer's `*` line is not the one due.
const PRESENCE: &str = "once the name is accepted, deliver present_line of everyone else \
                        present to the newcomer, even when nobody is, before anything else.";

/// The second likeliest cause when another line of the room came where
/// one was due.
const OUT_OF_ORDER: &str = "Or the room's lines reach this member out of order: each goes into \
                            the member's outbox as it is said (try_send, in deliver), never \
                            from a thread of its own.";

/// True for a line the room sends: an entry, a leave, or `[NAME] text`.
fn is_room_line(line: &[u8]) -> bool {
    line.starts_with(b"[")
        || (line.starts_with(b"* ")
            && (line.ends_with(b" has entered the room\n")
                || line.ends_with(b" has left the room\n")))
}

/// One member of the student's room, as the check plays it.
pub struct Member {
    pub name: String,
    pub peer: Peer,
}

impl Member {
    /// Connects, reads the greeting, gives `name`, and expects the `*` line
    /// that lists exactly `others`.
    pub fn join(step: &Step, addr: SocketAddr, name: &str, others: &[&str]) -> Member {
        Member::join_hinted(step, addr, name, others, PRESENCE)
    }

    /// [`Member::join`], with the check's own hint when the `*` line is
    /// not the one due.
    pub fn join_hinted(
        step: &Step,
        addr: SocketAddr,
        name: &str,
        others: &[&str],
        hint: &str,
    ) -> Member {
        let mut peer = greeted(step, addr, name);
        peer.send(format!("{name}\n").as_bytes());
        let mut member = Member {
            name: name.to_string(),
            peer,
        };
        member.expect_presence_hinted(step, others, hint);
        member
    }

    /// Reads one line and fails unless it is a `*` line listing `others`.
    fn expect_presence_hinted(&mut self, step: &Step, others: &[&str], hint: &str) {
        let line = self.peer.read_line();
        if line.end != End::Newline || !lists_exactly(&line.bytes, &self.name, others) {
            let list = match others.is_empty() {
                true => "nobody else".to_string(),
                false => others.join(", "),
            };
            step.report()
                .did(&format!("the check joined as {}", self.name))
                .expected(&format!(
                    "one line that starts with `*` and lists {list} (never {} itself)",
                    self.name
                ))
                .got(&line.describe())
                .hint(hint)
                .fail();
        }
    }

    /// Sends one line to the room.
    pub fn say(&mut self, text: &str) {
        self.peer.send(format!("{text}\n").as_bytes());
    }

    /// Expects `[FROM] text`.
    #[track_caller]
    pub fn expect_said(&mut self, from: &str, text: &str, hint: &str) {
        self.expect_line(&said(from, text), hint);
    }

    /// Expects `* NAME has entered the room`.
    #[track_caller]
    pub fn expect_entered(&mut self, name: &str, hint: &str) {
        self.expect_line(&entered(name), hint);
    }

    /// Expects `* NAME has left the room`.
    #[track_caller]
    pub fn expect_left(&mut self, name: &str, hint: &str) {
        self.expect_line(&left(name), hint);
    }

    /// Expects one line of the room. When nothing comes at all, the room
    /// never sent it: the check's own hint says what should have sent it
    /// (a room is not a seesaw: there is no request it is waiting on).
    #[track_caller]
    fn expect_line(&mut self, expected: &[u8], hint: &str) {
        let reply = self.peer.read_line();
        let silent = reply.bytes.is_empty() && reply.end == End::TimedOut;
        if silent {
            self.peer
                .step()
                .report()
                .expected(&crate::bytes::show(expected))
                .got(&reply.describe())
                .hint(&format!("The room never sent it: {hint}"))
                .fail();
        }
        if reply.bytes != expected || reply.end != End::Newline {
            // Another line of the room in its place: sent where it should
            // not be, or sent out of order.
            let hint = match reply.end == End::Newline && is_room_line(&reply.bytes) {
                true => crate::report::join_hints(hint, OUT_OF_ORDER),
                false => hint.to_string(),
            };
            self.peer
                .step()
                .report()
                .expected(&crate::bytes::show(expected))
                .got_received(expected, &reply)
                .hint(&hint)
                .fail();
        }
    }

    /// Fails if anything arrives within `wait`.
    #[track_caller]
    pub fn expect_quiet(&mut self, wait: Duration, hint: &str) {
        self.peer.expect_silence(wait, hint);
    }

    /// Reads, in bulk and fast (a flood's lines are not written into the
    /// transcript one by one), until `count` copies of `line` have come,
    /// each other line kept in order. Gives up when nothing comes for
    /// `wait`. Returns how many came, and the other lines.
    pub fn count_lines(
        &mut self,
        line: &[u8],
        count: usize,
        wait: Duration,
    ) -> (usize, Vec<Vec<u8>>) {
        use std::io::Read;
        let mut stream = self.peer.stream().try_clone().expect("clone");
        let _ = stream.set_read_timeout(Some(wait));
        let (mut heard, mut others, mut partial) = (0, Vec::new(), Vec::new());
        let mut chunk = vec![0; 256 * 1024];
        while heard < count {
            let Ok(read @ 1..) = stream.read(&mut chunk) else {
                break;
            };
            partial.extend_from_slice(&chunk[..read]);
            while let Some(at) = partial.iter().position(|&byte| byte == b'\n') {
                let whole: Vec<u8> = partial.drain(..=at).collect();
                match whole == line {
                    true => heard += 1,
                    false => others.push(whole),
                }
            }
        }
        self.peer
            .note(format!("you → check   {heard} lines of the flood"));
        (heard, others)
    }

    /// Hangs up: the member leaves.
    pub fn hang_up(mut self) {
        self.peer.close_sending();
        self.peer.close(" (left)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_lines_are_read_as_words() {
        assert_eq!(
            presence_words(b"* in the room: alice, bob7\n"),
            Some(
                vec!["in", "the", "room", "alice", "bob7"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        assert_eq!(presence_words(b"alice\n"), None);
        assert!(lists_exactly(
            b"* here: alice, bob\n",
            "carol",
            &["alice", "bob"]
        ));
        assert!(lists_exactly(b"* in the room: \n", "carol", &[]));
        assert!(!lists_exactly(
            b"* here: alice, carol\n",
            "carol",
            &["alice"]
        ));
        assert!(!lists_exactly(
            b"* here: alice\n",
            "carol",
            &["alice", "bob"]
        ));
        assert!(!lists_exactly(b"here: alice\n", "carol", &["alice"]));
    }

    #[test]
    fn the_protocol_lines() {
        assert_eq!(said("bob", "hi"), b"[bob] hi\n");
        assert_eq!(entered("bob"), b"* bob has entered the room\n");
        assert_eq!(left("bob"), b"* bob has left the room\n");
    }

    #[test]
    fn members_join_and_talk_over_real_sockets() {
        use std::io::{BufRead, BufReader, Write};
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A tiny room of one: greets, reads a name, lists nobody, echoes a
        // line as said by `x`.
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            writer.write_all(b"hello, name?\n").unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            writer.write_all(b"* in the room: \n").unwrap();
            line.clear();
            reader.read_line(&mut line).unwrap();
            writer.write_all(format!("[x] {line}").as_bytes()).unwrap();
            // Stays until the check hangs up.
            let _ = reader.read_line(&mut line);
        });
        let step = Step::new("chat vocabulary", "11-chat");
        let mut alice = Member::join(&step, addr, "alice", &[]);
        alice.say("hi");
        alice.expect_said("x", "hi", "the little room says it as x");
        alice.expect_quiet(Duration::from_millis(20), "nothing more");
    }
}
