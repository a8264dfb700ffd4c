//! Serf's membership layer on top of memberlist, without I/O: Lamport-ordered join and leave
//! intents, member statuses (alive, leaving, left, failed), tags in node meta, serf's push/pull
//! state, the reaper and reconnects, graceful and forced leave.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;

use super::buffers::{Admission, EventBuffer, QueryBuffer};
use super::coalesce::{MemberCoalescer, UserCoalescer};
use super::config::{Config, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, USER_EVENT_SIZE_CEILING};
use super::event::{Completion, Event, MemberEventType, QueryEvent, UserEvent};
use super::internal::{self, KeyOp, CONFLICT_QUERY, INTERNAL_PREFIX};
use super::lamport::LamportClock;
use super::member::Tags;
use super::member::{Member, MemberStatus};
use super::name_table::{NameTable, Named};
use super::query::{self, Collector, KeyAggregate, Pending, Purpose, QueryParams, QueryUpdate};
use super::snapshot::{ClockRecorder, Record, CLOCK_UPDATE_INTERVAL};
use super::vivaldi::{self, LatencyFilter, VivaldiClient, VivaldiConfig};
use crate::memberlist::broadcast::{Broadcast, BroadcastQueue, Recipient};
use crate::memberlist::machine::{self, Machine, StreamStatus};
use crate::memberlist::{
    ip_from_bytes, ip_to_bytes, Delegate, Memberlist, Node, OutboundStream, Seed, Transmit,
    META_MAX_SIZE,
};
use crate::telemetry::{Histogram, NamedCounter, Reading, Samples, Total};
use crate::wire::memberlist::NodeState;
use crate::wire::msgpack::{Bytes, Dialect, GoString};
use crate::wire::serf::{self as wire, decode_tags, encode_role_meta, encode_tags, Message};

/// Why a serf command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SerfError {
    #[error("Encoded length of tags exceeds limit of {limit} bytes")]
    TagsTooLarge { len: usize, limit: usize },
    #[error("Serf can't Join after Leave or Shutdown")]
    NotAlive,
    #[error("Leave already in progress")]
    LeaveInProgress,
    #[error("no member named {0:?}")]
    UnknownMember(String),
    #[error("protocol version {0} outside the supported range [{PROTOCOL_VERSION_MIN}, {PROTOCOL_VERSION_MAX}]")]
    ProtocolVersion(u8),
    #[error("user event exceeds {0}")]
    UserEventTooLarge(String),
    #[error("query exceeds limit of {limit} bytes")]
    QueryTooLarge { limit: usize },
    #[error("Feature not supported")]
    FeatureNotSupported,
    #[error("failed to respond to key query: {0}")]
    Respond(&'static str),
    #[error("No pending queries matching ID")]
    NoPendingQuery,
    #[error("configuration: {0}")]
    Config(String),
}

/// What the serf core counted since it started. Most fields mirror one of HashiCorp's `serf.*`
/// metrics (named in each field's doc; [`Counters::totals`] pairs the counters), which the
/// runtime exports from here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Members seen joining or coming back, this node included (`serf.member.join`).
    pub member_joins: u64,
    /// Failed members that came back within [`FLAP_TIMEOUT`] (`serf.member.flap`).
    pub member_flaps: u64,
    /// Tag or address changes (`serf.member.update`).
    pub member_updates: u64,
    /// Members that failed (`serf.member.failed`).
    pub member_failures: u64,
    /// Members that left gracefully (`serf.member.left`).
    pub member_leaves: u64,
    /// New user events, sent or received (`serf.events`, `serf.events.<name>`).
    pub user_events: u64,
    /// New queries, sent or received, internal ones included (`serf.queries`,
    /// `serf.queries.<name>`).
    pub queries: u64,
    /// Acks and responses to our queries (`serf.query_acks`, `serf.query_responses`).
    pub query_acks: u64,
    pub query_responses: u64,
    /// Repeated acks and responses, ignored (`serf.query_duplicate_acks`,
    /// `serf.query_duplicate_responses`).
    pub query_duplicate_acks: u64,
    pub query_duplicate_responses: u64,
    /// Serf messages gossiped and received, and their bytes (`serf.msgs.sent`,
    /// `serf.msgs.received`, samples of the size).
    pub msgs_sent: u64,
    pub msg_bytes_sent: u64,
    pub msgs_received: u64,
    pub msg_bytes_received: u64,
    /// Coordinates from pings that the Vivaldi client refused (`serf.coordinate.rejected`).
    pub coordinate_rejections: u64,
    /// Broadcasts dropped by the periodic queue check because a queue exceeded its limit
    /// (Go logs "queue depth exceeds limit, dropping messages").
    pub broadcasts_pruned: u64,
    /// Pings answered with a zero round-trip time (`serf.coordinate.zero-rtt`).
    pub coordinate_zero_rtts: u64,
    /// Gossiped user events and queries that arrived older than the 512-entry rings remember,
    /// so were dropped unseen (Go logs "received old event" and counts nothing): late gossip
    /// lost at a high event rate.
    pub events_too_old: u64,
    pub queries_too_old: u64,
}

impl Counters {
    /// The fields HashiCorp counts as `serf.*` counters, under Go's names.
    pub fn totals(&self) -> [Total; 13] {
        let total = |name, value| Total { name, value };
        [
            total("serf.member.join", self.member_joins),
            total("serf.member.flap", self.member_flaps),
            total("serf.member.update", self.member_updates),
            total("serf.member.failed", self.member_failures),
            total("serf.member.left", self.member_leaves),
            total("serf.events", self.user_events),
            total("serf.queries", self.queries),
            total("serf.query_acks", self.query_acks),
            total("serf.query_responses", self.query_responses),
            total("serf.query_duplicate_acks", self.query_duplicate_acks),
            total(
                "serf.query_duplicate_responses",
                self.query_duplicate_responses,
            ),
            total("serf.coordinate.rejected", self.coordinate_rejections),
            total("serf.coordinate.zero-rtt", self.coordinate_zero_rtts),
        ]
    }
}

/// Broadcasts waiting to be gossiped, per queue (HashiCorp's `intent_queue`, `event_queue` and
/// `query_queue` stats; sampled as `serf.queue.Intent`, `.Event`, `.Query`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    pub intent: usize,
    pub event: usize,
    pub query: usize,
}

/// A failed member back within this time counts as a flap (Go `FlapTimeout`).
pub const FLAP_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the broadcast queue depths are sampled (Go `QueueCheckInterval`).
pub const QUEUE_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// The node's own lifecycle (`SerfState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerfStatus {
    Alive,
    Leaving,
    Left,
    Shutdown,
}

struct MemberState {
    member: Member,
    /// Lamport time of the last intent applied to this member.
    status_ltime: u64,
    /// When it failed or left (for the reaper).
    leave_time: Option<Instant>,
    /// Its coordinate as of the last time we probed it (Go's `coordCache`).
    coordinate: Option<Box<wire::Coordinate>>,
    /// Our last round-trip times to it, for the Vivaldi client.
    rtts: LatencyFilter,
}

