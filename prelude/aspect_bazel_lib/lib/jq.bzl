"""ocib's @aspect_bazel_lib//lib:jq.bzl."""

def jq(name, srcs, filter = None, filter_file = None, args = [], out = None, data = [], expand_args = False, **kwargs):
    if not out and (name + ".json") not in srcs:
        out = name + ".json"
    ocib._jq_rule(name = name, srcs = srcs, filter = filter, filter_file = filter_file, args = args, out = out, data = data, expand_args = expand_args, **kwargs)
