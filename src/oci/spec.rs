//! The generic vocabulary of OCI documents: media types, layer compression, canonical JSON and
//! sha256 digests, and the one-manifest layout `index.json`. Rule sets build their documents
//! (rules_oci's config and manifest semantics live in `rules/oci/image_config.rs`) on top.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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
/// An index.json for a layout holding one manifest (no annotations).
///
/// rules_oci deletes the descriptor's annotations (regctl's `org.opencontainers.image.ref.name`)
/// so that the layout does not depend on an intermediate tag name.
pub fn layout_index(manifest_media_type: &str, manifest_digest: &str, manifest_size: u64) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": manifest_media_type,
            "digest": manifest_digest,
            "size": manifest_size,
        }],
    })
}


/// Canonical JSON bytes: object keys sorted (byte order), no insignificant whitespace,
/// serde_json's string escaping. Same value → same bytes.
///
/// serde_json is built with `preserve_order`, so a map serialises in insertion order; sorting
/// here makes digests independent of how a document was assembled.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    // `Value`'s Display is compact JSON and cannot fail; after sorting, insertion order is the
    // key order.
    sorted(v).to_string().into_bytes()
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(object) => {
            let mut entries: Vec<(&String, &Value)> = object.iter().collect();
            // `str`'s Ord is byte-wise over UTF-8.
            entries.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.clone(), sorted(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `"sha256:<hex>"` of `bytes`, the digest form used throughout OCI.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity("sha256:".len() + hash.len() * 2);
    out.push_str("sha256:");
    for byte in hash.iter() {
        out.push(hex_digit(byte >> 4));
        out.push(hex_digit(byte & 0x0f));
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

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
            (
                Compression::None,
                false,
                "application/vnd.oci.image.layer.v1.tar",
            ),
            (
                Compression::Gzip,
                false,
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            (
                Compression::Zstd,
                false,
                "application/vnd.oci.image.layer.v1.tar+zstd",
            ),
            (
                Compression::None,
                true,
                "application/vnd.docker.image.rootfs.diff.tar",
            ),
            (
                Compression::Gzip,
                true,
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            ),
            (
                Compression::Zstd,
                true,
                "application/vnd.docker.image.rootfs.diff.tar.zstd",
            ),
        ];
        for (compression, docker, expected) in cases {
            assert_eq!(layer_media_type(compression, docker), expected);
        }
    }

    #[test]
    fn layout_index_shape() {
        assert_eq!(
            layout_index(OCI_MANIFEST, "sha256:abc", 42),
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
        a.insert(
            "Alpha".to_string(),
            json!({"y": [3, {"b": 1, "a": 2}], "x": null}),
        );
        a.insert("alpha".to_string(), json!("tab\t\"quote\" é \u{1}"));
        a.insert("a.b".to_string(), json!(true));
        let a = Value::Object(a);

        let mut b = Map::new();
        b.insert("a.b".to_string(), json!(true));
        b.insert("alpha".to_string(), json!("tab\t\"quote\" é \u{1}"));
        b.insert(
            "Alpha".to_string(),
            json!({"x": null, "y": [3, {"a": 2, "b": 1}]}),
        );
        b.insert("zeta".to_string(), json!(1));
        let b = Value::Object(b);

        let expected = "{\"Alpha\":{\"x\":null,\"y\":[3,{\"a\":2,\"b\":1}]},\"a.b\":true,\
                        \"alpha\":\"tab\\t\\\"quote\\\" é \\u0001\",\"zeta\":1}";
        assert_eq!(
            String::from_utf8(canonical_json(&a)).expect("utf-8"),
            expected
        );
        assert_eq!(canonical_json(&a), canonical_json(&a));
        assert_eq!(canonical_json(&a), canonical_json(&b));

        // Byte order, not locale or char order: uppercase before lowercase, multi-byte last.
        let c = json!({"é": 1, "z": 2, "Z": 3, "": 4, "10": 5, "9": 6});
        assert_eq!(
            String::from_utf8(canonical_json(&c)).expect("utf-8"),
            "{\"\":4,\"10\":5,\"9\":6,\"Z\":3,\"z\":2,\"é\":1}"
        );
        assert_eq!(canonical_json(&json!([])), b"[]");
        assert_eq!(canonical_json(&json!({})), b"{}");
    }

    #[test]
    fn sha256_digests() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                b"abc",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(sha256_digest(bytes), *expected);
        }
    }}
