#!/bin/sh
[ "$1" = hello ] || { echo "bad args: $*"; exit 1; }
echo "ran with $1"
