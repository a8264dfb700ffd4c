//! Serf's gossip message bodies (`serf/messages.go`), carried inside memberlist user messages.

use std::collections::BTreeMap;

use crate::go_struct;
use crate::wire::msgpack::{Bytes, GoString};

/// Serf's Lamport times are Go `uint64`.
pub type LamportTime = u64;

go_struct! {
    /// `messageLeave` (type 0): a node's intent to leave (or a force-leave; `prune` erases it).
    pub struct Leave {
        "LTime" => ltime: LamportTime,
        "Node" => node: GoString,
        "Prune" => prune: bool,
    }
}

go_struct! {
    /// `messageJoin` (type 1): a node's intent to join.
    pub struct Join {
        "LTime" => ltime: LamportTime,
        "Node" => node: GoString,
    }
}

go_struct! {
    /// `messagePushPull` (type 2): serf's state in memberlist push/pull.
    pub struct PushPull {
        /// The sender's next unused event time.
        "EventLTime" => event_ltime: LamportTime,
        /// The sender's whole event ring buffer; empty slots are nil.
        "Events" => events: Vec<Option<UserEvents>>,
        "LTime" => ltime: LamportTime,
        "LeftMembers" => left_members: Vec<GoString>,
        "QueryLTime" => query_ltime: LamportTime,
        /// Every known member's status time.
        "StatusLTimes" => status_ltimes: BTreeMap<GoString, LamportTime>,
    }
}

go_struct! {
    /// `userEvents`: the events that share one Lamport time in the event buffer.
    pub struct UserEvents {
        "Events" => events: Vec<UserEvent>,
        "LTime" => ltime: LamportTime,
    }
}

go_struct! {
    /// `userEvent`: an event as kept in the event buffer (no coalesce flag).
    pub struct UserEvent {
        "Name" => name: GoString,
        "Payload" => payload: Option<Bytes>,
    }
}

go_struct! {
    /// `messageUserEvent` (type 3). `cc` says the event may be coalesced.
    pub struct UserEventMessage {
        "CC" => cc: bool,
        "LTime" => ltime: LamportTime,
        "Name" => name: GoString,
        "Payload" => payload: Option<Bytes>,
    }
}

go_struct! {
    /// `messageQuery` (type 4). `addr`/`port`/`source_node` say where responses go.
    pub struct Query {
        "Addr" => addr: Bytes,
        /// Encoded [`Filter`](super::Filter)s.
        "Filters" => filters: Option<Vec<Bytes>>,
        "Flags" => flags: u32,
        "ID" => id: u32,
        "LTime" => ltime: LamportTime,
        "Name" => name: GoString,
        "Payload" => payload: Option<Bytes>,
        "Port" => port: u16,
        "RelayFactor" => relay_factor: u8,
        "SourceNode" => source_node: GoString,
        /// A Go `time.Duration`: nanoseconds.
        "Timeout" => timeout: i64,
    }
}

go_struct! {
    /// `messageQueryResponse` (type 5): an ack (flags 1) or a response, sent straight to the
    /// querier.
    pub struct QueryResponse {
        "Flags" => flags: u32,
        "From" => from: GoString,
        "ID" => id: u32,
        "LTime" => ltime: LamportTime,
        "Payload" => payload: Option<Bytes>,
    }
}

go_struct! {
    /// `serf.Member` as carried in a `_serf_conflict` response (type 6).
    pub struct Member {
        "Addr" => addr: Bytes,
        "DelegateCur" => delegate_cur: u8,
        "DelegateMax" => delegate_max: u8,
        "DelegateMin" => delegate_min: u8,
        "Name" => name: GoString,
        "Port" => port: u16,
        "ProtocolCur" => protocol_cur: u8,
        "ProtocolMax" => protocol_max: u8,
        "ProtocolMin" => protocol_min: u8,
        /// `MemberStatus`: 0 none, 1 alive, 2 leaving, 3 left, 4 failed.
        "Status" => status: i64,
        "Tags" => tags: Option<BTreeMap<GoString, GoString>>,
    }
}

go_struct! {
    /// `keyRequest` (type 7): the payload of the key-management internal queries.
    pub struct KeyRequest {
        "Key" => key: Option<Bytes>,
    }
}

go_struct! {
    /// `nodeKeyResponse` (type 8): one node's answer to a key-management query.
    pub struct KeyResponse {
        /// Base64 keys (list-keys only).
        "Keys" => keys: Option<Vec<GoString>>,
        "Message" => message: GoString,
        "PrimaryKey" => primary_key: GoString,
        "Result" => result: bool,
    }
}

go_struct! {
    /// Go's `net.UDPAddr`, as it appears in a relay header.
    pub struct UdpAddr {
        "IP" => ip: Bytes,
        "Port" => port: i64,
        "Zone" => zone: GoString,
    }
}

go_struct! {
    /// `relayHeader`: where a relaying node forwards the message that follows it.
    pub struct RelayHeader {
        "DestAddr" => dest_addr: UdpAddr,
        "DestName" => dest_name: GoString,
    }
}

go_struct! {
    /// `filterTag`: the tag `tag` must match the regular expression `expr`.
    pub struct FilterTag {
        "Expr" => expr: GoString,
        "Tag" => tag: GoString,
    }
}

go_struct! {
    /// Serf's Vivaldi network coordinate (`coordinate.Coordinate`), seconds.
    pub struct Coordinate {
        "Adjustment" => adjustment: f64,
        "Error" => error: f64,
        "Height" => height: f64,
        "Vec" => vec: Option<Vec<f64>>,
    }
}
