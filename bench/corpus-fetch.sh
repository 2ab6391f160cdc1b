#!/usr/bin/env bash
# Re-create the checkouts bench/corpus.sh measures, from bench/corpus.txt: DIR/<owner>+<name>/ at
# the listed commit. Each repository comes from MIRROR/<owner>+<name>/repo when that git dir
# exists (the project sandbox's search-tool `fetch` puts snapshots there), else from GitHub.
# Existing checkouts are only moved to the listed commit. One repository failing does not stop
# the others; the exit status says whether all arrived.
#
# Usage: bench/corpus-fetch.sh DIR [MIRROR]     (MIRROR default: /work/.mirror)
# Keep DIR outside any git repository of ours: none of these files may be committed.
set -uo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 DIR [MIRROR]" >&2
    exit 2
fi
dir=$1
mirror=${2:-/work/.mirror}
list=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/corpus.txt
mkdir -p "$dir" || exit 1

status=0
while read -r repo commit _; do
    case $repo in '' | '#'*) continue ;; esac
    dest=$dir/${repo/\//+}
    if [[ ! -d $dest/.git ]]; then
        src=https://github.com/$repo
        [[ -d $mirror/${repo/\//+}/repo ]] && src=$mirror/${repo/\//+}/repo
        if ! git clone -q --no-checkout "$src" "$dest"; then
            echo "FAIL $repo: git clone $src" >&2
            status=1
            continue
        fi
    fi
    # Snapshots lack files of 4 MiB and more: checkout then complains about their missing
    # objects but writes every other file and moves HEAD, which is what counts here.
    err=$(git -C "$dest" checkout -q --force "$commit" 2>&1)
    want=$(git -C "$dest" rev-parse -q --verify "$commit^{commit}")
    if [[ -n $want && $(git -C "$dest" rev-parse -q --verify HEAD) == "$want" ]]; then
        missing=$(git -C "$dest" ls-files --deleted | wc -l)
        note=""
        ((missing > 0)) && note=" ($missing large files absent from the snapshot)"
        echo "ok   $repo $commit$note"
    else
        echo "FAIL $repo: cannot check out $commit: ${err%%$'\n'*}" >&2
        status=1
    fi
done < "$list"
exit $status
