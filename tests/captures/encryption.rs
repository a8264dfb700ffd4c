//! Encryption specifics of encrypted.pcap: the key-management queries and their answers carry the
//! keys of the run, and a keyring finds the right key among wrong ones.

use std::collections::BTreeMap;

use serf_proto::wire::memberlist::{packet, stream, WireOptions};
use serf_proto::wire::msgpack::Bytes;
use serf_proto::wire::serf::Message as SerfMessage;
use serf_proto::wire::ErrorKind;

use crate::support::{
    base64, ctx, ensure, keyring, load, same, Gossip, TestResult, INSTALLED_KEY_HEX,
    PRIMARY_KEY_HEX,
};
use crate::udp::decode_udp;

/// (Result, Message, sorted Keys, PrimaryKey) of a serf keyResponse.
type KeyAnswer = (bool, String, Vec<String>, String);

/// A query's or response's payload decoded as a serf message.
fn serf_payload(payload: &Option<Bytes>, what: &str) -> Result<SerfMessage, String> {
    let payload = payload.as_deref().unwrap_or_default();
    ctx(SerfMessage::decode(payload), what, payload)
}

/// The key-management internal queries carry serf keyRequests with the installed key, and the
/// list-keys responses (serf keyResponses) list the base64 keys: the primary alone before the
/// install, both after it (encrypted.md timeline, keys-list-1 and keys-list-2).
pub(crate) fn key_install_payload() -> TestResult {
    let (capture, _) = load("encrypted")?;
    let udp = decode_udp(&capture, &Gossip::Encrypted.options())?;
    let (primary, installed) = (
        hex::decode(PRIMARY_KEY_HEX)?,
        hex::decode(INSTALLED_KEY_HEX)?,
    );

    // Distinct key-management queries: (LTime, ID) → name, in Lamport order.
    let mut queries = BTreeMap::new();
    for msg in &udp.serf {
        let SerfMessage::Query(q) = msg else { continue };
        let name = q.name.to_string_lossy();
        if !["_serf_install-key", "_serf_remove-key", "_serf_list-keys"].contains(&name.as_str()) {
            continue;
        }
        let payload = serf_payload(&q.payload, &name)?;
        let SerfMessage::KeyRequest(req) = &payload else {
            return Err(format!("{name}: payload is not a keyRequest: {payload:?}").into());
        };
        // list-keys sends an empty raw string (`a0`), which encrypted.md prints as `Key=None`;
        // serf-wire-rpc.md §1.3: "an *empty* byte string for list-keys".
        let want = if name == "_serf_list-keys" {
            vec![]
        } else {
            installed.clone()
        };
        same(
            &format!("{name} keyRequest.Key"),
            req.key.as_deref(),
            Some(&want[..]),
        )?;
        queries.insert((q.ltime, q.id), name);
    }
    let names: Vec<&str> = queries.values().map(String::as_str).collect();
    let order = [
        "_serf_list-keys",
        "_serf_install-key",
        "_serf_list-keys",
        "_serf_remove-key",
    ];
    same("key queries in order", names, order.to_vec())?;

    // Responses to each query, one per node (gossip may repeat them).
    let mut responses: BTreeMap<u32, BTreeMap<String, KeyAnswer>> = BTreeMap::new();
    for msg in &udp.serf {
        let SerfMessage::QueryResponse(r) = msg else {
            continue;
        };
        if !queries.keys().any(|(_, id)| *id == r.id) {
            continue;
        }
        let payload = serf_payload(&r.payload, "key query response")?;
        let SerfMessage::KeyResponse(k) = &payload else {
            return Err(format!("key query response is not a keyResponse: {payload:?}").into());
        };
        let mut keys: Vec<String> = k.keys.iter().flatten().map(ToString::to_string).collect();
        keys.sort();
        let answer = (
            k.result,
            k.message.to_string(),
            keys,
            k.primary_key.to_string(),
        );
        responses
            .entry(r.id)
            .or_default()
            .insert(r.from.to_string(), answer);
    }
    let (b64_primary, b64_installed) = (base64(&primary), base64(&installed));
    let mut both = vec![b64_primary.clone(), b64_installed.clone()];
    both.sort();
    let mut list_number = 0;
    for ((_, id), name) in &queries {
        let answers = responses.get(id).ok_or(format!("no responses to {name}"))?;
        same(&format!("{name}: responding nodes"), answers.len(), 3)?;
        let want = if name == "_serf_list-keys" {
            list_number += 1;
            let keys = if list_number == 1 {
                vec![b64_primary.clone()]
            } else {
                both.clone()
            };
            (true, String::new(), keys, b64_primary.clone())
        } else {
            (true, String::new(), vec![], String::new())
        };
        for (from, answer) in answers {
            same(&format!("{name}: keyResponse from {from}"), answer, &want)?;
        }
    }
    println!("encrypted: list-keys reported {both:?}; install/remove carried key {b64_installed}");
    Ok(())
}

/// With only a wrong key nothing decrypts (NoKeyDecrypts); with [wrong, right] the right key is
/// found and the result equals decoding with the right key alone.
pub(crate) fn keyring_selection() -> TestResult {
    let (capture, _) = load("encrypted")?;
    let right = Gossip::Encrypted.options();
    let with = |keys: &[&str]| WireOptions {
        keyring: Some(keyring(keys)),
        ..Default::default()
    };
    let (wrong, both) = (
        with(&[INSTALLED_KEY_HEX]),
        with(&[INSTALLED_KEY_HEX, PRIMARY_KEY_HEX]),
    );
    let no_key = |kind: Option<ErrorKind>| kind == Some(ErrorKind::NoKeyDecrypts);

    for (i, d) in capture.udp.iter().enumerate() {
        let kind = packet::decode(&wrong, &d.payload).err().map(|e| e.kind);
        ensure!(
            no_key(kind.clone()),
            "datagram #{i} with a wrong key: {kind:?}"
        );
        let expected = ctx(packet::decode(&right, &d.payload), "right key", &d.payload)?;
        let got = ctx(
            packet::decode(&both, &d.payload),
            "[wrong, right]",
            &d.payload,
        )?;
        ensure!(
            got == expected,
            "datagram #{i}: [wrong, right] decoded differently"
        );
    }
    let mut streams = 0;
    for conn in &capture.tcp {
        for (dialer, buf) in [
            (false, &conn.client_to_server),
            (true, &conn.server_to_client),
        ] {
            if buf.is_empty() {
                continue;
            }
            streams += 1;
            let kind = stream::decode(&wrong, buf, dialer).err().map(|e| e.kind);
            ensure!(
                no_key(kind.clone()),
                "stream from {} with a wrong key: {kind:?}",
                conn.client_port
            );
            let expected = ctx(stream::decode(&right, buf, dialer), "right key", buf)?;
            same(
                "stream with [wrong, right]",
                ctx(stream::decode(&both, buf, dialer), "[wrong, right]", buf)?,
                expected,
            )?;
        }
    }
    println!(
        "encrypted: {} datagrams and {streams} streams: wrong key refused, [wrong, right] decodes",
        capture.udp.len()
    );
    Ok(())
}
