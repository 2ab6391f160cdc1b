//! Exec roots reused from one action to the next: a pool of directories under `ocib-out/tmp`
//! (`r<n>.<pid>`), one per action running at once, instead of creating and removing a root and
//! its directory tree for every action (on ext4, inode allocation under mkdir dominated a cold
//! build's system time).
//!
//! Hermeticity holds as in a fresh root: before a root is handed to an action, everything in it
//! that the action does not declare is removed — files and links of the previous action (its
//! inputs, outputs it failed to store, scratch files) and directories that lead to none of
//! this action's inputs or outputs. What stays is the directories on the way to this action's
//! inputs and outputs, and links that already point where this action's input links must
//! (Bazel's `--reuse_sandbox_directories` keeps the same). The roots are removed when the
//! build ends; a killed build's are removed by the next command (`OutputBase::open`).
//!
//! The directory outputs of scratch-free in-process actions (an image's layout) are written
//! into a second pool of directories (`d<n>.<pid>`), emptied of files after each action but
//! keeping their subdirectories (`blobs/sha256` for every layout), for the same reason: on
//! ext4 without a journal, every inode freed in the last minute is skipped, one buffer lookup
//! each, by every later inode allocation in its group (`fs/ext4/ialloc.c`, `recently_deleted`),
//! so directories made and removed per action made each new file slower as the build went on.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::cache::make_writable;

/// The pool of one execution.
pub(super) struct ExecRoots {
    /// `ocib-out/tmp`.
    dir: PathBuf,
    /// Roots no action is using.
    free: Mutex<Vec<PathBuf>>,
    /// Output directories no action is using.
    free_trees: Mutex<Vec<PathBuf>>,
    /// Every root and output directory made, to remove at the end.
    made: Mutex<Vec<PathBuf>>,
}

impl ExecRoots {
    /// The pool in `dir` (`ocib-out/tmp`), which is created here: scratch-free actions write
    /// their files there without creating it each time.
    pub fn new(dir: PathBuf) -> ExecRoots {
        // An error shows again, with the path, when the first action writes there.
        let _ = fs::create_dir_all(&dir);
        ExecRoots { dir, free: Mutex::default(), free_trees: Mutex::default(), made: Mutex::default() }
    }

    /// A new name in the pool's directory (`<prefix><n>.<pid>`, a name `OutputBase::open`
    /// recognises as this process's), emptied if a dead build with the same pid left it.
    fn make(&self, prefix: &str) -> io::Result<PathBuf> {
        let path = {
            let mut made = self.made.lock().map_err(|_| io::Error::other("exec root pool lock poisoned"))?;
            let path = self.dir.join(format!("{prefix}{}.{}", made.len(), std::process::id()));
            made.push(path.clone());
            path
        };
        if path.exists() {
            make_writable(&path);
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(&path)?;
        Ok(path)
    }

    /// An empty directory for a directory output of a scratch-free action: one used before
    /// (holding no file, perhaps subdirectories, which the action's output ignores: only files
    /// are recorded) or a new one.
    pub fn take_tree(&self) -> io::Result<PathBuf> {
        match self.free_trees.lock().ok().and_then(|mut f| f.pop()) {
            Some(dir) => Ok(dir),
            None => self.make("d"),
        }
    }

    /// Puts an output directory back once its action is done: its files (links of inputs,
    /// what a failed action left) are removed now, its directories kept. One that cannot be
    /// emptied file by file is removed instead (it is not reused).
    pub fn give_back_tree(&self, dir: PathBuf) {
        if remove_files(&dir).is_ok() {
            if let Ok(mut free) = self.free_trees.lock() {
                free.push(dir);
            }
        } else {
            make_writable(&dir);
            let _ = fs::remove_dir_all(&dir);
        }
    }

    /// A root for an action whose inputs are linked at `links` (exec path → target) and whose
    /// outputs are written at `outputs` (exec paths): an unused root cleaned down to what the
    /// action declares (links already right are kept), or a new empty one.
    pub fn take(&self, links: &[(&str, &Path)], outputs: &[&str]) -> io::Result<PathBuf> {
        let reused = self.free.lock().ok().and_then(|mut f| f.pop());
        let Some(root) = reused else { return self.make("r") };
        let wanted: HashMap<PathBuf, &Path> = links.iter().map(|(p, t)| (PathBuf::from(p), *t)).collect();
        let mut dirs: HashSet<PathBuf> = HashSet::new();
        for path in links.iter().map(|(p, _)| *p).chain(outputs.iter().copied()) {
            let mut p = Path::new(path);
            while let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !dirs.insert(parent.to_path_buf()) {
                    break;
                }
                p = parent;
            }
        }
        if clean(&root, &mut PathBuf::new(), &wanted, &dirs).is_err() {
            // Something the action left cannot be removed piecewise (a read-only tree): start
            // the root again.
            make_writable(&root);
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root)?;
        }
        Ok(root)
    }

    /// Puts a root back once its action is done (it is cleaned when taken again).
    pub fn give_back(&self, root: PathBuf) {
        if let Ok(mut free) = self.free.lock() {
            free.push(root);
        }
    }

    /// Removes every root (the build is over).
    pub fn remove_all(&self) {
        let made = self.made.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default();
        for root in made {
            if root.exists() {
                make_writable(&root);
                let _ = fs::remove_dir_all(&root);
            }
        }
    }
}

