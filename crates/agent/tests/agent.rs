//! The `serf` binary as a drop-in agent: HashiCorp's README walkthrough verbatim, HashiCorp's
//! own CLI driving our agent, event handlers firing alike on our agents and reference agents,
//! and bad input. Every agent is a child process, killed when its guard drops.

#[path = "../../../tests/common/reference.rs"]
mod reference;

#[path = "common/own_events.rs"]
mod own_events;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reference::{free_port, wait_until, Agent, Scratch};
use serde_json::Value;

fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_serf"))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> Scratch {
    Scratch::new(&format!("agent-test-{name}"))
}

fn run(bin: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(bin).args(args).output().expect("run serf");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// HashiCorp's README, with our binary and its exact commands: two agents, a join, members,
/// ctrl-C (left), and a kill (failed). The ports are the README's, so the CLI needs no
/// `-rpc-addr` for foo.
#[test]
fn seed_walkthrough_verbatim() {
    let dir = scratch("walkthrough");
    let spawn = |args: &[&str], log: &str| {
        KillOnDrop(
            Command::new(ours())
                .args(args)
                .stdout(std::fs::File::create(dir.join(log)).unwrap())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start an agent"),
        )
    };
    let foo_args = [
        "agent",
        "-node=foo",
        "-bind=127.0.0.1:5000",
        "-rpc-addr=127.0.0.1:7373",
    ];
    let bar_args = [
        "agent",
        "-node=bar",
        "-bind=127.0.0.1:5001",
        "-rpc-addr=127.0.0.1:7374",
    ];
    let mut foo = spawn(&foo_args, "foo.log");
    let mut bar = spawn(&bar_args, "bar.log");
    let bar_rpc = "-rpc-addr=127.0.0.1:7374";
    let up = |extra: &[&str]| {
        let args: Vec<&str> = ["members"].iter().chain(extra).copied().collect();
        wait_until(Duration::from_secs(10), || run(ours(), &args).0 == Some(0))
    };
    assert!(up(&[]) && up(&[bar_rpc]), "the agents did not start");

    let (code, out) = run(ours(), &["join", "127.0.0.1:5001"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.trim(),
        "Successfully joined cluster by contacting 1 nodes."
    );
    let status = |name: &str, extra: &[&str]| {
        let args: Vec<&str> = ["members"].iter().chain(extra).copied().collect();
        let (_, out) = run(ours(), &args);
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
    };
    let alive = |name: &str, extra: &[&str]| status(name, extra).as_deref() == Some("alive");
    assert!(wait_until(Duration::from_secs(10), || {
        alive("foo", &[])
            && alive("bar", &[])
            && alive("foo", &[bar_rpc])
            && alive("bar", &[bar_rpc])
    }));
    let (_, members) = run(ours(), &["members"]);
    assert!(
        members
            .lines()
            .any(|l| l.starts_with("bar ") && l.contains("127.0.0.1:5001")),
        "{members}"
    );

    // ctrl-C: a graceful leave, exit code 0, and foo shows bar as left.
    let code = signal(&mut bar.0, "INT", Duration::from_secs(10));
    let bar_log = std::fs::read_to_string(dir.join("bar.log")).unwrap_or_default();
    assert_eq!(code, Some(0), "bar's output: {bar_log}");
    assert!(
        bar_log.contains("==> Caught signal: interrupt"),
        "{bar_log}"
    );
    assert!(
        bar_log.contains("==> Gracefully shutting down agent..."),
        "{bar_log}"
    );
    assert!(wait_until(Duration::from_secs(10), || status("bar", &[])
        .as_deref()
        == Some("left")));

    // Back again, then kill -9: foo marks it failed within the LAN profile's detection time.
    let mut bar = spawn(&bar_args, "bar2.log");
    assert!(up(&[bar_rpc]));
    assert_eq!(run(ours(), &["join", bar_rpc, "127.0.0.1:5000"]).0, Some(0));
    assert!(wait_until(Duration::from_secs(10), || alive("bar", &[])));
    let _ = bar.0.kill();
    let _ = bar.0.wait();
    assert!(wait_until(Duration::from_secs(30), || status("bar", &[])
        .as_deref()
        == Some("failed")));
    assert_eq!(signal(&mut foo.0, "INT", Duration::from_secs(10)), Some(0));
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &mut std::process::Child, sig: &str, limit: Duration) -> Option<i32> {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
    let mut code = None;
    wait_until(limit, || match child.try_wait() {
        Ok(Some(s)) => {
            code = s.code();
            true
        }
        _ => false,
    });
    code
}

/// HashiCorp's CLI against our agents: every command the issue lists.
#[test]
fn reference_cli_drives_our_agent() {
    let refcli = reference::binary();
    let dir = scratch("refcli");
    let key1 = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";
    let key2 = "HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=";
    let events = dir.join("events");
    let handlers = [
        format!("-event-handler=user:deploy=cat >> {}", events.display()),
        "-event-handler=query:echo=cat".to_string(),
        format!("-encrypt={key1}"),
        "-tag=role=web".to_string(),
    ];
    let handlers: Vec<&str> = handlers.iter().map(String::as_str).collect();
    let mut a = Agent::start_binary(ours(), "ours-a", loopback(free_port()), &handlers);
    let mut b = Agent::start_binary(ours(), "ours-b", loopback(free_port()), &handlers);
    let cli = |args: &[&str]| a.cli_with(refcli, args);

    // join, members (text and JSON)
    let out = cli(&["join", &b.gossip.to_string()]).expect("join");
    assert_eq!(
        out.trim(),
        "Successfully joined cluster by contacting 1 nodes."
    );
    assert!(wait_until(Duration::from_secs(10), || {
        let m = cli(&["members"]).unwrap_or_default();
        m.lines().filter(|l| l.contains("alive")).count() == 2
    }));
    let text = cli(&["members", "-detailed"]).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("ours-b"))
        .expect("b listed");
    assert!(
        line.contains(&b.gossip.to_string()) && line.contains("role=web"),
        "{text}"
    );
    assert!(
        line.contains("Protocol Version: 5") && line.contains("Available Protocol Range: [2, 5]"),
        "{text}"
    );
    let json: Value = serde_json::from_str(&cli(&["members", "-format=json"]).unwrap()).unwrap();
    let members = json["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let mb = members.iter().find(|m| m["name"] == "ours-b").unwrap();
    assert_eq!(mb["addr"], b.gossip.to_string());
    assert_eq!(mb["status"], "alive");
    assert_eq!(mb["tags"]["role"], "web");
    assert_eq!(mb["protocol"]["version"], 5);
    let filtered = cli(&["members", "-name=ours-a", "-status=alive"]).unwrap();
    assert_eq!(filtered.lines().count(), 1, "{filtered}");

    // event: both agents' handlers write the payload
    let out = cli(&["event", "deploy", "v1"]).unwrap();
    assert_eq!(
        out.trim(),
        "Event 'deploy' dispatched! Coalescing enabled: true"
    );
    assert!(
        wait_until(Duration::from_secs(15), || {
            std::fs::read_to_string(&events).unwrap_or_default() == "v1\nv1\n"
        }),
        "events file: {:?}",
        std::fs::read_to_string(&events)
    );

    // query answered by both handlers
    let out = cli(&["query", "-format=json", "-timeout=3s", "echo", "ping"]).unwrap();
    let q: Value = serde_json::from_str(&out).unwrap();
    for name in ["ours-a", "ours-b"] {
        assert_eq!(q["Responses"][name], "ping\n", "{out}");
        assert!(
            q["Acks"].as_array().unwrap().iter().any(|n| n == name),
            "{out}"
        );
    }
    let out = cli(&["query", "-timeout=2s", "echo", "hi"]).unwrap();
    assert!(out.contains("Query 'echo' dispatched"), "{out}");
    assert!(out.contains("Response from 'ours-b': hi"), "{out}");
    assert!(out.contains("Total Responses: 2"), "{out}");

    // tags set and delete
    let out = cli(&["tags", "-set", "dc=east", "-delete", "role"]).unwrap();
    assert_eq!(out.trim(), "Successfully updated agent tags");
    assert!(wait_until(Duration::from_secs(10), || {
        let m = b
            .cli_with(refcli, &["members", "-name=ours-a"])
            .unwrap_or_default();
        m.contains("dc=east") && !m.contains("role=web")
    }));

    // keys: list, install, use, remove
    let out = cli(&["keys", "-list"]).unwrap();
    assert!(
        out.contains(&format!("{key1} [2/2]")) || out.contains(&format!("{key1}  [2/2]")),
        "{out}"
    );
    let out = cli(&["keys", "-install", key2]).unwrap();
    assert!(out.contains("Successfully installed key"), "{out}");
    cli(&["keys", "-use", key2]).unwrap();
    let out = cli(&["keys", "-remove", key1]).unwrap();
    assert!(out.contains("Successfully removed key"), "{out}");
    let out = cli(&["keys", "-list"]).unwrap();
    assert!(out.contains(key2) && !out.contains(key1), "{out}");

    // info, text and JSON
    let out = cli(&["info"]).unwrap();
    for section in ["agent:", "event_handlers:", "runtime:", "serf:", "tags:"] {
        assert!(
            out.lines().any(|l| l == section),
            "{section} missing: {out}"
        );
    }
    assert!(out.contains("\tname = ours-a"), "{out}");
    let info: Value = serde_json::from_str(&cli(&["info", "-format=json"]).unwrap()).unwrap();
    assert_eq!(info["serf"]["members"], "2");
    assert_eq!(info["serf"]["encrypted"], "true");
    assert_eq!(info["event_handlers"]["query:echo"], "cat");

    // rtt, once coordinates exist
    let mut rtt = String::new();
    assert!(
        wait_until(Duration::from_secs(15), || {
            rtt = cli(&["rtt", "ours-a", "ours-b"]).unwrap_or_default();
            rtt.starts_with("Estimated ours-a <-> ours-b rtt:")
        }),
        "{rtt}"
    );
    assert!(rtt.trim_end().ends_with(" ms"), "{rtt}");

    // monitor: log lines stream in
    let mut monitor = Command::new(refcli)
        .args([
            "monitor",
            &format!("-rpc-addr={}", a.rpc),
            "-log-level=debug",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    cli(&["event", "-coalesce=false", "ping", "x"]).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let _ = monitor.kill();
    let mut shown = String::new();
    monitor
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut shown)
        .unwrap();
    let _ = monitor.wait();
    assert!(
        shown.contains("[INFO] agent: Received event: user-event: ping"),
        "{shown}"
    );
    assert!(
        shown.contains("[INFO] agent: Serf agent starting"),
        "the ring is replayed: {shown}"
    );

    // force-leave: kill b, wait for failed, force it out
    b.kill();
    assert!(wait_until(Duration::from_secs(30), || a
        .status_of("ours-b")
        .as_deref()
        == Some("failed")));
    assert_eq!(cli(&["force-leave", "ours-b"]).unwrap().trim(), "");
    assert!(wait_until(Duration::from_secs(10), || a
        .status_of("ours-b")
        .as_deref()
        == Some("left")));

    // leave: the agent leaves and exits
    let out = cli(&["leave"]).unwrap();
    assert_eq!(out.trim(), "Graceful leave complete");
    let mut code = None;
    assert!(wait_until(Duration::from_secs(10), || {
        code = a.exited();
        code.is_some()
    }));
    assert_eq!(code, Some(Some(0)));
}

/// One handler script on both kinds of agent, recording its environment and stdin: the
/// records must match, name aside.
#[test]
fn handlers_see_the_same_environment_and_stdin_on_both_implementations() {
    let dir = scratch("handlers");
    let script = dir.join("record.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nout={}/$SERF_SELF_NAME-$SERF_EVENT\n{{ env | grep '^SERF_' | grep -v '^SERF_SELF_NAME=' | sort; echo ---; cat; }} > \"$out\".tmp && mv \"$out\".tmp \"$out\"\n",
            dir.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let handler = format!("-event-handler={}", script.display());
    let flags = [handler.as_str(), "-tag=role=db", "-tag=dc=x"];
    let theirs = Agent::start("mixed-ref", &flags);
    let ours_agent = Agent::start_binary(ours(), "mixed-lib", loopback(free_port()), &flags);
    ours_agent
        .cli(&["join", &theirs.gossip.to_string()])
        .expect("join");
    let read =
        |name: &str, event: &str| std::fs::read_to_string(dir.join(format!("{name}-{event}"))).ok();

    // Each side's member-join record of the other: same shape.
    assert!(wait_until(Duration::from_secs(20), || {
        read("mixed-ref", "member-join").is_some_and(|r| r.contains("mixed-lib"))
            && read("mixed-lib", "member-join").is_some_and(|r| r.contains("mixed-ref"))
    }));
    let normalize = |text: String| {
        text.replace("mixed-ref", "NODE")
            .replace("mixed-lib", "NODE")
    };
    let r = read("mixed-ref", "member-join").unwrap();
    let l = read("mixed-lib", "member-join").unwrap();
    // `name\tip\trole\tk=v,k=v`: Go lists the tags in random map order, so compare them sorted.
    let member_line = |t: &str| {
        t.lines().find(|l| l.contains("mixed-")).map(|l| {
            let mut fields: Vec<String> = l.split('\t').map(str::to_string).collect();
            if let Some(tags) = fields.last_mut() {
                let mut pairs: Vec<&str> = tags.split(',').collect();
                pairs.sort_unstable();
                *tags = pairs.join(",");
            }
            fields.join("\t")
        })
    };
    assert_eq!(
        normalize(member_line(&r).unwrap()),
        normalize(member_line(&l).unwrap()),
        "ref:\n{r}\nlib:\n{l}"
    );
    let env_part = |t: &str| t.split("---").next().unwrap().to_string();
    assert_eq!(env_part(&r), env_part(&l), "ref:\n{r}\nlib:\n{l}");

    // A user event from our side, a query from theirs.
    ours_agent
        .cli(&["event", "-coalesce=false", "deploy", "v2"])
        .unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        read("mixed-ref", "user").is_some() && read("mixed-lib", "user").is_some()
    }));
    let (r, l) = (
        read("mixed-ref", "user").unwrap(),
        read("mixed-lib", "user").unwrap(),
    );
    assert_eq!(r, l);
    assert!(
        r.contains("SERF_USER_EVENT=deploy")
            && r.contains("SERF_TAG_ROLE=db")
            && r.ends_with("---\nv2\n"),
        "{r}"
    );

    theirs
        .cli(&["query", "-timeout=2s", "inventory", "all"])
        .unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        read("mixed-ref", "query").is_some() && read("mixed-lib", "query").is_some()
    }));
    let (r, l) = (
        read("mixed-ref", "query").unwrap(),
        read("mixed-lib", "query").unwrap(),
    );
    assert_eq!(r, l);
    assert!(
        r.contains("SERF_QUERY_NAME=inventory") && r.ends_with("---\nall\n"),
        "{r}"
    );
}

