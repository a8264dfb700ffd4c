//! The agent's HTTP view (`-http-addr`): each endpoint against what the CLI and the RPC say,
//! the token, and bad requests. Agents listen on loopback and are killed when their guards
//! drop; every wait is bounded.

#[path = "../../../tests/common/reference.rs"]
mod reference;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use reference::{free_port, wait_until, Agent};
use serde_json::Value;

fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_serf"))
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// An agent of ours with the HTTP view on, and the view's address.
fn agent_with_http(name: &str, extra: &[&str]) -> (Agent, SocketAddr) {
    let http = loopback();
    let mut args = vec![format!("-http-addr={http}")];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Agent::start_binary(ours(), name, loopback(), &args), http)
}

/// One answer: status, headers (lower-case names) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as written (so that bad ones can be sent too) and reads the answer to its
/// end (`Connection: close`).
fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: dechunk(body, &text),
    }
}

/// The body, with chunked transfer encoding undone where it is used.
fn dechunk(body: &str, whole: &str) -> String {
    if !whole
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    get_with(addr, path, "")
}

fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Answer {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    exchange(addr, request.as_bytes())
}

fn json(answer: &Answer) -> Value {
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body))
}

/// Three of our agents joined; the first serves HTTP.
fn cluster() -> (Vec<Agent>, SocketAddr) {
    let (a, http) = agent_with_http("web-1", &["-tag=role=web"]);
    let b = Agent::start_binary(ours(), "web-2", loopback(), &["-tag=role=web"]);
    let c = Agent::start_binary(ours(), "db-1", loopback(), &["-tag=role=db"]);
    for other in [&b, &c] {
        other.cli(&["join", &a.gossip.to_string()]).expect("join");
    }
    assert!(
        wait_until(Duration::from_secs(10), || a.alive_count() == 3),
        "the three agents never saw each other"
    );
    (vec![a, b, c], http)
}

#[test]
fn members_and_coordinates_match_the_cli_and_the_rpc() {
    let (agents, http) = cluster();
    let a = &agents[0];
    for (query, flags) in [
        ("", vec![]),
        ("?status=alive", vec!["-status=alive"]),
        ("?name=web-.*", vec!["-name=web-.*"]),
        ("?tag=role%3Ddb", vec!["-tag=role=db"]),
        (
            "?tag=role=web&name=.*-2",
            vec!["-tag=role=web", "-name=.*-2"],
        ),
        ("?status=failed", vec!["-status=failed"]),
    ] {
        let answer = get(http, &format!("/v1/members{query}"));
        assert_eq!(answer.status, 200, "{query}: {}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let mut args = vec!["members", "-format=json"];
        args.extend(flags);
        let cli = a.cli(&args).expect("serf members");
        let cli: Value = serde_json::from_str(&cli).expect("the CLI's JSON");
        assert_eq!(json(&answer), cli, "GET /v1/members{query}");
    }
    assert_eq!(get(http, "/v1/members?name=(").status, 400);

    // Coordinates settle after a few probes; each member's is the one `serf rtt` uses.
    let full = || {
        let c = json(&get(http, "/v1/coordinates"));
        c["coordinates"].as_array().map_or(0, Vec::len) == 3
    };
    assert!(
        wait_until(Duration::from_secs(20), full),
        "coordinates never covered all three"
    );
    let c = json(&get(http, "/v1/coordinates"));
    assert_eq!(c["self"], "web-1");
    for entry in c["coordinates"].as_array().unwrap() {
        assert_eq!(
            entry["coord"]["Vec"].as_array().map(Vec::len),
            Some(8),
            "{entry}"
        );
        assert!(
            entry["coord"]["Height"].as_f64().is_some_and(|h| h > 0.0),
            "{entry}"
        );
    }
    assert_eq!(get(http, "/").status, 200);
    assert!(get(http, "/").body.contains("<svg id=\"map\""));
}

#[test]
fn metrics_are_prometheus_text_with_membership_gossip_and_event_counters() {
    let (agents, http) = cluster();
    agents[1].cli(&["event", "deploy", "v1"]).expect("event");
    assert!(
        wait_until(Duration::from_secs(10), || get(http, "/metrics")
            .body
            .contains("serf_agent_serf_events_deploy")),
        "the event never reached the first agent's metrics"
    );
    let answer = get(http, "/metrics");
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let samples = prometheus_samples(&answer.body);
    for family in [
        "serf_agent_serf_member_join",
        "serf_agent_memberlist_gossip",
        "serf_agent_serf_events",
        "serf_agent_memberlist_tcp_accept",
    ] {
        assert!(
            samples.iter().any(|(name, _)| name.starts_with(family)),
            "no {family}* sample in\n{}",
            answer.body
        );
    }
    let described = answer
        .body
        .lines()
        .filter(|l| l.starts_with("# HELP serf_agent_"))
        .count();
    assert!(
        described >= 10,
        "only {described} HELP lines:\n{}",
        answer.body
    );
    eprintln!("/metrics: {} samples, {described} described", samples.len());
}

/// The samples of a Prometheus text exposition, checked line by line as its format says:
/// `# HELP name text`, `# TYPE name kind` before a family's samples, then
/// `name{labels} value`, every name `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn prometheus_samples(text: &str) -> Vec<(String, f64)> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(name_ok(name), "{line}");
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "{line}"
            );
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample: series value");
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "{line}");
        let family = ["_sum", "_count", "_bucket"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "no TYPE before {line}");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        samples.push((name.to_string(), value));
    }
    samples
}

