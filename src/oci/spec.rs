//! The generic vocabulary of OCI documents: media types, layer compression, digests, canonical
//! JSON, and typed descriptors, image manifests and image indexes. Rule sets build their
//! documents on top (rules_oci's config and manifest semantics live in
//! `rules/oci/image_config.rs`).
//!
//! The types are ocib's own serde structs, not the `oci-spec` crate's:
//! - ocib's outputs are byte-identical to rules_oci's (image digests are compared in tests), so
//!   what ocib writes is canonical JSON (keys sorted, see [`canonical_json`]) of exactly the
//!   fields rules_oci's jq programs write; `oci-spec` serialises in struct order and decides
//!   itself which empty fields to leave out.
//! - what ocib reads must round-trip: an index's or descriptor's fields ocib does not know (a
//!   base's `artifactType`, `urls`, `data`, vendor keys) are kept in `extra` and written back,
//!   as jq keeps them; `oci-spec` drops unknown fields.
//! - descriptors ocib reads from other tools are checked where they are used (a missing
//!   `mediaType` is an error where a single image is needed, and means an image manifest when
//!   pushing), not rejected wholesale by the parser.
//! - `oci-spec` would add 37 crates to a 2-core CI build for five small structs.
//!
//! Config and base-manifest *editing* stays on `serde_json::Value` in `rules/oci/image_config.rs`:
//! rules_oci merges into whatever the base holds, field by field, and so must ocib.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, ensure};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How a layer file is compressed. Layers are stored byte-for-byte as given (never
/// recompressed), so this only selects the media type and how to compute the diff_id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Detects a layer's compression from its first bytes, like rules_oci's `descriptor.sh`
/// (gzip magic first, then zstd; anything else is an uncompressed tar).
pub fn sniff_compression(first_bytes: &[u8]) -> Compression {
    if first_bytes.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if first_bytes.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// The media type of a new layer. `docker` is true when the base manifest is of the docker
/// family: rules_oci then keeps docker layer types so the manifest stays self-consistent.
pub fn layer_media_type(c: Compression, docker: bool) -> &'static str {
    match (docker, c) {
        (false, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
        (false, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
        (false, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        (true, Compression::None) => "application/vnd.docker.image.rootfs.diff.tar",
        (true, Compression::Gzip) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        (true, Compression::Zstd) => "application/vnd.docker.image.rootfs.diff.tar.zstd",
    }
}
/// A content descriptor (OCI image spec `descriptor.md`): what a manifest, index or layout's
/// `index.json` says about one blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Required by the spec; other tools' files are trusted to carry it only where checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub digest: String,
    /// Required by the spec; ocib's layouts always carry it. Used to refuse a blob whose file
    /// does not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields ocib does not interpret (`urls`, `data`, `artifactType`, vendor keys), kept so a
    /// descriptor read and written again loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    /// A descriptor of `size` bytes with `digest`, of `media_type`, nothing else.
    pub fn new(media_type: &str, digest: &str, size: u64) -> Descriptor {
        Descriptor {
            media_type: Some(media_type.to_owned()),
            digest: digest.to_owned(),
            size: Some(size),
            platform: None,
            annotations: None,
            extra: Map::new(),
        }
    }

    /// Whether this descriptor points at an image index (OCI or docker manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self.media_type.as_deref(), Some(OCI_INDEX | DOCKER_MANIFEST_LIST))
    }
}

/// The platform of an index entry (`os`, `architecture`, `variant`, `os.version`,
/// `os.features`), as image_index.sh copies it from an image's config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features", skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
}

impl Platform {
    /// Whether this platform is `os/arch[/variant]` (`want`), as `oci_pull`'s `platform` names
    /// it; no variant in `want` matches any variant.
    pub fn matches(&self, want: &str) -> bool {
        let mut parts = want.split('/');
        let (os, arch, variant) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
        self.os.as_deref() == Some(os)
            && self.architecture.as_deref() == Some(arch)
            && variant.is_none_or(|v| self.variant.as_deref() == Some(v))
    }
}

/// An image index (OCI `image-index.md`, docker manifest list), and the `index.json` of a layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An image manifest (OCI `manifest.md`, docker v2 schema 2), as read: the descriptors ocib
/// follows. Building one is `rules/oci/image_config.rs`'s job (it edits a base's manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A manifest blob of either kind, told apart the way registries and crane do: by its
/// `mediaType`, else by whether it has `manifests`.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(ImageIndex),
}

