//! `ocib build` of rules_pkg `pkg_tar` targets (testdata/pkgtar/app/BUILD.bazel), each archive
//! read back and compared member by member with what rules_pkg 1.3 writes.
//!
//! The expected listings follow rules_pkg's sources (`pkg/private/tar/tar.bzl`,
//! `pkg/private/pkg_files.bzl`, `pkg/path.bzl`, `pkg/mappings.bzl`, `build_tar.py`,
//! `tar_writer.py`). Most cases were also checked by running rules_pkg's own `build_tar.py`
//! (python 3.11, rules_pkg @ 22b54a36) on a JSON manifest written the way tar.bzl writes it for
//! these targets, with the same source files and the same default flags (`--mode 0555 --owner
//! 0.0 --owner_name . --mtime portable --create_parents`): strip_dot, owners, ownernames, modes,
//! mtime, no_portable_mtime, symlinks, empties, ordering, with_deps (deps = ocib's base.tar and
//! base_gz.tar.gz; build_tar printed the two "Duplicate file" warnings), pkgdir, pkg_files,
//! mklink_mkdirs, files_attr, no_parents and gz. build_tar's listing was identical to the one
//! asserted here, and its tar bytes too (gz: the decompressed tar and the gzip header; the
//! deflate stream differs, see `src/exec/tar_writer.rs`), except for the `#[ignore]`d cases.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::common::{Output, build, copy_workspace};

/// rules_pkg's `portable_mtime` (2000-01-01T00:00:00Z).
const P: u64 = 946_684_800;

/// One member: (name, type, mode, uid, gid, uname, gname, mtime, link target).
type Member = (String, char, u32, u64, u64, String, String, u64, String);

fn member(name: &str, kind: char, mode: u32, link: &str) -> Member {
    (name.to_owned(), kind, mode, 0, 0, String::new(), String::new(), P, link.to_owned())
}
/// A regular file, uid/gid 0, no names, portable mtime.
fn f(name: &str, mode: u32) -> Member {
    member(name, '0', mode, "")
}
/// A directory (its name ends in `/`).
fn d(name: &str, mode: u32) -> Member {
    member(name, '5', mode, "")
}
/// A symbolic link.
fn l(name: &str, mode: u32, target: &str) -> Member {
    member(name, '2', mode, target)
}
fn ids(mut m: Member, uid: u64, gid: u64) -> Member {
    (m.3, m.4) = (uid, gid);
    m
}
fn names(mut m: Member, uname: &str, gname: &str) -> Member {
    (m.5, m.6) = (uname.to_owned(), gname.to_owned());
    m
}
fn at(mut m: Member, mtime: u64) -> Member {
    m.7 = mtime;
    m
}

/// The members of a tar, in archive order.
fn list(tar_bytes: &[u8]) -> Vec<Member> {
    read_tar(tar_bytes).into_iter().map(|(m, _)| m).collect()
}

/// `(name, content)` of the regular files of a tar, in archive order.
fn contents(tar_bytes: &[u8]) -> Vec<(String, String)> {
    read_tar(tar_bytes).into_iter().filter(|(m, _)| m.1 == '0').map(|(m, data)| (m.0, data)).collect()
}

fn read_tar(tar_bytes: &[u8]) -> Vec<(Member, String)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut e = entry.expect("tar entry");
        let h = e.header().clone();
        let name = String::from_utf8(e.path_bytes().into_owned()).expect("utf-8 name");
        let link = e.link_name_bytes().map(|b| String::from_utf8(b.into_owned()).expect("utf-8 link")).unwrap_or_default();
        let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap_or_default().to_vec()).expect("utf-8 owner name");
        let mut data = String::new();
        e.read_to_string(&mut data).expect("member data");
        let m = (
            name,
            h.entry_type().as_byte() as char,
            h.mode().expect("mode"),
            h.uid().expect("uid"),
            h.gid().expect("gid"),
            text(h.username_bytes()),
            text(h.groupname_bytes()),
            h.mtime().expect("mtime"),
            link,
        );
        out.push((m, data));
    }
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("valid gzip");
    out
}

/// A fresh copy of testdata/pkgtar with its own cache, after `ocib build TARGETS`.
struct Built {
    ws: tempfile::TempDir,
    _cache: tempfile::TempDir,
    out: Output,
}

