//! Gossip (the `gossip` round of HashiCorp's `state.go`, with `getBroadcasts` from its
//! `broadcast.go` and `kRandomNodes` from its `util.go`): picking random peers and filling
//! packets with memberlist's broadcasts, then the delegate's.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use super::broadcast::Recipient;
use super::core::Memberlist;
use super::delegate::Delegate;
use super::node::Node;
use crate::wire::memberlist::{compound, label, Message, NodeState};

impl Memberlist {
    /// Whether a gossip round could send anything.
    pub(super) fn has_gossip(&self, d: &impl Delegate) -> bool {
        !self.broadcasts.is_empty() || d.has_broadcasts()
    }

    /// One gossip round. Its duration (`memberlist.gossip`) is wall-clock time this core does
    /// not read: the runtime times the call that ran it (see [`Stats::gossip_rounds`]).
    /// `on_time`: the round may add [`Config::gossip_backlog_nodes`] peers.
    ///
    /// [`Stats::gossip_rounds`]: super::Stats::gossip_rounds
    /// [`Config::gossip_backlog_nodes`]: super::Config::gossip_backlog_nodes
    pub(super) fn gossip(&mut self, now: Instant, on_time: bool, d: &mut impl Delegate) {
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
        for (i, peer) in peers.iter().enumerate() {
            let &Peer {
                addr,
                protocol_max,
                live,
            } = peer;
            let mut msgs = self.get_broadcasts(compound::PART_OVERHEAD, avail, addr, live, d);
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

    /// memberlist's own broadcasts first, then the delegate's as user messages. `live`: `to` is
    /// not a peer we hold dead or gone (gossip to the dead).
    pub(super) fn get_broadcasts(
        &mut self,
        overhead: usize,
        limit: usize,
        to: SocketAddr,
        live: bool,
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
        let to = if live { to } else { to.dead() };
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

    /// Up to `k` distinct random peers (never this node) not excluded by `skip`: 3n random
    /// draws, as Go does, then, where those left eligible nodes out, a walk from a random place
    /// that adds them. Go stops at the draws, so a gossip round in a 3-node cluster skips a peer
    /// 2.6 % of the time; here a round reaches every peer it has room for. Only where to reach
    /// each peer is returned: gossip draws up to 12 peers five times a second, and copying their
    /// names and metadata was most of an idle node's work.
    pub(super) fn random_peers(&mut self, k: usize, skip: impl Fn(&Node) -> bool) -> Vec<Peer> {
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
                    live: !node.is_dead_or_left(),
                })
            })
            .collect()
    }
}

/// Where to reach a randomly picked peer, and the newest protocol it speaks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
    pub(super) protocol_max: u8,
    /// Alive or suspect (not a dead or left node that gossip still reaches).
    pub(super) live: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memberlist::broadcast::{Broadcast, BroadcastQueue};
    use crate::memberlist::{Config, Profile};
    use crate::wire::memberlist::Alive;
    use crate::wire::msgpack::Bytes;

    struct Quiet;
    impl Delegate for Quiet {}

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
}
