#!/usr/bin/env bash
# Benchmark (not a test): `ocib build //...` on a generated workspace of N Go services
# (default 50) sharing 5 library packages. Each service is a go_library (package main,
# importing fmt and 1-2 of the libraries), a go_binary embedding it with an x_defs entry, and
# a pkg_tar of the binary, all made by one shared macro. Measured in one run, each with wall
# time, actions executed and cache hits (from ocib's summary line, `INFO: N processes: H disk
# cache hit, I internal, L local.`):
#   1. cold build with a fresh --disk_cache;
#   2. no-op build (median of RUNS runs);
#   3. rebuild after changing a string in one service's main.go, checking that only that
#      service's outputs changed (outputs are hardlinks into the CAS: an output an action
#      rewrote with new content has a new inode).
# An unchanged build is answered from its stored record (`cli/build_answer.rs`: the packages,
# sources and outputs it read, checked by status). As a baseline it times the same no-op with
# stored answers off (OCIB_BUILD_ANSWERS=0: packages from the load cache, then analysis and
# every action's cache lookup) and prints the ratio; PEER (another ocib binary, e.g. main's) is
# timed on the same workspace. The no-op runs are interleaved (ocib, answers off, peer, ocib,
# ...): medians and min-max, and the peak RSS of one more no-op run of each.
#
# Targets: no-op <= 150 ms and <= 64 MiB for 1,000 services, <= 30 ms for 50; the one-file
# edit re-runs only that service's compile(s), link and tar actions.
#
# Usage: bench/build.sh [N]        env: RUNS (no-op runs, default 7), OCIB_GO, GOCACHE,
#                                       OCIB (a given ocib binary, not built here), PEER,
#                                       WORKSPACE_ONLY=DIR (only write the workspace into DIR)
set -euo pipefail

n=${1:-50}
runs=${RUNS:-7}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/build.sh [N]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${OCIB:-${CARGO_TARGET_DIR:-$root/target}/release/ocib}
export GOCACHE=${GOCACHE:-$root/target/bench-gocache} # the standard library compiles once
if [[ -z ${OCIB_GO:-} ]] && ! command -v go > /dev/null; then
    echo "FAIL: no Go toolchain: put go on PATH or set OCIB_GO" >&2; exit 1
fi

if [[ -n ${WORKSPACE_ONLY:-} ]]; then
    # Only write the workspace, into this (new) directory, and keep it: for profiling.
    ws=$WORKSPACE_ONLY
    mkdir "$ws"
else
    ws=$(mktemp -d "${TMPDIR:-/tmp}/ocib-bench.XXXXXX")
    trap 'rm -rf "$ws" "$ws-cache" "$ws-scratch"' EXIT
fi
# Outside the workspace, as ~/.cache/ocib is: inside, `//...` would walk the CAS's shards.
cache=$ws-cache

if [[ -z ${OCIB:-} && -z ${WORKSPACE_ONLY:-} ]]; then
    echo "building ocib (release)..." >&2
    (cd "$root" && cargo build --release > "$ws/.build.log" 2>&1) \
        || { cat "$ws/.build.log" >&2; echo "FAIL: cargo build --release" >&2; exit 1; }
fi

# --- workspace --------------------------------------------------------------------------
# shellcheck source=bench/lib/services.sh
source "$root/bench/lib/services.sh"
gen_services "$ws" "$n"

[[ -z ${WORKSPACE_ONLY:-} ]] || exit 0

# --- measurements -----------------------------------------------------------------------
cd "$ws"
# Scratch files beside the workspace, not in it: a file created in its root would change the
# directory the package walk read, and the next build would be a real one.
scratch=$ws-scratch
mkdir -p "$scratch"
errlog=$scratch/stderr

now_ns() { date +%s%N; }

# One `ocib build //...` with extra flags ($@), stderr to $errlog; sets $dur (ns) and
# $total/$executed/$hits from the summary line. Fails loudly.
build() {
    local t0 t1 rc
    t0=$(now_ns)
    ${wrap:-} "${bin:-$ocib}" build --disk_cache="$cache" "$@" //... > /dev/null 2> "$errlog" \
        || { rc=$?; echo "FAIL: ocib build $* //... exited with $rc:" >&2; cat "$errlog" >&2; exit 1; }
    t1=$(now_ns)
    dur=$((t1 - t0))
    total=$(sed -n 's/^INFO: Build completed successfully, \([0-9]*\) total actions*$/\1/p' "$errlog")
    local processes
    processes=$(sed -n 's/^INFO: [0-9]* process\(es\)*[:.]//p' "$errlog")
    # (grep finds nothing for a kind that did not occur: not a failure under pipefail)
    count() { { grep -o "[0-9]* $1" <<< "$processes" || true; } | awk '{ s += $1 } END { print s + 0 }'; }
    hits=$(count 'disk cache hit') executed=$(($(count internal) + $(count local)))
    [[ -n $total && -n $processes$hits ]] || { echo "FAIL: no summary lines from ocib build:" >&2; cat "$errlog" >&2; exit 1; }
}

