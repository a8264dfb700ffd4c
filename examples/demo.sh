#!/usr/bin/env bash
# The README's first command: HashiCorp's Serf walkthrough with our `serf` binary, automated.
# Two agents (foo, bar) on loopback, a join, the member list, a user event shown by an event
# handler, kill -9 of bar (foo marks it failed), then bar back and ctrl-C of foo (bar sees it
# leave).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin serf
SERF=target/release/serf
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT

# agent NAME GOSSIP_PORT RPC_PORT: starts an agent whose handler prints user events.
agent() {
    local name=$1 port=$2 rpc=$3
    $SERF agent -node="$name" -bind="127.0.0.1:$port" -rpc-addr="127.0.0.1:$rpc" \
        -event-handler="user=echo \"[$name handler] user event \$SERF_USER_EVENT: \$(cat)\" >> $DIR/handlers.log" \
        > "$DIR/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do $SERF members -rpc-addr="127.0.0.1:$rpc" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "agent $name did not start:" >&2; cat "$DIR/$name.log" >&2; return 1
}
# status_is RPC_PORT NAME STATUS: waits up to 30 s for the member to show that status.
status_is() {
    for _ in $(seq 300); do
        $SERF members -rpc-addr="127.0.0.1:$1" | awk -v n="$2" -v s="$3" '$1 == n && $3 == s { f = 1 } END { exit !f }' && return 0
        sleep 0.1
    done
    echo "timed out waiting for $2 to be $3" >&2; return 1
}
show() { echo "\$ $*"; "$@"; }

echo "==> serf agent -node=foo -bind=127.0.0.1:5000 -rpc-addr=127.0.0.1:7373"
agent foo 5000 7373
echo "==> serf agent -node=bar -bind=127.0.0.1:5001 -rpc-addr=127.0.0.1:7374"
agent bar 5001 7374
show $SERF join 127.0.0.1:5001
status_is 7373 bar alive
show $SERF members
show $SERF event deploy v1.2.3
for _ in $(seq 100); do [ "$(grep -c deploy "$DIR/handlers.log" 2>/dev/null)" = 2 ] && break; sleep 0.1; done
cat "$DIR/handlers.log"

echo "==> kill -9 bar"
start_ts=$(date +%s.%N)
kill -9 "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null || true
status_is 7373 bar failed
awk -v a="$start_ts" -v b="$(date +%s.%N)" 'BEGIN { printf "foo marked bar failed after %.1f s\n", b - a }'
show $SERF members

echo "==> bar is back; ctrl-C (SIGINT) of foo: a graceful leave"
agent bar 5001 7374
$SERF join -rpc-addr=127.0.0.1:7374 127.0.0.1:5000 >/dev/null
status_is 7374 foo alive
kill -INT "${PIDS[0]}"
wait "${PIDS[0]}" && echo "foo exited with status 0"
grep -E 'Caught signal|Gracefully' "$DIR/foo.log"
status_is 7374 foo left
show $SERF members -rpc-addr=127.0.0.1:7374
kill -INT "${PIDS[2]}"; wait "${PIDS[2]}" || true
echo "==> done: both agents exited"