impl Built {
    /// The bytes of `ocib-bin/app/<file>`.
    fn read(&self, file: &str) -> Vec<u8> {
        let p = self.ws.path().join("ocib-bin/app").join(file);
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }
    fn list(&self, file: &str) -> Vec<Member> {
        list(&self.read(file))
    }
}

fn try_build(targets: &[&str]) -> Built {
    let ws = copy_workspace("pkgtar");
    let cache = tempfile::tempdir().expect("cache dir");
    let out = build(ws.path(), cache.path(), targets);
    Built { ws, _cache: cache, out }
}

fn build_ok(targets: &[&str]) -> Built {
    let b = try_build(targets);
    assert_eq!(b.out.code, 0, "ocib build {targets:?} failed:\n{}", b.out.stderr);
    b
}

const TOOL: &str = "#!/bin/sh\necho tool\n";

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn strip_prefix_default_flattens_to_basenames() {
    let b = build_ok(&["//app:flat"]);
    let tar = b.read("flat.tar");
    // Data files 0555, the sh_binary 0755; uid/gid 0, no names, portable mtime; no directories.
    assert_eq!(list(&tar), vec![f("a.conf", 0o555), f("b.conf", 0o555), f("data.txt", 0o555), f("lib.txt", 0o555), f("tool", 0o755)]);
    assert_eq!(
        contents(&tar),
        kv(&[("a.conf", "a=1\n"), ("b.conf", "b=2\n"), ("data.txt", "hello\n"), ("lib.txt", "lib\n"), ("tool", TOOL)])
    );
}

#[test]
fn strip_prefix_dot_slash_and_sub() {
    let b = build_ok(&["//app:strip_dot", "//app:strip_root", "//app:strip_sub"]);
    // ".": relative to the package; a file of another package keeps its whole path.
    assert_eq!(
        b.list("strip_dot.tar"),
        vec![
            d("conf/", 0o755),
            f("conf/a.conf", 0o555),
            d("conf/sub/", 0o755),
            f("conf/sub/b.conf", 0o555),
            f("data.txt", 0o555),
            d("other/", 0o755),
            f("other/lib.txt", 0o555),
            f("tool", 0o755),
        ]
    );
    // "/": workspace-relative.
    assert_eq!(
        b.list("strip_root.tar"),
        vec![
            d("app/", 0o755),
            d("app/conf/", 0o755),
            f("app/conf/a.conf", 0o555),
            d("app/conf/sub/", 0o755),
            f("app/conf/sub/b.conf", 0o555),
            f("app/data.txt", 0o555),
            f("app/tool", 0o755),
            d("other/", 0o755),
            f("other/lib.txt", 0o555),
        ]
    );
    // "sub": relative to app/sub; a file outside it keeps its workspace path; "app/subdir/w.txt"
    // starts with "app/sub" but "sub" is not one of its components, so only the package is cut.
    let tar = b.read("strip_sub.tar");
    assert_eq!(
        list(&tar),
        vec![
            d("app/", 0o755),
            f("app/data.txt", 0o555),
            d("subdir/", 0o755),
            f("subdir/w.txt", 0o555),
            d("x/", 0o755),
            f("x/y.txt", 0o555),
            f("z.txt", 0o555),
        ]
    );
    assert_eq!(contents(&tar), kv(&[("app/data.txt", "hello\n"), ("subdir/w.txt", "ww\n"), ("x/y.txt", "yy\n"), ("z.txt", "zz\n")]));
}

#[test]
fn package_dir_prefixes_entries_and_deps() {
    let b = build_ok(&["//app:pkgdir"]);
    // A key already under package_dir is not prefixed again; the dep's members (mtime
    // 1600000000) come last, under package_dir.
    assert_eq!(
        b.list("pkgdir.tar"),
        vec![
            d("opt/", 0o755),
            d("opt/app/", 0o755),
            d("opt/app/conf/", 0o755),
            f("opt/app/conf/a.conf", 0o555),
            d("opt/app/conf/sub/", 0o755),
            f("opt/app/conf/sub/b.conf", 0o555),
            f("opt/app/data.txt", 0o555),
            d("opt/app/zz/", 0o755),
            f("opt/app/zz/prefixed", 0o555),
            at(d("opt/app/etc/", 0o755), 1_600_000_000),
            at(f("opt/app/etc/from_dep", 0o555), 1_600_000_000),
        ]
    );
}

