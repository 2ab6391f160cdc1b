//! Writes a `pkg_tar` archive from a fully resolved manifest, byte for byte the way rules_pkg's
//! `build_tar.py` / `tar_writer.py` (Python `tarfile`, GNU format) does.
//!
//! Matching rules_pkg byte for byte matters because layer digests of images built from these tars
//! are what users compare against their Bazel builds. So every header field is set here from the
//! manifest (nothing comes from the host), header fields are encoded the way Python's `tarfile`
//! encodes them (including the checksum field and GNU long-name records), and the archive is
//! padded to a 10240-byte record like `tarfile` does on close.
//!
//! Path computation (strip_prefix, package_dir, remap_paths, modes, owners) is not done here: see
//! `crate::rules::pkg_paths`. The caller resolves every entry; this module only lays them out.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::exec::fs::ExactReader;
use crate::oci::sink::FileSink;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// What a manifest entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A regular file whose content is read from `src` when the archive is written.
    File { src: PathBuf },
    /// A regular file of size 0 (`empty_files`).
    EmptyFile,
    /// A directory (`empty_dirs`, `pkg_mkdirs`).
    Dir,
    /// A symbolic link whose link name is `target`, written verbatim.
    Symlink { target: String },
}

/// One member of the archive, fully resolved by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarEntry {
    /// Member name: no leading `/` or `./` (except symlink keys rules_pkg keeps verbatim, see
    /// `pkg_paths::normalize_symlink_dest`); directories without a trailing slash (one is added
    /// when writing, as rules_pkg does).
    pub dest: String,
    pub kind: EntryKind,
    /// Permission bits; only `mode & 0o7777` is written (as Python's `tarfile` does).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub mtime: u64,
    /// What the entry sorts by: rules_pkg orders members by their manifest key, the path
    /// before `package_dir` is prefixed. Empty means `dest`.
    #[serde(default)]
    pub sort_key: String,
}

/// Output compression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    None,
    /// Gzip the way rules_pkg does (`gzip.GzipFile(filename=out, mtime=default_mtime)`), so the
    /// gzip header is reproducible and identical to Bazel's:
    /// * `level`: 0–9 (values above 9 are clamped, as rules_pkg does; the caller maps
    ///   `compression_level = -1` to 6);
    /// * `mtime`: the gzip header MTIME, which rules_pkg sets to the pkg_tar's default mtime
    ///   (946684800 with `portable_mtime`, else the `mtime`/stamp value, 0 if none);
    /// * `file_name`: the output file's name (e.g. `layer.tar.gz`). Python writes its basename
    ///   into the FNAME field minus a trailing `.gz` (`layer.tar`; `layer.tgz` stays), and omits
    ///   FNAME when that is empty or not Latin-1. Pass "" to omit it.
    Gzip {
        level: u32,
        mtime: u32,
        file_name: String,
    },
}

/// Everything needed to write one archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarManifest {
    /// Written first, sorted by `dest` (byte order; stable for equal names).
    pub entries: Vec<TarEntry>,
    /// Tars (`.tar`, or gzip-compressed: detected from the magic bytes) whose members are appended
    /// after `entries`, in order.
    pub deps: Vec<PathBuf>,
    /// Auto-create missing parent directories (pkg_tar `create_parents`, default True).
    pub create_parents: bool,
    /// Not used for the layout. rules_pkg gives an auto-created parent the mtime (and uid/gid/
    /// names) of the member that implies it, not a separate value: for manifest entries that is
    /// the pkg_tar mtime anyway, for deps members it is the member's own mtime. Kept so manifests
    /// written against the first version of this API still deserialize.
    #[serde(default)]
    pub parent_mtime: u64,
    /// pkg_tar `allow_duplicates_from_deps`. When false (the default), any member whose name
    /// (trailing `/` ignored) was already written is skipped, with a warning for non-directories;
    /// when true nothing is de-duplicated and both copies are written (rules_pkg behaviour).
    pub allow_duplicates_from_deps: bool,
    pub compression: Compression,
    /// Prefix for deps members' names (rules_pkg applies `package_dir` to them); "" or "/" means
    /// none. Names are then normalized like Python's `os.path.normpath(prefix + name)`.
    #[serde(default)]
    pub deps_prefix: String,
}

/// Writes the archive to `out`, returning warnings (duplicates skipped, as rules_pkg prints them).
///
/// `out` receives the complete archive; writing to a temporary file and renaming it is the
/// caller's job.
pub fn write_tar(manifest: &TarManifest, out: impl FileSink) -> Result<Vec<String>> {
    match &manifest.compression {
        Compression::None => write_uncompressed(manifest, out),
        Compression::Gzip { level, mtime, file_name } => {
            let mut gz = GzipWriter::new(out, *level, *mtime, file_name)?;
            let warnings = write_uncompressed(manifest, &mut gz)?;
            gz.finish().context("finishing gzip stream")?;
            Ok(warnings)
        }
    }
}

