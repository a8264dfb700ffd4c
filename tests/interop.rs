//! Interop with HashiCorp's agents (serf v0.11.0, and v0.9.8 for the older protocol era): mixed
//! clusters in both directions, tags, failure detection, graceful leave, encryption. Each scenario
//! runs against both releases; the test builds and starts the agents itself and fails if it cannot.

#[path = "common/reference.rs"]
mod reference;

use std::time::{Duration, Instant};

use reference::{wait_until, Agent, Release};
use serf::{Options, Serf};
use serf_proto::memberlist::Profile;
use serf_proto::serf::{MemberStatus, Tags};

const KEY_B64: &str = "XXo7nB4PKktsjZ4PGis8TQ==";
const KEY: [u8; 16] = [
    0x5d, 0x7a, 0x3b, 0x9c, 0x1e, 0x0f, 0x2a, 0x4b, 0x6c, 0x8d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4d,
];

fn libserf(name: &str, tags: &[(&str, &str)], keys: Vec<Vec<u8>>) -> Serf {
    let mut options = Options::new(name);
    options.bind = "127.0.0.1:0".parse().expect("addr");
    options.profile = Profile::Lan;
    options.protocol_version = 5;
    options.tags = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Tags>();
    options.keys = keys;
    Serf::create(options).expect("start a libserf node")
}

fn status_in(serf: &Serf, name: &str) -> Option<MemberStatus> {
    serf.members()
        .ok()?
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.status)
}

/// How long after now `lib` and the reference agent `agent` take to mark `name` failed
/// (within a minute each; panics if either does not).
fn failure_seen_by(lib: &Serf, agent: &Agent, name: &str) -> (Duration, Duration) {
    let t = Instant::now();
    let (mut by_lib, mut by_ref) = (None, None);
    wait_until(Duration::from_secs(60), || {
        if by_lib.is_none() && status_in(lib, name) == Some(MemberStatus::Failed) {
            by_lib = Some(t.elapsed());
        }
        if by_ref.is_none() && agent.status_of(name).as_deref() == Some("failed") {
            by_ref = Some(t.elapsed());
        }
        by_lib.is_some() && by_ref.is_some()
    });
    match (by_lib, by_ref) {
        (Some(by_lib), Some(by_ref)) => (by_lib, by_ref),
        _ => panic!("{name} failure not detected: lib {by_lib:?} ref {by_ref:?}"),
    }
}

fn tag_in(serf: &Serf, name: &str, key: &str) -> Option<String> {
    serf.members()
        .ok()?
        .into_iter()
        .find(|m| m.name == name)?
        .tags
        .get(key)
        .cloned()
}

