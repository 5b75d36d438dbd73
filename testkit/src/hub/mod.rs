//! A Hugging Face Hub emulator on 127.0.0.1 for the hub tests and benchmark.
//!
//! Serves `GET /api/models/{repo}/revision/{rev}` (with `?blobs=true` fields) and
//! `GET /{repo}/resolve/{rev}/{path}` (Range → 206 + Content-Range, ETag, X-Repo-Commit,
//! X-Linked-Size). LFS files redirect (302) to a second "CDN" listener, which records whether an
//! `Authorization` header arrived. Content is generated on the fly from a shared pseudo-random
//! block (deterministic, any size, no memory per byte) with correct sha256s. Every request is
//! logged; [`Faults`] injects 429s, connection resets, wrong bytes, 404s, gating, slow bandwidth
//! and holds (a body that stops after N bytes until [`HubEmulator::release`]).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::lock;

/// Length of the generator block (a prime, so range boundaries never line up with it).
const BLOCK: usize = 1_000_003;
const CHUNK: usize = 256 * 1024;

fn block() -> &'static Bytes {
    static B: OnceLock<Bytes> = OnceLock::new();
    B.get_or_init(|| {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut v = Vec::with_capacity(2 * BLOCK);
        for _ in 0..BLOCK {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push((x >> 24) as u8);
        }
        let copy = v.clone();
        v.extend_from_slice(&copy);
        Bytes::from(v)
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Clone)]
pub struct EmuFile {
    pub path: String,
    pub size: u64,
    pub lfs: bool,
    seed: u64,
    fixed: Option<Bytes>,
    pub sha256: String,
}

impl EmuFile {
    /// Bytes `[a, b)`, at most `CHUNK` long, zero-copy for generated content.
    fn slice(&self, a: u64, b: u64) -> Bytes {
        let n = ((b - a) as usize).min(CHUNK);
        match &self.fixed {
            Some(f) => f.slice(a as usize..a as usize + n),
            None => {
                let pos = ((a + self.seed.wrapping_mul(7919)) % BLOCK as u64) as usize;
                block().slice(pos..pos + n)
            }
        }
    }

    /// The whole content (tests only; small files).
    pub fn content(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.size as usize);
        let mut a = 0;
        while a < self.size {
            let s = self.slice(a, self.size);
            a += s.len() as u64;
            v.extend_from_slice(&s);
        }
        v
    }

    fn compute_sha(&mut self) {
        let mut h = Sha256::new();
        let mut a = 0;
        while a < self.size {
            let s = self.slice(a, self.size);
            a += s.len() as u64;
            h.update(&s);
        }
        self.sha256 = hex(&h.finalize());
    }
}

#[derive(Clone)]
pub struct EmuRepo {
    pub id: String,
    pub commit: String,
    pub refs: HashMap<String, String>,
    pub files: Vec<EmuFile>,
}

impl EmuRepo {
    /// An empty repo whose `main` points at a commit derived from the id.
    pub fn new(id: &str) -> Self {
        let commit = hex(&Sha256::digest(id.as_bytes()))[..40].to_string();
        let refs = HashMap::from([("main".to_string(), commit.clone())]);
        EmuRepo {
            id: id.to_string(),
            commit,
            refs,
            files: Vec::new(),
        }
    }

    /// A generated file of `size` bytes (LFS: served through the CDN, sha256 in the metadata).
    pub fn file(mut self, path: &str, size: u64, lfs: bool) -> Self {
        let seed = self.files.len() as u64 + 1 + self.id.len() as u64 * 31;
        let mut f = EmuFile {
            path: path.into(),
            size,
            lfs,
            seed,
            fixed: None,
            sha256: String::new(),
        };
        f.compute_sha();
        self.files.push(f);
        self
    }

