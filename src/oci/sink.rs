//! Writing large archives (layers, `docker load` tarballs) at the speed of the copy: a
//! [`FileSink`] takes a whole file's bytes, and [`HashedFile`] — the sink the actions write
//! their outputs to — moves them with `copy_file_range(2)` (in the kernel, no pass through user
//! space; a reflink where the filesystem shares extents) while a second thread computes the
//! output's sha256 from the bytes just written, so the CAS never reads the output back.
//!
//! Byte for byte, what a sink receives is what [`std::io::Write`] would have received: only
//! the way the bytes travel changes, so no digest changes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sha2::{Digest, Sha256};

/// Writes smaller than this are gathered in one buffer before they reach the file (and the
/// hasher): one syscall and one channel message per MiB, not per tar header.
const CHUNK: usize = 1 << 20;
/// A member smaller than this is read into the buffer like any other write: a
/// `copy_file_range` per small file costs more than the copy it saves.
const SMALL_FILE: u64 = 64 << 10;
/// Bytes per `copy_file_range` call: the hasher can start on a range as soon as it is written,
/// so the copy and the hashing overlap on two cores.
const COPY_STEP: u64 = 8 << 20;

/// A writer that can also take the first `len` bytes of a file, faster than through `write`
/// where it knows how.
pub trait FileSink: Write {
    /// Appends the first `len` bytes of `file` (read from offset 0, whatever its position).
    /// Fails with `UnexpectedEof` if the file has fewer (it changed while being copied).
    fn copy_file(&mut self, file: &File, len: u64) -> io::Result<()> {
        copy_through(file, 0, len, self)
    }
}

impl FileSink for Vec<u8> {}
impl<W: Write> FileSink for io::BufWriter<W> {}
impl<T: FileSink + ?Sized> FileSink for &mut T {
    fn copy_file(&mut self, file: &File, len: u64) -> io::Result<()> {
        (**self).copy_file(file, len)
    }
}

/// Copies `len` bytes of `file` from `offset` through a user-space buffer into `out`.
fn copy_through<W: Write + ?Sized>(file: &File, mut offset: u64, len: u64, out: &mut W) -> io::Result<()> {
    let end = offset + len;
    let mut buf = vec![0u8; usize::try_from(len.min(CHUNK as u64)).unwrap_or(CHUNK)];
    while offset < end {
        let want = usize::try_from((end - offset).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read_at(&mut buf[..want], offset)?;
        if n == 0 {
            return Err(changed(end - offset));
        }
        out.write_all(&buf[..n])?;
        offset += n as u64;
    }
    Ok(())
}

fn changed(missing: u64) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("source ended {missing} bytes early (it changed while being copied)"))
}

/// What the hashing thread is handed, in output order.
enum Piece {
    /// Bytes written from the buffer (the buffer comes back for reuse).
    Bytes(Vec<u8>),
    /// `len` bytes written into the output at `offset` by the kernel: read back from the page
    /// cache, where they just went.
    Written { offset: u64, len: u64 },
}

/// An output file written through a buffer and `copy_file_range`, hashed (sha256) on another
/// thread as it is written.
pub struct HashedFile {
    file: File,
    buf: Vec<u8>,
    /// Bytes in the file so far (the buffer not counted).
    written: u64,
    tx: Option<SyncSender<Piece>>,
    spare: Receiver<Vec<u8>>,
    hasher: Option<std::thread::JoinHandle<io::Result<String>>>,
    /// Whether to try `copy_file_range`; cleared once the kernel or filesystem refuses it.
    kernel_copy: bool,
}

