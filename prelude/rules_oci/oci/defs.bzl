"""ocib's @rules_oci//oci:defs.bzl: rules_oci 2.x macros over ocib's native rules.

Hidden targets and their names follow rules_oci v2.3.2; `oci_tarball` follows rules_oci 1.x."""

load("@aspect_bazel_lib//lib:copy_file.bzl", "copy_file")
load("@aspect_bazel_lib//lib:directory_path.bzl", "directory_path")
load("@aspect_bazel_lib//lib:jq.bzl", "jq")
load("@bazel_skylib//rules:write_file.bzl", "write_file")

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

def _forwarded(kwargs):
    return {k: v for k, v in kwargs.items() if k in _COMMON_ATTRS}

def _internal(kwargs):
    # Helper targets keep only well-known tags and are always manual.
    attrs = _forwarded(kwargs)
    tags = [t for t in attrs.get("tags", []) if t in _WELL_KNOWN_TAGS or t.startswith("cpu:")]
    if "manual" not in tags:
        tags.append("manual")
    attrs["tags"] = tags
    return attrs

def _lines(name, suffix, out_suffix, content, attrs):
    write_file(name = name + suffix, out = name + out_suffix, content = content, **attrs)
    return name + suffix

def _digest(name, forwarded, internal):
    directory_path(name = name + "_index_json", directory = name, path = "index.json", **internal)
    copy_file(name = name + "_index_json_cp", src = name + "_index_json", out = name + "_index.json", **internal)
    jq(
        name = name + ".digest",
        srcs = [name + "_index.json"],
        filter = ".manifests[0].digest",
        args = ["--raw-output"],
        out = name + ".json.sha256",
        **forwarded
    )

def oci_image(name, created = None, labels = None, annotations = None, env = None, cmd = None, entrypoint = None, exposed_ports = None, volumes = None, **kwargs):
    forwarded = _forwarded(kwargs)
    internal = _internal(kwargs)
    if type(annotations) == "dict":
        annotations = _lines(name, "_write_annotations", ".annotations.txt", ["{}={}".format(k, v) for k, v in annotations.items()], internal)
    if type(labels) == "dict":
        labels = _lines(name, "_write_labels", ".labels.txt", ["{}={}".format(k, v) for k, v in labels.items()], internal)
    if type(env) == "dict":
        env = _lines(name, "_write_env", ".env.txt", ["{}={}".format(k, v) for k, v in env.items()], internal)
    if type(cmd) == "list":
        cmd = _lines(name, "_write_cmd", ".cmd.txt", [c.replace("\n", "%5Cn") for c in cmd], internal)
    if type(entrypoint) == "list":
        entrypoint = _lines(name, "_write_entrypoint", ".entrypoint.txt", [e.replace("\n", "%5Cn") for e in entrypoint], internal)
    if type(exposed_ports) == "list":
        exposed_ports = _lines(name, "_write_exposed_ports", ".exposed_ports.txt", [",".join(exposed_ports)], internal)
    if type(volumes) == "list":
        volumes = _lines(name, "_write_volumes", ".volumes.txt", [",".join(volumes)], internal)
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
        **kwargs
    )
    _digest(name, forwarded, internal)

def oci_image_index(name, annotations = None, **kwargs):
    forwarded = _forwarded(kwargs)
    if type(annotations) == "dict":
        annotations = _lines(name, "_write_annotations", ".annotations.txt", ["{}={}".format(k, v) for k, v in annotations.items()], forwarded)
    ocib.oci_image_index(name = name, annotations = annotations, **kwargs)
    _digest(name, forwarded, _internal(kwargs))

def oci_push(name, remote_tags = None, **kwargs):
    if type(remote_tags) == "list":
        remote_tags = _lines(name, "_write_tags", ".tags.txt", remote_tags, _internal(kwargs))
    ocib.oci_push(name = name, remote_tags = remote_tags, **kwargs)

def oci_load(name, repo_tags = None, **kwargs):
    if type(repo_tags) == "list":
        repo_tags = _lines(name, "_write_tags", ".tags.txt", repo_tags, _internal(kwargs))
    ocib.oci_load(name = name, repo_tags = repo_tags, **kwargs)

def oci_tarball(name, repo_tags = None, **kwargs):
    # rules_oci 1.x: the tags file target has a leading underscore and keeps all tags.
    if type(repo_tags) == "list":
        write_file(name = "_" + name + "_write_tags", out = "_" + name + ".tags.txt", content = repo_tags, **_forwarded(kwargs))
        repo_tags = "_" + name + "_write_tags"
    ocib.oci_tarball(name = name, repo_tags = repo_tags, **kwargs)

oci_image_rule = ocib.oci_image
oci_image_index_rule = ocib.oci_image_index
oci_push_rule = ocib.oci_push
oci_tarball_rule = ocib.oci_load