impl Named for MemberState {
    fn name(&self) -> &str {
        &self.member.name
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum IntentKind {
    Join,
    Leave,
}

/// An intent about a member memberlist has not told us of yet.
struct Intent {
    kind: IntentKind,
    ltime: u64,
    at: Instant,
}

/// Where a graceful leave is.
enum LeavePhase {
    /// Waiting for our leave intent to be gossiped.
    Intent { notify: u64, until: Instant },
    /// Waiting for memberlist's dead-self broadcast.
    Memberlist { notify: Option<u64>, until: Instant },
    /// Answering probes a little longer so the leave spreads.
    Propagating { until: Instant },
}

/// Everything serf keeps besides memberlist; memberlist calls into it as its delegate.
struct State {
    name: String,
    protocol_version: u8,
    tags: Tags,
    broadcast_timeout: Duration,
    max_queue_depth: usize,
    min_queue_depth: usize,
    leave_propagate_delay: Duration,
    reap_interval: Duration,
    reconnect_interval: Duration,
    reconnect_timeout: Duration,
    tombstone_timeout: Duration,
    recent_intent_timeout: Duration,
    status: SerfStatus,
    clock: LamportClock,
    event_clock: LamportClock,
    query_clock: LamportClock,
    members: NameTable<MemberState>,
    /// Names of the members failed or left (Go's `failedMembers` and `leftMembers`): reaping
    /// and reconnecting look only at these, not at every member; ordered, so a seeded run
    /// picks the same reconnect target every time.
    departed: BTreeSet<String>,
    recent_intents: HashMap<String, Intent>,
    intents: BroadcastQueue,
    next_notify: u64,
    /// Notify ids of intent broadcasts that went out completely, not yet looked at.
    finished_notifies: Vec<u64>,
    events: VecDeque<Event>,
    completions: VecDeque<Completion>,
    /// Members to erase once a leaving member had time to go (force-leave with prune).
    pending_prunes: Vec<(Instant, String)>,
    /// memberlist join ids started by `Serf::join`; reconnects are not listed.
    user_joins: HashSet<u64>,
    next_reap: Instant,
    next_reconnect: Instant,
    leave: Option<LeavePhase>,
    rng: SmallRng,
    /// Where responses to our queries come back to.
    advertise: SocketAddr,
    gossip_interval: Duration,
    user_event_size_limit: usize,
    query_size_limit: usize,
    query_response_size_limit: usize,
    keyring_file: Option<std::path::PathBuf>,
    conflict_resolution: bool,
    /// A `_serf_conflict` vote about our name is under way.
    resolving_conflict: bool,
    events_seen: EventBuffer,
    queries_seen: QueryBuffer,
    /// Events and queries older than these are not delivered (restored from a snapshot, or the
    /// event time of the cluster at a join that ignores old events).
    event_min_time: u64,
    query_min_time: u64,
    /// The pending join ignores old user events: raise `event_min_time` at its push/pull.
    ignore_old_events: bool,
    event_broadcasts: BroadcastQueue,
    query_broadcasts: BroadcastQueue,
    /// Our queries in flight, by Lamport time.
    collectors: HashMap<u64, Collector>,
    /// Queries we received and may still answer, by (Lamport time, id).
    pending: HashMap<(u64, u32), Pending>,
    /// Serf messages to send straight to an address, once memberlist is free to send them.
    outbox: Vec<(SocketAddr, Vec<u8>)>,
    /// Work that needs memberlist, done once memberlist has returned control.
    actions: Vec<Action>,
    /// Member and user event coalescing, when configured.
    member_coalescer: Option<MemberCoalescer>,
    user_coalescer: Option<UserCoalescer<UserEvent>>,
    /// Our Vivaldi coordinate (the members' are in their [`MemberState`]).
    coordinates: Option<VivaldiClient>,
    /// Snapshot records for the runtime to append, when a snapshot is configured.
    snapshot: Option<SnapshotLog>,
    /// Members from the snapshot to rejoin, retried until one answers.
    rejoin: Rejoin,
    counters: Counters,
    samples: Samples,
    next_queue_check: Instant,
}

/// What the snapshot file should record, decided here and written by the runtime.
struct SnapshotLog {
    clocks: ClockRecorder,
    records: VecDeque<Record>,
    next_clock_check: Instant,
}

/// Rejoining the members a snapshot remembered: all at once, again every `RETRY` until one
/// answers (HashiCorp tries each once).
#[derive(Default)]
struct Rejoin {
    addrs: Vec<SocketAddr>,
    in_flight: Option<u64>,
    next_try: Option<Instant>,
    /// The last attempt reached nobody: schedule another.
    retry_after_failure: bool,
}

impl Rejoin {
    const RETRY: Duration = Duration::from_secs(10);
}

/// Work the delegate cannot do while memberlist is calling it.
enum Action {
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

/// A serf node's protocol core.
pub struct Serf {
    memberlist: Memberlist,
    state: State,
}

impl Serf {
    pub fn new(mut config: Config, now: Instant, seed: impl Into<Seed>) -> Result<Serf, SerfError> {
        if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION_MAX).contains(&config.protocol_version) {
            return Err(SerfError::ProtocolVersion(config.protocol_version));
        }
        if config.user_event_size_limit > USER_EVENT_SIZE_CEILING {
            return Err(SerfError::Config(format!(
                "user event size limit exceeds limit of {USER_EVENT_SIZE_CEILING} bytes"
            )));
        }
        // serf maps every protocol version it speaks to memberlist protocol 2.
        config.memberlist.protocol_version = 2;
        config.memberlist.delegate_protocol = [
            PROTOCOL_VERSION_MIN,
            PROTOCOL_VERSION_MAX,
            config.protocol_version,
        ];
        let meta = encode_meta(&config.tags, config.protocol_version)?;
        let seed = seed.into();
        let mut rng = SmallRng::seed_from_u64(seed.choices);
        let memberlist_seed = Seed {
            choices: rng.random(),
            nonces: seed.nonces,
        };
        let mut clock = LamportClock::default();
        let mut event_clock = LamportClock::default();
        let mut query_clock = LamportClock::default();
        clock.increment();
        event_clock.increment();
        query_clock.increment();
        let mut state = State {
            name: config.memberlist.name.to_string_lossy(),
            protocol_version: config.protocol_version,
            tags: config.tags,
            broadcast_timeout: config.broadcast_timeout,
            max_queue_depth: config.max_queue_depth,
            min_queue_depth: config.min_queue_depth,
            leave_propagate_delay: config.leave_propagate_delay,
            reap_interval: config.reap_interval,
            reconnect_interval: config.reconnect_interval,
            reconnect_timeout: config.reconnect_timeout,
            tombstone_timeout: config.tombstone_timeout,
            recent_intent_timeout: config.recent_intent_timeout,
            status: SerfStatus::Alive,
            clock,
            event_clock,
            query_clock,
            members: NameTable::default(),
            departed: BTreeSet::new(),
            recent_intents: HashMap::new(),
            intents: BroadcastQueue::new(config.memberlist.retransmit_mult),
            next_notify: 0,
            finished_notifies: Vec::new(),
            events: VecDeque::new(),
            completions: VecDeque::new(),
            pending_prunes: Vec::new(),
            user_joins: HashSet::new(),
            next_reap: now + config.reap_interval,
            next_reconnect: now + config.reconnect_interval,
            leave: None,
            rng,
            advertise: config.memberlist.advertise,
            gossip_interval: config.memberlist.gossip_interval,
            user_event_size_limit: config.user_event_size_limit,
            query_size_limit: config.query_size_limit,
            query_response_size_limit: config.query_response_size_limit,
            keyring_file: config.keyring_file.clone(),
            conflict_resolution: config.enable_name_conflict_resolution,
            resolving_conflict: false,
            events_seen: EventBuffer::new(),
            queries_seen: QueryBuffer::new(),
            event_min_time: 0,
            query_min_time: 0,
            ignore_old_events: false,
            event_broadcasts: BroadcastQueue::new(config.memberlist.retransmit_mult),
            query_broadcasts: BroadcastQueue::new(config.memberlist.retransmit_mult),
            collectors: HashMap::new(),
            pending: HashMap::new(),
            outbox: Vec::new(),
            actions: Vec::new(),
            member_coalescer: (!config.coalesce_period.is_zero()
                && !config.quiescent_period.is_zero())
            .then(|| MemberCoalescer::new(config.coalesce_period, config.quiescent_period)),
            user_coalescer: (!config.user_coalesce_period.is_zero()
                && !config.user_quiescent_period.is_zero())
            .then(|| UserCoalescer::new(config.user_coalesce_period, config.user_quiescent_period)),
            coordinates: None,
            snapshot: None,
            rejoin: Rejoin::default(),
            counters: Counters::default(),
            samples: Samples::default(),
            next_queue_check: now + QUEUE_CHECK_INTERVAL,
        };
        if let Some(replay) = &config.snapshot {
            // Restore the clocks, and never deliver again what was seen before the restart.
            state.clock.witness(replay.last_clock);
            state.event_clock.witness(replay.last_event_clock);
            state.query_clock.witness(replay.last_query_clock);
            state.event_min_time = replay.last_event_clock + 1;
            state.query_min_time = replay.last_query_clock + 1;
            state.snapshot = Some(SnapshotLog {
                clocks: ClockRecorder::from_replay(replay),
                records: VecDeque::new(),
                next_clock_check: now + CLOCK_UPDATE_INTERVAL,
            });
            if !replay.left {
                let me = config.memberlist.name.to_string_lossy();
                state.rejoin.addrs = replay
                    .alive
                    .iter()
                    .filter(|(n, _)| *n != me)
                    .map(|(_, a)| *a)
                    .collect();
                state.rejoin.next_try = (!state.rejoin.addrs.is_empty()).then_some(now);
            }
        }
        if !config.disable_coordinates {
            let coordinates_seed = state.rng.random();
            state.coordinates = Some(VivaldiClient::new(
                VivaldiConfig::default(),
                coordinates_seed,
            ));
        }
        let memberlist = Memberlist::new(config.memberlist, meta, now, memberlist_seed, &mut state);
        Ok(Serf { memberlist, state })
    }

    pub fn memberlist(&self) -> &Memberlist {
        &self.memberlist
    }

    /// Drops every queued memberlist broadcast and serf intent (see
    /// [`Memberlist::clear_broadcasts`]). Only for simulators that seed member lists directly.
    pub fn clear_broadcasts(&mut self) {
        self.memberlist.clear_broadcasts();
        self.state.intents.reset();
    }

    /// What serf counted since it started (memberlist's own: `memberlist().stats()`).
    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    /// Broadcasts waiting in each of serf's queues.
    pub fn queue_depths(&self) -> QueueDepths {
        self.state.queue_depths()
    }

    pub fn status(&self) -> SerfStatus {
        self.state.status
    }

    pub fn local_name(&self) -> &str {
        &self.state.name
    }

    /// Every member serf knows, self included, in no particular order.
    pub fn members(&self) -> Vec<Member> {
        self.state
            .members
            .values()
            .map(|m| m.member.clone())
            .collect()
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.state.members.get(name).map(|m| &m.member)
    }

    pub fn local_member(&self) -> Member {
        let me = self.state.members.get(&self.state.name);
        me.expect("we are a member").member.clone()
    }

    pub fn tags(&self) -> &Tags {
        &self.state.tags
    }

    /// The member clock's current time.
    pub fn member_time(&self) -> u64 {
        self.state.clock.time()
    }

    /// The user-event clock's current time.
    pub fn event_time(&self) -> u64 {
        self.state.event_clock.time()
    }

    /// The query clock's current time.
    pub fn query_time(&self) -> u64 {
        self.state.query_clock.time()
    }

    /// The next application event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.state.events.pop_front()
    }

    /// The next record for the snapshot file, if a snapshot is configured.
    pub fn poll_snapshot_record(&mut self) -> Option<Record> {
        self.state.snapshot.as_mut()?.records.pop_front()
    }

    /// The next finished join or leave, if any.
    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.state.completions.pop_front()
    }

