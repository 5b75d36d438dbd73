//! A minimal OCI distribution client for pushing (distribution-spec v1.1): the `/v2/` challenge,
//! Basic or Bearer token auth (a token service's `realm`, with a password or an identity token),
//! `HEAD` a blob, cross-repository mount, chunked upload, manifests and small blobs by digest.
//!
//! Why not the `oci-client` crate (0.18): its chunked upload is fixed at 4 MiB chunks, below the
//! minimum of registries backed by S3 multipart parts (5 MiB), and ignores `OCI-Chunk-Min-Length`;
//! a chunk that fails ends the push (`push_blob_stream` takes a stream it cannot replay, so
//! there is no retry at all; here a failed chunk is resumed where the registry says the upload
//! stands, or the layer is read from disk again into a new upload); an identity token (`identitytoken`, the OAuth2 refresh
//! token of `docker login` on ACR and others) cannot be exchanged (it only sends Basic to the token
//! service); a refused password is swallowed (`get_auth_token` turns it into anonymous requests, so
//! the user sees a bare 401 later); and it brings a second HTTP/TLS stack (reqwest 0.13 with
//! aws-lc) beside the project's reqwest 0.12 on ring. What is hand-written here is only the
//! protocol's requests, each tested against the real distribution registry (tests/modelcar.rs).
//!
//! Every request has a connect timeout and a read timeout, is retried on 429, 5xx and connection
//! errors a bounded number of times, and reads at most a bounded body. Nothing a registry echoes is
//! shown unless the credential's password, its base64 pair and every token received are removed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64ct::{Base64, Encoding};
use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{RequestBuilder, Response, StatusCode, Url};

use super::consts::{
    CONNECT_TIMEOUT, ERROR_BODY_LIMIT, READ_TIMEOUT, RETRY_ATTEMPTS, RETRY_BASE_DELAY, USER_AGENT,
};
use super::credentials::Credential;
use super::layer::Layer;
use super::ModelcarError;
use crate::sync::lock;

/// How the registry wants to be authorised, learnt from its `WWW-Authenticate` challenge.
#[derive(Debug, Clone, Default)]
enum Auth {
    /// Not asked yet, or nothing needed.
    #[default]
    None,
    Basic,
    /// A token from the realm of the challenge.
    Bearer(String),
}

/// One registry, for a fixed set of repository scopes.
pub struct Registry {
    http: reqwest::Client,
    base: Url,
    /// The registry's name for messages (`host[:port]`).
    pub name: String,
    credential: Option<Credential>,
    /// `repository:<name>:pull,push` … asked of a token service.
    scopes: Vec<String>,
    auth: Mutex<Auth>,
    /// Texts never shown: the credential's and every token received.
    secrets: Mutex<Vec<String>>,
}

/// The answer to a manifest fetch.
pub struct Fetched {
    pub body: Vec<u8>,
    pub media_type: String,
}

