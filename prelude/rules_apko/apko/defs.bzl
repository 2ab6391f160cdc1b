"""ocib's @rules_apko//apko:defs.bzl: `apko_image` built natively (no apko binary)."""

def apko_image(name, contents, config, tag, output = "oci", architecture = None, args = [], **kwargs):
    """rules_apko's macro: an OCI image layout from an apko config and a translated lock."""
    ocib._apko_image(
        name = name,
        config = config,
        contents = contents,
        output = output,
        architecture = architecture,
        tag = tag,
        args = args,
        **kwargs
    )
