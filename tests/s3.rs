//! S3 sources (src/s3) against a real S3 API on loopback: moto in server mode (`moto_server`,
//! installed by .ci/run with pip), filled by an independent client (moto's own boto3, from
//! Python). A small HTTP proxy in front of it injects the faults: a 429, a 503, a connection cut
//! mid-object, a stalled transfer, and a refusal with S3's SignatureDoesNotMatch answer (moto does
//! not check the signature of presigned URLs: its IAM check reads only an `Authorization` header,
//! so a wrong secret cannot be refused by moto itself).
//!
//! Skipped (with a message) when `moto_server` is missing, except under CI=true, where it fails.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::apienv::Env;
use common::{stderr, TempRepo};
use platform::hub::{FileFilter, HubConfig, NoProgress, RetryPolicy};
use platform::report::{Event, Reporter};
use platform::s3::{
    AwsCredentials, Check, CredentialSource, EndpointSource, S3Client, S3Error, S3Settings, Secret,
};
use platform_testkit::apiserver::{Options, TestApiServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TEST_TIMEOUT: Duration = Duration::from_secs(180);
const MIB: usize = 1024 * 1024;
const BUCKET: &str = "models";
const PREFIX: &str = "qwen/tiny";
const KEY_ID: &str = "AKIDTESTKEY";
const SECRET: &str = "s3cr3t-Wq9vX2pLmN";

// ---------------------------------------------------------------------------------------------
// moto

/// A moto server on a free loopback port, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn has(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// moto_server on a free port, ready; `None` (said on stderr) when moto is not installed and we
/// are not in CI.
async fn moto() -> Option<Moto> {
    if !has("moto_server") || !has("python3") {
        assert!(
            !in_ci(),
            "moto_server is not installed: .ci/run installs it (pip install 'moto[server]')"
        );
        eprintln!("skipped: moto_server is not installed (pip install 'moto[server]')");
        return None;
    }
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let m = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let up = reqwest::get(format!("{}/moto-api/", m.endpoint))
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return Some(m);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Port taken in the meantime, or a slow start: try another.
    }
    panic!("moto_server did not start");
}

/// One object to upload: its key under PREFIX, its content, how.
struct Obj {
    path: &'static str,
    content: Vec<u8>,
    /// `plain` (put: the ETag is the MD5), `sha256` (put with a SHA256 checksum), `multipart`
    /// (5 MiB parts: a `-N` ETag, no checksum).
    mode: &'static str,
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

/// The small model the tests upload: a config, a tokenizer, an index, two shards (one with a
/// SHA256 checksum, one multipart) and a README the default file set leaves out.
fn model() -> Vec<Obj> {
    let index = r#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
    vec![
        Obj {
            path: "config.json",
            content: br#"{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64}"#.to_vec(),
            mode: "plain",
        },
        Obj {
            path: "tokenizer.json",
            content: pattern(300 * 1024, 7),
            mode: "plain",
        },
        Obj {
            path: "model.safetensors.index.json",
            content: index.as_bytes().to_vec(),
            mode: "plain",
        },
        Obj {
            path: "model-00001-of-00002.safetensors",
            content: pattern(3 * MIB, 1),
            mode: "sha256",
        },
        Obj {
            path: "model-00002-of-00002.safetensors",
            content: pattern(11 * MIB + 12345, 2),
            mode: "multipart",
        },
        Obj {
            path: "README.md",
            content: b"# tiny\n".to_vec(),
            mode: "plain",
        },
    ]
}

const UPLOAD: &str = r#"
import json, sys
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
ep, spec = sys.argv[1], json.loads(sys.argv[2])
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test",
                  config=Config(request_checksum_calculation="when_required",
                                response_checksum_validation="when_required"))
for b in spec["buckets"]:
    s3.create_bucket(Bucket=b)
for f in spec["files"]:
    if f["mode"] == "multipart":
        cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
        s3.upload_file(f["file"], f["bucket"], f["key"], Config=cfg)
    elif f["mode"] == "sha256":
        with open(f["file"], "rb") as fh:
            s3.put_object(Bucket=f["bucket"], Key=f["key"], Body=fh.read(), ChecksumAlgorithm="SHA256")
    else:
        with open(f["file"], "rb") as fh:
            s3.put_object(Bucket=f["bucket"], Key=f["key"], Body=fh.read())
