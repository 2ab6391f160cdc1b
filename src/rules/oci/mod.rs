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
