# ocib's implementation of bazel-skylib's lib/sets.bzl (re-exports new_sets.bzl).

load(":new_sets.bzl", _sets = "sets")

sets = _sets
