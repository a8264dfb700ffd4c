//! The agent RPC protocol ("IPC"): a stream of msgpack objects on the RPC port, request header
//! then optional body, response header then optional body. Encoded with [`Dialect::RPC`].
//!
//! [`Dialect::RPC`]: crate::wire::msgpack::Dialect::RPC

use std::collections::BTreeMap;

use crate::go_struct;
use crate::wire::msgpack::{Bytes, GoString};
use crate::wire::serf::Coordinate;

/// The only RPC protocol version.
pub const IPC_VERSION: i32 = 1;

go_struct! {
    /// Precedes every request.
    pub struct RequestHeader {
        "Command" => command: GoString,
        "Seq" => seq: u64,
    }
}

go_struct! {
    /// Precedes every response and every streamed record; `error` is empty on success.
    pub struct ResponseHeader {
        "Error" => error: GoString,
        "Seq" => seq: u64,
    }
}

go_struct! {
    pub struct HandshakeRequest {
        "Version" => version: i32,
    }
}

go_struct! {
    pub struct AuthRequest {
        "AuthKey" => auth_key: GoString,
    }
}

go_struct! {
    pub struct EventRequest {
        "Coalesce" => coalesce: bool,
        "Name" => name: GoString,
        "Payload" => payload: Option<Bytes>,
    }
}

go_struct! {
    pub struct ForceLeaveRequest {
        "Node" => node: GoString,
        "Prune" => prune: bool,
    }
}

go_struct! {
    pub struct JoinRequest {
        "Existing" => existing: Vec<GoString>,
        /// False means ignore old user events.
        "Replay" => replay: bool,
    }
}

go_struct! {
    pub struct JoinResponse {
        "Num" => num: i32,
    }
}

go_struct! {
    /// A member as the agent reports it.
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
        /// `none`, `alive`, `leaving`, `left` or `failed`.
        "Status" => status: GoString,
        "Tags" => tags: Option<BTreeMap<GoString, GoString>>,
    }
}

go_struct! {
    pub struct MembersResponse {
        "Members" => members: Vec<Member>,
    }
}

go_struct! {
    /// Each pattern is anchored (`^…$`) by the agent; empty means no filter.
    pub struct MembersFilteredRequest {
        "Name" => name: GoString,
        "Status" => status: GoString,
        "Tags" => tags: Option<BTreeMap<GoString, GoString>>,
    }
}

go_struct! {
    pub struct TagsRequest {
        "DeleteTags" => delete_tags: Option<Vec<GoString>>,
        "Tags" => tags: Option<BTreeMap<GoString, GoString>>,
    }
}

go_struct! {
    /// `Type` is an event filter such as `member-join,user:deploy` (empty means all).
    pub struct StreamRequest {
        "Type" => event_type: GoString,
    }
}

go_struct! {
    pub struct MonitorRequest {
        "LogLevel" => log_level: GoString,
    }
}

go_struct! {
    pub struct StopRequest {
        "Stop" => stop: u64,
    }
}

go_struct! {
    pub struct QueryRequest {
        "FilterNodes" => filter_nodes: Option<Vec<GoString>>,
        "FilterTags" => filter_tags: Option<BTreeMap<GoString, GoString>>,
        "Name" => name: GoString,
        "Payload" => payload: Option<Bytes>,
        "RelayFactor" => relay_factor: u8,
        "RequestAck" => request_ack: bool,
        /// Nanoseconds; 0 means the agent's default.
        "Timeout" => timeout: i64,
    }
}

go_struct! {
    pub struct RespondRequest {
        "ID" => id: u64,
        "Payload" => payload: Option<Bytes>,
    }
}

go_struct! {
    /// install-key, use-key and remove-key: a base64 key.
    pub struct KeyRequest {
        "Key" => key: GoString,
    }
}

go_struct! {
    pub struct KeyResponse {
        /// Base64 key → how many nodes hold it (list-keys only).
        "Keys" => keys: Option<BTreeMap<GoString, i64>>,
        "Messages" => messages: Option<BTreeMap<GoString, GoString>>,
        "NumErr" => num_err: i64,
        "NumNodes" => num_nodes: i64,
        "NumResp" => num_resp: i64,
    }
}

go_struct! {
    pub struct CoordinateRequest {
        "Node" => node: GoString,
    }
}

go_struct! {
    pub struct CoordinateResponse {
        "Coord" => coord: Coordinate,
        "Ok" => ok: bool,
    }
}

/// `stats`: section → key → value, all strings.
pub type StatsResponse = BTreeMap<GoString, BTreeMap<GoString, GoString>>;

go_struct! {
    /// A streamed member event.
    pub struct MemberEventRecord {
        "Event" => event: GoString,
        "Members" => members: Vec<Member>,
    }
}

