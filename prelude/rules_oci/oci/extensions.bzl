"""ocib's @rules_oci//oci:extensions.bzl. MODULE.bazel's `oci.pull` tags are handled natively."""

oci = module_extension(implementation = lambda ctx: None)
