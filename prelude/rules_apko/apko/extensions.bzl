"""ocib's @rules_apko//apko:extensions.bzl: MODULE.bazel's `apko.translate_lock` tags are read by ocib itself."""
