//! The ping-ack payload serf attaches to memberlist acks: `PingVersion | msgpack Coordinate`.

use super::bodies::Coordinate;
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};
use crate::wire::msgpack::{Decoder, Dialect, Encoder, Field};

/// The only ping payload version serf defines.
pub const PING_VERSION: u8 = 1;

pub fn encode_ack_payload(coord: &Coordinate, dialect: Dialect) -> Vec<u8> {
    let mut out = vec![PING_VERSION];
    coord.encode(&mut Encoder::new(&mut out, dialect));
    out
}

/// The coordinate in an ack payload; `Ok(None)` for an empty payload (the peer has coordinates
/// disabled).
pub fn decode_ack_payload(payload: &[u8]) -> DecodeResult<Option<Coordinate>> {
    match payload.split_first() {
        None => Ok(None),
        Some((&PING_VERSION, rest)) => Coordinate::decode(&mut Decoder::new(rest))
            .map(Some)
            .map_err(|e| e.at_base(1)),
        Some((&v, _)) => Err(DecodeError::new(
            ErrorKind::UnknownType {
                what: "ping payload version",
                value: v,
            },
            0,
        )),
    }
}
