//! Load side by side (issue 10): crates/agent/tests/common/load.rs's scenario (50 agents, 200 user events a
//! second for 60 s) on our `serf` agent, then on HashiCorp's; one after the other, so each has
//! the machine to itself. The table goes to stdout and to `target/bench/load.md`.

#[path = "../../../tests/common/bench.rs"]
mod bench;

#[path = "../../../tests/common/reference.rs"]
mod reference;

#[path = "../tests/common/shipped_agent.rs"]
mod shipped_agent;

#[path = "../tests/common/load.rs"]
mod load;

#[path = "../tests/common/own_events.rs"]
mod own_events;

use std::fmt::Write as _;
use std::path::Path;

use load::{LoadOutcome, AGENTS, PACE_WINDOW, RATE, SCRIPTED, TOTAL};

fn main() {
    if !bench::selected("load") {
        return;
    }
    let bin = shipped_agent::path();
    let own = [
        own_events::measure(&bin, "own-o"),
        own_events::measure(reference::binary(), "own-r"),
    ];
    let ours = load::run(&bin, "o");
    let theirs = load::run(reference::binary(), "r");
    let mut table = markdown(&ours, &theirs);
    table.push_str(&own_event_table(&own));
    println!("{table}");
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    std::fs::write(dir.join("load.md"), table).expect("write load.md");
}

/// The own-event latency of each implementation, as a table under the load table.
fn own_event_table([ours, theirs]: &[own_events::Latency; 2]) -> String {
    let ms = |d: std::time::Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let mut out = format!(
        "\nOwn user events, RPC `event` to an RPC `stream` of the same agent ({} events, one \
         at a time, one agent alone):\n\n| measure | libserf | reference |\n|---|---:|---:|\n",
        own_events::EVENTS
    );
    let rows = [
        ("p50", ms(ours.p50), ms(theirs.p50)),
        ("p99", ms(ours.p99), ms(theirs.p99)),
        ("max", ms(ours.max), ms(theirs.max)),
        (
            "delivered",
            ours.delivered.to_string(),
            theirs.delivered.to_string(),
        ),
    ];
    for (measure, a, b) in rows {
        let _ = writeln!(out, "| {measure} | {a} | {b} |");
    }
    out
}

fn scripts(o: &LoadOutcome) -> String {
    let (missed, twice): (usize, usize) = o
        .agents
        .iter()
        .filter_map(|a| a.script)
        .fold((0, 0), |(m, t), (am, at)| (m + am, t + at));
    let unreached: usize = o.agents.iter().filter_map(|a| a.script_unreached).sum();
    format!("{missed} missed ({unreached} never reached the agent), {twice} twice")
}

fn paces(o: &LoadOutcome) -> String {
    let each: Vec<String> = o
        .agents
        .iter()
        .filter_map(|a| a.pace)
        .map(|p| format!("{:.0}; {:.0}", p.sending, p.best))
        .collect();
    each.join(" / ")
}

fn counted(o: &LoadOutcome, key: &str) -> String {
    let sum: u64 = o.agents.iter().map(|a| a.counter(key)).sum();
    if o.agents.iter().any(|a| a.counters.contains_key(key)) {
        sum.to_string()
    } else {
        "not counted".to_string()
    }
}

fn markdown(ours: &LoadOutcome, theirs: &LoadOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Load: {AGENTS} agents, {RATE} user events/s for {} s\n",
        TOTAL / RATE
    );
    let _ = writeln!(
        out,
        "Each implementation alone on loopback: {TOTAL} events with unique payloads, sent \
         round-robin through the agents' RPC ports (coalescing off); every agent streams `user` \
         events to the harness over RPC, and {SCRIPTED} agents also run a handler script per \
         event. {} stream deliveries expected per implementation.\n",
        TOTAL * AGENTS
    );
    let _ = writeln!(out, "| measure | libserf | reference |");
    let _ = writeln!(out, "|---|---:|---:|");
    // One line: the measure taken from each implementation's outcome.
    let mut row = |measure: &str, take: &dyn Fn(&LoadOutcome) -> String| {
        let (a, b) = (take(ours), take(theirs));
        let _ = writeln!(out, "| {measure} | {a} | {b} |");
    };
    row("time to send all events", &|o| {
        format!("{:.1} s", o.sent_in.as_secs_f64())
    });
    row("stream deliveries missing", &|o| o.missing().to_string());
    row("stream deliveries twice", &|o| o.twice().to_string());
    row("every consumer complete after sending", &|o| {
        o.complete_after.map_or_else(
            || "never (bounded wait)".to_string(),
            |d| format!("{:.1} s", d.as_secs_f64()),
        )
    });
    row(&format!("handler scripts ({SCRIPTED} agents)"), &scripts);
    row(
        &format!(
            "scripts/s per lane: while sending; busiest {} s",
            PACE_WINDOW.as_secs()
        ),
        &paces,
    );
    for key in [
        "handler_drops",
        "broadcasts_pruned",
        "events_too_old",
        "stream_drops",
    ] {
        row(&format!("counted: `{key}` (all agents)"), &|o| {
            counted(o, key)
        });
    }
    row("CPU per agent while sending (of one core)", &|o| {
        format!("{:.1} %", o.cpu_percent())
    });
    for (i, when) in ["cluster formed", "sending ended", "drained"]
        .iter()
        .enumerate()
    {
        row(&format!("RSS per agent, KiB, {when}"), &|o| o.rss_spread(i));
    }
    row("kernel UDP receive-buffer overflows", &|o| {
        o.udp_rcvbuf_errors.to_string()
    });
    out
}
