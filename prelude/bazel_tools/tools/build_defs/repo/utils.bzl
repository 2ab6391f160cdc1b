"""ocib's @bazel_tools//tools/build_defs/repo:utils.bzl."""

def maybe(repo_rule, name, **kwargs):
    if not native.existing_rule(name):
        repo_rule(name = name, **kwargs)
