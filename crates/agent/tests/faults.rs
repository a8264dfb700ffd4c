//! Faults on real sockets against our `serf` agent: ten agents per scenario, each scenario in a
//! network namespace of its own with nftables rules for drops and partitions (see
//! crates/agent/tests/common/faults.rs). They need root, iproute2 and nftables, so a plain `cargo test` leaves
//! them out (ignored); `make faults` (part of `make test`) runs them where the system allows and
//! otherwise says which layer it skipped. `make bench` runs the same scenarios against
//! HashiCorp's agent and reports both side by side.

#[path = "../../../tests/common/reference.rs"]
mod reference;

#[path = "common/faults.rs"]
mod faults;

use std::path::Path;
use std::time::Duration;

use faults::{in_netns, AGENTS};

const PHASE: Duration = Duration::from_secs(60);

fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_serf"))
}

#[test]
#[ignore = "needs root, iproute2 and nftables: run by make faults"]
fn ten_then_thirty_percent_drop_raises_no_false_failure() {
    let outcome = in_netns(|| faults::random_drop(ours(), "drop", &[(10, PHASE), (30, PHASE)]));
    eprintln!("{outcome:?}");
    for (percent, failures) in &outcome.phases {
        assert!(
            failures.is_empty(),
            "{percent}% drop: false member-failed events (observer, member): {failures:?}"
        );
    }
    assert!(
        outcome.healed_after.is_some(),
        "not all alive after the drop: {outcome:?}"
    );
}

#[test]
#[ignore = "needs root, iproute2 and nftables: run by make faults"]
fn sixty_percent_drop_false_failures_are_all_refuted() {
    let outcome = in_netns(|| faults::random_drop(ours(), "heavy", &[(60, PHASE)]));
    eprintln!("{outcome:?}");
    assert!(
        outcome.healed_after.is_some(),
        "some failed member was never refuted after the drop ended: {outcome:?}"
    );
}

#[test]
#[ignore = "needs root, iproute2 and nftables: run by make faults"]
fn a_healed_partition_becomes_one_cluster_again() {
    let outcome = in_netns(|| faults::partition(ours(), "split", PHASE));
    eprintln!("{outcome:?}");
    assert!(
        outcome.cross_failed > 0,
        "the partition had no effect: {outcome:?}"
    );
    assert_eq!(
        outcome.same_side_not_alive, 0,
        "members on the same side were lost: {outcome:?}"
    );
    assert!(
        outcome.healed_after.is_some(),
        "not one cluster with all {AGENTS} alive after the heal: {outcome:?}"
    );
}

#[test]
#[ignore = "needs root, iproute2 and nftables: run by make faults"]
fn a_stopped_agent_is_failed_then_refutes_and_no_healthy_one_fails() {
    let outcome = in_netns(|| faults::stall(ours(), "stall", Duration::from_secs(15)));
    eprintln!("{outcome:?}");
    assert!(
        outcome.observers_marking_failed > 0,
        "nobody marked the stopped agent failed: {outcome:?}"
    );
    assert!(
        outcome.back_after.is_some(),
        "it never came back: {outcome:?}"
    );
    assert!(
        outcome.healthy_failed.is_empty(),
        "healthy agents were declared failed: {outcome:?}"
    );
}

#[test]
#[ignore = "needs root, iproute2 and nftables: run by make faults"]
fn a_restart_from_the_snapshot_rejoins_and_delivers_no_event_twice() {
    let outcome = in_netns(|| faults::crash_restart(ours(), "crash"));
    eprintln!("{outcome:?}");
    assert!(outcome.rejoined_after.is_some(), "no rejoin: {outcome:?}");
    assert!(
        outcome.saw_new_event,
        "the event after the restart never arrived"
    );
    assert!(
        outcome.duplicates.is_empty(),
        "user events delivered twice: {outcome:?}"
    );
}
