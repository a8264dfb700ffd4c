//! serf membership in the deterministic simulator: intents, statuses, leave, failure, partitions.
//! Every scenario prints its seed on failure; `SIM_SEED=<n>` replays it.

#[path = "common/sim.rs"]
mod sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serf_proto::memberlist::Profile;
use serf_proto::serf::{
    snapshot, Completion, Config, KeyOp, MemberStatus, QueryParams, QueryUpdate, Serf,
};
use serf_proto::sim::Sim;
use serf_proto::wire::memberlist::keyring::Keyring;

type World = Sim<Serf>;

fn addr(i: usize) -> SocketAddr {
    sim::node_addr(2, i)
}

fn name(i: usize) -> String {
    format!("serf-{i}")
}

fn new_serf(world: &mut World, i: usize) -> Serf {
    new_serf_with(world, i, |_| {})
}

/// Node `i` (LAN profile, a `role` tag), its config adjusted by `adjust`.
fn new_serf_with(world: &mut World, i: usize, adjust: impl FnOnce(&mut Config)) -> Serf {
    let mut config = Config::new(Profile::Lan, &name(i), addr(i));
    let role = if i.is_multiple_of(2) { "web" } else { "db" };
    config.tags.insert("role".to_string(), role.to_string());
    adjust(&mut config);
    let seed = world.node_seed();
    Serf::new(config, world.now(), seed).expect("valid config")
}

fn cluster(n: usize, seed: u64) -> World {
    cluster_of(n, seed, new_serf)
}

/// `n` nodes made by `make`, each joining node 0.
fn cluster_of(n: usize, seed: u64, make: impl Fn(&mut World, usize) -> Serf) -> World {
    let mut world = World::new(seed, Instant::now());
    for i in 0..n {
        let serf = make(&mut world, i);
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
    let s = sim::seed(11);
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
    let s = sim::seed(12);
    let mut world = cluster(6, s);
    assert!(
        world.run_until_cond(Duration::from_secs(20), |w| all_alive(w, 6)),
        "seed {s}"
    );
    world.with_machine(2, |serf, now| serf.leave(now).expect("leave"));
    let left = world.run_until_cond(Duration::from_secs(10), |w| {
        w.machine(2).status() == serf_proto::serf::SerfStatus::Left
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

/// Short reap timeouts: Left members go after 20 s, Failed ones after 120 s; reaping and
/// reconnecting run every 2 s.
fn serf_with_short_timeouts(world: &mut World, i: usize) -> Serf {
    new_serf_with(world, i, |config| {
        config.reap_interval = Duration::from_secs(2);
        config.reconnect_interval = Duration::from_secs(2);
        config.tombstone_timeout = Duration::from_secs(20);
        config.reconnect_timeout = Duration::from_secs(120);
    })
}

fn known_nowhere(world: &World, of: usize) -> bool {
    (0..world.len())
        .filter(|&i| i != of && world.is_up(i))
        .all(|i| world.machine(i).member(&name(of)).is_none())
}

#[test]
fn departed_members_are_reaped_on_time_and_a_returning_one_is_reconnected() {
    let s = sim::seed(19);
    let n = 6;
    let mut world = cluster_of(n, s, serf_with_short_timeouts);
    assert!(
        world.run_until_cond(Duration::from_secs(20), |w| all_alive(w, n)),
        "seed {s}"
    );
    // 1 leaves, 2 and 3 crash.
    world.with_machine(1, |serf, now| serf.leave(now).expect("leave"));
    world.run_until_cond(Duration::from_secs(10), |w| {
        w.machine(1).status() == serf_proto::serf::SerfStatus::Left
    });
    world.kill(1);
    world.kill(2);
    world.kill(3);
    let gone = [1, 2, 3];
    let sees_3_failed = |w: &World, i: usize| {
        w.machine(i).member(&name(3)).map(|m| m.status) == Some(MemberStatus::Failed)
    };
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| [0, 4, 5]
            .iter()
            .any(|&i| sees_3_failed(w, i))),
        "seed {s}: 3 not failed"
    );
    // No observer's failure time for 3 is earlier than this.
    let failed_at = world.elapsed();
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| {
            status_everywhere(w, 1, MemberStatus::Left, &gone)
                && status_everywhere(w, 2, MemberStatus::Failed, &gone)
                && status_everywhere(w, 3, MemberStatus::Failed, &gone)
        }),
        "seed {s}: departures not seen"
    );
    // 2 comes back without joining anyone: the others' reconnect attempts find it.
    let serf = serf_with_short_timeouts(&mut world, 2);
    world.restart(2, serf);
    assert!(
        world.run_until_cond(Duration::from_secs(40), |w| status_everywhere(
            w,
            2,
            MemberStatus::Alive,
            &[1, 3]
        )),
        "seed {s}: the restarted node was not reconnected"
    );
    // The left one is reaped first (tombstone), the failed one after the reconnect timeout.
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| known_nowhere(w, 1)),
        "seed {s}: left member not reaped"
    );
    let failed_for = world.elapsed() - failed_at;
    assert!(
        failed_for < Duration::from_secs(110),
        "seed {s}: the test's own timing: {failed_for:?}"
    );
    assert!(
        [0, 4, 5].iter().all(|&i| sees_3_failed(&world, i)),
        "seed {s}: failed member reaped before its timeout"
    );
    // Watched by the nodes that saw it fail (the restarted one learned of it later).
    assert!(
        world.run_until_cond(Duration::from_secs(120), |w| [0, 4, 5]
            .iter()
            .all(|&i| w.machine(i).member(&name(3)).is_none())),
        "seed {s}: failed member not reaped"
    );
    let reaped_after = world.elapsed() - failed_at;
    assert!(
        reaped_after >= Duration::from_secs(120),
        "seed {s}: failed member reaped after {reaped_after:?}"
    );
    assert!(
        status_everywhere(&world, 2, MemberStatus::Alive, &[1, 3]),
        "seed {s}: the reconnected node was lost"
    );
}

