//! Event coalescing: turns bursts of member and user events into a few events, so handlers and
//! RPC streams are not run once per node during a mass join or failure (HashiCorp's agent does
//! this too, with a 3 s coalesce period and 1 s quiescent period).
//!
//! Without I/O: callers push events with the current time, ask `deadline()` when to come back,
//! and call `flush()` then. A window opens with the first buffered event and closes when the
//! coalesce period since that event has passed, or when no event arrived for the quiescent
//! period, whichever comes first.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::mem;
use std::time::{Duration, Instant};

use super::event::{Event, MemberEventType, UserEventInfo};
use super::member::Member;

/// When the open window received its first and its latest event.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: Instant,
    last: Instant,
}

/// A buffer that a closing window turns into events to deliver.
trait Batch {
    type Out;
    /// Empties the buffer, returning what the application should see.
    fn close(&mut self) -> Vec<Self::Out>;
}

/// The window timing both coalescers share.
#[derive(Debug)]
struct Coalescing<B: Batch> {
    coalesce: Duration,
    quiescent: Duration,
    span: Option<Span>,
    batch: B,
    /// Output of a window that had expired when the next event was pushed: kept apart so that
    /// event starts a new window, as it would have if the caller had flushed on time.
    ready: Vec<B::Out>,
    /// When `ready` became due; `Some` exactly when `ready` is not empty.
    ready_due: Option<Instant>,
}

impl<B: Batch> Coalescing<B> {
    fn new(coalesce: Duration, quiescent: Duration, batch: B) -> Self {
        Coalescing {
            coalesce,
            quiescent,
            span: None,
            batch,
            ready: Vec::new(),
            ready_due: None,
        }
    }

    /// When the open window closes. A period too long to add to an `Instant` never ends.
    fn window_deadline(&self) -> Option<Instant> {
        let span = self.span?;
        let cap = span.first.checked_add(self.coalesce);
        let quiet = span.last.checked_add(self.quiescent);
        match (cap, quiet) {
            (Some(cap), Some(quiet)) => Some(cap.min(quiet)),
            (cap, quiet) => cap.or(quiet),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.ready_due.or_else(|| self.window_deadline())
    }

    /// Opens or extends the window for an event arriving at `now`; returns the buffer to add it
    /// to. An earlier `now` than before (a stale clock reading) never shortens the window.
    fn admit(&mut self, now: Instant) -> &mut B {
        if let Some(due) = self.window_deadline().filter(|due| now >= *due) {
            let out = self.batch.close();
            if !out.is_empty() {
                self.ready_due.get_or_insert(due);
                self.ready.extend(out);
            }
            self.span = None;
        }
        self.span = Some(match self.span {
            None => Span {
                first: now,
                last: now,
            },
            Some(span) => Span {
                first: span.first,
                last: span.last.max(now),
            },
        });
        &mut self.batch
    }

    fn flush(&mut self, now: Instant) -> Vec<B::Out> {
        let mut out = mem::take(&mut self.ready);
        self.ready_due = None;
        if self.window_deadline().is_some_and(|due| now >= due) {
            self.span = None;
            out.extend(self.batch.close());
        }
        out
    }

    fn drain(&mut self) -> Vec<B::Out> {
        let mut out = mem::take(&mut self.ready);
        self.ready_due = None;
        self.span = None;
        out.extend(self.batch.close());
        out
    }
}

/// Delivery order of the kinds within one flush, so output never depends on hashing.
fn rank(kind: MemberEventType) -> u8 {
    match kind {
        MemberEventType::Join => 0,
        MemberEventType::Leave => 1,
        MemberEventType::Failed => 2,
        MemberEventType::Update => 3,
        MemberEventType::Reap => 4,
    }
}

#[derive(Debug, Default)]
struct MemberBatch {
    /// Per node name, the latest event in the window; earlier ones are superseded.
    pending: BTreeMap<String, (MemberEventType, Member)>,
    /// Per node name, the kind last delivered, to suppress repeats across windows.
    delivered: HashMap<String, MemberEventType>,
}

impl Batch for MemberBatch {
    type Out = Event;

