//! Interop of serf's event system with HashiCorp's agents: user events and queries in both
//! directions and key rotation driven from either side, each against serf v0.11.0 and v0.9.8.

#[path = "common/reference.rs"]
mod reference;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reference::{wait_until, Agent, Release, Scratch};
use serf::{Options, Serf};
use serf_proto::serf::{Event, KeyOp, MemberStatus, QueryParams, QueryUpdate};

const KEY1: &str = "XXo7nB4PKktsjZ4PGis8TQ==";
const KEY2: &str = "oaKjpKWmp6ipqqusra6vsA==";

/// An event-handler script that logs every event and answers queries.
fn handler(dir: &std::path::Path) -> PathBuf {
    let script = dir.join("handler.sh");
    let log = dir.join("events.log");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\npayload=$(cat)\necho \"$SERF_SELF_NAME $SERF_EVENT ${{SERF_USER_EVENT}}${{SERF_QUERY_NAME}} $payload\" >> {}\n\
             if [ \"$SERF_EVENT\" = query ]; then printf 'answer-from-%s:%s' \"$SERF_SELF_NAME\" \"$payload\"; fi\n",
            log.display()
        ),
    )
    .expect("write handler");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .expect("chmod");
    script
}

fn handler_log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("events.log")).unwrap_or_default()
}

fn libserf(name: &str, keys: Vec<Vec<u8>>) -> Serf {
    let mut options = Options::new(name);
    options.bind = "127.0.0.1:0".parse().expect("addr");
    options.protocol_version = 5;
    options.keys = keys;
    Serf::create(options).expect("start a libserf node")
}

/// Waits for an event matching `pred` on a libserf node.
fn expect_event(
    serf: &Serf,
    limit: Duration,
    mut pred: impl FnMut(&Event) -> bool,
) -> Option<Event> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(e) = serf.next_event(Some(Duration::from_millis(100))) {
            if pred(&e) {
                return Some(e);
            }
        }
    }
    None
}

reference::against_both_releases!(events_and_queries: user_events_and_queries_cross_both_ways, user_events_and_queries_cross_both_ways_with_serf_0_9);

