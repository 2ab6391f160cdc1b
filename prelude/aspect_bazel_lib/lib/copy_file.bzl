"""ocib's @aspect_bazel_lib//lib:copy_file.bzl."""

def copy_file(name, src, out, is_executable = False, allow_symlink = False, **kwargs):
    rule = ocib._copy_xfile if is_executable else ocib._copy_file
    rule(name = name, src = src, out = out, is_executable = is_executable, allow_symlink = allow_symlink, **kwargs)
