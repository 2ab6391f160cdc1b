//! The content-addressed store (CAS) of output files and the action cache (action key →
//! output digests), under `~/.cache/ocib` or `--disk_cache`.
//!
//! Entries are only ever renamed into place complete; CAS files are read-only. Each record
//! keeps the stat of its CAS file when its content was last known good (mtime, ctime, inode,
//! device). Only the kernel sets ctime — a write, chmod, `touch -d` or link all move it to
//! "now" — so a file whose stat still matches has not been touched since. A file whose stat
//! moved is hashed again before it is used: if its content is still right the record takes
//! the new stat (hashed once), otherwise the entry is removed and the action runs again.
//!
//! Size limit (`--disk_cache_max_size`): every process using the cache holds a shared lock
//! (`flock`) on `<cache>/lease` while it has the cache open; eviction ([`Cache::collect_garbage`])
//! takes it exclusively, so it runs only when no other ocib command is using the cache and can
//! never remove an entry a running build has looked up or is about to store. The action records
//! live in one index file (`ac_index`), each with its last use (set when it is stored, and
//! renewed when a lookup hits a record last used more than [`TOUCH_AFTER`] ago); eviction
//! removes the least recently used records and the CAS files no remaining record refers to,
//! until the cache fits. CAS files' own times are never touched:
//! their stat is what proves them unchanged.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::ac_index::{self, Index, Key, key_bytes};
use super::digest::file_sha256;
use super::fs::{move_file, pid_alive, temp_owner, with_path, write_atomic};

/// One output as the action cache records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub exec_path: String,
    pub digest: String,
    pub size: u64,
    pub executable: bool,
    /// The CAS file's stat when its content was last known good (records written before
    /// ctime/inode/device were kept read as 0: they are verified once, then updated).
    pub cas_mtime_ns: i128,
    #[serde(default)]
    pub cas_ctime_ns: i128,
    #[serde(default)]
    pub cas_ino: u64,
    #[serde(default)]
    pub cas_dev: u64,
    /// For a file inside a directory output: that directory's exec path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub mnemonic: String,
    pub outputs: Vec<OutputRecord>,
}

/// What `stat` says about a CAS file: everything that must be unchanged for its content to
/// be trusted without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    fn recorded(out: &OutputRecord) -> Stamp {
        Stamp { size: out.size, mtime_ns: out.cas_mtime_ns, ctime_ns: out.cas_ctime_ns, ino: out.cas_ino, dev: out.cas_dev }
    }

    fn set(self, out: &mut OutputRecord) {
        out.cas_mtime_ns = self.mtime_ns;
        out.cas_ctime_ns = self.ctime_ns;
        out.cas_ino = self.ino;
        out.cas_dev = self.dev;
    }
}

/// The result of checking a record against the CAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Unchanged since it was recorded.
    Same,
    /// Its stat moved but its content is still right; the record now has the new stat.
    Restamped,
    /// Missing, or its content is wrong (then removed from the CAS).
    Bad,
}

/// What `ocib clean --verify` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: usize,
    pub dropped: usize,
    /// Temporary files of processes that no longer exist (a killed build's half-copied entries).
    pub stale_temps: usize,
}

/// A lookup hit renews its record's last-use time only when it is older than this, so a
/// no-op build run twice in a row writes nothing.
pub const TOUCH_AFTER: Duration = Duration::from_secs(60);

/// What [`Cache::collect_garbage`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Bytes of action records and CAS files before and after eviction.
    pub size_before: u64,
    pub size_after: u64,
    /// Action records and CAS files removed (CAS files no record refers to are removed first).
    pub records_evicted: usize,
    pub files_evicted: usize,
}

/// Whether eviction ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gc {
    Done(GcReport),
    /// Another ocib command holds the cache's lease (eviction was not asked to wait).
    Busy,
}

/// A CAS file as eviction sees it.
struct CasFile {
    size: u64,
    /// Action records that name it and are still there.
    refs: usize,
}

