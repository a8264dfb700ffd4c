//! The failure detector and membership state (HashiCorp's `state.go`): probe scheduling, pings,
//! acks and nacks, indirect probes and the relays we run for others, the alive, suspect and dead
//! messages (Go's `aliveNode`, `suspectNode`, `deadNode`), suspicion timers, refutation, local
//! health (Lifeguard's awareness) and reaping of nodes dead for longer than
//! `GossipToTheDeadTime`.
//!
//! Two local rules differ from Go's, both about accusations already refuted, and both keep the
//! wire as it is: an accusation at a newer incarnation restarts a suspicion instead of confirming
//! it, and a node hearing a stale accusation of itself gossips its alive message again. Under
//! heavy loss they prevent most false failures (see `tests/sim_memberlist.rs`).

use crate::log;
use crate::telemetry::Histogram;
use std::net::SocketAddr;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::Rng;

use super::broadcast::Broadcast;
use super::core::{millis, vsn_array, Memberlist};
use super::delegate::Delegate;
use super::gossip::Peer;
use super::inflight::{Probe, Relay, StreamPurpose, SuspicionTimer};

use super::node::{ip_from_bytes, ip_to_bytes, Node};
use super::suspicion::{suspicion_timeout, Suspicion};
use crate::wire::memberlist::{
    compound, Ack, Alive, Dead, IndirectPing, Message, Nack, NodeState, Ping, Suspect,
};
use crate::wire::msgpack::{Bytes, GoString};

impl Memberlist {
    // -----------------------------------------------------------------------------------------
    // probing

