//! The S3 client: list a prefix (paginated, bounded), read each object's checksum (HEAD), and
//! hand the snapshot to the download engine with an [`Origin`] that signs a GetObject URL at
//! every attempt.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use reqwest::header::HeaderMap;
use reqwest::{Method, Response, Url};
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, UrlStyle};
use tokio::sync::mpsc::Sender;

use super::consts::*;
use super::credentials::AwsCredentials;
use super::error::S3Error;
use super::list::{self, Listed};
use super::settings::S3Settings;
use crate::hub::download::Engine;
use crate::hub::http::{error_chain, shown_url, Failure, Http};
use crate::hub::retry::RetryState;
use crate::hub::{
    FileFilter, HubConfig, HubError, HubFile, LocalSnapshot, Origin, ReadyFile, Snapshot,
};
use crate::report::{size, Reporter};

/// How a file is verified once downloaded (its sha256 is always computed for the PVC marker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Against the object's full-object `x-amz-checksum-sha256`.
    Sha256,
    /// Against its ETag, a plain MD5.
    Md5,
    /// Size only: a multipart ETag, or an encrypted object's, is no MD5 and the server gave no
    /// full-object checksum.
    Size,
}

impl Check {
    pub fn describe(self) -> &'static str {
        match self {
            Check::Sha256 => "sha256 (x-amz-checksum-sha256)",
            Check::Md5 => "MD5 (the ETag)",
            Check::Size => "size only (multipart or encrypted ETag, no checksum)",
        }
    }
}

/// A listing pinned by its identity (see `list::identity`), ready for the engine.
#[derive(Clone, Debug)]
pub struct S3Snapshot {
    pub bucket: String,
    /// Without a trailing `/`; empty for the whole bucket.
    pub prefix: String,
    /// `repo` is `s3://bucket/prefix`, `commit` the identity, `revision` [`REVISION`].
    pub snapshot: Snapshot,
    /// Each file's check, in the snapshot's order.
    pub checks: Vec<Check>,
    /// Objects under the prefix, selected or not.
    pub listed: usize,
}

/// Talks to one S3 endpoint with one set of credentials (or none).
pub struct S3Client {
    settings: S3Settings,
    credentials: Option<AwsCredentials>,
    signing: Option<rusty_s3::Credentials>,
    config: HubConfig,
    http: Http,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("settings", &self.settings)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The answer to a listing or HEAD request.
struct Answer {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A final (not retried) answer, or an error.
enum Refusal {
    Status { status: u16, body: String },
    Error(S3Error),
}

impl S3Client {
    /// A client for `settings` and `credentials` (`None`: anonymous); `engine` gives the cache
    /// directory, concurrency, range size, retry policy and timeouts (its endpoint and token are
    /// not used).
    pub fn new(
        settings: S3Settings,
        credentials: Option<AwsCredentials>,
        engine: HubConfig,
    ) -> Result<Self, S3Error> {
        let config = HubConfig {
            endpoint: settings.endpoint.to_string(),
            token: None,
            token_source: None,
            verify_tls: settings.verify_tls && engine.verify_tls,
            ..engine
        };
        let http = Http::new(&config)?;
        let signing = credentials.as_ref().map(AwsCredentials::signing);
        Ok(S3Client {
            settings,
            credentials,
            signing,
            config,
            http,
        })
    }

    /// Settings from config.yaml's `s3:` block and the environment, credentials from the
    /// environment, the engine's defaults (cache under the Hub cache directory).
    pub fn from_env(cfg: Option<&crate::config::S3Config>) -> Result<Self, S3Error> {
        let settings = S3Settings::from_env(cfg)?;
        let credentials = AwsCredentials::from_env()?;
        let cache = HubConfig::cache_dir_from_vars(|k| std::env::var(k).ok())?;
        Self::new(settings, credentials, HubConfig::new(String::new(), cache))
    }

    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    pub fn credentials(&self) -> Option<&AwsCredentials> {
        self.credentials.as_ref()
    }

