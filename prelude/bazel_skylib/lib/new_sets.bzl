# ocib's implementation of bazel-skylib's lib/new_sets.bzl (sets as struct(_values = {elem: None})).

load(":dicts.bzl", "dicts")

def _make(elements = None):
    return struct(_values = {e: None for e in (elements or [])})

def _copy(s):
    return struct(_values = dict(s._values))

def _to_list(s):
    return list(s._values.keys())

def _insert(s, e):
    s._values[e] = None
    return s

def _remove(s, e):
    s._values.pop(e)
    return s

def _contains(a, e):
    return e in a._values

def _shorter_longer(a, b):
    if len(a._values) < len(b._values):
        return a, b
    return b, a

def _is_equal(a, b):
    return a._values == b._values

def _is_subset(a, b):
    for e in a._values:
        if e not in b._values:
            return False
    return True

def _disjoint(a, b):
    shorter, longer = _shorter_longer(a, b)
    for e in shorter._values:
        if e in longer._values:
            return False
    return True

def _intersection(a, b):
    shorter, longer = _shorter_longer(a, b)
    return struct(_values = {e: None for e in shorter._values if e in longer._values})

def _union(*args):
    return struct(_values = dicts.add(*[s._values for s in args]))

def _difference(a, b):
    return struct(_values = {e: None for e in a._values if e not in b._values})

def _length(s):
    return len(s._values)

def _repr(s):
    return repr(list(s._values.keys()))

sets = struct(
    make = _make,
    copy = _copy,
    to_list = _to_list,
    insert = _insert,
    contains = _contains,
    is_equal = _is_equal,
    is_subset = _is_subset,
    disjoint = _disjoint,
    intersection = _intersection,
    union = _union,
    difference = _difference,
    length = _length,
    remove = _remove,
    repr = _repr,
    str = _repr,
)
