"""ocib's @container_structure_test//:repositories.bzl: ocib has a built-in runner, no toolchain."""

def container_structure_test_register_toolchain(name, register = True):
    pass
