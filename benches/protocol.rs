//! Protocol micro-benchmarks: what one node spends per probe, per gossip message and per packet.
//!
//! * `probe/*`: a sans-I/O core handles a ping datagram and produces its ack (`memberlist`: the
//!   bare memberlist core; `serf`: the serf core, whose ack carries the Vivaldi coordinate), and
//!   handles an alive message that refreshes a known member (a newer incarnation: state update,
//!   re-broadcast queued, serf's update event drained).
//! * `broadcast/*`: the transmit-limited queue with 1,000 queued broadcasts (≈ 90-byte alive
//!   messages, as after a 1,000-node join): filling one 1,400-byte gossip packet, queueing 1,000
//!   broadcasts into an empty queue, and replacing one queued broadcast (invalidation by key).
//! * `packet_send/*` and `packet_recv/*`: a typical outgoing compound (a ping with 6 piggybacked
//!   alive/suspect broadcasts) through the UDP pipeline (compound encode → compression → CRC →
//!   AES-GCM with a label), and the receive path (label/decrypt/CRC/decompress → compound split →
//!   every message decoded), plain, compressed, encrypted, and both.
//!
//! Run with `cargo bench --bench protocol`. After the run, the medians of the benchmarks that ran
//! are read back from `target/criterion/*/new/estimates.json` and written to
//! `target/bench/micro.md`, together with those of `benches/codec.rs` when `BENCH_SINCE` (Unix
//! seconds, set by `make bench` before both run) says they are from the same run.

#[path = "common/criterion.rs"]
mod settings;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};

use serf_proto::memberlist::broadcast::{Broadcast, BroadcastQueue, Recipient};
use serf_proto::memberlist::machine::Machine;
use serf_proto::memberlist::{Config as MlConfig, Memberlist, NoDelegate, Profile};
use serf_proto::serf::{Config as SerfConfig, Serf};
use serf_proto::wire::memberlist::keyring::{Keyring, NONCE_LEN};
use serf_proto::wire::memberlist::{self as ml, compound, packet, WireOptions};
use serf_proto::wire::msgpack::{Bytes, Dialect, GoString};
use serf_proto::wire::serf::{encode_tags, Tags};

const DIALECT: Dialect = Dialect::GOSSIP;
/// Serf's version vector: protocol min/max/cur, delegate min/max/cur.
const VSN: [u8; 6] = [1, 5, 2, 2, 5, 4];
const LOCAL: &str = "node-a.example.internal";
const PEER: &str = "node-b.example.internal";

fn local_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7946))
}

fn peer_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 2], 7946))
}

fn tags_meta() -> Bytes {
    let tags: Tags = [("role", "web"), ("dc", "eu-west-1"), ("rack", "r12")]
        .into_iter()
        .map(|(k, v)| (GoString::from(k), GoString::from(v)))
        .collect();
    Bytes(encode_tags(&tags, DIALECT))
}

fn ping(seq_no: u32) -> ml::Message {
    ml::Message::Ping(ml::Ping {
        node: GoString::from(LOCAL),
        seq_no,
        source_addr: Some(Bytes::from([127, 0, 0, 2])),
        source_node: GoString::from(PEER),
        source_port: 7946,
    })
}

fn alive(name: &str, ip: [u8; 4], incarnation: u32) -> ml::Message {
    ml::Message::Alive(ml::Alive {
        addr: Bytes::from(ip),
        incarnation,
        meta: Some(tags_meta()),
        node: GoString::from(name),
        port: 7946,
        vsn: Bytes::from(VSN),
    })
}

fn suspect(i: u32) -> ml::Message {
    ml::Message::Suspect(ml::Suspect {
        from: GoString::from(LOCAL),
        incarnation: 1000 + i,
        node: GoString::from(format!("node-{i}.example.internal")),
    })
}

/// A datagram as a peer without encryption sends it (compression on, CRC for protocol 5 peers).
fn datagram(msg: &ml::Message) -> Vec<u8> {
    packet::encode(&WireOptions::default(), &msg.encode(DIALECT), true, || {
        [0; NONCE_LEN]
    })
}

