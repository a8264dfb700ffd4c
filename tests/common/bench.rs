//! What every whole-program benchmark asks first: did `cargo bench` ask for it?

/// True when this run is `cargo bench` (which passes `--bench`) and no filter argument leaves
/// `name` out. `cargo test --all-targets` (make test) builds and starts bench targets too: they
/// say how to run them and stop.
pub fn selected(name: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("{name}: a benchmark; run it with `cargo bench --bench {name}`");
        return false;
    }
    !args
        .iter()
        .any(|a| !a.starts_with('-') && !name.contains(a.as_str()))
}
