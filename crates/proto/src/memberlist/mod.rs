//! memberlist: SWIM failure detection with Lifeguard, gossip and push/pull anti-entropy, as a
//! sans-I/O state machine (see [`Memberlist`]).

mod awareness;
pub mod broadcast;
mod config;
mod core;
mod delegate;
mod gossip;
mod inflight;
pub mod machine;
mod name_index;
mod net;
mod node;
mod seed;
mod state;
pub mod suspicion;

pub use config::{
    Config, Profile, UnknownProfile, META_MAX_SIZE, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
};
pub use core::{Memberlist, OutboundStream, Stats, Transmit};
pub use delegate::{Delegate, NoDelegate};
pub use node::{ip_from_bytes, ip_to_bytes, Node};
pub use seed::Seed;
