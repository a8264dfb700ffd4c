//! What a node tracks while an exchange is under way: the probe, indirect probes it runs for
//! others, suspicion timers and the streams it opened. The `Memberlist` struct holds them;
//! `state.rs` and `net.rs` drive them.

use std::net::SocketAddr;
use std::time::Instant;

use super::suspicion::Suspicion;
use crate::wire::msgpack::GoString;

/// The probe in flight (memberlist probes one node at a time).
pub(super) struct Probe {
    pub(super) target: GoString,
    /// The target's incarnation when the probe started. A failed probe accuses it at this one
    /// (Go suspects the copy of the node it took at the start), so that a refutation the target
    /// sent meanwhile stands instead of being accused again.
    pub(super) incarnation: u32,
    pub(super) seq: u32,
    pub(super) sent: Instant,
    /// End of the direct phase: no ack by then starts indirect probes.
    pub(super) ack_deadline: Instant,
    /// End of the whole probe (probe interval scaled by local health).
    pub(super) deadline: Instant,
    pub(super) indirect: bool,
    pub(super) expected_nacks: usize,
    pub(super) nacks: usize,
}

/// An indirect probe we run on someone else's behalf.
pub(super) struct Relay {
    pub(super) requester: SocketAddr,
    pub(super) orig_seq: u32,
    pub(super) nack_at: Option<Instant>,
    pub(super) expires: Instant,
}

/// A suspicion under way, and when the suspected node last changed state.
pub(super) struct SuspicionTimer {
    pub(super) suspicion: Suspicion,
    pub(super) state_change: Instant,
}

/// Why we opened a stream, to know what to do with its reply.
pub(super) enum StreamPurpose {
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
