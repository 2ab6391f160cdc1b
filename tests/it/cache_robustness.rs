//! The cache and scratch space under hostile conditions: a cache on another filesystem, a
//! corrupted cache entry, a same-size source edit with its mtime put back, a SIGKILLed
//! build, a full disk.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{build, build_without_answers, copy_workspace, executed_and_hits, ocib, spawn_build, workspace};

/// File timestamps advance by the kernel's clock tick: let one pass, so the next change is
/// visible in ctime (as it is to a user editing a file later).
fn tick() {
    std::thread::sleep(Duration::from_millis(30));
}

/// Where the CAS keeps a plain (non-executable) file with this content.
fn cas_file(cache: &Path, content: &[u8]) -> PathBuf {
    let digest = ocib::exec::digest::sha256_hex(content);
    cache.join("cas").join(&digest[..2]).join(digest)
}

/// Rewrites `path` in place with `content` (same size), then puts its mtime and mode back:
/// all a user can do to make it look unchanged.
fn rewrite_in_place(path: &Path, content: &[u8]) {
    let meta = std::fs::metadata(path).unwrap();
    let mtime = meta.modified().unwrap();
    tick();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
    std::fs::set_permissions(path, meta.permissions()).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
}

/// Replaces `path` by a new file (another inode) of the same size and mtime.
fn replace_by_new_inode(path: &Path, content: &[u8]) {
    let meta = std::fs::metadata(path).unwrap();
    let tmp = path.with_extension("evil");
    std::fs::write(&tmp, content).unwrap();
    std::fs::File::options().write(true).open(&tmp).unwrap().set_modified(meta.modified().unwrap()).unwrap();
    std::fs::set_permissions(&tmp, meta.permissions()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_disk_cache_on_another_filesystem_builds_and_is_reused() {
    let ws = copy_workspace("pkgtar");
    let shm = Path::new("/dev/shm");
    let cache = match tempfile::tempdir_in(shm) {
        Ok(c) if std::fs::metadata(c.path()).unwrap().dev() != std::fs::metadata(ws.path()).unwrap().dev() => c,
        _ => {
            panic!("this test needs /dev/shm on another filesystem than the temporary directory");
        }
    };
    let targets = ["//app:flat", "//app:gen_exe"];
    let first = build(ws.path(), cache.path(), &targets);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let (executed, hits) = executed_and_hits(&first);
    assert!(executed > 0 && hits == 0, "{}", first.stderr);
    let tar = ws.path().join("ocib-bin/app/flat.tar");
    assert!(std::fs::metadata(&tar).unwrap().len() > 0);
    assert_eq!(std::process::Command::new(ws.path().join("ocib-bin/app/gen.sh")).output().unwrap().stdout, b"gen\n");
    // Fresh outputs: the second build materialises every output from the CAS, across devices.
    std::fs::remove_dir_all(ws.path().join("ocib-out/bin")).unwrap();
    let second = build(ws.path(), cache.path(), &targets);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(executed_and_hits(&second), (0, executed), "{}", second.stderr);
    assert!(std::fs::metadata(&tar).unwrap().len() > 0);
    assert_eq!(std::process::Command::new(ws.path().join("ocib-bin/app/gen.sh")).output().unwrap().stdout, b"gen\n");
}

#[test]
fn a_same_size_source_edit_with_its_mtime_restored_is_rebuilt() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        ("p/BUILD", "genrule(name = \"g\", srcs = [\"in.txt\"], outs = [\"o.txt\"], cmd = \"cat $< > $@\")\n"),
        ("p/in.txt", "old\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//p:g"])), (1, 0));
    rewrite_in_place(&ws.path().join("p/in.txt"), b"new\n");
    let again = build(ws.path(), cache.path(), &["//p:g"]);
    assert_eq!(executed_and_hits(&again), (1, 0), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/p/o.txt")).unwrap(), "new\n");
}

#[test]
fn a_corrupted_cas_entry_is_not_served_and_is_rebuilt() {
    let ws = workspace(&[("WORKSPACE", ""), ("p/BUILD", "genrule(name = \"g\", outs = [\"o.txt\"], cmd = \"echo good > $@\")\n")]);
    let cache = tempfile::tempdir().unwrap();
    let out = ws.path().join("ocib-bin/p/o.txt");
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//p:g"])), (1, 0));
    let entry = cas_file(cache.path(), b"good\n");
    assert!(entry.is_file(), "the output is stored at {}", entry.display());

    // A byte flipped in place (the output in ocib-out/bin is the same inode).
    rewrite_in_place(&entry, b"gooD\n");
    let again = build(ws.path(), cache.path(), &["//p:g"]);
    assert_eq!(executed_and_hits(&again), (1, 0), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "good\n");
    assert_eq!(std::fs::read(&entry).unwrap(), b"good\n", "the entry is stored again");

    // The entry replaced by another file of the same size and mtime.
    replace_by_new_inode(&entry, b"evil\n");
    let third = build(ws.path(), cache.path(), &["//p:g"]);
    assert_eq!(executed_and_hits(&third), (1, 0), "{}", third.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "good\n");
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//p:g"])), (0, 1));
}

