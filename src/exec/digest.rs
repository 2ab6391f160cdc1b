//! Content digests (sha256) and the stat cache that avoids re-reading unchanged files.

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

/// sha256 of a file's content, streamed.
pub fn file_sha256(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex(&hasher.finalize()), size))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StatEntry {
    size: u64,
    mtime_ns: i128,
    ino: u64,
    digest: String,
}

/// path → (size, mtime, inode) → digest, persisted between builds: a file whose stat is
/// unchanged is not read again. Never used to decide *whether* something changed by mtime
/// alone: a changed stat means re-hashing, and keys use digests.
#[derive(Default)]
pub struct StatCache {
    entries: Mutex<HashMap<PathBuf, StatEntry>>,
    dirty: std::sync::atomic::AtomicBool,
}

impl StatCache {
    pub fn load(path: &Path) -> StatCache {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<HashMap<PathBuf, StatEntry>>(&b).ok())
            .unwrap_or_default();
        StatCache { entries: Mutex::new(entries), dirty: Default::default() }
    }

    /// The digest of a file, from the cache if its stat is unchanged.
    pub fn digest(&self, path: &Path) -> io::Result<String> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
        }
        let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
        if let Ok(map) = self.entries.lock() {
            if let Some(e) = map.get(path) {
                if e.size == meta.len() && e.mtime_ns == mtime_ns && e.ino == meta.ino() {
                    return Ok(e.digest.clone());
                }
            }
        }
        let (digest, size) = file_sha256(path)?;
        if let Ok(mut map) = self.entries.lock() {
            map.insert(path.to_path_buf(), StatEntry { size, mtime_ns, ino: meta.ino(), digest: digest.clone() });
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
        if let Some(tx) = self.tx.take() {
            if !last.is_empty() {
                let _ = tx.send(last);
            }
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
