//! What every simulator scenario and benchmark starts from: its seed and its nodes' addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `SIM_SEED` when set (to replay the run a failure printed), else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Node `i`'s address in the loopback block `127.<block>.0.0/16`, 250 nodes per /24.
pub fn node_addr(block: u8, i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(
            127,
            block,
            (i / 250) as u8,
            (i % 250 + 1) as u8,
        )),
        7946,
    )
}
