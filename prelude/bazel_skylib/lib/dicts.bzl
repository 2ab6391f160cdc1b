# ocib's implementation of bazel-skylib's lib/dicts.bzl (dictionary helpers).

def _add(*dictionaries, **kwargs):
    result = {}
    for d in dictionaries:
        result.update(d)
    result.update(kwargs)
    return result

def _omit(dictionary, keys):
    drop = {k: None for k in keys}
    return {k: v for k, v in dictionary.items() if k not in drop}

def _pick(dictionary, keys):
    return {k: dictionary[k] for k in keys if k in dictionary}

dicts = struct(
    add = _add,
    omit = _omit,
    pick = _pick,
)