go_struct! {
    /// A streamed user event.
    pub struct UserEventRecord {
        "Coalesce" => coalesce: bool,
        "Event" => event: GoString,
        "LTime" => ltime: u64,
        "Name" => name: GoString,
        "Payload" => payload: Option<Bytes>,
    }
}

go_struct! {
    /// A streamed query; `id` is what `respond` takes.
    pub struct QueryEventRecord {
        "Event" => event: GoString,
        "ID" => id: u64,
        "LTime" => ltime: u64,
        "Name" => name: GoString,
        "Payload" => payload: Option<Bytes>,
    }
}

go_struct! {
    /// A log line for `monitor`.
    pub struct LogRecord {
        "Log" => log: GoString,
    }
}

go_struct! {
    /// An ack, a response, or `done`, for a `query` request.
    pub struct QueryRecord {
        "From" => from: GoString,
        "Payload" => payload: Option<Bytes>,
        "Type" => record_type: GoString,
    }
}

/// What follows a request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    None,
    Handshake,
    Auth,
    Event,
    ForceLeave,
    Join,
    MembersFiltered,
    Tags,
    Stream,
    Monitor,
    Stop,
    Query,
    Respond,
    Key,
    Coordinate,
}

/// What follows the first response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    None,
    Join,
    Members,
    Key,
    Stats,
    Coordinate,
    /// Header-only reply, then records until stopped (stream, monitor) or done (query).
    Records,
}

/// Every RPC command: its name on the wire and the bodies that go with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Handshake,
    Auth,
    Event,
    ForceLeave,
    Join,
    Members,
    MembersFiltered,
    Tags,
    Stream,
    Monitor,
    Stop,
    Leave,
    Query,
    Respond,
    InstallKey,
    UseKey,
    RemoveKey,
    ListKeys,
    Stats,
    GetCoordinate,
}

impl Command {
    pub const ALL: [Command; 20] = [
        Command::Handshake,
        Command::Auth,
        Command::Event,
        Command::ForceLeave,
        Command::Join,
        Command::Members,
        Command::MembersFiltered,
        Command::Tags,
        Command::Stream,
        Command::Monitor,
        Command::Stop,
        Command::Leave,
        Command::Query,
        Command::Respond,
        Command::InstallKey,
        Command::UseKey,
        Command::RemoveKey,
        Command::ListKeys,
        Command::Stats,
        Command::GetCoordinate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Command::Handshake => "handshake",
            Command::Auth => "auth",
            Command::Event => "event",
            Command::ForceLeave => "force-leave",
            Command::Join => "join",
            Command::Members => "members",
            Command::MembersFiltered => "members-filtered",
            Command::Tags => "tags",
            Command::Stream => "stream",
            Command::Monitor => "monitor",
            Command::Stop => "stop",
            Command::Leave => "leave",
            Command::Query => "query",
            Command::Respond => "respond",
            Command::InstallKey => "install-key",
            Command::UseKey => "use-key",
            Command::RemoveKey => "remove-key",
            Command::ListKeys => "list-keys",
            Command::Stats => "stats",
            Command::GetCoordinate => "get-coordinate",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|c| c.name().as_bytes() == name)
    }

    pub fn request_body(self) -> RequestBody {
        match self {
            Command::Handshake => RequestBody::Handshake,
            Command::Auth => RequestBody::Auth,
            Command::Event => RequestBody::Event,
            Command::ForceLeave => RequestBody::ForceLeave,
            Command::Join => RequestBody::Join,
            Command::MembersFiltered => RequestBody::MembersFiltered,
            Command::Tags => RequestBody::Tags,
            Command::Stream => RequestBody::Stream,
            Command::Monitor => RequestBody::Monitor,
            Command::Stop => RequestBody::Stop,
            Command::Query => RequestBody::Query,
            Command::Respond => RequestBody::Respond,
            Command::InstallKey | Command::UseKey | Command::RemoveKey => RequestBody::Key,
            Command::GetCoordinate => RequestBody::Coordinate,
            Command::Members | Command::Leave | Command::ListKeys | Command::Stats => {
                RequestBody::None
            }
        }
    }

    pub fn response_body(self) -> ResponseBody {
        match self {
            Command::Join => ResponseBody::Join,
            Command::Members | Command::MembersFiltered => ResponseBody::Members,
            Command::InstallKey | Command::UseKey | Command::RemoveKey | Command::ListKeys => {
                ResponseBody::Key
            }
            Command::Stats => ResponseBody::Stats,
            Command::GetCoordinate => ResponseBody::Coordinate,
            Command::Stream | Command::Monitor | Command::Query => ResponseBody::Records,
            _ => ResponseBody::None,
        }
    }
}
