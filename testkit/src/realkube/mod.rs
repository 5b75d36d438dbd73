//! The real-cluster tier: one real control plane per test binary (etcd + kube-apiserver +
//! kube-controller-manager + kube-scheduler v1.28.7 from `../shared/realkube/`), started on first use,
//! shared by every test of the binary, and stopped when the binary exits (an `atexit` hook for a
//! normal or failed run, and a watchdog process for a run that is killed).
//!
//! Operators are played by the tests as ordinary API clients (see `operators`): a node, Argo CD and
//! KServe run on a background runtime owned by the cluster, so every test of the binary sees them.
//!
//! Without `../shared/realkube` (or `PLATFORM_REALKUBE`), etcd or kubectl, [`cluster`] fails the
//! test with the fix: the tier is part of `cargo test`, never skipped.
#![allow(dead_code)]

pub use crate::operators;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The CRDs every test of the tier needs (the KServe ones cost ~1 GB of apiserver memory, but
/// `up`, `status`, pause/resume and the dry-run of the rendered tree need them).
const CRDS: &[&str] = &[
    "argocd-application-crd.yaml",
    "argocd-appproject-crd.yaml",
    "argocd-applicationset-crd.yaml",
    "gateway-api-gatewayclasses.yaml",
    "gateway-api-gateways.yaml",
    "gateway-api-httproutes.yaml",
    "gateway-api-referencegrants.yaml",
    "kserve-serving.kserve.io_inferenceservices.yaml",
    "kserve-serving.kserve.io_llminferenceservices.yaml",
    "kserve-serving.kserve.io_servingruntimes.yaml",
    "kserve-serving.kserve.io_clusterservingruntimes.yaml",
];

pub struct Cluster {
    /// Admin kubeconfig (client certificate in `system:masters`), cluster/context `ai-dev`.
    pub kubeconfig: PathBuf,
    pub shared: PathBuf,
    state_dir: PathBuf,
    /// Node, Argo CD and KServe stand-ins (running for the life of the binary).
    pub operators: Arc<operators::Operators>,
    /// Serialises the tests that own cluster-wide state platform fixes by design: the `argocd`
    /// namespace (Applications have fixed names), the layers' namespaces and Gateways.
    exclusive: tokio::sync::Mutex<()>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Where `../shared/realkube` is: `PLATFORM_REALKUBE`, else beside the checkout.
pub fn realkube_dir() -> PathBuf {
    std::env::var_os("PLATFORM_REALKUBE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realkube"))
}

fn say(msg: &str) {
    // Straight to the terminal: the test harness captures eprintln! of passing tests.
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// The shared cluster, started on first use; a missing prerequisite fails the test with the fix.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let dir = realkube_dir();
        let missing = if !dir.join("start.sh").is_file() {
            Some(format!(
                "no {}/start.sh (set PLATFORM_REALKUBE)",
                dir.display()
            ))
        } else if std::env::var_os("ETCD").is_none() && !on_path("etcd") {
            Some("no etcd on PATH (apt-get install -y etcd-server)".to_string())
        } else if !on_path("kubectl") {
            Some("no kubectl on PATH".to_string())
        } else {
            None
        };
        if let Some(why) = missing {
            crate::missing_prerequisite(
                &format!("the real-cluster tier: {why}"),
                "see README § Set up (`.ci/run` installs etcd-server, openssl, curl, kubectl)",
            );
        }
        start(&dir)
    })
}

