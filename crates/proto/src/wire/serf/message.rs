//! The serf message-type byte and the message enum.

use super::bodies::{
    Join, KeyRequest, KeyResponse, Leave, Member, PushPull, Query, QueryResponse, RelayHeader,
    UserEventMessage,
};
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};
use crate::wire::msgpack::{Decoder, Dialect, Encoder, Field};

/// `queryFlagAck`: responders send an ack as soon as the query arrives.
pub const QUERY_FLAG_ACK: u32 = 1;
/// `queryFlagNoBroadcast`: the query is not re-gossiped.
pub const QUERY_FLAG_NO_BROADCAST: u32 = 2;

/// The first byte of a serf message (after memberlist's user-message byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Leave = 0,
    Join = 1,
    PushPull = 2,
    UserEvent = 3,
    Query = 4,
    QueryResponse = 5,
    ConflictResponse = 6,
    KeyRequest = 7,
    KeyResponse = 8,
    Relay = 9,
}

impl TryFrom<u8> for MessageType {
    type Error = u8;

    fn try_from(b: u8) -> Result<Self, u8> {
        use MessageType::*;
        Ok(match b {
            0 => Leave,
            1 => Join,
            2 => PushPull,
            3 => UserEvent,
            4 => Query,
            5 => QueryResponse,
            6 => ConflictResponse,
            7 => KeyRequest,
            8 => KeyResponse,
            9 => Relay,
            other => return Err(other),
        })
    }
}

/// A serf message: type byte + msgpack body (relay: header + the inner message, raw).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Leave(Leave),
    Join(Join),
    PushPull(PushPull),
    UserEvent(UserEventMessage),
    Query(Query),
    QueryResponse(QueryResponse),
    /// The answer to `_serf_conflict`: what the responder knows of the name, if anything.
    ConflictResponse(Option<Member>),
    KeyRequest(KeyRequest),
    KeyResponse(KeyResponse),
    /// A message to forward unchanged to `header.dest_addr`; `inner` is type byte + body.
    Relay {
        header: RelayHeader,
        inner: Vec<u8>,
    },
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Leave(_) => MessageType::Leave,
            Message::Join(_) => MessageType::Join,
            Message::PushPull(_) => MessageType::PushPull,
            Message::UserEvent(_) => MessageType::UserEvent,
            Message::Query(_) => MessageType::Query,
            Message::QueryResponse(_) => MessageType::QueryResponse,
            Message::ConflictResponse(_) => MessageType::ConflictResponse,
            Message::KeyRequest(_) => MessageType::KeyRequest,
            Message::KeyResponse(_) => MessageType::KeyResponse,
            Message::Relay { .. } => MessageType::Relay,
        }
    }

    pub fn encode(&self, dialect: Dialect) -> Vec<u8> {
        let mut out = vec![self.message_type() as u8];
        let mut enc = Encoder::new(&mut out, dialect);
        match self {
            Message::Leave(m) => m.encode(&mut enc),
            Message::Join(m) => m.encode(&mut enc),
            Message::PushPull(m) => m.encode(&mut enc),
            Message::UserEvent(m) => m.encode(&mut enc),
            Message::Query(m) => m.encode(&mut enc),
            Message::QueryResponse(m) => m.encode(&mut enc),
            Message::ConflictResponse(m) => m.encode(&mut enc),
            Message::KeyRequest(m) => m.encode(&mut enc),
            Message::KeyResponse(m) => m.encode(&mut enc),
            Message::Relay { header, inner } => {
                header.encode(&mut enc);
                enc.raw(inner);
            }
        }
        out
    }

    /// Decodes a serf message (type byte first). Trailing bytes are ignored, as in Go.
    pub fn decode(buf: &[u8]) -> DecodeResult<Message> {
        let first = *buf.first().ok_or(DecodeError::new(ErrorKind::Empty, 0))?;
        let ty = MessageType::try_from(first).map_err(|value| {
            DecodeError::new(
                ErrorKind::UnknownType {
                    what: "serf message type",
                    value,
                },
                0,
            )
        })?;
        let mut dec = Decoder::new(&buf[1..]);
        let body = |dec: &mut Decoder<'_>| -> DecodeResult<Message> {
            Ok(match ty {
                MessageType::Leave => Message::Leave(Field::decode(dec)?),
                MessageType::Join => Message::Join(Field::decode(dec)?),
                MessageType::PushPull => Message::PushPull(Field::decode(dec)?),
                MessageType::UserEvent => Message::UserEvent(Field::decode(dec)?),
                MessageType::Query => Message::Query(Field::decode(dec)?),
                MessageType::QueryResponse => Message::QueryResponse(Field::decode(dec)?),
                MessageType::ConflictResponse => Message::ConflictResponse(Field::decode(dec)?),
                MessageType::KeyRequest => Message::KeyRequest(Field::decode(dec)?),
                MessageType::KeyResponse => Message::KeyResponse(Field::decode(dec)?),
                MessageType::Relay => {
                    let header = RelayHeader::decode(dec)?;
                    if dec.remaining() == 0 {
                        return Err(dec.error(ErrorKind::Truncated { needed: 1 }));
                    }
                    Message::Relay {
                        header,
                        inner: dec.rest().to_vec(),
                    }
                }
            })
        };
        body(&mut dec).map_err(|e| e.at_base(1))
    }
}
