//! The SWIM + Lifeguard membership state machine, without I/O: the [`Memberlist`] type, its
//! public inputs and outputs, and the commands a user issues (HashiCorp's `memberlist.go`).
//!
//! Callers feed it datagrams, stream messages and the passage of time; it answers with datagrams
//! to send ([`Memberlist::poll_transmit`]), streams to open ([`Memberlist::poll_stream`]) and the
//! next instant it wants to be woken at ([`Memberlist::poll_timeout`]). Everything the layer above
//! (serf) must know or provide goes through a [`Delegate`], as in HashiCorp's memberlist, whose
//! behaviour this follows message for message.
//!
//! The work itself is spread over sibling modules, each an `impl Memberlist` block along the
//! seams of Go's sources: the failure detector and membership state in `state` (`state.go`),
//! packets, streams and push/pull in `net` (`net.go`), and gossip rounds in `gossip`.

use crate::log::Log;
use crate::shrink;
use crate::telemetry::{Reading, Samples, Total};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng};

use super::awareness::Awareness;
use super::broadcast::BroadcastQueue;
use super::config::Config;
use super::delegate::Delegate;
use super::inflight::{Probe, Relay, StreamPurpose, SuspicionTimer};
use super::name_index::NameIndex;
use super::node::Node;
use super::seed::Seed;
use super::suspicion::push_pull_scale;
use crate::wire::memberlist::{Dead, NodeState};
use crate::wire::msgpack::GoString;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

/// A stream to open: connect to `to`, write `payload`, and, if `expect_reply`, read one framed
/// reply and hand it to [`Memberlist::handle_stream_reply`] (also called with an error on failure
/// or when `deadline` passes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundStream {
    pub id: u64,
    pub to: SocketAddr,
    pub payload: Vec<u8>,
    pub deadline: Instant,
    pub expect_reply: bool,
}

/// Counters for what was received, sent and dropped. Most mirror one of HashiCorp's
/// `memberlist.*` metrics (named in each field's doc; [`Stats::totals`] pairs them), which the
/// runtime exports from here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets_received: u64,
    /// Bytes of the datagrams received (`memberlist.udp.received`).
    pub bytes_received: u64,
    /// Packets or messages that could not be decoded (dropped, nothing else lost).
    pub malformed: u64,
    /// Of those, datagrams and stream requests refused for their label or encryption: a wrong or
    /// missing label, plaintext while a keyring is set (`GossipVerifyIncoming`), or sealed with
    /// no installed key. Go only logs these.
    pub rejected: u64,
    pub streams_accepted: u64,
    /// Push/pull requests from other nodes answered.
    pub push_pulls: u64,
    /// Push/pull requests refused because of incompatible protocol versions.
    pub merges_refused: u64,
    /// Datagrams queued for sending, and their bytes (`memberlist.udp.sent`).
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Bytes of stream requests and replies written (`memberlist.tcp.sent`).
    pub stream_bytes_sent: u64,
    /// Push/pull streams opened, for joins and periodic syncs (`memberlist.tcp.connect`).
    pub push_pulls_initiated: u64,
    /// Alive, suspect and dead messages that changed what we know (`memberlist.msg.*`).
    pub msg_alive: u64,
    pub msg_suspect: u64,
    pub msg_dead: u64,
    /// Probes finished, acked or not (`memberlist.probeNode`).
    pub probes: u64,
    /// Probes that failed: the target got suspected.
    pub failed_probes: u64,
    /// Probes run with an interval stretched by poor local health (`memberlist.degraded.probe`).
    pub degraded_probes: u64,
    /// Suspicions that ran out before the expected confirmations (`memberlist.degraded.timeout`).
    pub degraded_timeouts: u64,
    /// Gossip rounds (`memberlist.gossip`).
    pub gossip_rounds: u64,
}

impl Stats {
    /// The fields HashiCorp counts as `memberlist.*` counters, under Go's names.
    pub fn totals(&self) -> [Total; 9] {
        let total = |name, value| Total { name, value };
        [
            total("memberlist.udp.received", self.bytes_received),
            total("memberlist.udp.sent", self.bytes_sent),
            total("memberlist.tcp.sent", self.stream_bytes_sent),
            total("memberlist.tcp.connect", self.push_pulls_initiated),
            total("memberlist.msg.alive", self.msg_alive),
            total("memberlist.msg.suspect", self.msg_suspect),
            total("memberlist.msg.dead", self.msg_dead),
            total("memberlist.degraded.probe", self.degraded_probes),
            total("memberlist.degraded.timeout", self.degraded_timeouts),
        ]
    }
}

