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
use crate::filter::EventFilter;
use crate::log::Logger;
use serf::api::Event;

/// Sizes of the runner; zero counts are treated as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerLimits {
    /// Bytes that invocations queued or running may hold per lane (their scripts, environments
    /// and stdin) before new ones are dropped. A lane with nothing pending takes any one.
    pub queue_bytes: usize,
    /// Scripts for member/user events running at once.
    pub event_workers: usize,
    /// Scripts for queries running at once.
    pub query_workers: usize,
    /// How long [`HandlerRunner::shutdown`] waits for running scripts before killing them.
    pub shutdown_grace: Duration,
}

/// The default of [`RunnerLimits::queue_bytes`] (and of the agent's
/// `event_handler_queue_bytes`): 128 MiB per lane, some 300,000 invocations of a user event with
/// a small payload, over 20 minutes of backlog at 200 events/s. Past it the agent would rather
/// drop (and count) than grow.
pub const DEFAULT_QUEUE_BYTES: usize = 128 * 1024 * 1024;

impl Default for RunnerLimits {
    /// [`DEFAULT_QUEUE_BYTES`] pending per lane, 4 + 4 processes at once, 5 s to finish at
    /// shutdown.
    fn default() -> RunnerLimits {
        RunnerLimits {
            queue_bytes: DEFAULT_QUEUE_BYTES,
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
        HandlerRunner {
            shared: Arc::new(Shared {
                handlers: Mutex::new(handlers(specs)),
                events: Lane::new(true, limits.queue_bytes),
                queries: Lane::new(false, limits.queue_bytes),
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
    /// their lane was full; the first drop, and then one every
    /// [`DROP_WARNING_INTERVAL`](super::lane::DROP_WARNING_INTERVAL) at most, is logged at WARN
    /// with the lane's running total.
    pub fn dispatch(&self, event: &Event, ctx: DispatchContext) -> u64 {
        let handlers = lock(&self.shared.handlers).clone();
        let scripts: Vec<&Arc<str>> = handlers
            .iter()
            .filter(|(filter, _)| filter.matches(event))
            .map(|(_, script)| script)
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
        let (lane, lane_name) = if input.query.is_some() {
            (&self.shared.queries, "queries")
        } else {
            (&self.shared.events, "member and user events")
        };
        let mut dropped = 0;
        for script in scripts {
            let job = Job {
                script: script.clone(),
                input: input.clone(),
            };
            match lane.submit(job) {
                Ok(()) => mark(Step::Queued),
                Err(Rejected::Full { warn }) => {
                    dropped += 1;
                    if let Some(total) = warn {
                        self.shared.log.warn(format!(
                            "agent: Event handler queue for {lane_name} full ({} bytes): \
                             dropping event '{}' for script '{script}' and others until it \
                             drains; {total} dropped so far",
                            lane.max_bytes, input.event_type
                        ));
                    }
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
        *lock(&self.shared.handlers) = handlers(specs);
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

/// The specs with their scripts shared, so that queueing an invocation copies no string.
type Handlers = Arc<Vec<(EventFilter, Arc<str>)>>;

fn handlers(specs: Vec<HandlerSpec>) -> Handlers {
    Arc::new(
        specs
            .into_iter()
            .map(|spec| (spec.filter, Arc::from(spec.script)))
            .collect(),
    )
}

/// State shared by the runner handle and its workers.
struct Shared {
    handlers: Mutex<Handlers>,
    events: Lane,
    queries: Lane,
    /// Set when the shutdown grace expired: supervisors kill their scripts and return.
    kill: AtomicBool,
    log: Logger,
}

impl Shared {
    fn work(&self, queries: bool) {
        let lane = if queries { &self.queries } else { &self.events };
        let mut next = lane.take();
        while let Some(job) = next {
            mark(Step::Taken);
            let started = Instant::now();
            self.invoke(&job);
            // HashiCorp's timer of each handler run, named after the script, in ms.
            metrics::histogram!(format!("agent.invoke.{}", job.script))
                .record(started.elapsed().as_secs_f64() * 1000.0);
            mark(Step::Handled);
            next = lane.finish(&job);
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
