# Native rules reached through `native.` from a macro, as real rule sets' macros do.
def java_app(name, main_class):
    native.java_binary(name = name, main_class = main_class, srcs = [name + ".java"])
    native.toolchain(name = name + "_toolchain", toolchain = ":" + name, toolchain_type = "//java:toolchain_type")
