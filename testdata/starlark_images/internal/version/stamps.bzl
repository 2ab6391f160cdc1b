"""A layer made by a Starlark rule: a tar written with run_shell."""

def _stamps_tar_impl(ctx):
    text = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(text, "built by stamps_tar\n")
    out = ctx.actions.declare_file(ctx.label.name + ".tar")
    ctx.actions.run_shell(
        outputs = [out],
        inputs = [text],
        command = "mkdir -p root/etc/build && cp \"$1\" root/etc/build/stamps.txt && " +
                  "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=a+r -cf \"$2\" -C root etc",
        arguments = [text.path, out.path],
        mnemonic = "StampsTar",
    )
    return [DefaultInfo(files = depset([out]))]

stamps_tar = rule(implementation = _stamps_tar_impl)
