"""ocib's @rules_distroless//apt:extensions.bzl. MODULE.bazel's `apt.install` tags are handled natively."""

apt = module_extension(implementation = lambda ctx: None)
