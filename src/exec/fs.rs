//! Atomic file writes, moves and hardlink-or-copy, the only ways execution puts files in place.
//!
//! The cache (`~/.cache/ocib`, `--disk_cache`) may live on another filesystem than the
//! workspace: a rename or hardlink between them fails with EXDEV, and the file is copied into
//! a temporary name beside its destination and renamed instead, so it still appears complete
//! or not at all. Every error names the paths involved.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temporary name next to `path` (same directory, so a rename is atomic), unique within
/// this process and across processes (it carries the pid, see [`temp_owner`]).
pub fn temp_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// The pid of the process that made a [`temp_sibling`] name, if `name` is one.
pub fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".tmp.")?;
    let (pid, n) = tail.split_once('.')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether a process with this pid exists (signal 0 checks without signalling; EPERM means
/// it exists but belongs to someone else).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 sends nothing and has no memory-safety preconditions.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// An I/O error with the path (and what was being done) in its message, keeping its kind.
pub fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(|e| with_path(e, "creating directory", parent)),
        None => Ok(()),
    }
}

fn is_cross_device(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EXDEV)
}

/// Writes `data` to `path` atomically: temp file, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8], executable: bool) -> io::Result<()> {
    create_parent(path)?;
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        if executable {
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| with_path(e, "writing", path))
}

/// Writes `data` to `path` atomically (temp file, rename) without syncing it to disk, for
/// files whose readers check them: an action record that a power loss truncates or zeroes
/// fails to parse or names CAS files that no longer match, and either way is a cache miss
/// (SIGKILL loses nothing: the page cache survives it). Syncing each record cost a disk flush
/// per action. The parent directory is only created when the write finds it missing.
pub fn replace_file_unsynced(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let write = |tmp: &Path| -> io::Result<()> {
        let mut f = File::create(tmp)?;
        f.write_all(data)
    };
    let mut result = write(&tmp);
    if result.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        create_parent(path)?;
        result = write(&tmp);
    }
    let result = result.and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| with_path(e, "writing", path))
}

/// Copies `src` to a temporary name beside `dest` and renames it over `dest`.
fn copy_atomic(src: &Path, dest: &Path) -> io::Result<()> {
    let tmp = temp_sibling(dest);
    let result = fs::copy(src, &tmp)
        .map_err(|e| with_path(e, &format!("copying {} to", src.display()), &tmp))
        .and_then(|_| fs::rename(&tmp, dest).map_err(|e| with_path(e, &format!("renaming {} to", tmp.display()), dest)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Moves `file` to `dest` (replacing it atomically): a rename, or across filesystems a copy
/// beside `dest` renamed into place, then `file` removed.
pub fn move_file(file: &Path, dest: &Path) -> io::Result<()> {
    // The parent is made only when the rename finds it missing (a CAS shard's first entry):
    // a `mkdir` for every file stored costs a path walk and a failure each.
    let mut renamed = fs::rename(file, dest);
    if renamed.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::NotFound) && dest.parent().is_some_and(|p| !p.exists()) {
        create_parent(dest)?;
        renamed = fs::rename(file, dest);
    }
    match renamed {
        Ok(()) => Ok(()),
        Err(e) if is_cross_device(&e) => {
            copy_atomic(file, dest)?;
            let _ = fs::remove_file(file);
            Ok(())
        }
        Err(e) => Err(with_path(e, &format!("renaming {} to", file.display()), dest)),
    }
}

/// `link(2)` of `src` at `dest`, again when `src` was replaced under it. Storing an output
/// renames it over a CAS entry with the same content (`Cache::insert`); a link that resolved
/// the entry's path just before that rename finds the old inode with no names left, and Linux
/// fails it with ENOENT although `src` exists (the new inode). Looked up again, it links.
fn hard_link_settled(src: &Path, dest: &Path) -> io::Result<()> {
    let mut attempt = 0;
    loop {
        match fs::hard_link(src, dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 && src.exists() => attempt += 1,
            result => return result,
        }
    }
}

/// Makes `dest` a hardlink of `src` (a copy if they are on different filesystems, or the
/// filesystem has no hardlinks), replacing whatever was there atomically.
///
/// Where nothing is at `dest` yet (a fresh output tree), the link is made there directly:
/// `link(2)` is atomic and fails if a file appeared meanwhile, so the temporary name and the
/// rename (two directory updates) are only needed to replace a file; the parent is made only
/// when the link finds it missing.
pub fn link_or_copy(src: &Path, dest: &Path) -> io::Result<()> {
    match fs::hard_link(src, dest) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && dest.parent().is_some_and(|p| !p.exists()) => {
            create_parent(dest)?;
            if fs::hard_link(src, dest).is_ok() {
                return Ok(());
            }
        }
        Err(e) if is_cross_device(&e) => return copy_atomic(src, dest),
        // Something is there (replaced below), or `src` was replaced under the link (retried
        // below), or no hardlinks here (copied below).
        Err(_) => {}
    }
    link_or_copy_replacing(src, dest)
}

/// [`link_or_copy`] through a temporary name renamed over `dest`.
fn link_or_copy_replacing(src: &Path, dest: &Path) -> io::Result<()> {
    create_parent(dest)?;
    let tmp = temp_sibling(dest);
    match hard_link_settled(src, &tmp) {
        Ok(()) => {
            let result = fs::rename(&tmp, dest);
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result.map_err(|e| with_path(e, &format!("renaming {} to", tmp.display()), dest))
        }
        // EXDEV (another filesystem), EPERM/EOPNOTSUPP (no hardlinks there), EMLINK (too many
        // links): a copy has the same content.
        Err(e) if is_cross_device(&e) || matches!(e.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK)) => {
            copy_atomic(src, dest)
        }
        Err(e) => Err(with_path(e, &format!("linking {} to", src.display()), &tmp)),
    }
}

/// Reads exactly `size` bytes from `inner`, failing with `UnexpectedEof` if it ends early and
/// never reading past them: a tar header is written with the size before the data, so a file
/// that shrinks or grows while it is archived fails instead of corrupting the archive.
pub struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> ExactReader<R> {
    pub fn new(inner: R, size: u64) -> ExactReader<R> {
        ExactReader { inner, remaining: size }
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 && max > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("source ended {} bytes early (it changed while being copied)", self.remaining),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_their_owner_pid() {
        let tmp = temp_sibling(Path::new("/x/abc.tar"));
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_owner(name), Some(std::process::id()));
        assert_eq!(temp_owner("abc.tar"), None);
        assert!(pid_alive(std::process::id()));
    }

    #[test]
    fn link_or_copy_links_into_new_directories_and_replaces_what_is_there() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::write(&src, "new").unwrap();
        let dest = dir.path().join("a/b/out");
        link_or_copy(&src, &dest).unwrap();
        assert_eq!(fs::metadata(&dest).unwrap().ino(), fs::metadata(&src).unwrap().ino());
        // Over another file (the previous build's output): replaced, never written through.
        let old = dir.path().join("old");
        fs::write(&old, "old").unwrap();
        let dest = dir.path().join("a/out2");
        fs::hard_link(&old, &dest).unwrap();
        link_or_copy(&src, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(fs::read(&old).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(dir.path().join("a")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary name is left: {names:?}");
    }

    #[test]
    fn exact_reader_fails_on_a_short_source_and_stops_at_the_size() {
        let mut out = Vec::new();
        let err = std::io::copy(&mut ExactReader::new(&b"abc"[..], 5), &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut out = Vec::new();
        std::io::copy(&mut ExactReader::new(&b"abcdef"[..], 4), &mut out).unwrap();
        assert_eq!(out, b"abcd");
    }
}
