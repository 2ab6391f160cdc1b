//! Merkle trees of REAPI `Directory` messages: an action's input root, and the `Tree` of a
//! directory output, as the Remote Execution API defines them (files and subdirectories
//! sorted by name, each named by the sha256 of its serialized message), so that the same
//! files give the same digest on every machine and in every checkout.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use prost::Message;

use super::{Digest, digest_of};

/// A file in a tree: its content digest and whether it is executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub digest: Digest,
    pub executable: bool,
}

#[derive(Default)]
struct Node {
    files: BTreeMap<String, FileEntry>,
    dirs: BTreeMap<String, Node>,
}

/// Files (relative `/`-separated paths) and directories that must exist even when empty.
#[derive(Default)]
pub struct TreeBuilder {
    root: Node,
}

/// A built tree: the root directory message, its digest, and every directory message in it
/// (root included) by digest, deduplicated, in a fixed order.
pub struct BuiltTree {
    pub root: re::Directory,
    pub root_digest: Digest,
    pub directories: Vec<(Digest, Vec<u8>)>,
}

impl TreeBuilder {
    fn node(&mut self, dirs: &[&str], whole: &str) -> Result<&mut Node> {
        let mut node = &mut self.root;
        for d in dirs {
            if node.files.contains_key(*d) {
                bail!("'{whole}': '{d}' is both a file and a directory");
            }
            node = node.dirs.entry((*d).to_owned()).or_default();
        }
        Ok(node)
    }

    fn split(path: &str) -> Result<Vec<&str>> {
        let parts: Vec<&str> = path.split('/').collect();
        if path.starts_with('/') || parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
            bail!("'{path}' is not a normalized relative path");
        }
        Ok(parts)
    }

    /// Adds a file; the same path twice must name the same content.
    pub fn file(&mut self, path: &str, entry: FileEntry) -> Result<()> {
        let parts = Self::split(path)?;
        let (name, dirs) = parts.split_last().ok_or_else(|| anyhow::anyhow!("empty path"))?;
        let node = self.node(dirs, path)?;
        if node.dirs.contains_key(*name) {
            bail!("'{path}' is both a file and a directory");
        }
        if let Some(old) = node.files.get(*name)
            && *old != entry
        {
            bail!("'{path}' is given twice with different contents");
        }
        node.files.insert((*name).to_owned(), entry);
        Ok(())
    }

    /// Adds a directory (which may stay empty).
    pub fn dir(&mut self, path: &str) -> Result<()> {
        let parts = Self::split(path)?;
        self.node(&parts, path)?;
        Ok(())
    }

    pub fn build(self) -> BuiltTree {
        let mut directories: BTreeMap<String, (Digest, Vec<u8>)> = BTreeMap::new();
        let (root, root_digest) = encode(&self.root, &mut directories);
        BuiltTree { root, root_digest, directories: directories.into_values().collect() }
    }
}

fn encode(node: &Node, out: &mut BTreeMap<String, (Digest, Vec<u8>)>) -> (re::Directory, Digest) {
    let directories = node
        .dirs
        .iter()
        .map(|(name, child)| {
            let (_, digest) = encode(child, out);
            re::DirectoryNode { name: name.clone(), digest: Some(digest) }
        })
        .collect();
    let files = node
        .files
        .iter()
        .map(|(name, f)| re::FileNode {
            name: name.clone(),
            digest: Some(f.digest.clone()),
            is_executable: f.executable,
            node_properties: None,
        })
        .collect();
    let dir = re::Directory { files, directories, symlinks: Vec::new(), node_properties: None };
    let bytes = dir.encode_to_vec();
    let digest = digest_of(&bytes);
    out.insert(digest.hash.clone(), (digest.clone(), bytes));
    (dir, digest)
}

/// The `Tree` message of a directory output: its root and every directory below it.
pub fn tree_message(built: &BuiltTree) -> re::Tree {
    let children = built
        .directories
        .iter()
        .filter(|(d, _)| *d != built.root_digest)
        .filter_map(|(_, bytes)| re::Directory::decode(bytes.as_slice()).ok())
        .collect();
    re::Tree { root: Some(built.root.clone()), children }
}

/// The files of a `Tree` message, by path relative to its root.
pub fn tree_files(tree: &re::Tree) -> Result<Vec<(String, FileEntry)>> {
    let by_digest: BTreeMap<String, &re::Directory> = tree.children.iter().map(|d| (digest_of(&d.encode_to_vec()).hash, d)).collect();
    let Some(root) = &tree.root else { bail!("the tree has no root directory") };
    let mut files = Vec::new();
    let mut stack: Vec<(String, &re::Directory, usize)> = vec![(String::new(), root, 0)];
    while let Some((prefix, dir, depth)) = stack.pop() {
        if depth > 256 {
            bail!("the tree is deeper than 256 directories");
        }
        for f in &dir.files {
            check_name(&f.name)?;
            let digest = f.digest.clone().ok_or_else(|| anyhow::anyhow!("file '{}' has no digest", f.name))?;
            files.push((format!("{prefix}{}", f.name), FileEntry { digest, executable: f.is_executable }));
        }
        for d in &dir.directories {
            check_name(&d.name)?;
            let hash = d.digest.as_ref().map(|x| x.hash.as_str()).unwrap_or_default();
            let child = by_digest.get(hash).ok_or_else(|| anyhow::anyhow!("directory '{}' is missing from the tree", d.name))?;
            stack.push((format!("{prefix}{}/", d.name), child, depth + 1));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// A name from a server must be one path component (never `..` or a path).
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        bail!("invalid name '{name}' in a tree from the remote cache");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &[u8], executable: bool) -> FileEntry {
        FileEntry { digest: digest_of(content), executable }
    }

    #[test]
    fn the_same_files_in_any_order_give_the_same_root_and_trees_round_trip() {
        let mut a = TreeBuilder::default();
        a.file("b/x.txt", file(b"x", false)).unwrap();
        a.file("a.sh", file(b"#!", true)).unwrap();
        a.file("b/c/y", file(b"y", false)).unwrap();
        let mut b = TreeBuilder::default();
        b.file("b/c/y", file(b"y", false)).unwrap();
        b.file("a.sh", file(b"#!", true)).unwrap();
        b.file("b/x.txt", file(b"x", false)).unwrap();
        let (a, b) = (a.build(), b.build());
        assert_eq!(a.root_digest, b.root_digest);
        assert_eq!(a.directories.len(), 3);
        // Sorted by name, as REAPI requires.
        assert_eq!(a.root.files[0].name, "a.sh");
        assert_eq!(a.root.directories[0].name, "b");
        let files = tree_files(&tree_message(&a)).unwrap();
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["a.sh", "b/c/y", "b/x.txt"]);
        assert!(files[0].1.executable);
    }

    #[test]
    fn bad_paths_and_conflicts_are_errors() {
        let mut t = TreeBuilder::default();
        assert!(t.file("../x", file(b"", false)).is_err());
        assert!(t.file("/x", file(b"", false)).is_err());
        t.file("a", file(b"1", false)).unwrap();
        assert!(t.file("a/b", file(b"", false)).is_err());
        assert!(t.file("a", file(b"2", false)).is_err());
        let evil = re::Tree {
            root: Some(re::Directory {
                files: vec![re::FileNode { name: "../x".into(), digest: Some(digest_of(b"")), ..Default::default() }],
                ..Default::default()
            }),
            children: vec![],
        };
        assert!(tree_files(&evil).is_err());
    }
}
