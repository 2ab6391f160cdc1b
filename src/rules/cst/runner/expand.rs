//! `$VAR` / `${VAR}` substitution exactly as Go's `os.Expand` does it, which CST uses to expand
//! command tests' command and args, file existence paths and env var values against the image env.

/// Go `os.Expand(s, mapping)`.
pub fn expand(s: &str, mapping: impl Fn(&str) -> String) -> String {
    let b = s.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    let mut j = 0;
    while j < b.len() {
        if b[j] == b'$' && j + 1 < b.len() {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(2 * b.len()));
            buf.extend_from_slice(&b[i..j]);
            let (name, w) = shell_name(&s[j + 1..]);
            if name.is_empty() && w > 0 {
                // Invalid syntax ("${}" or an unterminated "${"): the characters are eaten.
            } else if name.is_empty() {
                // "$" not followed by a name: kept.
                buf.push(b'$');
            } else {
                buf.extend_from_slice(mapping(name).as_bytes());
            }
            j += w;
            i = j + 1;
        }
        j += 1;
    }
    match out {
        None => s.to_owned(),
        Some(mut buf) => {
            buf.extend_from_slice(&b[i.min(b.len())..]);
            String::from_utf8_lossy(&buf).into_owned()
        }
    }
}

/// Expands against a `KEY=VALUE` map; unset variables become "".
pub fn expand_env(s: &str, env: &std::collections::BTreeMap<String, String>) -> String {
    expand(s, |k| env.get(k).cloned().unwrap_or_default())
}

fn is_shell_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9')
}

fn is_alnum(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's `getShellName`: the variable name after a `$` and how many bytes it spans.
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_shell_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        for i in 1..b.len() {
            if b[i] == b'}' {
                if i == 1 {
                    return ("", 2);
                }
                return (&s[1..i], i + 1);
            }
        }
        return ("", 1);
    }
    if is_shell_special(b[0]) {
        return (&s[0..1], 1);
    }
    let mut i = 0;
    while i < b.len() && is_alnum(b[i]) {
        i += 1;
    }
    (&s[..i], i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn matches_go_os_expand() {
        let env: BTreeMap<String, String> = [("HOME", "/root"), ("A_1", "x"), ("1", "one")].map(|(k, v)| (k.into(), v.into())).into();
        let e = |s: &str| expand_env(s, &env);
        assert_eq!(e("echo $HOME"), "echo /root");
        assert_eq!(e("${HOME}/bin"), "/root/bin");
        assert_eq!(e("$A_1-$A_1b"), "x-");
        assert_eq!(e("$UNSET."), ".");
        assert_eq!(e("cost $"), "cost $");
        assert_eq!(e("a $ b"), "a $ b");
        assert_eq!(e("$$"), "");
        assert_eq!(e("$1x"), "onex");
        assert_eq!(e("${}x"), "x");
        assert_eq!(e("${HOME"), "HOME");
        assert_eq!(e("${1}"), "one");
        assert_eq!(e("no vars"), "no vars");
        assert_eq!(e("ü$HOME€"), "ü/root€");
    }
}
