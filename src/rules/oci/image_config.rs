//! rules_oci's image documents: the config, manifest and image index an `oci_image` or
//! `oci_image_index` target produces (the generic media types, digests, descriptor types and
//! canonical JSON are in `oci/spec.rs`).
//!
//! rules_oci 2.x builds these with `oci/private/image.sh` (jq + regctl). The functions here
//! reproduce that script's *semantics*: the same fields, the same merge rules, the same quirks
//! (entrypoint clears `Cmd`, env expansion against the base env, labels/ports/volumes merged into
//! the base's). The bytes differ from jq's pretty-printed output on purpose: we serialise with
//! [`crate::oci::spec::canonical_json`] so that the same image always gets the same digest, whatever order a map
//! was built in.
//!
//! The config and the base manifest are edited as `serde_json::Value`: image.sh merges into
//! whatever fields the base holds, known to ocib or not, and so must these functions. The index
//! is built from typed descriptors (`oci::spec`).

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::oci::spec::{
    Compression, DOCKER_CONFIG, DOCKER_MANIFEST_LIST, Descriptor, ImageIndex, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Platform,
    layer_media_type,
};

/// The timestamp rules_oci uses for scratch images and for every history entry it adds, so that
/// images are reproducible.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// image.sh decides the layer media-type family with a prefix test on the base manifest's
/// `mediaType`, so any docker manifest keeps docker layer types.
const DOCKER_MEDIA_TYPE_PREFIX: &str = "application/vnd.docker.";

/// One layer being appended: digest/diff_id as `sha256:<hex>`.
#[derive(Debug, Clone)]
pub struct NewLayer {
    /// Digest of the file as stored (compressed bytes).
    pub digest: String,
    /// Digest of the uncompressed tar; goes into the config's `rootfs.diff_ids`.
    pub diff_id: String,
    pub size: u64,
    pub compression: Compression,
    /// History text, rules_oci style: `bazel build <label of tar>`.
    pub created_by: String,
}

/// oci_image's attributes with the contents of their files already read (the rules_oci macro
/// turns lists/dicts into files; these are those files' texts parsed).
///
/// Empty strings in `user`, `workdir`, `os`, `architecture` and `variant` count as unset,
/// because Bazel string attributes default to "" and the rule tests them for truthiness.
/// Empty `env`/`labels`/`annotations`/`exposed_ports`/`volumes` mean "attribute not given".
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    /// Raw content of the `created` file, used verbatim (including any trailing newline), as
    /// image.sh does with `jq --rawfile`.
    pub created: Option<String>,
}

/// rules_oci's file formats: lines split on "\n", empty lines dropped, "%5Cn" → newline
/// (entrypoint/cmd).
///
/// The macro writes one element per line, so a newline inside an element has to be escaped;
/// empty lines are dropped *before* unescaping, so an element that is just "%5Cn" survives as
/// "\n".
pub fn parse_lines(text: &str) -> Vec<String> {
    text.split('\n').filter(|line| !line.is_empty()).map(|line| line.replace("%5Cn", "\n")).collect()
}

/// "KEY=VALUE" lines (split at the first '='; empty lines skipped) for env/labels/annotations.
///
/// image.sh silently turns a line without '=' into `KEY=""`; such a line is almost certainly a
/// mistake in a hand-written file, so we reject it instead.
pub fn parse_key_values(text: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) => pairs.push((key.to_string(), value.to_string())),
            None => bail!("line {}: expected KEY=VALUE, found {:?} (no '=')", index + 1, line),
        }
    }
    Ok(pairs)
}

/// exposed_ports / volumes file: comma-separated, entries trimmed, empty dropped.
pub fn parse_comma_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|entry| !entry.is_empty()).map(str::to_string).collect()
}

/// Treats `Some("")` like `None`: Bazel string attributes default to "".
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.is_empty())
}

/// The new image config: base config (None = scratch) merged with spec and layers, per
/// rules_oci. Errors: no base and os/architecture missing; base given and
/// os/architecture/variant set.
///
/// Mirrors image.sh's order of operations: start from the base (or the scratch config), append
/// each layer's diff_id and history entry, build an overlay from the attributes, deep-merge the
/// overlay into the config (jq's `*=`), then drop `config.Cmd` if it ended up null (which is how
/// setting `entrypoint` clears an inherited `Cmd`).
pub fn build_config(base: Option<&Value>, spec: &ImageSpec, layers: &[NewLayer]) -> Result<Value> {
    let mut config = match base {
        Some(base) => {
            if non_empty(&spec.os).is_some() || non_empty(&spec.architecture).is_some() || non_empty(&spec.variant).is_some() {
                bail!(
                    "'os', 'architecture' and 'variant' come from the image provided by 'base' \
                     and cannot be overridden."
                );
            }
            if !base.is_object() {
                bail!("the base image config is not a JSON object");
            }
            base.clone()
        }
        None => scratch_config(spec)?,
    };

    for layer in layers {
        append_layer(&mut config, layer)?;
    }

    let overlay = config_overlay(&config, spec)?;
    deep_merge(&mut config, overlay);

    // `del(.config.Cmd | nulls)`: only a null Cmd is removed; other null fields stay.
    if let Some(inner) = config.get_mut("config").and_then(Value::as_object_mut)
        && inner.get("Cmd").is_some_and(Value::is_null)
    {
        inner.shift_remove("Cmd");
    }
    Ok(config)
}