    fn close(&mut self) -> Vec<Event> {
        let mut picked = Vec::with_capacity(self.pending.len());
        for (name, (kind, member)) in mem::take(&mut self.pending) {
            // The application already knows; updates always carry new tags, so they pass.
            if kind != MemberEventType::Update && self.delivered.get(&name) == Some(&kind) {
                continue;
            }
            // A reaped node is gone, and only a join can bring it back, which differs from
            // reap anyway: forgetting it keeps `delivered` from growing with every node ever seen.
            if kind == MemberEventType::Reap {
                self.delivered.remove(&name);
            } else {
                self.delivered.insert(name, kind);
            }
            picked.push((kind, member));
        }
        // Stable, so members of one kind stay sorted by name.
        picked.sort_by_key(|(kind, _)| rank(*kind));
        let mut events: Vec<Event> = Vec::new();
        for (kind, member) in picked {
            match events.last_mut() {
                Some(Event::Member {
                    kind: last,
                    members,
                }) if *last == kind => members.push(member),
                _ => events.push(Event::Member {
                    kind,
                    members: vec![member],
                }),
            }
        }
        events
    }
}

/// Coalesces member events: per node only its latest event in a window counts, and a flush
/// yields at most one [`Event::Member`] per kind, ordered join, leave, failed, update, reap, with
/// members sorted by name. A node's event of the same kind as the last one delivered for it is
/// dropped, except updates.
///
/// Unlike HashiCorp's coalescer, a flush empties the buffer: Go keeps every node's latest event
/// forever and re-delivers old member-updates on each later flush (hashicorp/serf#555).
#[derive(Debug)]
pub struct MemberCoalescer {
    inner: Coalescing<MemberBatch>,
}

impl MemberCoalescer {
    pub fn new(coalesce_period: Duration, quiescent_period: Duration) -> Self {
        MemberCoalescer {
            inner: Coalescing::new(coalesce_period, quiescent_period, MemberBatch::default()),
        }
    }

    /// Buffers a member event; it shows up in a later `flush`. An empty member list changes
    /// nothing, not even the window's timing.
    pub fn push(&mut self, now: Instant, kind: MemberEventType, members: Vec<Member>) {
        if members.is_empty() {
            return;
        }
        let batch = self.inner.admit(now);
        for member in members {
            batch.pending.insert(member.name.clone(), (kind, member));
        }
    }

    /// When `flush` next has work; `None` when nothing is buffered (or the periods are too long
    /// to represent, in which case only `drain` delivers).
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }

    /// Events due at `now`; empty before the deadline.
    pub fn flush(&mut self, now: Instant) -> Vec<Event> {
        self.inner.flush(now)
    }

    /// Everything buffered, due or not: on shutdown, pending events are delivered, not lost.
    pub fn drain(&mut self) -> Vec<Event> {
        self.inner.drain()
    }
}

/// The events of one name that carry the highest Lamport time seen in the window.
#[derive(Debug)]
struct Latest<E> {
    ltime: u64,
    events: Vec<E>,
}

#[derive(Debug)]
struct UserBatch<E> {
    latest: BTreeMap<String, Latest<E>>,
}

impl<E> Batch for UserBatch<E> {
    type Out = E;

    fn close(&mut self) -> Vec<E> {
        mem::take(&mut self.latest)
            .into_values()
            .flat_map(|latest| latest.events)
            .collect()
    }
}

/// Coalesces user events that allow it: per name, only the events with the highest Lamport time
/// seen in a window are delivered (all of them if several share it, since they are different
/// events); older ones are dropped. A flush yields them by name, then in arrival order.
#[derive(Debug)]
pub struct UserCoalescer<E> {
    inner: Coalescing<UserBatch<E>>,
}

impl<E> UserCoalescer<E> {
    pub fn new(coalesce_period: Duration, quiescent_period: Duration) -> Self {
        UserCoalescer {
            inner: Coalescing::new(
                coalesce_period,
                quiescent_period,
                UserBatch {
                    latest: BTreeMap::new(),
                },
            ),
        }
    }