#[test]
fn events_stream_member_and_user_events_as_they_happen() {
    let (mut agents, http) = cluster();
    let mut s = TcpStream::connect(http).expect("connect");
    s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut reader = BufReader::new(s);
    let mut seen = String::new();
    let mut read_until = |needle: &str, seen: &mut String| {
        let end = Instant::now() + Duration::from_secs(20);
        while !seen.contains(needle) && Instant::now() < end {
            let mut line = String::new();
            if reader.read_line(&mut line).is_ok() {
                seen.push_str(&line);
            }
        }
        seen.contains(needle)
    };
    assert!(read_until("\r\n\r\n", &mut seen), "no response head");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("Content-Type: text/event-stream"), "{seen}");
    agents[2].cli(&["event", "deploy", "v2"]).expect("event");
    assert!(
        read_until("\"name\": \"deploy\"", &mut seen),
        "no user event: {seen}"
    );
    assert!(seen.contains("event: user\ndata: {"), "{seen}");
    let leaving = agents.remove(1);
    leaving.cli(&["leave"]).expect("leave");
    assert!(
        read_until("event: member-leave", &mut seen),
        "no leave: {seen}"
    );
    assert!(read_until("\"name\": \"web-2\"", &mut seen), "{seen}");
}

#[test]
fn the_token_bad_methods_paths_and_sizes_are_refused_and_the_agent_keeps_serving() {
    // As in HashiCorp's agent, the token is a config-file setting only.
    let dir = reference::Scratch::new("http-auth");
    let config = dir.join("auth.json");
    std::fs::write(&config, r#"{"rpc_auth": "s3cret"}"#).expect("config file");
    let (agent, http) =
        agent_with_http("guarded", &[&format!("-config-file={}", config.display())]);
    assert_eq!(get(http, "/v1/members").status, 401);
    assert_eq!(get(http, "/v1/members?token=wrong").status, 401);
    let unauthorized = get(http, "/metrics");
    assert_eq!(unauthorized.header("www-authenticate"), Some("Bearer"));
    assert_eq!(get(http, "/v1/members?token=s3cret").status, 200);
    assert_eq!(get(http, "/?token=s3cret").status, 200);
    let bearer = "Authorization: Bearer s3cret\r\n";
    assert_eq!(get_with(http, "/metrics", bearer).status, 200);
    assert_eq!(get_with(http, "/nowhere", bearer).status, 404);
    let post = format!(
        "POST /v1/members HTTP/1.1\r\nHost: x\r\n{bearer}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let refused = exchange(http, post.as_bytes());
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("allow"), Some("GET"));
    let long = format!("/v1/members?name={}", "a".repeat(9000));
    assert_eq!(get_with(http, &long, bearer).status, 413);
    let big = format!(
        "GET /v1/members HTTP/1.1\r\nHost: x\r\n{bearer}Content-Length: 100000\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(exchange(http, big.as_bytes()).status, 413);
    // Garbage and a half-sent request are dropped; the agent goes on answering.
    let _ = exchange(http, b"\x00\x01garbage\r\n\r\n");
    let mut half = TcpStream::connect(http).unwrap();
    half.write_all(b"GET /v1/mem").unwrap();
    assert_eq!(get_with(http, "/v1/members", bearer).status, 200);
    drop(half);
    assert!(agent.cli(&["members", "-rpc-auth=s3cret"]).is_ok());
}

#[test]
fn event_streams_are_bounded() {
    let (_agent, http) = agent_with_http("streams", &[]);
    let open: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = TcpStream::connect(http).unwrap();
            s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).expect("a stream's head");
            assert_eq!(&head, b"HTTP/1.1 200");
            s
        })
        .collect();
    assert_eq!(get(http, "/v1/events").status, 503);
    drop(open);
    let closed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let mut s = TcpStream::connect(http).unwrap();
            s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).is_ok() && &head == b"HTTP/1.1 200"
        }),
        "closed streams were never released"
    );
    eprintln!(
        "a closed stream's place was free again after {:?}",
        closed.elapsed()
    );
}

/// At most 64 connections: the next one is answered 503. A request head that has not arrived
/// within 10 s is answered 408 and its connection closed, which frees its place.
#[test]
fn connections_and_slow_requests_are_bounded() {
    let (_agent, http) = agent_with_http("slow", &[]);
    let mut slow: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut s = TcpStream::connect(http).unwrap();
            s.write_all(b"GET /v1/mem").unwrap();
            s
        })
        .collect();
    // Each partial head is read before the next connection is taken.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(http, "/v1/members").status, 503);
    let started = Instant::now();
    let first = &mut slow[0];
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    let _ = first.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    println!(
        "a half-sent request was answered 408 after {:?}",
        started.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(5), || get(http, "/v1/members").status
            == 200),
        "the closed connections' places were not freed"
    );
}
