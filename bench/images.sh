#!/usr/bin/env bash
# Benchmark (not a test): image assembly with ocib against `docker build` (BuildKit, on this
# machine's Docker engine) on equivalent work, measured in one run:
#   1. A generated workspace of N services (default 10), like testdata/images: each a Go
#      binary (small main.go + one shared lib), a pkg_tar of it, an oci_image on the shared
#      //base:base_image (testdata/images/base) and an oci_tarball. For docker the same base
#      is loaded into the engine (built by ocib as an oci_tarball, `docker load`), and each
#      service has a Dockerfile FROM it with COPY of the SAME prebuilt Go binary, ENTRYPOINT
#      and ENV equal to the oci_image's. Both sides start from built binaries; timed:
#      ocib = `ocib build` of every :image_tarball (binaries re-checked, cache hits);
#      docker = `docker build -q` of every service, DOCKER_JOBS (default 4) at a time
#      (BuildKit builds straight into the engine; ocib's cold row also shows ocib plus a
#      `docker load` of every tarball, DOCKER_JOBS at a time, for the same end state).
#      cold (fresh disk cache for the image actions / --no-cache), no-op (RUNS rounds,
#      interleaved ocib, docker, ocib, docker...: median, min-max), one-service edit (new
#      binary for one service, then rebuild everything).
#   2. A ~1 GiB layer (BIG_MIB files of 1 MiB random data): cold `ocib build` of the layer,
#      its image and its docker-load tarball (//big:big_tarball; empty cache and stat cache)
#      against the read+sha256 floor `tar cf - tree | openssl sha256` on the same tree (ocib
#      must at least read and hash every byte; openssl uses the CPU's SHA instructions, as
#      ocib's sha2 does, where coreutils' sha256sum does not), interleaved, both with a warm
#      page cache and no pending writeback, median of 3 each.
#   3. Reload after a one-layer change: an image of that 1 GiB layer and a 10 MiB layer on
#      top (//big:reload_load, an oci_load) is loaded into docker once; then, RELOADS times
#      interleaved: a new 10 MiB layer, `ocib run //big:reload_load` (build of the layer and
#      image, and the load) against the time to send that layer: `docker load` of a tarball of
#      an image of that layer alone (//big:small_tarball, built untimed).
#
# Targets: no-op >= 20x faster than docker build's no-op; one-service edit >= 5x faster;
# 1 GiB layer <= 1.1x the read+sha256 floor; reload <= 1.2x the time to send the layer.
#
# Usage: bench/images.sh [N]     env: RUNS (no-op runs, default 5), BIG_MIB (default 1024),
#                                     RELOADS (reload rounds, default 3),
#                                     PARTS (default "services big reload": which of 1-3 run;
#                                     "reload" alone still writes the 1 GiB tree, untimed),
#                                     GOCACHE, DOCKER (a client with BuildKit), DOCKER_JOBS,
#                                     OCIB (a given ocib binary, not built here)
set -euo pipefail

n=${1:-10}
runs=${RUNS:-5}
docker_jobs=${DOCKER_JOBS:-4}
big_mib=${BIG_MIB:-1024}
reloads=${RELOADS:-3}
parts=" ${PARTS:-services big reload} "
part() { [[ $parts == *" $1 "* ]]; }
command -v openssl > /dev/null || { echo "FAIL: openssl is needed for the read+sha256 floor" >&2; exit 1; }
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/images.sh [N]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${OCIB:-${CARGO_TARGET_DIR:-$root/target}/release/ocib}
export GOCACHE=${GOCACHE:-$root/target/bench-gocache} DOCKER_BUILDKIT=1
fail() { echo "FAIL: $*" >&2; exit 1; }