fn header_str<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Registry {
    /// A client for `name` (`host[:port]`, API on `api_host`), over plain http when `plain_http`.
    pub fn new(
        name: &str,
        api_host: &str,
        plain_http: bool,
        credential: Option<Credential>,
        scopes: Vec<String>,
    ) -> Result<Registry, ModelcarError> {
        let scheme = if plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{api_host}/"))
            .map_err(|e| ModelcarError::Internal(format!("registry URL for {api_host}: {e}")))?;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| ModelcarError::Internal(format!("HTTP client: {e}")))?;
        let secrets = credential
            .as_ref()
            .map(Credential::secrets)
            .unwrap_or_default();
        Ok(Registry {
            http,
            base,
            name: name.to_string(),
            credential,
            scopes,
            auth: Mutex::new(Auth::None),
            secrets: Mutex::new(secrets),
        })
    }

    /// `text` without any secret.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in lock(&self.secrets).iter() {
            if !s.is_empty() {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    fn url(&self, path: &str) -> Result<Url, ModelcarError> {
        self.base
            .join(path)
            .map_err(|e| self.protocol(format!("bad URL {path}: {e}")))
    }

    fn protocol(&self, what: String) -> ModelcarError {
        ModelcarError::Protocol {
            registry: self.name.clone(),
            what: self.redact(&what),
        }
    }

    fn who(&self) -> String {
        self.credential
            .as_ref()
            .map(Credential::who)
            .unwrap_or_else(|| "anonymous access".to_string())
    }

    /// The `Authorization` value, marked sensitive (never in reqwest's Debug output).
    fn auth_header(&self) -> Option<HeaderValue> {
        let text = match (&*lock(&self.auth), &self.credential) {
            (Auth::Basic, Some(Credential::Basic { user, password })) => format!(
                "Basic {}",
                Base64::encode_string(format!("{user}:{}", password.expose()).as_bytes())
            ),
            (Auth::Bearer(t), _) => format!("Bearer {t}"),
            _ => return None,
        };
        let mut v = HeaderValue::from_str(&text).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// The request, with the credential only when it goes to the registry itself (an upload
    /// Location or a redirect elsewhere never gets it).
    /// One authorized request, not retried (its body is a stream that cannot be replayed); a
    /// transport failure names the registry, never a credential.
    async fn send_once(&self, rb: RequestBuilder) -> Result<reqwest::Response, ModelcarError> {
        let req = self.authorize(rb)?;
        self.http
            .execute(req)
            .await
            .map_err(|e| ModelcarError::Unreachable {
                registry: self.name.clone(),
                why: self.redact(&describe_reqwest(&e)),
            })
    }

    fn authorize(&self, rb: RequestBuilder) -> Result<reqwest::Request, ModelcarError> {
        let mut req = rb
            .build()
            .map_err(|e| self.protocol(format!("building a request: {}", describe_reqwest(&e))))?;
        let u = req.url();
        let same_origin = u.scheme() == self.base.scheme()
            && u.host_str() == self.base.host_str()
            && u.port_or_known_default() == self.base.port_or_known_default();
        if same_origin {
            if let Some(h) = self.auth_header() {
                req.headers_mut().insert(AUTHORIZATION, h);
            }
        }
        Ok(req)
    }

    /// Send the request `build` makes, authorised, retried on 429/5xx/connection errors, and
    /// once more after (re)authenticating on a 401 challenge. `build` is called for each attempt.
    async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> Result<RequestBuilder, ModelcarError>,
    ) -> Result<Response, ModelcarError> {
        let mut authed_again = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let req = self.authorize(build(&self.http)?)?;
            let res = self.http.execute(req).await;
            let resp = match res {
                Ok(r) => r,
                Err(e) if attempt < RETRY_ATTEMPTS && retryable_error(&e) => {
                    tokio::time::sleep(backoff(attempt, None)).await;
                    continue;
                }
                Err(e) => {
                    return Err(ModelcarError::Unreachable {
                        registry: self.name.clone(),
                        why: self.redact(&describe_reqwest(&e)),
                    })
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !authed_again {
                authed_again = true;
                if let Some(challenge) = header_str(&resp, "www-authenticate") {
                    let challenge = challenge.to_string();
                    self.authenticate(&challenge).await?;
                    continue;
                }
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                && status != StatusCode::NOT_IMPLEMENTED
                && attempt < RETRY_ATTEMPTS
            {
                let wait = header_str(&resp, "retry-after").and_then(|s| s.trim().parse().ok());
                tokio::time::sleep(backoff(attempt, wait)).await;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let message = self.error_text(resp).await;
                return Err(ModelcarError::Auth {
                    registry: self.name.clone(),
                    who: self.who(),
                    why: format!(
                        "{what}: HTTP {}: {message}{}",
                        status.as_u16(),
                        self.login_hint()
                    ),
                });
            }
            return Ok(resp);
        }
    }

    fn login_hint(&self) -> String {
        match &self.credential {
            None => format!(
                " (no credential for {} in the docker config: `docker login {}`, or write auths.{} in $DOCKER_CONFIG/config.json)",
                self.name, self.name, self.name
            ),
            Some(_) => " (check the user name and password: `docker login` again)".to_string(),
        }
    }

    /// Answer a `WWW-Authenticate` challenge: Basic needs the credential; Bearer gets a token
    /// from the realm for this client's scopes.
    async fn authenticate(&self, challenge: &str) -> Result<(), ModelcarError> {
        let (scheme, params) = parse_challenge(challenge);
        match scheme.as_str() {
            "basic" => {
                if !matches!(self.credential, Some(Credential::Basic { .. })) {
                    return Err(ModelcarError::Auth {
                        registry: self.name.clone(),
                        who: self.who(),
                        why: format!("it asks for a user name and password{}", self.login_hint()),
                    });
                }
                *lock(&self.auth) = Auth::Basic;
                Ok(())
            }
            "bearer" => {
                let realm = params
                    .iter()
                    .find(|(k, _)| k == "realm")
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| self.protocol("a Bearer challenge without a realm".into()))?;
                let service = params
                    .iter()
                    .find(|(k, _)| k == "service")
                    .map(|(_, v)| v.clone());
                let token = self.fetch_token(&realm, service.as_deref()).await?;
                lock(&self.secrets).push(token.clone());
                *lock(&self.auth) = Auth::Bearer(token);
                Ok(())
            }
            other => Err(self.protocol(format!("unknown authentication scheme `{other}`"))),
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
    ) -> Result<String, ModelcarError> {
        let mut url = Url::parse(realm)
            .map_err(|e| self.protocol(format!("token service URL `{realm}`: {e}")))?;
        if url.scheme() == "http" && self.base.scheme() == "https" {
            return Err(self.protocol(format!(
                "the token service {realm} is plain http while the registry is https: refusing to send credentials there"
            )));
        }
        let rb = match &self.credential {
            Some(Credential::IdentityToken(t)) => {
                let mut form =
                    Url::parse("http://form.invalid/").map_err(|e| self.protocol(e.to_string()))?;
                {
                    let mut q = form.query_pairs_mut();
                    q.append_pair("grant_type", "refresh_token");
                    q.append_pair("refresh_token", t.expose());
                    q.append_pair("client_id", "platform");
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", &self.scopes.join(" "));
                }
                let body = form.query().unwrap_or("").to_string();
                self.http
                    .post(url)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            cred => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in &self.scopes {
                        q.append_pair("scope", s);
                    }
                }
                let rb = self.http.get(url);
                match cred {
                    Some(Credential::Basic { user, password }) => {
                        rb.basic_auth(user, Some(password.expose()))
                    }
                    _ => rb,
                }
            }
        };
        let resp = rb.send().await.map_err(|e| ModelcarError::Unreachable {
            registry: format!("{} (token service)", self.name),
            why: self.redact(&describe_reqwest(&e)),
        })?;
        let status = resp.status();
        if !status.is_success() {
            let message = self.error_text(resp).await;
            return Err(ModelcarError::Auth {
                registry: self.name.clone(),
                who: self.who(),
                why: format!(
                    "its token service answered HTTP {}: {message}{}",
                    status.as_u16(),
                    self.login_hint()
                ),
            });
        }
        let body = read_limited(resp, ERROR_BODY_LIMIT * 4)
            .await
            .map_err(|e| self.protocol(format!("reading the token: {}", describe_reqwest(&e))))?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| self.protocol("the token service's answer is not its JSON".into()))?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.protocol("the token service's answer holds no token".into()))
    }

    /// `GET /v2/`: learn how to authenticate and do it now, so a wrong password is said before
    /// any file is read.
    pub async fn ping(&self) -> Result<(), ModelcarError> {
        let url = self.url("v2/")?;
        let resp = self
            .send("checking the API (/v2/)", |c| Ok(c.get(url.clone())))
            .await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        Err(self.failure("checking the API (/v2/)", resp).await)
    }

    /// An error from a response that was not the expected one.
    async fn failure(&self, what: &str, resp: Response) -> ModelcarError {
        let status = resp.status().as_u16();
        let message = self.error_text(resp).await;
        ModelcarError::Registry {
            registry: self.name.clone(),
            what: what.to_string(),
            status,
            message,
        }
    }

    /// The registry's error in words: `CODE: message` of its JSON errors, else the start of the
    /// body; secrets removed.
    async fn error_text(&self, resp: Response) -> String {
        let body = read_limited(resp, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<OneError>,
        }
        #[derive(serde::Deserialize)]
        struct OneError {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        let text = match serde_json::from_slice::<Errors>(&body) {
            Ok(e) if !e.errors.is_empty() => e
                .errors
                .iter()
                .map(|x| format!("{}: {}", x.code, x.message))
                .collect::<Vec<_>>()
                .join("; "),
            _ => {
                let s = String::from_utf8_lossy(&body);
                let s: String = s.chars().filter(|c| !c.is_control()).take(300).collect();
                if s.trim().is_empty() {
                    "(no message)".to_string()
                } else {
                    s.trim().to_string()
                }
            }
        };
        self.redact(&text)
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool, ModelcarError> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let resp = self
            .send("checking a blob", |c| Ok(c.head(url.clone())))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.failure(&format!("checking blob {digest}"), resp).await),
        }
    }

    /// Cross-repository mount: `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>`. `false`
    /// when the registry opened an upload instead (then the blob must be sent).
    pub async fn mount(&self, repo: &str, from: &str, digest: &str) -> Result<bool, ModelcarError> {
        let mut url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let resp = self
            .send("mounting a blob", |c| {
                Ok(c.post(url.clone()).header(CONTENT_LENGTH, "0"))
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // An upload session was opened instead: close it, the blob is sent separately.
                if let Ok(loc) = self.location(&resp) {
                    let _ = self
                        .send("cancelling an upload", |c| Ok(c.delete(loc.clone())))
                        .await;
                }
                Ok(false)
            }
            _ => Err(self
                .failure(&format!("mounting blob {digest} from {from}"), resp)
                .await),
        }
    }

    fn location(&self, resp: &Response) -> Result<Url, ModelcarError> {
        let loc = header_str(resp, "location")
            .ok_or_else(|| self.protocol("an upload answer without a Location header".into()))?;
        resp.url()
            .join(loc)
            .map_err(|e| self.protocol(format!("upload Location `{loc}`: {e}")))
    }

    /// `POST /v2/<repo>/blobs/uploads/`: the upload's URL and the registry's minimum chunk.
    async fn start_upload(&self, repo: &str) -> Result<(Url, u64), ModelcarError> {
        let url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let resp = self
            .send("starting an upload", |c| {
                Ok(c.post(url.clone()).header(CONTENT_LENGTH, "0"))
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.failure("starting an upload", resp).await);
        }
        let min = header_str(&resp, "oci-chunk-min-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok((self.location(&resp)?, min))
    }

    /// `PUT <location>?digest=<digest>` with an optional last body.
    async fn finish_upload(
        &self,
        location: &Url,
        digest: &str,
        body: Option<Bytes>,
    ) -> Result<(), ModelcarError> {
        let mut url = location.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let resp = self
            .send("completing an upload", |c| {
                let rb = c.put(url.clone());
                Ok(match &body {
                    Some(b) => rb
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(b.clone()),
                    None => rb.header(CONTENT_LENGTH, "0"),
                })
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self
                .failure(&format!("completing the upload of {digest}"), resp)
                .await);
        }
        if let Some(d) = header_str(&resp, "docker-content-digest") {
            if d != digest {
                return Err(self.protocol(format!("stored the blob as {d}, not {digest}")));
            }
        }
        Ok(())
    }

    /// Upload a small blob (the image config) in one request.
    pub async fn upload_bytes(
        &self,
        repo: &str,
        data: Vec<u8>,
        digest: &str,
    ) -> Result<(), ModelcarError> {
        let (location, _) = self.start_upload(repo).await?;
        self.finish_upload(&location, digest, Some(Bytes::from(data)))
            .await
    }

    /// Upload a layer in chunks of at least `chunk` bytes (and at least the registry's minimum),
    /// each `PATCH` body streamed from disk; `sent` is told of every buffer handed to the
    /// connection. A chunk that fails on the way (a broken connection, 429, 5xx) is resumed from
    /// what the registry says it holds, or, when it cannot say, the layer is sent again in a new
    /// upload; at most [`RETRY_ATTEMPTS`] times.
    pub async fn upload_layer(
        &self,
        repo: &str,
        layer: Arc<Layer>,
        digest: &str,
        chunk: u64,
        sent: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), ModelcarError> {
        let (mut location, min) = self.start_upload(repo).await?;
        let chunk = chunk.max(min).max(1);
        let mut offset = 0u64;
        let mut failures = 0u32;
        while offset < layer.size {
            let end = (offset + chunk).min(layer.size);
            match self
                .patch(&location, &layer, offset, end, sent.clone())
                .await
            {
                Ok((next, stored_end)) => {
                    if stored_end.is_some_and(|e| e != end) {
                        return Err(self.protocol(format!(
                            "accepted bytes {offset}-{} of {} but reports holding {} bytes (a registry that drops chunks after the first, as ECR is reported to: send each layer in one request with --chunk-size 10GiB)",
                            end - 1,
                            layer.label(),
                            stored_end.map(|e| e.to_string()).unwrap_or_default(),
                        )));
                    }
                    location = next;
                    offset = end;
                }
                Err(e) if failures + 1 < RETRY_ATTEMPTS && is_transient(&e) => {
                    failures += 1;
                    tokio::time::sleep(backoff(failures, None)).await;
                    // Resume where the registry says the upload stands; a registry that cannot
                    // say (the distribution registry invalidates an upload whose PATCH broke off)
                    // gets the layer again from the start, in a new upload.
                    (location, offset) = match self.upload_status(&location).await {
                        Ok((loc, have)) if have <= layer.size => (loc, have),
                        _ => (self.start_upload(repo).await?.0, 0),
                    };
                }
                Err(e) => return Err(e),
            }
        }
        self.finish_upload(&location, digest, None).await
    }

    /// One `PATCH` of bytes `[start, end)`: the next Location and the end the registry reports.
    async fn patch(
        &self,
        location: &Url,
        layer: &Arc<Layer>,
        start: u64,
        end: u64,
        sent: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(Url, Option<u64>), ModelcarError> {
        let rb = self
            .http
            .patch(location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("content-range", format!("{start}-{}", end - 1))
            .header(CONTENT_LENGTH, end - start)
            .timeout(upload_deadline(end - start))
            .body(reqwest::Body::wrap_stream(range_stream(
                layer.clone(),
                start,
                end,
                sent,
            )));
        // Not through `send`: a body stream is not replayed; a failure is resumed by the caller.
        let resp = self.send_once(rb).await?;
        if resp.status() != StatusCode::ACCEPTED {
            if resp.status() == StatusCode::UNAUTHORIZED {
                // A token that expired mid-upload: renew it, then resume.
                if let Some(c) = header_str(&resp, "www-authenticate").map(str::to_string) {
                    self.authenticate(&c).await?;
                    return Err(ModelcarError::Unreachable {
                        registry: self.name.clone(),
                        why: "the token expired during an upload".into(),
                    });
                }
            }
            return Err(self
                .failure(
                    &format!("uploading bytes {start}-{} of {}", end - 1, layer.label()),
                    resp,
                )
                .await);
        }
        let stored = header_str(&resp, "range").and_then(range_end);
        Ok((self.location(&resp)?, stored))
    }

    /// `GET <location>`: where an interrupted upload stands (the next offset).
    async fn upload_status(&self, location: &Url) -> Result<(Url, u64), ModelcarError> {
        let resp = self
            .send("asking an upload's state", |c| Ok(c.get(location.clone())))
            .await?;
        if resp.status() != StatusCode::NO_CONTENT {
            return Err(self.failure("asking an upload's state", resp).await);
        }
        let have = header_str(&resp, "range").and_then(range_end).unwrap_or(0);
        Ok((
            self.location(&resp).unwrap_or_else(|_| location.clone()),
            have,
        ))
    }

    /// Copy a blob from `src` (another registry, or a repository this one cannot mount from):
    /// streamed through, verified against `digest` by the target registry.
    pub async fn copy_blob(
        &self,
        repo: &str,
        src: &Registry,
        src_repo: &str,
        digest: &str,
        size: u64,
    ) -> Result<(), ModelcarError> {
        let url = src.url(&format!("v2/{src_repo}/blobs/{digest}"))?;
        let resp = src
            .send("reading a base layer", |c| Ok(c.get(url.clone())))
            .await?;
        if !resp.status().is_success() {
            return Err(src
                .failure(&format!("reading blob {digest} of {src_repo}"), resp)
                .await);
        }
        let (location, _) = self.start_upload(repo).await?;
        let body = reqwest::Body::wrap_stream(resp.bytes_stream());
        let rb = self
            .http
            .patch(location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .timeout(upload_deadline(size))
            .body(body);
        let resp = self.send_once(rb).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.failure(&format!("copying blob {digest}"), resp).await);
        }
        let location = self.location(&resp)?;
        self.finish_upload(&location, digest, None).await
    }

    /// A manifest (or index) by tag or digest, with its media type; at most `limit` bytes.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        limit: usize,
    ) -> Result<Fetched, ModelcarError> {
        use super::consts::*;
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let accept = [
            MT_OCI_INDEX,
            MT_OCI_MANIFEST,
            MT_DOCKER_LIST,
            MT_DOCKER_MANIFEST,
        ]
        .join(", ");
        let resp = self
            .send("reading a manifest", |c| {
                Ok(c.get(url.clone()).header("accept", accept.clone()))
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .failure(&format!("reading the manifest {repo}:{reference}"), resp)
                .await);
        }
        let media_type = header_str(&resp, "content-type").unwrap_or("").to_string();
        let body = read_limited(resp, limit)
            .await
            .map_err(|e| self.protocol(format!("reading a manifest: {}", describe_reqwest(&e))))?;
        Ok(Fetched { body, media_type })
    }

    /// A small blob (a config) by digest, verified; at most `limit` bytes.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &str,
        limit: usize,
    ) -> Result<Vec<u8>, ModelcarError> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let resp = self
            .send("reading a blob", |c| Ok(c.get(url.clone())))
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .failure(&format!("reading blob {digest} of {repo}"), resp)
                .await);
        }
        let body = read_limited(resp, limit)
            .await
            .map_err(|e| self.protocol(format!("reading a blob: {}", describe_reqwest(&e))))?;
        let got = sha256_digest(&body);
        if got != digest {
            return Err(self.protocol(format!("blob {digest} arrived with digest {got}")));
        }
        Ok(body)
    }

    /// `PUT /v2/<repo>/manifests/<reference>`; the manifest's digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        body: Vec<u8>,
        media_type: &str,
    ) -> Result<String, ModelcarError> {
        let digest = sha256_digest(&body);
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let body = Bytes::from(body);
        let resp = self
            .send("pushing the manifest", |c| {
                Ok(c.put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone()))
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self
                .failure(&format!("pushing the manifest {repo}:{reference}"), resp)
                .await);
        }
        if let Some(d) = header_str(&resp, "docker-content-digest") {
            if d != digest {
                return Err(self.protocol(format!("stored the manifest as {d}, not {digest}")));
            }
        }
        Ok(digest)
    }
}

