//! TCP: every push/pull connection of a gossip capture, both directions decoded and rendered as
//! the `.md`'s listing shows them; connections without payload are the refused probes.

use serf_proto::wire::memberlist::push_pull::PushPull;
use serf_proto::wire::memberlist::stream::{self, StreamMessage};
use serf_proto::wire::serf::{decode_tags, Message as SerfMessage};

use crate::markdown::{ensure_nonempty, num_after, sort_braces};
use crate::support::{ctx, join, load, same, Gossip, TestResult};

/// One connection of a `.md`'s "Decoded listing — TCP streams".
struct MdStream {
    client_port: u16,
    server_port: u16,
    /// Bytes client→server, server→client.
    lens: [usize; 2],
    /// The listing lines of each direction, without the `c2s`/`s2c` tag and without the
    /// encryption and compression lines (their sizes are not something stream::decode reports).
    lines: [Vec<String>; 2],
}

fn md_streams(md: &str) -> Result<Vec<MdStream>, String> {
    let listing = md
        .split("## Decoded listing — TCP streams")
        .nth(1)
        .ok_or("no TCP listing")?;
    let mut streams: Vec<MdStream> = Vec::new();
    for line in listing.lines().map(str::trim) {
        if line.contains(" tcp conn ") {
            streams.push(MdStream {
                client_port: num_after(line, "tcp conn ")?,
                server_port: num_after(line, "-> ")?,
                lens: [
                    num_after(line, "client->server ")?,
                    num_after(line, "server->client ")?,
                ],
                lines: Default::default(),
            });
        } else if let Some((dir, text)) = line
            .split_once(' ')
            .filter(|(d, _)| ["c2s", "s2c"].contains(d))
        {
            let text = text.trim();
            if !text.starts_with("encrypt(") && !text.starts_with("compress(") {
                let stream = streams
                    .last_mut()
                    .ok_or("direction line before any connection")?;
                stream.lines[usize::from(dir == "s2c")].push(sort_braces(text));
            }
        }
    }
    ensure_nonempty(streams, "tcp conn")
}

/// A push/pull rendered in the `.md` listing's format.
fn render_push_pull(pp: &PushPull) -> Result<Vec<String>, String> {
    let bool_py = |b: bool| if b { "True" } else { "False" };
    let mut lines = vec![format!(
        "pushPull(Join={} Nodes={} UserStateLen={})",
        bool_py(pp.join),
        pp.nodes.len(),
        pp.user_state.len()
    )];
    for node in &pp.nodes {
        let meta = node.meta.as_deref().unwrap_or_default();
        let tags = ctx(decode_tags(meta), "node meta tags", meta)?;
        let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let vsn: Vec<u8> = node.vsn.to_vec();
        lines.push(format!(
            "node {} {}:{} inc={} state={} meta={{{}}} vsn={vsn:?}",
            node.name,
            join(&node.addr[..], "."),
            node.port,
            node.incarnation,
            node.state as u8,
            tags.join(","),
        ));
    }
    let user_state = &pp.user_state;
    let SerfMessage::PushPull(state) = ctx(
        SerfMessage::decode(user_state),
        "serf push/pull",
        user_state,
    )?
    else {
        return Err(format!(
            "user state is not a serf push/pull: {}",
            hex::encode(user_state)
        ));
    };
    let ltimes: Vec<String> = state
        .status_ltimes
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    lines.push(format!(
        "userState: serf.pushPull(LTime={} StatusLTimes={{{}}} Left=[{}] EventLTime={} Events={} slots ({} non-nil) QueryLTime={})",
        state.ltime,
        ltimes.join(","),
        join(&state.left_members, ", "),
        state.event_ltime,
        state.events.len(),
        state.events.iter().flatten().count(),
        state.query_ltime,
    ));
    Ok(lines.iter().map(|l| sort_braces(l)).collect())
}

/// Both directions of every connection decode to one push/pull using all their bytes, matching
/// the listing; connections without payload are the refused probes of the killed node.
pub(crate) fn tcp_streams(gossip: Gossip) -> TestResult {
    let (capture, md) = load(gossip.name())?;
    let opts = gossip.options();
    let expected = md_streams(&md)?;
    same("connections", capture.tcp.len(), expected.len())?;
    let mut refused = 0;
    for conn in &capture.tcp {
        let want = expected
            .iter()
            .find(|m| m.client_port == conn.client_port)
            .ok_or(format!(
                "connection from port {} is not in the .md",
                conn.client_port
            ))?;
        let at = format!("connection {} -> {}", conn.client_port, conn.server_port);
        same(
            &format!("{at}: server port"),
            conn.server_port,
            want.server_port,
        )?;
        let dirs = [&conn.client_to_server, &conn.server_to_client];
        same(
            &format!("{at}: bytes c2s/s2c"),
            dirs.map(Vec::len),
            want.lens,
        )?;
        if dirs.iter().all(|d| d.is_empty()) {
            refused += 1;
            continue;
        }
        for (i, buf) in dirs.into_iter().enumerate() {
            // The client dialed: its side is read by the acceptor (dialer = false) and vice versa.
            let (msg, used) = ctx(stream::decode(&opts, buf, i == 1), &at, buf)?;
            same(&format!("{at} dir {i}: bytes consumed"), used, buf.len())?;
            let StreamMessage::PushPull(pp) = msg else {
                return Err(format!("{at} dir {i}: not a push/pull: {msg:?}").into());
            };
            same(
                &format!("{at} dir {i}"),
                &render_push_pull(&pp)?,
                &want.lines[i],
            )?;
        }
    }
    let md_refused = expected.iter().filter(|m| m.lens == [0, 0]).count();
    same(
        "connections without payload (refused probes)",
        refused,
        md_refused,
    )?;
    println!(
        "{}: {} TCP connections, {refused} without payload",
        gossip.name(),
        capture.tcp.len()
    );
    Ok(())
}
