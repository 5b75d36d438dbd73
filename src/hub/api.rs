//! The client and the metadata call: resolve a revision to its commit and file list.

use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::Deserialize;

use super::auth::HubConfig;
use super::cache::{validate_file_path, validate_repo};
use super::error::HubError;
use super::filter::FileFilter;
use super::http::{encode_path, encode_segment, status_error, Failure, Http};
use super::retry::RetryState;
use super::snapshot::{HubFile, Snapshot};
use crate::report::{Reporter, Silent};

#[derive(Deserialize)]
struct ModelInfo {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    sha256: Option<String>,
    oid: Option<String>,
    size: Option<u64>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Talks to one Hub endpoint.
pub struct HubClient {
    pub(crate) config: HubConfig,
    pub(crate) http: Http,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HubClient {
    pub fn new(config: HubConfig) -> Result<Self, HubError> {
        let http = Http::new(&config)?;
        Ok(HubClient { config, http })
    }

    /// [`HubConfig::from_env`] then [`HubClient::new`].
    pub fn from_env(token_file: Option<&Path>) -> Result<Self, HubError> {
        Self::new(HubConfig::from_env(token_file)?)
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Where [`HubClient::download`] puts a commit of a repo.
    pub fn snapshot_dir(&self, repo: &str, commit: &str) -> Result<PathBuf, HubError> {
        super::cache::snapshot_dir(&self.config.cache_dir, repo, commit)
    }

    /// `GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true`, retried like every request
    /// (silently: see [`HubClient::resolve_with`]).
    pub async fn resolve(
        &self,
        repo: &str,
        revision: &str,
        filter: &FileFilter,
    ) -> Result<Snapshot, HubError> {
        self.resolve_with(repo, revision, filter, &Silent).await
    }

    /// [`HubClient::resolve`], telling `progress` about every retry.
    pub async fn resolve_with(
        &self,
        repo: &str,
        revision: &str,
        filter: &FileFilter,
        progress: &dyn Reporter,
    ) -> Result<Snapshot, HubError> {
        validate_repo(repo)?;
        let url = self.http.url(&format!(
            "api/models/{}/revision/{}?blobs=true",
            encode_path(repo),
            encode_segment(revision)
        ))?;
        let body = self.fetch_metadata(repo, revision, &url, progress).await?;
        parse_snapshot(repo, revision, &url, filter, &body)
    }

    /// The body of the metadata answer at `url`, retried within the policy's budget; a 404 is
    /// [`HubError::RepoNotFound`] (the repo or the revision does not exist, or is private).
    async fn fetch_metadata(
        &self,
        repo: &str,
        revision: &str,
        url: &Url,
        progress: &dyn Reporter,
    ) -> Result<Vec<u8>, HubError> {
        let mut retry = RetryState::new(&self.config.retry);
        loop {
            // The answer and its body, within what is left of the deadline.
            let attempt = async {
                match self.http.get(url, None).await {
                    Ok(resp) => resp.bytes().await.map_err(|e| Failure::Retry {
                        reason: format!(
                            "{}: {}",
                            super::http::shown_url(url),
                            super::http::error_chain(&e.without_url())
                        ),
                        wait: None,
                    }),
                    Err(f) => Err(f),
                }
            };
            let failure = match retry.bounded(url.as_str(), attempt).await? {
                Ok(b) => return Ok(Vec::from(b)),
                Err(f) => f,
            };
            match failure {
                Failure::Retry { reason, wait } => {
                    let (d, line) = retry.failed(url.as_str(), reason, wait)?;
                    super::progress::retrying(progress, &line, d);
                    tokio::time::sleep(d).await;
                }
                Failure::Status {
                    status: 404, url, ..
                } => {
                    return Err(HubError::RepoNotFound {
                        repo: repo.to_string(),
                        revision: revision.to_string(),
                        url: url.to_string(),
                    })
                }
                Failure::Status {
                    status,
                    url,
                    body,
                    token_sent,
                } => return Err(status_error(repo, status, &url, body, token_sent)),
                Failure::Fatal(e) => return Err(e),
            }
        }
    }
}

/// The error for metadata at `url` that does not say what a snapshot needs.
fn bad_metadata(repo: &str, url: &Url, reason: String) -> HubError {
    HubError::BadMetadata {
        repo: repo.to_string(),
        url: url.to_string(),
        reason,
    }
}

/// The snapshot the metadata `body` describes: its commit (a full sha) and the files `filter`
/// selects, sorted by path, each path checked so a download cannot write outside its directory.
fn parse_snapshot(
    repo: &str,
    revision: &str,
    url: &Url,
    filter: &FileFilter,
    body: &[u8],
) -> Result<Snapshot, HubError> {
    let bad = |reason: String| bad_metadata(repo, url, reason);
    let info: ModelInfo = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let commit = info.sha.ok_or_else(|| bad("no `sha` field".into()))?;
    if !is_hex(&commit, 40) {
        return Err(bad(format!("`sha` {commit:?} is not a commit sha")));
    }
    let mut files = Vec::new();
    for s in info.siblings {
        if !filter.matches(&s.rfilename) {
            continue;
        }
        validate_file_path(repo, &s.rfilename)?;
        files.push(hub_file(repo, url, s)?);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Snapshot {
        repo: repo.to_string(),
        revision: revision.to_string(),
        commit,
        files,
    })
}

/// One file of the metadata: its size and, for an LFS file, its sha256 (normalised to lowercase
/// hex). Both come only with `?blobs=true`, so their absence is bad metadata.
fn hub_file(repo: &str, url: &Url, s: Sibling) -> Result<HubFile, HubError> {
    let bad = |reason: String| bad_metadata(repo, url, reason);
    let (size, sha256) = match s.lfs {
        Some(lfs) => {
            let sha = lfs
                .sha256
                .or(lfs.oid)
                .map(|h| h.trim_start_matches("sha256:").to_ascii_lowercase());
            let sha = sha.filter(|h| is_hex(h, 64)).ok_or_else(|| {
                bad(format!(
                    "{}: LFS entry without a valid sha256 (was `?blobs=true` ignored?)",
                    s.rfilename
                ))
            })?;
            (lfs.size.or(s.size), Some(sha))
        }
        None => (s.size, None),
    };
    let size = size.ok_or_else(|| {
        bad(format!(
            "{}: no size (was `?blobs=true` ignored?)",
            s.rfilename
        ))
    })?;
    Ok(HubFile {
        path: s.rfilename,
        size,
        sha256,
        md5: None,
    })
}
