//! An `oci_image` whose `base` is a `docker save` or OCI-layout tarball (README, "base images
//! from docker-save or OCI tarballs"): every path the tarball names (manifest.json's `Config`
//! and `Layers`, index.json's blobs, symlink and hardlink members) must resolve to one of the
//! tarball's own regular-file members. A tarball naming a host file (a private key,
//! `~/.docker/config.json`, `/dev/zero`) fails the build with a message naming the tarball and
//! the entry, the host file's bytes end up nowhere under `ocib-out` or the cache, and its mode
//! is left alone.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Output;
use serde_json::{Value, json};

const BUILD: &str = "load(\"@rules_oci//oci:defs.bzl\", \"oci_image\")\n\
                     oci_image(name = \"image\", base = \"base.tar\")\n";

/// A host file the tarball must not be able to reach: JSON (like `~/.docker/config.json`), so
/// that the old code accepted it as a config, mode 0600 like a private key.
struct Secret {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bytes: Vec<u8>,
}

fn secret() -> Secret {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let marker = format!("OCIB-TEST-SECRET-{}-{:?}", std::process::id(), Instant::now());
    let bytes = serde_json::to_vec(&json!({"auths": {"registry.example": {"auth": marker}}})).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    Secret { _dir: dir, path, bytes }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A tar being crafted member by member (the `tar` crate refuses `..` in member names but not
/// in link names, which is what a hostile tarball uses).
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        self.0.append_data(&mut h, name, data).unwrap();
        self
    }

    fn link(&mut self, kind: tar::EntryType, name: &str, target: &str) -> &mut Tar {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_entry_type(kind);
        self.0.append_link(&mut h, name, target).unwrap();
        self
    }

    /// A member of type `kind` with no data (a device node, a FIFO).
    fn special(&mut self, kind: tar::EntryType, name: &str) -> &mut Tar {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o666);
        h.set_entry_type(kind);
        self.0.append_data(&mut h, name, std::io::empty()).unwrap();
        self
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.link(tar::EntryType::Symlink, name, target)
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.link(tar::EntryType::Link, name, target)
    }

    fn bytes(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

/// An uncompressed layer holding one file.
fn layer(content: &str) -> Vec<u8> {
    Tar::new().file("hello.txt", content.as_bytes()).bytes()
}

fn config(diff_ids: &[&[u8]]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|l| format!("sha256:{}", sha256_hex(l))).collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

fn docker_manifest(config: &str, layers: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&json!([{"Config": config, "Layers": layers, "RepoTags": ["base:1"]}])).unwrap()
}

/// `../` enough times to climb from anywhere under the workspace to `/`, then `abs`.
fn dotdot(abs: &Path) -> String {
    format!("{}{}", "../".repeat(64), abs.display().to_string().trim_start_matches('/'))
}

fn oci_manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{}", sha256_hex(l)), "size": l.len()}))
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha256_hex(config)), "size": config.len()},
        "layers": layer_descs,
    }))
    .unwrap()
}

fn oci_index(manifest: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", sha256_hex(manifest)), "size": manifest.len()}],
    }))
    .unwrap()
}

/// A workspace building `//:image` on top of `base.tar` = `tarball`, with its own cache.
struct Case {
    ws: tempfile::TempDir,
    cache: tempfile::TempDir,
}

fn case(tarball: &[u8]) -> Case {
    let ws = common::workspace(&[("MODULE.bazel", ""), ("BUILD.bazel", BUILD)]);
    std::fs::write(ws.path().join("base.tar"), tarball).unwrap();
    Case { ws, cache: tempfile::tempdir().unwrap() }
}

/// Runs `ocib build //:image`, killing it if it is still running after a generous deadline:
/// a hang (reading `/dev/zero` forever) fails the test instead of hanging the suite. This is a
/// guard, not a timing assertion: a working build takes well under a second.
fn build_guarded(c: &Case) -> Output {
    let logs = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocib"))
        .args(["--nohome_rc", "--nosystem_rc", "build", "--noshow_progress"])
        .arg(format!("--disk_cache={}", c.cache.path().display()))
        .arg("//:image")
        .current_dir(c.ws.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("run ocib");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ocib was still running after 300 s (reading an endless file?); killed it:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// No file under `root` (not following symlinks) contains `needle`.
fn assert_absent(root: &Path, needle: &[u8], what: &str) {
    if !root.exists() {
        return;
    }
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{what}: the host file's bytes ended up in {}",
                entry.path().display()
            );
        }
    }
}

