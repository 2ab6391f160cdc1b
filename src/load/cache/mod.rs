//! The persistent load cache: evaluated packages kept on disk (`ocib-out/load-cache`) between
//! commands, so a repeated `query` re-evaluates only the packages whose inputs changed, as
//! Bazel's Skyframe does in its server, without a server.
//!
//! A package's entry is keyed by everything its evaluation read:
//! - the BUILD file (content digest) and the absence of the names preferred over it;
//! - every .bzl file it loaded, transitively (content digests), and the BUILD files that make
//!   their directories packages; files of ocib's embedded prelude are covered by the binary's
//!   identity, in the cache-wide key;
//! - its `glob()` listing: the names and kinds of the files under the package directory, with
//!   the status of every directory walked;
//! - the cache-wide key: ocib's version and binary, the evaluation limits, the workspace root,
//!   name, `.bazelignore`, repository table (bzlmod or WORKSPACE, rule set versions) and
//!   whether a BUILD prelude exists. Any change there drops the whole cache.
//!
//! Checking an entry stats its files; only a file whose status changed (or was modified too
//! recently to tell, git's "racily clean" case) is read and hashed again, and only a
//! directory whose status changed is listed again. An entry whose inputs still match is
//! decoded instead of evaluated.
//!
//! Packages whose evaluation printed anything (`print()`, a warning about a stubbed
//! symbol) or that hold Starlark `rule()` definitions (live interpreter values) are not
//! stored: they are evaluated each time, so their output and values are as before.
//!
//! One file, written to a temporary sibling and renamed, with a BLAKE3 digest of its content
//! at the end: a torn, truncated or corrupt file is ignored (the packages are evaluated) and
//! says why under `OCIB_DEBUG_LOAD_CACHE=1`, never a wrong answer.

pub(crate) mod codec;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::Metadata;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::graph::Package;
use crate::graph::label::PackageId;
use crate::graph::schema::RuleSchema;
use crate::workspace::{BUILD_FILE_NAMES, Workspace};

use codec::{Decoder, Depth, Reader, put_u64};

/// The file's first bytes: the format and its version (bumped when the encoding changes).
const MAGIC: &[u8; 8] = b"OCIBLC\x00\x01";

/// A file modified this close to the start of a command (or later) may change again
/// without its status changing (timestamps are coarser than the clock): its content is
/// checked again next time rather than trusted.
pub const RACY_NS: i64 = 2_000_000_000;

/// Whether `OCIB_DEBUG_LOAD_CACHE` asks for notes on stderr.
fn debug_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("OCIB_DEBUG_LOAD_CACHE").is_some_and(|v| !v.is_empty() && v != "0"))
}

/// Prints a note under `OCIB_DEBUG_LOAD_CACHE=1`.
pub(crate) fn note(message: impl FnOnce() -> String) {
    if debug_enabled() {
        eprintln!("INFO: load cache: {}", message());
    }
}

/// What `stat` says of a file or directory: a change of any of these is a change of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sig {
    dev: u64,
    ino: u64,
    size: u64,
    mode: u32,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl Sig {
    pub fn of(m: &Metadata) -> Sig {
        Sig {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mode: m.mode(),
            mtime_ns: m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec()),
            ctime_ns: m.ctime().saturating_mul(1_000_000_000).saturating_add(m.ctime_nsec()),
        }
    }

    /// The fields as numbers (device, inode, size, mode, mtime, ctime), for storing.
    pub fn fields(&self) -> [u64; 6] {
        [self.dev, self.ino, self.size, u64::from(self.mode), self.mtime_ns as u64, self.ctime_ns as u64]
    }

    /// When the file last changed: the later of its modification and status-change times (ns).
    pub fn changed_ns(&self) -> i64 {
        self.mtime_ns.max(self.ctime_ns)
    }

    /// The status [`Sig::fields`] gave.
    pub fn from_fields(f: [u64; 6]) -> Sig {
        Sig { dev: f[0], ino: f[1], size: f[2], mode: f[3] as u32, mtime_ns: f[4] as i64, ctime_ns: f[5] as i64 }
    }
}

/// What an input record asserts about its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Not a file (a BUILD file name preferred over the one used, or a missing one).
    Absent,
    /// A file with this content.
    File,
    /// A file, whatever its content (a BUILD file that makes a .bzl's directory a package).
    Present,
    /// A directory a glob walked: unchanged while its status is (else it is listed again).
    Dir,
}

