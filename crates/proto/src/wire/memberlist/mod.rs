//! HashiCorp memberlist's wire format: message types and bodies, and the wrappers a message goes
//! through on its way to a socket (compound, compression, CRC, encryption, label, stream framing).

mod bodies;
pub mod compound;
pub mod compress;
pub mod crc;
pub mod keyring;
pub mod label;
pub mod lzw;
mod message;
mod options;
pub mod packet;
pub mod push_pull;
pub mod stream;

pub use bodies::{
    Ack, Alive, Compress, Dead, ErrResp, IndirectPing, Nack, NodeState, Ping, PushNodeState,
    PushPullHeader, Suspect, UserMsgHeader,
};
pub use message::{Message, MessageType};
pub use options::WireOptions;
