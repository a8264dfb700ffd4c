//! What serf keeps beside memberlist, and how members move through it (the `Serf` fields and the
//! member handling of HashiCorp's serf.go): Lamport-ordered join and leave intents, member
//! statuses (alive, leaving, left, failed), the reaper and reconnect targets, the queue depth
//! check, user events, snapshot records.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::Rng;

use super::buffers::{Admission, EventBuffer, QueryBuffer};
use super::coalesce::{MemberCoalescer, UserCoalescer};
use super::event::{Completion, Event, MemberEventType, UserEvent};
use super::internal::KeyOp;
use super::lamport::LamportClock;
use super::member::{Member, MemberStatus, Tags};
use super::name_table::{NameTable, Named};
use super::query::{Collector, Pending};
use super::snapshot::{ClockRecorder, Record, CLOCK_UPDATE_INTERVAL};
use super::stats::{Counters, QueueDepths};
use super::vivaldi::{LatencyFilter, VivaldiClient};
use crate::log;
use crate::log::Log;
use crate::memberlist::broadcast::{Broadcast, BroadcastQueue};
use crate::memberlist::Node;
use crate::telemetry::{NamedCounter, Samples};
use crate::wire::msgpack::{Dialect, GoString};
use crate::wire::serf::{self as wire, decode_tags, Message};

/// A failed member back within this time counts as a flap (Go `FlapTimeout`).
pub const FLAP_TIMEOUT: Duration = Duration::from_secs(60);

/// The node's own lifecycle (`SerfState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerfStatus {
    Alive,
    Leaving,
    Left,
    Shutdown,
}

pub(super) struct MemberState {
    pub(super) member: Member,
    /// Lamport time of the last intent applied to this member.
    pub(super) status_ltime: u64,
    /// When it failed or left (for the reaper).
    pub(super) leave_time: Option<Instant>,
    /// Its coordinate as of the last time we probed it (Go's `coordCache`).
    pub(super) coordinate: Option<Box<wire::Coordinate>>,
    /// Our last round-trip times to it, for the Vivaldi client.
    pub(super) rtts: LatencyFilter,
}

/// Queue depth from which each queue check logs a warning (Go's `QueueDepthWarning`).
pub(super) const QUEUE_DEPTH_WARNING: usize = 128;

