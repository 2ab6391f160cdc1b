"""External repositories of the monorepo."""

def oci_deps():
    # A base image built from files in the repository.
    native.local_repository(
        name = "base_local",
        path = "third_party/base",
    )
