//! serf: cluster membership with Lamport-ordered intents, tags and events, on top of memberlist,
//! as a sans-I/O state machine (see [`Serf`]).

mod buffers;
mod coalesce;
mod config;
mod core;
mod delegate;
mod event;
mod internal;
mod lamport;
mod machine;
mod member;
mod name_table;
mod ping_delegate;
mod query;
mod query_handling;
pub mod snapshot;
mod state;
mod stats;
mod vivaldi;

pub use config::{
    Config, DEFAULT_PROTOCOL_VERSION, DEFAULT_QUERY_RESPONSE_SIZE_LIMIT, DEFAULT_QUERY_SIZE_LIMIT,
    DEFAULT_USER_EVENT_SIZE_LIMIT, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
    USER_EVENT_SIZE_CEILING,
};
pub use core::{Serf, SerfError};
pub use event::{Completion, Event, JoinFailed, MemberEventType, QueryEvent, UserEvent};
pub use internal::{read_keyring_file, KeyOp, KeyringFileError, INTERNAL_PREFIX, PING_QUERY};
pub use lamport::LamportClock;
pub use member::{Member, MemberStatus, Tags};
pub use query::{default_timeout, KeyAggregate, QueryParams, QueryUpdate};
pub use state::{SerfStatus, FLAP_TIMEOUT};
pub use stats::{Counters, QueueDepths, QUEUE_CHECK_INTERVAL};
pub use vivaldi::{
    distance, new_coordinate, CoordinateError, LatencyFilter, VivaldiClient, VivaldiConfig,
};
