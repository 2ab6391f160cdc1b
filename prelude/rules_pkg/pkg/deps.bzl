"""ocib's @rules_pkg//pkg:deps.bzl: nothing to fetch."""

def rules_pkg_dependencies():
    pass

def rules_pkg_register_toolchains():
    pass
