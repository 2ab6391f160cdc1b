load("@aspect_bazel_lib//lib/private:tar_toolchain.bzl", "tar_lib")

def oci_image(name, **kwargs):
    fail("the real rules_oci source was evaluated")

# A value the real source takes from aspect_bazel_lib's internals.
_TOOLCHAIN = tar_lib.toolchain_type.upper()
