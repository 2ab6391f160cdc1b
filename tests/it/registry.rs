//! Pushing to and pulling from a real registry (Debian's docker-registry on loopback):
//! oci_push through `ocib run` and `ocib push`, stamped tags, re-pushes that upload nothing,
//! an oci_pull base that builds, loads into Docker and runs, and registry auth.

use crate::common;

use std::process::Command;

use crate::common::{Registry, copy_workspace, ocib_env, require_go};

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
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("ocib-bin/cmd/worker/image/index.json")).unwrap()).unwrap();
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
    assert!(
        out.stdout.contains("//cmd/worker:push: ") && out.stdout.contains(&format!("{}/ocib/worker@sha256:", registry.host())),
        "{}",
        out.stdout
    );
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
        &[
            "run",
            "--noshow_progress",
            &format!("--disk_cache={}", child_cache.path().display()),
            "//app:push",
            "--",
            "--repository",
            &format!("{}/ocib/child", registry.host()),
        ],
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
    let load = Command::new("docker")
        .args(["load", "--input", "ocib-out/bin/app/tarball/tarball.tar"])
        .current_dir(child.path())
        .output()
        .unwrap();
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
    let no_creds = run_push(
        ws.path(),
        cache.path(),
        &["//cmd/worker:push", "--", "--repository", &repo],
        &[("DOCKER_CONFIG", config_dir.to_str().unwrap())],
    );
    assert_eq!(no_creds.code, 1, "{}", no_creds.stderr);
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("pusher:s3cret-pw");
    std::fs::write(config_dir.join("config.json"), format!("{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}", registry.host())).unwrap();
    let with_creds = run_push(
        ws.path(),
        cache.path(),
        &["//cmd/worker:push", "--", "--repository", &repo],
        &[("DOCKER_CONFIG", config_dir.to_str().unwrap())],
    );
    assert_eq!(with_creds.code, 0, "{}", with_creds.stderr);
    assert!(!with_creds.stderr.contains("s3cret") && !with_creds.stdout.contains("s3cret"), "credentials are never printed");
    assert!(!no_creds.stderr.contains("s3cret"));
}

/// Runs `ocib ARGS` in `dir` and fails the test if it has not finished by `limit`: a push
/// through a faulty network must end (succeed or fail), never hang.
fn ocib_within(dir: &std::path::Path, args: &[&str], limit: std::time::Duration) -> common::Output {
    let logs = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocib"))
        .args(["--nohome_rc", "--nosystem_rc"])
        .args(args)
        .current_dir(dir)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ocib {args:?} still running after {limit:?}:\n{}", std::fs::read_to_string(&err_path).unwrap_or_default());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    common::Output {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Checks, directly against the registry at `base` (not through any proxy), that every tag of
/// `repo` names a manifest that is stored under its digest and whose config and layers (or,
/// for an index, child manifests) are all present with the right digests and sizes. Returns
/// each tag with its digest.
fn complete_tags(http: &reqwest::blocking::Client, base: &str, repo: &str) -> Vec<(String, String)> {
    let resp = http.get(format!("{base}/v2/{repo}/tags/list")).send().unwrap();
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Vec::new(); // Nothing pushed to this repository yet.
    }
    assert!(resp.status().is_success(), "tags/list of {repo}: {}", resp.status());
    let list: serde_json::Value = resp.json().unwrap();
    let tags: Vec<String> = list["tags"].as_array().into_iter().flatten().map(|t| t.as_str().unwrap().to_owned()).collect();
    let check_blob = |digest: &str, size: u64, what: &str| {
        let resp = http.get(format!("{base}/v2/{repo}/blobs/{digest}")).send().unwrap();
        assert!(resp.status().is_success(), "{repo}: {what} {digest} is missing: {}", resp.status());
        let body = resp.bytes().unwrap();
        assert_eq!((sha256_digest(&body), body.len() as u64), (digest.to_owned(), size), "{repo}: {what} {digest} stored wrong");
    };
    fn manifest(http: &reqwest::blocking::Client, base: &str, repo: &str, reference: &str) -> (String, serde_json::Value) {
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
        let resp = http.get(format!("{base}/v2/{repo}/manifests/{reference}")).header("Accept", accept).send().unwrap();
        assert!(resp.status().is_success(), "{repo}:{reference}: manifest missing: {}", resp.status());
        let body = resp.bytes().unwrap();
        (sha256_digest(&body), serde_json::from_slice(&body).unwrap())
    }
    let mut result = Vec::new();
    for tag in tags {
        let (digest, top) = manifest(http, base, repo, &tag);
        let (by_digest, _) = manifest(http, base, repo, &digest);
        assert_eq!(by_digest, digest, "{repo}:{tag} is also stored under its digest");
        let mut pending = vec![top];
        while let Some(m) = pending.pop() {
            if let Some(children) = m["manifests"].as_array() {
                for c in children {
                    let child = c["digest"].as_str().unwrap();
                    let (d, body) = manifest(http, base, repo, child);
                    assert_eq!(d, child, "{repo}:{tag}: child manifest {child} stored wrong");
                    pending.push(body);
                }
                continue;
            }
            check_blob(m["config"]["digest"].as_str().unwrap(), m["config"]["size"].as_u64().unwrap(), "config");
            for l in m["layers"].as_array().unwrap() {
                check_blob(l["digest"].as_str().unwrap(), l["size"].as_u64().unwrap(), "layer");
            }
        }
        result.push((tag, digest));
    }
    result
}

