//! serf v0.11.0 (go-msgpack v2), what libserf writes: serf-0.11.pcap decodes to the bottom and
//! re-encodes byte for byte in libserf's dialect, datagrams and push/pull streams alike.

use libtest_mimic::Failed;
use serf_proto::wire::memberlist::stream::{self, StreamMessage};
use serf_proto::wire::memberlist::{compress, MessageType, WireOptions};
use serf_proto::wire::msgpack::Dialect;

use crate::pcap;
use crate::support::{ctx, ensure, load, same, TestResult};
use crate::udp::{decode_udp, same_bytes};

/// serf-0.11.pcap: the plaintext scenario recorded from three serf v0.11.0 agents by
/// record-serf-0.11.sh (see serf-0.11.md). Its checks need no counts from an independent
/// decoder: every message must re-encode to the agents' own bytes.
fn serf_0_11() -> Result<(pcap::Capture, WireOptions), Failed> {
    let (capture, _md) = load("serf-0.11")?;
    // Dialect::GOSSIP, go-msgpack v2 integers: what serf 0.11 and libserf write.
    Ok((capture, WireOptions::default()))
}

/// Every datagram decodes to the bottom and re-encodes byte for byte in libserf's dialect; the
/// go-msgpack 0.5 dialect does not (the queries' `Timeout`s are `d3` int64s there), so the
/// capture tells the two apart. Every kind of message the scenario makes is present.
pub(crate) fn serf_0_11_udp() -> TestResult {
    let (capture, opts) = serf_0_11()?;
    let udp = decode_udp(&capture, &opts)?;
    for kind in [
        "ping",
        "ack",
        "alive",
        "suspect",
        "dead",
        "compound",
        "hasCrc",
        "serf.join",
        "serf.leave",
        "serf.userEvent",
        "serf.query",
        "serf.queryResponse",
        "serf.relay",
    ] {
        ensure!(
            udp.all.get(kind).is_some_and(|&n| n > 0),
            "no {kind} in serf-0.11.pcap: {:?}",
            udp.all
        );
    }
    let legacy = WireOptions {
        dialect: Dialect::GOSSIP_LEGACY,
        ..WireOptions::default()
    };
    ensure!(
        decode_udp(&capture, &legacy).is_err(),
        "go-msgpack 0.5 integers re-encode serf 0.11's datagrams too: the check would not see a dialect change"
    );
    println!(
        "serf-0.11: {} datagrams, every message found: {:?}",
        capture.udp.len(),
        udp.all
    );
    Ok(())
}

/// Every TCP connection with data is one push/pull each way that uses all its bytes and, once
/// decompressed, re-encodes byte for byte (`Nodes` and `UserStateLen` are Go ints).
pub(crate) fn serf_0_11_streams() -> TestResult {
    let (capture, opts) = serf_0_11()?;
    let mut streams = 0;
    for conn in &capture.tcp {
        let at = format!("connection {} -> {}", conn.client_port, conn.server_port);
        for (i, buf) in [&conn.client_to_server, &conn.server_to_client]
            .into_iter()
            .enumerate()
            .filter(|(_, buf)| !buf.is_empty())
        {
            let (msg, used) = ctx(stream::decode(&opts, buf, i == 1), &at, buf)?;
            same(&format!("{at} dir {i}: bytes consumed"), used, buf.len())?;
            let StreamMessage::PushPull(pp) = msg else {
                return Err(format!("{at} dir {i}: not a push/pull: {msg:?}").into());
            };
            let plain = match MessageType::of(buf) {
                Ok(MessageType::Compress) => ctx(
                    compress::unwrap(buf, compress::MAX_PACKET_DECOMPRESSED),
                    "compress",
                    buf,
                )?,
                _ => buf.to_vec(),
            };
            same_bytes(
                &format!("{at} dir {i}: push/pull"),
                &pp.encode(opts.dialect),
                &plain,
            )?;
            streams += 1;
        }
    }
    ensure!(streams > 0, "serf-0.11.pcap holds no push/pull stream");
    println!("serf-0.11: {streams} push/pull streams");
    Ok(())
}
