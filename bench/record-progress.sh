#!/usr/bin/env bash
# Records what a user sees during a cold build of the bundled example (README's quick start:
# `ocib build //cmd/worker:image_tarball` in testdata/images) on a terminal: a tmux pane of
# 100x24 captured every 2 seconds (frames, for README). Not a test: the acceptance artefact
# of issue 16 (running actions with their timers, the Go standard library compile named).
#
# Cold: a fresh --disk_cache and a fresh GOCACHE, so every action runs, the Go standard
# library included.
#
# Usage: bench/record-progress.sh [OUT_DIR]      env: OCIB (default target/release/ocib)
# Writes OUT_DIR/progress-frames.txt (default: target/recording).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/target/recording}
ocib=${OCIB:-$root/target/release/ocib}
[[ -x $ocib ]] || { echo "FAIL: no ocib at $ocib (cargo build --release, or set OCIB)" >&2; exit 1; }
for tool in tmux go; do
    command -v "$tool" > /dev/null || { echo "FAIL: $tool not found" >&2; exit 1; }
done
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'tmux kill-session -t ocib-record 2> /dev/null || true; rm -rf "$tmp"' EXIT

# A fresh copy of the example and empty caches, for a cold build.
fresh() {
    rm -rf "$tmp/ws" "$tmp/cache" "$tmp/gocache"
    cp -a "$root/testdata/images" "$tmp/ws"
    rm -rf "$tmp/ws"/ocib-*
}
cmd="GOCACHE=$tmp/gocache $ocib --nohome_rc --nosystem_rc build --disk_cache=$tmp/cache //cmd/worker:image_tarball"

# 1. Frames from a tmux pane.
fresh
tmux new-session -d -s ocib-record -x 100 -y 24 -c "$tmp/ws" "bash -c '$cmd; echo EXIT=\$?; sleep 600'"
: > "$out/progress-frames.txt"
start=$(date +%s)
while :; do
    sleep 2
    frame=$(tmux capture-pane -p -t ocib-record | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}')
    printf -- '--- %ss\n%s\n' "$(($(date +%s) - start))" "$frame" >> "$out/progress-frames.txt"
    grep -q '^EXIT=' <<< "$frame" && break
    (($(date +%s) - start < 900)) || { echo "FAIL: the build took over 15 minutes" >&2; exit 1; }
done
tmux kill-session -t ocib-record 2> /dev/null || true
grep -q '^EXIT=0' "$out/progress-frames.txt" || { cat "$out/progress-frames.txt" >&2; echo "FAIL: the build failed" >&2; exit 1; }

echo "wrote $out/progress-frames.txt ($(grep -c '^--- ' "$out/progress-frames.txt") frames)"
