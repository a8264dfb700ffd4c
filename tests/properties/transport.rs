//! The transports with every wire option (label, keys, compression, CRC, dialect): UDP packets
//! through encoding, decoding and flattening, and TCP stream framing in both directions,
//! including the `Truncated` promise for stream prefixes.

use proptest::collection::vec;
use proptest::prelude::*;

use serf_proto::wire::memberlist::keyring::{EncryptionVersion, Keyring, NONCE_LEN};
use serf_proto::wire::memberlist::push_pull::PushPull as MlPushPull;
use serf_proto::wire::memberlist::stream::{self, StreamMessage};
use serf_proto::wire::memberlist::{self as ml, compound, crc, label, packet, WireOptions};
use serf_proto::wire::msgpack::{Dialect, GoString};
use serf_proto::wire::ErrorKind;

use crate::keyring::{aes_key, encryption_version};
use crate::memberlist::{ack, err_resp, ml_message, ml_push_pull, normalized, omit_empty, ping};
use crate::strategies::{blob, gossip_dialect, small_blob};
use crate::support::{config, ok, prefix_lengths, prefixes_fail};

fn label_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        3 => vec(any::<u8>(), 1..16),
        1 => vec(any::<u8>(), 255),
    ]
    .boxed()
}

/// Everything needed to build the options of both ends (`WireOptions` is not `Clone`).
#[derive(Debug, Clone)]
struct OptionsSpec {
    compression: bool,
    label: Vec<u8>,
    /// Installed keys; the sender's primary is the first.
    keys: Option<Vec<Vec<u8>>>,
    /// The receiver's primary is this key (mod the number of keys): decryption tries them all.
    receiver_primary: usize,
    version: EncryptionVersion,
    dialect: Dialect,
}

impl OptionsSpec {
    fn build(&self, primary: usize) -> WireOptions {
        let keyring = self.keys.as_ref().map(|keys| {
            let first = &keys[primary % keys.len()];
            Keyring::new(first, keys).expect("valid AES key sizes")
        });
        WireOptions {
            label: self.label.clone(),
            keyring,
            compression: self.compression,
            encryption_version: self.version,
            verify_incoming: true,
            verify_outgoing: true,
            dialect: self.dialect,
        }
    }
    fn sender(&self) -> WireOptions {
        self.build(0)
    }
    fn receiver(&self) -> WireOptions {
        self.build(self.receiver_primary)
    }
}

fn options_spec() -> BoxedStrategy<OptionsSpec> {
    (
        any::<bool>(),
        label_bytes(),
        proptest::option::of(vec(aes_key(), 1..4)),
        any::<usize>(),
        encryption_version(),
        gossip_dialect(),
    )
        .prop_map(
            |(compression, label, keys, receiver_primary, version, dialect)| OptionsSpec {
                compression,
                label,
                keys,
                receiver_primary,
                version,
                dialect,
            },
        )
        .boxed()
}

/// A message as sent on a stream, and what reading it must give.
#[derive(Debug, Clone)]
pub(crate) enum StreamCase {
    Ping(ml::Ping),
    Ack(ml::Ack),
    PushPull(MlPushPull),
    User(Vec<u8>),
    Err(ml::ErrResp),
}

impl StreamCase {
    pub(crate) fn encode(&self, d: Dialect) -> Vec<u8> {
        match self {
            StreamCase::Ping(p) => ml::Message::Ping(p.clone()).encode(d),
            StreamCase::Ack(a) => ml::Message::Ack(a.clone()).encode(d),
            StreamCase::PushPull(p) => p.encode(d),
            StreamCase::User(u) => stream::user_message(u, d),
            StreamCase::Err(e) => ml::Message::Err(e.clone()).encode(d),
        }
    }
    fn expected(&self) -> StreamMessage {
        match self.clone() {
            StreamCase::Ping(mut p) => {
                p.source_addr = omit_empty(p.source_addr);
                StreamMessage::Ping(p)
            }
            StreamCase::Ack(a) => StreamMessage::Ack(a),
            StreamCase::PushPull(p) => StreamMessage::PushPull(p),
            StreamCase::User(u) => StreamMessage::User(u),
            StreamCase::Err(e) => StreamMessage::Err(e),
        }
    }
}