    /// When `flush` next has work; `None` when nothing is buffered (or the periods are too long
    /// to represent, in which case only `drain` delivers).
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }

    /// Events due at `now`; empty before the deadline.
    pub fn flush(&mut self, now: Instant) -> Vec<E> {
        self.inner.flush(now)
    }

    /// Everything buffered, due or not: on shutdown, pending events are delivered, not lost.
    pub fn drain(&mut self) -> Vec<E> {
        self.inner.drain()
    }
}

impl<E: UserEventInfo> UserCoalescer<E> {
    /// Buffers a coalescable event (returning `None`); hands any other event straight back for
    /// immediate delivery.
    #[must_use]
    pub fn push(&mut self, now: Instant, event: E) -> Option<E> {
        if !event.coalesce() {
            return Some(event);
        }
        let batch = self.inner.admit(now);
        let ltime = event.ltime();
        match batch.latest.get_mut(event.name()) {
            Some(latest) => match ltime.cmp(&latest.ltime) {
                Ordering::Less => {}
                Ordering::Equal => latest.events.push(event),
                Ordering::Greater => {
                    *latest = Latest {
                        ltime,
                        events: vec![event],
                    }
                }
            },
            None => {
                batch.latest.insert(
                    event.name().to_owned(),
                    Latest {
                        ltime,
                        events: vec![event],
                    },
                );
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::serf::event::UserEvent;
    use crate::serf::member::{MemberStatus, Tags};

    const MS: Duration = Duration::from_millis(1);

    fn member(name: &str) -> Member {
        member_with_role(name, None)
    }

    fn member_with_role(name: &str, role: Option<&str>) -> Member {
        let mut tags = Tags::new();
        if let Some(role) = role {
            tags.insert("role".to_owned(), role.to_owned());
        }
        Member {
            name: name.to_owned(),
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 7946,
            tags,
            status: MemberStatus::Alive,
            protocol: [2, 5, 5],
            delegate: [2, 5, 4],
        }
    }

    /// A member event's parts; `None` for the other variants serf's `Event` is growing.
    fn parts(event: &Event) -> Option<(MemberEventType, &[Member])> {
        match event {
            Event::Member { kind, members } => Some((*kind, members)),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// (kind, member names) per event, for compact assertions.
    fn summary(events: &[Event]) -> Vec<(MemberEventType, Vec<String>)> {
        events
            .iter()
            .filter_map(parts)
            .map(|(kind, members)| (kind, members.iter().map(|m| m.name.clone()).collect()))
            .collect()
    }

    fn role(event: &Event) -> Option<&str> {
        parts(event)?
            .1
            .first()?
            .tags
            .get("role")
            .map(String::as_str)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    // Port of TestMemberEventCoalesce_Basic.
    #[test]
    fn member_basic() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(5 * MS, 5 * MS);
        c.push(t0, MemberEventType::Join, vec![member("foo")]);
        c.push(t0, MemberEventType::Leave, vec![member("foo")]);
        c.push(t0, MemberEventType::Leave, vec![member("bar")]);
        c.push(
            t0,
            MemberEventType::Update,
            vec![member_with_role("zip", Some("foo"))],
        );
        c.push(
            t0,
            MemberEventType::Update,
            vec![member_with_role("zip", Some("bar"))],
        );
        c.push(t0, MemberEventType::Reap, vec![member("dead")]);
        let events = c.flush(t0 + 5 * MS);
        assert_eq!(
            summary(&events),
            vec![
                (MemberEventType::Leave, names(&["bar", "foo"])),
                (MemberEventType::Update, names(&["zip"])),
                (MemberEventType::Reap, names(&["dead"])),
            ]
        );
        assert_eq!(role(&events[1]), Some("bar"));
        assert_eq!(c.deadline(), None);
    }

    // Port of TestMemberEventCoalesce_TagUpdate.
    #[test]
    fn member_update_repeats_are_delivered() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(5 * MS, 5 * MS);
        c.push(
            t0,
            MemberEventType::Update,
            vec![member_with_role("foo", Some("foo"))],
        );
        let first = c.flush(t0 + 10 * MS);
        assert_eq!(
            summary(&first),
            vec![(MemberEventType::Update, names(&["foo"]))]
        );

        c.push(
            t0 + 10 * MS,
            MemberEventType::Update,
            vec![member_with_role("foo", Some("bar"))],
        );
        let second = c.flush(t0 + 20 * MS);
        assert_eq!(
            summary(&second),
            vec![(MemberEventType::Update, names(&["foo"]))]
        );
        assert_eq!(role(&second[0]), Some("bar"));
    }

    #[test]
    fn member_same_kind_as_last_delivered_is_suppressed() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(5 * MS, 5 * MS);
        c.push(t0, MemberEventType::Join, vec![member("foo")]);
        assert_eq!(c.flush(t0 + 5 * MS).len(), 1);

        c.push(t0 + 10 * MS, MemberEventType::Join, vec![member("foo")]);
        assert_eq!(c.flush(t0 + 15 * MS), Vec::new());

        c.push(t0 + 20 * MS, MemberEventType::Failed, vec![member("foo")]);
        assert_eq!(
            summary(&c.flush(t0 + 25 * MS)),
            vec![(MemberEventType::Failed, names(&["foo"]))]
        );
    }

    #[test]
    fn member_flap_within_one_window_is_invisible() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(5 * MS, 5 * MS);
        c.push(t0, MemberEventType::Join, vec![member("foo")]);
        assert_eq!(c.flush(t0 + 5 * MS).len(), 1);

        // Failed then joined again before the window closed: the latest kind is a join, which
        // the application already saw.
        c.push(t0 + 10 * MS, MemberEventType::Failed, vec![member("foo")]);
        c.push(t0 + 11 * MS, MemberEventType::Join, vec![member("foo")]);
        assert_eq!(c.flush(t0 + 16 * MS), Vec::new());
    }

    // Go re-delivers old updates on every later flush (hashicorp/serf#555); this must not.
    #[test]
    fn member_flush_does_not_replay_earlier_windows() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(5 * MS, 5 * MS);
        c.push(t0, MemberEventType::Update, vec![member("foo")]);
        assert_eq!(c.flush(t0 + 5 * MS).len(), 1);

        c.push(t0 + 10 * MS, MemberEventType::Join, vec![member("bar")]);
        assert_eq!(
            summary(&c.flush(t0 + 15 * MS)),
            vec![(MemberEventType::Join, names(&["bar"]))]
        );
    }

    #[test]
    fn member_reap_forgets_the_node() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(5 * MS, 5 * MS);
        c.push(t0, MemberEventType::Join, vec![member("foo")]);
        c.push(t0, MemberEventType::Join, vec![member("bar")]);
        assert_eq!(c.flush(t0 + 5 * MS).len(), 1);
        assert_eq!(c.inner.batch.delivered.len(), 2);

        c.push(t0 + 10 * MS, MemberEventType::Reap, vec![member("foo")]);
        assert_eq!(
            summary(&c.flush(t0 + 15 * MS)),
            vec![(MemberEventType::Reap, names(&["foo"]))]
        );
        assert_eq!(c.inner.batch.delivered.len(), 1);

        c.push(t0 + 20 * MS, MemberEventType::Join, vec![member("foo")]);
        assert_eq!(
            summary(&c.flush(t0 + 25 * MS)),
            vec![(MemberEventType::Join, names(&["foo"]))]
        );
    }

