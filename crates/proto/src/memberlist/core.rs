//! The SWIM + Lifeguard membership state machine, without I/O.
//!
//! Callers feed it datagrams, stream messages and the passage of time; it answers with datagrams
//! to send ([`Memberlist::poll_transmit`]), streams to open ([`Memberlist::poll_stream`]) and the
//! next instant it wants to be woken at ([`Memberlist::poll_timeout`]). Everything the layer above
//! (serf) must know or provide goes through a [`Delegate`], as in HashiCorp's memberlist, whose
//! behaviour this follows message for message.

use crate::telemetry::{Histogram, Reading, Samples, Total};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::{SmallRng, StdRng};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::awareness::Awareness;
use super::broadcast::{Broadcast, BroadcastQueue, Recipient};
use super::config::Config;
use super::delegate::Delegate;
use super::name_index::NameIndex;
use super::node::{ip_from_bytes, ip_to_bytes, Node};
use super::seed::Seed;
use super::suspicion::{push_pull_scale, suspicion_timeout, Suspicion};
use crate::wire::memberlist::push_pull::PushPull;
use crate::wire::memberlist::stream::{self, StreamMessage};
use crate::wire::memberlist::{
    compound, label, packet, Ack, Alive, Dead, ErrResp, IndirectPing, Message, Nack, NodeState,
    Ping, PushNodeState, Suspect,
};
use crate::wire::msgpack::{Bytes, GoString};
use crate::wire::DecodeError;

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

/// Why we opened a stream, to know what to do with its reply.
enum StreamPurpose {
    /// `started` times the exchange (`memberlist.pushPullNode`).
    PushPull {
        join: Option<u64>,
        started: Instant,
    },
    TcpPing {
        seq: u32,
    },
    User,
}

/// The probe in flight (memberlist probes one node at a time).
struct Probe {
    target: GoString,
    seq: u32,
    sent: Instant,
    /// End of the direct phase: no ack by then starts indirect probes.
    ack_deadline: Instant,
    /// End of the whole probe (probe interval scaled by local health).
    deadline: Instant,
    indirect: bool,
    expected_nacks: usize,
    nacks: usize,
}

/// An indirect probe we run on someone else's behalf.
struct Relay {
    requester: SocketAddr,
    orig_seq: u32,
    nack_at: Option<Instant>,
    expires: Instant,
}

struct SuspicionTimer {
    suspicion: Suspicion,
    state_change: Instant,
}

struct PendingJoin {
    pending: usize,
    contacted: usize,
    errors: Vec<String>,
}

