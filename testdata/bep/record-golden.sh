#!/usr/bin/env bash
# Regenerates testdata/bep/{build,test}.bazel-4.2.3.shape.json: the shape of the Build Event
# Protocol streams Bazel writes for `bazel build //...` and `bazel test //:hello_test` on
# testdata/bep/workspace (Bazel 4.2.3, the Debian bazel-bootstrap package, offline).
# tests/it/progress.rs compares ocib's streams with them.
#
# Shape, not content: per event its id (configuration ids replaced by "CONFIG", as they are
# hashes of Bazel's options), the ids it announces, and its payload's keys (nested objects'
# keys too; arrays as one element, the union of their elements' keys; values by JSON type). Timings, paths and hashes
# differ between runs and tools; the structure a BEP consumer walks does not.
#
# Offline, sh_test's analysis needs two repositories Bazel would download: @rules_cc (for
# the Windows launcher, unused on Linux) and @remote_coverage_tools (coverage only). They are
# replaced by empty stand-ins with --override_repository; neither changes the stream's shape
# for the workspace's own targets.
#
# The system rc stays on: Debian's holds the startup options its bazel needs (install base).
#
# Usage: testdata/bep/record-golden.sh        (needs `bazel` 4.2.3 and jq)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v bazel > /dev/null || { echo "FAIL: bazel not found (apt-get install bazel-bootstrap)" >&2; exit 1; }
command -v jq > /dev/null || { echo "FAIL: jq not found" >&2; exit 1; }
# Debian's bootstrap build reports no version itself; its package does.
version=$(dpkg-query -W -f '${Version}' bazel-bootstrap 2> /dev/null || true)
[[ $version == 4.2.3* ]] || { echo "FAIL: bazel-bootstrap is '$version', the golden is for 4.2.3" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -a "$here/workspace" "$tmp/ws"
mkdir -p "$tmp/rules_cc/cc" "$tmp/coverage"
touch "$tmp/rules_cc/WORKSPACE" "$tmp/rules_cc/cc/BUILD" "$tmp/coverage/WORKSPACE"
cat > "$tmp/rules_cc/cc/defs.bzl" << 'BZL'
def _stub(name, visibility = None, **kwargs):
    native.filegroup(name = name, visibility = visibility)

cc_binary = _stub
cc_library = _stub
cc_test = _stub
BZL
for t in coverage_report_generator lcov_merger Main; do
    echo "filegroup(name = \"$t\", visibility = [\"//visibility:public\"])" >> "$tmp/coverage/BUILD"
done
record() { # record NAME COMMAND PATTERN
    (cd "$tmp/ws" && bazel --batch --nohome_rc --output_user_root="$tmp/root" "$2" "$3" \
        --override_repository=rules_cc="$tmp/rules_cc" \
        --override_repository=remote_coverage_tools="$tmp/coverage" \
        --build_event_json_file="$tmp/$1.json") > "$tmp/bazel.log" 2>&1 \
        || { cat "$tmp/bazel.log" >&2; echo "FAIL: bazel $2 $3 failed" >&2; exit 1; }
    jq -c -f "$here/shape.jq" "$tmp/$1.json" > "$here/$1.bazel-4.2.3.shape.json"
    echo "wrote $here/$1.bazel-4.2.3.shape.json ($(wc -l < "$here/$1.bazel-4.2.3.shape.json") events)"
}
record build build //...
record test test //:hello_test
