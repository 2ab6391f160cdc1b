#!/bin/bash
# concat.sh OUT PREFIX FILES...: writes PREFIX then each file, in order.
set -euo pipefail
out="$1"; prefix="$2"; shift 2
{ echo "$prefix"; for f in "$@"; do cat "$f"; done; } > "$out"
