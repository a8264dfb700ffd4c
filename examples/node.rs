//! A small embedding of libserf that doubles as a manual test tool and as the demo's node.
//!
//! `node -node=NAME -bind=IP:PORT [-advertise=IP:PORT] [-join=ADDR]... [-tag=K=V]...
//!  [-encrypt=BASE64KEY] [-profile=lan|wan|local] [-protocol=N]`
//!
//! Prints one JSON object per line: first `{"event":"ready",...}`, then one per event. Reads
//! commands on stdin, one per line: `members`, `tags K=V ...`, `event NAME PAYLOAD
//! [coalesce=false]`, `query NAME PAYLOAD [node=N]... [tag=K=REGEX]... [timeout=MS] [ack]`,
//! `keys install|use|remove|list [BASE64KEY]`, `rtt NODE`, `leave` (graceful, then exit 0). It
//! answers every query named `echo` with its payload.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use serf::api::Profile;
use serf::api::{Event, KeyOp, Member, QueryParams, QueryUpdate, Tags};
use serf::{Options, Serf};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (options, joins) = parse(&args).unwrap_or_else(|e| usage(&e));
    let serf = Arc::new(Serf::create(options).unwrap_or_else(|e| fail(&e.to_string())));
    let local = serf.local_member().unwrap_or_else(|e| fail(&e.to_string()));
    print(
        json!({"event": "ready", "name": serf.name(), "addr": format!("{}:{}", local.addr, local.port)}),
    );
    if !joins.is_empty() {
        match serf.join(&joins, false) {
            Ok(n) => print(json!({"event": "joined", "contacted": n})),
            Err(e) => print(json!({"event": "error", "error": e.to_string()})),
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let printer = {
        let (serf, stop) = (serf.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(event) = serf.next_event(Some(Duration::from_millis(100))) {
                    print(event_json(&event));
                    if let Event::Query(q) = &event {
                        if q.name == "echo" {
                            if let Err(e) = serf.respond(q.ltime, q.id, &q.payload) {
                                print(json!({"error": e.to_string()}));
                            }
                        }
                    }
                }
            }
        })
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["members"] => match serf.members() {
                Ok(members) => {
                    print(json!({"members": members.iter().map(member_json).collect::<Vec<_>>()}))
                }
                Err(e) => print(json!({"error": e.to_string()})),
            },
            ["tags", pairs @ ..] => {
                let result = parse_tags(pairs)
                    .and_then(|tags| serf.set_tags(tags).map_err(|e| e.to_string()));
                print(match result {
                    Ok(()) => json!({"tags": "ok"}),
                    Err(e) => json!({"error": e}),
                });
            }
            ["event", name, rest @ ..] => {
                let payload = rest
                    .iter()
                    .find(|w| !w.contains('='))
                    .copied()
                    .unwrap_or("");
                let coalesce = !rest.contains(&"coalesce=false");
                print(match serf.user_event(name, payload.as_bytes(), coalesce) {
                    Ok(()) => json!({"event-sent": name}),
                    Err(e) => json!({"error": e.to_string()}),
                });
            }
            ["query", name, rest @ ..] => run_query(&serf, name, rest),
            ["keys", op, rest @ ..] => run_keys(&serf, op, rest.first().copied()),
            ["rtt", node] => print(match serf.rtt(serf.name(), node) {
                Ok(Some(rtt)) => json!({"rtt": node, "ms": rtt.as_secs_f64() * 1000.0}),
                Ok(None) => json!({"error": format!("no coordinate for {node} yet")}),
                Err(e) => json!({"error": e.to_string()}),
            }),
            ["leave"] => {
                let result = serf.leave();
                print(match &result {
                    Ok(()) => json!({"event": "left"}),
                    Err(e) => json!({"error": e.to_string()}),
                });
                break;
            }
            _ => print(
                json!({"error": format!("unknown command {line:?} (members, tags K=V..., leave)")}),
            ),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = printer.join();
    if let Ok(serf) = Arc::try_unwrap(serf) {
        let _ = serf.shutdown();
    }
}

