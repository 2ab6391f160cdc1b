//! The action cache's index: every action record of a cache in one append-only file,
//! `<cache>/ac/index`, read once per command, instead of one JSON file per action (a no-op
//! build of 1,000 services opened 9,014 of them).
//!
//! Layout: an 8-byte magic, then records, each `len: u32 LE`, `check: u64 LE` (the first 8
//! bytes of the payload's BLAKE3) and `len` bytes of payload: `kind: u8`, `last_use: u64 LE`
//! (nanoseconds since the epoch), the action key (32 bytes) and, for an entry, the encoded
//! [`ActionRecord`]. A later record for a key replaces an earlier one; a touch record only
//! renews its last use (for eviction).
//!
//! Crash safety: the file is only ever appended to, under an exclusive `flock` of
//! `<cache>/ac/lock` (several ocib processes, of one workspace or many, share a cache). A
//! reader stops at the first record that is incomplete or fails its check (a write torn by a
//! crash or a power loss, a damaged disk block): what follows is ignored, and the next writer
//! cuts it off before appending. A lost record is a cache miss, never a wrong output: a
//! record only names CAS files, and every one is checked against its recorded stat (and
//! hashed if that moved) before it is used ([`super::cache::Cache::check`]).
//!
//! Compaction: when dead records (replaced entries, touches) make up more than half of the
//! file, the writer that notices rewrites the live entries into a temporary file and renames
//! it over the index, all under the lock. The others notice the new inode the next time they
//! take the lock and read the new file from the start.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::cache::{ActionRecord, OutputRecord};
use super::fs::{temp_sibling, with_path};

/// The first bytes of an index (format version 1).
const MAGIC: &[u8; 8] = b"ocibac01";
/// The bytes an index takes besides its records.
pub const MAGIC_LEN: u64 = MAGIC.len() as u64;
/// Record header: payload length and check.
const HEADER: usize = 12;
/// Payload bytes before the record body: kind, last use, key.
const PREFIX: usize = 1 + 8 + 32;
/// No record is anywhere near this big (a directory output of a million files would be):
/// a larger length is a damaged header.
const MAX_RECORD: usize = 1 << 30;
/// The index is compacted only past this size (rewriting a small file saves nothing).
const COMPACT_MIN: usize = 256 * 1024;

const KIND_ENTRY: u8 = 1;
const KIND_TOUCH: u8 = 2;

/// An action key as the index stores it: the 32 bytes of the hex sha256 the scheduler
/// computes (any other string is hashed to 32 bytes).
pub type Key = [u8; 32];

/// The index's key for an action key.
pub fn key_bytes(key: &str) -> Key {
    let hex = key.as_bytes();
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if hex.len() == 64 {
        let mut out = [0u8; 32];
        let ok = out.iter_mut().zip(hex.chunks_exact(2)).all(|(o, pair)| match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => {
                *o = h << 4 | l;
                true
            }
            _ => false,
        });
        if ok {
            return out;
        }
    }
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}

/// Where a key's latest entry is in the index's bytes, and when it was last used.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Offset of the record's header in [`Index::data`].
    start: usize,
    /// Header and payload.
    len: usize,
    last_use: u64,
}

/// One live entry as [`Index::entries`] lists it (for eviction).
pub struct Listed {
    pub key: Key,
    pub last_use: u64,
    /// Bytes it takes in the index (header and payload).
    pub size: u64,
    /// The record, if it decodes.
    pub record: Option<ActionRecord>,
}

/// The index of one cache as this process knows it.
pub struct Index {
    path: PathBuf,
    lock_path: PathBuf,
    /// The file [`Index::data`] was read from, if it existed.
    file: Option<File>,
    /// Its device and inode: a compaction by another process replaces it.
    id: (u64, u64),
    /// The file's bytes up to the end of its last good record.
    data: Vec<u8>,
    entries: HashMap<Key, Slot>,
    /// Bytes of the live entries (compaction happens when the file is much larger).
    live: usize,
    /// Keys whose last use moved in this command and is not written yet.
    touched: Vec<Key>,
    loaded: bool,
}

