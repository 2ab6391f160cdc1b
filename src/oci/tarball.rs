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

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};

use super::layout::Layout;
use super::sink::FileSink;
use super::spec::{DockerSaveEntry, ImageIndex, canonical_json, digest_hex};

/// Modification time of every member: 2023-01-01T08:00:00Z, rules_oci's mtree `time=`.
const MTIME: u64 = 1_672_560_000;
/// Permission bits of every member, rules_oci's mtree `mode=`.
const MODE: u32 = 0o755;

/// The annotation containerd (and `docker load` with the containerd image store) reads the image
/// name from in an OCI-layout tarball.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `docker load` format (rules_oci's default `format = "docker"`): `blobs/sha256/<config hex>`,
/// then `blobs/sha256/<layer hex>.tar.gz` for each distinct layer in manifest order, then
/// `manifest.json` = `[{"Config":…,"Layers":[…],"RepoTags":[…]}]`.
///
/// The `.tar.gz` suffix is used even for uncompressed or zstd layers because that is what
/// rules_oci writes and docker sniffs the compression from the bytes anyway. A layer listed twice
/// is stored once but appears twice in `Layers`, so the layer stack is unchanged. Layers are
/// streamed from their blob files, never held in memory.
pub fn write_docker_tarball(layout: &Layout, repo_tags: &[String], out: impl FileSink) -> Result<()> {
    write_docker_tarball_without(layout, repo_tags, out, &HashSet::new())
}