/// A join in progress: how many of its push/pulls are still out, and how those done went.
struct PendingJoin {
    pending: usize,
    contacted: usize,
    errors: Vec<String>,
}

/// The membership state machine of one node.
pub struct Memberlist {
    pub(super) config: Config,
    pub(super) rng: SmallRng,
    seq_no: u32,
    pub(super) incarnation: u32,
    /// Every known node, self included, in probe order.
    pub(super) nodes: Vec<Node>,
    pub(super) index: NameIndex,
    pub(super) probe_index: usize,
    pub(super) awareness: Awareness,
    pub(super) broadcasts: BroadcastQueue,
    finished_broadcasts: HashSet<u64>,
    next_notify: u64,
    pub(super) suspicions: HashMap<GoString, SuspicionTimer>,
    pub(super) probe: Option<Probe>,
    /// A probe tick came while a probe was running: start the next one as soon as it ends (Go's
    /// ticker keeps one tick buffered).
    pub(super) probe_tick_pending: bool,
    pub(super) relays: HashMap<u32, Relay>,
    pub(super) streams: HashMap<u64, StreamPurpose>,
    pub(super) next_stream_id: u64,
    joins: HashMap<u64, PendingJoin>,
    next_join_id: u64,
    next_probe: Instant,
    next_gossip: Instant,
    next_push_pull: Instant,
    pub(super) left: bool,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) outbound: VecDeque<OutboundStream>,
    pub(super) stats: Stats,
    pub(super) samples: Samples,
    /// HashiCorp's `memberlist:` log lines (see [`crate::log`]).
    pub(crate) log: Log,
    /// AES-GCM nonces: a ChaCha stream keyed from the OS (see [`Seed::nonces`]).
    pub(super) nonces: StdRng,
}

impl Memberlist {
    /// Starts a node that knows only itself, alive at incarnation 1 with `meta`. `seed` drives
    /// every random choice, so a run can be replayed.
    pub fn new(
        config: Config,
        meta: Vec<u8>,
        now: Instant,
        seed: impl Into<Seed>,
        d: &mut impl Delegate,
    ) -> Memberlist {
        let seed = seed.into();
        let mut rng = SmallRng::seed_from_u64(seed.choices);
        // Go staggers each ticker by a random fraction of its interval.
        let mut stagger = |interval: Duration| now + interval.mul_f64(rng.random::<f64>());
        let next_probe = stagger(config.probe_interval);
        let next_gossip = stagger(config.gossip_interval);
        // Go waits out the stagger and then a whole interval before the first periodic
        // push/pull (joins exchange state anyway).
        let next_push_pull = stagger(config.push_pull_interval) + config.push_pull_interval;
        let mut m = Memberlist {
            awareness: Awareness::new(config.awareness_max_multiplier),
            broadcasts: BroadcastQueue::new(config.retransmit_mult),
            config,
            rng,
            seq_no: 0,
            incarnation: 0,
            nodes: Vec::new(),
            index: NameIndex::default(),
            probe_index: 0,
            finished_broadcasts: HashSet::new(),
            next_notify: 0,
            suspicions: HashMap::new(),
            probe: None,
            probe_tick_pending: false,
            relays: HashMap::new(),
            streams: HashMap::new(),
            next_stream_id: 0,
            joins: HashMap::new(),
            next_join_id: 0,
            next_probe,
            next_gossip,
            next_push_pull,
            left: false,
            transmits: VecDeque::new(),
            outbound: VecDeque::new(),
            stats: Stats::default(),
            samples: Samples::default(),
            nonces: StdRng::from_seed(seed.nonces),
            log: Log::default(),
        };
        m.log.set_threshold(m.config.log_level);
        let incarnation = m.next_incarnation();
        let alive = m.own_alive(incarnation, meta);
        m.alive_node(now, &alive, None, true, d);
        m
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Label, keyring and compression, for the runtime's stream decoding; mutable for key
    /// rotation.
    pub fn wire_options(&self) -> &crate::wire::memberlist::WireOptions {
        &self.config.wire
    }

    pub fn wire_options_mut(&mut self) -> &mut crate::wire::memberlist::WireOptions {
        &mut self.config.wire
    }

    pub fn local_node(&self) -> &Node {
        &self.nodes[self.local_index()]
    }

    /// Every known node, self included, dead and left ones until they are reaped.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, name: &GoString) -> Option<&Node> {
        let i = self.position(name.as_bytes())?;
        Some(&self.nodes[i])
    }

