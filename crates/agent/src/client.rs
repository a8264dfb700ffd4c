//! The agent's RPC client, as HashiCorp's `client/rpc_client.go`: one TCP connection, a
//! handshake (and auth) first, then requests numbered by `Seq`.
//!
//! The client is synchronous. Replies arrive in order, but records of open streams (`stream`,
//! `monitor`, `query`) can arrive at any time, also while a reply is awaited; those are read
//! (header *and* body, so the byte stream stays in step) and queued for [`RpcClient::next_record`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use thiserror::Error;

use crate::frame::{self, FrameError, ObjectReader};
use crate::gotext;
use serf::api::wire::msgpack::{self, Bytes, Decoder, Dialect, Encoder, Field, GoString, Value};
use serf::api::wire::rpc::{
    AuthRequest, Command, CoordinateRequest, CoordinateResponse, EventRequest, ForceLeaveRequest,
    HandshakeRequest, JoinRequest, JoinResponse, KeyRequest, KeyResponse, LogRecord, Member,
    MembersFilteredRequest, MembersResponse, MonitorRequest, QueryRecord, QueryRequest,
    RespondRequest, ResponseHeader, StatsResponse, StopRequest, StreamRequest, TagsRequest,
    IPC_VERSION,
};
use serf::api::wire::serf::Coordinate;
use serf::api::wire::DecodeResult;

/// Where the CLI looks for an agent when neither `-rpc-addr` nor `SERF_RPC_ADDR` says.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7373";

/// Dial and write timeout, as Go's `client.DefaultTimeout`.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The one error after which the agent sends no body, whatever the command.
const AUTH_REQUIRED: &str = "Authentication required";

/// Why a request failed. The texts are what HashiCorp's client reports, since the CLI prints them.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The agent could not be reached; worded like Go's `net.Dial` errors.
    #[error("{0}")]
    Dial(String),
    /// The agent answered with an error.
    #[error("{0}")]
    Remote(String),
    /// The connection ended, or failed, before the answer arrived.
    #[error("client closed")]
    Closed,
    /// A request could not be sent.
    #[error("{0}")]
    Write(String),
    /// The agent sent something that is not the RPC protocol.
    #[error("protocol error: {0}")]
    Protocol(FrameError),
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Closed | FrameError::Io(_) => ClientError::Closed,
            other => ClientError::Protocol(other),
        }
    }
}

/// A key operation that failed, with the per-node messages the agent sent along with the error
/// (Go's client returns both; the CLI lists the nodes).
#[derive(Debug, Error)]
#[error("{error}")]
pub struct KeyFailure {
    pub error: ClientError,
    /// Node name → error message.
    pub messages: BTreeMap<GoString, GoString>,
}

/// Identifies an open stream, monitor or query: the `Seq` of the request that opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamHandle(u64);

/// What an open stream delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A log line from `monitor`.
    Log(GoString),
    /// An event from `stream`: the record exactly as received, since its shape depends on the
    /// event type (and the CLI prints it the way Go's generic decoding sees it).
    Event(RawObject),
    /// A node acknowledged a query.
    Ack(GoString),
    /// A node responded to a query.
    Response { from: GoString, payload: Vec<u8> },
    /// The query's deadline passed; nothing more comes for it.
    QueryDone,
}

/// One msgpack object, kept as its encoded bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawObject(pub Vec<u8>);

impl RawObject {
    /// The object decoded generically, for typed access to its fields.
    pub fn value(&self) -> DecodeResult<Value> {
        Decoder::new(&self.0).value()
    }
}

impl Field for RawObject {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.raw(&self.0);
    }
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
        let start = dec.rest();
        dec.skip()?;
        let used = start.len() - dec.remaining();
        Ok(RawObject(start[..used].to_vec()))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn to_value(&self) -> Value {
        self.value().unwrap_or(Value::Nil)
    }
}

/// What an open subscription's records look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscription {
    Events,
    Logs,
    Query,
}

#[derive(Debug)]
struct Open {
    kind: Subscription,
    /// Stop was sent: records still in flight are read and dropped.
    stopped: bool,
}

/// A connection to an agent's RPC port.
pub struct RpcClient {
    writer: TcpStream,
    reader: ObjectReader<TcpStream>,
    seq: u64,
    open: HashMap<u64, Open>,
    pending: VecDeque<(StreamHandle, Record)>,
}

fn encode<B: Field>(body: &B) -> Vec<u8> {
    msgpack::to_vec(body, Dialect::RPC)
}