#[test]
fn package_dir_order_follows_manifest_keys() {
    let b = build_ok(&["//app:pkgdir_key_order"]);
    // Checked with build_tar.py: keys "b" < "opt/app/a", so opt/app/b comes first.
    assert_eq!(b.list("pkgdir_key_order.tar"), vec![d("opt/", 0o755), d("opt/app/", 0o755), f("opt/app/b", 0o555), f("opt/app/a", 0o555)]);
}

#[test]
fn remap_paths_applies_to_the_raw_dest_path() {
    let b = build_ok(&["//app:remap"]);
    let tar = b.read("remap.tar");
    // Keys match the path as path.bzl computes it, with its leading "/".
    assert_eq!(
        list(&tar),
        vec![
            d("bin/", 0o755),
            f("bin/tool2", 0o755),
            d("conf/", 0o755),
            f("conf/a.conf", 0o555),
            d("etc/", 0o755),
            f("etc/b.conf", 0o555),
            d("share/", 0o755),
            f("share/data.txt", 0o555),
        ]
    );
    assert_eq!(
        contents(&tar),
        kv(&[("bin/tool2", TOOL), ("conf/a.conf", "a=1\n"), ("etc/b.conf", "b=2\n"), ("share/data.txt", "hello\n")])
    );
}

#[test]
fn mode_and_modes_but_an_executable_keeps_0755() {
    let b = build_ok(&["//app:modes"]);
    // mode = "0644"; modes keys with or without a leading "/"; the sh_binary's 0755 beats
    // modes["tool"] = "0700"; modes apply to empty_dirs too.
    assert_eq!(b.list("modes.tar"), vec![f("a.conf", 0o640), f("b.conf", 0o644), d("d/", 0o711), f("data.txt", 0o600), f("tool", 0o755)]);
}

#[test]
fn genrule_executable_gets_mode_not_0755() {
    let b = build_ok(&["//app:genrule_exe"]);
    // rules_pkg's get_my_executable() needs files_to_run.runfiles_manifest, which Bazel's
    // genrule never has (GenRuleBase: setRunfilesSupport(null, executable)). Checked with
    // build_tar.py (gen.sh with an empty manifest mode).
    assert_eq!(b.list("genrule_exe.tar"), vec![f("gen.sh", 0o700), f("tool", 0o755)]);
}

#[test]
fn owner_and_owners_also_own_created_parents() {
    let b = build_ok(&["//app:owners"]);
    // Auto-created parents take the uid/gid of the child that created them.
    assert_eq!(
        b.list("owners.tar"),
        vec![
            ids(d("conf/", 0o755), 1000, 1001),
            ids(f("conf/a.conf", 0o555), 1000, 1001),
            ids(d("conf/sub/", 0o755), 7, 8),
            ids(f("conf/sub/b.conf", 0o555), 7, 8),
            f("data.txt", 0o555),
            ids(f("tool", 0o755), 1000, 1001),
        ]
    );
}

#[test]
fn ownername_and_ownernames() {
    let b = build_ok(&["//app:ownernames"]);
    assert_eq!(
        b.list("ownernames.tar"),
        vec![
            names(d("conf/", 0o755), "root", "wheel"),
            names(f("conf/a.conf", 0o555), "root", "wheel"),
            names(d("conf/sub/", 0o755), "bob", "users"),
            names(f("conf/sub/b.conf", 0o555), "bob", "users"),
            names(f("data.txt", 0o555), "alice", "staff"),
        ]
    );
}

