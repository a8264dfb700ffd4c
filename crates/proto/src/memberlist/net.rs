//! Packets and streams (HashiCorp's `net.go`): decoding datagrams and compound messages and
//! dispatching what they carry, answering stream requests and handling the replies to streams we
//! opened, push/pull (sending our state and merging the remote one), user messages, and the
//! sending side: piggybacking gossip, wrapping datagrams, framing and opening streams.

use crate::log;
use crate::log::Level;
use crate::telemetry::Histogram;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand::Rng;

use super::core::{millis, vsn_array, Memberlist, OutboundStream, Transmit};
use super::delegate::Delegate;
use super::gossip::Peer;
use super::inflight::StreamPurpose;
use super::node::Node;
use crate::wire::memberlist::push_pull::PushPull;
use crate::wire::memberlist::stream::{self, StreamMessage};
use crate::wire::memberlist::{
    compound, label, packet, Ack, Alive, Dead, ErrResp, Message, NodeState, PushNodeState, Suspect,
};
use crate::wire::msgpack::{Bytes, GoString};
use crate::wire::DecodeError;

impl Memberlist {
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
            Message::Nack(n) => self.handle_nack(n),
            Message::Suspect(s) => self.suspect_node(now, &s),
            Message::Alive(a) => self.alive_node(now, &a, None, false, d),
            Message::Dead(x) => self.dead_node(now, &x, None, d),
            Message::User(buf) => d.notify_msg(now, &buf, Some(from)),
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
                    d.notify_msg(now, &buf, None);
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

    // -----------------------------------------------------------------------------------------
    // user messages

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

    // -----------------------------------------------------------------------------------------
    // push/pull

    pub(super) fn periodic_push_pull(&mut self, now: Instant, d: &mut impl Delegate) {
        let peer = self.random_peers(1, |n| n.state != NodeState::Alive);
        if let Some(&Peer { addr, .. }) = peer.first() {
            // The peer's name only serves the debug line: no lookup when it is not kept.
            let name = if self.log.enabled(Level::Debug) {
                self.nodes
                    .iter()
                    .find(|n| n.socket_addr() == Some(addr))
                    .map(|n| n.name.to_string_lossy())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            self.open_push_pull(now, addr, &name, None, d);
        }
    }

    pub(super) fn open_push_pull(
        &mut self,
        now: Instant,
        to: SocketAddr,
        name: &str,
        join: Option<u64>,
        d: &mut impl Delegate,
    ) {
        log!(
            self.log,
            Debug,
            "memberlist: Initiating push/pull sync with: {name} {to}"
        );
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

    // -----------------------------------------------------------------------------------------
    // sending

    /// Sends a message with as much piggybacked gossip as fits.
    pub(super) fn send_msg(&mut self, to: SocketAddr, msg: Vec<u8>, d: &mut impl Delegate) {
        let avail = self
            .config
            .udp_buffer_size
            .saturating_sub(
                msg.len() + compound::HEADER_OVERHEAD + label::overhead(&self.config.wire.label),
            )
            .saturating_sub(self.encrypt_overhead());
        // Pings, acks and indirect probes go to peers that are alive or suspect.
        let extra = self.get_broadcasts(compound::PART_OVERHEAD, avail, to, true, d);
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
    pub(super) fn raw_send(&mut self, to: SocketAddr, protocol_max: Option<u8>, payload: Vec<u8>) {
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

    pub(super) fn frame_stream(&mut self, msg: &[u8], dialer: bool) -> Vec<u8> {
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

    pub(super) fn open_stream_until(
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

    pub(super) fn encrypt_overhead(&self) -> usize {
        match self.config.wire.sealing_keyring() {
            Some(_) => self.config.wire.encryption_version.overhead(),
            None => 0,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memberlist::{Config, Profile};
    use crate::wire::memberlist::keyring::{Keyring, NONCE_LEN};
    use crate::wire::memberlist::stream::{self as wire_stream};
    use crate::wire::memberlist::Ping;
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