/// The config of an image built `FROM scratch`: image.sh's `base_from_scratch`.
fn scratch_config(spec: &ImageSpec) -> Result<Value> {
    let (Some(os), Some(architecture)) = (non_empty(&spec.os), non_empty(&spec.architecture)) else {
        bail!("'os' and 'architecture' are mandatory when 'base' is unspecified.");
    };
    let mut config = json!({
        "created": EPOCH,
        "config": {},
        "history": [],
        "rootfs": {"type": "layers", "diff_ids": []},
        "os": os,
        "architecture": architecture,
    });
    if let (Some(variant), Some(object)) = (non_empty(&spec.variant), config.as_object_mut()) {
        object.insert("variant".to_string(), Value::String(variant.to_string()));
    }
    Ok(config)
}

/// `.rootfs.diff_ids += [diff_id] | .history += [{created, created_by}]`.
fn append_layer(config: &mut Value, layer: &NewLayer) -> Result<()> {
    let object = config.as_object_mut().context("the image config is not a JSON object")?;

    let rootfs = object.entry("rootfs").or_insert_with(|| Value::Object(Map::new()));
    if rootfs.is_null() {
        *rootfs = Value::Object(Map::new());
    }
    let rootfs = rootfs.as_object_mut().context("the base image config's rootfs is not a JSON object")?;
    push_to_array(rootfs, "diff_ids", Value::String(layer.diff_id.clone()))
        .context("appending to the base image config's rootfs.diff_ids")?;

    let entry = json!({"created": EPOCH, "created_by": layer.created_by});
    push_to_array(object, "history", entry).context("appending to the base image config's history")
}

/// jq's `.key += [value]`: a missing or null array starts empty; anything else is an error.
fn push_to_array(object: &mut Map<String, Value>, key: &str, value: Value) -> Result<()> {
    let slot = object.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    match slot.as_array_mut() {
        Some(array) => {
            array.push(value);
            Ok(())
        }
        None => bail!("{key:?} is not an array"),
    }
}

/// The `CONFIG` object image.sh accumulates from the attributes, in the order image.bzl passes
/// them: created, entrypoint, cmd, exposed ports, volumes, env, labels, user, workdir.
///
/// `current` is the config after layers were appended; only its `config.Env` is read, because
/// env values are expanded against the base image's environment.
fn config_overlay(current: &Value, spec: &ImageSpec) -> Result<Value> {
    let mut overlay = Map::new();
    let mut inner = Map::new();

    if let Some(created) = &spec.created {
        overlay.insert("created".to_string(), Value::String(created.clone()));
    }
    if let Some(entrypoint) = &spec.entrypoint {
        // Setting the entrypoint invalidates an inherited Cmd (crane and Dockerfile agree): Cmd
        // becomes null here and is deleted after the merge, unless `cmd` below sets it again.
        inner.insert("Cmd".to_string(), Value::Null);
        inner.insert("Entrypoint".to_string(), string_array(entrypoint));
    }
    if let Some(cmd) = &spec.cmd {
        inner.insert("Cmd".to_string(), string_array(cmd));
    }
    if !spec.exposed_ports.is_empty() {
        inner.insert("ExposedPorts".to_string(), empty_object_set(&spec.exposed_ports));
    }
    if !spec.volumes.is_empty() {
        inner.insert("Volumes".to_string(), empty_object_set(&spec.volumes));
    }
    if !spec.env.is_empty() {
        let env = merged_env(current, &spec.env)?;
        let lines = env.into_iter().map(|(key, value)| Value::String(format!("{key}={value}"))).collect();
        inner.insert("Env".to_string(), Value::Array(lines));
    }
    if !spec.labels.is_empty() {
        let labels: Map<String, Value> = spec.labels.iter().map(|(key, value)| (key.clone(), Value::String(value.clone()))).collect();
        inner.insert("Labels".to_string(), Value::Object(labels));
    }
    if let Some(user) = non_empty(&spec.user) {
        inner.insert("User".to_string(), Value::String(user.to_string()));
    }
    if let Some(workdir) = non_empty(&spec.workdir) {
        inner.insert("WorkingDir".to_string(), Value::String(workdir.to_string()));
    }

    overlay.insert("config".to_string(), Value::Object(inner));
    Ok(Value::Object(overlay))
}