    /// Joins through `addrs`: a [`Completion::Join`] with the returned id reports how many
    /// nodes were contacted. `None` when there is no address to try (nothing contacted).
    /// `ignore_old` skips user events from before the join.
    pub fn join(
        &mut self,
        now: Instant,
        addrs: &[SocketAddr],
        ignore_old: bool,
    ) -> Result<Option<u64>, SerfError> {
        if self.state.status != SerfStatus::Alive {
            return Err(SerfError::NotAlive);
        }
        if addrs.is_empty() {
            return Ok(None);
        }
        // With addresses, memberlist completes the join only when its streams finish, so the id
        // is registered before any completion can arrive.
        self.state.ignore_old_events = ignore_old;
        let id = self.memberlist.join(now, addrs, &mut self.state);
        self.state.user_joins.insert(id);
        Ok(Some(id))
    }

    /// Replaces the local tags and announces them.
    pub fn set_tags(&mut self, now: Instant, tags: Tags) -> Result<(), SerfError> {
        let meta = encode_meta(&tags, self.state.protocol_version)?;
        self.state.tags = tags;
        self.memberlist.update_meta(now, meta, &mut self.state);
        Ok(())
    }

    /// Starts a graceful leave; a [`Completion::Leave`] reports its end.
    pub fn leave(&mut self, now: Instant) -> Result<(), SerfError> {
        match self.state.status {
            SerfStatus::Alive => {}
            SerfStatus::Leaving => return Err(SerfError::LeaveInProgress),
            SerfStatus::Left | SerfStatus::Shutdown => {
                self.state
                    .completions
                    .push_back(Completion::Leave { result: Ok(()) });
                return Ok(());
            }
        }
        self.state.status = SerfStatus::Leaving;
        self.state.record(|_| Some(Record::Leave));
        let ltime = self.state.clock.time();
        self.state.clock.increment();
        let msg = wire::Leave {
            ltime,
            node: self.state.name.as_str().into(),
            prune: false,
        };
        self.state.handle_leave_intent(now, &msg);
        let others_alive =
            self.state.members.values().any(|m| {
                m.member.name != self.state.name && m.member.status == MemberStatus::Alive
            });
        if others_alive {
            let notify = self.state.broadcast_intent(Message::Leave(msg));
            self.state.leave = Some(LeavePhase::Intent {
                notify,
                until: now + self.state.broadcast_timeout,
            });
        } else {
            self.start_memberlist_leave(now);
        }
        Ok(())
    }

    /// Removes a failed member: broadcasts a leave intent for it; `prune` erases it everywhere.
    pub fn force_leave(&mut self, now: Instant, node: &str, prune: bool) -> Result<(), SerfError> {
        if !self.state.members.contains_key(node) {
            return Err(SerfError::UnknownMember(node.to_string()));
        }
        let ltime = self.state.clock.time();
        self.state.clock.increment();
        let msg = wire::Leave {
            ltime,
            node: node.into(),
            prune,
        };
        self.state.handle_leave_intent(now, &msg);
        self.state.broadcast_intent(Message::Leave(msg));
        Ok(())
    }

    /// Sends a user event to every member (and delivers it locally). `coalesce` lets receivers
    /// that coalesce keep only the newest event of this name.
    pub fn user_event(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        coalesce: bool,
    ) -> Result<(), SerfError> {
        let limit = self.state.user_event_size_limit;
        if name.len() + payload.len() > limit {
            return Err(SerfError::UserEventTooLarge(format!(
                "configured limit of {limit} bytes before encoding"
            )));
        }
        let msg = wire::UserEventMessage {
            ltime: self.state.event_clock.time(),
            name: name.into(),
            payload: Some(Bytes(payload.to_vec())),
            cc: coalesce,
        };
        let encoded = Message::UserEvent(msg.clone()).encode(Dialect::GOSSIP);
        if encoded.len() > limit {
            return Err(SerfError::UserEventTooLarge(format!(
                "configured limit of {limit} bytes after encoding"
            )));
        }
        self.state.event_clock.increment();
        self.state.handle_user_event(now, &msg, true);
        self.state.event_broadcasts.queue(Broadcast {
            key: None,
            message: encoded,
            notify: None,
        });
        self.after(now);
        Ok(())
    }

