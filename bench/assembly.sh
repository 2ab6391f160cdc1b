#!/usr/bin/env bash
# Benchmark (not a test): cold assembly of N images (default 1,000) from binaries that are
# already built, the system time it costs, and the write floor beside it.
#   Workspace: N services, each a pkg_tar of its own binary, an oci_image on the shared
#   //base:base_image (testdata/images/base) and an oci_tarball, as bench/images.sh has them.
#   The binaries are one Go binary (hello world, built once here with `go build`) with the
#   service's name appended, so every layer and tarball has its own digest, as real services'
#   would; they are source files, so no Go action runs and only image assembly is timed.
#   Timed, interleaved RUNS times (median, min-max), each with an empty --disk_cache and
#   ocib-out removed (SETTLE seconds before, see below): `ocib build` of every :image_tarball under /usr/bin/time (wall, user,
#   system, peak RSS), against the write floor: one process writing the bytes ocib must
#   write, with copy_file_range(2) as ocib does: each service's layer (its binary) and its
#   docker-load tarball (the base layer's busybox and tini, then the binary: a tarball holds
#   every layer of its image), same disk, same run. (The floor was `cp` of each binary twice
#   before: 2,000 processes' start-up counted, and 4.7 of the 7.4 GB written at 1,000.)
#
# Target: system time <= 3 s for 1,000 images.
#
# Usage: bench/assembly.sh [N]    env: RUNS (default 3), SETTLE (default 65), OCIB (a given
#                                      ocib binary, not built here), GOCACHE
set -euo pipefail

n=${1:-1000}
runs=${RUNS:-3}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/assembly.sh [N]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${OCIB:-${CARGO_TARGET_DIR:-$root/target}/release/ocib}
export GOCACHE=${GOCACHE:-$root/target/bench-gocache}
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x /usr/bin/time ]] || fail "/usr/bin/time (GNU time) is needed for the system time"
command -v go > /dev/null || fail "go is needed to build the one binary"
[[ -f /bin/busybox && -f /usr/bin/tini-static ]] || fail "the base image needs Debian's busybox-static and tini (scripts/setup.sh installs them)"
command -v python3 > /dev/null || fail "python3 is needed for the write floor"

ws=$(mktemp -d "${TMPDIR:-/tmp}/ocib-bench.XXXXXX")
trap 'rm -rf "$ws"' EXIT
if [[ -z ${OCIB:-} ]]; then
    echo "building ocib (release)..." >&2
    (cd "$root" && cargo build --release > "$ws/.build.log" 2>&1) || { cat "$ws/.build.log" >&2; fail "cargo build --release"; }
fi

mkdir -p "$ws/hello" "$ws/floor"
printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n' > "$ws/hello/main.go"
(cd "$ws/hello" && go mod init example.com/hello > /dev/null 2>&1 && go build -o "$ws/hello.bin" .) || fail "go build"
cp "$root/testdata/images/MODULE.bazel" "$ws/"
cp -r "$root/testdata/images/base" "$ws/base"
tarballs=()
for ((i = 0; i < n; i++)); do
    s=$(printf 's%04d' "$i")
    tarballs+=("//svc/$s:image_tarball")
    mkdir -p "$ws/svc/$s"
    { cat "$ws/hello.bin"; echo "$s"; } > "$ws/svc/$s/svc.bin"
    cat > "$ws/svc/$s/BUILD.bazel" <<EOF
load("@rules_oci//oci:defs.bzl", "oci_image", "oci_tarball")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

pkg_tar(name = "tar", files = {"svc.bin": "svc"}, mode = "0755")
oci_image(
    name = "image",
    base = "//base:base_image",
    entrypoint = ["/sbin/tini", "--", "/svc"],
    env = {"SERVICE": "$s", "LOG_LEVEL": "info"},
    tars = [":tar"],
)
oci_tarball(name = "image_tarball", image = ":image", repo_tags = ["ocib-bench/$s:latest"])
EOF
done
bin_bytes=$(stat -c %s "$ws/hello.bin")

