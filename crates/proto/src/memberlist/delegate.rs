//! What memberlist asks of the layer above it (serf), mirroring Go's delegate interfaces. Every
//! method has a neutral default, so plain memberlist users implement only what they need.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::broadcast::Recipient;
use super::node::Node;

pub trait Delegate {
    /// A user message arrived: in a datagram from `from`, or (`None`) on a stream.
    fn notify_msg(&mut self, _now: Instant, _msg: &[u8], _from: Option<SocketAddr>) {}
    /// Messages to piggyback on an outgoing packet to `to`: at most `limit` bytes in total,
    /// counting `overhead` bytes per message.
    fn get_broadcasts(&mut self, _overhead: usize, _limit: usize, _to: &Recipient) -> Vec<Vec<u8>> {
        Vec::new()
    }
    /// Whether `get_broadcasts` may return anything. False lets memberlist skip its gossip
    /// ticks while nothing is queued anywhere, so an idle node wakes only to probe; the default
    /// (true) keeps every tick, as Go does.
    fn has_broadcasts(&self) -> bool {
        true
    }
    /// State sent in push/pull exchanges.
    fn local_state(&mut self, _join: bool) -> Vec<u8> {
        Vec::new()
    }
    fn merge_remote_state(&mut self, _now: Instant, _state: &[u8], _join: bool) {}
    /// Payload attached to acks of UDP pings (serf: the Vivaldi coordinate).
    fn ack_payload(&mut self) -> Vec<u8> {
        Vec::new()
    }
    /// A direct probe of `node` succeeded after `rtt`, with the ack's payload.
    fn notify_ping_complete(&mut self, _node: &Node, _rtt: Duration, _payload: &[u8]) {}
    fn notify_join(&mut self, _now: Instant, _node: &Node) {}
    fn notify_leave(&mut self, _now: Instant, _node: &Node) {}
    fn notify_update(&mut self, _now: Instant, _node: &Node) {}
    /// May veto an alive message (serf uses it for merge checks); true accepts.
    fn notify_alive(&mut self, _node: &Node) -> bool {
        true
    }
    /// May veto merging a remote push/pull state on join; true accepts.
    fn notify_merge(&mut self, _nodes: &[Node]) -> bool {
        true
    }
    /// Another address claims the name of `existing`.
    fn notify_conflict(&mut self, _existing: &Node, _other: &Node) {}
    /// A join started with [`Memberlist::join`](super::Memberlist::join) finished.
    fn join_complete(&mut self, _id: u64, _contacted: usize, _errors: Vec<String>) {}
}

/// A delegate that does nothing: plain memberlist.
pub struct NoDelegate;

impl Delegate for NoDelegate {}
