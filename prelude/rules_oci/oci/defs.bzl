"""ocib's @rules_oci//oci:defs.bzl: rules_oci's macros over ocib's native rules, as the release
the workspace pins wrote them (issue 11 class 8; docs/rules_oci-versions.md has the table).

Read from bazel-contrib/rules_oci `oci/defs.bzl` at every tag where it changed:
- hidden targets carry a leading `_` up to 2.2.0 (`_N_write_env`, `_N_index_json`), none from
  2.2.1 (`N_write_env`);
- oci_image handles `labels`/`annotations` dicts from 1.0.0, `env` from 1.1.0, `cmd` and
  `entrypoint` lists and the `N.digest` targets from 1.3.3 (before, the rule took env/cmd/
  entrypoint as values; ocib writes them to the files 1.3.3 names, its rule taking files), `exposed_ports` from 1.5.0,
  `volumes` from 2.0.0, `created` from 2.1.0; cmd/entrypoint are one comma-joined line in 1.x,
  one element per line from 2.0.0;
- `oci_tarball` exists in 1.x only, `oci_load` from 2.0.0; `oci_image_index` is the rule
  itself before 2.2.0 and a macro with digest targets from 2.2.0 (`oci_image_index_rule`);
- what hidden targets inherit: nothing before 1.3.3; well-known tags in 1.3.3; all tags in
  1.4.0; the common rule attributes from 1.4.1; from 2.3.2 well-known tags plus `manual`
  (the digest keeps the common attributes) and `oci_image_index` takes an annotations dict.

A workspace that does not pin rules_oci gets the newest release's behaviour, and 1.x's
`oci_tarball` too: no Bazel build exists to contradict, and ocib's own examples use both.
"""

load(
    "//oci/private:ocib_macros.bzl",
    "since",
    _oci_image = "oci_image",
    _oci_image_index = "oci_image_index",
    _oci_load = "oci_load",
    _oci_push = "oci_push",
    _oci_tarball = "oci_tarball",
)
load("//oci/private:ocib_version.bzl", "RULES_OCI_VERSION")

# The public symbols of the pinned release; None marks one it does not have, which a load()
# reports as Bazel does ("file '@rules_oci//oci:defs.bzl' does not contain symbol ...").
oci_image = _oci_image
oci_push = _oci_push
oci_image_rule = ocib.oci_image
oci_push_rule = ocib.oci_push
oci_image_index = _oci_image_index if since((2, 2, 0)) else ocib.oci_image_index
oci_image_index_rule = ocib.oci_image_index if since((2, 2, 0)) else None
oci_load = _oci_load if since((2, 0, 0)) else None
oci_tarball = _oci_tarball if RULES_OCI_VERSION == () or not since((2, 0, 0)) else None
oci_tarball_rule = ocib.oci_load if since((2, 0, 0)) else ocib.oci_tarball
