"""A service: its Go binary and a layer holding it."""

load("@io_bazel_rules_go//go:def.bzl", "go_binary")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

def service(name, embed, x_defs = {}):
    go_binary(
        name = name,
        embed = embed,
        visibility = ["//visibility:public"],
        x_defs = x_defs,
    )
    pkg_tar(
        name = name + "_layer",
        srcs = [":" + name],
        package_dir = "/app",
    )
