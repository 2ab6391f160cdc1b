#!/usr/bin/env bash
# Benchmark (not a test): an apko_image base of N packages (default 20, ~50 MB of package data
# in all), built by ocib from a lock whose packages a loopback HTTP server (python3 -m
# http.server) serves, against `docker build` of the equivalent FROM scratch + ADD Dockerfile
# (the same files, unpacked). Measured, RUNS times each and interleaved, medians printed:
#   1. cold: ocib with a fresh --disk_cache (fetch, verify, install, layer, layout) vs
#      `docker build --no-cache`;
#   2. warm: nothing changed (ocib: every action a cache hit) vs `docker build` with its cache.
#
# Usage: bench/apko.sh [N]        env: RUNS (default 5), OCIB (an ocib binary to use instead of
#                                  building the release one)
set -euo pipefail

n=${1:-20}
runs=${RUNS:-5}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/apko.sh [N]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${OCIB:-${CARGO_TARGET_DIR:-$root/target}/release/ocib}
command -v docker > /dev/null || { echo "FAIL: docker is needed for the baseline" >&2; exit 1; }

ws=$(mktemp -d "${TMPDIR:-/tmp}/ocib-bench-apko.XXXXXX")
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2> /dev/null || true
    docker rmi -f ocib-bench-apko:docker > /dev/null 2>&1 || true
    rm -rf "$ws"
}
trap cleanup EXIT

if [[ -z ${OCIB:-} ]]; then
    echo "building ocib (release)..." >&2
    (cd "$root" && cargo build --release > "$ws/.build.log" 2>&1) \
        || { cat "$ws/.build.log" >&2; echo "FAIL: cargo build --release" >&2; exit 1; }
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# --- packages, lock and the Dockerfile's context -------------------------------------------
python3 - "$ws" "$n" "$port" <<'EOF'
import base64, gzip, hashlib, io, json, os, sys, tarfile

ws, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
repo = os.path.join(ws, "repo", "os", "x86_64")
ctx = os.path.join(ws, "docker", "rootfs")
os.makedirs(repo)
os.makedirs(ctx)

def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as f:
        f.write(data)
    return out.getvalue()

def tar_bytes(members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            else:
                info.size, info.mode = len(data), mode
                t.addfile(info, io.BytesIO(data))
    # ocib reads each gzip stream on its own, so the control tar may keep its end blocks.
    return out.getvalue()

packages = []
size = 50 * 1024 * 1024 // n
for i in range(n):
    name, version = f"bench-pkg{i:02d}", "1.0-r0"
    # Half random (incompressible), half text: like binaries plus data files.
    blob = os.urandom(size // 2) + (f"package {i} line\n" * (size // 32)).encode()[: size // 2]
    members = [("usr", None, 0), ("usr/share", None, 0), (f"usr/share/{name}", None, 0), (f"usr/share/{name}/data.bin", blob, 0o644)]
    data = gz(tar_bytes(members))
    pkginfo = f"pkgname = {name}\npkgver = {version}\narch = x86_64\nbuilddate = 1700000000\nsize = {len(blob)}\ndatahash = {hashlib.sha256(data).hexdigest()}\n".encode()
    control = gz(tar_bytes([(".PKGINFO", pkginfo, 0o644)]))
    apk = control + data
    fname = f"{name}-{version}.apk"
    with open(os.path.join(repo, fname), "wb") as f:
        f.write(apk)
    os.makedirs(os.path.join(ctx, "usr/share", name), exist_ok=True)
    with open(os.path.join(ctx, "usr/share", name, "data.bin"), "wb") as f:
        f.write(blob)
    sri = lambda algo, b: f"{algo}-" + base64.b64encode(hashlib.new(algo, b).digest()).decode()
    packages.append({
        "name": name, "version": version, "architecture": "x86_64",
        "url": f"http://127.0.0.1:{port}/os/x86_64/{fname}",
        "signature": {"range": "", "checksum": ""},
        "control": {"range": "", "checksum": sri("sha1", control)},
        "data": {"range": "", "checksum": sri("sha256", data)},
    })
lock = {"version": "v1", "contents": {"keyring": [], "repositories": [], "packages": packages}}
with open(os.path.join(ws, "apko.lock.json"), "w") as f:
    json.dump(lock, f, indent=2)
with open(os.path.join(ws, "apko.yaml"), "w") as f:
    f.write("contents:\n  packages:\n" + "".join(f"    - {p['name']}\n" for p in packages) + "archs:\n  - x86_64\n")
with open(os.path.join(ws, "docker", "Dockerfile"), "w") as f:
    f.write("FROM scratch\nADD rootfs/ /\n")
EOF

cat > "$ws/MODULE.bazel" <<'EOF'
module(name = "bench_apko")

bazel_dep(name = "rules_apko", version = "1.5.0")

apko = use_extension("@rules_apko//apko:extensions.bzl", "apko")
apko.translate_lock(name = "bench_lock", lock = "//:apko.lock.json")
use_repo(apko, "bench_lock")
EOF
cat > "$ws/BUILD.bazel" <<'EOF'
load("@rules_apko//apko:defs.bzl", "apko_image")

apko_image(
    name = "base",
    architecture = "amd64",
    config = "apko.yaml",
    contents = "@bench_lock//:contents",
    tag = "bench:latest",
)
EOF

(cd "$ws/repo" && exec python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
server_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" > /dev/null 2>&1 && break; sleep 0.1; done

ms() { local s e; s=$(date +%s%N); "$@" > /dev/null 2>&1 || { echo "FAIL: $*" >&2; exit 1; }; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

ocib_cold() { rm -rf "$ws/.cache" "$ws/ocib-out"; (cd "$ws" && "$ocib" --nohome_rc --nosystem_rc build --noshow_progress --disk_cache="$ws/.cache" //:base); }
ocib_warm() { (cd "$ws" && "$ocib" --nohome_rc --nosystem_rc build --noshow_progress --disk_cache="$ws/.cache" //:base); }
docker_cold() { docker build -q --no-cache -t ocib-bench-apko:docker "$ws/docker"; }
docker_warm() { docker build -q -t ocib-bench-apko:docker "$ws/docker"; }

: > "$ws/t.ocib_cold"; : > "$ws/t.docker_cold"; : > "$ws/t.ocib_warm"; : > "$ws/t.docker_warm"
for _ in $(seq "$runs"); do
    ms ocib_cold >> "$ws/t.ocib_cold"
    ms docker_cold >> "$ws/t.docker_cold"
    ms ocib_warm >> "$ws/t.ocib_warm"
    ms docker_warm >> "$ws/t.docker_warm"
done
mb=$(du -sm "$ws/repo" | cut -f1)
echo "apko_image, $n packages (${mb} MB of .apk), medians of $runs interleaved runs:"
printf '  cold: ocib %s ms   docker build --no-cache %s ms\n' "$(median < "$ws/t.ocib_cold")" "$(median < "$ws/t.docker_cold")"
printf '  warm: ocib %s ms   docker build (cached) %s ms\n' "$(median < "$ws/t.ocib_warm")" "$(median < "$ws/t.docker_warm")"