# One no-op build (after `$1`); appends its duration to the array named $2 and fails if it
# executed an action.
noop() {
    eval "$1"
    build --noshow_progress
    ((executed == 0)) || { echo "FAIL: no-op build executed $executed actions:" >&2; cat "$errlog" >&2; exit 1; }
    eval "$2+=(\"\$dur\")"
}
# "median (min-max)" in ms of the nanosecond durations given.
stats() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END {
    printf "%.1f ms (min-max %.1f-%.1f)", a[int((NR + 1) / 2)] / 1e6, a[1] / 1e6, a[NR] / 1e6 }'; }
median_ms() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] / 1e6 }'; }
ms() { awk -v d="$1" 'BEGIN { printf "%.1f", d / 1e6 }'; }

# 1. cold
build --noshow_progress
cold_ms=$(ms "$dur") cold="$total total, $executed executed, $hits cache hits"
((hits == 0)) || { echo "FAIL: cold build had $hits cache hits (disk cache not fresh?)" >&2; exit 1; }
out=$(./ocib-bin/svc/s0000/s0000_/s0000) || { echo "FAIL: running //svc/s0000 failed" >&2; exit 1; }
[[ $out == "hello from s0000 "* ]] || { echo "FAIL: x_defs not applied: s0000 printed '$out'" >&2; exit 1; }

# 2. no-op, interleaved with the baseline without the stat cache and the peer
# The first no-op stores the answer: the cold build's sources were written within the racy
# window (2 s), so it could not.
sleep 2
build --noshow_progress
[[ -z ${PEER:-} ]] || { bin=$PEER; build --noshow_progress; bin=""; } # the peer's own keys, once
a=() b=() p=()
for ((r = 0; r < runs; r++)); do
    noop : a
    noop_sum="$total total, $executed executed, $hits cache hits"
    noop 'export OCIB_BUILD_ANSWERS=0' b
    unset OCIB_BUILD_ANSWERS
    [[ -z ${PEER:-} ]] || { bin=$PEER; noop : p; bin=""; }
done
noop_ms=$(median_ms "${a[@]}") nostat_ms=$(median_ms "${b[@]}")
# (`wrap` set on its own line: as a prefix of the call it would be exported to ocib, and
# another environment is another build key.)
wrap="/usr/bin/time -f %M -o $scratch/rss"
build --noshow_progress
rss_kb=$(tail -n 1 "$scratch/rss")
OCIB_BUILD_ANSWERS=0 build --noshow_progress
rss_off_kb=$(tail -n 1 "$scratch/rss")
wrap=""

# 3. one edit: only that service's outputs change
svc=$(printf 's%04d' $((n / 2)))
outputs() { find ocib-out/bin -type f -printf "%i %P\n" | LC_ALL=C sort -k2; }
outputs > "$scratch/before"
sed -i 's/"hello from"/"hi from"/' "svc/$svc/main.go"
grep -q '"hi from"' "svc/$svc/main.go" || { echo "FAIL: could not edit svc/$svc/main.go" >&2; exit 1; }
build --noshow_progress
edit_ms=$(ms "$dur") edit="$total total, $executed executed, $hits cache hits"
outputs > "$scratch/after"
changed=$(LC_ALL=C join -1 2 -2 2 "$scratch/before" "$scratch/after" | awk '$2 != $3 { print $1 }')
outside=$(grep -v "^svc/$svc/" <<< "$changed" || true)
if [[ -n $outside || -z $changed ]] || ((executed == 0)); then
    echo "FAIL: editing svc/$svc/main.go changed outputs outside svc/$svc (or none):" >&2
    printf '%s\n' "${outside:-(none)}" >&2
    cat "$errlog" >&2
    exit 1
fi
mnemonics="$(wc -l <<< "$changed") outputs changed, all under svc/$svc"
out=$("./ocib-bin/svc/$svc/${svc}_/$svc") || { echo "FAIL: running //svc/$svc failed" >&2; exit 1; }
[[ $out == "hi from $svc "* ]] || { echo "FAIL: edited //svc/$svc printed '$out'" >&2; exit 1; }

echo "workspace:       $n services (go_library + go_binary with x_defs + pkg_tar), 5 shared libs"
echo "go:              $("${OCIB_GO:-go}" version 2>/dev/null || echo unknown); GOCACHE=$GOCACHE"
echo "cold build:      $cold_ms ms ($cold)"
echo "machine:         $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "no-op build:     median of $runs interleaved: $(stats "${a[@]}") ($noop_sum), peak RSS $((rss_kb / 1024)) MiB"
echo "                 targets: <= 30 ms for 50 services, <= 150 ms and <= 64 MiB for 1,000"
[[ -z ${PEER:-} ]] || echo "peer:            $PEER: no-op median $(stats "${p[@]}"); ratio $(awk -v a="$noop_ms" -v b="$(median_ms "${p[@]}")" 'BEGIN { printf "%.2f", a / b }')x peer"
echo "one-file edit:   $edit_ms ms ($edit)   target: only //svc/$svc's compiles, link, tar"
echo "                 ran $executed actions; $mnemonics"
echo "baseline:        no-op with stored answers off (load cache, analysis, every cache lookup): median of $runs: $(stats "${b[@]}"), peak RSS $((rss_off_kb / 1024)) MiB"
echo "ratio:           $(awk -v a="$noop_ms" -v b="$nostat_ms" 'BEGIN { printf "%.2f", a / b }')x baseline"
