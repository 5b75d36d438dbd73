//! Incremental sha256 of a file being written in ranges: the hash follows the contiguous prefix
//! of completed bytes, so most of the hashing overlaps the download.

use std::fs::File;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

pub(crate) struct HashState {
    hasher: Sha256,
    /// Bytes `[0, upto)` are hashed.
    upto: u64,
}

impl HashState {
    pub(crate) fn new() -> Self {
        HashState {
            hasher: Sha256::new(),
            upto: 0,
        }
    }

    /// Hashes `buf` if it starts exactly at the frontier; returns whether it did.
    pub(crate) fn feed(&mut self, offset: u64, buf: &[u8]) -> bool {
        if offset != self.upto || buf.is_empty() {
            return false;
        }
        self.hasher.update(buf);
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
            self.hasher.update(&scratch[..n]);
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
