//! The one OpenSSH key shape `ssh-key` 0.6 cannot read: an ECDSA P-521 key whose private scalar is
//! written in fewer than 66 bytes (an mpint drops leading zero bytes; about half of all P-521 keys).
//! Such a key is checked here at the container level (PROTOCOL.key): the magic, no cipher, one key,
//! the P-521 public key, the private section's matching check integers and a scalar of 1 to 66
//! bytes. Anything else is left to `ssh-key`'s error.

use base64ct::{Base64, Encoding};

const MAGIC: &[u8] = b"openssh-key-v1\0";
const P521: &[u8] = b"ecdsa-sha2-nistp521";

/// Whether `text` is a well-formed, unencrypted OpenSSH ECDSA P-521 private key.
pub fn is_unencrypted_p521(text: &str) -> bool {
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let Ok(bytes) = Base64::decode_vec(&body) else {
        return false;
    };
    check(&bytes).is_some()
}

fn check(bytes: &[u8]) -> Option<()> {
    let mut r = Reader(bytes.strip_prefix(MAGIC)?);
    (r.string()? == b"none").then_some(())?;
    (r.string()? == b"none").then_some(())?; // kdf
    r.string()?; // kdf options
    (r.u32()? == 1).then_some(())?;
    let mut public = Reader(r.string()?);
    (public.string()? == P521).then_some(())?;
    let private = r.string()?;
    (!private.is_empty() && private.len() % 8 == 0).then_some(())?;
    let mut p = Reader(private);
    (p.u32()? == p.u32()?).then_some(())?;
    (p.string()? == P521).then_some(())?;
    (p.string()? == b"nistp521").then_some(())?;
    (p.string()?.len() == 133).then_some(())?; // the uncompressed public point
    let scalar = p.string()?;
    (1..=67).contains(&scalar.len()).then_some(())
}

/// SSH wire format: big-endian u32 and length-prefixed strings.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        (self.0.len() >= n).then_some(())?;
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p521_keys_of_every_length_pass_and_broken_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..16 {
            let key = dir.path().join(format!("k{n}"));
            let out = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ecdsa", "-b", "521", "-N", "", "-C", "t", "-f"])
                .arg(&key)
                .output()
                .expect("ssh-keygen (apt-get install openssh-client)");
            assert!(out.status.success(), "{out:?}");
            let text = std::fs::read_to_string(&key).unwrap();
            assert!(is_unencrypted_p521(&text), "{text}");
            let cut: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
            assert!(!is_unencrypted_p521(&cut));
        }
        assert!(!is_unencrypted_p521(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nbm9wZQ==\n-----END OPENSSH PRIVATE KEY-----\n"
        ));
    }
}
