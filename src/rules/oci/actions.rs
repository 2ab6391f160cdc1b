//! Image actions: layer descriptors, `oci_image`, `oci_image_index`, tarballs, and the small
//! helpers rules_oci's macros use (`directory_path` + copy, `jq` for `.digest`).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::image_config::{self, ImageSpec, NewLayer};
use crate::exec::{ActionContext, InProcess};
use crate::oci::base_tarball::unpack_base;
use crate::oci::layout::{Layout, LayoutWriter};
use crate::oci::sink::HashedFile;
use crate::oci::spec::{self, Compression, Descriptor, OCI_INDEX, OCI_MANIFEST, canonical_json, digest_hex};
use crate::oci::tarball;

/// What a layer descriptor file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerDescriptor {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub compression: String,
}

/// Computes a layer's digest and diff_id once per layer content (rules_oci's OCIDescriptor):
/// the digest is the file's content digest, already known; only a compressed layer is read,
/// to hash its decompressed bytes.
#[derive(Serialize, Deserialize)]
pub struct DescribeLayer {
    pub tar: String,
    pub out: String,
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    }
}

fn compression_from(name: &str) -> Compression {
    match name {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        _ => Compression::None,
    }
}

impl InProcess for DescribeLayer {
    fn kind(&self) -> &'static str {
        "DescribeLayer"
    }

    fn scratch_free(&self) -> bool {
        true
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let path = ctx.input(&self.tar)?.clone();
        // A built tar's sha256 is known from its action; a source tar (`tars = ["layer.tar"]`)
        // is hashed here (source digests in keys are BLAKE3, not OCI digests).
        let hex = match ctx.input_digests.get(&self.tar) {
            Some(hex) => hex.clone(),
            None => crate::exec::digest::file_sha256(&path).with_context(|| format!("reading layer {}", self.tar))?.0,
        };
        let size = std::fs::metadata(&path)?.len();
        let mut head = [0u8; 4];
        let n = std::fs::File::open(&path)?.read(&mut head)?;
        let compression = spec::sniff_compression(&head[..n]);
        let diff_id = match compression {
            Compression::None => hex.clone(),
            Compression::Gzip => {
                let file = std::fs::File::open(&path)?;
                let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file));
                crate::exec::digest::reader_sha256(&mut decoder).with_context(|| format!("decompressing layer {}", self.tar))?.0
            }
            Compression::Zstd => bail!("layer {}: zstd-compressed layers are not supported yet", self.tar),
        };
        let desc = LayerDescriptor {
            digest: format!("sha256:{hex}"),
            diff_id: format!("sha256:{diff_id}"),
            size,
            compression: compression_name(compression).into(),
        };
        std::fs::write(ctx.output(&self.out)?, serde_json::to_vec(&desc)?)?;
        Ok(())
    }
}

/// Where an image's base comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BaseRef {
    /// An OCI layout directory (another oci_image, or a pulled image).
    Layout(String),
    /// A `docker save` tarball or an OCI-layout tarball (beyond rules_oci, #700/#413).
    Tarball(String),
}

/// Whether the input at `exec_path` is ocib's own file: a derived file (placed from the CAS, so
/// its digest is known), not one of the user's source files. Only those may be hardlinked into
/// a layout, whose files the CAS then makes read-only (a chmod of the shared inode).
fn is_derived(ctx: &ActionContext, exec_path: &str) -> bool {
    ctx.input_digests.contains_key(exec_path)
}

/// The files of oci_image's file attributes (exec paths), as rules_oci's macro writes them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageFiles {
    pub entrypoint: Option<String>,
    pub cmd: Option<String>,
    pub env: Option<String>,
    pub labels: Option<String>,
    pub annotations: Option<String>,
    pub exposed_ports: Option<String>,
    pub volumes: Option<String>,
    pub created: Option<String>,
}

/// `oci_image`: a layout directory with the base's blobs, the new layers (hardlinked, never
/// copied) and a new config and manifest.
#[derive(Serialize, Deserialize)]
pub struct BuildImage {
    pub label: String,
    pub base: Option<BaseRef>,
    /// (tar exec path, descriptor exec path, tar label for history).
    pub layers: Vec<(String, String, String)>,
    pub files: ImageFiles,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    pub out_dir: String,
    pub digest_out: String,
}