# A docker client that can use BuildKit: with the buildx plugin, or older than 23 (built in).
docker=""
for d in ${DOCKER:-} docker /usr/bin/docker; do
    command -v "$d" > /dev/null || continue
    if "$d" buildx version > /dev/null 2>&1; then docker=$d; break; fi
    v=$("$d" version --format '{{.Client.Version}}' 2> /dev/null) || continue
    ((${v%%.*} < 23)) && { docker=$d; break; }
done
[[ -n $docker ]] || fail "no docker client with BuildKit (install buildx or set DOCKER)"
"$docker" info > /dev/null 2>&1 || fail "the Docker engine is not reachable"

ws=$(mktemp -d "${TMPDIR:-/tmp}/ocib-bench.XXXXXX")
ids=$ws/.docker-ids # every image id/tag this run created, removed at exit
cleanup() {
    if [[ -s $ids ]]; then sort -u "$ids" | xargs "$docker" rmi -f > /dev/null 2>&1 || true; fi
    rm -rf "$ws"
}
trap cleanup EXIT
cache=$ws/.disk-cache

if [[ -z ${OCIB:-} ]]; then
    echo "building ocib (release)..." >&2
    (cd "$root" && cargo build --release > "$ws/.build.log" 2>&1) \
        || { cat "$ws/.build.log" >&2; fail "cargo build --release"; }
fi

# --- workspace --------------------------------------------------------------------------
cp "$root/testdata/images/MODULE.bazel" "$ws/"
cp -r "$root/testdata/images/base" "$ws/base"
mkdir -p "$ws/dockerbase" "$ws/lib/shared" "$ws/big/tree"
cat > "$ws/dockerbase/BUILD.bazel" <<'EOF'
load("@rules_oci//oci:defs.bzl", "oci_tarball")

oci_tarball(name = "tarball", image = "//base:base_image", repo_tags = ["ocib-bench/base:latest"])
EOF
printf 'package shared\n\n// Greeting greets a service.\nfunc Greeting(name string) string { return "hello from " + name }\n' \
    > "$ws/lib/shared/shared.go"
cat > "$ws/lib/shared/BUILD.bazel" <<'EOF'
load("@io_bazel_rules_go//go:def.bzl", "go_library")

go_library(name = "shared", srcs = ["shared.go"], importpath = "example.com/bench/lib/shared",
           visibility = ["//visibility:public"])
EOF
svcs=() tarballs=()
for ((i = 0; i < n; i++)); do
    s=$(printf 's%04d' "$i")
    svcs+=("$s") tarballs+=("//svc/$s:image_tarball")
    mkdir -p "$ws/svc/$s" "$ws/docker/$s"
    printf 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/bench/lib/shared"\n)\n\nfunc main() { fmt.Println(shared.Greeting("%s")) }\n' \
        "$s" > "$ws/svc/$s/main.go"
    cat > "$ws/svc/$s/BUILD.bazel" <<EOF
load("@io_bazel_rules_go//go:def.bzl", "go_binary", "go_library")
load("@rules_oci//oci:defs.bzl", "oci_image", "oci_tarball")
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
oci_tarball(name = "image_tarball", image = ":image", repo_tags = ["ocib-bench/$s:latest"])
EOF
    cat > "$ws/docker/$s/Dockerfile" <<EOF
FROM ocib-bench/base:latest
COPY svc /svc
ENTRYPOINT ["/sbin/tini", "--", "/svc"]
ENV SERVICE=$s LOG_LEVEL=info
EOF
done
cat > "$ws/big/BUILD.bazel" <<'EOF'
load("@rules_oci//oci:defs.bzl", "oci_image", "oci_load", "oci_tarball")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

pkg_tar(name = "big", srcs = glob(["tree/**"]), strip_prefix = ".")
oci_image(name = "big_image", os = "linux", architecture = "amd64", tars = [":big"])
oci_tarball(name = "big_tarball", image = ":big_image", repo_tags = ["ocib-bench/big:latest"])

