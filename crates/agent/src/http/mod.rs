//! The agent's HTTP view, off unless `http_addr` is set: what an operator scrapes or looks at,
//! beside the RPC that HashiCorp's tools speak. Nothing on the wire or in the RPC changes.
//!
//! - `GET /metrics`: every metric the agent keeps, in Prometheus' text format.
//! - `GET /v1/members`: the records of `serf members -format=json`, with its filters as query
//!   parameters (`status`, `name`, `tag=key=value`, each a pattern anchored at both ends).
//! - `GET /v1/coordinates`: every member's Vivaldi coordinate, as this agent holds it.
//! - `GET /v1/events`: server-sent events, one per member or user event as it happens.
//! - `GET /`: a page that shows the cluster live (see `page.html`).
//!
//! It is served like the RPC: one poll thread owns the sockets, reads each request head
//! (parsed by `httparse`) and writes each connection's outbox; a worker answers the request
//! (an answer may wait on the agent). Every bound is explicit: [`MAX_CONNECTIONS`], a head
//! within [`MAX_HEAD`] that arrives within [`REQUEST_TIME`], [`MAX_EVENT_STREAMS`], and a
//! client that takes nothing for [`WRITE_TIMEOUT`] is dropped. An event stream is an event
//! handler writing into its connection's outbox: no thread of its own. With `rpc_auth` set,
//! every path needs the same token, as `Authorization: Bearer <token>` or `?token=<token>`.

mod events;
mod request;
mod routes;
mod views;

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::server::outbox::{Notifier, Outbox, Written};
use crate::server::poll::{PollThread, Sockets, FIRST_CLIENT};
use crate::server::workers::Workers;
use crate::service::Agent;
use crate::telemetry::Telemetry;
use request::Parsed;
use routes::Reply;

/// Connections open at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Event streams open at once; more are answered 503.
pub const MAX_EVENT_STREAMS: usize = 16;
/// The longest request head (request line and headers); a longer one is answered 413.
pub const MAX_HEAD: usize = 16 << 10;
/// The longest request line (path and query) taken; a longer one is answered 413.
pub const MAX_URL: usize = 8 << 10;
/// The largest request body announced (no path takes one); a larger one is answered 413.
pub const MAX_BODY: usize = 64 << 10;
/// How long a request head may take to arrive; a slower one is answered 408.
pub const REQUEST_TIME: Duration = Duration::from_secs(10);
/// A client that takes none of its pending answer or stream for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle event stream gets a comment line.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(5);

/// The running HTTP view; [`HttpServer::shutdown`] stops it.
pub struct HttpServer(PollThread);

/// What the workers answering requests need.
struct Context {
    agent: Arc<Agent>,
    auth: String,
    telemetry: Telemetry,
    /// Event streams open or being opened.
    streams: AtomicUsize,
}

impl Context {
    /// Starts an event stream into `outbox`: its head, then every event. `None` (with a 503
    /// queued) when [`MAX_EVENT_STREAMS`] are open.
    fn open_stream(&self, outbox: &Arc<Outbox>) -> Option<u64> {
        if self.streams.fetch_add(1, Ordering::SeqCst) >= MAX_EVENT_STREAMS {
            self.streams.fetch_sub(1, Ordering::SeqCst);
            let _ = outbox.send(&routes::refusal(503, "too many event streams"));
            return None;
        }
        let _ = outbox.send(&events::head());
        Some(
            self.agent
                .register(Arc::new(events::Sink::new(outbox.clone()))),
        )
    }