    /// The note said before the first request: the endpoint, the region, whether TLS is
    /// verified, and where the credentials come from (or that the requests are anonymous).
    pub fn describe(&self) -> String {
        let tls = if self.config.verify_tls || self.settings.endpoint.scheme() != "https" {
            ""
        } else {
            ", its TLS certificate NOT verified (s3.verifyTls: false)"
        };
        format!(
            "S3 endpoint {} (region {}{tls}): {}",
            self.settings.shown_endpoint(),
            self.settings.region,
            self.describe_credentials()
        )
    }

    /// What is sent, for a note before the first request: where the credentials come from, or
    /// that the requests are anonymous.
    pub fn describe_credentials(&self) -> String {
        match &self.credentials {
            Some(c) => format!("credentials from {}", c.source),
            None => format!(
                "no AWS credentials found (neither {ENV_ACCESS_KEY_ID}/{ENV_SECRET_ACCESS_KEY} nor \
                 a profile in ~/.aws/credentials): anonymous requests"
            ),
        }
    }

    fn bucket(&self, name: &str) -> Result<Bucket, S3Error> {
        let style = if self.settings.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        Bucket::new(
            self.settings.endpoint.clone(),
            style,
            name.to_string(),
            self.settings.region.clone(),
        )
        .map_err(|e| S3Error::InvalidEndpoint {
            endpoint: self.settings.shown_endpoint(),
            from: self.settings.endpoint_from.clone(),
            reason: format!("bucket `{name}`: {e}"),
        })
    }

    /// Where [`S3Client::download`] puts a snapshot: `<cache>/s3--<bucket>/<identity>/`.
    pub fn snapshot_dir(&self, snap: &S3Snapshot) -> PathBuf {
        self.config
            .cache_dir
            .join(format!("s3--{}", snap.bucket))
            .join(&snap.snapshot.commit)
    }

    /// List `s3://bucket/prefix`, keep what `filter` selects, read each selected object's
    /// checksum, and pin the result by its identity. Retries are told to `progress`.
    pub async fn resolve(
        &self,
        bucket: &str,
        prefix: &str,
        filter: &FileFilter,
        progress: &dyn Reporter,
    ) -> Result<S3Snapshot, S3Error> {
        let source_text = source_text(bucket, prefix);
        if let Some(why) = crate::config::source::bucket_name_defect(bucket) {
            return Err(S3Error::InvalidSource {
                source_text,
                reason: format!("bucket `{bucket}`: {why}"),
            });
        }
        let b = self.bucket(bucket)?;
        let listed = self.list(&b, prefix, &source_text, progress).await?;
        if listed.is_empty() {
            return Err(S3Error::NoObjects {
                source_text,
                prefix: list::list_prefix(prefix),
                endpoint: self.settings.shown_endpoint(),
                from: self.settings.endpoint_from.clone(),
            });
        }
        let count = listed.len();
        let mut selected: Vec<Listed> = listed
            .into_iter()
            .filter(|l| filter.matches(&l.path))
            .collect();
        if selected.is_empty() {
            return Err(S3Error::NoneSelected {
                source_text,
                listed: count,
            });
        }
        selected.sort_by(|a, b| a.path.cmp(&b.path));
        let (files, checks) = self.checksums(&b, &selected, progress).await?;
        let commit = list::identity(&self.settings.shown_endpoint(), bucket, prefix, &selected);
        Ok(S3Snapshot {
            bucket: bucket.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
            snapshot: Snapshot {
                repo: source_text,
                revision: REVISION.to_string(),
                commit,
                files,
            },
            checks,
            listed: count,
        })
    }

