//! How a protocol thread treats its connections: the settings [`Runtime::start`] takes.

use std::time::Duration;

/// Runtime settings; [`Runtime::spawn`] uses the defaults.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// How long an accepted connection may take to deliver its request and take its reply;
    /// memberlist's peers finish in well under its 10 s TCP timeout.
    pub inbound_timeout: Duration,
    /// Largest request or reply read from one connection (Go's `maxPushStateBytes`, 20 MiB).
    pub max_stream_bytes: usize,
    /// Most accepted connections open at once; more are closed as soon as they are accepted.
    /// Each may buffer up to `max_stream_bytes`, so this bounds memory; Go caps concurrent
    /// push/pulls at the same number (`maxPushPullRequests`).
    pub max_inbound_streams: usize,
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime {
            inbound_timeout: Duration::from_secs(10),
            max_stream_bytes: 20 * 1024 * 1024,
            max_inbound_streams: 128,
        }
    }
}
