"""ocib's @rules_apko//apko:repositories.bzl: ocib needs no apko toolchain."""

def rules_apko_dependencies():
    pass

def apko_register_toolchains(name = "apko", apko_version = None, register = True, **kwargs):
    pass
