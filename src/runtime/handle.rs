//! Starting the protocol thread and talking to it: API calls travel as closures over a channel
//! plus a `mio::Waker`, so the machine is only ever touched by its own thread and needs no lock.

use std::any::Any;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Instant;

use crossbeam_channel::{bounded, unbounded, Sender};
use mio::net::{TcpListener, UdpSocket};
use mio::{Interest, Poll, Waker};

use super::event_loop::{Command, EventLoop, Job, LISTENER, UDP, WAKER};
use super::settings::Runtime;
use super::sockets::Sockets;
use super::stats::{Counters, RuntimeStats};
use serf_proto::memberlist::machine::Machine;

/// Why a call into the runtime could not be served.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime was shut down (or its thread ended).
    #[error("the runtime has stopped")]
    Stopped,
    /// The closure passed to [`RuntimeHandle::run`] panicked; the runtime keeps going.
    #[error("the command panicked: {0}")]
    Panicked(String),
    /// The protocol thread itself panicked (found when joining it).
    #[error("the runtime thread panicked: {0}")]
    ThreadPanicked(String),
    /// [`RuntimeHandle::run`] was called from the protocol thread, which would wait for itself.
    #[error("run called on the runtime's own thread")]
    WouldDeadlock,
    /// The command was queued but the loop could not be woken to run it.
    #[error("could not wake the runtime: {0}")]
    Wake(#[source] io::Error),
}

impl Runtime {
    /// Starts a protocol thread named `name` that owns `sockets` and `machine`, with default
    /// settings.
    pub fn spawn<M: Machine + Send + 'static>(
        sockets: Sockets,
        machine: M,
        name: &str,
    ) -> io::Result<RuntimeHandle<M>> {
        Runtime::default().start(sockets, machine, name)
    }

    /// Starts a protocol thread with these settings. Setup errors (poller, registration,
    /// thread creation) are returned here; nothing after this point fails the caller.
    pub fn start<M: Machine + Send + 'static>(
        self,
        sockets: Sockets,
        machine: M,
        name: &str,
    ) -> io::Result<RuntimeHandle<M>> {
        let local_addr = sockets.local_addr();
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut udp = UdpSocket::from_std(sockets.udp);
        let mut listener = TcpListener::from_std(sockets.tcp);
        poll.registry()
            .register(&mut udp, UDP, Interest::READABLE)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let (commands_tx, commands_rx) = unbounded();
        let stats = Arc::new(Counters::default());
        let event_loop = EventLoop::new(
            poll,
            udp,
            listener,
            commands_rx,
            machine,
            stats.clone(),
            self,
        );
        // Thread names cannot hold NUL; the name is only for debuggers and panic messages.
        let thread_name = name.replace('\0', " ");
        let thread = thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || event_loop.run())?;
        Ok(RuntimeHandle {
            commands: commands_tx,
            waker,
            thread_id: thread.thread().id(),
            thread: Mutex::new(Some(thread)),
            stopped: AtomicBool::new(false),
            stats,
            local_addr,
            name: thread_name,
        })
    }
}

/// Controls one protocol thread; usable from any thread (`Send + Sync`). Dropping it shuts the
/// runtime down.
pub struct RuntimeHandle<M> {
    commands: Sender<Command<M>>,
    waker: Arc<Waker>,
    thread_id: ThreadId,
    thread: Mutex<Option<JoinHandle<()>>>,
    stopped: AtomicBool,
    stats: Arc<Counters>,
    local_addr: SocketAddr,
    name: String,
}

impl<M> fmt::Debug for RuntimeHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("name", &self.name)
            .field("local_addr", &self.local_addr)
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish()
    }
}

impl<M: 'static> RuntimeHandle<M> {
    /// Runs `f` on the protocol thread with the machine and the current time, sends what the
    /// machine queued, and returns `f`'s result.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut M, Instant) -> R + Send + 'static,
    ) -> Result<R, RuntimeError> {
        if thread::current().id() == self.thread_id {
            return Err(RuntimeError::WouldDeadlock);
        }
        let (reply_tx, reply_rx) = bounded(1);
        self.submit(Box::new(move |machine: &mut M, now| {
            let outcome = catch_unwind(AssertUnwindSafe(|| f(machine, now)));
            let _ = reply_tx.send(outcome.map_err(|p| panic_message(p.as_ref())));
        }))?;
        match reply_rx.recv() {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(message)) => Err(RuntimeError::Panicked(message)),
            // The loop dropped the command unrun: it stopped (or its thread died) meanwhile.
            Err(_) => Err(RuntimeError::Stopped),
        }
    }

    /// Like [`run`](Self::run) without waiting: `f` runs later, in order with other commands.
    pub fn run_async(
        &self,
        f: impl FnOnce(&mut M, Instant) + Send + 'static,
    ) -> Result<(), RuntimeError> {
        self.submit(Box::new(f))
    }

    fn submit(&self, f: Job<M>) -> Result<(), RuntimeError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(RuntimeError::Stopped);
        }
        self.commands
            .send(Command::Run(f))
            .map_err(|_| RuntimeError::Stopped)?;
        self.waker.wake().map_err(RuntimeError::Wake)
    }
}

impl<M> RuntimeHandle<M> {
    /// The address the runtime's sockets are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The runtime's counters right now.
    pub fn stats(&self) -> RuntimeStats {
        self.stats.snapshot()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stops the loop after the commands already queued, joins the thread and closes every
    /// socket. Idempotent; later calls to [`run`](Self::run) return [`RuntimeError::Stopped`].
    /// Called on the protocol thread itself it only asks the loop to stop.
    pub fn close(&self) -> Result<(), RuntimeError> {
        if !self.stopped.swap(true, Ordering::AcqRel) {
            let _ = self.commands.send(Command::Stop);
            let _ = self.waker.wake();
        }
        if thread::current().id() == self.thread_id {
            return Ok(());
        }
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        match thread.map(JoinHandle::join) {
            Some(Err(panic)) => Err(RuntimeError::ThreadPanicked(panic_message(panic.as_ref()))),
            _ => Ok(()),
        }
    }

    /// [`close`](Self::close), consuming the handle.
    pub fn shutdown(self) -> Result<(), RuntimeError> {
        self.close()
    }
}

impl<M> Drop for RuntimeHandle<M> {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// What a panic said, for an error message.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
