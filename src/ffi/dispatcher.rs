//! The thread that hands a node's events to a registered C callback: its handle and how it
//! stops. A leaf, so the node (which owns the handle) and the events module (which starts the
//! thread) both use it without depending on each other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A running dispatcher thread and the flag that asks it to stop.
pub(crate) struct Dispatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts `body` on a thread named `serf-events`; `body` runs until the flag it gets is set.
    pub fn start(body: impl FnOnce(&AtomicBool) + Send + 'static) -> std::io::Result<Dispatcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("serf-events".to_string())
            .spawn(move || body(&flag))?;
        Ok(Dispatcher {
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the thread to stop after the event it is delivering, without waiting.
    pub fn signal(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Stops and joins the thread; from the thread itself (a callback replacing or removing
    /// itself) it only signals, and the thread ends when the callback returns.
    pub fn finish(mut self) {
        self.signal();
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// Stops and joins the dispatcher in `slot`, if any.
pub(crate) fn stop(slot: &Mutex<Option<Dispatcher>>) {
    let old = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(dispatcher) = old {
        dispatcher.finish();
    }
}
