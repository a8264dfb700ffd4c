//! serf: cluster membership with Lamport-ordered intents, tags and events, on top of memberlist,
//! as a sans-I/O state machine (see [`Serf`]).

mod config;
mod core;
mod event;
mod lamport;
mod member;

pub use config::{Config, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN};
pub use core::{Serf, SerfError, SerfStatus};
pub use event::{Completion, Event, MemberEventType};
pub use lamport::LamportClock;
pub use member::{Member, MemberStatus, Tags};
