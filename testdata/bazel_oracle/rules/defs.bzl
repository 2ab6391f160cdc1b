"""Rules built by both Bazel 4.2.3 and ocib; every output is compared byte for byte.

Only ctx.actions.write, run, run_shell and expand_template with bash and coreutils; outputs
never embed the exec path of a derived file (Bazel's is bazel-out/k8-fastbuild/bin/...).
"""

NamesInfo = provider(fields = ["names", "files"])
FlavorInfo = provider(fields = ["value"])

def _flavor_impl(ctx):
    return [FlavorInfo(value = ctx.build_setting_value)]

flavor_setting = rule(implementation = _flavor_impl, build_setting = config.string(flag = True))

def _leaf_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, "leaf %s\n" % ctx.attr.word)
    return [
        DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out])),
        NamesInfo(names = depset([ctx.attr.word]), files = depset([out])),
    ]

leaf = rule(implementation = _leaf_impl, attrs = {"word": attr.string()})

def _shout(name):
    return name.upper()

def _twice(name):
    return [name, name + name]

def _middle_impl(ctx):
    names = depset([ctx.attr.word], transitive = [d[NamesInfo].names for d in ctx.attr.deps], order = ctx.attr.order)
    files = depset(transitive = [d[NamesInfo].files for d in ctx.attr.deps])
    out = ctx.actions.declare_file(ctx.label.name + ".args")
    args = ctx.actions.args()
    args.add(out)
    args.add("--word", ctx.attr.word)
    args.add_all(names, before_each = "-n")
    args.add_all(names, map_each = _shout, format_each = "up=%s")
    args.add_all(names, map_each = _twice, uniquify = True)
    args.add_all([], omit_if_empty = True, before_each = "never")
    args.add_all("empty", [], omit_if_empty = False)
    args.add_joined(names, join_with = "+", format_joined = "[%s]")
    args.add_all(files, format_each = "file:%s", terminate_with = "--")
    params = ctx.actions.args()
    params.use_param_file("@%s", use_always = True)
    params.set_param_file_format("multiline")
    params.add_all(["p1", "p 2", ctx.attr.word])
    ctx.actions.run(
        outputs = [out],
        inputs = files,
        executable = ctx.executable._join,
        arguments = [args, params],
        mnemonic = "Join",
    )
    runfiles = ctx.runfiles(files = [out])
    for d in ctx.attr.deps:
        runfiles = runfiles.merge(d[DefaultInfo].default_runfiles)
    return [
        DefaultInfo(files = depset([out]), runfiles = runfiles),
        NamesInfo(names = names, files = depset([out], transitive = [files])),
    ]

middle = rule(
    implementation = _middle_impl,
    attrs = {
        "word": attr.string(),
        "order": attr.string(default = "default"),
        "deps": attr.label_list(providers = [NamesInfo]),
        "_join": attr.label(default = "//rules:join.sh", executable = True, cfg = "exec", allow_single_file = True),
    },
)

def _top_impl(ctx):
    flavor = ctx.attr._flavor[FlavorInfo].value
    names = depset(transitive = [d[NamesInfo].names for d in ctx.attr.deps], order = "topological")
    ctx.actions.expand_template(
        template = ctx.file._template,
        output = ctx.outputs.report,
        substitutions = {
            "%NAME%": ctx.label.name,
            "%FLAVOR%": flavor,
            "%ITEMS%": "\n".join(names.to_list()),
        },
    )
    files = depset(transitive = [d[NamesInfo].files for d in ctx.attr.deps])
    ctx.actions.run_shell(
        outputs = [ctx.outputs.out],
        inputs = files,
        command = "out=\"$1\"; shift; for f in \"$@\"; do echo \"== $(basename \"$f\")\"; cat \"$f\"; done > \"$out\"",
        arguments = [ctx.outputs.out.path] + [f.path for f in files.to_list()],
    )
    runfiles = ctx.runfiles()
    for d in ctx.attr.deps:
        runfiles = runfiles.merge(d[DefaultInfo].default_runfiles)
    listing = ctx.actions.declare_file(ctx.label.name + ".runfiles.txt")
    ctx.actions.write(listing, "".join([f.short_path + "\n" for f in runfiles.files.to_list()]))
    return [DefaultInfo(files = depset([ctx.outputs.report, ctx.outputs.out, listing]))]

top = rule(
    implementation = _top_impl,
    attrs = {
        "deps": attr.label_list(providers = [NamesInfo]),
        "out": attr.output(mandatory = True),
        "_template": attr.label(default = "//rules:report.tpl", allow_single_file = True),
        "_flavor": attr.label(default = "//settings:flavor"),
    },
    outputs = {"report": "%{name}.report"},
)

def _flavor_transition_impl(settings, attr):
    return {"//settings:flavor": attr.flavor}

_flavor_transition = transition(
    implementation = _flavor_transition_impl,
    inputs = [],
    outputs = ["//settings:flavor"],
)

def _flavored_impl(ctx):
    dep = ctx.attr.dep[0]
    out = ctx.actions.declare_file(ctx.label.name + ".flavored")
    ctx.actions.run_shell(
        outputs = [out],
        inputs = dep[DefaultInfo].files,
        command = "{ echo \"flavored $1\"; shift; cat \"$@\"; } > " + out.path,
        arguments = [ctx.attr.flavor] + [f.path for f in dep[DefaultInfo].files.to_list()],
    )
    return [DefaultInfo(files = depset([out]))]

flavored = rule(
    implementation = _flavored_impl,
    attrs = {
        "dep": attr.label(cfg = _flavor_transition),
        "flavor": attr.string(),
        "_allowlist_function_transition": attr.label(default = "@bazel_tools//tools/allowlists/function_transition_allowlist"),
    },
)

def _greeter_impl(ctx):
    exe = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(exe, "#!/bin/bash\necho \"greetings from %s\"\ncat %s\n" % (ctx.label.name, ctx.file.data.short_path), is_executable = True)
    return [DefaultInfo(executable = exe, runfiles = ctx.runfiles(files = [ctx.file.data]))]

greeter = rule(implementation = _greeter_impl, attrs = {"data": attr.label(allow_single_file = True)}, executable = True)

def _check_impl(ctx):
    exe = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(exe, "#!/bin/bash\ngrep -q '%s' %s\n" % (ctx.attr.expect, ctx.file.src.short_path), is_executable = True)
    return [DefaultInfo(executable = exe, runfiles = ctx.runfiles(files = [ctx.file.src]))]

check_test = rule(implementation = _check_impl, attrs = {"src": attr.label(allow_single_file = True), "expect": attr.string()}, test = True)

def _mild_transition_impl(settings, attr):
    return {"//settings:flavor": "mild"}

_mild_transition = transition(
    implementation = _mild_transition_impl,
    inputs = [],
    outputs = ["//settings:flavor"],
)

def _self_flavored_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".self")
    ctx.actions.write(out, "self %s %s\n" % (ctx.attr._flavor[FlavorInfo].value, ctx.attr.word))
    return [DefaultInfo(files = depset([out]))]

# A rule-level (incoming-edge) transition: the target itself is analysed with flavor "mild".
self_flavored = rule(
    implementation = _self_flavored_impl,
    cfg = _mild_transition,
    attrs = {
        "word": attr.string(),
        "_flavor": attr.label(default = "//settings:flavor"),
        "_allowlist_function_transition": attr.label(default = "@bazel_tools//tools/allowlists/function_transition_allowlist"),
    },
)
