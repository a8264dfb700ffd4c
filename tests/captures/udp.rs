//! UDP: every datagram of a gossip capture opened layer by layer (encryption, CRC, compound,
//! compress) down to memberlist and serf messages that re-encode to Go's bytes, counted in the
//! `.md`'s vocabulary, with the node tags and query filters found on the way.

use std::collections::BTreeSet;

use libtest_mimic::Failed;
use serf_proto::wire::memberlist::{
    compound, compress, crc, packet, Message, MessageType, WireOptions,
};
use serf_proto::wire::msgpack::Dialect;
use serf_proto::wire::serf::{
    decode_ack_payload, decode_tags, Filter, Message as SerfMessage, MessageType as SerfMessageType,
};

use crate::markdown::{all_between, ensure_nonempty, md_table, sort_braces};
use crate::pcap;
use crate::support::{camel, ctx, ensure, join, load, same, Counts, Gossip, TestResult};

/// What the UDP checks need from one capture.
pub(crate) struct Udp {
    /// How the agents that were recorded wrote msgpack (re-encoding must give their bytes).
    dialect: Dialect,
    /// Outermost layer of each datagram ("Top-level packet types").
    top: Counts,
    /// Every layer and message ("Every message found in UDP packets").
    pub(crate) all: Counts,
    /// Every serf message, relay inners included, in capture order.
    pub(crate) serf: Vec<SerfMessage>,
    /// Distinct tag sets of alive messages, as sorted `k=v` lists.
    tags: BTreeSet<String>,
    /// Distinct query filter lists, rendered as the `.md` listing shows them.
    filters: BTreeSet<String>,
}

/// Decodes every datagram down to leaf messages, collecting every failure.
pub(crate) fn decode_udp(capture: &pcap::Capture, opts: &WireOptions) -> Result<Udp, Failed> {
    let mut udp = Udp {
        dialect: opts.dialect,
        top: Counts::default(),
        all: Counts::default(),
        serf: Vec::new(),
        tags: BTreeSet::new(),
        filters: BTreeSet::new(),
    };
    let errors: Vec<String> = capture
        .udp
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let at = format!("datagram #{i} {}->{}", d.src_port, d.dst_port);
            open_datagram(opts, &d.payload, &mut udp)
                .err()
                .map(|e| format!("{at}: {e}"))
        })
        .collect();
    ensure!(
        errors.is_empty(),
        "{} of {} datagrams failed:\n{}",
        errors.len(),
        capture.udp.len(),
        errors.join("\n")
    );
    Ok(udp)
}

/// Opens one datagram layer by layer, counting layers in the `.md`'s vocabulary. The CRC header is
/// found independently of `packet::decode` (which strips it silently) and the compound/compress
/// walk is done with the primitives, so that `packet::flatten` can be checked against it.
fn open_datagram(opts: &WireOptions, datagram: &[u8], udp: &mut Udp) -> Result<(), String> {
    let decoded = ctx(packet::decode(opts, datagram), "packet::decode", datagram)?;
    let plain = match &opts.keyring {
        Some(keyring) => ctx(keyring.decrypt(datagram, &[]), "decrypt", datagram)?,
        None => datagram.to_vec(),
    };
    let has_crc = plain.len() != decoded.len();
    if has_crc {
        ensure!(
            plain[0] == MessageType::HasCrc as u8
                && plain[crc::OVERHEAD..] == decoded[..]
                && crc::unwrap(&plain) == Ok(&decoded[..]),
            "packet::decode removed something other than a CRC header from {}",
            hex::encode(&plain)
        );
    }

    let mut names = Vec::new();
    let mut leaves = Vec::new();
    if has_crc {
        names.push(camel(MessageType::HasCrc));
    }
    walk(&decoded, &mut names, &mut leaves, udp)?;

    let flat = packet::flatten(&decoded);
    ensure!(
        flat.errors.is_empty() && flat.truncated_parts == 0,
        "packet::flatten: {} errors {:?}, {} truncated parts; input {}",
        flat.errors.len(),
        flat.errors,
        flat.truncated_parts,
        hex::encode(&decoded)
    );
    ensure!(
        flat.messages
            .iter()
            .map(|m| &m[..])
            .eq(leaves.iter().map(|l| &l[..])),
        "packet::flatten found other leaves than the compound/compress walk in {}",
        hex::encode(&decoded)
    );

    let top = if opts.keyring.is_some() {
        "encrypted".to_string()
    } else {
        names[0].clone()
    };
    *udp.top.entry(top).or_default() += 1;
    for name in names {
        // The "every message" table names user messages by their serf type alone.
        let name = name.strip_prefix("user -> ").unwrap_or(&name).to_string();
        *udp.all.entry(name).or_default() += 1;
    }
    Ok(())
}

