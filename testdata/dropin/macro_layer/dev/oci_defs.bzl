"""Acme's image macro: an oci_image plus, unless push = False, an oci_push of it."""

load("@rules_oci//oci:defs.bzl", _oci_image = "oci_image", _oci_push = "oci_push")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

DEFAULT_TAGS = ["latest"]

def oci_image(name, binary, repository, remote_tags = DEFAULT_TAGS, push = True, **kwargs):
    pkg_tar(
        name = name + "_layer",
        srcs = [binary],
    )
    _oci_image(
        name = name,
        architecture = "amd64",
        os = "linux",
        entrypoint = ["/" + binary.split(":")[-1]],
        tars = [":" + name + "_layer"],
        **kwargs
    )
    if push:
        _oci_push(
            name = name + "_push",
            image = ":" + name,
            repository = repository,
            remote_tags = remote_tags,
        )
