//! OCI images: config/manifest/index construction (image_config), the image layout on disk
//! (layout), and `docker load` / OCI tarballs (tarball).

pub mod image_config;
pub mod layout;
pub mod push;
pub mod registry;
pub mod tarball;
