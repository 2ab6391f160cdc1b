"""ocib's @bazel_tools//tools/build_defs/repo:http.bzl. An http_archive of a rule set ocib
embeds is that rule set; any other is a repository ocib cannot fetch (nothing may be built
from it)."""

http_archive = ocib.unknown_rule("http_archive")
http_file = ocib.unknown_rule("http_file")
http_jar = ocib.unknown_rule("http_jar")
