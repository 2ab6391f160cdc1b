//! Content digests and the stat cache that avoids re-reading unchanged files.
//!
//! Outputs are named by sha256 (the CAS, OCI descriptors). Source files are named by BLAKE3 in
//! action keys: the key only has to change when the content does, and a layer of a thousand
//! inputs is hashed several times faster.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Lower-case hex of bytes (sha2 0.11's output has no `LowerHex`).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Feeds a file's content to `consume` in 1 MiB pieces; returns its size.
fn stream_file(path: &Path, consume: impl FnMut(&[u8])) -> io::Result<u64> {
    stream(&mut File::open(path)?, consume)
}

/// Feeds everything `f` yields to `consume` in 1 MiB pieces; returns the byte count.
fn stream(f: &mut impl Read, mut consume: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(size);
        }
        size += n as u64;
        consume(&buf[..n]);
    }
}

/// sha256 (hex) and size of a file's content, streamed.
pub fn file_sha256(path: &Path) -> io::Result<(String, u64)> {
    reader_sha256(&mut File::open(path)?)
}

/// sha256 (hex) and size of everything a reader yields (a decompressed layer), streamed.
pub fn reader_sha256(r: &mut impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let size = stream(r, |piece| hasher.update(piece))?;
    Ok((hex(&hasher.finalize()), size))
}

/// BLAKE3 of a file's content, streamed, as `blake3:<hex>` so it can never be mistaken for a
/// sha256.
pub fn file_blake3(path: &Path) -> io::Result<(String, u64)> {
    let mut hasher = blake3::Hasher::new();
    let size = stream_file(path, |piece| {
        hasher.update(piece);
    })?;
    Ok((format!("blake3:{}", blake3::Hasher::finalize(&hasher).to_hex()), size))
}

/// Which digest a [`StatCache`] lookup wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    /// For action keys (source files).
    Key,
    /// The CAS name (checking a copied output against its record).
    Sha256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StatEntry {
    size: u64,
    mtime_ns: i128,
    /// ctime, device and inode too: user space can set mtime back (`touch -d`) after a
    /// same-size edit, but not ctime, which every write, chmod and utimes moves to "now".
    /// Entries saved before these were kept read as 0, so they are hashed once again.
    #[serde(default)]
    ctime_ns: i128,
    #[serde(default)]
    dev: u64,
    ino: u64,
    digest: String,
    /// The other kind's digest, once asked for (a remote cache names source files by sha256
    /// in its input trees, while local keys use BLAKE3): both kept, so neither re-hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    other: Option<String>,
}

impl StatEntry {
    fn matches(&self, meta: &std::fs::Metadata) -> bool {
        let (mtime_ns, ctime_ns) = times_ns(meta);
        self.size == meta.len()
            && self.mtime_ns == mtime_ns
            && self.ctime_ns == ctime_ns
            && self.ino == meta.ino()
            && self.dev == meta.dev()
    }
}

fn times_ns(meta: &std::fs::Metadata) -> (i128, i128) {
    (meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128, meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128)
}

/// path → (size, mtime, ctime, device, inode) → digest, persisted between builds (as Bazel's
/// file digest cache keys on ctime): a file whose stat is unchanged is not read again. Never
/// used to decide *whether* something changed by mtime alone: a changed stat means
/// re-hashing, and keys use digests.
#[derive(Default)]
pub struct StatCache {
    entries: Mutex<HashMap<PathBuf, StatEntry>>,
    dirty: std::sync::atomic::AtomicBool,
}

impl StatCache {
    pub fn load(path: &Path) -> StatCache {
        let entries =
            std::fs::read(path).ok().and_then(|b| serde_json::from_slice::<HashMap<PathBuf, StatEntry>>(&b).ok()).unwrap_or_default();
        StatCache { entries: Mutex::new(entries), dirty: Default::default() }
    }