#[test]
fn force_leave_turns_a_failed_member_left_and_prune_reaps_it() {
    let s = sim::seed(13);
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

/// A node on the local profile, as `serf agent -profile=local` runs: in a cluster of fewer than
/// ten, Go's transmit limit gives each broadcast two copies.
fn local_serf(world: &mut World, i: usize) -> Serf {
    let config = Config::new(Profile::Local, &name(i), addr(i));
    let seed = world.node_seed();
    Serf::new(config, world.now(), seed).expect("valid config")
}

/// Who lists node `of` how, for a failure message.
fn statuses_of(world: &World, of: usize) -> Vec<(usize, Option<MemberStatus>)> {
    (0..world.len())
        .filter(|&i| i != of && world.is_up(i))
        .map(|i| (i, world.machine(i).member(&name(of)).map(|m| m.status)))
        .collect()
}

/// Six local-profile nodes; one is killed, and once every other lists it failed, another
/// force-leaves it (then, with `prune`, force-leaves it with prune right away). Every live node
/// must list it left (or, after the prune, not at all) within 10 s, and still do 5 s later.
fn force_leave_of_a_crashed_node(seed: u64, prune: bool) -> Result<(), String> {
    let n = 6;
    let mut world = cluster_of(n, seed, local_serf);
    if !world.run_until_cond(Duration::from_secs(30), |w| all_alive(w, n)) {
        return Err("the cluster did not form".into());
    }
    let victim = 1 + seed as usize % (n - 1);
    let from = (victim + 1 + seed as usize % (n - 2)) % n;
    world.kill(victim);
    let failed = world.run_until_cond(Duration::from_secs(60), |w| {
        status_everywhere(w, victim, MemberStatus::Failed, &[victim])
    });
    if !failed {
        return Err(format!(
            "not failed everywhere: {:?}",
            statuses_of(&world, victim)
        ));
    }
    world.with_machine(from, |serf, now| {
        serf.force_leave(now, &name(victim), false).expect("known");
        if prune {
            serf.force_leave(now, &name(victim), true).expect("known");
        }
    });
    let done = |w: &World| {
        if prune {
            known_nowhere(w, victim)
        } else {
            status_everywhere(w, victim, MemberStatus::Left, &[victim])
        }
    };
    let what = if prune {
        "force-leave -prune"
    } else {
        "force-leave"
    };
    if !world.run_until_cond(Duration::from_secs(10), done) {
        return Err(format!(
            "{what} of {victim} from {from}, 10 s later: {:?}",
            statuses_of(&world, victim)
        ));
    }
    world.run_for(Duration::from_secs(5));
    if !done(&world) {
        return Err(format!(
            "{what} of {victim} undone: {:?}",
            statuses_of(&world, victim)
        ));
    }
    Ok(())
}

/// Runs the scenario on `runs` seeds from `first` and fails with every seed that went wrong.
fn force_leave_on_seeds(first: u64, runs: u64, prune: bool) {
    let failures: Vec<String> = (first..first + runs)
        .filter_map(|s| {
            force_leave_of_a_crashed_node(s, prune)
                .err()
                .map(|e| format!("seed {s}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {runs} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn force_leave_of_a_crashed_node_reaches_every_live_node() {
    force_leave_on_seeds(sim::seed(300), 16, false);
}

#[test]
fn force_leave_then_prune_of_a_crashed_node_erases_it_everywhere() {
    force_leave_on_seeds(sim::seed(400), 16, true);
}

#[test]
fn a_sixty_second_partition_heals_into_one_cluster() {
    let s = sim::seed(14);
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
    let s = sim::seed(15);
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
                .filter(|e| matches!(e, serf_proto::serf::Event::User(u) if u.name == "deploy"))
                .count()
        });
        assert_eq!(got, 1, "seed {s}: node {i} got the event {got} times");
    }
}

/// Answers every query named `echo` on every node, then returns the updates `asker` collected.
fn answer_echo_queries(world: &mut World) {
    for i in 0..world.len() {
        if !world.is_up(i) {
            continue;
        }
        world.with_machine(i, |serf, now| {
            let queries: Vec<_> = std::iter::from_fn(|| serf.poll_event())
                .filter_map(|e| match e {
                    serf_proto::serf::Event::Query(q) if q.name == "echo" => Some(q),
                    _ => None,
                })
                .collect();
            for q in queries {
                serf.respond(now, q.ltime, q.id, &q.payload)
                    .expect("respond");
            }
        });
    }
}

fn query_updates(world: &mut World, i: usize) -> Vec<QueryUpdate> {
    world.with_machine(i, |serf, _| {
        std::iter::from_fn(|| serf.poll_completion())
            .filter_map(|c| match c {
                Completion::Query { update, .. } => Some(update),
                _ => None,
            })
            .collect()
    })
}

#[test]
fn thousand_nodes_event_once_and_tag_filtered_query() {
    let s = sim::seed(16);
    let n: usize = std::env::var("SIM_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut world = cluster(n, s);
    world.check_interval = Duration::from_secs(1);
    let alive_everywhere = |w: &World| (0..n).all(|i| w.machine(i).memberlist().num_alive() == n);
    assert!(
        world.run_until_cond(Duration::from_secs(120), alive_everywhere),
        "seed {s}: no convergence"
    );
    for i in 0..n {
        world.with_machine(i, |serf, _| while serf.poll_event().is_some() {});
    }
    let sent = world.now();
    world.with_machine(7, |serf, now| {
        serf.user_event(now, "deploy", b"v2", false).expect("event")
    });
    // The join intents of a thousand new members still fill the gossip queues and go first (as
    // in Go), so the event waits behind them: collect deliveries second by second.
    let mut got = vec![0usize; n];
    for _ in 0..180 {
        world.run_for(Duration::from_secs(1));
        for (i, count) in got.iter_mut().enumerate() {
            *count += world.with_machine(i, |serf, _| {
                std::iter::from_fn(|| serf.poll_event())
                    .filter(|e| matches!(e, serf_proto::serf::Event::User(u) if u.name == "deploy"))
                    .count()
            });
        }
        if got.iter().all(|c| *c > 0) {
            break;
        }
    }
    world.run_for(Duration::from_secs(20));
    for (i, count) in got.iter_mut().enumerate() {
        *count += world.with_machine(i, |serf, _| {
            std::iter::from_fn(|| serf.poll_event())
                .filter(|e| matches!(e, serf_proto::serf::Event::User(u) if u.name == "deploy"))
                .count()
        });
    }
    println!(
        "{n} nodes: the event reached every node within {:?}",
        world.now() - sent - Duration::from_secs(20)
    );
    for (i, count) in got.iter().enumerate() {
        assert_eq!(*count, 1, "seed {s}: node {i} got the event {count} times");
    }
    // Only role=web nodes (the even ones) answer a query filtered on that tag.
    let params = QueryParams {
        filter_tags: [("role".to_string(), "^web$".to_string())].into(),
        timeout: Some(Duration::from_secs(15)),
        ..Default::default()
    };
    world.with_machine(1, |serf, now| {
        serf.query(now, "echo", b"hi", &params).expect("query")
    });
    let mut responders = std::collections::BTreeSet::new();
    let mut done = false;
    for _ in 0..200 {
        world.run_for(Duration::from_millis(100));
        answer_echo_queries(&mut world);
        for u in query_updates(&mut world, 1) {
            match u {
                QueryUpdate::Response { from, .. } => {
                    assert!(responders.insert(from), "seed {s}: duplicate response")
                }
                QueryUpdate::Done => done = true,
                QueryUpdate::Ack { .. } => {}
            }
        }
        if done {
            break;
        }
    }
    let expected: std::collections::BTreeSet<String> =
        (0..n).filter(|i| i % 2 == 0).map(name).collect();
    assert!(done, "seed {s}: the query never finished");
    assert_eq!(
        responders, expected,
        "seed {s}: responders differ from the role=web nodes"
    );
}

#[test]
fn key_rotation_loses_no_member() {
    let s = sim::seed(17);
    let n = 30;
    let key1 = vec![1u8; 16];
    let key2 = vec![2u8; 32];
    let mut world = World::new(s, Instant::now());
    for i in 0..n {
        let mut config = Config::new(Profile::Lan, &name(i), addr(i));
        config.memberlist.wire.keyring = Some(Keyring::new(&key1, &[] as &[&[u8]]).expect("key"));
        let seed = world.node_seed();
        world.add(
            addr(i),
            Serf::new(config, world.now(), seed).expect("config"),
        );
        if i > 0 {
            world.with_machine(i, |s, now| s.join(now, &[addr(0)], false).expect("alive"));
        }
        world.run_for(Duration::from_millis(10));
    }
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| all_alive(w, n)),
        "seed {s}"
    );
    for (op, key) in [
        (KeyOp::Install, &key2),
        (KeyOp::Use, &key2),
        (KeyOp::Remove, &key1),
    ] {
        world.with_machine(5, |serf, now| {
            serf.key_operation(now, op, key).expect("start")
        });
        let mut result = None;
        for _ in 0..100 {
            world.run_for(Duration::from_millis(100));
            result = world.with_machine(5, |serf, _| {
                std::iter::from_fn(|| serf.poll_completion()).find_map(|c| match c {
                    Completion::Keys { result, .. } => Some(result),
                    _ => None,
                })
            });
            if result.is_some() {
                break;
            }
        }
        let result = result.unwrap_or_else(|| panic!("seed {s}: {op:?} never finished"));
        assert_eq!(
            (result.num_resp, result.num_err, result.error()),
            (n, 0, None),
            "seed {s}: {op:?}: {result:?}"
        );
    }
    world.run_for(Duration::from_secs(30));
    assert!(
        all_alive(&world, n),
        "seed {s}: members lost during rotation"
    );
    for i in 0..n {
        let ring = world
            .machine(i)
            .memberlist()
            .wire_options()
            .keyring
            .as_ref()
            .expect("keyring");
        assert_eq!(
            ring.keys().collect::<Vec<_>>(),
            vec![key2.as_slice()],
            "seed {s}: node {i}"
        );
    }
}

#[test]
fn a_restarted_node_rejoins_from_its_snapshot_without_replaying_events() {
    let s = sim::seed(18);
    let n = 6;
    let mut world = World::new(s, Instant::now());
    let snapshot_config = |i: usize, replay: snapshot::Replay| {
        let mut config = Config::new(Profile::Lan, &name(i), addr(i));
        config.snapshot = Some(replay);
        config
    };
    for i in 0..n {
        let seed = world.node_seed();
        world.add(
            addr(i),
            Serf::new(
                snapshot_config(i, snapshot::Replay::default()),
                world.now(),
                seed,
            )
            .expect("config"),
        );
        if i > 0 {
            world.with_machine(i, |s, now| s.join(now, &[addr(0)], false).expect("alive"));
        }
        world.run_for(Duration::from_millis(10));
    }
    assert!(
        world.run_until_cond(Duration::from_secs(20), |w| all_alive(w, n)),
        "seed {s}"
    );
    world.with_machine(2, |serf, now| {
        serf.user_event(now, "before-restart", b"", false)
            .expect("event")
    });
    world.run_for(Duration::from_secs(5));
    // Node 4's snapshot file, as the runtime would have written it.
    let text: String = world.with_machine(4, |serf, _| {
        std::iter::from_fn(|| serf.poll_snapshot_record())
            .map(|r| r.to_line() + "\n")
            .collect()
    });
    world.kill(4);
    world.run_for(Duration::from_secs(30));
    assert!(
        status_everywhere(&world, 4, MemberStatus::Failed, &[4]),
        "seed {s}"
    );
    let replay = snapshot::parse(&text, false);
    assert!(
        replay.alive.len() >= n - 1,
        "seed {s}: snapshot lists {:?}",
        replay.alive
    );
    let seed = world.node_seed();
    world.restart(
        4,
        Serf::new(snapshot_config(4, replay), world.now(), seed).expect("config"),
    );
    // No explicit join: the snapshot's members are rejoined.
    assert!(
        world.run_until_cond(Duration::from_secs(30), |w| all_alive(w, n)),
        "seed {s}: no rejoin from the snapshot"
    );
    world.run_for(Duration::from_secs(5));
    let replayed = world.with_machine(4, |serf, _| {
        std::iter::from_fn(|| serf.poll_event())
            .filter(|e| matches!(e, serf_proto::serf::Event::User(_)))
            .count()
    });
    assert_eq!(
        replayed, 0,
        "seed {s}: old user events were delivered again after the restart"
    );
}

#[test]
fn two_nodes_with_one_name_end_with_one_shut_down() {
    let s = sim::seed(19);
    let n = 7;
    let mut world = cluster(n, s);
    assert!(
        world.run_until_cond(Duration::from_secs(20), |w| all_alive(w, n)),
        "seed {s}"
    );
    // A second node named like node 3, at another address, joins.
    let impostor = n;
    let config = Config::new(Profile::Lan, &name(3), addr(impostor));
    let seed = world.node_seed();
    world.add(
        addr(impostor),
        Serf::new(config, world.now(), seed).expect("config"),
    );
    world.with_machine(impostor, |s, now| {
        s.join(now, &[addr(0)], false).expect("alive")
    });
    world.run_for(Duration::from_secs(30));
    let shut =
        |w: &World, i: usize| w.machine(i).status() == serf_proto::serf::SerfStatus::Shutdown;
    assert!(
        shut(&world, impostor) && !shut(&world, 3),
        "seed {s}: the newcomer should lose the vote"
    );
    let reason = world.with_machine(impostor, |serf, _| {
        std::iter::from_fn(|| serf.poll_event()).find_map(|e| match e {
            serf_proto::serf::Event::Shutdown { reason } => Some(reason),
            _ => None,
        })
    });
    assert!(
        reason.is_some_and(|r| r.contains("name conflict")),
        "seed {s}"
    );
}

#[test]
fn vivaldi_estimates_approach_the_simulated_round_trip() {
    let s = sim::seed(20);
    let n = 10;
    let mut world = cluster(n, s);
    world.network.latency = Duration::from_millis(5);
    world.network.jitter = Duration::from_micros(200);
    world.run_for(Duration::from_secs(120));
    let mut errors = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (
                world.machine(i).cached_coordinate(&name(i)),
                world.machine(i).cached_coordinate(&name(j)),
            );
            if let (Some(a), Some(b), true) = (a, b, i != j) {
                let est = serf_proto::serf::distance(&a, &b)
                    .expect("same dimensions")
                    .as_secs_f64();
                errors.push((est - 0.0102).abs() / 0.0102);
            }
        }
    }
    errors.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let median = errors[errors.len() / 2];
    println!(
        "vivaldi: {} estimates, median relative error {:.3}",
        errors.len(),
        median
    );
    assert!(errors.len() > n, "seed {s}: too few coordinates learned");
    assert!(
        median < 0.25,
        "seed {s}: median relative RTT error {median:.3}"
    );
}

