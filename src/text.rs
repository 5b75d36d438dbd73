//! Char-safe text cutting for messages: slicing a `&str` by bytes panics inside a multi-byte
//! character (a branch name like `fix/größe` under `--allow-unpushed`), so every shortened name,
//! revision or value shown to a user goes through here.

/// The first `n` characters of `s` (all of it when shorter).
pub fn prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `s` cut to `n` characters with `…` appended when something was cut.
pub fn ellipsize(s: &str, n: usize) -> String {
    let p = prefix(s, n);
    if p.len() == s.len() {
        s.to_string()
    } else {
        format!("{p}…")
    }
}

/// A revision as shown to users: 12 characters, like `git log --abbrev=12`.
pub fn short_rev(r: &str) -> &str {
    prefix(r, 12)
}

/// `1 replica`, `2 replicas`: a count and its noun, plural with an `s` unless it is 1.
pub fn count(n: impl Into<i128>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Lowercase hex of bytes (digests, random tokens).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    push_hex(&mut out, bytes);
    out
}

/// [`hex`] appended to `out` (no string per digest: the tree's index writes 6516 of them).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0xab, 0x10, 0xff]), "00ab10ff");
        let mut out = String::from("sum ");
        push_hex(&mut out, &[0x0f, 0xf0]);
        assert_eq!(out, "sum 0ff0");
    }

    #[test]
    fn counts_are_plural_unless_one() {
        assert_eq!(count(1, "replica"), "1 replica");
        assert_eq!(count(0, "replica"), "0 replicas");
        assert_eq!(count(2u32, "replica"), "2 replicas");
    }

    #[test]
    fn cuts_on_characters_not_bytes() {
        assert_eq!(prefix("größe-branch", 3), "grö");
        assert_eq!(prefix("ab", 12), "ab");
        assert_eq!(short_rev("ééééééééééééééé"), "éééééééééééé");
        assert_eq!(ellipsize("größe", 3), "grö…");
        assert_eq!(ellipsize("größe", 5), "größe");
        assert_eq!(ellipsize("", 0), "");
    }
}
