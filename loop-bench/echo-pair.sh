#!/usr/bin/env bash
# Paired echo runs: servers started once and pinned to CPU 0, the load generator pinned to CPU 1,
# rounds over every server (the same order each round); prints each server's median CPU time per
# request (/proc/PID/task/*/schedstat before and after) and its ratio to tokio's.
#
# Usage: loop-bench/echo-pair.sh ROUNDS REQUESTS_PER_CONN CONNS SIZE SERVER...
#   e.g. loop-bench/echo-pair.sh 9 3000 16 1024 mio uring raw-mio raw-uring-multishot tokio
# SERVER: mio, polling, uring (our echo example), streams-mio, raw-mio, raw-uring,
# raw-uring-multishot (the floors), tokio. Needs a release build of loop-bench.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${CARGO_TARGET_DIR:-target}/release/loop-bench"
rounds=$1; per=$2; conns=$3; size=$4; shift 4
mkdir -p target/loop-bench
declare -A pids addrs
port=$((23100 + RANDOM % 500))
for s in "$@"; do
  port=$((port+1)); kind=echo; be=$s
  case $s in streams-*) kind=echo-streams; be=${s#streams-};; esac
  taskset -c 0 "$bin" serve $kind $be 127.0.0.1:$port > "target/loop-bench/pair.$s.log" 2>&1 &
  pids[$s]=$!; addrs[$s]=127.0.0.1:$port
done
sleep 1
cpu() { local t=0; for f in /proc/$1/task/*/schedstat; do read a b c < $f; t=$((t+a)); done; echo $t; }
for r in $(seq $rounds); do
  for s in "$@"; do
    b=$(cpu ${pids[$s]})
    taskset -c 1 "$bin" load ${addrs[$s]} $conns $size $per > /dev/null 2>&1
    a=$(cpu ${pids[$s]})
    echo "$s $(( (a-b) / (per*conns) ))"
  done
done | python3 -c "
import sys,statistics,collections
d=collections.defaultdict(list)
for l in sys.stdin:
    s,v=l.split(); d[s].append(int(v))
ref=statistics.median(d.get('tokio',[1]))
for s,v in d.items():
    m=statistics.median(v); print(f'{s:14s} median {m:7.0f} ns/req  ratio-to-tokio {m/ref:.3f}  runs {v}')
"
for s in "$@"; do kill ${pids[$s]}; done
