//! Generates `include/serf.h` from the `extern "C"` surface in `src/ffi/` with cbindgen, and gives
//! the shared library its versioned soname (`libserf.so.<major>`).
//! The header is committed; `make check-header` fails when it is stale.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    let soname = format!("libserf.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    link_soname(&soname);
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

/// A program linked against `target/<profile>/libserf.so` asks the loader for the soname, so the
/// plain `cargo build` must leave `libserf.so.<major>` beside the library, not only `make`. The
/// profile directory is three levels above OUT_DIR (`<profile>/build/serf-<hash>/out`); the link
/// dangles until rustc writes `libserf.so` there, moments after this script.
fn link_soname(soname: &str) {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        return;
    };
    let link = profile_dir.join(soname);
    if std::fs::read_link(&link).is_ok_and(|target| target == Path::new("libserf.so")) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("libserf.so", &link)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", link.display()));
}