impl Manifest {
    /// Parses a manifest or index blob.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| anyhow!("malformed JSON: {e}"))?;
        let media_type = value.get("mediaType").and_then(Value::as_str);
        let index =
            matches!(media_type, Some(OCI_INDEX | DOCKER_MANIFEST_LIST)) || (media_type.is_none() && value.get("manifests").is_some());
        Ok(if index {
            Manifest::Index(serde_json::from_value(value).map_err(|e| anyhow!("not an image index: {e}"))?)
        } else {
            Manifest::Image(Box::new(serde_json::from_value(value).map_err(|e| anyhow!("not an image manifest: {e}"))?))
        })
    }
}

/// One image of a `docker save` / `docker load` tarball's `manifest.json` (moby's
/// `image/tarexport` `manifestItem`): member names of the config and the layers, and the tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerSaveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
    /// `null` in `docker save` of an untagged image.
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
}

/// The `index.json` of a layout holding one manifest (no annotations).
///
/// rules_oci deletes the descriptor's annotations (regctl's `org.opencontainers.image.ref.name`)
/// so that the layout does not depend on an intermediate tag name.
pub fn layout_index(manifest_media_type: &str, manifest_digest: &str, manifest_size: u64) -> ImageIndex {
    ImageIndex {
        schema_version: Some(2),
        media_type: Some(OCI_INDEX.to_owned()),
        manifests: vec![Descriptor::new(manifest_media_type, manifest_digest, manifest_size)],
        annotations: None,
        extra: Map::new(),
    }
}

