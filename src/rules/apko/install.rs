//! Installing apk packages into an in-memory root filesystem the way apko does
//! (pkg/apk/apk: `InitDB`, `installPackage`, `AddInstalledPackage`; pkg/build: accounts,
//! paths), then writing it as one reproducible layer: entries sorted, every mtime the build
//! date, ownership and modes (setuid included) as packaged.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};

use super::apk::{self, PkgInfo};

/// What a path is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// A hard link to another path of the layer.
    Hardlink(String),
}

/// One path of the root filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct FsEntry {
    pub kind: Kind,
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A file a package installed, as the installed database lists it.
#[derive(Debug, Clone)]
struct DbFile {
    path: String,
    is_dir: bool,
    mode: u32,
    uid: u64,
    gid: u64,
    checksum: Option<String>,
}

/// An installed package: its `.PKGINFO`, the `.apk` size, control checksum and files.
pub struct Installed {
    pub info: PkgInfo,
    pub size: u64,
    pub checksum: String,
    files: Vec<DbFile>,
}

impl Installed {
    pub fn name(&self) -> &str {
        self.info.get("pkgname")
    }

    pub fn build_date(&self) -> i64 {
        self.info.get("builddate").parse().unwrap_or(0)
    }
}

/// The root filesystem being assembled: paths without a leading `/`.
#[derive(Default)]
pub struct Root {
    pub entries: BTreeMap<String, FsEntry>,
}

/// A path inside the root: `./` and `/` prefixes dropped, `..` or empty components refused so
/// nothing lands outside the image's root.
pub fn confine(path: &str) -> Result<String> {
    let trimmed = path.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => {}
            ".." => bail!("path '{path}' leaves the image root"),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

impl Root {
    /// `path` with its parent directories resolved through symlinks the root already has, as
    /// apk writes through them (Wolfi's `/lib` → `usr/lib`: a package's `lib/x` lands in
    /// `usr/lib/x`). The last component is kept as is.
    pub fn resolve_parents(&self, path: &str) -> String {
        let mut parts: Vec<String> = path.split('/').map(str::to_owned).collect();
        let mut i = 0;
        let mut hops = 0;
        while i + 1 < parts.len() && hops < 40 {
            let prefix = parts[..=i].join("/");
            if let Some(FsEntry { kind: Kind::Symlink(target), .. }) = self.entries.get(&prefix) {
                let base = if target.starts_with('/') { String::new() } else { parts[..i].join("/") };
                let joined = if base.is_empty() { target.clone() } else { format!("{base}/{target}") };
                let Some(resolved) = normalize(&joined) else { return path.to_owned() };
                let mut next: Vec<String> = if resolved.is_empty() { vec![] } else { resolved.split('/').map(str::to_owned).collect() };
                next.extend(parts[i + 1..].iter().cloned());
                parts = next;
                i = 0;
                hops += 1;
                continue;
            }
            i += 1;
        }
        parts.join("/")
    }

    pub fn dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64) {
        self.parents(path);
        self.entries.insert(path.to_owned(), FsEntry { kind: Kind::Dir, mode, uid, gid });
    }

    pub fn file(&mut self, path: &str, content: Vec<u8>, mode: u32) {
        self.parents(path);
        self.entries.insert(path.to_owned(), FsEntry { kind: Kind::File(content), mode, uid: 0, gid: 0 });
    }

    /// Creates missing parent directories (root-owned, 0755, as `MkdirAll` does).
    fn parents(&mut self, path: &str) {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            self.entries.entry(parent.to_owned()).or_insert(FsEntry { kind: Kind::Dir, mode: 0o755, uid: 0, gid: 0 });
            at += i + 1;
        }
    }

    /// Installs one `.apk` (its sections, its `.PKGINFO` and its size in bytes): the data
    /// section's entries replace what earlier packages put there.
    pub fn install(&mut self, sections: &apk::ApkSections, info: PkgInfo, apk_len: usize) -> Result<Installed> {
        let name = info.get("pkgname").to_owned();
        if name.is_empty() {
            bail!(".PKGINFO has no pkgname");
        }
        let mut files = Vec::new();
        let mut archive = tar::Archive::new(sections.data.tar.as_slice());
        for entry in archive.entries().with_context(|| format!("package {name}: reading the data section"))? {
            let mut entry = entry.with_context(|| format!("package {name}: reading the data section"))?;
            let raw_path = entry.path()?.to_string_lossy().into_owned();
            let path = confine(&raw_path).with_context(|| format!("package {name}"))?;
            if path.is_empty() {
                continue;
            }
            // The database keeps the package's own names; the file lands where they resolve.
            let db_path = path.clone();
            let path = self.resolve_parents(&path);
            let header = entry.header();
            let mode = header.mode()? & 0o7777;
            let uid = header.uid()?;
            let gid = header.gid()?;
            let entry_type = header.entry_type();
            let mut checksum = None;
            if let Some(pax) = entry.pax_extensions()? {
                for ext in pax.flatten() {
                    if ext.key() == Ok("APK-TOOLS.checksum.SHA1") {
                        let value = ext.value().unwrap_or_default().to_owned();
                        // apko: hex checksums become the Q1 + base64 form.
                        checksum = Some(if value.starts_with("Q1") { value } else { hex_to_q1(&value).unwrap_or(value) });
                    }
                }
            }
            let kind = if entry_type.is_dir() {
                Kind::Dir
            } else if entry_type.is_symlink() {
                Kind::Symlink(entry.link_name()?.map(|l| l.to_string_lossy().into_owned()).unwrap_or_default())
            } else if entry_type.is_hard_link() {
                let target = entry.link_name()?.map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
                Kind::Hardlink(confine(&target).with_context(|| format!("package {name}: hard link {raw_path}"))?)
            } else if entry_type.is_file() {
                let mut content = Vec::new();
                entry.read_to_end(&mut content).with_context(|| format!("package {name}: reading {raw_path}"))?;
                Kind::File(content)
            } else {
                // Devices and FIFOs: apko ignores mknod failures; ocib leaves them out.
                continue;
            };
            let is_dir = kind == Kind::Dir;
            self.parents(&path);
            if is_dir && let Some(existing) = self.entries.get(&path) {
                // A directory another package created keeps its entry when it is one.
                if existing.kind == Kind::Dir {
                    self.entries.insert(path.clone(), FsEntry { kind, mode, uid, gid });
                }
            } else {
                self.entries.insert(path.clone(), FsEntry { kind, mode, uid, gid });
            }
            files.push(DbFile { path: db_path, is_dir, mode, uid, gid, checksum });
        }
        Ok(Installed { info, size: apk_len as u64, checksum: apk::q1(&sections.control.compressed), files })
    }
}

