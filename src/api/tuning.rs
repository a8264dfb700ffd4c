//! The tuning knobs, each declared once in the table below: from its line come the field of
//! [`Tuning`], how it overrides the core's configuration, its C id (`SERF_TUNE_<NAME>` in
//! `serf.h`), and how a raw number is read into it. cbindgen copies only literal constants,
//! so `src/ffi/config.rs` spells the C ids out and a test holds `serf.h` against [`KNOBS`];
//! pyserf and the Go package are in turn checked against `serf.h`.

use std::time::Duration;

use serf_proto::serf::Config;
use thiserror::Error;

/// Largest count a knob (or the event queue's capacity) takes.
pub const MAX_COUNT: u64 = 1 << 20;
/// Longest duration a knob takes, in milliseconds: a year.
pub const MAX_MS: u64 = 365 * 24 * 3600 * 1000;

/// Why a raw knob value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TuningError {
    #[error("unknown tuning knob {0}")]
    UnknownKnob(u32),
    #[error("{0} ms is longer than a year")]
    TooLong(u64),
    #[error("this duration must not be zero")]
    ZeroDuration,
    #[error("count {0} outside [1, {MAX_COUNT}]")]
    Count(u64),
    #[error("{0} peers is too many")]
    TooManyPeers(u64),
}

fn ms(value: u64) -> Result<Duration, TuningError> {
    if value > MAX_MS {
        return Err(TuningError::TooLong(value));
    }
    Ok(Duration::from_millis(value))
}

fn positive_ms(value: u64) -> Result<Duration, TuningError> {
    if value == 0 {
        return Err(TuningError::ZeroDuration);
    }
    ms(value)
}

fn count(value: u64) -> Result<u64, TuningError> {
    if value == 0 || value > MAX_COUNT {
        return Err(TuningError::Count(value));
    }
    Ok(value)
}

fn count_usize(value: u64) -> Result<usize, TuningError> {
    count(value).map(|v| v as usize)
}

fn count_u32(value: u64) -> Result<u32, TuningError> {
    count(value).map(|v| v as u32)
}

/// Zero is meaningful for the backlog (gossip as Go does), so it is not a [`count`].
fn peers(value: u64) -> Result<usize, TuningError> {
    if value >= MAX_COUNT {
        return Err(TuningError::TooManyPeers(value));
    }
    Ok(value as usize)
}

