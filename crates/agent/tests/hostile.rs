//! Hostile input against a live agent: random and mutated gossip datagrams, gossip streams and
//! RPC frames (mutations of the reference implementation's golden packets), slow and oversized
//! peers, and connection floods. Every agent is a child process on 127.0.0.1, killed when its
//! guard drops; every loop is bounded in count and time.
//!
//! Loopback only: mutated input that would make an agent learn of a node outside 127.0.0.0/8
//! (alive, indirect ping, push/pull) is decoded with the library's own decoder first and not
//! sent, so no agent ever opens a connection off the host. (Datagrams from a socket bound to
//! 127.0.0.1 cannot leave it: the kernel refuses them with EINVAL.)

#[path = "../../../tests/common/reference.rs"]
mod reference;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reference::{wait_until, Agent};
use serde_json::Value;
use serf_proto::wire::memberlist::{packet, stream, Message, WireOptions};

fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_serf"))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

// ---------------------------------------------------------------------------------------------
// random numbers and mutations

/// xorshift64*: small, seedable, good enough to mutate bytes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(t);
    eprintln!("hostile: seed {seed} (set HOSTILE_SEED to replay)");
    seed
}

/// msgpack markers followed by a length (bin, str, array, map, ext).
const LENGTH_MARKERS: [u8; 15] = [
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x07, 0x0a,
];

/// One mutation of `corpus[i]`: bit flips, truncation, length-field corruption, splicing, or
/// random bytes.
fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = corpus[rng.below(corpus.len())].clone();
    match rng.below(6) {
        0 => {
            for _ in 0..=rng.below(4) {
                if !buf.is_empty() {
                    let at = rng.below(buf.len());
                    buf[at] ^= 1 << rng.below(8);
                }
            }
        }
        1 => buf.truncate(rng.below(buf.len())),
        2 => {
            // A length field (msgpack, compound count/lengths, encrypted length) made huge,
            // zero or random.
            let marks: Vec<usize> = (0..buf.len())
                .filter(|&i| LENGTH_MARKERS.contains(&buf[i]) && i + 1 < buf.len())
                .collect();
            if let Some(&at) = marks.get(rng.below(marks.len())) {
                let value = [0xff, 0x00, 0x7f, rng.next() as u8][rng.below(4)];
                for b in buf.iter_mut().skip(at + 1).take(1 + rng.below(4)) {
                    *b = value;
                }
            }
        }
        3 => {
            let other = &corpus[rng.below(corpus.len())];
            let cut = rng.below(buf.len() + 1);
            buf.truncate(cut);
            buf.extend_from_slice(&other[rng.below(other.len() + 1)..]);
        }
        4 => {
            let n = rng.below(64);
            let at = rng.below(buf.len() + 1);
            let junk = rng.bytes(n);
            buf.splice(at..at, junk);
        }
        _ => {
            let n = 1 + rng.below(1400);
            buf = rng.bytes(n);
        }
    }
    buf
}

// ---------------------------------------------------------------------------------------------
// corpora from the golden vectors

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data");

fn json_vectors(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(Path::new(VECTORS).join(dir)).expect("the vectors directory");
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Some(h) = v["hex"].as_str() {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.push((name, hex::decode(h).expect("vector hex")));
        }
    }
    out
}

/// memberlist packets and streams, and serf messages wrapped as memberlist user messages.
fn gossip_corpus() -> Vec<Vec<u8>> {
    let mut corpus: Vec<Vec<u8>> = json_vectors("memberlist")
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    for (_, serf) in json_vectors("serf") {
        let mut user = vec![8u8];
        user.extend_from_slice(&serf);
        corpus.push(user);
    }
    assert!(corpus.len() > 60, "the golden vectors are missing");
    corpus
}

/// msgpack fixstr / str8.
fn mp_str(out: &mut Vec<u8>, s: &str) {
    if s.len() < 32 {
        out.push(0xa0 | s.len() as u8);
    } else {
        out.push(0xd9);
        out.push(s.len() as u8);
    }
    out.extend_from_slice(s.as_bytes());
}

fn rpc_header(command: &str, seq: u8) -> Vec<u8> {
    let mut out = vec![0x82];
    mp_str(&mut out, "Command");
    mp_str(&mut out, command);
    mp_str(&mut out, "Seq");
    out.push(seq & 0x7f);
    out
}