/// The build failed naming the tarball and `entry`, and the secret is untouched and nowhere in
/// the outputs or the cache.
fn assert_refused(c: &Case, out: &Output, s: &Secret, entry: &str, what: &str) {
    assert_ne!(out.code, 0, "{what}: the build must fail:\n{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{what}: a build failure, not a panic:\n{}", out.stderr);
    assert!(out.stderr.contains("base.tar"), "{what}: the error names the tarball:\n{}", out.stderr);
    assert!(out.stderr.contains(entry), "{what}: the error names the entry {entry:?}:\n{}", out.stderr);
    let mode = std::fs::metadata(&s.path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "{what}: the host file's mode changed");
    assert_eq!(std::fs::read(&s.path).unwrap(), s.bytes, "{what}: the host file changed");
    assert_absent(&c.ws.path().join("ocib-out"), &s.bytes, what);
    assert_absent(c.cache.path(), &s.bytes, what);
}

#[test]
fn docker_save_config_or_layers_naming_a_host_file_is_refused() {
    let s = secret();
    let abs = s.path.display().to_string();
    let rel = dotdot(&s.path);
    let good_layer = layer("hi\n");
    let good_config = config(&[&good_layer]);
    for (field, config_name, layer_name) in [
        ("Config", abs.as_str(), "layer.tar"),
        ("Config", rel.as_str(), "layer.tar"),
        ("Layers", "config.json", abs.as_str()),
        ("Layers", "config.json", rel.as_str()),
    ] {
        // A Config naming the secret comes with a valid layer; a layer naming the secret with
        // a config whose diff_id matches it, so nothing but the path check can stop it.
        let cfg = if field == "Layers" { config(&[&s.bytes]) } else { good_config.clone() };
        let tarball = Tar::new()
            .file("config.json", &cfg)
            .file("layer.tar", &good_layer)
            .file("manifest.json", &docker_manifest(config_name, &[layer_name]))
            .bytes();
        let c = case(&tarball);
        let out = build_guarded(&c);
        let what = format!("{field} = {}", if config_name.starts_with("config") { layer_name } else { config_name });
        assert_refused(&c, &out, &s, if field == "Config" { config_name } else { layer_name }, &what);
        assert!(out.stderr.contains(field), "{what}: the error names the manifest.json field:\n{}", out.stderr);
    }
}

#[test]
fn link_members_pointing_outside_the_tarball_are_refused() {
    let s = secret();
    let abs = s.path.display().to_string();
    let rel = dotdot(&s.path);
    let cfg = config(&[&s.bytes]);
    for (what, kind, target) in [
        ("symlink to an absolute path", tar::EntryType::Symlink, abs.as_str()),
        ("symlink climbing out with ..", tar::EntryType::Symlink, rel.as_str()),
        ("hardlink to an absolute path", tar::EntryType::Link, abs.as_str()),
        ("hardlink climbing out with ..", tar::EntryType::Link, rel.as_str()),
    ] {
        let tarball = Tar::new()
            .file("config.json", &cfg)
            .link(kind, "sub/layer.tar", target)
            .file("manifest.json", &docker_manifest("config.json", &["sub/layer.tar"]))
            .bytes();
        let c = case(&tarball);
        let out = build_guarded(&c);
        assert_refused(&c, &out, &s, "sub/layer.tar", what);
        assert!(out.stderr.contains("outside the tarball"), "{what}:\n{}", out.stderr);
    }
}

#[test]
fn oci_layout_tarball_pointing_outside_is_refused() {
    let s = secret();
    let abs = s.path.display().to_string();
    let cfg = config(&[&s.bytes]);
    // The manifest names the secret's digest; the blob member with that name is a link out.
    let manifest = oci_manifest(&cfg, &[&s.bytes]);
    let index = oci_index(&manifest);
    let blob = |b: &[u8]| format!("blobs/sha256/{}", sha256_hex(b));
    let (layer_blob, index_name) = (blob(&s.bytes), "index.json".to_owned());
    let cases: Vec<(&str, &String, Vec<u8>)> = vec![
        (
            "layer blob symlinked to a host file",
            &layer_blob,
            Tar::new()
                .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
                .file(&blob(&cfg), &cfg)
                .file(&blob(&manifest), &manifest)
                .symlink(&layer_blob, &abs)
                .file("index.json", &index)
                .bytes(),
        ),
        (
            "layer blob symlinked out with ..",
            &layer_blob,
            Tar::new()
                .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
                .file(&blob(&cfg), &cfg)
                .file(&blob(&manifest), &manifest)
                .symlink(&layer_blob, &format!("../../{}", dotdot(&s.path)))
                .file("index.json", &index)
                .bytes(),
        ),
        (
            "index.json hardlinked to a host file",
            &index_name,
            Tar::new().file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).hardlink("index.json", &abs).bytes(),
        ),
    ];
    for (what, entry, tarball) in cases {
        let c = case(&tarball);
        let out = build_guarded(&c);
        assert_refused(&c, &out, &s, entry, what);
    }
}

