//! A serf member: memberlist's node plus tags and serf's own status.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// A member's tags. Tags from peers that are not valid UTF-8 are shown lossily.
pub type Tags = BTreeMap<String, String>;

/// Serf's view of a member's state (`MemberStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    None = 0,
    Alive = 1,
    /// It announced it is leaving; memberlist has not reported it gone yet.
    Leaving = 2,
    Left = 3,
    Failed = 4,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::None => "none",
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub addr: IpAddr,
    pub port: u16,
    pub tags: Tags,
    pub status: MemberStatus,
    /// memberlist protocol versions: min, max, current.
    pub protocol: [u8; 3],
    /// serf (delegate) protocol versions: min, max, current.
    pub delegate: [u8; 3],
}
