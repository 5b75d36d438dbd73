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

/// A file's sha256 and, when asked for, its MD5 (lowercase hex).
pub(crate) type Sums = (String, Option<String>);

/// How far the file is written from byte 0, and whether the hashing should stop.
struct Frontier {
    written: u64,
    stop: bool,
}

struct Follow {
    frontier: std::sync::Mutex<Frontier>,
    moved: std::sync::Condvar,
}

impl Follow {
    fn frontier(&self) -> std::sync::MutexGuard<'_, Frontier> {
        crate::sync::lock(&self.frontier)
    }
}

/// The sha256 (and MD5) of a file written in ranges, computed on a thread of its own that follows
/// the written prefix: no stream waits for the hash, and when the last range is in, only the bytes
/// written after the frontier last moved remain to hash. Reads the bytes back from the file (its
/// pages are still in memory), so memory stays one buffer whatever the file's size.
pub(crate) struct PrefixHasher {
    size: u64,
    follow: std::sync::Arc<Follow>,
    thread: Option<std::thread::JoinHandle<std::io::Result<Sums>>>,
}

impl PrefixHasher {
    /// Starts hashing `file` (`size` bytes) into `state` as [`PrefixHasher::written`] reports.
    pub(crate) fn start(file: File, size: u64, state: HashState) -> std::io::Result<Self> {
        let follow = std::sync::Arc::new(Follow {
            frontier: std::sync::Mutex::new(Frontier {
                written: 0,
                stop: false,
            }),
            moved: std::sync::Condvar::new(),
        });
        let f = std::sync::Arc::clone(&follow);
        let thread = std::thread::Builder::new()
            .name("platform-hash".into())
            .spawn(move || follow_prefix(&f, &file, size, state))?;
        Ok(PrefixHasher {
            size,
            follow,
            thread: Some(thread),
        })
    }

    /// Bytes `[0, end)` are written.
    pub(crate) fn written(&self, end: u64) {
        let mut g = self.follow.frontier();
        if end > g.written {
            g.written = end;
            self.follow.moved.notify_one();
        }
    }

    /// Waits for the hash of the whole file (blocking: call it off the async workers). The file
    /// must be written in full ([`PrefixHasher::written`] with its size), else this is an error
    /// (and the thread stops), never a wait for bytes that will not come.
    pub(crate) fn finish(mut self) -> std::io::Result<Sums> {
        let written = self.follow.frontier().written;
        if written < self.size {
            return Err(std::io::Error::other(format!(
                "only {written} of {} bytes are written",
                self.size
            )));
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(std::io::Error::other("the hashing thread stopped")),
        }
    }
}

impl Drop for PrefixHasher {
    /// An unfinished hash stops (the download failed or was dropped): the thread ends.
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.follow.frontier().stop = true;
            self.follow.moved.notify_one();
        }
    }
}

fn follow_prefix(
    follow: &Follow,
    file: &File,
    size: u64,
    mut state: HashState,
) -> std::io::Result<Sums> {
    let mut scratch = Vec::with_capacity(super::consts::FOLLOW_BUFFER);
    while state.upto < size {
        let end = {
            let mut g = follow.frontier();
            while g.written <= state.upto && !g.stop {
                g = follow.moved.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            if g.stop {
                return Err(std::io::Error::other("the download stopped before the end"));
            }
            g.written
        };
        // In steps, so a stop is noticed within one read.
        let step = end.min(state.upto + super::consts::HASH_STEP);
        state.catch_up(file, step, &mut scratch)?;
    }
    Ok(state.finish_all())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn the_prefix_hasher_follows_writes_out_of_order_and_gives_the_files_sums() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = content(5 * 1024 * 1024 + 17);
        let file = File::create_new(&path).unwrap();
        file.set_len(data.len() as u64).unwrap();
        let mut state = HashState::new();
        state.md5 = Some(md5::Md5::new());
        let h = PrefixHasher::start(file.try_clone().unwrap(), data.len() as u64, state).unwrap();
        let third = data.len() / 3;
        // The last third first, then the first, then the middle: the prefix moves twice.
        file.write_all_at(&data[2 * third..], 2 * third as u64)
            .unwrap();
        file.write_all_at(&data[..third], 0).unwrap();
        h.written(third as u64);
        file.write_all_at(&data[third..2 * third], third as u64)
            .unwrap();
        h.written(data.len() as u64);
        let (sha, md5) = h.finish().unwrap();
        assert_eq!(sha, hex(&Sha256::digest(&data)));
        assert_eq!(md5.unwrap(), hex(&md5::Md5::digest(&data)));
    }

    #[test]
    fn an_unfinished_file_is_an_error_not_a_wait_and_a_dropped_hasher_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content(4096)).unwrap();
        let file = File::open(&path).unwrap();
        let h = PrefixHasher::start(file.try_clone().unwrap(), 4096, HashState::new()).unwrap();
        h.written(1000);
        let err = h.finish().unwrap_err();
        assert_eq!(err.to_string(), "only 1000 of 4096 bytes are written");
        // Dropped before the end: the thread is told to stop (and the test does not hang).
        let h = PrefixHasher::start(file, 4096, HashState::new()).unwrap();
        h.written(10);
        drop(h);
    }
}