/// One input of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    pub path: PathBuf,
    pub kind: Kind,
    pub sig: Sig,
    /// Modified too close to when it was seen: check the content, not the status.
    pub racy: bool,
    /// The content's BLAKE3 digest (files only).
    pub digest: [u8; 32],
}

/// A package's `glob()` listing: its digest and the directories walked.
#[derive(Debug, Clone)]
pub struct GlobInput {
    pub digest: [u8; 32],
    pub dirs: Vec<Record>,
}

/// The inputs of one evaluated package, as the loader observed them.
#[derive(Debug, Default)]
pub struct Inputs {
    pub files: Vec<Record>,
    pub glob: Option<GlobInput>,
}

/// An entry read from the cache file.
struct Entry {
    inputs: Vec<u32>,
    glob: Option<([u8; 32], Vec<u32>)>,
    payload: Range<usize>,
}

/// The cache file as read at the start of the command.
struct Stored {
    data: Vec<u8>,
    records: Vec<Record>,
    entries: HashMap<PackageId, Entry>,
    /// Package discovery below a prefix: the directories read and the packages found.
    discoveries: HashMap<PackageId, (Vec<u32>, Vec<String>)>,
    /// Each record checked at most once per command: `Some` (with a refreshed status) if
    /// it still holds.
    checked: Vec<OnceLock<Option<Record>>>,
}

/// An entry to write: inputs and the encoded package.
struct Fresh {
    inputs: Vec<Record>,
    glob: Option<GlobInput>,
    payload: Vec<u8>,
}

/// A stored entry's inputs as checked again in this command.
type Refreshed = (Vec<Record>, Option<GlobInput>);

/// An entry as written: inputs, the glob listing (digest, directories) and the payload.
type Outgoing<'a> = (Vec<&'a Record>, Option<([u8; 32], Vec<&'a Record>)>, &'a [u8]);

/// A walk for packages: the directories read and the packages found (paths in the repository).
type Discovery = (Vec<Record>, Vec<String>);

/// The load cache of one workspace for one command.
pub struct LoadCache {
    path: PathBuf,
    key: [u8; 32],
    /// When the command started, in ns since the epoch (for [`RACY_NS`]).
    started_ns: i64,
    stored: Option<Stored>,
    decoder: Decoder,
    /// How much of a stored package is decoded ([`LoadCache::decode_graph_only`]).
    depth: Depth,
    schemas: HashMap<String, Arc<RuleSchema>>,
    /// Packages evaluated (and storable) in this command.
    fresh: Mutex<HashMap<PackageId, Fresh>>,
    /// Stored packages that still hold but whose records were refreshed (a racy file checked
    /// by content, a directory listed again with the same result).
    refreshed: Mutex<HashMap<PackageId, Refreshed>>,
    /// Stored packages found out of date.
    stale: Mutex<HashSet<PackageId>>,
    /// Package discoveries made in this command (prefix → directories read, packages found).
    discovered: Mutex<HashMap<PackageId, Discovery>>,
    dirty: AtomicBool,
    hits: AtomicUsize,
    evaluated: AtomicUsize,
}

/// Now, in ns since the epoch (for [`RACY_NS`]).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Feeds `bytes` to `h` after its length, so that no two different sequences of fields hash
/// the same bytes: how every identity of the load cache (and of build answers) is hashed.
pub fn hash_field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The cache-wide key: everything that changes how any package evaluates. None if ocib's
/// own binary cannot be identified (then there is no cache).
pub fn global_key(ws: &Workspace, limits: super::EvalLimits) -> Option<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| hash_field(&mut h, bytes);
    field(MAGIC);
    field(env!("CARGO_PKG_VERSION").as_bytes());
    // The binary's identity stands for the embedded prelude and every builtin: a rebuilt
    // ocib starts with an empty cache.
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(&exe).ok()?;
    field(format!("{}{:?}", exe.display(), Sig::of(&meta)).as_bytes());
    field(format!("{limits:?}").as_bytes());
    field(ws.root.to_string_lossy().as_bytes());
    field(ws.name.as_bytes());
    field(format!("{:?}", ws.ignored).as_bytes());
    field(format!("{:?}", ws.rule_set_versions).as_bytes());
    field(ws.repos.fingerprint().as_bytes());
    // Bazel's BUILD prelude applies to every package when it exists (its content is an input
    // of each package that loads it, like any .bzl file).
    let prelude = ws.root.join("tools/build_rules");
    let present: Vec<bool> = std::iter::once(prelude.join("prelude_bazel").is_file())
        .chain(BUILD_FILE_NAMES.iter().map(|n| prelude.join(n).is_file()))
        .collect();
    field(format!("{present:?}").as_bytes());
    Some(*h.finalize().as_bytes())
}

