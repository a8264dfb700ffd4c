//! The library's version, as constants in serf.h and as a string at run time.

use std::ffi::c_char;

// Literals, because cbindgen copies them into serf.h; the C suite checks them against
// `serf_version()`, which is Cargo.toml's version.
pub const SERF_VERSION_MAJOR: u32 = 0;
pub const SERF_VERSION_MINOR: u32 = 3;
pub const SERF_VERSION_PATCH: u32 = 0;

/// The library version as a NUL-terminated string ("major.minor.patch"). The pointer is static:
/// never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn serf_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
