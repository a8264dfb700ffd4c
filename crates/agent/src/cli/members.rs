//! `serf members`: the cluster as the agent sees it, filtered by name, status and tags.

/// Shown by `serf members -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf members [options]

Lists the members the agent knows of: name, address, status and tags, one
per line. Every <regexp> below must match the whole value, not a part.

Options:
  -detailed
      Add each member's protocol version and range (text format only).
  -format=text|json
      Output format (default: text).
  -name=<regexp>
      Only members whose name matches.
  -status=<regexp>
      Only members whose status (alive, leaving, left, failed) matches.
  -tag <key>=<regexp>
      Only members whose tag <key> matches. Repeat to filter on more tags.
  -role=<regexp>
      Deprecated; the same as -tag role=<regexp>.
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "List the cluster's members";

use std::net::{Ipv4Addr, Ipv6Addr};

use super::columnize::columnize;
use super::json::Json;
use super::or_report;
use super::rpc::RpcFlags;
use crate::config::parse_tags;
use crate::flags::FlagSet;
use serf::api::wire::rpc::Member;

pub fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new(HELP);
    let detailed = fs.bool("detailed", false);
    let role = fs.string("role", "");
    let status = fs.string("status", "");
    let format = fs.string("format", "text");
    let tag_filters = fs.list("tag");
    let name = fs.string("name", "");
    let rpc = RpcFlags::new(&mut fs);
    if fs.parse(args).is_none() {
        return 1;
    }

    let mut filters = tag_filters.get();
    let role = role.get();
    if !role.is_empty() {
        println!("Deprecation warning: 'Role' has been replaced with 'Tags'");
        filters.push(format!("role={role}"));
    }
    let Some(tags) = or_report(parse_tags(&filters), "Error") else {
        return 1;
    };
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    let Some(members) = or_report(
        client.members_filtered(tags, &status.get(), &name.get()),
        "Error retrieving members",
    ) else {
        return 1;
    };
    let output = match format.get().as_str() {
        "text" => text(&members, detailed.get()),
        "json" => json(&members).to_indented(),
        other => {
            println!("Encoding error: Invalid output format \"{other}\"");
            return 1;
        }
    };
    println!("{}", output.trim());
    0
}

/// One columnized line per member; tags as `k=v,k=v` (sorted here, random in Go).
fn text(members: &[Member], detailed: bool) -> String {
    let lines: Vec<String> = members
        .iter()
        .map(|m| {
            let tags: Vec<String> = m
                .tags
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let mut line = format!("{}|{}|{}|{}", m.name, address(m), m.status, tags.join(","));
            if detailed {
                line.push_str(&format!(
                    "|Protocol Version: {}|Available Protocol Range: [{}, {}]",
                    m.delegate_cur, m.delegate_min, m.delegate_max
                ));
            }
            line
        })
        .collect();
    columnize(&lines)
}

/// `{"members": [...]}` with Go's field names; no members is `null`, as Go's nil slice.
pub(crate) fn json(members: &[Member]) -> Json {
    Json::Object(vec![(b"members".to_vec(), records(members))])
}

/// The list of [`json`]: each member's record, `null` for none.
pub(crate) fn records(members: &[Member]) -> Json {
    let list = members
        .iter()
        .map(|m| {
            let tags = m
                .tags
                .as_ref()
                .map(|t| t.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
            Json::Object(vec![
                (b"name".to_vec(), Json::str(m.name.as_bytes())),
                (b"addr".to_vec(), Json::str(address(m))),
                (b"port".to_vec(), Json::Int(m.port.into())),
                (b"tags".to_vec(), Json::string_map(tags)),
                (b"status".to_vec(), Json::str(m.status.as_bytes())),
                (
                    b"protocol".to_vec(),
                    Json::Object(vec![
                        (b"max".to_vec(), Json::Int(m.delegate_max.into())),
                        (b"min".to_vec(), Json::Int(m.delegate_min.into())),
                        (b"version".to_vec(), Json::Int(m.delegate_cur.into())),
                    ]),
                ),
            ])
        })
        .collect::<Vec<_>>();
    if list.is_empty() {
        Json::Null
    } else {
        Json::Array(list)
    }
}

/// Go's `net.TCPAddr.String()`: `ip:port`, IPv6 in brackets, IPv4-mapped IPv6 as IPv4.
fn address(m: &Member) -> String {
    let ip = &m.addr.0;
    let host = match ip.len() {
        0 => String::new(),
        4 => Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string(),
        16 => {
            let octets: [u8; 16] = ip[..].try_into().expect("length checked");
            let v6 = Ipv6Addr::from(octets);
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            }
        }
        _ => format!(
            "?{}",
            ip.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    };
    if host.contains(':') {
        format!("[{host}]:{}", m.port)
    } else {
        format!("{host}:{}", m.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serf::api::wire::msgpack::Bytes;

    fn member(name: &str, addr: Vec<u8>, tags: &[(&str, &str)]) -> Member {
        Member {
            addr: Bytes(addr),
            delegate_cur: 5,
            delegate_max: 5,
            delegate_min: 2,
            name: name.into(),
            port: 7946,
            status: "alive".into(),
            tags: Some(
                tags.iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            ),
            ..Member::default()
        }
    }

    #[test]
    fn addresses_print_as_go_tcp_addrs() {
        let mut mapped = vec![0; 10];
        mapped.extend([0xff, 0xff, 10, 0, 0, 1]);
        assert_eq!(address(&member("a", mapped, &[])), "10.0.0.1:7946");
        let mut v6 = vec![0; 15];
        v6.push(1);
        assert_eq!(address(&member("a", v6, &[])), "[::1]:7946");
        assert_eq!(address(&member("a", vec![], &[])), ":7946");
    }

    #[test]
    fn text_and_detailed_lines() {
        let ms = [
            member(
                "ref-a",
                vec![127, 0, 0, 1],
                &[("role", "web"), ("dc", "east")],
            ),
            member("ref-b", vec![127, 0, 0, 1], &[]),
        ];
        assert_eq!(
            text(&ms, false),
            "ref-a  127.0.0.1:7946  alive  dc=east,role=web\nref-b  127.0.0.1:7946  alive  "
        );
        assert_eq!(
            text(&ms, true).lines().nth(1).unwrap(),
            "ref-b  127.0.0.1:7946  alive                    Protocol Version: 5  Available \
             Protocol Range: [2, 5]"
        );
        assert_eq!(json(&[]).to_indented(), "{\n  \"members\": null\n}");
    }
}
