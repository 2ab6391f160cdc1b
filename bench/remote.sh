#!/usr/bin/env bash
# Benchmark (not a test): the remote cache on bench/build.sh's workspace of N Go services
# (default 50; bench/lib/services.sh), against real servers on loopback: BuildGrid 0.4.4
# (REAPI over gRPC, $OCIB_TOOLS/buildgrid) and Debian's nginx as a WebDAV store (Bazel's HTTP
# cache protocol), both started here. Interleaved runs (A B C D A B C D ...), medians and min-max:
#   (i)   cold local build: empty disk cache, no remote;
#   (ii)  cold local cache, warm remote cache: empty disk cache and a fresh ocib-out, every
#         action a remote hit (checked), once against BuildGrid and once against nginx;
#   (iii) no-op rebuild with the remote cache: counts what reached the servers, from their
#         own logs: nginx's access log (PUT requests and their bytes) and BuildGrid's request
#         log (`-vv`: UpdateActionResult, BatchUpdateBlobs, ByteStream Write). Must be 0.
#   (iv)  remote execution of everything: empty disk cache, a fresh ocib-out,
#         `--remote_executor=... --noremote_accept_cached` (every remotable action runs on a
#         worker; file writes and stamped actions stay local, as src/exec/remote/mod.rs says).
#         REMOTE_EXECUTOR=auto (default) starts an Execution-capable BuildGrid here, as the
#         tests do (tests/it/common/remote.rs): a private PostgreSQL cluster, BuildGrid with
#         Execution + CAS + action cache + Bots over it, and two tests/bot/bot.py workers;
#         REMOTE_EXECUTOR=grpc://HOST:PORT uses a given server with workers; REMOTE_EXECUTOR=none
#         skips (iv). A figure is reported only for builds whose summary counts remote execution.
# Go's own build cache (GOCACHE) stays warm throughout, as in bench/build.sh's cold build; the
# bots inherit it (and PATH, OCIB_GO, HOME), as a worker image provides its tools.
#
# Usage: bench/remote.sh [N]    env: RUNS (default 5), OCIB (a given ocib binary, not built
#                                    here), OCIB_GO, GOCACHE, OCIB_TOOLS, REMOTE_EXECUTOR
#                                    (auto, none or grpc://HOST:PORT; default auto)
set -euo pipefail

n=${1:-50}
runs=${RUNS:-5}
executor=${REMOTE_EXECUTOR:-auto}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/remote.sh [N]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${OCIB:-${CARGO_TARGET_DIR:-$root/target}/release/ocib}
export GOCACHE=${GOCACHE:-$root/target/bench-gocache}
bgd=${OCIB_TOOLS:-/opt/ocib-tools}/buildgrid/bin/bgd
nginx=/usr/sbin/nginx
if [[ -z ${OCIB_GO:-} ]] && ! command -v go > /dev/null; then
    echo "FAIL: no Go toolchain: put go on PATH or set OCIB_GO" >&2; exit 1
fi
[[ -x $bgd ]] || { echo "FAIL: no BuildGrid at $bgd (scripts/setup.sh installs it)" >&2; exit 1; }
[[ -x $nginx ]] || { echo "FAIL: no nginx at $nginx (scripts/setup.sh installs it)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ocib-remote-bench.XXXXXX")
pids=()
cleanup() {
    local i # last started first: bots, then their server, then PostgreSQL
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

if [[ -z ${OCIB:-} ]]; then
    echo "building ocib (release)..." >&2
    (cd "$root" && cargo build --release > "$tmp/build.log" 2>&1) \
        || { cat "$tmp/build.log" >&2; echo "FAIL: cargo build --release" >&2; exit 1; }
fi

ws=$tmp/ws
mkdir -p "$ws"
# shellcheck source=bench/lib/services.sh
source "$root/bench/lib/services.sh"
gen_services "$ws" "$n"

# --- servers ------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { # port, what, log
    local i
    for ((i = 0; i < 1200; i++)); do
        (: < "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0
        sleep 0.1
    done
    echo "FAIL: $2 did not start:" >&2; cat "$3" >&2; exit 1
}

srv=$tmp/srv
mkdir -p "$srv/dav" "$srv/dav-tmp" "$srv/bg"
http_port=$(free_port)
user=""
[[ $(id -u) == 0 ]] && user="user root;"
cat > "$srv/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $srv/nginx.pid;
error_log $srv/nginx-error.log warn;
$user
events { worker_connections 512; }
http {
  log_format cache '\$request_method \$status \$request_length \$bytes_sent';
  access_log $srv/access.log cache;
  client_body_temp_path $srv/dav-tmp;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:$http_port;
    root $srv/dav;
    location / { dav_methods PUT; create_full_put_path on; dav_access user:rw group:r all:r; }
  }
}
EOF
"$nginx" -e "$srv/nginx-error.log" -c "$srv/nginx.conf" > "$srv/nginx.out" 2>&1 &
pids+=($!)

