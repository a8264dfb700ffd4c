//! The RPC protocol's structs. One enum over every request/response struct, generated with its
//! strategy, the round-trip check and a decode-anything helper, so that no struct is forgotten in
//! any of them; and the framing of a request header followed by its body.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use serf_proto::wire::msgpack::{self, Decoder, Dialect, Encoder, Field, GoString};
use serf_proto::wire::rpc;

use crate::loose::check_loose;
use crate::serf_messages::coordinate;
use crate::strategies::{
    bytes, gostr, i32s, i64s, opt_bytes, opt_string_map, opt_vec, rpc_dialect, string_map, u16s,
    u64s,
};
use crate::support::{check_field, config, ok, strategy};

strategy!(rpc_member -> rpc::Member {
    addr: bytes(), delegate_cur: any::<u8>(), delegate_max: any::<u8>(),
    delegate_min: any::<u8>(), name: gostr(), port: u16s(), protocol_cur: any::<u8>(),
    protocol_max: any::<u8>(), protocol_min: any::<u8>(), status: gostr(), tags: opt_string_map(),
});

macro_rules! rpc_cases {
    ($($variant:ident($ty:ty) = $strategy:expr),* $(,)?) => {
        #[derive(Debug, Clone)]
        pub(crate) enum RpcValue {
            $($variant($ty)),*
        }

        pub(crate) fn rpc_value() -> BoxedStrategy<RpcValue> {
            prop_oneof![$($strategy.prop_map(RpcValue::$variant)),*].boxed()
        }

        fn check_rpc(v: &RpcValue, d: Dialect, seed: u64) -> Result<(), TestCaseError> {
            match v {
                $(RpcValue::$variant(x) => {
                    check_field(x, d)?;
                    // StatsResponse is a Go map at the top: no unknown keys for it.
                    let top_struct = !matches!(v, RpcValue::Stats(_));
                    check_loose(x, top_struct, seed)
                })*
            }
        }

        pub(crate) fn rpc_encode(v: &RpcValue, d: Dialect) -> Vec<u8> {
            match v {
                $(RpcValue::$variant(x) => msgpack::to_vec(x, d)),*
            }
        }

        pub(crate) fn decode_all_rpc(buf: &[u8]) {
            $(
                let _ = msgpack::from_slice::<$ty>(buf);
            )*
        }
    };
}

