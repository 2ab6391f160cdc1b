"""ocib's @rules_oci//oci:repositories.bzl: ocib needs no crane, regctl or zot toolchains."""

LATEST_CRANE_VERSION = "v0.18.0"
LATEST_ZOT_VERSION = "v1.4.3"

def oci_register_toolchains(name = "oci", crane_version = None, zot_version = None, register = True):
    pass

def register_crane_toolchains(name, register = True):
    pass

def register_regctl_toolchains(name, register = True):
    pass
