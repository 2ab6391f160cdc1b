//! Reading Debian packages and the tars rules_distroless works on: the `ar` container of a
//! `.deb`, its `control.tar.*` and `data.tar.*` members (plain, gzip, xz, lzma or zstd, as
//! deb(5) allows, bzip2 aside), any tar by its magic bytes, and writing the small deterministic
//! tars the rules produce (GNU format like rules_distroless's `--format gnutar`, uid/gid 0,
//! fixed mtimes, deterministic gzip).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

/// One member of an `ar` archive: its name and where its bytes are in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArMember {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// The members of an `ar` archive (`!<arch>\n`, then 60-byte headers, data padded to an even
/// length), as `dpkg-deb` writes a `.deb` (deb(5)). GNU/BSD long-name tables are not used by
/// .debs, whose member names are short; a `/`-terminated GNU name is accepted.
pub fn ar_members(path: &Path) -> Result<Vec<ArMember>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic).map_err(|_| anyhow!("{}: not a Debian package (too short for an ar archive)", path.display()))?;
    if &magic != b"!<arch>\n" {
        bail!("{}: not a Debian package (no ar archive magic)", path.display());
    }
    let mut members = Vec::new();
    let mut pos = 8u64;
    while pos < len {
        let mut header = [0u8; 60];
        file.read_exact(&mut header).map_err(|_| anyhow!("{}: truncated ar header at byte {pos}", path.display()))?;
        if &header[58..60] != b"`\n" {
            bail!("{}: bad ar header at byte {pos}", path.display());
        }
        let name = String::from_utf8_lossy(&header[0..16]).trim_end().trim_end_matches('/').to_owned();
        let size: u64 = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| anyhow!("{}: bad ar member size at byte {pos}", path.display()))?;
        let offset = pos + 60;
        if offset + size > len {
            bail!("{}: ar member '{name}' runs past the end of the file", path.display());
        }
        members.push(ArMember { name, offset, size });
        pos = offset + size + (size % 2);
        file.seek(SeekFrom::Start(pos))?;
    }
    Ok(members)
}

/// The `control.tar*` or `data.tar*` member of a `.deb` (`which` is `control` or `data`),
/// decompressed, as a reader.
pub fn deb_member(path: &Path, which: &str) -> Result<Box<dyn Read>> {
    let members = ar_members(path)?;
    let prefix = format!("{which}.tar");
    let member = members
        .iter()
        .find(|m| m.name.starts_with(&prefix))
        .ok_or_else(|| anyhow!("{}: the package has no {prefix}.* member (members: {:?})", path.display(), names(&members)))?;
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(member.offset))?;
    let raw = BufReader::with_capacity(1 << 20, file.take(member.size));
    decompress_by_name(&member.name, Box::new(raw)).with_context(|| format!("{}: member {}", path.display(), member.name))
}

fn names(members: &[ArMember]) -> Vec<&str> {
    members.iter().map(|m| m.name.as_str()).collect()
}

/// A decompressing reader for a member named `*.tar`, `*.tar.gz`, `*.tar.xz`, `*.tar.lzma` or
/// `*.tar.zst` (deb(5): dpkg 1.10.24+ plain, 1.13.25+ lzma, 1.15.6+ xz, 1.21.18+ zstd).
fn decompress_by_name(name: &str, raw: Box<dyn Read>) -> Result<Box<dyn Read>> {
    let ext = name.rsplit_once(".tar").map(|(_, e)| e).unwrap_or("");
    Ok(match ext {
        "" => raw,
        ".gz" => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        ".xz" => Box::new(liblzma::read::XzDecoder::new(raw)),
        ".lzma" => {
            let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX).map_err(|e| anyhow!("lzma decoder: {e}"))?;
            Box::new(liblzma::read::XzDecoder::new_stream(raw, stream))
        }
        ".zst" => Box::new(ruzstd::decoding::StreamingDecoder::new(raw).map_err(|e| anyhow!("zstd stream: {e}"))?),
        other => bail!("unsupported compression '{other}' (supported: none, .gz, .xz, .lzma, .zst)"),
    })
}

