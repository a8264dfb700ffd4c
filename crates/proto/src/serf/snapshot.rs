//! The snapshot format: HashiCorp serf's append-only text log of alive members and the three
//! Lamport clocks, so a restarted node can rejoin its old peers and avoid redelivering events and
//! queries it already saw. The format and replay rules are Go's (`serf/snapshot.go`), so a log
//! written by either implementation is read by the other.
//!
//! One record per `\n`-terminated line:
//!
//! | line | replay effect |
//! |---|---|
//! | `alive: <name> <ip:port>` | remember the member (name = text before the last space) |
//! | `not-alive: <name>` | forget it |
//! | `clock: <n>` / `event-clock: <n>` / `query-clock: <n>` | last value of that clock |
//! | `leave` | forget everything (unless rejoin-after-leave) |
//! | `coordinate: …`, `#…`, anything else, bad numbers | ignored (counted) |
//!
//! This module only builds, prints and parses records; storing them is the runtime's job
//! ([`crate::runtime::snapshotter`]).
//!
//! What the caller records (as Go's snapshotter does with the events it sees, before the
//! internal-query interceptor and the coalescers):
//! * `member-join` → [`Record::Alive`] per member (its address and port);
//!   `member-leave` and `member-failed` → [`Record::NotAlive`]; `member-update` and
//!   `member-reap` → nothing.
//! * After each member event, every [`CLOCK_UPDATE_INTERVAL`] and once before closing:
//!   [`ClockRecorder::member_clock`]; each user event: [`ClockRecorder::user_event`]; each query,
//!   internal ones included: [`ClockRecorder::query`]. Record whatever they return.
//! * A graceful leave: [`Record::Leave`], made durable before broadcasting the leave intent
//!   ([`SnapshotWriter::leave`](crate::runtime::snapshotter::SnapshotWriter::leave)).
//!
//! On start: replay the log ([`parse`]; [`crate::runtime::snapshotter::replay`] for a file), then
//! witness the three clocks, set the event and query minimum times to the replayed value + 1,
//! start a [`ClockRecorder`] with [`ClockRecorder::from_replay`], and try to rejoin the replayed
//! alive members (skipping ourselves).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How often the caller should offer the member clock to [`ClockRecorder::member_clock`] (Go's
/// `clockUpdateInterval`), because join/leave intents move the clock without member events.
pub const CLOCK_UPDATE_INTERVAL: Duration = Duration::from_millis(500);

/// One record (a line) of the snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Alive { name: String, addr: SocketAddr },
    NotAlive { name: String },
    Clock(u64),
    EventClock(u64),
    QueryClock(u64),
    Leave,
}

impl Record {
    /// The line exactly as Go writes it, without the trailing newline. Addresses are printed as
    /// Go's `net.TCPAddr` does: IPv4-mapped IPv6 as plain IPv4, other IPv6 in brackets, no zone.
    /// A name containing a newline would corrupt the file, as it does in Go.
    pub fn to_line(&self) -> String {
        match self {
            Record::Alive { name, addr } => {
                let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
                format!("alive: {name} {addr}")
            }
            Record::NotAlive { name } => format!("not-alive: {name}"),
            Record::Clock(n) => format!("clock: {n}"),
            Record::EventClock(n) => format!("event-clock: {n}"),
            Record::QueryClock(n) => format!("query-clock: {n}"),
            Record::Leave => "leave".to_owned(),
        }
    }

    /// Parses one line (without its newline) by Go's rules; `None` for anything replay ignores:
    /// comments, legacy `coordinate:` lines, unknown lines, an `alive:` line without a space or
    /// with an unparsable address, and numbers Go's `strconv.ParseUint(s, 10, 64)` rejects.
    pub fn from_line(line: &str) -> Option<Record> {
        if let Some(info) = line.strip_prefix("alive: ") {
            let space = info.rfind(' ')?;
            let addr = info[space + 1..].parse().ok()?;
            Some(Record::Alive {
                name: info[..space].to_owned(),
                addr,
            })
        } else if let Some(name) = line.strip_prefix("not-alive: ") {
            Some(Record::NotAlive {
                name: name.to_owned(),
            })
        } else if let Some(n) = line.strip_prefix("clock: ") {
            parse_u64(n).map(Record::Clock)
        } else if let Some(n) = line.strip_prefix("event-clock: ") {
            parse_u64(n).map(Record::EventClock)
        } else if let Some(n) = line.strip_prefix("query-clock: ") {
            parse_u64(n).map(Record::QueryClock)
        } else if line == "leave" {
            Some(Record::Leave)
        } else {
            None
        }
    }
}

