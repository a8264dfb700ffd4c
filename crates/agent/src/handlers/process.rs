//! Running one script: `/bin/sh -c` in its own process group, stdin fed and output collected
//! without blocking, the slow warning, the shutdown kill, and Go's wording of exit errors.

use std::collections::VecDeque;
use std::io::{self, PipeReader, PipeWriter, Read, Write as _};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::input::ScriptInput;
use super::steps::{mark, Step};
use super::{OUTPUT_GRACE, OUTPUT_LIMIT, SLOW_WARNING};
use crate::log::Logger;

/// The longest a script's supervisor sleeps before re-checking exit, the slow timer and kills.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const SHELL: &str = "/bin/sh";

/// Go's `exec.ExitError` text: `exit status 2`, `signal: killed`.
pub(super) fn exit_error(status: ExitStatus) -> String {
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
pub(super) struct OutputRing {
    kept: VecDeque<u8>,
    pub(super) total: u64,
}

impl OutputRing {
    pub(super) fn write(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let tail = &bytes[bytes.len().saturating_sub(OUTPUT_LIMIT)..];
        self.kept.extend(tail);
        let excess = self.kept.len().saturating_sub(OUTPUT_LIMIT);
        self.kept.drain(..excess);
    }

    pub(super) fn bytes(&self) -> Vec<u8> {
        self.kept.iter().copied().collect()
    }
}

pub(super) struct Finished {
    pub(super) status: ExitStatus,
    pub(super) output: OutputRing,
}

/// Spawns the script and supervises it to the end; on an internal error it is killed first.
///
/// Stdin is written before the spawn, as far as the pipe's buffer takes it (all of nearly any
/// payload), so the script never waits for this thread to be scheduled to read it.
pub(super) fn run_script(
    script: &str,
    input: &ScriptInput,
    kill: &AtomicBool,
    log: &Logger,
) -> io::Result<Finished> {
    let (stdin, feeder) = io::pipe()?;
    set_nonblocking(&feeder)?;
    let mut written = 0;
    let fed = input.stdin.is_empty() || feed(&feeder, input, &mut written, log);
    let feeder = (!fed).then_some(feeder);
    let (output, writer) = io::pipe()?;
    // Kept open while the shell runs (if its exit can be polled), so that the end of its output
    // does not wake this thread a moment before its exit does.
    let held = writer.try_clone()?;
    let mut command = Command::new(SHELL);
    command
        .arg("-c")
        .arg(script)
        .envs(input.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    mark(Step::Spawning);
    let spawned = command.spawn();
    mark(Step::Spawned);
    // `command` holds our copies of the pipes' ends given to the child; end-of-file on either
    // only arrives once they are closed too.
    drop(command);
    let mut child = spawned?;
    let exit_fd = pidfd(&child);
    let pipes = Pipes {
        feeder,
        written,
        output,
        held: exit_fd.is_some().then_some(held),
        exit_fd,
    };
    let result = supervise(&mut child, pipes, script, input, kill, log);
    if result.is_err() {
        kill_group(&child);
        let _ = child.wait();
    }
    result
}

/// The supervisor's ends of a running script's pipes, and its exit.
struct Pipes {
    /// Stdin's write end while some of it is left to write, and how much is written.
    feeder: Option<PipeWriter>,
    written: usize,
    output: PipeReader,
    /// A write end of the output pipe, closed once the shell has exited.
    held: Option<PipeWriter>,
    /// Readable once the shell has exited; see [`pidfd`].
    exit_fd: Option<OwnedFd>,
}

/// Feeds stdin and collects output without blocking on either, and notices the shell's exit the
/// moment it happens (a pidfd in the same `poll`; without one, by re-checking after short
/// sleeps). The slow warning and the shutdown kill are noticed within [`POLL_INTERVAL`].
fn supervise(
    child: &mut Child,
    pipes: Pipes,
    script: &str,
    input: &ScriptInput,
    kill: &AtomicBool,
    log: &Logger,
) -> io::Result<Finished> {
    let Pipes {
        feeder: mut stdin,
        mut written,
        mut output,
        mut held,
        exit_fd,
    } = pipes;
    let started = Instant::now();
    let mut ring = OutputRing::default();
    let mut output_open = true;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut slow_warned = false;
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
                mark(Step::Exited);
                exited = Some((status, Instant::now()));
                stdin = None;
                // Only processes it left behind hold the output open now.
                drop(held.take());
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

        // Output first, then stdin, then the exit; absent ones are skipped by `poll` (fd -1).
        let mut fds = [
            pollfd(output_open.then(|| output.as_raw_fd()), libc::POLLIN),
            pollfd(stdin.as_ref().map(AsRawFd::as_raw_fd), libc::POLLOUT),
            pollfd(
                exit_fd
                    .as_ref()
                    .filter(|_| exited.is_none())
                    .map(AsRawFd::as_raw_fd),
                libc::POLLIN,
            ),
        ];
        if fds.iter().all(|fd| fd.fd < 0) {
            // No pidfd, output closed, the shell still runs: nothing to wait on but its exit.
            // It follows the end of the output within microseconds, so look again soon.
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
        if fds[0].revents != 0 {
            match output.read(&mut buf) {
                Ok(0) => {
                    mark(Step::OutputClosed);
                    output_open = false;
                }
                Ok(n) => ring.write(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => output_open = false,
            }
        }
        if fds[1].revents != 0 {
            if let Some(pipe) = &stdin {
                if feed(pipe, input, &mut written, log) {
                    stdin = None;
                }
            }
        }
    }
}

/// Writes what the pipe takes of the rest of stdin; true once it is all written or writing
/// failed (logged for payloads, as Go does), so the pipe can be closed.
fn feed(mut pipe: &PipeWriter, input: &ScriptInput, written: &mut usize, log: &Logger) -> bool {
    loop {
        match pipe.write(&input.stdin[*written..]) {
            Ok(n) => {
                *written += n;
                if *written == input.stdin.len() {
                    return true;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
            Err(err) => {
                if input.is_payload {
                    log.error(format!("Error writing payload: {err}"));
                }
                return true;
            }
        }
    }
}

/// A descriptor that becomes readable when the shell exits (Linux 5.3+); `None` elsewhere,
/// and the supervisor falls back to sleeping between checks.
fn pidfd(child: &Child) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::FromRawFd as _;
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain syscall; the shell is not reaped yet, so its pid is still ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: on success the call returned a new descriptor that nothing else owns.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = child;
        None
    }
}

/// A `poll` entry; `None` becomes -1, which `poll` skips.
fn pollfd(fd: Option<RawFd>, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd: fd.unwrap_or(-1),
        events,
        revents: 0,
    }
}

/// Lets the supervisor write stdin in pieces as the script reads it.
fn set_nonblocking(pipe: &PipeWriter) -> io::Result<()> {
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
