//! `-discover` against HashiCorp's agent (serf v0.11.0 with `hashicorp/mdns`): each side must
//! find the other over multicast DNS and join it. Everything runs inside a network namespace
//! that the test makes for itself, whose only interface is its own loopback: no mDNS packet
//! reaches the host's interfaces and the host's port 5353 is not used. Making namespaces needs
//! root, so a plain `cargo test` leaves these out (ignored) and `make mdns` (part of `make test`)
//! runs them, or says it skipped them. Every wait is bounded.
//!
//! Both sides run on one host here, which matters in one place: hashicorp/mdns answers a
//! query sent from port 5353 (as ours are) by unicast to that port, and the kernel hands such
//! a datagram to one of the host's sockets on port 5353. The test arranges for that to be the
//! querying agent's (see below); across hosts there is no such choice.

#[path = "../../../tests/common/reference.rs"]
mod reference;

use std::net::SocketAddr;
use std::time::Duration;

use reference::wait_until;
use serf_agent::config::{Config, MdnsConfig};
use serf_agent::log::{Level, Logger};
use serf_agent::mdns;
use serf_agent::service::Agent;

const WAIT: Duration = Duration::from_secs(30);

/// Runs `f` on a thread of its own inside a new network namespace with only its loopback
/// (brought up here, with multicast routes), pinned to one CPU; threads and processes started
/// by `f` inherit both. Panics if namespaces cannot be made (not root).
fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let outcome = std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!(
                "cannot create a network namespace (the live mDNS tests need root, as CI has): {}",
                std::io::Error::last_os_error()
            );
        }
        // One CPU for everything started here (see the test).
        // SAFETY: a zeroed cpu_set_t with the CPU this thread runs on (so an allowed one)
        // set, applied to this thread only.
        unsafe {
            let cpu = usize::try_from(libc::sched_getcpu()).expect("sched_getcpu");
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                0,
                "pin to CPU {cpu}"
            );
        }
        // HashiCorp's mDNS client joins the group on the default multicast interface, so the
        // namespace gets multicast routes, as a host on a network has.
        for args in [
            &["link", "set", "lo", "up"][..],
            &["route", "add", "224.0.0.0/4", "dev", "lo"][..],
            &["-6", "route", "add", "ff00::/8", "dev", "lo"][..],
        ] {
            let status = std::process::Command::new("ip")
                .args(args)
                .status()
                .expect("run ip");
            assert!(status.success(), "ip {}", args.join(" "));
        }
        f()
    })
    .join();
    match outcome {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// What a logger printed, for the test to read.
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl serf_agent::log::Sink for Lines {
    fn write_line(&mut self, _level: Level, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

/// Waits until a browser of its own resolves `instance` of `service_type`: the advertisement
/// has passed its probing and answers queries.
fn wait_advertised(service_type: &str, instance: &str, limit: Duration) -> bool {
    let browser = mdns_sd::ServiceDaemon::new().expect("mDNS browser");
    let events = browser.browse(service_type).expect("browse");
    let end = std::time::Instant::now() + limit;
    let mut found = false;
    while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
        match events.recv_timeout(left) {
            Ok(mdns_sd::ServiceEvent::ServiceResolved(s)) if s.fullname == instance => {
                found = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if let Ok(done) = browser.shutdown() {
        let _ = done.recv_timeout(Duration::from_secs(2));
    }
    found
}

/// One of our agents, with discovery, and what it logged.
struct Ours {
    agent: std::sync::Arc<Agent>,
    discovery: mdns::Discovery,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Ours {
    fn start(name: &str, port: u16) -> Ours {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let logger = Logger::new(Level::Debug, vec![Box::new(Lines(lines.clone()))]);
        let mut config = Config {
            node_name: name.into(),
            bind: format!("127.0.0.1:{port}"),
            ..Config::default()
        };
        config.finish().unwrap();
        let agent = Agent::start(config, logger).unwrap();
        let advertise = agent.serf().local_addr();
        let lo = MdnsConfig {
            interface: "lo".into(),
            ..MdnsConfig::default()
        };
        let discovery = mdns::start(agent.clone(), "interop", name, advertise, &lo, false).unwrap();
        Ours {
            agent,
            discovery,
            lines,
        }
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn stop(self) {
        self.discovery.shutdown();
        self.agent.shutdown();
    }
}

#[test]
#[ignore = "needs root for a network namespace: run by make mdns"]
fn discovery_interoperates_with_hashicorp_agent() {
    // Built (once) before the waits below start.
    reference::binary();
    in_private_netns(|| {
        // HashiCorp's agent looks once when it starts and then only every minute, so ours
        // is up and answering first.
        let first = Ours::start("rust-1", 7402);
        assert_eq!(first.discovery.service_type(), "_serf_interop._tcp.local.");
        assert!(wait_advertised(
            first.discovery.service_type(),
            first.discovery.instance(),
            WAIT
        ));

        let go = reference::Agent::start_at(
            "go-node",
            SocketAddr::from(([127, 0, 0, 1], 7401)),
            // Not `-iface=lo`: with an interface, hashicorp/mdns also sets it on its IPv6
            // sockets, and crashes if it could not open them.
            &["-discover=interop"],
        );
        let go_log = || std::fs::read_to_string(&go.log).unwrap_or_default();

        // HashiCorp's agent finds ours (and joins it, and itself).
        let found = wait_until(WAIT, || {
            go_log()
                .lines()
                .any(|l| l.contains("agent: joining: [") && l.contains("127.0.0.1:7402"))
        });
        assert!(
            found,
            "HashiCorp's agent did not find ours; its log:\n{}",
            go_log()
        );

        // Ours finds HashiCorp's. hashicorp/mdns answers a query from port 5353 by unicast
        // to that port, which one socket on the host gets: of equal ones, the one bound last
        // (everything here runs on one CPU, which the kernel would otherwise favour). So the
        // first agent's mDNS sockets close, and a new agent's come after HashiCorp's.
        first.discovery.shutdown();
        let second = Ours::start("rust-2", 7403);
        let found = wait_until(WAIT, || {
            second.log().lines().any(|l| {
                l.contains("[INFO] agent: joining: [")
                    && l.contains("127.0.0.1:7401")
                    && !l.contains("127.0.0.1:7403")
            }) && second.log().contains("[INFO] agent.mdns: Joined ")
        });
        assert!(
            found,
            "ours did not find HashiCorp's agent; its log:\n{}\nHashiCorp's log:\n{}",
            second.log(),
            go_log()
        );

        let three = wait_until(WAIT, || {
            go.members().len() == 3
                && [&first, &second]
                    .iter()
                    .all(|o| o.agent.members().map(|m| m.len()).unwrap_or(0) == 3)
        });
        assert!(three, "no cluster of three; HashiCorp's log:\n{}", go_log());
        assert!(!first.log().contains("127.0.0.1:7402 "), "{}", first.log());
        assert!(!first.log().contains("127.0.0.1:7402]"), "{}", first.log());

        first.stop();
        second.stop();
        let log_path = go.log.clone();
        drop(go);
        let _ = std::fs::remove_file(log_path);
    });
}

/// The `serf agent -discover` command line: two of our agents find each other and form a
/// cluster with no join at all, and the banner names the mDNS cluster.
#[test]
#[ignore = "needs root for a network namespace: run by make mdns"]
fn our_agents_started_with_discover_form_a_cluster() {
    in_private_netns(|| {
        let ours = std::path::Path::new(env!("CARGO_BIN_EXE_serf"));
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let a = reference::Agent::start_binary(
            ours,
            "disc-a",
            at(reference::free_port()),
            &["-discover=bin"],
        );
        let b = reference::Agent::start_binary(
            ours,
            "disc-b",
            at(reference::free_port()),
            &["-discover=bin"],
        );
        let both = wait_until(WAIT, || [&a, &b].iter().all(|n| n.alive_count() == 2));
        let log = std::fs::read_to_string(&a.log).unwrap_or_default();
        assert!(both, "no cluster of two; disc-a's log:\n{log}");
        assert!(log.contains("mDNS cluster: bin"), "{log}");
    });
}

/// serf 0.11's `-mdns-iface` and `-mdns-disable-ipv6` on our agent and HashiCorp's: each logs
/// the interface it starts mDNS on, and HashiCorp's finds ours over IPv4 alone and joins it.
#[test]
#[ignore = "needs root for a network namespace: run by make mdns"]
fn mdns_interface_and_family_options_work_with_hashicorp_agent() {
    reference::binary();
    in_private_netns(|| {
        let ours = std::path::Path::new(env!("CARGO_BIN_EXE_serf"));
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let flags = ["-discover=fam", "-mdns-iface=lo", "-mdns-disable-ipv6"];
        let rust =
            reference::Agent::start_binary(ours, "rust-fam", at(reference::free_port()), &flags);
        // HashiCorp's agent looks once when it starts (and then every minute): ours answers
        // first.
        assert!(wait_advertised(
            "_serf_fam._tcp.local.",
            "rust-fam._serf_fam._tcp.local.",
            WAIT
        ));
        let go = reference::Agent::start_at("go-fam", at(reference::free_port()), &flags);
        let log =
            |agent: &reference::Agent| std::fs::read_to_string(&agent.log).unwrap_or_default();
        let both = wait_until(WAIT, || [&rust, &go].iter().all(|n| n.alive_count() == 2));
        assert!(
            both,
            "no cluster of two; our log:\n{}\nHashiCorp's log:\n{}",
            log(&rust),
            log(&go)
        );
        for agent in [&rust, &go] {
            let log = log(agent);
            assert!(
                log.contains("[INFO] agent: Starting mDNS listener on interface lo"),
                "{}: {log}",
                agent.name
            );
        }
    });
}
