//! Unpacking a base image tarball (`docker save` or OCI-layout, README "base images from
//! docker-save or OCI tarballs") into an OCI layout, so that every path the tarball names
//! resolves to one of its own regular-file members and never to a file of the host.
//!
//! Member names never become filesystem paths: each regular member's bytes go to a fresh file
//! named by its position (`<work>/<n>`), and an in-memory table maps member names to those
//! files. Paths from inside the tarball (manifest.json's `Config` and `Layers`, symlink and
//! hardlink targets) are looked up in that table after the same check member names get (only
//! normal components: no absolute path, no `..` above the top, no prefix). So a tarball cannot
//! name `/home/u/.ssh/id_ed25519`, `../../.docker/config.json` or `/dev/zero`, and every file
//! that ends up in the layout is one ocib wrote itself.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};

use super::layout::{LayoutWriter, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES};
use super::spec::{self, Descriptor, DockerSaveEntry, ImageManifest, OCI_CONFIG, OCI_MANIFEST};

/// Most members a base tarball may have. `docker save` writes a few per layer; the bound keeps
/// the member table small whatever the tarball holds.
pub const MAX_MEMBERS: usize = 100_000;

/// Most symlink/hardlink hops followed to reach a regular member (Linux's own limit is 40;
/// moby's legacy `docker save` links a repeated layer once).
const MAX_LINK_HOPS: usize = 16;

/// What a member is, as far as resolving names needs to know.
enum Member {
    /// A regular file, unpacked to this path (which ocib created).
    File {
        path: PathBuf,
        size: u64,
    },
    Dir,
    /// Target as written in the archive, relative to the link's directory.
    Symlink(PathBuf),
    /// Target as written in the archive, relative to the archive's top.
    Hardlink(PathBuf),
    /// A device node, FIFO or other type that is never a blob.
    Other(tar::EntryType),
}

/// The unpacked members of one tarball.
struct Members {
    /// How the tarball is named in errors (its exec path).
    shown: String,
    table: HashMap<PathBuf, Member>,
}