for f in spec["files"]:
    h = s3.head_object(Bucket=f["bucket"], Key=f["key"])
    print(f["key"], h["ETag"])
"#;

/// Upload `objs` under `prefix` of `bucket` (created when `create`) with boto3.
fn upload(endpoint: &str, bucket: &str, prefix: &str, objs: &[Obj], create: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<serde_json::Value> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let file = dir.path().join(i.to_string());
            std::fs::write(&file, &o.content).unwrap();
            serde_json::json!({"file": file, "bucket": bucket, "key": format!("{prefix}/{}", o.path), "mode": o.mode})
        })
        .collect();
    let spec =
        serde_json::json!({"buckets": if create { vec![bucket] } else { vec![] }, "files": files});
    let out = Command::new("python3")
        .args(["-c", UPLOAD, endpoint, &spec.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "upload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// moto with the model uploaded to s3://models/qwen/tiny.
async fn moto_with_model() -> Option<(Moto, Vec<Obj>)> {
    let m = moto().await?;
    let objs = model();
    let etags = upload(&m.endpoint, BUCKET, PREFIX, &objs, true);
    assert!(
        etags
            .lines()
            .any(|l| l.contains("model-00002") && l.contains("-3\"")),
        "the multipart object has a -3 ETag: {etags}"
    );
    Some((m, objs))
}

// ---------------------------------------------------------------------------------------------
// The fault-injecting proxy

#[derive(Clone, Debug)]
enum Action {
    /// Answer with this status (and `Retry-After` when given) and body, without asking moto.
    Status {
        code: u16,
        retry_after: Option<u32>,
        body: String,
    },
    /// Relay the answer, but close the connection after this many body bytes.
    CutAfter(usize),
    /// Relay this many body bytes, then send nothing more (a stalled transfer).
    StallAfter(usize),
}

#[derive(Clone, Debug)]
struct Rule {
    method: &'static str,
    /// A substring of the request path (query string excluded).
    path: &'static str,
    times: usize,
    action: Action,
}

/// What the proxy saw: `METHOD path [range]` (no query string).
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    range: Option<String>,
    query: String,
}

#[derive(Clone)]
struct Proxy {
    endpoint: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = upstream.trim_start_matches("http://").to_string();
        let p = Proxy {
            endpoint: format!("http://{addr}"),
            rules: Arc::default(),
            log: Arc::default(),
        };
        let (rules, log) = (p.rules.clone(), p.log.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (rules, log, upstream) = (rules.clone(), log.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, &upstream, rules, log).await;
                });
            }
        });
        p
    }

    fn add(&self, method: &'static str, path: &'static str, times: usize, action: Action) {
        self.rules.lock().unwrap().push(Rule {
            method,
            path,
            times,
            action,
        });
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.log.lock().unwrap().clear();
        self.rules.lock().unwrap().clear();
    }
}

/// One connection, one request: read its head, log it, apply the first matching rule or relay it
/// to moto with `Connection: close`.
async fn serve(
    mut sock: TcpStream,
    upstream: &str,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let head = read_head(&mut sock).await?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let range = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.clone());
    log.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.to_string(),
        range,
        query: query.to_string(),
    });
    let action = {
        let mut rules = rules.lock().unwrap();
        let hit = rules
            .iter_mut()
            .find(|r| r.times > 0 && r.method == method && path.contains(r.path));
        hit.map(|r| {
            r.times -= 1;
            r.action.clone()
        })
    };
    if let Some(Action::Status {
        code,
        retry_after,
        body,
    }) = &action
    {
        let ra = retry_after
            .map(|s| format!("Retry-After: {s}\r\n"))
            .unwrap_or_default();
        let resp = format!(
            "HTTP/1.1 {code} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n{ra}Connection: close\r\n\r\n{}",
            if method == "HEAD" { 0 } else { body.len() },
            if method == "HEAD" { "" } else { body.as_str() }
        );
        sock.write_all(resp.as_bytes()).await?;
        return sock.shutdown().await;
    }
    let mut up = TcpStream::connect(upstream).await?;
    let mut out = format!("{request_line}\r\n");
    for (k, v) in &headers {
        if !k.eq_ignore_ascii_case("connection") {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes()).await?;
    let limit = match action {
        Some(Action::CutAfter(n)) => Some((n, false)),
        Some(Action::StallAfter(n)) => Some((n, true)),
        _ => None,
    };
    relay(&mut up, &mut sock, limit).await
}