impl LoadCache {
    /// The cache of `ws` under `key` ([`global_key`]); a missing, unreadable, corrupt or
    /// differently keyed file gives an empty cache. `schemas` is the rule registry's table.
    pub fn open(ws: &Workspace, key: [u8; 32], schemas: &HashMap<String, Arc<RuleSchema>>) -> LoadCache {
        let started_ns = now_ns();
        let path = ws.root.join("ocib-out").join("load-cache");
        let stored = match std::fs::read(&path) {
            Ok(data) => match parse(data, &key) {
                Ok(stored) => Some(stored),
                Err(why) => {
                    note(|| format!("ignoring {}: {why}", path.display()));
                    None
                }
            },
            Err(e) => {
                note(|| format!("no cache read from {}: {e}", path.display()));
                None
            }
        };
        LoadCache {
            path,
            key,
            started_ns,
            stored,
            decoder: Decoder::new(schemas.clone()),
            depth: Depth::Full,
            schemas: schemas.clone(),
            fresh: Mutex::default(),
            refreshed: Mutex::default(),
            stale: Mutex::default(),
            discovered: Mutex::default(),
            dirty: AtomicBool::new(false),
            hits: AtomicUsize::new(0),
            evaluated: AtomicUsize::new(0),
        }
    }

    /// Stored packages are decoded as their target graph only (`Depth::Graph`):
    /// for a command that reads nothing else of them. The file keeps every package whole.
    pub fn decode_graph_only(&mut self) {
        self.depth = Depth::Graph;
    }

    fn record(&self, path: PathBuf, kind: Kind, sig: Sig, digest: [u8; 32]) -> Record {
        let racy = sig.changed_ns() >= self.started_ns - RACY_NS;
        Record { path, kind, sig, racy, digest }
    }

    /// The record of a file read for evaluation: `meta` taken before it was read, `bytes` its
    /// content.
    pub fn file_record(&self, path: PathBuf, meta: &Metadata, bytes: &[u8]) -> Record {
        self.record(path, Kind::File, Sig::of(meta), digest(bytes))
    }

