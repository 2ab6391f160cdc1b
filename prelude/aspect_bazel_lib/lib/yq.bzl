"""ocib's @aspect_bazel_lib//lib:yq.bzl: aspect_bazel_lib's `yq` macro over ocib's in-process yq."""

def _is_split_operation(args):
    for arg in args:
        if arg.startswith("-s") or arg.startswith("--split-exp"):
            return True
    return False

def yq(name, srcs, expression = ".", args = [], outs = None, **kwargs):
    """Runs a yq expression over srcs (aspect_bazel_lib's macro: default output name and format flags)."""
    args = args[:]
    if not _is_split_operation(args):
        if not outs:
            outs = [name + ".yaml"]
            if "-o=json" in args or "--outputformat=json" in args:
                outs = [name + ".json"]
        elif outs and len(outs) == 1:
            if outs[0].endswith(".json") and "-o=json" not in args and "--outputformat=json" not in args:
                args.append("-o=json")
    if len(srcs) > 0:
        if srcs[0].endswith(".json") and "-P" not in args:
            args.append("-P")
    ocib._yq_rule(name = name, srcs = srcs, expression = expression, args = args, outs = outs, **kwargs)
