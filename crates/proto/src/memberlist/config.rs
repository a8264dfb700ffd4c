//! memberlist's settings and its three timing profiles, with HashiCorp's exact defaults.

use std::net::SocketAddr;
use std::time::Duration;

use crate::log::Level;
use crate::wire::memberlist::WireOptions;
use crate::wire::msgpack::GoString;

/// memberlist's protocol range; serf always speaks version 2 of it.
pub const PROTOCOL_VERSION_MIN: u8 = 1;
pub const PROTOCOL_VERSION_MAX: u8 = 5;
/// Largest node metadata memberlist carries.
pub const META_MAX_SIZE: usize = 512;

/// The timing profiles of `memberlist.DefaultLANConfig`, `DefaultWANConfig`, `DefaultLocalConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    #[default]
    Lan,
    Wan,
    Local,
}

/// A profile name other than `lan`, `wan` or `local`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?} (expected lan, wan or local)")]
pub struct UnknownProfile(pub String);

impl std::str::FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Profile, UnknownProfile> {
        match s {
            "lan" => Ok(Profile::Lan),
            "wan" => Ok(Profile::Wan),
            "local" => Ok(Profile::Local),
            other => Err(UnknownProfile(other.to_string())),
        }
    }
}

/// Everything the membership state machine needs to know about itself and its timing.
#[derive(Debug)]
pub struct Config {
    pub name: GoString,
    /// The address and port announced to peers (UDP and TCP share the port).
    pub advertise: SocketAddr,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub indirect_checks: usize,
    pub suspicion_mult: u32,
    pub suspicion_max_timeout_mult: u32,
    pub retransmit_mult: usize,
    pub gossip_interval: Duration,
    pub gossip_nodes: usize,
    /// More peers a gossip round may reach, one packet each, while its packets come out full:
    /// a backlog drains in rounds instead of being pruned (libserf's; 0 is Go's behaviour).
    pub gossip_backlog_nodes: usize,
    pub gossip_to_the_dead_time: Duration,
    /// Zero disables periodic push/pull.
    pub push_pull_interval: Duration,
    pub tcp_timeout: Duration,
    pub awareness_max_multiplier: usize,
    pub udp_buffer_size: usize,
    pub disable_tcp_pings: bool,
    /// Zero: a dead node's name never moves to another address.
    pub dead_node_reclaim_time: Duration,
    pub protocol_version: u8,
    /// The delegate (serf) protocol triple advertised in `Vsn`: min, max, current.
    pub delegate_protocol: [u8; 3],
    /// Label, keyring, compression.
    pub wire: WireOptions,
    /// Most push/pull exchanges served at once (`maxPushPullRequests`).
    pub max_push_pulls: usize,
    /// The least severe log line the cores keep (memberlist's and serf's); `None` keeps none,
    /// for a runner that reads no lines (see [`crate::log`]).
    pub log_level: Option<Level>,
}

impl Config {
    pub fn new(profile: Profile, name: impl Into<GoString>, advertise: SocketAddr) -> Config {
        let mut c = Config {
            name: name.into(),
            advertise,
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            retransmit_mult: 4,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            gossip_backlog_nodes: 9,
            gossip_to_the_dead_time: Duration::from_secs(30),
            push_pull_interval: Duration::from_secs(30),
            tcp_timeout: Duration::from_secs(10),
            awareness_max_multiplier: 8,
            udp_buffer_size: 1400,
            disable_tcp_pings: false,
            dead_node_reclaim_time: Duration::ZERO,
            protocol_version: 2,
            delegate_protocol: [0, 0, 0],
            wire: WireOptions::default(),
            max_push_pulls: 128,
            log_level: None,
        };
        match profile {
            Profile::Lan => {}
            Profile::Wan => {
                c.tcp_timeout = Duration::from_secs(30);
                c.suspicion_mult = 6;
                c.push_pull_interval = Duration::from_secs(60);
                c.probe_timeout = Duration::from_secs(3);
                c.probe_interval = Duration::from_secs(5);
                c.gossip_nodes = 4;
                c.gossip_interval = Duration::from_millis(500);
                c.gossip_to_the_dead_time = Duration::from_secs(60);
            }
            Profile::Local => {
                c.tcp_timeout = Duration::from_secs(1);
                c.indirect_checks = 1;
                c.retransmit_mult = 2;
                c.suspicion_mult = 3;
                c.push_pull_interval = Duration::from_secs(15);
                c.probe_timeout = Duration::from_millis(200);
                c.gossip_interval = Duration::from_millis(100);
                c.gossip_to_the_dead_time = Duration::from_secs(15);
            }
        }
        c
    }

    /// `[pmin, pmax, pcur, dmin, dmax, dcur]` as sent in alive messages.
    pub fn vsn(&self) -> [u8; 6] {
        let [dmin, dmax, dcur] = self.delegate_protocol;
        [
            PROTOCOL_VERSION_MIN,
            PROTOCOL_VERSION_MAX,
            self.protocol_version,
            dmin,
            dmax,
            dcur,
        ]
    }
}
