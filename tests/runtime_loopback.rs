//! memberlist over real sockets on loopback, each node on its own runtime thread: joining,
//! leaving, failure detection, IPv6, and garbage input. Every wait is bounded in time.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use serf::runtime::{bind, Runtime, RuntimeError, RuntimeHandle};
use serf_proto::log::LogLine;
use serf_proto::memberlist::machine::{Machine, MemberlistNode, StreamStatus};
use serf_proto::memberlist::{Config, Delegate, Memberlist, OutboundStream, Profile, Transmit};
use serf_proto::telemetry::Reading;
use serf_proto::wire::memberlist::NodeState;

/// Remembers how joins ended.
#[derive(Default)]
struct JoinLog {
    /// `(contacted, errors)` per completed join.
    joins: Vec<(usize, Vec<String>)>,
}

impl Delegate for JoinLog {
    fn join_complete(&mut self, _id: u64, contacted: usize, errors: Vec<String>) {
        self.joins.push((contacted, errors));
    }
}

type Node = MemberlistNode<JoinLog>;
type Handle = RuntimeHandle<Node>;

const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn start_with(runtime: Runtime, ip: IpAddr, name: &str, seed: u64) -> std::io::Result<Handle> {
    let sockets = bind(SocketAddr::new(ip, 0))?;
    let addr = sockets.local_addr();
    let mut config = Config::new(Profile::Local, name, addr);
    config.delegate_protocol = [2, 5, 5];
    let mut delegate = JoinLog::default();
    let memberlist = Memberlist::new(config, vec![], Instant::now(), seed, &mut delegate);
    runtime.start(
        sockets,
        MemberlistNode {
            memberlist,
            delegate,
        },
        name,
    )
}

fn start(ip: IpAddr, name: &str, seed: u64) -> Handle {
    start_with(Runtime::default(), ip, name, seed).expect("start node")
}

fn join(h: &Handle, to: SocketAddr) {
    h.run(move |m, now| m.memberlist.join(now, &[to], &mut m.delegate))
        .unwrap();
}

fn num_alive(h: &Handle) -> usize {
    h.run(|m, _| m.memberlist.num_alive()).unwrap()
}

fn state_of(h: &Handle, name: &'static str) -> Option<NodeState> {
    h.run(move |m, _| {
        m.memberlist
            .nodes()
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.state)
    })
    .unwrap()
}

fn malformed(h: &Handle) -> u64 {
    h.run(|m, _| m.memberlist.stats().malformed).unwrap()
}

/// Polls `done` every 50 ms for at most `limit`; returns how long it took, or `None`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    for _ in 0..=(limit.as_millis() / 50) {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn handle_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Handle>();
}

