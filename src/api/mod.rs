//! The embeddable Rust API: a serf node running on its own background thread.
//!
//! [`Serf::create`] binds the sockets, starts the protocol thread and returns a handle usable from
//! any thread. Calls are commands to that thread; none of them blocks the protocol. Events arrive
//! in a bounded queue with a pollable file descriptor. This is the surface the C ABI wraps.

mod event_queue;
mod tuning;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use thiserror::Error;

pub use event_queue::{event_queue, unbounded_queue, EventReceiver, EventSender};
pub use tuning::{Tuning, TuningError, KNOBS, MAX_COUNT, MAX_MS};

// The door: what the faces (the C ABI, the agent, examples) take from the protocol crate. They
// import these from here, never from `serf_proto` itself, so this list is the whole surface.
pub use crate::runtime::LogSink;
pub use serf_proto::log::{Level as LogLevel, LogLine};
pub use serf_proto::memberlist::{Profile, Seed, Stats as MemberlistStats, UnknownProfile};
pub use serf_proto::serf::{
    distance, read_keyring_file, Completion, Counters as SerfCounters, Event, JoinFailed,
    KeyAggregate, KeyOp, KeyringFileError, Member, MemberEventType, MemberStatus, QueryEvent,
    QueryParams, QueryUpdate, SerfError, Tags, UserEvent, INTERNAL_PREFIX, PING_QUERY,
    PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
};
/// HashiCorp's byte formats: the agent speaks the RPC protocol (`wire::rpc`) in go-msgpack.
pub use serf_proto::wire;

use crate::runtime::snapshotter::{self, SnapshotWriter, WriterOptions};
use crate::runtime::{self, Runtime, RuntimeError, RuntimeHandle};
use serf_proto::memberlist::machine::{Machine, StreamStatus};
use serf_proto::memberlist::{OutboundStream, Transmit};
use serf_proto::serf as core;
use serf_proto::telemetry::Reading;
use serf_proto::wire::memberlist::keyring::{KeyError, Keyring};
use serf_proto::wire::serf::Coordinate;

/// The port memberlist uses when an address gives none.
pub const DEFAULT_PORT: u16 = 7946;

/// Why an API call failed.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Serf(#[from] SerfError),
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("an advertise address is needed when binding to {0}")]
    NoAdvertise(IpAddr),
    #[error("invalid encryption key: {0}")]
    Key(#[from] KeyError),
    #[error("failed to join any of the addresses: {0}")]
    JoinFailed(JoinFailed),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("the node has shut down")]
    Stopped,
    /// The protocol thread could not run the call (other than having stopped).
    #[error("internal error: {0}")]
    Runtime(RuntimeError),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl From<RuntimeError> for Error {
    fn from(e: RuntimeError) -> Error {
        match e {
            RuntimeError::Stopped => Error::Stopped,
            other => Error::Runtime(other),
        }
    }
}

/// How to start a node. `Options::new(name)` gives HashiCorp's defaults.
#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    /// Where to listen (UDP and TCP); port 0 picks a free port.
    pub bind: SocketAddr,
    /// What to announce to peers; by default the bound address.
    pub advertise: Option<SocketAddr>,
    pub profile: Profile,
    pub tags: Tags,
    /// Encryption keys (16, 24 or 32 bytes), the first one primary; empty disables encryption.
    pub keys: Vec<Vec<u8>>,
    /// Serf protocol version, 2 to 5 (HashiCorp's library defaults to 4, its agent to 5).
    pub protocol_version: u8,
    /// Events the application may leave unread before new ones are dropped (and counted).
    pub event_queue_capacity: usize,
    /// A fixed seed replays the protocol's random choices (tests); `None` draws one from the
    /// OS. It also fixes the encryption nonces: never give two encrypting nodes the same one.
    pub seed: Option<u64>,
    /// Where key changes are persisted (JSON array of base64 keys, as Go's `-keyring-file`).
    pub keyring_file: Option<std::path::PathBuf>,
    /// Member-event coalescing window and quiet period (both non-zero to enable).
    pub coalesce: Option<(Duration, Duration)>,
    /// User-event coalescing window and quiet period (both non-zero to enable).
    pub user_coalesce: Option<(Duration, Duration)>,
    pub disable_coordinates: bool,
    /// Where HashiCorp's `serf:`/`memberlist:` log lines go, from which level; `None` keeps
    /// none (and costs nothing).
    pub log: Option<LogSink>,
    /// HashiCorp's snapshot file: restores the clocks and rejoins remembered members at start.
    pub snapshot_path: Option<std::path::PathBuf>,
    /// Ignore a recorded leave in the snapshot and rejoin anyway.
    pub rejoin_after_leave: bool,
    /// Cluster label (memberlist 0.3+); empty for none. Nodes only talk to the same label.
    pub label: String,
    /// Overrides of the profile's timing knobs and serf's timeouts.
    pub tuning: Tuning,
    /// memberlist's `EnableCompression` (the agent's `-disable-compression` turns it off).
    pub compression: bool,
    /// Take part in the name-conflict vote (`_serf_conflict`); the agent's
    /// `disable_name_resolution` turns it off.
    pub name_conflict_resolution: bool,
    pub limits: SizeLimits,
}