/// Decimal digits only: Rust's `u64::from_str` would also accept a leading `+`, which Go rejects.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What replaying a snapshot file yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// Members alive at the end of the file, sorted by name (Go shuffles them; the caller picks
    /// its own rejoin order).
    pub alive: Vec<(String, SocketAddr)>,
    pub last_clock: u64,
    pub last_event_clock: u64,
    pub last_query_clock: u64,
    /// A `leave` took effect (not ignored because of rejoin-after-leave) and no member, event or
    /// query record followed it. `clock:` lines don't count: Go keeps writing those after a leave.
    pub left: bool,
    /// Complete lines that were not records, plus a torn final line (no newline) if present.
    pub ignored_lines: usize,
}

/// Replays snapshot text.
pub fn parse(text: &str, rejoin_after_leave: bool) -> Replay {
    parse_bytes(text.as_bytes(), rejoin_after_leave)
}

/// Replays snapshot bytes as [`parse`] does text; a line that is not UTF-8 is ignored (counted).
pub fn parse_bytes(bytes: &[u8], rejoin_after_leave: bool) -> Replay {
    let mut alive = BTreeMap::new();
    let mut out = Replay::default();
    let mut lines = bytes.split(|&b| b == b'\n');
    // The piece after the last newline is a torn write (or empty); Go ignores it.
    if lines.next_back().is_some_and(|torn| !torn.is_empty()) {
        out.ignored_lines += 1;
    }
    for line in lines {
        let Some(record) = std::str::from_utf8(line).ok().and_then(Record::from_line) else {
            out.ignored_lines += 1;
            continue;
        };
        match record {
            Record::Alive { name, addr } => {
                alive.insert(name, addr);
                out.left = false;
            }
            Record::NotAlive { name } => {
                alive.remove(&name);
                out.left = false;
            }
            Record::Clock(n) => out.last_clock = n,
            Record::EventClock(n) => {
                out.last_event_clock = n;
                out.left = false;
            }
            Record::QueryClock(n) => {
                out.last_query_clock = n;
                out.left = false;
            }
            Record::Leave if rejoin_after_leave => {}
            Record::Leave => {
                alive.clear();
                out.last_clock = 0;
                out.last_event_clock = 0;
                out.last_query_clock = 0;
                out.left = true;
            }
        }
    }
    out.alive = alive.into_iter().collect();
    out
}

/// Decides when a clock value is worth a line, by Go's rules, so the file does not grow with
/// values it already holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockRecorder {
    pub last_clock: u64,
    pub last_event: u64,
    pub last_query: u64,
}

impl ClockRecorder {
    /// Starts from the replayed values, as Go's snapshotter does.
    pub fn from_replay(replay: &Replay) -> Self {
        Self {
            last_clock: replay.last_clock,
            last_event: replay.last_event_clock,
            last_query: replay.last_query_clock,
        }
    }

    /// `clock_time` is the member clock's current (next unused) value, so the last value used is
    /// one less. A clock still at 0 has used nothing (Go would underflow and write 2^64 − 1).
    pub fn member_clock(&mut self, clock_time: u64) -> Option<Record> {
        let seen = clock_time.checked_sub(1)?;
        (seen > self.last_clock).then(|| {
            self.last_clock = seen;
            Record::Clock(seen)
        })
    }

    /// A user event with this Lamport time was delivered.
    pub fn user_event(&mut self, ltime: u64) -> Option<Record> {
        (ltime > self.last_event).then(|| {
            self.last_event = ltime;
            Record::EventClock(ltime)
        })
    }