/// A memberlist core that knows `PEER` (learned from an alive), with the resulting broadcast
/// already gossiped away.
fn memberlist_core() -> Memberlist {
    let now = Instant::now();
    let mut config = MlConfig::new(Profile::Lan, LOCAL, local_addr());
    config.delegate_protocol = [2, 5, 4];
    let mut m = Memberlist::new(config, vec![], now, 7, &mut NoDelegate);
    m.handle_packet(
        now,
        peer_addr(),
        &datagram(&alive(PEER, [127, 0, 0, 2], 1)),
        &mut NoDelegate,
    );
    drain_memberlist(&mut m);
    m
}

fn drain_memberlist(m: &mut Memberlist) -> usize {
    let mut n = 0;
    while let Some(t) = m.poll_transmit() {
        n += t.payload.len();
    }
    while m.poll_stream().is_some() {}
    n
}

/// A serf core that knows `PEER`, with its join event drained.
fn serf_core() -> Serf {
    let now = Instant::now();
    let config = SerfConfig::new(Profile::Lan, LOCAL, local_addr());
    let mut s = Serf::new(config, now, 7).expect("serf core");
    s.handle_packet(now, peer_addr(), &datagram(&alive(PEER, [127, 0, 0, 2], 1)));
    drain_serf(&mut s);
    s
}

fn drain_serf(s: &mut Serf) -> usize {
    let mut n = 0;
    while let Some(t) = s.poll_transmit() {
        n += t.payload.len();
    }
    while s.poll_stream().is_some() {}
    while s.poll_event().is_some() {}
    n
}

