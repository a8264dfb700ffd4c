//! Minimal pcap decoder for the reference captures under `vectors/captures`.
//!
//! The captures are loopback traffic recorded by tcpdump (link type 1, Ethernet with zero MACs,
//! IPv4 only). Tests need the UDP datagrams one by one (each is one memberlist packet) and the TCP
//! byte streams per connection and direction (push/pull and RPC are streams, so segment boundaries
//! carry no meaning). This is test support: anything unexpected panics with a message naming the
//! file and packet rather than being skipped silently.
#![allow(dead_code)] // each test binary that includes this module uses a different subset

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

/// One UDP datagram.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Capture time, seconds since the Unix epoch.
    pub time: f64,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

/// One TCP connection with both directions reassembled.
#[derive(Debug, Clone)]
pub struct TcpConnection {
    pub client_port: u16,
    pub server_port: u16,
    /// Capture time of the connection's first packet, seconds since the Unix epoch.
    pub start_time: f64,
    pub client_to_server: Vec<u8>,
    pub server_to_client: Vec<u8>,
}

/// Everything a capture contains, in capture order.
#[derive(Debug, Clone)]
pub struct Capture {
    pub udp: Vec<Datagram>,
    /// Ordered by each connection's first packet.
    pub tcp: Vec<TcpConnection>,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// An IPv4 address and port.
type Endpoint = ([u8; 4], u16);

/// One direction of a TCP connection, kept as raw segments until the whole file is read so
/// that out-of-order segments and retransmissions can be resolved by sequence number.
#[derive(Default)]
struct Half {
    /// Sequence number of the first data byte, known when this side's SYN was captured.
    first_seq: Option<u32>,
    /// (sequence number of the first payload byte, payload)
    segments: Vec<(u32, Vec<u8>)>,
}

/// A connection while the file is read. `ends[i]` sends `halves[i]`.
struct Conn {
    start_time: f64,
    ends: [Endpoint; 2],
    halves: [Half; 2],
    /// Index into `ends` of the side that opened the connection, once a SYN shows it.
    client: Option<usize>,
}

/// Reads a pcap file (Ethernet/IPv4, UDP and TCP).
///
/// TCP payloads are reassembled per connection and direction by sequence number (duplicates and
/// retransmissions dropped, out-of-order segments put in place); connections are ordered by their
/// first packet and identified by their 4-tuple. The client is the side that sent the SYN or,
/// when the handshake was not captured, the side with the higher (ephemeral) port.
///
/// Panics with a clear message on malformed files: it is test support.
pub fn read(path: &Path) -> Capture {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = PcapReader::new(file)
        .unwrap_or_else(|e| panic!("{}: not a pcap file: {e}", path.display()));
    let link = reader.header().datalink;
    assert_eq!(
        link,
        DataLink::ETHERNET,
        "{}: unsupported link type",
        path.display()
    );

    let mut udp = Vec::new();
    let mut conns: Vec<Conn> = Vec::new();
    let mut index: HashMap<[Endpoint; 2], usize> = HashMap::new();
    let mut number = 0;
    while let Some(packet) = reader.next_packet() {
        number += 1;
        let packet = packet.unwrap_or_else(|e| panic!("{}: packet {number}: {e}", path.display()));
        let time = packet.timestamp.as_secs_f64();
        let Some(ip) = ipv4(&packet.data)
            .unwrap_or_else(|e| panic!("{}: packet {number}: {e}", path.display()))
        else {
            continue;
        };
        match ip.proto {
            PROTO_UDP => {
                let d = udp_datagram(ip.payload, time)
                    .unwrap_or_else(|e| panic!("{}: packet {number}: {e}", path.display()));
                udp.push(d);
            }
            PROTO_TCP => {
                let seg = tcp_segment(ip.payload)
                    .unwrap_or_else(|e| panic!("{}: packet {number}: {e}", path.display()));
                let src = (ip.src, seg.src_port);
                let dst = (ip.dst, seg.dst_port);
                // The key is the 4-tuple in a fixed order so both directions find the same entry.
                let key = if src <= dst { [src, dst] } else { [dst, src] };
                let i = *index.entry(key).or_insert_with(|| {
                    conns.push(Conn {
                        start_time: time,
                        ends: [src, dst],
                        halves: Default::default(),
                        client: None,
                    });
                    conns.len() - 1
                });
                let conn = &mut conns[i];
                let side = usize::from(conn.ends[0] != src);
                let half = &mut conn.halves[side];
                let syn = seg.flags & TCP_SYN != 0;
                if syn {
                    // A SYN consumes one sequence number; data (if any) follows it.
                    half.first_seq = Some(seg.seq.wrapping_add(1));
                    let opener = if seg.flags & TCP_ACK == 0 {
                        side
                    } else {
                        1 - side
                    };
                    conn.client.get_or_insert(opener);
                }
                if !seg.payload.is_empty() {
                    half.segments
                        .push((seg.seq.wrapping_add(u32::from(syn)), seg.payload.to_vec()));
                }
            }
            _ => {}
        }
    }

    let tcp = conns
        .into_iter()
        .map(|mut conn| {
            let client = conn
                .client
                .unwrap_or(usize::from(conn.ends[1].1 > conn.ends[0].1));
            let [a, b] = std::mem::take(&mut conn.halves);
            let (c2s, s2c) = if client == 0 { (a, b) } else { (b, a) };
            let (client_port, server_port) = (conn.ends[client].1, conn.ends[1 - client].1);
            let name = format!("{}: TCP {client_port} -> {server_port}", path.display());
            TcpConnection {
                client_port,
                server_port,
                start_time: conn.start_time,
                client_to_server: reassemble(c2s, &format!("{name} client->server")),
                server_to_client: reassemble(s2c, &format!("{name} server->client")),
            }
        })
        .collect();
    Capture { udp, tcp }
}

struct Ipv4<'a> {
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    payload: &'a [u8],
}

