//! Event dissemination and query round-trip in a mixed cluster of 10 (5 reference agents + 5
//! libserf nodes) beside an all-reference cluster of 10, in one run. Prints the figures; fails
//! only if something is not delivered at all (timings are benchmark figures, not assertions).

#[path = "common/reference.rs"]
mod reference;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reference::{wait_until, Agent, Scratch};
use serf::{Options, Serf};
use serf_proto::serf::{Event, MemberStatus};

const SIZE: usize = 10;

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// A handler that logs "<epoch> <node> <event name>" and answers queries.
fn handler(dir: &Path) -> PathBuf {
    let script = dir.join("timing-handler.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho \"$(date +%s.%N) $SERF_SELF_NAME ${{SERF_USER_EVENT}}${{SERF_QUERY_NAME}}\" >> {}\n\
             if [ \"$SERF_EVENT\" = query ]; then printf 'ok'; fi\n",
            dir.join("timing.log").display()
        ),
    )
    .expect("handler");
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .expect("chmod");
    script
}

/// When each node logged `name`, from the handler log (epoch seconds).
fn handler_times(dir: &Path, name: &str) -> Vec<f64> {
    std::fs::read_to_string(dir.join("timing.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with(&format!(" {name}")))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Runs `serf query` on `agent` and returns when each response arrived (seconds after start).
fn query_response_times(agent: &Agent, name: &str) -> Vec<f64> {
    let start = Instant::now();
    let mut child = Command::new(reference::binary())
        .arg("query")
        .arg(format!("-rpc-addr={}", agent.rpc))
        .arg("-timeout=5s")
        .arg(name)
        .arg("x")
        .stdout(Stdio::piped())
        .spawn()
        .expect("serf query");
    let out = child.stdout.take().expect("stdout");
    let times = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.starts_with("Response from"))
        .map(|_| start.elapsed().as_secs_f64())
        .collect();
    let _ = child.wait();
    times
}

fn start_agents(count: usize, script: &Path, tag: &str) -> Vec<Agent> {
    let agents: Vec<Agent> = (0..count)
        .map(|i| {
            Agent::start(
                &format!("{tag}-ref-{i}"),
                &[&format!("-event-handler={}", script.display())],
            )
        })
        .collect();
    for a in &agents[1..] {
        a.cli(&["join", &agents[0].gossip.to_string()])
            .expect("join");
    }
    agents
}

/// libserf nodes that log event arrivals and answer every query with "ok".
struct LibNodes {
    nodes: Arc<Vec<Serf>>,
    arrivals: Arc<Mutex<Vec<(String, f64)>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LibNodes {
    fn start(count: usize, join: std::net::SocketAddr, tag: &str) -> LibNodes {
        let nodes: Vec<Serf> = (0..count)
            .map(|i| {
                let mut o = Options::new(&format!("{tag}-lib-{i}"));
                o.bind = "127.0.0.1:0".parse().expect("addr");
                o.protocol_version = 5;
                let s = Serf::create(o).expect("start");
                s.join(&[join.to_string()], false).expect("join");
                s
            })
            .collect();
        let nodes = Arc::new(nodes);
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|i| {
                let (nodes, arrivals, stop) = (nodes.clone(), arrivals.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match nodes[i].next_event(Some(Duration::from_millis(20))) {
                            Some(Event::User(u)) => {
                                arrivals.lock().expect("lock").push((u.name, now_epoch()))
                            }
                            Some(Event::Query(q)) => {
                                let _ = nodes[i].respond(q.ltime, q.id, b"ok");
                            }
                            _ => {}
                        }
                    }
                })
            })
            .collect();
        LibNodes {
            nodes,
            arrivals,
            stop,
            threads,
        }
    }

    fn arrival_times(&self, name: &str) -> Vec<f64> {
        self.arrivals
            .lock()
            .expect("lock")
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect()
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        if let Ok(nodes) = Arc::try_unwrap(self.nodes) {
            for n in nodes {
                let _ = n.shutdown();
            }
        }
    }
}

/// (event dissemination to all 10, query time to the 10th response) for one cluster.
fn measure(agents: &[Agent], lib: Option<&LibNodes>, dir: &Path, tag: &str) -> (f64, f64) {
    let alive = wait_until(Duration::from_secs(30), || {
        agents[0]
            .members()
            .iter()
            .filter(|(_, s, _)| s == "alive")
            .count()
            == SIZE
    });
    assert!(
        alive,
        "{tag}: cluster of {SIZE} did not form: {:?}",
        agents[0].members()
    );
    std::thread::sleep(Duration::from_secs(2));
    let event = format!("{tag}-event");
    let sent = now_epoch();
    agents[0]
        .cli(&["event", "-coalesce=false", &event, "x"])
        .expect("serf event");
    let everywhere = wait_until(Duration::from_secs(20), || {
        handler_times(dir, &event).len() + lib.map_or(0, |l| l.arrival_times(&event).len()) == SIZE
    });
    assert!(
        everywhere,
        "{tag}: the event did not reach all {SIZE} nodes"
    );
    let mut times = handler_times(dir, &event);
    times.extend(lib.map(|l| l.arrival_times(&event)).unwrap_or_default());
    let dissemination = times.iter().cloned().fold(0.0, f64::max) - sent;
    std::thread::sleep(Duration::from_secs(1));
    let responses = query_response_times(&agents[0], &format!("{tag}-query"));
    assert_eq!(responses.len(), SIZE, "{tag}: every node answers the query");
    (dissemination, responses.iter().cloned().fold(0.0, f64::max))
}

#[test]
fn mixed_and_reference_clusters_of_ten() {
    let dir = Scratch::new("timing");
    let script = handler(&dir);

    let reference = start_agents(SIZE, &script, "all");
    let (ref_event, ref_query) = measure(&reference, None, &dir, "all");
    drop(reference);

    let agents = start_agents(SIZE / 2, &script, "mixed");
    let lib = LibNodes::start(SIZE / 2, agents[0].gossip, "mixed");
    assert!(wait_until(Duration::from_secs(30), || {
        lib.nodes[0]
            .members()
            .map(|m| m.iter().filter(|m| m.status == MemberStatus::Alive).count())
            .unwrap_or(0)
            == SIZE
    }));
    let (mixed_event, mixed_query) = measure(&agents, Some(&lib), &dir, "mixed");
    lib.stop();
    println!(
        "cluster of 10 | event to all 10: reference {:.0} ms, mixed 5+5 {:.0} ms | query, 10th response: reference {:.0} ms, mixed {:.0} ms",
        ref_event * 1000.0,
        mixed_event * 1000.0,
        ref_query * 1000.0,
        mixed_query * 1000.0
    );
}
