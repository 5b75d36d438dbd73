//! A tar stream built by platform from a known file list (no absolute paths, no `..`, no links),
//! written to an async sink with bounded memory, hashing every file on the way.

use std::path::Path;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{StageError, StagedFile};
use crate::hub::hex;

const BLOCK: usize = 512;
const CHUNK: usize = 1 << 20;

/// A path inside the model directory that is safe to put in a tar entry.
pub fn check_entry_path(p: &str) -> Result<(), StageError> {
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && p.len() <= 255
        && p.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StageError::BadPath(p.to_string()))
    }
}

/// Append one regular file as a tar entry; returns its size and sha256 (computed while streaming).
pub async fn append_file<W: AsyncWrite + Unpin>(
    out: &mut W,
    entry: &str,
    local: &Path,
) -> Result<StagedFile, StageError> {
    check_entry_path(entry)?;
    let mut file = tokio::fs::File::open(local)
        .await
        .map_err(|e| StageError::io(local, e))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| StageError::io(local, e))?;
    if !meta.is_file() {
        return Err(StageError::BadPath(format!("{entry} (not a regular file)")));
    }
    let size = meta.len();
    let mut header = tar::Header::new_ustar();
    header
        .set_path(entry)
        .map_err(|e| StageError::BadPath(format!("{entry}: {e}")))?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    out.write_all(header.as_bytes())
        .await
        .map_err(StageError::stream)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut sent: u64 = 0;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| StageError::io(local, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).await.map_err(StageError::stream)?;
        sent += n as u64;
    }
    if sent != size {
        return Err(StageError::io(
            local,
            std::io::Error::other(format!(
                "file changed while copying ({size} bytes expected, {sent} read)"
            )),
        ));
    }
    let pad = (BLOCK - (size as usize % BLOCK)) % BLOCK;
    out.write_all(&vec![0u8; pad])
        .await
        .map_err(StageError::stream)?;
    Ok(StagedFile {
        path: entry.to_string(),
        size,
        sha256: hex(&hasher.finalize()),
    })
}

/// The end-of-archive marker: two zero blocks.
pub async fn finish<W: AsyncWrite + Unpin>(out: &mut W) -> Result<(), StageError> {
    out.write_all(&[0u8; 2 * BLOCK])
        .await
        .map_err(StageError::stream)?;
    out.flush().await.map_err(StageError::stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_checked() {
        for ok in ["config.json", "a/b.safetensors", "tokenizer_config.json"] {
            check_entry_path(ok).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a b",
            "x\\y",
        ] {
            assert!(check_entry_path(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_stream_is_a_valid_tar_with_hashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), b"{}\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.bin"), vec![7u8; 1500]).unwrap();
        let mut out: Vec<u8> = Vec::new();
        let a = append_file(&mut out, "a.json", &dir.path().join("a.json"))
            .await
            .unwrap();
        let b = append_file(&mut out, "sub/b.bin", &dir.path().join("sub/b.bin"))
            .await
            .unwrap();
        finish(&mut out).await.unwrap();
        assert_eq!(a.size, 3);
        assert_eq!(
            a.sha256,
            "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"
        );
        assert_eq!(b.size, 1500);
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.json", "sub/b.bin"]);
        assert_eq!(out.len() % 512, 0);
    }
}