/// Strips Ethernet and IPv4 framing; `None` for frames that are not IPv4 or not TCP/UDP.
fn ipv4(frame: &[u8]) -> Result<Option<Ipv4<'_>>, String> {
    if frame.len() < 14 {
        return Err(format!("Ethernet frame of {} bytes", frame.len()));
    }
    if be16(frame, 12) != ETHERTYPE_IPV4 {
        return Ok(None);
    }
    let ip = &frame[14..];
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return Err("truncated or non-IPv4 header behind ethertype 0x0800".into());
    }
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    // Total length, not the frame length: Ethernet pads short frames.
    let total_len = usize::from(be16(ip, 2));
    if header_len < 20 || total_len < header_len || total_len > ip.len() {
        return Err(format!(
            "bad IPv4 lengths: IHL {header_len}, total {total_len}, captured {}",
            ip.len()
        ));
    }
    // Reassembling IP fragments is not worth it for loopback captures (MTU 64 KiB); refuse them.
    if be16(ip, 6) & 0x3fff != 0 {
        return Err("fragmented IPv4 packet".into());
    }
    let proto = ip[9];
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return Ok(None);
    }
    let addr = |at: usize| -> [u8; 4] { ip[at..at + 4].try_into().unwrap() };
    Ok(Some(Ipv4 {
        src: addr(12),
        dst: addr(16),
        proto,
        payload: &ip[header_len..total_len],
    }))
}

fn udp_datagram(body: &[u8], time: f64) -> Result<Datagram, String> {
    if body.len() < 8 {
        return Err(format!("UDP header truncated to {} bytes", body.len()));
    }
    let len = usize::from(be16(body, 4));
    if len < 8 || len > body.len() {
        return Err(format!(
            "UDP length {len} with {} bytes of IP payload",
            body.len()
        ));
    }
    Ok(Datagram {
        time,
        src_port: be16(body, 0),
        dst_port: be16(body, 2),
        payload: body[8..len].to_vec(),
    })
}

struct Segment<'a> {
    src_port: u16,
    dst_port: u16,
    seq: u32,
    flags: u8,
    payload: &'a [u8],
}

fn tcp_segment(body: &[u8]) -> Result<Segment<'_>, String> {
    if body.len() < 20 {
        return Err(format!("TCP header truncated to {} bytes", body.len()));
    }
    let header_len = usize::from(body[12] >> 4) * 4;
    if header_len < 20 || header_len > body.len() {
        return Err(format!(
            "TCP data offset {header_len} with {} bytes of IP payload",
            body.len()
        ));
    }
    Ok(Segment {
        src_port: be16(body, 0),
        dst_port: be16(body, 2),
        seq: u32::from_be_bytes(body[4..8].try_into().unwrap()),
        flags: body[13],
        payload: &body[header_len..],
    })
}

/// Concatenates one direction's segments in sequence order, keeping only bytes not seen yet, so
/// retransmissions and overlaps are dropped. Sequence numbers are taken relative to the SYN (or,
/// without one, the lowest sequence number seen) so wrap-around at 2^32 is harmless. A hole in
/// the sequence space means the capture lost a packet, which no test can work around: panic.
fn reassemble(half: Half, name: &str) -> Vec<u8> {
    let Some(&(first, _)) = half.segments.first() else {
        return Vec::new();
    };
    let relative = |seq: u32, base: u32| i64::from(seq.wrapping_sub(base) as i32);
    let base = half.first_seq.unwrap_or_else(|| {
        let lowest = half
            .segments
            .iter()
            .map(|&(seq, _)| relative(seq, first))
            .min()
            .unwrap();
        first.wrapping_add(lowest as u32)
    });
    let mut segments = half.segments;
    segments.sort_by_key(|&(seq, _)| relative(seq, base));
    let mut stream = Vec::new();
    for (seq, data) in segments {
        let offset = relative(seq, base);
        let have = stream.len() as i64;
        assert!(
            offset <= have,
            "{name}: {} bytes missing at stream offset {have}",
            offset - have
        );
        let new_from = (have - offset) as usize;
        if new_from < data.len() {
            stream.extend_from_slice(&data[new_from..]);
        }
    }
    stream
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}
