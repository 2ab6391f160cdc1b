//! container-structure-test config files (`schemaVersion` 1.0.0 and 2.0.0), parsed as CST's
//! `cmd/.../test/util.go` `Parse` does: the file type comes from the extension (`.json`, `.yaml`,
//! `.yml`), `schemaVersion` is read first, then the whole file is decoded strictly into the
//! schema's types (`yaml.UnmarshalStrict`: an unknown field is an error).
//!
//! Deliberate differences from CST:
//! - JSON files are decoded strictly too and with the exact (camelCase) key names; CST's
//!   `encoding/json` ignores unknown keys and matches keys case-insensitively.
//! - Defaults that CST only sets in its YAML decoder are kept as CST has them for JSON: in a JSON
//!   file a file existence test's `shouldExist` defaults to `false` and `uid`/`gid` to `0` (CST's
//!   `UnmarshalYAML` hook, which sets `true`/`-1`, is not called by `encoding/json`).
//! - As yaml.v2 does, any YAML scalar (number, bool) is accepted where a string is expected
//!   (`value: 8080` is `"8080"`); floats are re-rendered, so write `"1.10"` quoted.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A config file that could not be used. Display names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum CstError {
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
}

impl CstError {
    fn new(path: &Path, message: impl Into<String>) -> CstError {
        CstError::Config { path: path.to_owned(), message: message.into() }
    }
}

/// `schemaVersion` of a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaVersion {
    V1,
    V2,
}

