#!/usr/bin/env bash
# The agent as `make install` installs it: one statically linked executable that runs with an
# empty environment and resolves names without loading any of the host's NSS modules (see
# crates/agent/src/name_service.rs). Usage: tests/shipped/agent.sh PATH-TO-INSTALLED-SERF
# Prints "N passed, N failed" last, for make test's total.
set -uo pipefail
serf=$1
passed=0 failed=0
check() { # description, command...
    local what=$1; shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $what"; fi
}

check "no dynamic dependencies" bash -c "! readelf -d '$serf' | grep -q NEEDED"
check "runs with an empty environment" bash -c "env -i '$serf' version | grep -q '^Agent Protocol: '"

# Two agents; the second joins the first by the name localhost (/etc/hosts), then the first is
# asked to join a name nothing resolves (DNS). Neither may map a shared object afterwards.
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
env -i "$serf" agent -node=ship-a -bind=127.0.0.1:27946 -rpc-addr=127.0.0.1:27373 >"$dir/a.log" 2>&1 &
pids+=($!)
env -i "$serf" agent -node=ship-b -bind=127.0.91.2:27946 -rpc-addr=127.0.91.2:27373 \
    -retry-join=localhost:27946 -retry-interval=1s >"$dir/b.log" 2>&1 &
pids+=($!)
alive=0
for _ in $(seq 1 50); do
    alive=$("$serf" members -rpc-addr=127.0.0.1:27373 -status=alive 2>/dev/null | wc -l)
    [ "$alive" = 2 ] && break
    sleep 0.2
done
echo "members alive seen by ship-a: $alive"
"$serf" join -rpc-addr=127.0.0.1:27373 nosuchhost.invalid:7946 >/dev/null 2>&1
for pid in "${pids[@]}"; do
    check "agent $pid loaded no shared object" bash -c "! grep -q '\\.so' /proc/$pid/maps"
done
check "the agents found each other by name" test "$alive" = 2
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
