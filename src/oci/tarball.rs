//! Tarballs of a single-image OCI layout, as rules_oci's `oci_load` (`oci_tarball` in 1.x) builds
//! them: the `docker load` format (the default, `format = "docker"`) and an OCI-layout tarball
//! (`format = "oci"`).
//!
//! rules_oci writes an mtree spec in `oci/private/tarball.sh.tpl` and lets bsdtar turn it into the
//! tar. We copy what that produces rather than how: the same members in the same order, every one
//! a regular file with `uid=0 gid=0 mode=0755 time=1672560000` and no user/group names, and no
//! directory entries (the mtree lists none, so bsdtar writes none; `docker load` creates parent
//! directories itself). The JSON members are our own compact, key-sorted serialisation; rules_oci's
//! jq pretty-prints them, but no consumer depends on the formatting.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Modification time of every member: 2023-01-01T08:00:00Z, rules_oci's mtree `time=`.
const MTIME: u64 = 1_672_560_000;
/// Permission bits of every member, rules_oci's mtree `mode=`.
const MODE: u32 = 0o755;

use super::spec::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
/// The annotation containerd (and `docker load` with the containerd image store) reads the image
/// name from in an OCI-layout tarball.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Largest index.json, `oci-layout` or image manifest read. The OCI distribution spec lets
/// registries refuse manifests over 4 MiB, and containerd and CNCF distribution do; a larger one
/// (or a file such as `/dev/zero` standing in for one) is refused before it is read.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest image config read. Configs are small JSON too (history and env grow them, not to
/// megabytes); the bound is generous, and there to stop a huge file from being read into memory.
pub const MAX_CONFIG_BYTES: u64 = 32 << 20;

/// An OCI image layout directory (oci-layout, index.json, blobs/sha256/...) read back: the single
/// manifest index.json names.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub index: Value,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub manifest: Value,
    pub config_digest: String,
    pub config: Value,
    pub layer_digests: Vec<String>,
}

