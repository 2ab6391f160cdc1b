//! A Debian mirror on 127.0.0.1 for rules_distroless tests: real packages fetched once with
//! the ordinary client (`apt-get download`), laid out as a mirror is (`pool/main/<p>/<pkg>/`,
//! `dists/<suite>/main/binary-<arch>/Packages`), served over HTTP/1.1; and the lock
//! rules_distroless would write for them, resolved from that `Packages` index at test time (so
//! no mirror host name is committed). `/tampered/<path>` serves a package with one byte changed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

/// One package of the mirror, from its control file and bytes.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// `pool/main/b/busybox-static/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb`.
    pub filename: String,
    pub sha256: String,
    pub depends: String,
}

pub struct Mirror {
    pub port: u16,
    pub packages: Vec<Package>,
    /// tzdata rebuilt with `dpkg-deb` under the version `<version>+ocib1`: served, but not in
    /// the `Packages` index (a newer upload a lock can be moved to).
    pub newer_tzdata: Package,
}

fn field(control: &str, name: &str) -> String {
    control.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::to_owned).unwrap_or_default()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The mirror with the packages `names`, downloaded once per test process; the test fails
/// when apt-get cannot download them.
pub fn mirror() -> &'static Mirror {
    static MIRROR: OnceLock<Mirror> = OnceLock::new();
    MIRROR.get_or_init(start)
}

const PACKAGES: &[&str] = &["busybox-static", "ca-certificates", "tini", "tzdata"];

fn start() -> Mirror {
    super::require_tool("apt-get", &["--version"]);
    super::require_tool("dpkg-deb", &["--version"]);
    // Kept for the whole test process (the server reads from it), removed when it exits.
    let dir: &'static Path = Box::leak(Box::new(tempfile::tempdir().expect("tempdir"))).path();
    super::remove_when_this_process_exits(dir);
    let download = dir.join("download");
    std::fs::create_dir_all(&download).expect("mkdir");
    let out = Command::new("apt-get").arg("download").args(PACKAGES).current_dir(&download).output().expect("run apt-get");
    if !out.status.success() {
        // The test cannot run its check without the packages: it fails, never passes.
        panic!("apt-get download {PACKAGES:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut packages = Vec::new();
    let mut index = String::new();
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&download).expect("read dir").map(|e| e.expect("entry").path()).collect();
    debs.sort();
    for deb in debs {
        let control = Command::new("dpkg-deb").arg("--field").arg(&deb).output().expect("dpkg-deb");
        assert!(control.status.success(), "dpkg-deb --field {}", deb.display());
        let control = String::from_utf8_lossy(&control.stdout).into_owned();
        let (name, version, arch) = (field(&control, "Package"), field(&control, "Version"), field(&control, "Architecture"));
        let bytes = std::fs::read(&deb).expect("read deb");
        let initial = if name.starts_with("lib") { &name[..4] } else { &name[..1] };
        let file_version = version.split_once(':').map_or(version.as_str(), |(_, v)| v);
        let filename = format!("pool/main/{initial}/{name}/{name}_{file_version}_{arch}.deb");
        let sha256 = sha256_hex(&bytes);
        index.push_str(control.trim_end());
        index.push_str(&format!("\nFilename: {filename}\nSize: {}\nSHA256: {sha256}\n\n", bytes.len()));
        let mut tampered = bytes.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0x01;
        files.insert(format!("/tampered/debian/{filename}"), tampered);
        files.insert(format!("/debian/{filename}"), bytes);
        packages.push(Package { name, version, arch, filename, sha256, depends: field(&control, "Depends") });
    }
    files.insert("/debian/dists/bookworm/main/binary-amd64/Packages".to_owned(), index.into_bytes());
    let newer_tzdata = rebuild(dir, packages.iter().find(|p| p.name == "tzdata").expect("tzdata downloaded"), &files);
    let newer_bytes = std::fs::read(dir.join("newer.deb")).expect("read the rebuilt package");
    files.insert(format!("/debian/{}", newer_tzdata.filename), newer_bytes);
    let files = Arc::new(files);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone()?);
                let mut first = String::new();
                reader.read_line(&mut first)?;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or_default().to_owned();
                let mut conn = conn;
                match files.get(&path) {
                    Some(body) => {
                        write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
                        conn.write_all(body)?;
                    }
                    None => write!(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?,
                }
                conn.flush()
            });
        }
    });
    Mirror { port, packages, newer_tzdata }
}

