//! The agent's `-event-handler` scripts: spec parsing, HashiCorp's invocation contract, and a
//! runner that keeps slow scripts from holding up the agent.
//!
//! # Contract (HashiCorp serf 0.9.4 `invoke.go`, `event_handler.go`)
//!
//! A spec is `[filter=]script`, split at the **first** `=` whatever follows (so a script that
//! itself contains `=` needs a filter, e.g. `*=FOO=1 ./x.sh`). Each matching script runs as
//! `/bin/sh -c <script>` with the agent's environment plus `SERF_EVENT`, `SERF_SELF_NAME`,
//! `SERF_SELF_ROLE`, `SERF_TAG_<KEY>` per local tag, and `SERF_USER_EVENT`/`SERF_USER_LTIME` or
//! `SERF_QUERY_NAME`/`SERF_QUERY_LTIME`. Stdin carries one `name\tip\trole\ttags` line per member,
//! or the user/query payload with a newline appended when missing. Stdout and stderr share one
//! 8 KiB ring (the last 8 KiB survive); the output is logged at DEBUG, a non-zero exit at ERR,
//! and a query whose script exits 0 with output is answered with that output.
//!
//! # Scheduling (where this differs from Go, which runs every script in the event loop)
//!
//! [`HandlerRunner::dispatch`] only enqueues; worker threads run the scripts.
//! * Member and user events go to the *event lane*: invocations of the same script string run
//!   one at a time in arrival order (a script that tracks membership sees joins and leaves in
//!   order, as it did with Go), while different scripts run side by side.
//! * Queries go to their own *query lane*, unordered, with their own workers and queue, so a
//!   hung member handler can never make a query miss its deadline.
//! * Each lane has a fixed number of workers (together the cap on concurrent processes) and a
//!   bound on the memory its invocations queued or running hold (scripts, environments, stdin;
//!   [`RunnerLimits::queue_bytes`], the agent's `event_handler_queue_bytes`, 128 MiB by
//!   default: many minutes of backlog, so a burst is worked off rather than lost). Beyond it
//!   an invocation is dropped and counted (the return value of [`HandlerRunner::dispatch`])
//!   rather than blocking the caller; one WARN line with the lane's running total of drops
//!   marks the first, and at most one follows per 10 s.
//! * A worker that finishes a script's invocation runs that script's next one itself when no
//!   other script waits for a worker: a backlog of one script costs no thread hand-offs.
//! * A spec whose filter lists several matching elements (`user,user:deploy=x.sh`) runs once per
//!   event; Go expanded it into one script per element and ran it once per matching element.
//! * Scripts run in their own process group so [`HandlerRunner::shutdown`] can kill whatever a
//!   hung script started (Go never killed handlers). The flip side: a terminal's Ctrl-C reaches
//!   the agent but not its handlers.
//! * After the shell exits, output is read for at most [`OUTPUT_GRACE`] more: a background
//!   process that keeps the pipe open no longer stalls the handler forever as it did in Go.
//!   The exit itself is noticed through a pidfd polled with the pipes (Linux 5.3+; elsewhere
//!   by re-checking after short sleeps).
//!
//! Writing stdin relies on SIGPIPE being ignored, as Rust's runtime arranges for the agent
//! binary; a script that exits without reading its stdin then yields `EPIPE`, not a signal.

mod input;
mod lane;
mod process;
mod runner;
mod spec;
mod steps;
#[cfg(test)]
mod tests;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use input::{DispatchContext, Responder};
pub use runner::{HandlerRunner, RunnerLimits, DEFAULT_QUEUE_BYTES};
pub use spec::{HandlerSpec, HandlerSpecError};

/// How much of a script's combined stdout/stderr is kept (Go's `maxBufSize`), so a runaway
/// script cannot grow the agent's memory.
pub const OUTPUT_LIMIT: usize = 8 * 1024;
/// When a still-running script earns a WARN (Go's `warnSlow`).
pub const SLOW_WARNING: Duration = Duration::from_secs(1);
/// How long output is still collected after the shell exits, for processes it left behind that
/// hold the pipe open.
pub const OUTPUT_GRACE: Duration = Duration::from_millis(250);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