impl Layout {
    /// Reads and checks the layout in `dir`.
    ///
    /// Like rules_oci, `index.json` must name exactly one manifest. An image index (multi-platform)
    /// is rejected here because it has no single config and layer list; callers that accept
    /// indexes handle them before getting here. The manifest and config blobs are checked against
    /// their digests (they are small), and every layer blob must exist, so that a broken layout
    /// fails before any tarball bytes are written to a stream that may already be `docker load`.
    pub fn read(dir: &Path) -> Result<Layout> {
        let layout_file = dir.join("oci-layout");
        let layout_marker = read_json(&layout_file, MAX_MANIFEST_BYTES)?;
        ensure!(
            layout_marker
                .get("imageLayoutVersion")
                .is_some_and(Value::is_string),
            "{}: not an OCI layout marker (no \"imageLayoutVersion\" string)",
            layout_file.display()
        );

        let index_file = dir.join("index.json");
        let index = read_json(&index_file, MAX_MANIFEST_BYTES)?;
        let manifests = index
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("{}: no \"manifests\" array", index_file.display()))?;
        ensure!(
            manifests.len() == 1,
            "{}: expected exactly one entry in \"manifests\", found {}",
            index_file.display(),
            manifests.len()
        );
        let descriptor = &manifests[0];
        let manifest_media_type = string_field(descriptor, "mediaType")
            .with_context(|| format!("{}: manifests[0]", index_file.display()))?;
        let manifest_digest = string_field(descriptor, "digest")
            .with_context(|| format!("{}: manifests[0]", index_file.display()))?;
        match manifest_media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => {}
            OCI_INDEX | DOCKER_MANIFEST_LIST => bail!(
                "{}: manifests[0] is an image index ({manifest_media_type}), i.e. a multi-platform \
                 image; a single-image tarball needs an image manifest",
                index_file.display()
            ),
            other => bail!(
                "{}: manifests[0] has unsupported media type {other:?} (expected {OCI_MANIFEST} \
                 or {DOCKER_MANIFEST})",
                index_file.display()
            ),
        }

        let manifest_file = blob_path_in(dir, &manifest_digest)
            .with_context(|| format!("{}: manifests[0].digest", index_file.display()))?;
        let manifest = read_verified_json(&manifest_file, &manifest_digest, MAX_MANIFEST_BYTES)?;
        if let Some(own) = manifest.get("mediaType").and_then(Value::as_str) {
            ensure!(
                own == manifest_media_type,
                "{}: manifest says mediaType {own:?} but index.json says {manifest_media_type:?}",
                manifest_file.display()
            );
        }

        let config_descriptor = manifest
            .get("config")
            .ok_or_else(|| anyhow!("{}: no \"config\" descriptor", manifest_file.display()))?;
        let config_digest = string_field(config_descriptor, "digest")
            .with_context(|| format!("{}: config", manifest_file.display()))?;
        let config_file = blob_path_in(dir, &config_digest)
            .with_context(|| format!("{}: config.digest", manifest_file.display()))?;
        let config = read_verified_json(&config_file, &config_digest, MAX_CONFIG_BYTES)?;

        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("{}: no \"layers\" array", manifest_file.display()))?;
        let mut layer_digests = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let digest = string_field(layer, "digest")
                .with_context(|| format!("{}: layers[{i}]", manifest_file.display()))?;
            let path = blob_path_in(dir, &digest)
                .with_context(|| format!("{}: layers[{i}].digest", manifest_file.display()))?;
            // metadata() follows symlinks: rules_oci layouts link blobs to the layer tars.
            let meta = std::fs::metadata(&path)
                .with_context(|| format!("missing layer blob {}", path.display()))?;
            ensure!(meta.is_file(), "layer blob {} is not a regular file", path.display());
            layer_digests.push(digest);
        }

        Ok(Layout {
            dir: dir.to_path_buf(),
            index,
            manifest_digest,
            manifest_media_type,
            manifest,
            config_digest,
            config,
            layer_digests,
        })
    }

    /// Where the blob with `digest` lives in this layout; fails unless `digest` is
    /// `sha256:<64 lowercase hex>` (which also keeps the path inside `blobs/sha256/`).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        blob_path_in(&self.dir, digest)
    }

    /// The `size` the manifest (or index.json) declares for `digest`, if any, so that writers can
    /// refuse a blob whose file does not match.
    fn declared_size(&self, digest: &str) -> Option<u64> {
        let manifest_descriptor = self.index.get("manifests").and_then(|m| m.get(0));
        let config_descriptor = self.manifest.get("config");
        let layer_descriptors = self.manifest.get("layers").and_then(Value::as_array);
        manifest_descriptor
            .into_iter()
            .chain(config_descriptor)
            .chain(layer_descriptors.into_iter().flatten())
            .find(|d| d.get("digest").and_then(Value::as_str) == Some(digest))
            .and_then(|d| d.get("size"))
            .and_then(Value::as_u64)
    }
}

