//! Pushing to and pulling from a real registry (Debian's docker-registry on loopback):
//! oci_push through `ocib run` and `ocib push`, stamped tags, re-pushes that upload nothing,
//! an oci_pull base that builds, loads into Docker and runs, and registry auth.

mod common;

use std::process::Command;

use common::{Registry, copy_workspace, ocib_env, require_go};

fn run_push(ws: &std::path::Path, cache: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> common::Output {
    let cache_flag = format!("--disk_cache={}", cache.display());
    let mut args = vec!["run", "--noshow_progress", cache_flag.as_str()];
    args.extend_from_slice(extra);
    let mut all_env = vec![("GOCACHE", common::go_cache().to_str().unwrap().to_owned())];
    all_env.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let env_refs: Vec<(&str, &str)> = all_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ocib_env(ws, &args, &env_refs)
}

fn manifest_digest(ws: &std::path::Path) -> String {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.join("ocib-bin/cmd/worker/image/index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

fn skopeo_digest(reference: &str) -> String {
    let out = Command::new("skopeo").args(["inspect", "--tls-verify=false", &format!("docker://{reference}")]).output().unwrap();
    assert!(out.status.success(), "skopeo inspect {reference}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Digest"].as_str().unwrap().to_owned()
}

#[test]
fn push_by_run_then_repush_uploads_nothing_and_stamped_tags() {
    if !require_go() {
        return;
    }
    let Some(registry) = Registry::start(None) else { return };
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    let repo = format!("{}/ocib/worker", registry.host());
    let first = run_push(ws.path(), cache.path(), &["//cmd/worker:push", "--", "--repository", &repo, "--tag", "extra"], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let digest = manifest_digest(ws.path());
    assert!(first.stdout.contains(&format!("{repo}@{digest}")), "{}", first.stdout);
    // Tags: the run-time one, then the unstamped template's lines.
    for tag in ["extra", "0.0.0", "latest"] {
        assert_eq!(skopeo_digest(&format!("{repo}:{tag}")), digest, "tag {tag}");
    }
    // Unchanged image: nothing is uploaded again.
    let again = run_push(ws.path(), cache.path(), &["//cmd/worker:push", "--", "--repository", &repo], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("(0 blobs uploaded"), "{}", again.stdout);

    // --stamp: the expand_template tags file carries the release version.
    let stamped = run_push(
        ws.path(),
        cache.path(),
        &["--stamp", "--workspace_status_command=./status.sh", "//cmd/worker:push", "--", "--repository", &repo],
        &[("RELEASE_VERSION", "4.5.6")],
    );
    assert_eq!(stamped.code, 0, "{}", stamped.stderr);
    // (Stamping also put the version into the binary, so this is a new image.)
    let stamped_digest = manifest_digest(ws.path());
    assert_ne!(stamped_digest, digest);
    assert_eq!(skopeo_digest(&format!("{repo}:4.5.6")), stamped_digest);
}

#[test]
fn push_everything_and_a_failed_push_exits_non_zero() {
    if !require_go() {
        return;
    }
    let Some(registry) = Registry::start(None) else { return };
    let ws = copy_workspace("images");
    // Point the push target at the test registry.
    let build = ws.path().join("cmd/worker/BUILD.bazel");
    let text = std::fs::read_to_string(&build).unwrap().replace("registry.example.com", &registry.host());
    std::fs::write(&build, text).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = ocib_env(
        ws.path(),
        &["push", "--noshow_progress", &format!("--disk_cache={}", cache.path().display()), "//..."],
        &[("GOCACHE", common::go_cache().to_str().unwrap())],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("//cmd/worker:push: ") && out.stdout.contains(&format!("{}/ocib/worker@sha256:", registry.host())), "{}", out.stdout);
    assert!(out.stderr.contains("pushed 1 of 1 images"), "{}", out.stderr);
    // A registry that is down: the push fails, and says so.
    drop(registry);
    let failed = ocib_env(
        ws.path(),
        &["push", "--noshow_progress", &format!("--disk_cache={}", cache.path().display()), "//..."],
        &[("GOCACHE", common::go_cache().to_str().unwrap())],
    );
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stderr.contains("push failed"), "{}", failed.stderr);
}

#[test]
fn an_image_on_a_pulled_base_builds_loads_and_runs() {
    if !require_go() {
        return;
    }
    let Some(registry) = Registry::start(None) else { return };
    // Push the worker image, then pull it as the base of another.
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    let repo = format!("{}/ocib/base", registry.host());
    assert_eq!(run_push(ws.path(), cache.path(), &["//cmd/worker:push", "--", "--repository", &repo], &[]).code, 0);
    let digest = manifest_digest(ws.path());
    let child = common::workspace(&[
        (
            "MODULE.bazel",
            &format!(
                "oci = use_extension(\"@rules_oci//oci:extensions.bzl\", \"oci\")\noci.pull(name = \"worker_base\", image = \"{repo}\", digest = \"{digest}\", platforms = [\"linux/amd64\"])\nuse_repo(oci, \"worker_base\", \"worker_base_linux_amd64\")\n"
            ),
        ),
        (
            "app/BUILD.bazel",
            concat!(
                "load(\"@rules_oci//oci:defs.bzl\", \"oci_image\", \"oci_push\", \"oci_tarball\")\n",
                "load(\"@rules_pkg//:pkg.bzl\", \"pkg_tar\")\n",
                "pkg_tar(name = \"extra\", srcs = [\"hello.txt\"], mode = \"0644\")\n",
                "oci_image(name = \"image\", base = \"@worker_base\", tars = [\":extra\"], entrypoint = [\"/bin/cat\", \"/hello.txt\"])\n",
                "oci_tarball(name = \"tarball\", image = \":image\", repo_tags = [\"ocib-test/pulled:latest\"])\n",
                "oci_push(name = \"push\", image = \":image\")\n",
            ),
        ),
        ("app/hello.txt", "hello from a pulled base\n"),
    ]);
    let child_cache = tempfile::tempdir().unwrap();
    let built = common::build(child.path(), child_cache.path(), &["//app:tarball"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    // Pushing it to another repository of the same registry mounts the base's blobs (config
    // and 5 layers) from where they were pulled, and uploads only the new ones.
    let pushed = ocib_env(
        child.path(),
        &["run", "--noshow_progress", &format!("--disk_cache={}", child_cache.path().display()), "//app:push", "--", "--repository", &format!("{}/ocib/child", registry.host())],
        &[("GOCACHE", common::go_cache().to_str().unwrap())],
    );
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    assert!(pushed.stdout.contains("(2 blobs uploaded, 5 mounted, 0 already present)"), "{}", pushed.stdout);
    // Fetched once: with the registry gone, a clean rebuild of the outputs still works offline.
    drop(registry);
    assert_eq!(common::ocib(child.path(), &["clean"]).code, 0);
    let offline = common::build(child.path(), child_cache.path(), &["//app:tarball"]);
    assert_eq!(offline.code, 0, "{}", offline.stderr);
    let docker = Command::new("docker").arg("info").output().map(|o| o.status.success()).unwrap_or(false);
    if !docker {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "the Docker engine is needed in CI");
        return;
    }
    let load = Command::new("docker").args(["load", "--input", "ocib-out/bin/app/tarball/tarball.tar"]).current_dir(child.path()).output().unwrap();
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let run = Command::new("docker").args(["run", "--rm", "ocib-test/pulled:latest"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hello from a pulled base\n", "{}", String::from_utf8_lossy(&run.stderr));
    let _ = Command::new("docker").args(["rmi", "ocib-test/pulled:latest"]).output();
}

#[test]
fn pushes_with_credentials_from_the_docker_config() {
    if !require_go() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let Ok(out) = Command::new("htpasswd").args(["-Bbn", "pusher", "s3cret-pw"]).output() else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "htpasswd is needed in CI");
        return;
    };
    std::fs::write(&htpasswd, out.stdout).unwrap();
    let Some(registry) = Registry::start(Some(&htpasswd)) else { return };
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    let repo = format!("{}/ocib/private", registry.host());
    let config_dir = dir.path().join("docker");
    std::fs::create_dir_all(&config_dir).unwrap();
    let no_creds = run_push(ws.path(), cache.path(), &["//cmd/worker:push", "--", "--repository", &repo], &[("DOCKER_CONFIG", config_dir.to_str().unwrap())]);
    assert_eq!(no_creds.code, 1, "{}", no_creds.stderr);
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("pusher:s3cret-pw");
    std::fs::write(config_dir.join("config.json"), format!("{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}", registry.host())).unwrap();
    let with_creds = run_push(ws.path(), cache.path(), &["//cmd/worker:push", "--", "--repository", &repo], &[("DOCKER_CONFIG", config_dir.to_str().unwrap())]);
    assert_eq!(with_creds.code, 0, "{}", with_creds.stderr);
    assert!(!with_creds.stderr.contains("s3cret") && !with_creds.stdout.contains("s3cret"), "credentials are never printed");
    assert!(!no_creds.stderr.contains("s3cret"));
}