/// Bad input never crashes: flags, addresses, config files, RPC auth, RPC garbage.
#[test]
fn bad_input_gives_clear_errors() {
    let dir = scratch("bad");
    let (code, out) = run(ours(), &["agent", "-no-such-flag"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("flag provided but not defined: -no-such-flag")
            && out.contains("Usage: serf agent"),
        "{out}"
    );

    let (code, out) = run(ours(), &["agent", "-node=x", "-bind=not an address:99999"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("Invalid bind address"), "{out}");

    let missing = dir.join("missing.json");
    let (code, out) = run(
        ours(),
        &["agent", &format!("-config-file={}", missing.display())],
    );
    assert_eq!(code, Some(1));
    assert!(out.contains("Error reading"), "{out}");

    let bad_json = dir.join("bad.json");
    std::fs::write(&bad_json, "{\"node_name\": ").unwrap();
    let (code, out) = run(
        ours(),
        &["agent", &format!("-config-file={}", bad_json.display())],
    );
    assert_eq!(code, Some(1));
    assert!(out.contains("Error decoding"), "{out}");

    let unknown_key = dir.join("unknown.json");
    std::fs::write(&unknown_key, "{\"nodename\": \"x\"}").unwrap();
    let (code, out) = run(
        ours(),
        &["agent", &format!("-config-file={}", unknown_key.display())],
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("'agent.Config' has invalid keys: nodename"),
        "{out}"
    );

    let (code, out) = run(
        ours(),
        &[
            "agent",
            "-node=x",
            "-bind=127.0.0.1:0",
            "-event-handler=bogus-event=x.sh",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(out.contains("Invalid event script"), "{out}");

    // rpc_auth: a wrong token is refused, the right one works, for both CLIs.
    let auth = dir.join("auth.json");
    std::fs::write(&auth, "{\"rpc_auth\": \"s3cret\"}").unwrap();
    let cfg = format!("-config-file={}", auth.display());
    let guarded = Agent::start_binary(ours(), "auth-node", loopback(free_port()), &[&cfg]);
    for cli in [ours(), reference::binary()] {
        let err = guarded
            .cli_with(cli, &["members", "-rpc-auth=wrong"])
            .unwrap_err();
        assert!(
            err.contains("Invalid authentication token"),
            "{}: {err}",
            cli.display()
        );
        let err = guarded.cli_with(cli, &["members"]).unwrap_err();
        assert!(
            err.contains("Authentication required"),
            "{}: {err}",
            cli.display()
        );
        assert!(guarded
            .cli_with(cli, &["members", "-rpc-auth=s3cret"])
            .is_ok());
    }

    // Garbage on the RPC port closes that connection; the agent keeps serving.
    let mut conn = TcpStream::connect(guarded.rpc).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(&[0xc1, 0xff, 0x00, 0x13, 0x37]).unwrap();
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the agent closes a connection that sends garbage");
    let mut conn = TcpStream::connect(guarded.rpc).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // A command before the handshake: "Handshake required", then closed.
    conn.write_all(&[
        0x82, 0xa7, b'C', b'o', b'm', b'm', b'a', b'n', b'd', 0xa7, b'm', b'e', b'm', b'b', b'e',
        b'r', b's', 0xa3, b'S', b'e', b'q', 0x01,
    ])
    .unwrap();
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    assert!(String::from_utf8_lossy(&reply).contains("Handshake required"));
    assert!(guarded.cli(&["members", "-rpc-auth=s3cret"]).is_ok());
}

/// `bin args…` run to its end (killed if it runs past `limit`): exit code, stdout, stderr.
fn outcome(bin: &Path, args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    use std::process::Stdio;
    let mut child = KillOnDrop(
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run serf"),
    );
    let mut code = None;
    let ended = wait_until(limit, || match child.0.try_wait() {
        Ok(Some(status)) => {
            code = status.code();
            true
        }
        _ => false,
    });
    assert!(
        ended,
        "{} {args:?} still runs after {limit:?}",
        bin.display()
    );
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let out = child
        .0
        .stdout
        .as_mut()
        .expect("piped")
        .read_to_string(&mut stdout);
    let err = child
        .0
        .stderr
        .as_mut()
        .expect("piped")
        .read_to_string(&mut stderr);
    out.and(err).expect("read the output");
    (code, stdout, stderr)
}

/// serf 0.11's checks of the mDNS options print what HashiCorp's agent prints, on the same
/// stream, with the same exit code, and at the same point: after the `-iface` check and before
/// any warning.
#[test]
fn mdns_option_errors_match_reference() {
    let dir = scratch("mdns-errors");
    let file = dir.join("mdns.json");
    std::fs::write(
        &file,
        r#"{"discover": "c", "mdns": {"interface": "lo", "disable_ipv4": true, "disable_ipv6": true}}"#,
    )
    .unwrap();
    let file = format!("-config-file={}", file.display());
    let without_discover = "==> mDNS interface specified without enabling mDNS discovery\n";
    let no_interface =
        "==> Invalid mDNS network interface: route ip+net: no such network interface\n";
    let no_family = "==> Invalid mDNS configuration: both IPv4 and IPv6 are disabled\n";
    let cases: [(&[&str], &str); 6] = [
        (
            &["-mdns-iface=lo", "-role=web", "-retry-interval=1ms"],
            without_discover,
        ),
        (&["-mdns-iface=no-such-if0", "-discover=c"], no_interface),
        (
            &[
                "-mdns-iface=lo",
                "-discover=c",
                "-mdns-disable-ipv4",
                "-mdns-disable-ipv6",
            ],
            no_family,
        ),
        (&[&file], no_family),
        (&[&file, "-mdns-iface=no-such-if0"], no_interface),
        (
            &["-iface=no-such-if0", "-mdns-iface=no-such-if1"],
            "==> Invalid network interface: route ip+net: no such network interface\n",
        ),
    ];
    for (flags, expected) in cases {
        // Loopback addresses, should a check fail to stop the agent.
        let mut args = vec!["agent", "-bind=127.0.0.1:0", "-rpc-addr=127.0.0.1:0"];
        args.extend_from_slice(flags);
        let limit = Duration::from_secs(10);
        let theirs = outcome(reference::binary(), &args, limit);
        assert_eq!(
            theirs,
            (Some(1), expected.to_string(), String::new()),
            "HashiCorp's serf {args:?}"
        );
        assert_eq!(outcome(ours(), &args, limit), theirs, "serf {args:?}");
    }
}

/// `serf agent -h` names every flag that HashiCorp's names (in words of our own), serf 0.11's
/// mDNS flags among them.
#[test]
fn agent_help_names_every_reference_flag() {
    let flags = |bin: &Path| {
        let (code, stdout, help) = outcome(bin, &["agent", "-h"], Duration::from_secs(10));
        assert_eq!((code, stdout.as_str()), (Some(0), ""), "{}", bin.display());
        let re = regex::Regex::new(r"(?m)(?:^|[^A-Za-z0-9_-])(--?[a-z][a-z0-9-]*)").unwrap();
        re.captures_iter(&help)
            .map(|c| c[1].to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let theirs = flags(reference::binary());
    let mine = flags(ours());
    for new in ["-mdns-iface", "-mdns-disable-ipv4", "-mdns-disable-ipv6"] {
        assert!(theirs.contains(new), "{theirs:?}");
    }
    let missing: Vec<_> = theirs.difference(&mine).collect();
    assert!(missing.is_empty(), "our help lacks {missing:?}");
}

/// SIGHUP re-reads the config files: new tags and handlers take effect. SIGTERM without
/// `leave_on_terminate` stops the agent without a leave (exit code 1, as HashiCorp's).
#[test]
fn sighup_reloads_tags_and_handlers_and_sigterm_stops() {
    let dir = scratch("reload");
    let config = dir.join("agent.json");
    let out = dir.join("handled");
    let write_config = |tag: &str, word: &str| {
        let json = serde_json::json!({
            "tags": { "generation": tag },
            "event_handlers": [format!("user:poke=echo {word} >> {}", out.display())],
        });
        std::fs::write(&config, json.to_string()).unwrap();
    };
    write_config("1", "first");
    let cfg = format!("-config-file={}", config.display());
    let mut agent = Agent::start_binary(ours(), "reloader", loopback(free_port()), &[&cfg]);
    let tag_is = |v: &str| {
        agent
            .members()
            .iter()
            .any(|(n, _, tags)| n == "reloader" && tags["generation"] == v)
    };
    assert!(tag_is("1"));
    agent.cli(&["event", "-coalesce=false", "poke"]).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).unwrap_or_default() == "first\n"
    }));

    write_config("2", "second");
    Command::new("kill")
        .arg("-HUP")
        .arg(agent.pid().to_string())
        .status()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || tag_is("2")));
    agent.cli(&["event", "-coalesce=false", "poke"]).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).unwrap_or_default() == "first\nsecond\n"
    }));
    let log = std::fs::read_to_string(&agent.log).unwrap();
    assert!(
        log.contains("==> Caught signal: hangup") && log.contains("==> Reloading configuration..."),
        "{log}"
    );

    assert_eq!(
        agent.signal_and_wait("TERM", Duration::from_secs(10)),
        Some(1)
    );
}

