//! Which `serf` binary a benchmark measures as ours.

use std::path::PathBuf;

/// The agent as it ships: `make bench` builds it with `make dist` (statically linked, see the
/// Makefile) and names it in `SERF_BENCH_AGENT`. Without that, a bare `cargo bench` measures
/// the `serf` binary cargo built beside the bench, which links libc dynamically: its RSS then
/// also counts the windows of `libc.so` it maps.
pub fn path() -> PathBuf {
    std::env::var_os("SERF_BENCH_AGENT")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_serf")), PathBuf::from)
}
