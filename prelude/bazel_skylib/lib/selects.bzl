# ocib's implementation of bazel-skylib's lib/selects.bzl (select() helpers and config_setting_group).

# Resolved against this file, so it is @bazel_skylib//lib:always_true whatever the user calls the repo.
_TRUE_TARGET = Label("//lib:always_true")

def _with_or_dict(input_dict):
    output = {}
    for key, value in input_dict.items():
        keys = key if type(key) == "tuple" else (key,)
        for k in keys:
            if k in output:
                fail("key %s appears multiple times" % k)
            output[k] = value
    return output

def _with_or(input_dict, no_match_error = ""):
    return select(_with_or_dict(input_dict), no_match_error = no_match_error)

def _check_duplicates(settings):
    seen = {}
    for s in settings:
        if s in seen:
            fail(s + " appears more than once. Duplicates not allowed.")
        seen[s] = True

def _label_key(setting):
    # skylib keys the select by native.package_relative_label(setting). ocib's Label values are
    # not hashable (and str() gives their repr), so spell the resolved label out as a string.
    l = native.package_relative_label(setting)
    repo = "@" + l.repo_name if l.repo_name else ""
    return repo + "//" + l.package + ":" + l.name

def _chain(name, settings, visibility, match_all):
    # n settings -> aliases name, name_2, ..., name_{n-1}; the last one falls through to settings[-1].
    nexts = [name + "_" + str(i) for i in range(2, len(settings))] + [settings[-1]]
    for i in range(1, len(settings)):
        setting = settings[i - 1]
        key = _label_key(setting)
        if match_all:
            branches = {key: nexts[i - 1], "//conditions:default": setting}
        else:
            branches = {key: setting, "//conditions:default": nexts[i - 1]}
        native.alias(
            name = name if i == 1 else name + "_" + str(i),
            actual = select(branches),
            visibility = visibility if i == 1 else ["//visibility:private"],
        )

def _config_setting_group(name, match_any = [], match_all = [], visibility = None):
    if bool(match_any) == bool(match_all):
        fail('Either "match_any" or "match_all" must be set, but not both.')
    _check_duplicates(match_any)
    _check_duplicates(match_all)
    settings = match_any or match_all

    # skylib's _remove_default_condition never removes anything, so only a lone
    # "//conditions:default" entry is treated as always true.
    if len(settings) == 1 and settings[0] == "//conditions:default":
        native.alias(name = name, actual = _TRUE_TARGET, visibility = visibility)
    elif len(settings) == 1:
        native.alias(name = name, actual = settings[0], visibility = visibility)
    else:
        _chain(name, settings, visibility, match_all = bool(match_all))

selects = struct(
    with_or = _with_or,
    with_or_dict = _with_or_dict,
    config_setting_group = _config_setting_group,
)