/// `docker load` format (rules_oci's default `format = "docker"`): `blobs/sha256/<config hex>`,
/// then `blobs/sha256/<layer hex>.tar.gz` for each distinct layer in manifest order, then
/// `manifest.json` = `[{"Config":…,"Layers":[…],"RepoTags":[…]}]`.
///
/// The `.tar.gz` suffix is used even for uncompressed or zstd layers because that is what
/// rules_oci writes and docker sniffs the compression from the bytes anyway. A layer listed twice
/// is stored once but appears twice in `Layers`, so the layer stack is unchanged. Layers are
/// streamed from their blob files, never held in memory.
pub fn write_docker_tarball(layout: &Layout, repo_tags: &[String], out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);

    let config_hex = digest_hex(&layout.config_digest)?;
    let config_name = format!("blobs/sha256/{config_hex}");
    append_blob(&mut tar, layout, &layout.config_digest, &config_name)?;

    let mut written = HashSet::new();
    let mut layer_names = Vec::with_capacity(layout.layer_digests.len());
    for digest in &layout.layer_digests {
        let name = format!("blobs/sha256/{}.tar.gz", digest_hex(digest)?);
        if written.insert(digest.as_str()) {
            append_blob(&mut tar, layout, digest, &name)?;
        }
        layer_names.push(Value::String(name));
    }

    // Keys in sorted order (preserve_order keeps insertion order).
    let mut entry = Map::new();
    entry.insert("Config".to_owned(), Value::String(config_name));
    entry.insert("Layers".to_owned(), Value::Array(layer_names));
    entry.insert("RepoTags".to_owned(), string_array(repo_tags));
    let manifest_json = serde_json::to_vec(&Value::Array(vec![Value::Object(entry)]))?;
    append_bytes(&mut tar, "manifest.json", &manifest_json)?;

    finish(tar)
}

/// `format = "oci"`: an OCI-layout tarball: `oci-layout`, the manifest, config and layer blobs
/// under `blobs/sha256/` (each once, in that order), then `index.json`.
///
/// As in rules_oci, `index.json` is the layout's own with its manifest entry repeated once per
/// repo tag, each copy carrying `org.opencontainers.image.ref.name=<tag>` on top of any existing
/// annotations; with no tags the entry is kept once, unannotated, so the tarball still loads (as
/// an unnamed image) instead of describing no image at all.
pub fn write_oci_tarball(layout: &Layout, repo_tags: &[String], out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);

    let marker = layout.dir.join("oci-layout");
    append_file(&mut tar, &marker, "oci-layout", None)?;

    let mut written = HashSet::new();
    let blobs = [&layout.manifest_digest, &layout.config_digest]
        .into_iter()
        .chain(&layout.layer_digests);
    for digest in blobs {
        if written.insert(digest.as_str()) {
            let name = format!("blobs/sha256/{}", digest_hex(digest)?);
            append_blob(&mut tar, layout, digest, &name)?;
        }
    }

    let index_json = serde_json::to_vec(&sorted_keys(&tagged_index(layout, repo_tags)?))?;
    append_bytes(&mut tar, "index.json", &index_json)?;

    finish(tar)
}

/// repo_tags file (rules_oci): whitespace-separated tags.
///
/// rules_oci reads it with an unquoted `$(cat tags)`, so any run of spaces, tabs or (CR)LF
/// separates tags and empty lines are ignored.
pub fn parse_repo_tags(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// The layout's index.json with its single manifest entry repeated once per tag.
fn tagged_index(layout: &Layout, repo_tags: &[String]) -> Result<Value> {
    let mut index = layout.index.clone();
    let template = index
        .get("manifests")
        .and_then(|m| m.get(0))
        .cloned()
        .ok_or_else(|| anyhow!("{}/index.json: no manifest entry", layout.dir.display()))?;
    let manifests = if repo_tags.is_empty() {
        vec![template]
    } else {
        repo_tags
            .iter()
            .map(|tag| annotate(&template, tag))
            .collect::<Result<Vec<_>>>()?
    };
    let Some(object) = index.as_object_mut() else {
        bail!("{}/index.json: not a JSON object", layout.dir.display());
    };
    object.insert("manifests".to_owned(), Value::Array(manifests));
    Ok(index)
}

/// `descriptor` with `annotations[REF_NAME] = tag`, other annotations kept (jq's `*` merge).
fn annotate(descriptor: &Value, tag: &str) -> Result<Value> {
    let mut descriptor = descriptor.clone();
    let object = descriptor
        .as_object_mut()
        .ok_or_else(|| anyhow!("index.json manifest entry is not a JSON object"))?;
    let annotations = object
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    let annotations = annotations
        .as_object_mut()
        .ok_or_else(|| anyhow!("index.json manifest entry has non-object \"annotations\""))?;
    annotations.insert(REF_NAME.to_owned(), Value::String(tag.to_owned()));
    Ok(descriptor)
}

/// A copy of `value` with every object's keys in sorted order, so output never depends on the
/// key order of the input files (serde_json's preserve_order would otherwise keep it).
fn sorted_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let sorted = keys
                .into_iter()
                .map(|k| (k.clone(), sorted_keys(&map[k])))
                .collect::<Map<_, _>>();
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

fn string_array(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

/// The tar header every member gets: rules_oci's mtree attributes, ustar as bsdtar writes for
/// short names, empty user and group names.
fn header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(MODE);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = header(bytes.len() as u64);
    tar.append_data(&mut header, name, bytes)
        .with_context(|| format!("writing {name} to the tarball"))
}

fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    layout: &Layout,
    digest: &str,
    name: &str,
) -> Result<()> {
    let path = layout.blob_path(digest)?;
    append_file(tar, &path, name, layout.declared_size(digest))
}