impl RpcClient {
    /// Connects, performs the handshake and, if `auth_key` is not empty, authenticates.
    pub fn connect(addr: &str, auth_key: &str) -> Result<Self, ClientError> {
        let stream = dial(addr)?;
        let write_error = |e: io::Error| ClientError::Write(e.to_string());
        stream
            .set_write_timeout(Some(TIMEOUT))
            .map_err(write_error)?;
        let _ = stream.set_nodelay(true);
        let reader = ObjectReader::new(stream.try_clone().map_err(write_error)?);
        let mut client = RpcClient {
            writer: stream,
            reader,
            seq: 0,
            open: HashMap::new(),
            pending: VecDeque::new(),
        };
        client.simple(
            Command::Handshake,
            &encode(&HandshakeRequest {
                version: IPC_VERSION,
            }),
        )?;
        if !auth_key.is_empty() {
            let auth = AuthRequest {
                auth_key: auth_key.into(),
            };
            client.simple(Command::Auth, &encode(&auth))?;
        }
        Ok(client)
    }

    /// Sends a request; `body` is already encoded (empty for commands that take none).
    fn send(&mut self, command: Command, body: &[u8]) -> Result<u64, ClientError> {
        self.seq += 1;
        let mut out = frame::request(command.name(), self.seq);
        out.extend_from_slice(body);
        frame::write_frame(&mut self.writer, &out).map_err(|e| {
            let local = self
                .writer
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let peer = self
                .writer
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            ClientError::Write(format!(
                "write tcp {local}->{peer}: write: {}",
                gotext::errno_text(&e)
            ))
        })?;
        Ok(self.seq)
    }

    /// Sends a request and waits for its reply header, queueing stream records meanwhile.
    fn request(&mut self, command: Command, body: &[u8]) -> Result<ResponseHeader, ClientError> {
        let seq = self.send(command, body)?;
        loop {
            let header: ResponseHeader = self.reader.read()?;
            if header.seq == seq {
                return Ok(header);
            }
            self.dispatch(header.seq)?;
        }
    }

    /// A request whose reply is a header only.
    fn simple(&mut self, command: Command, body: &[u8]) -> Result<(), ClientError> {
        let header = self.request(command, body)?;
        remote(&header)
    }

    /// A request whose reply carries a body, which the agent sends even with an error.
    fn with_reply<R: Field>(
        &mut self,
        command: Command,
        body: &[u8],
    ) -> Result<(R, Result<(), ClientError>), ClientError> {
        let header = self.request(command, body)?;
        if header.error.as_bytes() == AUTH_REQUIRED.as_bytes() {
            return Err(ClientError::Remote(AUTH_REQUIRED.into()));
        }
        let reply = self.reader.read::<R>()?;
        Ok((reply, remote(&header)))
    }

    fn reply<R: Field>(&mut self, command: Command, body: &[u8]) -> Result<R, ClientError> {
        let (reply, outcome) = self.with_reply(command, body)?;
        outcome.map(|()| reply)
    }

    /// Reads the body of a record for an open subscription (or, like Go, ignores a header whose
    /// `Seq` is unknown; nothing legitimate arrives that way).
    fn dispatch(&mut self, seq: u64) -> Result<(), ClientError> {
        let Some(open) = self.open.get(&seq) else {
            return Ok(());
        };
        let (kind, stopped) = (open.kind, open.stopped);
        let record = match kind {
            Subscription::Logs => Record::Log(self.reader.read::<LogRecord>()?.log),
            Subscription::Events => Record::Event(self.reader.read::<RawObject>()?),
            Subscription::Query => {
                let rec: QueryRecord = self.reader.read()?;
                match rec.record_type.as_bytes() {
                    b"ack" => Record::Ack(rec.from),
                    b"response" => Record::Response {
                        from: rec.from,
                        payload: rec.payload.map(|p| p.0).unwrap_or_default(),
                    },
                    b"done" => {
                        self.open.remove(&seq);
                        Record::QueryDone
                    }
                    // Go's client logs and skips an unknown record type.
                    _ => return Ok(()),
                }
            }
        };
        if !stopped {
            self.pending.push_back((StreamHandle(seq), record));
        }
        Ok(())
    }

    /// Opens a subscription: the first reply header says whether the agent accepted it.
    fn subscribe(
        &mut self,
        command: Command,
        body: &[u8],
        kind: Subscription,
    ) -> Result<StreamHandle, ClientError> {
        let header = self.request(command, body)?;
        remote(&header)?;
        self.open.insert(
            header.seq,
            Open {
                kind,
                stopped: false,
            },
        );
        Ok(StreamHandle(header.seq))
    }

