//! Running a `serf` binary, ours or HashiCorp's, with a bounded time, and comparing two runs
//! the way the tests against the reference do: byte for byte, except help text, compared by
//! structure (see [`same_stream`]).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::reference::{binary, Agent};

/// The longest any single CLI run may take (queries wait out their timeout).
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

pub fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_serf"))
}

/// What one CLI run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A child process killed (and reaped) when dropped, so no test leaves one behind.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `bin args…` with extra environment, killing it after [`RUN_LIMIT`].
pub fn exec_env(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = run_bounded(bin, args, env, RUN_LIMIT);
    assert!(
        out.code.is_some() || !out.stderr.ends_with(KILLED),
        "serf {args:?} ran longer than {RUN_LIMIT:?}"
    );
    out
}

/// What [`run_bounded`] appends to the stderr of a process it had to kill.
pub const KILLED: &str = "\n<killed: still running at the time limit>\n";

/// Runs `bin args…` with extra environment for at most `limit`. A process still running then is
/// killed and reported with no exit code and [`KILLED`] after its stderr, so that a side which
/// keeps running where the other fails shows up as a difference, not as a hang.
pub fn run_bounded(bin: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Out {
    let dir = std::env::temp_dir();
    let tag = format!("{}-{:?}", std::process::id(), std::thread::current().id())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let (out_path, err_path) = (
        dir.join(format!("libserf-cli-{tag}.out")),
        dir.join(format!("libserf-cli-{tag}.err")),
    );
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("SERF_RPC_ADDR")
        .env_remove("SERF_RPC_AUTH")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Guard(cmd.spawn().expect("run serf"));
    let end = Instant::now() + limit;
    let code = loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            break Some(status.code());
        }
        if Instant::now() >= end {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(child);
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let mut out = Out {
        code: code.flatten(),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    if code.is_none() {
        out.stderr.push_str(KILLED);
    }
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    out
}

pub fn exec(bin: &Path, args: &[&str]) -> Out {
    exec_env(bin, args, &[])
}

/// `cmd -rpc-addr=<agent> rest…` (Go's flags must follow the subcommand).
pub fn against(agent: &Agent, cmd: &str, rest: &[&str]) -> Vec<String> {
    let mut args = vec![cmd.to_string(), format!("-rpc-addr={}", agent.rpc)];
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Where a stream's help text starts: its first line beginning with `Usage: ` (or `==> Usage: `,
/// as the agent prints it after a bad flag).
pub fn usage_start(s: &str) -> Option<usize> {
    ["Usage: ", "==> Usage: "]
        .iter()
        .filter_map(|start| {
            if s.starts_with(start) {
                return Some(0);
            }
            s.find(&format!("\n{start}")).map(|i| i + 1)
        })
        .min()
}

/// One stream of ours against the reference's. Without help text they must be identical. With
/// it, what precedes the help (error lines) must be identical, and the help itself, which runs to
/// the end of the stream, must pass [`same_help`]; so help is still required on the same stream.
pub fn same_stream(theirs: &str, mine: &str) -> bool {
    let Some(t) = usage_start(theirs) else {
        return theirs == mine;
    };
    let Some(m) = usage_start(mine) else {
        return false;
    };
    theirs[..t] == mine[..m] && same_help(&theirs[t..], &mine[m..])
}

/// Help compared by structure: the same `Usage:` line, every flag the reference mentions, and
/// (for the dispatcher's list) every command the reference lists.
pub fn same_help(theirs: &str, mine: &str) -> bool {
    theirs.lines().next() == mine.lines().next()
        && help_flags(theirs).is_subset(&help_flags(mine))
        && listed_commands(theirs).is_subset(&listed_commands(mine))
}

/// The `-name` and `--name` words of a help text.
pub fn help_flags(help: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"(?m)(?:^|[^A-Za-z0-9_-])(--?[a-z][a-z0-9-]*)").unwrap();
    re.captures_iter(help).map(|c| c[1].to_string()).collect()
}

/// The names in a command list: lines indented by four spaces, a name, then its synopsis.
pub fn listed_commands(help: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"(?m)^ {4}([a-z][a-z-]*) {2,}\S").unwrap();
    re.captures_iter(help).map(|c| c[1].to_string()).collect()
}

/// Whether our run matches HashiCorp's: the same exit code and, stream by stream, the same output
/// (help text by structure only).
pub fn matches(theirs: &Out, mine: &Out) -> bool {
    theirs.code == mine.code
        && same_stream(&theirs.stdout, &mine.stdout)
        && same_stream(&theirs.stderr, &mine.stderr)
}

/// Runs the same command with HashiCorp's CLI and ours until both print the same (Go's output
/// order can vary from run to run), at most `tries` times; the last pair is returned for the
/// assertion message.
pub fn same_until(args: &[&str], tries: usize) -> Result<Out, (Out, Out)> {
    let mut last = None;
    for _ in 0..tries {
        let theirs = exec(binary(), args);
        let mine = exec(ours(), args);
        if matches(&theirs, &mine) {
            return Ok(mine);
        }
        last = Some((theirs, mine));
    }
    Err(last.expect("at least one try"))
}

#[track_caller]
pub fn assert_same(args: &[&str], tries: usize) -> Out {
    match same_until(args, tries) {
        Ok(out) => out,
        Err((theirs, mine)) => panic!(
            "serf {args:?} differs from HashiCorp's\n--- theirs: {theirs:#?}\n--- ours: {mine:#?}"
        ),
    }
}
