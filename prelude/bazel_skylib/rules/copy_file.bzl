"""ocib's @bazel_skylib//rules:copy_file.bzl."""

load("@aspect_bazel_lib//lib:copy_file.bzl", _copy_file = "copy_file")

copy_file = _copy_file
