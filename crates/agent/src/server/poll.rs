//! What the agent's two socket servers (the RPC and the HTTP view) share: a poll thread that
//! owns the listener and every client socket, a waker, a channel of connections whose outbox
//! has bytes to write, and the workers requests run on. Each server brings its own loop.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use mio::{Interest, Poll, Token, Waker};

use super::outbox::Notifier;
use super::workers::Workers;

/// The listener's token.
pub const LISTENER: Token = Token(0);
/// The waker's token.
pub const WAKER: Token = Token(1);
/// The first token a client socket gets.
pub const FIRST_CLIENT: usize = 2;

/// What a server's loop starts from.
pub struct PollParts {
    pub poll: Poll,
    pub listener: mio::net::TcpListener,
    pub notifier: Notifier,
    /// Connections whose outbox went from empty to not.
    pub ready: Receiver<Token>,
    pub workers: Arc<Workers>,
    pub stop: Arc<AtomicBool>,
}

/// A running poll thread; dropping it does not stop it, [`PollThread::shutdown`] does.
pub struct PollThread {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    workers: Arc<Workers>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl PollThread {
    /// Starts the thread `name`, running the loop `build` makes of the parts, until
    /// [`PollThread::shutdown`] sets `stop` and wakes it.
    pub fn start<L>(
        name: &str,
        listener: TcpListener,
        build: impl FnOnce(PollParts) -> L,
    ) -> io::Result<PollThread>
    where
        L: FnOnce() + Send + 'static,
    {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = Arc::new(Workers::new());
        let (ready_tx, ready) = crossbeam_channel::unbounded();
        let run = build(PollParts {
            poll,
            listener,
            notifier: Notifier::new(ready_tx, waker.clone()),
            ready,
            workers: workers.clone(),
            stop: stop.clone(),
        });
        let thread = std::thread::Builder::new().name(name.into()).spawn(run)?;
        Ok(PollThread {
            addr,
            stop,
            waker,
            workers,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the loop, which closes every connection, and waits for the requests in flight.
    pub fn shutdown(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.waker.wake();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        self.workers.shutdown();
    }
}
