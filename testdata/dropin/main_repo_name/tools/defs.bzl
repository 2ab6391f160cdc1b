load("@mymain//tools:more.bzl", "SUFFIX")

GREETING = "hello" + SUFFIX
