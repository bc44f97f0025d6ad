#!/usr/bin/env bash
# Runs wrk against the HTTP example on each backend: a load check (no errors, no dropped
# connections), not a timed test. Usage: loop-bench/wrk.sh [seconds] [connections]
# Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs="${1:-10}"
conns="${2:-64}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --example http_hello >&2
bin=target/release/examples/http_hello
status=0
for backend in mio uring polling; do
    port=$((18080 + RANDOM % 1000))
    LOOP_BACKEND="$backend" "$bin" "127.0.0.1:$port" > /tmp/http_hello_$backend.log 2>&1 &
    pid=$!
    for _ in $(seq 50); do
        grep -q "http server on" /tmp/http_hello_$backend.log 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "== $backend: server did not start: $(cat /tmp/http_hello_$backend.log)"
        status=1
        continue
    fi
    echo "== $backend ($(head -1 /tmp/http_hello_$backend.log))"
    out=$(wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/")
    echo "$out"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    # wrk prints "Socket errors: ..." and "Non-2xx or 3xx responses: N" only when they happen.
    if grep -q "Socket errors\|Non-2xx" <<<"$out"; then
        echo "== $backend: ERRORS"
        status=1
    fi
done
exit "$status"
