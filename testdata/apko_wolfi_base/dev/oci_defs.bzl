"""The `wolfi_base` macro, shaped like Sourcegraph's: merge the template with the service's
YAML, build the base with apko from the service's lock, wrap it for rules_oci."""

load("@aspect_bazel_lib//lib:yq.bzl", "yq")
load("@rules_apko//apko:defs.bzl", "apko_image")
load("@rules_oci//oci:defs.bzl", "oci_image", "oci_load")

def wolfi_base(name = "wolfi", target = None):
    if target == None:
        target = native.package_name().split("/")[-1]

    yq(
        name = "wolfi_config",
        srcs = [
            "//wolfi-images:sourcegraph-template.yaml",
            "//wolfi-images:{}.yaml".format(target),
        ],
        expression = ". as $item ireduce ({}; . *+ $item)",
    )

    apko_image(
        name = "wolfi_base_apko",
        architecture = "amd64",
        config = ":wolfi_config",
        contents = "@{}_apko_lock//:contents".format(target),
        tag = "{}-base:latest".format(target),
    )

    oci_image(
        name = "wolfi_base_image",
        base = ":wolfi_base_apko",
    )

    oci_load(
        name = "wolfi_base_tarball",
        image = ":wolfi_base_image",
        repo_tags = ["wolfi-{}-base:candidate".format(target)],
    )