pub struct Cache {
    root: PathBuf,
    /// The shared lock on `<root>/lease` held while this process uses the cache.
    lease: fs::File,
    /// The action records (`<root>/ac/index`), read on first use.
    index: RwLock<Index>,
    /// Whether `ac/` still holds records of the layout before the index.
    legacy: std::sync::OnceLock<bool>,
    /// CAS files known good and the stat they had then, so a file several records share is
    /// hashed at most once: those this process hashed, stored or linked (`true`), and those
    /// loaded from the previous command's [`Cache::save_stamps`] (`false`).
    verified: Mutex<HashMap<PathBuf, (Stamp, bool)>>,
    /// Whether this process may have moved the ctime of a CAS file after checking it (it
    /// stored, linked or ran something). Without, [`Cache::save_stamps`] keeps the stats as
    /// checked and need not stat every entry again: a no-op build stats each CAS file once.
    linked: std::sync::atomic::AtomicBool,
    /// Whether this process knows a CAS file's stat that its record does not have (it stored,
    /// restamped or re-verified one): only then is there anything for [`Cache::save_stamps`]
    /// to keep. A no-op build whose records all match reads and writes no stamp file.
    dirty: std::sync::atomic::AtomicBool,
    /// Where the previous command kept its stats ([`Cache::load_stamps`]); read only when a
    /// check first finds a CAS file whose stat is not its record's.
    stamps: std::sync::OnceLock<PathBuf>,
    stamps_read: std::sync::Once,
    /// Bytes of CAS files [`Cache::check`] read to verify them (their stat had moved and was
    /// not known good): what a cache hit cost beyond a stat.
    rehashed: std::sync::atomic::AtomicU64,
}

