//! Pushing an image layout to a registry (rules_oci's `oci_push`): every blob the registry
//! does not have (HEAD first, so an unchanged image uploads nothing), in parallel; then the
//! manifest by digest; then the tags. Tags are set only after the image is complete, so a
//! failed push never leaves a tag pointing at a partial image.
//!
//! Within one ocib process, a blob uploaded to one repository is mounted into the others on the
//! same registry (`POST /v2/<to>/blobs/uploads/?mount=<digest>&from=<from>`, as crane and
//! Docker do): `ocib push //...` of fifty images on one base uploads the base once. Pushes
//! running at the same time wait for the upload another one started rather than sending the
//! same bytes twice.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use super::layout::{self, LayoutWriter};
use super::registry::{Client, Reference};
use super::spec::{self, Manifest, OCI_MANIFEST};

/// What one push did.
pub struct PushResult {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub blobs_uploaded: usize,
    /// Mounted from the repository a pulled base came from, instead of uploaded.
    pub blobs_mounted: usize,
    pub blobs_present: usize,
}

/// `registry/path` without tag or digest, as `oci_push`'s `repository` must be.
pub fn check_repository(repository: &str) -> Result<Reference> {
    let reference = Reference::parse(repository).with_context(|| format!("repository '{repository}'"))?;
    if reference.tag.is_some() || reference.digest.is_some() {
        bail!("repository '{repository}' must not contain a tag or digest; use remote_tags or --tag");
    }
    Ok(reference)
}

/// Where a blob went in this process, per registry and digest.
enum Slot {
    /// A push is uploading it to this repository now.
    Uploading,
    /// It is in this repository.
    In(String),
}

/// The blobs this process has sent, so later pushes to the same registry mount them.
#[derive(Default)]
struct SharedBlobs {
    slots: Mutex<HashMap<(String, String), Slot>>,
    changed: Condvar,
}

/// What a push should do with a blob the target repository lacks.
enum Plan {
    /// Upload it (this push claimed it, or mounting failed).
    Upload { claimed: bool },
    /// Mount it from this repository of the same registry.
    Mount(String),
}

