//! The application's event queue: bounded, never blocking the protocol thread, with a file
//! descriptor that is readable exactly while events are queued (for epoll, asyncio, Go).
//!
//! The bound is a counter over a growable channel, not a pre-sized ring: an idle node holds no
//! slots, which matters when a thousand nodes share one process.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// An eventfd in semaphore mode: each queued event adds one, each taken event reads one, so the
/// descriptor is readable exactly while the queue is non-empty.
struct ReadyFd(OwnedFd);

impl ReadyFd {
    fn new() -> io::Result<ReadyFd> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let fd = unsafe {
            libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK | libc::EFD_SEMAPHORE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        Ok(ReadyFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn add(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own descriptor.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn take(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own descriptor (non-blocking).
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

struct Shared {
    fd: ReadyFd,
    dropped: AtomicU64,
    /// Events pushed and not yet taken, checked against `capacity`.
    queued: AtomicUsize,
    capacity: usize,
}

/// The protocol thread's end: pushing never blocks; a full queue drops and counts the event.
pub struct EventSender<T> {
    tx: Sender<T>,
    shared: Arc<Shared>,
}

/// The application's end. Clones share the queue: each event goes to one of them.
pub struct EventReceiver<T> {
    rx: Receiver<T>,
    shared: Arc<Shared>,
}

impl<T> Clone for EventReceiver<T> {
    fn clone(&self) -> Self {
        EventReceiver {
            rx: self.rx.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// A bounded event queue holding at most `capacity` events.
pub fn event_queue<T>(capacity: usize) -> io::Result<(EventSender<T>, EventReceiver<T>)> {
    with_capacity(capacity.max(1))
}

/// An unbounded queue with the same readiness descriptor (for a query's few updates).
pub fn unbounded_queue<T>() -> io::Result<(EventSender<T>, EventReceiver<T>)> {
    with_capacity(usize::MAX)
}

fn with_capacity<T>(capacity: usize) -> io::Result<(EventSender<T>, EventReceiver<T>)> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let shared = Arc::new(Shared {
        fd: ReadyFd::new()?,
        dropped: AtomicU64::new(0),
        queued: AtomicUsize::new(0),
        capacity,
    });
    Ok((
        EventSender {
            tx,
            shared: shared.clone(),
        },
        EventReceiver { rx, shared },
    ))
}

impl<T> EventSender<T> {
    /// Queues an event, or counts it as dropped when the application is not keeping up.
    pub fn push(&self, event: T) {
        let shared = &self.shared;
        let room = shared.queued.fetch_add(1, Ordering::AcqRel) < shared.capacity;
        if room && self.tx.send(event).is_ok() {
            shared.fd.add();
        } else {
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<T> EventReceiver<T> {
    /// The next event, waiting up to `timeout` (`None` waits as long as it takes).
    pub fn recv(&self, timeout: Option<Duration>) -> Option<T> {
        let event = match timeout {
            Some(t) => match self.rx.recv_timeout(t) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
            },
            None => self.rx.recv().ok(),
        };
        if event.is_some() {
            self.taken();
        }
        event
    }

    /// Like [`recv`](Self::recv) with a timeout, telling a timeout from a closed queue.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let event = self.rx.recv_timeout(timeout)?;
        self.taken();
        Ok(event)
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<T> {
        let event = self.rx.try_recv().ok();
        if event.is_some() {
            self.taken();
        }
        event
    }

    /// Bookkeeping for one event taken off the queue.
    fn taken(&self) {
        self.shared.fd.take();
        self.shared.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// Readable exactly while events are queued. Owned by the queue: do not close it.
    pub fn fd(&self) -> RawFd {
        self.shared.fd.0.as_raw_fd()
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    #[test]
    fn the_fd_is_readable_exactly_while_events_are_queued_and_overflow_is_counted() {
        let (tx, rx) = event_queue::<u32>(2).expect("eventfd");
        assert!(!readable(rx.fd()));
        tx.push(1);
        tx.push(2);
        tx.push(3);
        assert_eq!(rx.dropped(), 1);
        assert!(readable(rx.fd()));
        assert_eq!(rx.try_recv(), Some(1));
        assert!(readable(rx.fd()));
        assert_eq!(rx.recv(Some(Duration::from_millis(10))), Some(2));
        assert!(!readable(rx.fd()));
        assert_eq!(rx.recv(Some(Duration::from_millis(10))), None);
    }
}
