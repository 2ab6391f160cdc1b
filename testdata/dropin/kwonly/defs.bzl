# Keyword-only parameters (PEP 3102), which Bazel's Starlark accepts (issue 11, class 6).
def group(name, *, srcs, visibility = None):
    native.filegroup(name = name, srcs = srcs, visibility = visibility)

def _join(*args, sep):
    return sep.join(args)

PREFIX = _join("a", "b", sep = "_")