    fn close_stream(&self, handler: u64) {
        self.agent.deregister(handler);
        self.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HttpServer {
    /// Serves on `listener` until shut down. `auth` is the `rpc_auth` token (empty: none).
    pub fn start(
        listener: TcpListener,
        agent: Arc<Agent>,
        auth: String,
        telemetry: Telemetry,
    ) -> io::Result<HttpServer> {
        let thread = PollThread::start("serf-http", listener, |parts| Poller {
            registry: parts.registry,
            listener: parts.listener,
            context: Arc::new(Context {
                agent,
                auth,
                telemetry,
                streams: AtomicUsize::new(0),
            }),
            connections: HashMap::new(),
            next_token: FIRST_CLIENT,
            last_keepalive: Instant::now(),
            notifier: parts.notifier,
            done_tx: parts.done,
            workers: parts.workers,
        })?;
        Ok(HttpServer(thread))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Stops accepting, closes every connection and waits for the answers in flight.
    pub fn shutdown(&self) {
        self.0.shutdown();
    }
}

/// Where a connection is in its one exchange.
enum Phase {
    /// Its request head is arriving (since the connection opened).
    Reading { since: Instant },
    /// A worker is answering.
    Answering,
    /// Its answer is queued; it closes once written.
    Closing,
    /// An event stream, fed by the agent's handler `handler`.
    Streaming { handler: u64 },
}

/// A worker's outcome: the answer is queued, or the stream is registered.
struct Done {
    token: Token,
    stream: Option<u64>,
}

struct Connection {
    socket: TcpStream,
    head: Vec<u8>,
    outbox: Arc<Outbox>,
    phase: Phase,
    /// Since when output has waited without the socket taking any more of it.
    stalled_since: Option<Instant>,
}

struct Poller {
    registry: Registry,
    listener: mio::net::TcpListener,
    context: Arc<Context>,
    connections: HashMap<Token, Connection>,
    next_token: usize,
    last_keepalive: Instant,
    notifier: Notifier,
    done_tx: Sender<Done>,
    workers: Arc<Workers>,
}

impl Sockets for Poller {
    type Done = Done;

    fn accept(&mut self) {
        self.accept_all();
    }

    fn flush(&mut self, token: Token) {
        self.write(token);
    }

    fn read(&mut self, token: Token) {
        self.read_head(token);
    }

    fn finished(&mut self, done: Done) {
        self.answered(done);
    }

    fn tick(&mut self) {
        if self.last_keepalive.elapsed() >= KEEPALIVE_EVERY {
            self.last_keepalive = Instant::now();
            self.keep_streams_alive();
        }
        self.drop_late();
    }

    fn poll_failed(&self, _: &io::Error) {}

    fn close_all(&mut self) {
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for token in tokens {
            self.end(token);
        }
    }
}

impl Poller {
    fn accept_all(&mut self) {
        loop {
            let (socket, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            };
            if self.connections.len() >= MAX_CONNECTIONS {
                // Best effort: a full socket buffer is not waited for.
                let busy = routes::refusal(503, "too many connections");
                let _ = io::Write::write(&mut &socket, &busy);
                continue;
            }
            let token = Token(self.next_token);
            self.next_token += 1;
            let mut socket = socket;
            let registered =
                self.registry
                    .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE);
            if registered.is_err() {
                continue;
            }
            let outbox = Arc::new(Outbox::new(token, self.notifier.clone()));
            self.connections.insert(
                token,
                Connection {
                    socket,
                    head: Vec::new(),
                    outbox,
                    phase: Phase::Reading {
                        since: Instant::now(),
                    },
                    stalled_since: None,
                },
            );
            self.read_head(token);
        }
    }

    /// Reads what the client sent: the request head while it arrives, nothing after it but
    /// the end of the connection.
    fn read_head(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let mut chunk = [0u8; 4096];
        let closed = loop {
            match conn.socket.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) if matches!(conn.phase, Phase::Reading { .. }) => {
                    conn.head.extend_from_slice(&chunk[..n]);
                    if conn.head.len() > MAX_HEAD {
                        break false;
                    }
                }
                Ok(_) => {} // after the head: ignored
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if !matches!(conn.phase, Phase::Reading { .. }) {
            // A client may half-close once its request is sent; an event stream's client
            // closing is the stream's end.
            if closed && matches!(conn.phase, Phase::Streaming { .. }) {
                self.end(token);
            }
            return;
        }
        match request::parse(&conn.head) {
            Parsed::Partial if closed => self.end(token),
            Parsed::Partial => {}
            Parsed::Refused(status) => self.refuse(token, status, "bad request"),
            Parsed::Complete(request) => {
                conn.phase = Phase::Answering;
                self.dispatch(token, request);
            }
        }
    }

    /// Hands the request to a worker: an answer may wait on the agent.
    fn dispatch(&mut self, token: Token, request: request::Request) {
        let outbox = self.connections[&token].outbox.clone();
        let (context, done_tx, notifier) = (
            self.context.clone(),
            self.done_tx.clone(),
            self.notifier.clone(),
        );
        self.workers.submit(Box::new(move || {
            let stream = match routes::reply(&request, &context) {
                Reply::Whole(bytes) => {
                    let _ = outbox.send(&bytes);
                    None
                }
                Reply::Events => context.open_stream(&outbox),
            };
            if done_tx.send(Done { token, stream }).is_ok() {
                notifier.wake();
            } else if let Some(handler) = stream {
                context.close_stream(handler);
            }
        }));
    }

    fn answered(&mut self, done: Done) {
        let Some(conn) = self.connections.get_mut(&done.token) else {
            // The client went while the stream was being opened.
            if let Some(handler) = done.stream {
                self.context.close_stream(handler);
            }
            return;
        };
        conn.phase = match done.stream {
            Some(handler) => Phase::Streaming { handler },
            None => Phase::Closing,
        };
        self.write(done.token);
    }

    fn refuse(&mut self, token: Token, status: u16, message: &str) {
        if let Some(conn) = self.connections.get_mut(&token) {
            let _ = conn.outbox.send(&routes::refusal(status, message));
            conn.phase = Phase::Closing;
        }
        self.write(token);
    }

    /// Writes what the outbox holds; a closing connection ends once it is written.
    fn write(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        match conn.outbox.write_to(&conn.socket) {
            Ok(Written::All) => {
                conn.stalled_since = None;
                if matches!(conn.phase, Phase::Closing) {
                    self.end(token);
                }
            }
            Ok(Written::Some) => conn.stalled_since = Some(Instant::now()),
            Ok(Written::None) => {
                conn.stalled_since.get_or_insert_with(Instant::now);
            }
            Err(_) => self.end(token),
        }
    }

    fn keep_streams_alive(&self) {
        for conn in self.connections.values() {
            if matches!(conn.phase, Phase::Streaming { .. }) {
                let _ = conn.outbox.offer(events::KEEPALIVE);
            }
        }
    }

    /// Answers 408 to heads that take too long, and drops clients that take nothing.
    fn drop_late(&mut self) {
        let now = Instant::now();
        let mut slow = Vec::new();
        let mut stuck = Vec::new();
        for (token, conn) in &self.connections {
            if let Phase::Reading { since } = conn.phase {
                if now - since > REQUEST_TIME {
                    slow.push(*token);
                }
            }
            if conn.stalled_since.is_some_and(|t| now - t > WRITE_TIMEOUT) {
                stuck.push(*token);
            }
        }
        for token in slow {
            self.refuse(token, 408, "the request took too long to arrive");
        }
        for token in stuck {
            self.end(token);
        }
    }

    /// Closes a connection; a stream's handler goes with it.
    fn end(&mut self, token: Token) {
        let Some(mut conn) = self.connections.remove(&token) else {
            return;
        };
        conn.outbox.close();
        let _ = self.registry.deregister(&mut conn.socket);
        if let Phase::Streaming { handler } = conn.phase {
            self.context.close_stream(handler);
        }
    }
}
