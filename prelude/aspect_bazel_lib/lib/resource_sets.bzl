"""ocib's @aspect_bazel_lib//lib:resource_sets.bzl (bazel-lib 2.x): the `resource_set`
attribute rules add to declare their actions' CPU/memory needs. ocib's scheduler does not use
it; rules that spread `**resource_set_attr` into their attributes still evaluate."""

resource_set_attr = {
    "resource_set": attr.string(
        doc = "A predefined function used as the resource_set for actions (ignored by ocib).",
        default = "default",
        values = ["default", "cpu_2", "cpu_4", "default", "mem_1g", "mem_2g", "mem_4g", "mem_8g", "mem_16g", "mem_32g", "mem_512m"],
    ),
}

def resource_set(attr):
    # Upstream returns one of its resource-set callbacks by name; ocib's actions take none.
    return None
