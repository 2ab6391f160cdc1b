# ocib's implementation of bazel-skylib's lib/collections.bzl (list helpers).

def _after_each(separator, iterable):
    result = []
    for x in iterable:
        result.extend([x, separator])
    return result

def _before_each(separator, iterable):
    result = []
    for x in iterable:
        result.extend([separator, x])
    return result

def _uniq(iterable):
    return list({x: None for x in iterable}.keys())

collections = struct(
    after_each = _after_each,
    before_each = _before_each,
    uniq = _uniq,
)
