"""A module extension generating a constants repository from its tags."""

def _versions_repo_impl(rctx):
    lines = ["VERSIONS = {"]
    for name, sha in sorted(rctx.attr.versions.items()):
        lines.append("    %r: %r," % (name, sha))
    lines.append("}")
    lines.append("ARCHES = %r" % rctx.attr.arches)
    rctx.file("versions.bzl", content = "\n".join(lines) + "\n", executable = False)
    rctx.template("BUILD.bazel", Label("//private/extensions:BUILD.tmpl"), substitutions = {"{NAME}": rctx.attr.target})
    rctx.file("sub/BUILD.bazel", content = 'filegroup(name = "sub", srcs = [], visibility = ["//visibility:public"])\n')

versions_repo = repository_rule(
    implementation = _versions_repo_impl,
    attrs = {
        "versions": attr.string_dict(),
        "arches": attr.string_list(),
        "target": attr.string(default = "all_versions"),
    },
)

def _extra_impl(rctx):
    rctx.file("BUILD.bazel", content = 'filegroup(name = "%s", visibility = ["//visibility:public"])\n' % rctx.name)

extra_repo = repository_rule(implementation = _extra_impl)

def _versions_impl(mctx):
    versions = {}
    arches = []
    for mod in mctx.modules:
        for v in mod.tags.version:
            versions[v.name] = v.sha256
            for a in v.arch:
                if a not in arches:
                    arches.append(a)
    versions_repo(name = "node_versions", versions = versions, arches = sorted(arches))
    extra_repo(name = "extra_repo")
    # Declared but not used by MODULE.bazel: never run.
    extra_repo(name = "unused_repo")

versions = module_extension(
    implementation = _versions_impl,
    tag_classes = {
        "version": tag_class(attrs = {
            "name": attr.string(mandatory = True),
            "sha256": attr.string(),
            "arch": attr.string_list(default = ["amd64"]),
        }),
    },
)