    /// Whether `path` is a file, as a record.
    pub fn presence_record(&self, path: PathBuf) -> Record {
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => self.record(path, Kind::Present, Sig::of(&m), [0; 32]),
            _ => self.record(path, Kind::Absent, Sig::default(), [0; 32]),
        }
    }

    /// The input of a glob listing: its digest and the directories walked with their status
    /// as seen before they were read.
    pub fn glob_input(&self, digest: [u8; 32], dirs: &[(PathBuf, Sig)]) -> GlobInput {
        GlobInput { digest, dirs: dirs.iter().map(|(p, s)| self.record(p.clone(), Kind::Dir, *s, [0; 32])).collect() }
    }

    /// Whether a stored record still holds; a file whose status changed is hashed again.
    fn check(&self, rec: &Record) -> Option<Record> {
        match rec.kind {
            Kind::Absent => (!rec.path.is_file()).then(|| rec.clone()),
            Kind::Present => rec.path.is_file().then(|| rec.clone()),
            Kind::Dir => {
                let meta = std::fs::metadata(&rec.path).ok()?;
                (!rec.racy && Sig::of(&meta) == rec.sig).then(|| rec.clone())
            }
            Kind::File => {
                let meta = std::fs::metadata(&rec.path).ok()?;
                if !meta.is_file() {
                    return None;
                }
                let sig = Sig::of(&meta);
                if !rec.racy && sig == rec.sig {
                    return Some(rec.clone());
                }
                let bytes = std::fs::read(&rec.path).ok()?;
                (digest(&bytes) == rec.digest).then(|| self.record(rec.path.clone(), Kind::File, sig, rec.digest))
            }
        }
    }

    /// The stored package `id`, if its inputs still hold. `list_again` lists the package's
    /// directory again for its glob: the listing's digest and directories, or None.
    pub fn lookup(&self, id: &PackageId, list_again: impl FnOnce() -> Option<([u8; 32], Vec<(PathBuf, Sig)>)>) -> Option<Package> {
        let stored = self.stored.as_ref()?;
        let entry = stored.entries.get(id)?;
        let stale = || {
            self.stale.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone());
            self.dirty.store(true, Ordering::Relaxed);
            None
        };
        let check = |i: u32| stored.checked[i as usize].get_or_init(|| self.check(&stored.records[i as usize])).clone();
        let mut changed = false;
        let mut inputs = Vec::with_capacity(entry.inputs.len());
        for &i in &entry.inputs {
            let Some(now) = check(i) else { return stale() };
            changed |= now != stored.records[i as usize];
            inputs.push(now);
        }
        let mut glob = None;
        if let Some((listing, dirs)) = &entry.glob {
            let same: Option<Vec<Record>> = dirs.iter().map(|&i| check(i)).collect();
            glob = Some(match same {
                Some(dirs) => GlobInput { digest: *listing, dirs },
                None => {
                    let Some((digest, dirs)) = list_again().filter(|(d, _)| d == listing) else { return stale() };
                    changed = true;
                    self.glob_input(digest, &dirs)
                }
            });
        }
        let package = match self.decoder.decode_to(&stored.data[entry.payload.clone()], self.depth) {
            Ok(p) if p.id == *id => p,
            _ => {
                note(|| format!("the entry of {id} does not decode; evaluating it"));
                return stale();
            }
        };
        if changed {
            self.refreshed.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), (inputs, glob));
            self.dirty.store(true, Ordering::Relaxed);
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(package)
    }

    /// The packages below `prefix` as found by an earlier walk, if none of the directories it
    /// read changed since (statted in parallel: one `stat` per directory instead of a read).
    pub fn discovered(&self, prefix: &PackageId) -> Option<Vec<PackageId>> {
        use rayon::prelude::*;
        let stored = self.stored.as_ref()?;
        let (dirs, packages) = stored.discoveries.get(prefix)?;
        let same = dirs.par_iter().all(|&i| {
            let holds = stored.checked[i as usize].get_or_init(|| self.check(&stored.records[i as usize])).is_some();
            if !holds {
                note(|| format!("{} changed (read finding packages below {prefix})", stored.records[i as usize].path.display()));
            }
            holds
        });
        if !same {
            return None;
        }
        Some(packages.iter().map(|p| PackageId::new(prefix.repo.clone(), p.clone())).collect())
    }

    /// Keeps the result of a walk for packages below `prefix` (see [`Self::discovered`]);
    /// false if it cannot be kept.
    pub fn record_discovery(&self, prefix: &PackageId, walked: crate::workspace::Walked, found: &[PackageId]) -> bool {
        if walked.other_inputs || walked.dirs.iter().any(|(p, _)| p.to_str().is_none()) {
            return false;
        }
        let dirs = walked.dirs.into_iter().map(|(p, m)| self.record(p, Kind::Dir, Sig::of(&m), [0; 32])).collect();
        let packages = found.iter().map(|p| p.package.clone()).collect();
        self.discovered.lock().unwrap_or_else(|e| e.into_inner()).insert(prefix.clone(), (dirs, packages));
        self.dirty.store(true, Ordering::Relaxed);
        true
    }

    /// Counts a package evaluated in this command; stores it with its inputs when `inputs` is
    /// given and the package can be encoded.
    pub fn evaluated(&self, package: &Package, inputs: Option<Inputs>) {
        self.evaluated.fetch_add(1, Ordering::Relaxed);
        let Some(inputs) = inputs else { return };
        match codec::encode(package, &self.schemas) {
            Ok(payload) => {
                self.fresh
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(package.id.clone(), Fresh { inputs: inputs.files, glob: inputs.glob, payload });
                self.dirty.store(true, Ordering::Relaxed);
            }
            Err(why) => note(|| format!("{} is not stored: {why:?}", package.id)),
        }
    }

    /// Writes the cache file if anything changed: this command's packages and every stored one
    /// it did not find out of date. Failing to write is only noted (the next command
    /// evaluates again).
    pub fn save(&self) {
        note(|| {
            format!("{} packages evaluated, {} from the cache", self.evaluated.load(Ordering::Relaxed), self.hits.load(Ordering::Relaxed))
        });
        if !self.dirty.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.write() {
            note(|| format!("not written to {}: {e}", self.path.display()));
        }
    }

    fn write(&self) -> std::io::Result<()> {
        let fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        let refreshed = self.refreshed.lock().unwrap_or_else(|e| e.into_inner());
        let stale = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        // Package → (inputs, glob, payload), sorted so equal caches are equal files.
        let mut out: BTreeMap<&PackageId, Outgoing> = BTreeMap::new();
        if let Some(stored) = &self.stored {
            for (id, e) in &stored.entries {
                if fresh.contains_key(id) || stale.contains(id) {
                    continue;
                }
                let payload = &stored.data[e.payload.clone()];
                let value = match refreshed.get(id) {
                    Some((inputs, glob)) => (inputs.iter().collect(), glob.as_ref().map(|g| (g.digest, g.dirs.iter().collect())), payload),
                    None => (
                        e.inputs.iter().map(|&i| &stored.records[i as usize]).collect(),
                        e.glob.as_ref().map(|(d, dirs)| (*d, dirs.iter().map(|&i| &stored.records[i as usize]).collect())),
                        payload,
                    ),
                };
                out.insert(id, value);
            }
        }
        for (id, f) in fresh.iter() {
            out.insert(id, (f.inputs.iter().collect(), f.glob.as_ref().map(|g| (g.digest, g.dirs.iter().collect())), &f.payload));
        }

        let mut index: foldhash::HashMap<&Record, u32> = Default::default();
        let mut records: Vec<&Record> = Vec::new();
        // Sized for the payloads up front (grown by doubling, it was copied over and over).
        let mut entries = Vec::with_capacity(out.values().map(|(inputs, _, payload)| payload.len() + 8 * inputs.len() + 128).sum());
        put_u64(&mut entries, out.len() as u64);
        for (id, (inputs, glob, payload)) in &out {
            put_str(&mut entries, &id.repo);
            put_str(&mut entries, &id.package);
            put_u64(&mut entries, inputs.len() as u64);
            for r in inputs {
                put_u64(&mut entries, intern(r, &mut records, &mut index) as u64);
            }
            match glob {
                None => entries.push(0),
                Some((digest, dirs)) => {
                    entries.push(1);
                    entries.extend_from_slice(digest);
                    put_u64(&mut entries, dirs.len() as u64);
                    for r in dirs {
                        put_u64(&mut entries, intern(r, &mut records, &mut index) as u64);
                    }
                }
            }
            put_u64(&mut entries, payload.len() as u64);
            entries.extend_from_slice(payload);
        }
        let discovered = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        let mut walks: BTreeMap<&PackageId, (Vec<&Record>, &[String])> = BTreeMap::new();
        if let Some(stored) = &self.stored {
            for (prefix, (dirs, packages)) in &stored.discoveries {
                walks.insert(prefix, (dirs.iter().map(|&i| &stored.records[i as usize]).collect(), packages));
            }
        }
        for (prefix, (dirs, packages)) in discovered.iter() {
            walks.insert(prefix, (dirs.iter().collect(), packages));
        }
        put_u64(&mut entries, walks.len() as u64);
        for (prefix, (dirs, packages)) in &walks {
            put_str(&mut entries, &prefix.repo);
            put_str(&mut entries, &prefix.package);
            put_u64(&mut entries, dirs.len() as u64);
            for r in dirs {
                put_u64(&mut entries, intern(r, &mut records, &mut index) as u64);
            }
            put_u64(&mut entries, packages.len() as u64);
            for p in packages.iter() {
                put_str(&mut entries, p);
            }
        }
        // The head (format, key, records) and the entries are written as they are, the
        // checksum over both appended: no third buffer the size of the file (13.6 MB at
        // 5,000 packages, rewritten after every edit).
        let mut data = Vec::with_capacity(64 * records.len() + 128);
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(&self.key);
        put_u64(&mut data, records.len() as u64);
        for r in &records {
            // Only UTF-8 paths are stored (see `storable`).
            put_str(&mut data, &r.path.to_string_lossy());
            data.push(r.kind as u8);
            let s = &r.sig;
            for v in [s.dev, s.ino, s.size, s.mode as u64] {
                put_u64(&mut data, v);
            }
            put_i64(&mut data, s.mtime_ns);
            put_i64(&mut data, s.ctime_ns);
            data.push(r.racy as u8);
            if r.kind == Kind::File {
                data.extend_from_slice(&r.digest);
            }
        }
        let sum = *blake3::Hasher::new().update(&data).update(&entries).finalize().as_bytes();

        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".load-cache.tmp.{}", std::process::id()));
        let written = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            for part in [&data[..], &entries, &sum] {
                std::io::Write::write_all(&mut file, part)?;
            }
            drop(file);
            std::fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        note(|| format!("wrote {} packages ({} bytes) to {}", out.len(), data.len() + entries.len() + sum.len(), self.path.display()));
        Ok(())
    }
}