rpc_cases! {
    RequestHeader(rpc::RequestHeader) = (gostr(), u64s())
        .prop_map(|(command, seq)| rpc::RequestHeader { command, seq }),
    ResponseHeader(rpc::ResponseHeader) = (gostr(), u64s())
        .prop_map(|(error, seq)| rpc::ResponseHeader { error, seq }),
    Handshake(rpc::HandshakeRequest) = i32s().prop_map(|version| rpc::HandshakeRequest { version }),
    Auth(rpc::AuthRequest) = gostr().prop_map(|auth_key| rpc::AuthRequest { auth_key }),
    Event(rpc::EventRequest) = (any::<bool>(), gostr(), opt_bytes())
        .prop_map(|(coalesce, name, payload)| rpc::EventRequest { coalesce, name, payload }),
    ForceLeave(rpc::ForceLeaveRequest) = (gostr(), any::<bool>())
        .prop_map(|(node, prune)| rpc::ForceLeaveRequest { node, prune }),
    Join(rpc::JoinRequest) = (vec(gostr(), 0..4), any::<bool>())
        .prop_map(|(existing, replay)| rpc::JoinRequest { existing, replay }),
    JoinResponse(rpc::JoinResponse) = i32s().prop_map(|num| rpc::JoinResponse { num }),
    Member(rpc::Member) = rpc_member(),
    Members(rpc::MembersResponse) = vec(rpc_member(), 0..3)
        .prop_map(|members| rpc::MembersResponse { members }),
    MembersFiltered(rpc::MembersFilteredRequest) = (gostr(), gostr(), opt_string_map())
        .prop_map(|(name, status, tags)| rpc::MembersFilteredRequest { name, status, tags }),
    Tags(rpc::TagsRequest) = (opt_vec(gostr()), opt_string_map())
        .prop_map(|(delete_tags, tags)| rpc::TagsRequest { delete_tags, tags }),
    Stream(rpc::StreamRequest) = gostr().prop_map(|event_type| rpc::StreamRequest { event_type }),
    Monitor(rpc::MonitorRequest) = gostr().prop_map(|log_level| rpc::MonitorRequest { log_level }),
    Stop(rpc::StopRequest) = u64s().prop_map(|stop| rpc::StopRequest { stop }),
    Query(rpc::QueryRequest) = (
        opt_vec(gostr()), opt_string_map(), gostr(), opt_bytes(), any::<u8>(), any::<bool>(),
        i64s(),
    )
        .prop_map(|(filter_nodes, filter_tags, name, payload, relay_factor, request_ack, timeout)| {
            rpc::QueryRequest {
                filter_nodes, filter_tags, name, payload, relay_factor, request_ack, timeout,
            }
        }),
    Respond(rpc::RespondRequest) = (u64s(), opt_bytes())
        .prop_map(|(id, payload)| rpc::RespondRequest { id, payload }),
    Key(rpc::KeyRequest) = gostr().prop_map(|key| rpc::KeyRequest { key }),
    KeyResponse(rpc::KeyResponse) = (
        prop_oneof![
            Just(None),
            Just(Some(BTreeMap::new())),
            btree_map(gostr(), i64s(), 1..4).prop_map(Some),
        ],
        opt_string_map(), i64s(), i64s(), i64s(),
    )
        .prop_map(|(keys, messages, num_err, num_nodes, num_resp)| rpc::KeyResponse {
            keys, messages, num_err, num_nodes, num_resp,
        }),
    Coordinate(rpc::CoordinateRequest) = gostr().prop_map(|node| rpc::CoordinateRequest { node }),
    CoordinateResponse(rpc::CoordinateResponse) = (coordinate(), any::<bool>())
        .prop_map(|(coord, ok)| rpc::CoordinateResponse { coord, ok }),
    Stats(rpc::StatsResponse) = btree_map(gostr(), string_map(), 0..4),
    MemberEvent(rpc::MemberEventRecord) = (gostr(), vec(rpc_member(), 0..3))
        .prop_map(|(event, members)| rpc::MemberEventRecord { event, members }),
    UserEvent(rpc::UserEventRecord) = (any::<bool>(), gostr(), u64s(), gostr(), opt_bytes())
        .prop_map(|(coalesce, event, ltime, name, payload)| rpc::UserEventRecord {
            coalesce, event, ltime, name, payload,
        }),
    QueryEvent(rpc::QueryEventRecord) = (gostr(), u64s(), u64s(), gostr(), opt_bytes())
        .prop_map(|(event, id, ltime, name, payload)| rpc::QueryEventRecord {
            event, id, ltime, name, payload,
        }),
    Log(rpc::LogRecord) = gostr().prop_map(|log| rpc::LogRecord { log }),
    QueryRecord(rpc::QueryRecord) = (gostr(), opt_bytes(), gostr())
        .prop_map(|(from, payload, record_type)| rpc::QueryRecord { from, payload, record_type }),
}

proptest! {
    #![proptest_config(config(256))]

    /// Every RPC request, response and record struct.
    #[test]
    fn rpc_round_trip(v in rpc_value(), d in rpc_dialect(), seed in any::<u64>()) {
        check_rpc(&v, d, seed)?;
    }

    /// An RPC request as it travels: header then body in one buffer, read back in sequence.
    #[test]
    fn rpc_header_then_body(seq in u64s(), v in rpc_value(), d in rpc_dialect()) {
        let header = rpc::RequestHeader { command: GoString::from("query"), seq };
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, d);
        header.encode(&mut enc);
        let body = rpc_encode(&v, d);
        enc.raw(&body);
        let mut dec = Decoder::new(&buf);
        prop_assert_eq!(ok(rpc::RequestHeader::decode(&mut dec), "header", &buf)?, header);
        prop_assert_eq!(dec.rest(), &body[..]);
        prop_assert!(dec.value().is_ok());
        prop_assert_eq!(dec.remaining(), 0);
    }

    /// Command names map back to their commands.
    #[test]
    fn rpc_command_names(i in 0usize..rpc::Command::ALL.len()) {
        let c = rpc::Command::ALL[i];
        prop_assert_eq!(rpc::Command::from_name(c.name().as_bytes()), Some(c));
    }
}