    /// Every object under `prefix`, page by page (continuation tokens), each page's answer
    /// bounded, at most [`MAX_OBJECTS`] objects.
    async fn list(
        &self,
        b: &Bucket,
        prefix: &str,
        source_text: &str,
        progress: &dyn Reporter,
    ) -> Result<Vec<Listed>, S3Error> {
        let lp = list::list_prefix(prefix);
        let endpoint = self.settings.shown_endpoint();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let sign = || {
                let mut action: ListObjectsV2<'_> = b.list_objects_v2(self.signing.as_ref());
                if !lp.is_empty() {
                    action.with_prefix(lp.as_str());
                }
                action.with_max_keys(LIST_PAGE_KEYS);
                if let Some(t) = &token {
                    action.with_continuation_token(t.as_str());
                }
                action.sign(SIGN_EXPIRY)
            };
            let what = format!("listing {source_text}");
            let answer = match self
                .call(&what, Method::GET, &sign, &[], MAX_LIST_BODY, progress)
                .await
            {
                Ok(a) => a,
                Err(Refusal::Status { status, body }) => {
                    return Err(self.refused(&what, b.name(), None, status, &body))
                }
                Err(Refusal::Error(e)) => return Err(e),
            };
            let page =
                ListObjectsV2::parse_response(&answer.body).map_err(|e| S3Error::BadListing {
                    url: shown_url(&sign()),
                    reason: e.to_string(),
                })?;
            for c in page.contents {
                match list::accept(&lp, &c.key, c.size, &c.etag) {
                    Ok(Some(l)) => out.push(l),
                    Ok(None) => {}
                    Err(why) => return Err(list::unsafe_key(source_text, &endpoint, &c.key, why)),
                }
                if out.len() > MAX_OBJECTS {
                    return Err(S3Error::TooManyObjects {
                        source_text: source_text.to_string(),
                        limit: MAX_OBJECTS,
                    });
                }
            }
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
        }
        Err(S3Error::TooManyObjects {
            source_text: source_text.to_string(),
            limit: MAX_OBJECTS,
        })
    }

    /// HEAD every selected object with `x-amz-checksum-mode: ENABLED`: a full-object sha256
    /// checksum is verified; else a plain-MD5 ETag (not for SSE-KMS / SSE-C objects, whose ETag is
    /// not their MD5); else the size only.
    async fn checksums(
        &self,
        b: &Bucket,
        selected: &[Listed],
        progress: &dyn Reporter,
    ) -> Result<(Vec<HubFile>, Vec<Check>), S3Error> {
        let heads = futures::stream::iter(selected.iter())
            .map(|l| self.head(b, l, progress))
            .buffered(self.config.concurrency.max(1));
        let answers: Vec<Result<HeaderMap, S3Error>> = heads.collect().await;
        let mut files = Vec::new();
        let mut checks = Vec::new();
        for (l, headers) in selected.iter().zip(answers) {
            let headers = headers?;
            let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
            let sha256 = get(HEADER_CHECKSUM_SHA256)
                .and_then(|v| list::full_sha256(v, get(HEADER_CHECKSUM_TYPE)));
            let encrypted = get(HEADER_SSE).is_some_and(|v| v.starts_with("aws:kms"))
                || get(HEADER_SSE_CUSTOMER).is_some();
            let md5 = (!encrypted).then(|| list::plain_md5(&l.etag)).flatten();
            checks.push(match (&sha256, &md5) {
                (Some(_), _) => Check::Sha256,
                (None, Some(_)) => Check::Md5,
                _ => Check::Size,
            });
            files.push(HubFile {
                path: l.path.clone(),
                size: l.size,
                sha256,
                md5,
            });
        }
        Ok((files, checks))
    }

    async fn head(
        &self,
        b: &Bucket,
        l: &Listed,
        progress: &dyn Reporter,
    ) -> Result<HeaderMap, S3Error> {
        let sign = || {
            let mut action = b.head_object(self.signing.as_ref(), &l.key);
            action
                .headers_mut()
                .insert(HEADER_CHECKSUM_MODE, CHECKSUM_MODE_ENABLED);
            action.sign(SIGN_EXPIRY)
        };
        let what = format!("reading s3://{}/{}", b.name(), l.key);
        match self
            .call(
                &what,
                Method::HEAD,
                &sign,
                &[(HEADER_CHECKSUM_MODE, CHECKSUM_MODE_ENABLED)],
                0,
                progress,
            )
            .await
        {
            Ok(a) => Ok(a.headers),
            Err(Refusal::Status { status, body }) => {
                Err(self.refused(&what, b.name(), Some(&l.key), status, &body))
            }
            Err(Refusal::Error(e)) => Err(e),
        }
    }