pkg_tar(name = "small", srcs = ["small.bin"])
oci_image(name = "reload_image", os = "linux", architecture = "amd64", tars = [":big", ":small"])
oci_load(name = "reload_load", image = ":reload_image", repo_tags = ["ocib-bench/reload:latest"])
oci_image(name = "small_image", os = "linux", architecture = "amd64", tars = [":small"])
oci_tarball(name = "small_tarball", image = ":small_image", repo_tags = ["ocib-bench/small:latest"])
EOF
head -c $((10 << 20)) /dev/urandom > "$ws/big/small.bin"

# --- helpers ----------------------------------------------------------------------------
cd "$ws"
errlog=$ws/.stderr
now_ns() { date +%s%N; }
ms() { awk -v d="$1" 'BEGIN { printf "%.1f", d / 1e6 }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# "min-max" in ms of the nanosecond durations given.
range() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f-%.1f", a[1] / 1e6, a[NR] / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" -v op="$3" 'BEGIN { ok = op == ">=" ? r >= t : r <= t;
    printf "%s (target %s %sx)", ok ? "met" : "MISSED", op, t }'; }

# `ocib build` of $@ with a fresh-or-kept disk cache; sets $dur (ns) and $summary.
ob() {
    local t0 t1 rc
    t0=$(now_ns)
    "$ocib" build --disk_cache="$cache" --noshow_progress "$@" > /dev/null 2> "$errlog" \
        || { rc=$?; cat "$errlog" >&2; fail "ocib build $* exited with $rc"; }
    t1=$(now_ns)
    dur=$((t1 - t0))
    # `N processes: H disk cache hit, I internal, L local.`
    summary=$(sed -n 's/^INFO: \([0-9]* process.*\)\.$/\1/p' "$errlog")
    [[ -n $summary ]] || { cat "$errlog" >&2; fail "no summary line from ocib build $*"; }
}
# `docker build` of every service, $docker_jobs at a time ($@: extra flags); sets $dur (ns).
# (The tags are in $ids already; the builds' ids are the tagged images.)
db() {
    local t0 t1
    t0=$(now_ns)
    printf '%s\n' "${svcs[@]}" | xargs -P "$docker_jobs" -I{} "$docker" build -q "$@" -t "ocib-bench/{}:docker" "docker/{}" \
        > /dev/null 2> "$errlog" || { cat "$errlog" >&2; fail "docker build $*"; }
    t1=$(now_ns)
    dur=$((t1 - t0))
}
# `docker load` of every service's tarball, $docker_jobs at a time; sets $dur (ns).
dl() {
    local t0 t1
    t0=$(now_ns)
    printf '%s\n' "${svcs[@]}" | xargs -P "$docker_jobs" -I{} "$docker" load -q -i "ocib-bin/svc/{}/image_tarball/tarball.tar" \
        > /dev/null 2> "$errlog" || { cat "$errlog" >&2; fail "docker load of the tarballs"; }
    t1=$(now_ns)
    dur=$((t1 - t0))
}
copy_bin() { cp "ocib-bin/svc/$1/$1_/$1" "docker/$1/svc"; }

# --- services: preparation (untimed) ----------------------------------------------------
if part services; then
"$ocib" query 'kind(go_binary, //svc/...)' > .binaries 2> "$errlog" || { cat "$errlog" >&2; fail "ocib query"; }
[[ $(wc -l < .binaries) -eq $n ]] || fail "expected $n go_binary targets, got $(wc -l < .binaries)"
mapfile -t binaries < .binaries
ob "${binaries[@]}"
ob //dockerbase:tarball
echo "ocib-bench/base:latest" >> "$ids"
"$docker" load -i ocib-bin/dockerbase/tarball/tarball.tar > /dev/null 2> "$errlog" \
    || { cat "$errlog" >&2; fail "docker load of the base"; }
for s in "${svcs[@]}"; do copy_bin "$s"; echo "ocib-bench/$s:docker" "ocib-bench/$s:latest" >> "$ids"; done