fn read_text(ctx: &ActionContext, exec_path: &Option<String>) -> Result<Option<String>> {
    match exec_path {
        Some(p) => Ok(Some(std::fs::read_to_string(ctx.input(p)?).with_context(|| format!("reading {p}"))?)),
        None => Ok(None),
    }
}

impl InProcess for BuildImage {
    fn kind(&self) -> &'static str {
        "BuildImage"
    }

    /// Only a base given as a tarball needs scratch space (it is unpacked there); otherwise the
    /// layout is written straight into the output directory.
    fn scratch_free(&self) -> bool {
        !matches!(self.base, Some(BaseRef::Tarball(_)))
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let out_dir = ctx.output(&self.out_dir)?.clone();
        let writer = LayoutWriter::create(&out_dir)?;
        // The base as a layout directory, and its exec path when it is an input (a tarball is
        // unpacked into this action's own scratch directory).
        let base_work = ctx.exec_root.join("_base");
        let (base_dir, base_input) = match &self.base {
            Some(BaseRef::Layout(dir)) => (Some(ctx.input(dir)?.clone()), Some(dir.as_str())),
            Some(BaseRef::Tarball(tar)) => {
                let layout_dir = base_work.join("layout");
                unpack_base(ctx.input(tar)?, tar, &base_work.join("members"), &layout_dir)?;
                (Some(layout_dir), None)
            }
            None => (None, None),
        };
        let base = match &base_dir {
            Some(dir) => {
                let layout = Layout::read(dir).with_context(|| format!("reading the base image {}", dir.display()))?;
                // The base's blobs are linked, not copied, when they are ocib's (a built or
                // pulled layout's, or unpacked from a tarball here).
                for d in &layout.blob_digests() {
                    let owned = match base_input {
                        Some(dir) => is_derived(ctx, &format!("{dir}/blobs/sha256/{}", digest_hex(d)?)),
                        None => true,
                    };
                    writer.add_blob(d, &layout.blob_path(d)?, owned)?;
                }
                Some(layout)
            }
            None => None,
        };
        // Where the base's blobs can be mounted from, carried into this image.
        if let Some(dir) = &base_dir {
            crate::oci::layout::write_origins(&out_dir, &crate::oci::layout::read_origins(dir))?;
        }
        // The unpacked tarball is no longer needed; removing it leaves the layout's blobs with
        // one link each, so storing them moves them into the CAS instead of copying them.
        if matches!(self.base, Some(BaseRef::Tarball(_))) && base_work.exists() {
            std::fs::remove_dir_all(&base_work).with_context(|| format!("removing {}", base_work.display()))?;
        }
        let f = &self.files;
        let spec = ImageSpec {
            entrypoint: read_text(ctx, &f.entrypoint)?.map(|t| image_config::parse_lines(&t)),
            cmd: read_text(ctx, &f.cmd)?.map(|t| image_config::parse_lines(&t)),
            env: read_text(ctx, &f.env)?.map(|t| image_config::parse_key_values(&t)).transpose()?.unwrap_or_default(),
            labels: read_text(ctx, &f.labels)?.map(|t| image_config::parse_key_values(&t)).transpose()?.unwrap_or_default(),
            annotations: read_text(ctx, &f.annotations)?.map(|t| image_config::parse_key_values(&t)).transpose()?.unwrap_or_default(),
            exposed_ports: read_text(ctx, &f.exposed_ports)?.map(|t| image_config::parse_comma_list(&t)).unwrap_or_default(),
            volumes: read_text(ctx, &f.volumes)?.map(|t| image_config::parse_comma_list(&t)).unwrap_or_default(),
            user: self.user.clone(),
            workdir: self.workdir.clone(),
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
            created: read_text(ctx, &f.created)?,
        };
        let mut layers = Vec::new();
        for (tar, descriptor, created_by) in &self.layers {
            let desc: LayerDescriptor = serde_json::from_slice(&std::fs::read(ctx.input(descriptor)?)?)
                .with_context(|| format!("reading layer descriptor {descriptor}"))?;
            // A vendored (source) tar is copied: linking would make the user's file read-only.
            writer.add_blob(&desc.digest, ctx.input(tar)?, is_derived(ctx, tar))?;
            layers.push(NewLayer {
                digest: desc.digest,
                diff_id: desc.diff_id,
                size: desc.size,
                compression: compression_from(&desc.compression),
                created_by: format!("bazel build {created_by}"),
            });
        }
        let config = image_config::build_config(base.as_ref().map(|b| &b.config), &spec, &layers).with_context(|| self.label.clone())?;
        let config_bytes = canonical_json(&config)?;
        let config_digest = writer.write_blob(&config_bytes)?;
        let manifest = image_config::build_manifest(
            base.as_ref().map(|b| &b.manifest_json),
            &config_digest,
            config_bytes.len() as u64,
            &layers,
            &spec.annotations,
        )?;
        let manifest_bytes = canonical_json(&manifest)?;
        let manifest_digest = writer.write_blob(&manifest_bytes)?;
        let media_type = manifest.get("mediaType").and_then(Value::as_str).unwrap_or(OCI_MANIFEST).to_owned();
        writer.write_index(&spec::layout_index(&media_type, &manifest_digest, manifest_bytes.len() as u64))?;
        std::fs::write(ctx.output(&self.digest_out)?, format!("{manifest_digest}\n"))?;
        Ok(())
    }
}

