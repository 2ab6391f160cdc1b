"""Starlark rules: providers across three rules, depsets, args, runfiles, outputs."""

MyInfo = provider(
    doc = "Names and files a my_lib collects from its deps.",
    fields = ["names", "files"],
)

def _checked_init(value):
    if not value:
        fail("CountInfo needs a value")
    return {"count": len(value), "value": value}

CountInfo, _new_count_info = provider(fields = ["count", "value"], init = _checked_init)

def _lib_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, "lib %s\n" % ctx.attr.value)
    files = depset([out], transitive = [d[MyInfo].files for d in ctx.attr.deps])
    names = depset([ctx.attr.value], transitive = [d[MyInfo].names for d in ctx.attr.deps], order = "postorder")
    return [
        DefaultInfo(files = depset([out])),
        MyInfo(names = names, files = files),
        CountInfo(ctx.attr.value),
    ]

my_lib = rule(
    implementation = _lib_impl,
    attrs = {
        "value": attr.string(mandatory = True),
        "deps": attr.label_list(providers = [MyInfo]),
    },
)

def _upper(name):
    return name.upper()

def _bundle_impl(ctx):
    out = ctx.outputs.out
    files = depset(transitive = [d[MyInfo].files for d in ctx.attr.deps])
    names = depset(transitive = [d[MyInfo].names for d in ctx.attr.deps], order = "postorder")
    args = ctx.actions.args()
    args.add(out)
    args.add_joined(names, join_with = ",", map_each = _upper, format_joined = ctx.attr.prefix + "=%s")
    args.add_all(files)
    ctx.actions.run(
        outputs = [out],
        inputs = files,
        executable = ctx.executable._concat,
        arguments = [args],
        mnemonic = "Bundle",
        progress_message = "Bundling %{label}",
    )
    listing = ctx.actions.declare_file(ctx.label.name + ".list")
    ctx.actions.run_shell(
        outputs = [listing],
        inputs = files,
        command = "for f in \"$@\"; do basename \"$f\"; done > " + listing.path,
        arguments = [f.path for f in files.to_list()],
    )
    counts = ctx.actions.declare_file(ctx.label.name + ".counts")
    ctx.actions.write(counts, "".join(["%s=%d\n" % (d.label.name, d[CountInfo].count) for d in ctx.attr.deps]))
    return [
        DefaultInfo(files = depset([out, listing])),
        OutputGroupInfo(counts = depset([counts])),
    ]

my_bundle = rule(
    implementation = _bundle_impl,
    attrs = {
        "deps": attr.label_list(providers = [MyInfo]),
        "prefix": attr.string(default = "names"),
        "_concat": attr.label(default = ":concat.sh", executable = True, cfg = "exec", allow_single_file = True),
    },
    outputs = {"out": "%{name}.bundle"},
)

def _launcher_impl(ctx):
    exe = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.expand_template(
        template = ctx.file._template,
        output = exe,
        substitutions = {
            "{NAME}": ctx.label.name,
            "{GREETING}": ctx.attr.greeting,
            "{DATA}": ctx.file.data.short_path,
        },
        is_executable = True,
    )
    runfiles = ctx.runfiles(files = [ctx.file.data]).merge(ctx.attr.data[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = exe, runfiles = runfiles)]

_launcher_attrs = {
    "greeting": attr.string(default = "hello"),
    "data": attr.label(allow_single_file = True, mandatory = True),
    "_template": attr.label(default = ":launcher.tpl", allow_single_file = True),
}

my_binary = rule(implementation = _launcher_impl, attrs = _launcher_attrs, executable = True)

def _check_impl(ctx):
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, "#!/bin/bash\ngrep -q '%s' '%s'\n" % (ctx.attr.expect, ctx.file.src.short_path), is_executable = True)
    return [
        DefaultInfo(executable = script, runfiles = ctx.runfiles(files = [ctx.file.src])),
        RunEnvironmentInfo(environment = {"CHECKED": ctx.attr.expect}),
    ]

my_test = rule(
    implementation = _check_impl,
    attrs = {"src": attr.label(allow_single_file = True), "expect": attr.string()},
    test = True,
)

def _failing_impl(ctx):
    _helper(ctx.attr.why)

def _helper(why):
    fail("cannot build: " + why)

my_failing = rule(implementation = _failing_impl, attrs = {"why": attr.string()})