grpc_port=$(free_port)
cat > "$srv/buildgrid.yml" <<EOF
server:
  - !channel
    address: "127.0.0.1:$grpc_port"
    insecure-mode: true
authorization:
  method: none
storages:
  - !disk-storage &cas-storage
    path: $srv/bg
caches:
  - !lru-action-cache &ac
    storage: *cas-storage
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: ""
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas-storage
      - !bytestream
        storage: *cas-storage
EOF
# -vv: BuildGrid logs every request it receives with its method, which (iii) counts.
"$bgd" server start -vv "$srv/buildgrid.yml" > "$srv/buildgrid.log" 2>&1 &
pids+=($!)
wait_port "$http_port" nginx "$srv/nginx-error.log"
wait_port "$grpc_port" BuildGrid "$srv/buildgrid.log"
grpc=grpc://127.0.0.1:$grpc_port
http=http://127.0.0.1:$http_port/cache

# An Execution-capable BuildGrid with two bots, as tests/it/common/remote.rs's start_exec_grid:
# PostgreSQL (initdb and the server refuse root: run as `postgres` then) holds the scheduler's
# state; psycopg2 (psycopg 3's notifier hangs BuildGrid 0.4.4); 200 gRPC threads, since every
# running Execute stream and bot long-poll holds one.
start_exec_grid() {
    local pg_bin runas="" pg_port exec_port i
    pg_bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2> /dev/null | sort -V | tail -n 1)
    [[ -x $pg_bin/postgres ]] || { echo "FAIL: no PostgreSQL server (scripts/setup.sh installs postgresql)" >&2; exit 1; }
    mkdir -p "$srv/pg" "$srv/exec" "$srv/exec/root"
    if [[ $(id -u) == 0 ]]; then
        runas="runuser -u postgres --"
        chmod 755 "$tmp" "$srv" "$srv/pg"
        chown postgres "$srv/pg"
    fi
    $runas "$pg_bin/initdb" -D "$srv/pg/data" -U bgd --auth=trust -E UTF8 --no-sync > "$srv/initdb.log" 2>&1 \
        || { cat "$srv/initdb.log" >&2; echo "FAIL: initdb" >&2; exit 1; }
    pg_port=$(free_port)
    $runas "$pg_bin/postgres" -D "$srv/pg/data" -h 127.0.0.1 -p "$pg_port" -k "$srv/pg" \
        -c fsync=off -c max_connections=200 > "$srv/postgres.log" 2>&1 &
    pids+=($!)
    for ((i = 0; i < 100; i++)); do
        $runas "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U bgd bgd > /dev/null 2>&1 && break
        sleep 0.1
    done
    ((i < 100)) || { cat "$srv/postgres.log" >&2; echo "FAIL: createdb" >&2; exit 1; }
    local url=postgresql+psycopg2://bgd@127.0.0.1:$pg_port/bgd
    "$bgd" migrate apply "$url" > "$srv/migrate.log" 2>&1 \
        || { cat "$srv/migrate.log" >&2; echo "FAIL: bgd migrate apply" >&2; exit 1; }
    exec_port=$(free_port)
    cat > "$srv/exec.yml" <<EOF
server:
  - !channel
    address: "127.0.0.1:$exec_port"
    insecure-mode: true
thread-pool-size: 200
authorization:
  method: none
connections:
  - !sql-connection &sql
    connection-string: $url
    pool-size: 10
    max-overflow: 20
storages:
  - !disk-storage &cas-storage
    path: $srv/exec/root
caches:
  - !lru-action-cache &ac
    storage: *cas-storage
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *cas-storage
    action-cache: *ac
    property-set: !dynamic-property-set
      match-property-keys: [OSFamily]
      wildcard-property-keys: [ocib-test]
instances:
  - name: ""
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *scheduler
      - !cas
        storage: *cas-storage
      - !bytestream
        storage: *cas-storage
