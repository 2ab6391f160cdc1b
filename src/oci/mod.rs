//! OCI images: config/manifest/index construction (image_config), the image layout on disk
//! (layout), `docker load` / OCI tarballs (tarball), and base images from such tarballs
//! (base_tarball).

pub mod base_tarball;
pub mod image_config;
pub mod layout;
pub mod push;
pub mod registry;
pub mod tarball;