/// Streams the file at `path` into the tarball as `name`. The header needs the size before the
/// data, so it comes from the file's metadata and the copy insists on exactly that many bytes: a
/// file that changes underneath us fails instead of producing a corrupt archive.
fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &str,
    expected_size: Option<u64>,
) -> Result<()> {
    let file = File::open(path).with_context(|| format!("missing blob {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("reading metadata of {}", path.display()))?
        .len();
    if let Some(expected) = expected_size {
        ensure!(
            size == expected,
            "{}: {size} bytes but its descriptor says {expected}",
            path.display()
        );
    }
    let mut header = header(size);
    let data = ExactReader {
        inner: file.take(size),
        remaining: size,
    };
    tar.append_data(&mut header, name, data)
        .with_context(|| format!("writing {} to the tarball as {name}", path.display()))
}

/// A reader that fails with `UnexpectedEof` if it ends before `remaining` bytes were read.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "file shrank while being copied ({} bytes missing)",
                    self.remaining
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn finish<W: Write>(tar: tar::Builder<W>) -> Result<()> {
    let mut out = tar.into_inner().context("finishing the tarball")?;
    out.flush().context("flushing the tarball")?;
    Ok(())
}

/// `blobs/sha256/<hex>` under `dir`, after checking the digest's form.
fn blob_path_in(dir: &Path, digest: &str) -> Result<PathBuf> {
    Ok(dir.join("blobs").join("sha256").join(digest_hex(digest)?))
}

/// The hex part of `sha256:<64 lowercase hex>`. Anything else is rejected: other algorithms are
/// not used by the rules we replace, and an unchecked digest could name a path outside the layout.
fn digest_hex(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| anyhow!("invalid digest {digest:?}: expected \"sha256:<64 hex digits>\""))?;
    ensure!(
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "invalid digest {digest:?}: expected \"sha256:<64 lowercase hex digits>\""
    );
    Ok(hex)
}

fn string_field(value: &Value, key: &str) -> Result<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no {key:?} string"))
}

