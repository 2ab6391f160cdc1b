"""Debian version strings: `version.parse` and comparisons, the face of rules_distroless's
`apt/private/version.bzl` (repositories' own module extensions load it to read lock versions,
e.g. distroless's `private/extensions/version.bzl`).

Written from Debian Policy 5.6.12 (`[epoch:]upstream[-revision]`) and dpkg's `verrevcmp`
(lib/dpkg/version.c): non-digit runs compare character by character with `~` before
everything (even the end of the string), letters before other characters; digit runs compare
as numbers.
"""

# Starlark has no ord(): the printable ASCII characters, in order, from code 32.
_PRINTABLE = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

def _parse(raw):
    """Splits `[epoch:]upstream[-revision]`: (epoch or None, upstream, revision or None)."""
    rest = raw
    epoch = None
    colon = rest.find(":")
    if colon != -1:
        epoch = rest[:colon]
        rest = rest[colon + 1:]
    revision = None
    dash = rest.rfind("-")
    if dash != -1:
        revision = rest[dash + 1:]
        rest = rest[:dash]
    return (epoch, rest, revision)

def _order(s, i):
    """dpkg's order() of the character at i (0 past the end and for digits)."""
    if i >= len(s):
        return 0
    c = s[i]
    if c.isdigit():
        return 0
    code = _PRINTABLE.find(c) + 32
    if c.isalpha():
        return code
    if c == "~":
        return -1
    return code + 256

def _sign(n):
    if n < 0:
        return -1
    if n > 0:
        return 1
    return 0

def _is_digit_at(s, i):
    return i < len(s) and s[i].isdigit()

def _verrevcmp(a, b):
    """dpkg's verrevcmp: -1, 0 or 1."""
    i = 0
    j = 0
    bound = len(a) + len(b) + 1
    for _ in range(bound):
        if i >= len(a) and j >= len(b):
            return 0

        # The non-digit run: a non-digit never has order 0, so equal orders mean both sides
        # have a character here.
        for _ in range(bound):
            if not ((i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit())):
                break
            ac = _order(a, i)
            bc = _order(b, j)
            if ac != bc:
                return _sign(ac - bc)
            i += 1
            j += 1

        # The digit run, as a number: leading zeros skipped, then the longer run is larger,
        # else the first differing digit decides.
        for _ in range(bound):
            if i < len(a) and a[i] == "0":
                i += 1
            else:
                break
        for _ in range(bound):
            if j < len(b) and b[j] == "0":
                j += 1
            else:
                break
        first_diff = 0
        for _ in range(bound):
            if not (_is_digit_at(a, i) and _is_digit_at(b, j)):
                break
            if first_diff == 0:
                first_diff = _sign(int(a[i]) - int(b[j]))
            i += 1
            j += 1
        if _is_digit_at(a, i):
            return 1
        if _is_digit_at(b, j):
            return -1
        if first_diff != 0:
            return first_diff
    return 0

def _compare(va, vb):
    """Compares two Debian versions: -1, 0 or 1."""
    (ea, ua, ra) = _parse(va)
    (eb, ub, rb) = _parse(vb)
    res = _sign(int(ea or "0") - int(eb or "0"))
    if res != 0:
        return res
    res = _verrevcmp(ua, ub)
    if res != 0:
        return res
    return _verrevcmp(ra or "0", rb or "0")

def _sort(versions, reverse = False):
    """The versions in ascending order (descending with reverse), as a new list."""
    out = []
    for v in versions:
        at = len(out)
        for k in range(len(out)):
            if _compare(v, out[k]) < 0:
                at = k
                break
        out.insert(at, v)
    if reverse:
        return list(reversed(out))
    return out

version = struct(
    parse = _parse,
    cmp = _compare,
    gt = lambda va, vb: _compare(va, vb) == 1,
    gte = lambda va, vb: _compare(va, vb) >= 0,
    lt = lambda va, vb: _compare(va, vb) == -1,
    lte = lambda va, vb: _compare(va, vb) <= 0,
    eq = lambda va, vb: _compare(va, vb) == 0,
    sort = _sort,
)
