//! A Go module proxy for tests (`go help goproxy`): module trees under
//! `testdata/gomod/modules/<host>/<path>@<version>/` zipped in Go's module-zip format
//! (entries `<module>@<version>/<file>`), served on loopback as `/@v/list`, `.info`, `.mod` and
//! `.zip`, or written out as a `file://` proxy directory. Counts the requests it answers, and
//! can serve altered bytes for one file (a tampered zip).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// `golang.org/x/mod/module.EscapePath`.
pub fn escape(path: &str) -> String {
    path.chars().map(|c| if c.is_ascii_uppercase() { format!("!{}", c.to_ascii_lowercase()) } else { c.to_string() }).collect()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// `%XX` escapes decoded (the go command sends `!` as `%21`).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A zip of `files` (stored, as `archive/zip` reads any method), in the order given.
pub fn zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let head = |sig: u32, buf: &mut Vec<u8>, central: bool| {
            buf.extend_from_slice(&sig.to_le_bytes());
            if central {
                buf.extend_from_slice(&[20, 3]);
            }
            buf.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0x21, 0x58]); // version, flags, stored, time, date
            buf.push(0);
            buf.extend_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
        };
        head(0x0403_4b50, &mut out, false);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        head(0x0201_4b50, &mut central, true);
        central.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // comment length, disk, internal attrs
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let at = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Every proxy file of the modules under `root` (`<host>/<path>@<version>/...`), by path
/// relative to the proxy root (`example.com/!tagged/@v/v1.0.0.zip`).
pub fn proxy_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.expect("walk modules");
        let rel = entry.path().strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        let Some((module, version)) = rel.rsplit_once('@') else { continue };
        if !entry.file_type().is_dir() || version.contains('/') {
            continue;
        }
        let mut files = Vec::new();
        for f in walkdir::WalkDir::new(entry.path()).sort_by_file_name() {
            let f = f.expect("walk module");
            if f.file_type().is_file() {
                let name = f.path().strip_prefix(entry.path()).expect("under module").to_string_lossy().into_owned();
                files.push((format!("{module}@{version}/{name}"), std::fs::read(f.path()).expect("read module file")));
            }
        }
        let go_mod = std::fs::read(entry.path().join("go.mod")).expect("module has a go.mod");
        let base = format!("{}/@v/{}", escape(module), escape(version));
        out.insert(format!("{base}.zip"), zip(&files));
        out.insert(format!("{base}.mod"), go_mod);
        out.insert(format!("{base}.info"), format!("{{\"Version\":\"{version}\",\"Time\":\"2024-01-01T00:00:00Z\"}}").into_bytes());
        versions.entry(escape(module)).or_default().push(version.to_owned());
    }
    for (module, list) in versions {
        out.insert(format!("{module}/@v/list"), list.iter().map(|v| format!("{v}\n")).collect::<String>().into_bytes());
    }
    out
}

/// The modules of `testdata/gomod/modules`.
pub fn testdata_modules() -> PathBuf {
    super::testdata("gomod/modules")
}

/// Writes a `file://` proxy of `files` under `dir`.
pub fn write_file_proxy(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (rel, data) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, data).expect("write proxy file");
    }
}

/// A loopback HTTP module proxy.
pub struct GoProxy {
    pub url: String,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    requests: Arc<AtomicUsize>,
    /// Paths requested, in order.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl GoProxy {
    /// Serves `files` until the process ends (one thread per connection, `Connection: close`).
    pub fn start(files: BTreeMap<String, Vec<u8>>) -> GoProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let files = Arc::new(Mutex::new(files));
        let requests = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (f, r, l) = (files.clone(), requests.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (f, r, l) = (f.clone(), r.clone(), l.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = percent_decode(line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/'));
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).map(|n| n == 0).unwrap_or(true) || header == "\r\n" {
                            break;
                        }
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    l.lock().expect("log").push(path.clone());
                    let body = f.lock().expect("files").get(&path).cloned();
                    let (status, body) = match body {
                        Some(b) => ("200 OK", b),
                        None => ("404 Not Found", format!("not found: {path}\n").into_bytes()),
                    };
                    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                });
            }
        });
        GoProxy { url, files, requests, log }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Serves `data` for `path` from now on.
    pub fn replace(&self, path: &str, data: Vec<u8>) {
        self.files.lock().expect("files").insert(path.to_owned(), data);
    }

    /// The bytes served for `path`.
    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.files.lock().expect("files").get(path).cloned()
    }
}
