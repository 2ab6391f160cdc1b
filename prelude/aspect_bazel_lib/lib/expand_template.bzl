"""ocib's @aspect_bazel_lib//lib:expand_template.bzl (aspect_bazel_lib 2.11+ macro)."""

load("@bazel_skylib//rules:write_file.bzl", "write_file")

def expand_template(name, template, **kwargs):
    # A template given as lines is written to a file first.
    if type(template) == "list":
        write_file(name = name + "_tmpl", out = name + "_tmpl.txt", content = template)
        template = name + "_tmpl"
    ocib.expand_template(name = name, template = template, **kwargs)

expand_template_rule = ocib.expand_template
