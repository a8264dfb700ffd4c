#!/usr/bin/env bash
# Builds the cargo-fuzz targets and runs each for a while, seeded from the golden vectors:
#
#     bash fuzz/run.sh VECTORS SECONDS [TARGET...]     (all targets when none is named)
#
# Stable toolchain, no sanitizer (`--sanitizer none`; the library has no unsafe decoding code,
# and a panic, an overflow with debug assertions, a hang over 10 s or an RSS over 2 GiB is a
# failure). The seeds are written afresh by fuzz/seeds.py into fuzz/seeds/ (git-ignored) and
# handed to libFuzzer as a read-only second corpus, after a fresh writable corpus under
# fuzz/target/smoke/. A failing input is saved under fuzz/artifacts/TARGET/. The last line is
# "N passed, N failed"; the exit status is non-zero when a target failed.
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -lt 2 ]; then
    echo "usage: $0 VECTORS SECONDS [TARGET...]" >&2
    exit 2
fi
vectors=$(cd "$OLDPWD" && cd "$1" && pwd)
seconds=$2
shift 2
CARGO=${CARGO:-cargo}

python3 seeds.py "$vectors" seeds
$CARGO fuzz build --sanitizer none
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <($CARGO fuzz list); fi

passed=0
failed=0
mkdir -p target/smoke
for t in "${targets[@]}"; do
    rm -rf "target/smoke/$t" && mkdir -p "target/smoke/$t"
    log=target/smoke/$t.log
    if $CARGO fuzz run --sanitizer none "$t" "target/smoke/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        passed=$((passed + 1))
        result=ok
    else
        failed=$((failed + 1))
        result=FAILED
        grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | head -n 20 || true
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    echo "fuzz $t: $result, ${runs:-?} runs in ${seconds}s, ${cov:-no coverage line} (log: fuzz/$log)"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
