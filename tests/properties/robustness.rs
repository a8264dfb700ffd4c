//! Decode-anything: every decoder entry point, fed the same bytes, arbitrary or valid encodings of
//! every kind damaged a few times; only panics matter. And arbitrary msgpack allocates in
//! proportion to the input only.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use serf_proto::wire::memberlist::keyring::{EncryptionVersion, Keyring, NONCE_LEN};
use serf_proto::wire::memberlist::push_pull::PushPull as MlPushPull;
use serf_proto::wire::memberlist::{
    self as ml, compound, compress, crc, label, lzw, packet, stream, WireOptions,
};
use serf_proto::wire::msgpack::{self, Decoder, Dialect, GoString};
use serf_proto::wire::serf as sf;

use crate::alloc::largest_allocation;
use crate::memberlist::{ml_message, ml_push_pull};
use crate::rpc::{decode_all_rpc, rpc_encode, rpc_value, RpcValue};
use crate::serf_messages::{coordinate, filter, serf_message};
use crate::strategies::{gossip_dialect, string_map};
use crate::support::config;
use crate::transport::{stream_case, StreamCase};

struct Fixtures {
    options: Vec<WireOptions>,
    keyring: Keyring,
}

static FIXTURES: LazyLock<Fixtures> = LazyLock::new(|| {
    let key16 = [7u8; 16];
    let key32 = [9u8; 32];
    let keyed = |label: &[u8], verify_incoming: bool, version| WireOptions {
        label: label.to_vec(),
        keyring: Some(Keyring::new(&key16, &[key32]).expect("valid keys")),
        verify_incoming,
        encryption_version: version,
        ..WireOptions::default()
    };
    Fixtures {
        options: vec![
            WireOptions::default(),
            WireOptions {
                compression: false,
                ..WireOptions::default()
            },
            WireOptions {
                label: b"cluster".to_vec(),
                ..WireOptions::default()
            },
            keyed(b"", true, EncryptionVersion::V1),
            keyed(b"", false, EncryptionVersion::V0),
            keyed(b"cluster", true, EncryptionVersion::V1),
        ],
        keyring: Keyring::new(&key16, &[key32]).expect("valid keys"),
    }
});

fn decode_everything(buf: &[u8]) {
    let _ = ml::Message::decode(buf);
    let _ = ml::MessageType::of(buf);
    let _ = sf::Message::decode(buf);
    let _ = sf::Filter::decode(buf);
    let _ = sf::decode_tags(buf);
    let _ = sf::decode_ack_payload(buf);
    decode_all_rpc(buf);
    let _ = msgpack::from_slice::<ml::PushNodeState>(buf);
    let _ = msgpack::from_slice::<sf::Coordinate>(buf);

    let mut dec = Decoder::new(buf);
    while dec.remaining() > 0 && dec.value().is_ok() {}

    let _ = MlPushPull::decode_body(&mut Decoder::new(buf));
    if let Some(rest) = buf.get(1..) {
        let _ = MlPushPull::decode_body(&mut Decoder::new(rest));
    }
    let _ = compound::decode(buf);
    let _ = crc::unwrap(buf);
    let _ = label::split(buf);
    let _ = compress::unwrap(buf, 1 << 16);
    let _ = lzw::decompress(buf, 1 << 16);
    let _ = lzw::decompress(buf, 0);

    let fixtures = &*FIXTURES;
    let _ = fixtures.keyring.decrypt(buf, b"");
    for opts in &fixtures.options {
        if let Ok(inner) = packet::decode(opts, buf) {
            let flat = packet::flatten(&inner);
            for message in &flat.messages {
                if let Ok(ml::Message::User(payload)) = ml::Message::decode(message) {
                    let _ = sf::Message::decode(&payload);
                }
            }
        }
        let _ = packet::flatten(buf);
        for dialer in [false, true] {
            let _ = stream::decode(opts, buf, dialer);
        }
    }
}

/// A valid encoding of some kind, to be mutated.
#[derive(Debug, Clone)]
enum Seed {
    Memberlist(ml::Message, Dialect),
    Serf(sf::Message, Dialect),
    SerfInUser(sf::Message),
    PushPull(MlPushPull, Dialect),
    Packet(Vec<ml::Message>, bool),
    Stream(StreamCase, bool),
    Rpc(RpcValue),
    Coordinate(sf::Coordinate),
    Tags(BTreeMap<GoString, GoString>),
    Filter(sf::Filter),
}