/// Payload limits (`UserEventSizeLimit`, `QuerySizeLimit`, `QueryResponseSizeLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    pub user_event: usize,
    pub query: usize,
    pub query_response: usize,
}

impl Default for SizeLimits {
    /// HashiCorp's defaults: 512, 1024 and 1024 bytes.
    fn default() -> SizeLimits {
        SizeLimits {
            user_event: core::DEFAULT_USER_EVENT_SIZE_LIMIT,
            query: core::DEFAULT_QUERY_SIZE_LIMIT,
            query_response: core::DEFAULT_QUERY_RESPONSE_SIZE_LIMIT,
        }
    }
}

/// A node's counters, as HashiCorp's `Serf.Stats()` reports them plus the event queue's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub members: usize,
    pub failed: usize,
    pub left: usize,
    /// Lifeguard health score: 0 is healthy.
    pub health_score: usize,
    pub member_time: u64,
    pub event_time: u64,
    pub query_time: u64,
    pub encrypted: bool,
    pub coordinate_resets: u64,
    /// Events waiting for the application.
    pub event_queue: usize,
    /// Events dropped because the application's queue was full.
    pub dropped_events: u64,
    /// Broadcasts waiting to be gossiped in serf's intent, user-event and query queues.
    pub queues: core::QueueDepths,
    /// What the serf core counted since the node started: the `serf.*` metrics, kept without
    /// any `metrics` recorder.
    pub serf: core::Counters,
    /// What memberlist counted: the `memberlist.*` metrics, likewise.
    pub memberlist: serf_proto::memberlist::Stats,
    /// What the I/O thread did and dropped (`tcp_accepts` is `memberlist.tcp.accept`).
    pub runtime: runtime::RuntimeStats,
}

impl Options {
    pub fn new(name: &str) -> Options {
        Options {
            name: name.to_string(),
            bind: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            advertise: None,
            profile: Profile::Lan,
            tags: Tags::new(),
            keys: Vec::new(),
            protocol_version: core::DEFAULT_PROTOCOL_VERSION,
            event_queue_capacity: 1024,
            seed: None,
            keyring_file: None,
            coalesce: None,
            user_coalesce: None,
            disable_coordinates: false,
            log: None,
            snapshot_path: None,
            rejoin_after_leave: false,
            label: String::new(),
            tuning: Tuning::default(),
            compression: true,
            name_conflict_resolution: true,
            limits: SizeLimits::default(),
        }
    }
}

/// The machine the runtime drives: the serf core, plus delivery of its events to the application
/// and of command completions to the callers waiting for them.
struct Node {
    serf: core::Serf,
    events: EventSender<Event>,
    join_waiters: HashMap<u64, Sender<Result<usize, JoinFailed>>>,
    leave_waiters: Vec<Sender<()>>,
    query_waiters: HashMap<u64, EventSender<QueryUpdate>>,
    key_waiters: HashMap<u64, Sender<KeyAggregate>>,
    /// Appends snapshot records on its own thread, so disk I/O never blocks the protocol.
    snapshot: Option<SnapshotWriter>,
}