/// The fault campaign: `ocib push` of a few images, repeatedly, through a proxy in front of a
/// real registry that injects 5xx, 429, connection resets in the middle of uploads and
/// truncated answers at random (seeded: `OCIB_FAULT_SEED`; `OCIB_FAULT_PUSHES` attempts,
/// 3 by default). Each attempt may succeed or fail, but must end; afterwards, looking at the
/// registry directly, no tag may point at an incomplete image, and a push that reported
/// success must have set every tag to the image it built. A last push without faults succeeds.
#[test]
fn pushes_through_injected_faults_never_tag_an_incomplete_image() {
    use common::fault_proxy::{FaultPlan, Handler};
    use std::sync::Arc;

    let Some(registry) = Registry::start(None) else { return };
    let seed: u64 = std::env::var("OCIB_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_240_509);
    let pushes: usize = std::env::var("OCIB_FAULT_PUSHES").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    const FAULTS_PER_MILLE: u32 = 200;
    let plan = Arc::new(FaultPlan::new(seed, FAULTS_PER_MILLE));
    let handler: Handler = {
        let plan = plan.clone();
        Arc::new(move |head| plan.decide(head))
    };
    let proxy = common::fault_proxy::start(registry.port, handler);

    // Three images sharing one layer, each with a layer of its own that changes every attempt
    // (so every attempt uploads new blobs and moves `latest`).
    const IMAGES: usize = 3;
    let mut build =
        String::from("load(\"@rules_oci//oci:defs.bzl\", \"oci_image\", \"oci_push\")\nload(\"@rules_pkg//:pkg.bzl\", \"pkg_tar\")\n");
    build.push_str("pkg_tar(name = \"common\", srcs = [\"common.txt\"], mode = \"0644\")\n");
    for i in 0..IMAGES {
        build.push_str(&format!(
            "pkg_tar(name = \"layer{i}\", srcs = [\"data{i}.bin\"], mode = \"0644\")\n\
             oci_image(name = \"img{i}\", os = \"linux\", architecture = \"amd64\", tars = [\":common\", \":layer{i}\"])\n\
             oci_push(name = \"push{i}\", image = \":img{i}\", repository = \"127.0.0.1:{proxy}/fault/img{i}\")\n"
        ));
    }
    let ws = common::workspace(&[("MODULE.bazel", ""), ("BUILD.bazel", &build), ("common.txt", "shared by every image\n")]);
    let cache = tempfile::tempdir().unwrap();
    let cache_flag = format!("--disk_cache={}", cache.path().display());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(60)).build().unwrap();
    let base = format!("http://{}", registry.host());
    let mut state = seed | 1;
    let (mut succeeded, mut failed) = (0, 0);
    for attempt in 0..=pushes {
        let faulty = attempt < pushes;
        plan.set_per_mille(if faulty { FAULTS_PER_MILLE } else { 0 });
        for i in 0..IMAGES {
            // 192 KiB of xorshift noise: incompressible, so uploads are big enough to be cut.
            let mut data = Vec::with_capacity(192 << 10);
            while data.len() < 192 << 10 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                data.extend_from_slice(&state.to_le_bytes());
            }
            std::fs::write(ws.path().join(format!("data{i}.bin")), data).unwrap();
        }
        let tag = format!("attempt-{attempt}");
        let out = ocib_within(
            ws.path(),
            &["push", "--noshow_progress", &cache_flag, "--tag", "latest", "--tag", &tag, "//..."],
            std::time::Duration::from_secs(300),
        );
        let context =
            format!("seed {seed}, attempt {attempt}, {} faults injected so far", plan.injected.load(std::sync::atomic::Ordering::Relaxed));
        assert!(!out.stderr.contains("panicked"), "{context}: ocib panicked:\n{}", out.stderr);
        for i in 0..IMAGES {
            let repo = format!("fault/img{i}");
            let tags = complete_tags(&http, &base, &repo);
            if out.code == 0 {
                let layout: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(ws.path().join(format!("ocib-bin/img{i}/index.json"))).unwrap()).unwrap();
                let built = layout["manifests"][0]["digest"].as_str().unwrap().to_owned();
                for t in ["latest", tag.as_str()] {
                    assert!(
                        tags.contains(&(t.to_owned(), built.clone())),
                        "{context}: push succeeded but {repo}:{t} is not {built}: {tags:?}"
                    );
                }
            }
        }
        if out.code == 0 {
            succeeded += 1;
        } else {
            failed += 1;
            assert!(faulty, "{context}: the push without faults failed:\n{}", out.stderr);
            assert_eq!(out.code, 1, "{context}: {}", out.stderr);
            assert!(out.stderr.contains("push failed"), "{context}: {}", out.stderr);
        }
    }
    eprintln!(
        "fault campaign (seed {seed}): {succeeded} pushes succeeded, {failed} failed, {} faults injected",
        plan.injected.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(plan.injected.load(std::sync::atomic::Ordering::Relaxed) > 0 || pushes == 0, "the campaign injected no fault");
}

