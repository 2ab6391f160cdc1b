# bazel-skylib's pure-Starlark libraries ocib embeds (issue 11, class 3).
load("@bazel_skylib//lib:partial.bzl", "partial")
load("@bazel_skylib//lib:structs.bzl", "structs")
load("@bazel_skylib//lib:versions.bzl", "versions")

def _gen(name, text):
    native.genrule(name = name, outs = [name + ".txt"], cmd = "echo " + text + " > $@")

def generate():
    p = partial.make(_gen, text = "v" + ".".join([str(n) for n in versions.parse("7.4.1rc2 abc")]))
    partial.call(p, name = "parsed")
    fields = structs.to_dict(struct(b = 2, a = 1))
    _gen(name = "fields", text = ",".join(sorted(fields.keys())))
    _gen(name = "compare", text = str(versions.is_at_least("7.0.0", "7.4.1")) + str(versions.is_at_most("6.5", "7.0")))