/// How long sending `bytes` may take: [`READ_TIMEOUT`] plus the bytes at [`MIN_UPLOAD_RATE`].
fn upload_deadline(bytes: u64) -> Duration {
    READ_TIMEOUT + Duration::from_secs(bytes / super::consts::MIN_UPLOAD_RATE)
}

/// `sha256:<hex>` of bytes.
pub fn sha256_digest(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", crate::text::hex(&Sha256::digest(b)))
}

/// The end (inclusive) a `Range: 0-<end>` header reports, as the next offset.
fn range_end(v: &str) -> Option<u64> {
    let (_, end) = v.trim().trim_start_matches("bytes=").split_once('-')?;
    end.trim().parse::<u64>().ok().map(|e| e + 1)
}

fn is_transient(e: &ModelcarError) -> bool {
    match e {
        ModelcarError::Unreachable { .. } => true,
        ModelcarError::Registry { status, .. } => {
            *status == 429 || (*status >= 500 && *status != 501)
        }
        _ => false,
    }
}

fn retryable_error(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

fn backoff(attempt: u32, server: Option<u64>) -> Duration {
    if let Some(s) = server {
        return Duration::from_secs(s.min(60));
    }
    RETRY_BASE_DELAY * 2u32.saturating_pow(attempt.saturating_sub(1)).min(32)
}

/// reqwest's error in words, without its URL (which may carry an upload's state).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the connection broke during a transfer"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        cause = c.to_string();
        cur = c.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

/// At most `limit` bytes of a body.
async fn read_limited(mut resp: Response, limit: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// `Bearer realm="…",service="…",scope="…"` → ("bearer", [(k, v)]).
fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let Some((k, after)) = s.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(i) => (q[..i].to_string(), &q[i + 1..]),
                None => (q.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(i) => (after[..i].trim().to_string(), &after[i..]),
                None => (after.trim().to_string(), ""),
            }
        };
        params.push((k, v));
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_ascii_lowercase(), params)
}