#[test]
fn three_nodes_join_leave_and_fail() {
    let started = Instant::now();
    let n1 = start(LOCALHOST_V4, "node-1", 1);
    let n2 = start(LOCALHOST_V4, "node-2", 2);
    let n3 = start(LOCALHOST_V4, "node-3", 3);
    let addr1 = n1.local_addr();
    assert_eq!(addr1.ip(), LOCALHOST_V4);
    assert_ne!(addr1.port(), 0);

    join(&n2, addr1);
    join(&n3, addr1);
    let converged = wait_until(Duration::from_secs(10), || {
        [&n1, &n2, &n3].iter().all(|h| num_alive(h) == 3)
    })
    .expect("all three nodes see three alive members within 10 s");
    println!("converged to 3 alive in {converged:?}");
    for h in [&n2, &n3] {
        let joins = h.run(|m, _| m.delegate.joins.clone()).unwrap();
        assert_eq!(joins, vec![(1, vec![])], "join through node-1 succeeded");
    }

    // node-2 crashes (no leave): the others must declare it dead. This comes before the
    // leave on purpose: with two observers each confirms the other's suspicion, so the
    // suspicion timeout is its minimum (3 s in the local profile). With a single observer
    // and a left node not yet reaped, memberlist (like Go) waits for a confirmation that
    // cannot come and only gives up at the maximum, 6 x 3 s = 18 s.
    let killed = Instant::now();
    n2.shutdown().expect("node-2 thread joined");
    let dead = wait_until(Duration::from_secs(15), || {
        state_of(&n1, "node-2") == Some(NodeState::Dead)
            && state_of(&n3, "node-2") == Some(NodeState::Dead)
    })
    .expect("node-1 and node-3 mark node-2 dead within 15 s");
    println!(
        "node-2 seen dead {dead:?} after its shutdown ({:?} incl. the shutdown)",
        killed.elapsed()
    );
    assert_eq!(num_alive(&n1), 2);

    // node-3 leaves gracefully: node-1 must see it as left, not failed.
    let notify = n3
        .run(|m, now| m.memberlist.leave(now, &mut m.delegate))
        .unwrap()
        .expect("node-1 is alive to hear the leave");
    let broadcast = wait_until(Duration::from_secs(1), || {
        n3.run(move |m, _| m.memberlist.broadcast_finished(notify))
            .unwrap()
    });
    println!("leave broadcast finished: {broadcast:?}");
    thread::sleep(Duration::from_secs(1).saturating_sub(broadcast.unwrap_or_default()));
    let n3_stats = n3.stats();
    n3.shutdown().expect("node-3 thread joined");
    let left = wait_until(Duration::from_secs(5), || {
        state_of(&n1, "node-3") == Some(NodeState::Left)
    })
    .expect("node-1 sees node-3 as left");
    println!("left seen {left:?} after node-3 shut down; node-3 stats {n3_stats:?}");
    assert!(n3_stats.packets_in > 0 && n3_stats.packets_out > 0);
    assert!(n3_stats.streams_out >= 1, "the join's push/pull");
    assert_eq!(state_of(&n1, "node-2"), Some(NodeState::Dead));
    assert_eq!(num_alive(&n1), 1);

    let n1_stats = n1.stats();
    println!("node-1 stats {n1_stats:?}");
    assert!(n1_stats.streams_in >= 2, "two joins' push/pulls");
    assert_eq!(n1_stats.command_panics, 0);
    n1.shutdown().expect("node-1 thread joined");
    println!("whole scenario took {:?}", started.elapsed());
}

#[test]
fn ipv6_pair_joins() {
    let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let a = match start_with(Runtime::default(), ip, "v6-a", 11) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("skipping: cannot bind [::1]: {e}");
            return;
        }
    };
    let b = start(ip, "v6-b", 12);
    assert!(a.local_addr().is_ipv6());
    join(&b, a.local_addr());
    let took = wait_until(Duration::from_secs(10), || {
        num_alive(&a) == 2 && num_alive(&b) == 2
    })
    .expect("IPv6 pair converges within 10 s");
    println!("IPv6 pair converged in {took:?}");
    let addr_of_b = a
        .run(|m, _| {
            m.memberlist
                .nodes()
                .iter()
                .find(|n| n.name == "v6-b")
                .and_then(|n| n.socket_addr())
        })
        .unwrap();
    assert_eq!(addr_of_b, Some(b.local_addr()));
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
fn garbage_is_counted_and_harmless() {
    let runtime = Runtime {
        inbound_timeout: Duration::from_millis(300),
        ..Runtime::default()
    };
    let node = start_with(runtime, LOCALHOST_V4, "target", 21).unwrap();
    let addr = node.local_addr();

    // Datagrams that are not memberlist packets.
    let garbage: [&[u8]; 4] = [
        b"\xff\xfe\xfd garbage",
        b"\x00",
        &[0x80; 1400],
        b"GET / HTTP/1.1\r\n\r\n",
    ];
    let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    for g in garbage {
        sender.send_to(g, addr).unwrap();
    }
    wait_until(Duration::from_secs(5), || {
        malformed(&node) >= garbage.len() as u64
    })
    .expect("every garbage datagram counted as malformed");
    assert_eq!(node.stats().packets_in, garbage.len() as u64);

    // A garbage stream request gets memberlist's error reply and is closed.
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"\xff this is not a memberlist stream")
        .unwrap();
    tcp.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply)
        .expect("the node closes the connection");
    assert!(!reply.is_empty(), "an error reply, as Go sends");

    // A connection that never completes a request is dropped at the inbound deadline.
    let silent_start = Instant::now();
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    silent.write_all(&[]).unwrap();
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    let dropped_after = silent_start.elapsed();
    assert!(
        dropped_after < Duration::from_secs(3),
        "closed at the 300 ms inbound deadline, took {dropped_after:?}"
    );

    let stats = node.stats();
    println!("after garbage: {stats:?}, malformed {}", malformed(&node));
    assert_eq!(stats.streams_in, 2);
    assert_eq!(stats.inbound_failures, 1, "the silent connection");

    // The node still works: a peer joins it.
    let peer = start(LOCALHOST_V4, "peer", 22);
    join(&peer, addr);
    let took = wait_until(Duration::from_secs(10), || {
        num_alive(&node) == 2 && num_alive(&peer) == 2
    })
    .expect("node undisturbed by garbage: a peer joins");
    println!("join after garbage took {took:?}");
    node.shutdown().unwrap();
    peer.shutdown().unwrap();
}

