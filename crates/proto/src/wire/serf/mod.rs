//! Serf's messages on top of memberlist: the type byte, message bodies, query filters, relays,
//! tags in node meta and the coordinate carried in ping acks.

mod bodies;
mod coordinate;
mod filter;
mod message;
mod tags;

pub use bodies::{
    Coordinate, FilterTag, Join, KeyRequest, KeyResponse, LamportTime, Leave, Member, PushPull,
    Query, QueryResponse, RelayHeader, UdpAddr, UserEvent, UserEventMessage, UserEvents,
};
pub use coordinate::{decode_ack_payload, encode_ack_payload, PING_VERSION};
pub use filter::Filter;
pub use message::{Message, MessageType, QUERY_FLAG_ACK, QUERY_FLAG_NO_BROADCAST};
pub use tags::{decode_tags, encode_role_meta, encode_tags, Tags, TAG_MAGIC_BYTE};