fn write_uncompressed(manifest: &TarManifest, out: impl FileSink) -> Result<Vec<String>> {
    let mut w = MemberWriter {
        builder: tar::Builder::new(CountingWriter { inner: out, count: 0 }),
        existing: HashMap::new(),
        create_parents: manifest.create_parents,
        allow_dups: manifest.allow_duplicates_from_deps,
        warnings: Vec::new(),
    };

    let mut entries: Vec<&TarEntry> = manifest.entries.iter().collect();
    let key = |e: &TarEntry| if e.sort_key.is_empty() { e.dest.clone() } else { e.sort_key.clone() };
    entries.sort_by(|a, b| key(a).as_bytes().cmp(key(b).as_bytes()));
    for entry in entries {
        w.add_entry(entry)?;
    }
    for dep in &manifest.deps {
        w.add_dep_tar(dep, &manifest.deps_prefix).with_context(|| format!("merging deps tar {}", dep.display()))?;
    }

    let MemberWriter { builder, warnings, .. } = w;
    // `into_inner` writes the two zero blocks ending the archive; Python's tarfile then pads the
    // file to a multiple of its 20-block record size, which we replicate for identical bytes.
    let mut counting = builder.into_inner().context("writing tar trailer")?;
    let rem = counting.count % RECORD_SIZE;
    if rem != 0 {
        let pad = vec![0u8; (RECORD_SIZE - rem) as usize];
        counting.write_all(&pad).context("writing tar record padding")?;
    }
    counting.flush().context("flushing tar output")?;
    Ok(warnings)
}

const BLOCK_SIZE: u64 = 512;
const RECORD_SIZE: u64 = 20 * BLOCK_SIZE;
/// Longest name/linkname stored inline; longer ones get a GNU `././@LongLink` record first.
/// Python's tarfile uses `>` here, so exactly 100 bytes still fits inline.
const NAME_FIELD_LEN: usize = 100;

const REGTYPE: u8 = b'0';
const AREGTYPE: u8 = b'\0';
const LNKTYPE: u8 = b'1';
const SYMTYPE: u8 = b'2';
const CHRTYPE: u8 = b'3';
const BLKTYPE: u8 = b'4';
const DIRTYPE: u8 = b'5';
const CONTTYPE: u8 = b'7';
const GNU_SPARSE: u8 = b'S';
const GNU_LONGNAME: u8 = b'L';
const GNU_LONGLINK: u8 = b'K';
const PAX_GLOBAL: u8 = b'g';

/// Type names used in rules_pkg's "Directory shadows" warning.
fn type_name(t: u8) -> &'static str {
    match t {
        REGTYPE => "REGTYPE",
        AREGTYPE => "AREGTYPE",
        LNKTYPE => "LNKTYPE",
        SYMTYPE => "SYMTYPE",
        CHRTYPE => "CHRTYPE",
        BLKTYPE => "BLKTYPE",
        DIRTYPE => "DIRTYPE",
        b'6' => "FIFOTYPE",
        CONTTYPE => "CONTTYPE",
        _ => "UNKNOWN",
    }
}

/// One header's worth of metadata, before encoding.
struct Member {
    name: Vec<u8>,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    uname: Vec<u8>,
    gname: Vec<u8>,
    mtime: u64,
    linkname: Vec<u8>,
    device: Option<(u32, u32)>,
}

