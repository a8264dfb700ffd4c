//! Push/pull state exchange (type 6, streams only):
//! `06 | pushPullHeader | Nodes × pushNodeState | UserStateLen raw bytes`.

use super::bodies::{PushNodeState, PushPullHeader};
use super::MessageType;
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};
use crate::wire::msgpack::{Decoder, Dialect, Encoder, Field};

/// Most node states accepted in one exchange (memberlist 0.6's limit).
pub const MAX_NODES: usize = 1 << 20;
/// Largest user state accepted (memberlist 0.6's limit).
pub const MAX_USER_STATE: usize = 20 << 20;

/// One side's state in a push/pull exchange.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushPull {
    /// True when sent by `Join`, false for periodic anti-entropy; the acceptor copies it back.
    pub join: bool,
    pub nodes: Vec<PushNodeState>,
    /// The delegate's state (serf's push/pull message), raw.
    pub user_state: Vec<u8>,
}

impl PushPull {
    /// The message with its type byte, as written to a stream before compression/encryption.
    pub fn encode(&self, dialect: Dialect) -> Vec<u8> {
        let mut out = vec![MessageType::PushPull as u8];
        let mut enc = Encoder::new(&mut out, dialect);
        let header = PushPullHeader {
            join: self.join,
            nodes: self.nodes.len() as i64,
            user_state_len: self.user_state.len() as i64,
        };
        header.encode(&mut enc);
        for node in &self.nodes {
            node.encode(&mut enc);
        }
        enc.raw(&self.user_state);
        out
    }

    /// Reads the body that follows the type byte.
    pub fn decode_body(dec: &mut Decoder<'_>) -> DecodeResult<PushPull> {
        let header_at = dec.position();
        let header = PushPullHeader::decode(dec)?;
        let nodes = count(header.nodes, MAX_NODES, "push/pull node count", header_at)?;
        let user_state_len = count(
            header.user_state_len,
            MAX_USER_STATE,
            "push/pull user state length",
            header_at,
        )?;
        // Each node state is a map of at least one byte: refuse counts the input cannot hold
        // before allocating for them.
        if nodes > dec.remaining() {
            return Err(dec.error(ErrorKind::LengthExceedsInput {
                len: nodes,
                available: dec.remaining(),
            }));
        }
        let mut states = Vec::with_capacity(nodes.min(64));
        for _ in 0..nodes {
            states.push(PushNodeState::decode(dec)?);
        }
        let user_state = dec.take(user_state_len)?.to_vec();
        Ok(PushPull {
            join: header.join,
            nodes: states,
            user_state,
        })
    }
}

fn count(value: i64, limit: usize, what: &'static str, at: usize) -> DecodeResult<usize> {
    let n = usize::try_from(value).map_err(|_| {
        DecodeError::new(
            ErrorKind::InvalidValue {
                what,
                value: value as i128,
            },
            at,
        )
    })?;
    if n > limit {
        return Err(DecodeError::new(ErrorKind::TooLarge { len: n, limit }, at));
    }
    Ok(n)
}