impl Seed {
    fn encode(&self) -> Vec<u8> {
        let fixtures = &*FIXTURES;
        match self {
            Seed::Memberlist(m, d) => m.encode(*d),
            Seed::Serf(m, d) => m.encode(*d),
            Seed::SerfInUser(m) => {
                ml::Message::User(m.encode(Dialect::GOSSIP)).encode(Dialect::GOSSIP)
            }
            Seed::PushPull(p, d) => p.encode(*d),
            Seed::Packet(msgs, crc) => {
                let parts: Vec<Vec<u8>> = msgs.iter().map(|m| m.encode(Dialect::GOSSIP)).collect();
                let payload = compound::encode(&parts);
                packet::encode(&fixtures.options[0], &payload, *crc, || [0; NONCE_LEN])
            }
            Seed::Stream(case, compressed) => {
                let opts = &fixtures.options[usize::from(!*compressed)];
                stream::encode(opts, &case.encode(Dialect::GOSSIP), true, || [0; NONCE_LEN])
            }
            Seed::Rpc(v) => rpc_encode(v, Dialect::RPC),
            Seed::Coordinate(c) => sf::encode_ack_payload(c, Dialect::GOSSIP),
            Seed::Tags(t) => sf::encode_tags(t, Dialect::GOSSIP),
            Seed::Filter(f) => f.encode(Dialect::GOSSIP),
        }
    }
}

fn seed() -> BoxedStrategy<Seed> {
    prop_oneof![
        (ml_message(), gossip_dialect()).prop_map(|(m, d)| Seed::Memberlist(m, d)),
        (serf_message(), gossip_dialect()).prop_map(|(m, d)| Seed::Serf(m, d)),
        serf_message().prop_map(Seed::SerfInUser),
        (ml_push_pull(), gossip_dialect()).prop_map(|(p, d)| Seed::PushPull(p, d)),
        (vec(ml_message(), 1..5), any::<bool>()).prop_map(|(m, c)| Seed::Packet(m, c)),
        (stream_case(), any::<bool>()).prop_map(|(s, c)| Seed::Stream(s, c)),
        rpc_value().prop_map(Seed::Rpc),
        coordinate().prop_map(Seed::Coordinate),
        string_map().prop_map(Seed::Tags),
        filter().prop_map(Seed::Filter),
    ]
    .boxed()
}

/// Bytes that change how a msgpack decoder reads what follows.
const INTERESTING: [u8; 26] = [
    0x00, 0x01, 0x7f, 0x80, 0x8f, 0x9f, 0xbf, 0xc0, 0xc2, 0xc3, 0xc4, 0xc6, 0xca, 0xcb, 0xcc, 0xcf,
    0xd0, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff,
];

#[derive(Debug, Clone)]
enum Mutation {
    Xor(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(i, b)| Mutation::Xor(i, b)),
        (any::<usize>(), select(INTERESTING.to_vec())).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(buf: &mut Vec<u8>, m: &Mutation) {
    if buf.is_empty() {
        if let Mutation::Insert(_, b) = m {
            buf.push(*b);
        }
        return;
    }
    let at = |i: usize| i % buf.len();
    match *m {
        Mutation::Xor(i, b) => {
            let i = at(i);
            buf[i] ^= b;
        }
        Mutation::Set(i, b) => {
            let i = at(i);
            buf[i] = b;
        }
        Mutation::Insert(i, b) => {
            let i = i % (buf.len() + 1);
            buf.insert(i, b);
        }
        Mutation::Remove(i) => {
            let i = at(i);
            buf.remove(i);
        }
        Mutation::Truncate(i) => buf.truncate(at(i)),
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in vec(any::<u8>(), 0..2048)) {
        decode_everything(&buf);
    }

    /// Random bytes behind each message-type byte, to get past the first check of each decoder.
    #[test]
    fn arbitrary_typed_bytes_never_panic(
        ty in select(vec![0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0xf4, 0xff]),
        body in vec(any::<u8>(), 0..512),
    ) {
        let mut buf = vec![ty];
        buf.extend_from_slice(&body);
        decode_everything(&buf);
    }

    /// Valid encodings of every kind, damaged a few times: gets deep into every decoder.
    #[test]
    fn mutated_encodings_never_panic(seed in seed(), mutations in vec(mutation(), 1..6)) {
        let mut buf = seed.encode();
        decode_everything(&buf);
        for m in &mutations {
            mutate(&mut buf, m);
            decode_everything(&buf);
        }
    }

    /// Arbitrary bytes decoded as msgpack allocate in proportion to the input only.
    #[test]
    fn arbitrary_msgpack_allocation_is_bounded(buf in vec(any::<u8>(), 0..2048)) {
        let (_, largest) = largest_allocation(|| {
            let mut dec = Decoder::new(&buf);
            while dec.remaining() > 0 && dec.value().is_ok() {}
            let _ = ml::Message::decode(&buf);
            let _ = sf::Message::decode(&buf);
            decode_all_rpc(&buf);
        });
        // Slices are pre-sized from the declared count, which may be up to one element per input
        // byte left: size_of::<rpc::Member>() (112) bytes per input byte in the worst case, plus
        // a B-tree node (about 540 bytes) for a map's first entry.
        let bound = 512 * (buf.len() + 1);
        prop_assert!(largest <= bound, "{} bytes allocated for {}", largest, buf.len());
    }
}
