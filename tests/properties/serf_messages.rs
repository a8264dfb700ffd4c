//! Serf messages carried in memberlist user messages: every message type and relays, query
//! filters, the tag encoding of node meta, and the coordinate in ack payloads.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use serf_proto::wire::memberlist as ml;
use serf_proto::wire::msgpack::{self, Dialect, Field, GoString};
use serf_proto::wire::serf as sf;
use serf_proto::wire::ErrorKind;

use crate::loose::{check_loose, write_loose, Rng};
use crate::strategies::{
    bytes, finite, gossip_dialect, gostr, i64s, opt_bytes, opt_string_map, opt_vec, small_blob,
    string_map, u16s, u32s, u64s,
};
use crate::support::{config, fail, markers_match_dialect, ok, prefixes_fail, strategy};

strategy!(leave -> sf::Leave { ltime: u64s(), node: gostr(), prune: any::<bool>() });
strategy!(join -> sf::Join { ltime: u64s(), node: gostr() });
strategy!(user_event -> sf::UserEvent { name: gostr(), payload: opt_bytes() });
strategy!(user_events -> sf::UserEvents { events: vec(user_event(), 0..3), ltime: u64s() });
strategy!(serf_push_pull -> sf::PushPull {
    event_ltime: u64s(),
    events: vec(proptest::option::of(user_events()), 0..4),
    ltime: u64s(),
    left_members: vec(gostr(), 0..4),
    query_ltime: u64s(),
    status_ltimes: btree_map(gostr(), u64s(), 0..4),
});
strategy!(user_event_message -> sf::UserEventMessage {
    cc: any::<bool>(), ltime: u64s(), name: gostr(), payload: opt_bytes(),
});
strategy!(query -> sf::Query {
    addr: bytes(), filters: opt_vec(bytes()), flags: u32s(), id: u32s(), ltime: u64s(),
    name: gostr(), payload: opt_bytes(), port: u16s(), relay_factor: any::<u8>(),
    source_node: gostr(), timeout: i64s(),
});
strategy!(query_response -> sf::QueryResponse {
    flags: u32s(), from: gostr(), id: u32s(), ltime: u64s(), payload: opt_bytes(),
});
strategy!(serf_member -> sf::Member {
    addr: bytes(), delegate_cur: any::<u8>(), delegate_max: any::<u8>(),
    delegate_min: any::<u8>(), name: gostr(), port: u16s(), protocol_cur: any::<u8>(),
    protocol_max: any::<u8>(), protocol_min: any::<u8>(), status: i64s(), tags: opt_string_map(),
});
strategy!(serf_key_request -> sf::KeyRequest { key: opt_bytes() });
strategy!(serf_key_response -> sf::KeyResponse {
    keys: opt_vec(gostr()), message: gostr(), primary_key: gostr(), result: any::<bool>(),
});
strategy!(udp_addr -> sf::UdpAddr { ip: bytes(), port: i64s(), zone: gostr() });
strategy!(relay_header -> sf::RelayHeader { dest_addr: udp_addr(), dest_name: gostr() });
strategy!(filter_tag -> sf::FilterTag { expr: gostr(), tag: gostr() });
strategy!(coordinate -> sf::Coordinate {
    adjustment: finite(), error: finite(), height: finite(), vec: opt_vec(finite()),
});

pub(crate) fn serf_message() -> BoxedStrategy<sf::Message> {
    let relay_inner = prop_oneof![
        vec(any::<u8>(), 1..64),
        leave().prop_map(|l| sf::Message::Leave(l).encode(Dialect::GOSSIP)),
    ];
    prop_oneof![
        leave().prop_map(sf::Message::Leave),
        join().prop_map(sf::Message::Join),
        serf_push_pull().prop_map(sf::Message::PushPull),
        user_event_message().prop_map(sf::Message::UserEvent),
        query().prop_map(sf::Message::Query),
        query_response().prop_map(sf::Message::QueryResponse),
        Just(sf::Message::ConflictResponse(None)),
        serf_member().prop_map(|m| sf::Message::ConflictResponse(Some(m))),
        serf_key_request().prop_map(sf::Message::KeyRequest),
        serf_key_response().prop_map(sf::Message::KeyResponse),
        (relay_header(), relay_inner)
            .prop_map(|(header, inner)| sf::Message::Relay { header, inner }),
    ]
    .boxed()
}