    /// Sends a query; its acks and responses arrive as [`Completion::Query`] with the returned
    /// handle, ending with [`QueryUpdate::Done`].
    pub fn query(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
    ) -> Result<u64, SerfError> {
        let handle = self
            .state
            .start_query(now, name, payload, params, Purpose::User)?;
        self.after(now);
        Ok(handle)
    }

    /// Answers a received query (once, before its deadline).
    pub fn respond(
        &mut self,
        now: Instant,
        ltime: u64,
        id: u32,
        payload: &[u8],
    ) -> Result<(), SerfError> {
        let result = self.state.respond(now, ltime, id, payload);
        self.after(now);
        result
    }

    /// Runs a key operation on every member: [`Completion::Keys`] reports the aggregate.
    /// `key` is the raw key (ignored for [`KeyOp::List`]).
    pub fn key_operation(&mut self, now: Instant, op: KeyOp, key: &[u8]) -> Result<u64, SerfError> {
        let key = if op == KeyOp::List { &[][..] } else { key };
        let payload = internal::key_request_payload(key);
        let agg = KeyAggregate {
            num_nodes: self.state.alive_count(),
            ..Default::default()
        };
        let handle = self.state.start_query(
            now,
            op.query_name(),
            &payload,
            &QueryParams::default(),
            Purpose::Keys(agg),
        )?;
        self.after(now);
        Ok(handle)
    }

    /// Does what the delegate had to put off (work needing memberlist) and sends queued
    /// messages. Called after every input.
    fn after(&mut self, now: Instant) {
        while !self.state.actions.is_empty() || !self.state.outbox.is_empty() {
            for action in std::mem::take(&mut self.state.actions) {
                match action {
                    Action::KeyQuery {
                        op,
                        payload,
                        ltime,
                        id,
                    } => {
                        let limit = self.state.query_response_size_limit;
                        let (me, file) = (self.state.name.clone(), self.state.keyring_file.clone());
                        let fits = |p: &[u8]| {
                            query::response_message(ltime, id, &me, false, Some(p.to_vec()))
                                .encode(Dialect::GOSSIP)
                                .len()
                                <= limit
                        };
                        let keyring = self.memberlist.wire_options_mut().keyring.as_mut();
                        let answer = internal::answer_key_query(
                            op,
                            &payload,
                            keyring,
                            file.as_deref(),
                            fits,
                        );
                        let _ = self.state.respond(now, ltime, id, &answer);
                    }
                    Action::ResolveConflict => {
                        let payload = self.state.name.clone().into_bytes();
                        let purpose = Purpose::Conflict {
                            responses: 0,
                            matching: 0,
                        };
                        if self
                            .state
                            .start_query(
                                now,
                                CONFLICT_QUERY,
                                &payload,
                                &QueryParams::default(),
                                purpose,
                            )
                            .is_err()
                        {
                            self.state.resolving_conflict = false;
                        }
                    }
                }
            }
            for (to, msg) in std::mem::take(&mut self.state.outbox) {
                self.memberlist.send_packet(to, &msg);
            }
        }
    }

    /// Stops without leaving: peers will see this node fail. Coalesced events still pending are
    /// delivered first.
    pub fn shutdown(&mut self) {
        self.state.status = SerfStatus::Shutdown;
        let member = self
            .state
            .member_coalescer
            .as_mut()
            .map(|c| c.drain())
            .unwrap_or_default();
        let user = self
            .state
            .user_coalescer
            .as_mut()
            .map(|c| c.drain())
            .unwrap_or_default();
        self.state.events.extend(member);
        self.state.events.extend(user.into_iter().map(Event::User));
    }

    /// This node's network coordinate (`None` with coordinates disabled).
    pub fn coordinate(&self) -> Option<wire::Coordinate> {
        self.state
            .coordinates
            .as_ref()
            .map(|c| c.coordinate().clone())
    }

    /// The last coordinate learned for a member (from probing it directly), or ours.
    pub fn cached_coordinate(&self, name: &str) -> Option<wire::Coordinate> {
        if name == self.state.name {
            return self.coordinate();
        }
        let m = self.state.members.get(name)?;
        m.coordinate.as_deref().cloned()
    }

    /// Times our coordinate was reset after becoming invalid.
    pub fn coordinate_resets(&self) -> u64 {
        self.state.coordinates.as_ref().map_or(0, |c| c.resets())
    }

    fn start_memberlist_leave(&mut self, now: Instant) {
        let notify = self.memberlist.leave(now, &mut self.state);
        self.state.leave = Some(LeavePhase::Memberlist {
            notify,
            until: now + self.state.broadcast_timeout,
        });
    }

    /// Moves a graceful leave through its phases as broadcasts finish or time runs out.
    fn advance_leave(&mut self, now: Instant) {
        loop {
            match self.state.leave {
                Some(LeavePhase::Intent { notify, until }) => {
                    self.state.collect_finished();
                    if self.state.finished(notify) || now >= until {
                        self.start_memberlist_leave(now);
                        continue;
                    }
                }
                Some(LeavePhase::Memberlist { notify, until }) => {
                    let done = notify.is_none_or(|n| self.memberlist.broadcast_finished(n));
                    if done || now >= until {
                        let until = now + self.state.leave_propagate_delay;
                        self.state.leave = Some(LeavePhase::Propagating { until });
                        continue;
                    }
                }
                Some(LeavePhase::Propagating { until }) if now >= until => {
                    self.state.leave = None;
                    self.state.status = SerfStatus::Left;
                    self.state
                        .completions
                        .push_back(Completion::Leave { result: Ok(()) });
                }
                _ => {}
            }
            return;
        }
    }

    fn leave_deadline(&self) -> Option<Instant> {
        match self.state.leave {
            Some(LeavePhase::Intent { until, .. })
            | Some(LeavePhase::Memberlist { until, .. })
            | Some(LeavePhase::Propagating { until }) => Some(until),
            None => None,
        }
    }

    /// Periodic serf work: the reaper, reconnects, pending prunes.
    fn tick(&mut self, now: Instant) {
        if now >= self.state.next_reap {
            self.state.next_reap = now + self.state.reap_interval;
            self.state.reap(now);
        }
        if now >= self.state.next_reconnect {
            self.state.next_reconnect = now + self.state.reconnect_interval;
            if let Some(addr) = self.state.reconnect_target() {
                self.memberlist.join(now, &[addr], &mut self.state);
            }
        }
        let due: Vec<String> = self
            .state
            .pending_prunes
            .iter()
            .filter(|(t, _)| now >= *t)
            .map(|(_, n)| n.clone())
            .collect();
        self.state.pending_prunes.retain(|(t, _)| now < *t);
        for name in due {
            self.state.erase(now, &name);
        }
        if now >= self.state.next_queue_check {
            self.state.next_queue_check = now + QUEUE_CHECK_INTERVAL;
            let q = self.state.queue_depths();
            self.state
                .samples
                .histogram(Histogram::QueueIntent, q.intent as f64);
            self.state
                .samples
                .histogram(Histogram::QueueEvent, q.event as f64);
            self.state
                .samples
                .histogram(Histogram::QueueQuery, q.query as f64);
            self.state.prune_queues();
        }
        self.state.expire_queries(now);
        self.state.flush_coalescers(now);
        self.state.record_clock_periodically(now);
        if std::mem::take(&mut self.state.rejoin.retry_after_failure) {
            self.state.rejoin.next_try = Some(now + Rejoin::RETRY);
        }
        if self.state.rejoin.in_flight.is_none()
            && self.state.rejoin.next_try.is_some_and(|t| now >= t)
        {
            self.state.rejoin.next_try = None;
            let addrs = self.state.rejoin.addrs.clone();
            self.state.rejoin.in_flight = Some(self.memberlist.join(now, &addrs, &mut self.state));
        }
        self.advance_leave(now);
    }
}

