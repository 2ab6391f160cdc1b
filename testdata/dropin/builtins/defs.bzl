# Bazel builtins and bazel-lib helpers that real rule sets use at load time (issue 11).
load("@aspect_bazel_lib//lib:resource_sets.bzl", "resource_set_attr")
load("@aspect_bazel_lib//lib:utils.bzl", "propagate_common_rule_attributes")

_LATE_BOUND = configuration_field(fragment = "coverage", name = "output_generator")

def _flag_impl(ctx):
    pass

string_setting = rule(implementation = _flag_impl, build_setting = config.string(flag = True))

def passwd(name, **kwargs):
    # bazel-lib's helper keeps the attributes every rule has (here: visibility, tags).
    native.filegroup(name = name, srcs = ["passwd.txt"], **propagate_common_rule_attributes(kwargs))

# A rule whose attributes spread bazel-lib's resource_set_attr and use a late-bound default,
# as rules_oci's and rules_py's own rules do.
sized_rule = rule(
    implementation = _flag_impl,
    attrs = dict({
        "_lcov_merger": attr.label(default = configuration_field(fragment = "coverage", name = "output_generator")),
        "src": attr.label(default = _LATE_BOUND),
    }, **resource_set_attr),
)
