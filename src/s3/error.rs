//! Errors of S3 sources: each names the bucket, key or endpoint and the fix (the variable or the
//! config field to set); never a secret, never a signed URL's query string.

use std::path::PathBuf;

use super::consts::*;
use super::endpoint::EndpointSource;
use crate::hub::HubError;

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{source_text}: {reason}")]
    InvalidSource { source_text: String, reason: String },
    #[error(
        "invalid S3 endpoint `{endpoint}` (from {from}): {reason}; an endpoint is an http(s) URL \
         such as https://minio.example:9000"
    )]
    InvalidEndpoint {
        endpoint: String,
        from: EndpointSource,
        reason: String,
    },
    #[error(
        "${have} is set but ${missing} is not: set both (or neither, to use \
         {ENV_SHARED_CREDENTIALS_FILE} / ~/.aws/credentials)"
    )]
    IncompleteCredentials {
        have: &'static str,
        missing: &'static str,
    },
    #[error("cannot read the AWS credentials file: {source}")]
    CredentialsFile {
        path: PathBuf,
        source: crate::fsread::ReadError,
    },
    #[error(
        "${ENV_PROFILE} names profile `{profile}`, which {} does not have: add a [{profile}] \
         section with aws_access_key_id and aws_secret_access_key, or unset {ENV_PROFILE}",
        .path.display()
    )]
    NoSuchProfile { profile: String, path: PathBuf },
    #[error(
        "profile `{profile}` of {} lacks aws_access_key_id or aws_secret_access_key: add both \
         (profiles with sso_*, role_arn or credential_process are not read: export \
         {ENV_ACCESS_KEY_ID} and {ENV_SECRET_ACCESS_KEY} instead)",
        .path.display()
    )]
    IncompleteProfile { profile: String, path: PathBuf },
    #[error("{what}: access denied by {endpoint} (HTTP {status}{code}); {credentials}")]
    AccessDenied {
        what: String,
        endpoint: String,
        status: u16,
        /// `, InvalidAccessKeyId: …` (the server's error code and message), or empty.
        code: String,
        /// What was sent and how to fix it.
        credentials: String,
    },
    #[error(
        "bucket `{bucket}` does not exist at {endpoint} (HTTP 404 NoSuchBucket): check the bucket \
         in the model's source, and the endpoint ({from}) and region `{region}` (s3.region, \
         {ENV_REGION})"
    )]
    NoSuchBucket {
        bucket: String,
        endpoint: String,
        from: EndpointSource,
        region: String,
    },
    #[error(
        "s3://{bucket}/{key} was listed but is gone (HTTP 404 at {endpoint}): the objects changed \
         while staging; run the command again"
    )]
    NoSuchKey {
        bucket: String,
        key: String,
        endpoint: String,
    },
    #[error(
        "{source_text}: no objects under the prefix `{prefix}` at {endpoint}: check the prefix in \
         the model's source (and the endpoint, {from})"
    )]
    NoObjects {
        source_text: String,
        prefix: String,
        endpoint: String,
        from: EndpointSource,
    },
    #[error(
        "{source_text}: {listed} object(s) under the prefix, none selected by the file set \
         (config.json, tokenizer*, *.safetensors, …): name the files with --include"
    )]
    NoneSelected { source_text: String, listed: usize },
    #[error(
        "{source_text}: refusing key `{key}` listed by {endpoint}: {why} (a key becomes a file \
         path under the model directory)"
    )]
    UnsafeKey {
        source_text: String,
        key: String,
        endpoint: String,
        why: &'static str,
    },
    #[error(
        "{source_text}: more than {limit} objects under the prefix: a model is a few dozen files; \
         point the source at the model's own prefix"
    )]
    TooManyObjects { source_text: String, limit: usize },
    #[error("{url}: not a ListObjectsV2 answer: {reason}")]
    BadListing { url: String, reason: String },
    #[error("{what}: HTTP {status} from {endpoint}{code}")]
    Http {
        what: String,
        endpoint: String,
        status: u16,
        code: String,
    },
    #[error(
        "{what}: no success from {endpoint} ({attempts} attempt(s){deadline}; last: {last}); check \
         the endpoint ({from}) and the network, or run again later (a download resumes where it \
         stopped)"
    )]
    NoAnswer {
        what: String,
        endpoint: String,
        from: EndpointSource,
        attempts: u32,
        /// ` within the 300s deadline`, or empty when the attempts ran out first.
        deadline: String,
        last: String,
        timed_out: bool,
    },
    /// The download engine's own failures (I/O, verification, …).
    #[error(transparent)]
    Download(#[from] HubError),
}
