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
//!   bound on invocations queued or running; beyond it an invocation is dropped, logged at WARN
//!   and counted (the return value of [`HandlerRunner::dispatch`]) rather than blocking the
//!   caller.
//! * A spec whose filter lists several matching elements (`user,user:deploy=x.sh`) runs once per
//!   event; Go expanded it into one script per element and ran it once per matching element.
//! * Scripts run in their own process group so [`HandlerRunner::shutdown`] can kill whatever a
//!   hung script started (Go never killed handlers). The flip side: a terminal's Ctrl-C reaches
//!   the agent but not its handlers.
//! * After the shell exits, output is read for at most [`OUTPUT_GRACE`] more: a background
//!   process that keeps the pipe open no longer stalls the handler forever as it did in Go.
//!
//! Writing stdin relies on SIGPIPE being ignored, as Rust's runtime arranges for the agent
//! binary; a script that exits without reading its stdin then yields `EPIPE`, not a signal.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::{self, PipeReader, Read, Write as _};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::filter::{EventFilter, FilterError};
use super::log::Logger;
use serf::api::{Event, Member, Tags};

/// How much of a script's combined stdout/stderr is kept (Go's `maxBufSize`), so a runaway
/// script cannot grow the agent's memory.
pub const OUTPUT_LIMIT: usize = 8 * 1024;
/// When a still-running script earns a WARN (Go's `warnSlow`).
pub const SLOW_WARNING: Duration = Duration::from_secs(1);
/// How long output is still collected after the shell exits, for processes it left behind that
/// hold the pipe open.
pub const OUTPUT_GRACE: Duration = Duration::from_millis(250);
/// The longest a script's supervisor sleeps before re-checking exit, the slow timer and kills.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const SHELL: &str = "/bin/sh";

/// One `-event-handler` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerSpec {
    pub filter: EventFilter,
    /// Passed verbatim to `/bin/sh -c`; may be empty (Go accepts that too; it does nothing).
    pub script: String,
}

/// A spec with an invalid filter element; the message is the one HashiCorp's agent prints
/// before exiting at startup (`Invalid event script: Event 'foo' invoking 'x.sh'`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid event script: Event '{element}' invoking '{script}'")]
pub struct HandlerSpecError {
    pub element: String,
    pub script: String,
}

impl HandlerSpec {
    /// Go's `ParseEventScript` + `Valid`: no `=` means "all events"; otherwise the text before
    /// the first `=` must be a valid filter.
    pub fn parse(spec: &str) -> Result<HandlerSpec, HandlerSpecError> {
        let (filter, script) = spec.split_once('=').unwrap_or(("", spec));
        let filter = EventFilter::parse(filter).map_err(|FilterError::Invalid { element }| {
            HandlerSpecError {
                element,
                script: script.to_string(),
            }
        })?;
        Ok(HandlerSpec {
            filter,
            script: script.to_string(),
        })
    }
}

/// Answers a query with a script's output. It may be called by several scripts matching the
/// same query (as Go's `Query.Respond` could be); the serf core accepts the first answer and
/// reports later ones as errors, which are logged. A failure such as an oversized answer does
/// not use the query up, so another script may still answer.
pub type Responder = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// What a dispatch needs besides the event: the local node as it is now (Go calls `SelfFunc`
/// per event), and for queries the way to answer.
pub struct DispatchContext {
    pub local_name: String,
    pub local_tags: Tags,
    /// Ignored for non-query events; `None` for a query means scripts run but cannot answer.
    pub responder: Option<Responder>,
}

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
                Ok(()) => {}
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
            let started = Instant::now();
            self.invoke(&job);
            // HashiCorp's timer of each handler run, named after the script, in ms.
            metrics::histogram!(format!("agent.invoke.{}", job.script))
                .record(started.elapsed().as_secs_f64() * 1000.0);
            lane.finish(&job.script);
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

/// Everything a script of one event gets, built once per dispatch and shared by its scripts.
struct ScriptInput {
    /// `SERF_EVENT`'s value, also used in log lines.
    event_type: &'static str,
    env: Vec<(String, String)>,
    stdin: Vec<u8>,
    /// Stdin is a user/query payload: Go logs failures to write those, not member lines.
    is_payload: bool,
    query: Option<QueryTarget>,
}

struct QueryTarget {
    name: String,
    responder: Option<Responder>,
}

