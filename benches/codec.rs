//! Codec micro-benchmarks: the hot paths of the gossip loop.
//!
//! * `ping/encode+decode`: a ping as the prober sends it.
//! * `alive/encode+decode`: an alive with serf tags in its meta and a 6-byte version vector.
//! * `compound8_crc/encode+decode`: 8 alive/suspect messages in a compound behind a CRC header,
//!   then CRC check, compound split and every part decoded.
//! * `packet_compressed/encode+decode+flatten`: the same 8 messages through the UDP pipeline with
//!   compression on (and CRC), then unwrapped and flattened back to messages;
//!   `packet_compressed_encrypted/…` adds AES-128-GCM with a label.
//!
//! Run with `cargo bench --bench codec` (add `-- --quick` for a faster, rougher run).

#[path = "common/criterion.rs"]
mod settings;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use serf_proto::wire::memberlist::keyring::{Keyring, NONCE_LEN};
use serf_proto::wire::memberlist::{self as ml, compound, crc, packet, MessageType, WireOptions};
use serf_proto::wire::msgpack::{Bytes, Dialect, GoString};
use serf_proto::wire::serf::{encode_tags, Tags};

const DIALECT: Dialect = Dialect::GOSSIP;
/// Serf's version vector: protocol min/max/cur, delegate min/max/cur.
const VSN: [u8; 6] = [1, 5, 2, 2, 5, 4];

fn tags_meta() -> Bytes {
    let tags: Tags = [
        ("role", "web"),
        ("dc", "eu-west-1"),
        ("rack", "r12"),
        ("build", "0.10.1:4a8d1c2"),
        ("port", "8080"),
    ]
    .into_iter()
    .map(|(k, v)| (GoString::from(k), GoString::from(v)))
    .collect();
    Bytes(encode_tags(&tags, DIALECT))
}

fn ping() -> ml::Message {
    ml::Message::Ping(ml::Ping {
        node: GoString::from("node-b.example.internal"),
        seq_no: 48_213,
        source_addr: Some(Bytes::from([10, 0, 3, 17])),
        source_node: GoString::from("node-a.example.internal"),
        source_port: 7946,
    })
}

fn alive(i: u8) -> ml::Message {
    ml::Message::Alive(ml::Alive {
        addr: Bytes::from([10, 0, 3, i]),
        incarnation: 1000 + u32::from(i),
        meta: Some(tags_meta()),
        node: GoString::from(format!("node-{i}.example.internal")),
        port: 7946,
        vsn: Bytes::from(VSN),
    })
}

fn suspect(i: u8) -> ml::Message {
    ml::Message::Suspect(ml::Suspect {
        from: GoString::from("node-a.example.internal"),
        incarnation: 1000 + u32::from(i),
        node: GoString::from(format!("node-{i}.example.internal")),
    })
}

/// Eight gossip messages, alternating alive and suspect.
fn gossip_batch() -> Vec<ml::Message> {
    (0..8u8)
        .map(|i| if i % 2 == 0 { alive(i) } else { suspect(i) })
        .collect()
}

fn encode_decode(c: &mut Criterion, name: &str, msg: ml::Message) {
    let size = msg.encode(DIALECT).len();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("encode+decode", |b| {
        b.iter(|| {
            let bytes = black_box(&msg).encode(DIALECT);
            ml::Message::decode(black_box(&bytes)).expect("valid message")
        })
    });
    group.finish();
}

fn bench_ping(c: &mut Criterion) {
    encode_decode(c, "ping", ping());
}

fn bench_alive(c: &mut Criterion) {
    encode_decode(c, "alive", alive(7));
}

fn bench_compound_crc(c: &mut Criterion) {
    let batch = gossip_batch();
    let wire_len = crc::wrap(&compound::encode(
        &batch.iter().map(|m| m.encode(DIALECT)).collect::<Vec<_>>(),
    ))
    .len();
    let mut group = c.benchmark_group("compound8_crc");
    group.throughput(Throughput::Bytes(wire_len as u64));
    group.bench_function("encode+decode", |b| {
        b.iter(|| {
            let parts: Vec<Vec<u8>> = black_box(&batch)
                .iter()
                .map(|m| m.encode(DIALECT))
                .collect();
            let wire = crc::wrap(&compound::encode(&parts));
            let inner = crc::unwrap(black_box(&wire)).expect("valid CRC");
            let split = compound::decode(inner).expect("valid compound");
            let mut decoded = 0;
            for part in split.parts {
                black_box(ml::Message::decode(part).expect("valid part"));
                decoded += 1;
            }
            decoded
        })
    });
    group.finish();
}

fn bench_packet(c: &mut Criterion, name: &str, opts: WireOptions) {
    let parts: Vec<Vec<u8>> = gossip_batch().iter().map(|m| m.encode(DIALECT)).collect();
    let payload = compound::encode(&parts);
    let nonce = [0x42; NONCE_LEN];
    let wire = packet::encode(&opts, &payload, true, || nonce);
    if opts.keyring.is_none() {
        // Make sure the compressed path is what gets measured.
        assert_eq!(wire[crc::OVERHEAD], MessageType::Compress as u8);
    }
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("encode+decode+flatten", |b| {
        b.iter(|| {
            let wire = packet::encode(&opts, black_box(&payload), true, || nonce);
            let inner = packet::decode(&opts, black_box(&wire)).expect("valid packet");
            let flat = packet::flatten(&inner);
            assert_eq!(flat.messages.len(), parts.len());
            flat.messages.len()
        })
    });
    group.finish();
}

fn bench_packets(c: &mut Criterion) {
    bench_packet(c, "packet_compressed", WireOptions::default());
    let keyed = WireOptions {
        label: b"prod-eu".to_vec(),
        keyring: Some(Keyring::new(&[0x11; 16], &[] as &[&[u8]]).expect("valid key")),
        ..WireOptions::default()
    };
    bench_packet(c, "packet_compressed_encrypted", keyed);
}

criterion_group! {
    name = codec;
    config = settings::short_runs();
    targets = bench_ping, bench_alive, bench_compound_crc, bench_packets
}
criterion_main!(codec);