/// Whether every path of these inputs can be stored (UTF-8).
pub fn storable(inputs: &Inputs) -> bool {
    inputs.files.iter().chain(inputs.glob.iter().flat_map(|g| &g.dirs)).all(|r| r.path.to_str().is_some())
}

fn intern<'r>(r: &'r Record, records: &mut Vec<&'r Record>, index: &mut foldhash::HashMap<&'r Record, u32>) -> u32 {
    *index.entry(r).or_insert_with(|| {
        records.push(r);
        records.len() as u32 - 1
    })
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    codec::put_blob(out, s.as_bytes());
}

/// Reads a cache file: checks its digest and key, then its records and entries (payloads are
/// decoded when looked up). The error says why the file is ignored.
fn parse(data: Vec<u8>, key: &[u8; 32]) -> Result<Stored, String> {
    let body_len = data.len().checked_sub(32).filter(|&n| n >= MAGIC.len() + 32).ok_or("truncated")?;
    if &data[..MAGIC.len()] != MAGIC {
        return Err("not a load cache of this ocib version".into());
    }
    if digest(&data[..body_len]) != data[body_len..] {
        return Err("its checksum does not match (torn or corrupt)".into());
    }
    if data[MAGIC.len()..MAGIC.len() + 32] != key[..] {
        return Err("made by another ocib binary or for other workspace settings".into());
    }
    let corrupt = |_| "corrupt".to_owned();
    let mut r = Reader::new(&data[..body_len]);
    r.bytes(MAGIC.len() + 32).map_err(corrupt)?;
    let n = r.count().map_err(corrupt)?;
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        let path = PathBuf::from(r.str().map_err(corrupt)?);
        let kind = match r.bytes(1).map_err(corrupt)?[0] {
            0 => Kind::Absent,
            1 => Kind::File,
            2 => Kind::Present,
            3 => Kind::Dir,
            _ => return Err("corrupt".into()),
        };
        let mut sig = Sig { dev: r.u().map_err(corrupt)?, ino: r.u().map_err(corrupt)?, size: r.u().map_err(corrupt)?, ..Sig::default() };
        sig.mode = u32::try_from(r.u().map_err(corrupt)?).map_err(|_| "corrupt".to_owned())?;
        sig.mtime_ns = r.i().map_err(corrupt)?;
        sig.ctime_ns = r.i().map_err(corrupt)?;
        let racy = r.bytes(1).map_err(corrupt)?[0] != 0;
        let digest = if kind == Kind::File { r.digest().map_err(corrupt)? } else { [0; 32] };
        records.push(Record { path, kind, sig, racy, digest });
    }
    let index = |r: &mut Reader| -> Result<u32, String> {
        let i = r.u().map_err(corrupt)?;
        if i >= records.len() as u64 {
            return Err("corrupt".into());
        }
        Ok(i as u32)
    };
    let n = r.count().map_err(corrupt)?;
    let mut entries = HashMap::with_capacity(n);
    for _ in 0..n {
        let id = PackageId::new(r.str().map_err(corrupt)?, r.str().map_err(corrupt)?);
        let inputs = (0..r.count().map_err(corrupt)?).map(|_| index(&mut r)).collect::<Result<Vec<_>, _>>()?;
        let glob = match r.bytes(1).map_err(corrupt)?[0] {
            0 => None,
            1 => {
                let d = r.digest().map_err(corrupt)?;
                Some((d, (0..r.count().map_err(corrupt)?).map(|_| index(&mut r)).collect::<Result<Vec<_>, _>>()?))
            }
            _ => return Err("corrupt".into()),
        };
        let len = r.count().map_err(corrupt)?;
        let start = r.position();
        r.bytes(len).map_err(corrupt)?;
        entries.insert(id, Entry { inputs, glob, payload: start..start + len });
    }
    let n = r.count().map_err(corrupt)?;
    let mut discoveries = HashMap::with_capacity(n);
    for _ in 0..n {
        let prefix = PackageId::new(r.str().map_err(corrupt)?, r.str().map_err(corrupt)?);
        let dirs = (0..r.count().map_err(corrupt)?).map(|_| index(&mut r)).collect::<Result<Vec<_>, _>>()?;
        let packages =
            (0..r.count().map_err(corrupt)?).map(|_| r.str().map(str::to_owned).map_err(corrupt)).collect::<Result<Vec<_>, _>>()?;
        discoveries.insert(prefix, (dirs, packages));
    }
    if !r.is_empty() {
        return Err("corrupt (trailing bytes)".into());
    }
    let checked = (0..records.len()).map(|_| OnceLock::new()).collect();
    Ok(Stored { data, records, entries, discoveries, checked })
}

