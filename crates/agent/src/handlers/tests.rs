//! Unit tests of the handler scripts: spec parsing, the environment and stdin contract, and the
//! runner's scheduling, output handling and shutdown against real `/bin/sh` scripts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::input::{member_stdin, payload_stdin, tag_env_name, ScriptInput};
use super::process::{exit_error, OutputRing};
use super::{DispatchContext, HandlerRunner, HandlerSpec, Responder, RunnerLimits, OUTPUT_LIMIT};
use crate::log::{Level, Logger, Subscription};
use serf::api::{Event, Member, MemberEventType, MemberStatus, QueryEvent, Tags, UserEvent};

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
        queue_bytes: 1 << 20,
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
    // The output's last newline is the line's end, as Go's log writers treat it.
    let line =
        lines.wait("[DEBUG] agent: Event 'query' script output: query load 42\nload average\nerr");
    assert!(line.ends_with("\nerr"), "{line:?}");
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
fn full_lanes_drop_count_and_warn_once() {
    // Each invocation holds its 4000-byte payload and some 1 KiB more: two fit in 12,000 bytes.
    let mut limits = limits(1, 1, 100);
    limits.queue_bytes = 12_000;
    let started = TempPath::new("full");
    let script = format!("user=touch {}; sleep 30", started.shell());
    let (runner, mut lines) = runner(&[&script], limits);
    let payload = vec![b'x'; 4000];
    let dropped: u64 = (0..5)
        .map(|_| runner.dispatch(&user("x", &payload), ctx(None)))
        .sum();
    assert_eq!(dropped, 3);
    lines.wait(
        "[WARN] agent: Event handler queue for member and user events full (12000 bytes): \
         dropping event 'user' for script 'touch ",
    );
    // The first invocation runs, the second waits for it and is discarded at shutdown.
    started.wait();
    runner.shutdown();
    lines.wait("Discarding 1 pending event handler invocations at shutdown");
    let warnings: Vec<&String> = lines
        .drain()
        .iter()
        .filter(|l| l.contains("dropped so far"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one line for the three drops: {warnings:#?}"
    );
    assert!(
        warnings[0].ends_with("; 1 dropped so far"),
        "{}",
        warnings[0]
    );
    assert_eq!(
        runner.dispatch(&user("x", b""), ctx(None)),
        0,
        "after shutdown nothing is queued, so nothing is dropped"
    );
}

#[test]
fn an_empty_lane_takes_an_invocation_larger_than_its_bound() {
    let out = TempPath::new("large");
    let script = format!("user=cat > {0}.part && mv {0}.part {0}", out.shell());
    let mut limits = limits(1, 1, 1000);
    limits.queue_bytes = 1;
    let (runner, _lines) = runner(&[&script], limits);
    let payload = vec![b'y'; 100_000];
    assert_eq!(runner.dispatch(&user("big", &payload), ctx(None)), 0);
    assert_eq!(out.wait().len(), 100_001);
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

/// Where an ordered lane's time goes per invocation, for the load scenario's handler (a script
/// file appending its payload to a file, run through `/bin/sh -c`). Not run by default and
/// nothing is asserted; it prints the median and 90th percentile of each step:
/// `cargo test --release -p serf-agent --lib lane_steps -- --ignored --nocapture`.
/// `LANE_STEPS_SPINNERS=n` adds n busy threads, like the agents sharing the machine under load.
#[test]
#[ignore]
fn lane_steps() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::steps::{collecting, Step};

    const EVENTS: usize = 1000;
    let handler = TempPath::new("steps.sh");
    let out = TempPath::new("steps.log");
    std::fs::write(
        &handler.0,
        "#!/bin/sh\nread -r seq\necho \"$seq\" >> \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&handler.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = format!("user={} {}", handler.shell(), out.shell());
    let spinners: usize = std::env::var("LANE_STEPS_SPINNERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let spinning: Vec<_> = (0..spinners)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let limits = limits(4, 4, 5000);
    let (runner, _lines) = runner(&[&spec], limits);
    println!("{EVENTS} invocations per run, {spinners} busy threads beside them; µs, p50 / p90");
    for (mode, pace) in [("backlog", None), ("200/s", Some(Duration::from_millis(5)))] {
        let _ = std::fs::remove_file(&out.0);
        let mut dispatch = Vec::with_capacity(EVENTS);
        let started = Instant::now();
        let marks = collecting(|| {
            for seq in 0..EVENTS {
                if let Some(pace) = pace {
                    let due = started + pace * seq as u32;
                    thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                let at = Instant::now();
                runner.dispatch(&user("load", seq.to_string().as_bytes()), ctx(None));
                dispatch.push(at.elapsed());
            }
            let deadline = Instant::now() + Duration::from_secs(120);
            while std::fs::read_to_string(&out.0).map_or(0, |t| t.lines().count()) < EVENTS {
                assert!(Instant::now() < deadline, "the handler did not finish");
                thread::sleep(Duration::from_millis(5));
            }
            // The last script has written its line; let its worker see it exit.
            thread::sleep(Duration::from_millis(300));
        });
        let at = |step: Step| -> Vec<Instant> {
            marks
                .iter()
                .filter(|(s, _)| *s == step)
                .map(|(_, t)| *t)
                .collect()
        };
        let [queued, taken, spawning, spawned, closed, exited, handled] = [
            Step::Queued,
            Step::Taken,
            Step::Spawning,
            Step::Spawned,
            Step::OutputClosed,
            Step::Exited,
            Step::Handled,
        ]
        .map(at);
        assert!(
            [&queued, &taken, &spawning, &spawned, &closed, &exited, &handled]
                .iter()
                .all(|v| v.len() == EVENTS),
            "a step is missing a mark"
        );
        let exit_first = (0..EVENTS).filter(|&k| exited[k] < closed[k]).count();
        // The end of the output and the exit, whichever came first and last.
        let first: Vec<Instant> = closed.iter().zip(&exited).map(|(c, e)| *c.min(e)).collect();
        let last: Vec<Instant> = closed.iter().zip(&exited).map(|(c, e)| *c.max(e)).collect();
        let gaps = |from: &[Instant], to: &[Instant]| -> Vec<Duration> {
            from.iter()
                .zip(to)
                .map(|(a, b)| b.saturating_duration_since(*a))
                .collect()
        };
        // A job can start once it is queued and its predecessor is handled.
        let ready: Vec<Instant> = (0..EVENTS)
            .map(|k| match k {
                0 => queued[0],
                _ => queued[k].max(handled[k - 1]),
            })
            .collect();
        let rows = [
            ("dispatch (enqueue)", dispatch),
            ("ready → a worker has it", gaps(&ready, &taken)),
            ("command built (env, pipes)", gaps(&taken, &spawning)),
            ("posix_spawn", gaps(&spawning, &spawned)),
            ("script runs (to EOF or exit)", gaps(&spawned, &first)),
            ("then the other of the two", gaps(&first, &last)),
            ("both → logged, measured", gaps(&last, &handled)),
            ("whole invocation", gaps(&taken, &handled)),
            ("cycle (taken → next taken)", gaps(&taken, &taken[1..])),
        ];
        let elapsed = handled[EVENTS - 1].duration_since(taken[0]);
        println!(
            "{mode}: {:.0} scripts/s ({exit_first} exits seen before EOF)",
            EVENTS as f64 / elapsed.as_secs_f64()
        );
        for (name, mut values) in rows {
            values.sort();
            let pct = |p: usize| values[(values.len() - 1) * p / 100].as_secs_f64() * 1e6;
            println!("  {name:<30} {:>8.0} {:>8.0}", pct(50), pct(90));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for s in spinning {
        s.join().unwrap();
    }
}
