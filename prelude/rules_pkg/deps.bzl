"""ocib's @rules_pkg//:deps.bzl."""

load("//pkg:deps.bzl", _deps = "rules_pkg_dependencies", _toolchains = "rules_pkg_register_toolchains")

rules_pkg_dependencies = _deps
rules_pkg_register_toolchains = _toolchains
