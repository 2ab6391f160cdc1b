//! A build SIGKILLed at any point (power loss, OOM killer, `kill -9` from CI) leaves nothing
//! that a later build takes for a good output: after each kill, the next complete build's
//! outputs are byte-for-byte the clean build's. The workspace needs only `sh`, `seq` and
//! `sed` (genrules → pkg_tar layers, one gzipped → oci_image → oci_load tarball), so
//! actions write megabytes and a kill often lands mid-write.
//!
//! Runs `OCIB_KILL_RUNS` kills (default 5), each after a random delay from a seeded RNG (the
//! seed is printed; `OCIB_KILL_SEED` replays a run). Before each killed build the workspace is
//! cleaned in turn with `ocib clean` (cache kept: the killed build only links outputs),
//! `ocib clean --expunge` (cache wiped: it runs every action), or by deleting only the cache
//! (it runs every action over the previous outputs, and the next build starts from its
//! half-written `ocib-out`).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use common::{Output, workspace};

/// Eight generated files of ~0.45 MB each, a concatenation of all of them, two layers (one
/// gzipped) and an image with its `docker load` tarball: 13 actions, ~10 MB written.
fn kill_workspace() -> tempfile::TempDir {
    let mut build = String::from(
        r#"load("@rules_pkg//:pkg.bzl", "pkg_tar")
load("@rules_oci//oci:defs.bzl", "oci_image", "oci_load")

"#,
    );
    for i in 0..8 {
        build.push_str(&format!(
            "genrule(\n    name = \"gen{i}\",\n    outs = [\"gen{i}.txt\"],\n    cmd = \"seq 1 20000 | sed 's/^/file-{i}-line-/' > $@\",\n)\n\n"
        ));
    }
    build.push_str(
        r#"genrule(
    name = "all",
    srcs = [":gen0", ":gen1", ":gen2", ":gen3", ":gen4", ":gen5", ":gen6", ":gen7"],
    outs = ["all.txt"],
    cmd = "cat $(SRCS) > $@",
)

pkg_tar(
    name = "layer_a",
    srcs = [":gen0", ":gen1", ":gen2", ":gen3"],
    package_dir = "/data/a",
)

pkg_tar(
    name = "layer_b",
    srcs = [":gen4", ":gen5", ":gen6", ":gen7", ":all"],
    package_dir = "/data/b",
    extension = "tar.gz",
)

oci_image(
    name = "image",
    os = "linux",
    architecture = "amd64",
    tars = [":layer_a", ":layer_b"],
    entrypoint = ["/bin/true"],
)

oci_load(
    name = "image_load",
    image = ":image",
    repo_tags = ["kill-recovery:latest"],
)

filegroup(
    name = "image_tarball",
    srcs = [":image_load"],
    output_group = "tarball",
)
"#,
    );
    workspace(&[
        (
            "MODULE.bazel",
            "module(name = \"kill_recovery\")\nbazel_dep(name = \"rules_pkg\", version = \"1.3.0\")\nbazel_dep(name = \"rules_oci\", version = \"2.3.2\")\n",
        ),
        ("pkg/BUILD.bazel", &build),
    ])
}

const TARGETS: &[&str] = &["//pkg:all", "//pkg:image", "//pkg:image_tarball"];

fn ocib_cmd(dir: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocib"));
    cmd.args(["--nohome_rc", "--nosystem_rc"]).args(args).arg(format!("--disk_cache={}", cache.display())).current_dir(dir);
    cmd
}

fn run(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    let out = ocib_cmd(dir, cache, args).output().expect("run ocib");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn build_ok(dir: &Path, cache: &Path, what: &str) {
    let mut args = vec!["build", "--noshow_progress"];
    args.extend_from_slice(TARGETS);
    let out = run(dir, cache, &args);
    assert_eq!(out.code, 0, "{what} failed:\n{}", out.stderr);
}

/// sha256 of every file under `ocib-out/bin` (symlinks by their target), by relative path.
fn output_digests(dir: &Path) -> BTreeMap<String, String> {
    let bin = dir.join("ocib-out/bin");
    let mut digests = BTreeMap::new();
    for entry in walkdir::WalkDir::new(&bin).sort_by_file_name() {
        let entry = entry.expect("walk ocib-out/bin");
        let rel = entry.path().strip_prefix(&bin).expect("under bin").to_string_lossy().into_owned();
        let digest = if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap_or_else(|e| panic!("read {}: {e}", entry.path().display()));
            Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect::<String>()
        } else if entry.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(entry.path()).expect("readlink").display())
        } else {
            continue;
        };
        digests.insert(rel, digest);
    }
    digests
}

