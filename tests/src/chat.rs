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
    greeted_hinted(
        step,
        addr,
        label,
        "write GREETING to every newcomer first, before reading its name.",
    )
}

/// [`greeted`], with the check's own hint when no greeting comes.
pub fn greeted_hinted(step: &Step, addr: SocketAddr, label: &str, hint: &str) -> Peer {
    let mut peer = Peer::connect(step, addr).named(label);
    let greeting = peer.read_line();
    if greeting.end != End::Newline || greeting.bytes.len() < 2 {
        step.report()
            .expected("one line of greeting that asks for a name")
            .got(&greeting.describe())
            .hint(hint)
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

/// True when `got` is the line `expected` from the same member with the
/// start of its text missing (`[bob] lo` for `[bob] hello`): bytes were
/// lost, not lines reordered.
fn lost_its_start(expected: &[u8], got: &[u8]) -> bool {
    let Some(end) = expected.iter().position(|&byte| byte == b']') else {
        return false;
    };
    let (speaker, text) = expected.split_at(end + 2.min(expected.len() - end));
    // `[bob] \n` is an empty line of bob's, not a line that lost its start.
    got.len() < expected.len()
        && got.len() > speaker.len() + 1
        && got.starts_with(speaker)
        && text.ends_with(&got[speaker.len()..])
}

/// True when `got` is `expected` (`[bob] text`) with its speaker twice
/// (`[bob] [bob] text`).
fn named_twice(expected: &[u8], got: &[u8]) -> bool {
    let Some(end) = expected.iter().position(|&byte| byte == b']') else {
        return false;
    };
    let speaker = &expected[..(end + 2).min(expected.len())];
    got.starts_with(speaker) && got[speaker.len()..].starts_with(speaker)
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
        let mut member = Member::join_sending(name, greeted(step, addr, name), "");
        member.expect_presence_hinted(step, others, hint, "");
        member
    }

    /// [`Member::join`], with the member's first line sent in the same write
    /// as its name, as a client that types ahead may send them: the server
    /// may read both at once.
    pub fn join_saying(
        step: &Step,
        addr: SocketAddr,
        name: &str,
        others: &[&str],
        text: &str,
    ) -> Member {
        let first_line = format!("{text}\n");
        let mut member = Member::join_sending(name, greeted(step, addr, name), &first_line);
        member.expect_presence_hinted(step, others, PRESENCE, "");
        member
    }

    /// Gives `name` (and `then`, in the same write) on a greeted connection;
    /// the `*` line is for the caller to expect.
    fn join_sending(name: &str, mut peer: Peer, then: &str) -> Member {
        peer.send(format!("{name}\n{then}").as_bytes());
        Member {
            name: name.to_string(),
            peer,
        }
    }

    /// [`Member::join`], playing the member with `at.patience`.
    pub fn join_at(
        at: &Where,
        step: &Step,
        addr: SocketAddr,
        name: &str,
        others: &[&str],
    ) -> Member {
        Member::join(step, addr, name, others).patience(at.patience)
    }

    /// How long this member waits for a line the room owes it now.
    pub fn patience(mut self, wait: Duration) -> Member {
        self.peer = self.peer.patience(wait);
        self
    }

    /// Reads one line and fails unless it is a `*` line listing `others`.
    /// `silent` adds the likeliest causes when nothing at all came.
    fn expect_presence_hinted(&mut self, step: &Step, others: &[&str], hint: &str, silent: &str) {
        let line = self.peer.read_line();
        if line.end != End::Newline || !lists_exactly(&line.bytes, &self.name, others) {
            let list = match others.is_empty() {
                true => "nobody else".to_string(),
                false => others.join(", "),
            };
            let hint = if line.end == End::Newline && line.bytes == b"\n" {
                // What was seen: two newlines in a row, the list not yet.
                crate::report::join_hints(
                    "an empty line came where the `*` list was due: a line went out with two \
                     newlines. GREETING and the room's lines end with their own newline: \
                     write them as they are (write_all), not with writeln!",
                    hint,
                )
            } else if line.end == End::TimedOut && line.bytes.is_empty() {
                let causes = crate::report::join_hints("Nothing came after the name", silent);
                crate::report::join_hints(&causes, hint)
            } else {
                hint.to_string()
            };
            step.report()
                .did(&format!("the check joined as {}", self.name))
                .expected(&format!(
                    "one line that starts with `*` and lists {list} (never {} itself)",
                    self.name
                ))
                .got(&line.describe())
                .hint(&hint)
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
            let own = format!("[{}] ", self.name);
            let hint = if reply.end == End::Newline && reply.bytes.starts_with(own.as_bytes()) {
                format!(
                    "That is {}'s own line, sent back to it: a line goes to every member but \
                     the one who said it, never the sender itself.",
                    self.name
                )
            } else if reply.end == End::Newline && reply.bytes == b"\n" {
                "An empty line came: a line went out with two newlines. The room's lines end \
                 with their own newline (said_line adds it): say the text without its \
                 newline."
                    .to_string()
            } else if reply.end == End::Newline && named_twice(expected, &reply.bytes) {
                "The name came twice: the room formats `[NAME] text` itself (said_line): \
                 give say the member's text alone."
                    .to_string()
            } else if reply.end == End::Newline && lost_its_start(expected, &reply.bytes) {
                hint.to_string()
            } else if reply.end == End::Newline && is_room_line(&reply.bytes) {
                crate::report::join_hints(hint, OUT_OF_ORDER)
            } else {
                hint.to_string()
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

// The room's rules, as conversations: every chat room keeps them (lessons
// 11 and 12). Each takes the lesson's own words for where its code keeps
// the rule (`Where`); what the rule is, and what was seen, is said here.

/// Where, in a lesson's code, each rule of the room is kept: the words the
/// reports add to what the rule is.
pub struct Where {
    /// Who greets and reads the name (serve_member).
    pub greeting: &'static str,
    /// The likeliest causes, in the lesson's code, when nothing at all comes
    /// after a newcomer's name (empty when `greeting` says them already).
    pub silent_join: &'static str,
    /// What checks a name, refuses a bad or taken one, and joins a good
    /// one, before anyone in the room is told.
    pub naming: &'static str,
    /// How the lesson's code makes one room for every client, said as the
    /// mistake (`each client joined a room of its own (...)`); empty when
    /// the room is made by code the student does not write.
    pub one_room: &'static str,
    /// What says each line a member sends, and writes each line for it.
    pub lines: &'static str,
    /// What takes a member out of the room when it goes.
    pub leaving: &'static str,
    /// What drops a member whose line is too long.
    pub too_long: &'static str,
    /// What keeps a member that does not read from holding up the room.
    pub non_reader: &'static str,
    /// What greets a newcomer while other clients stay connected (the
    /// accept loop, when the lesson's code has one).
    pub accepting: &'static str,
    /// How long a member waits for a line the room owes it now, before it
    /// counts as never sent (lesson 12: short, so that a report comes
    /// within 2 s; the room sends in microseconds).
    pub patience: Duration,
}

/// How long a member listens to be sure nothing comes: a room fans a line
/// out in microseconds, so a line that should not come, and does, comes
/// well within it.
pub const QUIET: Duration = Duration::from_millis(100);

/// How long a member of a flooded room waits for the next 100 lines: each
/// takes microseconds to fan out, so half a second of nothing is a stopped
/// room.
pub const FLOOD_WAIT: Duration = Duration::from_millis(500);

/// A newcomer gets a greeting, then, once named, the `*` line of an empty
/// room, and nothing more.
pub fn expect_joins_an_empty_room(step: &Step, addr: SocketAddr, at: &Where) {
    let mut alice = Member::join_sending("alice", greeted(step, addr, "alice"), "");
    alice.expect_presence_hinted(step, &[], at.greeting, at.silent_join);
    let mut alice = alice.patience(at.patience);
    alice.expect_quiet(
        QUIET,
        "in an empty room nobody else speaks, and a newcomer never hears its own entry (not \
         itself: everyone else does): entered_line goes to those already present, before the \
         newcomer is inserted into the room.",
    );
}

/// A newcomer whose `name` must be refused while alice is in the room: one
/// `*` line, then the end.
fn expect_refused(step: &Step, addr: SocketAddr, name: &str, why: &str, at: &Where) {
    let mut peer = greeted_hinted(step, addr, "newcomer", at.accepting).patience(at.patience);
    peer.send(format!("{name}\n").as_bytes());
    let line = peer.read_line();
    let whole = line.end == End::Newline;
    if !whole || !line.bytes.starts_with(b"*") || is_presence_line(&line.bytes) {
        let mut refuse = crate::report::join_hints(
            "a name that is not 1 to 16 ASCII letters or digits, or is taken, gets one \
             error line and a gentle end",
            at.naming,
        );
        if name != name.trim() {
            refuse = crate::report::join_hints(
                "the name is the line as sent, spaces included: never trim it, or ` bob` \
                 passes for `bob`",
                &refuse,
            );
        }
        // Accepted, and alice (present all along) is not listed: what was
        // seen, and its likeliest causes, come first.
        let hint = match whole && lists_exactly(&line.bytes, "alice", &[]) {
            true => crate::report::join_hints(&not_in_alices_room(at), &refuse),
            false => refuse,
        };
        step.report()
            .did(&format!(
                "the check gave the name {} ({why}) while alice is present",
                crate::bytes::show(name.as_bytes())
            ))
            .expected("one line that starts with `*` and says why, then end of file")
            .got(&line.describe())
            .hint(&hint)
            .fail();
    }
    peer.close_sending();
    peer.expect_end("after the error line, the connection ends (a gentle close).");
}

/// What was seen when a newcomer's list leaves out alice, who joined first
/// and never left, and its likeliest causes: a room of its own, where the
/// lesson's code makes the room, or alice taken out of the room.
fn not_in_alices_room(at: &Where) -> String {
    let taken_out = "alice was taken out of the room (a leave where nobody joined: a refused \
                     name never joined, so it never leaves)";
    match at.one_room {
        "" => format!("alice, connected and named, is not in the newcomer's room: {taken_out}."),
        one_room => format!(
            "alice, connected and named, is not in the newcomer's room. Either {one_room}, or \
             {taken_out}."
        ),
    }
}

/// Bad and taken names are refused, and nobody hears of them; names are
/// compared exactly, case included.
pub fn expect_names_refused(step: &Step, addr: SocketAddr, max_line: usize, at: &Where) {
    let mut alice = Member::join_at(at, step, addr, "alice", &[]);
    expect_refused(step, addr, "", "empty", at);
    let endless = "n".repeat(max_line + 1);
    expect_refused(step, addr, &endless, "a line longer than MAX_LINE", at);
    expect_refused(step, addr, "bob smith", "a space", at);
    expect_refused(step, addr, " bob", "a space before it", at);
    expect_refused(step, addr, "abcdefghijklmnopq", "17 letters", at);
    expect_refused(step, addr, "alice", "taken", at);
    alice.expect_quiet(
        QUIET,
        &crate::report::join_hints(
            "a refused newcomer never joined: nobody hears it enter or leave",
            at.naming,
        ),
    );
    let longest = "abcdefghijklmnop";
    let _longest = expect_listed_beside_alice(
        step,
        addr,
        longest,
        "16 letters, the most allowed, after the second alice was refused",
        "a name of 16 letters is valid: 1 to 16, both included.",
        "alice must still be listed: refusing a taken name changes nothing in the room. The \
         newcomer never joined, so it never leaves: no leave for the name, which is alice's.",
        at,
    );
    alice.expect_entered(
        longest,
        "alice heard nothing of the newcomer's entry. Either the room does not tell members \
         who joined (everyone already present hears entered_line), or refusing the second \
         alice broke the first one's place in the room: join must look before it inserts, \
         never replace a member to learn that its name is taken.",
    );
    expect_listed_beside_alice(
        step,
        addr,
        "ALICE",
        "while alice is present",
        "names are compared exactly, case included: `ALICE` is not `alice`.",
        "names are compared exactly, case included: `ALICE` is not `alice`.",
        at,
    );
}

/// A newcomer named `name` joins while alice is present: its `*` list must
/// name alice. `refused` is the hint when it gets an error line instead;
/// `otherwise` when the line is anything else but a list of nobody, which
/// says the newcomer joined a room of its own. Returns the newcomer, still
/// connected.
fn expect_listed_beside_alice(
    step: &Step,
    addr: SocketAddr,
    name: &str,
    when: &str,
    refused: &str,
    otherwise: &str,
    at: &Where,
) -> Peer {
    let mut newcomer = greeted(step, addr, name).patience(at.patience);
    newcomer.send(format!("{name}\n").as_bytes());
    let line = newcomer.read_line();
    if line.end == End::Newline && lists_exactly(&line.bytes, name, &["alice"]) {
        return newcomer;
    }
    let whole = line.end == End::Newline;
    let hint = if whole && is_error_line(&line.bytes) {
        refused.to_string()
    } else if whole && lists_exactly(&line.bytes, name, &[]) {
        not_in_alices_room(at)
    } else {
        otherwise.to_string()
    };
    step.report()
        .did(&format!("the check gave the name {name:?} ({when})"))
        .expected(&format!(
            "the `*` list of the others, alice among them: {name} is a name of its own"
        ))
        .got(&line.describe())
        .hint(&hint)
        .fail();
}

/// True for the error line that refuse (given in lessons 11 and 12) sends:
/// `* error: WHY`. It starts with `*` like a list, and names nobody.
fn is_error_line(line: &[u8]) -> bool {
    line.starts_with(b"* error")
}

/// True for the list a named newcomer gets, as present_line (given in
/// lessons 11 and 12) writes it: `* in the room: ...`. It starts with `*`
/// like an error line.
fn is_presence_line(line: &[u8]) -> bool {
    line.starts_with(b"* in the room:")
}

/// The newcomer hears who is present; those present hear it enter.
pub fn expect_entries(step: &Step, addr: SocketAddr, at: &Where) {
    let enter = "when a member joins, everyone already present hears entered_line(name) \
                 (not the newcomer itself).";
    let mut alice = Member::join_at(at, step, addr, "alice", &[]);
    let mut bob = Member::join_at(at, step, addr, "bob", &["alice"]);
    alice.expect_entered("bob", enter);
    let _carol = Member::join_at(at, step, addr, "carol", &["alice", "bob"]);
    alice.expect_entered("carol", enter);
    bob.expect_entered("carol", enter);
}

/// Each line reaches every other member as `[NAME] text`, as sent, never
/// the sender, never a member who joined later.
pub fn expect_fan_out(step: &Step, addr: SocketAddr, at: &Where) {
    let mut alice = Member::join_at(at, step, addr, "alice", &[]);
    let mut bob = Member::join_at(at, step, addr, "bob", &["alice"]);
    alice.expect_entered("bob", at.lines);
    alice.say("  hi bob, how are you?  ");
    bob.expect_said(
        "alice",
        "  hi bob, how are you?  ",
        "the text goes on as sent, spaces kept: only the newline, and a \\r before it, \
         are taken off.",
    );
    bob.say("fine");
    bob.say("and you?");
    bob.say("");
    alice.expect_said("bob", "fine", at.lines);
    alice.expect_said("bob", "and you?", at.lines);
    alice.expect_said(
        "bob",
        "",
        "an empty line is a line too: the others hear `[bob] ` (the name, a space, nothing \
         more). Never skip it.",
    );
    // What bob hears next is alice's line, not its own lines back.
    alice.say("good");
    bob.expect_said(
        "alice",
        "good",
        "never send a line back to the member who said it.",
    );
    let mut carol = Member::join_at(at, step, addr, "carol", &["alice", "bob"]);
    alice.say("welcome carol");
    carol.expect_said(
        "alice",
        "welcome carol",
        "a newcomer hears nothing said before it joined: only its list, then what comes.",
    );
    let _dave = Member::join_saying(step, addr, "dave", &["alice", "bob", "carol"], "hi all");
    carol.expect_entered("dave", "tell members who joined.");
    carol.expect_said(
        "dave",
        "hi all",
        "dave sent its name and this line in one write, as a client may (TCP keeps no \
         message boundaries). The likeliest cause: the line was read ahead with the name, by \
         a reader (a BufReader) that was then dropped, and a second reader made after the \
         name never sees it. Read a connection through one BufReader, made once.",
    );
}

/// Half a line, then another member speaks, then the rest: the whole line
/// arrives, three times over. The member pauses mid-line as a person
/// typing does, so that the server has read the first half before the
/// other member's line comes in.
pub fn expect_half_line_kept(step: &Step, addr: SocketAddr, hint: &str, at: &Where) {
    let mut alice = Member::join_at(at, step, addr, "alice", &[]);
    let mut bob = Member::join_at(at, step, addr, "bob", &["alice"]);
    alice.expect_entered("bob", "tell members who joined.");
    for round in 1..=3 {
        bob.peer.send(b"hel");
        std::thread::sleep(crate::peer::PIECE_PAUSE);
        alice.say(&format!("interrupting {round}"));
        bob.expect_said(
            "alice",
            &format!("interrupting {round}"),
            "a member with half a line sent still hears the room: the outbox is written \
             while its line is unfinished.",
        );
        bob.peer.send(format!("lo {round}\n").as_bytes());
        alice.expect_said("bob", &format!("hello {round}"), hint);
    }
}

/// A client with no name yet hears nothing of the room, and leaves
/// unannounced.
pub fn expect_unnamed_hear_nothing(step: &Step, addr: SocketAddr, at: &Where) {
    let mut alice = Member::join_at(at, step, addr, "alice", &[]);
    let mut stranger = greeted(step, addr, "stranger").patience(at.patience);
    let mut bob = Member::join_at(at, step, addr, "bob", &["alice"]);
    bob.say("anyone here?");
    alice.expect_entered("bob", "tell members who joined.");
    alice.expect_said("bob", "anyone here?", "every other member hears each line.");
    stranger.expect_silence(
        QUIET,
        "a client is in the room only once its name is accepted: before that it hears nothing.",
    );
    stranger.close_sending();
    stranger.expect_end("a client that hangs up before its name is simply closed.");
    bob.say("still here");
    alice.expect_said(
        "bob",
        "still here",
        "a client that never joined never leaves either: say nothing.",
    );
}

/// A member who hangs up, or resets, is announced as gone once; its name
/// is free again.
pub fn expect_leaves_once(step: &Step, addr: SocketAddr, at: &Where) {
    let mut alice = Member::join_at(at, step, addr, "alice", &[]);
    let mut bob = Member::join_at(at, step, addr, "bob", &["alice"]);
    let carol = Member::join_at(at, step, addr, "carol", &["alice", "bob"]);
    alice.expect_entered("bob", at.leaving);
    alice.expect_entered("carol", at.leaving);
    bob.expect_entered("carol", at.leaving);
    let mut carol = carol.peer;
    carol.close_sending();
    alice.expect_left("carol", at.leaving);
    bob.expect_left("carol", at.leaving);
    carol.expect_end(&crate::report::join_hints(
        "a member who hangs up hears nothing more, and its connection closes",
        at.leaving,
    ));
    bob.say("carol is gone");
    alice.expect_said("bob", "carol is gone", "a leave is announced once.");
    let carol = Member::join_at(at, step, addr, "carol", &["alice", "bob"]);
    alice.expect_entered("carol", "the name is free again once its member has left.");
    alice.say("bye carol");
    carol.peer.reset();
    alice.expect_left(
        "carol",
        &crate::report::join_hints(
            "a member whose connection is reset has left too, whatever ended the reading",
            at.leaving,
        ),
    );
}

/// A line of `max_line` bytes passes; one byte more gets a `*` line, end of
/// file, and a leave.
pub fn expect_long_line_drops(step: &Step, addr: SocketAddr, max_line: usize, at: &Where) {
    let mut alice = Member::join_at(at, step, addr, "alice", &[]);
    let mut bob = Member::join_at(at, step, addr, "bob", &["alice"]);
    alice.expect_entered("bob", "tell members who joined.");
    let longest = "x".repeat(max_line);
    bob.say(&longest);
    alice.expect_said(
        "bob",
        &longest,
        "a line of exactly MAX_LINE bytes is allowed.",
    );
    // One byte over, and the line goes on: bytes the server will not read,
    // which a close that is not gentle turns into a reset.
    let too_long = format!("{}y{}\n", "x".repeat(max_line), "x".repeat(64 * 1024));
    bob.peer.send_in_background(too_long.into_bytes());
    let line = bob.peer.read_line();
    if line.end != End::Newline || !line.bytes.starts_with(b"*") {
        step.report()
            .expected("one line that starts with `*` (the line is too long), then end of file")
            .got(&line.describe())
            .hint(at.too_long)
            .fail();
    }
    alice.expect_left("bob", at.too_long);
    bob.peer.close_sending();
    bob.peer
        .expect_end("after the error line, the connection ends gently.");
}

/// A member who never reads holds up nobody: the others get every line of
/// a flood, and it is cut off, and announced as gone, once.
pub fn expect_non_reader_cut_off(
    step: &Step,
    addr: SocketAddr,
    max_line: usize,
    outbox_lines: usize,
    at: &Where,
) {
    let mut alice = Member::join_at(at, step, addr, "alice", &[]);
    let slow = Member::join_at(at, step, addr, "slow", &["alice"]);
    let flood = Member::join_at(at, step, addr, "flood", &["alice", "slow"]);
    alice.expect_entered("slow", "tell members who joined.");
    alice.expect_entered("flood", "tell members who joined.");
    let (line, batches) = flood_of(max_line, outbox_lines);
    let batch: Vec<u8> = (0..100)
        .flat_map(|_| format!("{line}\n").into_bytes())
        .collect();
    flood.peer.note(format!(
        "check   sends {batches} x 100 lines of {max_line} bytes; alice reads each 100"
    ));
    let mut writer = flood.peer.stream().try_clone().expect("clone");
    let (mut heard, mut others, mut slowest) = (0, Vec::new(), std::time::Duration::ZERO);
    for _ in 0..batches {
        let sent = std::time::Instant::now();
        let _ = std::io::Write::write_all(&mut writer, &batch);
        let (came, other) = alice.count_lines(&said("flood", &line), 100, FLOOD_WAIT);
        // Every line came, but slowly: the room crawls (it did not stop).
        if came == 100 {
            slowest = slowest.max(sent.elapsed());
        }
        heard += came;
        others.extend(other);
        if came < 100 || slowest > BATCH_TIME {
            break;
        }
    }
    if slowest > BATCH_TIME {
        step.report()
            .expected(&format!(
                "each 100 lines of the flood at alice within {} ms (a room fans 100 lines out \
                 in a few milliseconds)",
                BATCH_TIME.as_millis()
            ))
            .got(&format!("100 lines took up to {} ms", slowest.as_millis()))
            .hint(&crate::report::join_hints(
                "the room crawls: something waits between one line and the next",
                at.non_reader,
            ))
            .fail();
    }
    if heard < batches * 100 {
        step.report()
            .expected(&format!(
                "all {} lines from flood, each within the deadline",
                batches * 100
            ))
            .got(&format!(
                "{heard} lines, then nothing for {} s",
                FLOOD_WAIT.as_secs_f32()
            ))
            .hint(&crate::report::join_hints(
                "the room stopped: something waits for the member who does not read",
                at.non_reader,
            ))
            .fail();
    }
    if others != [left("slow")] {
        let shown: Vec<String> = others
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        step.report()
            .expected("among the flood, one line: `* slow has left the room`")
            .got(&format!("{shown:?}"))
            .hint(
                "a member whose outbox is full is not reading: it is cut off (its connection \
                 shut down both ways), leaves the room, and the others hear it, once.",
            )
            .fail();
    }
    drop(slow);
}

/// How long 100 lines of a flood may take to reach a member who reads: a
/// room fans them out in a few milliseconds; a room that pauses a few
/// milliseconds after each line takes half a second.
pub const BATCH_TIME: Duration = Duration::from_millis(300);

/// What a never-reading member's connection holds before its outbox fills,
/// at most: on Linux's loopback the server's send buffer grows to 4 MiB
/// (tcp_wmem's largest) and the check's receive buffer holds 128 KiB
/// (measured with `ss -tmn`); other systems hold less.
pub const SOCKET_BUFFERS: usize = 5 * 1024 * 1024;

/// A flood that overflows a never-reading member: the longest line allowed,
/// and how many batches of 100 fill its socket buffers and its outbox.
pub fn flood_of(max_line: usize, outbox_lines: usize) -> (String, usize) {
    let lines = SOCKET_BUFFERS / max_line + outbox_lines;
    ("z".repeat(max_line), lines.div_ceil(100) + 1)
}

/// `count` members at once: each line reaches all the others.
pub fn expect_many_members(step: &Step, addr: SocketAddr, count: usize, at: &Where) {
    let names: Vec<String> = (1..=count).map(|n| format!("m{n}")).collect();
    let mut members: Vec<Member> = Vec::new();
    for name in &names {
        let others: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let member = Member::join_at(at, step, addr, name, &others);
        for earlier in &mut members {
            earlier.expect_entered(name, "tell every member who joined.");
        }
        members.push(member);
    }
    for index in 0..members.len() {
        let from = names[index].clone();
        members[index].say(&format!("hello from {from}"));
        for (other, member) in members.iter_mut().enumerate() {
            if other != index {
                member.expect_said(&from, &format!("hello from {from}"), "fan out to everyone.");
            }
        }
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
    fn a_line_that_lost_its_start_is_told_from_another_line() {
        assert!(lost_its_start(b"[bob] hello 1\n", b"[bob] lo 1\n"));
        assert!(!lost_its_start(b"[bob] hello 1\n", b"[alice] lo 1\n"));
        assert!(!lost_its_start(b"[bob] hi\n", b"[bob] hi\n"));
        assert!(!lost_its_start(b"* bob has left the room\n", b"[bob] x\n"));
        assert!(!lost_its_start(b"[bob] and you?\n", b"[bob] \n"));
        assert!(named_twice(b"[bob] hi\n", b"[bob] [bob] hi\n"));
        assert!(!named_twice(b"[bob] hi\n", b"[bob] hi\n"));
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
