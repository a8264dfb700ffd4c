//! Timestamps of the steps of each invocation, for the lane timing test (`lane_steps` in
//! tests.rs, ignored by default). They are only recorded in test builds while that test
//! collects them; in the agent [`mark`] compiles to nothing.

/// A point in the life of one invocation, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// `dispatch` queued it.
    Queued,
    /// A worker took it from the lane.
    Taken,
    /// The command is built (environment, pipes); `posix_spawn` is next.
    Spawning,
    /// `posix_spawn` returned.
    Spawned,
    /// The script's output reached end-of-file.
    OutputClosed,
    /// The shell's exit status is in hand.
    Exited,
    /// Logged and measured; the lane is told next, and the worker takes its next job.
    Handled,
}

#[cfg(test)]
pub(super) use collect::{collecting, mark};

#[cfg(test)]
mod collect {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use std::time::Instant;

    use super::super::lock;
    use super::Step;

    static ON: AtomicBool = AtomicBool::new(false);
    static MARKS: Mutex<Vec<(Step, Instant)>> = Mutex::new(Vec::new());

    pub(in crate::handlers) fn mark(step: Step) {
        if ON.load(Ordering::Relaxed) {
            lock(&MARKS).push((step, Instant::now()));
        }
    }

    /// Records marks while `run` runs and returns them in the order they were made.
    pub(in crate::handlers) fn collecting(run: impl FnOnce()) -> Vec<(Step, Instant)> {
        lock(&MARKS).clear();
        ON.store(true, Ordering::Relaxed);
        run();
        ON.store(false, Ordering::Relaxed);
        std::mem::take(&mut *lock(&MARKS))
    }
}

#[cfg(not(test))]
#[inline(always)]
pub(super) fn mark(_: Step) {}
