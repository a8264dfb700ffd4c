//! Hardening on loopback: what a node refuses and counts (plaintext or wrongly keyed gossip at a
//! keyed node, a foreign label), key rotation under traffic, `rpc_auth` on every RPC command,
//! and the modes of the files holding keys and tags. Checked against our library and agent and,
//! where cheap, against HashiCorp's reference agent. Every process is killed when its guard
//! drops; every wait is bounded.

#[path = "../../../tests/common/reference.rs"]
mod reference;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reference::{free_port, wait_until, Agent, Scratch};
use serf::api::Stats;
use serf::{Options, Serf};
use serf_agent::client::{ClientError, RpcClient};
use serf_agent::frame::{self, ObjectReader};
use serf_proto::memberlist::Profile;
use serf_proto::serf::{Event, KeyOp, MemberStatus};
use serf_proto::wire::memberlist::keyring::{Keyring, NONCE_LEN};
use serf_proto::wire::memberlist::{packet, Ack, Alive, Message, Ping, WireOptions};
use serf_proto::wire::msgpack::{self, Bytes, Dialect, Field};
use serf_proto::wire::rpc::{self, Command, ResponseHeader};

const KEY1: &str = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";
const KEY2: &str = "HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=";
const KEY3: &str = "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=";

fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_serf"))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn key(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64).expect("base64 key")
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> Scratch {
    Scratch::new(&format!("security-{name}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// A library node on loopback with `keys` (primary first) and `label`, fast timers.
fn node(name: &str, keys: &[&str], label: &str) -> Serf {
    node_with(name, keys, label, |_| {})
}

fn node_with(name: &str, keys: &[&str], label: &str, tune: impl FnOnce(&mut Options)) -> Serf {
    let mut o = Options::new(name);
    o.bind = loopback(free_port());
    o.profile = Profile::Local;
    o.keys = keys.iter().map(|k| key(k)).collect();
    o.label = label.to_string();
    tune(&mut o);
    Serf::create(o).expect("start a library node")
}

fn stats(s: &Serf) -> Stats {
    s.stats().expect("stats")
}

/// (rejected, malformed) of a library node.
fn refusals(s: &Serf) -> (u64, u64) {
    let m = stats(s).memberlist;
    (m.rejected, m.malformed)
}

// ---------------------------------------------------------------------------------------------
// crafted gossip

/// How a crafted datagram is wrapped: label, key (none: plaintext).
fn wire(label: &str, key_b64: Option<&str>) -> WireOptions {
    WireOptions {
        label: label.as_bytes().to_vec(),
        keyring: key_b64.map(|k| Keyring::new(&key(k), &[] as &[&[u8]]).expect("keyring")),
        compression: false,
        ..WireOptions::default()
    }
}

fn ping(target: &str, seq_no: u32, reply_to: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(v4) = reply_to else {
        unreachable!("loopback v4")
    };
    Message::Ping(Ping {
        node: target.into(),
        seq_no,
        source_addr: Some(Bytes(v4.ip().octets().to_vec())),
        source_node: "prober".into(),
        source_port: v4.port(),
    })
    .encode(Dialect::GOSSIP)
}

/// An alive announcement of `name` at a loopback port where nothing listens.
fn alive(name: &str) -> Vec<u8> {
    Message::Alive(Alive {
        addr: Bytes(vec![127, 0, 0, 1]),
        incarnation: 1,
        meta: None,
        node: name.into(),
        port: free_port(),
        vsn: Bytes(vec![1, 5, 2, 2, 5, 4]),
    })
    .encode(Dialect::GOSSIP)
}

fn seal(w: &WireOptions, msg: &[u8]) -> Vec<u8> {
    let nonce = || {
        let mut nonce = [0; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("OS randomness");
        nonce
    };
    packet::encode(w, msg, false, nonce)
}

/// The sequence numbers of the acks `socket` receives (opened with `w`) until one for `until`
/// arrives or `limit` passes.
fn acks_until(socket: &UdpSocket, w: &WireOptions, until: u32, limit: Duration) -> Vec<u32> {
    let end = Instant::now() + limit;
    let mut seqs = Vec::new();
    let mut buf = [0u8; 65536];
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while Instant::now() < end && !seqs.contains(&until) {
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        // Anything we cannot open is recorded as seq 0 (never used).
        let Ok(payload) = packet::decode(w, &buf[..n]) else {
            seqs.push(0);
            continue;
        };
        for msg in packet::flatten(&payload).messages {
            // Gossip piggybacked on an ack is not an ack.
            match Message::decode(&msg) {
                Ok(Message::Ack(Ack { seq_no, .. })) => seqs.push(seq_no),
                Ok(_) => {}
                Err(_) => seqs.push(0),
            }
        }
    }
    seqs
}

/// Sends to `target` (named `name`, keyed with KEY1, unlabelled): a plaintext ping and alive,
/// then a ping and alive sealed with KEY2, then, as the positive control, a KEY1-sealed ping and
/// alive. Since the target reads its socket in order, once the control ping is acked the refused
/// packets have been handled too. Checks no refused ping was acked and the control ping was;
/// returns the names of the intruders (refused alives) and of the control node.
fn probe_keyed_node(target: SocketAddr, name: &str, tag: &str) -> ([String; 2], String) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind prober");
    let me = socket.local_addr().unwrap();
    let intruders = [format!("{tag}-plain"), format!("{tag}-wrong-key")];
    let control = format!("{tag}-friend");
    let plain = wire("", None);
    let wrong = wire("", Some(KEY2));
    let right = wire("", Some(KEY1));
    for datagram in [
        seal(&plain, &ping(name, 101, me)),
        seal(&plain, &alive(&intruders[0])),
        seal(&wrong, &ping(name, 102, me)),
        seal(&wrong, &alive(&intruders[1])),
        seal(&right, &alive(&control)),
        seal(&right, &ping(name, 103, me)),
    ] {
        socket.send_to(&datagram, target).expect("send");
    }
    let acks = acks_until(&socket, &right, 103, Duration::from_secs(5));
    assert_eq!(acks, vec![103], "{tag}: only the KEY1-sealed ping is acked");
    // Nothing late either.
    let late = acks_until(&socket, &right, u32::MAX, Duration::from_millis(300));
    assert!(late.is_empty(), "{tag}: late replies {late:?}");
    (intruders, control)
}

/// A keyed node (library, our agent, HashiCorp's agent) ignores plaintext and wrongly keyed
/// gossip: no ack, no new member; our library counts each such datagram as `rejected`.
#[test]
fn plaintext_and_wrongly_keyed_gossip_is_refused_and_counted() {
    // The library: exact counts.
    let lib = node("keyed-lib", &[KEY1], "");
    let before = refusals(&lib);
    let (intruders, control) = probe_keyed_node(lib.local_addr(), "keyed-lib", "lib");
    let knows = |name: &str| lib.members().unwrap().iter().any(|m| m.name == name);
    assert!(
        wait_until(Duration::from_secs(5), || knows(&control)),
        "the KEY1-sealed alive is taken"
    );
    for intruder in &intruders {
        assert!(!knows(intruder), "{intruder} got in");
    }
    let after = refusals(&lib);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (4, 4),
        "four datagrams refused for their encryption, and only those"
    );
    eprintln!("library: rejected {before:?} -> {after:?} (rejected, malformed)");
    lib.shutdown().unwrap();

    // Our agent and the reference agent, with -encrypt: the same outside behaviour.
    for (bin, who) in [(ours(), "ours"), (reference::binary(), "reference")] {
        let name = format!("keyed-{who}");
        let agent = Agent::start_binary(
            bin,
            &name,
            loopback(free_port()),
            &[&format!("-encrypt={KEY1}")],
        );
        let (intruders, control) = probe_keyed_node(agent.gossip, &name, who);
        let knows = |n: &str| agent.members().iter().any(|(m, _, _)| m == n);
        assert!(
            wait_until(Duration::from_secs(5), || knows(&control)),
            "{who}: the KEY1-sealed alive is taken"
        );
        for intruder in &intruders {
            assert!(!knows(intruder), "{who}: {intruder} got in");
        }
    }
}

/// Nodes with different labels (or none) do not join each other; the labelled node refuses
/// and counts the foreign streams and datagrams, and still talks to its own label.
#[test]
fn a_label_mismatch_is_refused_and_counted() {
    let blue = node("blue-1", &[], "blue");
    let blue2 = node("blue-2", &[], "blue");
    let red = node("red-1", &[], "red");
    let bare = node("bare-1", &[], "");
    let target = [blue.local_addr().to_string()];

    let r0 = refusals(&blue);
    assert!(red.join(&target, false).is_err(), "red joined blue");
    let r1 = refusals(&blue);
    assert!(bare.join(&target, false).is_err(), "unlabelled joined blue");
    let r2 = refusals(&blue);
    assert_eq!(blue2.join(&target, false).expect("same label joins"), 1);
    let r3 = refusals(&blue);
    eprintln!("label: blue (rejected, malformed) {r0:?} -> {r1:?} -> {r2:?} -> {r3:?}");
    assert!(r1.0 > r0.0, "red's push/pull is counted");
    assert!(r2.0 > r1.0, "the unlabelled push/pull is counted");
    assert_eq!(r3.0, r2.0, "the same label is not refused");

    // Datagrams: foreign and missing labels are dropped unanswered and counted.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = socket.local_addr().unwrap();
    for datagram in [
        seal(&wire("red", None), &ping("blue-1", 201, me)),
        seal(&wire("", None), &ping("blue-1", 202, me)),
        seal(&wire("blue", None), &ping("blue-1", 203, me)),
    ] {
        socket.send_to(&datagram, blue.local_addr()).unwrap();
    }
    let acks = acks_until(&socket, &wire("blue", None), 203, Duration::from_secs(5));
    assert_eq!(acks, vec![203], "only the blue ping is acked");
    let r4 = refusals(&blue);
    assert!(
        r4.0 - r3.0 >= 2,
        "two foreign datagrams counted: {r3:?} -> {r4:?}"
    );

    let names = |s: &Serf| -> BTreeSet<String> {
        s.members()
            .unwrap()
            .into_iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .map(|m| m.name)
            .collect()
    };
    let blues: BTreeSet<String> = ["blue-1", "blue-2"].map(String::from).into();
    assert!(wait_until(Duration::from_secs(5), || names(&blue2) == blues));
    // Give gossip a few rounds to leak, if it would.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(names(&blue), blues);
    assert_eq!(names(&red), ["red-1".to_string()].into());
    assert_eq!(names(&bare), ["bare-1".to_string()].into());
    for s in [blue, blue2, red, bare] {
        s.shutdown().unwrap();
    }
}

/// Rotating the cluster key (install, use, remove the old one) while user events flow: no
/// node ever stops seeing every other node alive, every event reaches every node, and the
/// keyring ends with the new key only.
#[test]
fn key_rotation_under_traffic_loses_no_member_and_no_event() {
    const N: usize = 4;
    // Each gossip round reaches all three peers and every event is sent twice (retransmit
    // multiplier 4, as the LAN profile): with the local profile's 2, a 4-node cluster
    // routinely leaves a node to learn an event from the next push/pull, seconds later.
    let nodes: Vec<Serf> = (0..N)
        .map(|i| {
            node_with(&format!("rot-{i}"), &[KEY1], "", |o| {
                o.tuning.retransmit_mult = Some(4)
            })
        })
        .collect();
    let seed = [nodes[0].local_addr().to_string()];
    for n in &nodes[1..] {
        n.join(&seed, false).expect("join");
    }
    let all_alive = |s: &Serf| {
        s.members()
            .map(|ms| {
                ms.iter()
                    .filter(|m| m.status == MemberStatus::Alive)
                    .count()
                    == N
            })
            .unwrap_or(false)
    };
    assert!(
        wait_until(Duration::from_secs(10), || nodes.iter().all(all_alive)),
        "the cluster forms"
    );
    let rejected_before: Vec<u64> = nodes.iter().map(|n| stats(n).memberlist.rejected).collect();

    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let checks = AtomicU64::new(0);
    let violations: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let received: Vec<Mutex<BTreeSet<u64>>> = (0..N).map(|_| Mutex::new(BTreeSet::new())).collect();
    let mut removed_at_seq = 0;
    let started = Instant::now();
    std::thread::scope(|scope| {
        // Events, one every 25 ms, from each node in turn (at most 60 s' worth).
        scope.spawn(|| {
            for i in 0..2400u64 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let from = &nodes[i as usize % N];
                from.user_event("tick", &i.to_be_bytes(), false)
                    .expect("send an event");
                sent.store(i + 1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        // Every node's events.
        for (n, got) in nodes.iter().zip(&received) {
            let stop = &stop;
            scope.spawn(move || {
                let end = Instant::now() + Duration::from_secs(90);
                while Instant::now() < end {
                    match n.next_event(Some(Duration::from_millis(100))) {
                        Some(Event::User(u)) if u.name == "tick" => {
                            let seq = u64::from_be_bytes(u.payload[..8].try_into().unwrap());
                            got.lock().unwrap().insert(seq);
                        }
                        Some(_) => {}
                        None if stop.load(Ordering::SeqCst) => return,
                        None => {}
                    }
                }
            });
        }
        // Every node sees every node alive, checked every 20 ms.
        scope.spawn(|| {
            let end = Instant::now() + Duration::from_secs(90);
            while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                for n in &nodes {
                    let ms = n.members().unwrap_or_default();
                    let alive = ms
                        .iter()
                        .filter(|m| m.status == MemberStatus::Alive)
                        .count();
                    if alive != N {
                        violations.lock().unwrap().push(format!(
                            "{} at {:?}: {:?}",
                            n.name(),
                            started.elapsed(),
                            ms.iter().map(|m| (&m.name, m.status)).collect::<Vec<_>>()
                        ));
                    }
                }
                checks.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });

        let rotate = |op: KeyOp, k: &str, at: usize| {
            std::thread::sleep(Duration::from_millis(700));
            let agg = nodes[at].key_operation(op, &key(k)).expect("key operation");
            assert_eq!(
                (agg.num_nodes, agg.num_resp, agg.num_err),
                (N, N, 0),
                "{op:?}: {:?}",
                agg.messages
            );
            eprintln!("rotation: {op:?} done at {:?}", started.elapsed());
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rotate(KeyOp::Install, KEY2, 0);
            rotate(KeyOp::Use, KEY2, 1);
            rotate(KeyOp::Remove, KEY1, 2);
            removed_at_seq = sent.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1500));
        }));
        stop.store(true, Ordering::SeqCst);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
    let total = sent.load(Ordering::SeqCst);
    // The receivers stopped once idle after `stop`; pick up stragglers (bounded).
    let want: BTreeSet<u64> = (0..total).collect();
    let on_time: Vec<usize> = received.iter().map(|g| g.lock().unwrap().len()).collect();
    for (n, got) in nodes.iter().zip(&received) {
        let end = Instant::now() + Duration::from_secs(10);
        while *got.lock().unwrap() != want && Instant::now() < end {
            if let Some(Event::User(u)) = n.next_event(Some(Duration::from_millis(100))) {
                if u.name == "tick" {
                    got.lock()
                        .unwrap()
                        .insert(u64::from_be_bytes(u.payload[..8].try_into().unwrap()));
                }
            }
        }
    }

    let violations = violations.into_inner().unwrap();
    let checks = checks.load(Ordering::SeqCst);
    eprintln!(
        "rotation: {total} events sent ({} after the removal), {checks} membership checks, \
         {} violations, {:?} elapsed",
        total - removed_at_seq,
        violations.len(),
        started.elapsed()
    );
    assert!(checks >= 50, "the watcher ran ({checks} checks)");
    assert!(violations.is_empty(), "members not alive: {violations:#?}");
    assert!(
        total - removed_at_seq >= 20,
        "events kept flowing after the removal"
    );
    let missing: Vec<(String, Vec<u64>)> = nodes
        .iter()
        .zip(&received)
        .map(|(n, got)| {
            let got = got.lock().unwrap();
            (
                n.name().to_string(),
                want.difference(&got).copied().collect(),
            )
        })
        .collect();
    eprintln!("rotation: events per node by the end of the traffic: {on_time:?} of {total}");
    assert!(
        missing.iter().all(|(_, m)| m.is_empty()),
        "events lost: {missing:?}"
    );
    let rejected: Vec<u64> = nodes
        .iter()
        .zip(&rejected_before)
        .map(|(n, b)| stats(n).memberlist.rejected - b)
        .collect();
    eprintln!("rotation: packets rejected per node during the rotation: {rejected:?}");
    assert!(
        rejected.iter().all(|r| *r == 0),
        "no node refused a packet of the cluster: {rejected:?}"
    );

    let list = nodes[3].key_operation(KeyOp::List, &[]).expect("list");
    let only_key2: BTreeMap<String, usize> = [(KEY2.to_string(), N)].into();
    assert_eq!(list.keys, only_key2);
    assert_eq!(list.primary_keys, only_key2);

    // A node holding only the old key cannot get in any more.
    let stale = node("rot-stale", &[KEY1], "");
    assert!(
        stale.join(&seed, false).is_err(),
        "the old key still opens the cluster"
    );
    stale.shutdown().unwrap();
    for n in nodes {
        n.shutdown().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// rpc_auth

/// Sends one request (header, and the body the command takes) on a raw RPC connection.
fn send_request(conn: &mut TcpStream, command: Command, seq: u64) {
    fn with<B: Field>(mut out: Vec<u8>, body: B) -> Vec<u8> {
        out.extend(msgpack::to_vec(&body, Dialect::RPC));
        out
    }
    let out = frame::request(command.name(), seq);
    // Exhaustive: a new command must be added here, and so gets checked.
    let out = match command {
        Command::Handshake => with(out, rpc::HandshakeRequest { version: 1 }),
        Command::Auth => with(
            out,
            rpc::AuthRequest {
                auth_key: "wrong".into(),
            },
        ),
        Command::Event => with(
            out,
            rpc::EventRequest {
                name: "sneaky".into(),
                ..Default::default()
            },
        ),
        Command::ForceLeave => with(
            out,
            rpc::ForceLeaveRequest {
                node: "auth-peer".into(),
                prune: true,
            },
        ),
        Command::Join => with(out, rpc::JoinRequest::default()),
        Command::MembersFiltered => with(out, rpc::MembersFilteredRequest::default()),
        Command::Tags => with(
            out,
            rpc::TagsRequest {
                tags: Some([("sneaky".into(), "1".into())].into()),
                delete_tags: None,
            },
        ),
        Command::Stream => with(
            out,
            rpc::StreamRequest {
                event_type: "*".into(),
            },
        ),
        Command::Monitor => with(
            out,
            rpc::MonitorRequest {
                log_level: "debug".into(),
            },
        ),
        Command::Stop => with(out, rpc::StopRequest { stop: 1 }),
        Command::Query => with(
            out,
            rpc::QueryRequest {
                name: "sneaky".into(),
                ..Default::default()
            },
        ),
        Command::Respond => with(
            out,
            rpc::RespondRequest {
                id: 1,
                payload: None,
            },
        ),
        Command::InstallKey | Command::UseKey | Command::RemoveKey => {
            with(out, rpc::KeyRequest { key: KEY3.into() })
        }
        Command::GetCoordinate => with(
            out,
            rpc::CoordinateRequest {
                node: "auth-node".into(),
            },
        ),
        Command::Members | Command::Leave | Command::ListKeys | Command::Stats => out,
    };
    frame::write_frame(conn, &out).expect("write request");
}

/// With `rpc_auth` set, every command of the RPC protocol (raw, and through our CLI) is
/// refused with "Authentication required" and changes nothing; with the token each works.
#[test]
fn rpc_auth_is_required_for_every_command() {
    let dir = scratch("auth");
    let config = dir.join("auth.json");
    std::fs::write(&config, "{\"rpc_auth\": \"s3cret\"}").unwrap();
    let cfg = format!("-config-file={}", config.display());
    let enc = format!("-encrypt={KEY1}");
    let mut guarded =
        Agent::start_binary(ours(), "auth-node", loopback(free_port()), &[&cfg, &enc]);
    let peer = Agent::start_binary(ours(), "auth-peer", loopback(free_port()), &[&enc]);
    let peer_addr = peer.gossip.to_string();

    // Raw: handshake, then every other command unauthenticated, on one connection.
    let mut conn = TcpStream::connect(guarded.rpc).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = ObjectReader::new(conn.try_clone().unwrap());
    send_request(&mut conn, Command::Handshake, 1);
    let h: ResponseHeader = reader.read().expect("handshake reply");
    assert_eq!((h.seq, h.error.to_string_lossy()), (1, String::new()));
    let guarded_commands: Vec<Command> = Command::ALL
        .into_iter()
        .filter(|c| !matches!(c, Command::Handshake | Command::Auth))
        .collect();
    assert_eq!(guarded_commands.len(), 18);
    for (i, &command) in guarded_commands.iter().enumerate() {
        let seq = 10 + i as u64;
        send_request(&mut conn, command, seq);
        let h: ResponseHeader = reader
            .read()
            .unwrap_or_else(|e| panic!("{}: no reply: {e}", command.name()));
        assert_eq!(
            (h.seq, h.error.to_string_lossy()),
            (seq, "Authentication required".to_string()),
            "{}",
            command.name()
        );
    }
    // A wrong token is refused; the right one opens the same connection.
    send_request(&mut conn, Command::Auth, 50);
    let h: ResponseHeader = reader.read().unwrap();
    assert_eq!(h.error.to_string_lossy(), "Invalid authentication token");
    let mut out = frame::request("auth", 51);
    out.extend(msgpack::to_vec(
        &rpc::AuthRequest {
            auth_key: "s3cret".into(),
        },
        Dialect::RPC,
    ));
    frame::write_frame(&mut conn, &out).unwrap();
    let h: ResponseHeader = reader.read().unwrap();
    assert_eq!((h.seq, h.error.to_string_lossy()), (51, String::new()));
    send_request(&mut conn, Command::Stats, 52);
    let h: ResponseHeader = reader.read().unwrap();
    assert_eq!((h.seq, h.error.to_string_lossy()), (52, String::new()));
    drop(conn);

    // Our CLI without the token: refused, every command.
    let cli_commands: Vec<Vec<&str>> = vec![
        vec!["members"],
        vec!["join", &peer_addr],
        vec!["force-leave", "auth-peer"],
        vec!["event", "sneaky"],
        vec!["query", "-timeout=1s", "sneaky"],
        vec!["tags", "-set", "sneaky=1"],
        vec!["keys", "-list"],
        vec!["keys", "-install", KEY3],
        vec!["keys", "-use", KEY3],
        vec!["keys", "-remove", KEY1],
        vec!["info"],
        vec!["rtt", "auth-node"],
        vec!["monitor"],
        vec!["reachability"],
        vec!["leave"],
    ];
    for args in &cli_commands {
        let err = guarded
            .cli(args)
            .expect_err(&format!("{args:?} worked without the token"));
        assert!(err.contains("Authentication required"), "{args:?}: {err}");
    }

    // Nothing happened: still up, alone, untagged, one key.
    let mut client = RpcClient::connect(&guarded.rpc.to_string(), "s3cret").expect("connect");
    let members = client.members().unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert!(members[0].tags.is_empty(), "{:?}", members[0].tags);
    let keys = client
        .list_keys()
        .expect("list keys")
        .keys
        .unwrap_or_default();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(peer.members().len() == 1);

    // With the token, every command is served.
    let mut c = RpcClient::connect(&guarded.rpc.to_string(), "s3cret").expect("connect");
    let not_auth = |what: &str, r: Result<(), String>| {
        if let Err(e) = r {
            assert!(!e.contains("Authentication"), "{what}: {e}");
        }
    };
    assert_eq!(c.join(std::slice::from_ref(&peer_addr), false).unwrap(), 1);
    assert_eq!(
        c.members_filtered(BTreeMap::new(), "alive", "auth-.*")
            .unwrap()
            .len(),
        2
    );
    c.user_event("allowed", Some(b"x"), false).unwrap();
    c.update_tags([("role".to_string(), "db".to_string())].into(), &[])
        .unwrap();
    let events = c.stream("user").unwrap();
    let logs = c.monitor("info").unwrap();
    c.stop(events).unwrap();
    c.stop(logs).unwrap();
    let q = c
        .query(&rpc::QueryRequest {
            name: "allowed".into(),
            timeout: 500_000_000,
            ..Default::default()
        })
        .unwrap();
    let _ = q;
    // An unknown query id is the agent's own answer, not an auth failure.
    let r = c.respond(12345, b"x");
    assert!(
        matches!(&r, Err(ClientError::Remote(e)) if e == "No pending queries matching ID"),
        "{r:?}"
    );
    c.install_key(KEY3).unwrap();
    c.use_key(KEY3).unwrap();
    c.remove_key(KEY1).unwrap();
    assert_eq!(c.list_keys().unwrap().num_err, 0);
    assert!(!c.stats().unwrap().is_empty());
    not_auth(
        "get-coordinate",
        c.get_coordinate("auth-node")
            .map(drop)
            .map_err(|e| e.to_string()),
    );
    c.force_leave("nobody", false).unwrap();
    drop(c);
    for args in [
        vec!["members", "-rpc-auth=s3cret"],
        vec!["info", "-rpc-auth=s3cret"],
        vec!["keys", "-rpc-auth=s3cret", "-list"],
        vec!["rtt", "-rpc-auth=s3cret", "auth-node"],
        vec!["reachability", "-rpc-auth=s3cret"],
        vec!["event", "-rpc-auth=s3cret", "allowed-too"],
        vec!["query", "-rpc-auth=s3cret", "-timeout=1s", "allowed-too"],
        vec!["tags", "-rpc-auth=s3cret", "-set", "rack=r1"],
    ] {
        let r = guarded.cli(&args);
        assert!(r.is_ok(), "{args:?}: {r:?}");
    }
    assert!(guarded.members().is_empty(), "members without the token");
    assert!(guarded.cli(&["leave", "-rpc-auth=s3cret"]).is_ok());
    assert!(
        wait_until(Duration::from_secs(15), || guarded.exited().is_some()),
        "the authenticated leave stops the agent"
    );
}

// ---------------------------------------------------------------------------------------------
// file modes

/// The keyring and tags files are left 0600 whenever the agent writes them, also when they
/// existed with a looser mode before (HashiCorp's agent keeps an existing file's mode).
#[test]
fn keyring_and_tags_files_are_written_0600() {
    let dir = scratch("modes");
    let keyring = dir.join("keyring.json");
    let tags = dir.join("tags.json");
    std::fs::write(&keyring, format!("[\"{KEY1}\"]")).unwrap();
    std::fs::write(&tags, "{\"role\": \"web\"}").unwrap();
    for f in [&keyring, &tags] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let kf = format!("-keyring-file={}", keyring.display());
    let tf = format!("-tags-file={}", tags.display());
    let agent = Agent::start_binary(ours(), "modes", loopback(free_port()), &[&kf, &tf]);

    agent.cli(&["keys", "-install", KEY2]).unwrap();
    let saved = std::fs::read_to_string(&keyring).unwrap();
    assert!(saved.contains(KEY1) && saved.contains(KEY2), "{saved}");
    assert_eq!(mode(&keyring), 0o600, "after keys -install");
    agent.cli(&["keys", "-use", KEY2]).unwrap();
    agent.cli(&["keys", "-remove", KEY1]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&keyring).unwrap(),
        format!("[\"{KEY2}\"]")
    );
    assert_eq!(mode(&keyring), 0o600, "after keys -use/-remove");

    agent.cli(&["tags", "-set", "rack=r1"]).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tags).unwrap()).unwrap();
    assert_eq!(
        (&saved["role"], &saved["rack"]),
        (&"web".into(), &"r1".into())
    );
    assert_eq!(mode(&tags), 0o600, "after tags -set");

    // A tags file the agent creates is 0600, on both implementations.
    for (bin, who) in [(ours(), "ours"), (reference::binary(), "reference")] {
        let fresh = dir.join(format!("fresh-tags-{who}.json"));
        let tf = format!("-tags-file={}", fresh.display());
        let a = Agent::start_binary(bin, &format!("fresh-{who}"), loopback(free_port()), &[&tf]);
        a.cli(&["tags", "-set", "rack=r2"]).unwrap();
        assert!(
            wait_until(Duration::from_secs(5), || fresh.exists()),
            "{who}"
        );
        assert_eq!(mode(&fresh), 0o600, "{who}: a new tags file");
    }
}
