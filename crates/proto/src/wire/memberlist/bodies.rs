//! memberlist's message bodies (`net.go`), each a Go struct on the wire.

use crate::go_struct;
use crate::wire::error::{DecodeResult, ErrorKind};
use crate::wire::msgpack::{Bytes, Decoder, Encoder, Field, GoString, Value};

go_struct! {
    /// `ping` (type 0): a probe. `node` names the intended target; the Source* fields tell the
    /// target where to send the ack.
    pub struct Ping {
        "Node" => node: GoString,
        "SeqNo" => seq_no: u32,
        "SourceAddr" => source_addr: Option<Bytes> [omitempty],
        "SourceNode" => source_node: GoString [omitempty],
        "SourcePort" => source_port: u16 [omitempty],
    }
}

go_struct! {
    /// `indirectPingReq` (type 1): asks a peer to probe `target` on our behalf.
    pub struct IndirectPing {
        "Nack" => nack: bool,
        "Node" => node: GoString,
        "Port" => port: u16,
        "SeqNo" => seq_no: u32,
        "SourceAddr" => source_addr: Option<Bytes> [omitempty],
        "SourceNode" => source_node: GoString [omitempty],
        "SourcePort" => source_port: u16 [omitempty],
        "Target" => target: Bytes,
    }
}

go_struct! {
    /// `ackResp` (type 2). Serf puts its Vivaldi coordinate in the payload of UDP acks.
    pub struct Ack {
        "Payload" => payload: Option<Bytes>,
        "SeqNo" => seq_no: u32,
    }
}

go_struct! {
    /// `nackResp` (type 11): an indirect probe's relay could not reach the target in time.
    pub struct Nack {
        "SeqNo" => seq_no: u32,
    }
}

go_struct! {
    /// `suspect` (type 3): `from` suspects `node` at `incarnation`.
    pub struct Suspect {
        "From" => from: GoString,
        "Incarnation" => incarnation: u32,
        "Node" => node: GoString,
    }
}

go_struct! {
    /// `alive` (type 4): a node's address, metadata and protocol versions at an incarnation.
    pub struct Alive {
        "Addr" => addr: Bytes,
        "Incarnation" => incarnation: u32,
        "Meta" => meta: Option<Bytes>,
        "Node" => node: GoString,
        "Port" => port: u16,
        "Vsn" => vsn: Bytes,
    }
}

go_struct! {
    /// `dead` (type 5). `from == node` means the node left on purpose.
    pub struct Dead {
        "From" => from: GoString,
        "Incarnation" => incarnation: u32,
        "Node" => node: GoString,
    }
}

go_struct! {
    /// `errResp` (type 13): the acceptor of a stream could not read the request.
    pub struct ErrResp {
        "Error" => error: GoString,
    }
}

go_struct! {
    /// `compress` (type 9): an LZW-compressed message (`algo` 0 is the only algorithm).
    pub struct Compress {
        "Algo" => algo: u8,
        "Buf" => buf: Bytes,
    }
}

go_struct! {
    /// `userMsgHeader`: precedes a user message on a TCP stream.
    pub struct UserMsgHeader {
        "UserMsgLen" => user_msg_len: i64,
    }
}

go_struct! {
    /// `pushPullHeader`: the start of a push/pull exchange.
    pub struct PushPullHeader {
        "Join" => join: bool,
        "Nodes" => nodes: i64,
        "UserStateLen" => user_state_len: i64,
    }
}

go_struct! {
    /// `pushNodeState`: one node's state in a push/pull exchange.
    pub struct PushNodeState {
        "Addr" => addr: Bytes,
        "Incarnation" => incarnation: u32,
        "Meta" => meta: Option<Bytes>,
        "Name" => name: GoString,
        "Port" => port: u16,
        "State" => state: NodeState,
        "Vsn" => vsn: Bytes,
    }
}

/// memberlist's `NodeStateType` (a Go `int`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NodeState {
    #[default]
    Alive = 0,
    Suspect = 1,
    Dead = 2,
    Left = 3,
}

impl Field for NodeState {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.int(*self as i64);
    }
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
        let start = dec.position();
        match dec.int()?.as_i128() {
            0 => Ok(NodeState::Alive),
            1 => Ok(NodeState::Suspect),
            2 => Ok(NodeState::Dead),
            3 => Ok(NodeState::Left),
            v => Err(crate::wire::DecodeError::new(
                ErrorKind::InvalidValue {
                    what: "node state",
                    value: v,
                },
                start,
            )),
        }
    }
    fn is_empty(&self) -> bool {
        *self == NodeState::Alive
    }
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
}