impl HashedFile {
    /// Creates (or truncates) the file at `path`, open for reading too: the hasher reads back
    /// what the kernel copied.
    pub fn create(path: &std::path::Path) -> io::Result<HashedFile> {
        let file = File::options().read(true).write(true).create(true).truncate(true).open(path)?;
        let reader = file.try_clone()?;
        let (tx, rx) = sync_channel::<Piece>(4);
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(4);
        let hasher = std::thread::Builder::new().name("sha256".into()).spawn(move || -> io::Result<String> {
            let mut h = Sha256::new();
            let mut read_buf = Vec::new();
            for piece in rx {
                match piece {
                    Piece::Bytes(bytes) => {
                        h.update(&bytes);
                        let _ = spare_tx.try_send(bytes);
                    }
                    Piece::Written { mut offset, len } => {
                        // Only as large as needed: zeroing a MiB for a 2 MB layer's one range
                        // costs more than reading it.
                        let size = usize::try_from(len.min(CHUNK as u64)).unwrap_or(CHUNK);
                        if read_buf.len() < size {
                            read_buf.resize(size, 0);
                        }
                        let end = offset + len;
                        while offset < end {
                            let want = usize::try_from((end - offset).min(read_buf.len() as u64)).unwrap_or(read_buf.len());
                            let n = reader.read_at(&mut read_buf[..want], offset)?;
                            if n == 0 {
                                return Err(changed(end - offset));
                            }
                            h.update(&read_buf[..n]);
                            offset += n as u64;
                        }
                    }
                }
            }
            Ok(crate::exec::digest::hex(&h.finalize()))
        })?;
        Ok(HashedFile { file, buf: Vec::with_capacity(CHUNK), written: 0, tx: Some(tx), spare, hasher: Some(hasher), kernel_copy: true })
    }

    /// Never uses `copy_file_range` (the path taken where the filesystem lacks it).
    #[cfg(test)]
    fn without_kernel_copy(mut self) -> HashedFile {
        self.kernel_copy = false;
        self
    }

    fn send(&mut self, piece: Piece) -> io::Result<()> {
        match &self.tx {
            Some(tx) => tx.send(piece).map_err(|_| io::Error::other("the hashing thread stopped")),
            None => Err(io::Error::other("the output was finished")),
        }
    }

    /// Writes the buffer to the file and hands it to the hasher.
    fn drain(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        let fresh = self.spare.try_recv().map(|mut b| {
            b.clear();
            b
        });
        let full = std::mem::replace(&mut self.buf, fresh.unwrap_or_else(|_| Vec::with_capacity(CHUNK)));
        self.send(Piece::Bytes(full))
    }

    /// The file and the hex sha256 of everything written to it.
    pub fn finish(mut self) -> io::Result<(File, String)> {
        self.drain()?;
        drop(self.tx.take());
        let digest = self.hasher.take().ok_or_else(|| io::Error::other("the output was finished"))?.join();
        let digest = digest.map_err(|_| io::Error::other("the hashing thread panicked"))??;
        Ok((self.file, digest))
    }

    /// `copy_file_range` of `len` bytes of `src` from `offset`; false if the kernel or the
    /// filesystem has no such copy for these files (nothing was copied then).
    fn kernel_copy(&mut self, src: &File, start: u64, len: u64) -> io::Result<bool> {
        let (mut offset, end) = (start, start + len);
        while offset < end {
            let step = (end - offset).min(COPY_STEP);
            let mut off_in = i64::try_from(offset).map_err(io::Error::other)?;
            let step_len = usize::try_from(step).map_err(io::Error::other)?;
            // SAFETY: both descriptors are open files owned by `src` and `self.file`; the
            // offsets are a local (`off_in`) and the output's own position (null).
            let n =
                unsafe { libc::copy_file_range(src.as_raw_fd(), &mut off_in, self.file.as_raw_fd(), std::ptr::null_mut(), step_len, 0) };
            if n < 0 {
                let err = io::Error::last_os_error();
                let unsupported = matches!(
                    err.raw_os_error(),
                    Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EBADF | libc::EPERM)
                );
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if unsupported && offset == start {
                    return Ok(false);
                }
                // Part copied: finish through user space from where the kernel stopped.
                if unsupported {
                    self.kernel_copy = false;
                    return self.copy_rest(src, offset, end - offset).map(|()| true);
                }
                return Err(err);
            }
            if n == 0 {
                return Err(changed(end - offset));
            }
            let n = n as u64;
            self.send(Piece::Written { offset: self.written, len: n })?;
            self.written += n;
            offset += n;
        }
        Ok(true)
    }

    /// The user-space copy: through the buffer, as `write` would.
    fn copy_rest(&mut self, src: &File, offset: u64, len: u64) -> io::Result<()> {
        copy_through(src, offset, len, self)
    }
}