/// The answer file's first bytes: the format and its version.
const ANSWER_MAGIC: &[u8; 8] = b"OCIBQA\x00\x01";

/// What a stored query answer depended on: each package's entry identity and each package
/// discovery's result, both as digests (what the entry's inputs assert; see `entry_identity`).
#[derive(Debug, Default)]
pub struct AnswerDeps {
    pub packages: Vec<(PackageId, [u8; 32])>,
    pub walks: Vec<(PackageId, [u8; 32])>,
}

/// The digest of a discovery's result (the packages found).
pub fn walk_identity(found: &[PackageId]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for p in found {
        for s in [&p.repo, &p.package] {
            hash_field(&mut h, s.as_bytes());
        }
    }
    *h.finalize().as_bytes()
}

/// The identity of an entry: what its inputs assert (paths, kinds, content digests, the glob
/// listing's digest), not their status. Equal identities under one cache-wide key mean equal
/// packages, which is the premise of the whole cache.
fn entry_identity<'r>(inputs: impl Iterator<Item = &'r Record>, glob: Option<&[u8; 32]>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for r in inputs {
        hash_field(&mut h, r.path.to_string_lossy().as_bytes());
        h.update(&[r.kind as u8]);
        h.update(&r.digest);
    }
    match glob {
        Some(d) => h.update(&[1]).update(d),
        None => h.update(&[0]),
    };
    *h.finalize().as_bytes()
}

