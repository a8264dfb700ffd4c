//! Memberlist messages and push/pull state: strategies for every message type, and their round
//! trips (omitempty normalised), canonical re-encoding, loose writing and refused prefixes.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use serf_proto::wire::memberlist as ml;
use serf_proto::wire::memberlist::push_pull::PushPull as MlPushPull;
use serf_proto::wire::msgpack::{Bytes, Decoder};

use crate::loose::check_loose;
use crate::strategies::{blob, bytes, gossip_dialect, gostr, opt_bytes, u16s, u32s};
use crate::support::{check_field, config, markers_match_dialect, ok, prefixes_fail, strategy};

strategy!(ping -> ml::Ping {
    node: gostr(), seq_no: u32s(), source_addr: opt_bytes(), source_node: gostr(),
    source_port: u16s(),
});
strategy!(indirect_ping -> ml::IndirectPing {
    nack: any::<bool>(), node: gostr(), port: u16s(), seq_no: u32s(), source_addr: opt_bytes(),
    source_node: gostr(), source_port: u16s(), target: bytes(),
});
strategy!(ack -> ml::Ack { payload: opt_bytes(), seq_no: u32s() });
strategy!(nack -> ml::Nack { seq_no: u32s() });
strategy!(suspect -> ml::Suspect { from: gostr(), incarnation: u32s(), node: gostr() });
strategy!(alive -> ml::Alive {
    addr: bytes(), incarnation: u32s(), meta: opt_bytes(), node: gostr(), port: u16s(),
    vsn: bytes(),
});
strategy!(dead -> ml::Dead { from: gostr(), incarnation: u32s(), node: gostr() });
strategy!(err_resp -> ml::ErrResp { error: gostr() });

fn node_state() -> impl Strategy<Value = ml::NodeState> {
    select(vec![
        ml::NodeState::Alive,
        ml::NodeState::Suspect,
        ml::NodeState::Dead,
        ml::NodeState::Left,
    ])
}

strategy!(push_node_state -> ml::PushNodeState {
    addr: bytes(), incarnation: u32s(), meta: opt_bytes(), name: gostr(), port: u16s(),
    state: node_state(), vsn: bytes(),
});
strategy!(ml_push_pull -> MlPushPull {
    join: any::<bool>(), nodes: vec(push_node_state(), 0..4), user_state: blob(),
});

pub(crate) fn ml_message() -> BoxedStrategy<ml::Message> {
    prop_oneof![
        ping().prop_map(ml::Message::Ping),
        indirect_ping().prop_map(ml::Message::IndirectPing),
        ack().prop_map(ml::Message::Ack),
        suspect().prop_map(ml::Message::Suspect),
        alive().prop_map(ml::Message::Alive),
        dead().prop_map(ml::Message::Dead),
        blob().prop_map(ml::Message::User),
        nack().prop_map(ml::Message::Nack),
        err_resp().prop_map(ml::Message::Err),
    ]
    .boxed()
}

/// `omitempty` drops a `SourceAddr` of Some(empty), which then decodes as None.
pub(crate) fn omit_empty(addr: Option<Bytes>) -> Option<Bytes> {
    addr.filter(|a| !a.is_empty())
}

pub(crate) fn normalized(m: &ml::Message) -> ml::Message {
    match m.clone() {
        ml::Message::Ping(mut p) => {
            p.source_addr = omit_empty(p.source_addr);
            ml::Message::Ping(p)
        }
        ml::Message::IndirectPing(mut p) => {
            p.source_addr = omit_empty(p.source_addr);
            ml::Message::IndirectPing(p)
        }
        other => other,
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Every memberlist message: round trip (omitempty normalised), canonical re-encoding,
    /// dialect markers, loose writing of the body, and strict prefixes refused (a user message
    /// is raw bytes, so its prefixes are user messages too).
    #[test]
    fn memberlist_message_round_trip(
        m in ml_message(),
        d in gossip_dialect(),
        seed in any::<u64>(),
    ) {
        let bytes = m.encode(d);
        let back = ok(ml::Message::decode(&bytes), "memberlist message", &bytes)?;
        let expected = normalized(&m);
        prop_assert_eq!(&back, &expected, "{}", hex::encode(&bytes));
        prop_assert_eq!(back.encode(d), bytes.clone());
        prop_assert_eq!(ml::MessageType::of(&bytes).ok(), Some(m.message_type()));
        match &m {
            ml::Message::User(payload) => {
                prop_assert!(ml::Message::decode(&[]).is_err());
                for k in 1..bytes.len() {
                    prop_assert_eq!(
                        ml::Message::decode(&bytes[..k]).ok(),
                        Some(ml::Message::User(payload[..k - 1].to_vec()))
                    );
                }
            }
            _ => {
                markers_match_dialect(&bytes[1..], d)?;
                prefixes_fail(&bytes, "memberlist message", ml::Message::decode)?;
            }
        }
        match &m {
            ml::Message::Ping(x) => check_loose(x, true, seed)?,
            ml::Message::IndirectPing(x) => check_loose(x, true, seed)?,
            ml::Message::Ack(x) => check_loose(x, true, seed)?,
            ml::Message::Suspect(x) => check_loose(x, true, seed)?,
            ml::Message::Alive(x) => check_loose(x, true, seed)?,
            ml::Message::Dead(x) => check_loose(x, true, seed)?,
            ml::Message::Nack(x) => check_loose(x, true, seed)?,
            ml::Message::Err(x) => check_loose(x, true, seed)?,
            ml::Message::User(_) => {}
        }
    }

    /// Push/pull: the header counts match, the body decodes back, every strict prefix is refused.
    #[test]
    fn push_pull_round_trip(p in ml_push_pull(), d in gossip_dialect(), seed in any::<u64>()) {
        let bytes = p.encode(d);
        prop_assert_eq!(bytes[0], ml::MessageType::PushPull as u8);
        let mut dec = Decoder::new(&bytes[1..]);
        let back = ok(MlPushPull::decode_body(&mut dec), "push/pull", &bytes)?;
        prop_assert_eq!(&back, &p);
        prop_assert_eq!(dec.remaining(), 0);
        prop_assert_eq!(back.encode(d), bytes.clone());
        prefixes_fail(&bytes[1..], "push/pull body", |b| {
            MlPushPull::decode_body(&mut Decoder::new(b))
        })?;
        for node in &p.nodes {
            check_field(node, d)?;
            check_loose(node, true, seed)?;
        }
    }
}
