# ocib's implementation of bazel-skylib's lib/partial.bzl (mirrors bazel-skylib 1.7.1): a
# function bound to some of its arguments.

def _make(func, *args, **kwargs):
    return struct(function = func, args = args, kwargs = kwargs)

def _call(partial, *args, **kwargs):
    all_kwargs = dict(partial.kwargs)
    all_kwargs.update(kwargs)
    return partial.function(*(partial.args + args), **all_kwargs)

def _is_instance(v):
    return type(v) == "struct" and hasattr(v, "function") and hasattr(v, "args") and hasattr(v, "kwargs")

partial = struct(
    make = _make,
    call = _call,
    is_instance = _is_instance,
)