fn events_and_queries(release: Release) {
    let dir = Scratch::new(&format!("events-{release:?}"));
    let script = handler(&dir);
    let a = Agent::start_release(
        release,
        "ref-ev-a",
        &[&format!("-event-handler={}", script.display())],
    );
    let b = Agent::start_release(
        release,
        "ref-ev-b",
        &[&format!("-event-handler={}", script.display())],
    );
    b.cli(&["join", &a.gossip.to_string()]).expect("join");
    let lib = libserf("lib-ev", vec![]);
    lib.join(&[a.gossip.to_string()], false).expect("join");
    assert!(wait_until(Duration::from_secs(20), || {
        lib.members()
            .map(|m| m.iter().filter(|m| m.status == MemberStatus::Alive).count())
            .unwrap_or(0)
            == 3
    }));

    // libserf -> reference handlers.
    let t = Instant::now();
    lib.user_event("deploy", b"v1.2.3", false)
        .expect("send event");
    let delivered = wait_until(Duration::from_secs(10), || {
        let log = handler_log(&dir);
        log.contains("ref-ev-a user deploy v1.2.3") && log.contains("ref-ev-b user deploy v1.2.3")
    });
    assert!(
        delivered,
        "reference handlers did not run for the libserf event: {}",
        handler_log(&dir)
    );
    let event_to_go = t.elapsed();

    // reference -> libserf.
    let t = Instant::now();
    a.cli(&["event", "-coalesce=false", "restart", "now"])
        .expect("serf event");
    let got = expect_event(
        &lib,
        Duration::from_secs(10),
        |e| matches!(e, Event::User(u) if u.name == "restart"),
    );
    match got {
        Some(Event::User(u)) => assert_eq!(u.payload, b"now"),
        other => panic!("libserf did not get the reference event: {other:?}"),
    }
    let event_from_go = t.elapsed();

    // A reference query answered by libserf (as the example node does for "echo") and the agents.
    let answerer = std::thread::scope(|s| {
        let lib = &lib;
        let h = s.spawn(move || {
            if let Some(Event::Query(q)) = expect_event(
                lib,
                Duration::from_secs(10),
                |e| matches!(e, Event::Query(q) if q.name == "echo"),
            ) {
                lib.respond(q.ltime, q.id, b"pong-from-libserf")
                    .expect("respond");
                true
            } else {
                false
            }
        });
        let out = a
            .cli(&["query", "-timeout=3s", "echo", "ping"])
            .expect("serf query");
        (h.join().expect("thread"), out)
    });
    assert!(answerer.0, "libserf never saw the query");
    assert!(
        answerer
            .1
            .contains("Response from 'lib-ev': pong-from-libserf"),
        "{}",
        answerer.1
    );
    assert!(
        answerer.1.contains("answer-from-ref-ev-b:ping"),
        "{}",
        answerer.1
    );

    // A libserf query answered by the reference handlers and by libserf itself, with acks: it
    // finishes as soon as all three answered, well before its 5 s timeout.
    let t = Instant::now();
    let params = QueryParams {
        request_ack: true,
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let (updates, query_rtt) = std::thread::scope(|s| {
        let lib = &lib;
        s.spawn(move || {
            let q = expect_event(
                lib,
                Duration::from_secs(5),
                |e| matches!(e, Event::Query(q) if q.name == "uptime"),
            );
            if let Some(Event::Query(q)) = q {
                lib.respond(q.ltime, q.id, b"answer-from-lib-ev:load")
                    .expect("respond");
            }
        });
        let updates = lib
            .query("uptime", b"load", params)
            .expect("query")
            .collect();
        (updates, t.elapsed())
    });
    assert!(
        query_rtt < Duration::from_secs(4),
        "the query should end once everyone answered: {query_rtt:?}"
    );
    let responses: Vec<(String, String)> = updates
        .iter()
        .filter_map(|u| match u {
            QueryUpdate::Response { from, payload } => {
                Some((from.clone(), String::from_utf8_lossy(payload).into_owned()))
            }
            _ => None,
        })
        .collect();
    let acks = updates
        .iter()
        .filter(|u| matches!(u, QueryUpdate::Ack { .. }))
        .count();
    assert!(
        responses.contains(&("ref-ev-a".into(), "answer-from-ref-ev-a:load".into())),
        "{updates:?}"
    );
    assert!(
        responses.contains(&("ref-ev-b".into(), "answer-from-ref-ev-b:load".into())),
        "{updates:?}"
    );
    assert_eq!(acks, 3, "every node acks, libserf included: {updates:?}");
    // Filters: only the node named gets the query.
    let params = QueryParams {
        filter_nodes: vec!["ref-ev-b".into()],
        timeout: Some(Duration::from_secs(3)),
        ..Default::default()
    };
    let updates = lib
        .query("uptime", b"filtered", params)
        .expect("query")
        .collect();
    let from: Vec<&str> = updates
        .iter()
        .filter_map(|u| match u {
            QueryUpdate::Response { from, .. } => Some(from.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(from, vec!["ref-ev-b"], "{updates:?}");
    println!(
        "user event libserf->handlers {:.2}s | serf event->libserf {:.2}s | libserf query with 2 handler answers done in {:.2}s (timeout 5s)",
        event_to_go.as_secs_f64(),
        event_from_go.as_secs_f64(),
        query_rtt.as_secs_f64()
    );
    // Coordinates travel in ack payloads: the reference agent estimates its RTT to libserf and
    // libserf to it.
    let rtt = wait_until(Duration::from_secs(20), || {
        a.cli(&["rtt", "lib-ev"]).is_ok_and(|o| o.contains("rtt:"))
            && lib.rtt("lib-ev", "ref-ev-a").ok().flatten().is_some()
    });
    assert!(
        rtt,
        "no RTT estimate: {:?} / {:?}",
        a.cli(&["rtt", "lib-ev"]),
        lib.rtt("lib-ev", "ref-ev-a")
    );
    println!(
        "serf rtt on the reference agent: {}",
        a.cli(&["rtt", "lib-ev"]).unwrap_or_default().trim()
    );
    lib.leave().expect("leave");
    lib.shutdown().expect("shutdown");
}

reference::against_both_releases!(key_rotation: key_rotation_from_either_side, key_rotation_from_either_side_with_serf_0_9);

fn key_rotation(release: Release) {
    let key1 = STANDARD.decode(KEY1).expect("key");
    let key2 = STANDARD.decode(KEY2).expect("key");
    let a = Agent::start_release(release, "ref-key", &[&format!("-encrypt={KEY1}")]);
    let lib = libserf("lib-key", vec![key1.clone()]);
    lib.join(&[a.gossip.to_string()], false).expect("join");
    assert!(wait_until(Duration::from_secs(20), || a
        .status_of("lib-key")
        .as_deref()
        == Some("alive")));

    // The reference CLI installs a key: libserf's keyring gets it too.
    let out = a
        .cli(&["keys", "-install", KEY2])
        .expect("serf keys -install");
    assert!(out.contains("Successfully installed key"), "{out}");
    let listed = lib.key_operation(KeyOp::List, &[]).expect("list");
    assert_eq!(listed.keys.get(KEY2), Some(&2), "{listed:?}");
    assert_eq!(listed.keys.get(KEY1), Some(&2), "{listed:?}");

    // libserf makes it primary, then removes the old one, cluster-wide.
    let used = lib.key_operation(KeyOp::Use, &key2).expect("use");
    assert_eq!(used.error(), None, "{used:?}");
    let removed = lib.key_operation(KeyOp::Remove, &key1).expect("remove");
    assert_eq!(removed.error(), None, "{removed:?}");
    let out = a.cli(&["keys", "-list"]).expect("serf keys -list");
    assert!(out.contains(KEY2) && !out.contains(KEY1), "{out}");
    // The cluster still works on the new key.
    lib.user_event("after-rotation", b"", false).expect("event");
    assert!(wait_until(Duration::from_secs(10), || a
        .status_of("lib-key")
        .as_deref()
        == Some("alive")));
    let bad = lib
        .key_operation(KeyOp::Remove, &key2)
        .expect("remove primary");
    assert!(
        bad.num_err > 0,
        "removing the primary key must fail: {bad:?}"
    );
    lib.shutdown().expect("shutdown");
}

#[test]
fn snapshots_written_by_either_side_are_read_by_the_other() {
    let dir = Scratch::new("snap");
    let a = Agent::start("ref-snap-a", &[]);

    // libserf writes a snapshot; the reference agent restarts from it in the node's place.
    let lib_snap = dir.join("lib.snapshot");
    let mut options = Options::new("snap-1");
    options.bind = "127.0.0.1:0".parse().expect("addr");
    options.protocol_version = 5;
    options.snapshot_path = Some(lib_snap.clone());
    let lib = Serf::create(options).expect("start");
    let port = lib.local_addr().port();
    lib.join(&[a.gossip.to_string()], false).expect("join");
    assert!(wait_until(Duration::from_secs(20), || a
        .status_of("snap-1")
        .as_deref()
        == Some("alive")));
    std::thread::sleep(Duration::from_secs(1));
    lib.shutdown().expect("shutdown");
    let text = std::fs::read_to_string(&lib_snap).expect("snapshot written");
    assert!(
        text.contains(&format!("alive: ref-snap-a {}", a.gossip)),
        "{text}"
    );
    let go = Agent::start_at(
        "snap-1",
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        &[&format!("-snapshot={}", lib_snap.display())],
    );
    assert!(
        wait_until(Duration::from_secs(30), || a.status_of("snap-1").as_deref()
            == Some("alive")
            && go.status_of("ref-snap-a").as_deref() == Some("alive")),
        "the reference agent did not rejoin from libserf's snapshot: {:?}",
        go.members()
    );
    drop(go);

    // A reference agent writes a snapshot; libserf restarts from it in the agent's place.
    let go_snap = dir.join("go.snapshot");
    let mut b = Agent::start("snap-2", &[&format!("-snapshot={}", go_snap.display())]);
    b.cli(&["join", &a.gossip.to_string()]).expect("join");
    assert!(wait_until(Duration::from_secs(20), || a
        .status_of("snap-2")
        .as_deref()
        == Some("alive")));
    a.cli(&["event", "-coalesce=false", "seen-before", "x"])
        .expect("event");
    std::thread::sleep(Duration::from_secs(2));
    let b_addr = b.gossip;
    b.terminate();
    assert!(wait_until(Duration::from_secs(30), || a
        .status_of("snap-2")
        .as_deref()
        == Some("failed")));
    let mut options = Options::new("snap-2");
    options.bind = b_addr;
    options.protocol_version = 5;
    options.snapshot_path = Some(go_snap.clone());
    let lib = Serf::create(options).expect("start from the Go snapshot");
    assert!(
        wait_until(Duration::from_secs(30), || a.status_of("snap-2").as_deref()
            == Some("alive")),
        "libserf did not rejoin from the reference agent's snapshot: {:?}",
        a.members()
    );
    // The event the Go agent saw before its restart is not delivered again.
    let replayed = expect_event(
        &lib,
        Duration::from_secs(3),
        |e| matches!(e, Event::User(u) if u.name == "seen-before"),
    );
    assert!(
        replayed.is_none(),
        "an event from before the restart was delivered again"
    );
    lib.shutdown().expect("shutdown");
}
