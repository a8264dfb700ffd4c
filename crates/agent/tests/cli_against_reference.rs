//! Our `serf` binary against HashiCorp's (serf v0.11.0), run with the same arguments: outputs
//! must be byte-identical (where Go's output depends on map iteration order, the pair is re-run
//! a bounded number of times until the orders agree), exit codes equal. Help texts are the
//! exception: their wording is our own, so they are compared by structure (see
//! [`same_stream`]). Most tests drive HashiCorp's agent with both CLIs; the error-text tables
//! ([`cli_errors_match_reference`], [`agent_errors_match_reference`],
//! [`errors_from_running_agents_match_reference`]) run each binary on its own, the CLI against
//! its own agent. Agents listen on loopback only and are killed when their guards drop; every
//! process and every wait is bounded.

#[path = "../../../tests/common/reference.rs"]
mod reference;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reference::{binary, free_port, wait_until, Agent, Scratch};
use serde_json::Value;

/// The longest any single CLI run may take (queries wait out their timeout).
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_serf"))
}

/// What one CLI run produced.
#[derive(Debug, Clone, PartialEq)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A child process killed (and reaped) when dropped, so no test leaves one behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `bin args…` with extra environment, killing it after [`RUN_LIMIT`].
fn exec_env(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = run_bounded(bin, args, env, RUN_LIMIT);
    assert!(
        out.code.is_some() || !out.stderr.ends_with(KILLED),
        "serf {args:?} ran longer than {RUN_LIMIT:?}"
    );
    out
}

/// What [`run_bounded`] appends to the stderr of a process it had to kill.
const KILLED: &str = "\n<killed: still running at the time limit>\n";

