"""ocib's @rules_distroless//distroless:defs.bzl: the same macros and rules as upstream, on
ocib's native kinds. The macros turn their entries into file text exactly as upstream's
(`distroless/private/*.bzl`) do."""

def _get_attr(o, k, d = None):
    if type(o) == "dict":
        if k in o:
            return o[k]
    elif hasattr(o, k):
        return getattr(o, k)
    if d != None:
        return d
    fail("missing key %s" % k)

def passwd(name, entries, mode = "0644", time = "0.0", **kwargs):
    """/etc/passwd from a list of dicts (username, password = "!", uid, gid, gecos = [], home, shell)."""
    ocib.passwd(
        name = name,
        content = [
            ":".join([
                _get_attr(entry, "username"),
                _get_attr(entry, "password", "!"),
                str(_get_attr(entry, "uid")),
                str(_get_attr(entry, "gid")),
                ",".join(_get_attr(entry, "gecos", [])),
                _get_attr(entry, "home"),
                _get_attr(entry, "shell"),
            ])
            for entry in entries
        ],
        mode = mode,
        time = time,
        **kwargs
    )

def group(name, entries, time = "0.0", mode = "0644", **kwargs):
    """/etc/group from a list of dicts (name, password = "!", gid, users = [])."""
    ocib.group(
        name = name,
        content = [
            ":".join([
                _get_attr(entry, "name"),
                _get_attr(entry, "password", "!"),
                str(_get_attr(entry, "gid")),
                ",".join(_get_attr(entry, "users", [])),
            ])
            for entry in entries
        ],
        mode = mode,
        time = time,
        **kwargs
    )

def home(name, dirs, **kwargs):
    """Home directories (dicts of home, uid, gid, mode = "700", time = 0)."""
    ocib.home(
        name = name,
        dirs = [
            "%s:%s:%s:%s:%s" % (
                _get_attr(d, "home"),
                _get_attr(d, "uid"),
                _get_attr(d, "gid"),
                _get_attr(d, "mode", "700"),
                _get_attr(d, "time", 0),
            )
            for d in dirs
        ],
        **kwargs
    )

def os_release(name, content, path = "/usr/lib/os-release", mode = "0555", time = "0", **kwargs):
    """An os-release file from a dict of keys and values."""
    ocib.os_release(
        name = name,
        content = ["{}={}".format(key, value) for (key, value) in content.items()],
        path = path,
        mode = mode,
        time = str(time),
        **kwargs
    )

cacerts = ocib.cacerts
locale = ocib.locale
flatten = ocib.flatten
