//! How a protocol thread treats its connections: the settings [`Runtime::start`] takes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serf_proto::log::{Level, LogLine};

/// Where the core's log lines go (HashiCorp's `serf:`/`memberlist:` lines, see
/// `serf_proto::log`), and the least severe one wanted. `write` runs on the protocol thread
/// after each turn of the loop, so it must be quick (hand the line over, do not block).
#[derive(Clone)]
pub struct LogSink {
    pub level: Level,
    pub write: Arc<dyn Fn(&LogLine) + Send + Sync>,
}

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSink")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

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
    /// Where log lines go; `None` drops them (set the core's `log_level` to match).
    pub log: Option<LogSink>,
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime {
            inbound_timeout: Duration::from_secs(10),
            max_stream_bytes: 20 * 1024 * 1024,
            max_inbound_streams: 128,
            log: None,
        }
    }
}