/// Bytes `[start, end)` of a layer as a body stream: read on a blocking thread into a channel of
/// two buffers, so memory stays at a few read buffers.
fn range_stream(
    layer: Arc<Layer>,
    start: u64,
    end: u64,
    sent: Arc<dyn Fn(u64) + Send + Sync>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let r = layer.read_range(start, end, |b| {
            tx.blocking_send(Ok(Bytes::copy_from_slice(b)))
                .map_err(|_| ModelcarError::Internal("upload stopped".into()))?;
            sent(b.len() as u64);
            Ok(())
        });
        if let Err(e) = r {
            if !matches!(e, ModelcarError::Internal(_)) {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(p[1].1, "registry.docker.io");
        assert_eq!(p[2].1, "repository:library/busybox:pull");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!((s.as_str(), p[0].1.as_str()), ("basic", "Registry Realm"));
    }

    #[test]
    fn ranges_give_the_next_offset() {
        assert_eq!(range_end("0-1023"), Some(1024));
        assert_eq!(range_end("bytes=0-0"), Some(1));
        assert_eq!(range_end("junk"), None);
    }

    #[test]
    fn secrets_are_removed_from_anything_shown() {
        let r = Registry::new(
            "r.example",
            "r.example",
            false,
            Some(Credential::Basic {
                user: "u".into(),
                password: super::super::credentials::Secret::new("pa55word"),
            }),
            vec![],
        )
        .unwrap();
        assert_eq!(r.redact("bad password pa55word"), "bad password ***");
    }
}