impl Machine for Serf {
    fn handle_packet(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if self.state.status == SerfStatus::Shutdown {
            return;
        }
        self.memberlist
            .handle_packet(now, from, datagram, &mut self.state);
        self.advance_leave(now);
    }

    fn handle_stream_request(&mut self, now: Instant, data: &[u8]) -> StreamStatus {
        if self.state.status == SerfStatus::Shutdown {
            return StreamStatus::Done(None);
        }
        let status = machine::accept_stream(&mut self.memberlist, now, data, &mut self.state);
        self.after(now);
        status
    }

    fn handle_stream_reply(&mut self, now: Instant, id: u64, data: &[u8], eof: bool) -> bool {
        let done =
            machine::read_stream_reply(&mut self.memberlist, now, id, data, eof, &mut self.state);
        self.after(now);
        done
    }

    fn handle_stream_failure(&mut self, now: Instant, id: u64, error: String) {
        self.memberlist
            .handle_stream_reply(now, id, Err(error), &mut self.state);
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.state.status == SerfStatus::Shutdown {
            return;
        }
        self.memberlist.handle_timeout(now, &mut self.state);
        self.tick(now);
        self.after(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.memberlist.poll_transmit()
    }

    fn poll_stream(&mut self) -> Option<OutboundStream> {
        self.memberlist.poll_stream()
    }

    fn gossip_rounds(&self) -> u64 {
        self.memberlist.stats().gossip_rounds
    }

    fn read_telemetry(&mut self, out: &mut dyn FnMut(Reading)) {
        self.memberlist.read_telemetry(out);
        for total in self.state.counters.totals() {
            out(Reading::Total(total));
        }
        self.state.samples.drain(out);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.state.status == SerfStatus::Shutdown {
            return None;
        }
        let mut next = self
            .state
            .next_reap
            .min(self.state.next_reconnect)
            .min(self.state.next_queue_check);
        for t in [
            self.memberlist.poll_timeout(&self.state),
            self.leave_deadline(),
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(t);
        }
        if let Some((t, _)) = self.state.pending_prunes.iter().min_by_key(|(t, _)| *t) {
            next = next.min(*t);
        }
        let coalescing = [
            self.state
                .member_coalescer
                .as_ref()
                .and_then(|c| c.deadline()),
            self.state
                .user_coalescer
                .as_ref()
                .and_then(|c| c.deadline()),
        ];
        let snapshot = [
            self.state.snapshot.as_ref().map(|s| s.next_clock_check),
            self.state.rejoin.next_try,
        ];
        let collectors = self
            .state
            .collectors
            .values()
            .map(|c| c.deadline)
            .chain(snapshot.into_iter().flatten());
        if let Some(t) = collectors.chain(coalescing.into_iter().flatten()).min() {
            next = next.min(t);
        }
        Some(next)
    }
}

fn encode_meta(tags: &Tags, protocol_version: u8) -> Result<Vec<u8>, SerfError> {
    let tags: wire::Tags = tags
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect();
    let meta = if protocol_version < 3 {
        encode_role_meta(&tags)
    } else {
        encode_tags(&tags, Dialect::GOSSIP)
    };
    if meta.len() > META_MAX_SIZE {
        return Err(SerfError::TagsTooLarge {
            len: meta.len(),
            limit: META_MAX_SIZE,
        });
    }
    Ok(meta)
}

impl State {
    /// Go's `checkQueueDepth`: a queue over the limit loses its oldest broadcasts.
    fn prune_queues(&mut self) {
        let limit = if self.min_queue_depth > 0 {
            self.min_queue_depth.max(2 * self.members.len())
        } else {
            self.max_queue_depth
        };
        for queue in [
            &mut self.intents,
            &mut self.event_broadcasts,
            &mut self.query_broadcasts,
        ] {
            let before = queue.len();
            queue.prune(limit);
            self.counters.broadcasts_pruned += (before - queue.len()) as u64;
        }
    }

