//! The agent's RPC server, speaking HashiCorp's IPC protocol exactly (handshake, auth, every
//! command, streams, monitors, queries and responds), so HashiCorp's CLI and client libraries
//! work against this agent.
//!
//! One poll thread owns every socket: it accepts, reads requests, and writes what each
//! connection's [`Outbox`] holds. A complete request goes with its connection's [`Session`] to
//! a worker (`workers`), one request per connection at a time so replies keep their order; the
//! session comes back when the request is done. An idle client, a stream or a monitor costs no
//! thread. Malformed input closes that connection only.

pub(crate) mod outbox;
pub(crate) mod poll;
pub(crate) mod records;
mod session;
pub(crate) mod workers;

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use serf::api::wire::msgpack::Field;
use serf::api::wire::rpc::{Command, RequestHeader};

use crate::frame::{FrameError, ObjectReader, MAX_OBJECT};
use crate::service::Agent;
use outbox::{Notifier, Outbox, Written, OUTBOX_LIMIT};
use poll::{PollThread, Sockets, FIRST_CLIENT};
use session::{Fatal, Request, Session};
use workers::Workers;

/// Connections served at once; more are closed on accept (a bound on sockets and memory).
pub const MAX_CONNECTIONS: usize = 256;
/// A client that takes none of its pending output for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listening server; dropping it does not stop it, [`RpcServer::shutdown`] does.
pub struct RpcServer(PollThread);

impl RpcServer {
    /// Serves clients on `listener` until shut down. `auth` is the `rpc_auth` token (empty:
    /// none required).
    pub fn start(listener: TcpListener, agent: Arc<Agent>, auth: String) -> io::Result<RpcServer> {
        let thread = PollThread::start("serf-rpc", listener, |parts| Poller {
            registry: parts.registry,
            listener: parts.listener,
            agent,
            auth,
            connections: HashMap::new(),
            next_token: FIRST_CLIENT,
            notifier: parts.notifier,
            done_tx: parts.done,
            workers: parts.workers,
        })?;
        Ok(RpcServer(thread))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Stops accepting, closes every connection and waits for the requests in flight.
    pub fn shutdown(&self) {
        self.0.shutdown();
    }
}

/// A request finished by a worker: the session returns to its connection.
struct Done {
    token: Token,
    session: Session,
    result: Result<(), Fatal>,
}

/// One client, as the poll thread keeps it.
struct Connection {
    reader: ObjectReader<TcpStream>,
    peer: String,
    outbox: Arc<Outbox>,
    /// The session, unless a worker has it.
    session: Option<Session>,
    /// The connection has ended; it goes once its session is back.
    ended: bool,
    /// Close once the outbox is written (after a protocol error's reply).
    closing: bool,
    /// Since when output has waited without the socket taking any more of it.
    stalled_since: Option<Instant>,
}

struct Poller {
    registry: Registry,
    listener: mio::net::TcpListener,
    agent: Arc<Agent>,
    auth: String,
    connections: HashMap<Token, Connection>,
    next_token: usize,
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
        self.pump(token);
    }

    fn finished(&mut self, done: Done) {
        self.returned(done);
    }

    fn tick(&mut self) {
        self.drop_stalled();
    }

    fn poll_failed(&self, error: &io::Error) {
        self.agent
            .logger()
            .error(format!("agent.ipc: poll failed: {error}"));
    }

    fn close_all(&mut self) {
        for conn in self.connections.values() {
            conn.outbox.close();
        }
    }
}