#[test]
fn mtime_portable_default_and_errors() {
    let b = build_ok(&["//app:mtime", "//app:no_portable_mtime", "//app:empties"]);
    // mtime with portable_mtime = False: every member, parents, dirs and symlinks included.
    let t = 1_234_567_890;
    assert_eq!(
        b.list("mtime.tar"),
        vec![
            at(d("conf/", 0o755), t),
            at(f("conf/a.conf", 0o555), t),
            at(d("conf/sub/", 0o755), t),
            at(f("conf/sub/b.conf", 0o555), t),
            at(f("data.txt", 0o555), t),
            at(l("link", 0o555, "data.txt"), t),
            at(d("var/", 0o755), t),
            at(d("var/empty/", 0o555), t),
        ]
    );
    // portable_mtime = False and no mtime: 0.
    assert_eq!(b.list("no_portable_mtime.tar"), vec![at(d("etc/", 0o755), 0), at(f("etc/x", 0o555), 0)]);
    // Default: portable, 946684800, on every member.
    assert!(b.list("empties.tar").iter().all(|m| m.7 == P));

    // mtime without portable_mtime = False fails analysis, with rules_pkg's message.
    let bad = try_build(&["//bad:mtime_without_portable_false"]);
    assert_eq!(bad.out.code, 1, "{}", bad.out.stderr);
    assert!(bad.out.stderr.contains("You may not set both mtime and portable_mtime"), "{}", bad.out.stderr);
    assert!(bad.out.stderr.contains("//bad:mtime_without_portable_false"), "{}", bad.out.stderr);
}

#[test]
fn files_maps_labels_to_destinations_without_executable_mode() {
    let b = build_ok(&["//app:files_attr"]);
    let tar = b.read("files_attr.tar");
    // `files` entries take `mode` (0555), even the sh_binary's executable.
    assert_eq!(
        list(&tar),
        vec![d("abs/", 0o755), f("abs/a.conf", 0o555), d("bin/", 0o755), f("bin/t", 0o555), d("etc/", 0o755), f("etc/renamed.txt", 0o555)]
    );
    assert_eq!(contents(&tar), kv(&[("abs/a.conf", "a=1\n"), ("bin/t", TOOL), ("etc/renamed.txt", "hello\n")]));
}

#[test]
fn empty_files_and_empty_dirs() {
    let b = build_ok(&["//app:empties"]);
    let tar = b.read("empties.tar");
    // Both take `mode` (0555); leading/trailing "/" dropped; parents 0755.
    assert_eq!(
        list(&tar),
        vec![
            d("etc/", 0o755),
            f("etc/empty", 0o555),
            d("srv/", 0o555),
            d("var/", 0o755),
            d("var/cache/", 0o555),
            d("var/log/", 0o755),
            f("var/log/x.log", 0o555),
        ]
    );
    assert_eq!(contents(&tar), kv(&[("etc/empty", ""), ("var/log/x.log", "")]));
}

#[test]
fn symlinks_with_package_dir_and_a_dot_slash_key() {
    let b = build_ok(&["//app:symlinks"]);
    // "./lib64" is written verbatim (no package_dir, no parent for "./"); the others go under
    // package_dir "root". Symlinks take `mode` (0555).
    assert_eq!(
        b.list("symlinks.tar"),
        vec![
            l("./lib64", 0o555, "lib"),
            d("root/", 0o755),
            d("root/abs/", 0o755),
            l("root/abs/link", 0o555, "../x"),
            d("root/usr/", 0o755),
            d("root/usr/bin/", 0o755),
            l("root/usr/bin/tool", 0o555, "/opt/tool"),
        ]
    );
}

#[test]
fn deps_are_merged_last_with_their_mtimes_and_without_duplicates() {
    let b = build_ok(&["//app:with_deps"]);
    let tar = b.read("with_deps.tar");
    // base.tar (mtime 1700000000, owner 1000.1000 "someone.somegroup") then base_gz.tar.gz
    // (mtime 1500000000): owner names dropped, numeric ids and mtimes kept; data.txt and
    // base_gz's etc/base.conf are duplicates (skipped), base's etc/ dir already exists.
    assert_eq!(
        list(&tar),
        vec![
            f("data.txt", 0o555),
            d("etc/", 0o755),
            f("etc/main.conf", 0o555),
            at(ids(f("etc/base.conf", 0o555), 1000, 1000), 1_700_000_000),
            at(d("srv/", 0o755), 1_500_000_000),
            at(f("srv/data", 0o555), 1_500_000_000),
        ]
    );
    // The first occurrence wins: data.txt is this target's, not the dep's.
    assert_eq!(contents(&tar)[0], ("data.txt".to_owned(), "hello\n".to_owned()));
}

