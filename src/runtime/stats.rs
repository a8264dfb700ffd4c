//! Counters of what the runtime did and had to drop, so network trouble is visible without
//! logging and without ever stopping the loop.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a runtime's counters (see [`RuntimeHandle::stats`](super::RuntimeHandle::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Datagrams received and handed to the machine.
    pub packets_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Datagrams dropped because the send failed or would have blocked.
    pub send_errors: u64,
    /// Failed `recv_from`/`accept` calls (other than "would block").
    pub recv_errors: u64,
    /// Connections accepted.
    pub streams_in: u64,
    /// Streams the machine asked to open.
    pub streams_out: u64,
    /// Outbound streams that failed to connect, write, read or finish before their deadline.
    pub stream_failures: u64,
    /// Accepted connections dropped without a complete exchange: read/write error, EOF before a
    /// complete request, too large, or past the inbound deadline.
    pub inbound_failures: u64,
    /// Commands ([`RuntimeHandle::run`](super::RuntimeHandle::run) closures) that panicked.
    pub command_panics: u64,
}

/// The live counters: written by the loop thread, read from any thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub send_errors: AtomicU64,
    pub recv_errors: AtomicU64,
    pub streams_in: AtomicU64,
    pub streams_out: AtomicU64,
    pub stream_failures: AtomicU64,
    pub inbound_failures: AtomicU64,
    pub command_panics: AtomicU64,
}

/// Adds one to a counter; ordering does not matter, they are independent tallies.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> RuntimeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RuntimeStats {
            packets_in: get(&self.packets_in),
            packets_out: get(&self.packets_out),
            send_errors: get(&self.send_errors),
            recv_errors: get(&self.recv_errors),
            streams_in: get(&self.streams_in),
            streams_out: get(&self.streams_out),
            stream_failures: get(&self.stream_failures),
            inbound_failures: get(&self.inbound_failures),
            command_panics: get(&self.command_panics),
        }
    }
}