/// RPC frames: a handshake, then a harmless command with a body from the golden IPC vectors.
/// Commands that change membership or keys (join, leave, force-leave, tags, *-key) are left
/// out: the agent must stay in its cluster and must never dial outside loopback.
fn rpc_corpus() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(Path::new(VECTORS).join("serf/ipc_vectors.txt"))
        .expect("ipc_vectors.txt");
    let bodies: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| l.split_once(" : ").map(|(_, h)| h.trim()))
        .filter_map(|h| hex::decode(h).ok())
        .collect();
    assert!(bodies.len() > 10, "the IPC vectors are missing");
    let mut handshake = rpc_header("handshake", 0);
    handshake.extend_from_slice(&[0x81, 0xa7]);
    handshake.extend_from_slice(b"Version");
    handshake.push(1);
    let commands = [
        "members",
        "members-filtered",
        "stats",
        "event",
        "stream",
        "monitor",
        "stop",
        "query",
        "respond",
        "auth",
        "get-coordinate",
        "list-keys",
        "handshake",
        "nosuch",
    ];
    let mut corpus = vec![handshake.clone()];
    for (i, body) in bodies.iter().enumerate() {
        let mut frame = handshake.clone();
        frame.extend(rpc_header(commands[i % commands.len()], i as u8 + 1));
        frame.extend_from_slice(body);
        corpus.push(frame);
    }
    corpus
}

// ---------------------------------------------------------------------------------------------
// the loopback guard

/// In 127.0.0.0/8 but not 127.0.0.1, where agents (of this and other tests) listen.
fn harmless_addr(addr: &[u8], names: &[&str], name: &[u8]) -> bool {
    addr.len() == 4
        && addr[0] == 127
        && addr != [127, 0, 0, 1]
        && !names.iter().any(|n| n.as_bytes() == name)
}

/// Whether an agent receiving this datagram would learn of a node outside loopback (or a node
/// with one of our agents' names).
fn safe_packet(buf: &[u8], names: &[&str]) -> bool {
    let Ok(payload) = packet::decode(&WireOptions::default(), buf) else {
        return true;
    };
    let flat = packet::flatten(&payload);
    flat.messages.iter().all(|m| match Message::decode(m) {
        Ok(Message::Alive(a)) => harmless_addr(&a.addr.0, names, &a.node.0),
        Ok(Message::IndirectPing(p)) => harmless_addr(&p.target.0, names, &p.node.0),
        _ => true,
    })
}

/// The same for a stream: the agent handles the first complete request in what it read.
fn safe_stream(buf: &[u8], names: &[&str]) -> bool {
    match stream::decode(&WireOptions::default(), buf, false) {
        Ok((stream::StreamMessage::PushPull(pp), _)) => pp
            .nodes
            .iter()
            .all(|n| harmless_addr(&n.addr.0, names, &n.name.0)),
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// observing an agent

/// A counter of the agent's `serf info` taken at some moment.
fn counter(info: &BTreeMap<String, u64>, key: &str) -> u64 {
    *info
        .get(key)
        .unwrap_or_else(|| panic!("serf info has no counter {key}: {info:?}"))
}

/// How many of `conns` the peer closed (each given 20 ms to show it).
fn closed_count(conns: &mut [TcpStream]) -> usize {
    conns
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(20)))
        .filter(|&closed| closed)
        .count()
}

fn sees_alive(agent: &Agent, name: &str) -> bool {
    agent.status_of(name).as_deref() == Some("alive")
}

fn start_pair(a: &str, b: &str) -> (Agent, Agent) {
    let agent_a = Agent::start_binary(ours(), a, loopback(reference::free_port()), &[]);
    let agent_b = Agent::start_binary(ours(), b, loopback(reference::free_port()), &[]);
    let join = agent_b.cli(&["join", &agent_a.gossip.to_string()]);
    assert!(join.is_ok(), "join: {join:?}");
    assert!(
        wait_until(Duration::from_secs(15), || sees_alive(&agent_a, b)
            && sees_alive(&agent_b, a)),
        "the pair did not form"
    );
    (agent_a, agent_b)
}