/// Deletes a directory tree whose files and directories the cache may have made read-only.
fn remove_tree(path: &Path) {
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let mut perms = entry.metadata().expect("stat").permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(entry.path(), perms).expect("chmod");
        }
    }
    std::fs::remove_dir_all(path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
}

/// splitmix64: a few reproducible random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[test]
fn sigkilled_builds_never_leave_outputs_a_later_build_trusts() {
    let runs: usize = std::env::var("OCIB_KILL_RUNS").ok().map(|s| s.parse().expect("OCIB_KILL_RUNS is a number")).unwrap_or(5);
    let seed: u64 = std::env::var("OCIB_KILL_SEED")
        .ok()
        .map(|s| s.parse().expect("OCIB_KILL_SEED is a number"))
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_nanos() as u64);
    println!("kill_recovery: OCIB_KILL_SEED={seed} OCIB_KILL_RUNS={runs}");
    let mut rng = Rng(seed);

    let ws = kill_workspace();
    let dir = ws.path();
    let cache = dir.join("cache");

    // The reference: one uninterrupted build from nothing.
    let started = Instant::now();
    build_ok(dir, &cache, "the clean build");
    let clean_time = started.elapsed();
    let expected = output_digests(dir);
    assert!(expected.keys().any(|k| k.ends_with("all.txt")) && expected.len() >= 12, "too few outputs: {expected:?}");

    // How long a build takes that only links cached outputs, to aim kills at that too.
    assert_eq!(run(dir, &cache, &["clean"]).code, 0);
    let started = Instant::now();
    build_ok(dir, &cache, "the build from the cache");
    let warm_time = started.elapsed();
    assert_eq!(output_digests(dir), expected, "a build from the cache differs from the clean build");

    let mut killed_mid_build = 0;
    for run_no in 0..runs {
        let mode = ["clean", "clean --expunge", "cache deleted"][run_no % 3];
        let duration = match mode {
            "clean" => {
                assert_eq!(run(dir, &cache, &["clean"]).code, 0);
                warm_time
            }
            "clean --expunge" => {
                assert_eq!(run(dir, &cache, &["clean", "--expunge"]).code, 0);
                clean_time
            }
            _ => {
                remove_tree(&cache);
                clean_time
            }
        };
        // Anywhere from startup to a little past the expected duration (some kills land after
        // the build is done: fine, that is a state too).
        let window = duration.as_micros() as u64 * 6 / 5 + 1;
        let delay = Duration::from_micros(rng.next() % window);
        let mut args = vec!["build", "--noshow_progress"];
        args.extend_from_slice(TARGETS);
        let mut child = ocib_cmd(dir, &cache, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start ocib build");
        std::thread::sleep(delay);
        let still_running = child.try_wait().expect("wait").is_none();
        child.kill().expect("SIGKILL ocib"); // Child::kill is SIGKILL on Unix
        let status = child.wait().expect("reap ocib");
        if still_running {
            killed_mid_build += 1;
        }
        println!(
            "run {run_no}: {mode}, SIGKILL after {delay:?} ({}; {status})",
            if still_running { "mid-build" } else { "already finished" }
        );

        build_ok(dir, &cache, &format!("the build after kill {run_no} ({mode}, {delay:?}, seed {seed})"));
        let got = output_digests(dir);
        for (path, digest) in &expected {
            match got.get(path) {
                Some(d) => {
                    assert_eq!(d, digest, "{path} differs from the clean build's after kill {run_no} ({mode}, {delay:?}, seed {seed})")
                }
                None => panic!("{path} missing after kill {run_no} ({mode}, {delay:?}, seed {seed})"),
            }
        }
        let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
        assert!(extra.is_empty(), "outputs the clean build did not have after kill {run_no} ({mode}): {extra:?}");
    }
    println!("kill_recovery: {killed_mid_build} of {runs} kills landed mid-build");
}