#[test]
fn deps_duplicates_are_reported() {
    let b = build_ok(&["//app:with_deps"]);
    // Bazel shows the action's output ("INFO: From Writing: ...with_deps.tar:") with these two
    // lines, printed by build_tar.py when run on the same inputs.
    for dup in ["data.txt", "etc/base.conf"] {
        let msg = format!("Duplicate file in archive: {dup}, picking first occurrence");
        assert!(b.out.stderr.contains(&msg), "no {msg:?} in:\n{}", b.out.stderr);
    }
}

#[test]
fn create_parents_false_writes_no_directories() {
    let b = build_ok(&["//app:no_parents"]);
    assert_eq!(b.list("no_parents.tar"), vec![f("conf/a.conf", 0o555), f("conf/sub/b.conf", 0o555), f("data.txt", 0o555)]);
}

#[test]
fn extension_tar_gz_is_valid_and_deterministic() {
    let a = build_ok(&["//app:gz"]);
    let b = build_ok(&["//app:gz"]);
    let gz = a.read("gz.tar.gz");
    assert_eq!(gz, b.read("gz.tar.gz"), "two builds in separate caches differ");
    // Header as Python's gzip.GzipFile writes it: FNAME flag, MTIME = the default mtime
    // (946684800, little-endian), XFL 0 (level 6), OS 255, FNAME = output name minus ".gz".
    assert_eq!(&gz[..17], b"\x1f\x8b\x08\x08\x80\x43\x6d\x38\x00\xffgz.tar\0");
    let tar = gunzip(&gz);
    assert_eq!(
        list(&tar),
        vec![
            d("conf/", 0o755),
            f("conf/a.conf", 0o555),
            d("conf/sub/", 0o755),
            f("conf/sub/b.conf", 0o555),
            f("data.txt", 0o555),
            f("tool", 0o755),
        ]
    );
    assert_eq!(contents(&tar), kv(&[("conf/a.conf", "a=1\n"), ("conf/sub/b.conf", "b=2\n"), ("data.txt", "hello\n"), ("tool", TOOL)]));
}

#[test]
fn pkg_files_prefix_strip_prefix_renames_and_attributes() {
    let b = build_ok(&["//app:pkg_files"]);
    let tar = b.read("pkg_files.tar");
    // pf_conf: prefix "etc/app", strip_prefix.from_pkg("conf"), mode 0640 uid 1000 gid 1001.
    // pf_renamed: prefix "share", files_only (basename), a rename, mode 0600 user/group names.
    // pkg_files modes win over `modes` and over the sh_binary's 0755.
    assert_eq!(
        list(&tar),
        vec![
            ids(d("etc/", 0o755), 1000, 1001),
            ids(d("etc/app/", 0o755), 1000, 1001),
            ids(f("etc/app/a.conf", 0o640), 1000, 1001),
            ids(d("etc/app/sub/", 0o755), 1000, 1001),
            ids(f("etc/app/sub/b.conf", 0o640), 1000, 1001),
            names(d("share/", 0o755), "usr", "grp"),
            names(d("share/docs/", 0o755), "usr", "grp"),
            names(f("share/docs/readme.txt", 0o600), "usr", "grp"),
            names(f("share/tool", 0o600), "usr", "grp"),
        ]
    );
    assert_eq!(
        contents(&tar),
        kv(&[("etc/app/a.conf", "a=1\n"), ("etc/app/sub/b.conf", "b=2\n"), ("share/docs/readme.txt", "hello\n"), ("share/tool", TOOL)])
    );
}

#[test]
fn pkg_files_default_mode_is_0644() {
    let b = build_ok(&["//app:pkg_files_default_mode"]);
    // pkg_files sets attributes.setdefault("mode", "0644"), so the manifest mode is "0644" for
    // every file (the executable too) and modes["data.txt"] does not apply. Checked with
    // build_tar.py.
    assert_eq!(b.list("pkg_files_default_mode.tar"), vec![f("data.txt", 0o644), f("tool", 0o644)]);
}

#[test]
fn pkg_attributes_uid_without_gid() {
    let b = build_ok(&["//app:pkg_files_uid_only"]);
    // build_tar.add_manifest_entry: `attrs['ids'] = (entry.uid, entry.uid)` when gid is None.
    assert_eq!(b.list("pkg_files_uid_only.tar"), vec![ids(f("data.txt", 0o640), 1000, 1000)]);
}