impl LoadCache {
    /// The identity of `id`'s entry as it will be written by this command: evaluated and
    /// stored now, or read from the file and not found out of date. None if it is not kept.
    pub fn identity_after(&self, id: &PackageId) -> Option<[u8; 32]> {
        if let Some(f) = self.fresh.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            return Some(entry_identity(f.inputs.iter(), f.glob.as_ref().map(|g| &g.digest)));
        }
        if self.stale.lock().unwrap_or_else(|e| e.into_inner()).contains(id) {
            return None;
        }
        let stored = self.stored.as_ref()?;
        let entry = stored.entries.get(id)?;
        Some(entry_identity(entry.inputs.iter().map(|&i| &stored.records[i as usize]), entry.glob.as_ref().map(|(d, _)| d)))
    }

    /// The identity of the stored entry of `id` if all its inputs still hold, checked by
    /// status (no decoding; a directory whose status changed fails rather than being listed
    /// again, which leaves the decision to the normal path).
    fn valid_identity(&self, id: &PackageId) -> Option<[u8; 32]> {
        let stored = self.stored.as_ref()?;
        let entry = stored.entries.get(id)?;
        let check = |i: u32| {
            let holds = stored.checked[i as usize].get_or_init(|| self.check(&stored.records[i as usize])).is_some();
            if !holds {
                note(|| format!("{} changed (an input of {id})", stored.records[i as usize].path.display()));
            }
            holds
        };
        let dirs = entry.glob.iter().flat_map(|(_, d)| d.iter());
        if !entry.inputs.iter().chain(dirs).all(|&i| check(i)) {
            return None;
        }
        Some(entry_identity(entry.inputs.iter().map(|&i| &stored.records[i as usize]), entry.glob.as_ref().map(|(d, _)| d)))
    }

    fn answer_path(&self, query_key: &str) -> PathBuf {
        let mut h = blake3::Hasher::new();
        h.update(&self.key);
        h.update(query_key.as_bytes());
        let dir = self.path.parent().unwrap_or(Path::new("."));
        dir.join("query-answers").join(h.finalize().to_hex().as_str())
    }

    /// The output stored for the query `query_key` if every package entry and package
    /// discovery it depended on still holds unchanged (checked in parallel, by status; no
    /// package is decoded). Anything else (no answer, a changed input, a damaged file) is
    /// None: the query is evaluated.
    /// `defined` gives the identity of packages of repositories that are functions of their
    /// definitions (see `Loader::defined_identity`), which have no entries.
    pub fn answer(&self, query_key: &str, defined: &(dyn Fn(&PackageId) -> Option<[u8; 32]> + Sync)) -> Option<Vec<u8>> {
        use rayon::prelude::*;
        let path = self.answer_path(query_key);
        let data = std::fs::read(&path).ok()?;
        let Some((deps, stdout)) = parse_answer(&data, &self.key) else {
            note(|| format!("ignoring the damaged answer {}", path.display()));
            return None;
        };
        let packages_hold =
            deps.packages.par_iter().all(|(id, want)| self.valid_identity(id).or_else(|| defined(id)).as_ref() == Some(want));
        let walks_hold = packages_hold
            && deps.walks.par_iter().all(|(prefix, want)| self.discovered(prefix).is_some_and(|f| walk_identity(&f) == *want));
        if !walks_hold {
            note(|| "the stored answer's inputs changed; evaluating the query".to_owned());
            return None;
        }
        note(|| format!("answer replayed after checking {} packages and {} walks", deps.packages.len(), deps.walks.len()));
        Some(stdout.to_vec())
    }

    /// Stores `stdout` as the answer of the query `query_key`, valid while `deps` hold.
    /// Failing to write is only noted.
    pub fn store_answer(&self, query_key: &str, deps: &AnswerDeps, stdout: &[u8]) {
        let path = self.answer_path(query_key);
        let mut data = Vec::with_capacity(stdout.len() + 64 * deps.packages.len() + 128);
        data.extend_from_slice(ANSWER_MAGIC);
        data.extend_from_slice(&self.key);
        for list in [&deps.packages, &deps.walks] {
            put_u64(&mut data, list.len() as u64);
            for (id, digest) in list {
                put_str(&mut data, &id.repo);
                put_str(&mut data, &id.package);
                data.extend_from_slice(digest);
            }
        }
        put_u64(&mut data, stdout.len() as u64);
        data.extend_from_slice(stdout);
        let sum = digest(&data);
        data.extend_from_slice(&sum);
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!(".answer.tmp.{}", std::process::id()));
            let written = std::fs::write(&tmp, &data).and_then(|()| std::fs::rename(&tmp, &path));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        };
        match write() {
            Ok(()) => {
                note(|| format!("stored the answer ({} packages) in {}", deps.packages.len(), path.display()));
                if let Some(dir) = path.parent() {
                    prune_answers(dir, MAX_ANSWERS);
                }
            }
            Err(e) => note(|| format!("answer not written to {}: {e}", path.display())),
        }
    }
}