/// `name` with `.` components dropped, or None unless every other component is a normal one.
/// The empty path is the archive's top (a `./` directory entry).
fn member_name(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Where a symlink member `link` pointing at `target` leads, as a member name; None when the
/// target is absolute or climbs above the archive's top (that is outside the tarball).
fn symlink_target(link: &Path, target: &Path) -> Option<PathBuf> {
    let mut out = link.parent().map(Path::to_path_buf).unwrap_or_default();
    for c in target.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

impl Members {
    /// Reads every member of `tarball`, writing regular members' bytes under `work`.
    ///
    /// Only bytes present in the tarball are written (sparse members, whose holes a small
    /// tarball could make huge, are refused), so unpacking is bounded by the tarball's size.
    fn unpack(tarball: &Path, shown: &str, work: &Path) -> Result<Members> {
        let meta = std::fs::metadata(tarball).with_context(|| format!("base tarball {shown}: reading {}", tarball.display()))?;
        ensure!(meta.is_file(), "base tarball {shown}: {} is not a regular file", tarball.display());
        let file = File::open(tarball).with_context(|| format!("base tarball {shown}: opening {}", tarball.display()))?;
        std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
        let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 20, file));
        let mut table = HashMap::new();
        let entries = archive.entries().with_context(|| format!("base tarball {shown}: not a tar archive"))?;
        for (n, entry) in entries.enumerate() {
            let mut entry = entry.with_context(|| format!("base tarball {shown}: reading member {}", n + 1))?;
            let raw = entry.path().with_context(|| format!("base tarball {shown}: member {}: bad name", n + 1))?.into_owned();
            let name = member_name(&raw).ok_or_else(|| {
                anyhow!(
                    "base tarball {shown}: member {:?} is not a path inside the tarball (absolute, '..' or a prefix)",
                    raw.display().to_string()
                )
            })?;
            ensure!(table.len() < MAX_MEMBERS, "base tarball {shown}: more than {MAX_MEMBERS} members");
            let kind = entry.header().entry_type();
            let link = || -> Result<PathBuf> {
                Ok(entry
                    .link_name()
                    .with_context(|| format!("base tarball {shown}: member {}: bad link name", name.display()))?
                    .map(|l| l.into_owned())
                    .unwrap_or_default())
            };
            let member = match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = work.join(n.to_string());
                    let size = entry.size();
                    let mut out = BufWriter::new(File::create_new(&path).with_context(|| format!("creating {}", path.display()))?);
                    let copied = io::copy(&mut entry, &mut out)
                        .with_context(|| format!("base tarball {shown}: reading member {}", name.display()))?;
                    out.flush().with_context(|| format!("writing {}", path.display()))?;
                    ensure!(copied == size, "base tarball {shown}: member {} is truncated ({copied} of {size} bytes)", name.display());
                    Member::File { path, size }
                }
                tar::EntryType::Directory => Member::Dir,
                tar::EntryType::Symlink => Member::Symlink(link()?),
                tar::EntryType::Link => Member::Hardlink(link()?),
                tar::EntryType::GNUSparse => {
                    bail!("base tarball {shown}: member {} is a sparse file, which base tarballs never hold", name.display())
                }
                // pax global headers carry defaults, not a member.
                tar::EntryType::XGlobalHeader => continue,
                other => Member::Other(other),
            };
            // As when extracting, a later member of the same name replaces an earlier one.
            table.insert(name, member);
        }
        Ok(Members { shown: shown.to_owned(), table })
    }

    fn has(&self, name: &str) -> bool {
        self.table.contains_key(Path::new(name))
    }

    /// The unpacked file (and its size) that `name` leads to, following symlink and hardlink
    /// members inside the tarball. `what` says where the name came from, for errors.
    fn resolve(&self, name: &str, what: &str) -> Result<(&Path, u64)> {
        let shown = &self.shown;
        let mut current = member_name(Path::new(name)).filter(|n| !n.as_os_str().is_empty()).ok_or_else(|| {
            anyhow!("base tarball {shown}: {what} {name:?} is not a path inside the tarball (absolute, '..' or a prefix)")
        })?;
        for _ in 0..=MAX_LINK_HOPS {
            let here = current.display().to_string();
            current = match self.table.get(&current) {
                None => bail!("base tarball {shown}: {what} {name:?}: the tarball has no member {here:?}"),
                Some(Member::File { path, size }) => return Ok((path, *size)),
                Some(Member::Dir) => bail!("base tarball {shown}: {what} {name:?}: member {here:?} is a directory, not a file"),
                Some(Member::Other(kind)) => {
                    bail!("base tarball {shown}: {what} {name:?}: member {here:?} is a {kind:?} entry, not a regular file")
                }
                Some(Member::Symlink(target)) => symlink_target(&current, target).ok_or_else(|| {
                    anyhow!(
                        "base tarball {shown}: {what} {name:?}: symlink member {here:?} points outside the tarball (to {:?})",
                        target.display().to_string()
                    )
                })?,
                Some(Member::Hardlink(target)) => member_name(target).filter(|n| !n.as_os_str().is_empty()).ok_or_else(|| {
                    anyhow!(
                        "base tarball {shown}: {what} {name:?}: hardlink member {here:?} points outside the tarball (to {:?})",
                        target.display().to_string()
                    )
                })?,
            };
        }
        bail!("base tarball {shown}: {what} {name:?}: more than {MAX_LINK_HOPS} links to follow")
    }

    /// The bytes of the member `name` leads to, refused above `limit` before reading.
    fn read(&self, name: &str, what: &str, limit: u64) -> Result<Vec<u8>> {
        let (path, size) = self.resolve(name, what)?;
        ensure!(size <= limit, "base tarball {}: {what} {name:?} is {size} bytes, more than the {limit}-byte limit", self.shown);
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Turns the base image tarball `tarball` (shown as `shown` in errors) into an OCI layout at
/// `layout_dir`, using `work` for its unpacked members. Every file in the layout is one ocib
/// wrote: unpacked members are hardlinked, nothing of the host's is.
///
/// An OCI-layout tarball (`oci-layout` and `index.json` at its top: rules_oci's `format =
/// "oci"`, Docker 25+) keeps its own index and blobs, and `Layout::read` checks them against
/// their digests; a `docker save` archive's manifest.json (its first image) becomes an OCI
/// manifest.
pub fn unpack_base(tarball: &Path, shown: &str, work: &Path, layout_dir: &Path) -> Result<()> {
    let members = Members::unpack(tarball, shown, work)?;
    if members.has("oci-layout") && members.has("index.json") {
        return oci_layout(&members, layout_dir);
    }
    if members.has("manifest.json") {
        return docker_save(&members, layout_dir);
    }
    bail!("base tarball {shown}: neither an OCI layout (oci-layout and index.json) nor a docker save archive (manifest.json)")
}

fn oci_layout(members: &Members, layout_dir: &Path) -> Result<()> {
    let blobs = layout_dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    // Small files are read (capped) and written anew rather than linked.
    let marker = members.read("oci-layout", "member", MAX_MANIFEST_BYTES)?;
    std::fs::write(layout_dir.join("oci-layout"), marker)?;
    let index = members.read("index.json", "member", MAX_MANIFEST_BYTES)?;
    std::fs::write(layout_dir.join("index.json"), index)?;
    // Every `blobs/sha256/<hex>` member must be a regular file of the tarball; the layout gets
    // ocib's unpacked copy of it.
    let mut names: Vec<&PathBuf> = members.table.keys().collect();
    names.sort();
    for name in names {
        let Some(hex) = name.strip_prefix("blobs/sha256").ok().and_then(Path::to_str) else { continue };
        if spec::digest_hex(&format!("sha256:{hex}")).is_err() {
            continue;
        }
        let text = name.display().to_string();
        let (path, _) = members.resolve(&text, "member")?;
        let dest = blobs.join(hex);
        std::fs::hard_link(path, &dest).with_context(|| format!("linking {} to {}", path.display(), dest.display()))?;
    }
    Ok(())
}

fn docker_save(members: &Members, layout_dir: &Path) -> Result<()> {
    let shown = &members.shown;
    let bytes = members.read("manifest.json", "member", MAX_MANIFEST_BYTES)?;
    let images: Vec<DockerSaveEntry> = serde_json::from_slice(&bytes).with_context(|| {
        format!("base tarball {shown}: manifest.json is not a docker save manifest (a list of {{\"Config\", \"Layers\"}})")
    })?;
    let entry = images.first().ok_or_else(|| anyhow!("base tarball {shown}: manifest.json lists no image"))?;
    let config_bytes = members.read(&entry.config, "manifest.json \"Config\"", MAX_CONFIG_BYTES)?;
    let writer = LayoutWriter::create(layout_dir)?;
    let config_digest = writer.write_blob(&config_bytes)?;
    let mut layers = Vec::with_capacity(entry.layers.len());
    for (i, name) in entry.layers.iter().enumerate() {
        let what = format!("manifest.json \"Layers\"[{i}]");
        let (path, _) = members.resolve(name, &what)?;
        let (hex, size) = crate::exec::digest::file_sha256(path).with_context(|| format!("reading {}", path.display()))?;
        let digest = format!("sha256:{hex}");
        let mut head = [0u8; 4];
        let n = File::open(path)?.read(&mut head)?;
        // `path` is ocib's own unpacked copy, so linking it is safe.
        writer.link_blob(&digest, path)?;
        layers.push(Descriptor::new(spec::layer_media_type(spec::sniff_compression(&head[..n]), false), &digest, size));
    }
    let manifest = ImageManifest {
        schema_version: Some(2),
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: Descriptor::new(OCI_CONFIG, &config_digest, config_bytes.len() as u64),
        layers,
        annotations: None,
        extra: Default::default(),
    };
    let bytes = spec::canonical_json(&manifest)?;
    let digest = writer.write_blob(&bytes)?;
    writer.write_index(&spec::layout_index(OCI_MANIFEST, &digest, bytes.len() as u64))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_keep_only_normal_components() {
        assert_eq!(member_name(Path::new("./a/./b")), Some(PathBuf::from("a/b")));
        assert_eq!(member_name(Path::new("./")), Some(PathBuf::new()));
        assert_eq!(member_name(Path::new("/etc/passwd")), None);
        assert_eq!(member_name(Path::new("a/../../b")), None);
        assert_eq!(member_name(Path::new("a/../b")), None, "'..' is refused even when it stays inside");
    }

    #[test]
    fn symlink_targets_stay_inside() {
        let t = |link: &str, target: &str| symlink_target(Path::new(link), Path::new(target));
        assert_eq!(t("c/layer.tar", "../a/layer.tar"), Some(PathBuf::from("a/layer.tar")));
        assert_eq!(t("layer.tar", "./x"), Some(PathBuf::from("x")));
        assert_eq!(t("c/layer.tar", "../../etc/passwd"), None);
        assert_eq!(t("layer.tar", "/dev/zero"), None);
    }
}