/// The membership state machine of one node.
pub struct Memberlist {
    config: Config,
    rng: SmallRng,
    seq_no: u32,
    incarnation: u32,
    /// Every known node, self included, in probe order.
    nodes: Vec<Node>,
    index: NameIndex,
    probe_index: usize,
    awareness: Awareness,
    broadcasts: BroadcastQueue,
    finished_broadcasts: HashSet<u64>,
    next_notify: u64,
    suspicions: HashMap<GoString, SuspicionTimer>,
    probe: Option<Probe>,
    /// A probe tick came while a probe was running: start the next one as soon as it ends (Go's
    /// ticker keeps one tick buffered).
    probe_tick_pending: bool,
    relays: HashMap<u32, Relay>,
    streams: HashMap<u64, StreamPurpose>,
    next_stream_id: u64,
    joins: HashMap<u64, PendingJoin>,
    next_join_id: u64,
    next_probe: Instant,
    next_gossip: Instant,
    next_push_pull: Instant,
    left: bool,
    transmits: VecDeque<Transmit>,
    outbound: VecDeque<OutboundStream>,
    stats: Stats,
    samples: Samples,
    /// AES-GCM nonces: a ChaCha stream keyed from the OS (see [`Seed::nonces`]).
    nonces: StdRng,
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
        };
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
    fn position(&self, name: &[u8]) -> Option<usize> {
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
        self.transmits.pop_front()
    }

    pub fn poll_stream(&mut self) -> Option<OutboundStream> {
        self.outbound.pop_front()
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
    // inputs

    /// A datagram arrived from `from`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        d: &mut impl Delegate,
    ) {
        self.stats.packets_received += 1;
        self.stats.bytes_received += datagram.len() as u64;
        let payload = match packet::decode(&self.config.wire, datagram) {
            Ok(p) => p,
            Err(e) => {
                self.stats.malformed += 1;
                self.stats.rejected += u64::from(e.kind.is_refusal());
                return;
            }
        };
        let flat = packet::flatten(&payload);
        self.stats.malformed += flat.errors.len() as u64 + flat.truncated_parts as u64;
        for msg in &flat.messages {
            match Message::decode(msg) {
                Ok(m) => self.handle_message(now, from, m, d),
                Err(_) => self.stats.malformed += 1,
            }
        }
    }

    fn handle_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: Message,
        d: &mut impl Delegate,
    ) {
        match msg {
            Message::Ping(p) => self.handle_ping(from, p, d),
            Message::IndirectPing(ind) => self.handle_indirect_ping(now, from, ind, d),
            Message::Ack(a) => self.handle_ack(now, a, d),
            Message::Nack(n) => {
                if let Some(p) = self.probe.as_mut().filter(|p| p.seq == n.seq_no) {
                    p.nacks += 1;
                }
            }
            Message::Suspect(s) => self.suspect_node(now, &s),
            Message::Alive(a) => self.alive_node(now, &a, None, false, d),
            Message::Dead(x) => self.dead_node(now, &x, None, d),
            Message::User(buf) => d.notify_msg(now, &buf),
            Message::Err(_) => self.stats.malformed += 1,
        }
    }

    /// A stream request was read from a connection we accepted. Returns the framed reply to
    /// write back, if the request takes one.
    pub fn handle_stream_request(
        &mut self,
        now: Instant,
        msg: StreamMessage,
        d: &mut impl Delegate,
    ) -> Option<Vec<u8>> {
        self.stats.streams_accepted += 1;
        let reply = match msg {
            StreamMessage::PushPull(remote) => {
                self.stats.push_pulls += 1;
                let reply = self.local_state(remote.join, d);
                self.merge_remote_state(now, remote, d);
                Some(self.frame_stream(&reply, false))
            }
            StreamMessage::Ping(p) => {
                if !p.node.is_empty() && p.node != self.config.name {
                    return None;
                }
                let ack = Message::Ack(Ack {
                    seq_no: p.seq_no,
                    payload: None,
                });
                Some(self.frame_stream(&ack.encode(self.config.wire.dialect), false))
            }
            StreamMessage::User(buf) => {
                if !buf.is_empty() {
                    d.notify_msg(now, &buf);
                }
                None
            }
            StreamMessage::Ack(_) | StreamMessage::Err(_) => None,
        };
        if let Some(reply) = &reply {
            self.count_stream_sent(reply.len());
        }
        reply
    }

    /// The framed error reply for a stream request that could not be read.
    pub fn stream_error_reply(&mut self, error: &DecodeError) -> Vec<u8> {
        self.stats.malformed += 1;
        self.stats.rejected += u64::from(error.kind.is_refusal());
        let msg = Message::Err(ErrResp {
            error: error.to_string().into(),
        });
        let reply = self.frame_stream(&msg.encode(self.config.wire.dialect), false);
        self.count_stream_sent(reply.len());
        reply
    }

    /// The reply to a stream we opened arrived (or the stream failed).
    pub fn handle_stream_reply(
        &mut self,
        now: Instant,
        id: u64,
        reply: Result<StreamMessage, String>,
        d: &mut impl Delegate,
    ) {
        let Some(purpose) = self.streams.remove(&id) else {
            return;
        };
        match purpose {
            StreamPurpose::PushPull { join, started } => {
                let took = now.saturating_duration_since(started);
                self.samples
                    .histogram(Histogram::PushPullNode, millis(took));
                let outcome = match reply {
                    Ok(StreamMessage::PushPull(remote)) => {
                        self.merge_remote_state(now, remote, d);
                        Ok(())
                    }
                    Ok(StreamMessage::Err(e)) => Err(format!("remote error: {}", e.error)),
                    Ok(other) => Err(format!("unexpected reply to push/pull: {other:?}")),
                    Err(e) => Err(e),
                };
                if let Some(join) = join {
                    self.join_progress(join, outcome, d);
                }
            }
            StreamPurpose::TcpPing { seq } => {
                let acked = matches!(reply, Ok(StreamMessage::Ack(a)) if a.seq_no == seq);
                if acked
                    && self
                        .probe
                        .as_ref()
                        .is_some_and(|p| p.seq == seq && p.indirect)
                {
                    // The node answers over TCP but not UDP: alive, though the network is odd.
                    self.finish_probe(now, true, d);
                }
            }
            StreamPurpose::User => {}
        }
    }

    /// Time passed: run whatever is due.
    pub fn handle_timeout(&mut self, now: Instant, d: &mut impl Delegate) {
        self.expire_probe(now, d);
        self.expire_relays(now);
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
            self.open_push_pull(now, addr, Some(id), d);
        }
        id
    }

    /// Sends a user message over a stream (reliable delivery, as `SendReliable`).
    pub fn send_reliable(&mut self, now: Instant, to: SocketAddr, msg: &[u8]) {
        let payload = self.frame_stream(&stream::user_message(msg, self.config.wire.dialect), true);
        self.open_stream(now, to, payload, false, StreamPurpose::User);
    }

    /// Sends a user message in one datagram (`SendToAddress`). Like Go's, it carries no
    /// piggybacked gossip: serf's acks and responses (to itself included) must not use up the
    /// retransmissions of queued broadcasts.
    pub fn send_packet(&mut self, to: SocketAddr, msg: &[u8]) {
        let user = Message::User(msg.to_vec()).encode(self.config.wire.dialect);
        self.raw_send(to, None, user);
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
    // probing

    /// Picks the next node in probe order, skipping ourselves and dead or left nodes; at the end
    /// of the list, reaps long-dead nodes and reshuffles.
    fn probe_round(&mut self, now: Instant, d: &mut impl Delegate) {
        let mut checked = 0;
        while checked < self.nodes.len() {
            if self.probe_index >= self.nodes.len() {
                self.reset_nodes(now);
                self.probe_index = 0;
                checked += 1;
                continue;
            }
            let node = &self.nodes[self.probe_index];
            self.probe_index += 1;
            if node.name == self.config.name || node.is_dead_or_left() {
                checked += 1;
                continue;
            }
            self.probe_node(now, self.probe_index - 1, d);
            return;
        }
    }

    /// Probes `self.nodes[index]`, reading only what the probe needs from it (one probe per
    /// interval is an idle node's main work).
    fn probe_node(&mut self, now: Instant, index: usize, d: &mut impl Delegate) {
        let node = &self.nodes[index];
        let Some(addr) = node.socket_addr() else {
            return;
        };
        let (name, alive, incarnation, protocol_max) = (
            node.name.clone(),
            node.state == NodeState::Alive,
            node.incarnation,
            node.protocol_max(),
        );
        let interval = self.awareness.scale_timeout(self.config.probe_interval);
        if interval > self.config.probe_interval {
            self.stats.degraded_probes += 1;
        }
        let seq = self.next_seq_no();
        let ping = self.ping_to(seq, &name);
        self.probe = Some(Probe {
            target: name.clone(),
            seq,
            sent: now,
            ack_deadline: now + self.config.probe_timeout,
            deadline: now + interval,
            indirect: false,
            expected_nacks: 0,
            nacks: 0,
        });
        let dialect = self.config.wire.dialect;
        if alive {
            self.send_msg(addr, Message::Ping(ping).encode(dialect), d);
        } else {
            // A suspect node gets the accusation with the probe, so it can refute.
            let suspect = Suspect {
                incarnation,
                node: name,
                from: self.config.name.clone(),
            };
            let parts = [
                Message::Ping(ping).encode(dialect),
                Message::Suspect(suspect).encode(dialect),
            ];
            self.raw_send(addr, Some(protocol_max), compound::encode(&parts));
        }
    }

    fn ping_to(&self, seq: u32, target: &GoString) -> Ping {
        let adv = self.config.advertise;
        Ping {
            seq_no: seq,
            node: target.clone(),
            source_addr: Some(Bytes(ip_to_bytes(adv.ip()))),
            source_port: adv.port(),
            source_node: self.config.name.clone(),
        }
    }

    fn handle_ping(&mut self, from: SocketAddr, p: Ping, d: &mut impl Delegate) {
        if !p.node.is_empty() && p.node != self.config.name {
            return;
        }
        let payload = d.ack_payload();
        let ack = Ack {
            seq_no: p.seq_no,
            payload: (!payload.is_empty()).then_some(Bytes(payload)),
        };
        let to = reply_addr(&p.source_addr, p.source_port, from);
        self.send_msg(to, Message::Ack(ack).encode(self.config.wire.dialect), d);
    }

    fn handle_indirect_ping(
        &mut self,
        now: Instant,
        from: SocketAddr,
        ind: IndirectPing,
        d: &mut impl Delegate,
    ) {
        let port = if ind.port == 0 {
            self.config.advertise.port()
        } else {
            ind.port
        };
        let Some(target_ip) = ip_from_bytes(&ind.target) else {
            self.stats.malformed += 1;
            return;
        };
        let seq = self.next_seq_no();
        let ping = self.ping_to(seq, &ind.node);
        let requester = reply_addr(&ind.source_addr, ind.source_port, from);
        let timeout = now + self.config.probe_timeout;
        self.relays.insert(
            seq,
            Relay {
                requester,
                orig_seq: ind.seq_no,
                nack_at: ind.nack.then_some(timeout),
                expires: timeout,
            },
        );
        let ping = Message::Ping(ping).encode(self.config.wire.dialect);
        self.send_msg(SocketAddr::new(target_ip, port), ping, d);
    }

    fn handle_ack(&mut self, now: Instant, ack: Ack, d: &mut impl Delegate) {
        if let Some(probe) = self.probe.as_ref().filter(|p| p.seq == ack.seq_no) {
            if !probe.indirect {
                let rtt = now.saturating_duration_since(probe.sent);
                if let Some(node) = self.node(&probe.target) {
                    d.notify_ping_complete(node, rtt, ack.payload.as_deref().unwrap_or_default());
                }
            }
            self.finish_probe(now, true, d);
        } else if let Some(relay) = self.relays.remove(&ack.seq_no) {
            let ack = Ack {
                seq_no: relay.orig_seq,
                payload: None,
            };
            self.send_msg(
                relay.requester,
                Message::Ack(ack).encode(self.config.wire.dialect),
                d,
            );
        }
    }

    /// Moves the probe in flight along: indirect probes after the probe timeout, failure at the
    /// end of the (scaled) probe interval.
    fn expire_probe(&mut self, now: Instant, d: &mut impl Delegate) {
        let Some(probe) = &self.probe else { return };
        if !probe.indirect && now >= probe.ack_deadline {
            self.start_indirect_probe(d);
        }
        if self
            .probe
            .as_ref()
            .is_some_and(|p| p.indirect && now >= p.deadline)
        {
            self.finish_probe(now, false, d);
        }
    }

    fn start_indirect_probe(&mut self, d: &mut impl Delegate) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        probe.indirect = true;
        let (seq, deadline, target_name) = (probe.seq, probe.deadline, probe.target.clone());
        let Some(target) = self.node(&target_name).cloned() else {
            return;
        };
        let peers = self.random_peers(self.config.indirect_checks, |n| {
            n.name == target.name || n.state != NodeState::Alive
        });
        let me = self.config.name.clone();
        let adv = self.config.advertise;
        let mut expected_nacks = 0;
        for Peer { addr, protocol_max } in peers {
            let nack = protocol_max >= 4;
            expected_nacks += nack as usize;
            let ind = IndirectPing {
                seq_no: seq,
                target: Bytes(target.addr.clone()),
                port: target.port,
                node: target.name.clone(),
                nack,
                source_addr: Some(Bytes(ip_to_bytes(adv.ip()))),
                source_port: adv.port(),
                source_node: me.clone(),
            };
            self.send_msg(
                addr,
                Message::IndirectPing(ind).encode(self.config.wire.dialect),
                d,
            );
        }
        if let Some(p) = self.probe.as_mut() {
            p.expected_nacks = expected_nacks;
        }
        if !self.config.disable_tcp_pings && target.protocol_max() >= 3 {
            if let Some(addr) = target.socket_addr() {
                let ping =
                    Message::Ping(self.ping_to(seq, &target.name)).encode(self.config.wire.dialect);
                let payload = self.frame_stream(&ping, true);
                self.open_stream_until(
                    addr,
                    payload,
                    true,
                    deadline,
                    StreamPurpose::TcpPing { seq },
                );
            }
        }
    }

    /// Ends the probe in flight, adjusting local health, and suspects the target on failure.
    fn finish_probe(&mut self, now: Instant, success: bool, d: &mut impl Delegate) {
        let Some(probe) = self.probe.take() else {
            return;
        };
        self.stats.probes += 1;
        let took = millis(now.saturating_duration_since(probe.sent));
        self.samples.histogram(Histogram::ProbeNode, took);
        if success {
            self.awareness.apply_delta(-1);
        } else {
            self.stats.failed_probes += 1;
            let delta = if probe.expected_nacks > 0 {
                probe.expected_nacks.saturating_sub(probe.nacks)
            } else {
                1
            };
            self.awareness.apply_delta(delta as isize);
            if let Some(node) = self.node(&probe.target) {
                let s = Suspect {
                    incarnation: node.incarnation,
                    node: node.name.clone(),
                    from: self.config.name.clone(),
                };
                self.suspect_node(now, &s);
            }
        }
        if std::mem::take(&mut self.probe_tick_pending) {
            self.probe_round(now, d);
        }
    }

    fn expire_relays(&mut self, now: Instant) {
        let mut nacks = Vec::new();
        self.relays.retain(|_, r| {
            if r.nack_at.is_some_and(|t| now >= t) {
                r.nack_at = None;
                nacks.push((r.requester, r.orig_seq));
            }
            now < r.expires
        });
        for (to, seq) in nacks {
            let nack = Message::Nack(Nack { seq_no: seq }).encode(self.config.wire.dialect);
            self.raw_send(to, None, nack);
        }
    }

    /// Drops nodes dead or left for longer than `GossipToTheDeadTime` (left ones too since
    /// memberlist 0.5, so that departed nodes do not pile up in push/pulls) and reshuffles the
    /// probe order.
    fn reset_nodes(&mut self, now: Instant) {
        let dead_time = self.config.gossip_to_the_dead_time;
        self.nodes.retain(|n| {
            !(n.is_dead_or_left() && now.saturating_duration_since(n.state_change) > dead_time)
        });
        self.nodes.shuffle(&mut self.rng);
        self.reindex();
    }

    fn reindex(&mut self) {
        self.index.rebuild(&self.nodes);
        let (index, nodes) = (&self.index, &self.nodes);
        self.suspicions
            .retain(|name, _| index.get(nodes, name.as_bytes()).is_some());
    }

    /// Where this node itself sits in the node list (always there).
    fn local_index(&self) -> usize {
        self.position(self.config.name.as_bytes())
            .expect("the local node is always known")
    }

    // -----------------------------------------------------------------------------------------
    // gossip and push/pull

    /// Whether a gossip round could send anything.
    fn has_gossip(&self, d: &impl Delegate) -> bool {
        !self.broadcasts.is_empty() || d.has_broadcasts()
    }

    /// One gossip round. Its duration (`memberlist.gossip`) is wall-clock time this core does
    /// not read: the runtime times the call that ran it (see [`Stats::gossip_rounds`]).
    /// `on_time`: the round may add [`Config::gossip_backlog_nodes`] peers.
    fn gossip(&mut self, now: Instant, on_time: bool, d: &mut impl Delegate) {
        self.stats.gossip_rounds += 1;
        let dead_time = self.config.gossip_to_the_dead_time;
        let base = self.config.gossip_nodes;
        let most = base
            + if on_time {
                self.config.gossip_backlog_nodes
            } else {
                0
            };
        let peers = self.random_peers(most, |n| match n.state {
            NodeState::Alive | NodeState::Suspect => false,
            NodeState::Dead => now.saturating_duration_since(n.state_change) > dead_time,
            NodeState::Left => true,
        });
        let avail = self.config.udp_buffer_size
            - compound::HEADER_OVERHEAD
            - label::overhead(&self.config.wire.label)
            - self.encrypt_overhead();
        for (i, &Peer { addr, protocol_max }) in peers.iter().enumerate() {
            let mut msgs = self.get_broadcasts(compound::PART_OVERHEAD, avail, addr, d);
            let used: usize = msgs.iter().map(|m| m.len() + compound::PART_OVERHEAD).sum();
            let payload = match msgs.len() {
                // Nothing this peer has not had: the next peer may still need some.
                0 => continue,
                1 => msgs.pop().expect("one message"),
                _ => compound::encode(&msgs),
            };
            self.raw_send(addr, Some(protocol_max), payload);
            // Past the usual peers, go on only while there is more than a packet's worth.
            if i + 1 >= base && used * 10 < avail * 9 {
                return;
            }
        }
    }

    fn periodic_push_pull(&mut self, now: Instant, d: &mut impl Delegate) {
        let peer = self.random_peers(1, |n| n.state != NodeState::Alive);
        if let Some(&Peer { addr, .. }) = peer.first() {
            self.open_push_pull(now, addr, None, d);
        }
    }

    fn open_push_pull(
        &mut self,
        now: Instant,
        to: SocketAddr,
        join: Option<u64>,
        d: &mut impl Delegate,
    ) {
        let state = self.local_state(join.is_some(), d);
        let payload = self.frame_stream(&state, true);
        // Go counts the dial of a push/pull; the runtime connects after this.
        self.stats.push_pulls_initiated += 1;
        let purpose = StreamPurpose::PushPull { join, started: now };
        self.open_stream(now, to, payload, true, purpose);
    }

    /// Our side of a push/pull: every node we know, then the delegate's state.
    fn local_state(&mut self, join: bool, d: &mut impl Delegate) -> Vec<u8> {
        let nodes = self
            .nodes
            .iter()
            .map(|n| PushNodeState {
                name: n.name.clone(),
                addr: Bytes(n.addr.clone()),
                port: n.port,
                meta: Some(Bytes(n.meta.clone())),
                incarnation: n.incarnation,
                state: n.state,
                vsn: Bytes(n.vsn.to_vec()),
            })
            .collect();
        let pp = PushPull {
            join,
            nodes,
            user_state: d.local_state(join),
        };
        pp.encode(self.config.wire.dialect)
    }

    fn merge_remote_state(&mut self, now: Instant, remote: PushPull, d: &mut impl Delegate) {
        if self.verify_protocol(&remote.nodes).is_err() {
            self.stats.merges_refused += 1;
            return;
        }
        if remote.join {
            let nodes: Vec<Node> = remote
                .nodes
                .iter()
                .map(|r| self.node_from_push(now, r))
                .collect();
            if !d.notify_merge(&nodes) {
                return;
            }
        }
        for r in &remote.nodes {
            match r.state {
                NodeState::Alive => {
                    let a = Alive {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        addr: r.addr.clone(),
                        port: r.port,
                        meta: r.meta.clone(),
                        vsn: r.vsn.clone(),
                    };
                    self.alive_node(now, &a, None, false, d);
                }
                NodeState::Left => {
                    let x = Dead {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        from: r.name.clone(),
                    };
                    self.dead_node(now, &x, None, d);
                }
                NodeState::Dead | NodeState::Suspect => {
                    let s = Suspect {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        from: self.config.name.clone(),
                    };
                    self.suspect_node(now, &s);
                }
            }
        }
        if !remote.user_state.is_empty() {
            d.merge_remote_state(now, &remote.user_state, remote.join);
        }
    }

    fn node_from_push(&self, now: Instant, r: &PushNodeState) -> Node {
        Node {
            name: r.name.clone(),
            addr: r.addr.0.clone(),
            port: r.port,
            meta: r.meta.clone().map(|b| b.0).unwrap_or_default(),
            vsn: vsn_array(&r.vsn),
            incarnation: r.incarnation,
            state: r.state,
            state_change: now,
        }
    }

    /// Every node's current protocol versions must fit the range all alive nodes support (Go
    /// `verifyProtocol`), or the whole merge is refused.
    fn verify_protocol(&self, remote: &[PushNodeState]) -> Result<(), String> {
        let (mut max_pmin, mut min_pmax, mut max_dmin, mut min_dmax) = (0u8, u8::MAX, 0u8, u8::MAX);
        let mut widen = |v: [u8; 6]| {
            max_pmin = max_pmin.max(v[0]);
            min_pmax = min_pmax.min(v[1]);
            max_dmin = max_dmin.max(v[3]);
            min_dmax = min_dmax.min(v[4]);
        };
        for r in remote
            .iter()
            .filter(|r| r.state == NodeState::Alive && !r.vsn.is_empty())
        {
            widen(vsn_array(&r.vsn));
        }
        for n in self.nodes.iter().filter(|n| n.state == NodeState::Alive) {
            widen(n.vsn);
        }
        let check = |name: &GoString, v: [u8; 6]| {
            if v[2] < max_pmin || v[2] > min_pmax {
                return Err(format!(
                    "node {name} protocol {} outside [{max_pmin}, {min_pmax}]",
                    v[2]
                ));
            }
            if v[5] < max_dmin || v[5] > min_dmax {
                return Err(format!(
                    "node {name} delegate protocol {} outside [{max_dmin}, {min_dmax}]",
                    v[5]
                ));
            }
            Ok(())
        };
        for r in remote {
            check(&r.name, vsn_array(&r.vsn))?;
        }
        for n in &self.nodes {
            check(&n.name, n.vsn)?;
        }
        Ok(())
    }

    fn join_progress(&mut self, id: u64, outcome: Result<(), String>, d: &mut impl Delegate) {
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

    // -----------------------------------------------------------------------------------------
    // state changes (Go's aliveNode, suspectNode, deadNode, refute)

    fn own_alive(&self, incarnation: u32, meta: Vec<u8>) -> Alive {
        let adv = self.config.advertise;
        Alive {
            incarnation,
            node: self.config.name.clone(),
            addr: Bytes(ip_to_bytes(adv.ip())),
            port: adv.port(),
            meta: Some(Bytes(meta)),
            vsn: Bytes(self.config.vsn().to_vec()),
        }
    }

    fn alive_node(
        &mut self,
        now: Instant,
        a: &Alive,
        notify: Option<u64>,
        bootstrap: bool,
        d: &mut impl Delegate,
    ) {
        let is_local = a.node == self.config.name;
        if self.left && is_local {
            return;
        }
        if a.vsn.len() >= 3 && (a.vsn[0] == 0 || a.vsn[1] == 0 || a.vsn[0] > a.vsn[1]) {
            return;
        }
        let incoming = Node {
            name: a.node.clone(),
            addr: a.addr.0.clone(),
            port: a.port,
            meta: a.meta.clone().map(|m| m.0).unwrap_or_default(),
            vsn: vsn_array(&a.vsn),
            incarnation: a.incarnation,
            state: NodeState::Alive,
            state_change: now,
        };
        if !d.notify_alive(&incoming) {
            return;
        }
        let mut updates_address = false;
        let idx = match self.position(a.node.as_bytes()) {
            None => {
                // New nodes start dead at incarnation 0, then go through the normal update, at a
                // random place in the probe order.
                let node = Node {
                    state: NodeState::Dead,
                    incarnation: 0,
                    ..incoming.clone()
                };
                let n = self.nodes.len();
                let offset = if n == 0 {
                    0
                } else {
                    self.rng.random_range(0..n)
                };
                self.nodes.push(node);
                self.index.push_at(&mut self.nodes, offset);
                offset
            }
            Some(i) => {
                let existing = &self.nodes[i];
                if existing.addr != a.addr.0 || existing.port != a.port {
                    let reclaim = !self.config.dead_node_reclaim_time.is_zero()
                        && now.saturating_duration_since(existing.state_change)
                            > self.config.dead_node_reclaim_time;
                    if existing.state == NodeState::Left
                        || (existing.state == NodeState::Dead && reclaim)
                    {
                        updates_address = true;
                    } else {
                        let existing = existing.clone();
                        d.notify_conflict(&existing, &incoming);
                        return;
                    }
                }
                i
            }
        };
        let state = &self.nodes[idx];
        if a.incarnation <= state.incarnation && !is_local && !updates_address {
            return;
        }
        if a.incarnation < state.incarnation && is_local {
            return;
        }
        self.suspicions.remove(&a.node);
        let old_state = state.state;
        let old_meta = state.meta.clone();
        if !bootstrap && is_local {
            let same = a.incarnation == state.incarnation
                && incoming.meta == state.meta
                && a.vsn.0 == state.vsn;
            if !same {
                self.refute(a.incarnation);
                // Go counts the refuted message too.
                self.stats.msg_alive += 1;
            }
            return;
        }
        self.broadcast(&a.node, Message::Alive(a.clone()), notify);
        let state = &mut self.nodes[idx];
        if a.vsn.len() >= 6 {
            state.vsn = incoming.vsn;
        }
        state.incarnation = a.incarnation;
        state.meta = incoming.meta;
        state.addr = incoming.addr;
        state.port = a.port;
        if state.state != NodeState::Alive {
            state.state = NodeState::Alive;
            state.state_change = now;
        }
        let state = state.clone();
        self.stats.msg_alive += 1;
        if matches!(old_state, NodeState::Dead | NodeState::Left) {
            d.notify_join(now, &state);
        } else if old_meta != state.meta {
            d.notify_update(now, &state);
        }
    }

    fn suspect_node(&mut self, now: Instant, s: &Suspect) {
        let Some(idx) = self.position(s.node.as_bytes()) else {
            return;
        };
        if s.incarnation < self.nodes[idx].incarnation {
            return;
        }
        if let Some(timer) = self.suspicions.get_mut(&s.node) {
            if timer.suspicion.confirm(s.from.as_bytes()) {
                self.broadcast(&s.node, Message::Suspect(s.clone()), None);
            }
            return;
        }
        if self.nodes[idx].state != NodeState::Alive {
            return;
        }
        if s.node == self.config.name {
            self.refute(s.incarnation);
            return;
        }
        self.broadcast(&s.node, Message::Suspect(s.clone()), None);
        self.stats.msg_suspect += 1;
        let state = &mut self.nodes[idx];
        state.incarnation = s.incarnation;
        state.state = NodeState::Suspect;
        state.state_change = now;
        let n = self.nodes.len();
        let mult = self.config.suspicion_mult;
        let k = if (n as i64) - 2 < (mult as i64 - 2) {
            0
        } else {
            mult.saturating_sub(2)
        };
        let min = suspicion_timeout(mult, n, self.config.probe_interval);
        let max = min * self.config.suspicion_max_timeout_mult;
        let suspicion = Suspicion::new(s.from.as_bytes().to_vec(), k, min, max, now);
        self.suspicions.insert(
            s.node.clone(),
            SuspicionTimer {
                suspicion,
                state_change: now,
            },
        );
    }

    fn expire_suspicions(&mut self, now: Instant, d: &mut impl Delegate) {
        let due: Vec<(GoString, Instant, bool)> = self
            .suspicions
            .iter()
            .filter(|(_, t)| now >= t.suspicion.deadline())
            .map(|(name, t)| {
                let s = &t.suspicion;
                let short = s.k() > 0 && s.confirmations() < s.k();
                (name.clone(), t.state_change, short)
            })
            .collect();
        for (name, state_change, short_of_confirmations) in due {
            self.suspicions.remove(&name);
            let Some(node) = self.node(&name) else {
                continue;
            };
            if node.state == NodeState::Suspect && node.state_change == state_change {
                let dead = Dead {
                    incarnation: node.incarnation,
                    node: name.clone(),
                    from: self.config.name.clone(),
                };
                if short_of_confirmations {
                    self.stats.degraded_timeouts += 1;
                }
                self.dead_node(now, &dead, None, d);
            }
        }
    }

    fn dead_node(&mut self, now: Instant, x: &Dead, notify: Option<u64>, d: &mut impl Delegate) {
        let Some(idx) = self.position(x.node.as_bytes()) else {
            return;
        };
        if x.incarnation < self.nodes[idx].incarnation {
            return;
        }
        self.suspicions.remove(&x.node);
        if self.nodes[idx].is_dead_or_left() {
            return;
        }
        if x.node == self.config.name && !self.left {
            self.refute(x.incarnation);
            return;
        }
        self.broadcast(&x.node, Message::Dead(x.clone()), notify);
        self.stats.msg_dead += 1;
        let state = &mut self.nodes[idx];
        state.incarnation = x.incarnation;
        state.state = if x.node == x.from {
            NodeState::Left
        } else {
            NodeState::Dead
        };
        state.state_change = now;
        let state = state.clone();
        d.notify_leave(now, &state);
    }

    /// Answers an accusation about ourselves with a higher incarnation.
    fn refute(&mut self, accused: u32) {
        let mut inc = self.next_incarnation();
        if accused >= inc {
            self.incarnation = accused + 1;
            inc = self.incarnation;
        }
        self.awareness.apply_delta(1);
        let me = self.local_node().clone();
        let idx = self.local_index();
        self.nodes[idx].incarnation = inc;
        let alive = Alive {
            incarnation: inc,
            ..self.own_alive(inc, me.meta)
        };
        self.broadcast(&me.name, Message::Alive(alive), None);
    }

    fn broadcast(&mut self, node: &GoString, msg: Message, notify: Option<u64>) {
        self.broadcasts.queue(Broadcast {
            key: Some(node.as_bytes().to_vec()),
            message: msg.encode(self.config.wire.dialect),
            notify,
        });
    }

    // -----------------------------------------------------------------------------------------
    // sending

    /// memberlist's own broadcasts first, then the delegate's as user messages.
    fn get_broadcasts(
        &mut self,
        overhead: usize,
        limit: usize,
        to: SocketAddr,
        d: &mut impl Delegate,
    ) -> Vec<Vec<u8>> {
        let (me, nodes) = (&self.config.name, &self.nodes);
        let live_peers = || {
            nodes
                .iter()
                .filter(|n| {
                    n.name != *me && matches!(n.state, NodeState::Alive | NodeState::Suspect)
                })
                .count()
        };
        let to = Recipient::new(to, &live_peers);
        let mut out = self
            .broadcasts
            .get_broadcasts(overhead, limit, nodes.len(), &to);
        let used: usize = out.iter().map(|m| m.len() + overhead).sum();
        let avail = limit.saturating_sub(used);
        if avail > overhead + 1 {
            for msg in d.get_broadcasts(overhead + 1, avail, &to) {
                out.push(Message::User(msg).encode(self.config.wire.dialect));
            }
        }
        out
    }

    /// Sends a message with as much piggybacked gossip as fits.
    fn send_msg(&mut self, to: SocketAddr, msg: Vec<u8>, d: &mut impl Delegate) {
        let avail = self
            .config
            .udp_buffer_size
            .saturating_sub(
                msg.len() + compound::HEADER_OVERHEAD + label::overhead(&self.config.wire.label),
            )
            .saturating_sub(self.encrypt_overhead());
        let extra = self.get_broadcasts(compound::PART_OVERHEAD, avail, to, d);
        let payload = if extra.is_empty() {
            msg
        } else {
            let mut parts = Vec::with_capacity(1 + extra.len());
            parts.push(msg);
            parts.extend(extra);
            compound::encode(&parts)
        };
        self.raw_send(to, None, payload);
    }

    /// Wraps and queues one datagram. A CRC goes to peers with protocol max ≥ 5; like Go, a
    /// destination given only by address is looked up by a node named after its IP.
    fn raw_send(&mut self, to: SocketAddr, protocol_max: Option<u8>, payload: Vec<u8>) {
        let pmax = protocol_max.or_else(|| {
            let mut text = [0u8; 45];
            let i = self.position(ip_text(to.ip(), &mut text))?;
            Some(self.nodes[i].protocol_max())
        });
        let with_crc = pmax.is_some_and(|p| p >= 5);
        let nonces = &mut self.nonces;
        let datagram = packet::encode(&self.config.wire, &payload, with_crc, || nonces.random());
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += datagram.len() as u64;
        self.transmits.push_back(Transmit {
            to,
            payload: datagram,
        });
    }

    fn frame_stream(&mut self, msg: &[u8], dialer: bool) -> Vec<u8> {
        let nonces = &mut self.nonces;
        stream::encode(&self.config.wire, msg, dialer, || nonces.random())
    }

    fn open_stream(
        &mut self,
        now: Instant,
        to: SocketAddr,
        payload: Vec<u8>,
        expect_reply: bool,
        purpose: StreamPurpose,
    ) {
        let deadline = now + self.config.tcp_timeout;
        self.open_stream_until(to, payload, expect_reply, deadline, purpose);
    }

    fn open_stream_until(
        &mut self,
        to: SocketAddr,
        payload: Vec<u8>,
        expect_reply: bool,
        deadline: Instant,
        purpose: StreamPurpose,
    ) -> u64 {
        let id = self.next_stream_id;
        self.next_stream_id += 1;
        if expect_reply {
            self.streams.insert(id, purpose);
        }
        self.count_stream_sent(payload.len());
        self.outbound.push_back(OutboundStream {
            id,
            to,
            payload,
            deadline,
            expect_reply,
        });
        id
    }

    /// `memberlist.tcp.sent`: bytes of a stream request or reply (Go's `rawSendMsgStream`).
    fn count_stream_sent(&mut self, bytes: usize) {
        self.stats.stream_bytes_sent += bytes as u64;
    }

    fn encrypt_overhead(&self) -> usize {
        match self.config.wire.sealing_keyring() {
            Some(_) => self.config.wire.encryption_version.overhead(),
            None => 0,
        }
    }

    // -----------------------------------------------------------------------------------------
    // small helpers

    fn next_seq_no(&mut self) -> u32 {
        self.seq_no = self.seq_no.wrapping_add(1);
        self.seq_no
    }

    fn next_incarnation(&mut self) -> u32 {
        self.incarnation += 1;
        self.incarnation
    }

    fn new_notify(&mut self) -> u64 {
        self.next_notify += 1;
        self.next_notify
    }

    /// Up to `k` distinct random peers (never this node) not excluded by `skip`: 3n random
    /// draws, as Go does, then, where those left eligible nodes out, a walk from a random place
    /// that adds them. Go stops at the draws, so a gossip round in a 3-node cluster skips a peer
    /// 2.6 % of the time; here a round reaches every peer it has room for. Only where to reach
    /// each peer is returned: gossip draws up to 12 peers five times a second, and copying their
    /// names and metadata was most of an idle node's work.
    fn random_peers(&mut self, k: usize, skip: impl Fn(&Node) -> bool) -> Vec<Peer> {
        let n = self.nodes.len();
        let me = &self.config.name;
        let skip = |node: &Node| node.name == *me || skip(node);
        let mut picked: Vec<usize> = Vec::with_capacity(k);
        for _ in 0..3 * n {
            if picked.len() >= k {
                break;
            }
            let i = self.rng.random_range(0..n);
            if skip(&self.nodes[i]) || picked.contains(&i) {
                continue;
            }
            picked.push(i);
        }
        if picked.len() < k && n > 0 {
            let start = self.rng.random_range(0..n);
            for i in (start..n).chain(0..start) {
                if picked.len() >= k {
                    break;
                }
                if !skip(&self.nodes[i]) && !picked.contains(&i) {
                    picked.push(i);
                }
            }
        }
        picked
            .into_iter()
            .filter_map(|i| {
                let node = &self.nodes[i];
                Some(Peer {
                    addr: node.socket_addr()?,
                    protocol_max: node.protocol_max(),
                })
            })
            .collect()
    }
}

