#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs, as raw files, from the golden vectors read in place.

    python3 fuzz/seeds.py tests/data fuzz/seeds

makes OUT/<target>/ for every target under fuzz/fuzz_targets (OUT is git-ignored; it is rebuilt
from scratch on every run). Sources: the hex of the JSON vectors (and their unwrapped
plaintexts), the hex lines of the .txt vectors, and the UDP datagrams and TCP streams of the
captures. The snapshot and agent config targets have no vectors: their seeds are a few files
written here, in the formats Go writes and HashiCorp documents. Nothing but the standard library.
"""

import glob
import hashlib
import json
import os
import re
import shutil
import struct
import sys

HEX_LINE = re.compile(r"(?:^|[\s:])([0-9a-f]{4,})$")
RPC_PORTS = {7383, 7384, 7385}


def unhex(text):
    try:
        return bytes.fromhex(text) if len(text) % 2 == 0 else None
    except ValueError:
        return None


def json_vectors(vectors, layer):
    """(name, bytes) for each JSON vector's hex and the hex of its unwrapped forms."""
    for path in sorted(glob.glob(os.path.join(vectors, layer, "*.json"))):
        with open(path) as f:
            vector = json.load(f)
        name = os.path.basename(path)[:-5]
        for key, text in [("hex", vector.get("hex"))] + sorted((vector.get("extra") or {}).items()):
            if isinstance(text, str) and unhex(text):
                yield name, unhex(text)


def txt_vectors(vectors, pattern):
    for path in sorted(glob.glob(os.path.join(vectors, pattern))):
        with open(path) as f:
            for line in f:
                m = HEX_LINE.search(line.strip())
                if m and unhex(m.group(1)):
                    yield unhex(m.group(1))


def pcap(path):
    """UDP datagrams and TCP streams (payloads of one direction of a connection, in order) of an
    Ethernet/IPv4 capture, as ('udp'|'tcp', (src port, dst port), bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, expected 1 (Ethernet)")
    flows, order, out = {}, [], []
    at = 24
    while at + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[at + 8 : at + 12])[0]
        frame = data[at + 16 : at + 16 + incl]
        at += 16 + incl
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        proto, seg = ip[9], ip[ihl:total]
        if proto == 17 and len(seg) >= 8:
            ports = struct.unpack(">HH", seg[:4])
            out.append(("udp", ports, seg[8:]))
        elif proto == 6 and len(seg) >= 20:
            ports = struct.unpack(">HH", seg[:4])
            payload = seg[(seg[12] >> 4) * 4 :]
            key = (ip[12:16], ip[16:20]) + ports
            if key not in flows:
                flows[key] = bytearray()
                order.append(key)
            flows[key] += payload
    out += [("tcp", key[2:], bytes(flows[key])) for key in order if flows[key]]
    return out


SNAPSHOTS = [
    b"alive: node-a 127.0.0.1:7946\nalive: node-b 127.0.0.1:7947\nclock: 4\nevent-clock: 2\n"
    b"query-clock: 1\n",
    b"alive: node-b 127.0.0.1:7947\nnot-alive: node-b\nclock: 9\nleave\nclock: 10\n",
    b"# comment\ncoordinate: node-a {}\nalive: n6 [2001:db8::1]:7946\nalive: n4 [::ffff:10.0.0.1]:1\n"
    b"event-clock: 18446744073709551615\nquery-clock: +1\nalive: torn 127.0.0.1:7",
    b"leave\nalive: node-c 10.0.0.3:7946\nalive: no-space\n\xff\xfe\n",
]

CONFIGS = [
    '{"node_name":"a","tags":{"role":"web","dc":"east"},"event_handlers":["x.sh"],"protocol":5}',
    '{"bind":"127.0.0.1:7946","advertise":"127.0.0.1","rpc_addr":"127.0.0.1:7373",'
    '"rpc_auth":"secret","encrypt_key":"XXo7nB4PKktsjZ4PGis8TQ==","keyring_file":"k.json",'
    '"log_level":"debug","replay_on_join":true,"profile":"wan","snapshot_path":"snap",'
    '"leave_on_terminate":true,"skip_leave_on_interrupt":false}',
    '{"reconnect_interval":"30s","reconnect_timeout":"24h","tombstone_timeout":"1h30m",'
    '"retry_interval":"1.5s","broadcast_timeout":"500ms","retry_join":["10.0.0.1"],'
    '"retry_max_attempts":-1,"start_join":["a","b:1"],"rejoin_after_leave":true}',
    '{"query_response_size_limit":1024,"query_size_limit":0,"user_event_size_limit":9216,'
    '"enable_compression":false,"disable_coordinates":true,"disable_name_resolution":true,'
    '"enable_syslog":true,"syslog_facility":"LOCAL7","statsite_addr":"","statsd_addr":"x:8125",'
    '"discover":"c","interface":"lo","tags_file":"t.json","role":"db","validate_node_names":true}',
    '{"node_name":"\\u00e9\\ud83d\\ude00","tags":{},"protocol":-1e3}',
]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    vectors, out = sys.argv[1], sys.argv[2]
    seeds = {t: [] for t in ("udp_packet", "udp_packet_keyed", "tcp_stream", "rpc_request",
                             "snapshot", "agent_config")}

    for _, b in json_vectors(vectors, "memberlist"):
        for t in ("udp_packet", "udp_packet_keyed", "tcp_stream"):
            seeds[t].append(b)
    for _, b in json_vectors(vectors, "serf"):
        # serf messages travel as memberlist user messages (type 8).
        for t in ("udp_packet", "udp_packet_keyed"):
            seeds[t].append(b"\x08" + b)
    for b in txt_vectors(vectors, "memberlist/*.txt"):
        for t in ("udp_packet", "udp_packet_keyed", "tcp_stream"):
            seeds[t].append(b)
    for b in txt_vectors(vectors, "serf/gossip_vectors.txt"):
        for t in ("udp_packet", "udp_packet_keyed"):
            seeds[t].append(b"\x08" + b)
    for b in txt_vectors(vectors, "serf/ipc_vectors.txt"):
        seeds["rpc_request"].append(b)

    for capture, udp in (("plaintext", "udp_packet"), ("encrypted", "udp_packet_keyed")):
        for proto, _, b in pcap(os.path.join(vectors, "captures", capture + ".pcap")):
            seeds[udp if proto == "udp" else "tcp_stream"].append(b)
    for proto, (_, dport), b in pcap(os.path.join(vectors, "captures", "rpc.pcap")):
        if proto == "tcp" and dport in RPC_PORTS:
            seeds["rpc_request"].append(b)

    seeds["snapshot"] = list(SNAPSHOTS)
    seeds["agent_config"] = [c.encode() for c in CONFIGS]

    shutil.rmtree(out, ignore_errors=True)
    for target, inputs in seeds.items():
        os.makedirs(os.path.join(out, target))
        for b in inputs:
            name = hashlib.sha1(b).hexdigest()
            with open(os.path.join(out, target, name), "wb") as f:
                f.write(b)
        count = len(os.listdir(os.path.join(out, target)))
        print(f"{target}: {count} seeds")


if __name__ == "__main__":
    main()