#[test]
fn pkg_mklink_and_pkg_mkdirs() {
    let b = build_ok(&["//app:mklink_mkdirs"]);
    // pkg_mklink defaults to 0777, pkg_mkdirs to 0755; attributes override mode and ids, and
    // parents take the ids of their first child.
    assert_eq!(
        b.list("mklink_mkdirs.tar"),
        vec![
            d("usr/", 0o755),
            d("usr/bin/", 0o755),
            l("usr/bin/app", 0o777, "/opt/app/tool"),
            ids(d("usr/lib/", 0o755), 3, 4),
            ids(l("usr/lib/libx.so", 0o755, "libx.so.1"), 3, 4),
            d("var/", 0o755),
            d("var/lib/", 0o755),
            d("var/lib/app/", 0o755),
            d("var/run/", 0o755),
            ids(d("var/secret/", 0o700), 5, 6),
        ]
    );
}

#[test]
fn pkg_filegroup_prefix_nests() {
    let b = build_ok(&["//app:filegroup"]);
    let expected = |p: &str| {
        vec![
            ids(d(&format!("{p}opt/"), 0o755), 1000, 1001),
            ids(d(&format!("{p}opt/etc/"), 0o755), 1000, 1001),
            ids(d(&format!("{p}opt/etc/app/"), 0o755), 1000, 1001),
            ids(f(&format!("{p}opt/etc/app/a.conf"), 0o640), 1000, 1001),
            ids(d(&format!("{p}opt/etc/app/sub/"), 0o755), 1000, 1001),
            ids(f(&format!("{p}opt/etc/app/sub/b.conf"), 0o640), 1000, 1001),
            d(&format!("{p}opt/usr/"), 0o755),
            d(&format!("{p}opt/usr/bin/"), 0o755),
            l(&format!("{p}opt/usr/bin/app"), 0o777, "/opt/app/tool"),
            d(&format!("{p}opt/var/"), 0o755),
            d(&format!("{p}opt/var/lib/"), 0o755),
            d(&format!("{p}opt/var/lib/app/"), 0o755),
            d(&format!("{p}opt/var/run/"), 0o755),
        ]
    };
    let mut all = expected("");
    // "outer/" (with its slash) around the group: "outer/opt/...", whose parent "outer/" is
    // owned like its first child.
    all.push(ids(d("outer/", 0o755), 1000, 1001));
    all.extend(expected("outer/"));
    assert_eq!(b.list("filegroup.tar"), all);
}

#[test]
fn entries_sorted_and_parents_emitted_once() {
    let b = build_ok(&["//app:ordering"]);
    // empty_files listed unsorted; the explicit empty dir "a/b" (0555) sorts before its
    // children, so it is not also auto-created; "a/b/c/" is.
    assert_eq!(
        b.list("ordering.tar"),
        vec![
            d("a/", 0o755),
            f("a/3", 0o555),
            d("a/b/", 0o555),
            f("a/b/2", 0o555),
            d("a/b/c/", 0o755),
            f("a/b/c/4", 0o555),
            f("m", 0o555),
            d("z/", 0o755),
            f("z/1", 0o555),
        ]
    );
}

/// Every archive under `ocib-bin/app`, by file name.
fn archives(ws: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = ws.join("ocib-bin/app");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("ocib-bin/app")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".tar") || p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    paths.sort();
    paths.into_iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn clean_builds_in_two_checkouts_give_identical_archives() {
    let a = build_ok(&["//app:all"]);
    let b = build_ok(&["//app:all"]);
    assert_ne!(a.ws.path(), b.ws.path());
    let (x, y) = (archives(a.ws.path()), archives(b.ws.path()));
    assert!(x.len() >= 25, "only {} archives", x.len());
    assert_eq!(x.iter().map(|(n, _)| n).collect::<Vec<_>>(), y.iter().map(|(n, _)| n).collect::<Vec<_>>());
    for ((name, bytes_a), (_, bytes_b)) in x.iter().zip(&y) {
        assert!(bytes_a == bytes_b, "{name} differs between the two checkouts");
    }
}
