//! The error texts of our `serf` binary against HashiCorp's (serf v0.11.0), case by case: every
//! client subcommand with bad flags and arguments, the agent with every bad setting, and the
//! errors running agents return. Each binary runs on its own, the CLI against its own agent;
//! outputs must be byte-identical after the normalisations below, exit codes equal. Agents
//! listen on loopback only and are killed when their guards drop; every process and every wait
//! is bounded.

#[path = "../../../tests/common/reference.rs"]
mod reference;

#[path = "common/cli_runs.rs"]
mod cli_runs;

use std::time::Duration;

use cli_runs::{against, matches, ours, run_bounded, strs, Out, RUN_LIMIT};
use reference::{binary, free_port, Agent, Scratch};
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
    all_match(cases.len(), &failures)
}

/// Panics listing every case in `failures` (of `count` compared) unless there are none; the
/// count otherwise.
fn all_match(count: usize, failures: &[String]) -> usize {
    assert!(
        failures.is_empty(),
        "{} of {count} cases differ from HashiCorp's:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("{count} cases compared");
    count
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
        all_match(cases.len(), &failures)
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
