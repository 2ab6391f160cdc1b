"""Macros that exercise what BUILD files rely on."""

load(":rules.bzl", "my_rule")

def append_and_declare(name, srcs):
    # Macros receive the caller's values unfrozen: appending to a passed list works.
    srcs.append("appended.txt")
    native.filegroup(name = name, srcs = srcs)

def declare_with_info(name):
    existing = native.existing_rule(name + "_base")
    native.genrule(
        name = name,
        outs = [name + ".txt"],
        cmd = "echo {} {} {} > $@".format(native.package_name(), native.repository_name(), existing["kind"] if existing else "none"),
    )
    my_rule(name = name + "_rule", required = str(Label("//defs:rules.bzl")), flavour = "chocolate")

def rule_with_select(name):
    native.filegroup(
        name = name,
        srcs = ["a.txt"] + select({
            "//app:is_linux": ["linux.txt"],
            "//conditions:default": ["other.txt"],
        }),
    )