#[test]
fn clean_verify_drops_corrupted_entries_and_keeps_good_ones() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        (
            "p/BUILD",
            "genrule(name = \"a\", outs = [\"a.txt\"], cmd = \"echo aaaa > $@\")\ngenrule(name = \"b\", outs = [\"b.txt\"], cmd = \"echo bbbb > $@\")\n",
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//p:a", "//p:b"])), (2, 0));
    let entries = walkdir::WalkDir::new(cache.path().join("cas")).into_iter().flatten().filter(|e| e.file_type().is_file()).count();
    let (good, bad) = (cas_file(cache.path(), b"aaaa\n"), cas_file(cache.path(), b"bbbb\n"));
    replace_by_new_inode(&bad, b"BBBB\n");
    let verified = ocib(ws.path(), &["clean", "--verify", &format!("--disk_cache={}", cache.path().display())]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(verified.stderr.contains(&format!("{entries} entries checked, 1 corrupted entries dropped")), "{}", verified.stderr);
    assert!(good.is_file() && !bad.exists());
    assert!(ws.path().join("ocib-bin/p/a.txt").is_file(), "--verify leaves the outputs alone");
    let rebuilt = build(ws.path(), cache.path(), &["//p:a", "//p:b"]);
    assert_eq!(executed_and_hits(&rebuilt), (1, 1), "{}", rebuilt.stderr);
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/p/b.txt")).unwrap(), "bbbb\n");
}

/// Whether a process exists and is not a zombie (a zombie has exited; only its parent's
/// wait is missing, which in a container without an init may never come).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn children_die_with_a_sigkilled_build_and_the_next_build_removes_its_scratch_space() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("sleep.pid");
    // `sleep` is a grandchild of ocib (bash runs it): PDEATHSIG alone would not reach it.
    let build_file = format!(
        "genrule(name = \"slow\", outs = [\"slow.txt\"], cmd = \"sleep 37 & echo $$! > {}; wait; touch $@\")\ngenrule(name = \"quick\", outs = [\"q.txt\"], cmd = \"echo q > $@\")\n",
        marker.display()
    );
    let ws = workspace(&[("WORKSPACE", ""), ("p/BUILD", &build_file)]);
    let cache = tempfile::tempdir().unwrap();
    let mut child = spawn_build(ws.path(), cache.path(), "//p:slow", std::process::Stdio::null());
    wait_until("the action to start", Duration::from_secs(60), || std::fs::read_to_string(&marker).is_ok_and(|s| s.ends_with('\n')));
    let sleep_pid: i32 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    assert!(running(sleep_pid));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    wait_until("the action's sleep to be killed", Duration::from_secs(10), || !running(sleep_pid));

    let scratch = ws.path().join("ocib-out/tmp");
    let left = std::fs::read_dir(&scratch).unwrap().count();
    assert!(left > 0, "a killed build leaves its exec root behind");
    let next = build(ws.path(), cache.path(), &["//p:quick"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0, "the next build removed the stale exec root");
}

/// A 1 MiB tmpfs, unmounted when dropped.
struct SmallTmpfs {
    dir: tempfile::TempDir,
}

impl SmallTmpfs {
    fn mount() -> Option<SmallTmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallTmpfs { dir })
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_cache_disk_names_the_path_and_the_action() {
    let Some(fs) = SmallTmpfs::mount() else {
        panic!("this test needs to mount a 1 MiB tmpfs (root; CI runs as root)");
    };
    let ws = workspace(&[
        ("WORKSPACE", ""),
        ("p/BUILD", "genrule(name = \"big\", outs = [\"big.bin\"], cmd = \"head -c 2097152 /dev/zero > $@\")\n"),
    ]);
    let cache = fs.dir.path().join("cache");
    let out = build(ws.path(), &cache, &["//p:big"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let error = out.stderr.lines().find(|l| l.starts_with("ERROR: //p:big")).unwrap_or_else(|| panic!("no error line:\n{}", out.stderr));
    assert!(error.contains("Genrule //p:big"), "names the action: {error}");
    assert!(error.contains(&cache.join("cas").display().to_string()), "names the path: {error}");
    assert!(error.contains("No space left on device"), "{error}");
    assert!(!ws.path().join("ocib-bin/p/big.bin").exists());
    // Only the cache's (empty) lease lock file may be there.
    let leftovers: Vec<_> = walkdir::WalkDir::new(&cache)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.path() != cache.join("lease"))
        .map(|e| e.path().to_owned())
        .collect();
    assert!(leftovers.is_empty(), "no half-written entry is left: {leftovers:?}");
}

/// The action cache index (`<cache>/ac/index`, one file for every action record) cut short by
/// a crash, damaged in the middle, or overwritten: the build re-runs what it lost, its outputs
/// are always right, and the index is whole again afterwards.
#[test]
fn a_damaged_action_cache_index_costs_reruns_never_wrong_outputs() {
    let mut build_file = String::new();
    for n in ["a", "b", "c", "d", "e", "f"] {
        build_file.push_str(&format!("genrule(name = \"{n}\", outs = [\"{n}.txt\"], cmd = \"echo {n}{n}{n} > $@\")\n"));
    }
    let ws = workspace(&[("WORKSPACE", ""), ("p/BUILD", &build_file)]);
    let cache = tempfile::tempdir().unwrap();
    let index = cache.path().join("ac/index");
    let targets = ["//p:a", "//p:b", "//p:c", "//p:d", "//p:e", "//p:f"];
    // Answers off: an unchanged build answered from its record would not read the index.
    let check = |what: &str| {
        let out = build_without_answers(ws.path(), cache.path(), &targets);
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        for n in ["a", "b", "c", "d", "e", "f"] {
            let got = std::fs::read_to_string(ws.path().join(format!("ocib-bin/p/{n}.txt"))).unwrap();
            assert_eq!(got, format!("{n}{n}{n}\n"), "{what}: //p:{n}");
        }
        executed_and_hits(&out)
    };
    assert_eq!(check("the first build"), (6, 0));
    assert!(index.is_file(), "the records are in {}", index.display());
    let whole = std::fs::read(&index).unwrap();

    // Torn in the last record (a write cut by a crash): only that action runs again.
    std::fs::write(&index, &whole[..whole.len() - 5]).unwrap();
    assert_eq!(check("after a torn tail"), (1, 5));
    assert_eq!(check("after the torn tail was repaired"), (0, 6));

    // A byte damaged in the middle: the records from there on are lost, none is misread.
    let whole = std::fs::read(&index).unwrap();
    let mut damaged = whole.clone();
    damaged[whole.len() / 2] ^= 0xff;
    std::fs::write(&index, &damaged).unwrap();
    let (executed, hits) = check("after a damaged record");
    assert!(executed >= 1 && executed + hits == 6, "{executed} executed, {hits} hits");
    assert_eq!(check("after the damage was repaired"), (0, 6));

    // Not an index at all, or empty: everything runs again.
    std::fs::write(&index, vec![0x5au8; whole.len()]).unwrap();
    assert_eq!(check("after the index was overwritten"), (6, 0));
    std::fs::write(&index, b"").unwrap();
    assert_eq!(check("after the index was emptied"), (6, 0));
    assert_eq!(check("after it was written again"), (0, 6));
}

/// Several ocib commands on one cache at once (builds of different workspaces): none loses or
/// damages another's records.
#[test]
fn concurrent_builds_sharing_a_cache_keep_every_record() {
    let cache = tempfile::tempdir().unwrap();
    let workspaces: Vec<_> = (0..3)
        .map(|w| {
            let mut build_file = String::new();
            for n in 0..8 {
                build_file.push_str(&format!("genrule(name = \"g{n}\", outs = [\"g{n}.txt\"], cmd = \"echo {w}-{n} > $@\")\n"));
            }
            workspace(&[("WORKSPACE", ""), ("p/BUILD", &build_file)])
        })
        .collect();
    let running: Vec<_> =
        workspaces.iter().map(|ws| spawn_build(ws.path(), cache.path(), "//p:all", std::process::Stdio::piped())).collect();
    for child in running {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for (w, ws) in workspaces.iter().enumerate() {
        let out = build(ws.path(), cache.path(), &["//p:all"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(executed_and_hits(&out), (0, 8), "workspace {w}: {}", out.stderr);
        assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/p/g7.txt")).unwrap(), format!("{w}-7\n"));
    }
}

/// Exec roots are reused from one action to the next (one worker here, so the second action
/// gets the first's root): the second sees only its own declared inputs, none of the first's
/// inputs or leftovers.
#[test]
fn a_reused_exec_root_shows_only_the_next_actions_inputs() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        ("p/secret.txt", "secret\n"),
        (
            "p/BUILD",
            "genrule(name = \"first\", srcs = [\"secret.txt\"], outs = [\"first.txt\"], cmd = \"cat $< > $@; echo x > leftover.txt; mkdir -p scratch/d\")\n\
             genrule(name = \"second\", srcs = [\":first\"], outs = [\"second.txt\"], cmd = \"find . -mindepth 1 | sort > $@.tmp; mv $@.tmp $@\")\n",
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["--jobs=1", "//p:second"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listing = std::fs::read_to_string(ws.path().join("ocib-bin/p/second.txt")).unwrap();
    assert!(listing.contains("first.txt"), "{listing}");
    for unexpected in ["secret", "leftover", "scratch", "./p\n"] {
        assert!(!listing.contains(unexpected), "'{unexpected}' is visible to the second action:\n{listing}");
    }
    assert_eq!(std::fs::read_dir(ws.path().join("ocib-out/tmp")).unwrap().count(), 0, "the roots are removed at the end");
}
