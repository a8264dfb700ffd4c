//! The statsd (UDP) and statsite (TCP) sinks, as go-metrics' `StatsdSink` and `StatsiteSink`
//! work: every counter increment, gauge change and sample becomes one line (`name:value|c`,
//! `|g`, `|ms`) pushed without blocking into a queue of 4096 (dropped when full); a background
//! thread writes the lines out, flushing at least every 100 ms, statsd in datagrams of at most
//! 1400 bytes. The aggregation is left to the statsd/statsite server, as HashiCorp's agent does.
//! A connection or write error makes the thread drop what arrives for 5 s and then reconnect.

use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

/// go-metrics' queue length.
const QUEUE: usize = 4096;
/// go-metrics' `statsdMaxLen`: largest datagram.
pub const STATSD_MAX_LEN: usize = 1400;
/// go-metrics' `flushInterval`.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How long the thread drops lines after an error before it reconnects (go-metrics: 5 s).
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Bounds on a statsite connect and write, so a dead server cannot wedge the thread for long.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which protocol a sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// Datagrams to a statsd server.
    Statsd,
    /// A TCP stream to a statsite server.
    Statsite,
}

impl SinkKind {
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Statsd => "statsd",
            SinkKind::Statsite => "statsite",
        }
    }
}

/// The type of a metric line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineType {
    Counter,
    Gauge,
    /// A sample or a timer (statsd's `ms`, whatever the unit).
    Sample,
}

/// `name:value|type\n`, go-metrics' format: the value printed as Go prints a float32 with `%f`,
/// and `:`, space, `|` and newlines in the name replaced by `_` (go-metrics replaces the first
/// two; the others would break the line protocol).
pub fn line(name: &str, value: f64, kind: LineType) -> String {
    let name: String = name
        .chars()
        .map(|c| match c {
            ':' | ' ' | '|' | '\n' | '\r' => '_',
            c => c,
        })
        .collect();
    let suffix = match kind {
        LineType::Counter => "c",
        LineType::Gauge => "g",
        LineType::Sample => "ms",
    };
    format!("{name}:{:.6}|{suffix}\n", value as f32)
}

/// A running sink: lines go to its thread through a bounded queue. Dropping it lets the thread
/// send what it holds and stop.
#[derive(Debug)]
pub struct LineSink {
    kind: SinkKind,
    addr: String,
    tx: Sender<String>,
    thread: Option<JoinHandle<()>>,
}

impl LineSink {
    /// Starts a sink for `addr` (`host:port`). As go-metrics' sinks, it takes any address: one
    /// that cannot be resolved or reached is retried every 5 s, silently (HashiCorp's agent
    /// discards what go-metrics logs), while lines are dropped.
    pub fn start(kind: SinkKind, addr: &str, flush: Duration) -> io::Result<LineSink> {
        let (tx, rx) = bounded(QUEUE);
        let target = addr.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("serf-{}", kind.name()))
            .spawn(move || match kind {
                SinkKind::Statsd => run(rx, flush, || Statsd::connect(&target)),
                SinkKind::Statsite => run(rx, flush, || Statsite::connect(&target)),
            })?;
        Ok(LineSink {
            kind,
            addr: addr.to_string(),
            tx,
            thread: Some(thread),
        })
    }

    pub fn kind(&self) -> SinkKind {
        self.kind
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Queues a line; drops it if the queue is full (never blocks the caller).
    pub fn push(&self, line: String) {
        match self.tx.try_send(line) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Stops the sink after it sent what it holds, and waits for its thread (at most the time
    /// of one connect or write attempt).
    pub fn close(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr}: no address found"),
        )
    })
}

/// Where the thread writes: a connected datagram socket or a buffered stream.
trait Output: Sized {
    /// Takes a line; may write out what was gathered first.
    fn write_line(&mut self, line: &str) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

struct Statsd {
    socket: UdpSocket,
    buf: String,
}

impl Statsd {
    fn connect(addr: &str) -> io::Result<Statsd> {
        let to = resolve(addr)?;
        let local: SocketAddr = if to.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(to)?;
        Ok(Statsd {
            socket,
            buf: String::with_capacity(STATSD_MAX_LEN),
        })
    }
}

impl Output for Statsd {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        if !self.buf.is_empty() && self.buf.len() + line.len() > STATSD_MAX_LEN {
            self.flush()?;
        }
        self.buf.push_str(line);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let sent = self.socket.send(self.buf.as_bytes());
        self.buf.clear();
        sent.map(|_| ())
    }
}

struct Statsite {
    stream: BufWriter<TcpStream>,
}

impl Statsite {
    fn connect(addr: &str) -> io::Result<Statsite> {
        let stream = TcpStream::connect_timeout(&resolve(addr)?, TCP_TIMEOUT)?;
        stream.set_write_timeout(Some(TCP_TIMEOUT))?;
        let _ = stream.set_nodelay(true);
        Ok(Statsite {
            stream: BufWriter::with_capacity(4096, stream),
        })
    }
}