fn ref_tag(agent: &Agent, name: &str, key: &str) -> Option<String> {
    agent.members().into_iter().find(|(n, _, _)| n == name)?.2[key]
        .as_str()
        .map(str::to_string)
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

reference::against_both_releases!(mixed_cluster: mixed_cluster_membership_tags_failure_and_leave, mixed_cluster_membership_tags_failure_and_leave_with_serf_0_9);

fn mixed_cluster(release: Release) {
    let limit = Duration::from_secs(30);
    let a = Agent::start_release(release, "ref-a", &["-tag=role=ref-a"]);
    let mut b = Agent::start_release(release, "ref-b", &["-tag=role=ref-b"]);
    let t = Instant::now();
    b.cli(&["join", &a.gossip.to_string()])
        .expect("ref-b joins ref-a");
    assert!(wait_until(limit, || a.status_of("ref-b").as_deref() == Some("alive")));
    let ref_join = t.elapsed();

    // libserf joins the reference agents.
    let lib = libserf("lib-1", &[("role", "lib")], vec![]);
    let t = Instant::now();
    assert_eq!(lib.join(&[a.gossip.to_string()], false).expect("join"), 1);
    let seen = wait_until(limit, || a.status_of("lib-1").as_deref() == Some("alive"));
    let lib_join = t.elapsed();
    let seen = seen
        && wait_until(limit, || {
            b.status_of("lib-1").as_deref() == Some("alive")
                && status_in(&lib, "ref-b") == Some(MemberStatus::Alive)
        });
    assert!(
        seen,
        "reference agents do not list lib-1 alive: {:?} / {:?}",
        a.members(),
        b.members()
    );
    let lib_join_everywhere = t.elapsed();
    assert_eq!(
        ref_tag(&a, "lib-1", "role").as_deref(),
        Some("lib"),
        "{:?}",
        a.members()
    );
    assert_eq!(tag_in(&lib, "ref-a", "role").as_deref(), Some("ref-a"));
    assert_eq!(tag_in(&lib, "ref-b", "role").as_deref(), Some("ref-b"));

    // A reference agent joins a libserf node.
    let lib2 = libserf("lib-2", &[("role", "lib2")], vec![]);
    b.cli(&["join", &lib2.local_addr().to_string()])
        .expect("ref-b joins lib-2");
    let seen = wait_until(limit, || {
        a.status_of("lib-2").as_deref() == Some("alive")
            && ["ref-a", "ref-b", "lib-1"]
                .iter()
                .all(|n| status_in(&lib2, n) == Some(MemberStatus::Alive))
    });
    assert!(
        seen,
        "lib-2 joined by ref-b did not become one cluster: {:?}",
        lib2.members()
    );

    // Tags propagate both ways.
    a.cli(&["tags", "-set", "role=changed"]).expect("serf tags");
    assert!(
        wait_until(limit, || tag_in(&lib, "ref-a", "role").as_deref()
            == Some("changed")),
        "tag change from Go not seen"
    );
    lib.set_tags([("role".to_string(), "lib-new".to_string())].into())
        .expect("set tags");
    assert!(
        wait_until(limit, || ref_tag(&a, "lib-1", "role").as_deref()
            == Some("lib-new")),
        "tag change from libserf not seen: {:?}",
        a.members()
    );

    // kill -9 of a reference agent: detected by libserf and by the other reference agent.
    b.kill();
    let (lib_saw, ref_saw) = failure_seen_by(&lib, &a, "ref-b");

    // A libserf node dies without leaving: the reference agent marks it failed.
    lib2.shutdown().expect("shutdown");
    let (by_lib, by_ref) = failure_seen_by(&lib, &a, "lib-2");

    // A graceful libserf leave shows as left.
    lib.leave().expect("leave");
    assert!(
        wait_until(limit, || a.status_of("lib-1").as_deref() == Some("left")),
        "lib-1 not left: {:?}",
        a.members()
    );
    lib.shutdown().expect("shutdown");

    println!(
        "join until ref-a lists the joiner: ref-b {} | lib-1 {} (and until ref-b and lib-1 see each other: {})",
        secs(ref_join),
        secs(lib_join),
        secs(lib_join_everywhere)
    );
    println!(
        "kill -9 ref-b -> failed: seen by lib-1 {} | by ref-a {}",
        secs(lib_saw),
        secs(ref_saw)
    );
    println!(
        "crash of lib-2 -> failed: seen by lib-1 {} | by ref-a {}",
        secs(by_lib),
        secs(by_ref)
    );
}

reference::against_both_releases!(encryption_must_match: encryption_must_match_to_form_a_cluster, encryption_must_match_to_form_a_cluster_with_serf_0_9);

fn encryption_must_match(release: Release) {
    let a = Agent::start_release(release, "ref-enc", &[&format!("-encrypt={KEY_B64}")]);
    let good = libserf("lib-enc", &[], vec![KEY.to_vec()]);
    assert_eq!(
        good.join(&[a.gossip.to_string()], false)
            .expect("join with the shared key"),
        1
    );
    assert!(
        wait_until(Duration::from_secs(30), || a
            .status_of("lib-enc")
            .as_deref()
            == Some("alive")
            && status_in(&good, "ref-enc") == Some(MemberStatus::Alive)),
        "encrypted mixed cluster did not form: {:?}",
        a.members()
    );
    let wrong = libserf("lib-wrong", &[], vec![vec![7u8; 16]]);
    assert!(
        wrong.join(&[a.gossip.to_string()], false).is_err(),
        "a join with the wrong key must fail"
    );
    let plain = libserf("lib-plain", &[], vec![]);
    assert!(
        plain.join(&[a.gossip.to_string()], false).is_err(),
        "an unencrypted join must fail"
    );
    std::thread::sleep(Duration::from_secs(2));
    let names: Vec<String> = a.members().into_iter().map(|(n, _, _)| n).collect();
    assert!(
        !names.iter().any(|n| n == "lib-wrong" || n == "lib-plain"),
        "{names:?}"
    );
    good.leave().expect("leave");
    for s in [good, wrong, plain] {
        s.shutdown().expect("shutdown");
    }
}