/// Runs `bin args…` with extra environment for at most `limit`. A process still running then is
/// killed and reported with no exit code and [`KILLED`] after its stderr, so that a side which
/// keeps running where the other fails shows up as a difference, not as a hang.
fn run_bounded(bin: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Out {
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

fn exec(bin: &Path, args: &[&str]) -> Out {
    exec_env(bin, args, &[])
}

/// `cmd -rpc-addr=<agent> rest…` (Go's flags must follow the subcommand).
fn against(agent: &Agent, cmd: &str, rest: &[&str]) -> Vec<String> {
    let mut args = vec![cmd.to_string(), format!("-rpc-addr={}", agent.rpc)];
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Where a stream's help text starts: its first line beginning with `Usage: ` (or `==> Usage: `,
/// as the agent prints it after a bad flag).
fn usage_start(s: &str) -> Option<usize> {
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
fn same_stream(theirs: &str, mine: &str) -> bool {
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
fn same_help(theirs: &str, mine: &str) -> bool {
    theirs.lines().next() == mine.lines().next()
        && help_flags(theirs).is_subset(&help_flags(mine))
        && listed_commands(theirs).is_subset(&listed_commands(mine))
}

/// The `-name` and `--name` words of a help text.
fn help_flags(help: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"(?m)(?:^|[^A-Za-z0-9_-])(--?[a-z][a-z0-9-]*)").unwrap();
    re.captures_iter(help).map(|c| c[1].to_string()).collect()
}

/// The names in a command list: lines indented by four spaces, a name, then its synopsis.
fn listed_commands(help: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"(?m)^ {4}([a-z][a-z-]*) {2,}\S").unwrap();
    re.captures_iter(help).map(|c| c[1].to_string()).collect()
}

/// Whether our run matches HashiCorp's: the same exit code and, stream by stream, the same output
/// (help text by structure only).
fn matches(theirs: &Out, mine: &Out) -> bool {
    theirs.code == mine.code
        && same_stream(&theirs.stdout, &mine.stdout)
        && same_stream(&theirs.stderr, &mine.stderr)
}

/// Runs the same command with HashiCorp's CLI and ours until both print the same (Go's output
/// order can vary from run to run), at most `tries` times; the last pair is returned for the
/// assertion message.
fn same_until(args: &[&str], tries: usize) -> Result<Out, (Out, Out)> {
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
fn assert_same(args: &[&str], tries: usize) -> Out {
    match same_until(args, tries) {
        Ok(out) => out,
        Err((theirs, mine)) => panic!(
            "serf {args:?} differs from HashiCorp's\n--- theirs: {theirs:#?}\n--- ours: {mine:#?}"
        ),
    }
}

/// Lines sorted, for outputs whose line order is Go map order.
fn sorted_lines(s: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = s.lines().collect();
    lines.sort();
    lines
}

fn rtt_line(s: &str, a: &str, b: &str) -> bool {
    let re =
        regex::Regex::new(&format!(r"^Estimated {a} <-> {b} rtt: \d+\.\d{{3}} ms\n$")).unwrap();
    re.is_match(s)
}

#[test]
fn usage_and_connection_errors_match_reference() {
    let dead = format!("-rpc-addr=127.0.0.1:{}", free_port());
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-h"],
        vec!["--help"],
        vec!["bogus"],
        vec!["-x", "members"],
        vec!["-h", "members"],
        vec!["members", "-x"],
        vec!["members", "-h"],
        vec!["members", "-detailed=maybe"],
        vec!["members", "-rpc-addr"],
        vec!["members", "---x"],
        vec!["query", "-timeout=5", "q"],
        vec!["query", "-relay-factor=x", "q"],
        vec!["query", "-relay-factor=300", "q"],
        vec!["query"],
        vec!["event", "a", "b", "c"],
        vec!["join"],
        vec!["force-leave"],
        vec!["keys"],
        vec!["keys", "-list", "-install=x"],
        vec!["tags"],
        vec!["members", "-tag=novalue"],
        vec!["version", "-h"],
        vec!["members", &dead],
        vec!["monitor", &dead],
        vec!["members", "-rpc-addr=127.0.0.1"],
        vec!["info", &dead, "-format=json"],
    ];
    for args in &cases {
        assert_same(args, 1);
    }
    // The structural comparison of help texts is not vacuous.
    let help = exec(binary(), &["members", "-h"]).stderr;
    let flags = help_flags(&help);
    assert!(
        ["-detailed", "-tag", "-rpc-addr", "-rpc-auth"]
            .iter()
            .all(|f| flags.contains(*f)),
        "{flags:?}"
    );
    assert!(!same_help(&help, "Usage: serf members [options]\n"));
    let list = exec(binary(), &[]).stderr;
    let commands = listed_commands(&list);
    assert!(
        commands.contains("agent") && commands.contains("version") && commands.len() == 15,
        "{commands:?}"
    );
    assert!(help_flags(&list).contains("--version"));
    // The version is ours; its layout is HashiCorp's.
    for args in [vec!["version"], vec!["-v"], vec!["members", "--version"]] {
        let out = exec(ours(), &args);
        assert_eq!(out.code, Some(0));
        assert_eq!(
            out.stdout,
            format!(
                "{}\nAgent Protocol: 5 (Understands back to: 2)\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
    let key = exec(ours(), &["keygen"]);
    assert_eq!(key.code, Some(0));
    assert!(regex::Regex::new(r"^[A-Za-z0-9+/]{43}=\n$")
        .unwrap()
        .is_match(&key.stdout));
}

#[test]
fn cluster_commands_match_reference() {
    let dir = Scratch::new("cluster");
    let events = dir.join("events.txt");
    let handler = format!("user:deploy=cat >> {}", events.display());
    let mut a = Agent::start(
        "ref-a",
        &[
            "-tag=role=web",
            &format!("-event-handler={handler}"),
            "-event-handler=query:echo=cat",
        ],
    );
    let mut b = Agent::start("ref-b", &[]);

    // join, through our CLI.
    let join = exec(
        ours(),
        &strs(&against(&a, "join", &[&b.gossip.to_string()])),
    );
    assert_eq!(
        (join.code, join.stdout.as_str()),
        (
            Some(0),
            "Successfully joined cluster by contacting 1 nodes.\n"
        )
    );
    assert!(wait_until(Duration::from_secs(10), || a.members().len()
        == 2
        && b.members().len() == 2));
    // Errors the agent reports: a join nobody answers, a log level it does not know.
    assert_same(&strs(&against(&a, "join", &["127.0.0.1:1"])), 1);
    assert_same(&strs(&against(&a, "monitor", &["-log-level=foo"])), 1);

    // members, every format and filter.
    for rest in [
        vec![],
        vec!["-detailed"],
        vec!["-format=json"],
        vec!["-name=ref-a"],
        vec!["-status=alive", "-tag", "role=w.*"],
        vec!["-role=web", "-format=json"],
        vec!["-name=nomatch"],
        vec!["-name=nomatch", "-format=json"],
        vec!["-format=xml"],
    ] {
        assert_same(&strs(&against(&a, "members", &rest)), 20);
    }
    // A pattern the agent cannot compile: it drops the connection.
    assert_same(&strs(&against(&a, "members", &["-name=("])), 1);

    // tags: set and delete, then members shows them.
    let tags = exec(
        ours(),
        &strs(&against(
            &a,
            "tags",
            &["-set", "dc=east", "-delete", "role"],
        )),
    );
    assert_eq!(
        (tags.code, tags.stdout.as_str()),
        (Some(0), "Successfully updated agent tags\n")
    );
    let members = exec(ours(), &strs(&against(&a, "members", &["-name=ref-a"])));
    assert_eq!(
        members.stdout,
        format!("ref-a  {}  alive  dc=east\n", a.gossip)
    );
    assert_same(&strs(&against(&a, "tags", &["-set=bad"])), 1);

    // event: the handler on the agent receives the payload.
    let event = exec(ours(), &strs(&against(&a, "event", &["deploy", "v1<&>"])));
    assert_eq!(
        (event.code, event.stdout.as_str()),
        (
            Some(0),
            "Event 'deploy' dispatched! Coalescing enabled: true\n"
        )
    );
    assert!(wait_until(Duration::from_secs(10), || {
        // Go's handler contract ends the payload with a newline.
        std::fs::read_to_string(&events).unwrap_or_default() == "v1<&>\n"
    }));
    let event = exec(
        ours(),
        &strs(&against(&a, "event", &["-coalesce=false", "other"])),
    );
    assert_eq!(
        event.stdout,
        "Event 'other' dispatched! Coalescing enabled: false\n"
    );
    assert_same(&strs(&against(&a, "event", &["_serf_x"])), 1);

    // query: acks and the handler's response, text and JSON.
    for rest in [
        vec!["-node=ref-a", "-timeout=1s", "echo", "hi<&>"],
        vec![
            "-node=ref-a",
            "-timeout=1s",
            "-format=json",
            "echo",
            "hi<&>",
        ],
        vec!["-node=ref-b", "-timeout=500ms", "-no-ack", "echo"],
        vec![
            "-node=ref-b",
            "-timeout=500ms",
            "-no-ack",
            "-format=json",
            "echo",
        ],
        vec![
            "-tag",
            "dc=ea.*",
            "-timeout=1s",
            "-relay-factor=2",
            "echo",
            "x",
        ],
        vec!["-format=xml", "echo"],
        vec!["_serf_x"],
    ] {
        assert_same(&strs(&against(&a, "query", &rest)), 10);
    }
    // Both nodes: only the order of the lines may differ between runs.
    let args = against(&a, "query", &["-timeout=1s", "echo", "both"]);
    let (theirs, mine) = (exec(binary(), &strs(&args)), exec(ours(), &strs(&args)));
    assert_eq!(sorted_lines(&theirs.stdout), sorted_lines(&mine.stdout));
    assert!(
        mine.stdout.starts_with("Query 'echo' dispatched\n"),
        "{mine:?}"
    );
    assert!(
        mine.stdout.ends_with("Total Acks: 2\nTotal Responses: 1\n"),
        "{mine:?}"
    );

    // info: the same sections and keys; values that are the agent's own must agree.
    let args = against(&a, "info", &[]);
    let (theirs, mine) = (exec(binary(), &strs(&args)), exec(ours(), &strs(&args)));
    let keys = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split(" = ").next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(keys(&theirs.stdout), keys(&mine.stdout));
    assert!(
        mine.stdout
            .starts_with("agent:\n\tname = ref-a\nevent_handlers:\n"),
        "{mine:?}"
    );
    assert!(mine.stdout.contains("\ntags:\n\tdc = east\n"), "{mine:?}");
    let args = against(&a, "info", &["-format=json"]);
    let (theirs, mine) = (exec(binary(), &strs(&args)), exec(ours(), &strs(&args)));
    let t: Value = serde_json::from_str(&theirs.stdout).expect("reference info json");
    let m: Value = serde_json::from_str(&mine.stdout).expect("our info json");
    assert_eq!(t["agent"], m["agent"]);
    assert_eq!(t["tags"], m["tags"]);
    assert_eq!(t["event_handlers"], m["event_handlers"]);
    assert!(
        mine.stdout.contains("\n    \"query:echo\": \"cat\""),
        "{mine:?}"
    );

    // rtt: the format, and an unknown node.
    let rtt = exec(ours(), &strs(&against(&a, "rtt", &["ref-b"])));
    assert!(rtt_line(&rtt.stdout, "ref-b", "ref-a"), "{rtt:?}");
    let rtt = exec(ours(), &strs(&against(&a, "rtt", &["ref-a", "ref-b"])));
    assert!(rtt_line(&rtt.stdout, "ref-a", "ref-b"), "{rtt:?}");
    assert_same(&strs(&against(&a, "rtt", &["nosuch"])), 1);
    assert_same(&strs(&against(&a, "rtt", &[])), 1);

    // reachability: every live node acks the ping.
    assert_same(&strs(&against(&a, "reachability", &[])), 3);
    let verbose = exec(ours(), &strs(&against(&a, "reachability", &["-verbose"])));
    let re = regex::Regex::new(
        "^Total members: 2, live members: 2\nStarting reachability test...\n\tAck from 'ref-[ab]'\n\
         \tAck from 'ref-[ab]'\nQuery time: \\d+\\.\\d\\d sec, time to last response: \\d+\\.\\d\\d \
         sec\nSuccessfully contacted all live nodes\n$",
    )
    .unwrap();
    assert!(re.is_match(&verbose.stdout), "{verbose:?}");

    // force-leave: ref-b dies, is seen failed, is forced out, then pruned.
    b.kill();
    assert!(
        wait_until(Duration::from_secs(30), || a.status_of("ref-b").as_deref()
            == Some("failed")),
        "ref-b never failed: {:?}",
        a.members()
    );
    assert_same(&strs(&against(&a, "force-leave", &["a", "b"])), 1);
    let fl = exec(ours(), &strs(&against(&a, "force-leave", &["ref-b"])));
    assert_eq!(
        (fl.code, fl.stdout.as_str(), fl.stderr.as_str()),
        (Some(0), "", "")
    );
    assert!(wait_until(Duration::from_secs(10), || a
        .status_of("ref-b")
        .as_deref()
        == Some("left")));
    let fl = exec(
        ours(),
        &strs(&against(&a, "force-leave", &["-prune", "ref-b"])),
    );
    assert_eq!((fl.code, fl.stdout.as_str()), (Some(0), ""));
    assert!(wait_until(Duration::from_secs(10), || a
        .status_of("ref-b")
        .is_none()));

    // monitor while the agent leaves: the replayed log, then the remote-end message.
    let log = dir.join("monitor.out");
    let mut monitor = Guard(
        Command::new(ours())
            .args(against(&a, "monitor", &["-log-level=debug"]))
            .stdout(std::fs::File::create(&log).expect("monitor log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start monitor"),
    );
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(10), || read()
        .contains("[INFO] agent: Serf agent starting")));
    let leave = exec(ours(), &strs(&against(&a, "leave", &[])));
    assert_eq!(
        (leave.code, leave.stdout.as_str()),
        (Some(0), "Graceful leave complete\n")
    );
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(status)) = monitor.0.try_wait() {
            break status.code();
        }
        assert!(
            Instant::now() < end,
            "monitor did not end with the agent: {}",
            read()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, Some(1));
    let text = read();
    assert!(
        text.ends_with("\nRemote side ended the monitor! This usually means that the\nremote side has exited or crashed.\n"),
        "{text}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || a.exited().is_some()),
        "the agent did not exit after leave"
    );
}

#[test]
fn monitor_streams_like_reference_and_stops_on_interrupt() {
    let dir = Scratch::new("monitor");
    let a = Agent::start("mon-a", &[]);
    let start = |bin: &Path, file: &str| {
        let path = dir.join(file);
        let child = Command::new(bin)
            .args(against(&a, "monitor", &["-log-level=warn"]))
            .stdout(std::fs::File::create(&path).expect("monitor out"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start monitor");
        (Guard(child), path)
    };
    let (mut theirs, theirs_out) = start(binary(), "theirs.out");
    let (mut mine, mine_out) = start(ours(), "ours.out");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    // Both are attached once an event reaches them.
    assert!(wait_until(Duration::from_secs(10), || {
        let _ = exec(ours(), &strs(&against(&a, "event", &["ping"])));
        read(&theirs_out).contains("Event Info:") && read(&mine_out).contains("Event Info:")
    }));
    let _ = exec(ours(), &strs(&against(&a, "event", &["with-payload", "p"])));
    let _ = exec(ours(), &strs(&against(&a, "keys", &["-list"])));
    let complete = |p: &Path| {
        let t = read(p);
        t.contains("\"with-payload\"") && t.contains("[ERR] serf: Keyring is empty")
    };
    assert!(wait_until(Duration::from_secs(10), || complete(
        &theirs_out
    ) && complete(
        &mine_out
    )));
    for guard in [&mut theirs, &mut mine] {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(guard.0.id().to_string())
            .status();
    }
    let end = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Ok(Some(status)) = mine.0.try_wait() {
            break status.code();
        }
        assert!(Instant::now() < end, "our monitor ignored SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
    // Go prints an event's fields in random order: compare each block's lines as a set.
    let blocks = |p: &Path| -> Vec<Vec<String>> {
        read(p)
            .split("Event Info:\n")
            .skip(1)
            .map(|b| {
                let mut lines: Vec<String> = b
                    .lines()
                    .take_while(|l| l.starts_with('\t'))
                    .map(String::from)
                    .collect();
                lines.sort();
                lines
            })
            .collect()
    };
    let with_payload = |blocks: Vec<Vec<String>>| {
        blocks
            .into_iter()
            .find(|b| b.iter().any(|l| l.contains("with-payload")))
            .expect("the event block")
    };
    assert_eq!(
        with_payload(blocks(&theirs_out)),
        with_payload(blocks(&mine_out))
    );
    let log_line = |p: &Path| {
        read(p)
            .lines()
            .find(|l| l.contains("[ERR] serf: Keyring is empty"))
            .map(String::from)
    };
    assert_eq!(log_line(&theirs_out), log_line(&mine_out));
}

#[test]
fn keyring_commands_match_reference() {
    let k1 = "QFIhbOXihVP/KVjvkq0ixuPpwmay5ThQNCG3MvG1eJY=";
    let k2 = "7szrWUieYRUaWpuRTmM25reSJmJFNb6wM4wdoSffd+g=";
    let a = Agent::start("key-a", &[&format!("-encrypt={k1}")]);
    let b = Agent::start(
        "key-b",
        &[&format!("-encrypt={k1}"), &format!("-join={}", a.gossip)],
    );
    assert!(wait_until(Duration::from_secs(10), || a.members().len()
        == 2
        && b.members().len() == 2));
    let keys = |rest: &[&str]| against(&a, "keys", rest);
    assert_same(&strs(&keys(&["-list"])), 1);
    let install = assert_same(&strs(&keys(&[&format!("-install={k2}")])), 1);
    assert_eq!(
        install.stdout,
        "==> Installing key on all members...\n==> Successfully installed key!\n"
    );
    // Two keys: Go lists them in map order.
    let listed = assert_same(&strs(&keys(&["-list"])), 20);
    assert!(
        listed.stdout.contains(&format!("\n{k2}  [2/2]\n")),
        "{listed:?}"
    );
    assert_same(&strs(&keys(&[&format!("-use={k2}")])), 1);
    assert_same(&strs(&keys(&[&format!("-remove={k1}")])), 1);
    // Removing the primary key fails on every node.
    let failed = assert_same(&strs(&keys(&[&format!("-remove={k2}")])), 20);
    assert_eq!(failed.code, Some(1));
    assert!(failed
        .stdout
        .contains("failed:  key-a  removing the primary key is not allowed\n"));
    assert_same(&strs(&keys(&["-install=notbase64"])), 1);
    assert_same(&strs(&keys(&["-use=a", "-remove=b"])), 1);
}

#[test]
fn rpc_auth_matches_reference() {
    let dir = Scratch::new("auth");
    let config = dir.join("auth.json");
    std::fs::write(&config, r#"{"rpc_auth":"secret"}"#).expect("config");
    let a = Agent::start("auth-a", &[&format!("-config-file={}", config.display())]);
    let missing = assert_same(&strs(&against(&a, "members", &[])), 1);
    assert_eq!(
        (missing.code, missing.stdout.as_str()),
        (
            Some(1),
            "Error retrieving members: Authentication required\n"
        )
    );
    let wrong = assert_same(&strs(&against(&a, "members", &["-rpc-auth=wrong"])), 1);
    assert_eq!(
        (wrong.code, wrong.stdout.as_str()),
        (
            Some(1),
            "Error connecting to Serf agent: Invalid authentication token\n"
        )
    );
    let right = assert_same(&strs(&against(&a, "members", &["-rpc-auth=secret"])), 1);
    assert_eq!(right.code, Some(0));
    assert!(right.stdout.starts_with("auth-a  "), "{right:?}");
    // The environment supplies the address and the token.
    let env = [
        ("SERF_RPC_ADDR", a.rpc.to_string()),
        ("SERF_RPC_AUTH", "secret".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let theirs = exec_env(binary(), &["members"], &env);
    let mine = exec_env(ours(), &["members"], &env);
    assert_eq!(theirs, mine);
    assert_eq!(mine.code, Some(0));
}

// The error-text tables: each case runs HashiCorp's binary and ours with the same arguments.
//
// Normalisations, the only differences allowed (see `normalise`):
// - `serf version` prints each binary's own version (0.10.2-dev and ours): the first line of
//   its output is compared as `<version>`;
// - `serf keygen` prints a fresh random key: a line that is one is compared as `<key>`;
// - against running agents, each CLI talks to its own agent: that agent's RPC and gossip
//   addresses are compared as `<rpc>` and `<gossip>`, its gossip port elsewhere (the default
//   port of an address to join) as `<gossip-port>`.
// Ports and scratch paths are otherwise the same for both sides (each binary runs on its own,
// one after the other), and no case prints a time stamp.

/// The longest an agent may take to fail; one that is still running then is a difference.
const AGENT_LIMIT: Duration = Duration::from_secs(20);

/// One case's outputs, normalised, or `None` if they match.
fn compare(args: &[String], theirs: Out, mine: Out, subs: &[(String, String)]) -> Option<String> {
    let theirs = normalise(args, theirs, &subs[..subs.len() / 2]);
    let mine = normalise(args, mine, &subs[subs.len() / 2..]);
    (!matches(&theirs, &mine))
        .then(|| format!("serf {args:?}\n--- theirs: {theirs:#?}\n--- ours: {mine:#?}"))
}

/// The normalisations listed above; `subs` are (text, placeholder) pairs for this side.
fn normalise(args: &[String], mut out: Out, subs: &[(String, String)]) -> Out {
    let key = regex::Regex::new(r"(?m)^[A-Za-z0-9+/]{43}=$").unwrap();
    for text in [&mut out.stdout, &mut out.stderr] {
        for (from, to) in subs {
            *text = text.replace(from.as_str(), to);
        }
        if args.first().map(String::as_str) == Some("keygen") {
            *text = key.replace_all(text, "<key>").into_owned();
        }
        if args.first().map(String::as_str) == Some("version") {
            if let Some(end) = text.find('\n') {
                text.replace_range(..end, "<version>");
            }
        }
    }
    out
}

/// Runs every case with both binaries; panics listing every case that differs.
fn run_table(cases: &[Vec<String>], limit: Duration) -> usize {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let args: Vec<&str> = case.iter().map(String::as_str).collect();
            let theirs = run_bounded(binary(), &args, &[], limit);
            let mine = run_bounded(ours(), &args, &[], limit);
            compare(case, theirs, mine, &[])
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from HashiCorp's:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    eprintln!("{} cases compared", cases.len());
    cases.len()
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Every client subcommand, each flag given a bad value, a missing one or an unknown flag,
/// missing and extra arguments, and every kind of bad agent address; nothing listens.
#[test]
fn cli_errors_match_reference() {
    let dead = free_port().to_string();
    let rpc = format!("-rpc-addr=127.0.0.1:{dead}");
    let mut cases: Vec<Vec<String>> = [
        // members
        &["members", "-detailed=x"][..],
        &["members", "-name"],
        &["members", "-role"],
        &["members", "-status"],
        &["members", "-format"],
        &["members", "-tag"],
        &["members", "-tag=a"],
        &["members", "-tag==b"],
        &["members", "-rpc-auth"],
        &["members", "-x"],
        &["members", "---x"],
        &["members", "-=x"],
        &["members", "-tag=a=(", &rpc],
        &["members", "-format=xml", &rpc],
        &["members", &rpc, "extra"],
        &["members", "-role=x", &rpc],
        // join
        &["join"],
        &["join", "-replay"],
        &["join", "-replay=x", "a"],
        &["join", "-x"],
        &["join", &rpc, "127.0.0.1:1"],
        // leave
        &["leave", "-x"],
        &["leave", &rpc, "extra"],
        // force-leave
        &["force-leave"],
        &["force-leave", "-prune"],
        &["force-leave", "-prune=x", "a"],
        &["force-leave", "-x", "a"],
        &["force-leave", "a", "b"],
        &["force-leave", &rpc, "a"],
        // event
        &["event"],
        &["event", "-coalesce=x", "a"],
        &["event", "-x", "a"],
        &["event", "a", "b", "c"],
        &["event", &rpc, "a", "b"],
        // query
        &["query"],
        &["query", "-timeout=x", "q"],
        &["query", "-timeout=1", "q"],
        &["query", "-timeout=1h1x", "q"],
        &["query", "-timeout"],
        &["query", "-node"],
        &["query", "-tag=x", "q"],
        &["query", "-no-ack=x", "q"],
        &["query", "-relay-factor=-1", "q"],
        &["query", "-relay-factor=256", "q"],
        &["query", "-relay-factor=x", "q"],
        &["query", "-relay-factor=99999999999999999999", "q"],
        &["query", "-format=xml", &rpc, "q"],
        &["query", "-timeout=-1s", &rpc, "q"],
        &["query", "a", "b", "c"],
        // keys
        &["keys"],
        &["keys", "-install="],
        &["keys", "-use="],
        &["keys", "-remove="],
        &["keys", "-list", "-use=a"],
        &["keys", "-install=a", "-use=b"],
        &["keys", "-list=x"],
        &["keys", "-x"],
        &["keys", "-list", &rpc],
        &["keys", "-install=abc", &rpc],
        // keygen
        &["keygen", "extra"],
        &["keygen", "-x"],
        // tags
        &["tags"],
        &["tags", "-set"],
        &["tags", "-delete"],
        &["tags", "-x"],
        &["tags", "extra"],
        &["tags", "-set=a", &rpc],
        &["tags", "-set=a=b", &rpc],
        // monitor
        &["monitor", "-log-level"],
        &["monitor", "-x"],
        &["monitor", "-log-level=foo", &rpc],
        // info
        &["info", "-x"],
        &["info", "-format=xml", &rpc],
        &["info", &rpc, "extra"],
        // rtt
        &["rtt", &rpc],
        &["rtt", "-x"],
        &["rtt", &rpc, "a", "b", "c"],
        // reachability
        &["reachability", "-x"],
        &["reachability", "-verbose=x"],
        &["reachability", &rpc],
        // version
        &["version", "extra"],
        &["version", "-x"],
    ]
    .iter()
    .map(|args| owned(args))
    .collect();
    // Every way an agent address can be wrong, as Go's dialer words it.
    for addr in [
        "",
        ":",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:abc",
        "127.0.0.1:99999",
        "127.0.0.1:-1",
        "127.0.0.1:+1",
        "[::1",
        "[::1]",
        "::1:1",
        "a[b:1",
        "bad!host:1",
        "127.1:1",
        "1234:1",
        &format!("[::1]:{dead}"),
        &format!("localhost:{dead}"),
    ] {
        cases.push(owned(&["members", &format!("-rpc-addr={addr}")]));
    }
    // Every command's help (compared by structure, see `same_help`).
    for command in [
        "agent",
        "event",
        "force-leave",
        "info",
        "join",
        "keygen",
        "keys",
        "leave",
        "members",
        "monitor",
        "query",
        "reachability",
        "rtt",
        "tags",
        "version",
    ] {
        cases.push(owned(&[command, "-h"]));
    }
    let n = run_table(&cases, RUN_LIMIT);
    assert!(n >= 100, "{n}");
}

/// `serf agent` failing to start: every flag given a bad value, bad config, tags and keyring
/// files, addresses and ports that cannot be used, and conflicting settings.
#[test]
fn agent_errors_match_reference() {
    let dir = Scratch::new("agent-errors");
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("scratch file");
        path.display().to_string()
    };
    let busy_tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("busy tcp");
    let busy_tcp = busy_tcp.local_addr().expect("addr").port().to_string();
    let busy_udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("busy udp");
    let busy_udp = busy_udp.local_addr().expect("addr").port().to_string();
    let scratch = dir.display().to_string();
    let conf_dir = dir.join("conf.d");
    std::fs::create_dir_all(&conf_dir).expect("config dir");
    std::fs::write(conf_dir.join("a.json"), r#"{"node_name":"x","nod":1}"#).expect("config");
    let big = "x".repeat(600);

    let config = |name: &str, text: &str| format!("-config-file={}", file(name, text));
    let tags_file = |name: &str, text: &str| format!("-tags-file={}", file(name, text));
    let keyring = |name: &str, text: &str| format!("-keyring-file={}", file(name, text));
    let k1 = "QFIhbOXihVP/KVjvkq0ixuPpwmay5ThQNCG3MvG1eJY=";
    let flag_cases: Vec<Vec<String>> = vec![
        // Flags that do not parse; arguments after the flags are ignored.
        owned(&["-x"]),
        owned(&["-bind"]),
        owned(&["-replay=x"]),
        owned(&["-protocol=x"]),
        owned(&["-protocol=99999999999999999999"]),
        owned(&["-retry-max=x"]),
        owned(&["-syslog=x"]),
        owned(&["-profile=x", "extra", "-y"]),
        // What HashiCorp's readConfig checks.
        owned(&["-tag=x"]),
        owned(&["-tag==x"]),
        owned(&["-tag=a=b", "-tag=c"]),
        owned(&["-retry-interval=x"]),
        owned(&["-retry-interval=1h1x"]),
        owned(&["-retry-interval=99999999h"]),
        owned(&["-broadcast-timeout=5"]),
        owned(&["-retry-interval=-1s", "-log-level=foo"]),
        owned(&["-broadcast-timeout=1ms", "-log-level=foo"]),
        owned(&["-rejoin", "-log-level=foo"]),
        owned(&["-role=x", "-log-level=foo"]),
        owned(&["-event-handler=foo:bar=x"]),
        owned(&["-iface=nosuch0"]),
        owned(&["-mdns-iface=lo"]),
        owned(&["-discover=x", "-mdns-iface=nosuch0"]),
        owned(&[
            "-discover=x",
            "-mdns-iface=lo",
            "-mdns-disable-ipv4",
            "-mdns-disable-ipv6",
        ]),
        owned(&["-config-file=/nonexistent/serf.json"]),
        owned(&["-config-dir=/nonexistent"]),
        vec![format!("-config-dir={}", conf_dir.display())],
        owned(&["-log-level=foo"]),
        owned(&["-syslog", "-profile=x"]),
        // What setupAgent checks before announcing the start.
        owned(&["-bind=bad!host"]),
        owned(&["-bind=1234"]),
        owned(&["-bind=127.1"]),
        owned(&["-bind=127.0.0.1:99999"]),
        owned(&["-bind=127.0.0.1:-1"]),
        owned(&["-bind=127.0.0.1:x"]),
        owned(&["-bind=::1"]),
        owned(&["-bind=[::1"]),
        owned(&["-bind=10.1.1.1:{gossip}", "-iface=lo"]),
        owned(&["-bind=0.0.0.0:{gossip}", "-iface=lo", "-profile=x"]),
        owned(&["-advertise=::1"]),
        owned(&["-advertise=127.0.0.1:x"]),
        owned(&["-advertise=[::1"]),
        owned(&["-encrypt=abc"]),
        owned(&["-encrypt=abcd="]),
        owned(&["-encrypt=a==="]),
        owned(&["-encrypt=abcdefghi!jkl"]),
        owned(&["-encrypt=QFIhbOXihVP/KVjvkq0ixuPpwmay5ThQNCG3MvG1eJY"]),
        owned(&["-profile=x"]),
        owned(&["-profile=wan", "-protocol=1"]),
        owned(&["-protocol=9"]),
        owned(&["-protocol=300"]),
        // The node: sockets, keys, snapshot, limits.
        owned(&["-encrypt=abcd"]),
        owned(&["-encrypt=ab=="]),
        owned(&["-bind=1.2.3.4:{gossip}"]),
        vec![format!("-bind=127.0.0.1:{busy_tcp}")],
        vec![format!("-bind=127.0.0.1:{busy_udp}")],
        owned(&["-snapshot=/nonexistent/snapshot"]),
        vec![format!("-snapshot={scratch}")],
        // The RPC listener.
        owned(&["-rpc-addr=notanaddr"]),
        owned(&["-rpc-addr=127.0.0.1:99999"]),
        owned(&["-rpc-addr=127.0.0.1:x"]),
        owned(&["-rpc-addr=[::1"]),
        owned(&["-rpc-addr=bad!host:1"]),
        owned(&["-rpc-addr=1.2.3.4:{rpc}"]),
        vec![format!("-rpc-addr=127.0.0.1:{busy_tcp}")],
        // The start-up join: the banner, then HashiCorp's error list.
        owned(&["-join=127.0.0.1:1"]),
        owned(&["-join=127.0.0.1:1", "-join=bad!host", "-join=/x"]),
        // Tags and keyring files.
        vec![tags_file("tags-syntax", "vm\n")],
        vec![tags_file("tags-array", "[1]")],
        vec![tags_file("tags-number", r#"{"a":1}"#)],
        vec![tags_file("tags-cut", r#"{"a":"b"#)],
        vec![format!("-tags-file={scratch}")],
        vec![tags_file("tags-ok", "{}"), "-tag=a=b".into()],
        owned(&["-keyring-file=/nonexistent/keyring"]),
        vec![format!("-keyring-file={scratch}")],
        vec![keyring("ring-syntax", "tru")],
        vec![keyring("ring-object", "{}")],
        vec![keyring("ring-number", "[1]")],
        vec![keyring("ring-empty", "[]")],
        vec![keyring("ring-base64", r#"["abc"]"#)],
        vec![keyring("ring-short", r#"["YWJj"]"#)],
        vec![keyring("ring-empty-key", r#"[""]"#)],
        vec![
            keyring("ring-ok", &format!(r#"["{k1}"]"#)),
            format!("-encrypt={k1}"),
        ],
        // Config files: Go's JSON syntax errors, then mapstructure's.
        vec![config("empty.json", "")],
        vec![config("blank.json", "  \n")],
        vec![config("open.json", "{")],
        vec![config("cut.json", r#"{"a":"\u12"#)],
        vec![config("quote.json", "{'a':1}")],
        vec![config("literal.json", "nul")],
        vec![config("array.json", "[1,2]")],
        vec![config("string.json", r#""str""#)],
        vec![config("unknown.json", r#"{"nod_name":"x","yy":1}"#)],
        vec![config("protocol.json", r#"{"protocol":"five"}"#)],
        vec![config("node.json", r#"{"node_name":1}"#)],
        vec![config("bool.json", r#"{"enable_syslog":"yes"}"#)],
        vec![config("handlers.json", r#"{"event_handlers":"x"}"#)],
        vec![config("join.json", r#"{"start_join":["a",1]}"#)],
        vec![config("tags.json", r#"{"tags":{"a":1}}"#)],
        vec![config("tags-list.json", r#"{"tags":[]}"#)],
        vec![config("mdns.json", r#"{"mdns":"x"}"#)],
        vec![config(
            "several.json",
            r#"{"mdns":{"interface":1,"zz":1},"protocol":"x","yy":2}"#,
        )],
        vec![config("duration.json", r#"{"retry_interval":"soon"}"#)],
        vec![config("unit.json", r#"{"tombstone_timeout":"1h1x"}"#)],
        vec![config(
            "lenient.json",
            r#"{"Node_Name":"up","protocol":4.7,"profile":"x"}"#,
        )],
        vec![config(
            "facility.json",
            r#"{"syslog_facility":"nope","enable_syslog":true}"#,
        )],
        vec![config("limit.json", r#"{"user_event_size_limit":99999}"#)],
        vec![config(
            "big-tags.json",
            &format!(r#"{{"tags":{{"a":"{big}"}}}}"#),
        )],
        vec![config(
            "statsd.json",
            r#"{"statsd_addr":"nowhere","profile":"x"}"#,
        )],
    ];
    let cases: Vec<Vec<String>> = flag_cases
        .into_iter()
        .map(|extra| {
            let (gossip, rpc) = (free_port().to_string(), free_port().to_string());
            let mut args = owned(&["agent", "-node=errs"]);
            args.push(format!("-bind=127.0.0.1:{gossip}"));
            args.push(format!("-rpc-addr=127.0.0.1:{rpc}"));
            args.extend(
                extra
                    .iter()
                    .map(|a| a.replace("{gossip}", &gossip).replace("{rpc}", &rpc)),
            );
            args
        })
        .collect();
    let n = run_table(&cases, AGENT_LIMIT);
    assert!(n >= 100, "{n}");

    // The differences this table was written for, spelled out.
    let out = |extra: &[&str]| {
        let mut args = vec!["agent", "-node=errs"];
        args.extend_from_slice(extra);
        run_bounded(ours(), &args, &[], AGENT_LIMIT)
    };
    let bad_key = out(&["-bind=127.0.0.1:0", "-encrypt=abcdefghi!jkl"]);
    assert_eq!(
        (bad_key.code, bad_key.stdout.as_str()),
        (
            Some(1),
            "==> Invalid encryption key: illegal base64 data at input byte 9\n"
        )
    );
    let short_key = out(&["-bind=127.0.0.1:0", "-encrypt=abcd"]);
    assert_eq!(
        short_key.stdout,
        "==> Starting Serf agent...\n==> Failed to start the Serf agent: Error creating Serf: \
         Failed to create memberlist: key size must be 16, 24 or 32 bytes\n",
        "no log line after the failure"
    );
}

/// Names that need a DNS answer: Go's resolver names the server it asked. Compared only where
/// this machine's resolver answers "no such host" (HashiCorp's binary says so first); without
/// one, Go's texts name network errors that are not reproduced.
#[test]
fn dns_errors_match_reference() {
    let probe = run_bounded(
        binary(),
        &["members", "-rpc-addr=notanip.invalid:1"],
        &[],
        RUN_LIMIT,
    );
    if !probe.stdout.ends_with(": no such host\n") {
        eprintln!("skipped: no resolver answers here ({probe:?})");
        return;
    }
    let ports = || (free_port(), free_port());
    let mut cases = vec![owned(&["members", "-rpc-addr=notanip.invalid:1"])];
    for flag in [
        "-bind=notanip",
        "-advertise=notanip",
        "-join=notanip.invalid",
    ] {
        let (gossip, rpc) = ports();
        cases.push(vec![
            "agent".into(),
            "-node=errs".into(),
            format!("-bind=127.0.0.1:{gossip}"),
            format!("-rpc-addr=127.0.0.1:{rpc}"),
            flag.into(),
        ]);
    }
    let (gossip, _) = ports();
    cases.push(vec![
        "agent".into(),
        "-node=errs".into(),
        format!("-bind=127.0.0.1:{gossip}"),
        "-rpc-addr=notanip:1".into(),
    ]);
    run_table(&cases, AGENT_LIMIT);
}

/// A pair of agents, HashiCorp's and ours, started alike; each CLI talks to its own.
struct Pair {
    theirs: Agent,
    mine: Agent,
}

impl Pair {
    fn start(name: &str, extra: &[&str]) -> Pair {
        let at = || std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        Pair {
            theirs: Agent::start_binary(binary(), name, at(), extra),
            mine: Agent::start_binary(ours(), name, at(), extra),
        }
    }

    /// `cmd rest…` with each binary against its own agent, up to `tries` times until they
    /// match; the difference, if they never do.
    fn differs(&self, cmd: &str, rest: &[&str], tries: usize) -> Option<String> {
        let subs = |a: &Agent| {
            vec![
                (a.rpc.to_string(), "<rpc>".to_string()),
                (a.gossip.to_string(), "<gossip>".to_string()),
                // A join address without a port takes the agent's own.
                (
                    format!(":{}", a.gossip.port()),
                    ":<gossip-port>".to_string(),
                ),
            ]
        };
        let subs: Vec<(String, String)> = subs(&self.theirs)
            .into_iter()
            .chain(subs(&self.mine))
            .collect();
        let mut last = None;
        for _ in 0..tries {
            let run = |a: &Agent| {
                let args = against(a, cmd, rest);
                run_bounded(&a.bin, &strs(&args), &[], RUN_LIMIT)
            };
            let args = against(&self.theirs, cmd, rest);
            match compare(&args, run(&self.theirs), run(&self.mine), &subs) {
                None => return None,
                Some(diff) => last = Some(diff),
            }
        }
        last
    }

    /// Runs every case (`tries` each); panics listing every one that differs.
    fn table(&self, cases: &[(&str, Vec<String>, usize)]) -> usize {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(cmd, rest, tries)| self.differs(cmd, &strs(rest), *tries))
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} cases differ from HashiCorp's:\n\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n\n")
        );
        eprintln!("{} cases compared", cases.len());
        cases.len()
    }
}

/// Errors that running agents return: bad filters, addresses to join, names, payloads over the
/// limits, bad keys (plain and encrypted clusters), authentication. Every state change happens
/// on both agents alike.
#[test]
fn errors_from_running_agents_match_reference() {
    let case = |cmd: &'static str, rest: &[&str]| (cmd, owned(rest), 1);
    let event_payload = "x".repeat(500);
    let event_too_big = "x".repeat(600);
    let query_too_big = "x".repeat(2000);
    let tag_too_big = format!("-set={}=v", "k".repeat(600));
    let plain = Pair::start("errs", &[]);
    let n = plain.table(&[
        case("members", &["-format=xml"]),
        case("members", &["-status=("]),
        case("members", &["-name=("]),
        case("members", &["-tag=a=("]),
        case("members", &["-role=x"]),
        case("join", &["127.0.0.1:1"]),
        case("join", &["127.0.0.1:1", "127.0.0.1:2"]),
        case("join", &["/127.0.0.1:1"]),
        case("join", &["x/127.0.0.1:1"]),
        case("join", &["[::1"]),
        case("join", &["[::1]:1"]),
        case("join", &["::1"]),
        case("join", &["127.0.0.1:99999"]),
        case("join", &["127.0.0.1:notaport"]),
        case("join", &[""]),
        case("join", &["bad!host", "127.0.0.1:1"]),
        case("join", &["127.1"]),
        case("force-leave", &["nosuch"]),
        case("force-leave", &["-prune", "nosuch"]),
        case("event", &["_serf_x"]),
        case("event", &[""]),
        case("event", &["ev", &event_payload]),
        case("event", &["ev", &event_too_big]),
        case("query", &["_serf_ping"]),
        case("query", &[""]),
        case("query", &["-timeout=-1s", "q"]),
        case("query", &["-format=xml", "q"]),
        case("query", &["-tag=a=(", "q"]),
        case("query", &["-node=nosuch", "-timeout=200ms", "q"]),
        case("query", &["q", &query_too_big]),
        case("keys", &["-list"]),
        case("keys", &["-install=abc"]),
        case("keys", &["-install=abcdefghi!jkl"]),
        case("keys", &["-install=abcde"]),
        case("keys", &["-install=abcd="]),
        case("keys", &["-install=ab=="]),
        case("keys", &["-install=a==="]),
        case("keys", &["-install=ab=x"]),
        case("keys", &["-use=abc"]),
        case("keys", &["-remove=abc"]),
        case(
            "keys",
            &["-install=QFIhbOXihVP/KVjvkq0ixuPpwmay5ThQNCG3MvG1eJY="],
        ),
        case("tags", &[&tag_too_big]),
        case("tags", &["-delete=nosuch"]),
        case("monitor", &["-log-level=foo"]),
        case("monitor", &["-log-level="]),
        case("rtt", &["nosuch"]),
        case("rtt", &["errs", "nosuch"]),
        case("rtt", &["nosuch", "errs"]),
        case("info", &["-format=xml"]),
    ]);

    let k1 = "QFIhbOXihVP/KVjvkq0ixuPpwmay5ThQNCG3MvG1eJY=";
    let k2 = "7szrWUieYRUaWpuRTmM25reSJmJFNb6wM4wdoSffd+g=";
    let dir = Scratch::new("agent-errors-auth");
    let auth = dir.join("auth.json");
    std::fs::write(&auth, r#"{"rpc_auth":"secret"}"#).expect("config");
    let encrypted = Pair::start(
        "errs",
        &[
            &format!("-encrypt={k1}"),
            &format!("-config-file={}", auth.display()),
        ],
    );
    let keys = |rest: &[&str], tries: usize| {
        let mut args = owned(&["-rpc-auth=secret"]);
        args.extend(owned(rest));
        ("keys", args, tries)
    };
    let m = encrypted.table(&[
        case("members", &[]),
        case("members", &["-rpc-auth=wrong"]),
        case("monitor", &["-rpc-auth=wrong"]),
        case("leave", &["-rpc-auth=wrong"]),
        keys(&["-list"], 1),
        keys(&["-install=AAAA"], 1),
        keys(&["-install=abc"], 1),
        keys(&["-use=AAAAAAAAAAAAAAAAAAAAAA=="], 1),
        keys(&[&format!("-install={k2}")], 1),
        keys(&[&format!("-use={k2}")], 1),
        keys(&[&format!("-remove={k2}")], 1),
        keys(&[&format!("-remove={k1}")], 1),
        // Go lists the keys in map order.
        keys(&["-list"], 20),
    ]);
    assert!(n + m >= 60, "{}", n + m);
}
