//! Serf's settings (`serf.DefaultConfig()`), wrapping memberlist's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::member::Tags;
use super::snapshot::Replay;
use crate::memberlist::{self, Profile};

/// Serf protocol range this implementation speaks.
pub const PROTOCOL_VERSION_MIN: u8 = 2;
pub const PROTOCOL_VERSION_MAX: u8 = 5;

#[derive(Debug)]
pub struct Config {
    /// Name, advertise address, timing profile, wire options.
    pub memberlist: memberlist::Config,
    pub tags: Tags,
    /// Serf protocol version (the Go library defaults to 4, the agent to 5).
    pub protocol_version: u8,
    /// How long a leave waits for its broadcasts to go out.
    pub broadcast_timeout: Duration,
    /// How long a leaving node keeps answering probes so its leave can spread.
    pub leave_propagate_delay: Duration,
    pub reap_interval: Duration,
    pub reconnect_interval: Duration,
    /// Failed members are reaped after this.
    pub reconnect_timeout: Duration,
    /// Left members are reaped after this.
    pub tombstone_timeout: Duration,
    /// Intents about members not known yet are kept this long.
    pub recent_intent_timeout: Duration,
    /// Largest user event (name + payload, and encoded); at most [`USER_EVENT_SIZE_CEILING`].
    pub user_event_size_limit: usize,
    pub query_size_limit: usize,
    pub query_response_size_limit: usize,
    /// Where key changes are persisted (JSON array of base64 keys), if anywhere.
    pub keyring_file: Option<PathBuf>,
    /// Resolve a name conflict by majority vote; the minority node shuts down.
    pub enable_name_conflict_resolution: bool,
    /// Member-event coalescing (both non-zero to enable; the agent uses 3 s and 1 s).
    pub coalesce_period: Duration,
    pub quiescent_period: Duration,
    /// User-event coalescing, for events sent with coalesce (agent: 3 s and 1 s).
    pub user_coalesce_period: Duration,
    pub user_quiescent_period: Duration,
    /// Turn off Vivaldi coordinates (and the ack payload that carries them).
    pub disable_coordinates: bool,
    /// Broadcast queue depth above which the periodic queue check drops the oldest messages
    /// (Go's `MaxQueueDepth`).
    pub max_queue_depth: usize,
    /// When non-zero, replaces `max_queue_depth` with `max(min_queue_depth, 2 × members)`
    /// (Go's `MinQueueDepth`).
    pub min_queue_depth: usize,
    /// A replayed snapshot: enables snapshot records ([`Serf::poll_snapshot_record`]), restores
    /// the clocks and rejoins the members it lists.
    ///
    /// [`Serf::poll_snapshot_record`]: super::Serf::poll_snapshot_record
    pub snapshot: Option<Replay>,
}

/// HashiCorp's library defaults (`serf.DefaultConfig`): the protocol version and the size
/// limits of user events, queries and query responses, in bytes.
pub const DEFAULT_PROTOCOL_VERSION: u8 = 4;
pub const DEFAULT_USER_EVENT_SIZE_LIMIT: usize = 512;
pub const DEFAULT_QUERY_SIZE_LIMIT: usize = 1024;
pub const DEFAULT_QUERY_RESPONSE_SIZE_LIMIT: usize = 1024;

/// Hard ceiling for user events (`UserEventSizeLimit` const in Go).
pub const USER_EVENT_SIZE_CEILING: usize = 9 * 1024;

impl Config {
    pub fn new(profile: Profile, name: &str, advertise: SocketAddr) -> Config {
        Config {
            memberlist: memberlist::Config::new(profile, name, advertise),
            tags: Tags::new(),
            protocol_version: DEFAULT_PROTOCOL_VERSION,
            broadcast_timeout: Duration::from_secs(5),
            leave_propagate_delay: Duration::from_secs(1),
            reap_interval: Duration::from_secs(15),
            reconnect_interval: Duration::from_secs(30),
            reconnect_timeout: Duration::from_secs(24 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
            recent_intent_timeout: Duration::from_secs(300),
            user_event_size_limit: DEFAULT_USER_EVENT_SIZE_LIMIT,
            query_size_limit: DEFAULT_QUERY_SIZE_LIMIT,
            query_response_size_limit: DEFAULT_QUERY_RESPONSE_SIZE_LIMIT,
            keyring_file: None,
            enable_name_conflict_resolution: true,
            coalesce_period: Duration::ZERO,
            quiescent_period: Duration::ZERO,
            user_coalesce_period: Duration::ZERO,
            user_quiescent_period: Duration::ZERO,
            disable_coordinates: false,
            max_queue_depth: 4096,
            min_queue_depth: 0,
            snapshot: None,
        }
    }
}
