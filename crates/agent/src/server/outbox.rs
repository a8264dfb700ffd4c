//! What waits to be written to one RPC client. Replies, stream records and log lines are queued
//! here by whichever thread produced them (a worker, the agent's event dispatch, the logger) and
//! written by the server's poll thread when the socket takes them, so no producer ever blocks on
//! a slow client and each frame goes out whole, never interleaved with another.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::Sender;
use mio::{Token, Waker};
use serf::api::wire::msgpack::Field;

use crate::frame;

/// Bytes a client may leave unread before stream records and log lines for it are dropped
/// (replies are always queued; the server stops reading requests from such a client instead).
pub const OUTBOX_LIMIT: usize = 8 << 20;

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The connection is closed; nothing more will be written to it.
    Closed,
    /// The client has [`OUTBOX_LIMIT`] bytes unread; this record is dropped.
    Full,
}

/// Tells the poll thread that a connection has output (or work finished): a channel of tokens
/// plus a wake-up of its poll.
#[derive(Clone)]
pub struct Notifier {
    tokens: Sender<Token>,
    waker: Arc<Waker>,
}

impl Notifier {
    pub fn new(tokens: Sender<Token>, waker: Arc<Waker>) -> Notifier {
        Notifier { tokens, waker }
    }

    /// `token`'s outbox has bytes to write.
    pub fn notify(&self, token: Token) {
        if self.tokens.send(token).is_ok() {
            self.wake();
        }
    }

    /// Something else is waiting for the poll thread (a finished request).
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }
}

#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    /// How much of `bytes` is already written.
    start: usize,
    closed: bool,
}

impl Queue {
    fn unwritten(&self) -> usize {
        self.bytes.len() - self.start
    }
}

/// One connection's output queue.
pub struct Outbox {
    token: Token,
    queue: Mutex<Queue>,
    notifier: Notifier,
}

impl Outbox {
    pub fn new(token: Token, notifier: Notifier) -> Outbox {
        Outbox {
            token,
            queue: Mutex::new(Queue::default()),
            notifier,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a reply.
    pub fn send(&self, frame: &[u8]) -> Result<(), Refused> {
        self.push(frame, usize::MAX)
    }

    /// Queues a stream record or log line unless the client is [`OUTBOX_LIMIT`] behind.
    pub fn offer(&self, frame: &[u8]) -> Result<(), Refused> {
        self.push(frame, OUTBOX_LIMIT)
    }

    fn push(&self, frame: &[u8], limit: usize) -> Result<(), Refused> {
        let was_empty = {
            let mut q = self.lock();
            if q.closed {
                return Err(Refused::Closed);
            }
            if q.unwritten() >= limit {
                return Err(Refused::Full);
            }
            let was_empty = q.unwritten() == 0;
            q.bytes.extend_from_slice(frame);
            was_empty
        };
        // A queue that already held bytes is being written, or waits for the socket to drain.
        if was_empty {
            self.notifier.notify(self.token);
        }
        Ok(())
    }

    /// Queues a response header with no body.
    pub fn reply(&self, seq: u64, error: &str) -> Result<(), Refused> {
        self.send(&frame::response(seq, error))
    }

    /// Queues a response header and its body.
    pub fn reply_with<B: Field>(&self, seq: u64, error: &str, body: &B) -> Result<(), Refused> {
        self.send(&frame::with_body(frame::response(seq, error), body))
    }

    /// Offers a record (header and body) as [`Outbox::offer`] does.
    pub fn offer_with<B: Field>(&self, seq: u64, body: &B) -> Result<(), Refused> {
        self.offer(&frame::with_body(frame::response(seq, ""), body))
    }

    /// Refuses every later frame.
    pub fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.bytes = Vec::new();
        q.start = 0;
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn unwritten(&self) -> usize {
        self.lock().unwritten()
    }

    /// Writes what the socket takes now.
    pub fn write_to(&self, mut socket: impl Write) -> io::Result<Written> {
        let mut q = self.lock();
        let before = q.start;
        while q.unwritten() > 0 {
            match socket.write(&q.bytes[q.start..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => q.start += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let progressed = q.start > before;
        if q.unwritten() == 0 {
            // Keep a small buffer; let a burst's memory go.
            q.bytes.clear();
            q.bytes.shrink_to(64 << 10);
            q.start = 0;
            return Ok(Written::All);
        }
        if q.start > q.bytes.len() / 2 {
            let start = q.start;
            q.bytes.drain(..start);
            q.start = 0;
        }
        Ok(if progressed {
            Written::Some
        } else {
            Written::None
        })
    }
}

/// How much of an outbox one [`Outbox::write_to`] wrote.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Everything: the outbox is empty.
    All,
    /// Some, not all: the socket's buffer is full again.
    Some,
    /// Nothing: the client has not read since the last time.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes `room` bytes, then would block.
    struct Socket {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn outbox() -> (Outbox, crossbeam_channel::Receiver<Token>, mio::Poll) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(1)).unwrap());
        let (tx, rx) = crossbeam_channel::unbounded();
        (Outbox::new(Token(7), Notifier::new(tx, waker)), rx, poll)
    }

    #[test]
    fn frames_go_out_whole_and_in_order_as_the_socket_takes_them() {
        let (out, ready, _poll) = outbox();
        out.send(b"one").unwrap();
        out.send(b"two").unwrap();
        // Only the first frame into an empty outbox asks for a write.
        assert_eq!(ready.try_iter().collect::<Vec<_>>(), [Token(7)]);
        let mut socket = Socket {
            taken: Vec::new(),
            room: 4,
        };
        assert_eq!(out.write_to(&mut socket).unwrap(), Written::Some);
        assert_eq!(out.write_to(&mut socket).unwrap(), Written::None);
        socket.room = 100;
        assert_eq!(out.write_to(&mut socket).unwrap(), Written::All);
        assert_eq!(socket.taken, b"onetwo");
        out.send(b"three").unwrap();
        assert_eq!(ready.try_iter().count(), 1);
    }

    #[test]
    fn records_stop_at_the_limit_replies_do_not_and_a_closed_outbox_takes_nothing() {
        let (out, _ready, _poll) = outbox();
        let record = vec![0u8; OUTBOX_LIMIT / 2];
        out.offer(&record).unwrap();
        out.offer(&record).unwrap();
        assert_eq!(out.offer(b"x"), Err(Refused::Full));
        out.send(b"reply").unwrap();
        assert_eq!(out.unwritten(), OUTBOX_LIMIT + 5);
        out.close();
        assert!(out.is_closed());
        assert_eq!(out.send(b"late"), Err(Refused::Closed));
        assert_eq!(out.unwritten(), 0);
    }
}
