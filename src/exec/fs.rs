//! Atomic file writes and hardlink-or-copy, the only ways execution puts files in place.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temporary name next to `path` (same directory, so a rename is atomic), unique within
/// this process and across processes.
pub fn temp_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// Writes `data` to `path` atomically: temp file, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8], executable: bool) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
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
    result
}

/// Makes `dest` a hardlink of `src` (a copy if they are on different filesystems), replacing
/// whatever was there atomically.
pub fn link_or_copy(src: &Path, dest: &Path) -> io::Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = temp_sibling(dest);
    let linked = fs::hard_link(src, &tmp);
    if linked.is_err() {
        fs::copy(src, &tmp)?;
    }
    let result = fs::rename(&tmp, dest);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
