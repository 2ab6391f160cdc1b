# ocib's implementation of bazel-skylib's lib/types.bzl (type predicates).

def _is_list(v):
    return type(v) == "list"

def _is_string(v):
    return type(v) == "string"

def _is_bool(v):
    return type(v) == "bool"

def _is_none(v):
    return type(v) == "NoneType"

def _is_int(v):
    return type(v) == "int"

def _is_tuple(v):
    return type(v) == "tuple"

def _is_dict(v):
    return type(v) == "dict"

def _is_function(v):
    return type(v) == "function"

def _is_depset(v):
    return type(v) == "depset"

def _is_set(v):
    # A skylib set (sets.make()), not a native set.
    return type(v) == type(struct()) and hasattr(v, "_values") and _is_dict(v._values)

types = struct(
    is_list = _is_list,
    is_string = _is_string,
    is_bool = _is_bool,
    is_none = _is_none,
    is_int = _is_int,
    is_tuple = _is_tuple,
    is_dict = _is_dict,
    is_function = _is_function,
    is_depset = _is_depset,
    is_set = _is_set,
)
