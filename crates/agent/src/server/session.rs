//! One RPC client's side of HashiCorp's IPC protocol: its handshake and authentication, its
//! streams, monitor and pending queries, and what each command does. A session handles one
//! request at a time, on a worker thread (see `workers`); what it sends goes through the
//! connection's [`Outbox`]. Streams and monitors need no thread: the agent's event dispatch and
//! the logger queue their records straight into the outbox.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serf::api::wire::msgpack::{Decoder, Field, GoString};
use serf::api::wire::rpc::{self, Command, RequestBody, IPC_VERSION};
use serf::api::{Event, KeyOp, Member, QueryParams, QueryUpdate, SerfError};

use super::outbox::{Outbox, Refused};
use super::records::{event_frame, key_response, query_record, rpc_member, MemberFilter};
use super::workers::Job;
use crate::filter::EventFilter;
use crate::frame::FrameError;
use crate::log::{Delivery, Level};
use crate::service::{Agent, AgentError, DropSite, EventHandler};

const HANDSHAKE_REQUIRED: &str = "Handshake required";
const AUTH_REQUIRED: &str = "Authentication required";
const INVALID_AUTH: &str = "Invalid authentication token";
const UNSUPPORTED_COMMAND: &str = "Unsupported command";
const UNSUPPORTED_VERSION: &str = "Unsupported IPC version";
const DUPLICATE_HANDSHAKE: &str = "Handshake already performed";
const MONITOR_EXISTS: &str = "Monitor already exists";
const INVALID_FILTER: &str = "Invalid event filter";
const STREAM_EXISTS: &str = "Stream with given sequence exists";
const INVALID_QUERY_ID: &str = "No pending queries matching ID";

/// Why a connection ends other than by the client closing it.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Protocol(String),
}

