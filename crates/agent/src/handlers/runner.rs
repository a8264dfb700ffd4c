//! [`HandlerRunner`]: matches events against the specs, hands invocations to the event and
//! query lanes, runs them on worker threads with Go's logging and query answering, and shuts
//! down within a grace period.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::input::{DispatchContext, ScriptInput};
use super::lane::{Job, Lane, Rejected};
use super::process::{exit_error, run_script};
use super::spec::HandlerSpec;
use super::steps::{mark, Step};
use super::{lock, OUTPUT_LIMIT};
use crate::log::Logger;
use serf::api::Event;

/// Sizes of the runner; zero counts are treated as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerLimits {
    /// Invocations queued or running per lane before new ones are dropped.
    pub queue_capacity: usize,
    /// Scripts for member/user events running at once.
    pub event_workers: usize,
    /// Scripts for queries running at once.
    pub query_workers: usize,
    /// How long [`HandlerRunner::shutdown`] waits for running scripts before killing them.
    pub shutdown_grace: Duration,
}

impl Default for RunnerLimits {
    /// 4096 pending per lane (a minute's backlog at 200 events/s against a script that manages
    /// 150), 4 + 4 processes at once, 5 s to finish at shutdown.
    fn default() -> RunnerLimits {
        RunnerLimits {
            queue_capacity: 4096,
            event_workers: 4,
            query_workers: 4,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Runs handler scripts on its own threads; see the module documentation for the scheduling.
/// Dropping it shuts it down.
pub struct HandlerRunner {
    shared: Arc<Shared>,
    workers: Mutex<Workers>,
    limits: RunnerLimits,
}

/// The worker threads, started by the first invocation so an agent without handlers runs none.
#[derive(Default)]
struct Workers {
    handles: Vec<JoinHandle<()>>,
    started: bool,
    stopped: bool,
}

impl HandlerRunner {
    pub fn new(specs: Vec<HandlerSpec>, log: Logger, limits: RunnerLimits) -> HandlerRunner {
        let capacity = limits.queue_capacity.max(1);
        HandlerRunner {
            shared: Arc::new(Shared {
                specs: Mutex::new(Arc::new(specs)),
                events: Lane::new(true, capacity),
                queries: Lane::new(false, capacity),
                kill: AtomicBool::new(false),
                log,
            }),
            workers: Mutex::new(Workers::default()),
            limits,
        }
    }

    /// Starts both lanes' workers unless they run already (or the runner has stopped).
    fn start_workers(&self) -> io::Result<()> {
        let mut workers = lock(&self.workers);
        if workers.started || workers.stopped {
            return Ok(());
        }
        workers.started = true;
        for (queries, count) in [
            (false, self.limits.event_workers.max(1)),
            (true, self.limits.query_workers.max(1)),
        ] {
            for i in 0..count {
                let shared = self.shared.clone();
                let name = format!("serf-{}-{i}", if queries { "query" } else { "handler" });
                // Workers already started serve the lanes; shutdown joins them.
                let handle = thread::Builder::new()
                    .name(name)
                    .spawn(move || shared.work(queries))?;
                workers.handles.push(handle);
            }
        }
        Ok(())
    }

    /// Enqueues the scripts whose filters match; never blocks on a script. Call it with events
    /// after coalescing, as Go's agent does. Returns how many invocations were dropped because
    /// their lane was full.
    pub fn dispatch(&self, event: &Event, ctx: DispatchContext) -> u64 {
        let specs = lock(&self.shared.specs).clone();
        let scripts: Vec<&str> = specs
            .iter()
            .filter(|spec| spec.filter.matches(event))
            .map(|spec| spec.script.as_str())
            .collect();
        if scripts.is_empty() {
            return 0;
        }
        let Some(input) = ScriptInput::new(event, ctx) else {
            return 0;
        };
        if let Err(e) = self.start_workers() {
            self.shared
                .log
                .error(format!("agent: Failed to start event handler threads: {e}"));
        }
        let input = Arc::new(input);
        let lane = if input.query.is_some() {
            &self.shared.queries
        } else {
            &self.shared.events
        };
        let mut dropped = 0;
        for script in scripts {
            let job = Job {
                script: script.to_string(),
                input: input.clone(),
            };
            match lane.submit(job) {
                Ok(()) => mark(Step::Queued),
                Err(Rejected::Full) => {
                    dropped += 1;
                    self.shared.log.warn(format!(
                        "agent: Dropping event '{}' for script '{script}': {} handler \
                         invocations already pending",
                        input.event_type, lane.capacity
                    ));
                }
                Err(Rejected::Stopping) => self.shared.log.debug(format!(
                    "agent: Not invoking script '{script}' for event '{}': shutting down",
                    input.event_type
                )),
            }
        }
        dropped
    }

    /// Replaces the handler list (SIGHUP). Invocations already queued keep their script.
    pub fn reload(&self, specs: Vec<HandlerSpec>) {
        *lock(&self.shared.specs) = Arc::new(specs);
    }

    /// Discards queued invocations, waits up to the grace period for running scripts, kills the
    /// process groups of those still running, and joins every worker. Later dispatches are
    /// ignored; calling it again does nothing.
    pub fn shutdown(&self) {
        let workers = {
            let mut workers = lock(&self.workers);
            if workers.stopped {
                return;
            }
            workers.stopped = true;
            std::mem::take(&mut workers.handles)
        };
        let shared = &self.shared;
        let discarded = shared.events.stop() + shared.queries.stop();
        if discarded > 0 {
            shared.log.warn(format!(
                "agent: Discarding {discarded} pending event handler invocations at shutdown"
            ));
        }
        if workers.is_empty() {
            return;
        }
        let grace = self.limits.shutdown_grace;
        let deadline = Instant::now() + grace;
        let events_idle = shared.events.wait_idle(deadline);
        if !(events_idle && shared.queries.wait_idle(deadline)) {
            shared.log.warn(format!(
                "agent: Killing event handler scripts still running after {grace:?}"
            ));
            shared.kill.store(true, Ordering::Release);
        }
        for worker in workers {
            let _ = worker.join();
        }
    }
}

impl Drop for HandlerRunner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// State shared by the runner handle and its workers.
struct Shared {
    specs: Mutex<Arc<Vec<HandlerSpec>>>,
    events: Lane,
    queries: Lane,
    /// Set when the shutdown grace expired: supervisors kill their scripts and return.
    kill: AtomicBool,
    log: Logger,
}

impl Shared {
    fn work(&self, queries: bool) {
        let lane = if queries { &self.queries } else { &self.events };
        while let Some(job) = lane.take() {
            mark(Step::Taken);
            let started = Instant::now();
            self.invoke(&job);
            // HashiCorp's timer of each handler run, named after the script, in ms.
            metrics::histogram!(format!("agent.invoke.{}", job.script))
                .record(started.elapsed().as_secs_f64() * 1000.0);
            mark(Step::Handled);
            lane.finish(&job.script);
            mark(Step::Finished);
        }
    }

    /// One invocation with Go's logging and query answering (`invokeEventScript`).
    fn invoke(&self, job: &Job) {
        let (input, script, log) = (&job.input, &job.script, &self.log);
        let finished = match run_script(script, input, &self.kill, log) {
            Ok(finished) => finished,
            Err(err) => {
                log.error(format!("agent: Error invoking script '{script}': {err}"));
                return;
            }
        };
        let output = &finished.output;
        if output.total > OUTPUT_LIMIT as u64 {
            log.warn(format!(
                "agent: Script '{script}' generated {} bytes of output, truncated to {OUTPUT_LIMIT}",
                output.total
            ));
        }
        let bytes = output.bytes();
        log.debug(format!(
            "agent: Event '{}' script output: {}",
            input.event_type,
            String::from_utf8_lossy(&bytes)
        ));
        if !finished.status.success() {
            log.error(format!(
                "agent: Error invoking script '{script}': {}",
                exit_error(finished.status)
            ));
            return;
        }
        if let Some(query) = &input.query {
            if let (Some(respond), true) = (&query.responder, output.total > 0) {
                if let Err(err) = respond(&bytes) {
                    log.warn(format!(
                        "agent: Failed to respond to query 'query: {}': {err}",
                        query.name
                    ));
                }
            }
        }
    }
}
