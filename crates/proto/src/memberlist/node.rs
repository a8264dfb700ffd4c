//! What memberlist knows about one node.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use crate::wire::memberlist::NodeState;
use crate::wire::msgpack::GoString;

/// A member as memberlist sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: GoString,
    /// The advertised IP exactly as received (4 or 16 bytes): Go compares these bytes to detect
    /// address conflicts, so they are kept, not normalised.
    pub addr: Vec<u8>,
    pub port: u16,
    pub meta: Vec<u8>,
    /// `[pmin, pmax, pcur, dmin, dmax, dcur]`.
    pub vsn: [u8; 6],
    pub incarnation: u32,
    pub state: NodeState,
    pub state_change: Instant,
}

impl Node {
    pub fn ip(&self) -> Option<IpAddr> {
        ip_from_bytes(&self.addr)
    }

    /// Where to send packets and open streams; `None` when the address bytes are not an IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.ip().map(|ip| SocketAddr::new(ip, self.port))
    }

    pub fn protocol_max(&self) -> u8 {
        self.vsn[1]
    }

    pub fn is_dead_or_left(&self) -> bool {
        matches!(self.state, NodeState::Dead | NodeState::Left)
    }
}

/// Reads Go `net.IP` bytes: 4 bytes IPv4, 16 bytes IPv6 (IPv4-mapped shown as IPv4).
pub fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

/// The bytes Go's `To4()` gives for an advertised address: 4 for IPv4, 16 for IPv6.
pub fn ip_to_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}
