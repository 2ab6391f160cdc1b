//! The layout driver: files and metadata straight from an OCI image layout directory, like CST's
//! tar driver but without extracting to disk. The layers are applied in order into an in-memory
//! index of tar headers (honouring `.wh.` whiteouts and `.wh..wh..opq` opaque directories); file
//! contents are read back from the layer blob when a test asks for them.
//!
//! As with CST's tar driver, command tests (and setup) fail with "Tar driver is unable to process
//! commands, please use a different driver" and `globalEnvVars` are set into the config env
//! unexpanded. Unlike it, uid/gid checks work (they come from the layer tar headers).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail};

use super::backend::{Backend, FileInfo, ImageConfig};
use super::config::EnvVar;
use super::filemode;
use crate::oci::layout::Layout;

const NO_COMMANDS: &str = "Tar driver is unable to process commands, please use a different driver";

#[derive(Debug, Clone)]
struct Entry {
    typeflag: u8,
    mode: u32,
    uid: i64,
    gid: i64,
    link: String,
    /// Where the content is: layer index and entry ordinal in that layer (None: implicit dir).
    source: Option<(usize, usize)>,
}

/// The merged file tree of a layout's image. Keys are paths without the leading `/`; "" is `/`.
pub struct Image {
    layers: Vec<std::path::PathBuf>,
    tree: BTreeMap<String, Entry>,
    config: ImageConfig,
}

fn implicit_dir() -> Entry {
    Entry { typeflag: b'5', mode: 0o755, uid: 0, gid: 0, link: String::new(), source: None }
}

fn normalize(name: &str) -> String {
    name.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

fn parent(key: &str) -> &str {
    key.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn open_layer(path: &Path) -> Result<Box<dyn Read>> {
    let mut file = BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    let mut magic = [0u8; 4];
    let n = {
        use std::io::BufRead;
        let buf = file.fill_buf()?;
        let n = buf.len().min(4);
        magic[..n].copy_from_slice(&buf[..n]);
        n
    };
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(file)));
    }
    if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        bail!("{}: zstd-compressed layers are not supported by the layout driver", path.display());
    }
    Ok(Box::new(file))
}

fn remove_subtree(tree: &mut BTreeMap<String, Entry>, key: &str) {
    tree.remove(key);
    remove_children(tree, key);
}

fn remove_children(tree: &mut BTreeMap<String, Entry>, key: &str) {
    let prefix = if key.is_empty() { String::new() } else { format!("{key}/") };
    let doomed: Vec<String> = tree
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .filter(|k| !k.is_empty())
        .collect();
    for k in doomed {
        tree.remove(&k);
    }
}

impl Image {
    pub fn open(dir: &Path) -> Result<Image> {
        let layout = Layout::read(dir)?;
        let config = ImageConfig::from_json(layout.config.get("config").unwrap_or(&serde_json::Value::Null));
        let layers = layout.layer_digests.iter().map(|d| layout.blob_path(d)).collect::<Result<Vec<_>>>()?;
        let mut tree = BTreeMap::new();
        tree.insert(String::new(), implicit_dir());
        for (li, path) in layers.iter().enumerate() {
            let mut archive = tar::Archive::new(open_layer(path)?);
            let mut additions: Vec<(String, Entry)> = Vec::new();
            let mut whiteouts: Vec<String> = Vec::new();
            let mut opaque: Vec<String> = Vec::new();
            for (ordinal, entry) in archive.entries().with_context(|| format!("reading layer {}", path.display()))?.enumerate() {
                let entry = entry.with_context(|| format!("reading layer {}", path.display()))?;
                let key = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
                let base = key.rsplit('/').next().unwrap_or("");
                if base == ".wh..wh..opq" {
                    opaque.push(parent(&key).to_owned());
                    continue;
                }
                if let Some(hidden) = base.strip_prefix(".wh.") {
                    if !hidden.starts_with(".wh.") {
                        let p = parent(&key);
                        whiteouts.push(if p.is_empty() { hidden.to_owned() } else { format!("{p}/{hidden}") });
                    }
                    continue;
                }
                let h = entry.header();
                let link = entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
                additions.push((
                    key,
                    Entry {
                        typeflag: h.entry_type().as_byte(),
                        mode: h.mode().unwrap_or(0),
                        uid: h.uid().map(|u| u as i64).unwrap_or(0),
                        gid: h.gid().map(|g| g as i64).unwrap_or(0),
                        link,
                        source: Some((li, ordinal)),
                    },
                ));
            }
            // Whiteouts hide what lower layers have; this layer's own entries then apply.
            for dir in &opaque {
                remove_children(&mut tree, dir);
            }
            for key in &whiteouts {
                remove_subtree(&mut tree, key);
            }
            for (key, entry) in additions {
                let mut p = parent(&key).to_owned();
                while !p.is_empty() && !tree.contains_key(&p) {
                    tree.insert(p.clone(), implicit_dir());
                    p = parent(&p).to_owned();
                }
                if entry.typeflag != b'5' {
                    // A non-directory replacing a directory replaces its contents too.
                    remove_children(&mut tree, &key);
                }
                tree.insert(key, entry);
            }
        }
        Ok(Image { layers, tree, config })
    }