impl Node {
    fn deliver(&mut self) {
        while let Some(record) = self.serf.poll_snapshot_record() {
            if let Some(w) = &self.snapshot {
                w.record(record);
            }
        }
        while let Some(event) = self.serf.poll_event() {
            self.events.push(event);
        }
        while let Some(c) = self.serf.poll_completion() {
            match c {
                Completion::Join { id, result } => {
                    if let Some(tx) = self.join_waiters.remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                Completion::Leave => {
                    for tx in self.leave_waiters.drain(..) {
                        let _ = tx.send(());
                    }
                }
                Completion::Query { handle, update } => {
                    let done = update == QueryUpdate::Done;
                    if let Some(tx) = self.query_waiters.get(&handle) {
                        tx.push(update);
                    }
                    if done {
                        self.query_waiters.remove(&handle);
                    }
                }
                Completion::Keys { handle, result } => {
                    if let Some(tx) = self.key_waiters.remove(&handle) {
                        let _ = tx.send(result);
                    }
                }
            }
        }
    }
}

impl Machine for Node {
    fn handle_packet(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.serf.handle_packet(now, from, datagram);
        self.deliver();
    }

    fn handle_stream_request(&mut self, now: Instant, data: &[u8]) -> StreamStatus {
        let status = self.serf.handle_stream_request(now, data);
        self.deliver();
        status
    }

    fn handle_stream_reply(&mut self, now: Instant, id: u64, data: &[u8], eof: bool) -> bool {
        let done = self.serf.handle_stream_reply(now, id, data, eof);
        self.deliver();
        done
    }

    fn handle_stream_failure(&mut self, now: Instant, id: u64, error: String) {
        self.serf.handle_stream_failure(now, id, error);
        self.deliver();
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.serf.handle_timeout(now);
        self.deliver();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.serf.poll_transmit()
    }

    fn poll_stream(&mut self) -> Option<OutboundStream> {
        self.serf.poll_stream()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.serf.poll_timeout()
    }

    fn gossip_rounds(&self) -> u64 {
        self.serf.gossip_rounds()
    }

    fn read_log(&mut self, out: &mut dyn FnMut(LogLine)) {
        self.serf.read_log(out);
    }

    fn read_telemetry(&mut self, out: &mut dyn FnMut(Reading)) {
        self.serf.read_telemetry(out);
    }
}

/// A running serf node. Every method may be called from any thread.
pub struct Serf {
    runtime: RuntimeHandle<Node>,
    events: EventReceiver<Event>,
    name: String,
    /// Longest a join may take: memberlist's TCP timeout plus slack.
    join_timeout: Duration,
    /// Longest a graceful leave may take: two broadcast timeouts, the propagate delay, slack.
    leave_timeout: Duration,
}

impl Serf {
    /// Runs `f` on the protocol thread and waits for its result. What `f` made the core
    /// deliver (its own user events, completions) reaches the queues before the call returns,
    /// without waiting for the next packet or timer.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node, Instant) -> R + Send + 'static,
    ) -> Result<R, RuntimeError> {
        self.runtime.run(move |node, now| {
            let result = f(node, now);
            node.deliver();
            result
        })
    }