/// [`write_docker_tarball`] without the files of the layers in `omit` (still listed in
/// `manifest.json`): for a `docker load` into an engine that has those layers already. Docker
/// looks each layer up by its chain ID before it opens the layer's file
/// (moby `image/tarexport/load.go`), so a layer it has is never read; see `engine::load`.
pub fn write_docker_tarball_without(layout: &Layout, repo_tags: &[String], out: impl FileSink, omit: &HashSet<String>) -> Result<()> {
    let mut tar = tar::Builder::new(out);

    let config_hex = digest_hex(&layout.config_digest)?;
    let config_name = format!("blobs/sha256/{config_hex}");
    append_blob(&mut tar, layout, &layout.config_digest, &config_name)?;

    let mut written = HashSet::new();
    let mut layer_names = Vec::with_capacity(layout.layer_digests.len());
    for digest in &layout.layer_digests {
        let name = format!("blobs/sha256/{}.tar.gz", digest_hex(digest)?);
        if !omit.contains(digest) && written.insert(digest.as_str()) {
            append_blob(&mut tar, layout, digest, &name)?;
        }
        layer_names.push(name);
    }

    let entry = DockerSaveEntry { config: config_name, layers: layer_names, repo_tags: Some(repo_tags.to_vec()) };
    let manifest_json = canonical_json(&[entry])?;
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
pub fn write_oci_tarball(layout: &Layout, repo_tags: &[String], out: impl FileSink) -> Result<()> {
    let mut tar = tar::Builder::new(out);

    let marker = layout.dir.join("oci-layout");
    append_file(&mut tar, &marker, "oci-layout", None)?;

    let mut written = HashSet::new();
    let blobs = [&layout.manifest_digest, &layout.config_digest].into_iter().chain(&layout.layer_digests);
    for digest in blobs {
        if written.insert(digest.as_str()) {
            let name = format!("blobs/sha256/{}", digest_hex(digest)?);
            append_blob(&mut tar, layout, digest, &name)?;
        }
    }

    let index_json = canonical_json(&tagged_index(layout, repo_tags)?)?;
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

/// The layout's index.json with its single manifest entry repeated once per tag, each copy
/// with `annotations[REF_NAME] = tag` on top of its other annotations (jq's `*` merge).
fn tagged_index(layout: &Layout, repo_tags: &[String]) -> Result<ImageIndex> {
    let mut index = layout.index.clone();
    let template = index.manifests.first().cloned().ok_or_else(|| anyhow!("{}/index.json: no manifest entry", layout.dir.display()))?;
    index.manifests = if repo_tags.is_empty() {
        vec![template]
    } else {
        repo_tags
            .iter()
            .map(|tag| {
                let mut descriptor = template.clone();
                descriptor.annotations.get_or_insert_with(BTreeMap::new).insert(REF_NAME.to_owned(), tag.clone());
                descriptor
            })
            .collect()
    };
    Ok(index)
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
    tar.append_data(&mut header, name, bytes).with_context(|| format!("writing {name} to the tarball"))
}

fn append_blob<W: FileSink>(tar: &mut tar::Builder<W>, layout: &Layout, digest: &str, name: &str) -> Result<()> {
    let path = layout.blob_path(digest)?;
    append_file(tar, &path, name, layout.declared_size(digest))
}

/// Streams the file at `path` into the tarball as `name`. The header needs the size before the
/// data, so it comes from the file's metadata and the copy insists on exactly that many bytes: a
/// file that changes underneath us fails instead of producing a corrupt archive.
fn append_file<W: FileSink>(tar: &mut tar::Builder<W>, path: &Path, name: &str, expected_size: Option<u64>) -> Result<()> {
    let file = File::open(path).with_context(|| format!("missing blob {}", path.display()))?;
    let size = file.metadata().with_context(|| format!("reading metadata of {}", path.display()))?.len();
    if let Some(expected) = expected_size {
        ensure!(size == expected, "{}: {size} bytes but its descriptor says {expected}", path.display());
    }
    let mut header = header(size);
    // The header as `append_data` writes it (path, checksum), then the bytes through the sink:
    // a layer can be a gigabyte, which `copy_file_range` moves without a pass through user
    // space. Then the zero padding to the 512-byte block, as `append_data` pads.
    let context = || format!("writing {} to the tarball as {name}", path.display());
    tar.append_data(&mut header, name, std::io::empty()).with_context(context)?;
    let out = tar.get_mut();
    out.copy_file(&file, size).with_context(context)?;
    let pad = (512 - size % 512) % 512;
    out.write_all(&[0u8; 512][..pad as usize]).with_context(context)
}

fn finish<W: Write>(tar: tar::Builder<W>) -> Result<()> {
    let mut out = tar.into_inner().context("finishing the tarball")?;
    out.flush().context("flushing the tarball")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::digest::sha256_hex;
    use crate::oci::spec::{OCI_INDEX, OCI_MANIFEST};
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::Value;
    use serde_json::json;
    use std::io::Read;

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
        std::fs::write(root.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();

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
        std::fs::write(root.join("index.json"), serde_json::to_vec_pretty(&index).unwrap()).unwrap();

        Fixture { dir, config_hex, gz_hex, plain_hex, manifest_hex, gz_layer, plain_layer, config }
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
        assert_eq!(layout.layer_digests, vec![format!("sha256:{}", f.gz_hex), format!("sha256:{}", f.plain_hex)]);
        assert_eq!(layout.blob_path(&layout.config_digest).unwrap(), f.dir.path().join("blobs/sha256").join(&f.config_hex));
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
        assert_eq!(names, [&config_name, &gz_name, &plain_name, "manifest.json"]);
        assert_metadata(&members);
        assert_eq!(members[0].data, f.config);
        assert_eq!(members[1].data, f.gz_layer);
        assert_eq!(members[2].data, f.plain_layer);
        let expected = format!(
            r#"[{{"Config":"{config_name}","Layers":["{gz_name}","{plain_name}"],"RepoTags":["example.com/app:1.0","app:latest"]}}]"#
        );
        assert_eq!(String::from_utf8(members[3].data.clone()).unwrap(), expected);
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
        assert_eq!(oci.len(), 6, "oci-layout, manifest, config, 2 layers, index.json");
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
        let manifest_blob = std::fs::read(f.dir.path().join("blobs/sha256").join(&f.manifest_hex)).unwrap();
        assert_eq!(members[1].data, manifest_blob);
        let size = manifest_blob.len();
        let digest = format!("sha256:{}", f.manifest_hex);
        let entry = |tag: &str| {
            format!(
                r#"{{"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}},"digest":"{digest}","mediaType":"{OCI_MANIFEST}","size":{size}}}"#
            )
        };
        let expected = format!(r#"{{"manifests":[{},{}],"mediaType":"{OCI_INDEX}","schemaVersion":2}}"#, entry("app:1"), entry("app:2"));
        assert_eq!(String::from_utf8(members[5].data.clone()).unwrap(), expected);
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
        let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"][0]["annotations"] = json!({"z.note": "kept"});
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        let layout = Layout::read(f.dir.path()).unwrap();
        let members = members(&oci_tarball(&layout, &tags(&["app:1"])));
        let written: Value = serde_json::from_slice(&members[5].data).unwrap();
        assert_eq!(written["manifests"][0]["annotations"], json!({"org.opencontainers.image.ref.name": "app:1", "z.note": "kept"}));
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
        assert_eq!(parse_repo_tags("a:1\nb:2\r\n\n  c:3\t\n"), tags(&["a:1", "b:2", "c:3"]));
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
        assert!(err.contains("missing layer blob") && err.contains(&f.plain_hex), "{err}");
    }

    #[test]
    fn missing_config_blob() {
        let f = fixture();
        std::fs::remove_file(f.dir.path().join("blobs/sha256").join(&f.config_hex)).unwrap();
        let err = read_err(f.dir.path());
        assert!(err.contains("missing blob") && err.contains(&f.config_hex), "{err}");
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
        std::fs::write(f.dir.path().join("blobs/sha256").join(&f.plain_hex), b"truncated").unwrap();
        let err = format!("{:#}", write_oci_tarball(&layout, &[], Vec::new()).unwrap_err());
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
        assert!(err.contains("index.json: not an image index") && err.contains("missing field `manifests`"), "{err}");
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
        let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"][0]["digest"] = json!("sha256:nothex");
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        let err = read_err(f.dir.path());
        assert!(err.contains("index.json: manifests[0].digest") && err.contains("invalid digest"), "{err}");
    }

    #[test]
    fn index_with_two_manifests() {
        let f = fixture();
        let index_path = f.dir.path().join("index.json");
        let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        let entry = index["manifests"][0].clone();
        index["manifests"] = json!([entry.clone(), entry]);
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        let err = read_err(f.dir.path());
        assert!(err.contains("expected exactly one entry in \"manifests\", found 2"), "{err}");
    }

    #[test]
    fn image_index_is_rejected() {
        let f = fixture();
        let index_path = f.dir.path().join("index.json");
        let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"][0]["mediaType"] = json!(OCI_INDEX);
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        let err = read_err(f.dir.path());
        assert!(err.contains("image index") && err.contains("multi-platform"), "{err}");
    }

    #[test]
    fn corrupted_manifest_blob() {
        let f = fixture();
        std::fs::write(f.dir.path().join("blobs/sha256").join(&f.manifest_hex), b"{}").unwrap();
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
