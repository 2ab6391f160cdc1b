# Stands for the real rules_oci source, which needs aspect_bazel_lib's internals as values:
# ocib serves its embedded face for this public load path instead of evaluating this file.
load("//oci/private:image.bzl", _oci_image = "oci_image")

oci_image = _oci_image
