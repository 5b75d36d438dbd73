//! A tar stream built by platform from a known file list (no absolute paths, no `..`, no links),
//! written into exec stdin frames with bounded memory (file data is read straight into the frames).

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::pod::Stdin;
use super::progress::CopyProgress;
use super::{StageError, StagedFile};
use crate::hub::hex;

const BLOCK: usize = 512;

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

/// Append one regular file as a tar entry. Its sha256 is `known` (the source promised it and the pod
/// checks the copy against it, so a file that changed locally is caught there) or computed while
/// streaming.
pub async fn append_file(
    out: &mut Stdin,
    entry: &str,
    local: &Path,
    known: Option<&str>,
    progress: &Arc<CopyProgress>,
) -> Result<StagedFile, StageError> {
    check_entry_path(entry)?;
    let file = std::fs::File::open(local).map_err(|e| StageError::io(local, e))?;
    let meta = file.metadata().map_err(|e| StageError::io(local, e))?;
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
    let hasher = known.is_none().then(Sha256::new);
    let (sent, hasher) = out
        .copy_file(file, size, hasher, progress)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => StageError::stream(e),
            _ => StageError::io(local, e),
        })?;
    if sent != size {
        return Err(StageError::io(
            local,
            std::io::Error::other(format!(
                "file changed while copying ({size} bytes expected, {sent} read)"
            )),
        ));
    }
    let pad = (BLOCK - (size as usize % BLOCK)) % BLOCK;
    out.write_all(&[0u8; BLOCK][..pad])
        .await
        .map_err(StageError::stream)?;
    let sha256 = match (known, hasher) {
        (Some(k), _) => k.to_string(),
        (None, Some(h)) => hex(&h.finalize()),
        (None, None) => return Err(StageError::Internal("no hasher".into())),
    };
    Ok(StagedFile {
        path: entry.to_string(),
        size,
        sha256,
    })
}

/// The end-of-archive marker (two zero blocks); closes the stream.
pub async fn finish(mut out: Stdin) -> Result<(), StageError> {
    out.write_all(&[0u8; 2 * BLOCK])
        .await
        .map_err(StageError::stream)?;
    out.close().await.map_err(StageError::stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Arc<CopyProgress> {
        Arc::new(CopyProgress::silent())
    }

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
        // Larger than one frame, so the copy crosses frame boundaries.
        let big: Vec<u8> = (0..(1u32 << 21) + 1500).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("sub/b.bin"), &big).unwrap();
        let (mut stdin, mut frames) = Stdin::channel();
        let collect = tokio::spawn(async move {
            let mut out = Vec::new();
            while let Some(f) = frames.recv().await {
                assert_eq!(f[0], 0, "every frame is on the stdin channel");
                assert!(f.len() <= (1 << 20) + 1);
                out.extend_from_slice(&f[1..]);
            }
            out
        });
        let a = append_file(
            &mut stdin,
            "a.json",
            &dir.path().join("a.json"),
            None,
            &quiet(),
        )
        .await
        .unwrap();
        let b = append_file(
            &mut stdin,
            "sub/b.bin",
            &dir.path().join("sub/b.bin"),
            Some("promised"),
            &quiet(),
        )
        .await
        .unwrap();
        finish(stdin).await.unwrap();
        let out = collect.await.unwrap();
        assert_eq!(a.size, 3);
        assert_eq!(
            a.sha256,
            "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"
        );
        assert_eq!(b.size, big.len() as u64);
        assert_eq!(b.sha256, "promised", "a known hash is not recomputed");
        let mut ar = tar::Archive::new(&out[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut body).unwrap();
            seen.push((name, body));
        }
        assert_eq!(seen[0], ("a.json".to_string(), b"{}\n".to_vec()));
        assert_eq!(seen[1].0, "sub/b.bin");
        assert!(seen[1].1 == big, "the large file arrives intact");
        assert_eq!(out.len() % 512, 0);
    }

    #[tokio::test]
    async fn directories_and_a_closed_stream_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        std::fs::write(&p, vec![1u8; 3 << 20]).unwrap();
        let (mut stdin, frames) = Stdin::channel();
        let err = append_file(&mut stdin, "d", dir.path(), None, &quiet())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // The pod side went away: the copy stops with a stream error instead of hanging.
        drop(frames);
        let err = append_file(&mut stdin, "x.bin", &p, None, &quiet())
            .await
            .unwrap_err();
        assert!(matches!(err, StageError::Stream(_)), "{err}");
    }
}
