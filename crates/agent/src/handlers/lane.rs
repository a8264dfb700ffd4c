//! The lanes between dispatch and the workers: a bounded queue that, when ordered, runs the
//! invocations of one script one at a time in arrival order.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use super::input::ScriptInput;
use super::lock;

pub(super) struct Job {
    pub(super) script: String,
    pub(super) input: Arc<ScriptInput>,
}

pub(super) enum Rejected {
    Full,
    Stopping,
}

/// A queue with its workers' hand-off. An ordered lane keeps, per script, at most one job in
/// `ready` or running; later ones wait in `blocked[script]` until it finishes.
pub(super) struct Lane {
    ordered: bool,
    pub(super) capacity: usize,
    state: Mutex<LaneState>,
    /// Signalled when a job becomes ready or the lane stops.
    work: Condvar,
    /// Signalled when `in_flight` drops to zero.
    idle: Condvar,
}

#[derive(Default)]
struct LaneState {
    ready: VecDeque<Job>,
    blocked: HashMap<String, VecDeque<Job>>,
    /// Jobs accepted and not finished: ready, blocked or running.
    in_flight: usize,
    stopping: bool,
}

impl Lane {
    pub(super) fn new(ordered: bool, capacity: usize) -> Lane {
        Lane {
            ordered,
            capacity,
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
        if state.in_flight >= self.capacity {
            return Err(Rejected::Full);
        }
        state.in_flight += 1;
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
        let mut state = lock(&self.state);
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

    pub(super) fn finish(&self, script: &str) {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        state.in_flight -= 1;
        if let Some(waiting) = state.blocked.get_mut(script) {
            match waiting.pop_front() {
                Some(next) => {
                    state.ready.push_back(next);
                    self.work.notify_one();
                }
                None => {
                    state.blocked.remove(script);
                }
            }
        }
        if state.in_flight == 0 {
            self.idle.notify_all();
        }
    }

    /// Stops handing out jobs and discards the queued ones; returns how many.
    pub(super) fn stop(&self) -> usize {
        let mut state = lock(&self.state);
        state.stopping = true;
        let discarded =
            state.ready.len() + state.blocked.values().map(VecDeque::len).sum::<usize>();
        state.ready.clear();
        state.blocked.clear();
        state.in_flight -= discarded;
        self.work.notify_all();
        discarded
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
