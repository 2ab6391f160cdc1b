"""ocib's @bazel_tools//tools/build_defs/repo:git.bzl."""

git_repository = ocib.unknown_rule("git_repository")
new_git_repository = ocib.unknown_rule("new_git_repository")