/// Where to reach a randomly picked peer, and the newest protocol it speaks.
#[derive(Debug, Clone, Copy)]
struct Peer {
    addr: SocketAddr,
    protocol_max: u8,
}

/// Where to answer: the Source* fields when both are set, else the packet's source.
fn reply_addr(source_addr: &Option<Bytes>, source_port: u16, from: SocketAddr) -> SocketAddr {
    match source_addr.as_deref().and_then(ip_from_bytes) {
        Some(ip) if source_port > 0 => SocketAddr::new(ip, source_port),
        _ => from,
    }
}

/// `ip` as text, written into `buf` (45 bytes fit any IPv6 address): every ping and ack is
/// sent by address alone, and looking its node up by name must not cost an allocation.
fn ip_text(ip: IpAddr, buf: &mut [u8; 45]) -> &[u8] {
    let mut rest = &mut buf[..];
    write!(rest, "{ip}").expect("an IP address fits in 45 bytes");
    let len = 45 - rest.len();
    &buf[..len]
}

fn vsn_array(v: &[u8]) -> [u8; 6] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memberlist::Profile;
    use crate::wire::memberlist::keyring::{Keyring, NONCE_LEN};
    use crate::wire::memberlist::stream::{self as wire_stream};
    use crate::wire::memberlist::WireOptions;

    struct Quiet;
    impl Delegate for Quiet {}

    #[test]
    fn ip_text_is_the_display_form_even_at_full_length() {
        for ip in [
            "127.0.0.1",
            "255.255.255.255",
            "::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
            "fe80::1:2:3:4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut buf = [0u8; 45];
            assert_eq!(ip_text(ip, &mut buf), ip.to_string().as_bytes());
        }
    }

    fn wire(label: &[u8], key: Option<u8>) -> WireOptions {
        WireOptions {
            label: label.to_vec(),
            keyring: key.map(|k| Keyring::new(&[k; 16], &[] as &[&[u8]]).unwrap()),
            compression: false,
            ..WireOptions::default()
        }
    }

    /// A delegate whose queue holds more than any packet: each call fills what it is given
    /// with `per_call` 100-byte messages at most.
    struct Backlog {
        per_call: usize,
    }

    impl Delegate for Backlog {
        fn get_broadcasts(
            &mut self,
            overhead: usize,
            limit: usize,
            _to: &Recipient,
        ) -> Vec<Vec<u8>> {
            let fit = limit / (100 + overhead);
            vec![vec![0xc0; 100]; self.per_call.min(fit)]
        }
        fn has_broadcasts(&self) -> bool {
            true
        }
    }

    /// A node with peers p0..p{n-1} on 127.0.0.1:8000.., and nothing queued or sent yet.
    fn node_with_peers(profile: Profile, peers: u16, seed: u64) -> Memberlist {
        let now = Instant::now();
        let config = Config::new(profile, "n", "127.0.0.1:7946".parse().unwrap());
        let vsn = Bytes(config.vsn().to_vec());
        let mut m = Memberlist::new(config, vec![], now, seed, &mut Quiet);
        for i in 0..peers {
            let alive = Alive {
                addr: Bytes(vec![127, 0, 0, 1]),
                incarnation: 1,
                node: format!("p{i}").into(),
                port: 8000 + i,
                vsn: vsn.clone(),
                ..Alive::default()
            };
            m.alive_node(now, &alive, None, false, &mut Quiet);
        }
        m.broadcasts = BroadcastQueue::new(m.config.retransmit_mult);
        while m.poll_transmit().is_some() {}
        m
    }

    /// In a 3-node cluster on the local profile a broadcast has 2 transmits. When a ping to one
    /// peer carries the first, Go's gossip round gives the second to whichever peer it picks
    /// first, so half the time the other peer never hears it. Here it always goes to the other.
    #[test]
    fn a_piggybacked_copy_is_not_repeated_to_the_same_peer_while_another_has_none() {
        const NEWS: &[u8] = b"news for every peer";
        for seed in 0..32 {
            let mut m = node_with_peers(Profile::Local, 2, seed);
            m.broadcasts.queue(Broadcast {
                key: None,
                message: NEWS.to_vec(),
                notify: None,
            });
            let (p0, p1) = (
                "127.0.0.1:8000".parse().unwrap(),
                "127.0.0.1:8001".parse().unwrap(),
            );
            m.send_msg(p0, b"a ping".to_vec(), &mut Quiet);
            m.gossip(Instant::now(), true, &mut Quiet);
            let got_news: Vec<SocketAddr> = std::iter::from_fn(|| m.poll_transmit())
                .filter(|t| t.payload.windows(NEWS.len()).any(|w| w == NEWS))
                .map(|t| t.to)
                .collect();
            assert_eq!(got_news, [p0, p1], "seed {seed}");
            assert!(m.broadcasts.is_empty(), "seed {seed}: both transmits spent");
        }
    }

    /// Packets one gossip round of a node with 20 peers sends.
    fn packets_in_a_round(per_call: usize, on_time: bool) -> usize {
        let mut m = node_with_peers(Profile::Lan, 20, 7);
        m.gossip(Instant::now(), on_time, &mut Backlog { per_call });
        std::iter::from_fn(|| m.poll_transmit()).count()
    }

    #[test]
    fn a_backlog_reaches_more_peers_only_while_packets_fill_and_rounds_run_on_time() {
        let base = Config::new(Profile::Lan, "n", "127.0.0.1:1".parse().unwrap());
        let (usual, most) = (
            base.gossip_nodes,
            base.gossip_nodes + base.gossip_backlog_nodes,
        );
        assert_eq!(
            packets_in_a_round(3, true),
            usual,
            "a packet's worth: Go's round"
        );
        assert_eq!(
            packets_in_a_round(1000, true),
            most,
            "a backlog: more peers"
        );
        assert_eq!(
            packets_in_a_round(1000, false),
            usual,
            "a late round adds none"
        );
    }

    /// Plaintext, wrongly keyed and wrongly labelled packets (and a plaintext stream) are
    /// refused, counted as `rejected` and `malformed`, and answered with nothing; garbage is
    /// only `malformed`, and a correctly sealed ping is answered.
    #[test]
    fn refused_packets_and_streams_are_counted_as_rejected() {
        let now = Instant::now();
        let me: SocketAddr = "127.0.0.1:7946".parse().unwrap();
        let from: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let mut config = Config::new(Profile::Local, "n", me);
        config.wire = wire(b"blue", Some(1));
        let mut m = Memberlist::new(config, vec![], now, 1, &mut Quiet);
        while m.poll_transmit().is_some() {}
        let ping = |seq_no| {
            Message::Ping(Ping {
                node: "n".into(),
                seq_no,
                ..Ping::default()
            })
            .encode(crate::wire::msgpack::Dialect::GOSSIP)
        };
        let refused = [
            packet::encode(&wire(b"blue", None), &ping(1), false, || [7; NONCE_LEN]),
            packet::encode(&wire(b"blue", Some(2)), &ping(2), false, || [7; NONCE_LEN]),
            packet::encode(&wire(b"red", Some(1)), &ping(3), false, || [7; NONCE_LEN]),
            packet::encode(&wire(b"", Some(1)), &ping(4), false, || [7; NONCE_LEN]),
            // Too short to be sealed: not encrypted either.
            packet::encode(&wire(b"blue", None), &[0, 1, 2], false, || [7; NONCE_LEN]),
        ];
        for datagram in &refused {
            m.handle_packet(now, from, datagram, &mut Quiet);
        }
        assert!(m.poll_transmit().is_none(), "no ack for a refused ping");
        assert_eq!((m.stats().rejected, m.stats().malformed), (5, 5));

        // Garbage inside a well-sealed packet is damaged, not refused.
        let garbage = packet::encode(&wire(b"blue", Some(1)), &[0xc1], false, || [7; NONCE_LEN]);
        m.handle_packet(now, from, &garbage, &mut Quiet);
        assert_eq!((m.stats().rejected, m.stats().malformed), (5, 6));

        let plain_stream =
            wire_stream::encode(&wire(b"blue", None), &ping(5), true, || [7; NONCE_LEN]);
        let err = wire_stream::decode(&m.config.wire, &plain_stream, false).unwrap_err();
        m.stream_error_reply(&err);
        assert_eq!((m.stats().rejected, m.stats().malformed), (6, 7));

        let good = packet::encode(&wire(b"blue", Some(1)), &ping(6), false, || [7; NONCE_LEN]);
        m.handle_packet(now, from, &good, &mut Quiet);
        assert!(m.poll_transmit().is_some(), "a sealed ping is acked");
        assert_eq!((m.stats().rejected, m.stats().malformed), (6, 7));
    }
}
