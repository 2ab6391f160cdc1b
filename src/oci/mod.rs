//! Generic OCI: the documents' vocabulary (spec), the image layout on disk (layout), `docker
//! load` / OCI tarballs (tarball), base images from such tarballs (base_tarball), loading a
//! layout into docker/podman/nerdctl (engine; docker through its API on the unix socket:
//! docker_api), the registry client (registry), large outputs
//! written by `copy_file_range` and hashed as written (sink) and
//! pulling/pushing a layout (push). Nothing here decides what to build; rules_oci's semantics are in `rules/oci/`.

pub mod base_tarball;
pub mod docker_api;
pub mod engine;
pub mod layout;
pub mod push;
pub mod registry;
pub mod sink;
pub mod spec;
pub mod tarball;