/// The load bench's traffic in the simulator: 50 nodes, 200 user events a second for 20 s, each
/// from the next node in turn. Counts the (node, event) deliveries that never happened: gossip's
/// residue, which the load bench sees on real sockets too.
#[test]
fn user_events_under_load_reach_every_node() {
    let s = sim::seed(21);
    let (n, rate, seconds) = (50usize, 200usize, 20usize);
    let total = rate * seconds;
    let mut world = cluster(n, s);
    assert!(
        world.run_until_cond(Duration::from_secs(60), |w| all_alive(w, n)),
        "seed {s}"
    );
    let mut got = vec![vec![0u32; total]; n];
    let drain = |world: &mut World, got: &mut Vec<Vec<u32>>| {
        for (i, seen) in got.iter_mut().enumerate() {
            world.with_machine(i, |serf, _| {
                while let Some(e) = serf.poll_event() {
                    if let serf_proto::serf::Event::User(u) = e {
                        let seq: usize = std::str::from_utf8(&u.payload).unwrap().parse().unwrap();
                        seen[seq] += 1;
                    }
                }
            });
        }
    };
    drain(&mut world, &mut got);
    for seq in 0..total {
        world.with_machine(seq % n, |serf, now| {
            serf.user_event(now, "load", seq.to_string().as_bytes(), false)
                .expect("event")
        });
        world.run_for(Duration::from_secs(1) / rate as u32);
        if seq % rate == 0 {
            drain(&mut world, &mut got);
        }
    }
    world.run_for(Duration::from_secs(30));
    drain(&mut world, &mut got);
    let missing: usize = got
        .iter()
        .map(|g| g.iter().filter(|&&c| c == 0).count())
        .sum();
    let twice: usize = got
        .iter()
        .map(|g| g.iter().filter(|&&c| c > 1).count())
        .sum();
    println!(
        "seed {s}: {missing} of {} deliveries missing, {twice} twice",
        total * n
    );
    assert_eq!(twice, 0, "seed {s}");
    // Transmits spent blindly leave about 1 pair in 30,000 unreached here (44 in seven seeds of
    // 200,000); a queue that learns which peers have a message, about 1 in 80,000 (51 in 20
    // seeds); one that also goes on until twice the limit of peers hold it, 1 in 4 million.
    assert!(
        missing <= total * n / 200_000,
        "seed {s}: {missing} deliveries missing"
    );
}
