"""A Starlark-defined rule and provider, as users' own rule sets have."""

MyInfo = provider(fields = ["value"])

def _impl(ctx):
    return [MyInfo(value = ctx.attr.flavour)]

my_rule = rule(
    implementation = _impl,
    attrs = {
        "flavour": attr.string(default = "vanilla", values = ["vanilla", "chocolate"]),
        "srcs": attr.label_list(allow_files = True),
        "count": attr.int(),
        "required": attr.string(mandatory = True),
        "_private": attr.label(default = "//defs:rules.bzl"),
    },
)

SHARED_LIST = ["shared.txt"]
