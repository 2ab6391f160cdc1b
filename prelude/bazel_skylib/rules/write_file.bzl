"""ocib's @bazel_skylib//rules:write_file.bzl."""

def write_file(name, out, content = [], is_executable = False, newline = "auto", **kwargs):
    rule = ocib._write_xfile if is_executable else ocib._write_file
    rule(name = name, out = out, content = content, is_executable = is_executable, newline = newline or "auto", **kwargs)
