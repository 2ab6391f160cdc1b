"""ocib's @io_bazel_rules_go//go:def.bzl: rules_go's rules over ocib's native Go rules."""

def go_binary_macro(name, **kwargs):
    """rules_go's go_binary: the kind depends on the link mode."""
    if kwargs.get("goos") != None or kwargs.get("goarch") != None:
        for key, value in kwargs.items():
            if type(value) == "select":
                fail("Cannot use select for go_binary with goos/goarch set, but {} was a select".format(key))
    if kwargs.get("linkmode", "normal") in ["normal", "pie"]:
        ocib.go_binary(name = name, **kwargs)
    else:
        ocib.go_non_executable_binary(name = name, **kwargs)

go_binary = go_binary_macro
go_library = ocib.go_library
go_test = ocib.go_test
go_cross_binary = ocib.go_cross_binary
go_source = ocib.unknown_rule("go_source")
go_path = ocib.unknown_rule("go_path")
go_tool_library = ocib.unknown_rule("go_tool_library")
nogo = ocib.unknown_rule("nogo")

# GoInfo and GoArchive are ocib's: its native go_library/go_binary targets provide them
# (importpath, importmap, srcs, the archive file; see README).
GoInfo = ocib.GoInfo
GoLibrary = provider()
GoSource = provider()
GoPath = provider()
GoArchive = ocib.GoArchive
GoArchiveData = provider()
GoSDK = provider()

def _moved(name):
    fail("{} has moved. Please load from @io_bazel_rules_go//go:deps.bzl instead of def.bzl.".format(name))

def go_rules_dependencies(**kwargs):
    _moved("go_rules_dependencies")

def go_register_toolchains(**kwargs):
    _moved("go_register_toolchains")

def go_download_sdk(**kwargs):
    _moved("go_download_sdk")
