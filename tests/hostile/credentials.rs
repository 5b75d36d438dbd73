//! Hostile cases: credentials and the API's refusals (issue 19). One table: a kubeconfig whose
//! exec credential plugin fails, prints garbage or is missing; an API server that refuses; ssh keys
//! and tokens Argo CD could not use; bootstrap's security warnings under `-q`; a dry run that must
//! write nothing. Each case runs the binary as a user does, against a fresh test API server (which
//! logs every request, so "refused before any write" is checked as "no request at all" where the
//! refusal precedes the cluster). Plus: output pipes closed early never make the binary panic.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use platform_testkit::apiserver::{Options, TestApiServer};

use super::common;
use common::{stderr, stdout, TempRepo};

/// A secret a hostile case plants: it must never be printed.
const TOKEN: &str = "hostile-TOKEN-7f3a9c2e41d8";
const TOKEN_VAR: &str = "HOSTILE_REPO_TOKEN";

/// A repository with the shipped ai-dev config, a test API server whose identity is ai-dev, and a
/// scratch directory.
struct Fixture {
    repo: TempRepo,
    dir: tempfile::TempDir,
    server: TestApiServer,
    /// The server's kubeconfig (its own token user).
    kubeconfig: PathBuf,
    /// A loopback HTTP server's base URL serving `install.yaml` = [`TINY_MANIFEST`].
    manifests: String,
}

/// A one-object "install manifest" for bootstrap runs against the test API server.
const TINY_MANIFEST: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n";

