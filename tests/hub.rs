//! Hub downloads (src/hub) against the Hub emulator (testkit/src/hub) on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::hub as hub_emu;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hub_emu::{small_model, EmuRepo, Faults, HubEmulator};
use platform::hub::{
    FileFilter, HfToken, HubClient, HubConfig, HubError, NoProgress, ReadyFile, RetryPolicy,
    Snapshot,
};

/// Every test runs under this bound.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
const REPO: &str = "Qwen/Tiny-Test";
const MIB: u64 = 1024 * 1024;

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out");
}

fn config(emu: &HubEmulator, cache: &Path) -> HubConfig {
    let mut c = HubConfig::new(emu.endpoint.clone(), cache);
    c.concurrency = 4;
    c.range_size = 64 * MIB; // single stream per file unless a test asks for ranges
    c.retry = RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_server_wait: Duration::from_secs(5),
        deadline: Duration::from_secs(60),
    };
    c
}

fn client(emu: &HubEmulator, cache: &Path) -> HubClient {
    HubClient::new(config(emu, cache)).expect("client")
}

async fn resolve(c: &HubClient) -> Snapshot {
    c.resolve(REPO, "main", &FileFilter::default())
        .await
        .expect("resolve")
}

fn partial_path(cache: &Path, commit: &str, file: &str) -> PathBuf {
    cache
        .join("Qwen--Tiny-Test")
        .join(".partial")
        .join(commit)
        .join(format!("{file}.part"))
}

fn assert_matches_emulator(emu: &HubEmulator, local: &Path, file: &str) {
    let want = emu.repo(REPO).get(file).expect("emu file").content();
    let got = std::fs::read(local).expect("read downloaded");
    assert!(got == want, "{file}: content differs from the emulator's");
}

#[tokio::test]
async fn metadata_429_on_first_request_is_retried() {
    bounded(async {
        let emu = HubEmulator::start(
            vec![small_model(REPO)],
            Faults {
                metadata_429: 1,
                ..Default::default()
            },
        )
        .await;
        let dir = tempfile::tempdir().expect("tmp");
        let snap = resolve(&client(&emu, dir.path())).await;
        assert_eq!(snap.commit, emu.repo(REPO).commit);
        let api: Vec<u16> = emu
            .log()
            .iter()
            .filter(|e| e.path.starts_with("/api/"))
            .map(|e| e.status)
            .collect();
        assert_eq!(api, vec![429, 200]);
    })
    .await;
}