impl Write for HashedFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > CHUNK {
            self.drain()?;
        }
        if data.len() >= CHUNK {
            // Large enough on its own: written straight from the caller's slice.
            self.file.write_all(data)?;
            self.written += data.len() as u64;
            self.send(Piece::Bytes(data.to_vec()))?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.file.flush()
    }
}

impl FileSink for HashedFile {
    fn copy_file(&mut self, file: &File, len: u64) -> io::Result<()> {
        if len < SMALL_FILE || !self.kernel_copy {
            return copy_through(file, 0, len, self);
        }
        self.drain()?;
        if self.kernel_copy(file, 0, len)? {
            return Ok(());
        }
        self.kernel_copy = false;
        copy_through(file, 0, len, self)
    }
}

/// Reads exactly `len` bytes of a reader into a sink (for members that are not files).
pub fn copy_exact(reader: &mut dyn Read, len: u64, out: &mut impl Write) -> io::Result<()> {
    let copied = io::copy(&mut reader.take(len), out)?;
    if copied < len { Err(changed(len - copied)) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8).collect()
    }

    /// Small writes, a small file, a large file (kernel copy), more writes: the file holds the
    /// same bytes as a plain `Vec` sink and the digest is theirs, with and without
    /// `copy_file_range`.
    #[test]
    fn copies_and_hashes_the_same_bytes_with_or_without_kernel_copy() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        let large = dir.path().join("large");
        std::fs::write(&small, data(1000, 1)).unwrap();
        std::fs::write(&large, data(COPY_STEP as usize + 3 * CHUNK + 17, 2)).unwrap();
        let mut expected = Vec::new();
        fill(&mut expected, &small, &large);
        for kernel in [true, false] {
            let out = dir.path().join(format!("out-{kernel}"));
            let mut sink = HashedFile::create(&out).unwrap();
            if !kernel {
                sink = sink.without_kernel_copy();
            }
            fill(&mut sink, &small, &large);
            let (_, digest) = sink.finish().unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), expected, "kernel copy {kernel}");
            assert_eq!(digest, crate::exec::digest::sha256_hex(&expected), "kernel copy {kernel}");
        }
    }

    fn fill(sink: &mut impl FileSink, small: &std::path::Path, large: &std::path::Path) {
        sink.write_all(b"header").unwrap();
        sink.copy_file(&File::open(small).unwrap(), 1000).unwrap();
        sink.write_all(&data(3 * CHUNK / 2, 3)).unwrap();
        let large = File::open(large).unwrap();
        let len = large.metadata().unwrap().len();
        sink.copy_file(&large, len).unwrap();
        sink.copy_file(&large, 100).unwrap();
        sink.write_all(b"trailer").unwrap();
    }

    #[test]
    fn a_file_shorter_than_announced_fails_instead_of_writing_a_short_member() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, data(2 * SMALL_FILE as usize, 4)).unwrap();
        for kernel in [true, false] {
            let mut sink = HashedFile::create(&dir.path().join("out")).unwrap();
            if !kernel {
                sink = sink.without_kernel_copy();
            }
            let err = sink.copy_file(&File::open(&src).unwrap(), 3 * SMALL_FILE).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "kernel copy {kernel}: {err}");
        }
        let err = Vec::new().copy_file(&File::open(&src).unwrap(), 3 * SMALL_FILE).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