fn start(shared: &Path) -> Cluster {
    let state_dir = std::env::temp_dir().join(format!("platform-realkube-{}", std::process::id()));
    // start.sh picks free loopback ports; a test of this binary binding an ephemeral port at the
    // same moment can take one first ("address already in use"). One more try with new ports.
    let mut attempt = 0;
    let out = loop {
        attempt += 1;
        let out = Command::new("bash")
            .arg(shared.join("start.sh"))
            .arg(&state_dir)
            .arg("ai-dev")
            .stdin(Stdio::null())
            .output()
            .expect("running realkube/start.sh");
        if out.status.success() {
            break out;
        }
        let _ = Command::new("bash")
            .arg(shared.join("stop.sh"))
            .arg(&state_dir)
            .status();
        if attempt >= 2 {
            panic!(
                "realkube/start.sh failed twice:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        say(&format!(
            "real-cluster tier: start.sh failed, trying once more: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    };
    register_stop(shared, &state_dir);
    let kubeconfig = state_dir.join("kubeconfig");
    install_crds(shared, &kubeconfig);
    say(&format!(
        "real-cluster tier: {} (state {})",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("started"),
        state_dir.display()
    ));
    let operators = operators::Operators::start(&kubeconfig);
    Cluster {
        kubeconfig,
        shared: shared.to_path_buf(),
        state_dir,
        operators,
        exclusive: tokio::sync::Mutex::new(()),
    }
}

fn install_crds(shared: &Path, kubeconfig: &Path) {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["apply", "--server-side", "--force-conflicts"]);
    for c in CRDS {
        cmd.arg("-f").arg(shared.join("crds").join(c));
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("kubectl apply crds");
    assert!(
        out.status.success(),
        "installing CRDs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A CRD just created may have no status yet (kubectl wait then errors): retry briefly.
    let mut last = String::new();
    for _ in 0..20 {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
                "--timeout=120s",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("kubectl wait crds");
        if out.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("waiting for CRDs: {last}");
}

static STOP: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();

extern "C" fn stop_at_exit() {
    if let Some((shared, dir)) = STOP.get() {
        let _ = Command::new("bash")
            .arg(shared.join("stop.sh"))
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Stop the cluster when this process ends: at exit (the harness exits through `exit()` whether
/// tests passed or failed), and from a watchdog when the process is killed.
fn register_stop(shared: &Path, dir: &Path) {
    let _ = STOP.set((shared.to_path_buf(), dir.to_path_buf()));
    // SAFETY: registers a plain `extern "C" fn` with no captured state.
    unsafe {
        libc::atexit(stop_at_exit);
    }
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; bash '{stop}' '{dir}' >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        stop = shared.join("stop.sh").display(),
        dir = dir.display()
    );
    use std::os::unix::process::CommandExt;
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
}

impl Cluster {
    /// Hold this for a test that owns the `argocd` namespace or the layers' shared namespaces.
    pub async fn exclusive(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.exclusive.lock().await
    }

    /// A kube client for the admin kubeconfig (a test's own observer/actor).
    pub async fn client(&self) -> kube::Client {
        operators::client(&self.kubeconfig).await
    }

    /// `kubectl --kubeconfig … ARGS` (the independent observer); (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        self.kubectl_stdin(args, None)
    }

    /// `kubectl` run in directory `dir` (relative `-f` paths).
    pub fn kubectl_in(&self, dir: &Path, args: &[&str]) -> (bool, String, String) {
        self.kubectl_full(Some(dir), args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        self.kubectl_full(None, args, stdin)
    }

    fn kubectl_full(
        &self,
        dir: Option<&Path>,
        args: &[&str],
        stdin: Option<&str>,
    ) -> (bool, String, String) {
        let mut cmd = Command::new("kubectl");
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl");
        if let Some(text) = stdin {
            let mut w = child.stdin.take().expect("stdin");
            w.write_all(text.as_bytes()).expect("kubectl stdin");
        }
        let out = wait_timeout(child, Duration::from_secs(120));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Names of `kind` objects (kubectl's view), `-A` when `ns` is None.
    pub fn names(&self, kind: &str, ns: Option<&str>) -> Vec<String> {
        let mut args = vec!["get", kind, "-o", "name", "--ignore-not-found"];
        match ns {
            Some(n) => args.extend(["-n", n]),
            None => args.push("-A"),
        }
        let (ok, out, err) = self.kubectl(&args);
        assert!(ok, "kubectl get {kind}: {err}");
        out.lines().map(str::to_string).collect()
    }
}

fn wait_timeout(child: std::process::Child, limit: Duration) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("kubectl output"),
        Err(_) => {
            // SAFETY: kill(2) on the child's pid; no memory is touched.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("kubectl did not finish within {limit:?}");
        }
    }
}
