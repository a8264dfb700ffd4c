//! Our `serf` binary against HashiCorp's (serf v0.11.0), run with the same arguments against
//! HashiCorp's agent: outputs must be byte-identical (where Go's output depends on map iteration
//! order, the pair is re-run a bounded number of times until the orders agree), exit codes equal.
//! Help texts are the exception: their wording is our own, so they are compared by structure
//! (see `cli_runs::same_stream`). The error-text tables, each binary on its own, are in
//! `errors_against_reference.rs`. Agents listen on loopback only and are killed when their
//! guards drop; every process and every wait is bounded.

#[path = "../../../tests/common/reference.rs"]
mod reference;

#[path = "common/cli_runs.rs"]
mod cli_runs;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_runs::{
    against, assert_same, exec, exec_env, help_flags, listed_commands, ours, same_help, strs, Guard,
};
use reference::{binary, free_port, wait_until, Agent, Scratch};
use serde_json::Value;
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
