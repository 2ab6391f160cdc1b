#!/usr/bin/env bash
# Benchmark (not a test): resolving, fetching and generating the repositories of N generated
# Go modules (default 300) served by a local file:// GOPROXY. The workspace's go.mod requires
# all of them (each module imports the next two, so minimal version selection walks a real
# graph), and one go_library depends on every module's root package. Measured with
# `ocib query 'deps(//app:app)'`, which loads every module's package and so resolves,
# fetches, verifies, extracts and generates BUILD files for all of them:
#   1. cold: empty cache (XDG_CACHE_HOME points at a fresh directory);
#   2. warm: the same cache, a fresh clone of the workspace (median of RUNS runs): nothing is
#      fetched or generated again.
# Baseline: `go mod download` of the same modules from the same proxy into an empty module
# cache (cold), printed beside as a ratio.
#
# Usage: bench/gomod.sh [N]     env: RUNS (default 5), OCIB (an ocib binary; default: build
# --release)
set -euo pipefail

n=${1:-300}
runs=${RUNS:-5}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/gomod.sh [N]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ocib-gomod-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [[ -z ${OCIB:-} ]]; then
    echo "building ocib (release)..." >&2
    (cd "$root" && cargo build --release > "$work/build.log" 2>&1) || { cat "$work/build.log" >&2; exit 1; }
    OCIB=${CARGO_TARGET_DIR:-$root/target}/release/ocib
fi

# --- modules, proxy and workspace (python: zips in Go's module-zip format, h1: hashes) -------
python3 - "$n" "$work" <<'PY'
import base64, hashlib, os, sys, zipfile
n, work = int(sys.argv[1]), sys.argv[2]
proxy, ws = os.path.join(work, "proxy"), os.path.join(work, "ws")
def h1(files):
    lines = "".join(f"{hashlib.sha256(d).hexdigest()}  {name}\n" for name, d in sorted(files))
    return "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()
sums, requires, deps = [], [], []
for i in range(n):
    mod, ver = f"example.com/bench/m{i:04d}", "v1.0.0"
    nxt = [f"example.com/bench/m{j:04d}" for j in (i + 1, i + 2) if j < n]
    go_mod = f"module {mod}\n\ngo 1.21\n" + "".join(f"require {m} v1.0.0\n" for m in nxt)
    imports = "".join(f'\t_ "{m}"\n' for m in nxt)
    src = f"package m{i:04d}\n\nimport (\n{imports})\n\nconst Name = \"m{i}\"\n" if nxt else f"package m{i:04d}\n\nconst Name = \"m{i}\"\n"
    sub = f"package util\n\nfunc Twice(x int) int {{ return 2 * x }}\n"
    files = [(f"{mod}@{ver}/go.mod", go_mod.encode()), (f"{mod}@{ver}/m.go", src.encode()), (f"{mod}@{ver}/util/util.go", sub.encode())]
    d = os.path.join(proxy, mod, "@v"); os.makedirs(d, exist_ok=True)
    with zipfile.ZipFile(os.path.join(d, ver + ".zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files: z.writestr(name, data)
    open(os.path.join(d, ver + ".mod"), "w").write(go_mod)
    open(os.path.join(d, ver + ".info"), "w").write('{"Version":"%s"}' % ver)
    open(os.path.join(d, "list"), "w").write(ver + "\n")
    sums += [f"{mod} {ver} {h1(files)}", f"{mod} {ver}/go.mod {h1([('go.mod', go_mod.encode())])}"]
    requires.append(f"\t{mod} {ver}\n")
    deps.append(f'        "@com_example_bench_m{i:04d}//:m{i:04d}",\n')
os.makedirs(os.path.join(ws, "app"))
open(os.path.join(ws, "go.mod"), "w").write("module example.com/benchws\n\ngo 1.22\n\nrequire (\n" + "".join(requires) + ")\n")
open(os.path.join(ws, "go.sum"), "w").write("\n".join(sorted(sums)) + "\n")
open(os.path.join(ws, "MODULE.bazel"), "w").write('bazel_dep(name = "rules_go", version = "0.50.1")\nbazel_dep(name = "gazelle", version = "0.39.1")\n\ngo_deps = use_extension("@gazelle//:extensions.bzl", "go_deps")\ngo_deps.from_file(go_mod = "//:go.mod")\n')
open(os.path.join(ws, "app", "BUILD.bazel"), "w").write('load("@rules_go//go:def.bzl", "go_library")\n\ngo_library(\n    name = "app",\n    srcs = ["app.go"],\n    importpath = "example.com/benchws/app",\n    deps = [\n' + "".join(deps) + "    ],\n)\n")
open(os.path.join(ws, "app", "app.go"), "w").write("package app\n")
PY

export GOPROXY=file://$work/proxy GOSUMDB=off
now_ms() { date +%s%3N; }
query() { # $1 workspace, $2 cache
    (cd "$1" && XDG_CACHE_HOME=$2 "$OCIB" --nohome_rc --nosystem_rc query 'deps(//app:app)' > "$work/out.txt" 2> "$work/err.txt") \
        || { cat "$work/err.txt" >&2; echo "FAIL: ocib query" >&2; exit 1; }
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

start=$(now_ms); query "$work/ws" "$work/cache"; cold=$(( $(now_ms) - start ))
targets=$(grep -c '^@com_example_bench' "$work/out.txt" || true)
warm=$(for _ in $(seq "$runs"); do
    rm -rf "$work/clone"; cp -r "$work/ws" "$work/clone"
    start=$(now_ms); query "$work/clone" "$work/cache"; echo $(( $(now_ms) - start ))
done | median)

base="n/a"
if command -v go > /dev/null; then
    start=$(now_ms)
    (cd "$work/ws" && GOMODCACHE=$work/gomodcache GOFLAGS=-modcacherw go mod download > /dev/null 2>&1) && base=$(( $(now_ms) - start ))
fi
echo "modules: $n (external targets loaded: $targets)"
echo "| workload | ocib | go mod download (cold) |"
echo "|---|---|---|"
echo "| cold: resolve, fetch, verify, extract, generate | ${cold} ms | ${base} ms |"
echo "| warm: fresh clone, same cache (median of $runs) | ${warm} ms | |"