    /// Picks the next node in probe order, skipping ourselves and dead or left nodes; at the end
    /// of the list, reaps long-dead nodes and reshuffles.
    pub(super) fn probe_round(&mut self, now: Instant, d: &mut impl Delegate) {
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
            incarnation,
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

    pub(super) fn handle_ping(&mut self, from: SocketAddr, p: Ping, d: &mut impl Delegate) {
        if !p.node.is_empty() && p.node != self.config.name {
            log!(
                self.log,
                Warn,
                "memberlist: Got ping for unexpected node '{}' from={from}",
                p.node
            );
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

    pub(super) fn handle_indirect_ping(
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

    pub(super) fn handle_ack(&mut self, now: Instant, ack: Ack, d: &mut impl Delegate) {
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

    /// A nack for the probe in flight: an indirect probe's relay heard nothing from the target.
    pub(super) fn handle_nack(&mut self, n: Nack) {
        if let Some(p) = self.probe.as_mut().filter(|p| p.seq == n.seq_no) {
            p.nacks += 1;
        }
    }

    /// Moves the probe in flight along: indirect probes after the probe timeout, failure at the
    /// end of the (scaled) probe interval.
    pub(super) fn expire_probe(&mut self, now: Instant, d: &mut impl Delegate) {
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
        log!(
            self.log,
            Debug,
            "memberlist: Failed UDP ping: {target_name} (timeout reached)"
        );
        let Some(target) = self.node(&target_name).cloned() else {
            return;
        };
        let peers = self.random_peers(self.config.indirect_checks, |n| {
            n.name == target.name || n.state != NodeState::Alive
        });
        let me = self.config.name.clone();
        let adv = self.config.advertise;
        let mut expected_nacks = 0;
        for Peer {
            addr, protocol_max, ..
        } in peers
        {
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
    pub(super) fn finish_probe(&mut self, now: Instant, success: bool, d: &mut impl Delegate) {
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
            log!(
                self.log,
                Info,
                "memberlist: Suspect {} has failed, no acks received",
                probe.target
            );
            let s = Suspect {
                incarnation: probe.incarnation,
                node: probe.target,
                from: self.config.name.clone(),
            };
            self.suspect_node(now, &s);
        }
        if std::mem::take(&mut self.probe_tick_pending) {
            self.probe_round(now, d);
        }
    }

    /// Relays whose target stayed silent send their requester a nack, with gossip piggybacked
    /// as on any other probe message (Go's `sendMsg`).
    pub(super) fn expire_relays(&mut self, now: Instant, d: &mut impl Delegate) {
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
            self.send_msg(to, nack, d);
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

    // -----------------------------------------------------------------------------------------
    // state changes (Go's aliveNode, suspectNode, deadNode, refute)

    pub(super) fn own_alive(&self, incarnation: u32, meta: Vec<u8>) -> Alive {
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

    pub(super) fn alive_node(
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

    pub(super) fn suspect_node(&mut self, now: Instant, s: &Suspect) {
        let Some(idx) = self.position(s.node.as_bytes()) else {
            return;
        };
        let known = &self.nodes[idx];
        if s.incarnation < known.incarnation {
            if s.node == self.config.name {
                self.reassert();
            }
            return;
        }
        // Go takes any accusation of a suspect node as a confirmation, which shortens the timer.
        // One at a newer incarnation says the node refuted the suspicion we hold: it is a new
        // accusation and gets a timer of its own, so that the refuted one cannot kill the node.
        let refuted = s.incarnation > known.incarnation && known.state == NodeState::Suspect;
        if !refuted {
            if let Some(timer) = self.suspicions.get_mut(&s.node) {
                if timer.suspicion.confirm(s.from.as_bytes()) {
                    self.broadcast(&s.node, Message::Suspect(s.clone()), None);
                }
                return;
            }
            if self.nodes[idx].state != NodeState::Alive {
                return;
            }
        }
        if s.node == self.config.name {
            log!(
                self.log,
                Warn,
                "memberlist: Refuting a suspect message (from: {})",
                s.from
            );
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

    pub(super) fn expire_suspicions(&mut self, now: Instant, d: &mut impl Delegate) {
        let due: Vec<(GoString, Instant, bool, u32)> = self
            .suspicions
            .iter()
            .filter(|(_, t)| now >= t.suspicion.deadline())
            .map(|(name, t)| {
                let s = &t.suspicion;
                let short = s.k() > 0 && s.confirmations() < s.k();
                (name.clone(), t.state_change, short, s.confirmations())
            })
            .collect();
        for (name, state_change, short_of_confirmations, confirmations) in due {
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
                log!(
                    self.log,
                    Info,
                    "memberlist: Marking {name} as failed, suspect timeout reached \
                     ({confirmations} peer confirmations)"
                );
                self.dead_node(now, &dead, None, d);
            }
        }
    }

    pub(super) fn dead_node(
        &mut self,
        now: Instant,
        x: &Dead,
        notify: Option<u64>,
        d: &mut impl Delegate,
    ) {
        let Some(idx) = self.position(x.node.as_bytes()) else {
            return;
        };
        if x.incarnation < self.nodes[idx].incarnation {
            if x.node == self.config.name {
                self.reassert();
            }
            return;
        }
        self.suspicions.remove(&x.node);
        if self.nodes[idx].is_dead_or_left() {
            return;
        }
        if x.node == self.config.name && !self.left {
            log!(
                self.log,
                Warn,
                "memberlist: Refuting a dead message (from: {})",
                x.from
            );
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
        let idx = self.local_index();
        self.nodes[idx].incarnation = inc;
        self.gossip_own_alive();
    }

    /// Answers an accusation about ourselves that we have already refuted, by gossiping our
    /// current alive message again. Go ignores such a message; but under heavy loss it shows
    /// that our refutation has not reached every peer yet, and a peer it misses declares us dead
    /// when its timer runs out. Peers that have the refutation ignore the repeat, so it costs a
    /// few piggybacked messages, and only while stale accusations circulate.
    fn reassert(&mut self) {
        if !self.left {
            self.gossip_own_alive();
        }
    }

    /// Queues our alive message at our current incarnation.
    fn gossip_own_alive(&mut self) {
        let me = self.local_node();
        let alive = self.own_alive(me.incarnation, me.meta.clone());
        self.broadcast(&self.config.name.clone(), Message::Alive(alive), None);
    }

    fn broadcast(&mut self, node: &GoString, msg: Message, notify: Option<u64>) {
        self.broadcasts.queue(Broadcast {
            key: Some(node.as_bytes().to_vec()),
            message: msg.encode(self.config.wire.dialect),
            notify,
        });
    }
}

/// Where to answer: the Source* fields when both are set, else the packet's source.
fn reply_addr(source_addr: &Option<Bytes>, source_port: u16, from: SocketAddr) -> SocketAddr {
    match source_addr.as_deref().and_then(ip_from_bytes) {
        Some(ip) if source_port > 0 => SocketAddr::new(ip, source_port),
        _ => from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memberlist::{Config, Profile};
    use std::time::Duration;

    struct Quiet;
    impl Delegate for Quiet {}

    fn memberlist(now: Instant) -> Memberlist {
        let config = Config::new(Profile::Lan, "me", "127.0.0.1:7946".parse().unwrap());
        let mut m = Memberlist::new(config, vec![], now, 1, &mut Quiet);
        m.clear_broadcasts();
        m
    }

    fn accusation(node: &str, incarnation: u32, from: &str) -> Suspect {
        Suspect {
            incarnation,
            node: node.into(),
            from: from.into(),
        }
    }

    /// The messages queued for gossip, decoded.
    fn queued(m: &mut Memberlist) -> Vec<Message> {
        let to = "127.0.0.9:7946".parse().unwrap();
        m.get_broadcasts(0, 64 * 1024, to, true, &mut Quiet)
            .iter()
            .map(|b| Message::decode(b).unwrap())
            .collect()
    }

    #[test]
    fn an_accusation_already_refuted_gets_our_alive_message_again() {
        let now = Instant::now();
        let mut m = memberlist(now);
        let first = m.local_node().incarnation;
        m.suspect_node(now, &accusation("me", first, "a"));
        let refuted = m.local_node().incarnation;
        assert!(refuted > first);
        m.clear_broadcasts();

        m.suspect_node(now, &accusation("me", first, "b"));
        let stale_dead = Dead {
            incarnation: first,
            node: "me".into(),
            from: "c".into(),
        };
        m.dead_node(now, &stale_dead, None, &mut Quiet);
        let sent = queued(&mut m);
        assert!(
            matches!(&sent[..], [Message::Alive(a)] if a.node == "me" && a.incarnation == refuted),
            "{sent:?}"
        );
        assert_eq!(m.local_node().incarnation, refuted, "no new incarnation");
    }

    #[test]
    fn an_accusation_at_a_newer_incarnation_restarts_the_suspicion() {
        let t0 = Instant::now();
        let mut m = memberlist(t0);
        let peer = Alive {
            incarnation: 1,
            node: "peer".into(),
            addr: Bytes(vec![127, 0, 0, 2]),
            port: 7946,
            meta: None,
            vsn: Bytes(m.config.vsn().to_vec()),
        };
        m.alive_node(t0, &peer, None, false, &mut Quiet);
        m.suspect_node(t0, &accusation("peer", 1, "a"));
        let first_deadline = m.suspicions[&GoString::from("peer")].suspicion.deadline();

        // The peer refuted (incarnation 2), and someone else's probe failed against it since.
        let t1 = t0 + Duration::from_millis(100);
        m.suspect_node(t1, &accusation("peer", 2, "b"));
        let node = m.node(&"peer".into()).unwrap();
        assert_eq!((node.state, node.incarnation), (NodeState::Suspect, 2));

        // Taken as a confirmation, it would have brought the deadline forward.
        m.expire_suspicions(first_deadline, &mut Quiet);
        assert_eq!(m.node(&"peer".into()).unwrap().state, NodeState::Suspect);
        let renewed = m.suspicions[&GoString::from("peer")].suspicion.deadline();
        assert!(renewed > first_deadline);
        m.expire_suspicions(renewed, &mut Quiet);
        let node = m.node(&"peer".into()).unwrap();
        assert_eq!((node.state, node.incarnation), (NodeState::Dead, 2));
    }
}