#[test]
fn commands_after_close_and_panics() {
    let node = start(LOCALHOST_V4, "solo", 31);
    // A panicking command is reported to its caller and the runtime keeps serving.
    let err = node
        .run(|_, _| -> u32 { panic!("boom") })
        .expect_err("the panic is reported");
    assert!(
        matches!(err, RuntimeError::Panicked(ref m) if m == "boom"),
        "{err}"
    );
    assert_eq!(node.run(|m, _| m.memberlist.num_alive()).unwrap(), 1);
    assert_eq!(node.stats().command_panics, 0, "caught inside run");

    // Commands run in order; run_async ones too.
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..10 {
        let tx = tx.clone();
        node.run_async(move |_, _| tx.send(i).unwrap()).unwrap();
    }
    node.run(|_, _| ()).unwrap();
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );

    let addr = node.local_addr();
    node.close().unwrap();
    assert!(node.is_stopped());
    assert!(matches!(node.run(|_, _| ()), Err(RuntimeError::Stopped)));
    assert!(matches!(
        node.run_async(|_, _| ()),
        Err(RuntimeError::Stopped)
    ));
    node.close().unwrap();
    drop(node);
    // Sockets are closed: the port can be bound again.
    let again = bind(addr).expect("port released after shutdown");
    assert_eq!(again.local_addr(), addr);
}

/// CPU time (user + system, in clock ticks) of this process's thread named `name`.
#[cfg(target_os = "linux")]
fn thread_cpu_ticks(name: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        return Some(utime + stime);
    }
    None
}