EOF
    "$bgd" server start "$srv/exec.yml" > "$srv/exec.log" 2>&1 &
    pids+=($!)
    wait_port "$exec_port" "BuildGrid (execution)" "$srv/exec.log"
    for i in 0 1; do
        mkdir -p "$srv/bot$i"
        "$(dirname "$bgd")/python" "$root/tests/bot/bot.py" --remote "127.0.0.1:$exec_port" \
            --workdir "$srv/bot$i" --name "ocib-bench-bot-$$-$i" --property OSFamily=linux \
            --inherit-env PATH --inherit-env OCIB_GO --inherit-env GOCACHE --inherit-env HOME \
            > "$srv/bot$i.log" 2>&1 &
        pids+=($!)
    done
    executor=grpc://127.0.0.1:$exec_port
}
case $executor in
    auto) start_exec_grid ;;
    none | grpc://* | grpcs://*) ;;
    *) echo "FAIL: REMOTE_EXECUTOR=$executor: auto, none or grpc://HOST:PORT" >&2; exit 2 ;;
esac

# --- measurements -------------------------------------------------------------------------
cd "$ws"
errlog=$tmp/stderr
now_ns() { date +%s%N; }

# One `ocib build //...` with a disk cache of $1 and flags $2...: sets $dur (ns) and the
# counts $remote/$disk/$executed from the summary line. Fails loudly.
build() {
    local cache=$1 t0 rc processes
    shift
    t0=$(now_ns)
    "$ocib" build --noshow_progress --disk_cache="$cache" "$@" //... > /dev/null 2> "$errlog" \
        || { rc=$?; echo "FAIL: ocib build $* //... exited with $rc:" >&2; cat "$errlog" >&2; exit 1; }
    dur=$(($(now_ns) - t0))
    processes=$(sed -n 's/^INFO: [0-9]* process\(es\)*[:.]//p' "$errlog")
    [[ -n $processes ]] || { echo "FAIL: no summary line from ocib build:" >&2; cat "$errlog" >&2; exit 1; }
    count() { { grep -o "[0-9]* $1" <<< "$processes" || true; } | awk '{ s += $1 } END { print s + 0 }'; }
    remote=$(count 'remote cache hit') disk=$(count 'disk cache hit') executed=$(($(count internal) + $(count local)))
    rexecuted=$({ grep -o '[0-9]* remote[,.]' <<< "$processes" || true; } | awk '{ s += $1 } END { print s + 0 }')
    local_spawns=$(count local)
    if grep -q '^WARNING: Remote' "$errlog"; then
        echo "FAIL: the remote cache failed during ocib build $*:" >&2; cat "$errlog" >&2; exit 1
    fi
}
# A cold build: fresh disk cache and no ocib-out (outputs, stat cache) from an earlier run.
cold() {
    rm -rf "$tmp/dc" ocib-out ocib-bin ocib-testlogs
    build "$tmp/dc" "$@"
}
stats() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END {
    printf "%.2f s (min-max %.2f-%.2f)", a[int((NR + 1) / 2)] / 1e9, a[1] / 1e9, a[NR] / 1e9 }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] / 1e9 }'; }

# Fill both remote caches (and check the workspace builds); what the first upload sent.
cold --remote_cache="$grpc"
total=$((remote + disk + executed))
((executed == total && total > 0)) || { echo "FAIL: the first build was not cold:" >&2; cat "$errlog" >&2; exit 1; }
puts0=$(grep -c '^PUT ' "$srv/access.log" || true)
cold --remote_cache="$http"
fill_puts=$(($(grep -c '^PUT ' "$srv/access.log" || true) - puts0))
fill_bytes=$(awk '$1 == "PUT" { s += $3 } END { print s + 0 }' "$srv/access.log")

# (i), (ii) and (iv), interleaved.
a=() g=() h=() x=()
for ((r = 0; r < runs; r++)); do
    cold
    ((executed == total)) || { echo "FAIL: cold local build ran $executed of $total actions" >&2; exit 1; }
    a+=("$dur")
    cold --remote_cache="$grpc"
    ((remote == total)) || { echo "FAIL: warm gRPC remote: $remote of $total actions were remote hits:" >&2; cat "$errlog" >&2; exit 1; }
    g+=("$dur")
    cold --remote_cache="$http"
    ((remote == total)) || { echo "FAIL: warm HTTP remote: $remote of $total actions were remote hits:" >&2; cat "$errlog" >&2; exit 1; }
    h+=("$dur")
    if [[ $executor != none ]]; then
        cold --remote_executor="$executor" --noremote_accept_cached
        ((rexecuted > 0 && local_spawns == 0 && rexecuted + executed == total)) \
            || { echo "FAIL: remote execution: $rexecuted remote, $local_spawns local spawns of $total actions:" >&2; cat "$errlog" >&2; exit 1; }
        x+=("$dur")
        rexec_summary=$(grep '^INFO: [0-9]* process' "$errlog")
    fi