/// Options that persist or pick things: -retry-join with -retry-max, -tags-file, -keyring-file,
/// -iface.
#[test]
fn retry_tags_file_keyring_file_and_iface_options() {
    let dir = scratch("options");
    // Nothing listens on this port: one retry, then the agent exits with 1.
    let dead = loopback(free_port()).to_string();
    let started = std::time::Instant::now();
    let (code, out) = run(
        ours(),
        &[
            "agent",
            "-node=retrier",
            &format!("-bind={}", loopback(free_port())),
            &format!("-rpc-addr={}", loopback(free_port())),
            &format!("-retry-join={dead}"),
            "-retry-max=1",
            "-retry-interval=1s",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("maximum retry join attempts made, exiting"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // The tags file is written 0600 on `serf tags` and restores the tags on restart.
    let tags_file = dir.join("tags.json");
    let tf = format!("-tags-file={}", tags_file.display());
    let gossip = loopback(free_port());
    let mut first = Agent::start_binary(ours(), "tagged", gossip, &[&tf]);
    first.cli(&["tags", "-set", "rack=r1"]).unwrap();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&tags_file).unwrap()).unwrap();
    assert_eq!(saved["rack"], "r1");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&tags_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    first.kill();
    let second = Agent::start_binary(ours(), "tagged", loopback(free_port()), &[&tf]);
    assert!(second
        .members()
        .iter()
        .any(|(n, _, tags)| n == "tagged" && tags["rack"] == "r1"));
    let (code, out) = run(
        ours(),
        &["agent", "-node=x", &tf, "-tag=a=b", "-bind=127.0.0.1:0"],
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("Tags config not allowed while using tag files"),
        "{out}"
    );

    // The keyring file is loaded, and rewritten when keys change.
    let keyring = dir.join("keyring.json");
    let key1 = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";
    let key2 = "HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=";
    std::fs::write(&keyring, format!("[\"{key1}\"]")).unwrap();
    let kf = format!("-keyring-file={}", keyring.display());
    let keyed = Agent::start_binary(ours(), "keyed", loopback(free_port()), &[&kf]);
    let info = keyed.cli(&["info"]).unwrap();
    assert!(info.contains("\tencrypted = true"), "{info}");
    keyed.cli(&["keys", "-install", key2]).unwrap();
    let saved = std::fs::read_to_string(&keyring).unwrap();
    assert!(saved.contains(key1) && saved.contains(key2), "{saved}");
    let (code, out) = run(
        ours(),
        &[
            "agent",
            "-node=x",
            &kf,
            &format!("-encrypt={key1}"),
            "-bind=127.0.0.1:0",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("Encryption key not allowed while using a keyring"),
        "{out}"
    );

    // -iface with a wildcard bind takes the interface's address.
    let port = free_port();
    let rpc = loopback(free_port());
    let mut iface = KillOnDrop(
        Command::new(ours())
            .args(["agent", "-node=lo-node", "-iface=lo"])
            .arg(format!("-bind=0.0.0.0:{port}"))
            .arg(format!("-rpc-addr={rpc}"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let rpc_flag = format!("-rpc-addr={rpc}");
    let mut listed = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            listed = run(ours(), &["members", &rpc_flag]).1;
            listed.contains(&format!("127.0.0.1:{port}"))
        }),
        "{listed}"
    );
    let _ = iface.0.kill();
    let mut banner = String::new();
    iface
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut banner)
        .unwrap();
    assert!(
        banner.contains("==> Using interface 'lo' address '127.0.0.1'"),
        "{banner}"
    );
    let (code, out) = run(
        ours(),
        &[
            "agent",
            "-node=x",
            "-iface=no-such-if0",
            "-bind=127.0.0.1:0",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(out.contains("Invalid network interface"), "{out}");
}

/// `statsd_addr` from a config file: the agent's metrics reach a statsd listener on loopback,
/// prefixed `serf-agent.` and named as HashiCorp names them.
#[test]
fn metrics_reach_the_statsd_sink() {
    let dir = scratch("statsd");
    let statsd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    statsd
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let config = dir.join("statsd.json");
    let addr = statsd.local_addr().unwrap();
    std::fs::write(&config, format!("{{\"statsd_addr\": \"{addr}\"}}")).unwrap();
    let cfg = format!("-config-file={}", config.display());
    let a = Agent::start_binary(ours(), "metered", loopback(free_port()), &[&cfg]);
    let b = Agent::start_binary(ours(), "metered-peer", loopback(free_port()), &[]);
    a.cli(&["join", &b.gossip.to_string()]).unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 2048];
    let complete = wait_until(Duration::from_secs(15), || {
        if let Ok(n) = statsd.recv(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            seen.push('\n');
        }
        seen.contains("serf-agent.memberlist.udp.sent:")
            && seen.contains("serf-agent.serf.member.join:")
            && seen.contains("|c")
    });
    assert!(complete, "statsd lines seen: {seen}");
}

/// Every user event an agent is asked to send reaches an RPC stream of the same agent. The
/// latency is printed beside HashiCorp's for reference; `make bench` reports it.
#[test]
fn own_user_events_all_reach_a_stream_of_the_same_agent() {
    let ours = own_events::measure(Path::new(env!("CARGO_BIN_EXE_serf")), "own-ours");
    let theirs = own_events::measure(reference::binary(), "own-ref");
    for (who, l) in [("ours", &ours), ("HashiCorp's", &theirs)] {
        println!(
            "{who}: {}/{} delivered, p50 {:?}, p99 {:?}, max {:?}",
            l.delivered,
            own_events::EVENTS,
            l.p50,
            l.p99,
            l.max
        );
    }
    assert_eq!(ours.delivered, own_events::EVENTS);
}

/// An RPC client costs the agent no thread of its own: 100 idle connections and 20 open event
/// streams leave its thread count where one client left it, and every stream still gets the
/// events.
#[test]
fn rpc_clients_cost_no_thread_each() {
    use serf_agent::client::{Record, RpcClient};
    let agent = Agent::start_binary(ours(), "threads", loopback(free_port()), &[]);
    let threads = || {
        std::fs::read_dir(format!("/proc/{}/task", agent.pid()))
            .expect("the agent's threads")
            .count()
    };
    let rpc = agent.rpc.to_string();
    let mut sender = RpcClient::connect(&rpc, "").expect("connect");
    sender.user_event("warm", None, false).expect("send");
    let before = threads();

    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(agent.rpc).expect("connect"))
        .collect();
    let mut streams: Vec<RpcClient> = (0..20)
        .map(|_| {
            let mut c = RpcClient::connect(&rpc, "").expect("connect");
            c.stream("user").expect("open a stream");
            c
        })
        .collect();
    sender.user_event("fan-out", None, false).expect("send");
    for (i, s) in streams.iter_mut().enumerate() {
        let got = (0..20).find_map(|_| match s.next_record(Duration::from_millis(250)) {
            Ok(Some((_, Record::Event(e)))) => Some(e),
            _ => None,
        });
        assert!(got.is_some(), "stream {i} got no event");
    }
    let during = threads();
    println!("agent threads: {before} with one client, {during} with 121");
    // A worker may start for a request that overlapped another; a thread per client would
    // add 120.
    assert!(
        during <= before + 4,
        "{before} threads with one client, {during} with 121"
    );
    drop(idle);
}
