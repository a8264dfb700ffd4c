//! The `serf` binary: HashiCorp's agent and CLI in one, as a drop-in replacement.

fn main() {
    serf_agent::name_service::use_builtin_sources();
    // Go does not validate arguments as UTF-8; lossy conversion keeps odd bytes from aborting.
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(serf_agent::cli::main(args));
}