    /// One request (`what`, for messages), signed afresh by `sign` at every attempt, retried as
    /// the engine retries (408/429/5xx, connection errors; `Retry-After`; the deadline); the body
    /// is read up to `limit` bytes (more is an error).
    async fn call(
        &self,
        what: &str,
        method: Method,
        sign: &dyn Fn() -> Url,
        headers: &[(&str, &str)],
        limit: usize,
        progress: &dyn Reporter,
    ) -> Result<Answer, Refusal> {
        let mut retry = RetryState::new(&self.config.retry);
        loop {
            let url = sign();
            let shown = shown_url(&url);
            let attempt = async {
                let resp = self.http.send(method.clone(), &url, headers, None).await?;
                read_limited(resp, &shown, limit).await
            };
            let failure = match retry.bounded(&shown, attempt).await {
                Ok(Ok(a)) => return Ok(a),
                Ok(Err(f)) => f,
                Err(e) => return Err(Refusal::Error(self.no_answer(what, e))),
            };
            match failure {
                Failure::Retry { reason, wait } => {
                    let (d, line) = retry
                        .failed(&shown, reason, wait)
                        .map_err(|e| Refusal::Error(self.no_answer(what, e)))?;
                    progress.note(&format!("retrying in {:.1}s: {line}", d.as_secs_f64()));
                    tokio::time::sleep(d).await;
                }
                Failure::Status { status, body, .. } => {
                    return Err(Refusal::Status { status, body })
                }
                Failure::Fatal(e) => return Err(Refusal::Error(self.no_answer(what, e))),
            }
        }
    }

    /// The engine's "gave up" errors in S3 words (the endpoint and where it was set); others as
    /// they are.
    fn no_answer(&self, what: &str, e: HubError) -> S3Error {
        let (attempts, deadline, last, timed_out) = match e {
            HubError::DeadlineExceeded {
                attempts,
                deadline,
                last,
                ..
            } => (
                attempts,
                format!(" within the {deadline} deadline"),
                last,
                true,
            ),
            HubError::RetriesExhausted { attempts, last, .. } => {
                (attempts, String::new(), last, false)
            }
            other => return S3Error::Download(other),
        };
        S3Error::NoAnswer {
            what: what.to_string(),
            endpoint: self.settings.shown_endpoint(),
            from: self.settings.endpoint_from.clone(),
            attempts,
            deadline,
            last,
            timed_out,
        }
    }

    /// A final answer `status` (with the start of its `body`) to `what`, about `bucket` (and
    /// `key`), in plain words: who refused, the server's error code, and what to set.
    fn refused(
        &self,
        what: &str,
        bucket: &str,
        key: Option<&str>,
        status: u16,
        body: &str,
    ) -> S3Error {
        let endpoint = self.settings.shown_endpoint();
        let parsed = list::error_code(body);
        let code_name = parsed.as_ref().map(|(c, _)| c.as_str()).unwrap_or("");
        let code = match &parsed {
            Some((c, m)) => format!(", {c}: {}", self.scrub(m)),
            None => String::new(),
        };
        let denied = matches!(status, 401 | 403)
            || matches!(
                code_name,
                "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "InvalidToken"
                    | "TokenRefreshRequired"
            );
        if denied {
            return S3Error::AccessDenied {
                what: what.to_string(),
                endpoint,
                status,
                code,
                credentials: self.credentials_fix(bucket, code_name),
            };
        }
        match (status, code_name, key) {
            (404, "NoSuchKey", Some(k)) | (404, "", Some(k)) => S3Error::NoSuchKey {
                bucket: bucket.to_string(),
                key: k.to_string(),
                endpoint,
            },
            (404, "NoSuchBucket", _) | (404, "", None) => S3Error::NoSuchBucket {
                bucket: bucket.to_string(),
                endpoint,
                from: self.settings.endpoint_from.clone(),
                region: self.settings.region.clone(),
            },
            _ => S3Error::Http {
                what: what.to_string(),
                endpoint,
                status,
                code: if matches!(
                    code_name,
                    "AuthorizationHeaderMalformed"
                        | "PermanentRedirect"
                        | "IllegalLocationConstraintException"
                ) {
                    format!(
                        "{code}; the bucket is in another region than `{}`: set s3.region in \
                         config.yaml (or {ENV_REGION})",
                        self.settings.region
                    )
                } else {
                    code
                },
            },
        }
    }