/// `{key, value, isRegex}` (CST's `EnvVar` and `Label`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
    pub is_regex: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandTest {
    pub name: String,
    pub setup: Vec<Vec<String>>,
    pub teardown: Vec<Vec<String>>,
    pub env_vars: Vec<EnvVar>,
    pub exit_code: i64,
    /// v2 `command`; for v1 the first element of the `command` list.
    pub command: String,
    /// v2 `args`; for v1 the rest of the `command` list.
    pub args: Vec<String>,
    pub expected_output: Vec<String>,
    pub excluded_output: Vec<String>,
    pub expected_error: Vec<String>,
    pub excluded_error: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileExistenceTest {
    pub name: String,
    pub path: String,
    pub should_exist: bool,
    pub permissions: String,
    /// -1 = unchecked.
    pub uid: i64,
    /// -1 = unchecked.
    pub gid: i64,
    pub is_executable_by: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileContentTest {
    pub name: String,
    pub path: String,
    pub expected_contents: Vec<String>,
    pub excluded_contents: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenseTest {
    pub debian: bool,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataTest {
    pub env_vars: Vec<EnvVar>,
    pub unbound_env_vars: Vec<EnvVar>,
    pub exposed_ports: Vec<String>,
    pub unexposed_ports: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: String,
    pub volumes: Vec<String>,
    pub unmounted_volumes: Vec<String>,
    pub labels: Vec<EnvVar>,
    pub user: String,
}

impl MetadataTest {
    /// CST runs the metadata test only when something in it is set.
    pub fn is_empty(&self) -> bool {
        self.env_vars.is_empty()
            && self.unbound_env_vars.is_empty()
            && self.exposed_ports.is_empty()
            && self.unexposed_ports.is_empty()
            && self.entrypoint.is_none()
            && self.cmd.is_none()
            && self.workdir.is_empty()
            && self.user.is_empty()
            && self.volumes.is_empty()
            && self.unmounted_volumes.is_empty()
            && self.labels.is_empty()
    }
}

/// `containerRunOptions` (docker driver only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRunOptions {
    pub user: String,
    pub privileged: bool,
    pub allocate_tty: bool,
    pub env_vars: Vec<String>,
    pub env_file: String,
    pub capabilities: Vec<String>,
    pub bind_mounts: Vec<String>,
}

impl ContainerRunOptions {
    /// CST's `IsSet`: when set, these options replace the container's env (see the driver).
    pub fn is_set(&self) -> bool {
        !self.user.is_empty()
            || self.privileged
            || self.allocate_tty
            || !self.env_file.is_empty()
            || !self.env_vars.is_empty()
            || !self.capabilities.is_empty()
            || !self.bind_mounts.is_empty()
    }
}

/// One parsed config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureTests {
    pub path: PathBuf,
    pub schema_version: SchemaVersion,
    pub global_env_vars: Vec<EnvVar>,
    pub command_tests: Vec<CommandTest>,
    pub file_existence_tests: Vec<FileExistenceTest>,
    pub file_content_tests: Vec<FileContentTest>,
    pub metadata_test: MetadataTest,
    pub license_tests: Vec<LicenseTest>,
    pub container_run_options: ContainerRunOptions,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

/// Reads and strictly decodes one config file.
pub fn parse_config(path: &Path) -> Result<StructureTests, CstError> {
    let name = path.to_string_lossy();
    let format = if name.ends_with(".json") {
        Format::Json
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        Format::Yaml
    } else {
        return Err(CstError::new(path, "Please provide valid JSON or YAML config file"));
    };
    let text = std::fs::read_to_string(path).map_err(|e| CstError::new(path, format!("cannot read config file: {e}")))?;
    parse_config_str(path, &text, format == Format::Json)
}

/// [`parse_config`] on text already read; `path` is only used in messages and kept in the result.
pub fn parse_config_str(path: &Path, text: &str, json: bool) -> Result<StructureTests, CstError> {
    let format = if json { Format::Json } else { Format::Yaml };

    #[derive(Deserialize)]
    struct VersionHolder {
        #[serde(rename = "schemaVersion", default)]
        schema_version: Option<Scalar>,
    }
    let holder: VersionHolder = decode(text, format).map_err(|e| CstError::new(path, e))?;
    let version = holder.schema_version.map(|s| s.0).unwrap_or_default();
    if version.is_empty() {
        return Err(CstError::new(path, "Please provide schema version"));
    }
    let (schema_version, tests) = match version.as_str() {
        "2.0.0" => {
            let raw: RawV2 = decode(text, format).map_err(|e| CstError::new(path, format!("error unmarshalling config: {e}")))?;
            (SchemaVersion::V2, raw.convert(format))
        }
        "1.0.0" => {
            let raw: RawV1 = decode(text, format).map_err(|e| CstError::new(path, format!("error unmarshalling config: {e}")))?;
            (SchemaVersion::V1, raw.convert(format))
        }
        other => {
            return Err(CstError::new(path, format!("Unsupported schema version: {other}")));
        }
    };
    Ok(StructureTests { path: path.to_owned(), schema_version, ..tests })
}

fn decode<T: de::DeserializeOwned>(text: &str, format: Format) -> Result<T, String> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
        Format::Yaml => {
            // An empty YAML document is a null; decode it as an empty mapping like yaml.v2.
            if text.trim().is_empty() {
                return serde_yaml_ng::from_str("{}").map_err(|e| e.to_string());
            }
            check_flow_depth(text)?;
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
        }
    }
}

/// Deepest `[`/`{` nesting a YAML config may have. libyaml's scanner (under serde_yaml_ng)
/// takes time quadratic in the flow nesting depth (20,000 levels: 8 s), and serde_yaml_ng
/// refuses more than 128 levels anyway, so deeper text is refused before it is parsed.
/// go-yaml refuses depths over 10,000 the same way ("exceeded max depth").
const MAX_FLOW_DEPTH: usize = 1000;

/// Counts brackets without regard to quoting: brackets inside strings only make the count
/// larger, and no real config has hundreds of unclosed ones there.
fn check_flow_depth(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    for (line, l) in text.lines().enumerate() {
        for c in l.chars() {
            match c {
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Err(format!("line {}: exceeded max depth of {MAX_FLOW_DEPTH}", line + 1));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Raw serde shapes: one per schema, field names as CST's yaml tags, unknown fields rejected.

/// A string that, as in yaml.v2, may be written as any scalar (`8080`, `true`); null is "".
#[derive(Debug, Clone, Default)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::default())
            }
        }
        d.deserialize_any(V)
    }
}

fn s(v: Option<Scalar>) -> String {
    v.map(|s| s.0).unwrap_or_default()
}

fn sv(v: Option<Vec<Scalar>>) -> Vec<String> {
    v.unwrap_or_default().into_iter().map(|s| s.0).collect()
}

fn svv(v: Option<Vec<Vec<Scalar>>>) -> Vec<Vec<String>> {
    v.unwrap_or_default().into_iter().map(|c| c.into_iter().map(|s| s.0).collect()).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvVar {
    #[serde(default)]
    key: Option<Scalar>,
    #[serde(default)]
    value: Option<Scalar>,
    #[serde(rename = "isRegex", default)]
    is_regex: Option<bool>,
}

fn env(v: Option<Vec<RawEnvVar>>) -> Vec<EnvVar> {
    v.unwrap_or_default().into_iter().map(|e| EnvVar { key: s(e.key), value: s(e.value), is_regex: e.is_regex.unwrap_or(false) }).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawV2 {
    #[serde(default)]
    schema_version: Option<Scalar>,
    #[serde(default)]
    global_env_vars: Option<Vec<RawEnvVar>>,
    #[serde(default)]
    command_tests: Option<Vec<RawCommandV2>>,
    #[serde(default)]
    file_existence_tests: Option<Vec<RawFileExistenceV2>>,
    #[serde(default)]
    file_content_tests: Option<Vec<RawFileContent>>,
    #[serde(default)]
    metadata_test: Option<RawMetadata>,
    #[serde(default)]
    license_tests: Option<Vec<RawLicense>>,
    #[serde(default)]
    container_run_options: Option<RawRunOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCommandV2 {
    #[serde(default)]
    name: Option<Scalar>,
    #[serde(default)]
    setup: Option<Vec<Vec<Scalar>>>,
    #[serde(default)]
    teardown: Option<Vec<Vec<Scalar>>>,
    #[serde(default)]
    env_vars: Option<Vec<RawEnvVar>>,
    #[serde(default)]
    exit_code: Option<i64>,
    #[serde(default)]
    command: Option<Scalar>,
    #[serde(default)]
    args: Option<Vec<Scalar>>,
    #[serde(default)]
    expected_output: Option<Vec<Scalar>>,
    #[serde(default)]
    excluded_output: Option<Vec<Scalar>>,
    #[serde(default)]
    expected_error: Option<Vec<Scalar>>,
    #[serde(default)]
    excluded_error: Option<Vec<Scalar>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFileExistenceV2 {
    #[serde(default)]
    name: Option<Scalar>,
    #[serde(default)]
    path: Option<Scalar>,
    #[serde(default)]
    should_exist: Option<bool>,
    #[serde(default)]
    permissions: Option<Scalar>,
    #[serde(default)]
    uid: Option<i64>,
    #[serde(default)]
    gid: Option<i64>,
    #[serde(default)]
    is_executable_by: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFileContent {
    #[serde(default)]
    name: Option<Scalar>,
    #[serde(default)]
    path: Option<Scalar>,
    #[serde(default)]
    expected_contents: Option<Vec<Scalar>>,
    #[serde(default)]
    excluded_contents: Option<Vec<Scalar>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLicense {
    #[serde(default)]
    debian: Option<bool>,
    #[serde(default)]
    files: Option<Vec<Scalar>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMetadata {
    #[serde(default)]
    env_vars: Option<Vec<RawEnvVar>>,
    #[serde(default)]
    unbound_env_vars: Option<Vec<RawEnvVar>>,
    #[serde(default)]
    exposed_ports: Option<Vec<Scalar>>,
    #[serde(default)]
    unexposed_ports: Option<Vec<Scalar>>,
    #[serde(default)]
    entrypoint: Option<Vec<Scalar>>,
    #[serde(default)]
    cmd: Option<Vec<Scalar>>,
    #[serde(default)]
    workdir: Option<Scalar>,
    #[serde(default)]
    volumes: Option<Vec<Scalar>>,
    #[serde(default)]
    unmounted_volumes: Option<Vec<Scalar>>,
    #[serde(default)]
    labels: Option<Vec<RawEnvVar>>,
    #[serde(default)]
    user: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRunOptions {
    #[serde(default)]
    user: Option<Scalar>,
    #[serde(default)]
    privileged: Option<bool>,
    #[serde(default)]
    allocate_tty: Option<bool>,
    #[serde(default)]
    env_vars: Option<Vec<Scalar>>,
    #[serde(default)]
    env_file: Option<Scalar>,
    #[serde(default)]
    capabilities: Option<Vec<Scalar>>,
    #[serde(default)]
    bind_mounts: Option<Vec<Scalar>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawV1 {
    #[serde(default)]
    schema_version: Option<Scalar>,
    #[serde(default)]
    global_env_vars: Option<Vec<RawEnvVar>>,
    #[serde(default)]
    command_tests: Option<Vec<RawCommandV1>>,
    #[serde(default)]
    file_existence_tests: Option<Vec<RawFileExistenceV1>>,
    #[serde(default)]
    file_content_tests: Option<Vec<RawFileContent>>,
    #[serde(default)]
    license_tests: Option<Vec<RawLicense>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCommandV1 {
    #[serde(default)]
    name: Option<Scalar>,
    #[serde(default)]
    setup: Option<Vec<Vec<Scalar>>>,
    #[serde(default)]
    teardown: Option<Vec<Vec<Scalar>>>,
    #[serde(default)]
    env_vars: Option<Vec<RawEnvVar>>,
    #[serde(default)]
    exit_code: Option<i64>,
    #[serde(default)]
    command: Option<Vec<Scalar>>,
    #[serde(default)]
    expected_output: Option<Vec<Scalar>>,
    #[serde(default)]
    excluded_output: Option<Vec<Scalar>>,
    #[serde(default)]
    expected_error: Option<Vec<Scalar>>,
    #[serde(default)]
    excluded_error: Option<Vec<Scalar>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFileExistenceV1 {
    #[serde(default)]
    name: Option<Scalar>,
    #[serde(default)]
    path: Option<Scalar>,
    #[serde(default)]
    should_exist: Option<bool>,
    #[serde(default)]
    permissions: Option<Scalar>,
}

fn content(v: Option<Vec<RawFileContent>>) -> Vec<FileContentTest> {
    v.unwrap_or_default()
        .into_iter()
        .map(|t| FileContentTest {
            name: s(t.name),
            path: s(t.path),
            expected_contents: sv(t.expected_contents),
            excluded_contents: sv(t.excluded_contents),
        })
        .collect()
}

fn licenses(v: Option<Vec<RawLicense>>) -> Vec<LicenseTest> {
    v.unwrap_or_default().into_iter().map(|t| LicenseTest { debian: t.debian.unwrap_or(false), files: sv(t.files) }).collect()
}

/// yaml.v2 runs CST's `UnmarshalYAML` hook (shouldExist true, uid/gid -1); encoding/json doesn't.
fn existence_defaults(format: Format) -> (bool, i64) {
    match format {
        Format::Yaml => (true, -1),
        Format::Json => (false, 0),
    }
}

impl RawV2 {
    fn convert(self, format: Format) -> StructureTests {
        let _ = self.schema_version;
        let (should_exist, owner) = existence_defaults(format);
        let m = self.metadata_test;
        let o = self.container_run_options;
        StructureTests {
            path: PathBuf::new(),
            schema_version: SchemaVersion::V2,
            global_env_vars: env(self.global_env_vars),
            command_tests: self
                .command_tests
                .unwrap_or_default()
                .into_iter()
                .map(|t| CommandTest {
                    name: s(t.name),
                    setup: svv(t.setup),
                    teardown: svv(t.teardown),
                    env_vars: env(t.env_vars),
                    exit_code: t.exit_code.unwrap_or(0),
                    command: s(t.command),
                    args: sv(t.args),
                    expected_output: sv(t.expected_output),
                    excluded_output: sv(t.excluded_output),
                    expected_error: sv(t.expected_error),
                    excluded_error: sv(t.excluded_error),
                })
                .collect(),
            file_existence_tests: self
                .file_existence_tests
                .unwrap_or_default()
                .into_iter()
                .map(|t| FileExistenceTest {
                    name: s(t.name),
                    path: s(t.path),
                    should_exist: t.should_exist.unwrap_or(should_exist),
                    permissions: s(t.permissions),
                    uid: t.uid.unwrap_or(owner),
                    gid: t.gid.unwrap_or(owner),
                    is_executable_by: s(t.is_executable_by),
                })
                .collect(),
            file_content_tests: content(self.file_content_tests),
            metadata_test: match m {
                None => MetadataTest::default(),
                Some(m) => MetadataTest {
                    env_vars: env(m.env_vars),
                    unbound_env_vars: env(m.unbound_env_vars),
                    exposed_ports: sv(m.exposed_ports),
                    unexposed_ports: sv(m.unexposed_ports),
                    entrypoint: m.entrypoint.map(|v| v.into_iter().map(|s| s.0).collect()),
                    cmd: m.cmd.map(|v| v.into_iter().map(|s| s.0).collect()),
                    workdir: s(m.workdir),
                    volumes: sv(m.volumes),
                    unmounted_volumes: sv(m.unmounted_volumes),
                    labels: env(m.labels),
                    user: s(m.user),
                },
            },
            license_tests: licenses(self.license_tests),
            container_run_options: match o {
                None => ContainerRunOptions::default(),
                Some(o) => ContainerRunOptions {
                    user: s(o.user),
                    privileged: o.privileged.unwrap_or(false),
                    allocate_tty: o.allocate_tty.unwrap_or(false),
                    env_vars: sv(o.env_vars),
                    env_file: s(o.env_file),
                    capabilities: sv(o.capabilities),
                    bind_mounts: sv(o.bind_mounts),
                },
            },
        }
    }
}

impl RawV1 {
    fn convert(self, format: Format) -> StructureTests {
        let _ = self.schema_version;
        let (should_exist, _) = existence_defaults(format);
        StructureTests {
            path: PathBuf::new(),
            schema_version: SchemaVersion::V1,
            global_env_vars: env(self.global_env_vars),
            command_tests: self
                .command_tests
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    let mut command = sv(t.command).into_iter();
                    CommandTest {
                        name: s(t.name),
                        setup: svv(t.setup),
                        teardown: svv(t.teardown),
                        env_vars: env(t.env_vars),
                        exit_code: t.exit_code.unwrap_or(0),
                        command: command.next().unwrap_or_default(),
                        args: command.collect(),
                        expected_output: sv(t.expected_output),
                        excluded_output: sv(t.excluded_output),
                        expected_error: sv(t.expected_error),
                        excluded_error: sv(t.excluded_error),
                    }
                })
                .collect(),
            file_existence_tests: self
                .file_existence_tests
                .unwrap_or_default()
                .into_iter()
                .map(|t| FileExistenceTest {
                    name: s(t.name),
                    path: s(t.path),
                    should_exist: t.should_exist.unwrap_or(should_exist),
                    permissions: s(t.permissions),
                    uid: -1,
                    gid: -1,
                    is_executable_by: String::new(),
                })
                .collect(),
            file_content_tests: content(self.file_content_tests),
            metadata_test: MetadataTest::default(),
            license_tests: licenses(self.license_tests),
            container_run_options: ContainerRunOptions::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<StructureTests, CstError> {
        parse_config_str(Path::new("dir/t.yaml"), text, false)
    }

    #[test]
    fn unknown_field_names_field_and_file() {
        let err = yaml("schemaVersion: 2.0.0\nmetadataTest:\n  unboundEnv:\n    - key: X\n").unwrap_err().to_string();
        assert!(err.starts_with("dir/t.yaml: error unmarshalling config:"), "{err}");
        assert!(err.contains("unknown field `unboundEnv`"), "{err}");

        let err = yaml("schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n    command: x\n    bogus: 1\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `bogus`"), "{err}");

        // metadataTest.env (the old name) is rejected.
        let err = yaml("schemaVersion: 2.0.0\nmetadataTest:\n  env: []\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `env`"), "{err}");

        let err = parse_config_str(Path::new("t.json"), r#"{"schemaVersion":"2.0.0","nope":1}"#, true).unwrap_err().to_string();
        assert!(err.starts_with("t.json: ") && err.contains("unknown field `nope`"), "{err}");
    }

    #[test]
    fn schema_version_required_and_checked() {
        let err = yaml("commandTests: []\n").unwrap_err().to_string();
        assert_eq!(err, "dir/t.yaml: Please provide schema version");
        let err = yaml("schemaVersion: 3.0.0\n").unwrap_err().to_string();
        assert_eq!(err, "dir/t.yaml: Unsupported schema version: 3.0.0");
        let err = parse_config(Path::new("/nonexistent/t.txt")).unwrap_err().to_string();
        assert_eq!(err, "/nonexistent/t.txt: Please provide valid JSON or YAML config file");
    }

    #[test]
    fn v2_defaults_and_fields() {
        let t = yaml(
            "schemaVersion: '2.0.0'\n\
             globalEnvVars:\n  - key: A\n    value: 1\n\
             commandTests:\n  - name: c\n    command: sh\n    args: [-c, echo $HOME]\n\
             fileExistenceTests:\n  - name: f\n    path: /bin\n\
             metadataTest:\n  entrypoint: []\n  labels:\n    - key: l\n      value: v.*\n      isRegex: true\n\
             containerRunOptions:\n  allocateTty: true\n  capabilities: [NET_ADMIN]\n",
        )
        .unwrap();
        assert_eq!(t.schema_version, SchemaVersion::V2);
        assert_eq!(t.global_env_vars[0].value, "1");
        assert_eq!(t.command_tests[0].exit_code, 0);
        assert_eq!(t.command_tests[0].args, ["-c", "echo $HOME"]);
        let f = &t.file_existence_tests[0];
        assert!(f.should_exist);
        assert_eq!((f.uid, f.gid), (-1, -1));
        assert_eq!(t.metadata_test.entrypoint, Some(vec![]));
        assert!(t.metadata_test.cmd.is_none());
        assert!(t.metadata_test.labels[0].is_regex);
        assert!(!t.metadata_test.is_empty());
        assert!(t.container_run_options.is_set());
    }

    #[test]
    fn v1_command_is_a_list_and_v2_fields_are_rejected() {
        let t = yaml("schemaVersion: 1.0.0\ncommandTests:\n  - name: c\n    command: [echo, hi]\n").unwrap();
        assert_eq!(t.schema_version, SchemaVersion::V1);
        assert_eq!(t.command_tests[0].command, "echo");
        assert_eq!(t.command_tests[0].args, ["hi"]);
        let err = yaml("schemaVersion: 1.0.0\nmetadataTest: {}\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `metadataTest`"), "{err}");
    }

    #[test]
    fn json_existence_defaults_follow_encoding_json() {
        let t = parse_config_str(Path::new("t.json"), r#"{"schemaVersion":"2.0.0","fileExistenceTests":[{"name":"n","path":"/p"}]}"#, true)
            .unwrap();
        let f = &t.file_existence_tests[0];
        assert!(!f.should_exist);
        assert_eq!((f.uid, f.gid), (0, 0));
    }

    #[test]
    fn deeply_nested_yaml_is_refused_before_parsing() {
        // Found by fuzz/fuzz_targets/cst_config.rs: 100,000 nested `[` took minutes in the
        // YAML scanner (quadratic in depth) before failing on serde's recursion limit.
        let deep = format!("schemaVersion: 2.0.0\ncommandTests: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = yaml(&deep).unwrap_err().to_string();
        assert!(e.contains("line 2: exceeded max depth of 1000"), "{e}");
        // Brackets that close again do not add up.
        let many = format!("schemaVersion: 2.0.0\ncommandTests: []\n{}", "# [x] {y}\n".repeat(2000));
        assert!(yaml(&many).is_ok());
    }
}