fn bench_probe(c: &mut Criterion) {
    let mut group = c.benchmark_group("probe");
    let ping = datagram(&ping(48_213));

    let mut m = memberlist_core();
    group.bench_function("memberlist_ping_to_ack", |b| {
        b.iter(|| {
            m.handle_packet(
                Instant::now(),
                peer_addr(),
                black_box(&ping),
                &mut NoDelegate,
            );
            let ack = m.poll_transmit().expect("an ack");
            black_box(ack.payload.len()) + drain_memberlist(&mut m)
        })
    });

    let mut s = serf_core();
    group.bench_function("serf_ping_to_ack", |b| {
        b.iter(|| {
            s.handle_packet(Instant::now(), peer_addr(), black_box(&ping));
            let ack = s.poll_transmit().expect("an ack");
            black_box(ack.payload.len()) + drain_serf(&mut s)
        })
    });

    // A refresh of a known member: every iteration brings a newer incarnation, so the full
    // update path runs (state change, re-broadcast queued and invalidating the previous one).
    let mut m = memberlist_core();
    let mut incarnation = 1u32;
    group.bench_function("memberlist_alive_refresh", |b| {
        b.iter_batched(
            || {
                incarnation += 1;
                datagram(&alive(PEER, [127, 0, 0, 2], incarnation))
            },
            |pkt| {
                m.handle_packet(Instant::now(), peer_addr(), &pkt, &mut NoDelegate);
                drain_memberlist(&mut m)
            },
            BatchSize::SmallInput,
        )
    });

    let mut s = serf_core();
    let mut incarnation = 1u32;
    group.bench_function("serf_alive_refresh", |b| {
        b.iter_batched(
            || {
                incarnation += 1;
                datagram(&alive(PEER, [127, 0, 0, 2], incarnation))
            },
            |pkt| {
                s.handle_packet(Instant::now(), peer_addr(), &pkt);
                drain_serf(&mut s)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// An alive broadcast for member `i`, keyed by its name as memberlist keys them.
fn alive_broadcast(i: u32) -> Broadcast {
    let name = format!("node-{i:04}.example.internal");
    let ip = i.to_be_bytes();
    Broadcast {
        key: Some(name.clone().into_bytes()),
        message: alive(&name, [127, ip[1], ip[2], ip[3]], 1).encode(DIALECT),
        notify: None,
    }
}

fn bench_broadcast(c: &mut Criterion) {
    const QUEUED: u32 = 1000;
    const NODES: usize = 1000;
    let broadcasts: Vec<Broadcast> = (0..QUEUED).map(alive_broadcast).collect();
    let mut full = BroadcastQueue::new(4);
    for b in &broadcasts {
        full.queue(b.clone());
    }
    let mut group = c.benchmark_group("broadcast");

    // One gossip packet's worth, as memberlist asks for it: 1,400-byte UDP budget minus the
    // compound header, 2 bytes of overhead per message.
    let limit = 1400 - compound::HEADER_OVERHEAD;
    let live_peers = || NODES - 1;
    let to = Recipient::new(SocketAddr::from(([127, 0, 0, 2], 7946)), &live_peers);
    group.bench_function("select_packet_of_1000", |b| {
        b.iter_batched_ref(
            || full.clone(),
            |q| q.get_broadcasts(compound::PART_OVERHEAD, limit, NODES, &to),
            BatchSize::SmallInput,
        )
    });

    group.throughput(Throughput::Elements(u64::from(QUEUED)));
    group.bench_function("queue_1000", |b| {
        b.iter_batched(
            || broadcasts.clone(),
            |bs| {
                let mut q = BroadcastQueue::new(4);
                for b in bs {
                    q.queue(b);
                }
                q.len()
            },
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(1));

    let mut q = full.clone();
    let mut i = 0u32;
    group.bench_function("invalidate_in_1000", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % QUEUED;
                alive_broadcast(i)
            },
            |b| {
                q.queue(b);
                q.take_finished().len()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A ping with six piggybacked gossip messages: what a prober's packet looks like while news
/// spreads.
fn typical_compound() -> (Vec<u8>, usize) {
    let mut parts = vec![ping(48_213).encode(DIALECT)];
    for i in 0..6u32 {
        let msg = if i % 2 == 0 {
            alive(
                &format!("node-{i}.example.internal"),
                [10, 0, 3, i as u8],
                1000 + i,
            )
        } else {
            suspect(i)
        };
        parts.push(msg.encode(DIALECT));
    }
    (compound::encode(&parts), parts.len())
}

fn bench_packet(c: &mut Criterion) {
    let (payload, n_parts) = typical_compound();
    let nonce = [0x42; NONCE_LEN];
    let keyring = || Keyring::new(&[0x11; 16], &[] as &[&[u8]]).expect("valid key");
    let variants: [(&str, WireOptions); 4] = [
        (
            "plain",
            WireOptions {
                compression: false,
                ..WireOptions::default()
            },
        ),
        ("compressed", WireOptions::default()),
        (
            "encrypted",
            WireOptions {
                compression: false,
                label: b"prod-eu".to_vec(),
                keyring: Some(keyring()),
                ..WireOptions::default()
            },
        ),
        (
            "compressed_encrypted",
            WireOptions {
                label: b"prod-eu".to_vec(),
                keyring: Some(keyring()),
                ..WireOptions::default()
            },
        ),
    ];
    let mut send = c.benchmark_group("packet_send");
    send.throughput(Throughput::Bytes(payload.len() as u64));
    for (name, opts) in &variants {
        // The real send path draws a fresh nonce from a ChaCha stream for every packet.
        let mut nonces = StdRng::from_seed([7; 32]);
        send.bench_function(*name, |b| {
            b.iter(|| packet::encode(opts, black_box(&payload), true, || nonces.random()).len())
        });
    }
    send.finish();
    let mut recv = c.benchmark_group("packet_recv");
    recv.throughput(Throughput::Bytes(payload.len() as u64));
    for (name, opts) in &variants {
        let wire = packet::encode(opts, &payload, true, || nonce);
        recv.bench_function(*name, |b| {
            b.iter(|| {
                let inner = packet::decode(opts, black_box(&wire)).expect("valid packet");
                let flat = packet::flatten(&inner);
                let mut decoded = 0;
                for msg in &flat.messages {
                    black_box(ml::Message::decode(msg).expect("valid message"));
                    decoded += 1;
                }
                assert_eq!(decoded, n_parts);
                decoded
            })
        });
    }
    recv.finish();
}

criterion_group! {
    name = protocol;
    config = settings::short_runs();
    targets = bench_probe, bench_broadcast, bench_packet
}

fn main() {
    let started = std::env::var("BENCH_SINCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or_else(SystemTime::now, |secs| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
        });
    protocol();
    Criterion::default().configure_from_args().final_summary();
    if let Err(e) = write_summary(started) {
        eprintln!("could not write target/bench/micro.md: {e}");
    }
}

/// Criterion's output directory, as criterion finds it.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    target_dir().join("criterion")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// Every `<group>/<bench>/new/estimates.json` written since `since`, as (id, median ns,
/// lower and upper bound of its confidence interval).
fn fresh_estimates(dir: &Path, since: SystemTime) -> Vec<(String, f64, f64, f64)> {
    let mut out = Vec::new();
    let Ok(groups) = std::fs::read_dir(dir) else {
        return out;
    };
    for group in groups.flatten() {
        let Ok(benches) = std::fs::read_dir(group.path()) else {
            continue;
        };
        for bench in benches.flatten() {
            let file = bench.path().join("new").join("estimates.json");
            let fresh = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since);
            if !fresh {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let median = &json["median"];
            let (Some(point), Some(lo), Some(hi)) = (
                median["point_estimate"].as_f64(),
                median["confidence_interval"]["lower_bound"].as_f64(),
                median["confidence_interval"]["upper_bound"].as_f64(),
            ) else {
                continue;
            };
            let id = format!(
                "{}/{}",
                group.file_name().to_string_lossy(),
                bench.file_name().to_string_lossy()
            );
            out.push((id, point, lo, hi));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn human(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn write_summary(since: SystemTime) -> std::io::Result<()> {
    // Only this run's: codec.rs's too when BENCH_SINCE dates the run from before it.
    let rows = fresh_estimates(&criterion_dir(), since);
    if rows.is_empty() {
        return Ok(());
    }
    let mut md = String::from(
        "## Micro-benchmarks (`cargo bench --bench codec --bench protocol`)\n\n\
         Criterion, 30 samples, 1 s measurement after 0.3 s warm-up per benchmark; median time \
         per iteration with the 95% confidence interval of the median. One thread, no I/O: \
         the sans-I/O cores are driven directly.\n\n\
         | benchmark | median | 95% CI |\n|---|---:|---|\n",
    );
    for (id, point, lo, hi) in &rows {
        md.push_str(&format!(
            "| `{id}` | {} | {} – {} |\n",
            human(*point),
            human(*lo),
            human(*hi)
        ));
    }
    md.push_str(
        "\n* `probe/*_ping_to_ack`: one ping datagram (compressed, CRC) handled and its ack \
         taken from the core; `serf_*` includes the Vivaldi coordinate in the ack.\n\
         * `probe/*_alive_refresh`: an alive with a newer incarnation for a known member \
         (state update + re-broadcast queued); the datagram is built outside the timing.\n\
         * `broadcast/select_packet_of_1000`: one 1,400-byte gossip packet filled from a queue of \
         1,000 alive broadcasts (cloning the queue is outside the timing); `queue_1000`: 1,000 \
         broadcasts queued into an empty queue (time for all 1,000); `invalidate_in_1000`: a \
         newer broadcast replaces a queued one.\n\
         * `packet_send/*`: a ping + 6 gossip messages compound through compression (if \
         shorter), CRC, AES-128-GCM with a label (fresh OS nonce per packet); \
         `packet_recv/*`: the reverse plus decoding all 7 messages.\n\
         * codec: `ping`, `alive` (serf tags in its meta): one message encoded and decoded; \
         `compound8_crc`: 8 alive/suspect messages in a compound behind a CRC header, checked, \
         split and decoded; `packet_compressed[_encrypted]`: the same 8 through the UDP \
         pipeline (compression, CRC, AES-128-GCM with a label) and back to messages.\n",
    );
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("micro.md"), md)?;
    eprintln!("wrote {}", dir.join("micro.md").display());
    Ok(())
}