    /// The fix for an access denied on `bucket` (the server said `code`).
    fn credentials_fix(&self, bucket: &str, code: &str) -> String {
        let may = format!("s3:ListBucket and s3:GetObject on bucket `{bucket}`");
        match &self.credentials {
            None => format!(
                "no credentials were sent (none in {ENV_ACCESS_KEY_ID}/{ENV_SECRET_ACCESS_KEY} or \
                 the shared credentials file): set {ENV_ACCESS_KEY_ID} and \
                 {ENV_SECRET_ACCESS_KEY} (or {ENV_PROFILE}) to credentials that may {may}"
            ),
            Some(c) => {
                let why = match code {
                    "InvalidAccessKeyId" => " (the endpoint does not know the access key id)",
                    "SignatureDoesNotMatch" => {
                        " (the secret access key does not match the access key id)"
                    }
                    "ExpiredToken" | "TokenRefreshRequired" => {
                        " (the session token has expired: refresh AWS_SESSION_TOKEN)"
                    }
                    _ => "",
                };
                format!(
                    "the credentials from {}{why} were refused: use credentials that may {may} \
                     (the secret is not shown)",
                    c.source
                )
            }
        }
    }

    /// `text` from a server, safe to show: control characters dropped, at most 200 characters,
    /// and any of our secrets it echoes replaced.
    fn scrub(&self, text: &str) -> String {
        let mut t: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
        if let Some(c) = &self.credentials {
            for s in c.secrets() {
                if !s.is_empty() {
                    t = t.replace(s, "<redacted>");
                }
            }
        }
        t
    }

    /// Downloads `snap` into the cache ([`S3Client::snapshot_dir`]), telling `progress` and
    /// `ready` about each verified file.
    pub async fn download(
        &self,
        snap: &S3Snapshot,
        progress: &dyn Reporter,
        ready: Option<Sender<ReadyFile>>,
    ) -> Result<LocalSnapshot, S3Error> {
        let dir = self.snapshot_dir(snap);
        let origin = self.origin(snap)?;
        self.engine(&origin)
            .download_cached(&snap.snapshot, &dir, progress, ready)
            .await
            .map_err(|e| self.no_answer(&format!("downloading {}", snap.snapshot.repo), e))
    }

    /// Downloads `snap` straight into `dir` (partial files under `dir/.partial/`).
    pub async fn download_to_dir(
        &self,
        snap: &S3Snapshot,
        dir: &Path,
        progress: &dyn Reporter,
        ready: Option<Sender<ReadyFile>>,
    ) -> Result<LocalSnapshot, S3Error> {
        let origin = self.origin(snap)?;
        self.engine(&origin)
            .download_to_dir(&snap.snapshot, dir, progress, ready)
            .await
            .map_err(|e| self.no_answer(&format!("downloading {}", snap.snapshot.repo), e))
    }