/// Opens a tar that may be compressed (gzip, xz or zstd, told by its magic bytes), as
/// rules_distroless's bsdtar accepts any of them.
pub fn open_tar(path: &Path) -> Result<Box<dyn Read>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 6];
    let n = file.read(&mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    let raw: Box<dyn Read> = Box::new(BufReader::with_capacity(1 << 20, file));
    let name = match &magic[..n] {
        [0x1f, 0x8b, ..] => "x.tar.gz",
        [0xfd, b'7', b'z', b'X', b'Z', 0] => "x.tar.xz",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "x.tar.zst",
        _ => "x.tar",
    };
    decompress_by_name(name, raw).with_context(|| format!("reading {}", path.display()))
}

/// The name a tar member is known by when tars are merged or searched: no leading `./` or
/// `/`, no trailing `/` (`./usr/bin/` and `usr/bin` are one path).
pub fn normalize(name: &str) -> String {
    let mut n = name;
    loop {
        if let Some(rest) = n.strip_prefix("./") {
            n = rest;
        } else if let Some(rest) = n.strip_prefix('/') {
            n = rest;
        } else {
            break;
        }
    }
    n.trim_end_matches('/').to_owned()
}

/// Writes a gzip stream the same on every machine: no file name, MTIME 0, level 6 (gzip's
/// default), the pinned zlib-rs backend.
pub fn gzip_writer<W: Write>(out: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new().mtime(0).operating_system(255).write(out, flate2::Compression::new(6))
}

/// A member the rules write themselves (passwd, group, home, os_release, cacerts, dpkg status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Dir { path: String, mode: u32, uid: u64, gid: u64, mtime: u64 },
    File { path: String, mode: u32, mtime: u64, content: Vec<u8> },
}

impl Member {
    pub fn dir(path: &str, mode: u32, mtime: u64) -> Member {
        Member::Dir { path: mtree_path(path), mode, uid: 0, gid: 0, mtime }
    }

    pub fn file(path: &str, mode: u32, mtime: u64, content: Vec<u8>) -> Member {
        Member::File { path: mtree_path(path), mode, mtime, content }
    }
}

/// A path as rules_distroless's mtree helper writes it (`tar.bzl` `_mtree_line`): `./etc/passwd`.
pub fn mtree_path(path: &str) -> String {
    if path.starts_with('.') {
        path.to_owned()
    } else if path.starts_with('/') {
        format!(".{path}")
    } else {
        format!("./{path}")
    }
}

/// The parent directories of `path` as `tar.bzl`'s `_add_parents` lists them (`/usr/lib` →
/// `./usr`, `./usr/lib`), leaving out the segment indexes in `skip`.
pub fn parents(path: &str, mode: u32, mtime: u64, skip: &[usize]) -> Vec<Member> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for i in 0..segments.len() {
        let parent = segments[..=i].join("/");
        if parent.is_empty() || skip.contains(&i) {
            continue;
        }
        out.push(Member::dir(&parent, mode, mtime));
    }
    out
}

/// A GNU header for a member the rules write: owner root (uid/gid 0, no names), as the mtree
/// entries rules_distroless builds with `uid=0 gid=0`.
fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, mtime: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

/// Writes `members` in the order given (mtree order, as bsdtar does), gzip-compressed when
/// `gzip` is set.
pub fn write_members(out: &Path, members: &[Member], gzip: bool) -> Result<()> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let buffered = std::io::BufWriter::new(file);
    if gzip {
        let gz = write_into(gzip_writer(buffered), members)?;
        gz.finish()?.flush()?;
    } else {
        write_into(buffered, members)?.flush()?;
    }
    Ok(())
}

