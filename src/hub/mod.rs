//! Hugging Face Hub downloads for `platform stage-model`: resolve a model revision to its commit
//! and file list, download the files into a local cache (parallel, ranged, resumable, retried,
//! verified) and report each verified file as soon as it is complete so a consumer (the PVC copy)
//! can start while the others still download.
//!
//! # API
//!
//! ```no_run
//! # async fn demo() -> Result<(), platform::hub::HubError> {
//! use platform::hub::{FileFilter, HubClient, NoProgress};
//! let client = HubClient::from_env(None)?; // HF_TOKEN / HUGGING_FACE_HUB_TOKEN / token file, HF_ENDPOINT
//! let snapshot = client.resolve("Qwen/Qwen2.5-0.5B-Instruct", "main", &FileFilter::default()).await?;
//! let (tx, mut rx) = tokio::sync::mpsc::channel(16);
//! let copier = tokio::spawn(async move { while let Some(file) = rx.recv().await { let _ = file; } });
//! let local = client.download(&snapshot, &NoProgress, Some(tx)).await?;
//! # let _ = (local, copier); Ok(()) }
//! ```
//!
//! * [`HubClient::new`] takes a [`HubConfig`] (endpoint, [`HfToken`], cache dir, concurrency,
//!   range size, [`RetryPolicy`]); [`HubClient::from_env`] / [`HubConfig::from_env`] build it from
//!   the environment. The token is wrapped in [`HfToken`], whose `Debug`/`Display` redact it.
//! * [`HubClient::resolve`] calls `GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true`
//!   and returns a [`Snapshot`] pinned to the commit sha, filtered by a [`FileFilter`].
//! * [`HubClient::download`] fills the cache (`<cache>/<org>--<name>/<commit>/<path>`) and returns
//!   a [`LocalSnapshot`]; [`HubClient::download_to_dir`] does the same into any directory
//!   (`--download-only --to DIR`). Both take a [`Reporter`](crate::report::Reporter) (the CLI's
//!   from `ui::report`, or [`NoProgress`]) and an optional `mpsc::Sender<ReadyFile>`.
//!
//! # Behaviour
//!
//! The engine (`download.rs`) is the same for every source: it asks an [`Origin`] for each
//! attempt's URL (the Hub's below; an S3 source signs a GetObject URL per attempt, `crate::s3`)
//! and checks the digests the snapshot promises (sha256; MD5 for an S3 ETag). Messages never show
//! a URL's query string.
//!
//! Files are fetched from `GET {endpoint}/{repo}/resolve/{commit}/{path}`. Files larger than
//! `range_size` (default 16 MiB) are split into ranges of that size fetched in parallel (at most
//! `concurrency` requests in flight overall). Bytes go to `<dir>/.partial/<path>.part` through a fixed-size buffer (memory
//! does not grow with file size); ranged files keep a `.part.state` sidecar with the bytes done per
//! range, single-stream files resume from the partial file's length, so a killed run is continued
//! with `Range` requests. Every request (metadata included) is retried on 408/429/5xx and on
//! connection errors with exponential backoff and jitter, honouring `Retry-After` (seconds or HTTP
//! date) and `RateLimit`/`RateLimit-Reset`; each retry is reported to the [`Progress`] observer
//! (attempt n of the maximum, time left), and one request gives up after
//! [`RetryPolicy::deadline`] (5 minutes) without a success, an attempt still waiting for its answer
//! included (waits the server asked for do not count; a range's clock restarts when bytes arrive).
//! A request that cannot even be built is a local error, not retried; a token an HTTP header
//! cannot carry is refused by [`HubClient::new`], naming its source, never showing it. Redirects are followed by hand; `Authorization` is only
//! sent to the endpoint's own origin, never to a CDN. Each file is verified (sha256 for LFS files,
//! size for the others, sha256 always computed for [`ReadyFile`]) and then renamed into place;
//! a mismatch deletes the partial file and fails naming the file and both hashes.
//! Partial files are not fsynced: resume state survives a killed process, not a power loss
//! (verification catches the latter).

mod api;
mod auth;
mod cache;
pub(crate) mod download;
mod error;
mod fetch;
mod filter;
pub(crate) mod http;
mod origin;
mod progress;
pub(crate) mod retry;
mod snapshot;
mod verify;

/// Reports nothing: for callers that want no output (tests, benches).
pub use crate::report::Silent as NoProgress;
pub use auth::{HfToken, HubConfig, TokenSource};
pub use cache::is_repo_part;
pub use download::{conflicts_in, remove_conflicts, Conflict};
pub use error::HubError;
pub use fetch::{fetch_to_dir, prepare_dir};
pub use filter::FileFilter;
pub use retry::RetryPolicy;
pub use snapshot::{HubFile, LocalSnapshot, ReadyFile, Snapshot};
pub use verify::{hex, md5_file, sha256_file};