impl Named for MemberState {
    fn name(&self) -> &str {
        &self.member.name
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum IntentKind {
    Join,
    Leave,
}

/// An intent about a member memberlist has not told us of yet.
pub(super) struct Intent {
    pub(super) kind: IntentKind,
    pub(super) ltime: u64,
    at: Instant,
}

/// Where a graceful leave is.
pub(super) enum LeavePhase {
    /// Waiting for our leave intent to be gossiped.
    Intent { notify: u64, until: Instant },
    /// Waiting for memberlist's dead-self broadcast.
    Memberlist { notify: Option<u64>, until: Instant },
    /// Answering probes a little longer so the leave spreads.
    Propagating { until: Instant },
}

/// Everything serf keeps besides memberlist; memberlist calls into it as its delegate.
pub(super) struct State {
    pub(super) name: String,
    pub(super) protocol_version: u8,
    pub(super) tags: Tags,
    pub(super) broadcast_timeout: Duration,
    pub(super) max_queue_depth: usize,
    pub(super) min_queue_depth: usize,
    pub(super) leave_propagate_delay: Duration,
    pub(super) reap_interval: Duration,
    pub(super) reconnect_interval: Duration,
    pub(super) reconnect_timeout: Duration,
    pub(super) tombstone_timeout: Duration,
    pub(super) recent_intent_timeout: Duration,
    pub(super) status: SerfStatus,
    pub(super) clock: LamportClock,
    pub(super) event_clock: LamportClock,
    pub(super) query_clock: LamportClock,
    pub(super) members: NameTable<MemberState>,
    /// Names of the members failed or left (Go's `failedMembers` and `leftMembers`): reaping
    /// and reconnecting look only at these, not at every member; ordered, so a seeded run
    /// picks the same reconnect target every time.
    pub(super) departed: BTreeSet<String>,
    pub(super) recent_intents: HashMap<String, Intent>,
    pub(super) intents: BroadcastQueue,
    pub(super) next_notify: u64,
    /// Notify ids of intent broadcasts that went out completely, not yet looked at.
    pub(super) finished_notifies: Vec<u64>,
    pub(super) events: VecDeque<Event>,
    pub(super) completions: VecDeque<Completion>,
    /// Members to erase once a leaving member had time to go (force-leave with prune).
    pub(super) pending_prunes: Vec<(Instant, String)>,
    /// memberlist join ids started by `Serf::join`; reconnects are not listed.
    pub(super) user_joins: HashSet<u64>,
    pub(super) next_reap: Instant,
    pub(super) next_reconnect: Instant,
    pub(super) leave: Option<LeavePhase>,
    pub(super) rng: SmallRng,
    /// Where responses to our queries come back to.
    pub(super) advertise: SocketAddr,
    pub(super) gossip_interval: Duration,
    pub(super) user_event_size_limit: usize,
    pub(super) query_size_limit: usize,
    pub(super) query_response_size_limit: usize,
    pub(super) keyring_file: Option<std::path::PathBuf>,
    pub(super) conflict_resolution: bool,
    /// A `_serf_conflict` vote about our name is under way.
    pub(super) resolving_conflict: bool,
    pub(super) events_seen: EventBuffer,
    pub(super) queries_seen: QueryBuffer,
    /// Events and queries older than these are not delivered (restored from a snapshot, or the
    /// event time of the cluster at a join that ignores old events).
    pub(super) event_min_time: u64,
    pub(super) query_min_time: u64,
    /// The pending join ignores old user events: raise `event_min_time` at its push/pull.
    pub(super) ignore_old_events: bool,
    pub(super) event_broadcasts: BroadcastQueue,
    pub(super) query_broadcasts: BroadcastQueue,
    /// Our queries in flight, by Lamport time.
    pub(super) collectors: HashMap<u64, Collector>,
    /// Queries we received and may still answer, by (Lamport time, id).
    pub(super) pending: HashMap<(u64, u32), Pending>,
    /// Serf messages to send straight to an address, once memberlist is free to send them.
    pub(super) outbox: Vec<(SocketAddr, Vec<u8>)>,
    /// Work that needs memberlist, done once memberlist has returned control.
    pub(super) actions: Vec<Action>,
    /// Member and user event coalescing, when configured.
    pub(super) member_coalescer: Option<MemberCoalescer>,
    pub(super) user_coalescer: Option<UserCoalescer<UserEvent>>,
    /// Our Vivaldi coordinate (the members' are in their [`MemberState`]).
    pub(super) coordinates: Option<VivaldiClient>,
    /// Snapshot records for the runtime to append, when a snapshot is configured.
    pub(super) snapshot: Option<SnapshotLog>,
    /// Members from the snapshot to rejoin, retried until one answers.
    pub(super) rejoin: Rejoin,
    pub(super) counters: Counters,
    pub(super) samples: Samples,
    /// HashiCorp's `serf:` log lines (see [`crate::log`]).
    pub(super) log: Log,
    pub(super) next_queue_check: Instant,
}

/// What the snapshot file should record, decided here and written by the runtime.
pub(super) struct SnapshotLog {
    pub(super) clocks: ClockRecorder,
    pub(super) records: VecDeque<Record>,
    pub(super) next_clock_check: Instant,
}

/// Rejoining the members a snapshot remembered: all at once, again every `RETRY` until one
/// answers (HashiCorp tries each once).
#[derive(Default)]
pub(super) struct Rejoin {
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) in_flight: Option<u64>,
    pub(super) next_try: Option<Instant>,
    /// The last attempt reached nobody: schedule another.
    pub(super) retry_after_failure: bool,
}

impl Rejoin {
    pub(super) const RETRY: Duration = Duration::from_secs(10);
}

/// Work the delegate cannot do while memberlist is calling it.
pub(super) enum Action {
    /// Answer a key query: it changes memberlist's keyring.
    KeyQuery {
        op: KeyOp,
        payload: Vec<u8>,
        ltime: u64,
        id: u32,
    },
    /// Another node claims our name: hold a vote.
    ResolveConflict,
}

impl State {
    /// Go's `checkQueueDepth`: a queue over the limit loses its oldest broadcasts, and a deep
    /// one is logged from [`QUEUE_DEPTH_WARNING`] on.
    pub(super) fn prune_queues(&mut self) {
        let limit = if self.min_queue_depth > 0 {
            self.min_queue_depth.max(2 * self.members.len())
        } else {
            self.max_queue_depth
        };
        for (name, queue) in [
            ("Intent", &mut self.intents),
            ("Event", &mut self.event_broadcasts),
            ("Query", &mut self.query_broadcasts),
        ] {
            let before = queue.len();
            if before >= QUEUE_DEPTH_WARNING {
                log!(self.log, Warn, "serf: {name} queue depth: {before}");
            }
            if before > limit {
                log!(
                    self.log,
                    Warn,
                    "serf: {name} queue depth ({before}) exceeds limit ({limit}), dropping messages!"
                );
            }
            queue.prune(limit);
            self.counters.broadcasts_pruned += (before - queue.len()) as u64;
        }
    }

