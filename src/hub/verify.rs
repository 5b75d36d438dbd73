//! Incremental sha256 of a file being written in ranges: the hash follows the contiguous prefix
//! of completed bytes, so most of the hashing overlaps the download.

use std::fs::File;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use super::snapshot::HubFile;

pub(crate) struct HashState {
    hasher: Sha256,
    /// Also an MD5, when the source promised one (an S3 ETag): the same pass over the bytes.
    md5: Option<md5::Md5>,
    /// Bytes `[0, upto)` are hashed.
    upto: u64,
}

impl HashState {
    pub(crate) fn new() -> Self {
        HashState {
            hasher: Sha256::new(),
            md5: None,
            upto: 0,
        }
    }

    /// The sums `file` is checked against: sha256 always, MD5 when the source gave one.
    pub(crate) fn for_file(file: &HubFile) -> Self {
        HashState {
            md5: file.md5.as_ref().map(|_| md5::Md5::new()),
            ..Self::new()
        }
    }

    fn update(&mut self, buf: &[u8]) {
        self.hasher.update(buf);
        if let Some(m) = &mut self.md5 {
            m.update(buf);
        }
    }

    /// Hashes `buf` if it starts exactly at the frontier; returns whether it did.
    pub(crate) fn feed(&mut self, offset: u64, buf: &[u8]) -> bool {
        if offset != self.upto || buf.is_empty() {
            return false;
        }
        self.update(buf);
        self.upto += buf.len() as u64;
        true
    }

    /// Reads `[upto, end)` back from `file` and hashes it.
    pub(crate) fn catch_up(
        &mut self,
        file: &File,
        end: u64,
        scratch: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        while self.upto < end {
            let n = (end - self.upto).min(scratch.capacity().max(64 * 1024) as u64) as usize;
            scratch.resize(n, 0);
            file.read_exact_at(&mut scratch[..n], self.upto)?;
            let (h, m) = (&mut self.hasher, &mut self.md5);
            h.update(&scratch[..n]);
            if let Some(m) = m {
                m.update(&scratch[..n]);
            }
            self.upto += n as u64;
        }
        Ok(())
    }

    pub(crate) fn upto(&self) -> u64 {
        self.upto
    }

    pub(crate) fn finish(self) -> String {
        hex(&self.hasher.finalize())
    }

    /// The sha256, and the MD5 when it was asked for (lowercase hex).
    pub(crate) fn finish_all(self) -> (String, Option<String>) {
        let md5 = self.md5.map(|m| hex(&m.finalize()));
        (hex(&self.hasher.finalize()), md5)
    }
}

pub use crate::text::hex;

/// sha256 of a whole file (cached small files, whose sha is not in the metadata).
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut st = HashState::new();
    let mut scratch = Vec::with_capacity(super::consts::WRITE_BUFFER);
    st.catch_up(&file, len, &mut scratch)?;
    Ok(st.finish())
}

/// MD5 of a whole file (lowercase hex): what an S3 ETag of a single-part upload is.
pub fn md5_file(path: &std::path::Path) -> std::io::Result<String> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut st = HashState {
        md5: Some(md5::Md5::new()),
        ..HashState::new()
    };
    let mut scratch = Vec::with_capacity(super::consts::WRITE_BUFFER);
    st.catch_up(&file, len, &mut scratch)?;
    Ok(st.finish_all().1.unwrap_or_default())
}