pub use api::HubClient;
pub use origin::Origin;

/// Constants of the Hub module, in one place.
pub mod consts {
    use std::time::Duration;

    pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
    pub const ENV_ENDPOINT: &str = "HF_ENDPOINT";
    pub const ENV_TOKEN: &str = "HF_TOKEN";
    pub const ENV_TOKEN_LEGACY: &str = "HUGGING_FACE_HUB_TOKEN";
    pub const ENV_HF_HOME: &str = "HF_HOME";
    /// Overrides the download cache directory.
    pub const ENV_CACHE_DIR: &str = "PLATFORM_HUB_CACHE";
    pub const ENV_XDG_CACHE: &str = "XDG_CACHE_HOME";
    pub const TOKEN_FILE_NAME: &str = "token";
    /// Relative to `$HOME` when `HF_HOME` is unset.
    pub const DEFAULT_HF_HOME: &str = ".cache/huggingface";
    /// Relative to the user's cache dir.
    pub const CACHE_SUBDIR: &str = "platform/hub";

    pub const DEFAULT_CONCURRENCY: usize = 8;
    /// Files larger than this are split into ranges of this size. 16 MiB keeps the ranges of a
    /// file finishing roughly in order, so the sha256 (which follows the contiguous prefix)
    /// overlaps the download: on loopback 16 MiB ranges gave ~600 MB/s where 64 MiB gave ~340.
    pub const DEFAULT_RANGE_SIZE: u64 = 16 * 1024 * 1024;
    /// Buffer of a read-back (hashing a file, or what a stream has not hashed as it wrote).
    pub const WRITE_BUFFER: usize = 1024 * 1024;
    /// Buffer of the hash that follows a file written in ranges: small enough to stay in the
    /// core's cache between the read from the page cache and the hash.
    pub const FOLLOW_BUFFER: usize = 256 * 1024;
    /// Bytes a stream collects (as received, no copy) before one positional vectored write; small
    /// enough that the kernel copies them while they are still in the CPU's cache.
    pub const WRITE_BATCH: u64 = 256 * 1024;
    /// At most this many received buffers in one batch (a slow server sends small ones), within
    /// what one `pwritev` takes (IOV_MAX is 1024 on Linux).
    pub const MAX_IOVECS: usize = 256;
    /// A file's hash on its own thread looks for a stop at least this often (bytes).
    pub const HASH_STEP: u64 = 16 * 1024 * 1024;
    /// The resume state of a ranged download is saved at most this often (and whenever a range
    /// completes or a stream ends), so a killed run redoes at most this much of each range.
    pub const STATE_SAVE_INTERVAL: Duration = Duration::from_secs(1);
    pub const MAX_REDIRECTS: usize = 10;
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
    /// A stalled body (no byte for this long) is a retryable connection error.
    pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
    /// How much of an error response body is kept for the message.
    pub const ERROR_BODY_LIMIT: usize = 512;

    pub const PARTIAL_DIR: &str = ".partial";
    pub const PART_SUFFIX: &str = ".part";
    pub const STATE_SUFFIX: &str = ".part.state";

    pub const RETRY_MAX_ATTEMPTS: u32 = 10;
    pub const RETRY_BASE_DELAY: Duration = Duration::from_millis(500);
    pub const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(30);
    /// The longest server-requested wait (`Retry-After`, `RateLimit`) that is honoured as is.
    pub const RETRY_MAX_SERVER_WAIT: Duration = Duration::from_secs(300);
    /// One request (metadata, a file, a range) gives up after this long without a success, its
    /// attempts and waits together (a range's clock restarts when bytes arrive): an endpoint that
    /// accepts connections and never answers cannot hold a run for `READ_TIMEOUT` × attempts.
    pub const RETRY_DEADLINE: Duration = Duration::from_secs(300);

    /// Files selected when the caller gives no include globs.
    pub const DEFAULT_INCLUDE: &[&str] = &[
        "config.json",
        "generation_config.json",
        "tokenizer*.json",
        "tokenizer.model",
        "special_tokens_map.json",
        "vocab.*",
        "merges.txt",
        "*.safetensors",
        "*.safetensors.index.json",
    ];
    /// Never selected unless one of the caller's include globs matches the file.
    pub const DEFAULT_DENY: &[&str] = &["*.bin", "*.pt", "*.pth", "*.gguf", "original/**"];

    pub const USER_AGENT: &str = concat!("platform/", env!("CARGO_PKG_VERSION"), "; hub-download");
}
