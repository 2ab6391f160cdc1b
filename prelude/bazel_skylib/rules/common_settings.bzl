"""ocib prelude: @bazel_skylib//rules:common_settings.bzl, skylib's build setting rules.

Each rule is a Starlark `rule()` with a `build_setting`, as in skylib: its value is
`ctx.build_setting_value` (from `--//pkg:flag=value`, a transition, or
`build_setting_default`), exposed as `BuildSettingInfo(value = ...)`.
"""

BuildSettingInfo = provider(
    doc = "A singleton provider that contains the raw value of a build setting",
    fields = {"value": "The value of the build setting in the current configuration."},
)

def _impl(ctx):
    return [BuildSettingInfo(value = ctx.build_setting_value)]

int_flag = rule(implementation = _impl, build_setting = config.int(flag = True))
int_setting = rule(implementation = _impl, build_setting = config.int())
bool_flag = rule(implementation = _impl, build_setting = config.bool(flag = True))
bool_setting = rule(implementation = _impl, build_setting = config.bool())
string_list_flag = rule(implementation = _impl, build_setting = config.string_list(flag = True))
string_list_setting = rule(implementation = _impl, build_setting = config.string_list())

def _string_impl(ctx):
    allowed = ctx.attr.values
    value = ctx.build_setting_value
    if allowed and value not in allowed:
        fail("Error setting %s: invalid value '%s'. Allowed values are %s" % (ctx.label, value, allowed))
    return [BuildSettingInfo(value = value)]

string_flag = rule(
    implementation = _string_impl,
    build_setting = config.string(flag = True),
    attrs = {"values": attr.string_list()},
)

string_setting = rule(
    implementation = _string_impl,
    build_setting = config.string(),
    attrs = {"values": attr.string_list()},
)