    fn queue_depths(&self) -> QueueDepths {
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

    fn broadcast_intent(&mut self, msg: Message) -> u64 {
        let notify = self.new_notify();
        self.intents.queue(Broadcast {
            key: None,
            message: msg.encode(Dialect::GOSSIP),
            notify: Some(notify),
        });
        notify
    }

    fn collect_finished(&mut self) {
        let finished = self.intents.take_finished();
        self.finished_notifies.extend(finished);
    }

    fn finished(&mut self, notify: u64) -> bool {
        let before = self.finished_notifies.len();
        self.finished_notifies.retain(|n| *n != notify);
        self.finished_notifies.len() != before
    }

    fn member_from_node(&self, node: &Node, status: MemberStatus) -> Member {
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

    fn emit(&mut self, now: Instant, kind: MemberEventType, member: Member) {
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
    fn handle_join_intent(&mut self, now: Instant, msg: &wire::Join) -> bool {
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
    fn handle_leave_intent(&mut self, now: Instant, msg: &wire::Leave) -> bool {
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
            Some(_) => self.erase(now, name),
            None => {}
        }
    }

    fn erase(&mut self, now: Instant, name: &str) {
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

    fn reap(&mut self, now: Instant) {
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
            self.erase(now, &name);
        }
        let timeout = self.recent_intent_timeout;
        self.recent_intents
            .retain(|_, i| now.saturating_duration_since(i.at) <= timeout);
    }

    /// With probability failed/alive, one random failed member to try joining again.
    fn reconnect_target(&mut self) -> Option<SocketAddr> {
        let departed = self
            .departed
            .iter()
            .filter_map(|name| self.members.get(name));
        let failed: Vec<SocketAddr> = departed
            .filter(|m| m.member.status == MemberStatus::Failed)
            .map(|m| SocketAddr::new(m.member.addr, m.member.port))
            .collect();
        if failed.is_empty() {
            return None;
        }
        let alive = (self.members.len() - self.departed.len()).max(1);
        let probability = failed.len() as f64 / alive as f64;
        if self.rng.random::<f64>() > probability {
            return None;
        }
        Some(failed[self.rng.random_range(0..failed.len())])
    }

    fn alive_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.member.status == MemberStatus::Alive)
            .count()
    }

    /// A user event (Go `handleUserEvent`); true when it is new and worth rebroadcasting.
    /// `gossiped`: it came alone, not in a push/pull's copy of the ring, whose oldest entries
    /// are too old here as a matter of course; only then is a too-old one counted as lost.
    fn handle_user_event(
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

    /// Sends a query for `purpose` and registers its collector; returns its Lamport time.
    fn start_query(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
        purpose: Purpose,
    ) -> Result<u64, SerfError> {
        if self.protocol_version < 4 {
            return Err(SerfError::FeatureNotSupported);
        }
        let ltime = self.query_clock.time();
        let id = self.rng.random::<u32>() & 0x7fff_ffff;
        let timeout = params
            .timeout
            .unwrap_or_else(|| query::default_timeout(self.gossip_interval, self.alive_count()));
        let msg = wire::Query {
            ltime,
            id,
            addr: Bytes(ip_to_bytes(self.advertise.ip())),
            port: self.advertise.port(),
            source_node: self.name.as_str().into(),
            filters: params.encode_filters(),
            flags: if params.request_ack {
                wire::QUERY_FLAG_ACK
            } else {
                0
            },
            relay_factor: params.relay_factor,
            timeout: timeout.as_nanos().min(i64::MAX as u128) as i64,
            name: name.into(),
            payload: Some(Bytes(payload.to_vec())),
        };
        let encoded = Message::Query(msg.clone()).encode(Dialect::GOSSIP);
        if encoded.len() > self.query_size_limit {
            return Err(SerfError::QueryTooLarge {
                limit: self.query_size_limit,
            });
        }
        let expected = self
            .members
            .values()
            .filter(|m| m.member.status == MemberStatus::Alive && params.admits(&m.member))
            .map(|m| m.member.name.clone())
            .collect();
        self.collectors.insert(
            ltime,
            Collector {
                id,
                deadline: now + timeout,
                purpose,
                request_ack: params.request_ack,
                acks: Default::default(),
                responses: Default::default(),
                expected,
            },
        );
        self.handle_query(now, &msg);
        self.query_broadcasts.queue(Broadcast {
            key: None,
            message: encoded,
            notify: None,
        });
        Ok(ltime)
    }

    /// A query (Go `handleQuery`); true when it is worth rebroadcasting.
    fn handle_query(&mut self, now: Instant, q: &wire::Query) -> bool {
        self.query_clock.witness(q.ltime);
        if q.ltime < self.query_min_time {
            return false;
        }
        match self
            .queries_seen
            .accept(self.query_clock.time(), q.ltime, q.id)
        {
            Admission::New => {}
            Admission::Duplicate => return false,
            Admission::TooOld => {
                self.counters.queries_too_old += 1;
                return false;
            }
        }
        self.record(|c| c.query(q.ltime));
        self.counters.queries += 1;
        self.samples
            .named(NamedCounter::Query, &q.name.to_string_lossy());
        let rebroadcast = q.flags & wire::QUERY_FLAG_NO_BROADCAST == 0;
        if !query::passes_filters(
            q.filters.as_deref().unwrap_or_default(),
            &self.name,
            &self.tags,
        ) {
            return rebroadcast;
        }
        let Some(ip) = ip_from_bytes(&q.addr) else {
            return rebroadcast;
        };
        let addr = SocketAddr::new(ip, q.port);
        let source = q.source_node.to_string_lossy();
        if q.flags & wire::QUERY_FLAG_ACK != 0 {
            let ack = query::response_message(q.ltime, q.id, &self.name, true, None)
                .encode(Dialect::GOSSIP);
            self.outbox.push((addr, ack.clone()));
            let _ = self.relay(q.relay_factor, addr, &source, ack);
        }
        let deadline = now + Duration::from_nanos(q.timeout.max(0) as u64);
        self.pending.insert(
            (q.ltime, q.id),
            Pending {
                addr,
                source: source.clone(),
                deadline,
                relay_factor: q.relay_factor,
                responded: false,
            },
        );
        let name = q.name.to_string_lossy();
        let payload = q.payload.as_deref().unwrap_or_default().to_vec();
        if let Some(internal_name) = name.strip_prefix(INTERNAL_PREFIX) {
            self.handle_internal_query(now, internal_name, payload, q.ltime, q.id);
        } else {
            self.events.push_back(Event::Query(QueryEvent {
                ltime: q.ltime,
                id: q.id,
                name,
                payload,
                source,
                deadline,
            }));
        }
        rebroadcast
    }

    /// `_serf_*` queries are answered here, never shown to the application.
    fn handle_internal_query(
        &mut self,
        now: Instant,
        name: &str,
        payload: Vec<u8>,
        ltime: u64,
        id: u32,
    ) {
        let full = format!("{INTERNAL_PREFIX}{name}");
        if let Some(op) = KeyOp::from_query_name(&full) {
            self.actions.push(Action::KeyQuery {
                op,
                payload,
                ltime,
                id,
            });
        } else if full == CONFLICT_QUERY {
            let asked = String::from_utf8_lossy(&payload).into_owned();
            if asked != self.name {
                let answer = internal::conflict_answer(self.members.get(&asked).map(|m| &m.member));
                let _ = self.respond(now, ltime, id, &answer);
            }
        }
        // _serf_ping needs nothing beyond the ack; unknown internal queries are ignored.
    }

    /// Answers a received query once, before its deadline (Go `Query.Respond`).
    fn respond(
        &mut self,
        now: Instant,
        ltime: u64,
        id: u32,
        payload: &[u8],
    ) -> Result<(), SerfError> {
        let pending = self
            .pending
            .get(&(ltime, id))
            .ok_or(SerfError::NoPendingQuery)?;
        if pending.responded {
            return Err(SerfError::Respond("response already sent"));
        }
        if now > pending.deadline {
            return Err(SerfError::Respond("response is past the deadline"));
        }
        let msg = query::response_message(ltime, id, &self.name, false, Some(payload.to_vec()))
            .encode(Dialect::GOSSIP);
        if msg.len() > self.query_response_size_limit {
            return Err(SerfError::Respond("response exceeds limit"));
        }
        let (addr, source, relay_factor) =
            (pending.addr, pending.source.clone(), pending.relay_factor);
        self.outbox.push((addr, msg.clone()));
        self.relay(relay_factor, addr, &source, msg)?;
        if let Some(p) = self.pending.get_mut(&(ltime, id)) {
            p.responded = true;
        }
        Ok(())
    }

    /// Sends copies of a response through up to `factor` random members (Go `relayResponse`):
    /// alive, protocol max ≥ 5, not ourselves.
    fn relay(
        &mut self,
        factor: u8,
        dest: SocketAddr,
        dest_name: &str,
        response: Vec<u8>,
    ) -> Result<(), SerfError> {
        if factor == 0 || self.members.len() < factor as usize + 1 {
            return Ok(());
        }
        let header = wire::RelayHeader {
            dest_addr: wire::UdpAddr {
                ip: Bytes(ip_to_bytes(dest.ip())),
                port: dest.port() as i64,
                zone: GoString::default(),
            },
            dest_name: dest_name.into(),
        };
        let msg = Message::Relay {
            header,
            inner: response,
        }
        .encode(Dialect::GOSSIP);
        if msg.len() > self.query_response_size_limit {
            return Err(SerfError::Respond("relayed response exceeds limit"));
        }
        let candidates: Vec<SocketAddr> = self
            .members
            .values()
            .filter(|m| {
                m.member.name != self.name
                    && m.member.status == MemberStatus::Alive
                    && m.member.protocol[1] >= 5
            })
            .map(|m| SocketAddr::new(m.member.addr, m.member.port))
            .collect();
        let mut picked: Vec<SocketAddr> = Vec::new();
        for _ in 0..3 * candidates.len() {
            if picked.len() >= factor as usize {
                break;
            }
            let c = candidates[self.rng.random_range(0..candidates.len())];
            if !picked.contains(&c) {
                picked.push(c);
            }
        }
        for to in picked {
            self.outbox.push((to, msg.clone()));
        }
        Ok(())
    }

    /// An ack or response to one of our queries (Go `handleQueryResponse`).
    fn handle_query_response(&mut self, now: Instant, r: &wire::QueryResponse) {
        let Some(c) = self.collectors.get_mut(&r.ltime) else {
            return;
        };
        if c.id != r.id || now > c.deadline {
            return;
        }
        let from = r.from.to_string_lossy();
        let update = if r.flags & wire::QUERY_FLAG_ACK != 0 {
            if !c.acks.insert(from.clone()) {
                self.counters.query_duplicate_acks += 1;
                return;
            }
            self.counters.query_acks += 1;
            QueryUpdate::Ack { from }
        } else {
            if !c.responses.insert(from.clone()) {
                self.counters.query_duplicate_responses += 1;
                return;
            }
            self.counters.query_responses += 1;
            QueryUpdate::Response {
                from,
                payload: r.payload.as_deref().unwrap_or_default().to_vec(),
            }
        };
        match (&mut c.purpose, update) {
            (Purpose::User, update) => self.completions.push_back(Completion::Query {
                handle: r.ltime,
                update,
            }),
            (
                Purpose::Conflict {
                    responses,
                    matching,
                },
                QueryUpdate::Response { payload, .. },
            ) => {
                if let Some((addr, port)) = internal::read_conflict_answer(&payload) {
                    *responses += 1;
                    if addr == ip_to_bytes(self.advertise.ip()) && port == self.advertise.port() {
                        *matching += 1;
                    }
                }
            }
            (Purpose::Keys(agg), QueryUpdate::Response { from, payload }) => {
                internal::aggregate_key_response(agg, &from, &payload);
                if agg.num_resp >= agg.num_nodes {
                    self.finish_query(r.ltime);
                    return;
                }
            }
            _ => {}
        }
        if self
            .collectors
            .get(&r.ltime)
            .is_some_and(|c| matches!(c.purpose, Purpose::User) && c.complete())
        {
            self.finish_query(r.ltime);
        }
    }

    /// Ends a query: reports it done, or acts on the vote or key results it collected.
    fn finish_query(&mut self, ltime: u64) {
        let Some(c) = self.collectors.remove(&ltime) else {
            return;
        };
        match c.purpose {
            Purpose::User => self.completions.push_back(Completion::Query {
                handle: ltime,
                update: QueryUpdate::Done,
            }),
            Purpose::Keys(result) => self.completions.push_back(Completion::Keys {
                handle: ltime,
                result,
            }),
            Purpose::Conflict {
                responses,
                matching,
            } => {
                self.resolving_conflict = false;
                if matching < responses / 2 + 1 {
                    self.status = SerfStatus::Shutdown;
                    self.events.push_back(Event::Shutdown {
                        reason: format!(
                            "name conflict: {matching} of {responses} members know {} at our address",
                            self.name
                        ),
                    });
                }
            }
        }
    }

    /// Adds a snapshot record, if a snapshot is kept and `make` produces one.
    fn record(&mut self, make: impl FnOnce(&mut ClockRecorder) -> Option<Record>) {
        if let Some(log) = &mut self.snapshot {
            if let Some(r) = make(&mut log.clocks) {
                log.records.push_back(r);
            }
        }
    }

    /// Intents move the member clock without member events: record it now and then.
    fn record_clock_periodically(&mut self, now: Instant) {
        let time = self.clock.time();
        if let Some(log) = &mut self.snapshot {
            if now >= log.next_clock_check {
                log.next_clock_check = now + CLOCK_UPDATE_INTERVAL;
                log.records.extend(log.clocks.member_clock(time));
            }
        }
    }

    /// Delivers coalesced events whose window closed.
    fn flush_coalescers(&mut self, now: Instant) {
        if let Some(c) = &mut self.member_coalescer {
            self.events.extend(c.flush(now));
        }
        if let Some(c) = &mut self.user_coalescer {
            self.events
                .extend(c.flush(now).into_iter().map(Event::User));
        }
    }

    /// Finishes queries whose deadline passed and forgets received queries past theirs.
    fn expire_queries(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .collectors
            .iter()
            .filter(|(_, c)| now >= c.deadline)
            .map(|(t, _)| *t)
            .collect();
        for ltime in due {
            self.finish_query(ltime);
        }
        self.pending.retain(|_, p| now <= p.deadline);
    }

    /// serf's push/pull state: clocks, every member's status time, left members, event buffer.
    fn local_state(&self) -> Vec<u8> {
        let status_ltimes = self
            .members
            .values()
            .map(|m| (GoString::from(m.member.name.as_str()), m.status_ltime))
            .collect();
        let left_members = self
            .members
            .values()
            .filter(|m| m.member.status == MemberStatus::Left)
            .map(|m| GoString::from(m.member.name.as_str()))
            .collect();
        let pp = wire::PushPull {
            ltime: self.clock.time(),
            status_ltimes,
            left_members,
            event_ltime: self.event_clock.time(),
            events: self.events_seen.to_wire(),
            query_ltime: self.query_clock.time(),
        };
        Message::PushPull(pp).encode(Dialect::GOSSIP)
    }
}

impl Delegate for State {
    /// Our coordinate rides on every UDP ack (`PingVersion` 1), as Go's ping delegate does.
    fn ack_payload(&mut self) -> Vec<u8> {
        match &self.coordinates {
            Some(c) => wire::encode_ack_payload(c.coordinate(), Dialect::GOSSIP),
            None => Vec::new(),
        }
    }

    fn notify_ping_complete(&mut self, node: &Node, rtt: Duration, payload: &[u8]) {
        let Some(client) = &mut self.coordinates else {
            return;
        };
        // An empty payload: the peer has coordinates disabled. Bad ones are dropped.
        let Ok(Some(theirs)) = wire::decode_ack_payload(payload) else {
            return;
        };
        let name = node.name.as_str_lossy();
        let before = client.coordinate().clone();
        let mut member = self.members.get_mut(&name);
        // A node memberlist knows and serf not yet: its sample counts alone.
        let mut unknown = LatencyFilter::default();
        let filter = member.as_mut().map_or(&mut unknown, |m| &mut m.rtts);
        match client.update(filter, &theirs, rtt) {
            Ok(after) => {
                if rtt.is_zero() {
                    self.counters.coordinate_zero_rtts += 1;
                }
                // How far this update moved us, in ms (Go's `adjustment-ms`).
                if let Some(moved) = vivaldi::distance(&before, after) {
                    let moved_ms = moved.as_secs_f64() * 1000.0;
                    self.samples
                        .histogram(Histogram::CoordinateAdjustment, moved_ms);
                }
                if let Some(m) = member {
                    match &mut m.coordinate {
                        Some(kept) => **kept = theirs,
                        None => m.coordinate = Some(Box::new(theirs)),
                    }
                }
            }
            Err(_) => {
                self.counters.coordinate_rejections += 1;
            }
        }
    }

    fn notify_conflict(&mut self, existing: &Node, _other: &Node) {
        if existing.name.as_bytes() == self.name.as_bytes()
            && self.conflict_resolution
            && !self.resolving_conflict
        {
            self.resolving_conflict = true;
            self.actions.push(Action::ResolveConflict);
        }
    }

    fn notify_msg(&mut self, now: Instant, msg: &[u8]) {
        if msg.is_empty() {
            return;
        }
        self.counters.msgs_received += 1;
        self.counters.msg_bytes_received += msg.len() as u64;
        self.samples
            .histogram(Histogram::MsgsReceived, msg.len() as f64);
        let Ok(decoded) = Message::decode(msg) else {
            return;
        };
        // New information is gossiped on, byte for byte, from the queue it belongs to.
        let requeue = match &decoded {
            Message::Join(j) => self.handle_join_intent(now, j).then_some(&mut self.intents),
            Message::Leave(l) => self
                .handle_leave_intent(now, l)
                .then_some(&mut self.intents),
            Message::UserEvent(e) => self
                .handle_user_event(now, e, true)
                .then_some(&mut self.event_broadcasts),
            Message::Query(q) => self
                .handle_query(now, q)
                .then_some(&mut self.query_broadcasts),
            Message::QueryResponse(r) => {
                self.handle_query_response(now, r);
                None
            }
            Message::Relay { header, inner } => {
                if let Some(ip) = ip_from_bytes(&header.dest_addr.ip) {
                    let port = u16::try_from(header.dest_addr.port).unwrap_or(0);
                    self.outbox.push((SocketAddr::new(ip, port), inner.clone()));
                }
                None
            }
            _ => None,
        };
        if let Some(queue) = requeue {
            queue.queue(Broadcast {
                key: None,
                message: msg.to_vec(),
                notify: None,
            });
        }
    }

    /// Serf's queues in Go's order: intents, then queries, then user events.
    fn has_broadcasts(&self) -> bool {
        !(self.intents.is_empty()
            && self.query_broadcasts.is_empty()
            && self.event_broadcasts.is_empty())
    }

    fn get_broadcasts(&mut self, overhead: usize, limit: usize, to: &Recipient) -> Vec<Vec<u8>> {
        let n = self.members.len();
        let mut out = Vec::new();
        let mut left = limit;
        for queue in [
            &mut self.intents,
            &mut self.query_broadcasts,
            &mut self.event_broadcasts,
        ] {
            let msgs = queue.get_broadcasts(overhead, left, n, to);
            left = left.saturating_sub(msgs.iter().map(|m| m.len() + overhead).sum::<usize>());
            for m in &msgs {
                self.counters.msgs_sent += 1;
                self.counters.msg_bytes_sent += m.len() as u64;
                self.samples.histogram(Histogram::MsgsSent, m.len() as f64);
            }
            out.extend(msgs);
        }
        out
    }

    fn local_state(&mut self, _join: bool) -> Vec<u8> {
        State::local_state(self)
    }

    fn merge_remote_state(&mut self, now: Instant, buf: &[u8], join: bool) {
        let Ok(Message::PushPull(pp)) = Message::decode(buf) else {
            return;
        };
        if pp.ltime > 0 {
            self.clock.witness(pp.ltime - 1);
        }
        if pp.event_ltime > 0 {
            self.event_clock.witness(pp.event_ltime - 1);
        }
        if pp.query_ltime > 0 {
            self.query_clock.witness(pp.query_ltime - 1);
        }
        for name in &pp.left_members {
            let ltime = pp.status_ltimes.get(name).copied().unwrap_or(0) + 1;
            self.handle_leave_intent(
                now,
                &wire::Leave {
                    ltime,
                    node: name.clone(),
                    prune: false,
                },
            );
        }
        for (name, ltime) in &pp.status_ltimes {
            if !pp.left_members.contains(name) {
                self.handle_join_intent(
                    now,
                    &wire::Join {
                        ltime: *ltime,
                        node: name.clone(),
                    },
                );
            }
        }
        if join && self.ignore_old_events {
            self.event_min_time = self.event_min_time.max(pp.event_ltime);
        }
        for events in pp.events.iter().flatten() {
            for e in &events.events {
                let msg = wire::UserEventMessage {
                    ltime: events.ltime,
                    name: e.name.clone(),
                    payload: e.payload.clone(),
                    cc: false,
                };
                self.handle_user_event(now, &msg, false);
            }
        }
    }

    fn notify_join(&mut self, now: Instant, node: &Node) {
        let name = node.name.to_string_lossy();
        let member = self.member_from_node(node, MemberStatus::Alive);
        match self.members.get_mut(&name) {
            None => {
                let mut state = MemberState {
                    member,
                    status_ltime: 0,
                    leave_time: None,
                    coordinate: None,
                    rtts: LatencyFilter::default(),
                };
                // Applied once: an intent only ever sets up a member that is new.
                if let Some(intent) = self.recent_intents.remove(&name) {
                    state.status_ltime = intent.ltime;
                    if intent.kind == IntentKind::Leave {
                        state.member.status = MemberStatus::Leaving;
                    }
                }
                self.members.insert(state);
            }
            Some(m) => {
                let failed_for = m.leave_time.map(|t| now.saturating_duration_since(t));
                if m.member.status == MemberStatus::Failed
                    && failed_for.is_some_and(|d| d < FLAP_TIMEOUT)
                {
                    self.counters.member_flaps += 1;
                }
                m.member = member;
                m.leave_time = None;
                self.departed.remove(&name);
            }
        }
        self.counters.member_joins += 1;
        let member = self.members.get(&name).expect("just added").member.clone();
        self.emit(now, MemberEventType::Join, member);
    }

    fn notify_leave(&mut self, now: Instant, node: &Node) {
        let name = node.name.to_string_lossy();
        let Some(m) = self.members.get_mut(&name) else {
            return;
        };
        // A leave intent makes it left; so does memberlist's own "left" (dead from itself) when
        // the intent was lost: better than Go, which reports that node as failed.
        let (status, kind) = match (m.member.status, node.state) {
            (MemberStatus::Leaving, _) | (MemberStatus::Alive, NodeState::Left) => {
                (MemberStatus::Left, MemberEventType::Leave)
            }
            (MemberStatus::Alive, _) => (MemberStatus::Failed, MemberEventType::Failed),
            _ => return,
        };
        m.member.status = status;
        m.leave_time = Some(now);
        let member = m.member.clone();
        self.departed.insert(name.clone());
        if status == MemberStatus::Left {
            self.counters.member_leaves += 1;
        } else {
            self.counters.member_failures += 1;
        }
        self.emit(now, kind, member);
    }

    fn notify_update(&mut self, now: Instant, node: &Node) {
        let name = node.name.to_string_lossy();
        let Some(status) = self.members.get(&name).map(|m| m.member.status) else {
            return;
        };
        let member = self.member_from_node(node, status);
        if let Some(m) = self.members.get_mut(&name) {
            m.member = member.clone();
        }
        self.counters.member_updates += 1;
        self.emit(now, MemberEventType::Update, member);
    }

    fn join_complete(&mut self, id: u64, contacted: usize, errors: Vec<String>) {
        if self.rejoin.in_flight == Some(id) {
            self.rejoin.in_flight = None;
            if contacted == 0 {
                self.rejoin.retry_after_failure = true;
            } else {
                self.rejoin.addrs.clear();
            }
            return;
        }
        if !self.user_joins.remove(&id) {
            return;
        }
        self.ignore_old_events = false;
        let result = if contacted > 0 {
            // Tell the cluster we joined, ordered by our member clock.
            let ltime = self.clock.time();
            self.clock.witness(ltime);
            let join = wire::Join {
                ltime,
                node: self.name.as_str().into(),
            };
            if let Some(me) = self.members.get_mut(&self.name) {
                me.status_ltime = me.status_ltime.max(ltime);
            }
            self.broadcast_intent(Message::Join(join));
            Ok(contacted)
        } else {
            Err(errors.join("; "))
        };
        self.completions.push_back(Completion::Join { id, result });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memberlist::machine::Machine;
    use crate::memberlist::Profile;

    #[test]
    fn the_queue_check_prunes_a_queue_over_its_limit_and_counts_the_loss() {
        let start = Instant::now();
        let mut config = Config::new(Profile::Lan, "a", "127.0.0.1:7946".parse().unwrap());
        config.max_queue_depth = 2;
        let mut serf = Serf::new(config, start, 1).expect("config");
        for k in 0..5 {
            serf.user_event(start, &format!("e{k}"), b"", false)
                .expect("event");
        }
        assert_eq!(serf.queue_depths().event, 5);
        serf.handle_timeout(start + QUEUE_CHECK_INTERVAL);
        assert_eq!(serf.queue_depths().event, 2);
        assert_eq!(serf.counters().broadcasts_pruned, 3);
    }
}
