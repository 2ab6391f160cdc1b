//! Third-party Go modules (issue 13): `go_deps.from_file` and WORKSPACE `go_repository`
//! repositories fetched from a GOPROXY the test serves on loopback (or as a `file://`
//! directory), verified against go.sum, built with gazelle-style generated BUILD files into a
//! service image. Oracle: the real `go build` against the same proxy.

use std::path::Path;
use std::process::Command;

use crate::common::goproxy::{GoProxy, proxy_files, testdata_modules, write_file_proxy};
use crate::common::{self, copy_workspace, ocib_env, require_go, run_program};

/// `ocib build ARGS` in `ws` with module cache `cache` and `GOPROXY=proxy`.
fn build(ws: &Path, cache: &Path, proxy: &str, args: &[&str]) -> common::Output {
    let cache_flag = format!("--disk_cache={}", cache.display());
    let mut all = vec!["build", cache_flag.as_str(), "--noshow_progress"];
    all.extend_from_slice(args);
    let gocache = common::go_cache();
    ocib_env(ws, &all, &[("GOPROXY", proxy), ("GOCACHE", gocache.to_str().expect("utf-8")), ("GOSUMDB", "")])
}

fn svc(ws: &Path) -> std::path::PathBuf {
    ws.join("ocib-bin/cmd/svc/svc_/svc")
}

const EXPECTED: &str = "svc: third-party Go modules
hello mono (fmtx v1.2.0)
teal svc (fmtx v1.2.0)
fast: 2+3=5
tagged: os=linux impl=pure
shipped: own BUILD file
local: replaced by ./third_party/local
patched: PATCHED
";

/// Modules in the cache's store (each a directory named by its hash), and leftovers of
/// unfinished extractions.
fn store(cache: &Path) -> (usize, Vec<String>) {
    let Ok(entries) = std::fs::read_dir(cache.join("gomod/store")) else { return (0, vec![]) };
    let names: Vec<String> = entries.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect();
    (names.iter().filter(|n| !n.starts_with('.')).count(), names.into_iter().filter(|n| n.starts_with('.')).collect())
}

#[test]
fn builds_a_service_from_go_mod_like_go_build_does() {
    if !require_go() {
        return;
    }
    let proxy = GoProxy::start(proxy_files(&testdata_modules()));
    let ws = copy_workspace("gomod/mono");
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &proxy.url, &["//cmd/svc:svc"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = run_program(&svc(ws.path()));
    assert_eq!(printed, EXPECTED);
    // Each module fetched once: a zip for each of the 7 used (fmtx at the version MVS chose;
    // local is a directory), and the .mod files minimal version selection reads.
    let log = proxy.log.lock().unwrap().clone();
    let zips: Vec<&String> = log.iter().filter(|p| p.ends_with(".zip")).collect();
    assert_eq!(zips.len(), 7, "{log:#?}");
    assert!(zips.iter().any(|p| p.as_str() == "example.com/fmtx/@v/v1.2.0.zip"), "{log:#?}");
    assert!(zips.iter().any(|p| p.as_str() == "example.com/!tagged/@v/v1.0.0.zip"), "{log:#?}");
    let mut unique = log.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), log.len(), "a file fetched twice: {log:#?}");
    assert_eq!(store(cache.path()), (7, vec![]));

    // A second build in a fresh clone with the same cache fetches nothing.
    let before = proxy.requests();
    let clone = copy_workspace("gomod/mono");
    let again = build(clone.path(), cache.path(), &proxy.url, &["//cmd/svc:svc"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(proxy.requests(), before, "requests: {:#?}", &proxy.log.lock().unwrap()[before..]);
    assert_eq!(run_program(&svc(clone.path())), EXPECTED);

    // Oracle: the real go build against the same proxy. It does not apply the monorepo's
    // patch (that is Bazel's module_override); everything else prints the same.
    let oracle = copy_workspace("gomod/mono");
    let modcache = tempfile::tempdir().unwrap();
    let bin = oracle.path().join("svc.bin");
    let go = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg("./cmd/svc")
        .current_dir(oracle.path())
        .env("GOPROXY", &proxy.url)
        .env("GOFLAGS", "-mod=mod -modcacherw")
        .env("GOSUMDB", "off")
        .env("GONOSUMDB", "")
        .env("CGO_ENABLED", "0")
        .env("GOMODCACHE", modcache.path())
        .env("GOCACHE", common::go_cache())
        .output()
        .expect("run go");
    assert!(go.status.success(), "go build: {}", String::from_utf8_lossy(&go.stderr));
    let go_printed = run_program(&bin);
    assert_eq!(go_printed, EXPECTED.replace("patched: PATCHED", "patched: original"));
    // go verified every zip against the go.sum ocib used (h1: hashes agree), and its module
    // list has the versions ocib built with (fmtx v1.2.0 by minimal version selection).
    let version = Command::new("go").args(["version", "-m"]).arg(&bin).output().expect("go version -m");
    let listing = String::from_utf8_lossy(&version.stdout);
    let deps: Vec<String> = listing
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"dep")).then(|| format!("{} {}", f[1], f[2]))
        })
        .collect();
    assert_eq!(
        deps,
        [
            "example.com/Tagged v1.0.0",
            "example.com/color v1.1.0",
            "example.com/fast v1.0.0",
            "example.com/fmtx v1.2.0",
            "example.com/greet v1.0.0",
            "example.com/local v0.0.0",
            "example.com/patched v1.0.0",
            "example.com/shipped v1.0.0",
        ],
        "{listing}"
    );
}

