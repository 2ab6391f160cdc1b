#!/usr/bin/env bash
# Benchmark (not a test): wall time and peak RSS of `ocib query //...` and
# `ocib query 'kind(oci_push, //...)'` on a generated
# workspace of N service packages (default 1000) built with rules_go, rules_pkg, rules_oci
# and container_structure_test through one shared macro, as in a real monorepo. Each
# service yields 14 targets (go_library, go_binary, pkg_tar, oci_image with its hidden
# _write_* targets, oci_load (rules_oci 2.x has no oci_tarball), container_structure_test, oci_push); half of them also
# depend on one of 10 shared go_library packages. As a baseline it times reading every
# BUILD file (find | xargs cat) and prints the ratio.
#
# Peer: Bazel 4.2.3 (`bazel` on PATH, Debian's bazel-bootstrap; scripts/setup.sh installs it)
# on a copy of the same packages, offline: the rule sets are stand-ins with the same macro
# names and a similar number of targets per macro (one Starlark rule with the attributes the
# macros pass), loaded through `local_repository` in a WORKSPACE. Bazel's copy and its output
# root are siblings of ocib's workspace, not inside it. Timed interleaved with ocib (ocib cold,
# ocib repeated, ocib edited, bazel warm, bazel warm edited, bazel cold, ...): warm is
# `bazel query` with its server up and the packages already loaded (Skyframe's cache), cold is
# after `bazel shutdown` (server start and a full load; the install base stays extracted).
# Skipped, with a note, when bazel is not installed. BAZEL=0 skips it too.
# ocib runs three times per round: with its load cache (ocib-out/load-cache) removed, so every
# BUILD file is evaluated; repeated on the unchanged workspace (its stored answer); and after
# one service's BUILD file gained a target (that package evaluated, the others from the cache).
# Bazel's warm server gets the same edit before its second run.
#
# Target (issue 17): at 5,000 packages, at most 0.5x a warm Bazel server; a repeated
# unchanged query at most 100 ms.
#
# Usage: bench/query.sh [N]        env: RUNS (timed runs, default 11),
#                                       PEER (another ocib binary, e.g. an older build: timed
#                                       interleaved with this one, A B A B, on the same workspace),
#                                       EXPR (one query instead of both, e.g. 'deps(//svc/s0001:push)'),
#                                       BAZEL (0: no Bazel peer), BAZEL_COLD (0: no cold Bazel runs)
set -euo pipefail

n=${1:-1000}
runs=${RUNS:-11}
expr=${EXPR:-//...}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${OCIB:-${CARGO_TARGET_DIR:-$root/target}/release/ocib} # OCIB: a given binary, not built here

# Everything lives under one temporary directory: ocib's workspace ($ws), and beside it (never
# inside it) Bazel's copy and Bazel's output root, and the script's own scratch files. Inside
# $ws they would be part of ocib's `//...` walk (Bazel's output tree is large and every Bazel
# command changes it, so ocib's stored walk and answers would not hold from one round to the
# next), while Bazel never walks its own output base.
top=$(mktemp -d "${TMPDIR:-/tmp}/ocib-bench.XXXXXX")
ws=$top/ws
mkdir "$ws"
trap 'rm -rf "$top"' EXIT

if [[ -z ${OCIB:-} ]]; then
    echo "building ocib (release)..." >&2
    (cd "$root" && cargo build --release > "$top/build.log" 2>&1) \
        || { cat "$top/build.log" >&2; echo "FAIL: cargo build --release" >&2; exit 1; }
fi

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
load("@rules_oci//oci:defs.bzl", "oci_image", "oci_load", "oci_push")
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
    oci_load(name = "image_load", image = ":image", repo_tags = [name + ":candidate"])
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

# --- Bazel's copy: the same packages, stand-in rule sets through local_repository ----------
use_bazel=0
if [[ ${BAZEL:-1} != 0 ]] && command -v bazel > /dev/null; then
    use_bazel=1
    bws=$top/bazel-ws
    mkdir -p "$bws"
    cp -r "$ws/tools" "$ws/base" "$ws/lib" "$ws/svc" "$bws/"
    si=$bws/.standins
    # One rule for every stand-in kind: it declares the attributes the macros pass and
    # produces nothing (query never runs it).
    stub_rule='def _impl(ctx):
    return []

stub = rule(
    implementation = _impl,
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "deps": attr.label_list(),
        "embed": attr.label_list(),
        "tars": attr.label_list(allow_files = True),
        "configs": attr.label_list(allow_files = True),
        "base": attr.label(),
        "image": attr.label(),
        "importpath": attr.string(),
        "repository": attr.string(),
        "os": attr.string(),
        "architecture": attr.string(),
        "entrypoint": attr.string_list(),
        "repo_tags": attr.string_list(),
        "remote_tags": attr.string_list(),
        "env": attr.string_dict(),
    },
)
'
    standin() { # $1 repo name, $2 path of the .bzl inside it, $3 its macros
        mkdir -p "$si/$1/$(dirname "$2")"
        echo "workspace(name = \"$1\")" > "$si/$1/WORKSPACE"
        : > "$si/$1/BUILD.bazel"
        [[ $(dirname "$2") == . ]] || : > "$si/$1/$(dirname "$2")/BUILD.bazel"
        printf '%s\n%s\n' "$stub_rule" "$3" > "$si/$1/$2"
    }
    # As the real macros: the same targets per call as ocib's faces of rules_oci 2.x
    # (oci_image: its _write_* files, the index.json copy, directory_path and the digest;
    # oci_load and oci_push: their tags files), go_binary and pkg_tar one target each.
    standin io_bazel_rules_go go/def.bzl 'def go_library(name, **kwargs):
    stub(name = name, **kwargs)