done
out=$(./ocib-bin/svc/s0000/s0000_/s0000) || { echo "FAIL: running //svc/s0000 failed" >&2; exit 1; }
[[ $out == "hello from s0000 "* ]] || { echo "FAIL: s0000 printed '$out'" >&2; exit 1; }

# (iii) no-op rebuilds with the remote cache: what reached the servers.
build "$tmp/dc" --remote_cache="$http" # the disk cache of the last HTTP run is warm
ng=() nh=()
log_lines0=$(wc -l < "$srv/access.log")
bg_writes() { { grep -Ec 'method="(UpdateActionResult|BatchUpdateBlobs|Write)"' "$srv/buildgrid.log" || true; }; }
bg_requests() { { grep -c 'Received request' "$srv/buildgrid.log" || true; }; }
bg_w0=$(bg_writes) bg_r0=$(bg_requests)
for ((r = 0; r < runs; r++)); do
    build "$tmp/dc" --remote_cache="$grpc"
    ((executed == 0 && remote == 0)) || { echo "FAIL: no-op build with gRPC remote: $executed executed, $remote remote hits" >&2; exit 1; }
    ng+=("$dur")
    build "$tmp/dc" --remote_cache="$http"
    ((executed == 0 && remote == 0)) || { echo "FAIL: no-op build with HTTP remote: $executed executed, $remote remote hits" >&2; exit 1; }
    nh+=("$dur")
done
sleep 1 # let the servers flush their logs
noop_http_requests=$(($(wc -l < "$srv/access.log") - log_lines0))
noop_http_put_bytes=$(tail -n +"$((log_lines0 + 1))" "$srv/access.log" | awk '$1 == "PUT" { s += $3 } END { print s + 0 }')
noop_bg_writes=$(($(bg_writes) - bg_w0))
noop_bg_requests=$(($(bg_requests) - bg_r0))
noop_bg_other=$(tail -n +1 "$srv/buildgrid.log" | grep 'Received request' | tail -n "$noop_bg_requests" \
    | grep -o 'method="[A-Za-z]*"' | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')

echo "workspace:        $n services (go_library + go_binary with x_defs + pkg_tar), 5 shared libs: $total actions"
echo "machine:          $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); GOCACHE warm ($GOCACHE)"
echo "servers:          BuildGrid 0.4.4 ($grpc), nginx WebDAV ($http), loopback"
echo "first upload:     HTTP: $fill_puts PUTs, $fill_bytes bytes"
echo "(i)   cold local build, empty disk cache:        $(stats "${a[@]}")   [median of $runs interleaved]"
echo "(ii)  empty disk cache, warm remote, gRPC:       $(stats "${g[@]}")   ratio $(awk -v a="$(median "${g[@]}")" -v b="$(median "${a[@]}")" 'BEGIN { printf "%.2f", a / b }')x cold local"
echo "      empty disk cache, warm remote, HTTP:       $(stats "${h[@]}")   ratio $(awk -v a="$(median "${h[@]}")" -v b="$(median "${a[@]}")" 'BEGIN { printf "%.2f", a / b }')x cold local"
echo "(iii) no-op with the remote cache, gRPC:         $(stats "${ng[@]}"); BuildGrid received $noop_bg_writes upload requests (UpdateActionResult/BatchUpdateBlobs/Write) of $noop_bg_requests requests${noop_bg_other:+ ($noop_bg_other)} in $runs builds"
echo "      no-op with the remote cache, HTTP:         $(stats "${nh[@]}"); nginx received $noop_http_requests requests, $noop_http_put_bytes bytes of PUT, in $runs builds"
if [[ $executor == none ]]; then
    echo "(iv)  remote execution of everything:           n/a (REMOTE_EXECUTOR=none)"
else
    echo "(iv)  remote execution of everything:           $(stats "${x[@]}")   ratio $(awk -v a="$(median "${x[@]}")" -v b="$(median "${a[@]}")" 'BEGIN { printf "%.2f", a / b }')x cold local; ${REMOTE_EXECUTOR:-auto: BuildGrid 0.4.4 + PostgreSQL + 2 bots} ($rexec_summary)"
fi
if ((noop_bg_writes != 0 || noop_http_put_bytes != 0)); then
    echo "FAIL: a no-op build uploaded to the remote cache" >&2
    exit 1
fi