    /// A query (internal ones included) with this Lamport time was delivered.
    pub fn query(&mut self, ltime: u64) -> Option<Record> {
        (ltime > self.last_query).then(|| {
            self.last_query = ltime;
            Record::QueryClock(ltime)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn alive(name: &str, a: &str) -> Record {
        Record::Alive {
            name: name.to_owned(),
            addr: addr(a),
        }
    }

    #[test]
    fn every_record_round_trips() {
        let records = [
            alive("node-1", "10.0.0.1:7946"),
            alive("with space", "[::1]:7946"),
            alive("", "[2001:db8::1]:1"),
            Record::NotAlive {
                name: "node 2".to_owned(),
            },
            Record::Clock(0),
            Record::EventClock(42),
            Record::QueryClock(u64::MAX),
            Record::Leave,
        ];
        for r in records {
            assert_eq!(
                Record::from_line(&r.to_line()),
                Some(r.clone()),
                "{}",
                r.to_line()
            );
        }
    }

    #[test]
    fn lines_match_go_text() {
        assert_eq!(
            alive("a b", "[::1]:7946").to_line(),
            "alive: a b [::1]:7946"
        );
        assert_eq!(alive("n", "1.2.3.4:80").to_line(), "alive: n 1.2.3.4:80");
        let mapped = SocketAddr::new(IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped()), 80);
        let r = Record::Alive {
            name: "n".to_owned(),
            addr: mapped,
        };
        assert_eq!(r.to_line(), "alive: n 1.2.3.4:80");
        let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(Ipv6Addr::LOCALHOST, 5, 0, 3));
        let r = Record::Alive {
            name: "n".to_owned(),
            addr: scoped,
        };
        assert_eq!(r.to_line(), "alive: n [::1]:5");
        assert_eq!(
            Record::NotAlive {
                name: "x".to_owned()
            }
            .to_line(),
            "not-alive: x"
        );
        assert_eq!(Record::Clock(7).to_line(), "clock: 7");
        assert_eq!(Record::EventClock(8).to_line(), "event-clock: 8");
        assert_eq!(Record::QueryClock(9).to_line(), "query-clock: 9");
        assert_eq!(Record::Leave.to_line(), "leave");
    }

    /// Text as Go's snapshotter writes it, plus lines only old or damaged files contain.
    const GO_FILE: &str = "\
# written by hand in Go's format
alive: alpha 10.0.0.1:7946
alive: beta node [::1]:7946
alive: gamma [2001:db8::7]:8000
clock: 12
coordinate: {\"Vec\":[0.1]}
event-clock: 5
query-clock: 3
not-alive: gamma
alive: alpha 10.0.0.2:7946
clock: +13
clock: 99999999999999999999
event-clock: x
alive: nospace
alive: bad 10.0.0.300:1
what is this
\n\
clock: 14
query-clock: 4
alive: torn 10.0.0.9:79";

    #[test]
    fn parses_go_text() {
        let r = parse(GO_FILE, false);
        assert_eq!(
            r.alive,
            vec![
                ("alpha".to_owned(), addr("10.0.0.2:7946")),
                ("beta node".to_owned(), addr("[::1]:7946")),
            ]
        );
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (14, 5, 4)
        );
        assert!(!r.left);
        // comment, coordinate, 3 bad numbers, 2 bad alive, unknown, empty line, torn tail
        assert_eq!(r.ignored_lines, 10);
    }

    #[test]
    fn leave_clears_unless_rejoining() {
        let text =
            "alive: a 1.1.1.1:1\nclock: 5\nevent-clock: 6\nquery-clock: 7\nleave\nclock: 9\n";
        let r = parse(text, false);
        assert!(r.alive.is_empty());
        // Go keeps writing the member clock after a leave; replay honours it.
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (9, 0, 0)
        );
        assert!(r.left);

        let r = parse(text, true);
        assert_eq!(r.alive, vec![("a".to_owned(), addr("1.1.1.1:1"))]);
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (9, 6, 7)
        );
        assert!(!r.left);

        let restarted = format!("{text}alive: b 2.2.2.2:2\n");
        let r = parse(&restarted, false);
        assert_eq!(r.alive, vec![("b".to_owned(), addr("2.2.2.2:2"))]);
        assert!(!r.left);
    }

    #[test]
    fn clock_recorder_follows_go_rules() {
        let mut c = ClockRecorder::from_replay(&parse("clock: 10\nevent-clock: 4\n", false));
        assert_eq!(c.member_clock(0), None);
        assert_eq!(c.member_clock(11), None);
        assert_eq!(c.member_clock(12), Some(Record::Clock(11)));
        assert_eq!(c.member_clock(12), None);
        assert_eq!(c.user_event(4), None);
        assert_eq!(c.user_event(5), Some(Record::EventClock(5)));
        assert_eq!(c.query(0), None);
        assert_eq!(c.query(1), Some(Record::QueryClock(1)));
        assert_eq!(c.query(1), None);
    }
}