/// One line a knob: docs, C id and name, field and type, how a raw number is read, and the
/// field of the core's `Config` it overrides.
macro_rules! knobs {
    ($( $(#[doc = $doc:literal])* $id:literal $c_name:ident $field:ident: $ty:ty = $read:ident => $($target:ident).+; )*) => {
        /// Individual knobs that override the profile (`None` keeps the profile's value). The
        /// names are those of HashiCorp's `memberlist.Config` and `serf.Config`.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Tuning {
            $( $(#[doc = $doc])* pub $field: Option<$ty>, )*
        }

        impl Tuning {
            pub(crate) fn apply(&self, config: &mut Config) {
                $( if let Some(value) = self.$field { config.$($target).+ = value; } )*
            }

            /// Sets knob `id` (C's `SERF_TUNE_*`) from a raw number: milliseconds for
            /// durations, at most [`MAX_MS`]; counts in `[1, MAX_COUNT]` unless the knob
            /// allows zero.
            pub fn set_raw(&mut self, id: u32, value: u64) -> Result<(), TuningError> {
                match id {
                    $( $id => self.$field = Some($read(value)?), )*
                    other => return Err(TuningError::UnknownKnob(other)),
                }
                Ok(())
            }
        }

        /// Every knob's C name (after `SERF_TUNE_`) and id.
        pub const KNOBS: &[(&str, u32)] = &[ $( (stringify!($c_name), $id), )* ];
    };
}

knobs! {
    1 PROBE_INTERVAL_MS probe_interval: Duration = positive_ms => memberlist.probe_interval;
    2 PROBE_TIMEOUT_MS probe_timeout: Duration = positive_ms => memberlist.probe_timeout;
    3 GOSSIP_INTERVAL_MS gossip_interval: Duration = positive_ms => memberlist.gossip_interval;
    4 GOSSIP_NODES gossip_nodes: usize = count_usize => memberlist.gossip_nodes;
    5 GOSSIP_TO_THE_DEAD_MS gossip_to_the_dead_time: Duration = ms => memberlist.gossip_to_the_dead_time;
    6 INDIRECT_CHECKS indirect_checks: usize = count_usize => memberlist.indirect_checks;
    7 RETRANSMIT_MULT retransmit_mult: usize = count_usize => memberlist.retransmit_mult;
    8 SUSPICION_MULT suspicion_mult: u32 = count_u32 => memberlist.suspicion_mult;
    9 SUSPICION_MAX_TIMEOUT_MULT suspicion_max_timeout_mult: u32 = count_u32 => memberlist.suspicion_max_timeout_mult;
    /// Zero disables periodic push/pull.
    10 PUSH_PULL_INTERVAL_MS push_pull_interval: Duration = ms => memberlist.push_pull_interval;
    11 TCP_TIMEOUT_MS tcp_timeout: Duration = positive_ms => memberlist.tcp_timeout;
    12 REAP_INTERVAL_MS reap_interval: Duration = positive_ms => reap_interval;
    13 RECONNECT_INTERVAL_MS reconnect_interval: Duration = positive_ms => reconnect_interval;
    /// Failed members are reaped after this.
    14 RECONNECT_TIMEOUT_MS reconnect_timeout: Duration = ms => reconnect_timeout;
    /// Left members are reaped after this.
    15 TOMBSTONE_TIMEOUT_MS tombstone_timeout: Duration = ms => tombstone_timeout;
    16 BROADCAST_TIMEOUT_MS broadcast_timeout: Duration = ms => broadcast_timeout;
    17 LEAVE_PROPAGATE_DELAY_MS leave_propagate_delay: Duration = ms => leave_propagate_delay;
    /// libserf's: more peers a round may reach while a backlog fills its packets (0: as Go).
    18 GOSSIP_BACKLOG_NODES gossip_backlog_nodes: usize = peers => memberlist.gossip_backlog_nodes;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serf.h` (written from `src/ffi/config.rs`) holds exactly the knobs of the table.
    #[test]
    fn the_c_header_defines_exactly_the_knobs_of_the_table() {
        let header = include_str!("../../include/serf.h");
        let mut in_header: Vec<(String, u32)> = header
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("#define SERF_TUNE_")?;
                let (name, id) = rest.split_once(' ')?;
                Some((name.to_string(), id.trim().parse().ok()?))
            })
            .collect();
        let mut in_table: Vec<(String, u32)> =
            KNOBS.iter().map(|&(n, id)| (n.to_string(), id)).collect();
        in_header.sort();
        in_table.sort();
        assert_eq!(in_header, in_table);
    }

    #[test]
    fn raw_values_are_read_by_each_knobs_rule() {
        let mut t = Tuning::default();
        t.set_raw(1, 250).unwrap();
        assert_eq!(t.probe_interval, Some(Duration::from_millis(250)));
        assert_eq!(t.set_raw(1, 0), Err(TuningError::ZeroDuration));
        assert_eq!(
            t.set_raw(10, MAX_MS + 1),
            Err(TuningError::TooLong(MAX_MS + 1))
        );
        t.set_raw(10, 0).unwrap();
        assert_eq!(t.push_pull_interval, Some(Duration::ZERO));
        assert_eq!(t.set_raw(4, 0), Err(TuningError::Count(0)));
        t.set_raw(18, 0).unwrap();
        assert_eq!(t.gossip_backlog_nodes, Some(0));
        assert_eq!(t.set_raw(99, 1), Err(TuningError::UnknownKnob(99)));
    }
}
