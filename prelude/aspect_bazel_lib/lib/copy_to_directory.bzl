"""ocib's @aspect_bazel_lib//lib:copy_to_directory.bzl."""

copy_to_directory = ocib.copy_to_directory
