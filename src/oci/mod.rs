//! Generic OCI: the documents' vocabulary (spec), the image layout on disk (layout), `docker
//! load` / OCI tarballs (tarball), base images from such tarballs (base_tarball), the registry client (registry) and pulling/pushing a layout
//! (push). Nothing here decides what to build; rules_oci's semantics are in `rules/oci/`.

pub mod base_tarball;
pub mod layout;
pub mod push;
pub mod registry;
pub mod spec;
pub mod tarball;

/// The old name of [`spec`], still used by `layout.rs` and `push.rs` while other branches edit
/// them; they switch to `spec::` when those branches are merged.
pub(crate) use spec as image_config;
