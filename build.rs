//! Generates `include/serf.h` from the `extern "C"` surface in `src/ffi/` with cbindgen, and gives
//! the shared library its versioned soname (`libserf.so.<major>`).
//! The header is committed; `make check-header` fails when it is stale.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libserf.so.{major}");
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    // cbindgen follows the `mod` declarations of src/ffi/mod.rs into every file of the C surface
    // (handing it each file as well would declare everything twice).
    println!("cargo:rerun-if-changed=src/ffi");
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"));
    match builder.generate() {
        Ok(bindings) => {
            bindings.write_to_file(crate_dir.join("include/serf.h"));
        }
        // A syntax error in the crate is reported by rustc itself; do not mask it here.
        Err(cbindgen::Error::ParseSyntaxError { .. }) => {}
        Err(e) => panic!("cbindgen failed to generate include/serf.h: {e}"),
    }
}
