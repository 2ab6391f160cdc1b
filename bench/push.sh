#!/usr/bin/env bash
# Benchmark (not a test): `ocib push //...` to a real registry (Debian's docker-registry on a
# free loopback port) against `skopeo copy` of the same OCI layouts, measured in one run:
#   N services (default 50) as in bench/images.sh (Go binary, pkg_tar, oci_image on the shared
#   //base:base_image from testdata/images/base), each with an oci_push to
#   127.0.0.1:PORT/bench/sNNNN, remote_tags = ["latest"]. `ocib build //...` first (untimed), then:
#   1. cold push: one `ocib push //...` pushing every image in parallel to an empty registry;
#   2. unchanged re-push: median of RUNS `ocib push //...`, each uploading 0 blobs;
#   3. one-service edit: main.go of one service changed, `ocib push //...` (includes its Go
#      compile, link, tar and image) uploads new blobs for that image only.
#   Peer: `skopeo copy oci:ocib-bin/svc/sNNNN/image docker://PORT/baseline/sNNNN:latest`
#   of every layout, SKOPEO_JOBS (default 8) at a time, cold and unchanged; the unchanged
#   runs interleaved with ocib's (ocib, skopeo, ocib, skopeo...): median and min-max. Blob
#   counts come from ocib's summary lines ("(U blobs uploaded, M mounted, P already present)"):
#   a cold push uploads each base blob once and mounts it into the other repositories.
#
# Target: unchanged re-push of 50 images under 1 s; cold push: shared base blobs uploaded once.
#
# Usage: bench/push.sh [N]     env: RUNS (re-push runs, default 5), GOCACHE, SKOPEO_JOBS,
#                                   OCIB (a given ocib binary, not built here)
set -euo pipefail

