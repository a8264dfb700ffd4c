//! The `serf` command line: subcommand dispatch as HashiCorp's binary does it (with
//! `mitchellh/cli`), and the client subcommands, each printing what HashiCorp's prints. The
//! help texts and synopses are the exception: they are our own, keeping only HashiCorp's usage
//! lines and flags (names, defaults, meaning).
//!
//! HashiCorp's commands write everything (errors included) to stdout, except flag-parsing errors
//! and the help shown by the dispatcher, which go to stderr. Exit status is 0 or 1; an unknown
//! subcommand gives 127.

/// The help lines for `-rpc-addr` and `-rpc-auth`, which every client command takes (see
/// `rpc.rs`). A macro, so that each command's help can be one `concat!`ed constant.
macro_rules! rpc_options {
    () => {
        "
Agent connection:
  -rpc-addr=<host:port>
      The agent's RPC address (default: $SERF_RPC_ADDR if set, else
      127.0.0.1:7373).
  -rpc-auth=<token>
      Token for an agent that requires RPC auth (default: $SERF_RPC_AUTH
      if set, else none)."
    };
}

mod columnize;
mod event;
mod force_leave;
mod gofmt;
mod info;
mod interrupt;
mod join;
pub(crate) mod json;
mod keygen;
mod keys;
mod leave;
pub(crate) mod members;
mod monitor;
mod query;
mod reachability;
mod rpc;
mod rtt;
mod tags;
mod version;

pub use version::VERSION;

use crate::command as agent;

/// One subcommand: what the command list and `-h` show, and what runs it.
struct Subcommand {
    name: &'static str,
    synopsis: &'static str,
    help: &'static str,
    run: fn(&[String]) -> i32,
}

/// Sorted by name, as the command list prints them.
const SUBCOMMANDS: [Subcommand; 15] = [
    Subcommand {
        name: "agent",
        synopsis: "Start an agent (a cluster member)",
        help: agent::USAGE,
        run: agent::run,
    },
    Subcommand {
        name: "event",
        synopsis: event::SYNOPSIS,
        help: event::HELP,
        run: event::run,
    },
    Subcommand {
        name: "force-leave",
        synopsis: force_leave::SYNOPSIS,
        help: force_leave::HELP,
        run: force_leave::run,
    },
    Subcommand {
        name: "info",
        synopsis: info::SYNOPSIS,
        help: info::HELP,
        run: info::run,
    },
    Subcommand {
        name: "join",
        synopsis: join::SYNOPSIS,
        help: join::HELP,
        run: join::run,
    },
    Subcommand {
        name: "keygen",
        synopsis: keygen::SYNOPSIS,
        help: keygen::HELP,
        run: keygen::run,
    },
    Subcommand {
        name: "keys",
        synopsis: keys::SYNOPSIS,
        help: keys::HELP,
        run: keys::run,
    },
    Subcommand {
        name: "leave",
        synopsis: leave::SYNOPSIS,
        help: leave::HELP,
        run: leave::run,
    },
    Subcommand {
        name: "members",
        synopsis: members::SYNOPSIS,
        help: members::HELP,
        run: members::run,
    },
    Subcommand {
        name: "monitor",
        synopsis: monitor::SYNOPSIS,
        help: monitor::HELP,
        run: monitor::run,
    },
    Subcommand {
        name: "query",
        synopsis: query::SYNOPSIS,
        help: query::HELP,
        run: query::run,
    },
    Subcommand {
        name: "reachability",
        synopsis: reachability::SYNOPSIS,
        help: reachability::HELP,
        run: reachability::run,
    },
    Subcommand {
        name: "rtt",
        synopsis: rtt::SYNOPSIS,
        help: rtt::HELP,
        run: rtt::run,
    },
    Subcommand {
        name: "tags",
        synopsis: tags::SYNOPSIS,
        help: tags::HELP,
        run: tags::run,
    },
    Subcommand {
        name: "version",
        synopsis: version::SYNOPSIS,
        help: version::HELP,
        run: version::run,
    },
];

/// What the dispatcher made of the arguments (`mitchellh/cli`'s `processArgs`).
#[derive(Debug, PartialEq)]
struct Invocation<'a> {
    /// Index of the subcommand in the arguments.
    subcommand: Option<usize>,
    /// `-h`, `-help` or `--help` anywhere before a `--`, even among the subcommand's arguments.
    help: bool,
    /// Dash arguments before the subcommand (other than the version flags).
    flags_before: bool,
    args: &'a [String],
}

