"""ocib's @bazel_gazelle//:def.bzl (also @gazelle).

`gazelle` creates the targets gazelle's macro does: `<name>-runner` (kind `_gazelle_runner`,
built by `//...`) and `<name>`, a `manual` `sh_binary` running it. ocib does not run gazelle
(it needs gazelle's Go sources built with rules_go's internals), so the runner is a script
that says so; a `gazelle_binary` is likewise a script. `go_repository` is ocib's native Go
module repository (see deps.bzl).
"""

load(":deps.bzl", _go_repository = "go_repository")

go_repository = _go_repository

_MESSAGE = "ocib does not run gazelle: run it with bazel run, or a gazelle binary"

def _script_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".bash")
    ctx.actions.write(out, "#!/usr/bin/env bash\necho '%s' >&2\nexit 1\n" % _MESSAGE, is_executable = True)
    return [DefaultInfo(files = depset([out]), executable = out)]

_gazelle_runner = rule(
    implementation = _script_impl,
    attrs = {
        "gazelle": attr.label(),
        "command": attr.string(default = "update"),
        "mode": attr.string(default = "fix"),
        "external": attr.string(default = "external"),
        "build_tags": attr.string_list(),
        "prefix": attr.string(),
        "extra_args": attr.string_list(),
        "data": attr.label_list(allow_files = True),
        "env": attr.string_dict(),
    },
    executable = True,
)

# `languages` are gazelle's language packages, which ocib does not have: names only.
gazelle_binary = rule(
    implementation = _script_impl,
    attrs = {"languages": attr.string_list()},
    executable = True,
)

def gazelle(name, **kwargs):
    if "args" in kwargs:
        if "extra_args" in kwargs:
            fail("{}: both args and extra_args were provided".format(name))
        kwargs["extra_args"] = kwargs.pop("args")
    visibility = kwargs.pop("visibility", None)
    runner_name = name + "-runner"
    _gazelle_runner(name = runner_name, **kwargs)
    tags = {t: "" for t in kwargs.pop("tags", [])}
    tags["manual"] = ""
    native.sh_binary(
        name = name,
        tags = tags.keys(),
        srcs = [runner_name],
        visibility = visibility,
        data = kwargs["data"] if "data" in kwargs else [],
    )