n=${1:-50}
runs=${RUNS:-5}
skopeo_jobs=${SKOPEO_JOBS:-8}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/push.sh [N]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${OCIB:-${CARGO_TARGET_DIR:-$root/target}/release/ocib}
registry=/usr/bin/docker-registry
export GOCACHE=${GOCACHE:-$root/target/bench-gocache}
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x $registry ]] || fail "no $registry (apt-get install docker-registry)"
command -v skopeo > /dev/null || fail "no skopeo (apt-get install skopeo)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ocib-bench-push.XXXXXX")
ws=$tmp/ws cache=$tmp/disk-cache errlog=$tmp/stderr reg_pid=""
cleanup() { [[ -z $reg_pid ]] || { kill "$reg_pid"; wait "$reg_pid"; } 2> /dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

if [[ -z ${OCIB:-} ]]; then
    echo "building ocib (release)..." >&2
    (cd "$root" && cargo build --release > "$tmp/build.log" 2>&1) \
        || { cat "$tmp/build.log" >&2; fail "cargo build --release"; }
fi

# --- registry on a free loopback port ---------------------------------------------------
port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
for ((try = 0; ; try++)); do
    port=$((20000 + RANDOM % 40000))
    port_free "$port" && break
    ((try < 50)) || fail "no free loopback port found"
done
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$tmp/storage" "$port" > "$tmp/config.yml"
"$registry" serve "$tmp/config.yml" > "$tmp/registry.log" 2>&1 &
reg_pid=$!
for ((i = 0; i < 200; i++)); do
    port_free "$port" || break
    kill -0 "$reg_pid" 2> /dev/null || { cat "$tmp/registry.log" >&2; fail "docker-registry exited"; }
    sleep 0.05
done
port_free "$port" && { cat "$tmp/registry.log" >&2; fail "docker-registry did not listen on $port"; }
host=127.0.0.1:$port

# --- workspace --------------------------------------------------------------------------
mkdir -p "$ws/lib/shared"
cp "$root/testdata/images/MODULE.bazel" "$ws/"
cp -r "$root/testdata/images/base" "$ws/base"
printf 'package shared\n\n// Greeting greets a service.\nfunc Greeting(name string) string { return "hello from " + name }\n' \
    > "$ws/lib/shared/shared.go"
cat > "$ws/lib/shared/BUILD.bazel" <<'EOF'
load("@io_bazel_rules_go//go:def.bzl", "go_library")

go_library(name = "shared", srcs = ["shared.go"], importpath = "example.com/bench/lib/shared",
           visibility = ["//visibility:public"])
EOF
svcs=()
for ((i = 0; i < n; i++)); do
    s=$(printf 's%04d' "$i")
    svcs+=("$s")
    mkdir -p "$ws/svc/$s"
    printf 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/bench/lib/shared"\n)\n\nfunc main() { fmt.Println(shared.Greeting("%s")) }\n' \
        "$s" > "$ws/svc/$s/main.go"
    cat > "$ws/svc/$s/BUILD.bazel" <<EOF
load("@io_bazel_rules_go//go:def.bzl", "go_binary", "go_library")
load("@rules_oci//oci:defs.bzl", "oci_image", "oci_push")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

go_library(name = "${s}_lib", srcs = ["main.go"], importpath = "example.com/bench/svc/$s",
           deps = ["//lib/shared"])
go_binary(name = "$s", embed = [":${s}_lib"])
pkg_tar(name = "tar_$s", files = {":$s": "svc"}, mode = "0755")
oci_image(
    name = "image",
    base = "//base:base_image",
    entrypoint = ["/sbin/tini", "--", "/svc"],
    env = {"SERVICE": "$s", "LOG_LEVEL": "info"},
    tars = [":tar_$s"],
)
oci_push(name = "push", image = ":image", repository = "$host/bench/$s", remote_tags = ["latest"])
EOF
done

# --- helpers ----------------------------------------------------------------------------
cd "$ws"
now_ns() { date +%s%N; }
ms() { awk -v d="$1" 'BEGIN { printf "%.1f", d / 1e6 }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# "min-max" in ms of the nanosecond durations given.
range() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f-%.1f", a[1] / 1e6, a[NR] / 1e6 }'; }

# `ocib push //...`, timed; checks one summary line per image; sets $dur (ns), $up, $mounted,
# $present (blob totals) and $changed (the images that uploaded blobs, as "sNNNN:U" words).
op() {
    local t0 rc lines
    t0=$(now_ns)
    "$ocib" push --disk_cache="$cache" --noshow_progress //... > "$tmp/push.out" 2> "$errlog" \
        || { rc=$?; cat "$errlog" "$tmp/push.out" >&2; fail "ocib push //... exited with $rc"; }
    dur=$(($(now_ns) - t0))
    lines=$(grep -cE "^//svc/s[0-9]{4}:push: $host/bench/s[0-9]{4}@sha256:[0-9a-f]{64} tags: latest \([0-9]+ blobs uploaded, [0-9]+ mounted, [0-9]+ already present\)$" \
        "$tmp/push.out" || true)
    [[ $lines -eq $n ]] || { cat "$tmp/push.out" >&2; fail "expected $n push summary lines, got $lines"; }
    read -r up mounted present changed < <(sed -E 's|^//svc/(s[0-9]+):push: .*\(([0-9]+) blobs uploaded, ([0-9]+) mounted, ([0-9]+) already present\)$|\1 \2 \3 \4|' \
        "$tmp/push.out" | awk '{ u += $2; m += $3; p += $4; if ($2 > 0) c = c (c ? "," : "") $1 ":" $2 }
                               END { print u + 0, m + 0, p + 0, (c ? c : "-") }')
}
# skopeo copy of every layout to baseline/sNNNN, $skopeo_jobs at a time; sets $dur (ns).
sk() {
    local t0
    t0=$(now_ns)
    printf '%s\n' "${svcs[@]}" | xargs -P "$skopeo_jobs" -I{} skopeo copy -q --dest-tls-verify=false \
        "oci:ocib-bin/svc/{}/image" "docker://$host/baseline/{}:latest" > /dev/null 2> "$errlog" \
        || { cat "$errlog" >&2; fail "skopeo copy"; }
    dur=$(($(now_ns) - t0))
}
# bench/$1:latest in the registry is the manifest of ocib-bin/svc/$1/image.
check_remote() {
    local want got
    want=$(grep -oE 'sha256:[0-9a-f]{64}' "ocib-bin/svc/$1/image/index.json" | head -1)
    got=$(skopeo inspect --tls-verify=false "docker://$host/bench/$1:latest" 2> "$errlog") \
        || { cat "$errlog" >&2; fail "skopeo inspect of bench/$1"; }
    [[ $got == *"\"Digest\": \"$want\""* ]] || fail "bench/$1:latest in the registry is not $want"
}

# --- build everything (untimed) ---------------------------------------------------------
"$ocib" build --disk_cache="$cache" --noshow_progress //... > /dev/null 2> "$errlog" \
    || { cat "$errlog" >&2; fail "ocib build //..."; }

# --- ocib push: cold, unchanged, one-service edit ---------------------------------------
op; o_cold=$dur o_cold_up=$up o_cold_mounted=$mounted o_cold_present=$present
((up > 0)) || fail "cold push uploaded no blobs"
check_remote "${svcs[0]}"

# The peer's cold copy, then unchanged re-pushes interleaved with the peer's.
sk; k_cold=$dur
o=() k=()
for ((r = 0; r < runs; r++)); do
    op; o+=("$dur"); ((up == 0)) || fail "unchanged re-push uploaded $up blobs ($changed)"
    sk; k+=("$dur")
done
o_noop=$(median "${o[@]}") o_noop_present=$present
k_noop=$(median "${k[@]}")

e=${svcs[n / 2]}
sed -i 's/fmt.Println(/fmt.Println("edited", /' "svc/$e/main.go"
op; o_edit=$dur o_edit_up=$up o_edit_present=$present
[[ $changed =~ ^$e:[0-9]+$ ]] || fail "after editing $e, expected uploads for $e only, got: $changed"
check_remote "$e"

# --- report -----------------------------------------------------------------------------
verdict=$(awk -v d="$o_noop" 'BEGIN { print d < 1e9 ? "met" : "MISSED" }')
echo "workspace:       $n services (go_binary + pkg_tar + oci_image on //base:base_image + oci_push), registry docker-registry $("$registry" --version | awk '{ print $NF }') on $host"
echo "skopeo:          $(skopeo --version | awk '{ print $NF }'), $skopeo_jobs copies at a time, oci: -> docker://, --dest-tls-verify=false"
echo "machine:         $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cold push:       ocib push //... $(ms "$o_cold") ms ($o_cold_up blobs uploaded, $o_cold_mounted mounted, $o_cold_present already present);" \
    "skopeo $(ms "$k_cold") ms; skopeo/ocib $(ratio "$k_cold" "$o_cold")x"
echo "unchanged:       median of $runs interleaved: ocib push //... $(ms "$o_noop") ms (min-max $(range "${o[@]}"); 0 blobs uploaded," \
    "$o_noop_present already present); skopeo $(ms "$k_noop") ms (min-max $(range "${k[@]}")); skopeo/ocib $(ratio "$k_noop" "$o_noop")x:" \
    "$verdict (target < 1 s for 50 images)"
echo "one-svc edit:    //svc/$e main.go, ocib push //... incl. compile+link+tar+image $(ms "$o_edit") ms" \
    "($o_edit_up blobs uploaded, all for $e; $o_edit_present already present)"
