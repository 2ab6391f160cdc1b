#!/usr/bin/env bash
# The fuzz campaign (not a test): builds the cargo-fuzz targets in fuzz/ (label, pattern,
# query_parse, bazelrc, build_file, cst_config) and runs each for a bounded time with
# libFuzzer, starting from the seeds in fuzz/corpus/<target>/ (new inputs it finds are kept
# there, git-ignored). A run per target stops at the first finding: a crash (panic, abort,
# stack overflow), a timeout (one input running longer than FUZZ_TIMEOUT seconds: a hang) or
# an out-of-memory (RSS above FUZZ_RSS_MB). Prints per target the executions run and each
# finding's reproducer path; exits 1 if anything was found.
#
# Replay one reproducer: fuzz/target/<triple>/release/<target> <path-to-reproducer>
#
# Usage: bench/fuzz.sh [TARGET...]     (default: all targets)
# env:   FUZZ_SECONDS  per target, default 60      FUZZ_TIMEOUT  per input, default 10 s
#        FUZZ_RSS_MB   default 2048                FUZZ_OUT      where findings and logs go,
#                                                                default fuzz/artifacts/<date>
#
# cargo-fuzz needs nightly-only rustc flags; on a stable toolchain they are enabled with
# RUSTC_BOOTSTRAP=1. No sanitizer (`--sanitizer none`): the crate has no unsafe code of its
# own, and ASan would triple the build time on this machine; libFuzzer's coverage guidance
# and its crash/timeout/RSS detection still apply.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
out=${FUZZ_OUT:-$root/fuzz/artifacts/$(date +%Y%m%d-%H%M%S)}
all_targets=(label pattern query_parse bazelrc build_file cst_config)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for n in "$seconds" "$timeout" "$rss_mb"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "FUZZ_SECONDS, FUZZ_TIMEOUT and FUZZ_RSS_MB must be positive integers" >&2; exit 2; }
done

if ! cargo fuzz --version > /dev/null 2>&1; then
    echo "installing cargo-fuzz (compiles for a few minutes)..."
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cd "$root"
echo "building fuzz targets..."
mkdir -p "$root/fuzz/target"
cargo fuzz build --sanitizer none -O > "$root/fuzz/target/build.log" 2>&1 \
    || { cat "$root/fuzz/target/build.log" >&2; echo "FAIL: building the fuzz targets" >&2; exit 1; }
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=$root/fuzz/target/$triple/release

mkdir -p "$out"
found=0
printf '%-12s %12s  %s\n' target executions findings
for t in "${targets[@]}"; do
    [[ -x $bin_dir/$t ]] || { echo "FAIL: no fuzz target '$t' (have: ${all_targets[*]})" >&2; exit 2; }
    mkdir -p "$out/$t" "$root/fuzz/corpus/$t"
    log=$out/$t/fuzz.log
    set +e
    "$bin_dir/$t" "$root/fuzz/corpus/$t" \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
        -malloc_limit_mb="$rss_mb" -print_final_stats=1 -artifact_prefix="$out/$t/" \
        > "$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    mapfile -t artifacts < <(find "$out/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
    if [[ ${#artifacts[@]} -gt 0 ]]; then
        found=1
        printf '%-12s %12s  %s\n' "$t" "${execs:-?}" "${#artifacts[@]} (log: $log)"
        for a in "${artifacts[@]}"; do
            printf '%-12s %12s    %s\n' '' '' "$a"
        done
    elif [[ $rc -ne 0 ]]; then
        # Died without leaving a reproducer (e.g. killed from outside): a finding all the same.
        found=1
        printf '%-12s %12s  %s\n' "$t" "${execs:-?}" "exited $rc without a reproducer (log: $log)"
    else
        printf '%-12s %12s  %s\n' "$t" "${execs:-?}" none
    fi
done
if [[ $found -ne 0 ]]; then
    echo "FAIL: findings above; reproducers and logs in $out"
    exit 1
fi
echo "ok: no findings ($seconds s per target)"