    /// Resolves `path` to a tree key, following symlinks in every component but the last
    /// (and the last too when `follow`).
    fn resolve(&self, path: &str, follow: bool) -> Option<String> {
        let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
        let mut current: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    current.pop();
                    continue;
                }
                _ => {}
            }
            current.push(c);
            let key = current.join("/");
            let entry = self.tree.get(&key)?;
            let last = pending.iter().all(|p| p.is_empty() || p == ".");
            if entry.typeflag == b'2' && (follow || !last) {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                current.pop();
                if entry.link.starts_with('/') {
                    current.clear();
                }
                pending.extend(entry.link.split('/').rev().map(str::to_owned));
            }
        }
        Some(current.join("/"))
    }

    fn info(&self, key: &str) -> FileInfo {
        let e = &self.tree[key];
        FileInfo {
            name: if key.is_empty() { "/".to_owned() } else { key.rsplit('/').next().unwrap_or("").to_owned() },
            mode: filemode::from_tar(e.mode, e.typeflag),
            uid: Some(e.uid),
            gid: Some(e.gid),
        }
    }

    fn content(&self, key: &str, depth: usize) -> Result<Vec<u8>> {
        let e = &self.tree[key];
        if e.typeflag == b'1' {
            // Hard link: the content of the entry it names.
            let target = normalize(&e.link);
            if depth > 40 || !self.tree.contains_key(&target) {
                bail!("hard link {key} -> {} has no target", e.link);
            }
            return self.content(&target, depth + 1);
        }
        let Some((layer, ordinal)) = e.source else {
            return Ok(Vec::new());
        };
        let path = &self.layers[layer];
        let mut archive = tar::Archive::new(open_layer(path)?);
        let mut entry = archive.entries()?.nth(ordinal).ok_or_else(|| anyhow!("layer {} changed while reading", path.display()))??;
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        Ok(data)
    }
}

pub struct Driver {
    image: Rc<Image>,
    env: Vec<(String, String)>,
}

impl Driver {
    pub fn new(image: Rc<Image>) -> Driver {
        Driver { image, env: Vec::new() }
    }
}

impl Backend for Driver {
    fn set_env(&mut self, vars: &[EnvVar]) -> Result<()> {
        self.env.extend(vars.iter().map(|v| (v.key.clone(), v.value.clone())));
        Ok(())
    }

    fn setup(&mut self, _vars: &[EnvVar], _commands: &[Vec<String>]) -> Result<()> {
        bail!(NO_COMMANDS)
    }

    fn process_command(&mut self, _vars: &[EnvVar], _command: &[String]) -> Result<(String, String, i64)> {
        bail!(NO_COMMANDS)
    }

    fn stat_file(&mut self, path: &str) -> Result<FileInfo> {
        match self.image.resolve(path, false) {
            Some(key) => Ok(self.image.info(&key)),
            None => bail!("lstat {path}: no such file or directory"),
        }
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>> {
        let key = self.image.resolve(path, true).ok_or_else(|| anyhow!("open {path}: no such file or directory"))?;
        match self.image.tree[&key].typeflag {
            b'5' => bail!("read {path}: is a directory"),
            b'0' | b'\0' | b'1' | b'7' => self.image.content(&key, 0),
            _ => bail!("open {path}: not a regular file"),
        }
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<FileInfo>> {
        let key = self.image.resolve(path, true).ok_or_else(|| anyhow!("open {path}: no such file or directory"))?;
        if self.image.tree[&key].typeflag != b'5' {
            bail!("readdirent {path}: not a directory");
        }
        let prefix = if key.is_empty() { String::new() } else { format!("{key}/") };
        Ok(self
            .image
            .tree
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k.is_empty() && !k[prefix.len()..].contains('/'))
            .map(|(k, _)| self.image.info(k))
            .collect())
    }

    fn config(&mut self) -> Result<ImageConfig> {
        let mut config = self.image.config.clone();
        for (k, v) in &self.env {
            config.env.insert(k.clone(), v.clone());
        }
        Ok(config)
    }

    fn destroy(&mut self) {}
}
