//! TCP connections as small state machines driven by readiness events: an accepted connection
//! reads one request and writes at most one reply; an opened one connects, writes its payload
//! and, if asked, reads one reply. Each `drive` call does all the I/O the socket allows now and
//! says whether the connection lives on.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use serf_proto::memberlist::machine::{Machine, StreamStatus};
use serf_proto::memberlist::OutboundStream;

/// What became of a connection after it was driven.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Waiting for the socket to become ready again.
    Open,
    /// Finished normally: close it.
    Done,
    /// Broke: close it and report why.
    Failed(String),
}

pub(crate) enum Conn {
    Inbound(Inbound),
    Outbound(Outbound),
}

impl Conn {
    pub fn deadline(&self) -> Instant {
        match self {
            Conn::Inbound(c) => c.deadline,
            Conn::Outbound(c) => c.deadline,
        }
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        match self {
            Conn::Inbound(c) => &mut c.stream,
            Conn::Outbound(c) => &mut c.stream,
        }
    }
}

/// Buffers and limits shared by every connection's reads.
pub(crate) struct ReadCtx<'a> {
    pub scratch: &'a mut [u8],
    /// Largest request or reply accepted; a peer must not make us buffer without bound.
    pub max_bytes: usize,
}

/// A connection we accepted: request in, optional reply out.
pub(crate) struct Inbound {
    stream: TcpStream,
    request: Vec<u8>,
    /// The reply being written, once the machine produced one.
    reply: Option<Vec<u8>>,
    written: usize,
    deadline: Instant,
}

impl Inbound {
    pub fn new(stream: TcpStream, deadline: Instant) -> Inbound {
        Inbound {
            stream,
            request: Vec::new(),
            reply: None,
            written: 0,
            deadline,
        }
    }

    pub fn drive<M: Machine>(
        &mut self,
        token: Token,
        registry: &Registry,
        machine: &mut M,
        ctx: &mut ReadCtx<'_>,
    ) -> Step {
        if self.reply.is_none() {
            let (got, eof) = match read_available(&mut self.stream, ctx, &mut self.request) {
                Ok(r) => r,
                Err(e) => return Step::Failed(format!("reading request: {e}")),
            };
            if got {
                match machine.handle_stream_request(Instant::now(), &self.request) {
                    StreamStatus::Incomplete => {}
                    StreamStatus::Done(None) => return Step::Done,
                    StreamStatus::Done(Some(reply)) => self.reply = Some(reply),
                }
            }
            if self.reply.is_none() {
                return if eof {
                    Step::Failed("connection closed before a complete request".into())
                } else {
                    Step::Open
                };
            }
        }
        let reply = self.reply.as_deref().unwrap_or_default();
        match write_available(&mut self.stream, reply, &mut self.written) {
            Ok(true) => Step::Done,
            Ok(false) => reregister(registry, &mut self.stream, token, Interest::WRITABLE),
            Err(e) => Step::Failed(format!("writing reply: {e}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Writing,
    Reading,
}

/// A stream the machine asked us to open.
pub(crate) struct Outbound {
    stream: TcpStream,
    pub id: u64,
    pub to: SocketAddr,
    payload: Vec<u8>,
    written: usize,
    pub expect_reply: bool,
    deadline: Instant,
    phase: Phase,
    reply: Vec<u8>,
}

impl Outbound {
    /// Starts a non-blocking connect; the caller registers the stream for WRITABLE, which
    /// signals that the connect finished (or failed).
    pub fn connect(s: OutboundStream) -> io::Result<Outbound> {
        let stream = TcpStream::connect(s.to)?;
        // Go's net package disables Nagle on every TCP connection; match its latency.
        let _ = stream.set_nodelay(true);
        Ok(Outbound {
            stream,
            id: s.id,
            to: s.to,
            payload: s.payload,
            written: 0,
            expect_reply: s.expect_reply,
            deadline: s.deadline,
            phase: Phase::Connecting,
            reply: Vec::new(),
        })
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub fn drive<M: Machine>(
        &mut self,
        token: Token,
        registry: &Registry,
        machine: &mut M,
        ctx: &mut ReadCtx<'_>,
    ) -> Step {
        if self.phase == Phase::Connecting {
            match self.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return Step::Failed(format!("connecting: {e}")),
            }
            match self.stream.peer_addr() {
                Ok(_) => self.phase = Phase::Writing,
                // Spurious wake-up: the connect is still in progress.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Step::Open,
                Err(e) => return Step::Failed(format!("connecting: {e}")),
            }
        }
        if self.phase == Phase::Writing {
            match write_available(&mut self.stream, &self.payload, &mut self.written) {
                Ok(true) if !self.expect_reply => return Step::Done,
                Ok(true) => {
                    self.phase = Phase::Reading;
                    self.payload = Vec::new();
                    if let Step::Failed(e) =
                        reregister(registry, &mut self.stream, token, Interest::READABLE)
                    {
                        return Step::Failed(e);
                    }
                }
                Ok(false) => return Step::Open,
                Err(e) => return Step::Failed(format!("writing: {e}")),
            }
        }
        let (got, eof) = match read_available(&mut self.stream, ctx, &mut self.reply) {
            Ok(r) => r,
            Err(e) => return Step::Failed(format!("reading reply: {e}")),
        };
        if (got || eof) && machine.handle_stream_reply(Instant::now(), self.id, &self.reply, eof) {
            return Step::Done;
        }
        if eof {
            return Step::Failed("connection closed before a complete reply".into());
        }
        Step::Open
    }
}

fn reregister(
    registry: &Registry,
    stream: &mut TcpStream,
    token: Token,
    interest: Interest,
) -> Step {
    match registry.reregister(stream, token, interest) {
        Ok(()) => Step::Open,
        Err(e) => Step::Failed(format!("registering with the poller: {e}")),
    }
}

/// Reads everything available now (the poller is edge-triggered). Returns whether bytes
/// arrived and whether the peer closed its side.
fn read_available(
    stream: &mut TcpStream,
    ctx: &mut ReadCtx<'_>,
    into: &mut Vec<u8>,
) -> io::Result<(bool, bool)> {
    let mut got = false;
    loop {
        match stream.read(ctx.scratch) {
            Ok(0) => return Ok((got, true)),
            Ok(n) => {
                if into.len() + n > ctx.max_bytes {
                    return Err(io::Error::other(format!(
                        "more than {} bytes",
                        ctx.max_bytes
                    )));
                }
                into.extend_from_slice(&ctx.scratch[..n]);
                got = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((got, false)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes as much of `buf[*written..]` as the socket takes now; true once all is written.
/// (std's `write` sends with `MSG_NOSIGNAL` on Linux, so a peer that went away is an `EPIPE`
/// error, not a process-killing `SIGPIPE`, even inside a C host that does not ignore it.)
fn write_available(stream: &mut TcpStream, buf: &[u8], written: &mut usize) -> io::Result<bool> {
    while *written < buf.len() {
        match stream.write(&buf[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
