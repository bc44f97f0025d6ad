#!/usr/bin/env bash
# Instruction-count profile of one micro-benchmark subject with callgrind (repeatable on a
# shared machine, unlike timings). Runs it at two sizes and prints each function's own
# instructions per operation, (Ir(n2) - Ir(n1)) / (n2 - n1), so start-up costs cancel out.
#
# Usage: loop-bench/profile.sh BENCH SUBJECT [TOP]
#   e.g. loop-bench/profile.sh call_soon ours-mio; loop-bench/profile.sh create_task tokio
# BENCH: call_soon, create_task, timers; SUBJECT: ours-mio, ours-polling, ours-uring, floor
# (call_soon), tokio (create_task, timers). Needs valgrind. Outputs stay in target/loop-bench/.
#
# BENCH "echo" profiles an echo server instead (SUBJECT: mio, polling, uring, tokio, streams-mio,
# streams-uring, raw-mio, raw-uring, or a peer: peer-monoio, peer-compio, peer-tokio-uring,
# peer-glommio, peer-smol): a fresh server under callgrind per size, 16 connections x
# 1 KiB, n1 then n2 requests per connection; the figures are then instructions per request, in
# user space (syscalls are strace's part; the kernel's io_uring work is not counted either).
# A peer is the program of loop-bench/peers (a workspace of its own), built in release with only
# its own feature into target/peers as loop-bench/peers/run.sh builds it, and run as
# `peer-NAME echo ADDR`; loop-bench is still built for its load generator.
# The profile is dumped with callgrind_control (vgdb, which needs ptrace: root, or
# kernel.yama.ptrace_scope 0) once the load is done, and the server is then killed.
#
# LOOP_BENCH_FEATURES=tracing builds loop-bench with those cargo features (tracing: the loop's
# tracing feature compiled in, no subscriber).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bench="$1"; subject="$2"; top="${3:-15}"
n1=20000; n2=120000
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -p loop-bench ${LOOP_BENCH_FEATURES:+--features "$LOOP_BENCH_FEATURES"} >&2
bin="${CARGO_TARGET_DIR:-target}/release/loop-bench"
dir=target/loop-bench; mkdir -p "$dir"
if [ "$bench" = echo ]; then
    n1=200; n2=1200
    command -v callgrind_control >/dev/null || { echo "callgrind_control is missing (valgrind package)" >&2; exit 1; }
    case "$subject" in peer-*)
        cargo build --release --locked --manifest-path loop-bench/peers/Cargo.toml \
            --target-dir "${CARGO_TARGET_DIR:-target}/peers" --no-default-features \
            --features "${subject#peer-}" --bin "$subject" >&2
        # glommio wants RLIMIT_MEMLOCK >= 512 KiB for its rings: raised where permitted.
        ulimit -l unlimited 2>/dev/null || true;;
    esac
fi
for n in $n1 $n2; do
    out="$dir/profile.$bench.$subject.$n.out"
    if [ "$bench" = echo ]; then
        port=$((21000 + RANDOM % 1000))
        case "$subject" in
            streams-*) server=("$bin" serve echo-streams "${subject#streams-}");;
            peer-*) server=("${CARGO_TARGET_DIR:-target}/peers/release/$subject" echo);;
            *) server=("$bin" serve echo "$subject");;
        esac
        valgrind --tool=callgrind --callgrind-out-file="$out" \
            "${server[@]}" "127.0.0.1:$port" > "$dir/profile.echo.log" 2>&1 &
        vpid=$!
        for _ in $(seq 200); do grep -q listening "$dir/profile.echo.log" && break; sleep 0.1; done
        timeout 300 "$bin" load "127.0.0.1:$port" 16 1024 "$n" >&2
        # Take the profile with a dump, not at exit: valgrind before 3.23 runs io_uring_enter
        # with every signal blocked (its bug 428364), and the idle uring server waits in it
        # with no timeout, so a SIGTERM would stay pending for ever and callgrind never write
        # its file. callgrind_control reaches the process through vgdb, which interrupts a
        # blocked system call with ptrace. Done the same way for every backend, so the
        # figures compare.
        rm -f "$out.1"
        callgrind_control --dump "$vpid" >&2
        kill -KILL "$vpid"; wait "$vpid" 2>/dev/null || true
        mv "$out.1" "$out"
    else
        valgrind --tool=callgrind --callgrind-out-file="$out" \
            "$bin" micro-one "$bench" "$subject" "$n" >/dev/null 2>&1
    fi
    callgrind_annotate --auto=no --threshold=100 "$dir/profile.$bench.$subject.$n.out" > "$dir/profile.$bench.$subject.$n.txt"
done
python3 - "$dir/profile.$bench.$subject.$n1.txt" "$dir/profile.$bench.$subject.$n2.txt" "$n1" "$n2" "$top" <<'PY'
import re, sys
def load(path):
    out = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+([^=].*)$", line)
        if m:
            name = re.sub(r" \[[^\]]*\]$", "", m.group(2))
            # Inlined code is reported per source file: add it up per function.
            name = name.split(":", 1)[-1] if not name.startswith("PROGRAM") else name
            name = re.sub(r"<impl loop_api::abstract_loop::AbstractEventLoop for (\S+)>", r"<\1 as AbstractEventLoop>", name)
            out[name] = out.get(name, 0) + int(m.group(1).replace(",", ""))
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
dn = int(sys.argv[4]) - int(sys.argv[3])
if "echo" in sys.argv[1]:
    dn *= 16  # connections: per request
total = (b.get("PROGRAM TOTALS", 0) - a.get("PROGRAM TOTALS", 0)) / dn
rows = sorted(((b.get(k, 0) - a.get(k, 0)) / dn, k) for k in b if k != "PROGRAM TOTALS")
print(f"{total:.0f} instructions per operation; own instructions per operation by function:")
for v, k in reversed(rows[-int(sys.argv[5]):]):
    print(f"{v:8.1f}  {100 * v / total:5.1f}%  {k[:150]}")
PY
