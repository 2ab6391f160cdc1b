//! Embeds every file under `prelude/` into the binary, so `ocib` needs nothing beside itself.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read when the script runs, not baked in when it is compiled: a target directory copied
    // from another checkout reuses the compiled script, which then read the other checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    let root = Path::new(&manifest_dir).join("prelude");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for rel in files {
        println!("cargo:rerun-if-changed={}", root.join(&rel).display());
        let abs = root.join(&rel);
        writeln!(out, "    ({rel:?}, include_str!({:?})),", abs.display().to_string()).expect("write to string");
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("prelude_files.rs");
    std::fs::write(dest, out).expect("write prelude_files.rs");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("under prelude/").to_string_lossy().replace('\\', "/");
            out.push(rel);
        }
    }
}
