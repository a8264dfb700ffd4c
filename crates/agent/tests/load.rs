//! Load (issue 10): 50 of our agents, 200 user events a second for 60 s (see
//! crates/agent/tests/common/load.rs). Asserted:
//! - no consumer gets an event twice;
//! - a handler script misses exactly the events its agent never received plus the invocations
//!   the agent counted as dropped (`handler_drops`): nothing else is lost on the way;
//! - what agents never received is either counted (`events_too_old`, `dropped_events`,
//!   `stream_drops`) or within the protocol's own bound: gossip sends each event a limited
//!   number of times (retransmit limit 4 × ⌈log10(51)⌉ = 8 per node), so a node misses a given
//!   event with probability about e^-8 before push/pull anti-entropy repairs what its ring
//!   still holds;
//! - every agent's memory stays bounded.

#[path = "../../../tests/common/reference.rs"]
mod reference;

#[path = "common/load.rs"]
mod load;

use std::path::Path;

use load::{AGENTS, TOTAL};

/// Resident memory no agent may exceed under this load (an idle one uses about 6 MiB).
const RSS_LIMIT_KIB: u64 = 64 * 1024;
/// Gossip transmissions of each event per node at 50 members.
const RETRANSMIT_LIMIT: f64 = 8.0;

#[test]
fn every_event_reaches_every_agent_once_or_is_counted() {
    let run = load::run(Path::new(env!("CARGO_BIN_EXE_serf")), "load");
    let mut problems = Vec::new();
    let mut unexplained = 0;
    for a in &run.agents {
        let counted = a.counter("events_too_old") + a.counter("dropped_events");
        let streamed_lost = counted + a.counter("stream_drops");
        unexplained += (a.missing as u64).saturating_sub(streamed_lost);
        if a.twice > 0 {
            problems.push(format!("{}: {} events streamed twice", a.name, a.twice));
        }
        if let Some((missing, twice)) = a.script {
            let received_missing =
                a.missing as u64 - a.counter("stream_drops").min(a.missing as u64);
            let expected = received_missing + a.counter("handler_drops");
            let pace = a.pace.expect("a scripted agent's pace");
            println!(
                "{}: handler missed {missing}, of them counted as handler drops {}; scripts/s \
                 while sending {:.0}, in the busiest {} s {:.0}",
                a.name,
                a.counter("handler_drops"),
                pace.sending,
                load::PACE_WINDOW.as_secs(),
                pace.best
            );
            if twice > 0 {
                problems.push(format!("{}: the handler ran twice for {twice}", a.name));
            }
            if missing as u64 != expected {
                problems.push(format!(
                    "{}: the handler missed {missing}, but the agent missed {received_missing} \
                     and counted {} handler drops",
                    a.name,
                    a.counter("handler_drops")
                ));
            }
        }
    }
    let deliveries = (TOTAL * AGENTS) as f64;
    let bound = (deliveries * (-RETRANSMIT_LIMIT).exp()).ceil() as u64;
    println!(
        "{TOTAL} events sent in {:.1} s to {AGENTS} agents; every consumer complete after {}; \
         streams missing {} of {deliveries} deliveries ({unexplained} uncounted, bound {bound}); \
         UDP receive-buffer overflows {}",
        run.sent_in.as_secs_f64(),
        run.complete_after
            .map_or("never".to_string(), |d| format!("{:.1} s", d.as_secs_f64())),
        run.missing(),
        run.udp_rcvbuf_errors,
    );
    println!(
        "RSS per agent, KiB: formed {}, sending ended {}, drained {}",
        run.rss_spread(0),
        run.rss_spread(1),
        run.rss_spread(2)
    );
    if unexplained > bound {
        problems.push(format!(
            "{unexplained} deliveries lost without a counter, more than gossip's bound {bound}"
        ));
    }
    if run.max_rss_kib() > RSS_LIMIT_KIB {
        problems.push(format!("an agent grew to {} KiB", run.max_rss_kib()));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