# --- services: cold, no-op, one-service edit --------------------------------------------
ob "${tarballs[@]}"; o_cold=$dur o_cold_sum=$summary
dl; o_load=$dur
db --no-cache; d_cold=$dur
out=$("$docker" run --rm "ocib-bench/${svcs[0]}:docker") || fail "docker run of ${svcs[0]}"
[[ $out == "hello from ${svcs[0]}" ]] || fail "${svcs[0]} printed '$out'"

o=() d=()
for ((r = 0; r < runs; r++)); do
    ob "${tarballs[@]}"; o+=("$dur")
    [[ $summary != *internal* && $summary != *local* ]] || fail "no-op ocib build executed actions: $summary"
    o_noop_sum=$summary
    db; d+=("$dur")
done
o_noop=$(median "${o[@]}") d_noop=$(median "${d[@]}")

s=${svcs[n / 2]}
sed -i 's/fmt.Println(/fmt.Println("edited", /' "svc/$s/main.go"
ob "//svc/$s:$s" # the new binary, untimed: both sides start from it
copy_bin "$s"
ob "${tarballs[@]}"; o_edit=$dur o_edit_sum=$summary
db; d_edit=$dur
# Informational: an edit including ocib's Go compile and link.
s2=${svcs[0]}
sed -i 's/fmt.Println(/fmt.Println("edited", /' "svc/$s2/main.go"
ob "${tarballs[@]}"; o_edit_go=$dur o_edit_go_sum=$summary
fi

