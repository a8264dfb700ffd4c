//! The C ABI (`include/serf.h`). Every exported function is prefixed `serf_` and never unwinds.

use std::ffi::c_char;

pub const SERF_VERSION_MAJOR: u32 = 0;
pub const SERF_VERSION_MINOR: u32 = 1;
pub const SERF_VERSION_PATCH: u32 = 0;

/// The library version as a NUL-terminated string ("major.minor.patch"). The pointer is static:
/// never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn serf_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
