//! The agent's RPC server, speaking HashiCorp's IPC protocol exactly (handshake, auth, every
//! command, streams, monitors, queries and responds), so HashiCorp's CLI and client libraries
//! work against this agent. Each connection is served by its own thread, requests in order;
//! streamed records are written by helper threads under the connection's write lock, each
//! header and body in one write. Malformed input closes that connection only.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::filter::EventFilter;
use super::frame::{self, FrameError, ObjectReader};
use super::log::Level;
use super::service::{Agent, AgentError, DropSite, EventHandler};
use serf::api::wire::msgpack::{Bytes, Field, GoString};
use serf::api::wire::rpc::{self, Command, RequestBody, RequestHeader, IPC_VERSION};
use serf::api::{Event, KeyAggregate, KeyOp, Member, QueryParams, QueryUpdate, SerfError};

/// Connections served at once; more are closed on accept (a bound on threads and memory).
pub const MAX_CONNECTIONS: usize = 256;
/// A client that does not take what it asked for within this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Events a stream may lag behind before new ones are dropped for it (HashiCorp's 512).
const STREAM_BUFFER: usize = 512;

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

/// The listening server; dropping it does not stop it, [`RpcServer::shutdown`] does.
pub struct RpcServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, TcpStream>>>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl RpcServer {
    /// Serves clients on `listener` until shut down. `auth` is the `rpc_auth` token (empty:
    /// none required).
    pub fn start(listener: TcpListener, agent: Arc<Agent>, auth: String) -> io::Result<RpcServer> {
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(HashMap::new()));
        let acceptor = {
            let (stop, connections) = (stop.clone(), connections.clone());
            std::thread::Builder::new()
                .name("serf-rpc-accept".into())
                .spawn(move || accept_loop(listener, agent, auth, stop, connections))?
        };
        Ok(RpcServer {
            addr: local,
            stop,
            connections,
            acceptor: Mutex::new(Some(acceptor)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for conn in lock(&self.connections).values() {
            let _ = conn.shutdown(Shutdown::Both);
        }
        if let Some(t) = lock(&self.acceptor).take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(
    listener: TcpListener,
    agent: Arc<Agent>,
    auth: String,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, TcpStream>>>,
) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                agent
                    .logger()
                    .error(format!("agent.ipc: failed to accept client: {e}"));
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
        if lock(&connections).len() >= MAX_CONNECTIONS {
            agent.logger().warn(format!(
                "agent.ipc: refusing client {peer}: {MAX_CONNECTIONS} connections are open"
            ));
            continue;
        }
        next_id += 1;
        let id = next_id;
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        lock(&connections).insert(id, registered);
        agent
            .logger()
            .info(format!("agent.ipc: Accepted client: {peer}"));
        metrics::counter!("agent.ipc.accept").increment(1);
        let (agent, auth, registry) = (agent.clone(), auth.clone(), connections.clone());
        let spawned = std::thread::Builder::new()
            .name("serf-rpc-client".into())
            .spawn(move || {
                let served = Client::new(stream, agent.clone(), auth, peer.clone())
                    .map_err(Fatal::Write)
                    .and_then(Client::serve);
                if let Err(e) = served {
                    agent
                        .logger()
                        .error(format!("agent.ipc: closing client {peer}: {e}"));
                }
                lock(&registry).remove(&id);
            });
        if spawned.is_err() {
            if let Some(s) = lock(&connections).remove(&id) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Why a connection ends other than by the client closing it.
#[derive(Debug, thiserror::Error)]
enum Fatal {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("write failed: {0}")]
    Write(#[from] io::Error),
    #[error("{0}")]
    Protocol(String),
}

/// The write half of a connection, shared with the threads streaming records to it.
#[derive(Clone)]
struct Writer {
    stream: Arc<Mutex<TcpStream>>,
    closed: Arc<AtomicBool>,
}

impl Writer {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let result = frame::write_frame(&mut *lock(&self.stream), frame);
        if result.is_err() {
            self.close();
        }
        result
    }

    fn reply(&self, seq: u64, error: &str) -> io::Result<()> {
        self.send(&frame::response(seq, error))
    }

    fn reply_with<B: Field>(&self, seq: u64, error: &str, body: &B) -> io::Result<()> {
        self.send(&frame::with_body(frame::response(seq, error), body))
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = lock(&self.stream).shutdown(Shutdown::Both);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
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

/// One event stream of a connection: registered with the agent as a handler, feeding a
/// thread that writes the records.
struct StreamSink {
    filter: EventFilter,
    tx: Sender<Event>,
    peer: String,
}

impl EventHandler for StreamSink {
    fn handle(&self, agent: &Agent, event: &Event) {
        if !self.filter.matches(event) {
            return;
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(event.clone()) {
            agent.count_drops(DropSite::Stream, 1);
            agent
                .logger()
                .warn(format!("agent.ipc: Dropping event to {}", self.peer));
        }
    }
}

struct Client {
    agent: Arc<Agent>,
    auth: String,
    peer: String,
    reader: ObjectReader<TcpStream>,
    writer: Writer,
    version: i32,
    authenticated: bool,
    streams: HashMap<u64, u64>,
    monitor: Option<(u64, u64)>,
    pending: Arc<Mutex<PendingQueries>>,
    workers: Vec<JoinHandle<()>>,
}

impl Client {
    fn new(stream: TcpStream, agent: Arc<Agent>, auth: String, peer: String) -> io::Result<Client> {
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let write_half = stream.try_clone()?;
        Ok(Client {
            agent,
            auth,
            peer,
            reader: ObjectReader::new(stream),
            writer: Writer {
                stream: Arc::new(Mutex::new(write_half)),
                closed: Arc::new(AtomicBool::new(false)),
            },
            version: 0,
            authenticated: false,
            streams: HashMap::new(),
            monitor: None,
            pending: Arc::new(Mutex::new(PendingQueries::default())),
            workers: Vec::new(),
        })
    }

    fn serve(mut self) -> Result<(), Fatal> {
        let result = self.serve_requests();
        self.writer.close();
        for (_, handler) in self.streams.drain() {
            self.agent.deregister(handler);
        }
        if let Some((_, sub)) = self.monitor.take() {
            self.agent.logger().unsubscribe(sub);
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        match result {
            Err(Fatal::Frame(FrameError::Closed)) => Ok(()),
            Err(Fatal::Frame(FrameError::Io(_))) if self.writer.is_closed() => Ok(()),
            other => other,
        }
    }

    fn serve_requests(&mut self) -> Result<(), Fatal> {
        loop {
            let header: RequestHeader = self.reader.read()?;
            let seq = header.seq;
            let command = Command::from_name(header.command.as_bytes());
            if command != Some(Command::Handshake) && self.version == 0 {
                self.writer.reply(seq, HANDSHAKE_REQUIRED)?;
                return Err(Fatal::Protocol(HANDSHAKE_REQUIRED.into()));
            }
            metrics::counter!("agent.ipc.command").increment(1);
            let Some(command) = command else {
                self.writer.reply(seq, UNSUPPORTED_COMMAND)?;
                return Err(Fatal::Protocol(format!(
                    "command '{}' not recognized",
                    header.command.to_string_lossy()
                )));
            };
            if !self.auth.is_empty()
                && !self.authenticated
                && !matches!(command, Command::Handshake | Command::Auth)
            {
                self.agent
                    .logger()
                    .warn("agent.ipc: Client sending commands before auth");
                // Unlike HashiCorp's server, skip the body so the stream stays in step.
                if command.request_body() != RequestBody::None {
                    self.reader.skip()?;
                }
                self.writer.reply(seq, AUTH_REQUIRED)?;
                continue;
            }
            self.handle(command, seq)?;
            self.workers.retain(|w| !w.is_finished());
        }
    }

    fn handle(&mut self, command: Command, seq: u64) -> Result<(), Fatal> {
        match command {
            Command::Handshake => {
                let req: rpc::HandshakeRequest = self.reader.read()?;
                let error = if req.version != IPC_VERSION {
                    UNSUPPORTED_VERSION
                } else if self.version != 0 {
                    DUPLICATE_HANDSHAKE
                } else {
                    self.version = req.version;
                    ""
                };
                self.writer.reply(seq, error)?;
            }
            Command::Auth => {
                let req: rpc::AuthRequest = self.reader.read()?;
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
                self.writer.reply(seq, error)?;
            }
            Command::Event => {
                let req: rpc::EventRequest = self.reader.read()?;
                let payload = req.payload.map(|p| p.0).unwrap_or_default();
                let result =
                    self.agent
                        .user_event(&req.name.to_string_lossy(), &payload, req.coalesce);
                self.writer.reply(seq, &error_text(result))?;
            }
            Command::ForceLeave => {
                let req: rpc::ForceLeaveRequest = self.reader.read()?;
                let node = req.node.to_string_lossy();
                let result = match self.agent.force_leave(&node, req.prune) {
                    // HashiCorp's agent broadcasts the leave whether or not it knows the node.
                    Err(AgentError::Serf(serf::api::Error::Serf(SerfError::UnknownMember(_)))) => {
                        Ok(())
                    }
                    other => other,
                };
                self.writer.reply(seq, &error_text(result))?;
            }
            Command::Join => {
                let req: rpc::JoinRequest = self.reader.read()?;
                let addrs: Vec<String> = req.existing.iter().map(|a| a.to_string_lossy()).collect();
                let (num, error) = match self.agent.join(&addrs, req.replay) {
                    Ok(n) => (n, String::new()),
                    Err(e) => (0, e.to_string()),
                };
                let body = rpc::JoinResponse { num: num as i32 };
                self.writer.reply_with(seq, &error, &body)?;
            }
            Command::Members => {
                let (members, error) = match self.agent.members() {
                    Ok(m) => (m, String::new()),
                    Err(e) => (Vec::new(), e.to_string()),
                };
                self.reply_members(seq, &error, &members)?;
            }
            Command::MembersFiltered => {
                let req: rpc::MembersFilteredRequest = self.reader.read()?;
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
                let req: rpc::TagsRequest = self.reader.read()?;
                let result = self.update_tags(req);
                self.writer.reply(seq, &error_text(result))?;
            }
            Command::Stream => {
                let req: rpc::StreamRequest = self.reader.read()?;
                let error = self.start_stream(seq, &req.event_type.to_string_lossy());
                if let Some(error) = error {
                    self.writer.reply(seq, error)?;
                }
            }
            Command::Monitor => {
                let req: rpc::MonitorRequest = self.reader.read()?;
                self.start_monitor(seq, &req.log_level.to_string_lossy())?;
            }
            Command::Stop => {
                let req: rpc::StopRequest = self.reader.read()?;
                if let Some(handler) = self.streams.remove(&req.stop) {
                    self.agent.deregister(handler);
                }
                if self.monitor.is_some_and(|(s, _)| s == req.stop) {
                    if let Some((_, sub)) = self.monitor.take() {
                        self.agent.logger().unsubscribe(sub);
                    }
                }
                self.writer.reply(seq, "")?;
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
                let sent = self.writer.reply(seq, &error_text(result));
                let agent = self.agent.clone();
                std::thread::spawn(move || agent.shutdown());
                sent?;
            }
            Command::Query => {
                let req: rpc::QueryRequest = self.reader.read()?;
                self.start_query(seq, req)?;
            }
            Command::Respond => {
                let req: rpc::RespondRequest = self.reader.read()?;
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
                self.writer.reply(seq, &error)?;
            }
            Command::InstallKey | Command::UseKey | Command::RemoveKey | Command::ListKeys => {
                let (op, key) = match command {
                    Command::InstallKey => (KeyOp::Install, self.read_key()?),
                    Command::UseKey => (KeyOp::Use, self.read_key()?),
                    Command::RemoveKey => (KeyOp::Remove, self.read_key()?),
                    _ => (KeyOp::List, String::new()),
                };
                let (body, error) = match self.agent.key_operation(op, &key) {
                    Ok(agg) => (
                        key_response(&agg, op == KeyOp::List),
                        agg.error().unwrap_or_default(),
                    ),
                    Err(e) => (rpc::KeyResponse::default(), e.to_string()),
                };
                self.writer.reply_with(seq, &error, &body)?;
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
                self.writer.reply_with(seq, &error, &body)?;
            }
            Command::GetCoordinate => {
                let req: rpc::CoordinateRequest = self.reader.read()?;
                let coord = self
                    .agent
                    .coordinate(&req.node.to_string_lossy())
                    .ok()
                    .flatten();
                let body = rpc::CoordinateResponse {
                    ok: coord.is_some(),
                    coord: coord.unwrap_or_default(),
                };
                self.writer.reply_with(seq, "", &body)?;
            }
        }
        Ok(())
    }

    fn read_key(&mut self) -> Result<String, Fatal> {
        let req: rpc::KeyRequest = self.reader.read()?;
        Ok(req.key.to_string_lossy())
    }

    fn reply_members(&self, seq: u64, error: &str, members: &[Member]) -> io::Result<()> {
        let body = rpc::MembersResponse {
            members: members.iter().map(rpc_member).collect(),
        };
        self.writer.reply_with(seq, error, &body)
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
    /// header is written by the stream's thread before any record).
    fn start_stream(&mut self, seq: u64, filter: &str) -> Option<&'static str> {
        let Ok(filter) = EventFilter::parse(filter) else {
            return Some(INVALID_FILTER);
        };
        if self.streams.contains_key(&seq) {
            return Some(STREAM_EXISTS);
        }
        let (tx, rx) = crossbeam_channel::bounded(STREAM_BUFFER);
        // The header goes out before the handler can produce a record.
        if self.writer.reply(seq, "").is_err() {
            return None;
        }
        let sink = Arc::new(StreamSink {
            filter,
            tx,
            peer: self.peer.clone(),
        });
        let handler = self.agent.register(sink);
        self.streams.insert(seq, handler);
        let (writer, pending) = (self.writer.clone(), self.pending.clone());
        self.spawn_worker(move || stream_records(seq, rx, writer, pending));
        None
    }

    fn start_monitor(&mut self, seq: u64, level: &str) -> Result<(), Fatal> {
        let level_name = level.to_ascii_uppercase();
        let Ok(level) = level_name.parse::<Level>() else {
            self.writer
                .reply(seq, &format!("Unknown log level: {level_name}"))?;
            return Ok(());
        };
        if self.monitor.is_some() {
            self.writer.reply(seq, MONITOR_EXISTS)?;
            return Ok(());
        }
        self.writer.reply(seq, "")?;
        let sub = self.agent.logger().subscribe(level);
        self.monitor = Some((seq, sub.id));
        let writer = self.writer.clone();
        let lines = sub.lines;
        self.spawn_worker(move || {
            for line in lines.iter() {
                let record = rpc::LogRecord {
                    log: GoString::from(line),
                };
                if writer.reply_with(seq, "", &record).is_err() {
                    return;
                }
            }
        });
        Ok(())
    }

    fn start_query(&mut self, seq: u64, req: rpc::QueryRequest) -> Result<(), Fatal> {
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
        let response =
            match self
                .agent
                .query(&req.name.to_string_lossy(), payload.as_deref(), params)
            {
                Ok(r) => r,
                Err(e) => {
                    self.writer.reply(seq, &e.to_string())?;
                    return Ok(());
                }
            };
        self.writer.reply(seq, "")?;
        let writer = self.writer.clone();
        self.spawn_worker(move || {
            let mut response = response;
            while !response.is_done() && !writer.is_closed() {
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
                if writer.reply_with(seq, "", &record).is_err() {
                    return;
                }
            }
            // HashiCorp's agent reports `done` at the deadline, never earlier, and its CLI
            // relies on that: it selects at random among its ack, response and done channels,
            // so a `done` right behind the last response can overtake it there. The library
            // finishes as soon as everyone answered; the RPC stream waits out the deadline.
            while Instant::now() < response.deadline() && !writer.is_closed() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = writer.reply_with(seq, "", &query_record("done", "", None));
        });
        Ok(())
    }

    fn spawn_worker(&mut self, work: impl FnOnce() + Send + 'static) {
        if let Ok(handle) = std::thread::Builder::new()
            .name("serf-rpc-stream".into())
            .spawn(work)
        {
            self.workers.push(handle);
        }
    }
}

/// Writes a stream's events until it is stopped (its handler, and so its sender, is dropped)
/// or the connection closes.
fn stream_records(
    seq: u64,
    events: Receiver<Event>,
    writer: Writer,
    pending: Arc<Mutex<PendingQueries>>,
) {
    for event in events.iter() {
        let frame = match &event {
            Event::Member { kind, members } => frame::with_body(
                frame::response(seq, ""),
                &rpc::MemberEventRecord {
                    event: GoString::from(kind.as_str()),
                    members: members.iter().map(rpc_member).collect(),
                },
            ),
            Event::User(u) => frame::with_body(
                frame::response(seq, ""),
                &rpc::UserEventRecord {
                    coalesce: u.coalesce,
                    event: GoString::from("user"),
                    ltime: u.ltime,
                    name: GoString::from(u.name.as_str()),
                    payload: go_payload(&u.payload),
                },
            ),
            Event::Query(q) => {
                let id = lock(&pending).register(q.ltime, q.id, q.deadline);
                frame::with_body(
                    frame::response(seq, ""),
                    &rpc::QueryEventRecord {
                        event: GoString::from("query"),
                        id,
                        ltime: q.ltime,
                        name: GoString::from(q.name.as_str()),
                        payload: go_payload(&q.payload),
                    },
                )
            }
            Event::Shutdown { .. } => continue,
        };
        if writer.send(&frame).is_err() {
            return;
        }
    }
}

/// An event payload as Go's agent streams it: nil when empty.
fn go_payload(payload: &[u8]) -> Option<Bytes> {
    (!payload.is_empty()).then(|| Bytes(payload.to_vec()))
}

fn query_record(kind: &str, from: &str, payload: Option<Vec<u8>>) -> rpc::QueryRecord {
    rpc::QueryRecord {
        from: GoString::from(from),
        payload: payload.map(Bytes),
        record_type: GoString::from(kind),
    }
}

fn error_text<T, E: std::fmt::Display>(result: Result<T, E>) -> String {
    result.err().map_or_else(String::new, |e| e.to_string())
}

/// A member as the RPC protocol carries it (IPv4 addresses as 4 bytes, as Go sends them).
fn rpc_member(m: &Member) -> rpc::Member {
    let addr = match m.addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    rpc::Member {
        addr: Bytes(addr),
        delegate_cur: m.delegate[2],
        delegate_max: m.delegate[1],
        delegate_min: m.delegate[0],
        name: GoString::from(m.name.as_str()),
        port: m.port,
        protocol_cur: m.protocol[2],
        protocol_max: m.protocol[1],
        protocol_min: m.protocol[0],
        status: GoString::from(m.status.as_str()),
        tags: Some(
            m.tags
                .iter()
                .map(|(k, v)| (GoString::from(k.as_str()), GoString::from(v.as_str())))
                .collect(),
        ),
    }
}

fn key_response(agg: &KeyAggregate, with_keys: bool) -> rpc::KeyResponse {
    rpc::KeyResponse {
        keys: with_keys.then(|| {
            agg.keys
                .iter()
                .map(|(k, n)| (GoString::from(k.as_str()), *n as i64))
                .collect()
        }),
        messages: Some(
            agg.messages
                .iter()
                .map(|(k, v)| (GoString::from(k.as_str()), GoString::from(v.as_str())))
                .collect(),
        ),
        num_err: agg.num_err as i64,
        num_nodes: agg.num_nodes as i64,
        num_resp: agg.num_resp as i64,
    }
}

/// `members-filtered`: every pattern anchored as HashiCorp does (`^` + pattern + `$`, plain
/// concatenation); a missing tag matches as the empty string.
struct MemberFilter {
    tags: Vec<(String, regex::Regex)>,
    status: Option<regex::Regex>,
    name: Option<regex::Regex>,
}

impl MemberFilter {
    fn new(req: &rpc::MembersFilteredRequest) -> Result<MemberFilter, String> {
        let compile = |p: &str| {
            regex::Regex::new(&format!("^{p}$"))
                .map_err(|e| format!("Failed to compile regex: {e}"))
        };
        let optional = |p: &GoString| -> Result<Option<regex::Regex>, String> {
            let p = p.to_string_lossy();
            if p.is_empty() {
                Ok(None)
            } else {
                compile(&p).map(Some)
            }
        };
        let mut tags = Vec::new();
        for (k, v) in req.tags.iter().flatten() {
            tags.push((k.to_string_lossy(), compile(&v.to_string_lossy())?));
        }
        Ok(MemberFilter {
            tags,
            status: optional(&req.status)?,
            name: optional(&req.name)?,
        })
    }

    fn matches(&self, m: &Member) -> bool {
        self.tags
            .iter()
            .all(|(k, re)| re.is_match(m.tags.get(k).map_or("", String::as_str)))
            && self
                .status
                .as_ref()
                .is_none_or(|re| re.is_match(m.status.as_str()))
            && self.name.as_ref().is_none_or(|re| re.is_match(&m.name))
    }
}