    pub(super) fn queue_depths(&self) -> QueueDepths {
        QueueDepths {
            intent: self.intents.len(),
            event: self.event_broadcasts.len(),
            query: self.query_broadcasts.len(),
        }
    }

    fn new_notify(&mut self) -> u64 {
        self.next_notify += 1;
        self.next_notify
    }

    pub(super) fn broadcast_intent(&mut self, msg: Message) -> u64 {
        let notify = self.new_notify();
        self.intents.queue(Broadcast {
            key: None,
            message: msg.encode(Dialect::GOSSIP),
            notify: Some(notify),
        });
        notify
    }

    pub(super) fn collect_finished(&mut self) {
        let finished = self.intents.take_finished();
        self.finished_notifies.extend(finished);
    }

    pub(super) fn finished(&mut self, notify: u64) -> bool {
        let before = self.finished_notifies.len();
        self.finished_notifies.retain(|n| *n != notify);
        self.finished_notifies.len() != before
    }

    pub(super) fn member_from_node(&self, node: &Node, status: MemberStatus) -> Member {
        Member {
            name: node.name.to_string_lossy(),
            addr: node.ip().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: node.port,
            tags: decode_tags(&node.meta)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.to_string_lossy(), v.to_string_lossy()))
                .collect(),
            status,
            protocol: [node.vsn[0], node.vsn[1], node.vsn[2]],
            delegate: [node.vsn[3], node.vsn[4], node.vsn[5]],
        }
    }

    pub(super) fn emit(&mut self, now: Instant, kind: MemberEventType, member: Member) {
        let (name, addr) = (
            member.name.clone(),
            SocketAddr::new(member.addr, member.port),
        );
        self.record(|_| match kind {
            MemberEventType::Join => Some(Record::Alive { name, addr }),
            MemberEventType::Leave | MemberEventType::Failed => Some(Record::NotAlive { name }),
            MemberEventType::Update | MemberEventType::Reap => None,
        });
        let time = self.clock.time();
        self.record(|c| c.member_clock(time));
        if let Some(c) = &mut self.member_coalescer {
            c.push(now, kind, vec![member]);
            return;
        }
        self.events.push_back(Event::Member {
            kind,
            members: vec![member],
        });
    }

    /// The common start of both intents: witness the time, park an intent about an unknown
    /// member, ignore a stale one. `Continue(name)` when the intent is news for a known member;
    /// `Break(rebroadcast)` otherwise.
    fn receive_intent(
        &mut self,
        now: Instant,
        node: &GoString,
        kind: IntentKind,
        ltime: u64,
    ) -> ControlFlow<bool, String> {
        self.clock.witness(ltime);
        let name = node.to_string_lossy();
        match self.members.get(&name) {
            None => ControlFlow::Break(self.upsert_intent(now, name, kind, ltime)),
            Some(m) if ltime <= m.status_ltime => ControlFlow::Break(false),
            Some(_) => ControlFlow::Continue(name),
        }
    }

    /// A join intent (Go `handleNodeJoinIntent`); true when it is news worth rebroadcasting.
    pub(super) fn handle_join_intent(&mut self, now: Instant, msg: &wire::Join) -> bool {
        let name = match self.receive_intent(now, &msg.node, IntentKind::Join, msg.ltime) {
            ControlFlow::Continue(name) => name,
            ControlFlow::Break(rebroadcast) => return rebroadcast,
        };
        let Some(m) = self.members.get_mut(&name) else {
            return false;
        };
        m.status_ltime = msg.ltime;
        if m.member.status == MemberStatus::Leaving {
            m.member.status = MemberStatus::Alive;
        }
        true
    }

    /// A leave intent (Go `handleNodeLeaveIntent`); true when it is news worth rebroadcasting.
    pub(super) fn handle_leave_intent(&mut self, now: Instant, msg: &wire::Leave) -> bool {
        let name = match self.receive_intent(now, &msg.node, IntentKind::Leave, msg.ltime) {
            ControlFlow::Continue(name) => name,
            ControlFlow::Break(rebroadcast) => return rebroadcast,
        };
        if name == self.name && self.status == SerfStatus::Alive {
            // Someone says we leave, but we do not: refute with a newer join intent.
            let ltime = self.clock.time();
            let join = wire::Join {
                ltime,
                node: self.name.as_str().into(),
            };
            self.clock.witness(ltime);
            self.broadcast_intent(Message::Join(join));
            return false;
        }
        let Some(m) = self.members.get_mut(&name) else {
            return false;
        };
        m.status_ltime = msg.ltime;
        match m.member.status {
            MemberStatus::Alive => m.member.status = MemberStatus::Leaving,
            MemberStatus::Failed => {
                m.member.status = MemberStatus::Left;
                m.leave_time = Some(now);
                let member = m.member.clone();
                log!(
                    self.log,
                    Info,
                    "serf: EventMemberLeave (forced): {} {}",
                    member.name,
                    member.addr
                );
                self.emit(now, MemberEventType::Leave, member);
            }
            MemberStatus::Leaving | MemberStatus::Left => {}
            MemberStatus::None => return false,
        }
        if msg.prune {
            self.prune(now, &name);
        }
        true
    }

    /// Erases a member everywhere (force-leave with prune); a leaving one first gets time to go.
    fn prune(&mut self, now: Instant, name: &str) {
        match self.members.get(name).map(|m| m.member.status) {
            Some(MemberStatus::Leaving) => {
                let at = now + self.broadcast_timeout + self.leave_propagate_delay;
                self.pending_prunes.push((at, name.to_string()));
            }
            Some(_) => {
                if let Some(m) = self.members.get(name) {
                    let (name, addr) = (&m.member.name, m.member.addr);
                    log!(
                        self.log,
                        Info,
                        "serf: EventMemberReap (forced): {name} {addr}"
                    );
                }
                self.erase(now, name)
            }
            None => {}
        }
    }

    pub(super) fn erase(&mut self, now: Instant, name: &str) {
        self.departed.remove(name);
        if let Some(m) = self.members.remove(name) {
            self.emit(now, MemberEventType::Reap, m.member);
        }
    }

    fn upsert_intent(&mut self, now: Instant, name: String, kind: IntentKind, ltime: u64) -> bool {
        match self.recent_intents.get_mut(&name) {
            Some(existing) if ltime <= existing.ltime => false,
            Some(existing) => {
                *existing = Intent {
                    kind,
                    ltime,
                    at: now,
                };
                true
            }
            None => {
                self.recent_intents.insert(
                    name,
                    Intent {
                        kind,
                        ltime,
                        at: now,
                    },
                );
                true
            }
        }
    }

    pub(super) fn reap(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .departed
            .iter()
            .filter(|name| {
                let Some(m) = self.members.get(name) else {
                    return false;
                };
                let timeout = match m.member.status {
                    MemberStatus::Failed => self.reconnect_timeout,
                    MemberStatus::Left => self.tombstone_timeout,
                    _ => return false,
                };
                m.leave_time
                    .is_some_and(|t| now.saturating_duration_since(t) > timeout)
            })
            .cloned()
            .collect();
        for name in expired {
            log!(self.log, Info, "serf: EventMemberReap: {name}");
            self.erase(now, &name);
        }
        let timeout = self.recent_intent_timeout;
        self.recent_intents
            .retain(|_, i| now.saturating_duration_since(i.at) <= timeout);
    }

    /// With probability failed/alive, one random failed member to try joining again.
    pub(super) fn reconnect_target(&mut self) -> Option<SocketAddr> {
        let departed = self
            .departed
            .iter()
            .filter_map(|name| self.members.get(name));
        let failed: Vec<(&str, SocketAddr)> = departed
            .filter(|m| m.member.status == MemberStatus::Failed)
            .map(|m| {
                (
                    m.member.name.as_str(),
                    SocketAddr::new(m.member.addr, m.member.port),
                )
            })
            .collect();
        if failed.is_empty() {
            return None;
        }
        let alive = (self.members.len() - self.departed.len()).max(1);
        let probability = failed.len() as f64 / alive as f64;
        if self.rng.random::<f64>() > probability {
            log!(
                self.log,
                Debug,
                "serf: forgoing reconnect for random throttling"
            );
            return None;
        }
        let (name, addr) = failed[self.rng.random_range(0..failed.len())];
        log!(
            self.log,
            Info,
            "serf: attempting reconnect to {name} {addr}"
        );
        Some(addr)
    }

    pub(super) fn alive_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.member.status == MemberStatus::Alive)
            .count()
    }

    /// A user event (Go `handleUserEvent`); true when it is new and worth rebroadcasting.
    /// `gossiped`: it came alone, not in a push/pull's copy of the ring, whose oldest entries
    /// are too old here as a matter of course; only then is a too-old one counted as lost.
    pub(super) fn handle_user_event(
        &mut self,
        now: Instant,
        msg: &wire::UserEventMessage,
        gossiped: bool,
    ) -> bool {
        self.event_clock.witness(msg.ltime);
        if msg.ltime < self.event_min_time {
            return false;
        }
        let payload = msg.payload.as_deref().unwrap_or_default();
        match self
            .events_seen
            .accept(self.event_clock.time(), msg.ltime, &msg.name, payload)
        {
            Admission::New => {}
            Admission::Duplicate => return false,
            Admission::TooOld => {
                self.counters.events_too_old += u64::from(gossiped);
                return false;
            }
        }
        self.record(|c| c.user_event(msg.ltime));
        self.counters.user_events += 1;
        self.samples
            .named(NamedCounter::UserEvent, &msg.name.to_string_lossy());
        let event = UserEvent {
            ltime: msg.ltime,
            name: msg.name.to_string_lossy(),
            payload: payload.to_vec(),
            coalesce: msg.cc,
        };
        let deliver = match &mut self.user_coalescer {
            Some(c) => c.push(now, event),
            None => Some(event),
        };
        self.events.extend(deliver.map(Event::User));
        true
    }

    /// Adds a snapshot record, if a snapshot is kept and `make` produces one.
    pub(super) fn record(&mut self, make: impl FnOnce(&mut ClockRecorder) -> Option<Record>) {
        if let Some(log) = &mut self.snapshot {
            if let Some(r) = make(&mut log.clocks) {
                log.records.push_back(r);
            }
        }
    }

    /// Intents move the member clock without member events: record it now and then.
    pub(super) fn record_clock_periodically(&mut self, now: Instant) {
        let time = self.clock.time();
        if let Some(log) = &mut self.snapshot {
            if now >= log.next_clock_check {
                log.next_clock_check = now + CLOCK_UPDATE_INTERVAL;
                log.records.extend(log.clocks.member_clock(time));
            }
        }
    }

    /// Delivers coalesced events whose window closed.
    pub(super) fn flush_coalescers(&mut self, now: Instant) {
        if let Some(c) = &mut self.member_coalescer {
            self.events.extend(c.flush(now));
        }
        if let Some(c) = &mut self.user_coalescer {
            self.events
                .extend(c.flush(now).into_iter().map(Event::User));
        }
    }
}
