#!/bin/bash
# join.sh OUT ARGS...: writes each argument on its own line; an argument `@FILE` is replaced
# by that file's lines, and `file:PATH` by the file's content.
set -euo pipefail
out="$1"; shift
{
  for a in "$@"; do
    case "$a" in
      @*) cat "${a#@}" ;;
      file:*) cat "${a#file:}" ;;
      *) printf '%s\n' "$a" ;;
    esac
  done
} > "$out"