    /// Binds the sockets and starts the node.
    pub fn create(options: Options) -> Result<Serf, Error> {
        let sockets = runtime::bind(options.bind).map_err(|source| Error::Bind {
            addr: options.bind,
            source,
        })?;
        let bound = sockets.local_addr();
        let advertise = match options.advertise {
            Some(a) if a.port() == 0 => SocketAddr::new(a.ip(), bound.port()),
            Some(a) => a,
            None if bound.ip().is_unspecified() => return Err(Error::NoAdvertise(bound.ip())),
            None => bound,
        };
        let mut config = core::Config::new(options.profile, &options.name, advertise);
        config.tags = options.tags;
        config.protocol_version = options.protocol_version;
        config.keyring_file = options.keyring_file;
        config.disable_coordinates = options.disable_coordinates;
        config.memberlist.log_level = options.log.as_ref().map(|sink| sink.level);
        config.memberlist.wire.label = options.label.into_bytes();
        config.memberlist.wire.compression = options.compression;
        config.enable_name_conflict_resolution = options.name_conflict_resolution;
        config.user_event_size_limit = options.limits.user_event;
        config.query_size_limit = options.limits.query;
        config.query_response_size_limit = options.limits.query_response;
        options.tuning.apply(&mut config);
        if let Some((period, quiet)) = options.coalesce {
            (config.coalesce_period, config.quiescent_period) = (period, quiet);
        }
        if let Some((period, quiet)) = options.user_coalesce {
            (config.user_coalesce_period, config.user_quiescent_period) = (period, quiet);
        }
        let snapshot = match &options.snapshot_path {
            Some(path) => {
                let replay = snapshotter::replay(path, options.rejoin_after_leave)?;
                let writer = SnapshotWriter::open_with(
                    path,
                    &replay,
                    WriterOptions {
                        rejoin_after_leave: options.rejoin_after_leave,
                        ..Default::default()
                    },
                )?;
                config.snapshot = Some(replay);
                Some(writer)
            }
            None => None,
        };
        if let Some((primary, others)) = options.keys.split_first() {
            config.memberlist.wire.keyring = Some(Keyring::new(primary, others)?);
        }
        let join_timeout = config.memberlist.tcp_timeout + Duration::from_secs(1);
        let leave_timeout =
            config.broadcast_timeout * 2 + config.leave_propagate_delay + Duration::from_secs(2);
        let seed = options.seed.map_or_else(os_seed, Seed::from);
        let serf = core::Serf::new(config, Instant::now(), seed)?;
        let (tx, events) = event_queue(options.event_queue_capacity)?;
        let mut node = Node {
            serf,
            events: tx,
            join_waiters: HashMap::new(),
            leave_waiters: Vec::new(),
            query_waiters: HashMap::new(),
            key_waiters: HashMap::new(),
            snapshot,
        };
        node.deliver();
        let settings = Runtime {
            log: options.log,
            ..Runtime::default()
        };
        let runtime = settings
            .start(sockets, node, &options.name)
            .map_err(Error::Io)?;
        Ok(Serf {
            runtime,
            events,
            name: options.name,
            join_timeout,
            leave_timeout,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address the sockets are bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.runtime.local_addr()
    }

    /// Joins the cluster through any of `addrs` (`host`, `host:port`, or `name/host:port`);
    /// returns how many nodes were contacted. `ignore_old` skips user events sent before the join.
    pub fn join<S: AsRef<str>>(&self, addrs: &[S], ignore_old: bool) -> Result<usize, Error> {
        let addrs = addrs
            .iter()
            .map(|a| resolve(a.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let addrs: Vec<SocketAddr> = addrs.into_iter().flatten().collect();
        let (tx, rx) = bounded(1);
        let started = self.call(move |node, now| -> Result<bool, SerfError> {
            let id = node.serf.join(now, &addrs, ignore_old)?;
            if let Some(id) = id {
                node.join_waiters.insert(id, tx);
            }
            Ok(id.is_some())
        })??;
        if !started {
            return Ok(0);
        }
        match rx.recv_timeout(self.join_timeout) {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(Error::JoinFailed(e)),
            Err(_) => Err(Error::Timeout("the join")),
        }
    }

    /// Every known member, self included, failed and left ones until reaped.
    pub fn members(&self) -> Result<Vec<Member>, Error> {
        Ok(self.call(|node, _| node.serf.members())?)
    }

    pub fn local_member(&self) -> Result<Member, Error> {
        Ok(self.call(|node, _| node.serf.local_member())?)
    }

    /// Edits the local tags atomically (on the protocol thread) and gossips the result.
    pub fn update_tags(&self, edit: impl FnOnce(&mut Tags) + Send + 'static) -> Result<(), Error> {
        Ok(self.call(move |node, now| {
            let mut tags = node.serf.tags().clone();
            edit(&mut tags);
            node.serf.set_tags(now, tags)
        })??)
    }

    /// The node's counters right now.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut stats = self.call(|n, _| {
            let members = n.serf.members();
            let count = |s: MemberStatus| members.iter().filter(|m| m.status == s).count();
            Stats {
                members: members.len(),
                failed: count(MemberStatus::Failed),
                left: count(MemberStatus::Left),
                health_score: n.serf.memberlist().health_score(),
                member_time: n.serf.member_time(),
                event_time: n.serf.event_time(),
                query_time: n.serf.query_time(),
                encrypted: n.serf.memberlist().wire_options().keyring.is_some(),
                coordinate_resets: n.serf.coordinate_resets(),
                queues: n.serf.queue_depths(),
                serf: n.serf.counters().clone(),
                memberlist: n.serf.memberlist().stats().clone(),
                ..Stats::default()
            }
        })?;
        stats.runtime = self.runtime.stats();
        stats.event_queue = self.events.len();
        stats.dropped_events = self.events.dropped();
        Ok(stats)
    }

    /// Replaces the local tags and gossips them.
    pub fn set_tags(&self, tags: Tags) -> Result<(), Error> {
        Ok(self.call(move |node, now| node.serf.set_tags(now, tags))??)
    }

    /// Leaves gracefully: announces it, waits for the announcement to spread, then stops
    /// gossiping. The node stays up (answering nothing new) until [`shutdown`](Self::shutdown).
    pub fn leave(&self) -> Result<(), Error> {
        let (tx, rx) = bounded(1);
        self.call(move |node, now| -> Result<(), SerfError> {
            node.leave_waiters.push(tx);
            node.serf.leave(now)
        })??;
        rx.recv_timeout(self.leave_timeout)
            .map_err(|_| Error::Timeout("the leave"))
    }

    /// Announces that a failed member left; `prune` erases it from every member list.
    pub fn force_leave(&self, node: &str, prune: bool) -> Result<(), Error> {
        let node = node.to_string();
        Ok(self.call(move |n, now| n.serf.force_leave(now, &node, prune))??)
    }

    /// Sends a user event to every member (this node included).
    pub fn user_event(&self, name: &str, payload: &[u8], coalesce: bool) -> Result<(), Error> {
        let (name, payload) = (name.to_string(), payload.to_vec());
        Ok(self.call(move |n, now| n.serf.user_event(now, &name, &payload, coalesce))??)
    }

    /// Sends a query; the returned handle yields acks and responses as they arrive and ends
    /// when every member that passed the filters answered or the timeout passed.
    pub fn query(
        &self,
        name: &str,
        payload: &[u8],
        params: QueryParams,
    ) -> Result<QueryResponse, Error> {
        let (name, payload) = (name.to_string(), payload.to_vec());
        let (tx, rx) = unbounded_queue()?;
        let deadline = self.call(move |n, now| -> Result<Instant, SerfError> {
            let timeout = params.timeout.unwrap_or_else(|| {
                let alive = n.serf.memberlist().num_alive();
                core::default_timeout(n.serf.memberlist().config().gossip_interval, alive)
            });
            let handle = n.serf.query(now, &name, &payload, &params)?;
            n.query_waiters.insert(handle, tx);
            Ok(now + timeout)
        })??;
        Ok(QueryResponse {
            updates: rx,
            deadline,
            done: false,
        })
    }

    /// Answers a query event (once, before its deadline).
    pub fn respond(&self, ltime: u64, id: u32, payload: &[u8]) -> Result<(), Error> {
        let payload = payload.to_vec();
        Ok(self.call(move |n, now| n.serf.respond(now, ltime, id, &payload))??)
    }

    /// Runs a key operation on every member and waits for the aggregate result. `key` is the
    /// raw key (ignored for [`KeyOp::List`]).
    pub fn key_operation(&self, op: KeyOp, key: &[u8]) -> Result<KeyAggregate, Error> {
        let key = key.to_vec();
        let (tx, rx) = bounded(1);
        let timeout = self.call(move |n, now| -> Result<Duration, SerfError> {
            let alive = n.serf.memberlist().num_alive();
            let timeout =
                core::default_timeout(n.serf.memberlist().config().gossip_interval, alive);
            let handle = n.serf.key_operation(now, op, &key)?;
            n.key_waiters.insert(handle, tx);
            Ok(timeout)
        })??;
        rx.recv_timeout(timeout + Duration::from_secs(1))
            .map_err(|_| Error::Timeout("the key operation"))
    }

    /// This node's network coordinate (`None` with coordinates disabled).
    pub fn coordinate(&self) -> Result<Option<Coordinate>, Error> {
        Ok(self.call(|n, _| n.serf.coordinate())?)
    }

    /// The last coordinate this node learned for `node` (by probing it), or its own.
    pub fn cached_coordinate(&self, node: &str) -> Result<Option<Coordinate>, Error> {
        let node = node.to_string();
        Ok(self.call(move |n, _| n.serf.cached_coordinate(&node))?)
    }

    /// Estimated round-trip time between two members from their coordinates, when both are
    /// known here.
    pub fn rtt(&self, a: &str, b: &str) -> Result<Option<Duration>, Error> {
        let (ca, cb) = (self.cached_coordinate(a)?, self.cached_coordinate(b)?);
        Ok(ca.zip(cb).and_then(|(a, b)| core::distance(&a, &b)))
    }

    /// The next event, waiting up to `timeout` (`None`: as long as it takes).
    pub fn next_event(&self, timeout: Option<Duration>) -> Option<Event> {
        self.events.recv(timeout)
    }

    /// The next event if one is queued.
    pub fn try_event(&self) -> Option<Event> {
        self.events.try_recv()
    }

    /// A second end of the event queue, for a consumer thread that must not keep the node
    /// alive: it returns `None` once the node is gone and the queue is drained.
    pub fn event_receiver(&self) -> EventReceiver<Event> {
        self.events.clone()
    }

    /// Readable exactly while events are queued; owned by the node, do not close it.
    pub fn event_fd(&self) -> RawFd {
        self.events.fd()
    }

    /// Events dropped because the application did not read them in time.
    pub fn dropped_events(&self) -> u64 {
        self.events.dropped()
    }

    /// Stops the node without leaving (peers will see it fail) and closes its sockets.
    pub fn shutdown(self) -> Result<(), Error> {
        self.close()
    }

    /// [`shutdown`](Self::shutdown) without consuming the handle: later calls return
    /// [`Error::Stopped`], queued events stay readable. Idempotent.
    pub fn close(&self) -> Result<(), Error> {
        // The core's own shutdown first (Go's `Serf.Shutdown`): coalesced events still pending
        // are delivered, and a node that did not leave says so in its log.
        let _ = self.call(|node, _| node.serf.shutdown());
        Ok(self.runtime.close()?)
    }

    /// Whether [`close`](Self::close) or [`shutdown`](Self::shutdown) was called.
    pub fn is_stopped(&self) -> bool {
        self.runtime.is_stopped()
    }
}

/// The acks and responses to a query, as they arrive.
pub struct QueryResponse {
    updates: EventReceiver<QueryUpdate>,
    deadline: Instant,
    done: bool,
}

impl QueryResponse {
    /// When the query stops collecting at the latest.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The next ack or response, waiting up to `timeout`; `None` once the query is done (or
    /// nothing came in time; see [`is_done`](Self::is_done)).
    pub fn next(&mut self, timeout: Duration) -> Option<QueryUpdate> {
        if self.done {
            return None;
        }
        match self.updates.recv_timeout(timeout) {
            Ok(QueryUpdate::Done) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                self.done = true;
                None
            }
            Ok(update) => Some(update),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Readable exactly while updates are waiting (the final "done" included). Owned by the
    /// response: do not close it.
    pub fn fd(&self) -> RawFd {
        self.updates.fd()
    }

    /// Waits for the query to finish and returns every ack and response.
    pub fn collect(mut self) -> Vec<QueryUpdate> {
        let mut out = Vec::new();
        while !self.done {
            let left =
                self.deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
            match self.next(left) {
                Some(u) => out.push(u),
                None if !self.done => break,
                None => {}
            }
        }
        out
    }
}

/// Parses `host`, `host:port` or `name/host:port` (the name is only a hint, as in Go) into the
/// addresses to try.
pub fn resolve(addr: &str) -> Result<Vec<SocketAddr>, Error> {
    let host = addr.rsplit_once('/').map_or(addr, |(_, a)| a);
    if let Ok(sa) = host.parse::<SocketAddr>() {
        return Ok(vec![sa]);
    }
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(vec![SocketAddr::new(ip, DEFAULT_PORT)]);
    }
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else {
        format!("{host}:{DEFAULT_PORT}")
    };
    let found: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|_| Error::Address(addr.to_string()))?
        .collect();
    if found.is_empty() {
        return Err(Error::Address(addr.to_string()));
    }
    Ok(found)
}

/// The core's randomness from the operating system: its protocol choices and, above all, the
/// key of its encryption nonces.
fn os_seed() -> Seed {
    let mut bytes = [0u8; 40];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    let (choices, nonces) = bytes.split_at(8);
    Seed {
        choices: u64::from_le_bytes(choices.try_into().expect("8 bytes")),
        nonces: nonces.try_into().expect("32 bytes"),
    }
}