impl ScriptInput {
    /// `None` for events HashiCorp's handlers never see (shutdown).
    fn new(event: &Event, ctx: DispatchContext) -> Option<ScriptInput> {
        let (event_type, stdin, is_payload) = match event {
            Event::Member { kind, members } => (kind.as_str(), member_stdin(members), false),
            Event::User(user) => ("user", payload_stdin(&user.payload), true),
            Event::Query(query) => ("query", payload_stdin(&query.payload), true),
            Event::Shutdown { .. } => return None,
        };
        let role = ctx.local_tags.get("role").cloned().unwrap_or_default();
        let mut env = vec![
            ("SERF_EVENT".to_string(), event_type.to_string()),
            ("SERF_SELF_NAME".to_string(), ctx.local_name),
            ("SERF_SELF_ROLE".to_string(), role),
        ];
        env.extend(
            ctx.local_tags
                .iter()
                .map(|(key, value)| (tag_env_name(key), value.clone())),
        );
        let mut query = None;
        match event {
            Event::User(user) => {
                env.push(("SERF_USER_EVENT".to_string(), user.name.clone()));
                env.push(("SERF_USER_LTIME".to_string(), user.ltime.to_string()));
            }
            Event::Query(q) => {
                env.push(("SERF_QUERY_NAME".to_string(), q.name.clone()));
                env.push(("SERF_QUERY_LTIME".to_string(), q.ltime.to_string()));
                query = Some(QueryTarget {
                    name: q.name.clone(),
                    responder: ctx.responder,
                });
            }
            Event::Member { .. } | Event::Shutdown { .. } => {}
        }
        Some(ScriptInput {
            event_type,
            env,
            stdin,
            is_payload,
            query,
        })
    }
}

/// `SERF_TAG_` + the key upper-cased with everything outside `[A-Z0-9_]` replaced by `_`, one
/// `_` per character. Upper-casing is Go's per-character `unicode.ToUpper`, under which only
/// ASCII letters, `ı` and `ſ` land in `A-Z` (so `ß` becomes `_`, not `SS`).
fn tag_env_name(key: &str) -> String {
    let sanitized: String = key
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' | '_' => c,
            'ı' => 'I',
            'ſ' => 'S',
            _ => '_',
        })
        .collect();
    format!("SERF_TAG_{sanitized}")
}

/// One `name\tip\trole\ttags\n` line per member (Go's `memberEventStdin`); tags are `k=v`
/// joined by `,` in key order (Go used random map order).
fn member_stdin(members: &[Member]) -> Vec<u8> {
    let mut out = String::new();
    for member in members {
        let tags: Vec<String> = member
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let role = member.tags.get("role").map_or("", String::as_str);
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}",
            escape_field(&member.name),
            go_ip(member.addr),
            escape_field(role),
            escape_field(&tags.join(","))
        );
    }
    out.into_bytes()
}

/// Go's `eventClean`: TAB and LF become the two-character sequences `\t` and `\n`.
fn escape_field(value: &str) -> String {
    value.replace('\t', "\\t").replace('\n', "\\n")
}