#[test]
fn an_entry_naming_dev_zero_fails_promptly() {
    // Reading /dev/zero never ends: the old code hashed it forever. The kill guard in
    // build_guarded turns a hang into a failure.
    let good_layer = layer("hi\n");
    let cfg = config(&[&good_layer]);
    for (what, tarball, entry) in [
        (
            "Layers = /dev/zero",
            Tar::new().file("config.json", &cfg).file("manifest.json", &docker_manifest("config.json", &["/dev/zero"])).bytes(),
            "/dev/zero",
        ),
        (
            "layer member symlinked to /dev/zero",
            Tar::new()
                .file("config.json", &cfg)
                .symlink("layer.tar", "/dev/zero")
                .file("manifest.json", &docker_manifest("config.json", &["layer.tar"]))
                .bytes(),
            "layer.tar",
        ),
        (
            "layer member that is a character device",
            Tar::new()
                .file("config.json", &cfg)
                .special(tar::EntryType::Char, "layer.tar")
                .file("manifest.json", &docker_manifest("config.json", &["layer.tar"]))
                .bytes(),
            "layer.tar",
        ),
    ] {
        let c = case(&tarball);
        let out = build_guarded(&c);
        assert_ne!(out.code, 0, "{what}: the build must fail:\n{}", out.stderr);
        assert!(
            out.stderr.contains("base.tar") && out.stderr.contains(entry),
            "{what}: the error names the tarball and {entry:?}:\n{}",
            out.stderr
        );
    }
}

/// The image layout `//:image` built.
fn built_layers(c: &Case) -> Vec<String> {
    let layout = c.ws.path().join("ocib-bin/image");
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let manifest: Value = serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(digest)).unwrap()).unwrap();
    manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn well_formed_base_tarballs_still_build() {
    let (one, two) = (layer("one\n"), layer("two\n"));
    let cfg = config(&[&one, &two, &one]);
    let want: Vec<String> = [&one, &two, &one].iter().map(|l| format!("sha256:{}", sha256_hex(l))).collect();

    // Legacy `docker save` (before Docker 25): `./`-prefixed names, directory entries, and a
    // repeated layer stored once with a symlink to it (moby's tarexport).
    let mut legacy = Tar::new();
    legacy.file("./cfg.json", &cfg).file("./a/layer.tar", &one).file("./b/layer.tar", &two);
    legacy.symlink("./c/layer.tar", "../a/layer.tar");
    legacy.file("./manifest.json", &docker_manifest("cfg.json", &["a/layer.tar", "b/layer.tar", "c/layer.tar"]));
    let c = case(&legacy.bytes());
    let out = build_guarded(&c);
    assert_eq!(out.code, 0, "legacy docker save:\n{}", out.stderr);
    assert_eq!(built_layers(&c), want, "legacy docker save");

    // An OCI-layout tarball (rules_oci's `format = "oci"`, Docker 25+ `docker save`).
    let manifest = oci_manifest(&cfg, &[&one, &two, &one]);
    let blob = |b: &[u8]| format!("blobs/sha256/{}", sha256_hex(b));
    let oci = Tar::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file(&blob(&manifest), &manifest)
        .file(&blob(&cfg), &cfg)
        .file(&blob(&one), &one)
        .file(&blob(&two), &two)
        .file("index.json", &oci_index(&manifest))
        .bytes();
    let c = case(&oci);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let before = mode(&c.ws.path().join("base.tar"));
    let out = build_guarded(&c);
    assert_eq!(out.code, 0, "OCI-layout tarball:\n{}", out.stderr);
    assert_eq!(built_layers(&c), want, "OCI-layout tarball");
    assert_eq!(mode(&c.ws.path().join("base.tar")), before, "the base tarball itself is left alone");
}