/// Where a member's content comes from. Sources are opened only when the member is actually
/// written, so a skipped duplicate never needs a readable source (as in rules_pkg).
enum Content<'a> {
    Empty,
    Path(&'a Path),
    Reader(&'a mut dyn Read, u64),
}

struct MemberWriter<W: FileSink> {
    builder: tar::Builder<CountingWriter<W>>,
    /// Names written so far (trailing `/` stripped) → type flag; mirrors
    /// `TarFileWriter.existing_members`, used for parents and duplicate detection.
    existing: HashMap<Vec<u8>, u8>,
    create_parents: bool,
    allow_dups: bool,
    warnings: Vec<String>,
}

impl<W: FileSink> MemberWriter<W> {
    fn existing_type(&self, path: &[u8]) -> Option<u8> {
        // The archive root is never written but counts as an existing directory.
        if path == b"/" || path == b"./" {
            return Some(DIRTYPE);
        }
        self.existing.get(trim_trailing_slashes(path)).copied()
    }

    /// A manifest entry (rules_pkg `TarFileWriter.add_file`).
    fn add_entry(&mut self, entry: &TarEntry) -> Result<()> {
        let name = entry.dest.as_bytes();
        if name.is_empty() || name == b"." {
            return Ok(());
        }
        if !self.allow_dups && self.existing_type(name).is_some() {
            // rules_pkg skips these silently (no warning for manifest duplicates).
            return Ok(());
        }
        self.add_parents(name, entry.uid, entry.gid, entry.uname.as_bytes(), entry.gname.as_bytes(), entry.mtime)?;
        let (typeflag, linkname, content) = match &entry.kind {
            EntryKind::File { src } => (REGTYPE, Vec::new(), Content::Path(src)),
            EntryKind::EmptyFile => (REGTYPE, Vec::new(), Content::Empty),
            EntryKind::Dir => (DIRTYPE, Vec::new(), Content::Empty),
            EntryKind::Symlink { target } => (SYMTYPE, target.as_bytes().to_vec(), Content::Empty),
        };
        let member = Member {
            name: name.to_vec(),
            typeflag,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            uname: entry.uname.as_bytes().to_vec(),
            gname: entry.gname.as_bytes().to_vec(),
            mtime: entry.mtime,
            linkname,
            device: None,
        };
        self.add_member(member, content).with_context(|| format!("adding {} to the archive", entry.dest))
    }

    /// Adds every missing ancestor directory of `path` as mode 0755 with the child's ownership
    /// and mtime (rules_pkg `conditionally_add_parents`).
    fn add_parents(&mut self, path: &[u8], uid: u64, gid: u64, uname: &[u8], gname: &[u8], mtime: u64) -> Result<()> {
        if !self.create_parents {
            return Ok(());
        }
        let components: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
        let mut parent = Vec::new();
        for component in &components[..components.len().saturating_sub(1)] {
            parent.extend_from_slice(component);
            parent.push(b'/');
            if self.existing_type(&parent).is_none() {
                let member = Member {
                    name: parent.clone(),
                    typeflag: DIRTYPE,
                    mode: 0o755,
                    uid,
                    gid,
                    uname: uname.to_vec(),
                    gname: gname.to_vec(),
                    mtime,
                    linkname: Vec::new(),
                    device: None,
                };
                self.add_member(member, Content::Empty)?;
            }
        }
        Ok(())
    }

    /// Writes one member unless it duplicates an earlier one (rules_pkg `_addfile`).
    fn add_member(&mut self, mut m: Member, content: Content<'_>) -> Result<()> {
        if m.typeflag == DIRTYPE && !m.name.ends_with(b"/") {
            m.name.push(b'/');
        }
        if let Some(existing) = self.existing_type(&m.name)
            && !self.allow_dups
        {
            let name = String::from_utf8_lossy(&m.name);
            if m.typeflag != DIRTYPE {
                self.warnings.push(format!("Duplicate file in archive: {name}, picking first occurrence"));
            } else if existing != DIRTYPE && existing != SYMTYPE {
                // Directories merge silently; one hiding a file or link is worth a warning.
                self.warnings.push(format!(
                    "Directory shadows a member of type {} in archive: {name}, picking first occurrence",
                    type_name(existing)
                ));
            }
            return Ok(());
        }
        match content {
            Content::Empty => self.write_member(&m, 0, &mut io::empty())?,
            Content::Reader(reader, size) => self.write_member(&m, size, reader)?,
            Content::Path(src) => {
                let file = File::open(src).with_context(|| format!("reading {}", src.display()))?;
                let size = file.metadata().with_context(|| format!("reading {}", src.display()))?.len();
                // The header alone, then the bytes through the sink (`copy_file_range` into a
                // layer file), then the padding `append` would write.
                self.write_member(&m, size, &mut io::empty())?;
                let out = self.builder.get_mut();
                out.copy_file(&file, size).with_context(|| format!("reading {}", src.display()))?;
                let pad = (BLOCK_SIZE - size % BLOCK_SIZE) % BLOCK_SIZE;
                out.write_all(&[0u8; BLOCK_SIZE as usize][..pad as usize])?;
            }
        }
        self.existing.insert(trim_trailing_slashes(&m.name).to_vec(), m.typeflag);
        Ok(())
    }

    /// Encodes the header(s) as Python's tarfile does in GNU format, then the content.
    fn write_member(&mut self, m: &Member, size: u64, data: &mut dyn Read) -> Result<()> {
        if m.linkname.len() > NAME_FIELD_LEN {
            self.write_long_name(GNU_LONGLINK, &m.linkname)?;
        }
        if m.name.len() > NAME_FIELD_LEN {
            self.write_long_name(GNU_LONGNAME, &m.name)?;
        }
        let mut h = tar::Header::new_gnu();
        copy_truncated(&mut h.as_old_mut().name, &m.name);
        copy_truncated(&mut h.as_old_mut().linkname, &m.linkname);
        h.set_mode(m.mode & 0o7777);
        h.set_uid(m.uid);
        h.set_gid(m.gid);
        h.set_size(size);
        h.set_mtime(m.mtime);
        h.set_entry_type(tar::EntryType::new(m.typeflag));
        if let Some(gnu) = h.as_gnu_mut() {
            copy_truncated(&mut gnu.uname, &m.uname);
            copy_truncated(&mut gnu.gname, &m.gname);
        }
        // Device numbers only for device nodes; Python leaves the fields NUL otherwise.
        if let Some((major, minor)) = m.device {
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
        }
        set_python_cksum(&mut h);
        self.builder.append(&h, data)?;
        Ok(())
    }

    /// A GNU `L`/`K` record: Python writes it with mode/uid/gid/mtime 0 and the name NUL-terminated.
    fn write_long_name(&mut self, typeflag: u8, name: &[u8]) -> Result<()> {
        let mut payload = name.to_vec();
        payload.push(0);
        let mut h = tar::Header::new_gnu();
        copy_truncated(&mut h.as_old_mut().name, b"././@LongLink");
        h.set_mode(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(payload.len() as u64);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::new(typeflag));
        set_python_cksum(&mut h);
        self.builder.append(&h, payload.as_slice())?;
        Ok(())
    }

    /// Appends the members of one deps tar (rules_pkg `TarFileWriter.add_tar` with
    /// `numeric=True`, `prefix=package_dir`, mtimes preserved).
    fn add_dep_tar(&mut self, path: &Path, prefix: &str) -> Result<()> {
        let reader = open_maybe_gzip(path)?;
        let mut archive = tar::Archive::new(reader);
        let prefix = prefix.trim_matches('/');
        let prefix: Option<Vec<u8>> = (!prefix.is_empty()).then(|| format!("{prefix}/").into_bytes());

        for entry in archive.entries().context("reading archive")? {
            let mut entry = entry.context("reading archive member")?;
            let header = entry.header();
            let mut typeflag = header.entry_type().as_byte();
            if typeflag == PAX_GLOBAL {
                // Python applies global pax headers to the archive, they are not members.
                continue;
            }
            let mode = header.mode().context("reading member mode")?;
            let uid = header.uid().context("reading member uid")?;
            let gid = header.gid().context("reading member gid")?;
            let mut mtime = header.mtime().context("reading member mtime")?;
            let device = if typeflag == CHRTYPE || typeflag == BLKTYPE {
                Some((header.device_major()?.unwrap_or(0), header.device_minor()?.unwrap_or(0)))
            } else {
                None
            };
            let mut name = entry.path_bytes().into_owned();
            let mut linkname = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
            if let Some(pax_mtime) = pax_mtime(&mut entry)? {
                mtime = pax_mtime;
            }

            // Python's tarfile reading rules: an old-style regular file whose name ends in "/" is
            // a directory; directory names lose their trailing slashes; sparse files come out as
            // plain data.
            if typeflag == AREGTYPE && name.ends_with(b"/") {
                typeflag = DIRTYPE;
            }
            if typeflag == GNU_SPARSE {
                typeflag = REGTYPE;
            }
            if typeflag == DIRTYPE {
                name.truncate(trim_trailing_slashes(&name).len());
            }

            if let Some(prefix) = &prefix {
                let mut joined = prefix.clone();
                joined.extend_from_slice(&name);
                name = posix_normpath(&joined);
                // rules_pkg relocates hard links that start with "."; it builds
                // "." + prefix + link-without-leading-dots, quirks included.
                if typeflag == LNKTYPE && linkname.starts_with(b".") {
                    let rest = &linkname[linkname.iter().take_while(|b| **b == b'.').count()..];
                    let mut relocated = b".".to_vec();
                    relocated.extend_from_slice(prefix);
                    relocated.extend_from_slice(rest);
                    linkname = relocated;
                }
            }

            self.add_parents(&name, uid, gid, b"", b"", mtime)?;
            let is_file = matches!(typeflag, REGTYPE | AREGTYPE | CONTTYPE);
            let member = Member { name, typeflag, mode, uid, gid, uname: Vec::new(), gname: Vec::new(), mtime, linkname, device };
            if is_file {
                let size = entry.size();
                let mut reader = ExactReader::new(&mut entry, size);
                self.add_member(member, Content::Reader(&mut reader, size))?;
            } else {
                self.add_member(member, Content::Empty)?;
            }
        }
        Ok(())
    }
}

/// The integer part of a pax `mtime` record, if any (Python truncates the float).
fn pax_mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<u64>> {
    let Some(extensions) = entry.pax_extensions().context("reading pax headers")? else {
        return Ok(None);
    };
    for ext in extensions {
        let ext = ext.context("reading pax header")?;
        if ext.key_bytes() == b"mtime" {
            let value = String::from_utf8_lossy(ext.value_bytes()).into_owned();
            let int_part = value.split('.').next().unwrap_or_default();
            let mtime = int_part.parse::<u64>().with_context(|| format!("unsupported pax mtime {value:?}"))?;
            return Ok(Some(mtime));
        }
    }
    Ok(None)
}

/// Opens a deps tar, transparently decompressing gzip (detected by its magic, as Python's
/// `tarfile.open(mode="r:*")` does rather than trusting the extension).
fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 6];
    let mut len = 0;
    while len < magic.len() {
        let n = file.read(&mut magic[len..]).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let head = &magic[..len];
    let reader = io::Cursor::new(head.to_vec()).chain(file);
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(reader))))
    } else if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        bail!("{}: bzip2/xz-compressed deps tars are not supported", path.display())
    } else {
        Ok(Box::new(BufReader::new(reader)))
    }
}