    /// The next record of any open subscription, waiting at most `wait`; `None` if none came.
    pub fn next_record(
        &mut self,
        wait: Duration,
    ) -> Result<Option<(StreamHandle, Record)>, ClientError> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(Some(r));
        }
        let socket = self.reader.get_ref();
        socket
            .set_read_timeout(Some(wait))
            .map_err(|_| ClientError::Closed)?;
        let header = self.reader.read::<ResponseHeader>();
        // Bodies follow their header at once: read them without a deadline, so a record is never
        // cut in half.
        self.reader
            .get_ref()
            .set_read_timeout(None)
            .map_err(|_| ClientError::Closed)?;
        match header {
            Ok(h) => self.dispatch(h.seq)?,
            Err(FrameError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(self.pending.pop_front())
    }

    pub fn members(&mut self) -> Result<Vec<Member>, ClientError> {
        let reply: MembersResponse = self.reply(Command::Members, &[])?;
        Ok(reply.members)
    }

    /// Members whose name, status and tags match the (agent-side anchored) patterns.
    pub fn members_filtered(
        &mut self,
        tags: BTreeMap<String, String>,
        status: &str,
        name: &str,
    ) -> Result<Vec<Member>, ClientError> {
        let req = MembersFilteredRequest {
            name: name.into(),
            status: status.into(),
            tags: Some(go_map(tags)),
        };
        let reply: MembersResponse = self.reply(Command::MembersFiltered, &encode(&req))?;
        Ok(reply.members)
    }

    /// Joins the agent to the nodes at `addrs`; returns how many were contacted.
    pub fn join(&mut self, addrs: &[String], replay: bool) -> Result<i32, ClientError> {
        let req = JoinRequest {
            existing: addrs.iter().map(|a| a.as_str().into()).collect(),
            replay,
        };
        let reply: JoinResponse = self.reply(Command::Join, &encode(&req))?;
        Ok(reply.num)
    }

    /// Graceful leave; the agent shuts down afterwards.
    pub fn leave(&mut self) -> Result<(), ClientError> {
        self.simple(Command::Leave, &[])
    }

    /// Forces `node` into the left state; `prune` also removes it from the member list.
    pub fn force_leave(&mut self, node: &str, prune: bool) -> Result<(), ClientError> {
        let req = ForceLeaveRequest {
            node: node.into(),
            prune,
        };
        self.simple(Command::ForceLeave, &encode(&req))
    }

    pub fn user_event(
        &mut self,
        name: &str,
        payload: Option<&[u8]>,
        coalesce: bool,
    ) -> Result<(), ClientError> {
        let req = EventRequest {
            coalesce,
            name: name.into(),
            payload: payload.map(Bytes::from),
        };
        self.simple(Command::Event, &encode(&req))
    }

    /// Sets `tags` and removes the `delete` keys on the agent.
    pub fn update_tags(
        &mut self,
        tags: BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), ClientError> {
        let req = TagsRequest {
            delete_tags: (!delete.is_empty())
                .then(|| delete.iter().map(|k| k.as_str().into()).collect()),
            tags: Some(go_map(tags)),
        };
        self.simple(Command::Tags, &encode(&req))
    }

    /// Answers a query received on this connection's event stream.
    pub fn respond(&mut self, id: u64, payload: &[u8]) -> Result<(), ClientError> {
        let req = RespondRequest {
            id,
            payload: Some(payload.into()),
        };
        self.simple(Command::Respond, &encode(&req))
    }

    fn key_command(&mut self, command: Command, body: &[u8]) -> Result<KeyResponse, KeyFailure> {
        let failure = |error| KeyFailure {
            error,
            messages: BTreeMap::new(),
        };
        let (reply, outcome): (KeyResponse, _) = self.with_reply(command, body).map_err(failure)?;
        match outcome {
            Ok(()) => Ok(reply),
            Err(error) => Err(KeyFailure {
                error,
                messages: reply.messages.unwrap_or_default(),
            }),
        }
    }

    pub fn install_key(&mut self, key: &str) -> Result<KeyResponse, KeyFailure> {
        self.key_command(
            Command::InstallKey,
            &encode(&KeyRequest { key: key.into() }),
        )
    }

    pub fn use_key(&mut self, key: &str) -> Result<KeyResponse, KeyFailure> {
        self.key_command(Command::UseKey, &encode(&KeyRequest { key: key.into() }))
    }

    pub fn remove_key(&mut self, key: &str) -> Result<KeyResponse, KeyFailure> {
        self.key_command(Command::RemoveKey, &encode(&KeyRequest { key: key.into() }))
    }

    /// Every key in the cluster and how many nodes hold it.
    pub fn list_keys(&mut self) -> Result<KeyResponse, KeyFailure> {
        self.key_command(Command::ListKeys, &[])
    }

    pub fn stats(&mut self) -> Result<StatsResponse, ClientError> {
        self.reply(Command::Stats, &[])
    }

    /// The agent's cached coordinate of `node`, if it has one.
    pub fn get_coordinate(&mut self, node: &str) -> Result<Option<Coordinate>, ClientError> {
        let req = CoordinateRequest { node: node.into() };
        let reply: CoordinateResponse = self.reply(Command::GetCoordinate, &encode(&req))?;
        Ok(reply.ok.then_some(reply.coord))
    }

    /// Subscribes to events matching `filter` (`*`, `member-join,user:deploy`, …).
    pub fn stream(&mut self, filter: &str) -> Result<StreamHandle, ClientError> {
        let req = StreamRequest {
            event_type: filter.into(),
        };
        self.subscribe(Command::Stream, &encode(&req), Subscription::Events)
    }

    /// Subscribes to the agent's log at `level` or above; the agent first replays recent lines.
    pub fn monitor(&mut self, level: &str) -> Result<StreamHandle, ClientError> {
        let req = MonitorRequest {
            log_level: level.into(),
        };
        self.subscribe(Command::Monitor, &encode(&req), Subscription::Logs)
    }

    /// Starts a query; acks and responses follow as records, then [`Record::QueryDone`].
    pub fn query(&mut self, req: &QueryRequest) -> Result<StreamHandle, ClientError> {
        self.subscribe(Command::Query, &encode(req), Subscription::Query)
    }

    /// Ends a stream or monitor. Records already in flight are dropped.
    pub fn stop(&mut self, handle: StreamHandle) -> Result<(), ClientError> {
        if let Some(open) = self.open.get_mut(&handle.0) {
            open.stopped = true;
        }
        self.pending.retain(|(h, _)| *h != handle);
        self.simple(Command::Stop, &encode(&StopRequest { stop: handle.0 }))
    }
}

