//! memberlist in the deterministic simulator: convergence, failure detection, loss, Lifeguard.
//! Every scenario prints its seed on failure; `SIM_SEED=<n>` replays it.

#[path = "common/sim.rs"]
mod sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serf_proto::memberlist::machine::MemberlistNode;
use serf_proto::memberlist::{Config, Delegate, Memberlist, Node, Profile};
use serf_proto::sim::Sim;
use serf_proto::wire::memberlist::NodeState;

/// Counts what memberlist told the layer above.
#[derive(Default)]
struct Recorder {
    joins: usize,
    /// Nodes reported dead (not left), with when.
    failed: Vec<(String, Instant)>,
    left: Vec<String>,
}

impl Delegate for Recorder {
    fn notify_join(&mut self, _now: Instant, _node: &Node) {
        self.joins += 1;
    }
    fn notify_leave(&mut self, now: Instant, node: &Node) {
        match node.state {
            NodeState::Left => self.left.push(node.name.to_string()),
            _ => self.failed.push((node.name.to_string(), now)),
        }
    }
}

type World = Sim<MemberlistNode<Recorder>>;

fn addr(i: usize) -> SocketAddr {
    sim::node_addr(1, i)
}

fn name(i: usize) -> String {
    format!("node-{i}")
}

fn new_node(world: &mut World, i: usize, profile: Profile) -> MemberlistNode<Recorder> {
    let mut config = Config::new(profile, name(i).as_str(), addr(i));
    config.delegate_protocol = [2, 5, 5];
    let mut delegate = Recorder::default();
    let seed = world.node_seed();
    let memberlist = Memberlist::new(config, vec![], world.now(), seed, &mut delegate);
    MemberlistNode {
        memberlist,
        delegate,
    }
}

/// `n` nodes, each joining through node 0 as it starts, one every 10 ms.
fn cluster(n: usize, seed: u64, profile: Profile) -> World {
    let mut world = World::new(seed, Instant::now());
    for i in 0..n {
        let node = new_node(&mut world, i, profile);
        world.add(addr(i), node);
        if i > 0 {
            world.with_machine(i, |m, now| {
                m.memberlist.join(now, &[addr(0)], &mut m.delegate)
            });
        }
        world.run_for(Duration::from_millis(10));
    }
    world
}

fn alive_count(world: &World, i: usize) -> usize {
    world.machine(i).memberlist.num_alive()
}

fn converged(world: &World, n: usize) -> bool {
    (0..world.len())
        .filter(|&i| world.is_up(i))
        .all(|i| alive_count(world, i) == n)
}

fn false_failures(world: &World) -> usize {
    (0..world.len())
        .map(|i| world.machine(i).delegate.failed.len())
        .sum()
}

#[test]
fn five_nodes_converge_and_see_a_graceful_leave() {
    let s = sim::seed(1);
    let mut world = cluster(5, s, Profile::Lan);
    assert!(
        world.run_until_cond(Duration::from_secs(10), |w| converged(w, 5)),
        "seed {s}: no convergence"
    );
    world.with_machine(4, |m, now| m.memberlist.leave(now, &mut m.delegate));
    world.run_for(Duration::from_secs(2));
    world.kill(4);
    world.run_for(Duration::from_secs(10));
    for i in 0..4 {
        let m = &world.machine(i);
        assert_eq!(
            m.memberlist.node(&name(4).as_str().into()).map(|n| n.state),
            Some(NodeState::Left),
            "seed {s}"
        );
        assert_eq!(m.delegate.left, vec![name(4)], "seed {s}: node {i}");
    }
    assert_eq!(false_failures(&world), 0, "seed {s}");
    // As in memberlist 0.7, the left node is dropped once GossipToTheDeadTime (30 s) has passed.
    world.run_for(Duration::from_secs(40));
    for i in 0..4 {
        let m = &world.machine(i).memberlist;
        assert!(
            m.node(&name(4).as_str().into()).is_none(),
            "seed {s}: node {i} still holds the left node"
        );
        assert_eq!(m.nodes().len(), 4, "seed {s}: node {i}");
    }
}

#[test]
fn five_hundred_nodes_converge_through_one_seed() {
    let s = sim::seed(2);
    let n = 500;
    let mut world = cluster(n, s, Profile::Lan);
    let ok = world.run_until_cond(Duration::from_secs(120), |w| converged(w, n));
    let slowest = (0..n).map(|i| alive_count(&world, i)).min();
    assert!(
        ok,
        "seed {s}: not converged after 120 s, the slowest node sees {slowest:?}"
    );
    println!(
        "500 nodes converged {:?} after the last join",
        world.elapsed() - Duration::from_millis(10 * n as u64)
    );
    assert_eq!(false_failures(&world), 0, "seed {s}");
}