/// The loop sleeps in `poll` between timers: an idle pair uses almost no CPU.
#[cfg(target_os = "linux")]
#[test]
fn idle_nodes_do_not_spin() {
    let a = start(LOCALHOST_V4, "idle-a", 41);
    let b = start(LOCALHOST_V4, "idle-b", 42);
    join(&b, a.local_addr());
    wait_until(Duration::from_secs(10), || num_alive(&a) == 2).expect("pair converges");
    let before = thread_cpu_ticks("idle-a").expect("runtime thread is named after the node");
    thread::sleep(Duration::from_secs(2));
    let used = thread_cpu_ticks("idle-a").unwrap() - before;
    println!("idle runtime thread used {used} clock ticks in 2 s");
    // Clock ticks are usually 10 ms: 20 ticks would be 10% of a core.
    assert!(
        used < 20,
        "runtime thread busy while idle: {used} ticks in 2 s"
    );
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

/// A machine that opens the streams it is told to and records what the runtime reports, to
/// check the outbound stream paths one by one.
#[derive(Default)]
struct StreamRecorder {
    queued: Vec<OutboundStream>,
    /// `(id, reply bytes)` for each reply handed over at EOF or once complete.
    replies: Vec<(u64, Vec<u8>)>,
    failures: Vec<(u64, String)>,
}

impl Machine for StreamRecorder {
    fn handle_packet(&mut self, _: Instant, _: SocketAddr, _: &[u8]) {}
    fn handle_stream_request(&mut self, _: Instant, _: &[u8]) -> StreamStatus {
        StreamStatus::Done(None)
    }
    fn handle_stream_reply(&mut self, _: Instant, id: u64, data: &[u8], eof: bool) -> bool {
        if eof {
            self.replies.push((id, data.to_vec()));
        }
        eof
    }
    fn handle_stream_failure(&mut self, _: Instant, id: u64, error: String) {
        self.failures.push((id, error));
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(&mut self) -> Option<Transmit> {
        None
    }
    fn poll_stream(&mut self) -> Option<OutboundStream> {
        self.queued.pop()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// A recorder has no counters or log lines of its own.
    fn read_telemetry(&mut self, _: &mut dyn FnMut(Reading)) {}
    fn read_log(&mut self, _: &mut dyn FnMut(LogLine)) {}
}

#[test]
fn outbound_streams_reply_fail_and_time_out() {
    let sockets = bind(SocketAddr::new(LOCALHOST_V4, 0)).unwrap();
    let rt = Runtime::spawn(sockets, StreamRecorder::default(), "streams").unwrap();
    let open = |id: u64, to: SocketAddr, expect_reply: bool, within: Duration| {
        let s = OutboundStream {
            id,
            to,
            payload: format!("request {id}").into_bytes(),
            deadline: Instant::now() + within,
            expect_reply,
        };
        rt.run(move |m, _| m.queued.push(s)).unwrap();
    };

    // 1: a peer that answers and closes.
    let answering = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let answering_addr = answering.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut c, _) = answering.accept().unwrap();
        let mut req = [0u8; 9];
        c.read_exact(&mut req).unwrap();
        c.write_all(b"reply to ").unwrap();
        c.write_all(&req).unwrap();
        req.to_vec()
    });
    open(1, answering_addr, true, Duration::from_secs(5));
    assert_eq!(server.join().unwrap(), b"request 1");

    // 2: a peer that accepts (in the kernel backlog) but never answers.
    let silent = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let opened = Instant::now();
    open(2, silent_addr, true, Duration::from_millis(300));

    // 3: nobody listening.
    let closed_addr = {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap()
    };
    open(3, closed_addr, true, Duration::from_secs(5));

    // 4: fire and forget.
    let sink = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let sink_addr = sink.local_addr().unwrap();
    open(4, sink_addr, false, Duration::from_secs(5));
    let (mut c, _) = sink.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"request 4", "payload written, then closed");

    let settled = wait_until(Duration::from_secs(5), || {
        rt.run(|m, _| m.replies.len() + m.failures.len()).unwrap() >= 3
    });
    assert!(settled.is_some(), "streams 1-3 settle");
    thread::sleep(Duration::from_millis(400));
    let (replies, failures) = rt
        .run(|m, _| (m.replies.clone(), m.failures.clone()))
        .unwrap();
    assert_eq!(replies, vec![(1, b"reply to request 1".to_vec())]);
    let mut failed: Vec<u64> = failures.iter().map(|f| f.0).collect();
    failed.sort();
    assert_eq!(failed, vec![2, 3], "exactly one failure each: {failures:?}");
    let timeout = &failures.iter().find(|f| f.0 == 2).unwrap().1;
    assert!(timeout.contains("deadline"), "{timeout}");
    assert!(opened.elapsed() >= Duration::from_millis(300));
    let stats = rt.stats();
    println!("stream paths: {failures:?}, {stats:?}");
    assert_eq!(stats.streams_out, 4);
    assert_eq!(stats.stream_failures, 2);
    drop(silent);
    rt.shutdown().unwrap();
}
