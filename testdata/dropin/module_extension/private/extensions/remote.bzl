"""A repository rule that downloads: unsupported offline."""

def _archive_impl(rctx):
    rctx.download_and_extract(url = "https://example.com/a.tar.gz", sha256 = "0" * 64)
    rctx.file("BUILD.bazel", "")

remote_archive = repository_rule(implementation = _archive_impl)

def _remote_impl(mctx):
    remote_archive(name = "remote_archive")

remote = module_extension(implementation = _remote_impl)