#[test]
fn a_killed_node_is_marked_failed_by_everyone_within_the_bound() {
    let s = sim::seed(3);
    let n = 50;
    let mut world = cluster(n, s, Profile::Lan);
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| converged(w, n)),
        "seed {s}"
    );
    let killed_at = world.now();
    world.kill(7);
    // Probe cycle (n × probe interval at worst) + suspicion max (6 × 4 × log10(n)) + gossip.
    let bound =
        Duration::from_secs(n as u64) + Duration::from_secs(6 * 4 * 2) + Duration::from_secs(5);
    let victim = name(7);
    let ok = world.run_until_cond(bound, |w| {
        (0..n).filter(|&i| i != 7).all(|i| {
            w.machine(i)
                .delegate
                .failed
                .iter()
                .any(|(f, _)| *f == victim)
        })
    });
    assert!(
        ok,
        "seed {s}: not every node marked {victim} failed within {bound:?}"
    );
    let latest = (0..n)
        .filter(|&i| i != 7)
        .filter_map(|i| {
            world
                .machine(i)
                .delegate
                .failed
                .iter()
                .find(|(f, _)| *f == victim)
                .map(|(_, t)| *t - killed_at)
        })
        .max();
    println!("kill -> failed everywhere: {latest:?}");
    let others: usize = (0..n)
        .map(|i| {
            world
                .machine(i)
                .delegate
                .failed
                .iter()
                .filter(|(f, _)| *f != victim)
                .count()
        })
        .sum();
    assert_eq!(others, 0, "seed {s}: healthy nodes were declared failed");
}

#[test]
fn ten_percent_loss_for_ten_minutes_gives_no_false_failures() {
    let s = sim::seed(4);
    let n = 30;
    let mut world = cluster(n, s, Profile::Lan);
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| converged(w, n)),
        "seed {s}"
    );
    world.network.loss = 0.10;
    world.run_for(Duration::from_secs(600));
    println!(
        "datagrams {} lost {}",
        world.stats.datagrams_sent, world.stats.datagrams_lost
    );
    assert_eq!(
        false_failures(&world),
        0,
        "seed {s}: false failures under 10% loss"
    );
    assert!(converged(&world, n), "seed {s}");
}

#[test]
fn a_starved_node_does_not_get_healthy_nodes_declared_failed() {
    let s = sim::seed(5);
    let n = 10;
    let mut world = cluster(n, s, Profile::Lan);
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| converged(w, n)),
        "seed {s}"
    );
    // Node 3 processes nothing for 15 s (like SIGSTOP), then resumes with everything queued.
    world.pause(3, Duration::from_secs(15));
    world.run_for(Duration::from_secs(60));
    let slow = name(3);
    let noticed = (0..n)
        .filter(|&i| {
            world
                .machine(i)
                .delegate
                .failed
                .iter()
                .any(|(f, _)| *f == slow)
        })
        .count();
    assert!(
        noticed > 0,
        "seed {s}: nobody noticed the starved node (the scenario tests nothing)"
    );
    for i in 0..n {
        let wrongly: Vec<_> = world
            .machine(i)
            .delegate
            .failed
            .iter()
            .filter(|(f, _)| *f != slow)
            .collect();
        assert!(
            wrongly.is_empty(),
            "seed {s}: node {i} declared healthy nodes failed: {wrongly:?}"
        );
    }
    assert!(
        world.run_until_cond(Duration::from_secs(60), |w| converged(w, n)),
        "seed {s}: the starved node did not come back"
    );
}

/// The faults bench's heaviest case in the simulator: ten nodes lose 60 % of every datagram,
/// and nine in ten stream exchanges run past their deadline (TCP under that frame loss), for a
/// minute, over twenty seeds. Some false failures are unavoidable at that loss. Three rules
/// keep them down:
/// * a failed probe accuses its target at the incarnation it probed, as Go does, so that a
///   refutation arriving during a long, awareness-stretched probe stands;
/// * an accusation at a newer incarnation than the suspicion held starts a new suspicion
///   instead of confirming the refuted one (Go confirms it);
/// * a node that hears an accusation it has already refuted gossips its alive message again
///   (Go ignores it).
///
/// With Go's rules for the last two, these seeds give 236 false failures; with all three, 47
/// (over 100 seeds, 1,441 against 277, for 4 % more datagrams).
#[test]
fn sixty_percent_loss_keeps_false_failures_down() {
    let n = 10;
    let mut per_seed = Vec::new();
    for s in 40..60 {
        let mut world = cluster(n, s, Profile::Lan);
        assert!(
            world.run_until_cond(Duration::from_secs(30), |w| converged(w, n)),
            "seed {s}"
        );
        world.network.loss = 0.60;
        world.network.stream_loss = 0.90;
        world.run_for(Duration::from_secs(60));
        world.network.loss = 0.0;
        world.network.stream_loss = 0.0;
        world.run_for(Duration::from_secs(30));
        per_seed.push(false_failures(&world));
    }
    let total: usize = per_seed.iter().sum();
    println!("false failures at 60 % loss, seeds 40..60: {total} {per_seed:?}");
    assert!(
        total <= 100,
        "false failures at 60 % loss: {total} {per_seed:?}"
    );
}
