"""ocib's @aspect_bazel_lib//lib:directory_path.bzl."""

directory_path = ocib.directory_path
