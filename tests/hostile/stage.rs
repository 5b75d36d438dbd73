//! Hostile cases: stage-model's signals and deadlines, and their neighbours (issue 19): SIGINT and
//! SIGTERM in the middle of a download (exit 130/143, the pod deleted, the download resumed by the
//! next run), a staging pod that never starts (exit 3, saying what it waits for), duration flags
//! of 0s, `status --watch` (JSON Lines, 130/143), git credentials over plain http, and doctor's
//! words when it may not list StatefulSets. Clusters are the test API server; the Hub is the
//! emulator; the git remote is a small HTTP server on loopback that asks for Basic auth.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform_testkit::apiserver::{Options, TestApiServer};
use platform_testkit::hub::{self, Faults, HubEmulator};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::common;
use common::apienv::Env;
use common::{stderr, stdout, TempRepo};

/// The Hub token stage-model must never show, and the git token push must never send in clear.
const GIT_TOKEN: &str = "ghp-hostile-0a1b2c3d";
/// `Basic base64(x-access-token:GIT_TOKEN)`: what the remote sees when the token is sent.
const GIT_BASIC: &str = "Basic eC1hY2Nlc3MtdG9rZW46Z2hwLWhvc3RpbGUtMGExYjJjM2Q=";
/// The opt-in besides `--allow-insecure-http`.
const ALLOW_HTTP_ENV: &str = "PLATFORM_GIT_ALLOW_INSECURE_HTTP";
const URL_PASSWORD: &str = "s3cret-in-the-url";
const MIB: u64 = 1 << 20;
/// model.safetensors stops after this many bytes until released: the download is mid-file.
const HELD: u64 = 2 * MIB + 4096;
const REPO: &str = "Qwen/Qwen2.5-0.5B-Instruct";

#[derive(Debug, Clone, Copy)]
enum Sig {
    Int,
    Term,
}