impl From<Refused> for Fatal {
    fn from(_: Refused) -> Fatal {
        Fatal::Closed
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One request as read from the client: its header and, if its command takes one (and the
/// session will read it), its body's bytes.
pub struct Request {
    pub seq: u64,
    pub command: Result<Command, String>,
    pub body: Vec<u8>,
}

/// Decodes a request body. Unknown map keys are skipped, as Go's decoder does.
fn decode<T: Field>(body: &[u8]) -> Result<T, Fatal> {
    T::decode(&mut Decoder::new(body)).map_err(|e| Fatal::Frame(FrameError::Malformed(e)))
}

fn key(body: &[u8]) -> Result<String, Fatal> {
    Ok(decode::<rpc::KeyRequest>(body)?.key.to_string_lossy())
}

/// Queries this connection's streams delivered, by the per-connection id `respond` takes.
#[derive(Default)]
struct PendingQueries {
    next_id: u64,
    by_id: HashMap<u64, (u64, u32, Instant)>,
}

impl PendingQueries {
    /// Registers a query unless its deadline already passed (then it gets no usable id).
    fn register(&mut self, ltime: u64, id: u32, deadline: Instant) -> u64 {
        let now = Instant::now();
        self.by_id.retain(|_, (_, _, d)| *d > now);
        self.next_id += 1;
        if deadline > now {
            self.by_id.insert(self.next_id, (ltime, id, deadline));
        }
        self.next_id
    }
}

/// One event stream of a connection, registered with the agent as a handler: it writes each
/// matching event's record into the connection's outbox.
struct StreamSink {
    seq: u64,
    filter: EventFilter,
    outbox: Arc<Outbox>,
    pending: Arc<Mutex<PendingQueries>>,
    peer: String,
}

impl EventHandler for StreamSink {
    fn handle(&self, agent: &Agent, event: &Event) {
        if !self.filter.matches(event) {
            return;
        }
        let frame = event_frame(self.seq, event, |ltime, id, deadline| {
            lock(&self.pending).register(ltime, id, deadline)
        });
        let Some(frame) = frame else {
            return;
        };
        if self.outbox.offer(&frame) == Err(Refused::Full) {
            agent.count_drops(DropSite::Stream, 1);
            agent
                .logger()
                .warn(format!("agent.ipc: Dropping event to {}", self.peer));
        }
    }
}

pub struct Session {
    agent: Arc<Agent>,
    auth: String,
    peer: String,
    outbox: Arc<Outbox>,
    version: i32,
    authenticated: bool,
    /// Open streams: the request's sequence number and the agent's handler id.
    streams: HashMap<u64, u64>,
    /// The monitor, if one is open: its sequence number and the logger's id for it.
    monitor: Option<(u64, u64)>,
    pending: Arc<Mutex<PendingQueries>>,
}

impl Drop for Session {
    /// A closed connection's streams and monitor stop with it.
    fn drop(&mut self) {
        for (_, handler) in self.streams.drain() {
            self.agent.deregister(handler);
        }
        if let Some((_, id)) = self.monitor.take() {
            self.agent.logger().unmonitor(id);
        }
    }
}

impl Session {
    pub fn new(agent: Arc<Agent>, auth: String, peer: String, outbox: Arc<Outbox>) -> Session {
        Session {
            agent,
            auth,
            peer,
            outbox,
            version: 0,
            authenticated: false,
            streams: HashMap::new(),
            monitor: None,
            pending: Arc::default(),
        }
    }

    /// Whether the body that follows a `command` header is read before the request is handled.
    /// Before the handshake only the handshake's is: any other command ends the connection, as
    /// in HashiCorp's server. Unlike HashiCorp's server, a body sent before authentication is
    /// read (and ignored), so the stream stays in step.
    pub fn reads_body(&self, command: Command) -> bool {
        command.request_body() != RequestBody::None
            && (self.version != 0 || command == Command::Handshake)
    }

    /// Carries out one request. What it returns, if anything, is the rest of a query's answer,
    /// run on the same worker once the session is free for the next request.
    pub fn serve(&mut self, request: Request) -> Result<Option<Job>, Fatal> {
        let seq = request.seq;
        let command = request.command.as_ref().ok().copied();
        if command != Some(Command::Handshake) && self.version == 0 {
            self.outbox.reply(seq, HANDSHAKE_REQUIRED)?;
            return Err(Fatal::Protocol(HANDSHAKE_REQUIRED.into()));
        }
        metrics::counter!("agent.ipc.command").increment(1);
        let command = match request.command {
            Ok(command) => command,
            Err(name) => {
                self.outbox.reply(seq, UNSUPPORTED_COMMAND)?;
                return Err(Fatal::Protocol(format!("command '{name}' not recognized")));
            }
        };
        if !self.auth.is_empty()
            && !self.authenticated
            && !matches!(command, Command::Handshake | Command::Auth)
        {
            self.agent
                .logger()
                .warn("agent.ipc: Client sending commands before auth");
            self.outbox.reply(seq, AUTH_REQUIRED)?;
            return Ok(None);
        }
        self.handle(command, seq, &request.body)
    }

    fn handle(&mut self, command: Command, seq: u64, body: &[u8]) -> Result<Option<Job>, Fatal> {
        match command {
            Command::Handshake => {
                let req: rpc::HandshakeRequest = decode(body)?;
                let error = if req.version != IPC_VERSION {
                    UNSUPPORTED_VERSION
                } else if self.version != 0 {
                    DUPLICATE_HANDSHAKE
                } else {
                    self.version = req.version;
                    ""
                };
                self.outbox.reply(seq, error)?;
            }
            Command::Auth => {
                let req: rpc::AuthRequest = decode(body)?;
                let error = if req.auth_key.as_bytes() == self.auth.as_bytes() {
                    self.authenticated = true;
                    ""
                } else {
                    self.agent.logger().warn(format!(
                        "agent.ipc: Client {} sent an invalid authentication token",
                        self.peer
                    ));
                    INVALID_AUTH
                };
                self.outbox.reply(seq, error)?;
            }
            Command::Event => {
                let req: rpc::EventRequest = decode(body)?;
                let payload = req.payload.map(|p| p.0).unwrap_or_default();
                let result =
                    self.agent
                        .user_event(&req.name.to_string_lossy(), &payload, req.coalesce);
                self.outbox.reply(seq, &error_text(result))?;
            }
            Command::ForceLeave => {
                let req: rpc::ForceLeaveRequest = decode(body)?;
                let node = req.node.to_string_lossy();
                let result = match self.agent.force_leave(&node, req.prune) {
                    // HashiCorp's agent broadcasts the leave whether or not it knows the node.
                    Err(AgentError::Serf(serf::api::Error::Serf(SerfError::UnknownMember(_)))) => {
                        Ok(())
                    }
                    other => other,
                };
                self.outbox.reply(seq, &error_text(result))?;
            }
            Command::Join => {
                let req: rpc::JoinRequest = decode(body)?;
                let addrs: Vec<String> = req.existing.iter().map(|a| a.to_string_lossy()).collect();
                let (num, error) = match self.agent.join(&addrs, req.replay) {
                    Ok(n) => (n, String::new()),
                    Err(e) => (0, e.to_string()),
                };
                let body = rpc::JoinResponse { num: num as i32 };
                self.outbox.reply_with(seq, &error, &body)?;
            }
            Command::Members => {
                let (members, error) = match self.agent.members() {
                    Ok(m) => (m, String::new()),
                    Err(e) => (Vec::new(), e.to_string()),
                };
                self.reply_members(seq, &error, &members)?;
            }
            Command::MembersFiltered => {
                let req: rpc::MembersFilteredRequest = decode(body)?;
                let filter = MemberFilter::new(&req).map_err(Fatal::Protocol)?;
                let (members, error) = match self.agent.members() {
                    Ok(m) => (
                        m.into_iter().filter(|m| filter.matches(m)).collect(),
                        String::new(),
                    ),
                    Err(e) => (Vec::new(), e.to_string()),
                };
                self.reply_members(seq, &error, &members)?;
            }
            Command::Tags => {
                let req: rpc::TagsRequest = decode(body)?;
                let result = self.update_tags(req);
                self.outbox.reply(seq, &error_text(result))?;
            }
            Command::Stream => {
                let req: rpc::StreamRequest = decode(body)?;
                let error = self.start_stream(seq, &req.event_type.to_string_lossy())?;
                if let Some(error) = error {
                    self.outbox.reply(seq, error)?;
                }
            }
            Command::Monitor => {
                let req: rpc::MonitorRequest = decode(body)?;
                self.start_monitor(seq, &req.log_level.to_string_lossy())?;
            }
            Command::Stop => {
                let req: rpc::StopRequest = decode(body)?;
                if let Some(handler) = self.streams.remove(&req.stop) {
                    self.agent.deregister(handler);
                }
                if self.monitor.is_some_and(|(s, _)| s == req.stop) {
                    if let Some((_, id)) = self.monitor.take() {
                        self.agent.logger().unmonitor(id);
                    }
                }
                self.outbox.reply(seq, "")?;
            }
            Command::Leave => {
                self.agent
                    .logger()
                    .info("agent.ipc: Graceful leave triggered");
                let result = self.agent.leave();
                if let Err(e) = &result {
                    self.agent
                        .logger()
                        .error(format!("agent.ipc: leave failed: {e}"));
                }
                let sent = self.outbox.reply(seq, &error_text(result));
                let agent = self.agent.clone();
                std::thread::spawn(move || agent.shutdown());
                sent?;
            }
            Command::Query => {
                let req: rpc::QueryRequest = decode(body)?;
                return self.start_query(seq, req);
            }
            Command::Respond => {
                let req: rpc::RespondRequest = decode(body)?;
                let found = lock(&self.pending).by_id.get(&req.id).copied();
                let error = match found {
                    Some((ltime, id, _)) => {
                        let payload = req.payload.map(|p| p.0).unwrap_or_default();
                        let result = self.agent.serf().respond(ltime, id, &payload);
                        if result.is_ok() {
                            lock(&self.pending).by_id.remove(&req.id);
                        }
                        result.err().map_or_else(String::new, |e| e.to_string())
                    }
                    None => INVALID_QUERY_ID.to_string(),
                };
                self.outbox.reply(seq, &error)?;
            }
            Command::InstallKey | Command::UseKey | Command::RemoveKey | Command::ListKeys => {
                let (op, key) = match command {
                    Command::InstallKey => (KeyOp::Install, key(body)?),
                    Command::UseKey => (KeyOp::Use, key(body)?),
                    Command::RemoveKey => (KeyOp::Remove, key(body)?),
                    _ => (KeyOp::List, String::new()),
                };
                let (body, error) = match self.agent.key_operation(op, &key) {
                    Ok(agg) => (
                        key_response(&agg, op == KeyOp::List),
                        agg.error().unwrap_or_default(),
                    ),
                    Err(e) => (rpc::KeyResponse::default(), e.to_string()),
                };
                self.outbox.reply_with(seq, &error, &body)?;
            }
            Command::Stats => {
                let (stats, error) = match self.agent.stats() {
                    Ok(s) => (s, String::new()),
                    Err(e) => (BTreeMap::new(), e.to_string()),
                };
                let body: rpc::StatsResponse = stats
                    .into_iter()
                    .map(|(section, values)| {
                        let values = values
                            .into_iter()
                            .map(|(k, v)| (GoString::from(k), GoString::from(v)))
                            .collect();
                        (GoString::from(section), values)
                    })
                    .collect();
                self.outbox.reply_with(seq, &error, &body)?;
            }
            Command::GetCoordinate => {
                let req: rpc::CoordinateRequest = decode(body)?;
                let coord = self
                    .agent
                    .coordinate(&req.node.to_string_lossy())
                    .ok()
                    .flatten();
                let body = rpc::CoordinateResponse {
                    ok: coord.is_some(),
                    coord: coord.unwrap_or_default(),
                };
                self.outbox.reply_with(seq, "", &body)?;
            }
        }
        Ok(None)
    }

    fn reply_members(&self, seq: u64, error: &str, members: &[Member]) -> Result<(), Refused> {
        let body = rpc::MembersResponse {
            members: members.iter().map(rpc_member).collect(),
        };
        self.outbox.reply_with(seq, error, &body)
    }

    /// HashiCorp's `tags` command: current tags minus `DeleteTags`, then overlaid with `Tags`.
    fn update_tags(&self, req: rpc::TagsRequest) -> Result<(), AgentError> {
        let deleted: Vec<String> = req
            .delete_tags
            .unwrap_or_default()
            .iter()
            .map(|k| k.to_string_lossy())
            .collect();
        let mut tags = self.agent.serf().local_member()?.tags;
        tags.retain(|k, _| !deleted.contains(k));
        for (k, v) in req.tags.unwrap_or_default() {
            tags.insert(k.to_string_lossy(), v.to_string_lossy());
        }
        self.agent.set_tags(tags)
    }

    /// Registers an event stream; returns the error to reply with, if any (on success the
    /// header is queued before the handler can queue a record).
    fn start_stream(&mut self, seq: u64, filter: &str) -> Result<Option<&'static str>, Fatal> {
        let Ok(filter) = EventFilter::parse(filter) else {
            return Ok(Some(INVALID_FILTER));
        };
        if self.streams.contains_key(&seq) {
            return Ok(Some(STREAM_EXISTS));
        }
        self.outbox.reply(seq, "")?;
        let sink = Arc::new(StreamSink {
            seq,
            filter,
            outbox: self.outbox.clone(),
            pending: self.pending.clone(),
            peer: self.peer.clone(),
        });
        let handler = self.agent.register(sink);
        self.streams.insert(seq, handler);
        Ok(None)
    }

    fn start_monitor(&mut self, seq: u64, level: &str) -> Result<(), Fatal> {
        let level_name = level.to_ascii_uppercase();
        let Ok(level) = level_name.parse::<Level>() else {
            self.outbox
                .reply(seq, &format!("Unknown log level: {level_name}"))?;
            return Ok(());
        };
        if self.monitor.is_some() {
            self.outbox.reply(seq, MONITOR_EXISTS)?;
            return Ok(());
        }
        self.outbox.reply(seq, "")?;
        let outbox = self.outbox.clone();
        let id = self.agent.logger().monitor(
            level,
            Box::new(move |line| {
                let record = rpc::LogRecord {
                    log: GoString::from(line),
                };
                match outbox.offer_with(seq, &record) {
                    Ok(()) => Delivery::Taken,
                    Err(Refused::Full) => Delivery::Full,
                    Err(Refused::Closed) => Delivery::Gone,
                }
            }),
        );
        self.monitor = Some((seq, id));
        Ok(())
    }

    /// Starts a query; the job it returns streams the acks and responses, then `done` at the
    /// deadline.
    fn start_query(&mut self, seq: u64, req: rpc::QueryRequest) -> Result<Option<Job>, Fatal> {
        let params = QueryParams {
            filter_nodes: req
                .filter_nodes
                .unwrap_or_default()
                .iter()
                .map(|n| n.to_string_lossy())
                .collect(),
            filter_tags: req
                .filter_tags
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| (k.to_string_lossy(), v.to_string_lossy()))
                .collect(),
            request_ack: req.request_ack,
            relay_factor: req.relay_factor,
            // Zero asks for the default; a negative timeout (Go's CLI takes one) has expired.
            timeout: (req.timeout != 0).then(|| Duration::from_nanos(req.timeout.max(0) as u64)),
        };
        let payload = req.payload.map(|p| p.0);
        let mut response =
            match self
                .agent
                .query(&req.name.to_string_lossy(), payload.as_deref(), params)
            {
                Ok(r) => r,
                Err(e) => {
                    self.outbox.reply(seq, &e.to_string())?;
                    return Ok(None);
                }
            };
        self.outbox.reply(seq, "")?;
        let outbox = self.outbox.clone();
        Ok(Some(Box::new(move || {
            while !response.is_done() && !outbox.is_closed() {
                let Some(update) = response.next(Duration::from_millis(250)) else {
                    if Instant::now() > response.deadline() + Duration::from_secs(2) {
                        break;
                    }
                    continue;
                };
                let record = match update {
                    QueryUpdate::Ack { from } => query_record("ack", &from, None),
                    QueryUpdate::Response { from, payload } => {
                        query_record("response", &from, Some(payload))
                    }
                    QueryUpdate::Done => break,
                };
                if outbox.reply_with(seq, "", &record).is_err() {
                    return;
                }
            }
            // HashiCorp's agent reports `done` at the deadline, never earlier, and its CLI
            // relies on that: it selects at random among its ack, response and done channels,
            // so a `done` right behind the last response can overtake it there. The library
            // finishes as soon as everyone answered; the RPC stream waits out the deadline.
            while Instant::now() < response.deadline() && !outbox.is_closed() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = outbox.reply_with(seq, "", &query_record("done", "", None));
        })))
    }
}

fn error_text<T, E: std::fmt::Display>(result: Result<T, E>) -> String {
    result.err().map_or_else(String::new, |e| e.to_string())
}
