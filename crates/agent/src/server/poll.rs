//! What the agent's two socket servers (the RPC and the HTTP view) share: a poll thread that
//! owns the listener and every client socket, a waker, a channel of connections whose outbox
//! has bytes to write, a channel of requests the workers finished, and the loop that turns
//! all of these into calls of the server's [`Sockets`] methods.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::outbox::Notifier;
use super::workers::Workers;

/// The listener's token.
pub const LISTENER: Token = Token(0);
/// The waker's token.
pub const WAKER: Token = Token(1);
/// The first token a client socket gets.
pub const FIRST_CLIENT: usize = 2;

/// What a server is built from.
pub struct PollParts<D> {
    /// Where client sockets are registered (the poll itself stays with the loop).
    pub registry: Registry,
    pub listener: mio::net::TcpListener,
    pub notifier: Notifier,
    pub workers: Arc<Workers>,
    /// Where a worker sends what it finished; the loop hands it to [`Sockets::finished`].
    pub done: Sender<D>,
}

/// A server's part of the loop: what it does with each kind of readiness.
pub trait Sockets: Send + 'static {
    /// What a worker sends back when it finished a request.
    type Done: Send + 'static;
    /// The listener is readable.
    fn accept(&mut self);
    /// A client's socket can take bytes (or its outbox has some): write them.
    fn flush(&mut self, token: Token);
    /// A client sent bytes or closed.
    fn read(&mut self, token: Token);
    fn finished(&mut self, done: Self::Done);
    /// Once a turn, at least once a second: time limits.
    fn tick(&mut self);
    /// The poll failed (the loop retries after a pause).
    fn poll_failed(&self, error: &io::Error);
    /// The server stops: close every connection.
    fn close_all(&mut self);
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
    pub fn start<S: Sockets>(
        name: &str,
        listener: TcpListener,
        build: impl FnOnce(PollParts<S::Done>) -> S,
    ) -> io::Result<PollThread> {
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
        let (done_tx, done) = crossbeam_channel::unbounded();
        let server = build(PollParts {
            registry: poll.registry().try_clone()?,
            listener,
            notifier: Notifier::new(ready_tx, waker.clone()),
            workers: workers.clone(),
            done: done_tx,
        });
        let looping = Loop {
            poll,
            ready,
            done,
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || looping.run(server))?;
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

/// The poll thread's loop: readiness, finished requests, outboxes to write, time limits.
struct Loop<D> {
    poll: Poll,
    /// Connections whose outbox went from empty to not.
    ready: Receiver<Token>,
    done: Receiver<D>,
    stop: Arc<AtomicBool>,
}

impl<D> Loop<D> {
    fn run<S: Sockets<Done = D>>(mut self, mut server: S) {
        let mut events = Events::with_capacity(256);
        while !self.stop.load(Ordering::SeqCst) {
            if let Err(e) = self.poll.poll(&mut events, Some(Duration::from_secs(1))) {
                if e.kind() != io::ErrorKind::Interrupted {
                    server.poll_failed(&e);
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => server.accept(),
                    WAKER => {}
                    token => {
                        if event.is_writable() {
                            server.flush(token);
                        }
                        if event.is_readable() || event.is_read_closed() {
                            server.read(token);
                        }
                    }
                }
            }
            while let Ok(done) = self.done.try_recv() {
                server.finished(done);
            }
            while let Ok(token) = self.ready.try_recv() {
                server.flush(token);
            }
            server.tick();
        }
        server.close_all();
    }
}
