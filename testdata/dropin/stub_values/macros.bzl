# Symbols of unknown rule sets used as values, not called as rules (issue 11, class 9).
load("@rules_nodejs//nodejs:repositories.bzl", "NODEJS_VERSIONS")
load("@tar_rules//lib:tar.bzl", "tar_lib")

TAR_TOOLCHAIN = tar_lib.toolchain_type
FIRST = NODEJS_VERSIONS["16"]

def checked_group(name, version, srcs, extra):
    if version in NODEJS_VERSIONS:
        fail("a stub contains nothing")
    for v in NODEJS_VERSIONS:
        fail("a stub iterates as empty")
    native.filegroup(name = name, srcs = srcs + extra)