/// `package` unpacked and packed again with `dpkg-deb` under the version `<version>+ocib1`
/// (written to `<dir>/newer.deb`).
fn rebuild(dir: &Path, package: &Package, files: &BTreeMap<String, Vec<u8>>) -> Package {
    let original = dir.join("original.deb");
    std::fs::write(&original, &files[&format!("/debian/{}", package.filename)]).expect("write");
    let tree = dir.join("rebuild");
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new("dpkg-deb").args(args).output().expect("dpkg-deb");
        assert!(out.status.success(), "dpkg-deb {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["-R".as_ref(), original.as_os_str(), tree.as_os_str()]);
    let control_path = tree.join("DEBIAN/control");
    let version = format!("{}+ocib1", package.version);
    let control = std::fs::read_to_string(&control_path).expect("control");
    let control = control.replace(&format!("Version: {}\n", package.version), &format!("Version: {version}\n"));
    std::fs::write(&control_path, control).expect("write control");
    let newer = dir.join("newer.deb");
    run(&["--root-owner-group".as_ref(), "-b".as_ref(), tree.as_os_str(), newer.as_os_str()]);
    let bytes = std::fs::read(&newer).expect("read");
    let file_version = version.split_once(':').map_or(version.as_str(), |(_, v)| v);
    Package {
        filename: format!("pool/main/t/tzdata/tzdata_{file_version}_{}.deb", package.arch),
        sha256: sha256_hex(&bytes),
        version,
        ..package.clone()
    }
}

impl Mirror {
    /// The `Packages` index, fetched from the mirror as a resolver would.
    pub fn index(&self) -> String {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the mirror");
        write!(conn, "GET /debian/dists/bookworm/main/binary-amd64/Packages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut conn, &mut answer).expect("read");
        answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).expect("an HTTP answer")
    }

    /// rules_distroless's lock (version 1) for the manifest's packages, resolved from the
    /// mirror's `Packages` index: each with its URL under `base` (`http://127.0.0.1:<port>/debian`),
    /// sha256, and the dependencies the index can satisfy.
    pub fn lock(&self, base: &str) -> String {
        self.lock_with(base, None)
    }

    /// [`Mirror::lock`], with `replace`'s entry instead of the index's package of that name.
    pub fn lock_with(&self, base: &str, replace: Option<&Package>) -> String {
        let mut index = self.index();
        if let Some(new) = replace {
            let old = self.package(&new.name);
            index = index.replace(&format!("Version: {}\n", old.version), &format!("Version: {}\n", new.version));
            index = index.replace(&old.filename, &new.filename).replace(&old.sha256, &new.sha256);
        }
        let paragraphs: Vec<&str> = index.split("\n\n").filter(|p| !p.trim().is_empty()).collect();
        let in_index = |name: &str| paragraphs.iter().any(|p| field(p, "Package") == name);
        let mut packages = Vec::new();
        for p in &paragraphs {
            let (name, version) = (field(p, "Package"), field(p, "Version"));
            let sanitize = |s: &str| s.replace('+', "-p-").replace(':', "-").replace('~', "_");
            let key = format!("{}_{}_amd64", sanitize(&name), sanitize(&version));
            let dependencies: Vec<serde_json::Value> = field(p, "Depends")
                .split(',')
                .filter_map(|d| d.split(['|', '(']).next().map(str::trim).map(str::to_owned))
                .filter(|d| !d.is_empty() && in_index(d))
                .map(|d| {
                    let version = paragraphs.iter().find(|q| field(q, "Package") == d).map(|q| field(q, "Version")).unwrap_or_default();
                    serde_json::json!({"key": format!("{}_{}_amd64", sanitize(&d), sanitize(&version)), "name": d, "version": version})
                })
                .collect();
            packages.push(serde_json::json!({
                "arch": "amd64",
                "dependencies": dependencies,
                "key": key,
                "name": name,
                "sha256": field(p, "SHA256"),
                "urls": [format!("{base}/{}", field(p, "Filename"))],
                "version": version,
            }));
        }
        serde_json::to_string_pretty(&serde_json::json!({"packages": packages, "version": 1})).expect("json")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/debian", self.port)
    }

    pub fn package(&self, name: &str) -> &Package {
        self.packages.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{name} is not on the mirror"))
    }
}
