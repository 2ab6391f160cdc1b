#!/usr/bin/env bash
# Drop-in benchmark (not a test): how many packages of real public repositories load unchanged
# with `ocib query //pkg:all` (issue 11). The repositories are listed in bench/corpus.txt; their
# files are never committed here.
#
# Usage: bench/corpus.sh DIR [OCIB]
#   DIR   holds one checkout per repository (DIR/<owner>+<name>/), each a workspace root or a
#         directory containing workspaces.
#   OCIB  the binary to measure (default: target/debug/ocib of this tree).
# env: TIMEOUT  seconds per `ocib query` (default 60)
#      BUDGET   seconds for the whole run (default 3600); packages not reached in time are
#               counted as failing with the class "not run: time budget exhausted"
#      SKIP_NESTED  extended regex of nested workspace paths (relative to the checkout) that are
#               test fixtures rather than workspaces a user queries (default: any path with a
#               testdata/test/tests component, or a BCR-style registry/modules/ tree)
#
# What counts, as Bazel sees it:
# - A workspace is a directory with WORKSPACE, WORKSPACE.bazel, MODULE.bazel or REPO.bazel; the
#   checkout's root always counts, and every nested one (e.g. rules_oci's e2e/smoke) counts as a
#   separate workspace, whether or not the outer one's .bazelignore hides it.
# - A package of a workspace is a directory with a BUILD or BUILD.bazel file, below the
#   workspace root, not inside a nested workspace, not under a path listed in the workspace's
#   .bazelignore (Bazel's format: one path per line, relative to the root, `#` comments), and
#   not under .git, a bazel-* convenience symlink or ocib's own ocib-out directory.
# - A package loads when `ocib query //pkg:all` run at the workspace root exits 0. Otherwise
#   the first error line is kept (a Starlark diagnostic's `error:` line with its `-->` location,
#   else the first `ERROR:` line, else the first line that is not a WARNING) and its class is the
#   message with locations, quoted text and numbers blanked, so that the same failure in many
#   packages counts together.
# - A workspace queries when `ocib query //...` run at its root exits 0 (issue 11's second
#   acceptance figure); otherwise its first error line is listed.
#
# Output: per workspace `loaded/total` and one `FAIL //pkg: location: message` line per failing
# package, then the error classes by count with one example each, the workspaces where
# `query //...` fails, then `corpus: L/T packages loaded (P %)` and
# `corpus: query //... succeeds in Q of W workspaces`. One workspace failing, hanging or crashing never stops
# the run.
#
# Re-creating DIR from bench/corpus.txt (lines `owner/name commit era reason...`):
#   bench/corpus-fetch.sh DIR [MIRROR] clones each repository (from MIRROR/owner+name/repo, the
#   bare git dir the project sandbox's search-tool `fetch github:owner/name` leaves, else from
#   GitHub) into DIR/owner+name and checks out the listed commit; by hand it is
#   `git clone https://github.com/owner/name DIR/owner+name && git -C DIR/owner+name checkout COMMIT`.
# Keep DIR outside any git repository of ours.
set -uo pipefail

