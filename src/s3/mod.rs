//! Model weights from `s3://bucket/prefix` on any S3-compatible endpoint, for `platform
//! stage-model`: the objects under `prefix/` are the model's files.
//!
//! # API
//!
//! ```no_run
//! # async fn demo() -> Result<(), platform::s3::S3Error> {
//! use platform::hub::{FileFilter, NoProgress};
//! use platform::s3::S3Client;
//! // config.yaml's `s3:` block (endpoint, region, pathStyle, verifyTls) and the AWS environment.
//! let client = S3Client::from_env(None)?;
//! let snap = client.resolve("models", "qwen2.5-0.5b", &FileFilter::default(), &NoProgress).await?;
//! let local = client.download(&snap, &NoProgress, None).await?;
//! # let _ = local; Ok(()) }
//! ```
//!
//! # Behaviour
//!
//! * Settings ([`S3Settings`]): endpoint `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else
//!   `s3.endpoint`, else `https://s3.<region>.amazonaws.com`; region `s3.region`, else
//!   `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`; path-style addressing by default with
//!   a custom endpoint.
//! * Credentials ([`AwsCredentials`]) come from the user's environment only: `AWS_ACCESS_KEY_ID` /
//!   `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else the shared credentials file's profile;
//!   none means anonymous requests (said before the first). Secrets are wrapped in [`Secret`],
//!   whose `Debug`/`Display` redact them; a server's error message that echoes one is scrubbed.
//! * Requests are SigV4-presigned by `rusty-s3` (sans-IO) and sent by the Hub download engine
//!   (`crate::hub`): one engine, two sources. Every attempt signs a fresh URL, so a signature
//!   never expires in a long run. A URL in a message never has its query string.
//! * [`S3Client::resolve`]: ListObjectsV2 page by page (continuation tokens, each answer at most
//!   [`consts::MAX_LIST_BODY`] bytes, at most [`consts::MAX_OBJECTS`] objects); a key outside the
//!   prefix or whose path is absolute or has `..` is refused; the file filter selects (the Hub's
//!   default set, or `--include` globs, e.g. one GGUF file); then a HEAD per selected object with
//!   `x-amz-checksum-mode: ENABLED`. Verification per file ([`Check`]): the full-object
//!   `x-amz-checksum-sha256` when given, else the ETag when it is a plain MD5 (single-part upload,
//!   not SSE-KMS/SSE-C), else the size only. The sha256 is always computed for the PVC marker.
//! * The snapshot's identity (its "commit") hashes the endpoint, bucket, prefix and every selected
//!   object's path, size and ETag: the cache directory (`<cache>/s3--<bucket>/<identity>/`) and
//!   the PVC marker change when any object does, and not otherwise (re-staging is a no-op).
//! * Downloads are the engine's: parallel ranges, resume from a killed run, retries on
//!   408/429/5xx and dropped connections honouring `Retry-After`, a deadline per request,
//!   progress through the [`Reporter`](crate::report::Reporter), each verified file handed on at
//!   once (the PVC copy overlaps the download).
//! * Errors ([`S3Error`]) name the bucket, key and endpoint and the fix: access denied (which
//!   credentials were sent, or none), no such bucket, an object gone, an empty prefix, an
//!   endpoint that does not answer.

mod client;
mod credentials;
mod endpoint;
mod error;
mod list;
mod settings;

pub use client::{report_checks, Check, S3Client, S3Snapshot};
pub use credentials::{AwsCredentials, CredentialSource, Secret};
pub use endpoint::EndpointSource;
pub use error::S3Error;
pub use settings::S3Settings;

/// Constants of the S3 source, in one place.
pub mod consts {
    use std::time::Duration;

    pub const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    pub const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    pub const ENV_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    pub const ENV_PROFILE: &str = "AWS_PROFILE";
    pub const ENV_SHARED_CREDENTIALS_FILE: &str = "AWS_SHARED_CREDENTIALS_FILE";
    pub const ENV_REGION: &str = "AWS_REGION";
    pub const ENV_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
    pub const ENV_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
    pub const ENV_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
    pub const DEFAULT_PROFILE: &str = "default";
    /// Relative to `$HOME`.
    pub const DEFAULT_CREDENTIALS_FILE: &str = ".aws/credentials";
    pub const DEFAULT_REGION: &str = "us-east-1";

    /// A signed URL is valid this long after signing. Every attempt signs afresh, and S3 checks
    /// the expiry when a request starts, so a transfer longer than this is fine.
    pub const SIGN_EXPIRY: Duration = Duration::from_secs(3600);
    /// Keys per ListObjectsV2 page (the API's maximum).
    pub const LIST_PAGE_KEYS: usize = 1000;
    /// The largest ListObjectsV2 answer read (1000 keys of 1 KiB each, with their metadata).
    pub const MAX_LIST_BODY: usize = 8 * 1024 * 1024;
    /// Objects under a prefix; a model has a few dozen files.
    pub const MAX_OBJECTS: usize = 100_000;
    pub const MAX_LIST_PAGES: usize = MAX_OBJECTS / LIST_PAGE_KEYS + 1;

    pub const HEADER_CHECKSUM_MODE: &str = "x-amz-checksum-mode";
    pub const CHECKSUM_MODE_ENABLED: &str = "ENABLED";
    pub const HEADER_CHECKSUM_SHA256: &str = "x-amz-checksum-sha256";
    pub const HEADER_CHECKSUM_TYPE: &str = "x-amz-checksum-type";
    pub const HEADER_SSE: &str = "x-amz-server-side-encryption";
    pub const HEADER_SSE_CUSTOMER: &str = "x-amz-server-side-encryption-customer-algorithm";
    /// What an S3 snapshot's `revision` says (an S3 prefix has no revisions: the listing is pinned
    /// by its identity).
    pub const REVISION: &str = "listing";
}
