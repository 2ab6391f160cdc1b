# Bazel builtins and bazel-lib helpers that real rule sets use at load time (issue 11).
load("@aspect_bazel_lib//lib:utils.bzl", "propagate_common_rule_attributes")

_LATE_BOUND = configuration_field(fragment = "coverage", name = "output_generator")

def _flag_impl(ctx):
    pass

string_setting = rule(implementation = _flag_impl, build_setting = config.string(flag = True))

def passwd(name, **kwargs):
    # bazel-lib's helper keeps the attributes every rule has (here: visibility, tags).
    native.filegroup(name = name, srcs = ["passwd.txt"], **propagate_common_rule_attributes(kwargs))
