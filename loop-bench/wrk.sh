#!/usr/bin/env bash
# Runs wrk against the HTTP example on each backend: a load check (no errors, no dropped
# connections), not a timed test. Usage: loop-bench/wrk.sh [seconds] [connections]
# Needs wrk (Debian: apt-get install wrk).
#
# WRK_SERVERS picks the servers (default "mio uring polling"); "tokio" is the tokio hello
# server of loop-bench, found at LOOP_BENCH_BIN (the harness sets both). With more than one
# CPU the server is pinned to CPU 0 and wrk to CPU 1, and each run ends with a line
# "server-cpu-ms: N" (the server's user+system time during the run, from /proc/PID/stat).
# WRK_KIND=hyper runs loop-bench's hyper servers instead (`loop-bench serve hyper SERVER`, at
# LOOP_BENCH_BIN), ours on each backend and tokio's alike.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs="${1:-10}"
conns="${2:-64}"
servers="${WRK_SERVERS:-mio uring polling}"
kind="${WRK_KIND:-http}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
if [ "$kind" = http ]; then
    cargo build --release --example http_hello >&2
fi
bin="${CARGO_TARGET_DIR:-target}/release/examples/http_hello"
pin_server=()
pin_wrk=()
if [ "$(nproc)" -gt 1 ] && command -v taskset >/dev/null; then
    pin_server=(taskset -c 0)
    pin_wrk=(taskset -c 1)
fi
# utime + stime of a process, in milliseconds (fields 14 and 15, counted after the ')').
cpu_ms() {
    local rest
    rest=$(sed 's/.*) //' "/proc/$1/stat")
    # shellcheck disable=SC2086
    set -- $rest
    echo $(( (${12} + ${13}) * 1000 / $(getconf CLK_TCK) ))
}
status=0
for server in $servers; do
    port=$((18080 + RANDOM % 1000))
    log=/tmp/wrk_${kind}_$server.log
    if [ "$kind" = hyper ]; then
        [ -n "${LOOP_BENCH_BIN:-}" ] || { echo "== $server: set LOOP_BENCH_BIN"; status=1; continue; }
        "${pin_server[@]}" "$LOOP_BENCH_BIN" serve hyper "$server" "127.0.0.1:$port" > "$log" 2>&1 &
    elif [ "$server" = tokio ]; then
        [ -n "${LOOP_BENCH_BIN:-}" ] || { echo "== tokio: set LOOP_BENCH_BIN"; status=1; continue; }
        "${pin_server[@]}" "$LOOP_BENCH_BIN" serve http tokio "127.0.0.1:$port" > "$log" 2>&1 &
    else
        LOOP_BACKEND="$server" "${pin_server[@]}" "$bin" "127.0.0.1:$port" > "$log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 50); do
        grep -q "http server on\|listening on" "$log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "== $server: server did not start: $(cat "$log")"
        status=1
        continue
    fi
    echo "== $server ($(head -1 "$log"))"
    before=$(cpu_ms "$pid")
    out=$("${pin_wrk[@]}" wrk --latency -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/")
    after=$(cpu_ms "$pid")
    echo "$out"
    echo "server-cpu-ms: $((after - before))"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    # wrk prints "Socket errors: ..." and "Non-2xx or 3xx responses: N" only when they happen.
    if grep -q "Socket errors\|Non-2xx" <<<"$out"; then
        echo "== $server: ERRORS"
        status=1
    fi
done
exit "$status"