/// `oci_image_index`: one index over several images, every blob linked into one layout.
#[derive(Serialize, Deserialize)]
pub struct BuildIndex {
    pub images: Vec<String>,
    pub annotations: Option<String>,
    pub out_dir: String,
}

impl InProcess for BuildIndex {
    fn kind(&self) -> &'static str {
        "BuildIndex"
    }

    fn scratch_free(&self) -> bool {
        true
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let writer = LayoutWriter::create(&ctx.output(&self.out_dir)?.clone())?;
        let mut entries = Vec::new();
        for dir in &self.images {
            let layout = Layout::read(ctx.input(dir)?).with_context(|| format!("reading image {dir}"))?;
            for d in &layout.blob_digests() {
                let owned = is_derived(ctx, &format!("{dir}/blobs/sha256/{}", digest_hex(d)?));
                writer.add_blob(d, &layout.blob_path(d)?, owned)?;
            }
            let size = std::fs::metadata(layout.blob_path(&layout.manifest_digest)?)?.len();
            entries.push((Descriptor::new(&layout.manifest_media_type, &layout.manifest_digest, size), layout.config.clone()));
        }
        let annotations = match &self.annotations {
            Some(p) => image_config::parse_key_values(&std::fs::read_to_string(ctx.input(p)?)?)?,
            None => vec![],
        };
        let index = image_config::build_image_index(&entries, &annotations);
        let bytes = canonical_json(&index)?;
        let digest = writer.write_blob(&bytes)?;
        writer.write_index(&spec::layout_index(OCI_INDEX, &digest, bytes.len() as u64))?;
        Ok(())
    }
}

/// A `docker load` (or OCI-layout) tarball of an image layout.
#[derive(Serialize, Deserialize)]
pub struct WriteTarball {
    pub image: String,
    pub repo_tags: String,
    pub format: String,
    pub out: String,
}

impl InProcess for WriteTarball {
    fn kind(&self) -> &'static str {
        "WriteTarball"
    }

    fn scratch_free(&self) -> bool {
        true
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let layout = Layout::read(ctx.input(&self.image)?).with_context(|| format!("reading image {}", self.image))?;
        let tags = tarball::parse_repo_tags(&std::fs::read_to_string(ctx.input(&self.repo_tags)?)?);
        let out = ctx.output(&self.out)?.clone();
        // Blobs copied by `copy_file_range` and the tarball hashed while it is written (on
        // another thread), so storing it in the CAS does not read it back.
        let mut w = HashedFile::create(&out).with_context(|| format!("creating {}", out.display()))?;
        match self.format.as_str() {
            "oci" => tarball::write_oci_tarball(&layout, &tags, &mut w)?,
            _ => tarball::write_docker_tarball(&layout, &tags, &mut w)?,
        }
        let (_, digest) = w.finish().with_context(|| format!("writing {}", out.display()))?;
        ctx.output_digests.insert(self.out.clone(), digest);
        Ok(())
    }
}