pub(crate) fn stream_case() -> BoxedStrategy<StreamCase> {
    prop_oneof![
        ping().prop_map(StreamCase::Ping),
        ack().prop_map(StreamCase::Ack),
        ml_push_pull().prop_map(StreamCase::PushPull),
        blob().prop_map(StreamCase::User),
        err_resp().prop_map(StreamCase::Err),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(128))]

    /// The UDP pipeline: encode with random options, decode with the peer's options (another
    /// primary key), flatten, and get the messages back in order.
    #[test]
    fn packet_round_trip(
        spec in options_spec(),
        msgs in vec(ml_message(), 1..8),
        single in any::<bool>(),
        with_crc in any::<bool>(),
        nonce in any::<[u8; NONCE_LEN]>(),
    ) {
        let (sender, receiver) = (spec.sender(), spec.receiver());
        let parts: Vec<Vec<u8>> = msgs.iter().map(|m| m.encode(spec.dialect)).collect();
        let payload = if single && parts.len() == 1 {
            parts[0].clone()
        } else {
            compound::encode(&parts)
        };
        let mut asked = false;
        let wire = packet::encode(&sender, &payload, with_crc, || {
            asked = true;
            nonce
        });
        prop_assert_eq!(asked, spec.keys.is_some(), "nonce asked for iff encrypting");
        prop_assert!(wire.len() <= payload.len() + crc::OVERHEAD * usize::from(with_crc)
            + label::overhead(&spec.label) + spec.version.overhead());
        // Compression is used only when it makes the packet shorter.
        let uncompressed = OptionsSpec { compression: false, ..spec.clone() }.sender();
        let plain_wire = packet::encode(&uncompressed, &payload, with_crc, || nonce);
        prop_assert!(wire.len() <= plain_wire.len(), "{} > {}", wire.len(), plain_wire.len());
        if !spec.compression {
            prop_assert_eq!(&wire, &plain_wire);
        }
        let inner = ok(packet::decode(&receiver, &wire), "packet", &wire)?;
        let flat = packet::flatten(&inner);
        prop_assert!(flat.errors.is_empty(), "{:?}", flat.errors);
        prop_assert_eq!(flat.truncated_parts, 0);
        let got: Vec<&[u8]> = flat.messages.iter().map(|m| &m[..]).collect();
        let want: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
        prop_assert_eq!(got, want);
        for (bytes, m) in flat.messages.iter().zip(&msgs) {
            prop_assert_eq!(ok(ml::Message::decode(bytes), "message", bytes)?, normalized(m));
        }
        // Truncated packets never panic; with a CRC or encryption they are refused outright.
        for k in prefix_lengths(wire.len()) {
            if let Ok(inner) = packet::decode(&receiver, &wire[..k]) {
                let unprotected = k < label::overhead(&spec.label) + crc::OVERHEAD;
                prop_assert!(
                    spec.keys.is_none() && (!with_crc || unprotected),
                    "prefix {} of {} accepted", k, hex::encode(&wire)
                );
                let _ = packet::flatten(&inner);
            }
        }
    }

    /// Stream framing, both directions: the dialer's request read by the acceptor and the
    /// acceptor's reply read by the dialer. Trailing bytes are not consumed; every strict prefix
    /// is refused.
    #[test]
    fn stream_round_trip(
        spec in options_spec(),
        case in stream_case(),
        dialer in any::<bool>(),
        nonce in any::<[u8; NONCE_LEN]>(),
        trailing in small_blob(),
    ) {
        let (sender, receiver) = (spec.sender(), spec.receiver());
        let message = case.encode(spec.dialect);
        let mut asked = false;
        let wire = stream::encode(&sender, &message, dialer, || {
            asked = true;
            nonce
        });
        prop_assert_eq!(asked, spec.keys.is_some());
        let mut buf = wire.clone();
        buf.extend_from_slice(&trailing);
        let (got, used) = ok(stream::decode(&receiver, &buf, !dialer), "stream", &buf)?;
        prop_assert_eq!(got, case.expected());
        prop_assert_eq!(used, wire.len());
        prefixes_fail(&wire, "stream", |b| stream::decode(&receiver, b, !dialer))?;
        // A labelled request is refused by an acceptor configured without the label.
        if spec.keys.is_none() && !spec.label.is_empty() && dialer {
            let unlabeled = OptionsSpec { label: Vec::new(), ..spec.clone() }.receiver();
            prop_assert!(stream::decode(&unlabeled, &wire, false).is_err());
        }
    }
}

/// `stream::decode` promises `ErrorKind::Truncated` ("read more and try again") for every prefix
/// of a stream, including prefixes ending inside a string, array or map body, inside a push/pull
/// node list, and an empty buffer on a labelled acceptor.
#[test]
fn stream_prefixes_report_truncated() {
    let ping = ml::Message::Ping(ml::Ping {
        node: GoString::from("node-b"),
        seq_no: 43,
        ..ml::Ping::default()
    })
    .encode(Dialect::GOSSIP);
    let labeled = WireOptions {
        label: b"lbl".to_vec(),
        ..WireOptions::default()
    };
    let mut failures = Vec::new();
    for (name, opts) in [("default", WireOptions::default()), ("labeled", labeled)] {
        let wire = stream::encode(&opts, &ping, true, || [0; NONCE_LEN]);
        for k in 0..wire.len() {
            match stream::decode(&opts, &wire[..k], false) {
                Err(e) if matches!(e.kind, ErrorKind::Truncated { .. }) => {}
                other => failures.push(format!(
                    "{name}: prefix {k} of {}: {other:?}",
                    hex::encode(&wire)
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