def go_binary(name, **kwargs):
    stub(name = name, **kwargs)'
    standin rules_pkg pkg.bzl 'def pkg_tar(name, **kwargs):
    stub(name = name, **kwargs)'
    standin rules_oci oci/defs.bzl 'def oci_image(name, env = {}, entrypoint = [], **kwargs):
    stub(name = name + "_write_env", env = env)
    stub(name = name + "_write_entrypoint", entrypoint = entrypoint)
    stub(name = name, env = env, entrypoint = entrypoint, **kwargs)
    stub(name = name + "_index_json_cp", image = name)
    stub(name = name + "_index_json", srcs = [name + "_index_json_cp"])
    stub(name = name + ".digest", srcs = [name + "_index_json"])

def oci_load(name, repo_tags = [], **kwargs):
    stub(name = name + "_write_tags", repo_tags = repo_tags)
    stub(name = name, repo_tags = repo_tags, **kwargs)

def oci_push(name, remote_tags = [], **kwargs):
    stub(name = name + "_write_tags", remote_tags = remote_tags)
    stub(name = name, remote_tags = remote_tags, **kwargs)'
    standin container_structure_test defs.bzl 'def container_structure_test(name, **kwargs):
    stub(name = name, **kwargs)'
    {
        echo 'workspace(name = "bench")'
        for r in io_bazel_rules_go rules_pkg rules_oci container_structure_test; do
            echo "local_repository(name = \"$r\", path = \".standins/$r\")"
        done
    } > "$bws/WORKSPACE"
    echo ".standins" > "$bws/.bazelignore"
    bazel_root=$top/bazel-root
    bazelq() { (cd "$bws" && bazel --output_user_root="$bazel_root" query "$expr" 2> "$errlog") \
        || { echo "FAIL: bazel query $expr in $bws:" >&2; cat "$errlog" >&2; exit 1; }; }
    bazel_shutdown() { (cd "$bws" && bazel --output_user_root="$bazel_root" shutdown 2> /dev/null) || true; }
    trap 'bazel_shutdown; rm -rf "$top"' EXIT
fi

# --- measurements -----------------------------------------------------------------------
cd "$ws"
errlog=$top/stderr

# One query run, output to $1, optionally under a wrapper command ($2...); fails loudly.
query() {
    local out=$1 rc
    shift
    "$@" "${bin:-$ocib}" query "$expr" > "$out" 2> "$errlog" \
        || { rc=$?; echo "FAIL: ocib query $expr exited with $rc:" >&2; cat "$errlog" >&2; exit 1; }
}

now_ns() { date +%s%N; }

# Median/min/max (ms, 1 decimal) of the nanosecond durations given as arguments.
stats() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END {
    printf "%.1f %.1f %.1f\n", a[int((NR + 1) / 2)] / 1e6, a[1] / 1e6, a[NR] / 1e6 }'; }