impl SharedBlobs {
    fn get() -> &'static SharedBlobs {
        static SHARED: OnceLock<SharedBlobs> = OnceLock::new();
        SHARED.get_or_init(SharedBlobs::default)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the upload of `digest` to `registry`, or names the repository to mount it from
    /// (waiting while another push uploads it).
    fn plan(&self, registry: &str, digest: &str) -> Plan {
        let key = (registry.to_owned(), digest.to_owned());
        let mut slots = self.lock();
        loop {
            match slots.get(&key) {
                None => {
                    slots.insert(key, Slot::Uploading);
                    return Plan::Upload { claimed: true };
                }
                Some(Slot::In(repo)) => return Plan::Mount(repo.clone()),
                Some(Slot::Uploading) => slots = self.changed.wait(slots).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Records where the blob now is (`None`: the claimed upload failed, another push may try).
    fn done(&self, registry: &str, digest: &str, repo: Option<&str>) {
        let key = (registry.to_owned(), digest.to_owned());
        let mut slots = self.lock();
        match repo {
            Some(r) => {
                slots.insert(key, Slot::In(r.to_owned()));
            }
            None => {
                if matches!(slots.get(&key), Some(Slot::Uploading)) {
                    slots.remove(&key);
                }
            }
        }
        self.changed.notify_all();
    }
}

/// Pushes the image (or index) in `layout_dir` to `repository`, then tags it.
pub fn push(client: &Client, layout_dir: &Path, repository: &str, tags: &[String]) -> Result<PushResult> {
    let reference = check_repository(repository)?;
    let (registry, repo) = (reference.registry.as_str(), reference.repository.as_str());
    let index = layout::read_index(layout_dir)?;
    let top = index.manifests.first().with_context(|| format!("{}/index.json names no manifest", layout_dir.display()))?;
    let top_digest = top.digest.clone();
    // A descriptor without a media type is taken to be an image manifest, as crane does.
    let top_type = top.media_type.clone().unwrap_or_else(|| OCI_MANIFEST.to_owned());
    let blob = |d: &str| layout::blob_path(layout_dir, d);

    // The manifests to put (children before a parent index) and the blobs they reference.
    let mut manifests: Vec<(String, String)> = Vec::new();
    let mut blobs: Vec<String> = Vec::new();
    let mut pending = vec![(top_digest.clone(), top_type.clone())];
    while let Some((digest, media_type)) = pending.pop() {
        let path = blob(&digest)?;
        let bytes = layout::read_capped(&path, layout::MAX_MANIFEST_BYTES).with_context(|| format!("reading {}", path.display()))?;
        match Manifest::parse(&bytes).with_context(|| format!("{}", path.display()))? {
            Manifest::Index(index) => {
                for child in index.manifests {
                    pending.push((child.digest, child.media_type.unwrap_or_else(|| OCI_MANIFEST.to_owned())));
                }
            }
            Manifest::Image(manifest) => {
                blobs.push(manifest.config.digest);
                blobs.extend(manifest.layers.into_iter().map(|l| l.digest));
            }
        }
        manifests.push((digest, media_type));
    }
    blobs.sort();
    blobs.dedup();
    let origins = layout::read_origins(layout_dir);
    #[derive(PartialEq)]
    enum Sent {
        Present,
        Mounted,
        Uploaded,
    }
    let send = |d: &String| -> Result<Sent> {
        if client.blob_exists(registry, repo, d)? {
            return Ok(Sent::Present);
        }
        // A blob of a pulled base on this registry is mounted from where it came from.
        if let Some(from) = origins.get(d).and_then(|o| Reference::parse(o).ok())
            && from.registry == registry
            && from.repository != repo
            && client.mount_blob(registry, repo, d, &from.repository)?
        {
            return Ok(Sent::Mounted);
        }
        let shared = SharedBlobs::get();
        let claimed = match shared.plan(registry, d) {
            Plan::Mount(from) if from != repo => {
                if client.mount_blob(registry, repo, d, &from)? {
                    shared.done(registry, d, Some(repo));
                    return Ok(Sent::Mounted);
                }
                false
            }
            Plan::Mount(_) => false,
            Plan::Upload { claimed } => claimed,
        };
        let uploaded = blob(d).and_then(|path| client.upload_blob(registry, repo, d, &path));
        if claimed || uploaded.is_ok() {
            shared.done(registry, d, uploaded.as_ref().ok().map(|_| repo));
        }
        uploaded?;
        Ok(Sent::Uploaded)
    };
    let sent: Vec<Result<Sent>> = blobs.par_iter().map(send).collect();
    let (mut uploaded, mut mounted) = (0, 0);
    for s in sent {
        match s? {
            Sent::Uploaded => uploaded += 1,
            Sent::Mounted => mounted += 1,
            Sent::Present => {}
        }
    }
    // Children first: the top manifest (pushed by digest) last.
    for (digest, media_type) in manifests.iter().rev() {
        let body = std::fs::read(blob(digest)?)?;
        client.put_manifest(registry, repo, digest, media_type, &body)?;
    }
    let top_body = std::fs::read(blob(&top_digest)?)?;
    for tag in tags {
        client.put_manifest(registry, repo, tag, &top_type, &top_body).with_context(|| format!("tagging {tag}"))?;
    }
    Ok(PushResult {
        repository: format!("{registry}/{repo}"),
        digest: top_digest,
        tags: tags.to_vec(),
        blobs_uploaded: uploaded,
        blobs_mounted: mounted,
        blobs_present: blobs.len() - uploaded - mounted,
    })
}

/// Fetches an image into an OCI layout directory: the manifest (the platform's one from an
/// index), its config and layers, each verified by digest.
pub fn pull(client: &Client, image: &Reference, platform: Option<&str>, dest: &Path) -> Result<()> {
    let writer = LayoutWriter::create(dest)?;
    let (registry, repo) = (image.registry.as_str(), image.repository.as_str());
    let reference = image.digest.clone().or_else(|| image.tag.clone()).context("an image to pull needs a digest or a tag")?;
    let (mut media_type, mut body, mut digest) = client.get_manifest(registry, repo, &reference)?;
    let mut parsed = Manifest::parse(&body).with_context(|| format!("manifest of {registry}/{repo}:{reference}"))?;
    if let Manifest::Index(index) = &parsed {
        let want = platform.unwrap_or("linux/amd64");
        let entry = index
            .manifests
            .iter()
            .find(|e| e.platform.as_ref().is_some_and(|p| p.matches(want)))
            .with_context(|| format!("{registry}/{repo}:{reference} has no image for {want}"))?;
        (media_type, body, digest) = client.get_manifest(registry, repo, &entry.digest)?;
        parsed = Manifest::parse(&body).with_context(|| format!("manifest of {registry}/{repo}@{}", entry.digest))?;
    }
    let Manifest::Image(manifest) = parsed else {
        bail!("{registry}/{repo}:{reference}: the platform's entry is itself an image index");
    };
    let mut wanted = vec![manifest.config.digest];
    wanted.extend(manifest.layers.into_iter().map(|l| l.digest));
    for d in &wanted {
        client.get_blob(registry, repo, d, &layout::blob_path(dest, d)?)?;
    }
    let written = writer.write_blob(&body)?;
    if written != digest {
        bail!("manifest of {registry}/{repo} has digest {written}, expected {digest}");
    }
    let origin = format!("{registry}/{repo}");
    layout::write_origins(dest, &wanted.iter().map(|d| (d.clone(), origin.clone())).collect())?;
    writer.write_index(&spec::layout_index(&media_type, &digest, body.len() as u64))?;
    Ok(())
}