async fn read_head(sock: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if sock.read(&mut byte).await? == 0 || buf.len() > 64 * 1024 {
            break;
        }
        buf.push(byte[0]);
    }
    Ok(buf)
}

/// Copy moto's answer to the client; with `limit`, stop after that many body bytes (then close,
/// or stall without closing). A stalling answer pauses 1.2 s halfway, so the download's resume
/// state (saved at most once a second) records the bytes before the stall.
async fn relay(
    up: &mut TcpStream,
    sock: &mut TcpStream,
    limit: Option<(usize, bool)>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    let mut pending: Vec<u8>;
    loop {
        let n = up.read(&mut buf).await?;
        if n == 0 {
            sock.write_all(&head).await?;
            return sock.shutdown().await;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            pending = head.split_off(end + 4);
            sock.write_all(&head).await?;
            break;
        }
    }
    let Some((max, stall)) = limit else {
        sock.write_all(&pending).await?;
        tokio::io::copy(up, sock).await?;
        return sock.shutdown().await;
    };
    let mut sent = 0usize;
    let mut paused = false;
    loop {
        if pending.is_empty() {
            let n = up.read(&mut buf).await?;
            if n == 0 {
                return sock.shutdown().await;
            }
            pending.extend_from_slice(&buf[..n]);
        }
        let goal = if stall && !paused { max / 2 } else { max };
        let take = pending.len().min(goal - sent);
        sock.write_all(&pending[..take]).await?;
        pending.drain(..take);
        sent += take;
        if sent >= max {
            return stop(sock, stall).await;
        }
        if sent >= goal && !paused {
            sock.flush().await?;
            tokio::time::sleep(Duration::from_millis(1200)).await;
            paused = true;
        }
    }
}

async fn stop(sock: &mut TcpStream, stall: bool) -> std::io::Result<()> {
    sock.flush().await?;
    if stall {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Collects notes and details.
#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl Reporter for Notes {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Note(t) | Event::Detail(t) | Event::Warning(t) => {
                self.0.lock().unwrap().push(t.to_string())
            }
            _ => {}
        }
    }
}

impl Notes {
    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

fn settings(endpoint: &str) -> S3Settings {
    S3Settings {
        endpoint: endpoint.parse().unwrap(),
        endpoint_from: EndpointSource::Config,
        region: "us-east-1".into(),
        path_style: true,
        verify_tls: true,
    }
}

fn creds(secret: &str) -> AwsCredentials {
    AwsCredentials::new(
        Secret::new(KEY_ID).unwrap(),
        Secret::new(secret).unwrap(),
        None,
        CredentialSource::Env,
    )
}

fn engine(cache: &Path, range_size: u64) -> HubConfig {
    let mut c = HubConfig::new(String::new(), cache);
    c.concurrency = 4;
    c.range_size = range_size;
    c.retry = RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_server_wait: Duration::from_secs(5),
        deadline: Duration::from_secs(60),
    };
    c
}

fn client(endpoint: &str, cache: &Path, range_size: u64) -> S3Client {
    S3Client::new(
        settings(endpoint),
        Some(creds(SECRET)),
        engine(cache, range_size),
    )
    .unwrap()
}

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out");
}

