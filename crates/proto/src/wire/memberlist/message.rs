//! The memberlist message-type byte and the messages that carry a body of their own.

use super::bodies::{Ack, Alive, Dead, ErrResp, IndirectPing, Nack, Ping, Suspect};
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};
use crate::wire::msgpack::{self, Decoder, Dialect, Field};

/// The first byte of every memberlist message. The values are part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Ping = 0,
    IndirectPing = 1,
    Ack = 2,
    Suspect = 3,
    Alive = 4,
    Dead = 5,
    PushPull = 6,
    Compound = 7,
    User = 8,
    Compress = 9,
    Encrypt = 10,
    Nack = 11,
    HasCrc = 12,
    Err = 13,
    /// Not a message: the label header in front of packets and streams.
    HasLabel = 244,
}

impl TryFrom<u8> for MessageType {
    type Error = u8;

    fn try_from(b: u8) -> Result<Self, u8> {
        use MessageType::*;
        Ok(match b {
            0 => Ping,
            1 => IndirectPing,
            2 => Ack,
            3 => Suspect,
            4 => Alive,
            5 => Dead,
            6 => PushPull,
            7 => Compound,
            8 => User,
            9 => Compress,
            10 => Encrypt,
            11 => Nack,
            12 => HasCrc,
            13 => Err,
            244 => HasLabel,
            other => return Result::Err(other),
        })
    }
}

impl MessageType {
    /// Reads the type byte at the front of `buf`.
    pub fn of(buf: &[u8]) -> DecodeResult<MessageType> {
        let first = *buf.first().ok_or(DecodeError::new(ErrorKind::Empty, 0))?;
        MessageType::try_from(first).map_err(|value| {
            DecodeError::new(
                ErrorKind::UnknownType {
                    what: "memberlist message type",
                    value,
                },
                0,
            )
        })
    }
}

/// A single memberlist message, after every wrapper (label, encryption, CRC, compression,
/// compound) has been removed. Push/pull only travels on streams: see
/// [`push_pull`](super::push_pull).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Ping(Ping),
    IndirectPing(IndirectPing),
    Ack(Ack),
    Suspect(Suspect),
    Alive(Alive),
    Dead(Dead),
    /// A user (serf) message as carried in a UDP packet: the bytes after the type byte.
    User(Vec<u8>),
    Nack(Nack),
    Err(ErrResp),
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Ping(_) => MessageType::Ping,
            Message::IndirectPing(_) => MessageType::IndirectPing,
            Message::Ack(_) => MessageType::Ack,
            Message::Suspect(_) => MessageType::Suspect,
            Message::Alive(_) => MessageType::Alive,
            Message::Dead(_) => MessageType::Dead,
            Message::User(_) => MessageType::User,
            Message::Nack(_) => MessageType::Nack,
            Message::Err(_) => MessageType::Err,
        }
    }

    /// `type byte + body`, as Go writes it.
    pub fn encode(&self, dialect: Dialect) -> Vec<u8> {
        let t = self.message_type() as u8;
        match self {
            Message::Ping(m) => msgpack::to_vec_typed(t, m, dialect),
            Message::IndirectPing(m) => msgpack::to_vec_typed(t, m, dialect),
            Message::Ack(m) => msgpack::to_vec_typed(t, m, dialect),
            Message::Suspect(m) => msgpack::to_vec_typed(t, m, dialect),
            Message::Alive(m) => msgpack::to_vec_typed(t, m, dialect),
            Message::Dead(m) => msgpack::to_vec_typed(t, m, dialect),
            Message::Nack(m) => msgpack::to_vec_typed(t, m, dialect),
            Message::Err(m) => msgpack::to_vec_typed(t, m, dialect),
            Message::User(payload) => {
                let mut out = Vec::with_capacity(1 + payload.len());
                out.push(t);
                out.extend_from_slice(payload);
                out
            }
        }
    }

    /// Decodes one message with a body. Wrapper types (compound, compress, CRC, encrypt, label)
    /// and push/pull are refused here: [`packet`](super::packet) and [`stream`](super::stream)
    /// unwrap those. Trailing bytes after the body are ignored, as in Go.
    pub fn decode(buf: &[u8]) -> DecodeResult<Message> {
        let ty = MessageType::of(buf)?;
        let mut dec = Decoder::new(&buf[1..]);
        let body = |dec: &mut Decoder<'_>| -> DecodeResult<Message> {
            Ok(match ty {
                MessageType::Ping => Message::Ping(Field::decode(dec)?),
                MessageType::IndirectPing => Message::IndirectPing(Field::decode(dec)?),
                MessageType::Ack => Message::Ack(Field::decode(dec)?),
                MessageType::Suspect => Message::Suspect(Field::decode(dec)?),
                MessageType::Alive => Message::Alive(Field::decode(dec)?),
                MessageType::Dead => Message::Dead(Field::decode(dec)?),
                MessageType::Nack => Message::Nack(Field::decode(dec)?),
                MessageType::Err => Message::Err(Field::decode(dec)?),
                MessageType::User => Message::User(dec.rest().to_vec()),
                other => {
                    return Err(dec.error(ErrorKind::UnknownType {
                        what: "message type outside a packet's leaves",
                        value: other as u8,
                    }))
                }
            })
        };
        body(&mut dec).map_err(|e| e.at_base(1))
    }
}
