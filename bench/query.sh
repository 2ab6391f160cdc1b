#!/usr/bin/env bash
# Benchmark (not a test): wall time and peak RSS of `ocib query //...` on a generated
# workspace of N service packages (default 1000) built with rules_go, rules_pkg, rules_oci
# and container_structure_test through one shared macro, as in a real monorepo. Each
# service yields 14 targets (go_library, go_binary, pkg_tar, oci_image with its hidden
# _write_* targets, oci_tarball, container_structure_test, oci_push); half of them also
# depend on one of 10 shared go_library packages. As a baseline it times reading every
# BUILD file (find | xargs cat) and prints the ratio.
#
# Target: under 300 ms for 1,000 packages on a 2-core machine.
#
# Usage: bench/query.sh [N]        env: RUNS (timed runs, default 11),
#                                       PEER (another ocib binary, e.g. an older build: timed
#                                       interleaved with this one, A B A B, on the same workspace)
set -euo pipefail

n=${1:-1000}
runs=${RUNS:-11}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${CARGO_TARGET_DIR:-$root/target}/release/ocib

ws=$(mktemp -d "${TMPDIR:-/tmp}/ocib-bench.XXXXXX")
trap 'rm -rf "$ws"' EXIT

echo "building ocib (release)..." >&2
(cd "$root" && cargo build --release > "$ws/.build.log" 2>&1) \
    || { cat "$ws/.build.log" >&2; echo "FAIL: cargo build --release" >&2; exit 1; }

# --- workspace --------------------------------------------------------------------------
cat > "$ws/MODULE.bazel" <<'EOF'
module(name = "bench")

bazel_dep(name = "rules_oci", version = "2.3.2")
bazel_dep(name = "rules_pkg", version = "1.3.0")
bazel_dep(name = "rules_go", version = "0.62.0", repo_name = "io_bazel_rules_go")
bazel_dep(name = "container_structure_test", version = "1.22.0")
EOF

mkdir -p "$ws/tools" "$ws/base"
: > "$ws/tools/BUILD.bazel"
cat > "$ws/tools/service.bzl" <<'EOF'
"""One service: Go binary, layer tarball, image, local tarball, structure test, push."""

load("@container_structure_test//:defs.bzl", "container_structure_test")
load("@io_bazel_rules_go//go:def.bzl", "go_binary", "go_library")
load("@rules_oci//oci:defs.bzl", "oci_image", "oci_push", "oci_tarball")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

def service(name, deps = []):
    go_library(
        name = name + "_lib",
        srcs = native.glob(["*.go"]),
        importpath = "example.com/bench/svc/" + name,
        deps = deps,
    )
    go_binary(name = name, embed = [":" + name + "_lib"])
    pkg_tar(name = "tar_" + name, srcs = [":" + name])
    oci_image(
        name = "image",
        base = "//base",
        entrypoint = ["/sbin/tini", "--", "/" + name],
        env = {"LOG_LEVEL": "info", "SERVICE": name},
        tars = [":tar_" + name],
    )
    oci_tarball(name = "image_tarball", image = ":image", repo_tags = [name + ":candidate"])
    container_structure_test(
        name = "image_test",
        configs = ["test.yaml"],
        image = ":image",
        tags = ["requires-network"],
    )
    oci_push(
        name = "push",
        image = ":image",
        repository = "registry.example.com/bench/" + name,
        remote_tags = ["candidate", "latest"],
    )
EOF

cat > "$ws/base/BUILD.bazel" <<'EOF'
load("@rules_oci//oci:defs.bzl", "oci_image")

oci_image(name = "base", os = "linux", architecture = "amd64", visibility = ["//visibility:public"])
EOF

for ((l = 0; l < 10; l++)); do
    lib=$(printf 'l%02d' "$l")
    mkdir -p "$ws/lib/$lib"
    printf 'package %s\n' "$lib" > "$ws/lib/$lib/$lib.go"
    cat > "$ws/lib/$lib/BUILD.bazel" <<EOF
load("@io_bazel_rules_go//go:def.bzl", "go_library")