/// A file inside a directory output, copied out (rules_oci's `<name>_index_json_cp`).
#[derive(Serialize, Deserialize)]
pub struct CopyFromDirectory {
    pub dir: String,
    pub path: String,
    pub out: String,
}

impl InProcess for CopyFromDirectory {
    fn kind(&self) -> &'static str {
        "CopyFromDirectory"
    }

    fn scratch_free(&self) -> bool {
        true
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let src: PathBuf = ctx.input(&self.dir)?.join(&self.path);
        std::fs::copy(&src, ctx.output(&self.out)?).with_context(|| format!("copying {}/{}", self.dir, self.path))?;
        Ok(())
    }
}

/// The subset of `jq` rules_oci uses (`.digest`'s `.manifests[0].digest` with `--raw-output`):
/// a path of fields and indexes.
#[derive(Serialize, Deserialize)]
pub struct JqPath {
    pub src: String,
    pub filter: String,
    pub raw: bool,
    pub out: String,
}

/// Evaluates a jq path such as `.manifests[0].digest`.
pub fn jq_path<'v>(value: &'v Value, filter: &str) -> Result<&'v Value> {
    let mut cur = value;
    let mut rest = filter.trim();
    if rest == "." {
        return Ok(cur);
    }
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| anyhow!("jq filter '{filter}': unclosed '['"))?;
            let idx: usize = r[..end].trim().parse().map_err(|_| anyhow!("jq filter '{filter}': only numeric indexes are supported"))?;
            cur = cur.get(idx).unwrap_or(&Value::Null);
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || key.is_empty() {
                bail!("jq filter '{filter}' is not supported by ocib (only paths like .a[0].b are)");
            }
            cur = cur.get(key).unwrap_or(&Value::Null);
            rest = &r[end..];
        } else {
            bail!("jq filter '{filter}' is not supported by ocib (only paths like .a[0].b are)");
        }
    }
    Ok(cur)
}

impl InProcess for JqPath {
    fn kind(&self) -> &'static str {
        "JqPath"
    }

    fn scratch_free(&self) -> bool {
        true
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let value: Value =
            serde_json::from_slice(&std::fs::read(ctx.input(&self.src)?)?).with_context(|| format!("parsing {}", self.src))?;
        let result = jq_path(&value, &self.filter)?;
        let text = match (result, self.raw) {
            (Value::String(s), true) => format!("{s}\n"),
            (v, _) => format!("{}\n", serde_json::to_string_pretty(v)?),
        };
        std::fs::write(ctx.output(&self.out)?, text)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jq_paths() {
        let v: Value = serde_json::json!({"manifests": [{"digest": "sha256:abc"}]});
        assert_eq!(jq_path(&v, ".manifests[0].digest").unwrap(), "sha256:abc");
        assert!(jq_path(&v, ".manifests | length").is_err());
        assert_eq!(jq_path(&v, ".nope").unwrap(), &Value::Null);
    }
}

/// Fetches an `oci_pull` image into a layout directory (by digest when one is given, so the
/// result is reproducible and the action key never goes stale).
#[derive(Serialize, Deserialize)]
pub struct PullImage {
    pub reference: String,
    pub platform: Option<String>,
    pub out_dir: String,
}

impl InProcess for PullImage {
    fn kind(&self) -> &'static str {
        "PullImage"
    }

    fn remotable(&self) -> bool {
        false
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let reference = crate::oci::registry::Reference::parse(&self.reference)?;
        let client = crate::oci::registry::Client::new(&[])?;
        let dest = ctx.output(&self.out_dir)?.clone();
        crate::oci::push::pull(&client, &reference, self.platform.as_deref(), &dest)
    }
}
