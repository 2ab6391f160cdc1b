//! rules_oci: `oci_image`, `oci_image_index`, `oci_tarball`/`oci_load`, `oci_push`, `oci_pull`,
//! with their in-process actions (`actions`) and the config/manifest semantics of
//! rules_oci's image.sh (`image_config`).

pub mod actions;
pub mod image_config;
pub mod oci_image;
pub mod oci_image_index;
pub mod oci_load;
pub mod oci_pull;
pub mod oci_push;
pub mod oci_tarball;

use super::Kind;

/// rules_oci's kinds. `oci_pull` is a repository rule: its repository's BUILD file calls
/// aspect_bazel_lib's `copy_to_directory`, which ocib implements only for that use.
pub const KINDS: &[Kind] = &[
    Kind { schema: oci_image::schema, analyze: oci_image::analyze },
    Kind { schema: oci_image_index::schema, analyze: oci_image_index::analyze },
    Kind { schema: oci_load::schema, analyze: oci_load::analyze },
    Kind { schema: oci_push::schema, analyze: oci_push::analyze },
    Kind { schema: oci_tarball::schema, analyze: oci_tarball::analyze },
    Kind { schema: oci_pull::copy_to_directory_schema, analyze: oci_pull::analyze },
];