/// The exclusive lock writers hold; released when dropped.
struct Locked(File);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Index {
    /// The index in the directory `ac`; nothing is read until it is first used.
    pub fn new(ac: &Path) -> Index {
        Index {
            path: ac.join("index"),
            lock_path: ac.join("lock"),
            file: None,
            id: (0, 0),
            data: Vec::new(),
            entries: HashMap::new(),
            live: 0,
            touched: Vec::new(),
            loaded: false,
        }
    }

    /// Whether [`Index::load`] ran.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Reads the index the first time it is needed (without the lock: an append under way
    /// looks like a torn tail and is read later, under the lock).
    pub fn load(&mut self) {
        self.ensure_loaded();
    }

    fn ensure_loaded(&mut self) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        if let Ok(file) = open_index(&self.path) {
            self.read_whole(file);
        }
    }

    /// Forgets what was read and reads `file` from its start.
    fn read_whole(&mut self, file: File) {
        self.data.clear();
        self.entries.clear();
        self.live = 0;
        let meta = file.metadata().ok();
        self.id = meta.as_ref().map(|m| (m.dev(), m.ino())).unwrap_or_default();
        let len = meta.map(|m| m.len() as usize).unwrap_or(0);
        self.data = read_from(&file, 0, len);
        self.file = Some(file);
        if self.data.starts_with(MAGIC) {
            self.parse(MAGIC.len());
        } else {
            // Empty, or not an index at all: nothing in it is used, and the next writer
            // starts it again.
            self.data.clear();
        }
    }

    /// Takes in the records of `data[from..]`, up to the first that is incomplete or damaged,
    /// and drops everything after it from `data`.
    fn parse(&mut self, from: usize) {
        let mut pos = from;
        while let Some(len) = record_at(&self.data, pos) {
            let payload = &self.data[pos + HEADER..pos + HEADER + len];
            let kind = payload[0];
            let last_use = u64::from_le_bytes(payload[1..9].try_into().unwrap_or_default());
            let mut key = [0u8; 32];
            key.copy_from_slice(&payload[9..PREFIX]);
            match kind {
                KIND_ENTRY => {
                    let slot = Slot { start: pos, len: HEADER + len, last_use };
                    if let Some(old) = self.entries.insert(key, slot) {
                        self.live -= old.len;
                    }
                    self.live += slot.len;
                }
                KIND_TOUCH => {
                    if let Some(slot) = self.entries.get_mut(&key) {
                        slot.last_use = slot.last_use.max(last_use);
                    }
                }
                // A kind a later version writes: checked, so skipped safely.
                _ => {}
            }
            pos += HEADER + len;
        }
        self.data.truncate(pos);
    }

    /// The entry for `key` and its last use (nanoseconds since the epoch).
    /// Nothing is found before [`Index::load`].
    pub fn get(&self, key: &Key) -> Option<(ActionRecord, u64)> {
        let slot = self.entries.get(key)?;
        let record = decode_record(&self.data[slot.start + HEADER + PREFIX..slot.start + slot.len])?;
        Some((record, slot.last_use))
    }

    /// Renews `key`'s last use (written by [`Index::flush`]).
    pub fn touch(&mut self, key: &Key, now: u64) {
        if let Some(slot) = self.entries.get_mut(key)
            && slot.last_use < now
        {
            slot.last_use = now;
            self.touched.push(*key);
        }
    }

    /// The bytes of the index as read and written by this process.
    pub fn size(&mut self) -> u64 {
        self.ensure_loaded();
        self.data.len() as u64
    }

    /// Appends an entry (written before this returns, so a build killed later keeps it).
    pub fn put(&mut self, key: &Key, record: &ActionRecord, now: u64) -> io::Result<()> {
        self.ensure_loaded();
        let frame = frame(KIND_ENTRY, now, key, &encode_record(record));
        self.append(&frame)
    }

    /// Writes the last uses renewed in this command, and compacts the index if most of it
    /// is dead records.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.loaded {
            return Ok(());
        }
        let touched = std::mem::take(&mut self.touched);
        let mut frames = Vec::with_capacity(touched.len() * (HEADER + PREFIX));
        for key in &touched {
            if let Some(slot) = self.entries.get(key) {
                frames.extend_from_slice(&frame(KIND_TOUCH, slot.last_use, key, &[]));
            }
        }
        if !frames.is_empty() {
            self.append(&frames)?;
        }
        if self.data.len() > COMPACT_MIN && self.data.len() > 2 * (self.live + MAGIC.len()) {
            let _lock = self.lock()?;
            self.catch_up()?;
            if self.data.len() > 2 * (self.live + MAGIC.len()) {
                self.rewrite(|_| true)?;
            }
        }
        Ok(())
    }

    /// Every live entry (for eviction, which holds the cache exclusively).
    pub fn entries(&mut self) -> Vec<Listed> {
        self.ensure_loaded();
        let mut slots: Vec<(&Key, &Slot)> = self.entries.iter().collect();
        slots.sort_by_key(|(_, s)| s.start);
        slots
            .into_iter()
            .map(|(key, s)| Listed {
                key: *key,
                last_use: s.last_use,
                size: s.len as u64,
                record: decode_record(&self.data[s.start + HEADER + PREFIX..s.start + s.len]),
            })
            .collect()
    }

    /// Keeps only the entries `keep` accepts, rewriting the index (removing it when none is
    /// left). Returns the index's size after.
    pub fn retain(&mut self, keep: impl Fn(&Key) -> bool) -> io::Result<u64> {
        self.ensure_loaded();
        let _lock = self.lock()?;
        self.catch_up()?;
        self.rewrite(keep)?;
        Ok(self.data.len() as u64)
    }

    /// The exclusive lock on `<cache>/ac/lock`.
    fn lock(&self) -> io::Result<Locked> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| with_path(e, "opening", &self.lock_path))?;
        file.lock().map_err(|e| with_path(e, "locking", &self.lock_path))?;
        Ok(Locked(file))
    }

    /// With the lock held: reads what other processes appended since, or the whole file if
    /// another process replaced it (compaction). Returns the file's length (more than the
    /// bytes taken in if it ends in a torn record).
    fn catch_up(&mut self) -> io::Result<u64> {
        let meta = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Removed (evicted to nothing, expunged): start again.
                self.file = None;
                self.read_empty();
                return Ok(0);
            }
            Err(e) => return Err(with_path(e, "reading", &self.path)),
        };
        let len = meta.len() as usize;
        let valid = self.data.len();
        if self.file.is_none() || (meta.dev(), meta.ino()) != self.id || len < valid {
            let file = open_index(&self.path).map_err(|e| with_path(e, "opening", &self.path))?;
            self.read_whole(file);
        } else if len > valid {
            let Some(file) = &self.file else { return Ok(meta.len()) };
            let more = read_from(file, valid, len - valid);
            self.data.extend_from_slice(&more);
            if valid > 0 {
                self.parse(valid);
            } else if self.data.starts_with(MAGIC) {
                self.parse(MAGIC.len());
            } else {
                self.data.clear();
            }
        }
        Ok(meta.len())
    }

    fn read_empty(&mut self) {
        self.data.clear();
        self.entries.clear();
        self.live = 0;
        self.id = (0, 0);
    }

    /// Appends whole records under the lock: after what others appended, over a torn tail.
    fn append(&mut self, frames: &[u8]) -> io::Result<()> {
        let _lock = self.lock()?;
        let len = self.catch_up()?;
        if self.file.is_none() {
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)
                .map_err(|e| with_path(e, "creating", &self.path))?;
            let meta = f.metadata().map_err(|e| with_path(e, "reading", &self.path))?;
            self.id = (meta.dev(), meta.ino());
            self.file = Some(f);
        }
        let Some(file) = &self.file else { return Ok(()) };
        let pos = self.data.len();
        if len != pos as u64 {
            // A torn or damaged tail (or a file that is no index): cut off, nobody else is
            // writing.
            file.set_len(pos as u64).map_err(|e| with_path(e, "truncating", &self.path))?;
        }
        let mut bytes = Vec::with_capacity(MAGIC.len() + frames.len());
        if pos == 0 {
            bytes.extend_from_slice(MAGIC);
        }
        bytes.extend_from_slice(frames);
        file.write_all_at(&bytes, pos as u64).map_err(|e| with_path(e, "writing", &self.path))?;
        self.data.extend_from_slice(&bytes);
        self.parse(pos.max(MAGIC.len()));
        Ok(())
    }

    /// With the lock held: writes the live entries `keep` accepts into a new file and renames
    /// it over the index (or removes the index when none is left).
    fn rewrite(&mut self, keep: impl Fn(&Key) -> bool) -> io::Result<()> {
        let mut slots: Vec<(Key, Slot)> = self.entries.iter().filter(|(k, _)| keep(k)).map(|(k, s)| (*k, *s)).collect();
        slots.sort_by_key(|(_, s)| s.start);
        if slots.is_empty() {
            match fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_path(e, "removing", &self.path)),
            }
            self.file = None;
            self.read_empty();
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(MAGIC.len() + slots.iter().map(|(_, s)| s.len).sum::<usize>());
        bytes.extend_from_slice(MAGIC);
        for (key, slot) in &slots {
            let payload = &self.data[slot.start + HEADER..slot.start + slot.len];
            bytes.extend_from_slice(&frame(KIND_ENTRY, slot.last_use, key, &payload[PREFIX..]));
        }
        let tmp = temp_sibling(&self.path);
        let written = fs::write(&tmp, &bytes).and_then(|()| fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(with_path(e, "rewriting", &self.path));
        }
        let file = open_index(&self.path).map_err(|e| with_path(e, "opening", &self.path))?;
        let meta = file.metadata().map_err(|e| with_path(e, "reading", &self.path))?;
        self.id = (meta.dev(), meta.ino());
        self.file = Some(file);
        self.data = bytes;
        self.entries.clear();
        self.live = 0;
        self.parse(MAGIC.len());
        Ok(())
    }
}