/// One `ocib push` of three images sharing a layer, to three repositories of one registry:
/// each blob is uploaded once, to whichever push got there first, and mounted into the other
/// repositories (`POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<first>`).
#[test]
fn one_push_uploads_a_shared_blob_once_and_mounts_it_elsewhere() {
    let Some(registry) = Registry::start(None) else { return };
    let host = registry.host();
    let build = format!(
        r#"load("@rules_oci//oci:defs.bzl", "oci_image", "oci_push")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

pkg_tar(name = "layer", srcs = ["data.txt"])

[oci_image(
    name = "image_" + n,
    architecture = "amd64",
    os = "linux",
    tars = [":layer"],
) for n in ["a", "b", "c"]]

[oci_push(
    name = "push_" + n,
    image = ":image_" + n,
    repository = "{host}/mount/" + n,
) for n in ["a", "b", "c"]]
"#
    );
    let ws = common::workspace(&[("WORKSPACE", ""), ("data.txt", "shared bytes\n"), ("BUILD.bazel", &build)]);
    let cache = tempfile::tempdir().unwrap();
    let out = common::ocib(ws.path(), &["push", "--noshow_progress", &format!("--disk_cache={}", cache.path().display()), "//..."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // `(U blobs uploaded, M mounted, P already present)` per push.
    let counts: Vec<(usize, usize)> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let tail = l.rsplit_once('(')?.1;
            let numbers: Vec<usize> = tail.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
            Some((numbers[0], numbers[1]))
        })
        .collect();
    assert_eq!(counts.len(), 3, "{}", out.stdout);
    let uploaded: usize = counts.iter().map(|c| c.0).sum();
    let mounted: usize = counts.iter().map(|c| c.1).sum();
    // Two blobs (the layer and the config, the same for the three images).
    assert_eq!((uploaded, mounted), (2, 4), "each blob uploaded once, then mounted:\n{}", out.stdout);
    for n in ["a", "b", "c"] {
        let out = Command::new("skopeo")
            .args(["inspect", "--no-tags", "--tls-verify=false", &format!("docker://{host}/mount/{n}@{}", manifest_of(ws.path(), n))])
            .output()
            .unwrap();
        assert!(out.status.success(), "{n}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn manifest_of(ws: &std::path::Path, name: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join(format!("ocib-bin/image_{name}/index.json"))).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}
