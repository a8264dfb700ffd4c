//! The lanes between dispatch and the workers: a queue bounded by the bytes its invocations
//! hold that, when ordered, runs the invocations of one script one at a time in arrival order.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::input::ScriptInput;
use super::lock;

/// The least time between two WARN lines about dropped invocations of one lane.
pub(super) const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

pub(super) struct Job {
    pub(super) script: Arc<str>,
    pub(super) input: Arc<ScriptInput>,
}

impl Job {
    /// What the job counts against its lane's bound: its script and its event's environment
    /// and stdin (counted for each script the event runs, though they share one copy).
    fn bytes(&self) -> usize {
        std::mem::size_of::<Job>() + self.script.len() + self.input.bytes
    }
}

pub(super) enum Rejected {
    /// The lane holds its bound of bytes. `warn` is set, to the lane's running total of
    /// dropped invocations, when this drop should be logged: the first one, and then at most
    /// one every [`DROP_WARNING_INTERVAL`].
    Full {
        warn: Option<u64>,
    },
    Stopping,
}

/// A queue with its workers' hand-off. An ordered lane keeps, per script, at most one job in
/// `ready` or running; later ones wait in `blocked[script]` until it finishes.
pub(super) struct Lane {
    ordered: bool,
    /// Bytes of pending invocations ([`Job::bytes`]) beyond which new ones are dropped; an
    /// empty lane takes any one invocation, however large.
    pub(super) max_bytes: usize,
    state: Mutex<LaneState>,
    /// Signalled when a job becomes ready or the lane stops.
    work: Condvar,
    /// Signalled when `in_flight` drops to zero.
    idle: Condvar,
}

#[derive(Default)]
struct LaneState {
    ready: VecDeque<Job>,
    blocked: HashMap<Arc<str>, VecDeque<Job>>,
    /// Jobs accepted and not finished: ready, blocked or running.
    in_flight: usize,
    /// Their [`Job::bytes`].
    bytes: usize,
    /// Invocations dropped since the lane was made.
    dropped: u64,
    last_warning: Option<Instant>,
    stopping: bool,
}

impl Lane {
    pub(super) fn new(ordered: bool, max_bytes: usize) -> Lane {
        Lane {
            ordered,
            max_bytes,
            state: Mutex::new(LaneState::default()),
            work: Condvar::new(),
            idle: Condvar::new(),
        }
    }

    pub(super) fn submit(&self, job: Job) -> Result<(), Rejected> {
        let mut state = lock(&self.state);
        if state.stopping {
            return Err(Rejected::Stopping);
        }
        let bytes = job.bytes();
        if state.in_flight > 0 && state.bytes.saturating_add(bytes) > self.max_bytes {
            state.dropped += 1;
            let now = Instant::now();
            let quiet = state
                .last_warning
                .is_some_and(|at| now.duration_since(at) < DROP_WARNING_INTERVAL);
            if quiet {
                return Err(Rejected::Full { warn: None });
            }
            state.last_warning = Some(now);
            return Err(Rejected::Full {
                warn: Some(state.dropped),
            });
        }
        state.in_flight += 1;
        state.bytes += bytes;
        if self.ordered {
            match state.blocked.entry(job.script.clone()) {
                Entry::Occupied(mut waiting) => {
                    waiting.get_mut().push_back(job);
                    return Ok(());
                }
                Entry::Vacant(slot) => {
                    slot.insert(VecDeque::new());
                }
            }
        }
        state.ready.push_back(job);
        self.work.notify_one();
        Ok(())
    }

    /// The next job, or `None` once the lane stops.
    pub(super) fn take(&self) -> Option<Job> {
        self.next(lock(&self.state))
    }

    fn next(&self, mut state: MutexGuard<'_, LaneState>) -> Option<Job> {
        loop {
            if state.stopping {
                return None;
            }
            if let Some(job) = state.ready.pop_front() {
                return Some(job);
            }
            state = self
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Marks `job` finished and returns the worker's next one, as [`Lane::take`]. Its script's
    /// next invocation becomes ready behind those already waiting for a worker; when none are,
    /// this worker runs it at once, without waking another thread.
    pub(super) fn finish(&self, job: &Job) -> Option<Job> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        state.in_flight -= 1;
        state.bytes -= job.bytes();
        if let Some(waiting) = state.blocked.get_mut(&job.script) {
            match waiting.pop_front() {
                Some(next) => state.ready.push_back(next),
                None => {
                    state.blocked.remove(&job.script);
                }
            }
        }
        if state.in_flight == 0 {
            self.idle.notify_all();
        }
        if state.ready.len() > 1 {
            // More ready than this worker takes: make sure an idle one looks.
            self.work.notify_one();
        }
        self.next(guard)
    }

    /// Stops handing out jobs and discards the queued ones; returns how many.
    pub(super) fn stop(&self) -> usize {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        state.stopping = true;
        let discarded: Vec<Job> = state
            .ready
            .drain(..)
            .chain(state.blocked.drain().flat_map(|(_, jobs)| jobs))
            .collect();
        state.in_flight -= discarded.len();
        state.bytes -= discarded.iter().map(Job::bytes).sum::<usize>();
        self.work.notify_all();
        if state.in_flight == 0 {
            self.idle.notify_all();
        }
        discarded.len()
    }

    /// Waits until no job is running; false if `deadline` passed first.
    pub(super) fn wait_idle(&self, deadline: Instant) -> bool {
        let mut state = lock(&self.state);
        while state.in_flight > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .idle
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}
