# ocib's implementation of bazel-skylib's lib/structs.bzl (mirrors bazel-skylib 1.7.1).

def _to_dict(s):
    """The fields of struct `s` as a dict (without the legacy to_json/to_proto methods)."""
    return {name: getattr(s, name) for name in dir(s) if name not in ("to_json", "to_proto")}

structs = struct(
    to_dict = _to_dict,
)