fn string_array(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

/// The OCI config's "set" encoding for ports and volumes: `{key: {}}`.
fn empty_object_set(keys: &[String]) -> Value {
    Value::Object(keys.iter().map(|key| (key.clone(), Value::Object(Map::new()))).collect())
}

/// The base env with the new entries applied in order: each value is expanded against the env
/// as it stands (base plus entries already applied), an existing key is replaced in place and a
/// new key is appended.
fn merged_env(current: &Value, new_entries: &[(String, String)]) -> Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = Vec::new();
    match current.pointer("/config/Env") {
        None | Some(Value::Null) => {}
        Some(Value::Array(lines)) => {
            for line in lines {
                let line = line.as_str().context("the base image config's Env has a non-string entry")?;
                // A base entry without '=' becomes KEY with an empty value (then "KEY="), as
                // image.sh's `split("=")` does.
                let (key, value) = line.split_once('=').unwrap_or((line, ""));
                env.push((key.to_string(), value.to_string()));
            }
        }
        Some(_) => bail!("the base image config's Env is not an array"),
    }

    for (key, raw_value) in new_entries {
        let value = expand_env(raw_value, &env);
        match env.iter_mut().find(|(existing, _)| existing == key) {
            Some(entry) => entry.1 = value,
            None => env.push((key.clone(), value)),
        }
    }
    Ok(env)
}

/// Expands `$VAR` and `${VAR}` like image.sh's regex `\${?([a-zA-Z0-9_]+)}?`.
///
/// The braces are matched independently, so `$VAR}` and `${VAR` are references too (the brace
/// is consumed). An undefined variable expands to "" and there is no escape for a literal `$`;
/// a `$` not followed by a name stays as it is. If the env holds a key more than once, every
/// value is concatenated (jq's `select` yields them all). Trailing newlines of the result are
/// dropped, as the shell's `$(...)` around jq does.
fn expand_env(raw: &str, env: &[(String, String)]) -> String {
    let bytes = raw.as_bytes();
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = String::with_capacity(raw.len());
    let mut copied_up_to = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let mut name_start = i + 1;
        if bytes.get(name_start) == Some(&b'{') {
            name_start += 1;
        }
        let mut name_end = name_start;
        while name_end < bytes.len() && is_name_byte(bytes[name_end]) {
            name_end += 1;
        }
        if name_end == name_start {
            // No name: this '$' is literal text.
            i += 1;
            continue;
        }
        let mut match_end = name_end;
        if bytes.get(match_end) == Some(&b'}') {
            match_end += 1;
        }
        // All indices sit on ASCII bytes, hence on char boundaries.
        out.push_str(&raw[copied_up_to..i]);
        let name = &raw[name_start..name_end];
        for (_, value) in env.iter().filter(|(key, _)| key == name) {
            out.push_str(value);
        }
        copied_up_to = match_end;
        i = match_end;
    }
    out.push_str(&raw[copied_up_to..]);
    let trimmed_len = out.trim_end_matches('\n').len();
    out.truncate(trimmed_len);
    out
}

