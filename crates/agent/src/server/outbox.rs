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

    /// Writes what the socket takes now. `Ok(true)` when the queue is empty.
    pub fn write_to(&self, mut socket: impl Write) -> io::Result<bool> {
        let mut q = self.lock();
        while q.unwritten() > 0 {
            match socket.write(&q.bytes[q.start..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => q.start += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if q.unwritten() == 0 {
            // Keep a small buffer; let a burst's memory go.
            q.bytes.clear();
            q.bytes.shrink_to(64 << 10);
            q.start = 0;
            return Ok(true);
        }
        if q.start > q.bytes.len() / 2 {
            let start = q.start;
            q.bytes.drain(..start);
            q.start = 0;
        }
        Ok(false)
    }
}