fn write_into<W: Write>(out: W, members: &[Member]) -> Result<W> {
    let mut builder = tar::Builder::new(out);
    for m in members {
        match m {
            Member::Dir { path, mode, uid, gid, mtime } => {
                let mut h = header(tar::EntryType::Directory, *mode, *uid, *gid, *mtime, 0);
                builder.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Member::File { path, mode, mtime, content } => {
                let mut h = header(tar::EntryType::Regular, *mode, 0, 0, *mtime, content.len() as u64);
                builder.append_data(&mut h, path, content.as_slice())?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// Copies one member read from a tar into `builder`, header and all (names and link names
/// longer than the header fields are written as GNU long-name records); `edit` may change
/// the header first.
pub fn copy_entry<W: Write, R: Read>(
    builder: &mut tar::Builder<W>,
    entry: &mut tar::Entry<'_, R>,
    edit: impl FnOnce(&mut tar::Header),
) -> Result<()> {
    let path = String::from_utf8(entry.path_bytes().into_owned()).map_err(|_| anyhow!("a tar member's name is not UTF-8"))?;
    append_copy(builder, entry, &path, None, edit)
}

/// Copies one member under another name (and, for a hard link, another target).
pub fn copy_entry_as<W: Write, R: Read>(
    builder: &mut tar::Builder<W>,
    entry: &mut tar::Entry<'_, R>,
    name: &str,
    hard_link_target: Option<String>,
) -> Result<()> {
    append_copy(builder, entry, name, hard_link_target, |_| {})
}

fn append_copy<W: Write, R: Read>(
    builder: &mut tar::Builder<W>,
    entry: &mut tar::Entry<'_, R>,
    name: &str,
    link_target: Option<String>,
    edit: impl FnOnce(&mut tar::Header),
) -> Result<()> {
    let mut header = entry.header().clone();
    edit(&mut header);
    let kind = header.entry_type();
    if kind.is_symlink() || kind.is_hard_link() {
        let target = match link_target {
            Some(t) => t,
            None => {
                let raw = entry.link_name_bytes().map(|b| b.into_owned()).unwrap_or_default();
                String::from_utf8(raw).map_err(|_| anyhow!("{name}: link target is not UTF-8"))?
            }
        };
        header.set_size(0);
        builder.append_link(&mut header, name, &target)?;
    } else {
        builder.append_data(&mut header, name, entry)?;
    }
    Ok(())
}

/// What a data member is called with `mergedusr = True` (`deb_postfix.bzl`, after
/// floppym/merge-usr): `./bin/x`, `./sbin/x` and `./usr/sbin/x` become `./usr/bin/x`; `./lib/x`,
/// `./lib32/x`, `./lib64/x`, `./libx32/x` move under `./usr/`; the directories `./bin/`,
/// `./sbin/`, `./usr/sbin/`, `./lib*/` themselves are dropped (`None`). Other names are kept.
pub fn merged_usr(name: &str, is_dir: bool) -> Option<String> {
    const MOVES: &[(&str, &str)] = &[
        ("./bin/", "./usr/bin/"),
        ("./sbin/", "./usr/bin/"),
        ("./usr/sbin/", "./usr/bin/"),
        ("./lib/", "./usr/lib/"),
        ("./lib32/", "./usr/lib32/"),
        ("./lib64/", "./usr/lib64/"),
        ("./libx32/", "./usr/libx32/"),
    ];
    for (from, to) in MOVES {
        if is_dir && (name == *from || name == from.trim_end_matches('/')) {
            return None;
        }
        // `s#^\./bin/\(.\)#./usr/bin/\1#`: only names below the directory.
        if let Some(rest) = name.strip_prefix(from).filter(|r| !r.is_empty()) {
            return Some(format!("{to}{rest}"));
        }
    }
    Some(name.to_owned())
}

/// `0.0`, `1672560000`: the `time` attribute of rules_distroless's rules, in whole seconds.
pub fn parse_time(text: &str) -> Option<u64> {
    let whole = text.split('.').next().unwrap_or(text);
    if whole.is_empty() { Some(0) } else { whole.parse().ok() }
}

/// `0644`, `755`: an octal mode attribute.
pub fn parse_mode(text: &str) -> Option<u32> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8).ok().filter(|m| *m <= 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_follow_add_parents() {
        let names = |ms: Vec<Member>| -> Vec<String> {
            ms.into_iter()
                .map(|m| match m {
                    Member::Dir { path, .. } | Member::File { path, .. } => path,
                })
                .collect()
        };
        assert_eq!(names(parents("/usr/lib", 0o755, 0, &[])), ["./usr", "./usr/lib"]);
        assert_eq!(names(parents("/etc/ssl/certs", 0o755, 0, &[1])), ["./etc/ssl", "./etc/ssl/certs"]);
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize("./usr/bin/"), "usr/bin");
        assert_eq!(normalize("/etc/passwd"), "etc/passwd");
        assert_eq!(normalize("."), ".");
        assert_eq!(normalize("./"), "");
    }

    #[test]
    fn merged_usr_moves_like_deb_postfix() {
        assert_eq!(merged_usr("./bin/busybox", false).as_deref(), Some("./usr/bin/busybox"));
        assert_eq!(merged_usr("./sbin/init", false).as_deref(), Some("./usr/bin/init"));
        assert_eq!(merged_usr("./usr/sbin/x", false).as_deref(), Some("./usr/bin/x"));
        assert_eq!(merged_usr("./lib/x86_64-linux-gnu/", true).as_deref(), Some("./usr/lib/x86_64-linux-gnu/"));
        assert_eq!(merged_usr("./bin/", true), None);
        assert_eq!(merged_usr("./lib64/", true), None);
        assert_eq!(merged_usr("./usr/bin/env", false).as_deref(), Some("./usr/bin/env"));
        assert_eq!(merged_usr("./binary", false).as_deref(), Some("./binary"));
    }

    #[test]
    fn times_and_modes() {
        assert_eq!(parse_time("0.0"), Some(0));
        assert_eq!(parse_time("1672560000"), Some(1672560000));
        assert_eq!(parse_time("x"), None);
        assert_eq!(parse_mode("0644"), Some(0o644));
        assert_eq!(parse_mode("700"), Some(0o700));
        assert_eq!(parse_mode("9"), None);
    }

    /// A .deb whose members are `(name, bytes)`.
    fn deb(path: &Path, members: &[(&str, Vec<u8>)]) {
        let mut bytes = b"!<arch>\n".to_vec();
        for (name, data) in members {
            bytes.extend(format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", 0, 0, 0, 100644, data.len()).as_bytes());
            bytes.extend(data);
            if data.len() % 2 == 1 {
                bytes.push(b'\n');
            }
        }
        std::fs::write(path, &bytes).unwrap();
    }

    fn one_file_tar(name: &str, content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, content).unwrap();
        b.into_inner().unwrap()
    }

    fn first_member(reader: Box<dyn Read>) -> (String, String) {
        let mut archive = tar::Archive::new(reader);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        (name, text)
    }

    /// deb(5)'s compressions: xz (Debian), zstd (Ubuntu, dpkg >= 1.21.18), gzip, none.
    #[test]
    fn members_in_every_compression_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let control = one_file_tar("./control", b"Package: x\n");
        let data = one_file_tar("./usr/bin/x", b"hello");
        let xz = {
            let mut out = Vec::new();
            liblzma::read::XzEncoder::new(control.as_slice(), 6).read_to_end(&mut out).unwrap();
            out
        };
        let zst = ruzstd::encoding::compress_to_vec(data.as_slice(), ruzstd::encoding::CompressionLevel::Fastest);
        let p = dir.path().join("zst.deb");
        deb(&p, &[("debian-binary", b"2.0\n".to_vec()), ("control.tar.xz", xz), ("data.tar.zst", zst)]);
        assert_eq!(first_member(deb_member(&p, "control").unwrap()), ("control".into(), "Package: x\n".into()));
        assert_eq!(first_member(deb_member(&p, "data").unwrap()), ("usr/bin/x".into(), "hello".into()));

        let gz = {
            let mut w = gzip_writer(Vec::new());
            w.write_all(&data).unwrap();
            w.finish().unwrap()
        };
        let p = dir.path().join("gz.deb");
        deb(&p, &[("debian-binary", b"2.0\n".to_vec()), ("control.tar", control.clone()), ("data.tar.gz", gz.clone())]);
        assert_eq!(first_member(deb_member(&p, "data").unwrap()).1, "hello");
        assert_eq!(first_member(deb_member(&p, "control").unwrap()).1, "Package: x\n");
        // A tar on its own, by its magic bytes.
        let t = dir.path().join("layer");
        std::fs::write(&t, &gz).unwrap();
        assert_eq!(first_member(open_tar(&t).unwrap()).1, "hello");
        // bzip2 is not supported: said, not misread.
        let p = dir.path().join("bz2.deb");
        deb(&p, &[("debian-binary", b"2.0\n".to_vec()), ("data.tar.bz2", b"BZh".to_vec())]);
        let err = deb_member(&p, "data").err().expect("bzip2 is refused");
        assert!(format!("{err:#}").contains("unsupported compression '.bz2'"), "{err:#}");
    }

    #[test]
    fn ar_members_of_a_small_archive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.deb");
        deb(&p, &[("debian-binary", b"2.0\n".to_vec()), ("control.tar", b"abc".to_vec())]);
        let members = ar_members(&p).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[1].name, "control.tar");
        assert_eq!(members[1].size, 3);
        let mut s = String::new();
        deb_member(&p, "control").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "abc");
        std::fs::write(&p, b"not an ar").unwrap();
        assert!(ar_members(&p).is_err());
    }
}