/// jq's `a * b`: objects merge recursively, anything else in `b` replaces what is in `a`
/// (arrays are replaced, not concatenated; a null in `b` overwrites).
fn deep_merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => deep_merge(existing, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The new manifest: base manifest's layers (None = none) + new layer descriptors (media types
/// per base family), config descriptor, annotations merged into the manifest's.
///
/// With a base, the base manifest is edited like image.sh does: every other field (including
/// the config descriptor's media type, so docker v2s2 bases keep
/// `application/vnd.docker.container.image.v1+json`) is kept, the config descriptor's `data` is
/// dropped because it would be stale. A base manifest without `mediaType` is treated as OCI and
/// gets `mediaType` filled in, so the layout's `index.json` can always be written from it.
pub fn build_manifest(
    base_manifest: Option<&Value>,
    config_digest: &str,
    config_size: u64,
    layers: &[NewLayer],
    annotations: &[(String, String)],
) -> Result<Value> {
    let mut manifest = match base_manifest {
        Some(base) => base_image_manifest(base)?,
        None => {
            let mut scratch = Map::new();
            scratch.insert("schemaVersion".to_string(), json!(2));
            scratch.insert("mediaType".to_string(), json!(OCI_MANIFEST));
            scratch.insert("config".to_string(), json!({"mediaType": OCI_CONFIG}));
            scratch.insert("layers".to_string(), json!([]));
            scratch
        }
    };

    let media_type = manifest.entry("mediaType").or_insert_with(|| Value::String(OCI_MANIFEST.to_string()));
    let docker = media_type.as_str().is_some_and(|m| m.starts_with(DOCKER_MEDIA_TYPE_PREFIX));

    let config = manifest.entry("config").or_insert_with(|| Value::Object(Map::new()));
    if !config.is_object() {
        *config = Value::Object(Map::new());
    }
    if let Some(config) = config.as_object_mut() {
        if !config.get("mediaType").is_some_and(Value::is_string) {
            let config_type = if docker { DOCKER_CONFIG } else { OCI_CONFIG };
            config.insert("mediaType".to_string(), json!(config_type));
        }
        config.insert("digest".to_string(), json!(config_digest));
        config.insert("size".to_string(), json!(config_size));
        config.shift_remove("data");
    }

    for layer in layers {
        let descriptor = json!({
            "mediaType": layer_media_type(layer.compression, docker),
            "digest": layer.digest,
            "size": layer.size,
        });
        push_to_array(&mut manifest, "layers", descriptor).context("appending to the base manifest's layers")?;
    }

    if !annotations.is_empty() {
        let slot = manifest.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
        if slot.is_null() {
            *slot = Value::Object(Map::new());
        }
        let existing = slot.as_object_mut().context("the base manifest's annotations are not a JSON object")?;
        for (key, value) in annotations {
            existing.insert(key.clone(), Value::String(value.clone()));
        }
    }

    Ok(Value::Object(manifest))
}

/// Checks that the base is an image manifest (not an index: a base must already be resolved to
/// one platform) and returns it as a map to edit.
fn base_image_manifest(base: &Value) -> Result<Map<String, Value>> {
    let Some(object) = base.as_object() else {
        bail!("the base manifest is not a JSON object");
    };
    let media_type = object.get("mediaType").and_then(Value::as_str);
    if matches!(media_type, Some(OCI_INDEX | DOCKER_MANIFEST_LIST)) || object.contains_key("manifests") {
        bail!(
            "the base is an image index ({}), not an image manifest; use a single-platform base",
            media_type.unwrap_or("has \"manifests\"")
        );
    }
    Ok(object.clone())
}

/// An OCI image index over images: platform taken from each image's config (os, architecture,
/// variant, os.version, os.features; nulls dropped), plus annotations.
///
/// A `platform` already on a descriptor is replaced (image_index.sh does `$manifest +
/// {platform}`).
pub fn build_image_index(entries: &[(Descriptor, Value)], annotations: &[(String, String)]) -> ImageIndex {
    let manifests =
        entries.iter().map(|(descriptor, config)| Descriptor { platform: Some(platform_of(config)), ..descriptor.clone() }).collect();
    ImageIndex {
        schema_version: Some(2),
        media_type: Some(OCI_INDEX.to_owned()),
        manifests,
        annotations: (!annotations.is_empty()).then(|| annotations.iter().cloned().collect()),
        extra: Map::new(),
    }
}

/// The descriptor platform of an image, from its config; absent or null fields are left out.
fn platform_of(config: &Value) -> Platform {
    let text = |key: &str| config.get(key).and_then(Value::as_str).map(str::to_owned);
    Platform {
        os: text("os"),
        architecture: text("architecture"),
        variant: text("variant"),
        os_version: text("os.version"),
        os_features: config
            .get("os.features")
            .and_then(Value::as_array)
            .map(|features| features.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::spec::{DOCKER_MANIFEST, canonical_json};

    fn scratch_spec() -> ImageSpec {
        ImageSpec { os: Some("linux".to_string()), architecture: Some("amd64".to_string()), ..ImageSpec::default() }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn layer(n: u8, compression: Compression) -> NewLayer {
        NewLayer {
            digest: format!("sha256:{:064x}", n),
            diff_id: format!("sha256:{:064x}", u32::from(n) + 1000),
            size: 100 + u64::from(n),
            compression,
            created_by: format!("bazel build //app:layer{n}"),
        }
    }

    /// A typical pulled base config (debian-like).
    fn base_config() -> Value {
        json!({
            "architecture": "arm64",
            "variant": "v8",
            "os": "linux",
            "created": "2024-01-02T03:04:05Z",
            "config": {
                "Env": ["PATH=/usr/local/bin:/usr/bin", "HOME=/root", "LANG=C.UTF-8"],
                "Cmd": ["bash"],
                "Entrypoint": ["/docker-entrypoint.sh"],
                "Labels": {"org.opencontainers.image.ref.name": "ubuntu", "keep": "yes"},
                "ExposedPorts": {"80/tcp": {}},
                "Volumes": {"/data": {}},
                "User": "root",
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
            "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "base"}],
        })
    }

    fn config_with(spec: ImageSpec) -> Value {
        build_config(Some(&base_config()), &spec, &[]).expect("config builds")
    }

    #[test]
    fn parses_lines() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("/bin/app", &["/bin/app"]),
            ("/bin/app\n--flag=a,b\n\n--x\n", &["/bin/app", "--flag=a,b", "--x"]),
            ("echo\nline1%5Cnline2", &["echo", "line1\nline2"]),
            ("%5Cn", &["\n"]),
            ("\n\n", &[]),
            (" spaced ", &[" spaced "]),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_lines(text), strings(expected), "{text:?}");
        }
    }

    #[test]
    fn parses_key_values() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("A=1", &[("A", "1")]),
            ("A=1\nB=x=y\n\nC=\n", &[("A", "1"), ("B", "x=y"), ("C", "")]),
            ("=v", &[("", "v")]),
            ("K= spaced value ", &[("K", " spaced value ")]),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_key_values(text).expect("parses"), pairs(expected), "{text:?}");
        }
    }

    #[test]
    fn key_values_without_equals_is_an_error_naming_the_line() {
        let err = parse_key_values("A=1\nNOPE\n").expect_err("must fail");
        let message = err.to_string();
        assert!(message.contains("NOPE"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn parses_comma_lists() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("8080/tcp", &["8080/tcp"]),
            ("80/tcp,443", &["80/tcp", "443"]),
            (" 80/tcp , ,443 ,", &["80/tcp", "443"]),
            ("/data,/var/log", &["/data", "/var/log"]),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_comma_list(text), strings(expected), "{text:?}");
        }
    }

    #[test]
    fn scratch_config_shape() {
        let config = build_config(None, &scratch_spec(), &[]).expect("builds");
        assert_eq!(
            config,
            json!({
                "created": "1970-01-01T00:00:00Z",
                "config": {},
                "history": [],
                "rootfs": {"type": "layers", "diff_ids": []},
                "os": "linux",
                "architecture": "amd64",
            })
        );

        let spec = ImageSpec { variant: Some("v7".to_string()), architecture: Some("arm".to_string()), ..scratch_spec() };
        let config = build_config(None, &spec, &[]).expect("builds");
        assert_eq!(config["variant"], "v7");
        assert_eq!(config["architecture"], "arm");

        let spec = ImageSpec { variant: Some(String::new()), ..scratch_spec() };
        let config = build_config(None, &spec, &[]).expect("builds");
        assert!(config.get("variant").is_none(), "empty variant is unset");
    }

    #[test]
    fn platform_attribute_errors() {
        let set = |s: &str| Some(s.to_string());
        let cases = [
            // (base?, os, architecture, variant, expected error fragment)
            (false, None, set("amd64"), None, "mandatory"),
            (false, set("linux"), None, None, "mandatory"),
            (false, None, None, None, "mandatory"),
            (false, set(""), set("amd64"), None, "mandatory"),
            (false, None, None, set("v8"), "mandatory"),
            (true, set("linux"), None, None, "cannot be overridden"),
            (true, None, set("amd64"), None, "cannot be overridden"),
            (true, None, None, set("v8"), "cannot be overridden"),
        ];
        let base = base_config();
        for (with_base, os, architecture, variant, fragment) in cases {
            let spec = ImageSpec { os: os.clone(), architecture: architecture.clone(), variant: variant.clone(), ..ImageSpec::default() };
            let base = with_base.then_some(&base);
            let err = build_config(base, &spec, &[]).expect_err("must fail");
            assert!(err.to_string().contains(fragment), "{os:?}/{architecture:?}/{variant:?}: {err}");
        }
        // Empty strings are Bazel's "unset" and are allowed with a base.
        let spec = ImageSpec { os: set(""), architecture: set(""), variant: set(""), ..ImageSpec::default() };
        build_config(Some(&base_config()), &spec, &[]).expect("empty strings are unset");
    }

    #[test]
    fn base_without_attributes_is_unchanged() {
        assert_eq!(config_with(ImageSpec::default()), base_config());
    }

    #[test]
    fn entrypoint_and_cmd() {
        let set = |items: &[&str]| Some(strings(items));
        // (entrypoint, cmd, expected Entrypoint, expected Cmd; None = field absent)
        let cases = [
            (None, None, Some(json!(["/docker-entrypoint.sh"])), Some(json!(["bash"]))),
            // Setting entrypoint clears the inherited Cmd.
            (set(&["/app"]), None, Some(json!(["/app"])), None),
            // cmd is applied after entrypoint, so it survives.
            (set(&["/app"]), set(&["--serve"]), Some(json!(["/app"])), Some(json!(["--serve"]))),
            // entrypoint = [] is an explicit empty entrypoint, and still clears Cmd.
            (set(&[]), None, Some(json!([])), None),
            (set(&[]), set(&["sh"]), Some(json!([])), Some(json!(["sh"]))),
            // cmd alone keeps the base entrypoint.
            (None, set(&["a", "b"]), Some(json!(["/docker-entrypoint.sh"])), Some(json!(["a", "b"]))),
            (None, set(&[]), Some(json!(["/docker-entrypoint.sh"])), Some(json!([]))),
        ];
        for (entrypoint, cmd, want_entrypoint, want_cmd) in cases {
            let config = config_with(ImageSpec { entrypoint: entrypoint.clone(), cmd: cmd.clone(), ..ImageSpec::default() });
            let inner = &config["config"];
            assert_eq!(inner.get("Entrypoint").cloned(), want_entrypoint, "{entrypoint:?} {cmd:?}");
            assert_eq!(inner.get("Cmd").cloned(), want_cmd, "{entrypoint:?} {cmd:?}");
        }
    }

    #[test]
    fn entrypoint_on_scratch_has_no_cmd_key() {
        let spec = ImageSpec { entrypoint: Some(strings(&["/app"])), ..scratch_spec() };
        let config = build_config(None, &spec, &[]).expect("builds");
        assert_eq!(config["config"], json!({"Entrypoint": ["/app"]}));
    }

    #[test]
    fn only_a_null_cmd_is_deleted() {
        let mut base = base_config();
        base["config"]["Cmd"] = Value::Null;
        base["config"]["Entrypoint"] = Value::Null;
        base["config"]["Healthcheck"] = Value::Null;
        let config = build_config(Some(&base), &ImageSpec::default(), &[]).expect("builds");
        let inner = config["config"].as_object().expect("object");
        assert!(!inner.contains_key("Cmd"));
        assert_eq!(inner.get("Entrypoint"), Some(&Value::Null));
        assert_eq!(inner.get("Healthcheck"), Some(&Value::Null));
    }

    #[test]
    fn env_expansion_and_merge() {
        let base_env = json!(["PATH=/usr/local/bin:/usr/bin", "HOME=/root", "LANG=C.UTF-8"]);
        // (new env lines, expected Env)
        let cases: &[(&[(&str, &str)], Value)] = &[
            (&[("PATH", "$PATH:/app/bin")], json!(["PATH=/usr/local/bin:/usr/bin:/app/bin", "HOME=/root", "LANG=C.UTF-8"])),
            (&[("PATH", "/opt/bin:${PATH}")], json!(["PATH=/opt/bin:/usr/local/bin:/usr/bin", "HOME=/root", "LANG=C.UTF-8"])),
            (&[("X", "a${UNDEFINED}b$NOPE")], json!(["PATH=/usr/local/bin:/usr/bin", "HOME=/root", "LANG=C.UTF-8", "X=ab"])),
            (
                // In-place replace keeps the position; new keys are appended in order.
                &[("NEW1", "1"), ("HOME", "/home/app"), ("NEW2", "2")],
                json!(["PATH=/usr/local/bin:/usr/bin", "HOME=/home/app", "LANG=C.UTF-8", "NEW1=1", "NEW2=2"]),
            ),
            (
                // Later lines see earlier ones.
                &[("A", "x"), ("B", "$A-$A"), ("A", "${A}y")],
                json!(["PATH=/usr/local/bin:/usr/bin", "HOME=/root", "LANG=C.UTF-8", "A=xy", "B=x-x"]),
            ),
            (
                // Braces are matched independently; a '$' without a name is literal; values may
                // contain '='.
                &[("S", "$HOME}|${HOME|$|${|$-|a=b")],
                json!(["PATH=/usr/local/bin:/usr/bin", "HOME=/root", "LANG=C.UTF-8", "S=/root|/root|$|${|$-|a=b"]),
            ),
            (
                // Names are the longest run of [A-Za-z0-9_]; `$$` is not special.
                &[("T", "$HOMEDIR/$HOME.x/$$HOME")],
                json!(["PATH=/usr/local/bin:/usr/bin", "HOME=/root", "LANG=C.UTF-8", "T=//root.x/$/root"]),
            ),
        ];
        for (entries, expected) in cases {
            let mut base = base_config();
            base["config"]["Env"] = base_env.clone();
            let spec = ImageSpec { env: pairs(entries), ..ImageSpec::default() };
            let config = build_config(Some(&base), &spec, &[]).expect("builds");
            assert_eq!(&config["config"]["Env"], expected, "{entries:?}");
        }
    }

    #[test]
    fn env_on_scratch_and_odd_base_entries() {
        let spec = ImageSpec { env: pairs(&[("PATH", "$PATH:/bin"), ("A", "1")]), ..scratch_spec() };
        let config = build_config(None, &spec, &[]).expect("builds");
        assert_eq!(config["config"]["Env"], json!(["PATH=:/bin", "A=1"]));

        // A base entry without '=' is normalised to "KEY=", as image.sh does.
        let mut base = base_config();
        base["config"]["Env"] = json!(["BARE", "K=v=w"]);
        let config = build_config(Some(&base), &ImageSpec { env: pairs(&[("Z", "$K")]), ..ImageSpec::default() }, &[]).expect("builds");
        assert_eq!(config["config"]["Env"], json!(["BARE=", "K=v=w", "Z=v=w"]));

        base["config"]["Env"] = json!("PATH=/bin");
        let err = build_config(Some(&base), &ImageSpec { env: pairs(&[("A", "1")]), ..ImageSpec::default() }, &[])
            .expect_err("Env must be an array");
        assert!(err.to_string().contains("Env"), "{err}");
    }

    #[test]
    fn labels_merge_keeping_base_labels() {
        let config = config_with(ImageSpec { labels: pairs(&[("keep", "overridden"), ("new", "a=b")]), ..ImageSpec::default() });
        assert_eq!(
            config["config"]["Labels"],
            json!({
                "org.opencontainers.image.ref.name": "ubuntu",
                "keep": "overridden",
                "new": "a=b",
            })
        );

        let spec = ImageSpec { labels: pairs(&[("a", "1")]), ..scratch_spec() };
        let config = build_config(None, &spec, &[]).expect("builds");
        assert_eq!(config["config"]["Labels"], json!({"a": "1"}));
    }

    #[test]
    fn ports_and_volumes_merge() {
        let config = config_with(ImageSpec {
            exposed_ports: strings(&["8080/tcp", "80/tcp", "53/udp"]),
            volumes: strings(&["/cache"]),
            ..ImageSpec::default()
        });
        assert_eq!(config["config"]["ExposedPorts"], json!({"80/tcp": {}, "8080/tcp": {}, "53/udp": {}}));
        assert_eq!(config["config"]["Volumes"], json!({"/data": {}, "/cache": {}}));

        // Keys are kept verbatim: no "/tcp" is added.
        let spec = ImageSpec { exposed_ports: strings(&["8080"]), ..scratch_spec() };
        let config = build_config(None, &spec, &[]).expect("builds");
        assert_eq!(config["config"], json!({"ExposedPorts": {"8080": {}}}));
    }

    #[test]
    fn user_and_workdir() {
        let config =
            config_with(ImageSpec { user: Some("65532:65532".to_string()), workdir: Some("/app".to_string()), ..ImageSpec::default() });
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["WorkingDir"], "/app");

        let config = config_with(ImageSpec { user: Some(String::new()), workdir: Some(String::new()), ..ImageSpec::default() });
        assert_eq!(config["config"]["User"], "root", "empty user is unset");
        assert!(config["config"].get("WorkingDir").is_none());
    }

    #[test]
    fn created_default_and_override() {
        let override_ = |created: &str| ImageSpec { created: Some(created.to_string()), ..ImageSpec::default() };
        let cases = [
            (config_with(ImageSpec::default()), Some("2024-01-02T03:04:05Z")),
            (build_config(None, &scratch_spec(), &[]).expect("builds"), Some("1970-01-01T00:00:00Z")),
            (config_with(override_("2025-05-05T00:00:00Z")), Some("2025-05-05T00:00:00Z")),
            // The file content is used raw, newline included, like `jq --rawfile`.
            (config_with(override_("2025-05-05T00:00:00Z\n")), Some("2025-05-05T00:00:00Z\n")),
            (
                build_config(None, &ImageSpec { created: Some("2000-01-01T00:00:00Z".to_string()), ..scratch_spec() }, &[])
                    .expect("builds"),
                Some("2000-01-01T00:00:00Z"),
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(config.get("created").and_then(Value::as_str), expected);
        }

        // A base without `created` stays without it.
        let mut base = base_config();
        base.as_object_mut().expect("object").shift_remove("created");
        let config = build_config(Some(&base), &ImageSpec::default(), &[]).expect("builds");
        assert!(config.get("created").is_none());
    }

    #[test]
    fn layers_append_diff_ids_and_history() {
        let layers = [layer(1, Compression::Gzip), layer(2, Compression::None)];
        let config = build_config(Some(&base_config()), &ImageSpec::default(), &layers).expect("builds");
        assert_eq!(
            config["rootfs"],
            json!({
                "type": "layers",
                "diff_ids": ["sha256:base", layers[0].diff_id, layers[1].diff_id],
            })
        );
        assert_eq!(
            config["history"],
            json!([
                {"created": "2024-01-02T03:04:05Z", "created_by": "base"},
                {"created": "1970-01-01T00:00:00Z", "created_by": "bazel build //app:layer1"},
                {"created": "1970-01-01T00:00:00Z", "created_by": "bazel build //app:layer2"},
            ])
        );

        let config = build_config(None, &scratch_spec(), &layers[..1]).expect("builds");
        assert_eq!(config["rootfs"]["diff_ids"], json!([layers[0].diff_id]));
        assert_eq!(config["history"].as_array().map(Vec::len), Some(1));

        // A base without rootfs/history gets them created (jq's `+=` on null).
        let base = json!({"os": "linux", "architecture": "amd64", "history": null});
        let config = build_config(Some(&base), &ImageSpec::default(), &layers[..1]).expect("builds");
        assert_eq!(config["rootfs"], json!({"diff_ids": [layers[0].diff_id]}));
        assert_eq!(config["history"].as_array().map(Vec::len), Some(1));

        let base = json!({"rootfs": {"diff_ids": "oops"}});
        build_config(Some(&base), &ImageSpec::default(), &layers[..1]).expect_err("diff_ids must be an array");
    }

    #[test]
    fn scratch_manifest() {
        let layers = [layer(1, Compression::Gzip), layer(2, Compression::Zstd)];
        let manifest = build_manifest(None, "sha256:cfg", 123, &layers, &[]).expect("builds");
        assert_eq!(
            manifest,
            json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": "sha256:cfg", "size": 123},
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layers[0].digest,
                        "size": 101,
                    },
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                        "digest": layers[1].digest,
                        "size": 102,
                    },
                ],
            })
        );
    }

    #[test]
    fn oci_base_manifest_keeps_layers_and_merges_annotations() {
        let base = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": "sha256:old",
                "size": 1,
                "data": "e30=",
            },
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:b", "size": 9}],
            "annotations": {"keep": "1", "over": "old"},
        });
        let annotations = pairs(&[("over", "new"), ("org.opencontainers.image.source", "x=y")]);
        let manifest = build_manifest(Some(&base), "sha256:new", 77, &[layer(3, Compression::None)], &annotations).expect("builds");
        assert_eq!(
            manifest,
            json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": "sha256:new", "size": 77},
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:b", "size": 9},
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer(3, Compression::None).digest, "size": 103},
                ],
                "annotations": {"keep": "1", "over": "new", "org.opencontainers.image.source": "x=y"},
            })
        );
    }

    #[test]
    fn docker_base_manifest_keeps_docker_media_types() {
        let base = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": "sha256:old", "size": 1},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "sha256:b", "size": 9}],
        });
        let layers = [layer(1, Compression::None), layer(2, Compression::Gzip), layer(3, Compression::Zstd)];
        let manifest = build_manifest(Some(&base), "sha256:new", 5, &layers, &[]).expect("builds");
        assert_eq!(manifest["mediaType"], DOCKER_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], DOCKER_CONFIG);
        let types: Vec<&str> = manifest["layers"].as_array().expect("array").iter().filter_map(|l| l["mediaType"].as_str()).collect();
        assert_eq!(
            types,
            [
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.image.rootfs.diff.tar",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.docker.image.rootfs.diff.tar.zstd",
            ]
        );
        assert!(manifest.get("annotations").is_none());
    }

    #[test]
    fn base_manifest_edge_cases() {
        // No mediaType: treated as OCI and filled in.
        let base = json!({"schemaVersion": 2, "config": {"digest": "sha256:old", "size": 1}, "layers": []});
        let manifest = build_manifest(Some(&base), "sha256:new", 2, &[layer(1, Compression::Gzip)], &[]).expect("builds");
        assert_eq!(manifest["mediaType"], OCI_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], OCI_CONFIG);
        assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");

        for index in [
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
            json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST, "manifests": []}),
            json!({"schemaVersion": 2, "manifests": []}),
        ] {
            let err = build_manifest(Some(&index), "sha256:c", 1, &[], &[]).expect_err("index");
            assert!(err.to_string().contains("index"), "{err}");
        }
        build_manifest(Some(&json!([])), "sha256:c", 1, &[], &[]).expect_err("not an object");
        let bad_annotations = json!({"mediaType": OCI_MANIFEST, "annotations": []});
        build_manifest(Some(&bad_annotations), "sha256:c", 1, &[], &pairs(&[("a", "b")])).expect_err("annotations must be an object");
    }

    #[test]
    fn image_index_platforms_drop_nulls() {
        let descriptor = |d: &str| Descriptor::new(OCI_MANIFEST, d, 10);
        let entries = vec![
            (descriptor("sha256:a"), json!({"os": "linux", "architecture": "amd64", "variant": null, "rootfs": {}})),
            (descriptor("sha256:b"), json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
            (
                Descriptor { platform: Some(Platform { os: Some("stale".into()), ..Default::default() }), ..descriptor("sha256:c") },
                json!({
                    "os": "windows",
                    "architecture": "amd64",
                    "os.version": "10.0.17763.1040",
                    "os.features": ["win32k"],
                }),
            ),
        ];
        let index = build_image_index(&entries, &pairs(&[("org.example", "1")]));
        assert_eq!(
            serde_json::to_value(&index).expect("serialises"),
            json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {"mediaType": OCI_MANIFEST, "digest": "sha256:a", "size": 10,
                     "platform": {"os": "linux", "architecture": "amd64"}},
                    {"mediaType": OCI_MANIFEST, "digest": "sha256:b", "size": 10,
                     "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                    {"mediaType": OCI_MANIFEST, "digest": "sha256:c", "size": 10,
                     "platform": {"os": "windows", "architecture": "amd64",
                                  "os.version": "10.0.17763.1040", "os.features": ["win32k"]}},
                ],
                "annotations": {"org.example": "1"},
            })
        );
        let without = build_image_index(&entries[..1], &[]);
        assert!(without.annotations.is_none());
    }

    #[test]
    fn canonical_config_digest_is_independent_of_build_order() {
        let spec = ImageSpec { labels: pairs(&[("b", "2"), ("a", "1")]), ..scratch_spec() };
        let reversed = ImageSpec { labels: pairs(&[("a", "1"), ("b", "2")]), ..scratch_spec() };
        let one = build_config(None, &spec, &[]).expect("builds");
        let two = build_config(None, &reversed, &[]).expect("builds");
        assert_eq!(canonical_json(&one).expect("serialises"), canonical_json(&two).expect("serialises"));
    }
}