/// Reads until EOF or error; true if the peer closed within `limit`.
/// Sends `header`, then up to 48 MiB of `fill` on one connection to `to`: the bytes written
/// and whether the agent cut the connection off (a write failed, or it closed soon after).
fn write_until_cut(to: SocketAddr, header: &[u8], fill: u8) -> (usize, bool) {
    let mut stream = TcpStream::connect(to).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(header).unwrap();
    let chunk = vec![fill; 1 << 20];
    let mut written = header.len();
    for _ in 0..48 {
        if stream.write_all(&chunk).is_err() {
            return (written, true);
        }
        written += chunk.len();
    }
    (written, closed_within(&mut stream, Duration::from_secs(2)))
}

fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// A: the flood

const FLOOD: Duration = Duration::from_secs(12);

#[test]
fn a_flood_of_hostile_input_leaves_the_cluster_intact() {
    let (mut a, b) = start_pair("hostile-a", "hostile-b");
    let names = ["hostile-a", "hostile-b"];
    // Let the agent settle (first push/pull, coordinates) before the baseline.
    std::thread::sleep(Duration::from_secs(2));
    let rss_before = a.rss_kib();
    let before = a.counters();
    let seed = seed();
    let gossip_corpus = Arc::new(gossip_corpus());
    let rpc_corpus = Arc::new(rpc_corpus());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new([(); 6].map(|_| AtomicU64::new(0)));
    let (gossip, rpc) = (a.gossip, a.rpc);
    let deadline = Instant::now() + FLOOD;

    let mut threads = Vec::new();
    // UDP: about 4000 datagrams a second.
    for t in 0..2u64 {
        let (corpus, sent) = (gossip_corpus.clone(), sent.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed ^ (t + 1));
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            for i in 0..200_000u32 {
                if Instant::now() >= deadline {
                    break;
                }
                let d = mutate(&mut rng, &corpus);
                if !d.is_empty()
                    && d.len() <= 65_000
                    && safe_packet(&d, &names)
                    && sock.send_to(&d, gossip).is_ok()
                {
                    sent[0].fetch_add(1, Ordering::Relaxed);
                }
                if i % 20 == 19 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }));
    }
    // Gossip TCP: whole and partial mutated requests, stalls, bursts of concurrent connections.
    {
        let (corpus, sent, stop) = (gossip_corpus.clone(), sent.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed ^ 0x7c9);
            let mut stalled: Vec<TcpStream> = Vec::new();
            for i in 0..100_000u32 {
                if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
                    break;
                }
                let burst = if i % 40 == 0 { 30 } else { 1 };
                let mut open = Vec::new();
                for _ in 0..burst {
                    let Ok(mut s) = TcpStream::connect_timeout(&gossip, Duration::from_millis(500))
                    else {
                        continue;
                    };
                    sent[1].fetch_add(1, Ordering::Relaxed);
                    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
                    let req = mutate(&mut rng, &corpus);
                    if !safe_stream(&req, &names) {
                        continue;
                    }
                    match rng.below(3) {
                        // Half a frame, then silence until the flood ends.
                        0 if stalled.len() < 40 => {
                            let _ = s.write_all(&req[..req.len() / 2]);
                            stalled.push(s);
                        }
                        1 => {
                            let _ = s.write_all(&req);
                            let _ = s.shutdown(Shutdown::Write);
                            open.push(s);
                        }
                        _ => {
                            let _ = s.write_all(&req);
                        }
                    }
                }
                for mut s in open {
                    let _ = closed_within(&mut s, Duration::from_millis(50));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            sent[2].store(stalled.len() as u64, Ordering::Relaxed);
        }));
    }
    // RPC: mutated and random msgpack, some of it stalled half way.
    {
        let (corpus, sent) = (rpc_corpus.clone(), sent.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed ^ 0x59c);
            let mut stalled: Vec<TcpStream> = Vec::new();
            for _ in 0..50_000u32 {
                if Instant::now() >= deadline {
                    break;
                }
                let Ok(mut s) = TcpStream::connect_timeout(&rpc, Duration::from_millis(500)) else {
                    continue;
                };
                sent[3].fetch_add(1, Ordering::Relaxed);
                let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
                let req = mutate(&mut rng, &corpus);
                if rng.below(8) == 0 && stalled.len() < 8 {
                    let _ = s.write_all(&req[..req.len() / 2]);
                    stalled.push(s);
                } else {
                    let _ = s.write_all(&req);
                    let _ = s.shutdown(Shutdown::Write);
                    if closed_within(&mut s, Duration::from_millis(100)) {
                        sent[4].fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }
    // The RPC keeps answering during the flood.
    let mut answered = 0;
    while Instant::now() < deadline {
        if a.cli(&["members"]).is_ok() {
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a flood thread panicked");
    }
    let counts: Vec<u64> = sent.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    eprintln!(
        "hostile: sent {} datagrams, {} gossip connections ({} stalled), {} RPC connections \
         ({} closed by the agent within 100 ms); members answered {answered} times during the flood",
        counts[0], counts[1], counts[2], counts[3], counts[4]
    );
    assert!(counts[0] > 10_000, "the UDP flood ran: {counts:?}");
    assert!(
        counts[1] > 500 && counts[3] > 300,
        "the TCP floods ran: {counts:?}"
    );
    assert!(
        answered >= 10,
        "the RPC answered {answered} times during the flood"
    );

    // The agent survived, the pair is whole, the RPC answers.
    assert_eq!(a.exited(), None, "the agent died: {}", a.log.display());
    assert!(
        wait_until(Duration::from_secs(30), || sees_alive(&a, "hostile-b")
            && sees_alive(&b, "hostile-a")),
        "the pair is broken after the flood: a sees {:?}, b sees {:?}",
        a.members(),
        b.members()
    );
    let members = a.cli(&["members"]).expect("members answers");
    assert!(members.contains("hostile-b"), "{members}");
    // Everything malformed was counted.
    let after = a.counters();
    let delta = |k: &str| counter(&after, k) - counter(&before, k);
    let (malformed, inbound_failures) = (delta("malformed"), delta("tcp_inbound_failures"));
    eprintln!(
        "hostile: malformed +{malformed}, tcp_inbound_failures +{inbound_failures}, \
         tcp_accepts +{}, packets_received +{}",
        delta("tcp_accepts"),
        delta("packets_received")
    );
    assert!(
        malformed > 1_000,
        "malformed input was not counted: +{malformed}"
    );
    assert!(
        inbound_failures > 100,
        "broken gossip streams were not counted: +{inbound_failures}"
    );
    // Memory stayed flat (the stalled connections are closed by now).
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = a.rss_kib();
    eprintln!("hostile: VmRSS {rss_before} KiB before, {rss_after} KiB after");
    assert!(rss_before > 0 && rss_after > 0);
    assert!(
        rss_after < rss_before + 20 * 1024,
        "VmRSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert_eq!(a.exited(), None, "the agent died: {}", a.log.display());
}

// ---------------------------------------------------------------------------------------------
// B: the gossip TCP bounds, live

/// The runtime's `max_inbound_streams` and `inbound_timeout` (memberlist's `TCPTimeout`).
const MAX_INBOUND_STREAMS: usize = 128;
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn slow_excess_and_oversized_gossip_streams_are_closed() {
    let agent = Agent::start_binary(
        ours(),
        "hostile-slow",
        loopback(reference::free_port()),
        &[],
    );
    let gossip = agent.gossip;
    let before = agent.counters();

    // A peer that connects and says nothing, and one that sends half a push/pull and stalls.
    let started = Instant::now();
    let mut silent = TcpStream::connect(gossip).unwrap();
    let mut half = TcpStream::connect(gossip).unwrap();
    let push_pull = json_vectors("memberlist")
        .into_iter()
        .find(|(n, _)| n == "push_pull_stream_join_plain")
        .expect("the push/pull vector")
        .1;
    half.write_all(&push_pull[..push_pull.len() / 2]).unwrap();

    // Many concurrent connections: beyond the cap they are closed at once, unread.
    std::thread::sleep(Duration::from_millis(200));
    let extra = 200;
    let mut crowd: Vec<TcpStream> = (0..extra)
        .map(|_| TcpStream::connect(gossip).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let refused = closed_count(&mut crowd);
    eprintln!("hostile: {refused} of {extra} concurrent connections refused");
    assert_eq!(
        refused,
        extra + 2 - MAX_INBOUND_STREAMS,
        "exactly the connections beyond the cap are closed"
    );
    drop(crowd);
    // The slots come back: a well-formed TCP ping is answered.
    let ping = json_vectors("memberlist")
        .into_iter()
        .find(|(n, _)| n == "ping_max_seqno_empty_node")
        .unwrap()
        .1;
    let answered = wait_until(Duration::from_secs(3), || {
        let Ok(mut s) = TcpStream::connect(gossip) else {
            return false;
        };
        let _ = s.write_all(&ping);
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 64];
        // An ack, compressed (streams always are, compression being on) or not.
        matches!(s.read(&mut reply), Ok(n) if n > 0 && (reply[0] == 2 || reply[0] == 9))
    });
    assert!(answered, "a TCP ping is not answered after the crowd left");

    // A stream larger than 20 MiB (an encrypted frame declaring 20 MiB, then more) is cut off
    // once the agent has buffered its limit.
    let mut frame = vec![0x0a];
    frame.extend_from_slice(&(20u32 << 20).to_be_bytes());
    let (written, cut) = write_until_cut(gossip, &frame, 0x55);
    eprintln!("hostile: oversized stream cut off after {written} bytes written");
    assert!(cut, "a 48 MiB stream was not cut off");
    assert!(
        (19 << 20..34 << 20).contains(&written),
        "the agent read {written} bytes of one stream, its limit is 20 MiB"
    );

    // The slow peers are closed after the TCP timeout, not before and not much after.
    assert!(closed_within(
        &mut silent,
        TCP_TIMEOUT + Duration::from_secs(3)
    ));
    let silent_after = started.elapsed();
    assert!(closed_within(&mut half, Duration::from_secs(1)));
    let half_after = started.elapsed();
    eprintln!(
        "hostile: silent peer closed after {silent_after:?}, half-frame peer after {half_after:?}"
    );
    for t in [silent_after, half_after] {
        assert!(
            t >= TCP_TIMEOUT - Duration::from_millis(100)
                && t <= TCP_TIMEOUT + Duration::from_secs(2),
            "closed after {t:?}, expected about {TCP_TIMEOUT:?}"
        );
    }
    let after = agent.counters();
    let failures =
        counter(&after, "tcp_inbound_failures") - counter(&before, "tcp_inbound_failures");
    assert!(
        failures >= (extra + 2 - MAX_INBOUND_STREAMS) as u64 + 3,
        "refused, oversized and timed-out streams are counted: +{failures}"
    );
    assert!(counter(&after, "malformed") >= counter(&before, "malformed"));
}

// ---------------------------------------------------------------------------------------------
// B: the RPC bounds, live

/// `agent::server::MAX_CONNECTIONS` and `agent::frame::MAX_OBJECT`.
const RPC_MAX_CONNECTIONS: usize = 256;
const RPC_MAX_OBJECT: usize = 16 << 20;

#[test]
fn rpc_connections_and_objects_are_bounded() {
    let agent = Agent::start_binary(ours(), "hostile-rpc", loopback(reference::free_port()), &[]);
    let rpc = agent.rpc;

    // An object larger than the limit (a request header whose first key is a str32 declaring
    // 17 MiB) is refused: the connection is closed once 16 MiB are buffered.
    let mut frame = vec![0x81, 0xdb];
    frame.extend_from_slice(&((RPC_MAX_OBJECT as u32) + (1 << 20)).to_be_bytes());
    let (written, cut) = write_until_cut(rpc, &frame, 0x11);
    eprintln!("hostile: oversized RPC object cut off after {written} bytes written");
    assert!(cut, "a 48 MiB RPC object was not refused");
    assert!(
        (RPC_MAX_OBJECT - (1 << 20)..30 << 20).contains(&written),
        "the agent read {written} bytes of one object, its limit is {RPC_MAX_OBJECT}"
    );

    // Connections beyond the cap are closed at once; the ones below it stay open.
    std::thread::sleep(Duration::from_millis(300));
    let total = RPC_MAX_CONNECTIONS + 20;
    let mut conns: Vec<TcpStream> = Vec::new();
    for _ in 0..total {
        conns.push(TcpStream::connect(rpc).expect("connect"));
        // The acceptor registers each client before taking the next.
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(500));
    let refused = closed_count(&mut conns);
    eprintln!("hostile: {refused} of {total} RPC connections refused");
    assert_eq!(refused, total - RPC_MAX_CONNECTIONS);
    assert!(agent.cli(&["members"]).is_err(), "the RPC is full");
    drop(conns);
    assert!(
        wait_until(Duration::from_secs(5), || agent.cli(&["members"]).is_ok()),
        "the RPC answers again once the clients left"
    );
}
