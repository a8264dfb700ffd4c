//! Hostile lengths and nesting: declared lengths the input cannot hold, or over a protocol limit,
//! are refused quickly and before anything is allocated for them; deep nesting is refused without
//! overflowing the stack.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use serf_proto::wire::memberlist::keyring::Keyring;
use serf_proto::wire::memberlist::push_pull::{self, PushPull as MlPushPull};
use serf_proto::wire::memberlist::{self as ml, compound, compress, packet, stream, WireOptions};
use serf_proto::wire::msgpack::{self, Decoder, Dialect, GoString};
use serf_proto::wire::rpc;
use serf_proto::wire::serf as sf;
use serf_proto::wire::{DecodeResult, ErrorKind};

use crate::alloc::largest_allocation;

/// Runs a decode that must fail, quickly, without any large allocation.
fn refused_cheaply<T: Debug>(
    what: &str,
    input: &[u8],
    decode: impl FnOnce(&[u8]) -> DecodeResult<T>,
) {
    let start = Instant::now();
    let (result, largest) = largest_allocation(|| decode(input));
    let elapsed = start.elapsed();
    assert!(
        result.is_err(),
        "{what}: {} decoded to {result:?}",
        hex::encode(input)
    );
    assert!(
        largest < 64 << 10,
        "{what}: allocated {largest} bytes for {} input bytes",
        input.len()
    );
    assert!(elapsed < Duration::from_secs(1), "{what}: took {elapsed:?}");
}

/// Like [`refused_cheaply`], for lengths over a protocol limit: the error must say so rather than
/// `Truncated`, or a stream reader would wait for (and buffer) bytes it will never accept.
fn refused_over_limit<T: Debug>(
    what: &str,
    input: &[u8],
    decode: impl FnOnce(&[u8]) -> DecodeResult<T>,
) {
    let mut kind = None;
    refused_cheaply(what, input, |b| {
        let r = decode(b);
        kind = r.as_ref().err().map(|e| e.kind.clone());
        r
    });
    assert!(
        !matches!(kind, Some(ErrorKind::Truncated { .. })),
        "{what}: over-limit length reported as {kind:?} for {}",
        hex::encode(input)
    );
}

fn push_pull_header(nodes: i64, user_state_len: i64) -> Vec<u8> {
    let header = ml::PushPullHeader {
        join: false,
        nodes,
        user_state_len,
    };
    msgpack::to_vec(&header, Dialect::GOSSIP)
}