#[tokio::test]
async fn storm_of_429_with_retry_after_eventually_succeeds() {
    bounded(async {
        let faults = Faults {
            resolve_429_storm: 3,
            storm_retry_after: "1".into(),
            ..Default::default()
        };
        let emu = HubEmulator::start(vec![small_model(REPO)], faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let c = client(&emu, dir.path());
        let snap = resolve(&c).await;
        let local = c
            .download(&snap, &NoProgress, None)
            .await
            .expect("download");
        assert_eq!(local.files.len(), snap.files.len());
        let throttled = emu.log().iter().filter(|e| e.status == 429).count();
        assert_eq!(throttled, 3, "the storm's 429s are in the log");
        for f in &local.files {
            assert_matches_emulator(&emu, &f.local_path, &f.path);
        }
    })
    .await;
}

#[tokio::test]
async fn connection_reset_mid_file_resumes_with_range() {
    bounded(async {
        let cut = 1_000_000u64;
        let faults = Faults {
            reset_after: [("model.safetensors".to_string(), (cut, 1))].into(),
            ..Default::default()
        };
        let emu = HubEmulator::start(vec![small_model(REPO)], faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let c = client(&emu, dir.path());
        let snap = resolve(&c).await;
        let local = c
            .download(&snap, &NoProgress, None)
            .await
            .expect("download");
        let reqs: Vec<_> = emu
            .log()
            .into_iter()
            .filter(|e| e.server == "cdn" && e.path.ends_with("/model.safetensors"))
            .collect();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(reqs[0].range, None);
        let range = reqs[1].range.clone().expect("second request has a Range");
        let n: u64 = range
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse().ok())
            .expect("bytes=N-");
        assert!(n > 0 && n <= cut, "resumed at {n}, not restarted");
        let f = local
            .files
            .iter()
            .find(|f| f.path == "model.safetensors")
            .expect("file");
        assert_matches_emulator(&emu, &f.local_path, "model.safetensors");
    })
    .await;
}

#[tokio::test]
async fn ranged_download_with_reset_is_correct() {
    bounded(async {
        let faults = Faults {
            reset_after: [("model.safetensors".to_string(), (300_000, 2))].into(),
            ..Default::default()
        };
        let emu = HubEmulator::start(vec![small_model(REPO)], faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = config(&emu, dir.path());
        cfg.range_size = MIB;
        let c = HubClient::new(cfg).expect("client");
        let snap = resolve(&c).await;
        let out = tempfile::tempdir().expect("out");
        let local = c
            .download_to_dir(&snap, out.path(), &NoProgress, None)
            .await
            .expect("download");
        assert_eq!(local.dir, out.path());
        let reqs: Vec<_> = emu
            .log()
            .into_iter()
            .filter(|e| e.server == "cdn" && e.path.ends_with("/model.safetensors"))
            .collect();
        assert!(reqs.len() >= 4 + 2, "4 ranges and 2 resumed ones: {reqs:?}");
        assert!(reqs.iter().all(|r| r.range.is_some()));
        for f in &local.files {
            assert_matches_emulator(&emu, &f.local_path, &f.path);
        }
        assert!(
            !out.path().join(".partial").exists(),
            "partial dir cleaned up"
        );
    })
    .await;
}

#[tokio::test]
async fn lfs_redirects_to_cdn_without_the_token() {
    bounded(async {
        let faults = Faults {
            required_token: Some("hf_emulated_secret".into()),
            ..Default::default()
        };
        let emu = HubEmulator::start(vec![small_model(REPO)], faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = config(&emu, dir.path());
        cfg.token = HfToken::new("hf_emulated_secret");
        let c = HubClient::new(cfg).expect("client");
        let snap = resolve(&c).await;
        c.download(&snap, &NoProgress, None)
            .await
            .expect("download");
        let log = emu.log();
        let hub_dl: Vec<_> = log
            .iter()
            .filter(|e| e.server == "hub" && e.path.contains("/resolve/"))
            .collect();
        assert!(hub_dl
            .iter()
            .all(|e| e.authorization.as_deref() == Some("Bearer hf_emulated_secret")));
        assert!(
            hub_dl.iter().any(|e| e.status == 302),
            "LFS files are redirected"
        );
        let cdn: Vec<_> = log.iter().filter(|e| e.server == "cdn").collect();
        assert!(!cdn.is_empty());
        assert!(
            cdn.iter().all(|e| e.authorization.is_none()),
            "token leaked to the CDN: {cdn:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn hash_mismatch_fails_loudly_and_keeps_nothing() {
    bounded(async {
        let faults = Faults {
            wrong_hash: ["model.safetensors".to_string()].into(),
            ..Default::default()
        };
        let emu = HubEmulator::start(vec![small_model(REPO)], faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let c = client(&emu, dir.path());
        let snap = resolve(&c).await;
        let err = c
            .download(&snap, &NoProgress, None)
            .await
            .expect_err("must fail");
        let expected = emu
            .repo(REPO)
            .get("model.safetensors")
            .expect("file")
            .sha256
            .clone();
        match &err {
            HubError::HashMismatch {
                path,
                expected: e,
                actual,
                ..
            } => {
                assert_eq!(path, "model.safetensors");
                assert_eq!(e, &expected);
                assert_ne!(actual, &expected);
            }
            other => panic!("expected a hash mismatch, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("model.safetensors") && msg.contains(&expected),
            "{msg}"
        );
        let snapdir = c.snapshot_dir(REPO, &snap.commit).expect("dir");
        assert!(!snapdir.join("model.safetensors").exists());
        assert!(!partial_path(dir.path(), &snap.commit, "model.safetensors").exists());
        assert!(
            snapdir.join("config.json").exists(),
            "the good files are kept"
        );
    })
    .await;
}

#[tokio::test]
async fn not_found_for_a_listed_file_names_it() {
    bounded(async {
        let faults = Faults {
            missing: ["merges.txt".to_string()].into(),
            ..Default::default()
        };
        let emu = HubEmulator::start(vec![small_model(REPO)], faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let c = client(&emu, dir.path());
        let snap = resolve(&c).await;
        let err = c
            .download(&snap, &NoProgress, None)
            .await
            .expect_err("must fail");
        assert!(
            matches!(&err, HubError::FileNotFound { path, .. } if path == "merges.txt"),
            "{err:?}"
        );
        assert!(err.to_string().contains("merges.txt"));
    })
    .await;
}

#[tokio::test]
async fn gated_repo_401_and_403_name_hf_token_without_printing_it() {
    bounded(async {
        let faults = Faults {
            required_token: Some("hf_right_one".into()),
            ..Default::default()
        };
        let emu = HubEmulator::start(vec![small_model(REPO)], faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let err = client(&emu, dir.path())
            .resolve(REPO, "main", &FileFilter::default())
            .await
            .expect_err("401");
        assert!(
            matches!(
                err,
                HubError::Unauthorized {
                    status: 401,
                    token_sent: false,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("HF_TOKEN"), "{err}");
        let mut cfg = config(&emu, dir.path());
        cfg.token = HfToken::new("hf_wrong_secret_value");
        let err = HubClient::new(cfg)
            .expect("client")
            .resolve(REPO, "main", &FileFilter::default())
            .await
            .expect_err("403");
        assert!(
            matches!(
                err,
                HubError::Unauthorized {
                    status: 403,
                    token_sent: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let (msg, dbg) = (err.to_string(), format!("{err:?}"));
        assert!(msg.contains("HF_TOKEN"), "{msg}");
        assert!(!msg.contains("hf_wrong_secret_value") && !dbg.contains("hf_wrong_secret_value"));
    })
    .await;
}

#[tokio::test]
async fn default_file_set_skips_bin_pth_gguf_and_original() {
    bounded(async {
        let emu = HubEmulator::start(vec![small_model(REPO)], Faults::default()).await;
        let dir = tempfile::tempdir().expect("tmp");
        let c = client(&emu, dir.path());
        let snap = resolve(&c).await;
        let names: Vec<&str> = snap.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "config.json",
                "generation_config.json",
                "merges.txt",
                "model.safetensors",
                "tokenizer.json",
                "tokenizer_config.json",
                "vocab.json"
            ]
        );
        let st = snap
            .files
            .iter()
            .find(|f| f.path == "model.safetensors")
            .expect("lfs");
        assert_eq!(
            st.sha256.as_deref(),
            Some(
                emu.repo(REPO)
                    .get("model.safetensors")
                    .expect("f")
                    .sha256
                    .as_str()
            )
        );
        let custom = FileFilter::new(&["*.bin", "original/*"], &[]).expect("filter");
        let snap = c
            .resolve(REPO, &emu.repo(REPO).commit, &custom)
            .await
            .expect("resolve by sha");
        let names: Vec<&str> = snap.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["original/consolidated.00.pth", "pytorch_model.bin"]);
    })
    .await;
}

#[tokio::test]
async fn second_download_of_the_same_commit_fetches_nothing() {
    bounded(async {
        let emu = HubEmulator::start(vec![small_model(REPO)], Faults::default()).await;
        let dir = tempfile::tempdir().expect("tmp");
        let c = client(&emu, dir.path());
        let snap = resolve(&c).await;
        let first = c.download(&snap, &NoProgress, None).await.expect("first");
        assert_eq!(first.cached_files, 0);
        assert_eq!(
            first.dir,
            dir.path().join("Qwen--Tiny-Test").join(&snap.commit)
        );
        emu.clear_log();
        let second = c.download(&snap, &NoProgress, None).await.expect("second");
        assert!(emu.file_requests().is_empty(), "{:?}", emu.file_requests());
        assert_eq!(second.cached_files, snap.files.len());
        assert_eq!(second.downloaded_bytes, 0);
        assert_eq!(second.files, first.files);
        assert!(!dir.path().join("Qwen--Tiny-Test").join(".partial").exists());
    })
    .await;
}

#[tokio::test]
async fn partial_file_of_a_killed_run_is_resumed() {
    bounded(async {
        let held = 2 * MIB + 4096;
        let faults = Faults {
            hold: [("model.safetensors".to_string(), held)].into(),
            ..Default::default()
        };
        let emu = HubEmulator::start(vec![small_model(REPO)], faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let c = Arc::new(client(&emu, dir.path()));
        let snap = resolve(&c).await;
        let part = partial_path(dir.path(), &snap.commit, "model.safetensors");
        let (c2, s2) = (c.clone(), snap.clone());
        let run = tokio::spawn(async move { c2.download(&s2, &NoProgress, None).await });
        while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < MIB {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        run.abort(); // the "kill"
        let _ = run.await;
        // An abort is not a kill: a write already on the blocking pool still lands. The length
        // is read once it is still, as a killed process would have left the file.
        let len = || {
            std::fs::metadata(&part)
                .expect("partial file survives")
                .len()
        };
        let mut kept = len();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if len() == kept {
                break;
            }
            kept = len();
        }
        assert!(kept >= MIB);
        emu.release("model.safetensors");
        emu.clear_log();
        let local = c
            .download(&snap, &NoProgress, None)
            .await
            .expect("resumed run");
        let reqs: Vec<_> = emu
            .log()
            .into_iter()
            .filter(|e| e.server == "cdn" && e.path.ends_with("/model.safetensors"))
            .collect();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(
            reqs[0].range.as_deref(),
            Some(format!("bytes={kept}-").as_str())
        );
        let f = local
            .files
            .iter()
            .find(|f| f.path == "model.safetensors")
            .expect("file");
        assert_matches_emulator(&emu, &f.local_path, "model.safetensors");
        assert!(local.downloaded_bytes < f.size);
    })
    .await;
}

#[tokio::test]
async fn ready_channel_gets_each_file_as_soon_as_it_is_verified() {
    bounded(async {
        let faults = Faults {
            hold: [("model.safetensors".to_string(), MIB)].into(),
            ..Default::default()
        };
        let emu = HubEmulator::start(vec![small_model(REPO)], faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let c = Arc::new(client(&emu, dir.path()));
        let snap = resolve(&c).await;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<ReadyFile>(4);
        let (c2, s2) = (c.clone(), snap.clone());
        let run = tokio::spawn(async move { c2.download(&s2, &NoProgress, Some(tx)).await });
        let mut early = Vec::new();
        for _ in 0..snap.files.len() - 1 {
            let f = rx.recv().await.expect("a ready file");
            assert!(f.local_path.exists());
            early.push(f.path);
        }
        assert!(!early.contains(&"model.safetensors".to_string()));
        assert!(
            !run.is_finished(),
            "the download is still running while files are handed over"
        );
        emu.release("model.safetensors");
        let last = rx.recv().await.expect("the held file");
        assert_eq!(last.path, "model.safetensors");
        assert_eq!(
            last.sha256,
            emu.repo(REPO).get("model.safetensors").expect("f").sha256
        );
        assert!(
            rx.recv().await.is_none(),
            "channel closed after the last file"
        );
        let local = run.await.expect("join").expect("download");
        assert_eq!(local.files.len(), snap.files.len());
    })
    .await;
}

#[tokio::test]
async fn token_never_appears_in_debug_or_errors() {
    bounded(async {
        let secret = "hf_never_print_this_0123456789";
        let emu = HubEmulator::start(
            vec![EmuRepo::new("org/other")],
            Faults {
                required_token: Some("x".into()),
                ..Default::default()
            },
        )
        .await;
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = config(&emu, dir.path());
        cfg.token = HfToken::new(secret);
        let token = cfg.token.clone().expect("token");
        assert!(!format!("{token:?}{token}").contains(secret));
        assert!(!format!("{cfg:?}").contains(secret));
        let c = HubClient::new(cfg).expect("client");
        assert!(!format!("{c:?}").contains(secret));
        for repo in ["org/other", "org/missing"] {
            let err = c
                .resolve(repo, "main", &FileFilter::default())
                .await
                .expect_err("denied");
            assert!(!err.to_string().contains(secret) && !format!("{err:?}").contains(secret));
        }
        let file = dir.path().join("token");
        std::fs::write(&file, format!("{secret}\n")).expect("write");
        let cfg = HubConfig::from_env(Some(&file)).expect("from token file");
        assert_eq!(cfg.token.as_ref().map(|t| t.expose_secret()), Some(secret));
        assert!(!format!("{cfg:?}").contains(secret));
    })
    .await;
}

/// Records what a download or a resolve says about retries.
#[derive(Default)]
struct Retries(std::sync::Mutex<Vec<String>>);

impl platform::report::Reporter for Retries {
    fn event(&self, e: platform::report::Event<'_>) {
        if let platform::report::Event::Note(n) = e {
            if n.starts_with("retrying in ") {
                self.0.lock().expect("lock").push(n.to_string());
            }
        }
    }
}

impl Retries {
    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }
}

/// An endpoint that accepts connections and never writes a byte (the listener and its accepted
/// connections live as long as the returned task).
async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    (format!("http://{addr}"), task)
}

fn silent_config(endpoint: &str, cache: &Path, read_timeout: Duration) -> HubConfig {
    let mut c = HubConfig::new(endpoint, cache);
    c.read_timeout = read_timeout;
    c.connect_timeout = Duration::from_secs(5);
    c.retry = RetryPolicy {
        max_attempts: 1000,
        base_delay: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_server_wait: Duration::from_secs(5),
        deadline: Duration::from_secs(2),
    };
    c
}

#[tokio::test]
async fn an_endpoint_that_never_answers_gives_up_at_the_deadline_saying_each_retry() {
    bounded(async {
        let (endpoint, server) = silent_endpoint().await;
        let dir = tempfile::tempdir().expect("tmp");
        let c = HubClient::new(silent_config(
            &endpoint,
            dir.path(),
            Duration::from_millis(200),
        ))
        .expect("client");
        let said = Retries::default();
        let err = c
            .resolve_with(REPO, "main", &FileFilter::default(), &said)
            .await
            .expect_err("nothing answers");
        assert!(matches!(err, HubError::DeadlineExceeded { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("2s deadline") && msg.contains(&endpoint),
            "{msg}"
        );
        let lines = said.lines();
        // Attempts time out after 200 ms each: several retries before the 2 s deadline, each said.
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(
            lines
                .iter()
                .all(|l| l.contains(&endpoint) && l.contains("failed; giving up")),
            "{lines:?}"
        );
        server.abort();
    })
    .await;
}

#[tokio::test]
async fn an_attempt_that_never_gets_an_answer_is_abandoned_at_the_deadline() {
    bounded(async {
        let (endpoint, server) = silent_endpoint().await;
        let dir = tempfile::tempdir().expect("tmp");
        // The read timeout alone would wait an hour for this attempt.
        let c = HubClient::new(silent_config(
            &endpoint,
            dir.path(),
            Duration::from_secs(3600),
        ))
        .expect("client");
        let err = c
            .resolve(REPO, "main", &FileFilter::default())
            .await
            .expect_err("nothing answers");
        assert!(
            matches!(err, HubError::DeadlineExceeded { attempts: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("no answer"), "{err}");
        server.abort();
    })
    .await;
}

#[tokio::test]
async fn a_file_download_from_a_silent_cdn_gives_up_at_the_deadline() {
    bounded(async {
        let emu = HubEmulator::start(vec![small_model(REPO)], Faults::default()).await;
        let dir = tempfile::tempdir().expect("tmp");
        let snap = resolve(&client(&emu, dir.path())).await;
        // The same snapshot, its files asked of an endpoint that never answers.
        let (endpoint, server) = silent_endpoint().await;
        let c = HubClient::new(silent_config(
            &endpoint,
            dir.path(),
            Duration::from_millis(200),
        ))
        .expect("client");
        let said = Retries::default();
        let err = c
            .download(&snap, &said, None)
            .await
            .expect_err("nothing answers");
        let first = match err {
            HubError::Several { first, .. } => *first,
            e => e,
        };
        assert!(
            matches!(first, HubError::DeadlineExceeded { .. }),
            "{first:?}"
        );
        assert!(!said.lines().is_empty());
        server.abort();
    })
    .await;
}

#[tokio::test]
async fn a_malformed_token_is_refused_before_any_request_naming_where_it_came_from() {
    bounded(async {
        let emu = HubEmulator::start(vec![small_model(REPO)], Faults::default()).await;
        let dir = tempfile::tempdir().expect("tmp");
        let cache = dir.path().to_str().expect("utf8").to_string();
        let vars = |token: &'static str| {
            let endpoint = emu.endpoint.clone();
            let cache = cache.clone();
            move |k: &str| match k {
                "HF_TOKEN" => Some(token.to_string()),
                "HF_ENDPOINT" => Some(endpoint.clone()),
                "PLATFORM_HUB_CACHE" | "HOME" => Some(cache.clone()),
                _ => None,
            }
        };
        for (token, defect) in [
            ("hf_first_half\nhf_second_half", "a line break"),
            ("hf_first_half hf_second_half", "whitespace"),
            ("hf_first_half\u{7f}hf_second_half", "a control character"),
            ("hf_first_halfé", "a non-ASCII character"),
        ] {
            let cfg = HubConfig::from_vars(vars(token), None).expect("config");
            let err = HubClient::new(cfg).expect_err("malformed token");
            let msg = err.to_string();
            assert!(matches!(err, HubError::MalformedToken { .. }), "{err:?}");
            assert!(msg.contains("$HF_TOKEN") && msg.contains(defect), "{msg}");
            assert!(
                !msg.contains("first_half") && !format!("{err:?}").contains("first_half"),
                "{msg}"
            );
        }
        let file = dir.path().join("my-token");
        std::fs::write(&file, "hf_first_half\nhf_second_half\n").expect("write");
        let cfg = HubConfig::from_vars(vars("unused"), Some(&file)).expect("config");
        let msg = HubClient::new(cfg)
            .expect_err("malformed token")
            .to_string();
        assert!(
            msg.contains(&file.display().to_string()) && !msg.contains("first_half"),
            "{msg}"
        );
        assert!(emu.log().is_empty(), "a request was made: {:?}", emu.log());
    })
    .await;
}

#[tokio::test]
async fn a_token_file_that_is_not_a_regular_file_is_refused() {
    bounded(async {
        let dir = tempfile::tempdir().expect("tmp");
        let home = dir.path().to_str().expect("utf8").to_string();
        let vars = move |k: &str| (k == "HOME" || k == "HF_HOME").then(|| home.clone());
        let zero = dir.path().join("zero-token");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        let err = HubConfig::from_vars(&vars, Some(&zero)).expect_err("a device");
        assert!(
            matches!(err, HubError::TokenFile { .. })
                && err.to_string().contains("character device")
                && err.to_string().contains("zero-token"),
            "{err}"
        );
        // The default token file ($HF_HOME/token) too: an error, not a silent anonymous run.
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("token")).expect("symlink");
        let err = HubConfig::from_vars(&vars, None).expect_err("a device");
        assert!(err.to_string().contains("character device"), "{err}");
        std::fs::remove_file(dir.path().join("token")).expect("rm");
        // Absent: anonymous.
        let cfg = HubConfig::from_vars(&vars, None).expect("anonymous");
        assert!(cfg.token.is_none());
    })
    .await;
}
