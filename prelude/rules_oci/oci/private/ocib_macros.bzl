"""ocib's rules_oci macros, one copy for every release: each follows the release the workspace
pins (`RULES_OCI_VERSION`), as described in `//oci:defs.bzl`, which exports them. They are
defined here under their public names because Bazel reports a macro's own name as the
`generator_function` of the targets it creates."""

load("@aspect_bazel_lib//lib:copy_file.bzl", "copy_file")
load("@aspect_bazel_lib//lib:directory_path.bzl", "directory_path")
load("@aspect_bazel_lib//lib:jq.bzl", "jq")
load("@bazel_skylib//rules:write_file.bzl", "write_file")
load(":ocib_version.bzl", "RULES_OCI_VERSION")

_COMMON_ATTRS = [
    "compatible_with",
    "deprecation",
    "distribs",
    "exec_compatible_with",
    "exec_properties",
    "features",
    "restricted_to",
    "tags",
    "target_compatible_with",
    "testonly",
    "toolchains",
    "visibility",
]

_WELL_KNOWN_TAGS = [
    "no-sandbox",
    "no-cache",
    "no-remote-cache",
    "no-remote-exec",
    "no-remote",
    "local",
    "requires-network",
    "block-network",
    "requires-fakeroot",
    "exclusive",
    "manual",
    "external",
]

def since(version):
    """Whether the pinned rules_oci is `version` or later (unpinned: the newest release)."""
    return RULES_OCI_VERSION == () or RULES_OCI_VERSION >= version

# Up to 2.2.0 the macros' hidden targets and their files start with `_`.
_HIDDEN = "" if since((2, 2, 1)) else "_"

def _well_known(tags):
    # aspect_bazel_lib's propagate_well_known_tags.
    return [t for t in tags if t in _WELL_KNOWN_TAGS or t.startswith("cpu:")]

def _forwarded(kwargs):
    # aspect_bazel_lib's propagate_common_rule_attributes.
    return {k: v for k, v in kwargs.items() if k in _COMMON_ATTRS}

def _hidden_attrs(kwargs):
    """The attributes a macro's write_file/directory_path/copy_file targets get."""
    if not since((1, 3, 3)):
        return {}
    if not since((1, 4, 0)):
        return {"tags": _well_known(kwargs.get("tags", []))}
    if not since((1, 4, 1)):
        return {"tags": kwargs.get("tags", [])}
    attrs = _forwarded(kwargs)
    if not since((2, 3, 2)):
        return attrs

    # 2.3.2 `_propagate_to_internal_target`: well-known tags only, always manual.
    tags = _well_known(attrs.get("tags", []))
    if "manual" not in tags:
        tags = tags + ["manual"]
    attrs["tags"] = tags
    return attrs

def _digest_attrs(kwargs):
    """The attributes of the user-facing `N.digest` target (2.3.2 keeps them all)."""
    return _forwarded(kwargs) if since((2, 3, 2)) else _hidden_attrs(kwargs)

def _main_kwargs(kwargs):
    # 1.3.3 filtered the macro's own rule's tags to the well-known ones too.
    if since((1, 3, 3)) and not since((1, 4, 0)) and "tags" in kwargs:
        kwargs = dict(kwargs)
        kwargs["tags"] = _well_known(kwargs["tags"])
    return kwargs

def _write(name, kind, content, attrs):
    label = "{}{}_write_{}".format(_HIDDEN, name, kind)
    write_file(name = label, out = "{}{}.{}.txt".format(_HIDDEN, name, kind), content = content, **attrs)
    return label

def _pairs(d):
    return ["{}={}".format(k, v) for k, v in d.items()]

def _command(elems):
    if since((2, 0, 0)):
        # %5Cn is the URI-escaped newline.
        return [e.replace("\n", "%5Cn") for e in elems]
    return [",".join(elems)]

def _digest(name, hidden, digest):
    directory_path(name = "{}{}_index_json".format(_HIDDEN, name), directory = name, path = "index.json", **hidden)
    copy_file(
        name = "{}{}_index_json_cp".format(_HIDDEN, name),
        src = "{}{}_index_json".format(_HIDDEN, name),
        out = "{}{}_index.json".format(_HIDDEN, name),
        **hidden
    )
    jq(
        name = name + ".digest",
        srcs = ["{}{}_index.json".format(_HIDDEN, name)],
        filter = ".manifests[0].digest",
        args = ["--raw-output"],
        out = name + ".json.sha256",
        **digest
    )

def oci_image(name, created = None, labels = None, annotations = None, env = None, cmd = None, entrypoint = None, exposed_ports = None, volumes = None, **kwargs):
    hidden = _hidden_attrs(kwargs)
    if type(annotations) == "dict":
        annotations = _write(name, "annotations", _pairs(annotations), hidden)
    if type(labels) == "dict":
        labels = _write(name, "labels", _pairs(labels), hidden)
    # Before 1.1.0 (env) and 1.3.3 (cmd, entrypoint) the rule itself took the dict / list;
    # ocib's rule takes files only, so those releases get the file and target 1.3.3 named:
    # one hidden target more than they had, the only deviation from the release's names.
    if type(env) == "dict":
        env = _write(name, "env", _pairs(env), hidden)
    if type(cmd) == "list":
        cmd = _write(name, "cmd", _command(cmd), hidden)
    if type(entrypoint) == "list":
        entrypoint = _write(name, "entrypoint", _command(entrypoint), hidden)
    if type(exposed_ports) == "list" and since((1, 5, 0)):
        exposed_ports = _write(name, "exposed_ports", [",".join(exposed_ports)], hidden)
    if type(volumes) == "list" and since((2, 0, 0)):
        volumes = _write(name, "volumes", [",".join(volumes)], hidden)
    ocib.oci_image(
        name = name,
        created = created,
        labels = labels,
        annotations = annotations,
        env = env,
        cmd = cmd,
        entrypoint = entrypoint,
        exposed_ports = exposed_ports,
        volumes = volumes,
        **_main_kwargs(kwargs)
    )
    if since((1, 3, 3)):
        _digest(name, hidden, _digest_attrs(kwargs))

def oci_image_index(name, annotations = None, **kwargs):
    if type(annotations) == "dict" and since((2, 3, 2)):
        annotations = _write(name, "annotations", _pairs(annotations), _forwarded(kwargs))
    ocib.oci_image_index(name = name, annotations = annotations, **kwargs)
    _digest(name, _hidden_attrs(kwargs), _digest_attrs(kwargs))

def oci_push(name, remote_tags = None, **kwargs):
    if type(remote_tags) == "list":
        remote_tags = _write(name, "tags", remote_tags, _hidden_attrs(kwargs))
    ocib.oci_push(name = name, remote_tags = remote_tags, **_main_kwargs(kwargs))

def oci_load(name, repo_tags = None, **kwargs):
    if type(repo_tags) == "list":
        repo_tags = _write(name, "tags", repo_tags, _hidden_attrs(kwargs))
    ocib.oci_load(name = name, repo_tags = repo_tags, **kwargs)

def oci_tarball(name, repo_tags = None, **kwargs):
    # 1.x only: the tags file keeps the leading `_` (and, unpinned, 1.7's attributes).
    attrs = _hidden_attrs(kwargs) if RULES_OCI_VERSION != () else _forwarded(kwargs)
    if type(repo_tags) == "list":
        write_file(name = "_{}_write_tags".format(name), out = "_{}.tags.txt".format(name), content = repo_tags, **attrs)
        repo_tags = "_{}_write_tags".format(name)
    ocib.oci_tarball(name = name, repo_tags = repo_tags, **_main_kwargs(kwargs))
