#!/usr/bin/env bash
# The peers (monoio, compio, glommio, tokio-uring: io_uring runtimes; smol: the `polling`
# crate's runtime) beside ours (mio, polling, uring) and tokio: the echo matrix, memory per idle
# connection, and the file benchmark. Builds everything in release (a peer that does not build
# gets a line in the report saying why), runs `peers-bench`, and rewrites the peers' section of
# BENCHMARKS.md and loop-bench/results/peers.{json,md}. About 10 minutes on 2 cores, plus the
# first build (about 10 more).
#
# Usage: loop-bench/peers/run.sh [echo] [memory] [file] [--quick] [--reps N] [--rounds N]
#                                [--idle N] [--file PATH]
#   no step named: all three. --reps: rounds per echo cell (5; --quick 1); --rounds: file rounds
#   (5); --idle: idle connections (10000); --file: the 256 MiB file (target/peers/file-256m.bin,
#   written if missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
target="${CARGO_TARGET_DIR:-target}"
peers_target="$target/peers"
manifest=loop-bench/peers/Cargo.toml
mkdir -p "$peers_target"
notes="$peers_target/build-notes.txt"
: > "$notes"
# glommio wants RLIMIT_MEMLOCK >= 512 KiB for its rings: raised where permitted (8 MiB here is enough).
ulimit -l unlimited 2>/dev/null || true

cargo build --release -p loop-bench
build() {
    cargo build --release --locked --manifest-path "$manifest" --target-dir "$peers_target" \
        --no-default-features "$@"
}
peers=(monoio compio glommio tokio-uring smol)
# All at once first (one dependency build); if that fails, each on its own, so that one peer
# that does not build only loses its own rows.
if build --features "$(IFS=,; echo "${peers[*]}")" --bins; then
    peers=()
else
    build --bin peers-bench
fi
rustc_version=$(rustc -V | cut -d' ' -f1-2)
for p in "${peers[@]}"; do
    log="$peers_target/build-$p.log"
    if ! build --features "$p" --bin "peer-$p" > "$log" 2>&1; then
        err=$(grep -m1 -E '^error' "$log" || tail -n 1 "$log")
        echo "$p: does not build with $rustc_version here: ${err:0:300} (log: $log)" >> "$notes"
        rm -f "$peers_target/release/peer-$p"
        echo "peers: $p did not build, see $log" >&2
    fi
done
exec "$peers_target/release/peers-bench" "$@" \
    --loop-bench "$target/release/loop-bench" --bin-dir "$peers_target/release" --notes "$notes"