fn invocation(args: &[String]) -> Invocation<'_> {
    let mut inv = Invocation {
        subcommand: None,
        help: false,
        flags_before: false,
        args,
    };
    for (i, arg) in args.iter().enumerate() {
        match arg.as_str() {
            "--" => break,
            "-h" | "-help" | "--help" => inv.help = true,
            _ if inv.subcommand.is_some() => {}
            "-v" | "-version" | "--version" => {}
            a if a.starts_with('-') => inv.flags_before = true,
            "" => {}
            _ => inv.subcommand = Some(i),
        }
    }
    inv
}

/// The list `serf -h` (or a bad subcommand) prints, ending with a blank line.
fn command_list() -> String {
    let width = SUBCOMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out =
        String::from("Usage: serf [--version] [--help] <command> [<args>]\n\nCommands:\n");
    for c in &SUBCOMMANDS {
        out.push_str(&format!("    {:width$}    {}\n", c.name, c.synopsis));
    }
    out
}

/// Runs the `serf` binary with its arguments (program name excluded); returns the exit status.
pub fn main(mut args: Vec<String>) -> i32 {
    // HashiCorp's main turns a -v or --version anywhere into the version command.
    if args.iter().any(|a| a == "-v" || a == "--version") {
        args.insert(0, "version".to_string());
    }
    let inv = invocation(&args);
    let name = inv.subcommand.map(|i| inv.args[i].as_str());
    if inv.help && name.is_none() {
        eprintln!("{}", command_list());
        return 0;
    }
    let Some(command) = SUBCOMMANDS.iter().find(|c| Some(c.name) == name) else {
        eprintln!("{}", command_list());
        return 127;
    };
    if inv.help {
        eprintln!("{}", command.help.trim());
        return 0;
    }
    if inv.flags_before {
        eprintln!(
            "Invalid flags before the subcommand. If these flags are for\n\
             the subcommand, please put them after the subcommand.\n\n{}",
            command.help.trim()
        );
        return 1;
    }
    if command.name != "agent" {
        restore_sigpipe();
    }
    let rest = &args[inv.subcommand.map_or(0, |i| i + 1)..];
    (command.run)(rest)
}

/// A client command whose output pipe closes dies of SIGPIPE, as Go programs do (Rust ignores
/// the signal, which would turn `serf monitor | head` into a panic). The agent keeps ignoring it:
/// its event-handler pipes must not kill it.
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to the default action has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The value of `result`, or `None` after printing `<prefix>: <error>` as HashiCorp's commands
/// print a failed step.
fn or_report<T, E: std::fmt::Display>(result: Result<T, E>, prefix: &str) -> Option<T> {
    result.map_err(|e| println!("{prefix}: {e}")).ok()
}

/// The `name [payload]` arguments of `event` and `query`; prints HashiCorp's usage error (`what`
/// is "An event" or "A query") and gives `None` when they are missing or too many.
fn name_and_payload<'a>(
    rest: &'a [String],
    what: &str,
    help: &str,
) -> Option<(&'a String, Option<&'a [u8]>)> {
    match rest {
        [] => {
            println!("{what} name must be specified.\n\n{help}");
            None
        }
        [name] => Some((name, None)),
        [name, payload] => Some((name, Some(payload.as_bytes()))),
        _ => {
            println!(
                "Too many command line arguments. Only a name and payload must be specified.\n\n{help}"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn help_is_found_anywhere_before_double_dash() {
        let a = args(&["members", "-x", "-h"]);
        let inv = invocation(&a);
        assert_eq!(
            (inv.subcommand, inv.help, inv.flags_before),
            (Some(0), true, false)
        );
        let a = args(&["members", "--", "-h"]);
        assert!(!invocation(&a).help);
    }

    #[test]
    fn flags_before_the_subcommand_are_noticed() {
        let a = args(&["-x", "members"]);
        let inv = invocation(&a);
        assert_eq!((inv.subcommand, inv.flags_before), (Some(1), true));
        let a = args(&["-version", "members"]);
        assert!(!invocation(&a).flags_before);
    }

    #[test]
    fn command_list_aligns_synopses() {
        let list = command_list();
        assert!(list.starts_with("Usage: serf [--version] [--help] <command> [<args>]\n"));
        assert!(list.contains("\n    agent           Start an agent (a cluster member)\n"));
        assert!(list.ends_with("    version         Show version information\n"));
    }
}
