"""ocib's @rules_pkg//pkg:tar.bzl: the `pkg_tar` macro over the native `pkg_tar_impl`."""

def pkg_tar(name, **kwargs):
    # Legacy form: `files` given as a list means `srcs`.
    if "srcs" not in kwargs and "files" in kwargs and not hasattr(kwargs["files"], "items"):
        print("{}: you provided a non dictionary to the pkg_tar `files` attribute. This attribute was renamed to `srcs`.".format(name))
        kwargs["srcs"] = kwargs.pop("files")
    extension = kwargs.get("extension") or "tar"
    if extension.startswith("."):
        extension = extension[1:]
    stamp = kwargs.get("stamp", 0)
    if stamp == 1:
        stamp_detect = True
    elif stamp == -1:
        stamp_detect = select({
            "@rules_pkg//pkg/private:private_stamp_detect": True,
            "//conditions:default": False,
        })
    else:
        stamp_detect = False
    out = kwargs.pop("out", None) or (name + "." + extension)
    ocib.pkg_tar_impl(name = name, out = out, private_stamp_detect = stamp_detect, **kwargs)
