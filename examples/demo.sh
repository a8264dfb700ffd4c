#!/usr/bin/env bash
# The README's first command: HashiCorp's Serf walkthrough with our `serf` binary, automated.
# Two agents (foo, bar) on loopback, a join, the member list, a user event shown by an event
# handler, kill -9 of bar (foo marks it failed), then bar back and ctrl-C of foo (bar sees it
# leave). The ports move with DEMO_PORT (gossip: it and the next one, default 5000) and
# DEMO_RPC_PORT (RPC: it and the next one, default 7373, the CLI's default); foo also serves
# the HTTP view (a live cluster page, /metrics) on DEMO_HTTP_PORT (default 7380). DEMO_PAUSE=60
# keeps both agents up 60 s after the join, to look at the page.
set -euo pipefail
cd "$(dirname "$0")/.."
GOSSIP=${DEMO_PORT:-5000}
RPC=${DEMO_RPC_PORT:-7373}
HTTP=${DEMO_HTTP_PORT:-7380}
for port in "$GOSSIP" $((GOSSIP + 1)) "$RPC" $((RPC + 1)) "$HTTP"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "make demo: port $port on 127.0.0.1 is taken; move the demo's ports, e.g." >&2
        echo "    make demo DEMO_PORT=$((GOSSIP + 1000)) DEMO_RPC_PORT=$((RPC + 1000)) DEMO_HTTP_PORT=$((HTTP + 1000))" >&2
        exit 1
    fi
done
echo "==> cargo build --release --bin serf (the first build takes a few minutes)"
cargo build --release --bin serf
SERF=target/release/serf
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT

# agent NAME GOSSIP_PORT RPC_PORT [FLAG...]: starts an agent whose handler prints user events.
agent() {
    local name=$1 port=$2 rpc=$3
    shift 3
    $SERF agent -node="$name" -bind="127.0.0.1:$port" -rpc-addr="127.0.0.1:$rpc" "$@" \
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

FOO=127.0.0.1:$GOSSIP BAR=127.0.0.1:$((GOSSIP + 1))
FOO_RPC=127.0.0.1:$RPC BAR_RPC=127.0.0.1:$((RPC + 1))
echo "==> serf agent -node=foo -bind=$FOO -rpc-addr=$FOO_RPC -http-addr=127.0.0.1:$HTTP"
agent foo "$GOSSIP" "$RPC" -http-addr="127.0.0.1:$HTTP"
echo "==> serf agent -node=bar -bind=$BAR -rpc-addr=$BAR_RPC"
agent bar $((GOSSIP + 1)) $((RPC + 1))
show $SERF join -rpc-addr="$FOO_RPC" "$BAR"
status_is "$RPC" bar alive
show $SERF members -rpc-addr="$FOO_RPC"
echo "==> the cluster, live: http://127.0.0.1:$HTTP/ (members, map, events; Prometheus: /metrics)"
if [ -n "${DEMO_PAUSE:-}" ]; then sleep "$DEMO_PAUSE"; fi
show $SERF event -rpc-addr="$FOO_RPC" deploy v1.2.3
for _ in $(seq 100); do [ "$(grep -c deploy "$DIR/handlers.log" 2>/dev/null)" = 2 ] && break; sleep 0.1; done
cat "$DIR/handlers.log"

echo "==> kill -9 bar"
start_ts=$(date +%s.%N)
kill -9 "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null || true
status_is "$RPC" bar failed
awk -v a="$start_ts" -v b="$(date +%s.%N)" 'BEGIN { printf "foo marked bar failed after %.1f s\n", b - a }'
show $SERF members -rpc-addr="$FOO_RPC"

echo "==> bar is back; ctrl-C (SIGINT) of foo: a graceful leave"
agent bar $((GOSSIP + 1)) $((RPC + 1))
$SERF join -rpc-addr="$BAR_RPC" "$FOO" >/dev/null
status_is $((RPC + 1)) foo alive
kill -INT "${PIDS[0]}"
wait "${PIDS[0]}" && echo "foo exited with status 0"
grep -E 'Caught signal|Gracefully' "$DIR/foo.log"
status_is $((RPC + 1)) foo left
show $SERF members -rpc-addr="$BAR_RPC"
kill -INT "${PIDS[2]}"; wait "${PIDS[2]}" || true
echo "==> done: both agents exited"