impl Output for Statsite {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.stream.write_all(line.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// The sink thread: connect, write lines as they come, flush every `flush`; after an error
/// drop lines for [`RETRY_AFTER`] and reconnect. Ends when every sender is gone, after writing
/// out what it holds.
fn run<O: Output>(rx: Receiver<String>, flush: Duration, connect: impl Fn() -> io::Result<O>) {
    loop {
        let Ok(mut out) = connect() else {
            if !drop_for(&rx, RETRY_AFTER) {
                return;
            }
            continue;
        };
        match pump(&rx, flush, &mut out) {
            Ok(()) => return,
            Err(_) => {
                if !drop_for(&rx, RETRY_AFTER) {
                    return;
                }
            }
        }
    }
}

/// Moves lines until the channel closes (`Ok`) or a write fails.
fn pump<O: Output>(rx: &Receiver<String>, flush: Duration, out: &mut O) -> io::Result<()> {
    let mut next_flush = Instant::now() + flush;
    loop {
        match rx.recv_deadline(next_flush) {
            Ok(line) => out.write_line(&line)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return out.flush(),
        }
        // Checked after every line too, so a steady stream cannot hold lines back.
        let now = Instant::now();
        if now >= next_flush {
            out.flush()?;
            next_flush = now + flush;
        }
    }
}

/// Discards lines for `wait`; false if the channel closed meanwhile.
fn drop_for(rx: &Receiver<String>, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        match rx.recv_deadline(until) {
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    #[test]
    fn lines_look_like_go_metrics_lines() {
        let cases = [
            (
                "serf-agent.serf.member.join",
                1.0,
                LineType::Counter,
                "serf-agent.serf.member.join:1.000000|c\n",
            ),
            (
                "serf-agent.h.memberlist.health.score",
                2.0,
                LineType::Gauge,
                "serf-agent.h.memberlist.health.score:2.000000|g\n",
            ),
            (
                "serf-agent.memberlist.gossip",
                0.1234567,
                LineType::Sample,
                "serf-agent.memberlist.gossip:0.123457|ms\n",
            ),
            // Spaces, colons and pipes would break the line format.
            (
                "serf.events.a b:c|d",
                1.0,
                LineType::Counter,
                "serf.events.a_b_c_d:1.000000|c\n",
            ),
        ];
        for (name, value, kind, expected) in cases {
            assert_eq!(line(name, value, kind), expected);
        }
    }

    #[test]
    fn an_unresolvable_address_is_retried_not_refused() {
        for (kind, addr) in [
            (SinkKind::Statsd, "no-port"),
            (SinkKind::Statsite, "127.0.0.1:x"),
        ] {
            let sink = LineSink::start(kind, addr, FLUSH_INTERVAL).expect("any address starts");
            sink.push("dropped:1.000000|c\n".into());
            sink.close();
        }
    }

    #[test]
    fn statsd_packs_lines_into_datagrams_of_at_most_1400_bytes() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let sink = LineSink::start(SinkKind::Statsd, &addr, Duration::from_millis(20)).unwrap();
        let lines: Vec<String> = (0..100)
            .map(|i| {
                line(
                    &format!("serf-agent.test.metric{i:03}"),
                    1.0,
                    LineType::Counter,
                )
            })
            .collect();
        for l in &lines {
            sink.push(l.clone());
        }
        let mut got = String::new();
        let mut buf = [0u8; 65_536];
        while got.len() < lines.concat().len() {
            let n = server.recv(&mut buf).expect("statsd datagram within 5 s");
            assert!(n <= STATSD_MAX_LEN, "datagram of {n} bytes");
            let text = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(text.ends_with('\n'), "whole lines per datagram");
            got.push_str(text);
        }
        assert_eq!(got, lines.concat());
        sink.close();
    }

    #[test]
    fn statsite_streams_lines_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sink = LineSink::start(SinkKind::Statsite, &addr, Duration::from_millis(20)).unwrap();
        sink.push(line("serf-agent.a", 1.0, LineType::Counter));
        sink.push(line("serf-agent.b", 2.5, LineType::Sample));
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(conn);
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        assert_eq!(l, "serf-agent.a:1.000000|c\n");
        l.clear();
        reader.read_line(&mut l).unwrap();
        assert_eq!(l, "serf-agent.b:2.500000|ms\n");
        // Closing the sink flushes and ends the stream.
        sink.push(line("serf-agent.c", 3.0, LineType::Gauge));
        sink.close();
        l.clear();
        reader.read_line(&mut l).unwrap();
        assert_eq!(l, "serf-agent.c:3.000000|g\n");
        l.clear();
        assert_eq!(reader.read_line(&mut l).unwrap(), 0, "EOF after close");
    }
}