    #[test]
    fn member_output_order_is_deterministic() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(5 * MS, 5 * MS);
        c.push(t0, MemberEventType::Reap, vec![member("r2"), member("r1")]);
        c.push(t0, MemberEventType::Update, vec![member("u")]);
        c.push(t0, MemberEventType::Failed, vec![member("f")]);
        c.push(t0, MemberEventType::Leave, vec![member("l")]);
        c.push(
            t0,
            MemberEventType::Join,
            vec![member("jc"), member("ja"), member("jb")],
        );
        assert_eq!(
            summary(&c.flush(t0 + 5 * MS)),
            vec![
                (MemberEventType::Join, names(&["ja", "jb", "jc"])),
                (MemberEventType::Leave, names(&["l"])),
                (MemberEventType::Failed, names(&["f"])),
                (MemberEventType::Update, names(&["u"])),
                (MemberEventType::Reap, names(&["r1", "r2"])),
            ]
        );
    }

    #[test]
    fn member_empty_push_changes_nothing() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(5 * MS, 5 * MS);
        c.push(t0, MemberEventType::Join, Vec::new());
        assert_eq!(c.deadline(), None);
        assert_eq!(c.flush(t0 + 10 * MS), Vec::new());
    }

    // Port of TestCoalescer_basic: the coalesce period caps the window.
    #[test]
    fn coalesce_period_caps_the_window() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(5 * MS, Duration::from_secs(1));
        c.push(t0, MemberEventType::Join, vec![member("a")]);
        c.push(t0 + MS, MemberEventType::Join, vec![member("b")]);
        c.push(t0 + 2 * MS, MemberEventType::Join, vec![member("c")]);
        assert_eq!(c.deadline(), Some(t0 + 5 * MS));
        assert_eq!(c.flush(t0 + 4 * MS), Vec::new());
        assert_eq!(
            summary(&c.flush(t0 + 5 * MS)),
            vec![(MemberEventType::Join, names(&["a", "b", "c"]))]
        );
    }

    // Port of TestCoalescer_quiescent: a lull closes the window long before the cap.
    #[test]
    fn quiescent_period_closes_the_window() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(Duration::from_secs(10), 10 * MS);
        c.push(t0, MemberEventType::Join, vec![member("a")]);
        c.push(t0 + MS, MemberEventType::Join, vec![member("b")]);
        assert_eq!(c.deadline(), Some(t0 + 11 * MS));
        assert_eq!(c.flush(t0 + 10 * MS), Vec::new());
        assert_eq!(c.flush(t0 + 11 * MS).len(), 1);
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn each_event_restarts_the_quiescent_period_up_to_the_cap() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(3000 * MS, 1000 * MS);
        c.push(t0, MemberEventType::Join, vec![member("a")]);
        assert_eq!(c.deadline(), Some(t0 + 1000 * MS));
        c.push(t0 + 500 * MS, MemberEventType::Join, vec![member("b")]);
        c.push(t0 + 1400 * MS, MemberEventType::Join, vec![member("c")]);
        assert_eq!(c.deadline(), Some(t0 + 2400 * MS));
        assert_eq!(c.flush(t0 + 2399 * MS), Vec::new());
        c.push(t0 + 2300 * MS, MemberEventType::Join, vec![member("d")]);
        assert_eq!(c.deadline(), Some(t0 + 3000 * MS));
        assert_eq!(c.flush(t0 + 2999 * MS), Vec::new());
        assert_eq!(
            summary(&c.flush(t0 + 3000 * MS)),
            vec![(MemberEventType::Join, names(&["a", "b", "c", "d"]))]
        );
    }

    #[test]
    fn next_window_starts_at_its_first_event() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(3000 * MS, 1000 * MS);
        c.push(t0, MemberEventType::Join, vec![member("a")]);
        assert_eq!(c.flush(t0 + 1000 * MS).len(), 1);
        c.push(t0 + 5000 * MS, MemberEventType::Join, vec![member("b")]);
        assert_eq!(c.deadline(), Some(t0 + 6000 * MS));
    }

    #[test]
    fn late_flush_delivers_everything_due() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(3000 * MS, 1000 * MS);
        c.push(t0, MemberEventType::Join, vec![member("a")]);
        c.push(t0 + 10 * MS, MemberEventType::Leave, vec![member("b")]);
        assert_eq!(
            summary(&c.flush(t0 + 60_000 * MS)),
            vec![
                (MemberEventType::Join, names(&["a"])),
                (MemberEventType::Leave, names(&["b"])),
            ]
        );
    }

    // Pushing after the window should have closed (caller flushed late) starts a new window,
    // so the earlier event is not superseded by the later one.
    #[test]
    fn push_after_an_overdue_window_starts_a_new_one() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(3000 * MS, 1000 * MS);
        c.push(t0, MemberEventType::Join, vec![member("foo")]);
        c.push(t0 + 5000 * MS, MemberEventType::Leave, vec![member("foo")]);
        assert_eq!(c.deadline(), Some(t0 + 1000 * MS));
        assert_eq!(
            summary(&c.flush(t0 + 5000 * MS)),
            vec![(MemberEventType::Join, names(&["foo"]))]
        );
        assert_eq!(c.deadline(), Some(t0 + 6000 * MS));
        assert_eq!(
            summary(&c.flush(t0 + 6000 * MS)),
            vec![(MemberEventType::Leave, names(&["foo"]))]
        );
        assert_eq!(c.deadline(), None);
    }

    // An overdue window whose events are all suppressed leaves nothing ready and no stale
    // deadline behind.
    #[test]
    fn overdue_window_with_only_suppressed_events_leaves_no_deadline() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(3000 * MS, 1000 * MS);
        c.push(t0, MemberEventType::Join, vec![member("foo")]);
        assert_eq!(c.flush(t0 + 1000 * MS).len(), 1);
        c.push(t0 + 2000 * MS, MemberEventType::Join, vec![member("foo")]);
        c.push(t0 + 9000 * MS, MemberEventType::Join, vec![member("bar")]);
        assert_eq!(c.deadline(), Some(t0 + 10_000 * MS));
    }

    #[test]
    fn zero_periods_flush_at_the_push_time() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(Duration::ZERO, Duration::ZERO);
        c.push(t0, MemberEventType::Join, vec![member("a")]);
        assert_eq!(c.deadline(), Some(t0));
        assert_eq!(c.flush(t0).len(), 1);
    }

    #[test]
    fn unrepresentable_periods_never_end_but_drain_delivers() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(Duration::MAX, 10 * MS);
        c.push(t0, MemberEventType::Join, vec![member("a")]);
        assert_eq!(c.deadline(), Some(t0 + 10 * MS));
        assert_eq!(c.flush(t0 + 10 * MS).len(), 1);

        let mut c = MemberCoalescer::new(Duration::MAX, Duration::MAX);
        c.push(t0, MemberEventType::Join, vec![member("a")]);
        assert_eq!(c.deadline(), None);
        assert_eq!(c.flush(t0 + 60_000 * MS), Vec::new());
        assert_eq!(
            summary(&c.drain()),
            vec![(MemberEventType::Join, names(&["a"]))]
        );
    }

    #[test]
    fn stale_time_does_not_shorten_the_window() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(3000 * MS, 1000 * MS);
        c.push(t0 + 100 * MS, MemberEventType::Join, vec![member("a")]);
        c.push(t0, MemberEventType::Join, vec![member("b")]);
        assert_eq!(c.deadline(), Some(t0 + 1100 * MS));
    }

    #[test]
    fn drain_delivers_before_the_deadline_and_resets() {
        let t0 = Instant::now();
        let mut c = MemberCoalescer::new(3000 * MS, 1000 * MS);
        c.push(t0, MemberEventType::Join, vec![member("a")]);
        c.push(t0 + 5000 * MS, MemberEventType::Failed, vec![member("a")]);
        assert_eq!(
            summary(&c.drain()),
            vec![
                (MemberEventType::Join, names(&["a"])),
                (MemberEventType::Failed, names(&["a"])),
            ]
        );
        assert_eq!(c.deadline(), None);
        assert_eq!(c.drain(), Vec::new());
    }

    fn user(ltime: u64, name: &str, payload: &str) -> UserEvent {
        UserEvent {
            ltime,
            name: name.to_owned(),
            payload: payload.as_bytes().to_vec(),
            coalesce: true,
        }
    }

    fn keys(events: &[UserEvent]) -> Vec<(String, u64, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.ltime,
                    String::from_utf8_lossy(&e.payload).into_owned(),
                )
            })
            .collect()
    }

    fn key(name: &str, ltime: u64, payload: &str) -> (String, u64, String) {
        (name.to_owned(), ltime, payload.to_owned())
    }

    // Port of TestUserEventCoalesce_Basic.
    #[test]
    fn user_highest_ltime_wins_and_ties_are_kept() {
        let t0 = Instant::now();
        let mut c = UserCoalescer::new(5 * MS, 5 * MS);
        for event in [
            user(1, "foo", ""),
            user(2, "foo", ""),
            user(2, "bar", "test1"),
            user(2, "bar", "test2"),
        ] {
            assert_eq!(c.push(t0, event), None);
        }
        assert_eq!(
            keys(&c.flush(t0 + 5 * MS)),
            vec![
                key("bar", 2, "test1"),
                key("bar", 2, "test2"),
                key("foo", 2, ""),
            ]
        );
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn user_older_ltime_arriving_later_is_dropped() {
        let t0 = Instant::now();
        let mut c = UserCoalescer::new(5 * MS, 5 * MS);
        assert_eq!(c.push(t0, user(7, "deploy", "new")), None);
        assert_eq!(c.push(t0 + MS, user(3, "deploy", "old")), None);
        // The dropped event still counted as activity for the quiescent period.
        assert_eq!(c.deadline(), Some(t0 + 5 * MS));
        assert_eq!(keys(&c.flush(t0 + 5 * MS)), vec![key("deploy", 7, "new")]);
    }

    #[test]
    fn user_newer_ltime_replaces_all_ties() {
        let t0 = Instant::now();
        let mut c = UserCoalescer::new(5 * MS, 5 * MS);
        assert_eq!(c.push(t0, user(4, "deploy", "a")), None);
        assert_eq!(c.push(t0, user(4, "deploy", "b")), None);
        assert_eq!(c.push(t0, user(5, "deploy", "c")), None);
        assert_eq!(keys(&c.flush(t0 + 5 * MS)), vec![key("deploy", 5, "c")]);
    }

    // Port of TestUserEventCoalesce_passThrough and TestCoalescer_passThrough.
    #[test]
    fn user_non_coalescable_passes_through() {
        let t0 = Instant::now();
        let mut c = UserCoalescer::new(Duration::from_secs(1), Duration::from_secs(1));
        let event = UserEvent {
            coalesce: false,
            ..user(1, "test", "foo")
        };
        assert_eq!(c.push(t0, event.clone()), Some(event));
        assert_eq!(c.deadline(), None);
        assert_eq!(c.drain(), Vec::new());
    }

    // Windows are independent: a lower LTime in a later window is delivered (deduplication is
    // the event buffer's job, not the coalescer's).
    #[test]
    fn user_windows_are_independent() {
        let t0 = Instant::now();
        let mut c = UserCoalescer::new(5 * MS, 5 * MS);
        assert_eq!(c.push(t0, user(9, "deploy", "x")), None);
        assert_eq!(c.flush(t0 + 5 * MS).len(), 1);
        assert_eq!(c.push(t0 + 10 * MS, user(2, "deploy", "y")), None);
        assert_eq!(keys(&c.flush(t0 + 15 * MS)), vec![key("deploy", 2, "y")]);
    }

    #[test]
    fn user_timing_matches_member_timing() {
        let t0 = Instant::now();
        let mut c = UserCoalescer::new(3000 * MS, 1000 * MS);
        assert_eq!(c.push(t0, user(1, "a", "")), None);
        assert_eq!(c.push(t0 + 900 * MS, user(1, "b", "")), None);
        assert_eq!(c.deadline(), Some(t0 + 1900 * MS));
        assert_eq!(c.flush(t0 + 1899 * MS), Vec::new());
        // A push after the deadline, before any flush, begins the next window.
        assert_eq!(c.push(t0 + 2500 * MS, user(2, "a", "")), None);
        assert_eq!(c.deadline(), Some(t0 + 1900 * MS));
        assert_eq!(
            keys(&c.flush(t0 + 2500 * MS)),
            vec![key("a", 1, ""), key("b", 1, "")]
        );
        assert_eq!(keys(&c.flush(t0 + 3500 * MS)), vec![key("a", 2, "")]);
    }
}