/// Opens the index for reading and appending (only for reading if it may not be written:
/// lookups still work, and a store reports the error).
fn open_index(path: &Path) -> io::Result<File> {
    match File::options().read(true).write(true).open(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(path),
        r => r,
    }
}

/// `len` bytes of `file` from `offset` (fewer if it ends sooner or a read fails: the tail is
/// then treated as torn).
fn read_from(file: &File, offset: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], (offset + got) as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    buf.truncate(got);
    buf
}

/// The check of a payload.
fn check(payload: &[u8]) -> u64 {
    let hash = blake3::hash(payload);
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap_or_default())
}

/// The payload length of the complete, intact record at `pos`, if there is one.
fn record_at(data: &[u8], pos: usize) -> Option<usize> {
    let header = data.get(pos..pos.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    if !(PREFIX..=MAX_RECORD).contains(&len) {
        return None;
    }
    let sum = u64::from_le_bytes(header[4..].try_into().ok()?);
    let payload = data.get(pos + HEADER..(pos + HEADER).checked_add(len)?)?;
    (check(payload) == sum).then_some(len)
}

/// One record: header and payload.
fn frame(kind: u8, last_use: u64, key: &Key, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(PREFIX + body.len());
    payload.push(kind);
    payload.extend_from_slice(&last_use.to_le_bytes());
    payload.extend_from_slice(key);
    payload.extend_from_slice(body);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&check(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// An [`ActionRecord`] as bytes (see [`decode_record`]).
fn encode_record(record: &ActionRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + record.outputs.len() * 200);
    put_str(&mut out, &record.mnemonic);
    out.extend_from_slice(&(record.outputs.len() as u32).to_le_bytes());
    for o in &record.outputs {
        put_str(&mut out, &o.exec_path);
        put_str(&mut out, &o.digest);
        out.extend_from_slice(&o.size.to_le_bytes());
        out.push(u8::from(o.executable) | if o.tree.is_some() { 2 } else { 0 });
        out.extend_from_slice(&o.cas_mtime_ns.to_le_bytes());
        out.extend_from_slice(&o.cas_ctime_ns.to_le_bytes());
        out.extend_from_slice(&o.cas_ino.to_le_bytes());
        out.extend_from_slice(&o.cas_dev.to_le_bytes());
        if let Some(tree) = &o.tree {
            put_str(&mut out, tree);
        }
    }
    out
}

/// Reads encoded fields off the front of a record body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i128(&mut self) -> Option<i128> {
        Some(i128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok().map(str::to_owned)
    }
}

/// The [`ActionRecord`] [`encode_record`] wrote, or None if the bytes are not one.
fn decode_record(body: &[u8]) -> Option<ActionRecord> {
    let mut r = Reader(body);
    let mnemonic = r.str()?;
    let n = r.u32()? as usize;
    // Each output takes at least 61 bytes: a count larger than that cannot be right.
    let mut outputs = Vec::with_capacity(n.min(body.len() / 61 + 1));
    for _ in 0..n {
        let exec_path = r.str()?;
        let digest = r.str()?;
        let size = r.u64()?;
        let flags = r.u8()?;
        let cas_mtime_ns = r.i128()?;
        let cas_ctime_ns = r.i128()?;
        let cas_ino = r.u64()?;
        let cas_dev = r.u64()?;
        let tree = if flags & 2 != 0 { Some(r.str()?) } else { None };
        outputs.push(OutputRecord {
            exec_path,
            digest,
            size,
            executable: flags & 1 != 0,
            cas_mtime_ns,
            cas_ctime_ns,
            cas_ino,
            cas_dev,
            tree,
        });
    }
    r.0.is_empty().then_some(ActionRecord { mnemonic, outputs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> ActionRecord {
        let outputs = (0..n % 3 + 1)
            .map(|i| OutputRecord {
                exec_path: format!("ocib-out/bin/p/out{n}_{i}"),
                digest: format!("{:064x}", n * 10 + i),
                size: (n * 7 + i) as u64,
                executable: i == 1,
                cas_mtime_ns: 1_700_000_000_000_000_000 + n as i128,
                cas_ctime_ns: -(n as i128),
                cas_ino: n as u64 + 11,
                cas_dev: 2049,
                tree: (i == 2).then(|| "ocib-out/bin/p/dir".to_owned()),
            })
            .collect();
        ActionRecord { mnemonic: format!("M{n}"), outputs }
    }

    fn key(n: usize) -> Key {
        key_bytes(&format!("{n:064x}"))
    }

    fn fresh(ac: &Path) -> Index {
        let mut index = Index::new(ac);
        index.load();
        index
    }

    #[test]
    fn keys_are_the_bytes_of_the_hex_digest() {
        let hex = "00ff".repeat(16);
        assert_eq!(key_bytes(&hex), [0x00, 0xff].repeat(16).as_slice());
        assert_ne!(key_bytes("not a digest"), key_bytes("not a digest either"));
        assert_eq!(key_bytes(&"G".repeat(64)), key_bytes(&"G".repeat(64)));
    }

    #[test]
    fn records_round_trip_and_the_latest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = fresh(dir.path());
        for n in 0..20 {
            index.put(&key(n), &record(n), 1000 + n as u64).unwrap();
        }
        index.put(&key(3), &record(33), 5000).unwrap();
        let again = fresh(dir.path());
        for n in (0..20).filter(|&n| n != 3) {
            assert_eq!(again.get(&key(n)), Some((record(n), 1000 + n as u64)));
        }
        assert_eq!(again.get(&key(3)), Some((record(33), 5000)));
        assert_eq!(again.get(&key(99)), None);
    }

    /// Cuts the index at every length: a reader takes exactly the records before the cut,
    /// and the next write drops the torn tail so that later records are read again.
    #[test]
    fn a_torn_tail_is_ignored_and_cut_off_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut index = fresh(dir.path());
        let mut ends = vec![];
        for n in 0..4 {
            index.put(&key(n), &record(n), 1).unwrap();
            ends.push(fs::metadata(&path).unwrap().len());
        }
        let whole = fs::read(&path).unwrap();
        for cut in 0..whole.len() {
            fs::write(&path, &whole[..cut]).unwrap();
            let complete = ends.iter().filter(|&&e| e as usize <= cut).count();
            let mut reader = fresh(dir.path());
            for n in 0..4 {
                assert_eq!(reader.get(&key(n)).is_some(), n < complete, "cut at {cut}: record {n}");
            }
            reader.put(&key(9), &record(9), 2).unwrap();
            let after = fresh(dir.path());
            assert!(after.get(&key(9)).is_some(), "cut at {cut}: the record written after the torn tail is read");
            assert_eq!((0..4).filter(|&n| after.get(&key(n)).is_some()).count(), complete);
        }
    }

    /// A damaged byte anywhere: the records before it are kept, none is ever misread.
    #[test]
    fn a_damaged_record_ends_what_is_read_and_nothing_is_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut index = fresh(dir.path());
        for n in 0..6 {
            index.put(&key(n), &record(n), 7).unwrap();
        }
        let whole = fs::read(&path).unwrap();
        for at in (0..whole.len()).step_by(7) {
            let mut bad = whole.clone();
            bad[at] ^= 0x5a;
            fs::write(&path, &bad).unwrap();
            let reader = fresh(dir.path());
            let mut seen_missing = false;
            for n in 0..6 {
                match reader.get(&key(n)) {
                    Some((r, t)) => {
                        assert!(!seen_missing, "byte {at}: record {n} read after a lost one");
                        assert_eq!((r, t), (record(n), 7), "byte {at}");
                    }
                    None => seen_missing = true,
                }
            }
            assert!(seen_missing, "byte {at}: the damage went unnoticed");
        }
        // Not an index at all: empty, and the next writer starts it again.
        fs::write(&path, vec![0u8; 4096]).unwrap();
        let mut reader = fresh(dir.path());
        assert!(reader.get(&key(0)).is_none());
        reader.put(&key(1), &record(1), 8).unwrap();
        assert_eq!(fresh(dir.path()).get(&key(1)), Some((record(1), 8)));
        assert!(fs::read(&path).unwrap().starts_with(MAGIC));
    }

    /// Several writers (separate handles, as separate processes have) appending at once, one
    /// of them compacting: every record survives, and each writer sees the others' records.
    #[test]
    fn concurrent_writers_and_compaction_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ac = dir.path().to_path_buf();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let ac = ac.clone();
                std::thread::spawn(move || {
                    let mut index = fresh(&ac);
                    for i in 0..150 {
                        let n = w * 1000 + i;
                        // Replacing records makes dead ones, so the file gets compacted.
                        index.put(&key(n), &record(n), 1).unwrap();
                        index.put(&key(n), &record(n + 2), 3).unwrap();
                        index.put(&key(n), &record(n + 1), 2).unwrap();
                        if i % 50 == 49 {
                            index.flush().unwrap();
                        }
                    }
                    index.flush().unwrap();
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let index = fresh(&ac);
        for w in 0..4 {
            for i in 0..150 {
                let n = w * 1000 + i;
                assert_eq!(index.get(&key(n)), Some((record(n + 1), 2)), "writer {w} record {i}");
            }
        }
        let appended: usize = (0..4)
            .flat_map(|w| (0..150).map(move |i| w * 1000 + i))
            .flat_map(|n| [n, n + 1, n + 2])
            .map(|n| HEADER + PREFIX + encode_record(&record(n)).len())
            .sum();
        let size = fs::metadata(ac.join("index")).unwrap().len() as usize;
        assert!(size < appended, "never compacted: {size} bytes of {appended} appended");
    }

    #[test]
    fn touches_renew_last_use_and_compaction_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = fresh(dir.path());
        index.put(&key(1), &record(1), 100).unwrap();
        index.put(&key(2), &record(2), 100).unwrap();
        index.touch(&key(1), 500);
        index.flush().unwrap();
        let mut again = fresh(dir.path());
        assert_eq!(again.get(&key(1)).map(|r| r.1), Some(500));
        assert_eq!(again.get(&key(2)).map(|r| r.1), Some(100));
        assert_eq!(again.retain(|k| *k != key(2)).unwrap(), fs::metadata(dir.path().join("index")).unwrap().len());
        let mut compacted = fresh(dir.path());
        assert_eq!(compacted.get(&key(1)), Some((record(1), 500)));
        assert_eq!(compacted.get(&key(2)), None);
        assert_eq!(compacted.retain(|_| false).unwrap(), 0);
        assert!(!dir.path().join("index").exists(), "an index with no entries is removed");
        // The old handle notices the removal and starts a new file.
        index.put(&key(3), &record(3), 1).unwrap();
        assert_eq!(fresh(dir.path()).get(&key(3)), Some((record(3), 1)));
        assert_eq!(fresh(dir.path()).get(&key(1)), None);
    }
}
