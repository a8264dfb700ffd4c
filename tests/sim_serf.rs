//! serf membership in the deterministic simulator: intents, statuses, leave, failure, partitions.
//! Every scenario prints its seed on failure; `SIM_SEED=<n>` replays it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serf::memberlist::Profile;
use serf::serf::{Completion, Config, MemberStatus, Serf};
use serf::sim::Sim;

type World = Sim<Serf>;

fn seed(default: u64) -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 2, (i / 250) as u8, (i % 250 + 1) as u8)),
        7946,
    )
}

fn name(i: usize) -> String {
    format!("serf-{i}")
}

fn new_serf(world: &mut World, i: usize) -> Serf {
    let mut config = Config::new(Profile::Lan, &name(i), addr(i));
    let role = if i.is_multiple_of(2) { "web" } else { "db" };
    config.tags.insert("role".to_string(), role.to_string());
    let seed = world.node_seed();
    Serf::new(config, world.now(), seed).expect("valid config")
}

fn cluster(n: usize, seed: u64) -> World {
    let mut world = World::new(seed, Instant::now());
    for i in 0..n {
        let serf = new_serf(&mut world, i);
        world.add(addr(i), serf);
        if i > 0 {
            world.with_machine(i, |s, now| s.join(now, &[addr(0)], false).expect("alive"));
        }
        world.run_for(Duration::from_millis(10));
    }
    world
}

fn status_everywhere(world: &World, of: usize, status: MemberStatus, except: &[usize]) -> bool {
    (0..world.len())
        .filter(|i| !except.contains(i) && world.is_up(*i))
        .all(|i| world.machine(i).member(&name(of)).map(|m| m.status) == Some(status))
}

fn all_alive(world: &World, n: usize) -> bool {
    (0..n).all(|of| status_everywhere(world, of, MemberStatus::Alive, &[]))
}

#[test]
fn members_join_with_tags_and_the_join_completes() {
    let s = seed(11);
    let mut world = cluster(8, s);
    assert!(
        world.run_until_cond(Duration::from_secs(20), |w| all_alive(w, 8)),
        "seed {s}"
    );
    let m = world.machine(3).member(&name(4)).expect("known").clone();
    assert_eq!(
        m.tags.get("role").cloned(),
        Some("web".to_string()),
        "seed {s}"
    );
    assert_eq!(m.delegate, [2, 5, 4]);
    let joined = world.with_machine(5, |serf, _| {
        std::iter::from_fn(|| serf.poll_completion()).find_map(|c| match c {
            Completion::Join { result, .. } => Some(result),
            _ => None,
        })
    });
    assert_eq!(joined, Some(Ok(1)), "seed {s}");
}

#[test]
fn graceful_leave_shows_left_and_kill_shows_failed() {
    let s = seed(12);
    let mut world = cluster(6, s);
    assert!(
        world.run_until_cond(Duration::from_secs(20), |w| all_alive(w, 6)),
        "seed {s}"
    );
    world.with_machine(2, |serf, now| serf.leave(now).expect("leave"));
    let left = world.run_until_cond(Duration::from_secs(10), |w| {
        w.machine(2).status() == serf::serf::SerfStatus::Left
    });
    assert!(left, "seed {s}: leave did not complete");
    world.kill(2);
    assert!(
        world.run_until_cond(Duration::from_secs(10), |w| status_everywhere(
            w,
            2,
            MemberStatus::Left,
            &[2]
        )),
        "seed {s}: not left everywhere"
    );
    world.kill(4);
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| status_everywhere(
            w,
            4,
            MemberStatus::Failed,
            &[2, 4]
        )),
        "seed {s}: not failed everywhere"
    );
    world.run_for(Duration::from_secs(60));
    assert!(
        status_everywhere(&world, 2, MemberStatus::Left, &[2, 4]),
        "seed {s}: left must stay left"
    );
}

#[test]
fn force_leave_turns_a_failed_member_left_and_prune_reaps_it() {
    let s = seed(13);
    let mut world = cluster(5, s);
    assert!(
        world.run_until_cond(Duration::from_secs(20), |w| all_alive(w, 5)),
        "seed {s}"
    );
    world.kill(3);
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| status_everywhere(
            w,
            3,
            MemberStatus::Failed,
            &[3]
        ))
    );
    world.with_machine(0, |serf, now| {
        serf.force_leave(now, &name(3), false).expect("known")
    });
    assert!(
        world.run_until_cond(Duration::from_secs(10), |w| status_everywhere(
            w,
            3,
            MemberStatus::Left,
            &[3]
        )),
        "seed {s}: force-leave did not spread"
    );
    world.with_machine(1, |serf, now| {
        serf.force_leave(now, &name(3), true).expect("known")
    });
    assert!(
        world.run_until_cond(Duration::from_secs(10), |w| (0..5)
            .filter(|&i| i != 3)
            .all(|i| w.machine(i).member(&name(3)).is_none())),
        "seed {s}: prune did not erase the member"
    );
}

#[test]
fn a_sixty_second_partition_heals_into_one_cluster() {
    let s = seed(14);
    let n = 10;
    let mut world = cluster(n, s);
    assert!(
        world.run_until_cond(Duration::from_secs(20), |w| all_alive(w, n)),
        "seed {s}"
    );
    world.partition(|i| (i % 2) as u32);
    world.run_for(Duration::from_secs(60));
    let split = (0..n).all(|i| {
        (0..n).filter(|j| j % 2 != i % 2).all(|j| {
            world.machine(i).member(&name(j)).map(|m| m.status) == Some(MemberStatus::Failed)
        })
    });
    assert!(
        split,
        "seed {s}: each side should see the other failed during the partition"
    );
    world.heal();
    let healed = world.run_until_cond(Duration::from_secs(300), |w| all_alive(w, n));
    assert!(
        healed,
        "seed {s}: not one cluster again 300 s after healing"
    );
    println!("healed after {:?}", world.elapsed());
}

#[test]
fn a_user_event_reaches_every_node_exactly_once() {
    let s = seed(15);
    let n = 20;
    let mut world = cluster(n, s);
    assert!(
        world.run_until_cond(Duration::from_secs(20), |w| all_alive(w, n)),
        "seed {s}"
    );
    for i in 0..n {
        world.with_machine(i, |serf, _| while serf.poll_event().is_some() {});
    }
    world.with_machine(3, |serf, now| {
        serf.user_event(now, "deploy", b"v1", false).expect("event")
    });
    world.run_for(Duration::from_secs(10));
    for i in 0..n {
        let got = world.with_machine(i, |serf, _| {
            std::iter::from_fn(|| serf.poll_event())
                .filter(|e| matches!(e, serf::serf::Event::User(u) if u.name == "deploy"))
                .count()
        });
        assert_eq!(got, 1, "seed {s}: node {i} got the event {got} times");
    }
}