/// Removes every file and link under `dir`, keeping the directories.
fn remove_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_files(&entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Removes from `dir` (at `rel` in the root) everything but the directories in `dirs` (cleaned
/// in turn) and the links in `links` that point where they should.
fn clean(dir: &Path, rel: &mut PathBuf, links: &HashMap<PathBuf, &Path>, dirs: &HashSet<PathBuf>) -> io::Result<()> {
    let names: Vec<(OsString, fs::FileType)> =
        fs::read_dir(dir)?.map(|e| e.and_then(|e| Ok((e.file_name(), e.file_type()?)))).collect::<io::Result<_>>()?;
    for (name, kind) in names {
        let path = dir.join(&name);
        rel.push(&name);
        if kind.is_dir() {
            if dirs.contains(rel.as_path()) {
                clean(&path, rel, links, dirs)?;
            } else {
                make_writable(&path);
                fs::remove_dir_all(&path)?;
            }
        } else {
            let right = kind.is_symlink() && links.get(rel.as_path()).is_some_and(|t| fs::read_link(&path).ok().as_deref() == Some(*t));
            if !right {
                fs::remove_file(&path)?;
            }
        }
        rel.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything under `root`, as sorted relative paths (links with their target).
    fn listing(root: &Path) -> Vec<String> {
        let mut out: Vec<String> = walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .flatten()
            .map(|e| {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                match fs::read_link(e.path()) {
                    Ok(t) => format!("{rel} -> {}", t.display()),
                    Err(_) if e.file_type().is_dir() => format!("{rel}/"),
                    Err(_) => rel,
                }
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_reused_root_shows_only_what_the_next_action_declares() {
        let tmp = tempfile::tempdir().unwrap();
        let roots = ExecRoots::new(tmp.path().to_path_buf());
        let src = tmp.path().join("src.txt");
        let other = tmp.path().join("other.txt");
        let root = roots.take(&[("a/in.txt", &src), ("b/x.txt", &other)], &["out/a/o.txt"]).unwrap();
        assert_eq!(listing(&root), Vec::<String>::new(), "a new root is empty");
        // The first action: its links, an output it did not store, scratch files, a read-only
        // directory.
        fs::create_dir_all(root.join("a")).unwrap();
        fs::create_dir_all(root.join("b")).unwrap();
        fs::create_dir_all(root.join("out/a")).unwrap();
        std::os::unix::fs::symlink(&src, root.join("a/in.txt")).unwrap();
        std::os::unix::fs::symlink(&other, root.join("b/x.txt")).unwrap();
        fs::write(root.join("out/a/o.txt"), "left").unwrap();
        fs::write(root.join("a/scratch"), "x").unwrap();
        fs::create_dir_all(root.join("ro/sub")).unwrap();
        fs::write(root.join("ro/sub/f"), "x").unwrap();
        fs::set_permissions(root.join("ro/sub"), std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        roots.give_back(root.clone());

        // The next action reads a/in.txt from the same place, b/x.txt from elsewhere.
        let again = roots.take(&[("a/in.txt", &src), ("b/x.txt", &src)], &["out/b/o.txt"]).unwrap();
        assert_eq!(again, root, "the root is reused");
        assert_eq!(listing(&root), vec!["a/".to_owned(), format!("a/in.txt -> {}", src.display()), "b/".into(), "out/".into()]);
        let another = roots.take(&[], &[]).unwrap();
        assert_ne!(another, root, "a root in use is not handed out twice");
        roots.give_back(again);
        roots.give_back(another.clone());
        roots.remove_all();
        assert!(!root.exists() && !another.exists());
    }

    #[test]
    fn an_output_directory_comes_back_without_files_but_with_its_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let roots = ExecRoots::new(tmp.path().join("tmp"));
        let dir = roots.take_tree().unwrap();
        assert_eq!(listing(&dir), Vec::<String>::new(), "a new output directory is empty");
        // An image layout: a blob linked from an input, one left by a failure, a read-only one.
        let input = tmp.path().join("input");
        fs::write(&input, "layer").unwrap();
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::hard_link(&input, dir.join("blobs/sha256/aa")).unwrap();
        fs::write(dir.join("index.json"), "{}").unwrap();
        fs::write(dir.join("blobs/sha256/bb"), "x").unwrap();
        fs::set_permissions(dir.join("blobs/sha256/bb"), std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
        roots.give_back_tree(dir.clone());
        assert_eq!(listing(&dir), vec!["blobs/".to_owned(), "blobs/sha256/".into()]);
        assert_eq!(fs::read(&input).unwrap(), b"layer", "the input keeps its bytes");

        let again = roots.take_tree().unwrap();
        assert_eq!(again, dir, "the directory is reused");
        assert_ne!(roots.take_tree().unwrap(), dir, "one in use is not handed out twice");
        roots.remove_all();
        assert!(!dir.exists());
    }
}