if [[ $# -lt 1 || ! -d $1 ]]; then
    echo "usage: $0 DIR [OCIB]   (DIR holds one checkout per repository)" >&2
    exit 2
fi
dir=$(cd "$1" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ocib=${2:-${CARGO_TARGET_DIR:-$root/target}/debug/ocib}
[[ $ocib == */* ]] && ocib=$(cd "$(dirname "$ocib")" && pwd)/$(basename "$ocib")
if [[ ! -x $ocib ]]; then
    echo "$0: no ocib binary at $ocib (cargo build, or pass OCIB)" >&2
    exit 2
fi
timeout_s=${TIMEOUT:-60}
budget=${BUDGET:-3600}
skip_nested=${SKIP_NESTED:-'(^|/)(testdata|tests?)(/|$)|(^|/)registry/modules/'}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ocib-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=$tmp/fails.tsv # class \t example
: > "$fails"
start=$SECONDS
total=0
loaded=0
per_repo=()
ws_count=0
ws_queried=0
ws_failed=() # "label: first error" of each workspace whose query //... fails

is_ws_root() {
    [[ -f $1/WORKSPACE || -f $1/WORKSPACE.bazel || -f $1/MODULE.bazel || -f $1/REPO.bazel ]]
}

# Packages of workspace $1, one relative path a line ("" for the root package), sorted.
packages() {
    local ws=$1 ign=() line
    if [[ -f $ws/.bazelignore ]]; then
        while IFS= read -r line || [[ -n $line ]]; do
            line=${line%%#*}
            line=$(printf '%s' "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//; s|^\./||; s|/*$||')
            [[ -n $line ]] && ign+=("$line")
        done < "$ws/.bazelignore"
    fi
    # find prunes .git, bazel-* and nested workspaces (a directory below ws with a
    # WORKSPACE/MODULE file); .bazelignore paths are pruned below by prefix.
    (cd "$ws" && find . -mindepth 1 \( -name .git -o -name 'bazel-*' -o -name ocib-out \) -prune -o \
        -type d -exec sh -c 'for d; do
            if [ -f "$d/WORKSPACE" ] || [ -f "$d/WORKSPACE.bazel" ] || [ -f "$d/MODULE.bazel" ] || [ -f "$d/REPO.bazel" ]; then
                echo "NESTED $d"; fi; done' sh {} + -o \
        -type f \( -name BUILD -o -name BUILD.bazel \) -print) \
        | awk -v ign="$(printf '%s\n' "${ign[@]+"${ign[@]}"}")" '
            BEGIN { n = split(ign, ig, "\n") }
            /^NESTED / { sub(/^NESTED \.\//, ""); nested[++m] = $0; next }
            { sub(/^\.\//, ""); sub(/\/?BUILD(\.bazel)?$/, ""); pk[$0] = 1 }
            END {
                for (p in pk) {
                    ok = 1
                    for (i = 1; i <= n; i++) if (ig[i] != "" && (p == ig[i] || index(p, ig[i] "/") == 1)) ok = 0
                    for (j = 1; j <= m; j++) if (p == nested[j] || index(p, nested[j] "/") == 1) ok = 0
                    if (ok) print p
                }
            }' | LC_ALL=C sort -u
}

# First error line of a failed query's stderr ($1), as "location: message": the first
# `ERROR:`/`error:` line (not a traceback header nor the closing "Evaluation of query ...
# failed"), with the `-->` location of a Starlark diagnostic when one follows within a few
# lines; else the first line that is not a WARNING.
first_error() {
    awk '
        function strip(l) { sub(/^ERROR: /, "", l); sub(/^error: /, "", l); return l }
        msg && !loc && NR <= at + 3 && /^ *--> / { sub(/^ *--> /, ""); loc = $0; next }
        !msg && /^(ERROR|error): / && !/^ERROR: Traceback/ && !/^ERROR: Evaluation of query / {
            msg = strip($0); at = NR; next
        }
        !/^WARNING/ && !/^ERROR: Traceback/ && NF && !other { other = $0 }
        END {
            if (msg) print (loc ? loc ": " : "") msg
            else if (other) print other
            else print "(no message)"
        }' "$1"
}

# Error class: the message without its location, with quoted text and numbers blanked; a
# backquoted identifier (Starlark's `Variable `java_library` not found`) stays, since which
# symbol is missing is what tells one class from another.
classify() {
    # A chain of locations (WORKSPACE:2:6: oci/private/pull.bzl:5:6: ...) goes as a whole.
    sed -E 's/^([^ :]+:[0-9]+(:[0-9]+(-[0-9]+)?)?: )+//
            s/'"'"'[^'"'"']*'"'"'/'"'"'…'"'"'/g
            s/"[^"]*"/"…"/g
            s/`([A-Za-z_][A-Za-z0-9_.]*)`/\x01\1\x02/g
            s/`[^`]*`/`…`/g
            s/[\x01\x02]/`/g
            s/[0-9]+/N/g
            s/[[:space:]]+/ /g' <<< "$1" | cut -c1-200
}

mapfile -t checkouts < <(find "$dir" -mindepth 1 -maxdepth 1 -xtype d ! -name '.*' | LC_ALL=C sort)
for co in "${checkouts[@]}"; do
    name=$(basename "$co")
    # Workspace roots: the checkout's own, then every nested one that is not a fixture.
    mapfile -t roots < <(cd "$co" && find . \( -name .git -o -name 'bazel-*' -o -name ocib-out \) -prune -o \
        -type f \( -name WORKSPACE -o -name WORKSPACE.bazel -o -name MODULE.bazel -o -name REPO.bazel \) \
        -printf '%h\n' | sed 's|^\./||; s|^\.$||' | LC_ALL=C sort -u)
    if [[ ${#roots[@]} -eq 0 ]]; then
        echo "== $name: no WORKSPACE/MODULE.bazel found, skipped"
        continue
    fi
    co_total=0
    co_loaded=0
    for rel in "${roots[@]}"; do
        if [[ -n $rel ]] && [[ $rel =~ $skip_nested ]]; then
            continue
        fi
        ws=$co${rel:+/$rel}
        label=$name${rel:+/$rel}
        mapfile -t pkgs < <(packages "$ws")
        ws_total=${#pkgs[@]}
        ws_loaded=0
        report=()
        for p in "${pkgs[@]}"; do
            if (( SECONDS - start >= budget )); then
                line="not run: time budget exhausted"
                report+=("  FAIL //$p: $line")
                printf '%s\t%s\n' "$line" "$label //$p: $line" >> "$fails"
                continue
            fi
            (cd "$ws" && timeout -k 5 "$timeout_s" "$ocib" query "//$p:all" \
                > /dev/null 2> "$tmp/err" < /dev/null)
            rc=$?
            if [[ $rc -eq 0 ]]; then
                ws_loaded=$((ws_loaded + 1))
                continue
            fi
            if [[ $rc -eq 124 || $rc -eq 137 ]]; then
                line="timeout after ${timeout_s}s"
            elif [[ $rc -gt 128 ]]; then
                line="killed by signal $((rc - 128)): $(first_error "$tmp/err")"
            else
                line=$(first_error "$tmp/err")
            fi
            report+=("  FAIL //$p: $line")
            # Locations are relative to the workspace; make the example findable.
            printf '%s\t%s\n' "$(classify "$line")" "$label: $line" >> "$fails"
        done
        ws_count=$((ws_count + 1))
        if (( SECONDS - start >= budget )); then
            all="not run: time budget exhausted"
        else
            (cd "$ws" && timeout -k 5 "$timeout_s" "$ocib" query //... \
                > /dev/null 2> "$tmp/err" < /dev/null)
            rc=$?
            if [[ $rc -eq 0 ]]; then
                all=ok
                ws_queried=$((ws_queried + 1))
            elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
                all="timeout after ${timeout_s}s"
            else
                all=$(first_error "$tmp/err")
            fi
        fi
        [[ $all != ok ]] && ws_failed+=("$label: $all")
        echo "== $label: $ws_loaded/$ws_total, query //...: $all"
        [[ ${#report[@]} -gt 0 ]] && printf '%s\n' "${report[@]}"
        total=$((total + ws_total))
        loaded=$((loaded + ws_loaded))
        co_total=$((co_total + ws_total))
        co_loaded=$((co_loaded + ws_loaded))
    done
    per_repo+=("$(printf '%9s  %s' "$co_loaded/$co_total" "$name")")
done

echo
echo "== error classes (first error per failing package), by count"
awk -F'\t' '{ n[$1]++; if (!($1 in ex)) ex[$1] = $2 }
    END { for (c in n) printf "%d\t%s\t%s\n", n[c], c, ex[c] }' "$fails" \
    | LC_ALL=C sort -t$'\t' -k1,1nr -k2,2 \
    | awk -F'\t' '{ printf "%6d  %s\n        e.g. %s\n", $1, $2, $3 }'
echo
echo "== failed loads by what is missing (unknown repository, or file the prelude lacks)"
cut -f2 "$fails" | grep -oE "cannot load '[^']*': (repository '[^']*' is not known|no such file in ocib's prelude)" \
    | sed -E "s/^cannot load '[^']*': repository '([^']*)'.*/unknown repository \\1/
              s/^cannot load '([^']*)': no such file.*/prelude lacks \\1/" \
    | LC_ALL=C sort | uniq -c | LC_ALL=C sort -k1,1nr -k2 | head -40
echo
echo "== workspaces where query //... fails"
[[ ${#ws_failed[@]} -gt 0 ]] && printf '  %s\n' "${ws_failed[@]}"
echo
echo "== per repository (all its workspaces)"
[[ ${#per_repo[@]} -gt 0 ]] && printf '%s\n' "${per_repo[@]}"
echo
pct=$(awk -v l="$loaded" -v t="$total" 'BEGIN { printf "%.1f", t ? 100 * l / t : 0 }')
echo "corpus: $loaded/$total packages loaded ($pct %)"
echo "corpus: query //... succeeds in $ws_queried of $ws_count workspaces"
