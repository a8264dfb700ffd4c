//! `serf info`: the agent's `stats`, for operators.

/// Shown by `serf info -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf info [options]

Prints the agent's internal statistics, grouped by section, as an aid to
debugging.

Options:
  -format=text|json
      Output format (default: text).
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Show the agent's statistics, for debugging";

use super::json::Json;
use super::or_report;
use super::rpc::RpcFlags;
use crate::flags::FlagSet;
use serf::api::wire::rpc::StatsResponse;

pub fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new(HELP);
    let format = fs.string("format", "text");
    let rpc = RpcFlags::new(&mut fs);
    if fs.parse(args).is_none() {
        return 1;
    }
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    let Some(stats) = or_report(client.stats(), "Error querying agent") else {
        return 1;
    };
    let output = match format.get().as_str() {
        "text" => text(&stats),
        "json" => json(&stats).to_indented(),
        other => {
            println!("Encoding error: Invalid output format \"{other}\"");
            return 1;
        }
    };
    println!("{}", output.trim());
    0
}

/// `section:` then `\tkey = value` lines, everything sorted.
fn text(stats: &StatsResponse) -> String {
    let mut out = String::new();
    for (section, entries) in stats {
        out.push_str(&format!("{section}:\n"));
        for (key, value) in entries {
            out.push_str(&format!("\t{key} = {value}\n"));
        }
    }
    out
}

fn json(stats: &StatsResponse) -> Json {
    Json::Object(
        stats
            .iter()
            .map(|(section, entries)| {
                let entries = entries.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()));
                (section.as_bytes().to_vec(), Json::string_map(Some(entries)))
            })
            .collect(),
    )
}
