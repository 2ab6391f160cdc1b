"""ocib's @bazel_gazelle//:deps.bzl: `go_repository` declares a Go module repository that ocib
fetches through GOPROXY and gives gazelle-generated BUILD files when first used."""

go_repository = ocib.go_repository

def gazelle_dependencies(go_sdk = None, go_repository_default_config = None, go_env = None, **kwargs):
    pass
