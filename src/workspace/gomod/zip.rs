//! A minimal reader of Go module zips (the archives a GOPROXY serves as `.zip`): the central
//! directory, stored and deflated entries, and extraction confined to one directory.
//!
//! Go's module zips (`golang.org/x/mod/zip`) are plain zips without zip64, encryption or
//! symlinks, every file under the `module@version/` prefix; anything else is rejected rather
//! than interpreted.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

/// One file of a zip: its name and its content.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub data: Vec<u8>,
}

/// `golang.org/x/mod/zip`'s limit on the unzipped size of a module (500 MiB).
const MAX_UNZIPPED: u64 = 500 << 20;

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    let s = b.get(at..at + 2).ok_or_else(|| anyhow!("truncated zip"))?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at + 4).ok_or_else(|| anyhow!("truncated zip"))?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Every file entry of `bytes`, in the order of the central directory. Directory entries
/// (names ending in `/`) are skipped; symlinks (Unix mode in the external attributes) are an
/// error, as `golang.org/x/mod/zip` refuses them.
pub fn read_entries(bytes: &[u8]) -> Result<Vec<Entry>> {
    // The end-of-central-directory record: the last "PK\x05\x06" within the final 64 KiB.
    let min = bytes.len().saturating_sub(22 + 65535);
    let eocd = (min..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| anyhow!("not a zip file (no end of central directory)"))?;
    let count = u16_at(bytes, eocd + 10)? as usize;
    let mut at = u32_at(bytes, eocd + 16)? as usize;
    let mut out = Vec::with_capacity(count);
    let mut total: u64 = 0;
    for _ in 0..count {
        if u32_at(bytes, at)? != 0x0201_4b50 {
            bail!("corrupt zip: bad central directory entry at offset {at}");
        }
        let flags = u16_at(bytes, at + 8)?;
        let method = u16_at(bytes, at + 10)?;
        let csize = u32_at(bytes, at + 20)? as usize;
        let usize_ = u32_at(bytes, at + 24)? as u64;
        let name_len = u16_at(bytes, at + 28)? as usize;
        let extra_len = u16_at(bytes, at + 30)? as usize;
        let comment_len = u16_at(bytes, at + 32)? as usize;
        let external = u32_at(bytes, at + 38)?;
        let local = u32_at(bytes, at + 42)? as usize;
        let name_bytes = bytes.get(at + 46..at + 46 + name_len).ok_or_else(|| anyhow!("truncated zip"))?;
        let name = std::str::from_utf8(name_bytes).map_err(|_| anyhow!("zip entry name is not UTF-8"))?.to_owned();
        at += 46 + name_len + extra_len + comment_len;
        if flags & 1 != 0 {
            bail!("zip entry '{name}' is encrypted");
        }
        if name.ends_with('/') {
            continue;
        }
        let mode = external >> 16;
        if mode & 0o170000 == 0o120000 {
            bail!("zip entry '{name}' is a symbolic link (module zips may not contain links)");
        }
        if csize == 0xffff_ffff || usize_ == 0xffff_ffff {
            bail!("zip entry '{name}' uses zip64, which module zips never need");
        }
        total += usize_;
        if total > MAX_UNZIPPED {
            bail!("module zip unpacks to more than {MAX_UNZIPPED} bytes");
        }
        if u32_at(bytes, local)? != 0x0403_4b50 {
            bail!("corrupt zip: bad local header for '{name}'");
        }
        let data_at = local + 30 + u16_at(bytes, local + 26)? as usize + u16_at(bytes, local + 28)? as usize;
        let raw = bytes.get(data_at..data_at + csize).ok_or_else(|| anyhow!("truncated zip entry '{name}'"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut data = Vec::with_capacity(usize_ as usize);
                flate2::read::DeflateDecoder::new(raw)
                    .take(usize_ + 1)
                    .read_to_end(&mut data)
                    .with_context(|| format!("inflating zip entry '{name}'"))?;
                data
            }
            m => bail!("zip entry '{name}' uses compression method {m} (only stored and deflate are allowed)"),
        };
        if data.len() as u64 != usize_ {
            bail!("zip entry '{name}' has {} bytes, its header says {usize_}", data.len());
        }
        out.push(Entry { name, data });
    }
    Ok(out)
}

/// The part of `name` below `prefix` (`module@version/`), checked to be a relative path that
/// stays inside the extraction directory: no `..`, `.` or empty components, no absolute path,
/// no backslash or NUL.
pub fn confined(name: &str, prefix: &str) -> Result<String> {
    let rel = name.strip_prefix(prefix).ok_or_else(|| anyhow!("zip entry '{name}' is not under '{prefix}'"))?;
    if rel.is_empty() || rel.starts_with('/') || rel.contains(['\\', '\0']) || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("zip entry '{name}' has an unsafe path");
    }
    Ok(rel.to_owned())
}

/// Writes `entries` (already [`confined`]: relative path, content) under `dir`, which must not
/// exist yet.
pub fn write_tree(dir: &Path, entries: &[(String, &[u8])]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (rel, data) in entries {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored zip of `files`, written as Go's module zips are laid out.
    pub(crate) fn stored_zip(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, mode) in files {
            let offset = out.len() as u32;
            let crc = 0u32;
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&(mode << 16).to_le_bytes());
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_at = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_at.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_stored_entries_and_rejects_links() {
        let zip = stored_zip(&[("m@v1.0.0/go.mod", b"module m\n", 0o100644), ("m@v1.0.0/a.go", b"package m\n", 0o100644)]);
        let entries = read_entries(&zip).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].name, "m@v1.0.0/a.go");
        assert_eq!(entries[1].data, b"package m\n");
        let link = stored_zip(&[("m@v1.0.0/l", b"/etc/passwd", 0o120777)]);
        assert!(read_entries(&link).unwrap_err().to_string().contains("symbolic link"));
        assert!(read_entries(b"garbage").is_err());
    }

    #[test]
    fn confinement() {
        assert_eq!(confined("m@v1/a/b.go", "m@v1/").unwrap(), "a/b.go");
        for bad in ["m@v1/../x", "m@v1//x", "m@v1/./x", "other/x", "m@v1/a\\..\\b", "/etc/x"] {
            assert!(confined(bad, "m@v1/").is_err(), "{bad}");
        }
    }
}
