#!/usr/bin/env bash
# The README's first command: a three-node libserf cluster on loopback, its members, a node
# killed with -9 and seen as failed, then a clean exit. Uses examples/node.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --example node
NODE=target/release/examples/node
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT

# start NAME PORT [JOIN]: the node reads commands from a fifo and writes JSON lines to a log.
start() {
    local name=$1 port=$2 join=${3:-}
    mkfifo "$DIR/$name.in"
    $NODE -node="$name" -bind="127.0.0.1:$port" -tag=role="demo-$name" ${join:+-join=$join} \
        < "$DIR/$name.in" > "$DIR/$name.out" 2>&1 &
    PIDS+=($!)
    exec {fd}> "$DIR/$name.in"
    eval "FD_$name=$fd"
}
send() { local fd_var="FD_$1"; echo "$2" >&"${!fd_var}"; }
# wait_for NAME PATTERN: up to 30 s for a line matching PATTERN in NAME's output.
wait_for() {
    for _ in $(seq 300); do grep -q "$2" "$DIR/$1.out" && return 0; sleep 0.1; done
    echo "timed out waiting for $2 from $1" >&2; cat "$DIR/$1.out" >&2; return 1
}

echo "==> starting alpha, beta (joins alpha), gamma (joins alpha) on 127.0.0.1:17946-17948"
start alpha 17946
wait_for alpha '"ready"'
start beta 17947 127.0.0.1:17946
start gamma 17948 127.0.0.1:17946
wait_for alpha '"name":"gamma".*"status":"alive"'
wait_for alpha '"name":"beta".*"status":"alive"'
sleep 1
echo "==> members as alpha sees them"
send alpha members
wait_for alpha '"members"'
grep '"members"' "$DIR/alpha.out" | tail -n 1
echo "==> kill -9 gamma; waiting for alpha to mark it failed"
start_ts=$(date +%s.%N)
{ kill -9 "${PIDS[2]}"; wait "${PIDS[2]}"; } 2>/dev/null || true
wait_for alpha '"event":"member-failed".*"name":"gamma"'
awk -v a="$start_ts" -v b="$(date +%s.%N)" 'BEGIN { printf "gamma marked failed after %.1f s\n", b - a }'
grep '"member-failed"' "$DIR/alpha.out" | tail -n 1
echo "==> beta leaves gracefully"
send beta leave
wait_for beta '"event":"left"'
wait_for alpha '"event":"member-leave".*"name":"beta"'
grep '"member-leave"' "$DIR/alpha.out" | tail -n 1
send alpha leave
wait_for alpha '"event":"left"'
wait "${PIDS[0]}" "${PIDS[1]}"
echo "==> done: every node left and exited cleanly"
