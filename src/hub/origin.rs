//! Where the download engine gets a file from: the one thing that differs between sources. The
//! Hub resolves `{endpoint}/{repo}/resolve/{commit}/{path}`; an S3 source signs a GetObject URL at
//! every attempt (`crate::s3`). Everything else (ranges, resume, retries, verification, progress,
//! the ready-file hook) is the engine's, the same for every source.

use reqwest::Url;

use super::api::HubClient;
use super::error::HubError;
use super::http::{encode_path, status_error};
use super::snapshot::{HubFile, Snapshot};

/// A source of snapshot files for the engine.
pub trait Origin: Send + Sync {
    /// The URL of one attempt at `file` of `snap`. Called before every request, so a source whose
    /// URLs carry a signature signs each one afresh (a long run never meets an expired one).
    fn file_url(&self, snap: &Snapshot, file: &HubFile) -> Result<Url, HubError>;

    /// The error for a final (not retried) HTTP `status` answering the request for `path`; `url`
    /// has no query string, `body` is the start of the answer.
    fn status_error(
        &self,
        snap: &Snapshot,
        path: &str,
        status: u16,
        url: &Url,
        body: String,
        token_sent: bool,
    ) -> HubError;
}

impl Origin for HubClient {
    fn file_url(&self, snap: &Snapshot, file: &HubFile) -> Result<Url, HubError> {
        self.http.url(&format!(
            "{}/resolve/{}/{}",
            encode_path(&snap.repo),
            encode_path(&snap.commit),
            encode_path(&file.path)
        ))
    }

    fn status_error(
        &self,
        snap: &Snapshot,
        path: &str,
        status: u16,
        url: &Url,
        body: String,
        token_sent: bool,
    ) -> HubError {
        match status {
            404 => HubError::FileNotFound {
                repo: snap.repo.clone(),
                commit: snap.commit.clone(),
                path: path.to_string(),
                url: url.to_string(),
            },
            _ => status_error(&snap.repo, status, url, body, token_sent),
        }
    }
}