fn assert_same(objs: &[Obj], dir: &Path, paths: &[&str]) {
    for p in paths {
        let want = &objs.iter().find(|o| o.path == *p).unwrap().content;
        let got = std::fs::read(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(got == *want, "{p}: content differs from what was uploaded");
    }
}

const SELECTED: [&str; 5] = [
    "config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
];

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_verifies_and_downloads_each_object_by_what_the_server_gives() {
    bounded(async {
        let Some((moto, objs)) = moto_with_model().await else {
            return;
        };
        let cache = tempfile::tempdir().unwrap();
        // Ranges of 1 MiB: the 11 MiB multipart object comes in 12 parallel ranges.
        let c = client(&moto.endpoint, cache.path(), MIB as u64);
        let notes = Notes::default();
        let snap = c
            .resolve(BUCKET, PREFIX, &FileFilter::default(), &notes)
            .await
            .unwrap();
        let paths: Vec<&str> = snap
            .snapshot
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(paths, SELECTED, "README.md is not in the default file set");
        assert_eq!(snap.listed, 6);
        assert_eq!(snap.snapshot.repo, "s3://models/qwen/tiny");
        let check = |p: &str| snap.checks[paths.iter().position(|x| *x == p).unwrap()];
        assert_eq!(check("config.json"), Check::Md5);
        assert_eq!(check("model-00001-of-00002.safetensors"), Check::Sha256);
        assert_eq!(check("model-00002-of-00002.safetensors"), Check::Size);
        platform::s3::report_checks(&snap, &notes);
        let said = notes.text();
        assert!(
            said.contains("verification: 1 by sha256 checksum, 3 by MD5 (ETag), 1 by size only"),
            "{said}"
        );
        assert!(
            said.contains("model-00002-of-00002.safetensors (11.0 MiB): size only"),
            "{said}"
        );

        let local = c.download(&snap, &notes, None).await.unwrap();
        assert_eq!(local.files.len(), 5);
        assert_eq!(local.dir, c.snapshot_dir(&snap));
        assert_same(&objs, &local.dir, &SELECTED);
        for f in &local.files {
            let want = platform::hub::sha256_file(&f.local_path).unwrap();
            assert_eq!(f.sha256, want, "{}", f.path);
        }
        // The same listing is the same identity; the cached files are not fetched again.
        let again = c
            .resolve(BUCKET, PREFIX, &FileFilter::default(), &NoProgress)
            .await
            .unwrap();
        assert_eq!(again.snapshot.commit, snap.snapshot.commit);
        let local = c.download(&again, &NoProgress, None).await.unwrap();
        assert_eq!((local.cached_files, local.downloaded_bytes), (5, 0));

        // One object replaced (another ETag): another identity.
        let mut changed = model();
        changed.retain(|o| o.path == "config.json");
        changed[0].content = br#"{"hidden_size": 128}"#.to_vec();
        upload(&moto.endpoint, BUCKET, PREFIX, &changed, false);
        let third = c
            .resolve(BUCKET, PREFIX, &FileFilter::default(), &NoProgress)
            .await
            .unwrap();
        assert_ne!(third.snapshot.commit, snap.snapshot.commit);

        // --include selects one object (how a GGUF `file:` is fed).
        let one = FileFilter::new(&["README.md"], &[]).unwrap();
        let snap = c.resolve(BUCKET, PREFIX, &one, &NoProgress).await.unwrap();
        assert_eq!(snap.snapshot.files.len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_a_429_a_503_and_a_connection_cut_mid_object() {
    bounded(async {
        let Some((moto, objs)) = moto_with_model().await else {
            return;
        };
        let proxy = Proxy::start(&moto.endpoint).await;
        proxy.add(
            "GET",
            "/models",
            1,
            Action::Status {
                code: 503,
                retry_after: None,
                body: "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".into(),
            },
        );
        proxy.add(
            "HEAD",
            "config.json",
            1,
            Action::Status {
                code: 429,
                retry_after: Some(1),
                body: String::new(),
            },
        );
        proxy.add("GET", "model-00002", 1, Action::CutAfter(2 * MIB + 77));
        proxy.add(
            "GET",
            "tokenizer.json",
            1,
            Action::Status {
                code: 429,
                retry_after: Some(1),
                body: String::new(),
            },
        );
        let cache = tempfile::tempdir().unwrap();
        // One stream per file: the cut object resumes with a Range from where it broke.
        let c = client(&proxy.endpoint, cache.path(), 64 * MIB as u64);
        let notes = Notes::default();
        let snap = c
            .resolve(BUCKET, PREFIX, &FileFilter::default(), &notes)
            .await
            .unwrap();
        let local = c.download(&snap, &notes, None).await.unwrap();
        assert_same(&objs, &local.dir, &SELECTED);
        let said = notes.text();
        for want in ["HTTP 503", "HTTP 429", "waiting as the server asks", "model-00002-of-00002.safetensors: error decoding response body"] {
            assert!(said.contains(want), "{want}: {said}");
        }
        assert!(!said.contains("X-Amz-Signature"), "a signed URL was shown: {said}");
        let resumed: Vec<Seen> = proxy
            .seen()
            .into_iter()
            .filter(|s| s.path.ends_with("model-00002-of-00002.safetensors") && s.method == "GET")
            .collect();
        assert_eq!(resumed.len(), 2, "{resumed:?}");
        assert_eq!(resumed[1].range.as_deref(), Some(&*format!("bytes={}-", 2 * MIB + 77)));
        // Each attempt is signed afresh.
        assert!(resumed.iter().all(|s| s.query.contains("X-Amz-Signature=")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_download_resumes_where_it_stopped() {
    bounded(async {
        let Some((moto, objs)) = moto_with_model().await else {
            return;
        };
        let proxy = Proxy::start(&moto.endpoint).await;
        let cache = tempfile::tempdir().unwrap();
        let c = client(&proxy.endpoint, cache.path(), 4 * MIB as u64);
        let snap = c
            .resolve(BUCKET, PREFIX, &FileFilter::default(), &NoProgress)
            .await
            .unwrap();
        // Every range of the multipart object stalls after 1 MiB; the run is dropped (killed)
        // once its resume state records bytes of a range.
        proxy.add("GET", "model-00002", 3, Action::StallAfter(MIB));
        let state_file = c
            .snapshot_dir(&snap)
            .parent()
            .unwrap()
            .join(".partial")
            .join(&snap.snapshot.commit)
            .join("model-00002-of-00002.safetensors.part.state");
        let saved = || -> Vec<u64> {
            let state = std::fs::read_to_string(&state_file).unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
            v["done"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                .unwrap_or_default()
        };
        let run = c.download(&snap, &NoProgress, None);
        let stalled = async {
            while !saved().iter().any(|d| *d >= MIB as u64) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            r = run => panic!("the stalled download ended: {r:?}"),
            () = stalled => {}
        }
        // Dropping the run is not a kill: a write already on the blocking pool still lands and
        // records its bytes (a retry can be finishing a range). The state is read once it is
        // still, as a killed process would have left it.
        let mut done = saved();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = saved();
            if now == done {
                break;
            }
            done = now;
        }
        assert_eq!(done.len(), 3, "three 4 MiB ranges: {done:?}");
        proxy.clear();
        let local = c.download(&snap, &NoProgress, None).await.unwrap();
        assert_same(&objs, &local.dir, &SELECTED);
        let ranges: Vec<String> = proxy
            .seen()
            .into_iter()
            .filter(|s| s.path.ends_with("model-00002-of-00002.safetensors"))
            .filter_map(|s| s.range)
            .collect();
        let mut starts: Vec<u64> = ranges
            .iter()
            .map(|r| {
                r.trim_start_matches("bytes=")
                    .split('-')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        starts.sort();
        // Each range goes on from what the killed run's state recorded, not from its start (a
        // range the state records complete, as a retry can finish one before the kill, is not
        // asked for again).
        let m = 4 * MIB as u64;
        let size = objs
            .iter()
            .find(|o| o.path.ends_with("model-00002-of-00002.safetensors"))
            .unwrap()
            .content
            .len() as u64;
        let want: Vec<u64> = done
            .iter()
            .enumerate()
            .map(|(i, d)| i as u64 * m + d)
            .zip(1..)
            .filter(|(at, k)| *at < size.min(k * m))
            .map(|(at, _)| at)
            .collect();
        assert_eq!(starts, want, "{ranges:?}");
        assert!(done.iter().any(|d| *d >= MIB as u64));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_empty_prefix_and_refused_object_in_plain_words() {
    bounded(async {
        let Some((moto, _)) = moto_with_model().await else {
            return;
        };
        let cache = tempfile::tempdir().unwrap();
        let c = client(&moto.endpoint, cache.path(), 64 * MIB as u64);
        let f = FileFilter::default();
        let e = c.resolve("no-such-bucket", "x", &f, &NoProgress).await.unwrap_err();
        assert!(matches!(e, S3Error::NoSuchBucket { .. }), "{e}");
        let s = e.to_string();
        assert!(
            s.contains("bucket `no-such-bucket` does not exist at http://127.0.0.1:")
                && s.contains("s3.endpoint in config.yaml"),
            "{s}"
        );
        let e = c.resolve(BUCKET, "qwen/nothing", &f, &NoProgress).await.unwrap_err();
        assert!(
            e.to_string().contains("s3://models/qwen/nothing: no objects under the prefix `qwen/nothing/`"),
            "{e}"
        );
        // Objects, none selected.
        let none = FileFilter::new(&["*.gguf"], &[]).unwrap();
        let e = c.resolve(BUCKET, PREFIX, &none, &NoProgress).await.unwrap_err();
        assert!(e.to_string().contains("6 object(s) under the prefix, none selected"), "{e}");

        // An endpoint where nothing answers: named, with where it was set.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = engine(cache.path(), MIB as u64);
        cfg.retry.max_attempts = 2;
        let dead = S3Client::new(
            settings(&format!("http://127.0.0.1:{port}")),
            None,
            cfg,
        )
        .unwrap();
        let e = dead.resolve(BUCKET, PREFIX, &f, &NoProgress).await.unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with(&format!("listing s3://models/qwen/tiny: no success from http://127.0.0.1:{port} (2 attempt(s)"))
                && s.contains("check the endpoint (s3.endpoint in config.yaml)"),
            "{s}"
        );

        // An object that goes away between the listing and its download.
        let snap = c.resolve(BUCKET, PREFIX, &f, &NoProgress).await.unwrap();
        let del = Command::new("python3")
            .args(["-c", "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='t', aws_secret_access_key='t').delete_object(Bucket='models', Key='qwen/tiny/config.json')", &moto.endpoint])
            .status()
            .unwrap();
        assert!(del.success());
        let e = c.download(&snap, &NoProgress, None).await.unwrap_err().to_string();
        assert!(
            e.contains("s3://models/qwen/tiny/config.json was listed but is gone (HTTP 404"),
            "{e}"
        );
    })
    .await;
}

/// The binary: wrong credentials are refused in plain words, exit 4, the secret never shown (even
/// when the server echoes it); `--download-only` works for s3://; a bad endpoint is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_download_only_and_refusals() {
    bounded(async {
        let Some((moto, objs)) = moto_with_model().await else {
            return;
        };
        let proxy = Proxy::start(&moto.endpoint).await;
        let repo = TempRepo::new();
        let to = repo.path().join("weights");
        let cache = tempfile::tempdir().unwrap();
        let run = |endpoint: String, secret: &'static str, source: &'static str| {
            let mut cmd = repo.cmd();
            cmd.args(["stage-model", "--download-only", "--source", source, "--to"])
                .arg(&to)
                .env("AWS_ENDPOINT_URL_S3", endpoint)
                .env("AWS_ACCESS_KEY_ID", KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .env("AWS_REGION", "us-east-1")
                .env("PLATFORM_HUB_CACHE", cache.path())
                .timeout(Duration::from_secs(120));
            async move { tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap() }
        };
        let o = run(moto.endpoint.clone(), SECRET, "s3://models/qwen/tiny").await;
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("credentials from $AWS_ACCESS_KEY_ID"), "{err}");
        assert!(err.contains("by MD5 (ETag)"), "{err}");
        assert_same(&objs, &to, &SELECTED);
        assert!(!to.join(".partial").exists());

        // The server refuses the signature and echoes the secret in its message.
        proxy.add(
            "GET",
            "/models",
            1,
            Action::Status {
                code: 403,
                retry_after: None,
                body: format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided (secret {SECRET}).</Message></Error>"),
            },
        );
        let o = run(proxy.endpoint.clone(), SECRET, "s3://models/qwen/tiny").await;
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("listing s3://models/qwen/tiny: access denied by http://127.0.0.1:")
                && err.contains("HTTP 403, SignatureDoesNotMatch")
                && err.contains("the credentials from $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY (the secret access key does not match the access key id) were refused")
                && err.contains("s3:ListBucket and s3:GetObject on bucket `models`"),
            "{err}"
        );
        assert!(!err.contains(SECRET) && !err.contains(KEY_ID), "a secret was printed: {err}");
        assert!(!err.contains("X-Amz-"), "a signed URL was printed: {err}");

        // Anonymous: said before the first request, and in the refusal.
        proxy.add(
            "GET",
            "/models",
            1,
            Action::Status {
                code: 403,
                retry_after: None,
                body: "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>".into(),
            },
        );
        let mut cmd = repo.cmd();
        cmd.args(["stage-model", "--download-only", "--source", "s3://models/qwen/tiny", "--to"])
            .arg(&to)
            .env("AWS_ENDPOINT_URL_S3", &proxy.endpoint)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env("HOME", repo.path())
            .env("PLATFORM_HUB_CACHE", cache.path())
            .timeout(Duration::from_secs(120));
        let o = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("anonymous requests"), "{err}");
        assert!(err.contains("no credentials were sent"), "{err}");

        // A bad endpoint and a bad bucket name are input errors.
        let o = run("ftp://127.0.0.1:9".into(), SECRET, "s3://models/qwen/tiny").await;
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("invalid S3 endpoint `ftp://127.0.0.1:9` (from $AWS_ENDPOINT_URL_S3)"), "{}", stderr(&o));
        let o = run(moto.endpoint.clone(), SECRET, "s3://Bad_Bucket/x").await;
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("bucket `Bad_Bucket`"), "{}", stderr(&o));
    })
    .await;
}

/// stage-model end to end on the test API server: qwen-cpu's source is s3://, the weights land on
/// the PVC verified in the pod, the marker records the listing; again is a no-op; a replaced
/// object stages again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_model_from_s3_onto_the_pvc() {
    bounded(async {
        let Some((moto, objs)) = moto_with_model().await else {
            return;
        };
        let server = TestApiServer::start(Options {
            cluster_name: "ai-dev".into(),
            ..Options::default()
        })
        .await;
        let repo = TempRepo::new();
        let cfg = repo.read("environments/ai-dev/config.yaml").replacen(
            "source: hf://Qwen/Qwen2.5-0.5B-Instruct",
            "source: s3://models/qwen/tiny",
            1,
        );
        let cfg = format!(
            "{cfg}\ns3:\n  endpoint: {}\n  region: us-east-1\n  pathStyle: true\n",
            moto.endpoint
        );
        repo.write("environments/ai-dev/config.yaml", &cfg);
        let e = Env::new(server, repo).await;
        let cache = tempfile::tempdir().unwrap();
        let home = cache.path().join("home");
        let creds_file = cache.path().join("credentials");
        std::fs::write(
            &creds_file,
            format!("[models]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"),
        )
        .unwrap();
        let c = cache.path().to_str().unwrap();
        let envs = [
            ("PLATFORM_HUB_CACHE", c),
            ("HOME", home.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", creds_file.to_str().unwrap()),
            ("AWS_PROFILE", "models"),
        ];
        let o = e.platform_env(&["stage-model", "qwen-cpu"], &envs).await;
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("credentials from profile `models`"), "{err}");
        assert!(
            err.contains("qwen-cpu: s3://models/qwen/tiny is listing "),
            "{err}"
        );
        assert!(!err.contains(SECRET), "{err}");
        let vol = e.server.volumes_dir().join("kserve/qwen-cpu-weights/qwen");
        assert_same(&objs, &vol, &SELECTED);
        assert!(!vol.join("README.md").exists());
        let marker: serde_json::Value =
            serde_json::from_slice(&std::fs::read(vol.join(".platform-staged.json")).unwrap())
                .unwrap();
        assert_eq!(marker["source"], "s3://models/qwen/tiny");
        assert_eq!(marker["revision"], "listing");
        let first = marker["commit"].as_str().unwrap().to_string();
        assert_eq!(first.len(), 40);
        assert_eq!(marker["files"].as_array().unwrap().len(), 5);

        let o = e.platform_env(&["stage-model", "qwen-cpu"], &envs).await;
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("already staged"), "{}", stderr(&o));

        let mut changed = model();
        changed.retain(|o| o.path == "tokenizer.json");
        changed[0].content = pattern(1000, 9);
        upload(&moto.endpoint, BUCKET, PREFIX, &changed, false);
        let o = e.platform_env(&["stage-model", "qwen-cpu"], &envs).await;
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("staged 5 file(s)"), "{}", stderr(&o));
        assert_eq!(
            std::fs::read(vol.join("tokenizer.json")).unwrap(),
            pattern(1000, 9)
        );
        let marker: serde_json::Value =
            serde_json::from_slice(&std::fs::read(vol.join(".platform-staged.json")).unwrap())
                .unwrap();
        assert_ne!(marker["commit"].as_str().unwrap(), first);

        // --revision means nothing for an S3 prefix.
        let o = e
            .platform_env(&["stage-model", "qwen-cpu", "--revision", "v1"], &envs)
            .await;
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("has no revisions"), "{}", stderr(&o));
        assert!(e
            .server
            .get("v1", "Pod", "kserve", "platform-stage-qwen-cpu")
            .is_none());
        e.server.shutdown().await;
    })
    .await;
}