pub(crate) fn filter() -> BoxedStrategy<sf::Filter> {
    prop_oneof![
        vec(gostr(), 0..5).prop_map(sf::Filter::Nodes),
        filter_tag().prop_map(sf::Filter::Tag),
    ]
    .boxed()
}

/// Coordinates compared bit for bit (PartialEq would equate 0.0 and -0.0).
fn coordinate_bits(c: &sf::Coordinate) -> (u64, u64, u64, Option<Vec<u64>>) {
    (
        c.adjustment.to_bits(),
        c.error.to_bits(),
        c.height.to_bits(),
        c.vec
            .as_ref()
            .map(|v| v.iter().map(|f| f.to_bits()).collect()),
    )
}

proptest! {
    #![proptest_config(config(256))]

    /// Every serf message, both ConflictResponse forms, and relays (whose inner message is raw:
    /// prefixes that keep part of it decode to a shorter relay).
    #[test]
    fn serf_message_round_trip(m in serf_message(), d in gossip_dialect(), seed in any::<u64>()) {
        let bytes = m.encode(d);
        let back = ok(sf::Message::decode(&bytes), "serf message", &bytes)?;
        prop_assert_eq!(&back, &m, "{}", hex::encode(&bytes));
        prop_assert_eq!(back.encode(d), bytes.clone());
        prop_assert_eq!(bytes[0], m.message_type() as u8);
        match &m {
            sf::Message::Relay { header, inner } => {
                let header_end = 1 + msgpack::to_vec(header, d).len();
                markers_match_dialect(&bytes[1..header_end], d)?;
                for k in 0..bytes.len() {
                    let got = sf::Message::decode(&bytes[..k]);
                    if k <= header_end {
                        prop_assert!(got.is_err(), "relay prefix {} decoded: {:?}", k, got);
                    } else {
                        prop_assert_eq!(got.ok(), Some(sf::Message::Relay {
                            header: header.clone(),
                            inner: inner[..k - header_end].to_vec(),
                        }));
                    }
                }
                check_loose(header, true, seed)?;
            }
            _ => {
                markers_match_dialect(&bytes[1..], d)?;
                prefixes_fail(&bytes, "serf message", sf::Message::decode)?;
            }
        }
        match &m {
            sf::Message::Leave(x) => check_loose(x, true, seed)?,
            sf::Message::Join(x) => check_loose(x, true, seed)?,
            sf::Message::PushPull(x) => check_loose(x, true, seed)?,
            sf::Message::UserEvent(x) => check_loose(x, true, seed)?,
            sf::Message::Query(x) => check_loose(x, true, seed)?,
            sf::Message::QueryResponse(x) => check_loose(x, true, seed)?,
            sf::Message::ConflictResponse(x) => check_loose(x, x.is_some(), seed)?,
            sf::Message::KeyRequest(x) => check_loose(x, true, seed)?,
            sf::Message::KeyResponse(x) => check_loose(x, true, seed)?,
            sf::Message::Relay { .. } => {}
        }
    }

    /// A serf message survives being carried in a memberlist user message.
    #[test]
    fn serf_in_memberlist_user_message(m in serf_message(), d in gossip_dialect()) {
        let user = ml::Message::User(m.encode(d)).encode(d);
        match ok(ml::Message::decode(&user), "user message", &user)? {
            ml::Message::User(payload) => {
                prop_assert_eq!(ok(sf::Message::decode(&payload), "serf", &payload)?, m);
            }
            other => prop_assert!(false, "decoded as {:?}", other),
        }
    }

    #[test]
    fn filter_round_trip(f in filter(), d in gossip_dialect(), seed in any::<u64>()) {
        let bytes = f.encode(d);
        prop_assert_eq!(ok(sf::Filter::decode(&bytes), "filter", &bytes)?, f.clone());
        markers_match_dialect(&bytes[1..], d)?;
        prefixes_fail(&bytes, "filter", sf::Filter::decode)?;
        if let sf::Filter::Tag(tag) = &f {
            check_loose(tag, true, seed)?;
        }
    }

    /// Tags: round trip, strict prefixes refused, and meta without the magic byte read as the
    /// legacy role.
    #[test]
    fn tags_round_trip(tags in string_map(), d in gossip_dialect(), legacy in small_blob()) {
        let bytes = sf::encode_tags(&tags, d);
        prop_assert_eq!(bytes[0], sf::TAG_MAGIC_BYTE);
        prop_assert_eq!(ok(sf::decode_tags(&bytes), "tags", &bytes)?, tags.clone());
        markers_match_dialect(&bytes[1..], d)?;
        // The empty prefix is legacy meta (an empty role); every other strict prefix is cut.
        prefixes_fail(&bytes[1..], "tag map", msgpack::from_slice::<sf::Tags>)?;
        for k in 1..bytes.len() {
            prop_assert!(sf::decode_tags(&bytes[..k]).is_err(), "prefix {}", k);
        }
        if legacy.first() != Some(&sf::TAG_MAGIC_BYTE) {
            let got = ok(sf::decode_tags(&legacy), "legacy tags", &legacy)?;
            let role = sf::Tags::from([(GoString::from("role"), GoString(legacy.clone()))]);
            prop_assert_eq!(got, role);
        }
    }

    /// Same tags inserted in any order: byte-identical meta.
    #[test]
    fn tags_deterministic(
        pairs in btree_map(gostr(), gostr(), 0..10)
            .prop_flat_map(|m| Just(m.into_iter().collect::<Vec<_>>()).prop_shuffle()),
        d in gossip_dialect(),
    ) {
        let shuffled: sf::Tags = pairs.iter().cloned().collect();
        let mut sorted_pairs = pairs.clone();
        sorted_pairs.sort();
        let sorted: sf::Tags = sorted_pairs.into_iter().collect();
        let bytes = sf::encode_tags(&shuffled, d);
        prop_assert_eq!(&bytes, &sf::encode_tags(&sorted, d));
        prop_assert_eq!(&bytes, &sf::encode_tags(&shuffled.clone(), d));
        // Encoding twice gives the same bytes, and the map's own order is the byte order.
        let back = ok(sf::decode_tags(&bytes), "tags", &bytes)?;
        prop_assert_eq!(sf::encode_tags(&back, d), bytes);
    }

    /// The coordinate in ack payloads, bit for bit.
    #[test]
    fn ack_payload_round_trip(c in coordinate(), d in gossip_dialect(), seed in any::<u64>()) {
        let bytes = sf::encode_ack_payload(&c, d);
        prop_assert_eq!(bytes[0], sf::PING_VERSION);
        let back = ok(sf::decode_ack_payload(&bytes), "ack payload", &bytes)?;
        let back = back.ok_or_else(|| fail("no coordinate".into()))?;
        prop_assert_eq!(coordinate_bits(&back), coordinate_bits(&c));
        prop_assert_eq!(sf::encode_ack_payload(&back, d), bytes.clone());
        prop_assert_eq!(sf::decode_ack_payload(&[]), Ok(None));
        // Only ping payload version 1 exists.
        for version in [0u8, 2, 0x80, 0xff] {
            let mut other = bytes.clone();
            other[0] = version;
            prop_assert!(matches!(
                sf::decode_ack_payload(&other),
                Err(e) if matches!(e.kind, ErrorKind::UnknownType { .. })
            ), "version {} accepted", version);
        }
        prefixes_fail(&bytes[1..], "coordinate", msgpack::from_slice::<sf::Coordinate>)?;
        for k in 1..bytes.len() {
            prop_assert!(sf::decode_ack_payload(&bytes[..k]).is_err());
        }
        // Loosely written, the floats still come back bit for bit.
        let mut loose = Vec::new();
        write_loose(&c.to_value(), true, &mut Rng::new(seed), &mut loose);
        let back: sf::Coordinate =
            ok(msgpack::from_slice_exact(&loose), "loose coordinate", &loose)?;
        prop_assert_eq!(coordinate_bits(&back), coordinate_bits(&c));
    }
}