impl Fixture {
    async fn new() -> Fixture {
        let server = TestApiServer::start(Options {
            cluster_name: "ai-dev".into(),
            ..Options::default()
        })
        .await;
        let repo = TempRepo::new();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let manifests = serve(TINY_MANIFEST).await;
        Fixture {
            repo,
            dir,
            server,
            kubeconfig,
            manifests,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn kubeconfig_arg(&self) -> Vec<String> {
        vec!["--kubeconfig".into(), s(&self.kubeconfig)]
    }

    /// The server's kubeconfig with its user replaced by exec plugin `command` (args and an env
    /// value that are secrets too: kube-rs's message quotes them).
    fn exec_kubeconfig(&self, command: &str) -> PathBuf {
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let at = text.find("users:").unwrap();
        let path = self.path("exec.kubeconfig");
        std::fs::write(
            &path,
            format!(
                "{}users:\n- name: \"ai-dev\"\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {command}\n      args: [\"--plugin-arg-SECRET\"]\n      env: [{{name: PLUGIN_ENV, value: PLUGIN_ENV_SECRET}}]\n      interactiveMode: Never\npreferences: {{}}\n",
                &text[..at]
            ),
        )
        .unwrap();
        path
    }

    /// An executable script `name` with `body` (sh).
    fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// `status` with a kubeconfig whose exec plugin is a script with `body`.
    fn status_with_plugin(&self, body: &str) -> Run {
        let plugin = self.script("plugin.sh", body);
        let kc = self.exec_kubeconfig(&s(&plugin));
        Run::args(&["status", "--kubeconfig", &s(&kc)])
    }

    /// The environment's repoURL set to an ssh URL (a key authenticates ssh URLs).
    fn ssh_repo(&self) {
        let cfg = self.repo.read("environments/ai-dev/config.yaml").replace(
            "repoURL: https://github.com/example-org/ai-platform.git",
            "repoURL: git@github.com:example-org/ai-platform.git",
        );
        assert!(cfg.contains("git@github.com"), "{cfg}");
        self.repo.env("ai-dev", &cfg);
    }

    /// A new key from `ssh-keygen -t KIND EXTRA…` (openssh-client), mode 0600.
    fn keygen(&self, name: &str, kind: &str, extra: &[&str]) -> PathBuf {
        let key = self.path(name);
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", "hostile", "-f"])
            .arg(&key)
            .args(extra)
            .output()
            .expect("ssh-keygen (apt-get install openssh-client)");
        assert!(out.status.success(), "{out:?}");
        key
    }

    /// `bootstrap --dry-run --repo-ssh-key KEY` for an ssh repoURL, the tiny manifest unverified.
    fn bootstrap_with_key(&self, key: &Path) -> Run {
        self.ssh_repo();
        let mut r = self.bootstrap_tiny(&["--repo-ssh-key", &s(key)]);
        r.args.insert(0, "-q".into());
        r
    }

    /// `bootstrap --dry-run --manifests TINY --insecure-skip-verify ARGS`.
    fn bootstrap_tiny(&self, args: &[&str]) -> Run {
        let tiny = self.path("install.yaml");
        std::fs::write(&tiny, TINY_MANIFEST).unwrap();
        let mut all = vec![
            "bootstrap".to_string(),
            "--dry-run".into(),
            "--manifests".into(),
            s(&tiny),
            "--insecure-skip-verify".into(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all.extend(self.kubeconfig_arg());
        Run {
            args: all,
            env: vec![],
        }
    }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// A loopback HTTP server answering `GET /install.yaml` with `body`; its base URL (plain http).
async fn serve(body: &'static str) -> String {
    use axum::routing::get;
    let app = axum::Router::new().route("/install.yaml", get(move || async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// What a case runs: the binary's arguments and environment.
struct Run {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Run {
    fn args(args: &[&str]) -> Run {
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![],
        }
    }

    fn env(mut self, k: &str, v: &str) -> Run {
        self.env.push((k.into(), v.into()));
        self
    }
}

/// A check after a run: what is wrong, if anything.
type AfterCheck = fn(&Fixture) -> Result<(), String>;

struct Case {
    /// The defect of issue 19 the case covers.
    item: &'static str,
    what: &'static str,
    /// Prepares the fixture (files, faults) and says what to run.
    run: fn(&Fixture) -> Run,
    code: i32,
    /// Every one of these is in stdout+stderr.
    says: &'static [&'static str],
    /// None of these is (secrets, Rust Debug, wrong claims).
    never: &'static [&'static str],
    /// No request reached the API server (refused before anything was read or written).
    untouched: bool,
    /// A check after the run (files that must not exist…).
    after: Option<AfterCheck>,
}

/// Rust Debug output and the plugin's invocation: never in any message.
const NO_DEBUG: &[&str] = &[
    TOKEN,
    "Output {",
    "ExitStatus",
    "Status {",
    "Some(",
    "PLUGIN_ENV_SECRET",
    "--plugin-arg-SECRET",
];

const CASES: &[Case] = &[
    Case {
        item: "issue 19 High 4",
        what: "an exec plugin that prints an ExecCredential (token) and exits 1",
        run: |f| {
            f.status_with_plugin(&format!(
                "echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{TOKEN}\"}}}}'\necho \"failed, token {TOKEN}\" >&2\nexit 1"
            ))
        },
        code: 1,
        says: &[
            "the kubeconfig's exec credential plugin `",
            "plugin.sh` failed (exit status 1)",
            "its output is not shown",
        ],
        never: NO_DEBUG,
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 High 4",
        what: "an exec plugin whose stderr explains, exit 3",
        run: |f| f.status_with_plugin("echo '  session expired: run acme-login  ' >&2\nexit 3"),
        code: 1,
        says: &[
            "failed (exit status 3); it said: session expired: run acme-login;",
        ],
        never: NO_DEBUG,
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 High 4",
        what: "an exec plugin that prints the token as garbage and exits 0",
        run: |f| f.status_with_plugin(&format!("echo 'token: [{TOKEN}'")),
        code: 1,
        says: &["printed something that is not an ExecCredential"],
        never: NO_DEBUG,
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 Low 10",
        what: "an exec plugin that does not exist",
        run: |f| {
            let kc = f.exec_kubeconfig("no-such-plugin-19");
            Run::args(&["status", "--kubeconfig", &s(&kc)])
        },
        code: 1,
        says: &["the kubeconfig's exec credential plugin `no-such-plugin-19` was not found (not on PATH)"],
        never: NO_DEBUG,
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 Medium 1",
        what: "the API server refuses (403) listing Applications",
        run: |f| {
            f.server
                .fail_next_matching(100, 403, None, Some("applications"), Some("GET"));
            let mut r = Run::args(&["status"]);
            r.args.extend(f.kubeconfig_arg());
            r
        },
        code: 4,
        says: &["the API server refused: injected fault", "HTTP 403", "`kubectl --kubeconfig ", "auth can-i"],
        never: NO_DEBUG,
        untouched: false,
        after: None,
    },
    Case {
        item: "issue 19 High 5",
        what: "a passphrase-protected ssh key",
        run: |f| {
            let key = f.keygen("id_locked", "ed25519", &[]);
            let out = std::process::Command::new("ssh-keygen")
                .args(["-q", "-p", "-N", "a passphrase", "-P", "", "-f"])
                .arg(&key)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            f.bootstrap_with_key(&key)
        },
        code: 1,
        says: &["--repo-ssh-key", "protected by a passphrase", "nothing was changed"],
        never: &["OPENSSH PRIVATE KEY", "✓"],
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 High 5",
        what: "an ssh key truncated to 3 lines",
        run: |f| {
            let key = f.keygen("id_cut", "ed25519", &[]);
            let text = std::fs::read_to_string(&key).unwrap();
            let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
            std::fs::write(&key, cut).unwrap();
            f.bootstrap_with_key(&key)
        },
        code: 1,
        says: &["--repo-ssh-key", "truncated or corrupted", "nothing was changed"],
        never: &["OPENSSH PRIVATE KEY", "✓"],
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 High 5",
        what: "BEGIN/END lines around a garbage body",
        run: |f| {
            let key = f.path("id_garbage");
            std::fs::write(
                &key,
                "-----BEGIN OPENSSH PRIVATE KEY-----\nthis is not a key, only words\n-----END OPENSSH PRIVATE KEY-----\n",
            )
            .unwrap();
            f.bootstrap_with_key(&key)
        },
        code: 1,
        says: &["--repo-ssh-key", "truncated or corrupted"],
        never: &["only words", "✓"],
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 High 5",
        what: "a PEM RSA key cut in the middle",
        run: |f| {
            let key = f.keygen("id_pem", "rsa", &["-b", "2048", "-m", "PEM"]);
            let text = std::fs::read_to_string(&key).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let cut: String = lines[..6]
                .iter()
                .chain(lines.last())
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&key, cut).unwrap();
            f.bootstrap_with_key(&key)
        },
        code: 1,
        says: &["--repo-ssh-key", "truncated or corrupted"],
        never: &["✓"],
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 High 5",
        what: "a public key passed as the private one",
        run: |f| {
            let key = f.keygen("id_pub", "ed25519", &[]);
            f.bootstrap_with_key(&key.with_extension("pub"))
        },
        code: 1,
        says: &["--repo-ssh-key", "not a private key"],
        never: &["✓"],
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 High 5",
        what: "a usable key (PEM RSA) that others can read: accepted, warned about under -q",
        run: |f| {
            use std::os::unix::fs::PermissionsExt;
            let key = f.keygen("id_open", "rsa", &["-b", "2048", "-m", "PEM"]);
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            f.bootstrap_with_key(&key)
        },
        code: 0,
        says: &["warning: --repo-ssh-key", "readable by others (mode 644)", "chmod 600"],
        never: &["RSA PRIVATE KEY"],
        untouched: false,
        after: None,
    },
    Case {
        item: "issue 19 Low 4",
        what: "a token with a space inside",
        run: |f| {
            Run::args(&["bootstrap", "--repo-token-env", TOKEN_VAR, "--dry-run"])
                .env(TOKEN_VAR, &format!("{TOKEN} more\n"))
                .with(f.kubeconfig_arg())
        },
        code: 1,
        says: &[
            "--repo-token-env HOSTILE_REPO_TOKEN: the value of HOSTILE_REPO_TOKEN has whitespace",
        ],
        never: &[TOKEN],
        untouched: true,
        after: None,
    },
    Case {
        item: "issue 19 Low 4",
        what: "a token with a trailing newline only: trimmed and accepted",
        run: |f| {
            f.bootstrap_tiny(&["--repo-token-env", TOKEN_VAR])
                .env(TOKEN_VAR, &format!("{TOKEN}\n"))
        },
        code: 0,
        says: &["Secret argocd/repo-"],
        never: &[TOKEN],
        untouched: false,
        after: None,
    },
    Case {
        item: "issue 19 Medium 7 + Low 9",
        what: "-q bootstrap --dry-run of an unverified manifest: warned, in the conditional",
        run: |f| {
            let mut r = f.bootstrap_tiny(&[]);
            r.args.insert(0, "-q".into());
            r
        },
        code: 0,
        says: &[
            "warning: ",
            "install.yaml is NOT the pinned manifest",
            "would apply it unverified (--insecure-skip-verify)",
        ],
        never: &["applied unverified", "applying it unverified"],
        untouched: false,
        after: None,
    },
    Case {
        item: "issue 19 Low 12",
        what: "bootstrap --dry-run downloading over plain http: warned, the cache not written",
        run: |f| {
            // The repository's catalog pins the tiny manifest (so the download verifies).
            let sha = sha256_hex(TINY_MANIFEST.as_bytes());
            let cat = f.repo.read("catalog/argocd.yaml");
            let pinned = cat
                .lines()
                .find_map(|l| l.trim().strip_prefix("sha256: "))
                .unwrap()
                .to_string();
            f.repo.write("catalog/argocd.yaml", &cat.replace(&pinned, &sha));
            Run::args(&["-q", "bootstrap", "--dry-run"])
                .with(f.kubeconfig_arg())
                .env("PLATFORM_ARGOCD_URL", &format!("{}/install.yaml", f.manifests))
                .env("XDG_CACHE_HOME", &s(&f.path("cache")))
        },
        code: 0,
        says: &["warning: the Argo CD install manifest was downloaded over plain http"],
        never: &[],
        untouched: false,
        after: Some(|f| match f.path("cache").exists() {
            true => Err(format!("the dry run wrote {}", f.path("cache").display())),
            false => Ok(()),
        }),
    },
];

impl Run {
    fn with(mut self, args: Vec<String>) -> Run {
        self.args.extend(args);
        self
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn run(f: &Fixture, r: Run) -> Output {
    let mut cmd = f.repo.cmd();
    cmd.args(&r.args)
        .env_remove("KUBECONFIG")
        .env_remove("PLATFORM_KUBECONFIG")
        .env_remove("PLATFORM_ARGOCD_URL")
        .env("XDG_CACHE_HOME", f.path("default-cache"))
        .timeout(Duration::from_secs(120));
    for (k, v) in &r.env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_credentials_and_refusals() {
    let mut failures = Vec::new();
    for case in CASES {
        let f = Fixture::new().await;
        let r = (case.run)(&f);
        let shown = r.args.join(" ");
        f.server.clear_request_log();
        let o = run(&f, r).await;
        let text = format!("{}{}", stdout(&o), stderr(&o));
        let mut wrong = Vec::new();
        if o.status.code() != Some(case.code) {
            wrong.push(format!(
                "exit {:?}, expected {}",
                o.status.code(),
                case.code
            ));
        }
        wrong.extend(
            case.says
                .iter()
                .filter(|w| !text.contains(*w))
                .map(|w| format!("does not say {w:?}")),
        );
        wrong.extend(
            case.never
                .iter()
                .filter(|w| text.contains(*w))
                .map(|w| format!("says {w:?}")),
        );
        let requests = f.server.request_log();
        if case.untouched && !requests.is_empty() {
            wrong.push(format!(
                "{} request(s) reached the API server, the first: {} {}",
                requests.len(),
                requests[0].method,
                requests[0].path
            ));
        }
        if let Some(after) = case.after {
            wrong.extend(after(&f).err());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({}): platform {shown}\n  {}\n--- output:\n{text}",
                case.item,
                case.what,
                wrong.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Run `cmd` to its end, killed after a generous deadline (a hang is a failure, not a wait).
fn finish(mut cmd: std::process::Command) -> std::process::ExitStatus {
    let mut child = cmd
        .env_remove("PLATFORM_ENV")
        .env_remove("PLATFORM_REPO")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not end within 60s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 19 Low 1: output pipes closed early never make the binary panic (exit 101): with
/// stdout and stderr on a pipe whose reader is gone before the first write (init's progress,
/// completions' script, help), and with `2>&1 | head -1` (the reader leaves after one line),
/// repeated.
#[test]
fn closed_output_pipes_never_panic() {
    use std::os::fd::FromRawFd;
    let bin = assert_cmd::cargo::cargo_bin("platform");
    let args = [
        "init",
        "--env",
        "prod",
        "--cluster-name",
        "prod",
        "--repo-url",
        "https://example.com/acme/gitops.git",
    ];
    // The reader gone before the first write: every write fails (EPIPE), deterministically.
    let completions = ["completions", "bash"];
    for run in [&args[..], &args[..], &completions[..], &["--help"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills two new descriptors; each is owned exactly once below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: fds[0] is the read end just created, closed here (the reader is gone).
        drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) });
        // SAFETY: fds[1] is the write end just created, owned by this value.
        let write = unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[1]) };
        let mut cmd = std::process::Command::new(&bin);
        cmd.arg("--repo")
            .arg(dir.path())
            .args(["--color", "never"])
            .args(run)
            .stdout(std::process::Stdio::from(write.try_clone().unwrap()))
            .stderr(std::process::Stdio::from(write));
        let status = finish(cmd);
        assert_ne!(
            status.code(),
            Some(101),
            "{run:?} panicked on a closed pipe"
        );
        assert_eq!(status.code(), Some(0), "{run:?}: {status:?}");
        if run[0] == "init" {
            assert!(dir.path().join("environments/prod/config.yaml").is_file());
        }
    }
    for _ in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-c")
            .arg(r#""$0" --repo "$1" --color never "${@:2}" 2>&1 | head -1 >/dev/null; exit "${PIPESTATUS[0]}""#)
            .arg(&bin)
            .arg(dir.path())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let status = finish(cmd);
        assert_ne!(status.code(), Some(101), "panicked under `2>&1 | head -1`");
    }
}