fn parse(args: &[String]) -> Result<(Options, Vec<String>), String> {
    let mut options = Options::new("");
    options.protocol_version = 5;
    let mut joins = Vec::new();
    for arg in args {
        let arg = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .ok_or(format!("unexpected argument {arg:?}"))?;
        let (flag, value) = arg
            .split_once('=')
            .ok_or(format!("flag -{arg} needs =VALUE"))?;
        match flag {
            "node" => options.name = value.to_string(),
            "bind" => options.bind = value.parse().map_err(|e| format!("-bind: {e}"))?,
            "advertise" => {
                options.advertise = Some(value.parse().map_err(|e| format!("-advertise: {e}"))?)
            }
            "join" => joins.push(value.to_string()),
            "tag" => {
                let (k, v) = value.split_once('=').ok_or("-tag needs K=V")?;
                options.tags.insert(k.to_string(), v.to_string());
            }
            "encrypt" => options.keys.push(
                STANDARD
                    .decode(value)
                    .map_err(|e| format!("-encrypt: {e}"))?,
            ),
            "profile" => options.profile = value.parse::<Profile>().map_err(|e| e.to_string())?,
            "protocol" => {
                options.protocol_version = value.parse().map_err(|e| format!("-protocol: {e}"))?
            }
            other => return Err(format!("unknown flag -{other}")),
        }
    }
    if options.name.is_empty() {
        return Err("-node is required".into());
    }
    Ok((options, joins))
}

fn run_query(serf: &Serf, name: &str, args: &[&str]) {
    let mut params = QueryParams::default();
    let mut payload = "";
    for arg in args {
        if let Some(n) = arg.strip_prefix("node=") {
            params.filter_nodes.push(n.to_string());
        } else if let Some((k, v)) = arg.strip_prefix("tag=").and_then(|t| t.split_once('=')) {
            params.filter_tags.insert(k.to_string(), v.to_string());
        } else if let Some(ms) = arg.strip_prefix("timeout=").and_then(|t| t.parse().ok()) {
            params.timeout = Some(Duration::from_millis(ms));
        } else if *arg == "ack" {
            params.request_ack = true;
        } else {
            payload = arg;
        }
    }
    match serf.query(name, payload.as_bytes(), params) {
        Ok(response) => {
            let started = std::time::Instant::now();
            for update in response.collect() {
                print(match update {
                    QueryUpdate::Ack { from } => json!({"event": "query-ack", "from": from}),
                    QueryUpdate::Response { from, payload } => {
                        json!({"event": "query-response", "from": from, "payload": String::from_utf8_lossy(&payload)})
                    }
                    QueryUpdate::Done => continue,
                });
            }
            print(
                json!({"event": "query-done", "name": name, "ms": started.elapsed().as_millis() as u64}),
            );
        }
        Err(e) => print(json!({"error": e.to_string()})),
    }
}

fn run_keys(serf: &Serf, op: &str, key: Option<&str>) {
    let op = match op {
        "install" => KeyOp::Install,
        "use" => KeyOp::Use,
        "remove" => KeyOp::Remove,
        "list" => KeyOp::List,
        other => return print(json!({"error": format!("unknown key operation {other:?}")})),
    };
    let key = match key.map(|k| STANDARD.decode(k)) {
        Some(Ok(k)) => k,
        Some(Err(e)) => return print(json!({"error": format!("bad key: {e}")})),
        None if op == KeyOp::List => Vec::new(),
        None => return print(json!({"error": "a base64 key is needed"})),
    };
    print(match serf.key_operation(op, &key) {
        Ok(r) => {
            json!({"keys": r.keys, "primary": r.primary_keys, "messages": r.messages, "nodes": r.num_nodes, "responses": r.num_resp, "errors": r.num_err, "error": r.error()})
        }
        Err(e) => json!({"error": e.to_string()}),
    });
}

fn parse_tags(pairs: &[&str]) -> Result<Tags, String> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or(format!("{p:?} is not K=V"))
        })
        .collect()
}

fn member_json(m: &Member) -> Value {
    json!({"name": m.name, "addr": m.addr.to_string(), "port": m.port, "tags": m.tags, "status": m.status.as_str()})
}

fn event_json(event: &Event) -> Value {
    match event {
        Event::Member { kind, members } => {
            json!({"event": kind.as_str(), "members": members.iter().map(member_json).collect::<Vec<_>>()})
        }
        Event::User(e) => {
            json!({"event": "user", "name": e.name, "payload": String::from_utf8_lossy(&e.payload), "ltime": e.ltime, "coalesce": e.coalesce})
        }
        Event::Query(q) => {
            json!({"event": "query", "name": q.name, "payload": String::from_utf8_lossy(&q.payload), "from": q.source, "ltime": q.ltime})
        }
        Event::Shutdown { reason } => json!({"event": "shutdown", "reason": reason}),
    }
}

fn print(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: node -node=NAME -bind=IP:PORT [-advertise=IP:PORT] [-join=ADDR]... [-tag=K=V]... [-encrypt=BASE64KEY] [-profile=lan|wan|local] [-protocol=N]");
    std::process::exit(1)
}

fn fail(problem: &str) -> ! {
    eprintln!("error: {problem}");
    std::process::exit(1)
}
