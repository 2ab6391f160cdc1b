#!/usr/bin/env bash
# Benchmark (not a test): analysis time per target of Starlark rules (`rule()` implementations
# run with ctx, actions and providers) against native rules of the same shape.
#
# Generates N/4 packages (default N = 1000 targets) of four targets each, three providers
# deep: leaf -> mid -> top -> bundle, each depending on the one before and on the previous
# package's top. The Starlark workspace uses rules that return DefaultInfo plus a provider
# carrying two depsets (and declare a write/run_shell action each); the native workspace
# uses genrules of the same graph. `ocib cquery //...` loads and analyses every target;
# `ocib query //...` only loads: the difference, divided by N, is the analysis time per
# target.
#
# Usage: bench/starlark_rules.sh [N]     env: RUNS (timed runs, default 5),
#                                            OCIB (a binary to time instead of building release)
set -euo pipefail

n=${1:-1000}
runs=${RUNS:-5}
pkgs=$((n / 4))
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${OCIB:-${CARGO_TARGET_DIR:-$root/target}/release/ocib}

base=$(mktemp -d "${TMPDIR:-/tmp}/ocib-bench-starlark.XXXXXX")
trap 'rm -rf "$base"' EXIT

if [ -z "${OCIB:-}" ]; then
    echo "building ocib (release)..." >&2
    (cd "$root" && cargo build --release > "$base/.build.log" 2>&1) \
        || { cat "$base/.build.log" >&2; echo "FAIL: cargo build --release" >&2; exit 1; }
fi

# --- the Starlark workspace ------------------------------------------------------------
sl="$base/starlark"
mkdir -p "$sl/rules"
echo 'module(name = "bench_starlark")' > "$sl/MODULE.bazel"
: > "$sl/rules/BUILD.bazel"
cat > "$sl/rules/defs.bzl" <<'EOF2'
ChainInfo = provider(fields = ["names", "files"])

def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    deps = ctx.attr.deps
    files = depset([out], transitive = [d[ChainInfo].files for d in deps])
    names = depset([ctx.label.name], transitive = [d[ChainInfo].names for d in deps])
    if deps:
        ctx.actions.run_shell(
            outputs = [out],
            inputs = depset(transitive = [d[DefaultInfo].files for d in deps]),
            command = "cat \"$@\" > " + out.path,
            arguments = [f.path for d in deps for f in d[DefaultInfo].files.to_list()],
        )
    else:
        ctx.actions.write(out, ctx.label.name + "\n")
    return [DefaultInfo(files = depset([out])), ChainInfo(names = names, files = files)]

chain = rule(implementation = _impl, attrs = {"deps": attr.label_list(providers = [ChainInfo])})
EOF2

# --- the native workspace (same graph, genrules) ----------------------------------------
nt="$base/native"
mkdir -p "$nt"
echo 'module(name = "bench_native")' > "$nt/MODULE.bazel"

for i in $(seq 0 $((pkgs - 1))); do
    prev=""
    if [ "$i" -gt 0 ]; then prev="\"//p$((i - 1)):top\", "; fi
    mkdir -p "$sl/p$i" "$nt/p$i"
    cat > "$sl/p$i/BUILD.bazel" <<EOF2
load("//rules:defs.bzl", "chain")

chain(name = "leaf", visibility = ["//visibility:public"])
chain(name = "mid", deps = [":leaf"])
chain(name = "top", deps = [${prev}":mid"], visibility = ["//visibility:public"])
chain(name = "bundle", deps = [":top", ":leaf"])
EOF2
    cat > "$nt/p$i/BUILD.bazel" <<EOF2
genrule(name = "leaf", outs = ["leaf.txt"], cmd = "echo leaf > \$@", visibility = ["//visibility:public"])
genrule(name = "mid", srcs = [":leaf"], outs = ["mid.txt"], cmd = "cat \$(SRCS) > \$@")
genrule(name = "top", srcs = [${prev}":mid"], outs = ["top.txt"], cmd = "cat \$(SRCS) > \$@", visibility = ["//visibility:public"])
genrule(name = "bundle", srcs = [":top", ":leaf"], outs = ["bundle.txt"], cmd = "cat \$(SRCS) > \$@")
EOF2
done

# --- timing -------------------------------------------------------------------------------
ms() { # median wall time in ms of `ocib ARGS` in dir $1 over $runs runs
    local dir=$1; shift
    local times=()
    for _ in $(seq "$runs"); do
        local t0 t1
        t0=$(date +%s%N)
        (cd "$dir" && "$ocib" --nohome_rc --nosystem_rc "$@" > /dev/null 2>&1) || { echo "FAIL: ocib $* in $dir" >&2; exit 1; }
        t1=$(date +%s%N)
        times+=($(((t1 - t0) / 1000000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}

for kind in starlark native; do
    dir="$base/$kind"
    q=$(ms "$dir" query //...)
    c=$(ms "$dir" cquery //...)
    per=$(awk -v c="$c" -v q="$q" -v n="$n" 'BEGIN { printf "%.1f", (c - q) * 1000 / n }')
    printf '%-8s %d targets: query //... %d ms, cquery //... %d ms, analysis %s us/target\n' "$kind" "$n" "$q" "$c" "$per"
done