/// Go's `net.IP.String`, which prints IPv4-mapped IPv6 addresses as plain IPv4.
fn go_ip(addr: IpAddr) -> String {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The payload with a `\n` appended if non-empty and missing, as most shells' `read` needs it.
fn payload_stdin(payload: &[u8]) -> Vec<u8> {
    let mut out = payload.to_vec();
    if out.last().is_some_and(|&b| b != b'\n') {
        out.push(b'\n');
    }
    out
}

/// Go's `exec.ExitError` text: `exit status 2`, `signal: killed`.
fn exit_error(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let Some(signal) = status.signal() else {
        return status.to_string();
    };
    let name = match signal {
        libc::SIGHUP => "hangup".to_string(),
        libc::SIGINT => "interrupt".to_string(),
        libc::SIGQUIT => "quit".to_string(),
        libc::SIGILL => "illegal instruction".to_string(),
        libc::SIGTRAP => "trace/breakpoint trap".to_string(),
        libc::SIGABRT => "aborted".to_string(),
        libc::SIGBUS => "bus error".to_string(),
        libc::SIGFPE => "floating point exception".to_string(),
        libc::SIGKILL => "killed".to_string(),
        libc::SIGSEGV => "segmentation fault".to_string(),
        libc::SIGPIPE => "broken pipe".to_string(),
        libc::SIGALRM => "alarm clock".to_string(),
        libc::SIGTERM => "terminated".to_string(),
        other => format!("signal {other}"),
    };
    let core = if status.core_dumped() {
        " (core dumped)"
    } else {
        ""
    };
    format!("signal: {name}{core}")
}

/// The last [`OUTPUT_LIMIT`] bytes written, and how many were written in all.
#[derive(Default)]
struct OutputRing {
    kept: VecDeque<u8>,
    total: u64,
}

impl OutputRing {
    fn write(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let tail = &bytes[bytes.len().saturating_sub(OUTPUT_LIMIT)..];
        self.kept.extend(tail);
        let excess = self.kept.len().saturating_sub(OUTPUT_LIMIT);
        self.kept.drain(..excess);
    }

    fn bytes(&self) -> Vec<u8> {
        self.kept.iter().copied().collect()
    }
}

struct Finished {
    status: ExitStatus,
    output: OutputRing,
}

/// Spawns the script and supervises it to the end; on an internal error it is killed first.
fn run_script(
    script: &str,
    input: &ScriptInput,
    kill: &AtomicBool,
    log: &Logger,
) -> io::Result<Finished> {
    let (output, writer) = io::pipe()?;
    let mut command = Command::new(SHELL);
    command
        .arg("-c")
        .arg(script)
        .envs(input.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    let spawned = command.spawn();
    // `command` holds our copies of the pipe's write end; end-of-file only arrives once they are
    // closed too.
    drop(command);
    let mut child = spawned?;
    let stdin = child.stdin.take().filter(|_| !input.stdin.is_empty());
    let result = supervise(&mut child, stdin, output, script, input, kill, log);
    if result.is_err() {
        kill_group(&child);
        let _ = child.wait();
    }
    result
}

/// Feeds stdin and collects output without blocking on either, so that the slow warning, the
/// shutdown kill and the exit of the shell are noticed within [`POLL_INTERVAL`].
fn supervise(
    child: &mut Child,
    mut stdin: Option<ChildStdin>,
    mut output: PipeReader,
    script: &str,
    input: &ScriptInput,
    kill: &AtomicBool,
    log: &Logger,
) -> io::Result<Finished> {
    if let Some(pipe) = &stdin {
        set_nonblocking(pipe)?;
    }
    let started = Instant::now();
    let mut ring = OutputRing::default();
    let mut written = 0;
    let mut output_open = true;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut slow_warned = false;
    // The shell's exit follows the end of its output within microseconds: look again soon, so
    // a lane of quick scripts is not paced by this sleep.
    let mut idle_sleep = Duration::from_micros(50);
    let mut buf = [0u8; 4096];
    loop {
        if kill.load(Ordering::Acquire) {
            let status = match exited {
                Some((status, _)) => status,
                None => {
                    kill_group(child);
                    child.wait()?
                }
            };
            return Ok(Finished {
                status,
                output: ring,
            });
        }
        if exited.is_none() {
            if let Some(status) = child.try_wait()? {
                exited = Some((status, Instant::now()));
                stdin = None;
            }
        }
        if let Some((status, at)) = exited {
            if !output_open || at.elapsed() >= OUTPUT_GRACE {
                return Ok(Finished {
                    status,
                    output: ring,
                });
            }
        }
        if !slow_warned && started.elapsed() >= SLOW_WARNING {
            slow_warned = true;
            log.warn(format!(
                "agent: Script '{script}' slow, execution exceeding {SLOW_WARNING:?}"
            ));
        }

        let mut fds = Vec::with_capacity(2);
        if output_open {
            fds.push(pollfd(output.as_raw_fd(), libc::POLLIN));
        }
        if let Some(pipe) = &stdin {
            fds.push(pollfd(pipe.as_raw_fd(), libc::POLLOUT));
        }
        if fds.is_empty() {
            // Output closed but the shell still runs: nothing to wait on but its exit.
            thread::sleep(idle_sleep);
            idle_sleep = (idle_sleep * 2).min(POLL_INTERVAL);
            continue;
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call.
        let ready = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                POLL_INTERVAL.as_millis() as libc::c_int,
            )
        };
        if ready < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let mut fds = fds.iter();
        if output_open && fds.next().is_some_and(|fd| fd.revents != 0) {
            match output.read(&mut buf) {
                Ok(0) => output_open = false,
                Ok(n) => ring.write(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => output_open = false,
            }
        }
        let stdin_ready = fds.next().is_some_and(|fd| fd.revents != 0);
        if let (Some(pipe), true) = (&mut stdin, stdin_ready) {
            match pipe.write(&input.stdin[written..]) {
                Ok(n) => {
                    written += n;
                    if written == input.stdin.len() {
                        stdin = None;
                    }
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => {
                    if input.is_payload {
                        log.error(format!("Error writing payload: {err}"));
                    }
                    stdin = None;
                }
            }
        }
    }
}

fn pollfd(fd: libc::c_int, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Lets the supervisor write stdin in pieces as the script reads it.
fn set_nonblocking(pipe: &ChildStdin) -> io::Result<()> {
    let fd = pipe.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, only adding a status flag.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// SIGKILL to the script's whole process group (it leads it: `process_group(0)`). The shell is
/// not yet reaped when this is called, so its id cannot have been reused.
fn kill_group(child: &Child) {
    // SAFETY: plain syscall; a negative pid addresses the process group.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Job {
    script: String,
    input: Arc<ScriptInput>,
}

enum Rejected {
    Full,
    Stopping,
}

/// A queue with its workers' hand-off. An ordered lane keeps, per script, at most one job in
/// `ready` or running; later ones wait in `blocked[script]` until it finishes.
struct Lane {
    ordered: bool,
    capacity: usize,
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
    fn new(ordered: bool, capacity: usize) -> Lane {
        Lane {
            ordered,
            capacity,
            state: Mutex::new(LaneState::default()),
            work: Condvar::new(),
            idle: Condvar::new(),
        }
    }

    fn submit(&self, job: Job) -> Result<(), Rejected> {
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
    fn take(&self) -> Option<Job> {
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

    fn finish(&self, script: &str) {
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
    fn stop(&self) -> usize {
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
    fn wait_idle(&self, deadline: Instant) -> bool {
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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;

    use crossbeam_channel::Receiver;

    use super::*;
    use crate::log::{Level, Subscription};
    use serf::api::{MemberEventType, MemberStatus, QueryEvent, UserEvent};

    /// Every wait in these tests ends by this bound at the latest.
    const WAIT: Duration = Duration::from_secs(5);

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn member(name: &str, addr: IpAddr, pairs: &[(&str, &str)]) -> Member {
        Member {
            name: name.into(),
            addr,
            port: 7946,
            tags: tags(pairs),
            status: MemberStatus::Alive,
            protocol: [1, 5, 2],
            delegate: [2, 5, 4],
        }
    }

    fn join(members: Vec<Member>) -> Event {
        Event::Member {
            kind: MemberEventType::Join,
            members,
        }
    }

    fn user(name: &str, payload: &[u8]) -> Event {
        Event::User(UserEvent {
            ltime: 1,
            name: name.into(),
            payload: payload.to_vec(),
            coalesce: true,
        })
    }

    fn query(name: &str, payload: &[u8]) -> Event {
        Event::Query(QueryEvent {
            ltime: 42,
            id: 9,
            name: name.into(),
            payload: payload.to_vec(),
            source: "asker".into(),
            deadline: Instant::now() + WAIT,
        })
    }

    fn ctx(responder: Option<Responder>) -> DispatchContext {
        DispatchContext {
            local_name: "ourname".into(),
            local_tags: tags(&[("role", "ourrole"), ("dc", "east-aws"), ("bad-tag", "bad")]),
            responder,
        }
    }

    /// A responder that forwards answers to a channel and reports `result`.
    fn responder(result: Result<(), String>) -> (Responder, Receiver<Vec<u8>>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let respond: Responder = Arc::new(move |bytes: &[u8]| {
            let _ = tx.send(bytes.to_vec());
            result.clone()
        });
        (respond, rx)
    }

    fn specs(texts: &[&str]) -> Vec<HandlerSpec> {
        texts
            .iter()
            .map(|t| HandlerSpec::parse(t).unwrap())
            .collect()
    }

    fn limits(event_workers: usize, query_workers: usize, grace_ms: u64) -> RunnerLimits {
        RunnerLimits {
            queue_capacity: 16,
            event_workers,
            query_workers,
            shutdown_grace: Duration::from_millis(grace_ms),
        }
    }

    /// The log lines a runner produced, kept so that waiting for one does not lose others.
    struct Lines {
        sub: Subscription,
        seen: Vec<String>,
    }

    impl Lines {
        fn wait(&mut self, needle: &str) -> String {
            if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let deadline = Instant::now() + WAIT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(line) = self.sub.lines.recv_timeout(left) else {
                    panic!("no log line containing {needle:?}; saw {:#?}", self.seen);
                };
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        }

        fn drain(&mut self) -> &[String] {
            self.seen.extend(self.sub.lines.try_iter());
            &self.seen
        }
    }

    fn runner(texts: &[&str], limits: RunnerLimits) -> (HandlerRunner, Lines) {
        let log = Logger::new(Level::Err, vec![]);
        let lines = Lines {
            sub: log.subscribe(Level::Trace),
            seen: Vec::new(),
        };
        (HandlerRunner::new(specs(texts), log, limits), lines)
    }

    /// A path in the temp directory, unique per process and test, removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(tag: &str) -> TempPath {
            let name = format!("serf-handlers-{}-{tag}", std::process::id());
            TempPath(std::env::temp_dir().join(name))
        }

        fn shell(&self) -> String {
            self.0.display().to_string()
        }

        /// Waits for the file (scripts write `<path>.part` and rename it) and returns it.
        fn wait(&self) -> String {
            let deadline = Instant::now() + WAIT;
            loop {
                if let Ok(text) = std::fs::read_to_string(&self.0) {
                    return text;
                }
                assert!(Instant::now() < deadline, "{} never appeared", self.shell());
                thread::sleep(Duration::from_millis(10));
            }
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            let _ = std::fs::remove_file(self.0.with_extension("part"));
        }
    }

    /// Gone or a zombie (which a container's init may never reap).
    fn process_gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    fn wait_gone(pid: u32) -> bool {
        let deadline = Instant::now() + WAIT;
        while !process_gone(pid) {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }

    #[test]
    fn specs_parse_like_gos_parse_event_script() {
        // TestParseEventScript (event_handler_test.go, v0.9.4) plus the `=` cases.
        for (text, filter, script) in [
            ("script.sh", "*", "script.sh"),
            ("member-join=script.sh", "member-join", "script.sh"),
            (
                "member-join,member-leave=x.sh",
                "member-join,member-leave",
                "x.sh",
            ),
            ("user:deploy=script.sh", "user:deploy", "script.sh"),
            ("query:load=uptime", "query:load", "uptime"),
            ("query=script.sh", "query", "script.sh"),
            ("=x.sh", "*", "x.sh"),
            ("*=FOO=1 ./x.sh", "*", "FOO=1 ./x.sh"),
            ("user=a=b", "user", "a=b"),
            ("member-join=", "member-join", ""),
        ] {
            let spec = HandlerSpec::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(spec.filter.to_string(), filter, "{text:?}");
            assert_eq!(spec.script, script, "{text:?}");
        }
    }

    #[test]
    fn invalid_specs_fail_with_gos_startup_message() {
        for (text, message) in [
            (
                "foo,bar=script.sh",
                "Invalid event script: Event 'foo' invoking 'script.sh'",
            ),
            (
                "foo,user:blah,bar,query:tubez=script.sh",
                "Invalid event script: Event 'foo' invoking 'script.sh'",
            ),
            // Split at the first `=` whatever follows, as Go does.
            (
                "FOO=1 ./x.sh",
                "Invalid event script: Event 'FOO' invoking '1 ./x.sh'",
            ),
            (
                "user:deploy,Member-join=x.sh",
                "Invalid event script: Event 'Member-join' invoking 'x.sh'",
            ),
        ] {
            let err = HandlerSpec::parse(text).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn tag_env_names_are_sanitized_like_go() {
        for (key, name) in [
            ("dc", "SERF_TAG_DC"),
            ("role-name", "SERF_TAG_ROLE_NAME"),
            ("bad-tag", "SERF_TAG_BAD_TAG"),
            ("a.b c", "SERF_TAG_A_B_C"),
            ("Mixed_Case9", "SERF_TAG_MIXED_CASE9"),
            ("ıd", "SERF_TAG_ID"),
            ("straße", "SERF_TAG_STRA_E"),
            ("日本", "SERF_TAG___"),
            ("", "SERF_TAG_"),
        ] {
            assert_eq!(tag_env_name(key), name, "{key:?}");
        }
    }

    #[test]
    fn environment_per_event_kind() {
        let env = |event: &Event| -> HashMap<String, String> {
            ScriptInput::new(event, ctx(None))
                .unwrap()
                .env
                .into_iter()
                .collect()
        };
        let common = [
            ("SERF_SELF_NAME", "ourname"),
            ("SERF_SELF_ROLE", "ourrole"),
            ("SERF_TAG_ROLE", "ourrole"),
            ("SERF_TAG_DC", "east-aws"),
            ("SERF_TAG_BAD_TAG", "bad"),
        ];
        let cases = [
            (join(vec![]), vec![("SERF_EVENT", "member-join")]),
            (
                user("deploy", b""),
                vec![
                    ("SERF_EVENT", "user"),
                    ("SERF_USER_EVENT", "deploy"),
                    ("SERF_USER_LTIME", "1"),
                ],
            ),
            (
                query("load", b""),
                vec![
                    ("SERF_EVENT", "query"),
                    ("SERF_QUERY_NAME", "load"),
                    ("SERF_QUERY_LTIME", "42"),
                ],
            ),
        ];
        for (event, specific) in cases {
            let want: HashMap<String, String> = common
                .iter()
                .chain(&specific)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(env(&event), want, "{event:?}");
        }
        let mut no_role = ctx(None);
        no_role.local_tags.clear();
        let input = ScriptInput::new(&user("x", b""), no_role).unwrap();
        assert!(input
            .env
            .contains(&("SERF_SELF_ROLE".into(), String::new())));
        let shutdown = Event::Shutdown {
            reason: "conflict".into(),
        };
        assert!(ScriptInput::new(&shutdown, ctx(None)).is_none());
    }

    #[test]
    fn member_lines_escape_tabs_and_newlines() {
        let members = vec![
            member(
                "foo",
                IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
                &[("role", "bar"), ("foo", "bar")],
            ),
            member(
                "we\tird\nname",
                IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()),
                &[("role", "a\tb"), ("x", "1\n2")],
            ),
            member("v6", IpAddr::V6(Ipv6Addr::LOCALHOST), &[]),
        ];
        assert_eq!(
            String::from_utf8(member_stdin(&members)).unwrap(),
            "foo\t1.2.3.4\tbar\tfoo=bar,role=bar\n\
             we\\tird\\nname\t10.0.0.1\ta\\tb\trole=a\\tb,x=1\\n2\n\
             v6\t::1\t\t\n"
        );
    }

    #[test]
    fn payload_gets_a_newline_only_when_missing() {
        assert_eq!(payload_stdin(b""), b"");
        assert_eq!(payload_stdin(b"foobar"), b"foobar\n");
        assert_eq!(payload_stdin(b"foobar\n"), b"foobar\n");
        assert_eq!(payload_stdin(b"a\nb"), b"a\nb\n");
    }

    #[test]
    fn exit_errors_read_like_gos() {
        assert_eq!(exit_error(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(
            exit_error(ExitStatus::from_raw(libc::SIGKILL)),
            "signal: killed"
        );
        assert_eq!(
            exit_error(ExitStatus::from_raw(libc::SIGSEGV | 0x80)),
            "signal: segmentation fault (core dumped)"
        );
    }

    #[test]
    fn ring_keeps_the_last_8_kib() {
        let mut ring = OutputRing::default();
        ring.write(b"abc");
        assert_eq!(ring.bytes(), b"abc");
        let big: Vec<u8> = (0..20 * 1024).map(|i| (i % 251) as u8).collect();
        ring.write(&big[..5000]);
        ring.write(&big[5000..]);
        assert_eq!(ring.total, 3 + big.len() as u64);
        assert_eq!(ring.bytes(), &big[big.len() - OUTPUT_LIMIT..]);
        ring.write(&big);
        assert_eq!(ring.bytes(), &big[big.len() - OUTPUT_LIMIT..]);
    }

    #[test]
    fn member_script_sees_env_and_stdin() {
        // Go's TestScriptEventHandler, and the agent's environment is inherited.
        let out = TempPath::new("member-env");
        let script = format!(
            "{{ echo $SERF_SELF_NAME $SERF_SELF_ROLE; echo $SERF_TAG_DC; echo $SERF_TAG_BAD_TAG; \
             echo $SERF_EVENT $SERF_USER_EVENT; echo \"$PATH\"; cat; }} > {0}.part && mv {0}.part {0}",
            out.shell()
        );
        let (runner, _lines) = runner(&[&script], limits(1, 1, 1000));
        let event = join(vec![member(
            "foo",
            IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
            &[("role", "bar"), ("foo", "bar")],
        )]);
        runner.dispatch(&event, ctx(None));
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(
            out.wait(),
            format!(
                "ourname ourrole\neast-aws\nbad\nmember-join\n{path}\nfoo\t1.2.3.4\tbar\tfoo=bar,role=bar\n"
            )
        );
    }

    #[test]
    fn user_script_sees_env_and_payload() {
        // Go's TestScriptUserEventHandler.
        let out = TempPath::new("user-env");
        let script = format!(
            "user:baz={{ echo $SERF_EVENT $SERF_USER_EVENT; echo $SERF_EVENT $SERF_USER_LTIME; \
             cat; }} > {0}.part && mv {0}.part {0}",
            out.shell()
        );
        let (runner, _lines) = runner(&[&script], limits(1, 1, 1000));
        runner.dispatch(&user("other", b"nope"), ctx(None));
        runner.dispatch(&user("baz", b"foobar"), ctx(None));
        assert_eq!(out.wait(), "user baz\nuser 1\nfoobar\n");
    }

    #[test]
    fn query_is_answered_with_combined_output_on_success() {
        let (runner, mut lines) = runner(
            &["query:load=echo $SERF_EVENT $SERF_QUERY_NAME $SERF_QUERY_LTIME; cat; echo err >&2"],
            limits(1, 1, 1000),
        );
        let (respond, answers) = responder(Ok(()));
        runner.dispatch(&query("load", b"load average"), ctx(Some(respond)));
        let answer = answers.recv_timeout(WAIT).expect("no answer");
        assert_eq!(answer, b"query load 42\nload average\nerr\n");
        lines
            .wait("[DEBUG] agent: Event 'query' script output: query load 42\nload average\nerr\n");
    }

    #[test]
    fn no_answer_on_failure_or_without_output() {
        // One query worker, so the last query's answer proves the earlier ones are done.
        let (runner, mut lines) = runner(
            &[
                "query:fail=echo out; exit 3",
                "query:quiet=true",
                "query:last=echo done",
            ],
            limits(1, 1, 1000),
        );
        let (fail, fail_answers) = responder(Ok(()));
        let (quiet, quiet_answers) = responder(Ok(()));
        let (last, last_answers) = responder(Ok(()));
        runner.dispatch(&query("fail", b""), ctx(Some(fail)));
        runner.dispatch(&query("quiet", b""), ctx(Some(quiet)));
        runner.dispatch(&query("last", b""), ctx(Some(last)));
        assert_eq!(last_answers.recv_timeout(WAIT).unwrap(), b"done\n");
        assert!(fail_answers.try_recv().is_err());
        assert!(quiet_answers.try_recv().is_err());
        lines.wait("[ERR] agent: Error invoking script 'echo out; exit 3': exit status 3");
    }

    #[test]
    fn failed_answers_are_logged() {
        let (runner, mut lines) = runner(&["query=echo hi"], limits(1, 1, 1000));
        let (respond, answers) = responder(Err("response already sent".into()));
        runner.dispatch(&query("load", b""), ctx(Some(respond)));
        assert_eq!(answers.recv_timeout(WAIT).unwrap(), b"hi\n");
        lines.wait("[WARN] agent: Failed to respond to query 'query: load': response already sent");
    }

    #[test]
    fn output_keeps_the_last_8_kib() {
        // 20 lines of 1024 bytes; the answer is the last 8.
        let script = "query=i=0; while [ $i -lt 20 ]; do printf '%1023d\\n' $i; i=$((i+1)); done";
        let (runner, mut lines) = runner(&[script], limits(1, 1, 1000));
        let (respond, answers) = responder(Ok(()));
        runner.dispatch(&query("big", b""), ctx(Some(respond)));
        let answer = answers.recv_timeout(WAIT).expect("no answer");
        let want: String = (12..20).map(|i| format!("{i:>1023}\n")).collect();
        assert_eq!(answer.len(), OUTPUT_LIMIT);
        assert_eq!(String::from_utf8(answer).unwrap(), want);
        lines.wait("generated 20480 bytes of output, truncated to 8192");
    }

    #[test]
    fn dispatch_does_not_wait_for_slow_scripts() {
        let (runner, mut lines) = runner(
            &["user:slow=sleep 3", "user:fast=echo fast"],
            limits(4, 1, 100),
        );
        let started = Instant::now();
        runner.dispatch(&user("slow", b""), ctx(None));
        assert!(started.elapsed() < Duration::from_millis(200));
        runner.dispatch(&user("fast", b""), ctx(None));
        assert!(started.elapsed() < Duration::from_millis(400));
        lines.wait("script output: fast");
        // Well before `sleep 3` ends, even on a loaded machine.
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn one_script_sees_events_in_arrival_order() {
        // If the two invocations overlapped, `second` would be written first.
        let out = TempPath::new("order");
        let script = format!(
            "user=case $SERF_USER_EVENT in first) sleep 0.5;; esac; echo $SERF_USER_EVENT >> {0}.part; \
             [ $SERF_USER_EVENT = second ] && mv {0}.part {0}; true",
            out.shell()
        );
        let (runner, _lines) = runner(&[&script], limits(4, 1, 1000));
        runner.dispatch(&user("first", b""), ctx(None));
        runner.dispatch(&user("second", b""), ctx(None));
        assert_eq!(out.wait(), "first\nsecond\n");
    }

    #[test]
    fn slow_scripts_are_reported() {
        let (runner, mut lines) = runner(&["sleep 1.3"], limits(1, 1, 1000));
        runner.dispatch(&user("x", b""), ctx(None));
        lines.wait("[WARN] agent: Script 'sleep 1.3' slow, execution exceeding 1s");
        lines.wait("script output: ");
    }

    #[test]
    fn queries_are_not_held_up_by_hung_member_scripts() {
        let (runner, _lines) = runner(
            &["member-join=sleep 30", "query=echo pong"],
            limits(1, 1, 100),
        );
        runner.dispatch(&join(vec![]), ctx(None));
        runner.dispatch(&join(vec![]), ctx(None));
        let (respond, answers) = responder(Ok(()));
        runner.dispatch(&query("ping", b""), ctx(Some(respond)));
        assert_eq!(answers.recv_timeout(WAIT).unwrap(), b"pong\n");
    }

    #[test]
    fn full_lanes_drop_and_count() {
        let mut limits = limits(1, 1, 100);
        limits.queue_capacity = 2;
        let started = TempPath::new("full");
        let script = format!("user=touch {}; sleep 30", started.shell());
        let (runner, mut lines) = runner(&[&script], limits);
        let dropped: u64 = (0..5)
            .map(|_| runner.dispatch(&user("x", b""), ctx(None)))
            .sum();
        assert_eq!(dropped, 3);
        lines.wait("[WARN] agent: Dropping event 'user' for script 'touch ");
        // The first invocation runs, the second waits for it and is discarded at shutdown.
        started.wait();
        runner.shutdown();
        lines.wait("Discarding 1 pending event handler invocations at shutdown");
        assert_eq!(
            runner.dispatch(&user("x", b""), ctx(None)),
            0,
            "after shutdown nothing is queued, so nothing is dropped"
        );
    }

    #[test]
    fn reload_replaces_the_handlers() {
        let (runner, mut lines) = runner(&["user=echo old"], limits(1, 1, 1000));
        runner.dispatch(&user("x", b""), ctx(None));
        lines.wait("script output: old");
        runner.reload(specs(&["user=echo new"]));
        runner.dispatch(&user("x", b""), ctx(None));
        lines.wait("script output: new");
        runner.shutdown();
        let outputs = lines
            .drain()
            .iter()
            .filter(|l| l.contains("script output"))
            .count();
        assert_eq!(outputs, 2);
    }

    #[test]
    fn shutdown_lets_running_scripts_finish_within_grace() {
        let (runner, mut lines) = runner(&["sleep 0.3; echo finished"], limits(1, 1, 5000));
        runner.dispatch(&user("x", b""), ctx(None));
        thread::sleep(Duration::from_millis(100));
        runner.shutdown();
        lines.wait("script output: finished");
        assert!(!lines.drain().iter().any(|l| l.contains("Killing")));
    }

    #[test]
    fn shutdown_kills_hung_scripts_and_their_children() {
        let pids = TempPath::new("hung");
        let script = format!(
            "sleep 30 & echo $$ $! > {0}.part && mv {0}.part {0}; wait",
            pids.shell()
        );
        let (runner, mut lines) = runner(&[&script], limits(1, 1, 200));
        runner.dispatch(&user("x", b""), ctx(None));
        let pid_text = pids.wait();
        let started = Instant::now();
        runner.shutdown();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        lines.wait("[WARN] agent: Killing event handler scripts still running after 200ms");
        lines.wait("': signal: killed");
        for pid in pid_text.split_whitespace() {
            assert!(wait_gone(pid.parse().unwrap()), "process {pid} survived");
        }
    }

    #[test]
    fn background_children_holding_output_do_not_stall_the_handler() {
        let (runner, mut lines) = runner(&["sleep 5 & echo $!"], limits(1, 1, 1000));
        let started = Instant::now();
        runner.dispatch(&user("x", b""), ctx(None));
        let line = lines.wait("script output: ");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        let pid: libc::pid_t = line.rsplit(": ").next().unwrap().trim().parse().unwrap();
        // SAFETY: plain syscall on the sleep this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