#[test]
fn huge_declared_lengths_are_refused() {
    let padding = [0u8; 100];
    let with_padding = |prefix: &[u8]| [prefix, &padding[..]].concat();
    for marker in [
        &[0xdb, 0xff, 0xff, 0xff, 0xff][..], // str32 / raw32
        &[0xc6, 0xff, 0xff, 0xff, 0xff],     // bin32
        &[0xdd, 0xff, 0xff, 0xff, 0xff],     // array32
        &[0xdf, 0xff, 0xff, 0xff, 0xff],     // map32
        &[0xda, 0xff, 0xff],                 // raw16
        &[0xdc, 0xff, 0xff],                 // array16
        &[0xde, 0xff, 0xff],                 // map16
        &[0xdd, 0x80, 0x00, 0x00, 0x00],     // array of 2^31
    ] {
        for input in [marker.to_vec(), with_padding(marker)] {
            refused_cheaply("value", &input, |b| Decoder::new(b).value());
            refused_cheaply("bytes", &input, |b| {
                Decoder::new(b).bytes().map(<[u8]>::len)
            });
            refused_cheaply("string", &input, msgpack::from_slice::<GoString>);
            refused_cheaply("string list", &input, msgpack::from_slice::<Vec<GoString>>);
            refused_cheaply("string map", &input, msgpack::from_slice::<sf::Tags>);
            refused_cheaply(
                "members",
                &input,
                msgpack::from_slice::<rpc::MembersResponse>,
            );
            refused_cheaply(
                "member list",
                &input,
                msgpack::from_slice::<Vec<rpc::Member>>,
            );
            refused_cheaply("stats", &input, msgpack::from_slice::<rpc::StatsResponse>);
            refused_cheaply("ping", &[&[0u8][..], &input].concat(), ml::Message::decode);
            refused_cheaply(
                "serf push/pull",
                &[&[2u8][..], &input].concat(),
                sf::Message::decode,
            );
            refused_cheaply("tags", &[&[0xffu8][..], &input].concat(), sf::decode_tags);
            refused_cheaply("filter", &[&[0u8][..], &input].concat(), sf::Filter::decode);
        }
    }

    // A string field whose length runs past the end, inside a struct.
    let mut ping = vec![0x00, 0x81, 0xa4];
    ping.extend_from_slice(b"Node");
    ping.extend_from_slice(&[0xdb, 0x7f, 0xff, 0xff, 0xff, b'x']);
    refused_cheaply("ping node", &ping, ml::Message::decode);

    // The serf push/pull event buffer declared with 2^31 slots.
    let mut serf_pp = vec![0x02, 0x81, 0xa6];
    serf_pp.extend_from_slice(b"Events");
    serf_pp.extend_from_slice(&[0xdd, 0x80, 0x00, 0x00, 0x00, 0xc0, 0xc0]);
    refused_cheaply("serf events", &serf_pp, sf::Message::decode);

    // Push/pull headers announcing more than is there (within the limits) or more than the
    // limits allow.
    let over = |n: usize| n as i64 + 1;
    for (nodes, user_state_len, over_limit) in [
        (1 << 31, 0, true),
        (i64::MAX, 0, true),
        (-1, 0, true),
        (over(push_pull::MAX_NODES), 0, true),
        (push_pull::MAX_NODES as i64, 0, false),
        (1000, 0, false),
        (0, 1 << 31, true),
        (0, i64::MIN, true),
        (0, over(push_pull::MAX_USER_STATE), true),
        (0, push_pull::MAX_USER_STATE as i64, false),
    ] {
        let header = push_pull_header(nodes, user_state_len);
        let message = [&[ml::MessageType::PushPull as u8][..], &header, &padding].concat();
        let body = |b: &[u8]| MlPushPull::decode_body(&mut Decoder::new(b));
        let streamed = |b: &[u8]| stream::decode(&WireOptions::default(), b, true);
        if over_limit {
            refused_over_limit("push/pull", &header, body);
            refused_over_limit("push/pull stream", &message, streamed);
        } else {
            refused_cheaply("push/pull", &header, body);
            refused_cheaply("push/pull stream", &message, streamed);
        }
    }

    // A stream user message announcing 2^40 bytes, one over the limit, a negative length, and
    // exactly the limit (merely incomplete).
    for (len, over_limit) in [
        (1i64 << 40, true),
        (over(stream::MAX_USER_MSG), true),
        (-5, true),
        (stream::MAX_USER_MSG as i64, false),
    ] {
        let header = msgpack::to_vec(&ml::UserMsgHeader { user_msg_len: len }, Dialect::GOSSIP);
        let message = [&[ml::MessageType::User as u8][..], &header, b"abc"].concat();
        let streamed = |b: &[u8]| stream::decode(&WireOptions::default(), b, false);
        if over_limit {
            refused_over_limit("stream user message", &message, streamed);
        } else {
            refused_cheaply("stream user message", &message, streamed);
        }
    }

    // An encrypted stream announcing 4 GiB, and one announcing just under the limit.
    let keyed = WireOptions {
        keyring: Some(Keyring::new(&[1; 16], &[] as &[&[u8]]).expect("valid key")),
        ..WireOptions::default()
    };
    for (len, over_limit) in [
        (u32::MAX, true),
        (stream::MAX_ENCRYPTED_LEN as u32 + 1, true),
        (stream::MAX_ENCRYPTED_LEN as u32, false),
    ] {
        let mut message = vec![ml::MessageType::Encrypt as u8];
        message.extend_from_slice(&len.to_be_bytes());
        message.extend_from_slice(&[1; 64]);
        let streamed = |b: &[u8]| stream::decode(&keyed, b, true);
        if over_limit {
            refused_over_limit("encrypted stream", &message, streamed);
        } else {
            refused_cheaply("encrypted stream", &message, streamed);
        }
    }

    // A compound announcing 255 parts with no lengths; a compressed message announcing a huge
    // buffer.
    refused_cheaply("compound", &[0x07, 0xff, 0x00, 0x10], |b| {
        compound::decode(b).map(|p| p.parts.len())
    });
    let mut compressed = vec![ml::MessageType::Compress as u8, 0x82, 0xa4];
    compressed.extend_from_slice(b"Algo");
    compressed.push(0x00);
    compressed.extend_from_slice(&[0xa3, b'B', b'u', b'f', 0xdb, 0xff, 0xff, 0xff, 0xff, 0x00]);
    refused_cheaply("compress", &compressed, |b| compress::unwrap(b, 1 << 20));
    refused_cheaply("compress packet", &compressed, |b| {
        packet::decode(&WireOptions::default(), b).and_then(|inner| {
            let flat = packet::flatten(&inner);
            flat.errors.into_iter().next().map_or(Ok(()), Err)
        })
    });
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for depth in [msgpack::MAX_DEPTH + 1, 1_000, 200_000] {
        let arrays = vec![0x91u8; depth];
        refused_cheaply("arrays", &arrays, |b| Decoder::new(b).value());
        let maps: Vec<u8> = std::iter::repeat_n([0x81u8, 0xc0], depth)
            .flatten()
            .collect();
        refused_cheaply("maps", &maps, |b| Decoder::new(b).value());
        // Skipped as the value of an unknown key of a struct.
        let mut ping = vec![0x00, 0x81, 0xa1, b'X'];
        ping.extend_from_slice(&arrays);
        refused_cheaply("unknown key", &ping, ml::Message::decode);
        refused_cheaply("rpc", &ping[1..], msgpack::from_slice::<rpc::QueryRequest>);
    }
    // Compounds nested in compounds and compressed messages: refused past the nesting limit.
    let mut nested = ml::Message::Nack(ml::Nack { seq_no: 1 }).encode(Dialect::GOSSIP);
    for i in 0..12 {
        nested = if i % 2 == 0 {
            compound::encode(&[nested])
        } else {
            compress::wrap(&nested, Dialect::GOSSIP)
        };
    }
    let flat = packet::flatten(&nested);
    assert!(flat.messages.is_empty());
    assert!(matches!(flat.errors[..], [ref e] if matches!(e.kind, ErrorKind::TooDeep { .. })));
}
