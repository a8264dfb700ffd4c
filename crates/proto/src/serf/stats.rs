//! What serf counts about itself, and its broadcast queue depths: the `serf.*` metrics HashiCorp
//! emits across serf.go, and the queue figures of its `Stats()`.

use std::time::Duration;

use crate::telemetry::Total;

/// What the serf core counted since it started. Most fields mirror one of HashiCorp's `serf.*`
/// metrics (named in each field's doc; [`Counters::totals`] pairs the counters), which the
/// runtime exports from here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Members seen joining or coming back, this node included (`serf.member.join`).
    pub member_joins: u64,
    /// Failed members that came back within [`FLAP_TIMEOUT`](super::FLAP_TIMEOUT)
    /// (`serf.member.flap`).
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

/// How often the broadcast queue depths are sampled (Go `QueueCheckInterval`).
pub const QUEUE_CHECK_INTERVAL: Duration = Duration::from_secs(30);
