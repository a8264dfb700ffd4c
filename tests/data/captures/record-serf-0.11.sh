#!/usr/bin/env bash
# Records serf-0.11.pcap: three HashiCorp serf v0.11.0 agents (make reference) on loopback
# running the scenario of plaintext.pcap, so that the codec is checked against what the current
# release writes. Needs root for tcpdump. Run from the repository root:
#
#     sudo bash tests/data/captures/record-serf-0.11.sh
#
# It writes tests/data/captures/serf-0.11.pcap and prints the steps with their times, which go
# into serf-0.11.md.
set -euo pipefail
SERF=${SERF:-target/reference/serf}
OUT=tests/data/captures/serf-0.11.pcap
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT

cat > "$DIR/handler.sh" <<'SH'
#!/bin/sh
# Answers the "uptime" query with the node's name and the query payload.
if [ "$SERF_EVENT" = query ]; then echo "uptime-from-$SERF_SELF_NAME payload=$(cat)"; else cat >/dev/null; fi
SH
chmod +x "$DIR/handler.sh"

tcpdump -i lo -s 0 -U -n -w "$OUT" "(udp or tcp) and (port 7966 or port 7967 or port 7968)" 2>"$DIR/tcpdump.log" &
PIDS+=($!)
sleep 1
T0=$(date +%s.%N)
step() { awk -v a="$T0" -v b="$(date +%s.%N)" -v s="$*" 'BEGIN { printf "%7.3f  %s\n", b - a, s }'; }

agent() { # NAME INDEX TAGS...
    local name=$1 i=$2; shift 2
    "$SERF" agent -node="$name" -bind=127.0.0.1:$((7966 + i)) -rpc-addr=127.0.0.1:$((7393 + i)) \
        -event-handler="query=$DIR/handler.sh" "$@" >"$DIR/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do "$SERF" members -rpc-addr=127.0.0.1:$((7393 + i)) >/dev/null 2>&1 && return; sleep 0.1; done
    cat "$DIR/$name.log" >&2; exit 1
}
cli() { # INDEX ARGS...
    local i=$1 cmd=$2; shift 2
    step "serf $cmd $*"
    "$SERF" "$cmd" -rpc-addr=127.0.0.1:$((7393 + i)) "$@" || true
}

step "start node-a, node-b, node-c"
agent node-a 0 -tag role=web -tag dc=east
agent node-b 1 -tag role=web
agent node-c 2 -tag role=worker
cli 1 join 127.0.0.1:7966
cli 2 join 127.0.0.1:7966
sleep 3
cli 0 members
cli 1 tags -set role=db -set version=1.2.3
sleep 2
cli 0 event -coalesce=false deploy v1.2.3
sleep 2
cli 0 query -timeout=3s uptime load
cli 0 query -timeout=3s -tag 'role=^(web|db)$' -node node-a -node node-b -relay-factor=1 uptime filtered
step "graceful leave of node-b"
kill -INT "${PIDS[2]}"; wait "${PIDS[2]}" || true
sleep 2
step "kill -9 node-c"
kill -9 "${PIDS[3]}"; wait "${PIDS[3]}" 2>/dev/null || true
for _ in $(seq 300); do "$SERF" members -rpc-addr=127.0.0.1:7393 | grep -q 'node-c.*failed' && break; sleep 0.1; done
cli 0 members
cli 0 force-leave node-c
sleep 2
step "leave of node-a"
kill -INT "${PIDS[1]}"; wait "${PIDS[1]}" || true
sleep 1
kill -INT "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
step "done: $(tcpdump -r "$OUT" 2>/dev/null | wc -l) packets in $OUT"
sha256sum "$OUT"