# One timed command: appends its duration (ns) to the array named $1.
timed() {
    local -n into=$1
    shift
    local t0 t1
    t0=$(now_ns); "$@"; t1=$(now_ns)
    into+=($((t1 - t0)))
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cold_query() { rm -f "$ws/ocib-out/load-cache"; query /dev/null; }

# ocib's notes (OCIB_DEBUG_LOAD_CACHE=1, a few lines) say whether a repeated run replayed its
# stored answer or had to decode or evaluate packages: counted, so a figure can be explained.
export OCIB_DEBUG_LOAD_CACHE=1
replays=0
count_replay() { if grep -q 'answer replayed' "$errlog"; then replays=$((replays + 1)); fi; }

# "One BUILD file edited": before each such run one service's BUILD file gains a tiny target
# named after a counter, so every edit really changes that package (and the answer); Bazel's
# copy gets the same edit before its run, so its warm server re-loads that one package.
edit_pkg=svc/s0000
edit_orig=$(cat "$ws/$edit_pkg/BUILD.bazel")
edits=0
edit_build() { printf '%s\n\nfilegroup(name = "edit_%d")\n' "$edit_orig" "$edits" > "$1/$edit_pkg/BUILD.bazel"; }

b=()
find . -name BUILD.bazel -print0 | xargs -0 cat > /dev/null # warm-up
for ((r = 0; r < runs; r++)); do
    timed b sh -c 'find . -name BUILD.bazel -print0 | xargs -0 cat > /dev/null'
done
read -r b_med _ _ <<< "$(stats "${b[@]}")"
echo "packages:        $((n + 12)) ($n services, 10 libs, base, tools)"
echo "baseline:        find | xargs cat of all BUILD files: median $b_med ms"
if ((use_bazel)); then
    echo "bazel:           $(dpkg-query -W -f 'bazel-bootstrap ${Version}' bazel-bootstrap 2> /dev/null || bazel --version) on stand-in rule sets"
else
    echo "bazel:           not measured (BAZEL=0 or no bazel on PATH; scripts/setup.sh installs Bazel 4.2.3)"
fi

# Each expression: ocib with an empty load cache (cold: every BUILD file evaluated, the cache
# written), ocib again (repeated: the same query on an unchanged workspace, answered from
# ocib-out/load-cache), ocib after one BUILD file was edited, Bazel with its server up (warm),
# Bazel warm after the same edit and, unless BAZEL_COLD=0, after a shutdown (cold);
# interleaved, one of each per round.
if [[ -n ${EXPR:-} ]]; then exprs=("$EXPR"); else exprs=("//..." "kind(oci_push, //...)"); fi
for expr in "${exprs[@]}"; do
    cold_query
    query "$top/targets" # warm-up, and the target count
    targets=$(wc -l < "$top/targets")
    [[ -z ${PEER:-} ]] || bin=$PEER query /dev/null # the peer's warm-up
    if ((use_bazel)); then
        bazelq > "$top/bazel-targets" # install base extraction, server start, warm-up
        bazel_targets=$(wc -l < "$top/bazel-targets")
    fi
    qc=() qw=() qe=() p=() bw=() be=() bc=()
    replays=0
    for ((r = 0; r < runs; r++)); do
        timed qc cold_query
        timed qw query /dev/null
        count_replay
        edits=$((edits + 1))
        edit_build "$ws"
        timed qe query /dev/null
        [[ -z ${PEER:-} ]] || bin=$PEER timed p query /dev/null
        if ((use_bazel)); then
            timed bw bazelq > /dev/null
            edit_build "$bws"
            timed be bazelq > /dev/null
            if [[ ${BAZEL_COLD:-1} != 0 ]]; then
                bazel_shutdown
                timed bc bazelq > /dev/null
            fi
        fi
    done
    read -r c_med c_min c_max <<< "$(stats "${qc[@]}")"
    read -r w_med w_min w_max <<< "$(stats "${qw[@]}")"
    read -r e_med e_min e_max <<< "$(stats "${qe[@]}")"
    query /dev/null /usr/bin/time -f %M -o "$top/rss" # peak RSS of a warm run
    rss_warm=$(tail -n 1 "$top/rss")
    edits=$((edits + 1))
    edit_build "$ws"
    query /dev/null /usr/bin/time -f %M -o "$top/rss"
    rss_edit=$(tail -n 1 "$top/rss")
    rm -f "$ws/ocib-out/load-cache"
    query /dev/null /usr/bin/time -f %M -o "$top/rss"
    rss_cold=$(tail -n 1 "$top/rss")
    echo
    echo "query '$expr': $targets targets, $runs rounds after 1 warm-up (median, min-max)"
    echo "  ocib, empty load cache: $c_med ms ($c_min-$c_max), peak RSS $((rss_cold / 1024)) MB; $(ratio "$c_med" "$b_med")x baseline"
    echo "  ocib, repeated:         $w_med ms ($w_min-$w_max), peak RSS $((rss_warm / 1024)) MB; stored answer replayed in $replays of $runs"
    echo "  ocib, one BUILD edited: $e_med ms ($e_min-$e_max), peak RSS $((rss_edit / 1024)) MB"
    if [[ -n ${PEER:-} ]]; then
        read -r p_med p_min p_max <<< "$(stats "${p[@]}")"
        echo "  peer ($PEER): $p_med ms ($p_min-$p_max); repeated ocib/peer $(ratio "$w_med" "$p_med")x"
    fi
    if ((use_bazel)); then
        read -r bw_med bw_min bw_max <<< "$(stats "${bw[@]}")"
        read -r be_med be_min be_max <<< "$(stats "${be[@]}")"
        echo "  bazel, warm server:     $bw_med ms ($bw_min-$bw_max), $bazel_targets targets; ocib/bazel: empty cache $(ratio "$c_med" "$bw_med")x, repeated $(ratio "$w_med" "$bw_med")x"
        echo "  bazel, warm, one BUILD edited: $be_med ms ($be_min-$be_max); ocib/bazel, one BUILD edited: $(ratio "$e_med" "$be_med")x"
        if ((${#bc[@]})); then
            read -r bc_med bc_min bc_max <<< "$(stats "${bc[@]}")"
            echo "  bazel, cold server:     $bc_med ms ($bc_min-$bc_max); ocib/bazel: empty cache $(ratio "$c_med" "$bc_med")x"
        fi
    fi
done