impl Cache {
    /// Opens (creating) the cache at `root` and takes a shared lease on it, waiting while an
    /// eviction runs.
    pub fn open(root: &Path) -> io::Result<Cache> {
        let cas = root.join("cas");
        let new_cas = !cas.is_dir();
        for sub in ["cas", "ac"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| with_path(e, "creating directory", &dir))?;
        }
        if new_cas {
            // Every shard at once, so no store has to make one (a cache made by an older ocib
            // gets the missing ones as they are first stored into).
            for shard in 0..=255u8 {
                let dir = cas.join(format!("{shard:02x}"));
                match fs::create_dir(&dir) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(with_path(e, "creating directory", &dir)),
                    _ => {}
                }
            }
        }
        let lease_path = root.join("lease");
        let lease = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lease_path)
            .map_err(|e| with_path(e, "opening", &lease_path))?;
        lease.lock_shared().map_err(|e| with_path(e, "locking", &lease_path))?;
        Ok(Cache {
            index: RwLock::new(Index::new(&root.join("ac"))),
            legacy: std::sync::OnceLock::new(),
            root: root.to_path_buf(),
            lease,
            verified: Mutex::default(),
            linked: Default::default(),
            dirty: Default::default(),
            stamps: std::sync::OnceLock::new(),
            stamps_read: std::sync::Once::new(),
            rehashed: Default::default(),
        })
    }

    /// Executable and plain copies of the same bytes are separate entries: hardlinks share
    /// their mode.
    pub fn cas_path(&self, digest: &str, executable: bool) -> PathBuf {
        let shard = digest.get(..2).unwrap_or("00");
        let name = if executable { format!("{digest}.x") } else { digest.to_owned() };
        self.root.join("cas").join(shard).join(name)
    }

    /// Says that this process may link CAS files from now on (an action runs), so their
    /// ctime may move after they were checked.
    pub fn note_links(&self) {
        self.linked.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Notes a CAS file known good with this stat; `new`: a stat its record may not have.
    fn remember(&self, path: PathBuf, stamp: Stamp, new: bool) {
        if new {
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Ok(mut v) = self.verified.lock() {
            v.insert(path, (stamp, true));
        }
    }

    /// Says where the stats [`Cache::save_stamps`] kept are; they are read when first needed.
    pub fn load_stamps(&self, path: &Path) {
        let _ = self.stamps.set(path.to_path_buf());
    }

    /// Reads the kept stats (once), under what this process verified itself.
    fn read_stamps(&self) {
        self.stamps_read.call_once(|| {
            let Some(path) = self.stamps.get() else { return };
            let saved: Vec<(PathBuf, Stamp)> = fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            if let Ok(mut v) = self.verified.lock() {
                for (p, s) in saved {
                    v.entry(p).or_insert((s, false));
                }
            }
        });
    }

    /// Keeps the stat of the CAS files this command used, for the next command. Building
    /// moves ctimes of entries it did not rewrite: an image action hardlinks layers into its
    /// exec root and removes them, the link count changes and so does ctime. Without this,
    /// the next build would hash every such layer again. Only entries whose inode, size and
    /// mtime are unchanged since this command checked them take their new ctime (a content
    /// write moves mtime; only a write *during* the build with the mtime put back would slip
    /// through, until `clean --verify`).
    ///
    /// The stats earlier commands kept for files this one did not use are kept too while the
    /// file's stat is still exactly that (nothing touched it since, so what was true of its
    /// content still is); one whose stat moved can never match again and is dropped. Without
    /// them, an unrelated build between two reloads of an image made the second reload hash
    /// the image's unchanged 1 GiB layer again (its record's stat predates the image action's
    /// link, and only the kept stat knew the link's ctime).
    pub fn save_stamps(&self, path: &Path) -> io::Result<()> {
        let linked = self.linked.load(std::sync::atomic::Ordering::Relaxed);
        if !linked && !self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
            // Every CAS file used was as its record says: the records are all the next
            // command needs (what the file holds, if anything, is still true).
            return Ok(());
        }
        self.read_stamps();
        // (path, stat, whether this command used it)
        let known: Vec<(PathBuf, Stamp, bool)> = {
            let v = self.verified.lock().map_err(|_| io::Error::other("cache stamp lock poisoned"))?;
            v.iter().map(|(p, (s, touched))| (p.clone(), *s, *touched)).collect()
        };
        let (used, earlier): (Vec<_>, Vec<_>) = known.into_iter().partition(|(_, _, touched)| *touched);
        let used = used.into_iter().map(|(p, s, _)| (p, s));
        let earlier = earlier.into_iter().map(|(p, s, _)| (p, s));
        let mut keep = Vec::new();
        if linked {
            for (p, old) in used {
                if let Ok(meta) = fs::metadata(&p) {
                    let now = Stamp::of(&meta);
                    if (Stamp { ctime_ns: now.ctime_ns, ..old }) == now {
                        keep.push((p, now));
                    }
                }
            }
        } else {
            // Nothing linked since each was checked: the stats are as checked.
            keep.extend(used);
        }
        for (p, old) in earlier {
            if fs::metadata(&p).is_ok_and(|meta| Stamp::of(&meta) == old) {
                keep.push((p, old));
            }
        }
        keep.sort_by(|a, b| a.0.cmp(&b.0));
        let data = serde_json::to_vec(&keep).map_err(io::Error::other)?;
        // A no-op build changes nothing: skip the write (and its fsync).
        if fs::read(path).is_ok_and(|old| old == data) {
            return Ok(());
        }
        write_atomic(path, &data, false)
    }

    fn record(exec_path: &str, digest: String, executable: bool, stamp: Stamp) -> OutputRecord {
        let mut r = OutputRecord {
            exec_path: exec_path.to_owned(),
            digest,
            size: stamp.size,
            executable,
            cas_mtime_ns: 0,
            cas_ctime_ns: 0,
            cas_ino: 0,
            cas_dev: 0,
            tree: None,
        };
        stamp.set(&mut r);
        r
    }

    /// Moves a finished file into the CAS and returns its record. `known` is the digest when
    /// the action computed it while writing (so a large output is not read twice).
    ///
    /// The new file always replaces an entry already there (atomically): that entry's bytes
    /// are not trusted without hashing them, and a rename costs less than a hash. Across
    /// filesystems the file is copied beside the entry and renamed.
    ///
    /// Entries are not fsynced one by one: a crash can lose at most entries whose stat then
    /// no longer matches their record, and those are hashed again (SIGKILL loses nothing, the
    /// page cache survives it); syncing every file made large layers 3x slower.
    ///
    /// The file's inode becomes the CAS entry (renamed, made read-only), so it must be the
    /// action's own: a file with other links (an action that hardlinked an input, such as a
    /// user's source file, into its output) is first replaced by a private copy, and the other
    /// names keep their inode, mode and bytes.
    pub fn insert(&self, file: &Path, exec_path: &str, executable: bool, known: Option<&str>) -> io::Result<OutputRecord> {
        self.note_links();
        let mut meta = fs::symlink_metadata(file).map_err(|e| with_path(e, "reading", file))?;
        if meta.nlink() > 1 {
            let copy = super::fs::temp_sibling(file);
            let replaced = fs::copy(file, &copy).and_then(|_| fs::rename(&copy, file));
            if replaced.is_err() {
                let _ = fs::remove_file(&copy);
            }
            replaced?;
            meta = fs::symlink_metadata(file).map_err(|e| with_path(e, "reading", file))?;
        }
        let (digest, size) = match known {
            Some(d) => (d.to_owned(), meta.len()),
            None => file_sha256(file).map_err(|e| with_path(e, "hashing", file))?,
        };
        let dest = self.cas_path(&digest, executable);
        let mode = if executable { 0o555 } else { 0o444 };
        if meta.permissions().mode() & 0o7777 != mode {
            fs::set_permissions(file, fs::Permissions::from_mode(mode)).map_err(|e| with_path(e, "setting the mode of", file))?;
        }
        move_file(file, &dest)?;
        let meta = fs::metadata(&dest).map_err(|e| with_path(e, "reading", &dest))?;
        if meta.len() != size {
            return Err(io::Error::other(format!("{} changed while it was stored: {size} bytes became {}", dest.display(), meta.len())));
        }
        let stamp = Stamp::of(&meta);
        self.remember(dest, stamp, true);
        Ok(Self::record(exec_path, digest, executable, stamp))
    }

    /// The record of a file already in the CAS (a directory output's member that is a hardlink
    /// of an input), without hashing it again.
    pub fn existing(&self, digest: &str, exec_path: &str, executable: bool) -> Option<OutputRecord> {
        let meta = fs::metadata(self.cas_path(digest, executable)).ok()?;
        Some(Self::record(exec_path, digest.to_owned(), executable, Stamp::of(&meta)))
    }

    /// Whether the CAS still holds the output exactly as recorded; hashes it when its stat
    /// moved, and removes it when its content is wrong.
    pub fn check(&self, out: &mut OutputRecord) -> Check {
        let path = self.cas_path(&out.digest, out.executable);
        let Ok(meta) = fs::metadata(&path) else { return Check::Bad };
        let now = Stamp::of(&meta);
        if now.size != out.size {
            let _ = fs::remove_file(&path);
            return Check::Bad;
        }
        if now == Stamp::recorded(out) {
            self.remember(path, now, false);
            return Check::Same;
        }
        self.read_stamps();
        let known_good = self.verified.lock().ok().and_then(|v| v.get(&path).map(|(s, _)| *s)) == Some(now);
        let hash_ok = || {
            self.rehashed.fetch_add(now.size, std::sync::atomic::Ordering::Relaxed);
            file_sha256(&path).is_ok_and(|(d, size)| d == out.digest && size == out.size)
        };
        if known_good || hash_ok() {
            self.remember(path, now, true);
            now.set(out);
            return Check::Restamped;
        }
        let _ = fs::remove_file(&path);
        Check::Bad
    }

    /// Bytes [`Cache::check`] has read so far to verify CAS files whose stat had moved.
    pub fn bytes_rehashed(&self) -> u64 {
        self.rehashed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes the CAS file's current stat into the record, after this process linked it
    /// (linking moves ctime) right after storing or checking it.
    pub fn restamp(&self, out: &mut OutputRecord) {
        self.note_links();
        let path = self.cas_path(&out.digest, out.executable);
        if let Ok(meta) = fs::metadata(&path) {
            let now = Stamp::of(&meta);
            if now.size == out.size {
                self.remember(path, now, true);
                now.set(out);
            }
        }
    }

    /// The record for `key`, if there is a usable one, and whether it was restamped (and
    /// should be stored again, so its files are not hashed next time).
    pub fn lookup(&self, key: &str) -> Option<(ActionRecord, bool)> {
        let key_hex = key;
        let key = key_bytes(key);
        let found = self.index_read()?.get(&key);
        let (mut record, last_use) = match found {
            Some(found) => found,
            None => return self.lookup_legacy(key_hex),
        };
        let mut restamped = false;
        for out in &mut record.outputs {
            match self.check(out) {
                Check::Same => {}
                Check::Restamped => restamped = true,
                Check::Bad => return None,
            }
        }
        // The last use, for eviction: renewed in memory, written once at the end of the
        // command ([`Cache::flush`]).
        let now = unix_now();
        if now.saturating_sub(last_use) > TOUCH_AFTER.as_nanos() as u64
            && let Ok(mut index) = self.index.write()
        {
            index.touch(&key, now);
        }
        Some((record, restamped))
    }

    /// The index for lookups (read once, by the first: lookups then share it).
    fn index_read(&self) -> Option<RwLockReadGuard<'_, Index>> {
        {
            let index = self.index.read().ok()?;
            if index.is_loaded() {
                return Some(index);
            }
        }
        self.index.write().ok()?.load();
        self.index.read().ok()
    }

    /// A record in the one-file-per-action layout of ocib before the index
    /// (`ac/<2 hex>/<key>.json`), moved into the index when it is still good: a cache
    /// survives an upgrade. Only looked for when `ac/` still has such directories.
    fn lookup_legacy(&self, key: &str) -> Option<(ActionRecord, bool)> {
        let legacy = *self.legacy.get_or_init(|| {
            fs::read_dir(self.root.join("ac")).into_iter().flatten().flatten().any(|e| e.file_name().len() == 2 && e.path().is_dir())
        });
        if !legacy {
            return None;
        }
        let path = self.root.join("ac").join(key.get(..2)?).join(format!("{key}.json"));
        let mut record: ActionRecord = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
        for out in &mut record.outputs {
            if self.check(out) == Check::Bad {
                return None;
            }
        }
        let _ = self.store(key, &record);
        Some((record, false))
    }

    /// Records `key`'s outputs (in the index file before this returns).
    pub fn store(&self, key: &str, record: &ActionRecord) -> io::Result<()> {
        self.store_used(key, record, unix_now())
    }

    fn store_used(&self, key: &str, record: &ActionRecord, last_use: u64) -> io::Result<()> {
        let mut index = self.index.write().map_err(|_| io::Error::other("action cache index lock poisoned"))?;
        index.put(&key_bytes(key), record, last_use)
    }

    /// Writes what the index holds only in memory (renewed last uses), at the end of a
    /// command; compacts it when most of it is replaced records.
    pub fn flush(&self) -> io::Result<()> {
        self.index.write().map_err(|_| io::Error::other("action cache index lock poisoned"))?.flush()
    }

    /// Hashes every CAS file, removes those whose content does not match their name, and
    /// removes temporary files left by processes that no longer exist (`clean --verify`).
    pub fn verify_all(&self) -> io::Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let cas = self.root.join("cas");
        for entry in walkdir::WalkDir::new(&cas).min_depth(2).max_depth(2) {
            let entry = entry.map_err(|e| io::Error::other(format!("reading {}: {e}", cas.display())))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            let name = entry.file_name().to_string_lossy();
            if let Some(pid) = temp_owner(&name) {
                if !pid_alive(pid) {
                    fs::remove_file(path).map_err(|e| with_path(e, "removing", path))?;
                    report.stale_temps += 1;
                }
                continue;
            }
            let digest = name.strip_suffix(".x").unwrap_or(&name);
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            report.checked += 1;
            let (actual, _) = file_sha256(path).map_err(|e| with_path(e, "hashing", path))?;
            if actual != digest {
                fs::remove_file(path).map_err(|e| with_path(e, "removing", path))?;
                report.dropped += 1;
            }
        }
        Ok(report)
    }

    /// Evicts least recently used action records, and the CAS files only they referred to,
    /// until the cache holds at most `max_size` bytes (`--disk_cache_max_size`, `clean --gc`).
    ///
    /// Takes the lease exclusively first: with `wait`, waiting for the other ocib commands
    /// using the cache to finish; without, returning [`Gc::Busy`] if there are any (the last
    /// command to finish evicts). Consumes the cache: its shared lease is given up either way.
    pub fn collect_garbage(self, max_size: u64, wait: bool) -> io::Result<Gc> {
        if !self.lock_exclusively(wait)? {
            return Ok(Gc::Busy);
        }
        self.evict(max_size).map(Gc::Done)
    }

    /// Turns the shared lease into an exclusive one: false if other commands hold it and
    /// `wait` is not set, else true once they let go.
    fn lock_exclusively(&self, wait: bool) -> io::Result<bool> {
        let lease_path = self.root.join("lease");
        match self.lease.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) if wait => {
                eprintln!("INFO: another ocib command is using the cache at {}; waiting for it to finish...", self.root.display());
                self.lease.lock().map_err(|e| with_path(e, "locking", &lease_path))?;
                Ok(true)
            }
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(with_path(e, "locking", &lease_path)),
        }
    }

    /// [`Cache::collect_garbage`] with the lease held exclusively.
    fn evict(&self, max_size: u64) -> io::Result<GcReport> {
        let mut report = GcReport::default();
        // Every CAS file with its size; temporary files of dead processes go at once.
        let mut cas: HashMap<PathBuf, CasFile> = HashMap::new();
        let cas_dir = self.root.join("cas");
        for entry in walkdir::WalkDir::new(&cas_dir).min_depth(2).max_depth(2) {
            let entry = entry.map_err(|e| io::Error::other(format!("reading {}: {e}", cas_dir.display())))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if temp_owner(&name).is_some_and(|pid| !pid_alive(pid)) {
                fs::remove_file(entry.path()).map_err(|e| with_path(e, "removing", entry.path()))?;
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            cas.insert(entry.into_path(), CasFile { size, refs: 0 });
        }
        // Every action record with its last use and the CAS files it names.
        let mut index = self.index.write().map_err(|_| io::Error::other("action cache index lock poisoned"))?;
        let listed = index.entries();
        let mut records: Vec<(u64, Key, u64, Vec<PathBuf>)> = Vec::with_capacity(listed.len());
        for entry in listed {
            let files: Vec<PathBuf> =
                entry.record.map(|r| r.outputs.iter().map(|o| self.cas_path(&o.digest, o.executable)).collect()).unwrap_or_default();
            for f in &files {
                if let Some(c) = cas.get_mut(f) {
                    c.refs += 1;
                }
            }
            records.push((entry.last_use, entry.key, entry.size, files));
        }
        // One file per record, as ocib wrote them before the index: never read any more.
        let ac_dir = self.root.join("ac");
        let mut legacy: Vec<(PathBuf, u64)> = Vec::new();
        for entry in walkdir::WalkDir::new(&ac_dir).min_depth(2).max_depth(2).into_iter().flatten() {
            if entry.file_type().is_file() {
                legacy.push((entry.path().to_path_buf(), entry.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
        let mut cas_total: u64 = cas.values().map(|c| c.size).sum();
        let mut index_live: u64 = records.iter().map(|r| r.2).sum();
        let index_size = |live: u64| if live == 0 { 0 } else { live + ac_index::MAGIC_LEN };
        let mut total = cas_total + index.size() + legacy.iter().map(|l| l.1).sum::<u64>();
        report.size_before = total;
        if total > max_size {
            for (path, _) in legacy {
                fs::remove_file(&path).map_err(|e| with_path(e, "removing", &path))?;
            }
            // CAS files no record names can never be looked up again.
            let mut orphans: Vec<(&PathBuf, u64)> = cas.iter().filter(|(_, c)| c.refs == 0).map(|(p, c)| (p, c.size)).collect();
            orphans.sort();
            for (path, size) in orphans {
                fs::remove_file(path).map_err(|e| with_path(e, "removing", path))?;
                cas_total -= size;
                report.files_evicted += 1;
            }
            total = cas_total + index_size(index_live);
            // Then the least recently used records (ties in key order, so runs agree).
            records.sort();
            let mut evicted = std::collections::HashSet::new();
            for (_, key, size, files) in records {
                if total <= max_size {
                    break;
                }
                evicted.insert(key);
                index_live -= size;
                report.records_evicted += 1;
                for f in files {
                    let Some(c) = cas.get_mut(&f) else { continue };
                    c.refs = c.refs.saturating_sub(1);
                    if c.refs == 0 {
                        let size = c.size;
                        cas.remove(&f);
                        match fs::remove_file(&f) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(with_path(e, "removing", &f)),
                        }
                        cas_total -= size;
                        report.files_evicted += 1;
                    }
                }
                total = cas_total + index_size(index_live);
            }
            // The records left, without the replaced ones.
            total = cas_total + index.retain(|k| !evicted.contains(k))?;
        }
        report.size_after = total;
        Ok(report)
    }

    /// Removes everything (`clean --expunge`), once no other ocib command is using the cache.
    pub fn expunge(&self) -> io::Result<()> {
        self.lock_exclusively(true)?;
        for sub in ["cas", "ac"] {
            let dir = self.root.join(sub);
            if dir.exists() {
                make_writable(&dir);
                fs::remove_dir_all(&dir)?;
            }
        }
        Ok(())
    }
}

/// Nanoseconds since the epoch (0 if the clock is before it), as record last uses are kept:
/// commands a second apart must not tie.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Read-only files inside read-only trees cannot always be removed; restore write bits first.
pub fn make_writable(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if let Ok(meta) = entry.metadata() {
            let mut perms = meta.permissions();
            if meta.is_dir() {
                perms.set_mode(perms.mode() | 0o700);
                let _ = fs::set_permissions(entry.path(), perms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// File timestamps advance by the kernel's clock tick: let one pass so a change is seen.
    fn tick() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    fn stored(cache: &Cache, dir: &Path, content: &[u8]) -> OutputRecord {
        let f = dir.join("out");
        fs::write(&f, content).unwrap();
        cache.insert(&f, "ocib-out/bin/out", false, None).unwrap()
    }

    #[test]
    fn a_cas_file_changed_in_place_or_replaced_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        let mut rec = stored(&cache, dir.path(), b"hello");
        assert_eq!(cache.check(&mut rec.clone()), Check::Same);
        let path = cache.cas_path(&rec.digest, false);
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        // Same size, mtime restored: only ctime tells.
        tick();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, b"jello").unwrap();
        fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        assert_eq!(cache.check(&mut rec), Check::Bad);
        assert!(!path.exists(), "the bad entry is removed");

        // A good entry whose stat moved (a hardlink made elsewhere) is restamped once.
        let mut rec = stored(&cache, dir.path(), b"hello");
        let path = cache.cas_path(&rec.digest, false);
        tick();
        fs::hard_link(&path, dir.path().join("link")).unwrap();
        let fresh = Cache::open(&dir.path().join("cache")).unwrap();
        assert_eq!(fresh.check(&mut rec), Check::Restamped);
        assert_eq!(fresh.check(&mut rec), Check::Same);
    }

    /// The stats a command keeps for the next one survive a command that did not use those
    /// files: a reload after an unrelated build finds its unchanged layer by a stat, without
    /// reading it. A kept stat whose file moved since is dropped (the file is hashed again).
    #[test]
    fn kept_stats_survive_a_command_that_did_not_use_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let stamps = dir.path().join("cas_stamps.json");
        let open = || {
            let cache = Cache::open(&root).unwrap();
            cache.load_stamps(&stamps);
            cache
        };
        // The layer's action stores its output; then an image action links it, so the
        // record's stat is stale and only the kept stats know the new ctime.
        let first = open();
        let layer = stored(&first, dir.path(), b"layer bytes");
        first.store(&key(1), &ActionRecord { mnemonic: "PkgTar".into(), outputs: vec![layer.clone()] }).unwrap();
        tick();
        let image_link = dir.path().join("image-link");
        fs::hard_link(first.cas_path(&layer.digest, false), &image_link).unwrap();
        first.note_links();
        first.save_stamps(&stamps).unwrap();
        drop(first);
        // An unrelated build.
        let unrelated = open();
        stored(&unrelated, dir.path(), b"something else");
        unrelated.save_stamps(&stamps).unwrap();
        drop(unrelated);
        // The reload: a hit that takes the new stat without hashing the layer.
        let reload = open();
        let (record, restamped) = reload.lookup(&key(1)).expect("a hit");
        assert!(restamped, "the record takes the stat the link left");
        assert_eq!(record.outputs[0].digest, layer.digest);
        assert_eq!(reload.bytes_rehashed(), 0, "the layer was not read");
        drop(reload);
        // The layer's stat moves again (the link goes) in a command that does not check it:
        // the kept stat is dropped, and the next lookup reads the layer.
        tick();
        fs::remove_file(&image_link).unwrap();
        let other = open();
        other.note_links();
        other.save_stamps(&stamps).unwrap();
        drop(other);
        let later = open();
        assert!(later.lookup(&key(1)).is_some_and(|(_, restamped)| restamped));
        assert_eq!(later.bytes_rehashed(), layer.size, "an unknown stat is verified by reading the file");
    }

    #[test]
    fn verify_all_drops_only_corrupted_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        let good = stored(&cache, dir.path(), b"good");
        let bad = stored(&cache, dir.path(), b"bad!");
        let bad_path = cache.cas_path(&bad.digest, false);
        fs::remove_file(&bad_path).unwrap();
        fs::write(&bad_path, b"BAD!").unwrap();
        let report = cache.verify_all().unwrap();
        assert_eq!(report, VerifyReport { checked: 2, dropped: 1, stale_temps: 0 });
        assert!(cache.cas_path(&good.digest, false).exists());
        assert!(!bad_path.exists());
    }

    #[test]
    fn insert_never_takes_over_a_file_with_other_links() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        // A user's file, hardlinked into an action's output.
        let theirs = dir.path().join("vendor.tar");
        fs::write(&theirs, b"user bytes").unwrap();
        fs::set_permissions(&theirs, fs::Permissions::from_mode(0o640)).unwrap();
        let output = dir.path().join("out.tar");
        fs::hard_link(&theirs, &output).unwrap();

        let record = cache.insert(&output, "out.tar", false, None).unwrap();
        let meta = fs::metadata(&theirs).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "the user's file keeps its mode");
        assert_eq!(meta.nlink(), 1, "the CAS entry is not the user's inode");
        let cas = cache.cas_path(&record.digest, false);
        assert_ne!(fs::metadata(&cas).unwrap().ino(), meta.ino());
        assert_eq!(fs::read(&cas).unwrap(), b"user bytes");
        assert_eq!(fs::metadata(&cas).unwrap().permissions().mode() & 0o222, 0, "CAS files are read-only");
    }

    /// Stores an action whose outputs have `contents`, last used `age_secs` ago.
    fn action(cache: &Cache, dir: &Path, key: &str, contents: &[&[u8]], age_secs: u64) {
        let outputs = contents.iter().map(|c| stored(cache, dir, c)).collect();
        cache.store_used(key, &ActionRecord { mnemonic: "Test".into(), outputs }, unix_now() - age_secs * 1_000_000_000).unwrap();
    }

    /// The last use of `key`'s record, as a new command sees it.
    fn last_use(root: &Path, key: &str) -> Option<u64> {
        let cache = Cache::open(root).unwrap();
        let index = cache.index_read().unwrap();
        index.get(&key_bytes(key)).map(|(_, t)| t)
    }

    fn key(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn cas_exists(cache: &Cache, content: &[u8]) -> bool {
        cache.cas_path(&super::super::digest::sha256_hex(content), false).exists()
    }

    #[test]
    fn eviction_removes_least_recently_used_records_first_and_keeps_shared_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let cache = Cache::open(&root).unwrap();
        let big = [b'o'; 4000];
        let mid = [b'm'; 4000];
        let new = [b'n'; 4000];
        action(&cache, dir.path(), &key(1), &[&big, b"shared"], 3000);
        action(&cache, dir.path(), &key(2), &[&mid], 2000);
        action(&cache, dir.path(), &key(3), &[&new, b"shared"], 1000);
        // An orphan (no record names it) goes first, whatever its age.
        let orphan = stored(&cache, dir.path(), b"orphan");
        drop(cache);
        let GcReport { size_before, .. } = match Cache::open(&root).unwrap().collect_garbage(u64::MAX, false).unwrap() {
            Gc::Done(r) => r,
            Gc::Busy => panic!("busy"),
        };
        assert!(Cache::open(&root).unwrap().cas_path(&orphan.digest, false).exists(), "under the limit nothing is evicted");

        // Room for about two of the three 4 KB actions: the oldest one goes.
        let limit = size_before - 4000;
        let report = match Cache::open(&root).unwrap().collect_garbage(limit, false).unwrap() {
            Gc::Done(r) => r,
            Gc::Busy => panic!("busy"),
        };
        assert!(report.size_after <= limit, "{report:?}");
        assert_eq!(report.records_evicted, 1, "{report:?}");
        let cache = Cache::open(&root).unwrap();
        assert!(last_use(&root, &key(1)).is_none() && !cas_exists(&cache, &big), "the least recently used action is gone");
        assert!(cas_exists(&cache, b"shared"), "a file a kept record names stays");
        assert!(!cas_exists(&cache, b"orphan"));
        assert!(last_use(&root, &key(3)).is_some());
        assert!(cache.lookup(&key(2)).is_some());
        cache.flush().unwrap();

        // The hit renewed record 2: now the untouched 3 is the oldest.
        drop(cache);
        let report = match Cache::open(&root).unwrap().collect_garbage(report.size_after - 1, false).unwrap() {
            Gc::Done(r) => r,
            Gc::Busy => panic!("busy"),
        };
        assert_eq!(report.records_evicted, 1);
        let cache = Cache::open(&root).unwrap();
        assert!(cache.lookup(&key(2)).is_some(), "2 was used last");
        assert!(last_use(&root, &key(3)).is_none() && !cas_exists(&cache, &new) && !cas_exists(&cache, b"shared"));
    }

    #[test]
    fn eviction_waits_for_no_one_and_never_runs_under_another_command() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let running = Cache::open(&root).unwrap();
        action(&running, dir.path(), &key(7), &[b"in use"], 5000);
        // Another command (here: another handle) wants everything gone.
        assert_eq!(Cache::open(&root).unwrap().collect_garbage(0, false).unwrap(), Gc::Busy);
        assert!(running.lookup(&key(7)).is_some(), "the running command's entry survives");
        drop(running);
        match Cache::open(&root).unwrap().collect_garbage(0, true).unwrap() {
            Gc::Done(report) => assert_eq!((report.size_after, report.records_evicted, report.files_evicted), (0, 1, 1)),
            Gc::Busy => panic!("nobody else holds the cache"),
        }
    }

    #[test]
    fn a_lookup_renews_only_a_record_not_used_for_a_while() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let cache = Cache::open(&root).unwrap();
        action(&cache, dir.path(), &key(1), &[b"a"], 3600);
        action(&cache, dir.path(), &key(2), &[b"b"], 1);
        let recent = last_use(&root, &key(2)).unwrap();
        let index_len = || fs::metadata(root.join("ac/index")).unwrap().len();
        let before = index_len();
        let cache = Cache::open(&root).unwrap();
        assert!(cache.lookup(&key(1)).is_some() && cache.lookup(&key(2)).is_some());
        cache.flush().unwrap();
        assert!(unix_now() - last_use(&root, &key(1)).unwrap() < TOUCH_AFTER.as_nanos() as u64, "an hour-old record is renewed");
        assert_eq!(last_use(&root, &key(2)).unwrap(), recent, "a record used a second ago is not written again");
        // A no-op build run again at once writes nothing.
        let after = index_len();
        assert!(after > before);
        let cache = Cache::open(&root).unwrap();
        assert!(cache.lookup(&key(1)).is_some() && cache.lookup(&key(2)).is_some());
        cache.flush().unwrap();
        assert_eq!(index_len(), after);
    }

    /// A cache written by ocib before the index keeps serving its records, which move into
    /// the index.
    #[test]
    fn records_of_the_file_per_action_layout_are_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let cache = Cache::open(&root).unwrap();
        let record = ActionRecord { mnemonic: "Old".into(), outputs: vec![stored(&cache, dir.path(), b"old")] };
        let k = key(5);
        let legacy = root.join("ac").join(&k[..2]).join(format!("{k}.json"));
        fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        fs::write(&legacy, serde_json::to_vec(&record).unwrap()).unwrap();
        let cache = Cache::open(&root).unwrap();
        assert_eq!(cache.lookup(&k).map(|(r, _)| r), Some(record.clone()));
        assert!(last_use(&root, &k).is_some(), "moved into the index");
        assert!(cache.lookup(&key(6)).is_none());
    }
}
