//! The node's counters as JSON, and the call that frees strings the library hands over.

use std::ffi::{c_char, CString};
use std::fmt::Write as _;

use super::node::{on_node, serf_t};
use super::status::{guard_value, out_arg, serf_status, Fail};

/// Releases a string the library handed over (`serf_stats_json`). NULL is a no-op.
#[no_mangle]
pub extern "C" fn serf_string_free(s: *mut c_char) {
    guard_value((), || {
        if !s.is_null() {
            // SAFETY: allocated by CString::into_raw in this library, freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

/// The node's counters as a JSON object, owned by the caller (free with `serf_string_free`):
/// `{"members":3,"failed":0,"left":0,"health_score":0,"member_time":5,"event_time":2,
/// "query_time":1,"encrypted":false,"coordinate_resets":0,"event_queue":0,"dropped_events":0,
/// ...}` (keys may be added in later versions). Every value is a number or a boolean.
///
/// The object also carries the counters behind HashiCorp's metrics, counted since the
/// node started whether or not anything collects metrics:
/// - serf's broadcast queues: `intent_queue`, `query_queue`, `event_broadcast_queue`;
/// - serf (`serf.*`): `member_joins`, `member_flaps`, `member_updates`, `member_failures`,
///   `member_leaves`, `user_events`, `queries`, `query_acks`, `query_responses`,
///   `query_duplicate_acks`, `query_duplicate_responses`, `msgs_sent`, `msg_bytes_sent`,
///   `msgs_received`, `msg_bytes_received`, `coordinate_rejections`, `coordinate_zero_rtts`,
///   `broadcasts_pruned` (dropped by the queue-depth limit), `events_too_old` and
///   `queries_too_old` (arrived too late for the 512-entry rings, dropped unseen);
/// - memberlist (`memberlist.*`): `packets_received`, `bytes_received`, `packets_sent`,
///   `bytes_sent`, `stream_bytes_sent`, `streams_accepted`, `push_pulls`,
///   `push_pulls_initiated`, `merges_refused`, `malformed`, `rejected` (of those, refused for
///   their label or encryption), `msg_alive`, `msg_suspect`,
///   `msg_dead`, `probes`, `failed_probes`, `degraded_probes`, `degraded_timeouts`,
///   `gossip_rounds`;
/// - the I/O thread: `tcp_accepts`, `streams_opened`, `send_errors`, `recv_errors`,
///   `stream_failures`, `inbound_failures`.
///
/// Errors: SERF_ERR_NULL, SERF_ERR_STOPPED.
#[no_mangle]
pub extern "C" fn serf_stats_json(serf: *const serf_t, out: *mut *mut c_char) -> serf_status {
    on_node(serf, "serf_stats_json", |n| {
        out_arg(out, "out")?;
        let s = n.serf.stats()?;
        let c = CString::new(stats_json(&s))
            .map_err(|_| Fail::new(serf_status::SERF_ERR_INTERNAL, "NUL in JSON"))?;
        // SAFETY: checked non-NULL.
        unsafe { *out = c.into_raw() };
        Ok(())
    })
}

/// The flat JSON object of [`serf_stats_json`], keys in a fixed order (the original eleven
/// first, as documented).
fn stats_json(s: &crate::api::Stats) -> String {
    let (c, m, r) = (&s.serf, &s.memberlist, &s.runtime);
    let fields: [(&str, &dyn std::fmt::Display); 59] = [
        ("members", &s.members),
        ("failed", &s.failed),
        ("left", &s.left),
        ("health_score", &s.health_score),
        ("member_time", &s.member_time),
        ("event_time", &s.event_time),
        ("query_time", &s.query_time),
        ("encrypted", &s.encrypted),
        ("coordinate_resets", &s.coordinate_resets),
        ("event_queue", &s.event_queue),
        ("dropped_events", &s.dropped_events),
        ("intent_queue", &s.queues.intent),
        ("query_queue", &s.queues.query),
        ("event_broadcast_queue", &s.queues.event),
        ("member_joins", &c.member_joins),
        ("member_flaps", &c.member_flaps),
        ("member_updates", &c.member_updates),
        ("member_failures", &c.member_failures),
        ("member_leaves", &c.member_leaves),
        ("user_events", &c.user_events),
        ("queries", &c.queries),
        ("query_acks", &c.query_acks),
        ("query_responses", &c.query_responses),
        ("query_duplicate_acks", &c.query_duplicate_acks),
        ("query_duplicate_responses", &c.query_duplicate_responses),
        ("msgs_sent", &c.msgs_sent),
        ("msg_bytes_sent", &c.msg_bytes_sent),
        ("msgs_received", &c.msgs_received),
        ("msg_bytes_received", &c.msg_bytes_received),
        ("coordinate_rejections", &c.coordinate_rejections),
        ("coordinate_zero_rtts", &c.coordinate_zero_rtts),
        ("broadcasts_pruned", &c.broadcasts_pruned),
        ("events_too_old", &c.events_too_old),
        ("queries_too_old", &c.queries_too_old),
        ("packets_received", &m.packets_received),
        ("bytes_received", &m.bytes_received),
        ("packets_sent", &m.packets_sent),
        ("bytes_sent", &m.bytes_sent),
        ("stream_bytes_sent", &m.stream_bytes_sent),
        ("streams_accepted", &m.streams_accepted),
        ("push_pulls", &m.push_pulls),
        ("push_pulls_initiated", &m.push_pulls_initiated),
        ("merges_refused", &m.merges_refused),
        ("malformed", &m.malformed),
        ("rejected", &m.rejected),
        ("msg_alive", &m.msg_alive),
        ("msg_suspect", &m.msg_suspect),
        ("msg_dead", &m.msg_dead),
        ("probes", &m.probes),
        ("failed_probes", &m.failed_probes),
        ("degraded_probes", &m.degraded_probes),
        ("degraded_timeouts", &m.degraded_timeouts),
        ("gossip_rounds", &m.gossip_rounds),
        ("tcp_accepts", &r.streams_in),
        ("streams_opened", &r.streams_out),
        ("send_errors", &r.send_errors),
        ("recv_errors", &r.recv_errors),
        ("stream_failures", &r.stream_failures),
        ("inbound_failures", &r.inbound_failures),
    ];
    let mut j = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        let _ = write!(j, "{comma}\"{key}\":{value}");
    }
    j.push('}');
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_json_is_flat_and_keeps_the_first_keys_in_order() {
        let mut s = crate::api::Stats {
            members: 3,
            encrypted: true,
            ..Default::default()
        };
        s.serf.member_joins = 4;
        s.memberlist.msg_alive = 7;
        s.runtime.streams_in = 2;
        let j = stats_json(&s);
        assert!(j.starts_with(
            "{\"members\":3,\"failed\":0,\"left\":0,\"health_score\":0,\"member_time\":0,\
             \"event_time\":0,\"query_time\":0,\"encrypted\":true,\"coordinate_resets\":0,\
             \"event_queue\":0,\"dropped_events\":0,"
        ));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 59);
        assert!(o.values().all(|v| v.is_number() || v.is_boolean()));
        assert_eq!(o["member_joins"], 4);
        assert_eq!(o["msg_alive"], 7);
        assert_eq!(o["tcp_accepts"], 2);
    }
}
