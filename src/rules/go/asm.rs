//! Go assembly (`.s` files) in a package, as cmd/go builds it (`gc.go` `asm`/`symabis`,
//! `exec.go`): the assembly's symbol ABIs first (`asm -gensymabis`, with an empty
//! `go_asm.h`), so `compile` can take `-symabis` and write the real `go_asm.h` (`-asmhdr`);
//! then each `.s` file is assembled and the objects are appended to the package archive (as
//! cmd/go's `pack` does in-process with `cmd/internal/archive`: Go distributions need not ship
//! the `pack` tool). Modules such as golang.org/x/sys/unix need it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::actions::GoToolchain;
use super::go_source::{self, BuildContext, GoFile};
use crate::exec::ActionContext;

/// The `.s` files of `srcs` that build for `build` (file name suffixes and `//go:build`
/// lines, as for Go files).
pub fn asm_sources(srcs: &[String], ctx: &ActionContext, build: &BuildContext) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for src in srcs.iter().filter(|s| s.ends_with(".s")) {
        let text = std::fs::read_to_string(ctx.input(src)?).with_context(|| format!("reading {src}"))?;
        // Only the constraint matters here: a `//go:build` line before the first code.
        let constraint = text
            .lines()
            .map(str::trim)
            .take_while(|l| l.is_empty() || l.starts_with("//") || l.starts_with("/*") || l.starts_with('*'))
            .find_map(|l| l.strip_prefix("//go:build").filter(|e| e.starts_with(char::is_whitespace)).map(|e| e.trim().to_owned()));
        let file = GoFile { constraint, ..Default::default() };
        let name = src.rsplit('/').next().unwrap_or(src);
        if go_source::matches(name, &file, build)? {
            out.push(src.clone());
        }
    }
    Ok(out)
}

/// What the compile of a package with assembly needs, and the assembly step after it.
pub struct Asm<'a> {
    pub toolchain: &'a GoToolchain,
    pub env: &'a BTreeMap<String, String>,
    pub package_path: &'a str,
    pub goarch: &'a str,
    pub files: Vec<String>,
    /// Scratch directory (relative to the exec root) for go_asm.h, symabis and objects.
    pub objdir: String,
}

impl Asm<'_> {
    fn common_args(&self, root: &Path) -> Vec<String> {
        let mut args = vec![
            self.toolchain.tool_path("asm").display().to_string(),
            "-p".into(),
            self.package_path.to_owned(),
            "-trimpath".into(),
            format!("{}=>", root.display()),
            "-I".into(),
            self.objdir.clone(),
            "-I".into(),
            self.toolchain.goroot.join("pkg").join("include").display().to_string(),
            "-D".into(),
            format!("GOOS_{}", self.env.get("GOOS").map(String::as_str).unwrap_or("linux")),
            "-D".into(),
            format!("GOARCH_{}", self.goarch),
        ];
        // cmd/go defines the microarchitecture level the assembly may test.
        match self.goarch {
            "amd64" => args.extend(["-D".into(), "GOAMD64_v1".into()]),
            "arm64" => args.extend(["-D".into(), "GOARM64_v8.0".into()]),
            _ => {}
        }
        // Package-local headers (`#include "asm_linux.h"`) sit beside the sources.
        let dirs: std::collections::BTreeSet<&str> = self.files.iter().map(|f| f.rsplit_once('/').map_or(".", |(d, _)| d)).collect();
        for dir in dirs {
            args.extend(["-I".into(), dir.to_owned()]);
        }
        args
    }

    /// Writes an empty `go_asm.h` and the symbol ABIs; returns the compile flags that use
    /// them.
    pub fn before_compile(&self, ctx: &mut ActionContext) -> Result<Vec<String>> {
        let root = ctx.exec_root.clone();
        std::fs::create_dir_all(root.join(&self.objdir))?;
        std::fs::write(root.join(&self.objdir).join("go_asm.h"), "")?;
        let symabis = format!("{}/symabis", self.objdir);
        let mut argv = self.common_args(&root);
        argv.extend(["-gensymabis".into(), "-o".into(), symabis.clone()]);
        argv.extend(self.files.iter().cloned());
        ctx.run(&argv, self.env, &root)?;
        // Functions implemented in assembly have no Go body: the package is not complete.
        Ok(vec!["-symabis".into(), symabis, "-asmhdr".into(), format!("{}/go_asm.h", self.objdir), "-complete=false".into()])
    }

    /// Assembles every file (with the compiler's `go_asm.h`) and appends the objects to the
    /// archive `out`.
    pub fn after_compile(&self, ctx: &mut ActionContext, out: &str) -> Result<()> {
        let root = ctx.exec_root.clone();
        let mut archive = std::fs::OpenOptions::new().append(true).open(root.join(out)).with_context(|| format!("opening {out}"))?;
        for (i, file) in self.files.iter().enumerate() {
            let obj = format!("{}/{i}.o", self.objdir);
            let mut argv = self.common_args(&root);
            argv.extend(["-o".into(), obj.clone(), file.clone()]);
            ctx.run(&argv, self.env, &root)?;
            let data = std::fs::read(root.join(&obj)).with_context(|| format!("reading {obj}"))?;
            append_ar_entry(&mut archive, &format!("{i}.o"), &data).with_context(|| format!("appending {obj} to {out}"))?;
        }
        Ok(())
    }
}

/// Appends one member to a Unix `ar` archive, as `cmd/internal/archive.AddEntry` writes it:
/// a 60-byte header (name, mtime 0, uid 0, gid 0, mode 0644 in octal, size) and the data,
/// padded to an even length.
fn append_ar_entry(archive: &mut impl Write, name: &str, data: &[u8]) -> std::io::Result<()> {
    let header = format!("{name:<16}{:<12}{:<6}{:<6}{:<8o}{:<10}`\n", 0, 0, 0, 0o644, data.len());
    archive.write_all(header.as_bytes())?;
    archive.write_all(data)?;
    if data.len() % 2 == 1 {
        archive.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ar_members_have_60_byte_headers_and_even_length() {
        let mut out = Vec::new();
        super::append_ar_entry(&mut out, "0.o", b"abc").unwrap();
        assert_eq!(out.len(), 60 + 4);
        assert_eq!(&out[..16], b"0.o             ");
        assert_eq!(&out[40..58], b"644     3         ");
        assert_eq!(&out[58..60], b"`\n");
    }
}