/// Canonical JSON bytes of a document: object keys sorted (byte order), no insignificant
/// whitespace, serde_json's string escaping. Same document → same bytes, whatever the order it
/// was assembled in (serde_json is built with `preserve_order`) or the field order of a struct.
pub fn canonical_json<T: Serialize + ?Sized>(document: &T) -> Result<Vec<u8>> {
    let value = serde_json::to_value(document)?;
    // `Value`'s Display is compact JSON and cannot fail; after sorting, insertion order is the
    // key order.
    Ok(sorted(&value).to_string().into_bytes())
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(object) => {
            let mut entries: Vec<(&String, &Value)> = object.iter().collect();
            // `str`'s Ord is byte-wise over UTF-8.
            entries.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            Value::Object(entries.into_iter().map(|(key, value)| (key.clone(), sorted(value))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `sha256:<hex>` of `bytes`, the digest form used throughout OCI.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::exec::digest::sha256_hex(bytes))
}

/// The hex part of `sha256:<64 lowercase hex>`. Anything else is rejected: other algorithms are
/// not used by the rules ocib replaces, and an unchecked digest could name a path outside a
/// layout (`blobs/sha256/<hex>`) or a registry URL.
pub fn digest_hex(digest: &str) -> Result<&str> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| anyhow!("invalid digest {digest:?}: expected \"sha256:<64 hex digits>\""))?;
    ensure!(
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "invalid digest {digest:?}: expected \"sha256:<64 lowercase hex digits>\""
    );
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sniffs_compression() {
        let cases: &[(&[u8], Compression)] = &[
            (&[0x1f, 0x8b, 0x08, 0x00], Compression::Gzip),
            (&[0x1f, 0x8b], Compression::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd, 0x04], Compression::Zstd),
            (&[0x28, 0xb5, 0x2f], Compression::None),
            (&[0x1f], Compression::None),
            (b"hello.txt\0\0\0", Compression::None),
            (&[], Compression::None),
        ];
        for (bytes, expected) in cases {
            assert_eq!(sniff_compression(bytes), *expected, "{bytes:02x?}");
        }
    }

    #[test]
    fn layer_media_types() {
        let cases = [
            (Compression::None, false, "application/vnd.oci.image.layer.v1.tar"),
            (Compression::Gzip, false, "application/vnd.oci.image.layer.v1.tar+gzip"),
            (Compression::Zstd, false, "application/vnd.oci.image.layer.v1.tar+zstd"),
            (Compression::None, true, "application/vnd.docker.image.rootfs.diff.tar"),
            (Compression::Gzip, true, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
            (Compression::Zstd, true, "application/vnd.docker.image.rootfs.diff.tar.zstd"),
        ];
        for (compression, docker, expected) in cases {
            assert_eq!(layer_media_type(compression, docker), expected);
        }
    }

    #[test]
    fn layout_index_shape() {
        let bytes = canonical_json(&layout_index(OCI_MANIFEST, "sha256:abc", 42)).expect("serialises");
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).expect("json"),
            json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:abc", "size": 42}],
            })
        );
    }

    #[test]
    fn canonical_json_sorts_keys_and_is_stable() {
        let mut a = Map::new();
        a.insert("zeta".to_string(), json!(1));
        a.insert("Alpha".to_string(), json!({"y": [3, {"b": 1, "a": 2}], "x": null}));
        a.insert("alpha".to_string(), json!("tab\t\"quote\" é \u{1}"));
        a.insert("a.b".to_string(), json!(true));
        let a = Value::Object(a);

        let mut b = Map::new();
        b.insert("a.b".to_string(), json!(true));
        b.insert("alpha".to_string(), json!("tab\t\"quote\" é \u{1}"));
        b.insert("Alpha".to_string(), json!({"x": null, "y": [3, {"a": 2, "b": 1}]}));
        b.insert("zeta".to_string(), json!(1));
        let b = Value::Object(b);

        let expected = "{\"Alpha\":{\"x\":null,\"y\":[3,{\"a\":2,\"b\":1}]},\"a.b\":true,\
                        \"alpha\":\"tab\\t\\\"quote\\\" é \\u0001\",\"zeta\":1}";
        assert_eq!(String::from_utf8(canonical_json(&a).unwrap()).expect("utf-8"), expected);
        assert_eq!(canonical_json(&a).unwrap(), canonical_json(&a).unwrap());
        assert_eq!(canonical_json(&a).unwrap(), canonical_json(&b).unwrap());

        // Byte order, not locale or char order: uppercase before lowercase, multi-byte last.
        let c = json!({"é": 1, "z": 2, "Z": 3, "": 4, "10": 5, "9": 6});
        assert_eq!(String::from_utf8(canonical_json(&c).unwrap()).expect("utf-8"), "{\"\":4,\"10\":5,\"9\":6,\"Z\":3,\"z\":2,\"é\":1}");
        assert_eq!(canonical_json(&json!([])).unwrap(), b"[]");
        assert_eq!(canonical_json(&json!({})).unwrap(), b"{}");
    }

    #[test]
    fn sha256_digests() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(sha256_digest(bytes), *expected);
        }
    }

    #[test]
    fn documents_round_trip_with_unknown_fields() {
        // A base's index entry with fields ocib does not interpret, keys unsorted: read and
        // written again, nothing is lost and the bytes are canonical.
        let text = br#"{"manifests":[{"size":7,"digest":"sha256:abc","mediaType":"application/vnd.oci.image.manifest.v1+json","urls":["u"],"annotations":{"b":"2","a":"1"},"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}],"schemaVersion":2,"x-vendor":{"k":1}}"#;
        let Manifest::Index(index) = Manifest::parse(text).expect("parses") else { panic!("an index") };
        assert!(index.manifests[0].platform.as_ref().is_some_and(|p| p.matches("linux/arm64") && p.matches("linux/arm64/v8")));
        assert!(!index.manifests[0].platform.as_ref().is_some_and(|p| p.matches("linux/arm64/v7")));
        assert_eq!(
            String::from_utf8(canonical_json(&index).unwrap()).unwrap(),
            r#"{"manifests":[{"annotations":{"a":"1","b":"2"},"digest":"sha256:abc","mediaType":"application/vnd.oci.image.manifest.v1+json","platform":{"architecture":"arm64","os":"linux","variant":"v8"},"size":7,"urls":["u"]}],"schemaVersion":2,"x-vendor":{"k":1}}"#
        );
        let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"c","digest":"sha256:c","size":1},"layers":[]}"#;
        assert!(matches!(Manifest::parse(manifest), Ok(Manifest::Image(m)) if m.config.digest == "sha256:c"));
        assert!(Manifest::parse(br#"{"schemaVersion":2}"#).unwrap_err().to_string().contains("not an image manifest"));
    }

    #[test]
    fn digest_hex_accepts_only_sha256() {
        let hex = "a".repeat(64);
        assert_eq!(digest_hex(&format!("sha256:{hex}")).unwrap(), hex);
        for bad in ["sha256:abc", "sha512:00", "sha256:../../etc/passwd", &format!("sha256:{}", "A".repeat(64))] {
            assert!(digest_hex(bad).unwrap_err().to_string().contains("invalid digest"), "{bad}");
        }
    }
}