/// The bytes of the regular file `path`, refused (without reading them) above `limit`.
fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.len() > limit {
        return Err(io::Error::other(format!("{} bytes, more than the {limit}-byte limit", meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // take(): a file that grows after the check still stops at the limit.
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_json(path: &Path, limit: u64) -> Result<Value> {
    let bytes = read_capped(path, limit).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: malformed JSON", path.display()))
}

/// Reads a small JSON blob, checking that its bytes hash to `digest`.
fn read_verified_json(path: &Path, digest: &str, limit: u64) -> Result<Value> {
    let bytes = read_capped(path, limit).with_context(|| {
        let what = if path.exists() { "reading blob" } else { "missing blob" };
        format!("{what} {}", path.display())
    })?;
    let actual = format!("sha256:{}", sha256_hex(&bytes));
    ensure!(
        actual == digest,
        "{}: content hashes to {actual}, not {digest}",
        path.display()
    );
    serde_json::from_slice(&bytes).with_context(|| format!("{}: malformed JSON", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::json;

    /// A hand-built layout: a config, a gzip layer, a plain layer, a manifest, index.json and
    /// oci-layout. Keys of the JSON files are deliberately unsorted.
    struct Fixture {
        dir: tempfile::TempDir,
        config_hex: String,
        gz_hex: String,
        plain_hex: String,
        manifest_hex: String,
        gz_layer: Vec<u8>,
        plain_layer: Vec<u8>,
        config: Vec<u8>,
    }

    fn layer_tar(name: &str, contents: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, contents).unwrap();
        builder.into_inner().unwrap()
    }

    fn write_blob(dir: &Path, bytes: &[u8]) -> String {
        let hex = sha256_hex(bytes);
        std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        hex
    }

    fn fixture_with_layers(layer_order: &[usize]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        std::fs::write(
            root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();

        let plain_layer = layer_tar("etc/plain.txt", b"plain\n");
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&layer_tar("etc/gz.txt", b"gzip\n")).unwrap();
        let gz_layer = gz.finish().unwrap();
        let gz_hex = write_blob(root, &gz_layer);
        let plain_hex = write_blob(root, &plain_layer);

        let config = serde_json::to_vec(&json!({
            "os": "linux", "architecture": "amd64",
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .unwrap();
        let config_hex = write_blob(root, &config);

        let layer_descriptors = [
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "size": gz_layer.len(), "digest": format!("sha256:{gz_hex}")}),
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                   "size": plain_layer.len(), "digest": format!("sha256:{plain_hex}")}),
        ];
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "size": config.len(), "digest": format!("sha256:{config_hex}")},
            "layers": layer_order.iter().map(|&i| layer_descriptors[i].clone()).collect::<Vec<_>>(),
        }))
        .unwrap();
        let manifest_hex = write_blob(root, &manifest);
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "size": manifest.len(),
                           "digest": format!("sha256:{manifest_hex}")}],
        });
        std::fs::write(
            root.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();

        Fixture {
            dir,
            config_hex,
            gz_hex,
            plain_hex,
            manifest_hex,
            gz_layer,
            plain_layer,
            config,
        }
    }

    fn fixture() -> Fixture {
        fixture_with_layers(&[0, 1])
    }

    struct Member {
        name: String,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        kind: tar::EntryType,
        uname: Vec<u8>,
        gname: Vec<u8>,
        data: Vec<u8>,
    }

    fn members(tarball: &[u8]) -> Vec<Member> {
        let mut archive = tar::Archive::new(tarball);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.push(Member {
                name: entry.path().unwrap().to_str().unwrap().to_owned(),
                mode: header.mode().unwrap(),
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
                mtime: header.mtime().unwrap(),
                kind: header.entry_type(),
                uname: header.username_bytes().unwrap_or_default().to_vec(),
                gname: header.groupname_bytes().unwrap_or_default().to_vec(),
                data,
            });
        }
        out
    }

    fn assert_metadata(members: &[Member]) {
        for m in members {
            assert_eq!(m.mode, 0o755, "{}", m.name);
            assert_eq!((m.uid, m.gid), (0, 0), "{}", m.name);
            assert_eq!(m.mtime, 1_672_560_000, "{}", m.name);
            assert_eq!(m.kind, tar::EntryType::Regular, "{}", m.name);
            assert!(m.uname.is_empty() && m.gname.is_empty(), "{}", m.name);
        }
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn docker_tarball(layout: &Layout, repo_tags: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        write_docker_tarball(layout, repo_tags, &mut out).unwrap();
        out
    }

    fn oci_tarball(layout: &Layout, repo_tags: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        write_oci_tarball(layout, repo_tags, &mut out).unwrap();
        out
    }

    #[test]
    fn reads_layout() {
        let f = fixture();
        let layout = Layout::read(f.dir.path()).unwrap();
        assert_eq!(layout.manifest_digest, format!("sha256:{}", f.manifest_hex));
        assert_eq!(layout.manifest_media_type, OCI_MANIFEST);
        assert_eq!(layout.config_digest, format!("sha256:{}", f.config_hex));
        assert_eq!(layout.config["architecture"], "amd64");
        assert_eq!(
            layout.layer_digests,
            vec![
                format!("sha256:{}", f.gz_hex),
                format!("sha256:{}", f.plain_hex)
            ]
        );
        assert_eq!(
            layout.blob_path(&layout.config_digest).unwrap(),
            f.dir.path().join("blobs/sha256").join(&f.config_hex)
        );
    }

    #[test]
    fn docker_tarball_members_and_manifest() {
        let f = fixture();
        let layout = Layout::read(f.dir.path()).unwrap();
        let tarball = docker_tarball(&layout, &tags(&["example.com/app:1.0", "app:latest"]));
        let members = members(&tarball);
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let config_name = format!("blobs/sha256/{}", f.config_hex);
        let gz_name = format!("blobs/sha256/{}.tar.gz", f.gz_hex);
        let plain_name = format!("blobs/sha256/{}.tar.gz", f.plain_hex);
        assert_eq!(
            names,
            [&config_name, &gz_name, &plain_name, "manifest.json"]
        );
        assert_metadata(&members);
        assert_eq!(members[0].data, f.config);
        assert_eq!(members[1].data, f.gz_layer);
        assert_eq!(members[2].data, f.plain_layer);
        let expected = format!(
            r#"[{{"Config":"{config_name}","Layers":["{gz_name}","{plain_name}"],"RepoTags":["example.com/app:1.0","app:latest"]}}]"#
        );
        assert_eq!(
            String::from_utf8(members[3].data.clone()).unwrap(),
            expected
        );
        // The whole archive is headers plus 512-byte-padded data plus the end marker: ustar
        // headers, no extensions.
        assert_eq!(tarball.len() % 512, 0);
        assert_eq!(&tarball[257..265], b"ustar\x0000");
    }

    #[test]
    fn docker_tarball_without_tags() {
        let f = fixture();
        let layout = Layout::read(f.dir.path()).unwrap();
        let members = members(&docker_tarball(&layout, &[]));
        let manifest: Value = serde_json::from_slice(&members[3].data).unwrap();
        assert_eq!(manifest[0]["RepoTags"], json!([]));
    }

    #[test]
    fn duplicate_layer_written_once_listed_twice() {
        let f = fixture_with_layers(&[0, 1, 0]);
        let layout = Layout::read(f.dir.path()).unwrap();
        let docker = members(&docker_tarball(&layout, &tags(&["app:dup"])));
        let gz_name = format!("blobs/sha256/{}.tar.gz", f.gz_hex);
        let plain_name = format!("blobs/sha256/{}.tar.gz", f.plain_hex);
        let names: Vec<&str> = docker.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), 4);
        assert_eq!(names[1..], [&gz_name, &plain_name, "manifest.json"]);
        let manifest: Value = serde_json::from_slice(&docker[3].data).unwrap();
        assert_eq!(manifest[0]["Layers"], json!([gz_name, plain_name, gz_name]));

        let oci = members(&oci_tarball(&layout, &[]));
        assert_eq!(
            oci.len(),
            6,
            "oci-layout, manifest, config, 2 layers, index.json"
        );
    }

    #[test]
    fn oci_tarball_members_and_index() {
        let f = fixture();
        let layout = Layout::read(f.dir.path()).unwrap();
        let members = members(&oci_tarball(&layout, &tags(&["app:1", "app:2"])));
        let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
        assert_eq!(
            names,
            [
                "oci-layout".to_owned(),
                format!("blobs/sha256/{}", f.manifest_hex),
                format!("blobs/sha256/{}", f.config_hex),
                format!("blobs/sha256/{}", f.gz_hex),
                format!("blobs/sha256/{}", f.plain_hex),
                "index.json".to_owned(),
            ]
        );
        assert_metadata(&members);
        assert_eq!(members[0].data, br#"{"imageLayoutVersion":"1.0.0"}"#);
        assert_eq!(members[2].data, f.config);
        assert_eq!(members[3].data, f.gz_layer);
        assert_eq!(members[4].data, f.plain_layer);
        let manifest_blob =
            std::fs::read(f.dir.path().join("blobs/sha256").join(&f.manifest_hex)).unwrap();
        assert_eq!(members[1].data, manifest_blob);
        let size = manifest_blob.len();
        let digest = format!("sha256:{}", f.manifest_hex);
        let entry = |tag: &str| {
            format!(
                r#"{{"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}},"digest":"{digest}","mediaType":"{OCI_MANIFEST}","size":{size}}}"#
            )
        };
        let expected = format!(
            r#"{{"manifests":[{},{}],"mediaType":"{OCI_INDEX}","schemaVersion":2}}"#,
            entry("app:1"),
            entry("app:2")
        );
        assert_eq!(
            String::from_utf8(members[5].data.clone()).unwrap(),
            expected
        );
    }

    #[test]
    fn oci_tarball_without_tags_keeps_one_unannotated_entry() {
        let f = fixture();
        let layout = Layout::read(f.dir.path()).unwrap();
        let members = members(&oci_tarball(&layout, &[]));
        let index: Value = serde_json::from_slice(&members[5].data).unwrap();
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 1);
        assert!(manifests[0].get("annotations").is_none());
        assert_eq!(manifests[0]["digest"], format!("sha256:{}", f.manifest_hex));
    }

    #[test]
    fn oci_tarball_keeps_existing_annotations() {
        let f = fixture();
        let index_path = f.dir.path().join("index.json");
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"][0]["annotations"] = json!({"z.note": "kept"});
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        let layout = Layout::read(f.dir.path()).unwrap();
        let members = members(&oci_tarball(&layout, &tags(&["app:1"])));
        let written: Value = serde_json::from_slice(&members[5].data).unwrap();
        assert_eq!(
            written["manifests"][0]["annotations"],
            json!({"org.opencontainers.image.ref.name": "app:1", "z.note": "kept"})
        );
    }

    #[test]
    fn output_is_deterministic() {
        let f = fixture();
        let layout = Layout::read(f.dir.path()).unwrap();
        let t = tags(&["app:1"]);
        assert_eq!(docker_tarball(&layout, &t), docker_tarball(&layout, &t));
        assert_eq!(oci_tarball(&layout, &t), oci_tarball(&layout, &t));
        // A second copy of the same layout elsewhere gives the same bytes too.
        let g = fixture();
        let other = Layout::read(g.dir.path()).unwrap();
        assert_eq!(docker_tarball(&layout, &t), docker_tarball(&other, &t));
        assert_eq!(oci_tarball(&layout, &t), oci_tarball(&other, &t));
    }

    #[test]
    fn parses_repo_tags() {
        assert_eq!(
            parse_repo_tags("a:1\nb:2\r\n\n  c:3\t\n"),
            tags(&["a:1", "b:2", "c:3"])
        );
        assert!(parse_repo_tags(" \n").is_empty());
    }

    fn read_err(dir: &Path) -> String {
        format!("{:#}", Layout::read(dir).unwrap_err())
    }

    #[test]
    fn missing_layer_blob() {
        let f = fixture();
        std::fs::remove_file(f.dir.path().join("blobs/sha256").join(&f.plain_hex)).unwrap();
        let err = read_err(f.dir.path());
        assert!(
            err.contains("missing layer blob") && err.contains(&f.plain_hex),
            "{err}"
        );
    }

    #[test]
    fn missing_config_blob() {
        let f = fixture();
        std::fs::remove_file(f.dir.path().join("blobs/sha256").join(&f.config_hex)).unwrap();
        let err = read_err(f.dir.path());
        assert!(
            err.contains("missing blob") && err.contains(&f.config_hex),
            "{err}"
        );
    }

    #[test]
    fn blob_removed_after_read_fails_the_write() {
        let f = fixture();
        let layout = Layout::read(f.dir.path()).unwrap();
        std::fs::remove_file(f.dir.path().join("blobs/sha256").join(&f.gz_hex)).unwrap();
        let err = write_docker_tarball(&layout, &[], Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains(&f.gz_hex), "{err:#}");
    }

    #[test]
    fn layer_size_mismatch() {
        let f = fixture();
        let layout = Layout::read(f.dir.path()).unwrap();
        std::fs::write(
            f.dir.path().join("blobs/sha256").join(&f.plain_hex),
            b"truncated",
        )
        .unwrap();
        let err = format!(
            "{:#}",
            write_oci_tarball(&layout, &[], Vec::new()).unwrap_err()
        );
        assert!(err.contains("descriptor says"), "{err}");
    }

    #[test]
    fn malformed_index_json() {
        let f = fixture();
        std::fs::write(f.dir.path().join("index.json"), b"{\"manifests\": [").unwrap();
        let err = read_err(f.dir.path());
        assert!(err.contains("index.json: malformed JSON"), "{err}");

        std::fs::write(f.dir.path().join("index.json"), b"{\"schemaVersion\": 2}").unwrap();
        let err = read_err(f.dir.path());
        assert!(err.contains("index.json: no \"manifests\" array"), "{err}");
    }

    #[test]
    fn bad_digest_strings() {
        let f = fixture();
        let layout = Layout::read(f.dir.path()).unwrap();
        for bad in [
            "sha256:xyz",
            "sha512:0000",
            &format!("sha256:{}", f.config_hex.to_uppercase()),
            &f.config_hex,
            "sha256:../../../../etc/passwd",
            &format!("sha256:{}0", f.config_hex),
        ] {
            let err = layout.blob_path(bad).unwrap_err().to_string();
            assert!(err.contains("invalid digest"), "{bad}: {err}");
        }

        // A bad digest inside index.json is reported against index.json.
        let index_path = f.dir.path().join("index.json");
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"][0]["digest"] = json!("sha256:nothex");
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        let err = read_err(f.dir.path());
        assert!(
            err.contains("index.json: manifests[0].digest") && err.contains("invalid digest"),
            "{err}"
        );
    }

    #[test]
    fn index_with_two_manifests() {
        let f = fixture();
        let index_path = f.dir.path().join("index.json");
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        let entry = index["manifests"][0].clone();
        index["manifests"] = json!([entry.clone(), entry]);
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        let err = read_err(f.dir.path());
        assert!(
            err.contains("expected exactly one entry in \"manifests\", found 2"),
            "{err}"
        );
    }

    #[test]
    fn image_index_is_rejected() {
        let f = fixture();
        let index_path = f.dir.path().join("index.json");
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"][0]["mediaType"] = json!(OCI_INDEX);
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        let err = read_err(f.dir.path());
        assert!(
            err.contains("image index") && err.contains("multi-platform"),
            "{err}"
        );
    }

    #[test]
    fn corrupted_manifest_blob() {
        let f = fixture();
        std::fs::write(
            f.dir.path().join("blobs/sha256").join(&f.manifest_hex),
            b"{}",
        )
        .unwrap();
        let err = read_err(f.dir.path());
        assert!(err.contains("content hashes to"), "{err}");
    }

    #[test]
    fn missing_oci_layout_marker() {
        let f = fixture();
        std::fs::remove_file(f.dir.path().join("oci-layout")).unwrap();
        let err = read_err(f.dir.path());
        assert!(err.contains("oci-layout"), "{err}");
    }
}
