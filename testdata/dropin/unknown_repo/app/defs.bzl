# A user's macro over a rule set ocib does not know.
load("@aspect_rules_ts//ts:defs.bzl", "ts_project")

def web_app(name, srcs):
    ts_project(name = name, srcs = srcs, declaration = True)
