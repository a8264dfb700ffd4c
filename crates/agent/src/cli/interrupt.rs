//! Ctrl-C for the long-running commands (`monitor`, `query`, `reachability`): like Go's
//! `makeShutdownCh`, SIGINT is caught so the command can stop its streams and choose its exit
//! status. Other commands keep the default action, as in Go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a waiting command looks at the flag.
pub const POLL: Duration = Duration::from_millis(100);

/// Set once SIGINT has arrived.
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Starts catching SIGINT. If the handler cannot be installed, Ctrl-C keeps killing the
    /// process, which is the next best thing.
    pub fn catch() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&flag));
        Interrupt(flag)
    }

    pub fn fired(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