/// Answers kept per workspace. Each distinct query, and each build's options and environment,
/// has its own answer: without a bound the directory would grow with every new combination.
const MAX_ANSWERS: usize = 64;

/// Removes the least recently written answers of `dir` beyond `keep` (a replayed answer is
/// not rewritten, so one stored long ago goes first). Failing to list or remove is ignored:
/// an answer too many costs only disk.
fn prune_answers(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut answers: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if answers.len() <= keep {
        return;
    }
    answers.sort();
    let excess = answers.len() - keep;
    for (_, path) in answers.into_iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
    note(|| format!("removed the {excess} least recently stored answers (at most {keep} are kept)"));
}

/// Reads an answer file: its dependencies and the output. None if damaged or made under
/// another cache-wide key.
fn parse_answer<'d>(data: &'d [u8], key: &[u8; 32]) -> Option<(AnswerDeps, &'d [u8])> {
    let body_len = data.len().checked_sub(32).filter(|&n| n >= ANSWER_MAGIC.len() + 32)?;
    if &data[..ANSWER_MAGIC.len()] != ANSWER_MAGIC || digest(&data[..body_len]) != data[body_len..] {
        return None;
    }
    if data[ANSWER_MAGIC.len()..ANSWER_MAGIC.len() + 32] != key[..] {
        return None;
    }
    let mut r = Reader::new(&data[..body_len]);
    r.bytes(ANSWER_MAGIC.len() + 32).ok()?;
    let mut deps = AnswerDeps::default();
    for list in [&mut deps.packages, &mut deps.walks] {
        for _ in 0..r.count().ok()? {
            let id = PackageId::new(r.str().ok()?, r.str().ok()?);
            list.push((id, r.digest().ok()?));
        }
    }
    let len = r.count().ok()?;
    let stdout = r.bytes(len).ok()?;
    r.is_empty().then_some((deps, stdout))
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    #[test]
    fn answers_beyond_the_bound_are_removed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::time::SystemTime::now() - std::time::Duration::from_secs(1000);
        for i in 0..10u64 {
            let path = dir.path().join(format!("answer{i}"));
            std::fs::write(&path, b"x").unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(base + std::time::Duration::from_secs(i)).unwrap();
        }
        std::fs::write(dir.path().join(".answer.tmp.1"), b"being written").unwrap();
        prune_answers(dir.path(), 4);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [".answer.tmp.1", "answer6", "answer7", "answer8", "answer9"]);
        prune_answers(dir.path(), 4);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5, "nothing more to remove");
    }
}