    /// A small non-LFS text file.
    pub fn text(mut self, path: &str, content: &str) -> Self {
        let fixed = Bytes::from(content.as_bytes().to_vec());
        let mut f = EmuFile {
            path: path.into(),
            size: fixed.len() as u64,
            lfs: false,
            seed: 0,
            fixed: Some(fixed),
            sha256: String::new(),
        };
        f.compute_sha();
        self.files.push(f);
        self
    }

    pub fn get(&self, path: &str) -> Option<&EmuFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// A small model laid out like a real one, with files the default filter must skip.
pub fn small_model(id: &str) -> EmuRepo {
    EmuRepo::new(id)
        .text(
            "config.json",
            r#"{"architectures":["Qwen2ForCausalLM"],"hidden_size":64}"#,
        )
        .text("generation_config.json", r#"{"do_sample":true}"#)
        .text(
            "tokenizer.json",
            r#"{"version":"1.0","model":{"type":"BPE"}}"#,
        )
        .text("tokenizer_config.json", r#"{"model_max_length":32768}"#)
        .text("vocab.json", r#"{"a":0,"b":1}"#)
        .text("merges.txt", "#version: 0.2\na b\n")
        .text("README.md", "# model\n")
        .text(".gitattributes", "*.safetensors filter=lfs\n")
        .file("model.safetensors", 3 * 1024 * 1024 + 17, true)
        .file("pytorch_model.bin", 1024 * 1024, true)
        .file("original/consolidated.00.pth", 512 * 1024, true)
        .file("model.gguf", 4096, true)
}

/// Fault injection, all off by default.
#[derive(Clone, Default)]
pub struct Faults {
    /// The first N metadata requests get 429 with `RateLimit` headers (no Retry-After).
    pub metadata_429: u32,
    /// The first N `/resolve/` requests get 429 with `Retry-After: {storm_retry_after}`.
    pub resolve_429_storm: u32,
    pub storm_retry_after: String,
    /// path → (N, times): the body is cut (connection closed) after N bytes, `times` times
    /// (only responses longer than N count).
    pub reset_after: HashMap<String, (u64, u32)>,
    /// Served with one byte flipped (metadata keeps the true sha256).
    pub wrong_hash: HashSet<String>,
    /// Listed in the metadata, 404 on download.
    pub missing: HashSet<String>,
    /// Metadata and hub downloads need `Authorization: Bearer {token}` (401 without, 403 wrong).
    pub required_token: Option<String>,
    /// Bytes per second per response.
    pub bandwidth: Option<u64>,
    /// path → N: the body stops after N bytes until `release(path)`.
    pub hold: HashMap<String, u64>,
}

#[derive(Clone, Debug)]
pub struct LogEntry {
    /// "hub" or "cdn".
    pub server: &'static str,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
    pub status: u16,
}

struct Shared {
    repos: Vec<EmuRepo>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<LogEntry>>,
    holds: Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
    cdn: Mutex<String>,
}

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    server: &'static str,
}

pub struct HubEmulator {
    pub endpoint: String,
    pub cdn_endpoint: String,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for HubEmulator {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl HubEmulator {
    pub async fn start(repos: Vec<EmuRepo>, faults: Faults) -> HubEmulator {
        let shared = Arc::new(Shared {
            repos,
            faults: Mutex::new(faults),
            log: Mutex::new(Vec::new()),
            holds: Mutex::new(HashMap::new()),
            cdn: Mutex::new(String::new()),
        });
        let hub_l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind hub");
        let cdn_l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind cdn");
        let endpoint = format!("http://{}", hub_l.local_addr().expect("addr"));
        let cdn_endpoint = format!("http://{}", cdn_l.local_addr().expect("addr"));
        *lock(&shared.cdn) = cdn_endpoint.clone();
        let mut tasks = Vec::new();
        for (l, server) in [(hub_l, "hub"), (cdn_l, "cdn")] {
            let app = Router::new().fallback(handle).with_state(AppState {
                shared: shared.clone(),
                server,
            });
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(l, app).await;
            }));
        }
        HubEmulator {
            endpoint,
            cdn_endpoint,
            shared,
            tasks,
        }
    }

    pub fn log(&self) -> Vec<LogEntry> {
        lock(&self.shared.log).clone()
    }

    pub fn clear_log(&self) {
        lock(&self.shared.log).clear();
    }

    pub fn set_faults(&self, f: Faults) {
        *lock(&self.shared.faults) = f;
    }

    /// Lets a held body continue.
    pub fn release(&self, path: &str) {
        if let Some(tx) = lock(&self.shared.holds).get(path) {
            let _ = tx.send(true);
        }
        lock(&self.shared.faults).hold.remove(path);
    }

    pub fn repo(&self, id: &str) -> &EmuRepo {
        self.shared.repos.iter().find(|r| r.id == id).expect("repo")
    }

    /// File downloads (resolve or CDN GETs that served bytes or a redirect).
    pub fn file_requests(&self) -> Vec<LogEntry> {
        self.log()
            .into_iter()
            .filter(|e| !e.path.starts_with("/api/"))
            .collect()
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn status(code: StatusCode, msg: &str) -> Response {
    json(code, serde_json::json!({ "error": msg }))
}

async fn handle(State(st): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let resp = route(&st, &path, &headers);
    let entry = LogEntry {
        server: st.server,
        path,
        range: headers
            .get("range")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        status: resp.status().as_u16(),
    };
    lock(&st.shared.log).push(entry);
    resp
}

fn auth_check(st: &AppState, headers: &HeaderMap) -> Option<Response> {
    let required = lock(&st.shared.faults).required_token.clone()?;
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => Some(status(
            StatusCode::UNAUTHORIZED,
            "Access to this model is restricted. You must have access to it and be authenticated.",
        )),
        Some(v) if v == format!("Bearer {required}") => None,
        Some(_) => Some(status(
            StatusCode::FORBIDDEN,
            "Access to this model is restricted and you are not in the authorized list.",
        )),
    }
}

fn route(st: &AppState, path: &str, headers: &HeaderMap) -> Response {
    let shared = &st.shared;
    if st.server == "cdn" {
        // /cdn/{repo}/{commit}/{path}
        let Some(rest) = path.strip_prefix("/cdn/") else {
            return status(StatusCode::NOT_FOUND, "no such object");
        };
        for repo in &shared.repos {
            if let Some(rest) = rest.strip_prefix(&format!("{}/{}/", repo.id, repo.commit)) {
                if let Some(f) = repo.get(&decode(rest)) {
                    return serve(st, f, headers, &repo.commit);
                }
            }
        }
        return status(StatusCode::NOT_FOUND, "no such object");
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((repo_id, rev)) = rest.rsplit_once("/revision/") else {
            return status(StatusCode::NOT_FOUND, "not found");
        };
        {
            let mut f = lock(&shared.faults);
            if f.metadata_429 > 0 {
                f.metadata_429 -= 1;
                let mut r = status(StatusCode::TOO_MANY_REQUESTS, "rate limited");
                r.headers_mut()
                    .insert("ratelimit", HeaderValue::from_static("\"api\";r=0;t=0"));
                r.headers_mut().insert(
                    "ratelimit-policy",
                    HeaderValue::from_static("\"fixed window\";\"api\";q=1000;w=300"),
                );
                return r;
            }
        }
        if let Some(r) = auth_check(st, headers) {
            return r;
        }
        let rev = decode(rev);
        let Some(repo) = shared.repos.iter().find(|r| r.id == repo_id) else {
            return status(StatusCode::NOT_FOUND, "Repository not found");
        };
        let Some(commit) = resolve_rev(repo, &rev) else {
            return status(StatusCode::NOT_FOUND, "Revision not found");
        };
        let siblings: Vec<_> = repo
            .files
            .iter()
            .map(|f| {
                let mut s = serde_json::json!({ "rfilename": f.path, "size": f.size, "blobId": &f.sha256[..40] });
                if f.lfs {
                    s["lfs"] = serde_json::json!({ "sha256": f.sha256, "size": f.size, "pointerSize": 134 });
                }
                s
            })
            .collect();
        return json(
            StatusCode::OK,
            serde_json::json!({ "id": repo.id, "modelId": repo.id, "sha": commit, "private": false, "gated": false, "siblings": siblings }),
        );
    }
    // /{repo}/resolve/{rev}/{path}
    let Some((repo_id, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
        return status(StatusCode::NOT_FOUND, "not found");
    };
    {
        let mut f = lock(&shared.faults);
        if f.resolve_429_storm > 0 {
            f.resolve_429_storm -= 1;
            let mut r = status(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            let ra = HeaderValue::from_str(&f.storm_retry_after)
                .unwrap_or(HeaderValue::from_static("1"));
            r.headers_mut().insert("retry-after", ra);
            return r;
        }
    }
    if let Some(r) = auth_check(st, headers) {
        return r;
    }
    let Some(repo) = shared.repos.iter().find(|r| r.id == repo_id) else {
        return status(StatusCode::NOT_FOUND, "Repository not found");
    };
    let Some((rev, fpath)) = rest.split_once('/') else {
        return status(StatusCode::NOT_FOUND, "not found");
    };
    let Some(commit) = resolve_rev(repo, &decode(rev)) else {
        return status(StatusCode::NOT_FOUND, "Revision not found");
    };
    let fpath = decode(fpath);
    let Some(f) = repo.get(&fpath) else {
        return status(StatusCode::NOT_FOUND, "Entry not found");
    };
    if lock(&shared.faults).missing.contains(&fpath) {
        return status(StatusCode::NOT_FOUND, "Entry not found");
    }
    if f.lfs {
        let cdn = lock(&shared.cdn).clone();
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::FOUND;
        let loc = format!(
            "{cdn}/cdn/{}/{}/{}?X-Amz-Signature=emulated",
            repo.id, commit, fpath
        );
        let h = r.headers_mut();
        h.insert(
            "location",
            HeaderValue::from_str(&loc).unwrap_or(HeaderValue::from_static("/")),
        );
        h.insert(
            "x-repo-commit",
            HeaderValue::from_str(&commit).unwrap_or(HeaderValue::from_static("")),
        );
        h.insert("x-linked-size", HeaderValue::from(f.size));
        h.insert(
            "x-linked-etag",
            HeaderValue::from_str(&format!("\"{}\"", f.sha256))
                .unwrap_or(HeaderValue::from_static("")),
        );
        h.insert(
            "etag",
            HeaderValue::from_str(&format!("\"{}\"", f.sha256))
                .unwrap_or(HeaderValue::from_static("")),
        );
        return r;
    }
    serve(st, f, headers, &commit)
}

fn resolve_rev(repo: &EmuRepo, rev: &str) -> Option<String> {
    if rev == repo.commit {
        return Some(rev.to_string());
    }
    repo.refs.get(rev).cloned()
}

fn parse_range(v: &str, size: u64) -> Option<(u64, u64)> {
    let r = v.trim().strip_prefix("bytes=")?;
    let (a, b) = r.split_once('-')?;
    let a: u64 = a.trim().parse().ok()?;
    let b: u64 = if b.trim().is_empty() {
        size.checked_sub(1)?
    } else {
        b.trim().parse::<u64>().ok()?.min(size.checked_sub(1)?)
    };
    (a <= b).then_some((a, b + 1))
}

fn serve(st: &AppState, f: &EmuFile, headers: &HeaderMap, commit: &str) -> Response {
    let range = headers.get("range").and_then(|v| v.to_str().ok());
    let (a, b, code) = match range {
        None => (0, f.size, StatusCode::OK),
        Some(v) => match parse_range(v, f.size) {
            Some((a, b)) => (a, b, StatusCode::PARTIAL_CONTENT),
            None => {
                let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
                r.headers_mut().insert(
                    "content-range",
                    HeaderValue::from_str(&format!("bytes */{}", f.size))
                        .unwrap_or(HeaderValue::from_static("")),
                );
                return r;
            }
        },
    };
    let faults = {
        let mut fl = lock(&st.shared.faults);
        let reset = match fl.reset_after.get_mut(&f.path) {
            Some((n, times)) if *times > 0 && b - a > *n => {
                *times -= 1;
                Some(*n)
            }
            _ => None,
        };
        let hold = fl.hold.get(&f.path).copied().map(|n| {
            let mut holds = lock(&st.shared.holds);
            let tx = holds
                .entry(f.path.clone())
                .or_insert_with(|| tokio::sync::watch::channel(false).0);
            (n, tx.subscribe())
        });
        (reset, fl.wrong_hash.contains(&f.path), fl.bandwidth, hold)
    };
    let (reset, wrong, bandwidth, hold) = faults;
    let file = f.clone();
    let flip_at = f.size / 2;
    struct S {
        pos: u64,
        sent: u64,
        hold: Option<(u64, tokio::sync::watch::Receiver<bool>)>,
        done: bool,
        started: tokio::time::Instant,
    }
    let chunk_cap = if bandwidth.is_some() {
        64 * 1024
    } else {
        CHUNK as u64
    };
    let stream = futures_util::stream::unfold(
        S {
            pos: a,
            sent: 0,
            hold,
            done: false,
            started: tokio::time::Instant::now(),
        },
        move |mut s| {
            let file = file.clone();
            async move {
                if s.done || s.pos >= b {
                    return None;
                }
                if let Some(n) = reset {
                    if s.sent >= n {
                        s.done = true;
                        return Some((
                            Err(std::io::Error::new(
                                std::io::ErrorKind::ConnectionReset,
                                "injected reset",
                            )),
                            s,
                        ));
                    }
                }
                if let Some((n, rx)) = &mut s.hold {
                    if s.sent >= *n {
                        let _ = rx.wait_for(|v| *v).await;
                        s.hold = None;
                    }
                }
                let mut end = (s.pos + chunk_cap).min(b);
                if let Some(n) = reset {
                    end = end.min(s.pos + (n - s.sent));
                }
                if let Some((n, _)) = &s.hold {
                    end = end.min(s.pos + (*n - s.sent).max(1));
                }
                let mut bytes = file.slice(s.pos, end);
                if wrong && (s.pos..s.pos + bytes.len() as u64).contains(&flip_at) {
                    let mut v = bytes.to_vec();
                    v[(flip_at - s.pos) as usize] ^= 0xff;
                    bytes = Bytes::from(v);
                }
                if let Some(bw) = bandwidth {
                    // Paced against the start of the response (timer granularity does not add up).
                    let due = (s.sent + bytes.len() as u64) as f64 / bw.max(1) as f64;
                    tokio::time::sleep_until(s.started + Duration::from_secs_f64(due)).await;
                }
                s.pos += bytes.len() as u64;
                s.sent += bytes.len() as u64;
                Some((Ok::<_, std::io::Error>(bytes), s))
            }
        },
    );
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = code;
    let h = r.headers_mut();
    h.insert("content-length", HeaderValue::from(b - a));
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    h.insert(
        "etag",
        HeaderValue::from_str(&format!("\"{}\"", &f.sha256[..40]))
            .unwrap_or(HeaderValue::from_static("")),
    );
    h.insert(
        "x-repo-commit",
        HeaderValue::from_str(commit).unwrap_or(HeaderValue::from_static("")),
    );
    if code == StatusCode::PARTIAL_CONTENT {
        h.insert(
            "content-range",
            HeaderValue::from_str(&format!("bytes {}-{}/{}", a, b - 1, f.size))
                .unwrap_or(HeaderValue::from_static("")),
        );
    }
    r
}
