"""ocib's @rules_oci//oci:dependencies.bzl: ocib needs no dependency repositories."""

def rules_oci_dependencies():
    pass
