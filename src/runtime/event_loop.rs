//! The protocol thread's loop: wait in `poll` for sockets, commands or the next deadline, hand
//! what arrived to the machine, then send whatever the machine asked for.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token};

use super::conn::{Conn, Inbound, Outbound, ReadCtx, Step};
use super::metrics_export::MetricsExporter;
use super::settings::Runtime;
use super::stats::{bump, Counters};
use serf_proto::log::{Level, LogLine};
use serf_proto::memberlist::machine::Machine;
use serf_proto::memberlist::OutboundStream;

/// An API call to run on the protocol thread with the machine and the current time.
pub(crate) type Job<M> = Box<dyn FnOnce(&mut M, Instant) + Send>;

/// What a [`RuntimeHandle`] sends to the protocol thread.
pub(crate) enum Command<M> {
    Run(Job<M>),
    Stop,
}

pub(crate) const UDP: Token = Token(0);
pub(crate) const LISTENER: Token = Token(1);
pub(crate) const WAKER: Token = Token(2);
const FIRST_CONN: usize = 3;

/// Largest datagram (UDP's limit), so nothing is ever truncated.
const RECV_BUFFER: usize = 64 * 1024;
/// Datagrams or accepts handled per wake-up before commands and timers get a turn; the rest
/// are read on the next round (a zero-timeout poll), so a flood cannot starve the API.
const BATCH: usize = 256;

pub(crate) struct EventLoop<M> {
    pub poll: Poll,
    pub udp: UdpSocket,
    pub listener: TcpListener,
    pub commands: Receiver<Command<M>>,
    pub machine: M,
    pub stats: Arc<Counters>,
    pub options: Runtime,
    /// Keyed by token; tokens are never reused, so a late event for a closed connection cannot
    /// reach a new one.
    conns: HashMap<Token, Conn>,
    /// How many of `conns` are accepted ones (bounded by `max_inbound_streams`).
    inbound: usize,
    next_token: usize,
    buf: Box<[u8]>,
    /// A batch limit stopped reading before "would block": read again without waiting.
    udp_backlog: bool,
    accept_backlog: bool,
    metrics: MetricsExporter,
}

impl<M: Machine> EventLoop<M> {
    pub fn new(
        poll: Poll,
        udp: UdpSocket,
        listener: TcpListener,
        commands: Receiver<Command<M>>,
        machine: M,
        stats: Arc<Counters>,
        options: Runtime,
    ) -> EventLoop<M> {
        EventLoop {
            poll,
            udp,
            listener,
            commands,
            machine,
            stats,
            options,
            conns: HashMap::new(),
            inbound: 0,
            next_token: FIRST_CONN,
            buf: vec![0; RECV_BUFFER].into_boxed_slice(),
            udp_backlog: false,
            accept_backlog: false,
            metrics: MetricsExporter::default(),
        }
    }