/// `a/./b/../c` → `a/c`, without leaving the root (`None` if it would).
fn normalize(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            p => out.push(p),
        }
    }
    Some(out.join("/"))
}

fn hex_to_q1(hex: &str) -> Option<String> {
    use base64::Engine;
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect();
    Some(format!("Q1{}", base64::engine::general_purpose::STANDARD.encode(bytes?)))
}

/// apko's `pathCompare`: within a directory, non-directories sort before directories.
fn path_compare(a: &DbFile, b: &DbFile) -> std::cmp::Ordering {
    let at: Vec<&str> = a.path.split('/').collect();
    let bt: Vec<&str> = b.path.split('/').collect();
    let mut n = 0;
    while n + 1 < at.len() && n + 1 < bt.len() {
        let o = at[n].cmp(bt[n]);
        if o != std::cmp::Ordering::Equal {
            return o;
        }
        n += 1;
    }
    let a_dir = n + 1 < at.len() || a.is_dir;
    let b_dir = n + 1 < bt.len() || b.is_dir;
    match (a_dir, b_dir) {
        // apko's comparison calls a directory and its children equal and keeps the tar's order
        // (parents first); make that explicit so the order never depends on the input's.
        (x, y) if x == y => at[n].cmp(bt[n]).then(at.len().cmp(&bt.len())).then_with(|| a.path.cmp(&b.path)),
        (false, true) => std::cmp::Ordering::Less,
        _ => std::cmp::Ordering::Greater,
    }
}

