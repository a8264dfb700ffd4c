//! Decodes a pcap of HashiCorp serf gossip traffic and prints every message, layer by layer.
//!
//! `cargo run --example decode_capture -- <file.pcap> [base64-key]` (with no arguments it decodes
//! the golden capture in `tests/data/captures/plaintext.pcap`). This is what `make demo`
//! runs until the agent exists.

#[path = "../tests/common/pcap.rs"]
mod pcap;

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use serf::api::wire::memberlist::keyring::Keyring;
use serf::api::wire::memberlist::stream::{self, StreamMessage};
use serf::api::wire::memberlist::{packet, Message, WireOptions};
use serf::api::wire::serf as sm;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/captures/plaintext.pcap")
    });
    let keyring = args.next().map(|b64| {
        let key = STANDARD
            .decode(b64)
            .unwrap_or_else(|e| usage(&format!("the key is not valid base64: {e}")));
        Keyring::new(&key, &[] as &[&[u8]]).unwrap_or_else(|e| usage(&e.to_string()))
    });
    let opts = WireOptions {
        keyring,
        ..WireOptions::default()
    };
    let capture = pcap::read(&path);
    let start = capture.udp.first().map_or(0.0, |d| d.time);
    let mut errors = 0;
    for d in &capture.udp {
        println!(
            "{:8.3} udp {} -> {} {}B",
            d.time - start,
            d.src_port,
            d.dst_port,
            d.payload.len()
        );
        match packet::decode(&opts, &d.payload) {
            Ok(payload) => {
                let flat = packet::flatten(&payload);
                for m in &flat.messages {
                    match Message::decode(m) {
                        Ok(msg) => println!("           {}", describe(&msg)),
                        Err(e) => {
                            errors += 1;
                            println!("           undecodable message: {e}");
                        }
                    }
                }
                errors += flat.errors.len();
            }
            Err(e) => {
                errors += 1;
                println!("           undecodable packet: {e}");
            }
        }
    }
    for c in &capture.tcp {
        for (dir, bytes, dialer) in [
            ("c2s", &c.client_to_server, false),
            ("s2c", &c.server_to_client, true),
        ] {
            if bytes.is_empty() {
                continue;
            }
            match stream::decode(&opts, bytes, dialer) {
                Ok((StreamMessage::PushPull(pp), _)) => println!(
                    "{:8.3} tcp {} {dir} push/pull join={} nodes={} user state {}B",
                    c.start_time - start,
                    c.client_port,
                    pp.join,
                    pp.nodes.len(),
                    pp.user_state.len()
                ),
                Ok((other, _)) => println!("{:8.3} tcp {dir} {other:?}", c.start_time - start),
                Err(e) => {
                    errors += 1;
                    println!(
                        "{:8.3} tcp {dir} undecodable stream: {e}",
                        c.start_time - start
                    );
                }
            }
        }
    }
    println!(
        "{} datagrams, {} streams, {errors} decode errors",
        capture.udp.len(),
        capture.tcp.len()
    );
    if errors > 0 {
        std::process::exit(1);
    }
}

fn describe(msg: &Message) -> String {
    match msg {
        Message::Alive(a) => {
            let tags = a.meta.as_deref().map(sm::decode_tags);
            format!(
                "alive {} inc={} tags={:?}",
                a.node,
                a.incarnation,
                tags.and_then(Result::ok)
            )
        }
        Message::User(payload) => match sm::Message::decode(payload) {
            Ok(m) => format!("serf {m:?}"),
            Err(e) => format!("serf message undecodable: {e}"),
        },
        other => format!("{other:?}"),
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: decode_capture [file.pcap] [base64-key]");
    std::process::exit(2)
}
