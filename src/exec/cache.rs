//! The content-addressed store (CAS) of output files and the action cache (action key →
//! output digests), under `~/.cache/ocib` or `--disk_cache`.
//!
//! Entries are only ever renamed into place complete; CAS files are read-only. An entry whose
//! file is missing, truncated or changed since it was stored is a miss, never used.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::file_sha256;
use super::fs::{temp_sibling, write_atomic};

/// One output as the action cache records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub exec_path: String,
    pub digest: String,
    pub size: u64,
    pub executable: bool,
    /// The CAS file's mtime when stored: a CAS file whose stat changed is not trusted.
    pub cas_mtime_ns: i128,
    /// For a file inside a directory output: that directory's exec path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub mnemonic: String,
    pub outputs: Vec<OutputRecord>,
}

pub struct Cache {
    root: PathBuf,
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128
}

impl Cache {
    pub fn open(root: &Path) -> io::Result<Cache> {
        fs::create_dir_all(root.join("cas"))?;
        fs::create_dir_all(root.join("ac"))?;
        Ok(Cache { root: root.to_path_buf() })
    }

    /// Executable and plain copies of the same bytes are separate entries: hardlinks share
    /// their mode.
    pub fn cas_path(&self, digest: &str, executable: bool) -> PathBuf {
        let shard = digest.get(..2).unwrap_or("00");
        let name = if executable { format!("{digest}.x") } else { digest.to_owned() };
        self.root.join("cas").join(shard).join(name)
    }

    /// Moves a finished file into the CAS and returns its record. `known` is the digest when
    /// the action computed it while writing (so a large output is not read twice).
    ///
    /// Entries are not fsynced one by one: a crash can lose at most entries whose size or
    /// mtime then no longer match their record, and those are rebuilt (SIGKILL loses nothing,
    /// the page cache survives it); syncing every file made large layers 3x slower.
    ///
    /// The file's inode becomes the CAS entry (renamed, made read-only), so it must be the
    /// action's own: a file with other links (an action that hardlinked an input, such as a
    /// user's source file, into its output) is first replaced by a private copy, and the other
    /// names keep their inode, mode and bytes.
    pub fn insert(&self, file: &Path, exec_path: &str, executable: bool, known: Option<&str>) -> io::Result<OutputRecord> {
        if fs::symlink_metadata(file)?.nlink() > 1 {
            let copy = temp_sibling(file);
            let replaced = fs::copy(file, &copy).and_then(|_| fs::rename(&copy, file));
            if replaced.is_err() {
                let _ = fs::remove_file(&copy);
            }
            replaced?;
        }
        let (digest, size) = match known {
            Some(d) => (d.to_owned(), fs::metadata(file)?.len()),
            None => file_sha256(file)?,
        };
        let dest = self.cas_path(&digest, executable);
        if let Some(meta) = fs::metadata(&dest).ok().filter(|m| m.len() == size) {
            // Same bytes already stored (by us or a concurrent ocib).
            let _ = fs::remove_file(file);
            return Ok(OutputRecord { exec_path: exec_path.to_owned(), digest, size, executable, cas_mtime_ns: mtime_ns(&meta), tree: None });
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::set_permissions(file, fs::Permissions::from_mode(if executable { 0o555 } else { 0o444 }))?;
        let tmp = temp_sibling(&dest);
        fs::rename(file, &tmp)?;
        fs::rename(&tmp, &dest)?;
        let meta = fs::metadata(&dest)?;
        Ok(OutputRecord { exec_path: exec_path.to_owned(), digest, size, executable, cas_mtime_ns: mtime_ns(&meta), tree: None })
    }

    /// The record of a file already in the CAS (a directory output's member that is a hardlink
    /// of an input), without hashing it again.
    pub fn existing(&self, digest: &str, exec_path: &str, executable: bool) -> Option<OutputRecord> {
        let meta = fs::metadata(self.cas_path(digest, executable)).ok()?;
        Some(OutputRecord { exec_path: exec_path.to_owned(), digest: digest.to_owned(), size: meta.len(), executable, cas_mtime_ns: mtime_ns(&meta), tree: None })
    }

    /// Whether the CAS still holds the output exactly as recorded.
    pub fn holds(&self, out: &OutputRecord) -> bool {
        match fs::metadata(self.cas_path(&out.digest, out.executable)) {
            Ok(meta) => meta.len() == out.size && mtime_ns(&meta) == out.cas_mtime_ns,
            Err(_) => false,
        }
    }

    fn ac_path(&self, key: &str) -> PathBuf {
        self.root.join("ac").join(key.get(..2).unwrap_or("00")).join(format!("{key}.json"))
    }

    /// The record for `key`, if there is a usable one.
    pub fn lookup(&self, key: &str) -> Option<ActionRecord> {
        let bytes = fs::read(self.ac_path(key)).ok()?;
        let record: ActionRecord = serde_json::from_slice(&bytes).ok()?;
        record.outputs.iter().all(|o| self.holds(o)).then_some(record)
    }

    pub fn store(&self, key: &str, record: &ActionRecord) -> io::Result<()> {
        let data = serde_json::to_vec(record).map_err(io::Error::other)?;
        write_atomic(&self.ac_path(key), &data, false)
    }

    /// Removes everything (`clean --expunge`).
    pub fn expunge(&self) -> io::Result<()> {
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
}
