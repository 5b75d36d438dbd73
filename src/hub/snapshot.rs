//! What a snapshot is, remotely ([`Snapshot`], [`HubFile`]: a revision resolved to its commit and
//! files) and locally ([`LocalSnapshot`], [`ReadyFile`]: verified files on disk). Plain data shared by
//! `api`, `download` and `progress`, so none of them imports another for its types.

use std::path::PathBuf;

/// One file of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubFile {
    /// Path in the repo (`rfilename`).
    pub path: String,
    pub size: u64,
    /// The sha256 (lowercase hex) the source promises: `lfs.sha256` for Hub LFS files, an S3
    /// object's full-object `x-amz-checksum-sha256`.
    pub sha256: Option<String>,
    /// The MD5 (lowercase hex) the source promises: an S3 object's ETag when it is a plain MD5
    /// (a single-part upload without SSE-KMS/SSE-C). Never set for the Hub.
    pub md5: Option<String>,
}

/// A revision pinned to its commit, with the selected files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub repo: String,
    /// What the caller asked for (branch, tag or sha).
    pub revision: String,
    /// The commit sha it resolved to: what gets recorded.
    pub commit: String,
    pub files: Vec<HubFile>,
}

impl Snapshot {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A verified file, sent as soon as it is in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyFile {
    /// Path in the snapshot (repo path).
    pub path: String,
    /// Where it is on disk.
    pub local_path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// The outcome of a download.
#[derive(Clone, Debug)]
pub struct LocalSnapshot {
    pub repo: String,
    pub commit: String,
    pub dir: PathBuf,
    /// Every file, in snapshot order.
    pub files: Vec<ReadyFile>,
    /// Bytes fetched over the network by this run.
    pub downloaded_bytes: u64,
    /// Files that were already complete (nothing fetched).
    pub cached_files: usize,
}