go_library(name = "$lib", srcs = glob(["*.go"]), importpath = "example.com/bench/lib/$lib",
           visibility = ["//visibility:public"])
EOF
done

for ((i = 0; i < n; i++)); do
    svc=$(printf 's%04d' "$i")
    d=$ws/svc/$svc
    mkdir -p "$d"
    deps=""
    ((i % 2 == 0)) && deps=$(printf ', deps = ["//lib/l%02d"]' $((i / 2 % 10)))
    printf 'load("//tools:service.bzl", "service")\n\nservice(name = "%s"%s)\n' "$svc" "$deps" > "$d/BUILD.bazel"
    printf 'package main\n\nfunc main() {}\n' > "$d/main.go"
    printf 'schemaVersion: 2.0.0\ncommandTests: []\n' > "$d/test.yaml"
done

# --- measurements -----------------------------------------------------------------------
cd "$ws"
errlog=$ws/.stderr

# One query run, output to $1, optionally under a wrapper command ($2...); fails loudly.
query() {
    local out=$1 rc
    shift
    "$@" "${bin:-$ocib}" query //... > "$out" 2> "$errlog" \
        || { rc=$?; echo "FAIL: ocib query //... exited with $rc:" >&2; cat "$errlog" >&2; exit 1; }
}

now_ns() { date +%s%N; }

# Median/min/max (ms, 1 decimal) of the nanosecond durations given as arguments.
stats() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END {
    printf "%.1f %.1f %.1f\n", a[int((NR + 1) / 2)] / 1e6, a[1] / 1e6, a[NR] / 1e6 }'; }

query "$ws/.targets" # warm-up, and the target count
targets=$(wc -l < "$ws/.targets")

[[ -z ${PEER:-} ]] || bin=$PEER query /dev/null # the peer's warm-up
q=()
p=()
for ((r = 0; r < runs; r++)); do
    t0=$(now_ns); query /dev/null; t1=$(now_ns)
    q+=($((t1 - t0)))
    if [[ -n ${PEER:-} ]]; then
        t0=$(now_ns); bin=$PEER query /dev/null; t1=$(now_ns)
        p+=($((t1 - t0)))
    fi
done
read -r q_med q_min q_max <<< "$(stats "${q[@]}")"

query /dev/null /usr/bin/time -f %M -o "$ws/.rss" # one more run for the peak RSS
rss_kb=$(tail -n 1 "$ws/.rss")

b=()
find . -name BUILD.bazel -print0 | xargs -0 cat > /dev/null # warm-up
for ((r = 0; r < runs; r++)); do
    t0=$(now_ns); find . -name BUILD.bazel -print0 | xargs -0 cat > /dev/null; t1=$(now_ns)
    b+=($((t1 - t0)))
done
read -r b_med _ _ <<< "$(stats "${b[@]}")"

echo "packages:        $((n + 12)) ($n services, 10 libs, base, tools)"
echo "targets:         $targets"
echo "query //...:     $runs runs after 1 warm-up: median $q_med ms, min $q_min ms, max $q_max ms"
echo "peak RSS:        $rss_kb KB"
if [[ -n ${PEER:-} ]]; then
    read -r p_med p_min p_max <<< "$(stats "${p[@]}")"
    echo "peer ($PEER): median $p_med ms, min $p_min ms, max $p_max ms (interleaved); ratio $(awk -v q="$q_med" -v p="$p_med" 'BEGIN { printf "%.2f", q / p }')x peer"
fi
echo "baseline:        find | xargs cat of all BUILD files: median $b_med ms"
echo "ratio:           $(awk -v q="$q_med" -v b="$b_med" 'BEGIN { printf "%.1f", q / b }')x baseline"
if command -v bazel > /dev/null; then
    echo "bazel:           on PATH ($(command -v bazel)) but skipped: it cannot load these rule sets offline"
fi
echo
awk -v n="$n" -v t="$targets" -v m="$q_med" -v kb="$rss_kb" \
    'BEGIN { printf "query //... on %d packages (%d targets): median %.0f ms, peak RSS %.0f MB\n", n, t, m, kb / 1024 }'
