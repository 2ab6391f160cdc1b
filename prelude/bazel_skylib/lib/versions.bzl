# ocib's implementation of bazel-skylib's lib/versions.bzl (mirrors bazel-skylib 1.7.1): Bazel
# version strings as tuples and the WORKSPACE-time version check.

def _get():
    # ocib is no Bazel release: like a development build of Bazel, it has no version.
    return getattr(native, "bazel_version", "")

def _leading_digits_and_dots(text):
    end = 0
    for c in text.elems():
        if not (c.isdigit() or c == "."):
            break
        end += 1
    return text[:end]

def _parse(bazel_version):
    """'6.4.0rc1 abc' -> (6, 4, 0)."""
    numbers = _leading_digits_and_dots(bazel_version.strip())
    return tuple([int(n) for n in numbers.split(".") if n])

def _is_at_most(threshold, version):
    return _parse(version) <= _parse(threshold)

def _is_at_least(threshold, version):
    return _parse(version) >= _parse(threshold)

def _check(minimum_bazel_version, maximum_bazel_version = None, bazel_version = None):
    if not bazel_version:
        bazel_version = _get()
    if not bazel_version:
        # A development build satisfies every requirement, as in skylib.
        return
    if not _is_at_least(minimum_bazel_version, bazel_version):
        fail("Current Bazel version is {}; expected at least {}".format(bazel_version, minimum_bazel_version))
    if maximum_bazel_version and not _is_at_most(maximum_bazel_version, bazel_version):
        fail("Current Bazel version is {}; expected at most {}".format(bazel_version, maximum_bazel_version))

versions = struct(
    get = _get,
    parse = _parse,
    check = _check,
    is_at_most = _is_at_most,
    is_at_least = _is_at_least,
)
