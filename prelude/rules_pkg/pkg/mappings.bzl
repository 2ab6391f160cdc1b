"""ocib's @rules_pkg//pkg:mappings.bzl: pkg_files and friends over native rules."""

REMOVE_BASE_DIRECTORY = "\0"

def _from_pkg(path = ""):
    return path[1:] if path.startswith("/") else path

def _from_root(path = ""):
    return path if path.startswith("/") else "/" + path

strip_prefix = struct(
    files_only = lambda: ".",
    from_pkg = _from_pkg,
    from_root = _from_root,
)

def pkg_attributes(mode = None, user = None, group = None, uid = None, gid = None, **kwargs):
    """The JSON string rules_pkg uses to carry per-file attributes."""
    ret = dict(kwargs)
    if mode:
        ret["mode"] = mode
    if user:
        ret["user"] = user
    if group:
        ret["group"] = group
    if uid != None:
        if type(uid) != "int":
            fail("Got \"" + str(uid) + "\" instead of integer uid")
        ret["uid"] = uid
    if gid != None:
        if type(gid) != "int":
            fail("Got \"" + str(gid) + "\" instead of integer gid")
        ret["gid"] = gid
    return json.encode(ret)

pkg_files = ocib.pkg_files
pkg_mkdirs = ocib.pkg_mkdirs
pkg_filegroup = ocib.pkg_filegroup
pkg_mklink_impl = ocib.pkg_mklink_impl
filter_directory = ocib.unknown_rule("filter_directory")

def pkg_mklink(name, link_name, target = None, attributes = None, src = None, **kwargs):
    if src:
        if target:
            fail("You can not specify both target and src.")
        target = src
    ocib.pkg_mklink_impl(name = name, target = target, link_name = link_name, attributes = attributes, **kwargs)
