#!/usr/bin/env bash
# The README's fresh-machine check: runs its two commands, exactly as README.md writes them,
# in a fresh Debian 12 (bookworm) root with this machine's Rust toolchain and Docker engine.
#
#   bash scripts/check-fresh-machine.sh [example|tests|both]   (default: both)
#
# 1. `debootstrap --variant=minbase bookworm` into $WORK/rootfs (kept for the next run) and
#    `docker import` it as ocib-fresh/bookworm:base (no image is pulled from a registry).
# 2. What "a fresh Debian 12 with Rust and Docker" has besides the base system: a C linker
#    for rustc (gcc, libc6-dev), ca-certificates and the Docker CLI (docker.io; its daemon is
#    not started: the host's socket is mounted). Committed as ocib-fresh/bookworm:prepared.
# 3. A fresh clone of this repository's HEAD (committed files only, no target/) at
#    $WORK/clone, bind-mounted at the same path inside, so paths ocib hands to the host's
#    Docker daemon (`docker -v`, `docker load`) mean the same thing on both sides; TMPDIR too.
#    The host's ~/.rustup is mounted read-only; ~/.cargo starts with only rustup's proxies.
#    --network host (tests start registries on 127.0.0.1 that the host daemon pulls from);
#    every capability the host has (a test mounts a tmpfs; podman runs containers; not
#    --privileged, which a sandboxed host may refuse), and the host's cgroup tree writable
#    (podman's containers need cgroups); podman's storage on a host folder (overlay on overlay
#    does not work).
# 4. Runs each README command in a new container from the prepared image, prints its output
#    and exit code; exits non-zero if one failed.
#
# Needs root, debootstrap (apt-get install debootstrap) and a Docker engine. Debian's mirror
# is taken from this machine's apt sources (deb.debian.org unless set), override with MIRROR.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
which="${1:-both}"
work="${WORK:-/var/tmp/ocib-fresh-machine}"
mirror="${MIRROR:-$(grep -rhoE 'https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -n1 | tr -d ' ' || true)}"
mirror="${mirror:-http://deb.debian.org/debian}"
mkdir -p "$work"

if ! docker image inspect ocib-fresh/bookworm:base >/dev/null 2>&1; then
    if [ ! -x "$work/rootfs/bin/bash" ]; then
        echo "== debootstrap bookworm from $mirror"
        rm -rf "$work/rootfs"
        debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
            || { tail -n 20 "$work/debootstrap.log"; exit 1; }
    fi
    echo "== docker import"
    tar -C "$work/rootfs" -c . | docker import - ocib-fresh/bookworm:base
fi

if ! docker image inspect ocib-fresh/bookworm:prepared >/dev/null 2>&1; then
    echo "== the machine's prerequisites: a C linker for Rust, the Docker CLI"
    docker rm -f ocib-fresh-prepare >/dev/null 2>&1 || true
    # This machine's own CA certificates come along: a network that intercepts TLS (a proxy
    # with its own CA) is the machine's, not the README's business.
    docker run --name ocib-fresh-prepare --network host \
        -v /usr/local/share/ca-certificates:/host-ca:ro ocib-fresh/bookworm:base /bin/bash -c '
        set -e
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends ca-certificates gcc libc6-dev docker.io >/dev/null
        cp -r /host-ca/. /usr/local/share/ca-certificates/ && update-ca-certificates >/dev/null
        apt-get clean'
    docker commit --change 'ENV PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        ocib-fresh-prepare ocib-fresh/bookworm:prepared >/dev/null
    docker rm ocib-fresh-prepare >/dev/null
fi

echo "== fresh clone of $(git -C "$repo" rev-parse --short HEAD)"
clone="$work/clone"
rm -rf "$clone" "$work/cargo" "$work/tmp"
git clone --quiet --no-hardlinks "$repo" "$clone"
git -C "$clone" checkout --quiet "$(git -C "$repo" rev-parse HEAD)"
mkdir -p "$work/cargo" "$work/tmp" "$work/containers"
cp -a "$HOME/.cargo/bin" "$work/cargo/bin"
cp -a "$HOME/.cargo/env" "$work/cargo/env" 2>/dev/null || true

# The two commands, as README.md writes them: the line after each `<!-- fresh-machine: X -->`
# marker's ```sh fence.
readme_command() {
    awk -v tag="<!-- fresh-machine: $1 -->" '
        $0 == tag { found = 1; next }
        found && /^```sh$/ { getline; print; exit }' "$clone/README.md"
}

status=0
run_one() {
    local name="$1" cmd
    cmd="$(readme_command "$name")"
    [ -n "$cmd" ] || { echo "README.md has no <!-- fresh-machine: $name --> command" >&2; return 1; }
    echo "== README command ($name): $cmd"
    local started=$SECONDS rc=0
    local caps=(--cap-add ALL)
    # Capabilities this shell lacks cannot be given (CAP_SYS_RESOURCE is bit 24).
    local cap_eff
    cap_eff="$(awk '/^CapEff:/ {print $2}' /proc/self/status)"
    [ $(( 0x$cap_eff >> 24 & 1 )) = 1 ] || caps+=(--cap-drop SYS_RESOURCE)
    docker run --rm --network host "${caps[@]}" \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
        -v /var/run/docker.sock:/var/run/docker.sock \
        -v "$HOME/.rustup:/root/.rustup:ro" \
        -v "$work/cargo:/root/.cargo" \
        -v "$work/containers:/var/lib/containers" \
        -v "$clone:$clone" -v "$work/tmp:$work/tmp" -e TMPDIR="$work/tmp" \
        -e CI=true -w "$clone" \
        ocib-fresh/bookworm:prepared /bin/bash -c "$cmd" > >(tee "$work/$name.log") 2>&1 || rc=$?

    echo "== README command ($name): exit $rc after $((SECONDS - started)) s (log: $work/$name.log)"
    [ "$rc" = 0 ] || status=1
}

case "$which" in
    example) run_one example ;;
    tests) run_one tests ;;
    both) run_one example; run_one tests ;;
    *) echo "usage: $0 [example|tests|both]" >&2; exit 2 ;;
esac
exit $status
