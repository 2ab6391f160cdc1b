//! A small blocking client for the OCI distribution API: exactly what `oci_push` and `oci_pull`
//! need (blob HEAD/upload/mount/download, manifest PUT/GET), with Docker's auth flows
//! (Basic, and Bearer tokens from `WWW-Authenticate`), docker config credentials and retries
//! with backoff. One file per concept:
//! - [`reference`](mod@reference): image references (`registry/repository[:tag][@digest]`) and name checks;
//! - [`auth`]: credentials from the docker config and credential helpers;
//! - [`challenge`]: answering a registry's `WWW-Authenticate` challenge (Basic, Bearer tokens);
//! - [`client`]: the [`Client`], its requests and downloads;
//! - `upload`: blob uploads (monolithic, chunked) and cross-repository mounts;
//! - [`download`]: verified downloads of plain URLs (rules_distroless's .debs);
//! - `retry`: which failures are transient, backoff, and the registry's error messages.
//!
//! Blocking because callers run pushes and pulls from rayon/thread pools; one
//! `reqwest::blocking::Client` is shared so connections are pooled across calls and threads.

/// Credentials (docker config, credential helpers): part of the client, so it lives below it.
pub mod auth;
pub mod challenge;
pub mod client;
pub mod download;
pub mod reference;
mod retry;
mod upload;

pub use challenge::{Challenge, parse_www_authenticate};
pub use client::Client;
pub use reference::Reference;
