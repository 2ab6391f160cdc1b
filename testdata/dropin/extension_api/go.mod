module example.com/extension_api

go 1.22

require github.com/bazelbuild/buildtools v0.0.0-20251110131859-9a9819efe30f
