//! Operators diagnose a cluster by the lines HashiCorp's serf and memberlist log. The same
//! scenario runs on six of HashiCorp's agents and on six of ours, at `-log-level=debug`: join,
//! a user event, a query, a kill -9, a force-leave and a graceful leave. Every kind of
//! `serf:` / `memberlist:` line HashiCorp's agents write, ours write too.

#[path = "../../../tests/common/reference.rs"]
mod reference;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use reference::{wait_until, Agent};

const AGENTS: usize = 6;

/// A log message with what varies from run to run (names, addresses, numbers, quoted text)
/// replaced, so that lines of the same kind compare equal.
fn kind(message: &str, names: &[String]) -> String {
    let mut text = message.to_string();
    // Longest names first, so "log-a" is not half-replaced by a shorter one.
    let mut names: Vec<&String> = names.iter().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        text = text.replace(name.as_str(), "<node>");
    }
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_digit() || *d == '.' || *d == ':')
            {
                chars.next();
            }
            out.push('#');
        } else if c == '\'' || c == '"' {
            for q in chars.by_ref() {
                if q == c {
                    break;
                }
            }
            out.push_str("<q>");
        } else {
            out.push(c);
        }
    }
    out.trim_end().to_string()
}

/// The kinds of `serf:`/`memberlist:` lines in an agent's log.
fn kinds_in(log: &str, names: &[String]) -> Vec<String> {
    log.lines()
        .filter_map(|line| {
            let start = line.find("] ")? + 2;
            let level = &line[line.find('[')? + 1..start - 2];
            let message = &line[start..];
            (message.starts_with("serf: ") || message.starts_with("memberlist: "))
                .then(|| format!("[{level}] {}", kind(message, names)))
        })
        .collect()
}

/// Runs the scenario on six agents of `bin`; the kinds logged and how many such lines.
fn scenario(bin: &Path, tag: &str) -> (BTreeSet<String>, usize) {
    let names: Vec<String> = (0..AGENTS)
        .map(|i| format!("{tag}{}", (b'a' + i as u8) as char))
        .collect();
    let mut agents: Vec<Agent> = names
        .iter()
        .map(|name| {
            let gossip = std::net::SocketAddr::from(([127, 0, 0, 1], reference::free_port()));
            Agent::start_binary(bin, name, gossip, &[])
        })
        .collect();
    let first = agents[0].gossip.to_string();
    for agent in &agents[1..] {
        agent.cli(&["join", &first]).expect("join");
    }
    let alive = |agents: &[Agent], n: usize| agents.iter().all(|a| a.alive_count() == n);
    assert!(
        wait_until(Duration::from_secs(30), || alive(&agents, AGENTS)),
        "{tag}: no full cluster"
    );
    agents[0].cli(&["event", "deploy", "v1"]).expect("event");
    agents[1]
        .cli(&["query", "-timeout=2s", "uptime", "now"])
        .expect("query");
    let victim = names[AGENTS - 1].clone();
    agents[AGENTS - 1].kill();
    let survivors = &agents[..AGENTS - 1];
    assert!(
        wait_until(Duration::from_secs(60), || survivors
            .iter()
            .all(|a| a.status_of(&victim).as_deref() == Some("failed"))),
        "{tag}: the killed agent was not marked failed everywhere"
    );
    agents[1]
        .cli(&["force-leave", &victim])
        .expect("force-leave");
    // Only the lines logged matter here (interop_force_leave.rs checks the spread). A leave
    // intent can die out among HashiCorp's own agents, which pass it to few peers, and then
    // waits for a push/pull: seen once in CI with six HashiCorp agents.
    if !wait_until(Duration::from_secs(30), || {
        survivors
            .iter()
            .all(|a| a.status_of(&victim).as_deref() == Some("left"))
    }) {
        println!("{tag}: force-leave had not reached every agent after 30 s");
    }
    agents[AGENTS - 2].cli(&["leave"]).expect("leave");
    let leaver = names[AGENTS - 2].clone();
    assert!(
        wait_until(Duration::from_secs(30), || agents[..AGENTS - 2]
            .iter()
            .all(|a| a.status_of(&leaver).as_deref() == Some("left"))),
        "{tag}: the graceful leave did not reach everyone"
    );
    // Let the last probes and push/pulls after the changes be logged.
    std::thread::sleep(Duration::from_secs(2));
    let mut kinds = BTreeSet::new();
    let mut lines = 0;
    for agent in agents.iter_mut() {
        agent.terminate();
        let log = std::fs::read_to_string(&agent.log).unwrap_or_default();
        let found = kinds_in(&log, &names);
        lines += found.len();
        kinds.extend(found);
    }
    (kinds, lines)
}

#[test]
fn ours_logs_every_kind_of_line_hashicorps_logs() {
    let (theirs, their_lines) = scenario(reference::binary(), "go-");
    let (ours, our_lines) = scenario(Path::new(env!("CARGO_BIN_EXE_serf")), "rs-");
    println!(
        "HashiCorp's agents: {their_lines} serf/memberlist lines, {} kinds",
        theirs.len()
    );
    println!(
        "ours: {our_lines} serf/memberlist lines, {} kinds",
        ours.len()
    );
    for k in &theirs {
        println!(
            "  {} {k}",
            if ours.contains(k) { "both" } else { "MISSING" }
        );
    }
    for k in ours.difference(&theirs) {
        println!("  ours only {k}");
    }
    let missing: Vec<&String> = theirs.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "kinds HashiCorp's agents log and ours do not: {missing:#?}"
    );
}
