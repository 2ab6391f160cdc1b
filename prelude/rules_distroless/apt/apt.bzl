"""ocib's @rules_distroless//apt:apt.bzl: the WORKSPACE `apt.install` macro.

ocib declares the repositories rules_distroless would (`@<name>` and one per locked package)
from the manifest and the lock; `load("@<name>//:packages.bzl", "<name>_packages")` and its
call are then no-ops. A lock is required: ocib never resolves packages at build time.
"""

def _apt_install(name, manifest, lock = None, nolock = False, package_template = None, resolve_transitive = True, mergedusr = False):
    ocib.apt_install(
        name = name,
        manifest = manifest,
        lock = lock,
        nolock = nolock,
        resolve_transitive = resolve_transitive,
        mergedusr = mergedusr,
    )

apt = struct(
    install = _apt_install,
)
