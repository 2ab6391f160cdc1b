# ocib's implementation of bazel-skylib's lib/paths.bzl (Unix-style path helpers).

def _basename(p):
    return p.rpartition("/")[-1]

def _dirname(p):
    prefix, sep, _ = p.rpartition("/")
    if not prefix:
        return sep
    return prefix.rstrip("/")

def _is_absolute(path):
    return path.startswith("/") or (len(path) > 2 and path[1] == ":")

def _join(path, *others):
    result = path
    for p in others:
        if _is_absolute(p):
            result = p
        elif not result or result.endswith("/"):
            result += p
        else:
            result += "/" + p
    return result

def _normalize(path):
    if not path:
        return "."
    if path.startswith("//") and not path.startswith("///"):
        leading = "//"
    elif path.startswith("/"):
        leading = "/"
    else:
        leading = ""
    out = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not leading:
                out.append(seg)
        else:
            out.append(seg)
    return (leading + "/".join(out)) or "."

def _is_normalized(str, look_for_same_level_references = True):
    for seg in str.split("/"):
        if seg == ".." or (look_for_same_level_references and seg == "."):
            return False
    return True

def _relativize(path, start):
    segments = _normalize(path).split("/")
    start_segments = _normalize(start).split("/")
    if start_segments == ["."]:
        start_segments = []
    n = len(start_segments)
    if path.startswith("/") != start.startswith("/") or len(segments) < n or segments[:n] != start_segments:
        fail("Path '%s' is not beneath '%s'" % (path, start))

    # Like skylib: when path == start this slices [-0:], i.e. the whole path.
    return "/".join(segments[-(len(segments) - n):])

def _split_extension(p):
    b = _basename(p)
    dot = b.rfind(".")
    if dot <= 0:
        return (p, "")
    n = len(b) - dot
    return (p[:-n], p[-n:])

def _replace_extension(p, new_extension):
    return _split_extension(p)[0] + new_extension

def _starts_with(path_a, path_b):
    if not path_b:
        return True
    a = _normalize(path_a)
    b = _normalize(path_b)
    if not a.startswith(b):
        return False
    return len(a) == len(b) or a[len(b)] == "/"

paths = struct(
    basename = _basename,
    dirname = _dirname,
    is_absolute = _is_absolute,
    join = _join,
    normalize = _normalize,
    is_normalized = _is_normalized,
    relativize = _relativize,
    replace_extension = _replace_extension,
    split_extension = _split_extension,
    starts_with = _starts_with,
)