cd "$ws"
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
range() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%s-%s", a[1], a[NR] }'; }
# Runs "$@" under GNU time; sets $wall $user $sys (s) and $rss (KiB).
timed() {
    /usr/bin/time -f '%e %U %S %M' -o "$ws/.time" "$@" > /dev/null 2> "$ws/.stderr" || { cat "$ws/.stderr" >&2; fail "$*"; }
    read -r wall user sys rss < "$ws/.time"
}
# The untimed warm-up: loading and the Go-free analysis of the workspace once, so the page
# cache holds the sources for every run.
"$ocib" build --disk_cache="$ws/.cache" --noshow_progress "${tarballs[@]}" > /dev/null 2> "$ws/.stderr" || { cat "$ws/.stderr" >&2; fail "ocib build"; }
# The write floor: for each service, its layer and its tarball's layers, copied in the kernel.
write_floor='
import glob, os, sys
def append(dst, src):
    with open(src, "rb") as f:
        left = os.fstat(f.fileno()).st_size
        while left > 0:
            n = os.copy_file_range(f.fileno(), dst.fileno(), left)
            if n == 0:
                break
            left -= n
for binary in sorted(glob.glob("svc/*/svc.bin")):
    name = binary.split("/")[1]
    with open(f"floor/{name}.layer", "wb") as layer:
        append(layer, binary)
    with open(f"floor/{name}.tarball", "wb") as tarball:
        for base_file in sys.argv[1:]:
            append(tarball, base_file)
        append(tarball, binary)
'
floor_bytes=$(( (2 * bin_bytes + $(stat -c %s /bin/busybox) + $(stat -c %s /usr/bin/tini-static)) * n ))
o_wall=() o_user=() o_sys=() o_rss=() f_wall=() f_sys=()
for ((r = 0; r < runs; r++)); do
    # Everything the previous round wrote is deleted, synced, and left to age SETTLE seconds
    # (default 65): ext4 without a journal skips inodes freed in the last 60 s (360 s while
    # their inode table block is dirty) when it allocates new ones, at one buffer lookup per
    # inode skipped (fs/ext4/ialloc.c, recently_deleted), so the cleanup of thousands of
    # files would be charged to the next run's file creation.
    "$ocib" clean --expunge --disk_cache="$ws/.cache" > /dev/null 2>&1 || fail "ocib clean --expunge"
    rm -rf "$ws/.cache" "$ws/floor" && mkdir "$ws/floor"
    sync
    sleep "${SETTLE:-65}"
    timed "$ocib" build --disk_cache="$ws/.cache" --noshow_progress "${tarballs[@]}"
    summary=$(sed -n 's/^INFO: \([0-9]* process.*\)\.$/\1/p' "$ws/.stderr")
    o_wall+=("$wall") o_user+=("$user") o_sys+=("$sys") o_rss+=("$rss")
    sync
    timed python3 -c "$write_floor" /bin/busybox /usr/bin/tini-static
    f_wall+=("$wall") f_sys+=("$sys")
    sync
done

echo "workspace:  $n images (pkg_tar of a $bin_bytes-byte binary + oci_image on //base:base_image + oci_tarball)"
echo "machine:    $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ocib cold:  median of $runs interleaved: system $(median "${o_sys[@]}") s (min-max $(range "${o_sys[@]}")), user $(median "${o_user[@]}") s," \
    "wall $(median "${o_wall[@]}") s (min-max $(range "${o_wall[@]}")), peak RSS $(($(median "${o_rss[@]}") / 1024)) MiB; $summary"
echo "floor:      one process writing each layer and tarball ($((2 * n)) files, $((floor_bytes / 1000000)) MB): system $(median "${f_sys[@]}") s (min-max $(range "${f_sys[@]}")), wall $(median "${f_wall[@]}") s"
awk -v s="$(median "${o_sys[@]}")" 'BEGIN { printf "target:     system time <= 3 s: %s\n", s <= 3 ? "met" : "MISSED" }'