impl Sig {
    fn number(self) -> i32 {
        match self {
            Sig::Int => libc::SIGINT,
            Sig::Term => libc::SIGTERM,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Push {
    /// `root --commit --push`.
    Root,
    /// `root --commit`, then `up` (which asks the remote whether HEAD is pushed).
    Up,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptIn {
    No,
    Flag,
    Env,
}

#[derive(Debug, Clone, Copy)]
enum Probe {
    /// `platform ARGS` in a repository, no cluster: refused while parsing.
    Flags(&'static [&'static str]),
    /// stage-model from the Hub emulator; the signal comes while the pod runs and a file is half
    /// downloaded. The pod must be gone, and a second run must resume the file with a Range.
    StageSignal(Sig),
    /// stage-model whose pod never starts (its PVC never binds), `--pod-timeout 5s`; the pod must
    /// be gone.
    PodNeverStarts,
    /// `status --watch --interval 1s -o json`; the signal comes after two refreshes. Every line
    /// must be one JSON document.
    WatchSignal(Sig),
    /// A push (or `up`'s look at the remote) to an http:// remote that answers 401 Basic, with
    /// PLATFORM_GIT_TOKEN set (and a password in the URL with `url_password`).
    Http {
        push: Push,
        url_password: bool,
        opt_in: OptIn,
    },
    /// doctor while every StatefulSet list is forbidden (403).
    DoctorStatefulSetsForbidden,
}

struct Case {
    item: &'static str,
    probe: Probe,
    exit: Option<i32>,
    /// In stdout or stderr.
    said: &'static [&'static str],
    /// Never in stdout or stderr.
    never: &'static [&'static str],
}

const TOO_SHORT: &str = "too short: the smallest value accepted is 1s";

fn flags(item: &'static str, args: &'static [&'static str], said: &'static [&'static str]) -> Case {
    Case {
        item,
        probe: Probe::Flags(args),
        exit: Some(2),
        said,
        never: &["panicked"],
    }
}

fn cases() -> Vec<Case> {
    const L5: &str = "issue 19 Low 5";
    let mut v = vec![
        flags(
            L5,
            &["status", "--request-timeout", "0s"],
            &["'--request-timeout <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["status", "--request-timeout", "10ms"],
            &["'--request-timeout <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["status", "--watch", "--interval", "0s"],
            &["'--interval <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["status", "--watch", "--interval", "100ms"],
            &["'--interval <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["up", "--timeout", "0s"],
            &["'--timeout <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["wait", "--timeout", "0s"],
            &["'--timeout <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["smoke", "qwen-cpu", "--timeout", "0s"],
            &["'--timeout <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["bootstrap", "--timeout", "0s"],
            &["'--timeout <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["pause", "qwen-cpu", "--timeout", "0s"],
            &["'--timeout <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["teardown", "--finalizer-timeout", "0s"],
            &["'--finalizer-timeout <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["teardown", "--release-timeout", "0s"],
            &["'--release-timeout <DURATION>'", TOO_SHORT],
        ),
        flags(
            L5,
            &["stage-model", "qwen-cpu", "--pod-timeout", "0s"],
            &["'--pod-timeout <DURATION>'", TOO_SHORT],
        ),
    ];
    v.extend([
        Case {
            item: "issue 19 Medium 5",
            probe: Probe::StageSignal(Sig::Int),
            exit: Some(130),
            said: &["interrupted (SIGINT): the staging pod was deleted"],
            never: &["panicked"],
        },
        Case {
            item: "issue 19 Medium 5",
            probe: Probe::StageSignal(Sig::Term),
            exit: Some(143),
            said: &["interrupted (SIGTERM): the staging pod was deleted"],
            never: &["panicked"],
        },
        Case {
            item: "issue 19 Medium 12, Low 11",
            probe: Probe::PodNeverStarts,
            exit: Some(3),
            said: &[
                // What it waits for, through the reporter, with the time left.
                "staging pod kserve/platform-stage-qwen-cpu: not scheduled: Unschedulable: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. (",
                "s left)",
                "staging pod platform-stage-qwen-cpu did not start within 5s (--pod-timeout): not scheduled: Unschedulable",
            ],
            never: &["panicked"],
        },
        Case {
            item: "issue 19 Low 6",
            probe: Probe::WatchSignal(Sig::Int),
            exit: Some(130),
            said: &[],
            never: &["panicked", "error:"],
        },
        Case {
            item: "issue 19 Low 6",
            probe: Probe::WatchSignal(Sig::Term),
            exit: Some(143),
            said: &[],
            never: &["panicked", "error:"],
        },
        Case {
            item: "issue 19 Medium 8",
            probe: Probe::Http { push: Push::Root, url_password: false, opt_in: OptIn::No },
            exit: Some(1),
            said: &["refusing to send git credentials to http://127.0.0.1:", "--allow-insecure-http"],
            never: &[GIT_TOKEN],
        },
        Case {
            item: "issue 19 Medium 8",
            probe: Probe::Http { push: Push::Root, url_password: true, opt_in: OptIn::No },
            exit: Some(1),
            said: &["refusing to send git credentials to http://***@127.0.0.1:"],
            never: &[GIT_TOKEN, URL_PASSWORD],
        },
        Case {
            item: "issue 19 Medium 8",
            probe: Probe::Http { push: Push::Up, url_password: false, opt_in: OptIn::No },
            exit: Some(1),
            said: &["refusing to send git credentials to http://127.0.0.1:"],
            never: &[GIT_TOKEN],
        },
        Case {
            item: "issue 19 Medium 8 (opted in)",
            probe: Probe::Http { push: Push::Root, url_password: false, opt_in: OptIn::Flag },
            exit: Some(4),
            said: &["warning: --allow-insecure-http: git credentials may go to http://127.0.0.1:", "authentication to http://127.0.0.1:"],
            never: &[GIT_TOKEN],
        },
        Case {
            item: "issue 19 Medium 8 (opted in)",
            probe: Probe::Http { push: Push::Up, url_password: false, opt_in: OptIn::Env },
            exit: Some(4),
            said: &["authentication to http://127.0.0.1:"],
            never: &[GIT_TOKEN],
        },
        Case {
            item: "issue 19 Low 10",
            probe: Probe::DoctorStatefulSetsForbidden,
            exit: Some(1),
            said: &[
                "listing StatefulSets labelled app.kubernetes.io/name=argocd-application-controller in all namespaces",
                "no argocd-repo-server (no Deployment labelled app.kubernetes.io/name=argocd-repo-server)",
            ],
            never: &["statefulsets labelled argocd-repo-server", "StatefulSets labelled app.kubernetes.io/name=argocd-repo-server"],
        },
    ]);
    v
}

/// What a probe saw: the exit code, the output, and what else went wrong.
struct Seen {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    problems: Vec<String>,
}

impl Seen {
    fn of(o: &std::process::Output) -> Seen {
        Seen {
            code: o.status.code(),
            stdout: stdout(o),
            stderr: stderr(o),
            problems: Vec::new(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_signals_deadlines_durations_and_credentials() {
    let mut failures = Vec::new();
    for c in cases() {
        let seen = run(c.probe).await;
        let out = format!("{}{}", seen.stdout, seen.stderr);
        let mut bad = seen.problems;
        if seen.code != c.exit {
            bad.push(format!("exit {:?}, want {:?}", seen.code, c.exit));
        }
        bad.extend(
            c.said
                .iter()
                .filter(|s| !out.contains(*s))
                .map(|s| format!("does not say {s:?}")),
        );
        bad.extend(
            c.never
                .iter()
                .filter(|s| out.contains(*s))
                .map(|s| format!("says {s:?}")),
        );
        if !bad.is_empty() {
            failures.push(format!(
                "{} {:?}: {}\n--- output:\n{out}",
                c.item,
                c.probe,
                bad.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

async fn run(p: Probe) -> Seen {
    match p {
        Probe::Flags(args) => {
            let repo = TempRepo::new();
            Seen::of(&common::apienv::run(&repo, args).await)
        }
        Probe::StageSignal(sig) => stage_signal(sig).await,
        Probe::PodNeverStarts => pod_never_starts().await,
        Probe::WatchSignal(sig) => watch_signal(sig).await,
        Probe::Http {
            push,
            url_password,
            opt_in,
        } => http_remote(push, url_password, opt_in).await,
        Probe::DoctorStatefulSetsForbidden => doctor_statefulsets_forbidden().await,
    }
}

async fn env() -> Env {
    let server = TestApiServer::start(Options {
        cluster_name: "ai-dev".into(),
        ..Options::default()
    })
    .await;
    Env::new(server, TempRepo::new()).await
}

/// The binary against `e`'s server, spawned (for signals), stdout and stderr piped.
fn spawn(e: &Env, args: &[&str], envs: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("platform"));
    cmd.arg("--repo")
        .arg(e.repo.path())
        .args(["--color", "never"])
        .args(args)
        .arg("--kubeconfig")
        .arg(&e.kubeconfig)
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN")
        .env_remove("PLATFORM_ENV")
        .env_remove("PLATFORM_REPO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn signal(child: &Child, sig: Sig) {
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig.number()) };
    assert_eq!(rc, 0, "kill failed");
}

/// The child's end, or a problem (and a SIGKILL) when it is still running after a minute.
async fn finish(mut child: Child, problems: &mut Vec<String>) -> std::process::Output {
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if child.try_wait().unwrap().is_none() {
        problems.push("still running a minute after the signal".into());
        let _ = child.kill();
    }
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// Polls `f` every 50 ms until it is true, for at most a minute.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..1200 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The first file named `name` under `dir`.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if e.file_name() == name {
            return Some(p);
        }
    }
    None
}

fn file_len(p: &Option<PathBuf>) -> u64 {
    p.as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len())
}

async fn stage_signal(sig: Sig) -> Seen {
    let e = env().await;
    let faults = Faults {
        hold: [("model.safetensors".to_string(), HELD)].into(),
        ..Faults::default()
    };
    let emu = HubEmulator::start(vec![hub::small_model(REPO)], faults).await;
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_str().unwrap();
    let envs = [
        ("HF_ENDPOINT", emu.endpoint.as_str()),
        ("PLATFORM_HUB_CACHE", c),
        ("HF_HOME", c),
    ];
    let child = spawn(&e, &["stage-model", "qwen-cpu"], &envs);
    let mut problems = Vec::new();
    let pod = || {
        e.server
            .get("v1", "Pod", "kserve", "platform-stage-qwen-cpu")
    };
    // The pod runs and model.safetensors is half there (held by the Hub).
    let part = || find_file(cache.path(), "model.safetensors.part");
    if !eventually(|| pod().is_some() && file_len(&part()) >= MIB).await {
        problems.push("the pod never ran with model.safetensors half downloaded".into());
    }
    signal(&child, sig);
    let out = finish(child, &mut problems).await;
    if pod().is_some() {
        problems.push("the staging pod survived the signal".into());
    }
    let kept = file_len(&part());
    if kept == 0 {
        problems.push("no partial file left to resume".into());
    }
    // The next run resumes the file where it stopped.
    emu.release("model.safetensors");
    emu.clear_log();
    let again = e.platform_env(&["stage-model", "qwen-cpu"], &envs).await;
    if !again.status.success() {
        problems.push(format!("the next run failed: {}", stderr(&again)));
    }
    let ranges: Vec<Option<String>> = emu
        .log()
        .into_iter()
        .filter(|l| l.server == "cdn" && l.path.ends_with("/model.safetensors"))
        .map(|l| l.range)
        .collect();
    if ranges != [Some(format!("bytes={kept}-"))] {
        problems.push(format!(
            "the next run did not resume at byte {kept}: {ranges:?}"
        ));
    }
    e.server.shutdown().await;
    Seen {
        problems,
        ..Seen::of(&out)
    }
}

async fn pod_never_starts() -> Seen {
    let e = env().await;
    e.server
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kserve"}}))
        .unwrap();
    e.server
        .put(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "qwen-cpu-weights", "namespace": "kserve"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "no-such-class",
                             "resources": {"requests": {"storage": "5Gi"}}}}))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"weights").unwrap();
    let d = dir.path().to_str().unwrap();
    let o = e
        .platform(&[
            "stage-model",
            "qwen-cpu",
            "--from-dir",
            d,
            "--pod-timeout",
            "5s",
        ])
        .await;
    let mut seen = Seen::of(&o);
    if e.server
        .get("v1", "Pod", "kserve", "platform-stage-qwen-cpu")
        .is_some()
    {
        seen.problems.push("the staging pod survived".into());
    }
    e.server.shutdown().await;
    seen
}

async fn watch_signal(sig: Sig) -> Seen {
    let e = env().await;
    let mut child = spawn(
        &e,
        &["status", "--watch", "--interval", "1s", "-o", "json"],
        &[],
    );
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let out = child.stdout.take().unwrap();
        let lines = lines.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        })
    };
    let mut problems = Vec::new();
    if !eventually(|| lines.lock().unwrap().len() >= 2).await {
        problems.push("fewer than two refreshes in a minute".into());
    }
    signal(&child, sig);
    let out = finish(child, &mut problems).await;
    let _ = reader.join();
    let lines = lines.lock().unwrap().clone();
    for l in &lines {
        match serde_json::from_str::<Value>(l) {
            Ok(v) if v.get("models").is_some() => {}
            _ => problems.push(format!("not one JSON document per line: {l:?}")),
        }
    }
    e.server.shutdown().await;
    Seen {
        stdout: lines.join("\n"),
        problems,
        ..Seen::of(&out)
    }
}

/// An HTTP git remote on loopback that answers every request 401 with `WWW-Authenticate: Basic`,
/// recording each request's Authorization header.
struct BasicAuthRemote {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl BasicAuthRemote {
    async fn start() -> BasicAuthRemote {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 << 10 {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let auth = text.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("authorization")
                            .then(|| v.trim().to_string())
                    });
                    s.lock().unwrap().push(auth);
                    let _ = sock
                        .write_all(
                            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                              Content-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        BasicAuthRemote { addr, seen, task }
    }

    fn requests(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for BasicAuthRemote {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn http_remote(push: Push, url_password: bool, opt_in: OptIn) -> Seen {
    let remote = BasicAuthRemote::start().await;
    let repo = TempRepo::new();
    let (_bare, _) = common::git_remote(&repo);
    let userinfo = if url_password {
        format!("bob:{URL_PASSWORD}@")
    } else {
        String::new()
    };
    let url = format!("http://{userinfo}{}/acme/gitops.git", remote.addr);
    // config.yaml's repoURL never carries a credential (refused at load); origin may: the push
    // goes to origin, whose password must not be sent over http either.
    let clean = format!("http://{}/acme/gitops.git", remote.addr);
    repo.env("ai-dev", &common::shipped_config(&clean));
    if url_password {
        git2::Repository::open(repo.path())
            .unwrap()
            .remote_set_url("origin", &url)
            .unwrap();
    }
    let git_cmd = |args: &[&str]| {
        let mut cmd = repo.cmd();
        cmd.args(args)
            .env("PLATFORM_GIT_TOKEN", GIT_TOKEN)
            .env_remove(ALLOW_HTTP_ENV)
            .timeout(Duration::from_secs(60));
        if opt_in == OptIn::Flag {
            cmd.arg("--allow-insecure-http");
        }
        if opt_in == OptIn::Env {
            cmd.env(ALLOW_HTTP_ENV, "1");
        }
        cmd
    };
    let mut problems = Vec::new();
    let o = match push {
        Push::Root => git_cmd(&["root", "--commit", "--push"]).output().unwrap(),
        Push::Up => {
            let mut commit = repo.cmd();
            let c = commit.args(["root", "--commit"]).output().unwrap();
            if !c.status.success() {
                problems.push(format!("root --commit failed: {}", stderr(&c)));
            }
            git_cmd(&["up"]).output().unwrap()
        }
    };
    let requests = remote.requests();
    let sent: Vec<&String> = requests.iter().flatten().collect();
    let asked = !requests.is_empty();
    match opt_in {
        // libgit2 sends a URL's password without asking: refused before any request.
        OptIn::No if url_password && asked => problems.push(format!(
            "{} request(s) to a URL whose password would go in clear",
            requests.len()
        )),
        OptIn::No if !url_password && !asked => problems.push("the remote was never asked".into()),
        OptIn::No if !sent.is_empty() => {
            problems.push(format!("credentials sent in clear: {sent:?}"))
        }
        OptIn::No => {}
        _ if !sent.iter().any(|a| a.as_str() == GIT_BASIC) => {
            problems.push(format!("opted in, the token was not sent: {requests:?}"))
        }
        _ => {}
    }
    Seen {
        problems,
        ..Seen::of(&o)
    }
}

async fn doctor_statefulsets_forbidden() -> Seen {
    let e = env().await;
    e.server
        .fail_next_matching(10_000, 403, None, Some("/statefulsets"), Some("GET"));
    let o = e.platform(&["doctor"]).await;
    e.server.shutdown().await;
    Seen::of(&o)
}