    /// Runs until told to stop (or every handle is gone); the sockets close when `self` drops.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(256);
        // Whatever the machine produced before the loop started (e.g. in its constructor); the
        // first read of its telemetry also makes it keep samples from now on.
        self.flush();
        self.metrics.export(&mut self.machine);
        self.write_log();
        loop {
            let timeout = if self.udp_backlog || self.accept_backlog {
                Some(Duration::ZERO)
            } else {
                self.next_deadline()
                    .map(|t| t.saturating_duration_since(Instant::now()))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The poller itself is broken (never seen in practice): nothing can be served.
                return;
            }
            let mut udp_ready = std::mem::take(&mut self.udp_backlog);
            let mut accept_ready = std::mem::take(&mut self.accept_backlog);
            for event in events.iter() {
                match event.token() {
                    UDP => udp_ready = true,
                    LISTENER => accept_ready = true,
                    WAKER => {}
                    token => self.drive(token),
                }
            }
            if udp_ready {
                self.read_datagrams();
            }
            if accept_ready {
                self.accept();
            }
            if !self.run_commands() {
                // What the last commands logged (a shutdown says so) still goes out.
                self.write_log();
                return;
            }
            self.expire();
            self.metrics.export(&mut self.machine);
            self.write_log();
        }
    }

    /// Hands the lines the machine logged this turn to the sink, if any.
    fn write_log(&mut self) {
        if let Some(sink) = &self.options.log {
            self.machine.read_log(&mut |line| (sink.write)(&line));
        }
    }

    /// Writes a line of the runtime's own, formatted only when the sink wants its level.
    fn log(&self, level: Level, text: impl FnOnce() -> String) {
        if let Some(sink) = self.options.log.as_ref().filter(|s| level >= s.level) {
            (sink.write)(&LogLine {
                level,
                text: text(),
            });
        }
    }

    /// The machine's next timer or the earliest connection deadline.
    fn next_deadline(&self) -> Option<Instant> {
        let conns = self.conns.values().map(Conn::deadline).min();
        match (self.machine.poll_timeout(), conns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs queued commands in order; false when the loop must stop.
    fn run_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Run(f)) => {
                    let machine = &mut self.machine;
                    let outcome = catch_unwind(AssertUnwindSafe(|| f(machine, Instant::now())));
                    if outcome.is_err() {
                        bump(&self.stats.command_panics);
                    }
                    self.flush();
                }
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    /// Fires the machine's timer if due and drops connections past their deadline.
    fn expire(&mut self) {
        let now = Instant::now();
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            let rounds = self.machine.gossip_rounds();
            self.machine.handle_timeout(now);
            self.flush();
            if self.machine.gossip_rounds() != rounds {
                // The core cannot read the clock: time the call that gossiped (and sent it), as
                // Go's `MeasureSince` around `gossip()` does. Other timers due at the same
                // instant are included.
                let took = now.elapsed().as_secs_f64() * 1000.0;
                metrics::histogram!("memberlist.gossip").record(took);
            }
        }
        let late: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline() <= now)
            .map(|(&t, _)| t)
            .collect();
        for token in late {
            self.close(token, Step::Failed("deadline passed".into()));
        }
    }

    fn read_datagrams(&mut self) {
        for _ in 0..BATCH {
            match self.udp.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    bump(&self.stats.packets_in);
                    self.machine
                        .handle_packet(Instant::now(), from, &self.buf[..n]);
                    self.flush();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // Counted and left; the next datagram raises a new readiness event.
                    bump(&self.stats.recv_errors);
                    return;
                }
            }
        }
        self.udp_backlog = true;
    }

    fn accept(&mut self) {
        for _ in 0..BATCH {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    bump(&self.stats.streams_in);
                    self.log(Level::Debug, || {
                        format!("memberlist: Stream connection from={peer}")
                    });
                    metrics::counter!("memberlist.tcp.accept").increment(1);
                    if self.inbound >= self.options.max_inbound_streams {
                        // Too many requests in progress: closed (dropped) unread, as Go closes
                        // a push/pull over its limit.
                        bump(&self.stats.inbound_failures);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let token = self.new_token();
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE)
                        .is_err()
                    {
                        bump(&self.stats.inbound_failures);
                        continue;
                    }
                    let deadline = Instant::now() + self.options.inbound_timeout;
                    self.conns
                        .insert(token, Conn::Inbound(Inbound::new(stream, deadline)));
                    self.inbound += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // E.g. out of file descriptors: counted; a new connection retries.
                    bump(&self.stats.recv_errors);
                    return;
                }
            }
        }
        self.accept_backlog = true;
    }

    fn new_token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        token
    }

    /// A connection's socket is ready: let it do what it can.
    fn drive(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let mut ctx = ReadCtx {
            scratch: &mut self.buf,
            max_bytes: self.options.max_stream_bytes,
        };
        let registry = self.poll.registry();
        let step = match conn {
            Conn::Inbound(c) => c.drive(token, registry, &mut self.machine, &mut ctx),
            Conn::Outbound(c) => c.drive(token, registry, &mut self.machine, &mut ctx),
        };
        if step != Step::Open {
            self.close(token, step);
        }
        self.flush();
    }

    /// Removes a connection, reporting an outbound failure to the machine when it expects a
    /// reply it did not get (once: the connection is gone afterwards).
    fn close(&mut self, token: Token, step: Step) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.stream_mut());
        if matches!(conn, Conn::Inbound(_)) {
            self.inbound -= 1;
        }
        let Step::Failed(reason) = step else {
            return;
        };
        match conn {
            Conn::Inbound(_) => bump(&self.stats.inbound_failures),
            Conn::Outbound(c) => {
                bump(&self.stats.stream_failures);
                if c.expect_reply {
                    let reason = format!("stream to {}: {reason}", c.to);
                    self.machine
                        .handle_stream_failure(Instant::now(), c.id, reason);
                    self.flush();
                }
            }
        }
    }

    /// Sends every datagram and opens every stream the machine has queued.
    fn flush(&mut self) {
        loop {
            let mut idle = true;
            while let Some(t) = self.machine.poll_transmit() {
                idle = false;
                self.send(&t.payload, t.to);
            }
            while let Some(s) = self.machine.poll_stream() {
                idle = false;
                self.open(s);
            }
            if idle {
                return;
            }
        }
    }

    /// A datagram that cannot go out now is dropped, as UDP would: the protocol retries.
    fn send(&mut self, payload: &[u8], to: SocketAddr) {
        match self.udp.send_to(payload, to) {
            Ok(_) => bump(&self.stats.packets_out),
            Err(_) => bump(&self.stats.send_errors),
        }
    }

    fn open(&mut self, s: OutboundStream) {
        bump(&self.stats.streams_out);
        let (id, to, expect_reply) = (s.id, s.to, s.expect_reply);
        let token = self.new_token();
        let registered = Outbound::connect(s).and_then(|mut c| {
            self.poll
                .registry()
                .register(c.stream_mut(), token, Interest::WRITABLE)?;
            Ok(c)
        });
        match registered {
            Ok(c) => {
                self.conns.insert(token, Conn::Outbound(c));
            }
            Err(e) => {
                bump(&self.stats.stream_failures);
                if expect_reply {
                    let reason = format!("stream to {to}: connecting: {e}");
                    self.machine
                        .handle_stream_failure(Instant::now(), id, reason);
                }
            }
        }
    }
}