/// Python's `os.path.normpath` on a relative POSIX path (the prefix never starts with "/").
fn posix_normpath(path: &[u8]) -> Vec<u8> {
    let leading_slashes = path.iter().take_while(|b| **b == b'/').count();
    let initial: &[u8] = match leading_slashes {
        0 => b"",
        2 => b"//",
        _ => b"/",
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|b| *b == b'/') {
        if comp.is_empty() || comp == b"." {
            continue;
        }
        if comp == b".." {
            let can_pop = parts.last().is_some_and(|last| *last != b"..");
            if can_pop {
                parts.pop();
                continue;
            }
            if !initial.is_empty() {
                continue;
            }
        }
        parts.push(comp);
    }
    let mut out = initial.to_vec();
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

fn trim_trailing_slashes(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|b| *b != b'/').map_or(0, |i| i + 1);
    &path[..end]
}

/// Python's `stn`: copy up to the field length, NUL-padded (the header starts zeroed).
fn copy_truncated(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    field[n..].fill(0);
}

/// Python writes the checksum as six octal digits, NUL, space (`"%06o\0 "`), while the tar crate
/// writes seven digits and a NUL; same value, different bytes, so we encode it ourselves.
fn set_python_cksum(h: &mut tar::Header) {
    h.as_old_mut().cksum = *b"        ";
    let sum: u32 = h.as_bytes().iter().map(|b| u32::from(*b)).sum();
    let field = format!("{sum:06o}\0 ");
    h.as_old_mut().cksum.copy_from_slice(&field.as_bytes()[..8]);
}

