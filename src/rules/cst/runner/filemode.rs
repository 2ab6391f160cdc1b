//! Go's `os.FileMode` as CST compares it: the mode a `*tar.Header` reports (`FileInfo().Mode()`)
//! and its `String()` form (`-rwxr-xr-x`, `drwxr-xr-x`, `Lrwxrwxrwx`, `urwxr-xr-x`).

pub const MODE_DIR: u32 = 1 << 31;
pub const MODE_SYMLINK: u32 = 1 << 27;
pub const MODE_DEVICE: u32 = 1 << 26;
pub const MODE_NAMED_PIPE: u32 = 1 << 25;
pub const MODE_SOCKET: u32 = 1 << 24;
pub const MODE_SETUID: u32 = 1 << 23;
pub const MODE_SETGID: u32 = 1 << 22;
pub const MODE_CHAR_DEVICE: u32 = 1 << 21;
pub const MODE_STICKY: u32 = 1 << 20;

/// Go `tar.Header.FileInfo().Mode()` from the header's mode field and type flag byte.
pub fn from_tar(header_mode: u32, typeflag: u8) -> u32 {
    let mut mode = header_mode & 0o777;
    if header_mode & 0o4000 != 0 {
        mode |= MODE_SETUID;
    }
    if header_mode & 0o2000 != 0 {
        mode |= MODE_SETGID;
    }
    if header_mode & 0o1000 != 0 {
        mode |= MODE_STICKY;
    }
    match header_mode & !0o7777 {
        0o40000 => mode |= MODE_DIR,
        0o10000 => mode |= MODE_NAMED_PIPE,
        0o120000 => mode |= MODE_SYMLINK,
        0o60000 => mode |= MODE_DEVICE,
        0o20000 => mode |= MODE_DEVICE | MODE_CHAR_DEVICE,
        0o140000 => mode |= MODE_SOCKET,
        _ => {}
    }
    match typeflag {
        b'2' => mode |= MODE_SYMLINK,
        b'3' => mode |= MODE_DEVICE | MODE_CHAR_DEVICE,
        b'4' => mode |= MODE_DEVICE,
        b'5' => mode |= MODE_DIR,
        b'6' => mode |= MODE_NAMED_PIPE,
        _ => {}
    }
    mode
}

/// Go `FileMode.String()`.
pub fn to_string(mode: u32) -> String {
    const TYPES: &[u8] = b"dalTLDpSugct?";
    let mut out = String::with_capacity(22);
    for (i, c) in TYPES.iter().enumerate() {
        if mode & (1 << (31 - i)) != 0 {
            out.push(*c as char);
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    const RWX: &[u8] = b"rwxrwxrwx";
    for (i, c) in RWX.iter().enumerate() {
        out.push(if mode & (1 << (8 - i)) != 0 { *c as char } else { '-' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_file_mode_strings() {
        assert_eq!(to_string(from_tar(0o755, b'0')), "-rwxr-xr-x");
        assert_eq!(to_string(from_tar(0o644, b'0')), "-rw-r--r--");
        assert_eq!(to_string(from_tar(0o755, b'5')), "drwxr-xr-x");
        assert_eq!(to_string(from_tar(0o40755, b'5')), "drwxr-xr-x");
        assert_eq!(to_string(from_tar(0o777, b'2')), "Lrwxrwxrwx");
        assert_eq!(to_string(from_tar(0o4755, b'0')), "urwxr-xr-x");
        assert_eq!(to_string(from_tar(0o2755, b'0')), "grwxr-xr-x");
        assert_eq!(to_string(from_tar(0o1777, b'5')), "dtrwxrwxrwx");
        assert_eq!(to_string(from_tar(0o666, b'3')), "Dcrw-rw-rw-");
        assert_eq!(to_string(from_tar(0o644, b'6')), "prw-r--r--");
        assert_eq!(to_string(from_tar(0o644, b'1')), "-rw-r--r--");
        assert_eq!(to_string(0), "----------");
    }
}