    /// `stage-model --download-only`: resolve, then download into `to`; files there that differ
    /// are refused unless `force` (see [`crate::hub::prepare_dir`]).
    pub async fn fetch_to_dir(
        &self,
        bucket: &str,
        prefix: &str,
        filter: &FileFilter,
        to: &Path,
        force: bool,
        progress: &dyn Reporter,
    ) -> Result<(S3Snapshot, LocalSnapshot), S3Error> {
        let snap = self.resolve(bucket, prefix, filter, progress).await?;
        report_checks(&snap, progress);
        let version = format!("listing {}", snap.snapshot.commit);
        crate::hub::prepare_dir(
            &snap.snapshot,
            &snap.snapshot.repo,
            &version,
            to,
            force,
            progress,
        )
        .await?;
        let local = self.download_to_dir(&snap, to, progress, None).await?;
        Ok((snap, local))
    }

    fn origin(&self, snap: &S3Snapshot) -> Result<S3Origin<'_>, S3Error> {
        Ok(S3Origin {
            client: self,
            bucket: self.bucket(&snap.bucket)?,
            prefix: snap.prefix.clone(),
        })
    }

    fn engine<'a>(&'a self, origin: &'a S3Origin<'a>) -> Engine<'a> {
        Engine {
            http: &self.http,
            config: &self.config,
            origin,
        }
    }
}

/// Tell `progress` how the files of `snap` will be verified: a summary line, and one detail line
/// per file.
pub fn report_checks(snap: &S3Snapshot, progress: &dyn Reporter) {
    let count = |c: Check| snap.checks.iter().filter(|x| **x == c).count();
    progress.note(&format!(
        "{}: {} of {} object(s) selected ({}); verification: {} by sha256 checksum, {} by MD5 \
         (ETag), {} by size only",
        snap.snapshot.repo,
        snap.snapshot.files.len(),
        snap.listed,
        size(snap.snapshot.total_bytes()),
        count(Check::Sha256),
        count(Check::Md5),
        count(Check::Size)
    ));
    for (f, c) in snap.snapshot.files.iter().zip(&snap.checks) {
        progress.detail(&format!(
            "  {} ({}): {}",
            f.path,
            size(f.size),
            c.describe()
        ));
    }
}

/// `s3://bucket/prefix` (or `s3://bucket` for the whole bucket).
fn source_text(bucket: &str, prefix: &str) -> String {
    match prefix.trim_end_matches('/') {
        "" => format!("s3://{bucket}"),
        p => format!("s3://{bucket}/{p}"),
    }
}

/// The body of `resp`, at most `limit` bytes (a longer one is not retried: an error).
async fn read_limited(resp: Response, shown: &str, limit: usize) -> Result<Answer, Failure> {
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Failure::Retry {
            reason: format!("{shown}: {}", error_chain(&e.without_url())),
            wait: None,
        })?;
        if body.len() + chunk.len() > limit {
            return Err(Failure::Fatal(HubError::Protocol {
                url: shown.to_string(),
                reason: format!("the answer is larger than {limit} bytes"),
            }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { headers, body })
}

/// The engine's source for one snapshot: a GetObject URL signed at every attempt.
struct S3Origin<'a> {
    client: &'a S3Client,
    bucket: Bucket,
    prefix: String,
}

impl Origin for S3Origin<'_> {
    fn file_url(&self, _snap: &Snapshot, file: &HubFile) -> Result<Url, HubError> {
        let key = list::key_of(&self.prefix, &file.path);
        Ok(self
            .bucket
            .get_object(self.client.signing.as_ref(), &key)
            .sign(SIGN_EXPIRY))
    }

    fn status_error(
        &self,
        _snap: &Snapshot,
        path: &str,
        status: u16,
        _url: &Url,
        body: String,
        _token_sent: bool,
    ) -> HubError {
        let key = list::key_of(&self.prefix, path);
        let what = format!("downloading s3://{}/{key}", self.bucket.name());
        let e = self
            .client
            .refused(&what, self.bucket.name(), Some(&key), status, &body);
        HubError::Refused {
            status,
            message: e.to_string(),
        }
    }
}