fn remote(header: &ResponseHeader) -> Result<(), ClientError> {
    if header.error.is_empty() {
        Ok(())
    } else {
        Err(ClientError::Remote(header.error.to_string_lossy()))
    }
}

fn go_map(map: BTreeMap<String, String>) -> BTreeMap<GoString, GoString> {
    map.into_iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect()
}

/// Connects like Go's `net.DialTimeout("tcp", addr, 10s)`, with its error texts (the CLI prints
/// them after `Error connecting to Serf agent: `): each address of the host in turn, the
/// first failure reported.
fn dial(addr: &str) -> Result<TcpStream, ClientError> {
    let fail = |text: String| ClientError::Dial(format!("dial tcp: {text}"));
    if addr.is_empty() {
        return Err(fail("missing address".into()));
    }
    let (host, port) = gotext::split_host_port(addr).map_err(fail)?;
    let port = gotext::lookup_port(port).map_err(fail)?;
    // An empty host means this machine, as in Go (which then shows no IP).
    let targets: Vec<Option<IpAddr>> = if host.is_empty() {
        vec![None]
    } else {
        gotext::lookup_host(host)
            .map_err(fail)?
            .into_iter()
            .map(Some)
            .collect()
    };
    let mut first = None;
    for ip in targets {
        let target = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), port);
        let shown = gotext::tcp_addr_string(ip, port);
        let error = match TcpStream::connect_timeout(&target, TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                format!("dial tcp {shown}: i/o timeout")
            }
            Err(e) => format!("dial tcp {shown}: connect: {}", gotext::errno_text(&e)),
        };
        first.get_or_insert(ClientError::Dial(error));
    }
    Err(first.unwrap_or_else(|| fail(format!("lookup {host}: no such host"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_errors_read_like_go() {
        let refused = dial_refused_port();
        let e = dial(&format!("127.0.0.1:{refused}")).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!("dial tcp 127.0.0.1:{refused}: connect: connection refused")
        );
        let e = dial("127.0.0.1").err().unwrap();
        assert_eq!(
            e.to_string(),
            "dial tcp: address 127.0.0.1: missing port in address"
        );
        let e = dial("").err().unwrap();
        assert_eq!(e.to_string(), "dial tcp: missing address");
        let e = dial(":").err().unwrap();
        assert_eq!(e.to_string(), "dial tcp :0: connect: connection refused");
        let e = dial("bad!host:1").err().unwrap();
        assert_eq!(e.to_string(), "dial tcp: lookup bad!host: no such host");
    }

    /// A loopback port nothing listens on: bound, then released.
    fn dial_refused_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[test]
    fn raw_objects_keep_their_bytes() {
        let bytes = encode(&StopRequest { stop: 300 });
        let mut with_tail = bytes.clone();
        with_tail.push(0xc0);
        let raw: RawObject = msgpack::from_slice(&with_tail).unwrap();
        assert_eq!(raw.0, bytes);
        assert_eq!(raw.value().unwrap().get("Stop"), Some(&Value::Uint(300)));
    }
}
