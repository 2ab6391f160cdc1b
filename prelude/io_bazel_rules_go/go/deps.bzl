"""ocib's @io_bazel_rules_go//go:deps.bzl: ocib uses the host Go toolchain (OCIB_GO or go on PATH)."""

def go_rules_dependencies(force = False):
    pass

def go_register_toolchains(version = None, nogo = None, go_version = None, experiments = None):
    pass

def go_download_sdk(name, register_toolchains = True, **kwargs):
    pass

def go_host_sdk(name, register_toolchains = True, **kwargs):
    pass

def go_local_sdk(name, register_toolchains = True, **kwargs):
    pass

def go_wrap_sdk(name, register_toolchains = True, **kwargs):
    pass