/// One package's record in `/usr/lib/apk/db/installed` (apko's `PackageToInstalled` and
/// `AddInstalledPackage`): the package lines, then `F:` per directory with `M:` for
/// non-default ownership/mode, `R:` per file with `a:` and `Z:` likewise.
pub fn installed_record(pkg: &Installed) -> String {
    let i = &pkg.info;
    let mut lines = vec![
        format!("P:{}", i.get("pkgname")),
        format!("V:{}", i.get("pkgver")),
        format!("A:{}", i.get("arch")),
        format!("L:{}", i.get("license")),
        format!("T:{}", i.get("pkgdesc")),
        format!("o:{}", i.get("origin")),
        format!("m:{}", i.get("maintainer")),
        format!("U:{}", i.get("url")),
        format!("D:{}", i.all("depend").join(" ")),
        format!("p:{}", i.all("provides").join(" ")),
    ];
    let replaces = i.all("replaces");
    if !replaces.is_empty() {
        lines.push(format!("r:{}", replaces.join(" ")));
    }
    lines.push(format!("c:{}", i.get("commit")));
    lines.push(format!("i:{}", i.get("install_if")));
    lines.push(format!("t:{}", pkg.build_date()));
    lines.push(format!("S:{}", pkg.size));
    lines.push(format!("I:{}", i.get("size").parse::<u64>().unwrap_or(0)));
    lines.push(format!("k:{}", i.get("provider_priority").parse::<u64>().unwrap_or(0)));
    lines.push(format!("C:{}", pkg.checksum));
    let mut files = pkg.files.clone();
    files.sort_by(path_compare);
    let mut top_dir_needed = true;
    for f in &files {
        if f.is_dir {
            lines.push(format!("F:{}", f.path));
            if f.mode != 0o755 || f.uid != 0 || f.gid != 0 {
                lines.push(format!("M:{}:{}:{:04o}", f.uid, f.gid, f.mode));
            }
        } else {
            if top_dir_needed {
                lines.push("F:".to_owned());
            }
            let base = f.path.rsplit('/').next().unwrap_or(&f.path);
            lines.push(format!("R:{base}"));
            if f.mode != 0o644 || f.uid != 0 || f.gid != 0 {
                lines.push(format!("a:{}:{}:{:04o}", f.uid, f.gid, f.mode));
            }
            if let Some(c) = &f.checksum {
                lines.push(format!("Z:{c}"));
            }
        }
        top_dir_needed = false;
    }
    lines.join("\n") + "\n\n"
}

/// Writes the root as an uncompressed tar: sorted by path, directories with a trailing `/`,
/// every mtime `mtime`, no user or group names.
pub fn write_tar(root: &Root, mtime: u64) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, e) in &root.entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(mtime);
        match &e.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                builder.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Kind::File(content) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(content.len() as u64);
                builder.append_data(&mut h, path, content.as_slice())?;
            }
            Kind::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                builder.append_link(&mut h, path, target)?;
            }
            Kind::Hardlink(target) => {
                if !matches!(root.entries.get(target).map(|t| &t.kind), Some(Kind::File(_))) {
                    return Err(anyhow!("hard link {path} names {target}, which is not a regular file of the image"));
                }
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                builder.append_link(&mut h, path, target)?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confined_paths() {
        assert_eq!(confine("./usr/bin/x").unwrap(), "usr/bin/x");
        assert_eq!(confine("/etc//passwd").unwrap(), "etc/passwd");
        assert!(confine("usr/../../etc").is_err());
    }

    #[test]
    fn writes_through_parent_symlinks() {
        let mut root = Root::default();
        root.dir("usr/lib", 0o755, 0, 0);
        root.entries.insert("lib".into(), FsEntry { kind: Kind::Symlink("usr/lib".into()), mode: 0o777, uid: 0, gid: 0 });
        root.entries.insert("usr/lib64".into(), FsEntry { kind: Kind::Symlink("/usr/lib".into()), mode: 0o777, uid: 0, gid: 0 });
        assert_eq!(root.resolve_parents("lib/libc.so"), "usr/lib/libc.so");
        assert_eq!(root.resolve_parents("usr/lib64/x/y"), "usr/lib/x/y");
        assert_eq!(root.resolve_parents("lib"), "lib");
        assert_eq!(root.resolve_parents("etc/passwd"), "etc/passwd");
    }

    #[test]
    fn db_file_order() {
        let f = |p: &str, d: bool| DbFile { path: p.into(), is_dir: d, mode: 0o644, uid: 0, gid: 0, checksum: None };
        let mut v = [f("usr/bin", true), f("usr", true), f("usr/bin/z", false), f("usr/a", false), f("etc", true)];
        v.sort_by(path_compare);
        let order: Vec<&str> = v.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(order, ["etc", "usr", "usr/a", "usr/bin", "usr/bin/z"]);
    }
}
