//! `--disk_cache_max_size` and `ocib clean --gc`: least recently used entries are evicted at the
//! end of a build, the limit holds afterwards, and a build running meanwhile keeps its entries.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{self, executed_and_hits};

/// Three genrules of 100 KiB each, and one that signals it started and then waits for a file
/// (a build that is still running while another one ends).
fn genrules(marker_dir: &Path) -> tempfile::TempDir {
    let slow = format!(
        "touch {dir}/started; for i in $$(seq 600); do [ -e {dir}/go ] && break; sleep 0.1; done; head -c 1000 /dev/zero > $@",
        dir = marker_dir.display()
    );
    let build = format!(
        "[genrule(name = n, outs = [n + '.bin'], cmd = 'head -c 102400 /dev/zero | tr \"\\\\0\" \"' + n + '\" > $@') for n in ['a', 'b', 'c']]\n\
         genrule(name = 'slow', outs = ['slow.bin'], cmd = '{slow}')\n"
    );
    common::workspace(&[("MODULE.bazel", ""), ("BUILD.bazel", &build)])
}

fn build(ws: &Path, cache: &Path, args: &[&str]) -> common::Output {
    let out = common::build(ws, cache, args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out
}

/// Bytes in the cache's store and action records.
fn cache_size(cache: &Path) -> u64 {
    ["cas", "ac"]
        .iter()
        .flat_map(|sub| walkdir::WalkDir::new(cache.join(sub)))
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

#[test]
fn the_least_recently_used_entries_go_first_and_the_limit_holds() {
    let markers = tempfile::tempdir().unwrap();
    let ws = genrules(markers.path());
    let cache = tempfile::tempdir().unwrap();
    build(ws.path(), cache.path(), &["//:a"]);
    build(ws.path(), cache.path(), &["//:b"]);
    // Room for two of the three outputs: building c evicts a, the least recently used.
    let last = build(ws.path(), cache.path(), &["--disk_cache_max_size=250K", "//:c"]);
    assert!(last.stderr.contains("Disk cache over its limit of 250 KiB"), "{}", last.stderr);
    assert!(cache_size(cache.path()) <= 250 * 1024, "{} bytes left", cache_size(cache.path()));
    // ocib-out keeps its outputs (hardlinks); only the cache entry is gone.
    assert!(ws.path().join("ocib-bin/a.bin").exists());
    for (target, executed) in [("//:b", 0), ("//:c", 0), ("//:a", 1)] {
        let out = build(ws.path(), cache.path(), &[target]);
        assert_eq!(executed_and_hits(&out).0, executed, "{target}: {}", out.stderr);
    }

    // `clean --gc` evicts down to the limit now; the limit can come from a .bazelrc.
    std::fs::write(ws.path().join(".bazelrc"), "build --disk_cache_max_size=120K\n").unwrap();
    let gc = common::ocib(ws.path(), &["clean", "--gc", &format!("--disk_cache={}", cache.path().display())]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert!(gc.stderr.contains("evicted 2 action records"), "{}", gc.stderr);
    assert!(cache_size(cache.path()) <= 120 * 1024);
    // a was rebuilt last, so it is the one left.
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//:a"])).0, 0);
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//:b"])).0, 1);

    let bad = common::ocib(ws.path(), &["build", "--disk_cache_max_size=2X", "//:a"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("unknown unit 'X'"), "{}", bad.stderr);
}

#[test]
fn eviction_waits_for_a_build_that_is_still_running() {
    let markers = tempfile::tempdir().unwrap();
    let ws = genrules(markers.path());
    let other = genrules(markers.path());
    let cache = tempfile::tempdir().unwrap();
    build(ws.path(), cache.path(), &["//:a"]);

    // A build in another workspace holds the cache until we let it finish.
    let running = common::spawn_build(other.path(), cache.path(), "//:slow", std::process::Stdio::piped());
    let started = Instant::now();
    while !markers.path().join("started").exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "the slow build never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = build(ws.path(), cache.path(), &["--disk_cache_max_size=1", "//:b"]);
    assert!(out.stderr.contains("Disk cache eviction deferred: another ocib command is using"), "{}", out.stderr);
    std::fs::write(markers.path().join("go"), "").unwrap();
    let finished = running.wait_with_output().unwrap();
    assert!(finished.status.success(), "{}", String::from_utf8_lossy(&finished.stderr));
    // Nothing was evicted under the running build: everything is still a cache hit.
    for target in ["//:a", "//:b"] {
        assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &[target])).0, 0, "{target}");
    }
    assert_eq!(executed_and_hits(&build(other.path(), cache.path(), &["//:slow"])).0, 0);
    // With no one else using the cache, the limit applies.
    let out = build(ws.path(), cache.path(), &["--disk_cache_max_size=1", "//:c"]);
    assert!(out.stderr.contains("Disk cache over its limit"), "{}", out.stderr);
    assert_eq!(cache_size(cache.path()), 0);
}
