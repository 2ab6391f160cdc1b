"""ocib's @aspect_bazel_lib//lib:utils.bzl (the load-time helpers of bazel-lib 2.x's utils.bzl).

Symbols of the upstream file that are missing here are stubbed by the loader with a warning.
"""

# Attributes every rule has, that a macro passes on to each target it declares.
_COMMON_RULE_ATTRIBUTES = [
    "compatible_with",
    "deprecation",
    "exec_compatible_with",
    "exec_properties",
    "features",
    "restricted_to",
    "tags",
    "target_compatible_with",
    "testonly",
    "toolchains",
    "visibility",
]

_COMMON_TEST_RULE_ATTRIBUTES = _COMMON_RULE_ATTRIBUTES + ["args", "env", "env_inherit", "flaky", "local", "shard_count", "size", "timeout"]

_COMMON_BINARY_RULE_ATTRIBUTES = _COMMON_RULE_ATTRIBUTES + ["args", "env", "output_licenses"]

# Tags Bazel gives a meaning to (execution requirements), which macros copy onto actions.
_WELL_KNOWN_TAGS = [
    "no-cache",
    "no-remote-cache",
    "no-remote-exec",
    "no-remote",
    "local",
    "no-sandbox",
    "requires-network",
    "block-network",
    "requires-fakeroot",
    "no-remote-cache-upload",
]

def _pick(kwargs, names):
    return {k: v for k, v in kwargs.items() if k in names}

def propagate_common_rule_attributes(attrs):
    return _pick(attrs, _COMMON_RULE_ATTRIBUTES)

def propagate_common_test_rule_attributes(attrs):
    return _pick(attrs, _COMMON_TEST_RULE_ATTRIBUTES)

def propagate_common_binary_rule_attributes(attrs):
    return _pick(attrs, _COMMON_BINARY_RULE_ATTRIBUTES)

def propagate_well_known_tags(tags = []):
    return [t for t in tags if t in _WELL_KNOWN_TAGS or t.startswith("cpu:")]

def is_external_label(param):
    label = param if type(param) == "Label" else Label(param)
    return label.workspace_root.startswith("external")

def is_bzlmod_enabled():
    return str(Label("@//:BUILD.bazel")).startswith("@@")

def is_bazel_6_or_greater():
    return True

def is_bazel_7_or_greater():
    return True

def default_timeout(size, timeout):
    if timeout != None:
        return timeout
    return {"small": "short", "medium": "moderate", "large": "long", "enormous": "eternal"}.get(size or "medium", "moderate")

def to_label(param):
    return param if type(param) == "Label" else Label(param)

def consistent_label_str(label):
    return "@@{}//{}:{}".format(label.workspace_name, label.package, label.name)

utils = struct(
    consistent_label_str = consistent_label_str,
    default_timeout = default_timeout,
    is_bazel_6_or_greater = is_bazel_6_or_greater,
    is_bazel_7_or_greater = is_bazel_7_or_greater,
    is_bzlmod_enabled = is_bzlmod_enabled,
    is_external_label = is_external_label,
    propagate_common_binary_rule_attributes = propagate_common_binary_rule_attributes,
    propagate_common_rule_attributes = propagate_common_rule_attributes,
    propagate_common_test_rule_attributes = propagate_common_test_rule_attributes,
    propagate_well_known_tags = propagate_well_known_tags,
    to_label = to_label,
)