    /// The digest of a file, from the cache if its stat is unchanged.
    pub fn digest(&self, path: &Path, kind: DigestKind) -> io::Result<String> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
        }
        let (mtime_ns, ctime_ns) = times_ns(&meta);
        let of_kind = |d: &String| d.starts_with("blake3:") == (kind == DigestKind::Key);
        let mut keep: Option<String> = None;
        if let Ok(map) = self.entries.lock()
            && let Some(e) = map.get(path)
            && e.matches(&meta)
        {
            if let Some(d) = std::iter::once(&e.digest).chain(e.other.as_ref()).find(|d| of_kind(d)) {
                return Ok(d.clone());
            }
            keep = Some(e.digest.clone());
        }
        let (digest, size) = match kind {
            DigestKind::Key => file_blake3(path)?,
            DigestKind::Sha256 => file_sha256(path)?,
        };
        if let Ok(mut map) = self.entries.lock() {
            map.insert(
                path.to_path_buf(),
                StatEntry { size, mtime_ns, ctime_ns, dev: meta.dev(), ino: meta.ino(), digest: digest.clone(), other: keep },
            );
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(digest)
    }

    /// Saves the cache (atomically) if anything changed.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        if !self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let data = {
            let map = self.entries.lock().map_err(|_| io::Error::other("stat cache lock poisoned"))?;
            serde_json::to_vec(&*map).map_err(io::Error::other)?
        };
        super::fs::write_atomic(path, &data, false)
    }
}

/// A writer that hashes what passes through it on another thread, so an action can report
/// its output's digest without reading the file back, and hashing overlaps the writing.
pub struct HashingWriter<W> {
    inner: W,
    chunk: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    hasher: Option<std::thread::JoinHandle<String>>,
}

const HASH_CHUNK: usize = 1 << 20;

impl<W: std::io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let hasher = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for chunk in rx {
                h.update(&chunk);
            }
            hex(&h.finalize())
        });
        HashingWriter { inner, chunk: Vec::with_capacity(HASH_CHUNK), tx: Some(tx), hasher: Some(hasher) }
    }

    /// The inner writer and the hex digest of everything written.
    pub fn finish(mut self) -> (W, String) {
        let last = std::mem::take(&mut self.chunk);
        if let Some(tx) = self.tx.take()
            && !last.is_empty()
        {
            let _ = tx.send(last);
        }
        let digest = self.hasher.take().and_then(|h| h.join().ok()).unwrap_or_default();
        (self.inner, digest)
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() >= HASH_CHUNK {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(HASH_CHUNK));
            if let Some(tx) = &self.tx {
                tx.send(full).map_err(|_| io::Error::other("hashing thread stopped"))?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cache_gives_each_kind_its_own_digest_and_rehashes_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        let cache = StatCache::default();
        // Known answers: sha256("abc") and BLAKE3("abc").
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let b3 = "blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";
        assert_eq!(cache.digest(&file, DigestKind::Key).unwrap(), b3);
        assert_eq!(cache.digest(&file, DigestKind::Sha256).unwrap(), sha);
        assert_eq!(cache.digest(&file, DigestKind::Key).unwrap(), b3);
        std::fs::write(&file, b"abd").unwrap();
        // Same size and inode: only the mtime tells (set it, timestamps can be coarse).
        let past = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        File::options().write(true).open(&file).unwrap().set_modified(past).unwrap();
        assert_ne!(cache.digest(&file, DigestKind::Key).unwrap(), b3);
        // A same-size edit with the mtime put back: ctime still moved.
        let b3_abd = cache.digest(&file, DigestKind::Key).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20)); // one clock tick
        std::fs::write(&file, b"abe").unwrap();
        File::options().write(true).open(&file).unwrap().set_modified(past).unwrap();
        assert_ne!(cache.digest(&file, DigestKind::Key).unwrap(), b3_abd);
        let saved = dir.path().join("stat.json");
        cache.save(&saved).unwrap();
        let reloaded = StatCache::load(&saved);
        assert_eq!(reloaded.digest(&file, DigestKind::Key).unwrap(), cache.digest(&file, DigestKind::Key).unwrap());
    }
}