# --- the 1 GiB layer --------------------------------------------------------------------
head -c $((big_mib << 20)) /dev/urandom | split -b 1M -a 4 -d - big/tree/f
[[ $(find big/tree -type f | wc -l) -eq $big_mib ]] || fail "expected $big_mib files in big/tree"
if part big; then
# The tree was just written: let writeback finish so neither side competes with it (tar only
# reads; ocib also writes its 1 GiB layer). Median of 3 runs each, page cache warm.
sync
(cd big && tar cf - tree | openssl sha256) > /dev/null # warm-up
bytes=$(cd big && tar cf - tree | wc -c)
tar_runs=() big_runs=()
for _ in 1 2 3; do
    t0=$(now_ns); (cd big && tar cf - tree | openssl sha256) > /dev/null; t1=$(now_ns); tar_runs+=($((t1 - t0)))
    "$ocib" clean --expunge --disk_cache="$cache" > /dev/null 2>&1 || fail "ocib clean --expunge"
    sync
    cat big/tree/* > /dev/null # warm read, as for tar
    ob //big:big_tarball; big_runs+=("$dur"); o_big_sum=$summary
    sync # its writeback must not slow the next floor run
done
t_tar=$(median "${tar_runs[@]}")
o_big=$(median "${big_runs[@]}")
layer=$(stat -c %s ocib-bin/big/big.tar)
fi

# --- reload after a one-layer change ----------------------------------------------------
if part reload; then
# Untimed: the whole image into docker once (and the peer's base state).
"$ocib" run --disk_cache="$cache" --noshow_progress //big:reload_load > /dev/null 2> "$errlog" \
    || { cat "$errlog" >&2; fail "ocib run //big:reload_load"; }
echo "ocib-bench/reload:latest" "ocib-bench/small:latest" >> "$ids"
"$docker" image inspect --format '{{.Id}}' ocib-bench/reload:latest >> "$ids"
reload_runs=() send_runs=()
for ((r = 0; r < reloads; r++)); do
    head -c $((10 << 20)) /dev/urandom > big/small.bin
    t0=$(now_ns)
    "$ocib" run --disk_cache="$cache" --noshow_progress //big:reload_load > /dev/null 2> "$errlog" \
        || { cat "$errlog" >&2; fail "ocib run //big:reload_load"; }
    t1=$(now_ns); reload_runs+=($((t1 - t0)))
    grep -q "had 1 of the image's 2 layers" "$errlog" || { cat "$errlog" >&2; fail "the reload sent more than the changed layer"; }
    "$docker" image inspect --format '{{.Id}}' ocib-bench/reload:latest >> "$ids"
    ob //big:small_tarball
    t0=$(now_ns)
    "$docker" load -q -i ocib-bin/big/small_tarball/tarball.tar > /dev/null 2> "$errlog" || { cat "$errlog" >&2; fail "docker load of the small tarball"; }
    t1=$(now_ns); send_runs+=($((t1 - t0)))
    "$docker" image inspect --format '{{.Id}}' ocib-bench/small:latest >> "$ids"
done
o_reload=$(median "${reload_runs[@]}") d_send=$(median "${send_runs[@]}")
reload_load=$(cut -d' ' -f1-3 /proc/loadavg)
fi

# --- report -----------------------------------------------------------------------------
part services && echo "workspace:       $n services (go_binary + pkg_tar + oci_image on //base:base_image + oci_tarball)"
echo "docker:          $("$docker" version --format 'client {{.Client.Version}}, engine {{.Server.Version}}'), BuildKit, $docker_jobs builds at a time, -q"
echo "machine:         $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if part services; then
echo "go:              $(go version 2>/dev/null || echo unknown); GOCACHE=$GOCACHE"
echo "cold:            ocib $(ms "$o_cold") ms ($o_cold_sum); docker --no-cache $(ms "$d_cold") ms;" \
    "docker/ocib $(ratio "$d_cold" "$o_cold")x"
echo "  incl. load:    ocib + docker load of the $n tarballs: $(ms $((o_cold + o_load))) ms;" \
    "docker/ocib $(ratio "$d_cold" $((o_cold + o_load)))x"
echo "no-op:           median of $runs interleaved: ocib $(ms "$o_noop") ms (min-max $(range "${o[@]}"); $o_noop_sum);" \
    "docker $(ms "$d_noop") ms (min-max $(range "${d[@]}"));" \
    "docker/ocib $(ratio "$d_noop" "$o_noop")x: $(verdict "$(ratio "$d_noop" "$o_noop")" 20 ">=")"
echo "one-svc edit:    //svc/$s new binary: ocib $(ms "$o_edit") ms ($o_edit_sum); docker $(ms "$d_edit") ms;" \
    "docker/ocib $(ratio "$d_edit" "$o_edit")x: $(verdict "$(ratio "$d_edit" "$o_edit")" 5 ">=")"
echo "  incl. Go:      edit of //svc/$s2 main.go, ocib compile+link+images: $(ms "$o_edit_go") ms ($o_edit_go_sum)"
fi
if part big; then
echo "1 GiB layer:     ocib build //big:big_tarball (layer, image, docker-load tarball) cold, median of 3:" \
    "$(ms "$o_big") ms (min-max $(range "${big_runs[@]}"); $o_big_sum), layer $layer bytes"
echo "  floor:         tar cf - tree | openssl sha256 ($bytes bytes, warm, median of 3, interleaved): $(ms "$t_tar") ms" \
    "(min-max $(range "${tar_runs[@]}")); ocib/floor $(ratio "$o_big" "$t_tar")x: $(verdict "$(ratio "$o_big" "$t_tar")" 1.1 "<=")"
fi
if part reload; then
echo "reload:          1 GiB + 10 MiB image, new 10 MiB layer, median of $reloads interleaved: ocib run //big:reload_load" \
    "$(ms "$o_reload") ms (min-max $(range "${reload_runs[@]}")); docker load of that layer alone $(ms "$d_send") ms" \
    "(min-max $(range "${send_runs[@]}")); ratio $(ratio "$o_reload" "$d_send")x: $(verdict "$(ratio "$o_reload" "$d_send")" 1.2 "<=")"
echo "  load average:  $reload_load after the reload rounds"
fi
