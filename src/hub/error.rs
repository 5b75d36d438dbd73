//! Errors of the Hub module; each carries its subject (repo, file, URL) and never a token.

use std::path::PathBuf;

use super::consts::ENV_TOKEN;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "invalid repo id {repo:?}: expected `org/name` made of letters, digits, `-`, `_`, `.`"
    )]
    InvalidRepo { repo: String },
    #[error("{repo}: refusing unsafe file path {path:?} from the Hub")]
    InvalidPath { repo: String, path: String },
    #[error("invalid Hub endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("invalid glob {glob:?}: {reason}")]
    InvalidGlob { glob: String, reason: String },
    #[error(
        "{repo}: access denied (HTTP {status}) for {url}; the repo is gated or private: accept its \
         terms on the Hub and set {ENV_TOKEN} (or HUGGING_FACE_HUB_TOKEN, or pass --token-file) to a \
         token with access{}",
        if *token_sent { " (a token was sent but was refused)" } else { " (no token was sent)" }
    )]
    Unauthorized {
        repo: String,
        status: u16,
        url: String,
        token_sent: bool,
    },
    #[error("{repo}: repository or revision {revision:?} not found at {url} (HTTP 404)")]
    RepoNotFound {
        repo: String,
        revision: String,
        url: String,
    },
    #[error("{repo}@{commit}: listed file {path:?} not found at {url} (HTTP 404)")]
    FileNotFound {
        repo: String,
        commit: String,
        path: String,
        url: String,
    },
    #[error("{url}: HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("{repo}: unexpected metadata from {url}: {reason}")]
    BadMetadata {
        repo: String,
        url: String,
        reason: String,
    },
    #[error(
        "{repo}@{commit}: sha256 mismatch for {path:?}: expected {expected}, got {actual}; the \
         download was deleted"
    )]
    HashMismatch {
        repo: String,
        commit: String,
        path: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{repo}: MD5 mismatch for {path:?}: the ETag says {expected}, the bytes give {actual}; the \
         download was deleted (the object changed while downloading? run again)"
    )]
    Md5Mismatch {
        repo: String,
        path: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{repo}@{commit}: size mismatch for {path:?}: expected {expected} bytes, got {actual}"
    )]
    SizeMismatch {
        repo: String,
        commit: String,
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the Hub token file: {source}")]
    TokenFile {
        path: PathBuf,
        source: crate::fsread::ReadError,
    },
    #[error(
        "the Hub token from {from} contains {defect}, which an HTTP header cannot carry (the token \
         is not shown): fix {from}; a token is one line of letters and digits, like hf_…"
    )]
    MalformedToken { from: String, defect: &'static str },
    #[error("{url}: cannot make the request: {reason} (a local problem: not retried)")]
    Request { url: String, reason: String },
    #[error(
        "{url}: no success within the {deadline} deadline ({attempts} attempt(s); last: {last}); the \
         endpoint (HF_ENDPOINT) does not answer: check the network or the mirror, or run again later \
         (a download resumes where it stopped)"
    )]
    DeadlineExceeded {
        url: String,
        deadline: String,
        attempts: u32,
        last: String,
    },
    #[error("cannot find the user's cache directory: set {var} or HOME")]
    NoCacheDir { var: &'static str },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("background task failed: {0}")]
    Task(String),
    #[error(
        "--to {}: {count} file(s) there differ from {origin} at {commit} and would be \
         overwritten: {shown}; choose an empty (or new) directory, or pass --force to replace them",
        .dir.display()
    )]
    WouldOverwrite {
        dir: PathBuf,
        count: usize,
        /// `hf://org/name`, `s3://bucket/prefix`.
        origin: String,
        commit: String,
        shown: String,
    },
    /// A final answer of a source other than the Hub, said in that source's words (an S3
    /// AccessDenied naming the bucket, the key and the credentials to set).
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("{count} files failed; first: {first}")]
    Several { count: usize, first: Box<HubError> },
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HubError::Io {
            path: path.into(),
            source,
        }
    }
}
