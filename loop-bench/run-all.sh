#!/usr/bin/env bash
# Reruns every benchmark and rewrites BENCHMARKS.md, loop-bench/results/results.json and
# loop-bench/results/chart.png. Usage: loop-bench/run-all.sh [--quick]
# (about 7.5 minutes on 2 cores; --quick about 2). Installs what is missing first: uvloop and
# matplotlib from PyPI, wrk, strace and valgrind from Debian (each only if absent; a benchmark
# whose tool is still missing is skipped and named in the report's notes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing_py=()
for m in uvloop matplotlib; do
    python3 -c "import $m" 2>/dev/null || missing_py+=("$m")
done
if [ "${#missing_py[@]}" -gt 0 ]; then
    python3 -m pip install --quiet "${missing_py[@]}" || echo "run-all: pip install ${missing_py[*]} failed" >&2
fi
missing_deb=()
for t in wrk strace valgrind; do
    command -v "$t" >/dev/null || missing_deb+=("$t")
done
if [ "${#missing_deb[@]}" -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq "${missing_deb[@]}") >/dev/null \
        || echo "run-all: apt-get install ${missing_deb[*]} failed" >&2
fi
command -v node >/dev/null || echo "run-all: node is not installed; its rows are skipped" >&2
exec cargo run --release -p loop-bench -- all "$@"