#[test]
fn image_of_the_service_runs_in_docker() {
    if !require_go() {
        return;
    }
    let docker = Command::new("docker").arg("info").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(docker, "this test needs docker (scripts/setup.sh installs it)");
    let proxy = GoProxy::start(proxy_files(&testdata_modules()));
    let ws = copy_workspace("gomod/mono");
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &proxy.url, &["--output_groups=+tarball", "//cmd/svc:image", "//cmd/svc:load"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let tarball = ws.path().join("ocib-bin/cmd/svc/load/tarball.tar");
    let load = Command::new("docker").args(["load", "--input"]).arg(&tarball).output().unwrap();
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let run = Command::new("docker").args(["run", "--rm", "ocib-test/gomod-svc:latest"]).output().unwrap();
    let _ = Command::new("docker").args(["rmi", "ocib-test/gomod-svc:latest"]).output();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(String::from_utf8_lossy(&run.stdout), EXPECTED);
}

#[test]
fn file_proxy_and_workspace_go_repository() {
    if !require_go() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_file_proxy(dir.path(), &proxy_files(&testdata_modules()));
    let goproxy = format!("file://{}", dir.path().display());
    let sums = std::fs::read_to_string(common::testdata("gomod/mono/go.sum")).unwrap();
    let sum = |module: &str, version: &str| {
        sums.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0] == module && f[1] == version).then(|| f[2].to_owned())
            })
            .expect("in go.sum")
    };
    // go_repository calls in a macro, as gazelle's `update-repos -to_macro` writes them.
    let deps_bzl = format!(
        "load(\"@bazel_gazelle//:deps.bzl\", \"go_repository\")\n\ndef go_dependencies():\n    go_repository(\n        name = \"com_example_greet\",\n        importpath = \"example.com/greet\",\n        sum = \"{}\",\n        version = \"v1.0.0\",\n    )\n    go_repository(\n        name = \"com_example_fmtx\",\n        build_directives = [\"gazelle:exclude unused\"],\n        importpath = \"example.com/fmtx\",\n        sum = \"{}\",\n        version = \"v1.1.0\",\n    )\n",
        sum("example.com/greet", "v1.0.0"),
        sum("example.com/fmtx", "v1.1.0")
    );
    let ws = common::workspace(&[
        (
            "WORKSPACE",
            "workspace(name = \"ws\")\n\nload(\"@bazel_gazelle//:deps.bzl\", \"gazelle_dependencies\")\nload(\"//:deps.bzl\", \"go_dependencies\")\n\n# gazelle:repository_macro deps.bzl%go_dependencies\ngo_dependencies()\n\ngazelle_dependencies()\n",
        ),
        ("BUILD.bazel", ""),
        ("deps.bzl", &deps_bzl),
        (
            "app/BUILD.bazel",
            "load(\"@io_bazel_rules_go//go:def.bzl\", \"go_binary\")\n\ngo_binary(\n    name = \"app\",\n    srcs = [\"main.go\"],\n    deps = [\"@com_example_greet//:greet\"],\n)\n",
        ),
        ("app/main.go", "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Hello(\"ws\")) }\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &goproxy, &["//app"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let run = Command::new(ws.path().join("ocib-bin/app/app_/app")).output().unwrap();
    // WORKSPACE pins fmtx v1.1.0 itself: go_repository takes versions as given.
    assert_eq!(String::from_utf8_lossy(&run.stderr), "hello ws (fmtx v1.1.0)\n");
    let query = ocib_env(
        ws.path(),
        &["query", "@com_example_greet//...", "--output=label_kind"],
        &[("GOPROXY", &goproxy), ("XDG_CACHE_HOME", cache.path().to_str().unwrap())],
    );
    assert_eq!(query.code, 0, "{}", query.stderr);
    assert!(query.stdout.contains("go_library rule @com_example_greet//words:words"), "{}", query.stdout);
}

#[test]
fn tampered_zip_is_rejected_with_both_hashes() {
    if !require_go() {
        return;
    }
    let proxy = GoProxy::start(proxy_files(&testdata_modules()));
    let path = "example.com/patched/@v/v1.0.0.zip";
    let mut zip = proxy.get(path).unwrap();
    let at = zip.windows(8).position(|w| w == b"original").expect("text in the stored zip");
    zip[at..at + 8].copy_from_slice(b"tampered");
    proxy.replace(path, zip);
    let ws = copy_workspace("gomod/mono");
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &proxy.url, &["//cmd/svc:svc"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("verifying module example.com/patched@v1.0.0: checksum mismatch"), "{}", out.stderr);
    assert!(out.stderr.contains("go.sum:     h1:4+bWpuvsiPI2c9TEhNdMfSH5CWxHs0BUowP2DcWeo+4="), "{}", out.stderr);
    assert!(out.stderr.contains("downloaded: h1:"), "{}", out.stderr);
    let (_, leftovers) = store(cache.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!Path::new(&cache.path().join("gomod/store")).read_dir().unwrap().any(|e| {
        let p = e.unwrap().path();
        p.join("patched.go").exists()
    }));
}

#[test]
fn go_sum_mismatch_missing_module_and_unreachable_proxy_are_clear_errors() {
    if !require_go() {
        return;
    }
    let proxy = GoProxy::start(proxy_files(&testdata_modules()));
    // A go.sum that records another hash for greet.
    let ws = copy_workspace("gomod/mono");
    let sum = std::fs::read_to_string(ws.path().join("go.sum")).unwrap();
    let wrong = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let sum = sum
        .replace("example.com/greet v1.0.0 h1:QaB5AmtXSUFIngEsNF0yrBAi2cWP010xUhR6vMpawKg=", &format!("example.com/greet v1.0.0 {wrong}"));
    std::fs::write(ws.path().join("go.sum"), sum).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &proxy.url, &["//cmd/svc:svc"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("verifying module example.com/greet@v1.0.0: checksum mismatch"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("go.sum:     {wrong}")), "{}", out.stderr);
    assert!(out.stderr.contains("downloaded: h1:QaB5AmtXSUFIngEsNF0yrBAi2cWP010xUhR6vMpawKg="), "{}", out.stderr);

    // A module the proxy does not have.
    let ws = copy_workspace("gomod/mono");
    let go_mod = std::fs::read_to_string(ws.path().join("go.mod")).unwrap();
    std::fs::write(
        ws.path().join("go.mod"),
        go_mod.replace("example.com/shipped v1.0.0", "example.com/shipped v1.0.0\n\texample.com/nothere v1.0.0"),
    )
    .unwrap();
    let mut sum = std::fs::read_to_string(ws.path().join("go.sum")).unwrap();
    sum.push_str("example.com/nothere v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nexample.com/nothere v1.0.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    std::fs::write(ws.path().join("go.sum"), sum).unwrap();
    let out = build(ws.path(), cache.path(), &proxy.url, &["//cmd/svc:svc"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("example.com/nothere@v1.0.0"), "{}", out.stderr);
    assert!(out.stderr.contains("404 Not Found"), "{}", out.stderr);

    // Nothing listens on the proxy's port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let ws = copy_workspace("gomod/mono");
    let fresh = tempfile::tempdir().unwrap();
    let out = build(ws.path(), fresh.path(), &closed, &["//cmd/svc:svc"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&format!("GET {closed}/example.com/")), "{}", out.stderr);

    // GOPROXY=direct: ocib has no version control access.
    let out = build(ws.path(), fresh.path(), "direct", &["//cmd/svc:svc"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("only through a module proxy"), "{}", out.stderr);
}

#[test]
fn fetch_all_then_build_offline() {
    if !require_go() {
        return;
    }
    let proxy = GoProxy::start(proxy_files(&testdata_modules()));
    let ws = copy_workspace("gomod/mono");
    let cache = tempfile::tempdir().unwrap();
    let cache_flag = format!("--disk_cache={}", cache.path().display());
    let fetch = ocib_env(ws.path(), &["fetch", "--all", &cache_flag], &[("GOPROXY", &proxy.url)]);
    assert_eq!(fetch.code, 0, "{}", fetch.stderr);
    assert!(fetch.stderr.contains("All external dependencies fetched successfully"), "{}", fetch.stderr);
    // Every declared module (local is a directory, not stored).
    assert_eq!(store(cache.path()), (7, vec![]));
    let fetched = proxy.requests();
    // Offline: GOPROXY=off, and nothing more is asked of the proxy.
    let out = build(ws.path(), cache.path(), "off", &["//cmd/svc:svc"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(proxy.requests(), fetched);
    assert_eq!(run_program(&svc(ws.path())), EXPECTED);
    // A module missing from the cache is an error naming GOPROXY=off.
    let fresh = tempfile::tempdir().unwrap();
    let out = build(ws.path(), fresh.path(), "off", &["//cmd/svc:svc"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("module lookup disabled by GOPROXY=off"), "{}", out.stderr);
}

#[test]
fn vendored_tree_with_gazelle_build_files_builds() {
    if !require_go() {
        return;
    }
    // As gazelle writes a vendored repository: the vendored package keeps its import path and
    // is linked under `<prefix>/vendor/...` (importmap), so it cannot clash with a module of the
    // same path elsewhere in the build.
    let ws = common::workspace(&[
        ("MODULE.bazel", "bazel_dep(name = \"rules_go\", version = \"0.50.1\")\n"),
        ("go.mod", "module example.com/vend\n\ngo 1.22\n\nrequire example.com/greet v1.0.0\n"),
        ("vendor/modules.txt", "# example.com/greet v1.0.0\n## explicit\nexample.com/greet\n"),
        (
            "vendor/example.com/greet/BUILD.bazel",
            "load(\"@rules_go//go:def.bzl\", \"go_library\")\n\ngo_library(\n    name = \"greet\",\n    srcs = [\"greet.go\"],\n    importmap = \"example.com/vend/vendor/example.com/greet\",\n    importpath = \"example.com/greet\",\n    visibility = [\"//visibility:public\"],\n)\n",
        ),
        ("vendor/example.com/greet/greet.go", "package greet\n\n//go:noinline\nfunc Hello() string { return \"hello from vendor\" }\n"),
        (
            "app/BUILD.bazel",
            "load(\"@rules_go//go:def.bzl\", \"go_binary\")\n\ngo_binary(\n    name = \"app\",\n    srcs = [\"main.go\"],\n    deps = [\"//vendor/example.com/greet\"],\n)\n",
        ),
        ("app/main.go", "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Hello()) }\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), "off", &["//app"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let run = Command::new(ws.path().join("ocib-bin/app/app_/app")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stderr), "hello from vendor\n");
    let symbols = Command::new("go").args(["tool", "nm"]).arg(ws.path().join("ocib-bin/app/app_/app")).output().unwrap();
    assert!(String::from_utf8_lossy(&symbols.stdout).contains("example.com/vend/vendor/example.com/greet.Hello"));
}

#[test]
fn gazelle_targets_of_a_root_build_file_load_and_build() {
    // Nearly every gazelle user has `gazelle(name = "gazelle")` at the root: `build //...`
    // must not fail on it. The kinds are gazelle's; running it says ocib does not run gazelle.
    let ws = common::workspace(&[
        ("MODULE.bazel", "bazel_dep(name = \"gazelle\", version = \"0.39.1\")\n"),
        (
            "BUILD.bazel",
            "load(\"@gazelle//:def.bzl\", \"gazelle\", \"gazelle_binary\")\n\n# gazelle:prefix example.com/x\ngazelle(name = \"gazelle\", args = [\"-go_naming_convention=import\"])\n\ngazelle_binary(name = \"gazelle_bin\", languages = [\"@gazelle//language/go\"])\n",
        ),
    ]);
    let kinds = common::query_ok(ws.path(), &["query", "--output=label_kind", "--order_output=no", "//..."]);
    assert_eq!(kinds, ["sh_binary rule //:gazelle", "_gazelle_runner rule //:gazelle-runner", "gazelle_binary rule //:gazelle_bin"]);
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), "off", &["//..."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("WARNING"), "{}", out.stderr);
    let run = ocib_env(ws.path(), &["run", &format!("--disk_cache={}", cache.path().display()), "//:gazelle"], &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("ocib does not run gazelle"), "{}", run.stderr);
}