/// Counts bytes so the archive can be padded to Python's record size.
struct CountingWriter<W: Write> {
    inner: W,
    count: u64,
}

impl<W: FileSink> FileSink for CountingWriter<W> {
    fn copy_file(&mut self, file: &File, len: u64) -> io::Result<()> {
        self.inner.copy_file(file, len)?;
        self.count += len;
        Ok(())
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A gzip member framed exactly like Python's `gzip.GzipFile` writes it (flate2's `GzBuilder`
/// derives XFL differently at level 0, so the 10-byte header is written here):
/// magic, CM=8, FLG=FNAME if a name is present, MTIME, XFL (2 at level 9, 4 at level 1, else 0),
/// OS=255, then the raw deflate stream and the CRC32/ISIZE trailer.
struct GzipWriter<W: Write> {
    encoder: flate2::write::DeflateEncoder<W>,
    crc: flate2::Crc,
}

impl<W: Write> GzipWriter<W> {
    fn new(mut out: W, level: u32, mtime: u32, file_name: &str) -> Result<Self> {
        let level = level.min(9);
        let base = file_name.rsplit('/').next().unwrap_or_default();
        let base = base.strip_suffix(".gz").unwrap_or(base);
        // FNAME must be Latin-1; Python drops names it cannot encode that way.
        let fname: Option<Vec<u8>> =
            if base.is_empty() || base.chars().any(|c| u32::from(c) > 0xff) { None } else { Some(base.chars().map(|c| c as u8).collect()) };
        let xfl = match level {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        let mut header = vec![0x1f, 0x8b, 8, if fname.is_some() { 0x08 } else { 0 }];
        header.extend_from_slice(&mtime.to_le_bytes());
        header.extend_from_slice(&[xfl, 0xff]);
        if let Some(name) = fname {
            header.extend_from_slice(&name);
            header.push(0);
        }
        out.write_all(&header).context("writing gzip header")?;
        Ok(GzipWriter { encoder: flate2::write::DeflateEncoder::new(out, flate2::Compression::new(level)), crc: flate2::Crc::new() })
    }

    fn finish(self) -> io::Result<W> {
        let mut out = self.encoder.finish()?;
        out.write_all(&self.crc.sum().to_le_bytes())?;
        out.write_all(&self.crc.amount().to_le_bytes())?;
        out.flush()?;
        Ok(out)
    }
}

/// Compressed: every byte passes through the encoder.
impl<W: Write> FileSink for GzipWriter<W> {}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.encoder.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Deliberately not flushing the deflate stream: a sync flush would change the bytes.
        Ok(())
    }
}

// Comparison with rules_pkg's own writer (bazelbuild/rules_pkg @ 22b54a36, 2026-05-14;
// `pkg/private/tar/build_tar.py` run with python 3.11.7 / zlib 1.2.13, PYTHONPATH = rules_pkg
// root, a JSON manifest in the `pkg/private/manifest.py` format, `--mode 0555 --owner 0.0
// --owner_name . --mtime portable --create_parents` as tar.bzl passes them). Our side: the same
// entries as a TarManifest through `write_tar`. Compared: member names, modes, uid/gid,
// uname/gname, mtimes, types, link names, sizes and content hashes, warnings, and raw bytes.
//  1. Flattened files (data file 0555, executable 0755), an empty dir, a symlink, an empty file,
//     auto-created parents: 11 members, listing and bytes identical.
//  2. strip_prefix "." nested paths under package_dir "app" with owner 42.24 / titi.tata, a
//     132-byte member name (GNU LongLink), a "./lib64" symlink key (kept verbatim), plus two deps
//     (a PAX tar with "./" root, a 0700 dir, a fractional pax mtime, a hard link, a 120-byte name,
//     a 111-byte symlink target, duplicates; and a gzip'd GNU tar): 34 members, listing, warnings
//     ("Duplicate file in archive: app/etc/c.conf, picking first occurrence" twice) and bytes
//     identical, including rules_pkg's hard-link relocation quirk (".app//usr/lib/libx.so").
//  3. The same deps without package_dir, allow_duplicates_from_deps False and True: identical
//     (14 and 18 members; with True, duplicates and the "./" root are written, no warnings).
//  4. Gzip at level 6 and at level 9 without create_parents: gzip header (FNAME "rules_pkg.tar",
//     MTIME 946684800, XFL, OS 255) and decompressed tar identical; the compressed bytes are
//     identical at level 9 but differ at level 6 (642 vs 636 bytes) because zlib-rs's deflate
//     makes different (valid) choices than C zlib 1.2.13. Bazel's gzip'd layers therefore match
//     after decompression (diff_id) but not necessarily by compressed digest.
// Known divergences by design: entries are sorted by final member name, while rules_pkg sorts
// by manifest key (before package_dir), which differs only when a key already starts with
// package_dir; bzip2/xz deps are rejected; GNU sparse deps members are written as regular files.
#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dest: &str, kind: EntryKind, mode: u32) -> TarEntry {
        TarEntry {
            dest: dest.to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: 946_684_800,
            sort_key: String::new(),
        }
    }

    fn manifest(entries: Vec<TarEntry>) -> TarManifest {
        TarManifest {
            entries,
            deps: Vec::new(),
            create_parents: true,
            parent_mtime: 946_684_800,
            allow_duplicates_from_deps: false,
            compression: Compression::None,
            deps_prefix: String::new(),
        }
    }

    fn write(m: &TarManifest) -> (Vec<u8>, Vec<String>) {
        let mut out = Vec::new();
        let warnings = write_tar(m, &mut out).expect("write_tar");
        (out, warnings)
    }

    #[derive(Debug, PartialEq)]
    struct Listed {
        name: String,
        kind: u8,
        mode: u32,
        uid: u64,
        gid: u64,
        uname: String,
        gname: String,
        mtime: u64,
        link: String,
        data: Vec<u8>,
    }

    fn list(tar_bytes: &[u8]) -> Vec<Listed> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for e in archive.entries().expect("entries") {
            let mut e = e.expect("entry");
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            out.push(Listed {
                name: String::from_utf8(e.path_bytes().into_owned()).expect("utf8"),
                kind: h.entry_type().as_byte(),
                mode: h.mode().expect("mode"),
                uid: h.uid().expect("uid"),
                gid: h.gid().expect("gid"),
                uname: h.username().expect("uname").unwrap_or_default().to_string(),
                gname: h.groupname().expect("gname").unwrap_or_default().to_string(),
                mtime: h.mtime().expect("mtime"),
                link: e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default(),
                data,
            });
        }
        out
    }

    fn names(listing: &[Listed]) -> Vec<&str> {
        listing.iter().map(|l| l.name.as_str()).collect()
    }

    fn temp_file(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, data).expect("write temp file");
        p
    }

    #[test]
    fn layout_metadata_and_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = temp_file(&dir, "worker", b"\x7fELF...");
        let mut owned = entry("app/etc/conf", EntryKind::EmptyFile, 0o555);
        owned.uid = 42;
        owned.gid = 24;
        owned.uname = "titi".into();
        owned.gname = "tata".into();
        let m = manifest(vec![
            entry("app/bin/worker", EntryKind::File { src: bin }, 0o755),
            entry("app/bin/tool", EntryKind::Symlink { target: "worker".into() }, 0o555),
            owned,
            entry("app/var", EntryKind::Dir, 0o555),
        ]);
        let (bytes, warnings) = write(&m);
        assert!(warnings.is_empty());
        assert_eq!(bytes.len() % 10240, 0);
        let l = list(&bytes);
        assert_eq!(names(&l), ["app/", "app/bin/", "app/bin/tool", "app/bin/worker", "app/etc/", "app/etc/conf", "app/var/"]);
        // Auto-created parents: 0755, ownership and mtime of the first child that implies them.
        assert_eq!((l[0].kind, l[0].mode, l[0].uid, l[0].mtime), (b'5', 0o755, 0, 946_684_800));
        assert_eq!((l[4].mode, l[4].uid, l[4].gid, l[4].uname.as_str()), (0o755, 42, 24, "titi"));
        assert_eq!((l[2].kind, l[2].link.as_str(), l[2].mode), (b'2', "worker", 0o555));
        assert_eq!((l[3].kind, l[3].mode, l[3].data.as_slice()), (b'0', 0o755, &b"\x7fELF..."[..]));
        assert_eq!((l[5].kind, l[5].data.len(), l[5].uname.as_str(), l[5].gname.as_str()), (b'0', 0, "titi", "tata"));
        // Explicit directory keeps its own mode and is not duplicated by parent creation.
        assert_eq!((l[6].kind, l[6].mode), (b'5', 0o555));
        // Nothing from the host: the uid/gid/names/mtime are exactly what the manifest says.
        assert!(l.iter().all(|e| e.mtime == 946_684_800));
    }

    #[test]
    fn no_parents_when_disabled_and_sorted_by_bytes() {
        let mut m = manifest(vec![
            entry("b", EntryKind::EmptyFile, 0o555),
            entry("a/z", EntryKind::EmptyFile, 0o555),
            entry("a-b", EntryKind::EmptyFile, 0o555),
            entry("B", EntryKind::EmptyFile, 0o555),
        ]);
        m.create_parents = false;
        let l = list(&write(&m).0);
        assert_eq!(names(&l), ["B", "a-b", "a/z", "b"]);
    }

    #[test]
    fn same_manifest_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = temp_file(&dir, "f", &vec![7u8; 3000]);
        let m =
            manifest(vec![entry("x/f", EntryKind::File { src: f }, 0o555), entry("x/l", EntryKind::Symlink { target: "f".into() }, 0o555)]);
        assert_eq!(write(&m).0, write(&m).0);
        let mut gz = m.clone();
        gz.compression = Compression::Gzip { level: 6, mtime: 946_684_800, file_name: "layer.tar.gz".into() };
        let (a, b) = (write(&gz).0, write(&gz).0);
        assert_eq!(a, b);
        // Header as Python's GzipFile writes it: FNAME flag, MTIME, XFL 0 at level 6, OS 255,
        // then the name without ".gz".
        assert_eq!(&a[..10], &[0x1f, 0x8b, 8, 8, 0x80, 0x43, 0x6d, 0x38, 0, 0xff]);
        assert_eq!(&a[10..20], b"layer.tar\0");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(a.as_slice()).read_to_end(&mut plain).expect("gunzip");
        assert_eq!(plain, write(&m).0);
    }

    #[test]
    fn gzip_without_name_and_xfl() {
        let mut m = manifest(vec![entry("a", EntryKind::EmptyFile, 0o555)]);
        m.compression = Compression::Gzip { level: 9, mtime: 0, file_name: String::new() };
        let a = write(&m).0;
        assert_eq!(&a[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff]);
        m.compression = Compression::Gzip { level: 1, mtime: 0, file_name: "out/x.tgz".into() };
        let a = write(&m).0;
        assert_eq!((a[3], a[8]), (8, 4));
        assert_eq!(&a[10..16], b"x.tgz\0");
    }

    #[test]
    fn long_names_and_link_targets() {
        let long = format!("{}/{}", "d".repeat(80), "f".repeat(60));
        let exactly_100 = "e".repeat(100);
        let target = format!("/{}", "t".repeat(150));
        let m = manifest(vec![
            entry(&long, EntryKind::EmptyFile, 0o555),
            entry(&exactly_100, EntryKind::EmptyFile, 0o555),
            entry("link", EntryKind::Symlink { target: target.clone() }, 0o777),
        ]);
        let (bytes, _) = write(&m);
        let l = list(&bytes);
        assert_eq!(names(&l), [format!("{}/", "d".repeat(80)), long.clone(), exactly_100.clone(), "link".into()]);
        assert_eq!(l[3].link, target);
        // Exactly 100 bytes fits the header; 141 needs one GNU LongLink record ("L").
        let raw_types: Vec<u8> = {
            let mut a = tar::Archive::new(bytes.as_slice());
            let mut v = Vec::new();
            for e in a.entries().expect("entries").raw(true) {
                v.push(e.expect("entry").header().entry_type().as_byte());
            }
            v
        };
        assert_eq!(raw_types, [b'5', b'L', b'0', b'0', b'K', b'2']);
    }

    fn dep_tar(dir: &tempfile::TempDir, name: &str, members: &[(&str, u8, &[u8], u64)], gzip: bool) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, mtime) in members {
            let mut h = tar::Header::new_ustar();
            // Raw bytes: `set_path` would normalize away the "./" these tests need.
            copy_truncated(&mut h.as_old_mut().name, path.as_bytes());
            h.set_entry_type(tar::EntryType::new(*kind));
            h.set_mode(0o640);
            h.set_uid(1000);
            h.set_gid(1001);
            h.set_username("someone").expect("uname");
            h.set_groupname("grp").expect("gname");
            h.set_mtime(*mtime);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        let raw = b.into_inner().expect("finish");
        let bytes = if gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&raw).expect("gzip");
            e.finish().expect("gzip")
        } else {
            raw
        };
        temp_file(dir, name, &bytes)
    }

    #[test]
    fn deps_merged_after_entries_first_occurrence_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dep1 =
            dep_tar(&dir, "dep1.tar", &[("etc/", b'5', b"", 5), ("etc/conf", b'0', b"dep1", 7), ("usr/lib/x", b'0', b"x", 9)], false);
        let dep2 = dep_tar(&dir, "dep2.tar.gz", &[("etc/conf", b'0', b"dep2", 8), ("./opt/y", b'0', b"y", 3)], true);
        let mut m = manifest(vec![entry("etc/conf", EntryKind::EmptyFile, 0o555)]);
        m.deps = vec![dep1, dep2];

        let (bytes, warnings) = write(&m);
        assert_eq!(
            warnings,
            [
                "Duplicate file in archive: etc/conf, picking first occurrence",
                "Duplicate file in archive: etc/conf, picking first occurrence"
            ]
        );
        let l = list(&bytes);
        assert_eq!(names(&l), ["etc/", "etc/conf", "usr/", "usr/lib/", "usr/lib/x", "./opt/", "./opt/y"]);
        assert!(l[1].data.is_empty(), "manifest entry wins over deps");
        // Deps members: names verbatim, owner names cleared, ids/mode/mtime preserved; their
        // auto-created parents take the member's mtime and ids.
        assert_eq!((l[4].mode, l[4].uid, l[4].gid, l[4].uname.as_str(), l[4].mtime), (0o640, 1000, 1001, "", 9));
        assert_eq!((l[2].mode, l[2].mtime, l[2].uid), (0o755, 9, 1000));
        assert_eq!(l[6].data, b"y");

        m.allow_duplicates_from_deps = true;
        let (bytes, warnings) = write(&m);
        assert!(warnings.is_empty());
        let l = list(&bytes);
        // rules_pkg writes every duplicate when duplicates are allowed.
        let confs: Vec<&[u8]> = l.iter().filter(|e| e.name == "etc/conf").map(|e| e.data.as_slice()).collect();
        assert_eq!(confs, [&b""[..], b"dep1", b"dep2"]);
    }

    #[test]
    fn deps_prefix_is_normalized_like_package_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dep = dep_tar(&dir, "dep.tar", &[("./", b'5', b"", 1), ("./a/b", b'0', b"b", 1)], false);
        let mut m = manifest(vec![entry("app/x", EntryKind::EmptyFile, 0o555)]);
        m.deps = vec![dep];
        m.deps_prefix = "/app/".into();
        let l = list(&write(&m).0);
        assert_eq!(names(&l), ["app/", "app/x", "app/a/", "app/a/b"]);
    }

    #[test]
    fn duplicate_manifest_entries_skipped_silently_before_reading_source() {
        let m = manifest(vec![
            entry("a", EntryKind::EmptyFile, 0o555),
            entry("a", EntryKind::File { src: "/nonexistent/never/read".into() }, 0o555),
        ]);
        let (bytes, warnings) = write(&m);
        assert!(warnings.is_empty());
        assert_eq!(names(&list(&bytes)), ["a"]);
    }

    #[test]
    fn unreadable_source_is_named() {
        let m = manifest(vec![entry("a", EntryKind::File { src: "/nonexistent/src/file".into() }, 0o555)]);
        let err = write_tar(&m, Vec::new()).expect_err("must fail");
        let msg = format!("{err:#}");
        assert!(msg.contains("/nonexistent/src/file"), "{msg}");
    }

    #[test]
    fn unreadable_dep_is_named() {
        let mut m = manifest(vec![]);
        m.deps = vec!["/nonexistent/dep.tar".into()];
        let msg = format!("{:#}", write_tar(&m, Vec::new()).expect_err("must fail"));
        assert!(msg.contains("/nonexistent/dep.tar"), "{msg}");
    }

    #[test]
    fn directory_shadowing_a_file_warns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dep = dep_tar(&dir, "dep.tar", &[("a", b'5', b"", 1)], false);
        let mut m = manifest(vec![entry("a", EntryKind::EmptyFile, 0o555)]);
        m.deps = vec![dep];
        let (_, warnings) = write(&m);
        assert_eq!(warnings, ["Directory shadows a member of type REGTYPE in archive: a/, picking first occurrence"]);
    }

    #[test]
    fn python_checksum_encoding() {
        let (bytes, _) = write(&manifest(vec![entry("a", EntryKind::EmptyFile, 0o555)]));
        let field = &bytes[148..156];
        assert_eq!(&field[6..], b"\0 ");
        assert!(field[..6].iter().all(u8::is_ascii_digit));
    }

    #[test]
    fn manifest_round_trips_through_json() {
        let m = manifest(vec![entry("a", EntryKind::Symlink { target: "b".into() }, 0o777)]);
        let json = serde_json::to_string(&m).expect("serialize");
        let back: TarManifest = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, m);
    }
}