    /// Where the node called `name` sits in the node list.
    pub(super) fn position(&self, name: &[u8]) -> Option<usize> {
        self.index.get(&self.nodes, name)
    }

    /// Alive nodes, self included (Go `NumMembers`).
    pub fn num_alive(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.state == NodeState::Alive)
            .count()
    }

    /// Lifeguard health score: 0 is healthy.
    pub fn health_score(&self) -> usize {
        self.awareness.score()
    }

    /// Reports the `memberlist.*` counters' totals, the health score and the samples kept
    /// since the last call (see [`crate::telemetry`]).
    pub fn read_telemetry(&mut self, out: &mut dyn FnMut(Reading)) {
        for total in self.stats.totals() {
            out(Reading::Total(total));
        }
        out(Reading::Gauge(
            "memberlist.health.score",
            self.awareness.score() as f64,
        ));
        self.samples.drain(out);
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn has_left(&self) -> bool {
        self.left
    }

    // -----------------------------------------------------------------------------------------
    // outputs

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        shrink::pop_front(&mut self.transmits)
    }

    pub fn poll_stream(&mut self) -> Option<OutboundStream> {
        shrink::pop_front(&mut self.outbound)
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work. Gossip
    /// ticks count only while something is queued: an idle node does not wake for them.
    pub fn poll_timeout(&self, d: &impl Delegate) -> Option<Instant> {
        let mut next = self.next_probe;
        if self.has_gossip(d) {
            next = next.min(self.next_gossip);
        }
        if !self.config.push_pull_interval.is_zero() {
            next = next.min(self.next_push_pull);
        }
        if let Some(p) = &self.probe {
            next = next.min(if p.indirect {
                p.deadline
            } else {
                p.ack_deadline
            });
        }
        for r in self.relays.values() {
            next = next.min(r.nack_at.unwrap_or(r.expires).min(r.expires));
        }
        for s in self.suspicions.values() {
            next = next.min(s.suspicion.deadline());
        }
        Some(next)
    }

    /// Drops every queued broadcast; their notify ids count as finished.
    ///
    /// Only for simulators that seed a node's member list directly (a push/pull carrying the
    /// whole cluster): every seeded alive message is news the whole cluster already has, and
    /// gossiping it would swamp the queue (thousands of entries per node at 10,000 nodes).
    pub fn clear_broadcasts(&mut self) {
        self.broadcasts.reset();
    }

    /// Whether the broadcast with this notify id has been sent as often as it will be.
    pub fn broadcast_finished(&mut self, id: u64) -> bool {
        self.finished_broadcasts
            .extend(self.broadcasts.take_finished());
        self.finished_broadcasts.remove(&id)
    }

    // -----------------------------------------------------------------------------------------
    // time (datagrams and streams come in through `net`)

    /// Time passed: run whatever is due.
    pub fn handle_timeout(&mut self, now: Instant, d: &mut impl Delegate) {
        self.expire_probe(now, d);
        self.expire_relays(now, d);
        self.expire_suspicions(now, d);
        if now >= self.next_probe {
            self.next_probe = next_tick(self.next_probe, self.config.probe_interval, now);
            if self.probe.is_some() {
                self.probe_tick_pending = true;
            } else {
                self.probe_round(now, d);
            }
        }
        if now >= self.next_gossip {
            // A round that runs late says the loop is short of CPU: no backlog peers then.
            let on_time =
                now.saturating_duration_since(self.next_gossip) < self.config.gossip_interval / 2;
            self.next_gossip = next_tick(self.next_gossip, self.config.gossip_interval, now);
            if self.has_gossip(d) {
                self.gossip(now, on_time, d);
            }
        }
        if !self.config.push_pull_interval.is_zero() && now >= self.next_push_pull {
            let interval = push_pull_scale(self.config.push_pull_interval, self.nodes.len());
            self.next_push_pull = next_tick(self.next_push_pull, interval, now);
            self.periodic_push_pull(now, d);
        }
    }

    // -----------------------------------------------------------------------------------------
    // commands

    /// Joins through the given addresses with a push/pull to each; the outcome arrives as
    /// [`Delegate::join_complete`] with the returned id.
    pub fn join(&mut self, now: Instant, addrs: &[SocketAddr], d: &mut impl Delegate) -> u64 {
        let id = self.next_join_id;
        self.next_join_id += 1;
        if addrs.is_empty() {
            d.join_complete(id, 0, Vec::new());
            return id;
        }
        self.joins.insert(
            id,
            PendingJoin {
                pending: addrs.len(),
                contacted: 0,
                errors: Vec::new(),
            },
        );
        for &addr in addrs {
            // Joined by address: Go logs the empty name.
            self.open_push_pull(now, addr, "", Some(id), d);
        }
        id
    }

    pub(super) fn join_progress(
        &mut self,
        id: u64,
        outcome: Result<(), String>,
        d: &mut impl Delegate,
    ) {
        let Some(join) = self.joins.get_mut(&id) else {
            return;
        };
        join.pending -= 1;
        match outcome {
            Ok(()) => join.contacted += 1,
            Err(e) => join.errors.push(e),
        }
        if join.pending == 0 {
            let join = self.joins.remove(&id).expect("present");
            d.join_complete(id, join.contacted, join.errors);
        }
    }

    /// Announces new metadata with a higher incarnation. Returns the notify id of the broadcast.
    pub fn update_meta(&mut self, now: Instant, meta: Vec<u8>, d: &mut impl Delegate) -> u64 {
        let notify = self.new_notify();
        let incarnation = self.next_incarnation();
        let alive = self.own_alive(incarnation, meta);
        self.alive_node(now, &alive, Some(notify), true, d);
        notify
    }

    /// Broadcasts that we leave. Returns the notify id of the broadcast to wait for, or `None`
    /// when no other node is alive to hear it.
    pub fn leave(&mut self, now: Instant, d: &mut impl Delegate) -> Option<u64> {
        if self.left {
            return None;
        }
        self.left = true;
        let me = self.local_node();
        let dead = Dead {
            incarnation: me.incarnation,
            node: me.name.clone(),
            from: me.name.clone(),
        };
        let notify = self.new_notify();
        self.dead_node(now, &dead, Some(notify), d);
        let others_alive = self
            .nodes
            .iter()
            .any(|n| n.name != self.config.name && n.state == NodeState::Alive);
        others_alive.then_some(notify)
    }

    // -----------------------------------------------------------------------------------------
    // small helpers

    pub(super) fn next_seq_no(&mut self) -> u32 {
        self.seq_no = self.seq_no.wrapping_add(1);
        self.seq_no
    }

    pub(super) fn next_incarnation(&mut self) -> u32 {
        self.incarnation += 1;
        self.incarnation
    }

    fn new_notify(&mut self) -> u64 {
        self.next_notify += 1;
        self.next_notify
    }

    /// Where this node itself sits in the node list (always there).
    pub(super) fn local_index(&self) -> usize {
        self.position(self.config.name.as_bytes())
            .expect("the local node is always known")
    }
}

pub(super) fn vsn_array(v: &[u8]) -> [u8; 6] {
    let mut out = [0u8; 6];
    let n = v.len().min(6);
    out[..n].copy_from_slice(&v[..n]);
    out
}

/// A duration in (fractional) milliseconds: every timer metric is recorded in ms, as go-metrics'
/// `MeasureSince` does with its default granularity.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The next tick of a fixed-interval ticker after `now`; ticks missed while busy are dropped.
fn next_tick(last: Instant, interval: Duration, now: Instant) -> Instant {
    if interval.is_zero() {
        return now + Duration::from_secs(3600);
    }
    let mut next = last + interval;
    if next <= now {
        let behind = now.duration_since(next).as_nanos() / interval.as_nanos() + 1;
        next += interval * behind as u32;
    }
    next
}
