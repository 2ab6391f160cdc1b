"""The shared macro every service uses to build, test and push its image."""

load("@container_structure_test//:defs.bzl", "container_structure_test")
load("@rules_oci//oci:defs.bzl", "oci_image", "oci_load", "oci_push")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

def service_image(name, binary, base = "@base_local//:base_image", env = {}, repository = None, tags = []):
    pkg_tar(
        name = "tar_" + name,
        srcs = [binary],
    )
    oci_image(
        name = "image",
        base = base,
        entrypoint = ["/sbin/tini", "--", "/" + name],
        env = dict({"LOG_LEVEL": "info"}, **env),
        tars = [":tar_" + name],
        user = "sourcegraph",
        tags = tags,
    )
    oci_load(
        name = "image_tarball",
        image = ":image",
        repo_tags = [name + ":candidate"],
    )
    container_structure_test(
        name = "image_test",
        timeout = "short",
        configs = ["image_test.yaml"],
        driver = "docker",
        image = ":image",
        tags = ["requires-network"],
    )
    oci_push(
        name = "candidate_push",
        image = ":image",
        remote_tags = ["candidate"],
        repository = repository or ("registry.example.com/sourcegraph/" + name),
    )
