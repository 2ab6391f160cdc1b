"""ocib's @aspect_bazel_lib//lib:repositories.bzl: ocib needs none of these toolchains."""

def aspect_bazel_lib_dependencies(**kwargs):
    pass

def aspect_bazel_lib_register_toolchains(**kwargs):
    pass

def register_jq_toolchains(name = "jq", register = True, **kwargs):
    pass

def register_yq_toolchains(name = "yq", register = True, **kwargs):
    pass

def register_coreutils_toolchains(name = "coreutils", register = True, **kwargs):
    pass

def register_copy_directory_toolchains(name = "copy_directory", register = True, **kwargs):
    pass

def register_copy_to_directory_toolchains(name = "copy_to_directory", register = True, **kwargs):
    pass

def register_expand_template_toolchains(name = "expand_template", register = True, **kwargs):
    pass

def register_tar_toolchains(name = "bsd_tar", register = True, **kwargs):
    pass

def register_zstd_toolchains(name = "zstd", register = True, **kwargs):
    pass
