//! The agent's telemetry installed as the process-wide recorder (once per process, hence one
//! test function), with statsd and statsite sinks on loopback, while two real nodes join and
//! exchange a user event: HashiCorp's names reach the totals, the intervals and both sinks, in
//! step with the library's own counters. Every wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serf::{Options, Serf};
use serf_agent::telemetry::{self, Options as TelemetryOptions, Telemetry, TelemetryConfig};
use serf_proto::memberlist::Profile;

const WAIT: Duration = Duration::from_secs(20);

fn node(name: &str, snapshot: Option<std::path::PathBuf>) -> Serf {
    let mut options = Options::new(name);
    options.bind = "127.0.0.1:0".parse().expect("addr");
    options.profile = Profile::Local;
    options.snapshot_path = snapshot;
    Serf::create(options).expect("start a node")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Collects statsd datagrams on a thread, until the test ends.
fn statsd_server() -> (String, Arc<Mutex<String>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind statsd");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let addr = socket.local_addr().expect("addr").to_string();
    let got = Arc::new(Mutex::new(String::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        loop {
            if let Ok(n) = socket.recv(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            if Arc::strong_count(&sink) == 1 {
                return;
            }
        }
    });
    (addr, got)
}

/// Collects the lines of the first statsite connection on a thread.
fn statsite_server() -> (String, Arc<Mutex<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind statsite");
    let addr = listener.local_addr().expect("addr").to_string();
    let got = Arc::new(Mutex::new(String::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        let Ok((conn, _)) = listener.accept() else {
            return;
        };
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut reader = BufReader::new(conn);
        let mut line = String::new();
        loop {
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => sink.lock().unwrap().push_str(&std::mem::take(&mut line)),
                Err(_) if Arc::strong_count(&sink) == 1 => return,
                Err(_) => {}
            }
        }
    });
    (addr, got)
}

#[test]
fn the_agent_recorder_sees_hashicorps_metrics_from_real_nodes() {
    let (statsd_addr, statsd) = statsd_server();
    let (statsite_addr, statsite) = statsite_server();
    let t = telemetry::install(TelemetryConfig {
        statsd_addr: Some(statsd_addr),
        statsite_addr: Some(statsite_addr),
        prometheus: true,
    })
    .expect("install the recorder");
    telemetry::describe();
    assert!(matches!(
        telemetry::install(TelemetryConfig::default()),
        Err(telemetry::TelemetryError::AlreadyInstalled)
    ));
    let host = t.options().hostname.clone();
    assert!(
        host.is_some(),
        "sinks configured: gauges carry the host name"
    );

    let dir = std::env::temp_dir().join(format!("libserf-telemetry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let a = node("telemetry-a", Some(dir.join("a.snapshot")));
    let b = node("telemetry-b", None);
    b.join(&[a.local_addr().to_string()], false).expect("join");
    wait_for("both members everywhere", || {
        [&a, &b]
            .iter()
            .all(|n| n.members().map(|m| m.len()).unwrap_or(0) == 2)
    });
    a.user_event("deploy", b"v1", false).expect("user event");
    wait_for("the event on b", || {
        b.stats().map(|s| s.serf.user_events).unwrap_or(0) >= 1
    });

    let counter = |name: &str| t.snapshot().counters.get(name).copied().unwrap_or(0.0) as u64;
    let samples = |name: &str| t.snapshot().samples.get(name).map_or(0, |s| s.count);
    // Both nodes count both members (themselves included), and the event once each.
    assert_eq!(counter("serf.member.join"), 4);
    assert_eq!(counter("serf.events"), 2);
    assert_eq!(counter("serf.events.deploy"), 2);
    wait_for("probes, gossip and push/pull timers", || {
        samples("memberlist.probeNode") > 0 && samples("memberlist.gossip") > 0
    });
    for name in [
        "memberlist.msg.alive",
        "memberlist.udp.sent",
        "memberlist.udp.received",
        "memberlist.tcp.sent",
        "memberlist.tcp.accept",
        "memberlist.tcp.connect",
    ] {
        assert!(counter(name) > 0, "{name}: {:?}", t.snapshot());
    }
    for name in [
        "memberlist.pushPullNode",
        "serf.msgs.sent",
        "serf.msgs.received",
        "serf.snapshot.appendLine",
    ] {
        assert!(samples(name) > 0, "{name}: {:?}", t.snapshot());
    }

    // The library's own counters tell the same story, recorder or not.
    let (sa, sb) = (a.stats().expect("stats"), b.stats().expect("stats"));
    assert_eq!(sa.serf.member_joins + sb.serf.member_joins, 4);
    assert_eq!(sa.serf.user_events, 1);
    assert_eq!(sb.serf.user_events, 1);
    assert!(sa.memberlist.msg_alive >= 2 && sb.memberlist.msg_alive >= 2);
    assert!(sa.runtime.streams_in + sb.runtime.streams_in >= 1);
    assert!(sa.memberlist.gossip_rounds + sb.memberlist.gossip_rounds > 0);

    // The Prometheus exposition has the same counts, under Go's names with dots as underscores.
    let text = t.prometheus_text().expect("prometheus kept");
    assert!(
        text.contains(
            "# TYPE serf_agent_serf_member_join counter\nserf_agent_serf_member_join 4\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("# HELP serf_agent_memberlist_msg_alive "),
        "{text}"
    );
    assert!(
        text.contains("# TYPE serf_agent_memberlist_gossip summary"),
        "{text}"
    );

    // The intervals carry the agent prefix.
    let current = t.intervals().pop().expect("an interval");
    let all: Vec<&String> = current
        .counters
        .keys()
        .chain(current.samples.keys())
        .collect();
    assert!(all.iter().all(|k| k.starts_with("serf-agent.")), "{all:?}");

    // Both sinks get the same lines: counters, and timers in ms.
    let expect = [
        "serf-agent.serf.member.join:1.000000|c\n",
        "serf-agent.serf.events.deploy:1.000000|c\n",
    ];
    for (name, got) in [("statsd", &statsd), ("statsite", &statsite)] {
        wait_for(name, || {
            let text = got.lock().unwrap();
            expect.iter().all(|l| text.contains(l))
                && text.contains("serf-agent.memberlist.probeNode:")
                && text
                    .lines()
                    .all(|l| l.starts_with("serf-agent.") && l.contains(':'))
        });
    }

    a.shutdown().expect("shutdown a");
    b.shutdown().expect("shutdown b");
    let _ = std::fs::remove_dir_all(&dir);

    // SIGUSR1 prints the finished intervals, as go-metrics' InmemSignal does (short intervals
    // here, on a telemetry of its own, to see one finish).
    let options = TelemetryOptions {
        interval: Duration::from_millis(50),
        retain: Duration::from_secs(1),
        ..TelemetryOptions::agent(&TelemetryConfig::default())
    };
    let short = Telemetry::with_options(options, &TelemetryConfig::default()).expect("telemetry");
    metrics::with_local_recorder(&short.recorder(), || {
        metrics::counter!("serf.member.join").increment(1);
    });
    std::thread::sleep(Duration::from_millis(120));
    let out = Arc::new(Mutex::new(Vec::new()));
    let dumper = short
        .dump_on_signal_to(SharedWriter(out.clone()))
        .expect("catch SIGUSR1");
    // SAFETY: raising a signal this process now catches.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
    wait_for("the SIGUSR1 dump", || !out.lock().unwrap().is_empty());
    drop(dumper);
    let text = String::from_utf8(out.lock().unwrap().clone()).expect("utf-8");
    assert!(
        text.contains("][C] 'serf-agent.serf.member.join': Count: 1 Sum: 1.000 LastUpdated: "),
        "{text}"
    );
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