impl Poller {
    fn accept_all(&mut self) {
        loop {
            let (stream, addr) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.agent
                        .logger()
                        .error(format!("agent.ipc: failed to accept client: {e}"));
                    return;
                }
            };
            let peer = addr.to_string();
            if self.connections.len() >= MAX_CONNECTIONS {
                self.agent.logger().warn(format!(
                    "agent.ipc: refusing client {peer}: {MAX_CONNECTIONS} connections are open"
                ));
                continue;
            }
            let token = Token(self.next_token);
            self.next_token += 1;
            let mut reader = ObjectReader::new(stream);
            let _ = reader.get_ref().set_nodelay(true);
            let registered = self.registry.register(
                reader.get_mut(),
                token,
                Interest::READABLE | Interest::WRITABLE,
            );
            if registered.is_err() {
                continue;
            }
            self.agent
                .logger()
                .info(format!("agent.ipc: Accepted client: {peer}"));
            metrics::counter!("agent.ipc.accept").increment(1);
            let outbox = Arc::new(Outbox::new(token, self.notifier.clone()));
            let session = Session::new(
                self.agent.clone(),
                self.auth.clone(),
                peer.clone(),
                outbox.clone(),
            );
            self.connections.insert(
                token,
                Connection {
                    reader,
                    peer,
                    outbox,
                    session: Some(session),
                    ended: false,
                    closing: false,
                    stalled_since: None,
                },
            );
            self.pump(token);
        }
    }

    /// Reads what the client sent and hands the next complete request to a worker, unless
    /// one is already with a worker or the client is not reading its replies.
    fn pump(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        loop {
            if conn.ended || conn.closing {
                return;
            }
            let idle = conn.session.is_some() && conn.outbox.unwritten() < OUTBOX_LIMIT;
            if idle {
                match next_request(conn) {
                    Ok(Some(request)) => {
                        let session = conn.session.take().expect("idle");
                        self.dispatch(token, session, request);
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => return self.end(token, Some(e.into())),
                }
            } else if conn.reader.pending() >= MAX_OBJECT {
                // Busy, and a whole object's worth is buffered: read more only later.
                return;
            }
            match conn.reader.fill() {
                Ok(()) => {}
                Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.end(token, Some(e.into())),
            }
        }
    }

    fn dispatch(&mut self, token: Token, mut session: Session, request: Request) {
        let done_tx = self.done_tx.clone();
        let notifier = self.notifier.clone();
        self.workers.submit(Box::new(move || {
            let (result, rest) = match session.serve(request) {
                Ok(rest) => (Ok(()), rest),
                Err(e) => (Err(e), None),
            };
            if done_tx
                .send(Done {
                    token,
                    session,
                    result,
                })
                .is_ok()
            {
                notifier.wake();
            }
            if let Some(rest) = rest {
                rest();
            }
        }));
    }

    fn returned(&mut self, done: Done) {
        let Some(conn) = self.connections.get_mut(&done.token) else {
            return;
        };
        conn.session = Some(done.session);
        if conn.ended {
            self.remove(done.token);
            return;
        }
        match done.result {
            Ok(()) => self.pump(done.token),
            Err(e) => {
                // The reply that explains the error goes out before the connection closes.
                self.log_end(done.token, &e);
                conn_mut(&mut self.connections, done.token).closing = true;
                self.write(done.token);
            }
        }
    }

    /// Writes what the outbox holds; resumes reading requests once it has drained.
    fn write(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        if conn.ended {
            return;
        }
        match conn.outbox.write_to(conn.reader.get_ref()) {
            Ok(Written::All) => {
                conn.stalled_since = None;
                if conn.closing {
                    self.end(token, None);
                } else {
                    self.pump(token);
                }
            }
            Ok(Written::Some) => conn.stalled_since = Some(Instant::now()),
            Ok(Written::None) => {
                conn.stalled_since.get_or_insert_with(Instant::now);
            }
            Err(e) => self.end(token, Some(Fatal::Frame(FrameError::Io(e)))),
        }
    }

    fn drop_stalled(&mut self) {
        let now = Instant::now();
        let stalled: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, c)| !c.ended && c.stalled_since.is_some_and(|t| now - t > WRITE_TIMEOUT))
            .map(|(t, _)| *t)
            .collect();
        for token in stalled {
            let error = io::Error::new(io::ErrorKind::TimedOut, "the client reads nothing");
            self.end(token, Some(Fatal::Frame(FrameError::Io(error))));
        }
    }

    /// Ends a connection: logs why (if it is worth a line), closes its socket and outbox, and
    /// forgets it once its session is back from a worker.
    fn end(&mut self, token: Token, why: Option<Fatal>) {
        if let Some(e) = &why {
            self.log_end(token, e);
        }
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        conn.ended = true;
        conn.outbox.close();
        let _ = self.registry.deregister(conn.reader.get_mut());
        let _ = conn.reader.get_ref().shutdown(std::net::Shutdown::Both);
        if conn.session.is_some() {
            self.remove(token);
        }
    }

    fn log_end(&self, token: Token, why: &Fatal) {
        let Some(conn) = self.connections.get(&token) else {
            return;
        };
        let quiet = match why {
            Fatal::Closed | Fatal::Frame(FrameError::Closed) => true,
            Fatal::Frame(FrameError::Io(_)) => conn.outbox.is_closed(),
            _ => false,
        };
        if !quiet && !conn.ended {
            self.agent
                .logger()
                .error(format!("agent.ipc: closing client {}: {why}", conn.peer));
        }
    }

    fn remove(&mut self, token: Token) {
        // Dropping the session stops the connection's streams and monitor.
        self.connections.remove(&token);
    }
}

fn conn_mut(connections: &mut HashMap<Token, Connection>, token: Token) -> &mut Connection {
    connections.get_mut(&token).expect("a known connection")
}

/// The next whole request buffered for `conn`: its header and, if the session reads one, its
/// body. `None` until all of it has arrived.
fn next_request(conn: &mut Connection) -> Result<Option<Request>, FrameError> {
    let session = conn.session.as_ref().expect("idle");
    let parsed = conn.reader.buffered(|dec| {
        let header = RequestHeader::decode(dec)?;
        let command = Command::from_name(header.command.as_bytes());
        let body_start = dec.position();
        if command.is_some_and(|c| session.reads_body(c)) {
            dec.skip()?;
        }
        Ok((header, command, body_start))
    })?;
    Ok(
        parsed.map(|((header, command, body_start), bytes)| Request {
            seq: header.seq,
            command: command.ok_or_else(|| header.command.to_string_lossy()),
            body: bytes[body_start..].to_vec(),
        }),
    )
}
