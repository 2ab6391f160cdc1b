"""oci_image as a monorepo wraps it: the image is built through a platform transition."""

load("@rules_oci//oci:defs.bzl", _oci_image = "oci_image")

def _cross_transition_impl(settings, attr):
    return [{
        "//command_line_option:platforms": str(attr.platform),
        "//command_line_option:compilation_mode": "opt",
    }]

_cross_transition = transition(
    implementation = _cross_transition_impl,
    inputs = [],
    outputs = ["//command_line_option:platforms", "//command_line_option:compilation_mode"],
)

def _oci_image_cross_impl(ctx):
    runfiles = ctx.runfiles(files = ctx.files.image).merge(ctx.attr.image[0][DefaultInfo].default_runfiles)
    return [DefaultInfo(files = depset(ctx.files.image), runfiles = runfiles)]

oci_image_cross = rule(
    implementation = _oci_image_cross_impl,
    attrs = {
        "image": attr.label(cfg = _cross_transition),
        "platform": attr.label(),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)

def oci_image(name, platform = None, **kwargs):
    _oci_image(name = name + "_underlying", tars = kwargs.pop("tars", []) + ["//internal/version:stamps"], **kwargs)
    oci_image_cross(
        name = name,
        image = ":" + name + "_underlying",
        platform = platform or select({
            "@platforms//os:macos": Label("@zig_sdk//platform:linux_amd64"),  # unknown repo: must not matter on linux
            "//conditions:default": Label("@platforms//host"),
        }),
    )