/// Opens compounds and compressed messages recursively, naming each layer and decoding each leaf.
fn walk(
    buf: &[u8],
    names: &mut Vec<String>,
    leaves: &mut Vec<Vec<u8>>,
    udp: &mut Udp,
) -> Result<(), String> {
    match ctx(MessageType::of(buf), "message type", buf)? {
        MessageType::Compound => {
            names.push(camel(MessageType::Compound));
            let parts = ctx(compound::decode(buf), "compound", buf)?;
            ensure!(
                parts.truncated == 0,
                "{} truncated compound parts",
                parts.truncated
            );
            for part in parts.parts {
                walk(part, names, leaves, udp)?;
            }
        }
        MessageType::Compress => {
            names.push(camel(MessageType::Compress));
            let inner = compress::unwrap(buf, compress::MAX_PACKET_DECOMPRESSED);
            walk(&ctx(inner, "compress", buf)?, names, leaves, udp)?;
        }
        _ => {
            names.push(decode_leaf(buf, udp)?);
            leaves.push(buf.to_vec());
        }
    }
    Ok(())
}

/// Re-encoding a decoded message must give Go's bytes back: the codec claims byte-exactness, and
/// none of the UDP messages holds a Go map (whose order is random).
pub(crate) fn same_bytes(what: &str, ours: &[u8], wire: &[u8]) -> Result<(), String> {
    ensure!(
        ours == wire,
        "{what} re-encodes differently:\n  wire {}\n  ours {}",
        hex::encode(wire),
        hex::encode(ours)
    );
    Ok(())
}

/// Decodes one leaf message and everything inside it (tags, coordinates, serf messages) and checks
/// it re-encodes to the same bytes; returns its name as the `.md` shows it (`alive`,
/// `user -> serf.query`).
fn decode_leaf(leaf: &[u8], udp: &mut Udp) -> Result<String, String> {
    let msg = ctx(Message::decode(leaf), "memberlist message", leaf)?;
    same_bytes("memberlist message", &msg.encode(udp.dialect), leaf)?;
    match &msg {
        Message::Alive(alive) => {
            let meta = alive.meta.as_deref().unwrap_or_default();
            let tags = ctx(decode_tags(meta), "alive Meta tags", meta)?;
            let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            udp.tags.insert(tags.join(","));
        }
        Message::Ack(ack) => {
            if let Some(payload) = ack.payload.as_ref().filter(|p| !p.is_empty()) {
                ctx(decode_ack_payload(payload), "ack payload", payload)?;
            }
        }
        Message::User(body) => {
            return Ok(format!("user -> serf.{}", camel(decode_serf(body, udp)?)))
        }
        _ => {}
    }
    Ok(camel(msg.message_type()))
}

/// Decodes a serf message (checking it re-encodes to the same bytes), its query filters and, for
/// relays, the message inside.
fn decode_serf(body: &[u8], udp: &mut Udp) -> Result<SerfMessageType, String> {
    let msg = ctx(SerfMessage::decode(body), "serf message", body)?;
    same_bytes("serf message", &msg.encode(udp.dialect), body)?;
    match &msg {
        SerfMessage::Query(query) => {
            let filters = query.filters.iter().flatten().map(|f| {
                Ok(match ctx(Filter::decode(f), "query filter", f)? {
                    Filter::Nodes(nodes) => format!("node:{}", join(&nodes, ",")),
                    Filter::Tag(tag) => format!("tag:{}={}", tag.tag, tag.expr),
                })
            });
            let filters = filters.collect::<Result<Vec<String>, String>>()?;
            udp.filters.insert(filters.join(";"));
        }
        SerfMessage::Relay { inner, .. } => {
            decode_serf(inner, udp)?;
        }
        _ => {}
    }
    let ty = msg.message_type();
    udp.serf.push(msg);
    Ok(ty)
}

/// Every datagram decodes, and the layer/message counts equal the `.md`'s two tables.
pub(crate) fn udp_message_counts(gossip: Gossip) -> TestResult {
    let (capture, md) = load(gossip.name())?;
    let udp = decode_udp(&capture, &gossip.options())?;
    same(
        "top-level packet types",
        &udp.top,
        &md_table(&md, "Top-level packet types")?,
    )?;
    same(
        "every message found",
        &udp.all,
        &md_table(&md, "Every message found in UDP")?,
    )?;
    println!(
        "{}: {} datagrams, every message found: {:?}",
        gossip.name(),
        capture.udp.len(),
        udp.all
    );
    Ok(())
}

/// The distinct node tags and query filters decoded equal those in the `.md`'s UDP listing.
pub(crate) fn udp_tags_and_filters(gossip: Gossip) -> TestResult {
    let (capture, md) = load(gossip.name())?;
    let udp = decode_udp(&capture, &gossip.options())?;
    let md_tags: BTreeSet<String> = all_between(&md, "Meta={", "}")
        .iter()
        .map(|t| sort_braces(&format!("{{{t}}}")))
        .collect();
    let tags = udp
        .tags
        .iter()
        .map(|t| sort_braces(&format!("{{{t}}}")))
        .collect();
    same(
        "distinct alive tags",
        tags,
        ensure_nonempty(md_tags, "Meta={")?,
    )?;
    let md_filters = all_between(&md, "Filters=[", "] Payload=");
    same(
        "distinct query filters",
        udp.filters.iter().map(String::as_str).collect(),
        md_filters,
    )
}
