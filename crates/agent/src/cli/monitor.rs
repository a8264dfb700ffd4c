//! `serf monitor`: streams the agent's log and events until Ctrl-C or until the agent goes away.

/// Shown by `serf monitor -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf monitor [options]

Prints the agent's recent log lines, then follows its log and its events as
they happen, until interrupted (exit status 0) or until the agent goes away
(exit status 1). The level chosen here applies to this monitor only, so it
can show DEBUG lines even when the agent itself logs at INFO.

Options:
  -log-level=<level>
      Least severe level shown: trace, debug, info, warn or err
      (default: info).
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Follow the agent's log and events";

use super::gofmt::event_lines;
use super::interrupt::{Interrupt, POLL};
use super::or_report;
use super::rpc::RpcFlags;
use crate::client::Record;
use crate::flags::FlagSet;

pub fn run(args: &[String]) -> i32 {
    let interrupt = Interrupt::catch();
    let mut fs = FlagSet::new(HELP);
    let level = fs.string("log-level", "INFO");
    let rpc = RpcFlags::new(&mut fs);
    if fs.parse(args).is_none() {
        return 1;
    }
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    let Some(events) = or_report(client.stream("*"), "Error starting stream") else {
        return 1;
    };
    let Some(logs) = or_report(client.monitor(&level.get()), "Error starting monitor") else {
        return 1;
    };
    loop {
        if interrupt.fired() {
            // Go's deferred stops, last opened first; failures no longer matter.
            let _ = client.stop(logs);
            let _ = client.stop(events);
            return 0;
        }
        match client.next_record(POLL) {
            Ok(None) => {}
            Ok(Some((_, Record::Log(line)))) => println!("{line}"),
            Ok(Some((_, Record::Event(record)))) => {
                println!("Event Info:");
                for line in event_lines(&record.0).unwrap_or_default() {
                    println!("{line}");
                }
            }
            Ok(Some(_)) => {}
            Err(_) => {
                println!(
                    "\nRemote side ended the monitor! This usually means that the\n\
                     remote side has exited or crashed."
                );
                return 1;
            }
        }
    }
}
