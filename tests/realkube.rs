//! The real-cluster tier: every cluster command run as a user runs it (the binary, a real
//! kubeconfig with client-certificate auth) against a real kube-apiserver + controller-manager +
//! scheduler with the upstream CRDs (`../shared/realkube/`). Operators (a node, a volume
//! provisioner, KServe, Argo CD) are played by `support/realkube/operators` as API clients; the
//! real `kubectl` is the independent observer.
//!
//! Without `../shared/realkube` or etcd the tier fails with the fix (never skipped).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;
use platform_testkit::realkube;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{stderr, stdout, TempRepo};
use realkube::Cluster;
use serde_json::Value;

/// A user's GitOps repository: a work tree with the shipped catalog, `environments/<env>/config.yaml`
/// pointing at a bare remote (file://), a git identity, and the cluster's kubeconfig.
struct Gitops {
    cluster: &'static Cluster,
    repo: TempRepo,
    remote: tempfile::TempDir,
    url: String,
    env: String,
}

impl Gitops {
    /// `config` is the environment's config.yaml; `REPO_URL` in it is replaced by the remote's URL.
    fn new(cluster: &'static Cluster, env: &str, config: &str) -> Gitops {
        let repo = TempRepo::new();
        let _ = std::fs::remove_dir_all(repo.path().join("environments"));
        let (remote, url) = common::git_remote(&repo);
        repo.env(env, &config.replace("REPO_URL", &url));
        repo.write(".gitignore", "/kubeconfig\n");
        Gitops {
            cluster,
            repo,
            remote,
            url,
            env: env.to_string(),
        }
    }

    /// The shipped ai-dev config, for environment `env` (cluster identity still `ai-dev`).
    fn shipped(cluster: &'static Cluster, env: &str) -> Gitops {
        Gitops::new(cluster, env, &common::shipped_config("REPO_URL"))
    }

    /// Run the binary with `--env` and `--kubeconfig` (off the test runtime's threads).
    async fn platform(&self, args: &[&str]) -> Output {
        let mut cmd = self.repo.cmd();
        cmd.arg("--env")
            .arg(&self.env)
            .args(args)
            .env("PLATFORM_KUBECONFIG", &self.cluster.kubeconfig)
            .env_remove("KUBECONFIG")
            .env_remove("HF_TOKEN")
            .timeout(Duration::from_secs(300));
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> Output {
        let o = self.platform(args).await;
        assert!(
            o.status.success(),
            "platform {args:?} failed ({:?}):\n{}{}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        o
    }

    /// `root --commit --push`: what Argo CD syncs is on the remote.
    async fn publish(&self) {
        self.ok(&["root", "--commit", "--push"]).await;
    }

    fn path(&self) -> &Path {
        self.repo.path()
    }

    fn tree_dir(&self) -> PathBuf {
        self.path().join("clusters").join(&self.env)
    }

    /// Let the Argo CD stand-in reconcile this environment's AppProject.
    fn argo_on(&self) {
        self.cluster
            .operators
            .argo
            .serve(&self.env, &self.url, self.remote.path());
    }

    fn argo_off(&self) {
        self.cluster.operators.argo.forget(&self.env);
    }
}

fn kubectl_ok(c: &Cluster, args: &[&str]) -> String {
    let (ok, out, err) = c.kubectl(args);
    assert!(ok, "kubectl {args:?}: {err}");
    out
}

/// Whether the ConfigMap kube-system/cluster-identity exists.
fn identity_recorded(c: &Cluster) -> bool {
    let (ok, out, err) = c.kubectl(&[
        "-n",
        "kube-system",
        "get",
        "configmap",
        "cluster-identity",
        "--ignore-not-found",
        "-o",
        "name",
    ]);
    assert!(ok, "kubectl get configmap cluster-identity: {err}");
    !out.trim().is_empty()
}

/// Poll `f` until it returns Some, at most `limit`.
async fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `kubectl get KIND -n NS NAME -o json`.
fn get_json(c: &Cluster, kind: &str, ns: &str, name: &str) -> Value {
    json_of(&kubectl_ok(c, &["get", kind, "-n", ns, name, "-o", "json"]))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

// ---------------------------------------------------------------------------------------------
// The rendered trees against the real API server's validation (OpenAPI, CRD schemas, CEL).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_trees_pass_server_side_dry_run() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    let fixture = |env: &str| {
        let path = format!("tests/fixtures/envs/{env}/config.yaml");
        std::fs::read_to_string(common::source_root().join(path)).unwrap()
    };
    // The autoscale fixture renders KEDA ScaledObjects: their CRD, as KEDA's chart installs it.
    install_keda_crd(c);
    for (env, g) in [
        ("ai-dev", Gitops::shipped(c, "ai-dev")),
        (
            "everything-on",
            Gitops::new(c, "everything-on", &fixture("everything-on")),
        ),
        // Every runtime and source: ClusterServingRuntimes, predictor.model, STORAGE_URI.
        ("runtimes", Gitops::new(c, "runtimes", &fixture("runtimes"))),
        (
            "autoscale",
            Gitops::new(c, "autoscale", &fixture("autoscale")),
        ),
        // A model mid-move (two declarations, a route with two backends) and one moved earlier.
        ("moving", Gitops::new(c, "moving", &fixture("moving"))),
    ] {
        g.ok(&["root", "--profile", "full"]).await;
        let dir = g.tree_dir();
        // Namespaces the tree writes into must exist for a dry run (Argo CD creates them on sync).
        let mut namespaces = std::collections::BTreeSet::new();
        for (path, text) in common::read_tree(g.path(), &dir) {
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let v: Value =
                    serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}"));
                if let Some(ns) = v.pointer("/metadata/namespace").and_then(Value::as_str) {
                    namespaces.insert(ns.to_string());
                }
            }
        }
        for ns in &namespaces {
            let _ = c.kubectl(&["create", "namespace", ns]);
        }
        let files: Vec<String> = common::read_tree(g.path(), &dir)
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| !p.ends_with("groups.generated.yaml"))
            // kustomize's input, not an API object (the hand-over test checks what it builds).
            .filter(|p| !p.ends_with("/argocd/kustomization.yaml"))
            .collect();
        let mut args = vec![
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=platform",
        ];
        for f in &files {
            args.extend(["-f", f.as_str()]);
        }
        let (ok, out, err) = c.kubectl_in(g.path(), &args);
        assert!(
            ok,
            "{env}: the API server rejected rendered objects:\n{err}\n{out}"
        );
        assert!(
            out.lines().count() >= files.len(),
            "{env}: fewer objects than files were checked:\n{out}"
        );
    }
}

/// KEDA's ScaledObject CRD (vendored from KEDA v2.20.2, the app version of the chart the catalog
/// pins; see the file's header), server-side applied and Established. Idempotent.
fn install_keda_crd(c: &Cluster) {
    let crd = common::source_root().join("tests/fixtures/crds/keda.sh_scaledobjects.yaml");
    kubectl_ok(
        c,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crd.to_str().unwrap(),
        ],
    );
    kubectl_ok(
        c,
        &[
            "wait",
            "--for=condition=Established",
            "crd/scaledobjects.keda.sh",
            "--timeout=60s",
        ],
    );
}

const SCALE_ENV: &str = "cluster:
  name: ai-dev
repoURL: REPO_URL
repoBranch: main
features: { raw-vllm: true, kserve: true, llm-d: false, keda: true, priority-classes: true }
autoscaling: { prometheus: http://prometheus.monitoring.svc:9090 }
models:
  - name: rk-hpa
    layer: raw-vllm
    namespace: rk-scale
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    preset: vllm-cpu
    resources:
      requests: { cpu: \"2\", memory: 6Gi }
      limits: { cpu: \"2\", memory: 8Gi }
    autoscaling: { min: 1, max: 3, metric: cpu, target: 70 }
    priority: platform-cpu-serving
  - name: rk-keda
    layer: raw-vllm
    namespace: rk-scale
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    preset: vllm-cpu
    resources:
      requests: { cpu: \"2\", memory: 6Gi }
      limits: { cpu: \"2\", memory: 8Gi }
    autoscaling: { min: 0, max: 2, metric: requests-running, class: keda }
  - name: rk-kserve
    layer: kserve
    namespace: rk-scale
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    preset: vllm-cpu
    resources:
      requests: { cpu: \"2\", memory: 6Gi }
      limits: { cpu: \"2\", memory: 8Gi }
    autoscaling: { min: 0, max: 3, metric: concurrency, class: keda }
";

/// The `ScalingActive` condition of HPA `name` in `ns`: (status, reason).
fn hpa_scaling_active(c: &Cluster, ns: &str, name: &str) -> Option<(String, String)> {
    let v = get_json(c, "hpa", ns, name);
    v["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|k| k["type"] == "ScalingActive")
        .map(|k| {
            (
                k["status"].as_str().unwrap_or("").to_string(),
                k["reason"].as_str().unwrap_or("").to_string(),
            )
        })
}

/// Autoscaled models pause and resume past their autoscalers, against the real
/// controller-manager's HPA controller: a raw model paused (Deployment at 0), the HPA deactivates
/// itself (ScalingActive=False, ScalingDisabled) and leaves it at 0; resumed, it acts again. A raw
/// KEDA model's ScaledObject carries KEDA's paused-replicas annotation while paused, none after.
/// The PriorityClasses the catalog ships are admitted and give the pods their priority; a KEDA
/// model at 0 replicas that nobody paused (raw, or a KServe predictor) is `scaled-to-zero`, not
/// paused, and a KServe model's count is its predictor's (the KServe stand-in leaves an
/// autoscaled predictor's replicas alone, as KServe does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaled_models_pause_resume_and_scale_to_zero_past_their_autoscalers() {
    let c = realkube::cluster();
    // Cluster-scoped PriorityClasses: not while another test dry-runs them.
    let _x = c.exclusive().await;
    install_keda_crd(c);
    let g = Gitops::new(c, "rk-scale", SCALE_ENV);
    g.ok(&["root"]).await;
    let _ = c.kubectl(&["create", "namespace", "rk-scale"]);
    // What the priority-classes app and the model apps' syncs would apply.
    let classes = g.tree_dir().join("objects/priority-classes");
    kubectl_ok(
        c,
        &[
            "apply",
            "--server-side",
            "--field-manager=platform",
            "-f",
            classes.to_str().unwrap(),
        ],
    );
    for m in ["rk-hpa", "rk-keda", "rk-kserve"] {
        let dir = g.tree_dir().join("models").join(m);
        kubectl_ok(c, &["apply", "--server-side", "-f", dir.to_str().unwrap()]);
    }
    let st = eventually("the models ready", Duration::from_secs(90), || {
        let m = status_models(&g);
        ["rk-hpa", "rk-keda", "rk-kserve"]
            .iter()
            .all(|n| m[*n]["state"] == "ready")
            .then_some(m)
    })
    .await;
    // KServe: the current count is the predictor Deployment's.
    assert_eq!(st["rk-kserve"]["desired"], 1, "{}", st["rk-kserve"]);
    assert_eq!(st["rk-kserve"]["readyReplicas"], 1, "{}", st["rk-kserve"]);
    assert_eq!(st["rk-hpa"]["autoscaling"]["min"], 1, "{}", st["rk-hpa"]);
    assert_eq!(st["rk-hpa"]["autoscaling"]["max"], 3);
    assert_eq!(st["rk-hpa"]["autoscaling"]["class"], "hpa");
    assert_eq!(st["rk-keda"]["autoscaling"]["class"], "keda");
    // The Priority admission plugin resolved the class the Deployment names.
    let pods = json_of(&kubectl_ok(
        c,
        &[
            "get",
            "pods",
            "-n",
            "rk-scale",
            "-l",
            "app.kubernetes.io/name=rk-hpa",
            "-o",
            "json",
        ],
    ));
    let pod = &pods["items"][0];
    assert_eq!(pod["spec"]["priorityClassName"], "platform-cpu-serving");
    assert_eq!(pod["spec"]["priority"], 50000, "{}", pod["spec"]);

    // pause: both at 0, KEDA held by its annotation, the HPA deactivated by the real controller.
    let o = g
        .ok(&["pause", "rk-hpa", "rk-keda", "--wait", "--timeout", "1m"])
        .await;
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("paused KEDA"), "{said}");
    for m in ["rk-hpa", "rk-keda"] {
        let d = get_json(c, "deployment", "rk-scale", m);
        assert_eq!(d["spec"]["replicas"], 0, "{m}");
        assert_eq!(
            d["metadata"]["annotations"]["platform.ai/paused-replicas"], "1",
            "{m}"
        );
    }
    let so = get_json(c, "scaledobject", "rk-scale", "rk-keda");
    assert_eq!(
        so["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"],
        "0"
    );
    let (status, reason) = eventually(
        "the HPA to deactivate itself on a target at 0",
        Duration::from_secs(90),
        || hpa_scaling_active(c, "rk-scale", "rk-hpa").filter(|(_, r)| r == "ScalingDisabled"),
    )
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ScalingDisabled")
    );
    // It has seen the Deployment at 0 and left it there (minReplicas is 1).
    let d = get_json(c, "deployment", "rk-scale", "rk-hpa");
    assert_eq!(d["spec"]["replicas"], 0, "the HPA scaled a paused model up");
    let st = status_models(&g);
    for m in ["rk-hpa", "rk-keda"] {
        assert_eq!(st[m]["state"], "paused", "{m}: {}", st[m]);
        assert_eq!(st[m]["paused"], true);
    }

    // resume: KEDA released first, the remembered count restored, the HPA active again.
    let o = g
        .ok(&["resume", "rk-hpa", "rk-keda", "--wait", "--timeout", "1m"])
        .await;
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("resumed KEDA"), "{said}");
    for m in ["rk-hpa", "rk-keda"] {
        let d = get_json(c, "deployment", "rk-scale", m);
        assert_eq!(d["spec"]["replicas"], 1, "{m}");
    }
    let so = get_json(c, "scaledobject", "rk-scale", "rk-keda");
    assert!(
        so["metadata"]["annotations"]
            .get("autoscaling.keda.sh/paused-replicas")
            .is_none(),
        "{}",
        so["metadata"]
    );
    eventually(
        "the HPA to act on the Deployment again",
        Duration::from_secs(90),
        || hpa_scaling_active(c, "rk-scale", "rk-hpa").filter(|(_, r)| r != "ScalingDisabled"),
    )
    .await;

    // KEDA scales an idle model to zero (done here as KEDA does it): scaled to zero, not paused.
    kubectl_ok(
        c,
        &[
            "scale",
            "deployment",
            "rk-keda",
            "-n",
            "rk-scale",
            "--replicas=0",
        ],
    );
    let m = eventually(
        "rk-keda to be scaled to zero",
        Duration::from_secs(30),
        || {
            let m = model_status(&g, "rk-keda");
            (m["state"] == "scaled-to-zero").then_some(m)
        },
    )
    .await;
    assert_eq!(m["paused"], false, "{m}");
    // Paused while at zero: KEDA held (nothing to remember on the Deployment), so paused; resumed,
    // KEDA released and the Deployment back at the model's start count.
    g.ok(&["pause", "rk-keda"]).await;
    let so = get_json(c, "scaledobject", "rk-scale", "rk-keda");
    assert_eq!(
        so["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"],
        "0"
    );
    let m = model_status(&g, "rk-keda");
    assert_eq!(
        (&m["state"], &m["paused"]),
        (&"paused".into(), &true.into()),
        "{m}"
    );
    g.ok(&["resume", "rk-keda", "--wait", "--timeout", "1m"])
        .await;
    let d = get_json(c, "deployment", "rk-scale", "rk-keda");
    assert_eq!(d["spec"]["replicas"], 1);

    // KServe with KEDA: its predictor at 0 (KEDA's doing, here kubectl's) is scaled to zero; the
    // stop annotation still pauses it.
    kubectl_ok(
        c,
        &[
            "scale",
            "deployment",
            "rk-kserve-predictor",
            "-n",
            "rk-scale",
            "--replicas=0",
        ],
    );
    let m = eventually(
        "rk-kserve to be scaled to zero",
        Duration::from_secs(30),
        || {
            let m = model_status(&g, "rk-kserve");
            (m["state"] == "scaled-to-zero").then_some(m)
        },
    )
    .await;
    assert_eq!(
        (&m["paused"], &m["desired"]),
        (&false.into(), &0.into()),
        "{m}"
    );
    g.ok(&["pause", "rk-kserve", "--wait", "--timeout", "1m"])
        .await;
    assert_eq!(model_status(&g, "rk-kserve")["state"], "paused");
    let _ = c.kubectl(&["delete", "namespace", "rk-scale", "--wait=false"]);
    let _ = c.kubectl(&["delete", "-f", classes.to_str().unwrap()]);
}

// ---------------------------------------------------------------------------------------------
// Argo CD as a user has it: the upstream install manifest (v3.5.1) and the Application health
// customization doctor asks for.

fn install_argocd(c: &Cluster) {
    let manifest = c.shared.join("fixtures/argocd-v3.5.1-install.yaml");
    let _ = c.kubectl(&["create", "namespace", "argocd"]);
    kubectl_ok(
        c,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-n",
            "argocd",
            "-f",
            manifest.to_str().unwrap(),
        ],
    );
    let snippet = r#"{"data":{"resource.customizations.health.argoproj.io_Application":"hs = {}\nhs.status = \"Progressing\"\nhs.message = \"\"\nif obj.status ~= nil then\n  if obj.status.health ~= nil then\n    hs.status = obj.status.health.status\n    if obj.status.health.message ~= nil then\n      hs.message = obj.status.health.message\n    end\n  end\nend\nreturn hs"}}"#;
    kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "patch",
            "configmap",
            "argocd-cm",
            "--type",
            "merge",
            "-p",
            snippet,
        ],
    );
}

/// ai-dev with llm-d on: a model on each of the three layers.
fn three_layers(c: &'static Cluster) -> Gitops {
    let g = Gitops::shipped(c, "ai-dev");
    let cfg = g
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("  llm-d: false", "  llm-d: true");
    g.repo.env("ai-dev", &cfg);
    g
}

fn models_by_name(status: &Value) -> std::collections::BTreeMap<String, Value> {
    status["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m.clone()))
        .collect()
}

/// From an empty cluster (Argo CD installed) to every app Synced + Healthy, then status, pause and
/// resume on all three layers, and a teardown with a cooperating Argo CD that leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_status_pause_resume_teardown_on_three_layers() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    install_argocd(c);
    let g = three_layers(c);
    g.publish().await;
    g.argo_on();

    let o = g.ok(&["up", "--sync-models", "--timeout", "4m"]).await;
    assert!(
        stderr(&o).contains("are Synced and Healthy"),
        "{}",
        stderr(&o)
    );
    // Independently: every Application is Synced and Healthy (the root apps aggregate their
    // children's health a moment later: `up` does not wait for them).
    let apps = eventually(
        "every Application Synced and Healthy",
        Duration::from_secs(30),
        || {
            let v = json_of(&kubectl_ok(
                c,
                &["get", "applications", "-n", "argocd", "-o", "json"],
            ));
            let items = v["items"].as_array().cloned().unwrap_or_default();
            items
                .iter()
                .all(|a| {
                    a["status"]["sync"]["status"] == "Synced"
                        && a["status"]["health"]["status"] == "Healthy"
                })
                .then_some(items)
        },
    )
    .await;
    assert!(apps.len() >= 15, "{} Applications", apps.len());
    let ready = |kind: &str, ns: &str, name: &str| {
        let v = get_json(c, kind, ns, name);
        v["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    };
    assert!(ready("inferenceservice", "kserve", "qwen-cpu"));
    assert!(ready("llminferenceservice", "llm-d", "qwen-llmd"));
    let d = get_json(c, "deployment", "serving", "qwen-gpu");
    assert_eq!(d["status"]["availableReplicas"], 1, "{}", d["status"]);

    // status: every model ready, the PVCs bound.
    let o = g.ok(&["status", "-o", "json"]).await;
    let st = json_of(&stdout(&o));
    for (name, m) in models_by_name(&st) {
        assert_eq!(m["state"], "ready", "{name}: {m}");
    }
    for p in st["pvcs"].as_array().unwrap() {
        assert_eq!(p["phase"], "Bound", "{p}");
    }
    // The table: a KServe model's READY is its predictor's count.
    let table = stdout(&g.ok(&["status"]).await);
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("qwen-cpu "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(" 1/1 "), "{table}");

    // Dry runs against the real API server: up has nothing to apply, pause would scale; nothing
    // is written (the objects keep their resourceVersion).
    let rv = |kind: &str, ns: &str, name: &str| {
        get_json(c, kind, ns, name)["metadata"]["resourceVersion"].clone()
    };
    let gpu_rv = rv("deployment", "serving", "qwen-gpu");
    let o = g
        .ok(&["up", "--sync-models", "--dry-run", "-o", "json"])
        .await;
    let dry = json_of(&stdout(&o));
    for a in dry["apply"].as_array().unwrap() {
        assert_eq!(a["result"], "unchanged", "{dry}");
    }
    assert!(
        dry["apps"].as_array().unwrap().iter().any(|a| a["app"] == "qwen-gpu"
            && a["action"].as_str().unwrap().starts_with("sync at")),
        "{dry}"
    );
    let o = g.ok(&["pause", "qwen-gpu", "--dry-run"]).await;
    assert!(
        stderr(&o).contains("would do: scaled 1 -> 0"),
        "{}",
        stderr(&o)
    );
    assert_eq!(rv("deployment", "serving", "qwen-gpu"), gpu_rv);

    // pause: every layer stops; the workloads go to zero (the real controllers and the KServe stand-in).
    g.ok(&[
        "pause",
        "qwen-cpu",
        "qwen-gpu",
        "qwen-llmd",
        "--wait",
        "--timeout",
        "2m",
    ])
    .await;
    let d = get_json(c, "deployment", "serving", "qwen-gpu");
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(
        d["metadata"]["annotations"]["platform.ai/paused-replicas"],
        "1"
    );
    for (kind, ns, name) in [
        ("inferenceservice", "kserve", "qwen-cpu"),
        ("llminferenceservice", "llm-d", "qwen-llmd"),
    ] {
        let v = json_of(&kubectl_ok(c, &["get", kind, "-n", ns, name, "-o", "json"]));
        assert_eq!(
            v["metadata"]["annotations"]["serving.kserve.io/stop"], "true",
            "{name}"
        );
    }
    let st = json_of(&stdout(&g.ok(&["status", "-o", "json"]).await));
    for (name, m) in models_by_name(&st) {
        assert_eq!(m["state"], "paused", "{name}: {m}");
    }
    eventually(
        "the predictor pods to be gone",
        Duration::from_secs(60),
        || {
            let pods = c.names("pods", Some("kserve"));
            pods.is_empty().then_some(())
        },
    )
    .await;

    // resume: back to the remembered replicas, ready again.
    g.ok(&[
        "resume",
        "qwen-cpu",
        "qwen-gpu",
        "qwen-llmd",
        "--wait",
        "--timeout",
        "2m",
    ])
    .await;
    let d = get_json(c, "deployment", "serving", "qwen-gpu");
    assert_eq!(d["spec"]["replicas"], 1);
    let st = json_of(&stdout(&g.ok(&["status", "-o", "json"]).await));
    for (name, m) in models_by_name(&st) {
        assert_eq!(m["state"], "ready", "{name}: {m}");
    }

    // teardown: dry run changes nothing; the real run leaves nothing (checked with kubectl).
    let before = c.names("applications", Some("argocd")).len();
    let o = g.ok(&["teardown", "--dry-run"]).await;
    assert!(!stdout(&o).is_empty() || !stderr(&o).is_empty());
    assert_eq!(c.names("applications", Some("argocd")).len(), before);
    let o = g
        .ok(&[
            "teardown",
            "--yes",
            "--finalizer-timeout",
            "90s",
            "--release-timeout",
            "2m",
        ])
        .await;
    assert!(stderr(&o).contains("nothing"), "{}", stderr(&o));
    assert_nothing_left(c);
    g.argo_off();
}

/// What teardown must not leave behind, seen by kubectl.
fn assert_nothing_left(c: &Cluster) {
    assert_eq!(
        c.names("applications", Some("argocd")),
        Vec::<String>::new()
    );
    assert_eq!(c.names("appprojects", Some("argocd")), Vec::<String>::new());
    for kind in [
        "inferenceservices",
        "llminferenceservices",
        "deployments",
        "statefulsets",
        "persistentvolumeclaims",
        "gateways",
    ] {
        for ns in ["kserve", "serving", "llm-d"] {
            assert_eq!(
                c.names(kind, Some(ns)),
                Vec::<String>::new(),
                "{kind} in {ns}"
            );
        }
    }
    // A PV whose claim was pruned earlier (a rollback, a move) is Released by the real PV
    // controller on its own schedule, then deleted by the volume stand-in (reclaim Delete): wait
    // for that, bounded, rather than racing it.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut pvs = c.names("persistentvolumes", None);
    while !pvs.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        pvs = c.names("persistentvolumes", None);
    }
    assert!(pvs.is_empty(), "PVs left: {pvs:?}");
}

/// Argo CD gone (nobody honours its resources finalizer): `teardown --strip-finalizers` deletes each
/// app's resources itself, and the audit (which covers the workloads) finds nothing, as kubectl sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_with_argocd_gone_deletes_the_apps_resources_itself() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    install_argocd(c);
    let g = three_layers(c);
    g.publish().await;
    g.argo_on();
    g.ok(&["up", "--sync-models", "--timeout", "4m"]).await;
    g.argo_off();
    assert!(!c.names("inferenceservices", Some("kserve")).is_empty());
    assert!(!c.names("deployments", Some("serving")).is_empty());

    // Without --strip-finalizers: stuck, with the fix in the error.
    let o = g
        .platform(&["teardown", "--yes", "--finalizer-timeout", "2s"])
        .await;
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--strip-finalizers"), "{}", stderr(&o));

    let o = g
        .ok(&[
            "teardown",
            "--yes",
            "--strip-finalizers",
            "--finalizer-timeout",
            "2s",
            "--release-timeout",
            "2m",
        ])
        .await;
    assert!(
        stderr(&o).contains("nothing platform manages survived"),
        "{}",
        stderr(&o)
    );
    assert_nothing_left(c);
    assert!(c
        .names("namespaces", None)
        .iter()
        .all(|n| n != "namespace/llm-d"));
}

/// doctor's Argo CD checks (application controller, repo server) are all OK.
async fn assert_argocd_ok(g: &Gitops) {
    let o = g.platform(&["doctor", "-o", "json"]).await;
    let checks = json_of(&stdout(&o));
    let argocd: Vec<&Value> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "argocd")
        .collect();
    assert!(
        argocd.len() == 2 && argocd.iter().all(|c| c["level"] == "OK"),
        "{argocd:?}\n{}",
        stderr(&o)
    );
}

/// doctor against Argo CD's upstream install, then against a Helm-installed one (release `argo-cd`:
/// every component's name is prefixed), found by its labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_finds_argocd_by_labels_whatever_its_names() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    install_argocd(c);
    let g = three_layers(c);
    g.ok(&["root"]).await;
    async fn ready(c: &Cluster, name: &str) {
        eventually(
            "the application controller to be ready",
            Duration::from_secs(60),
            || {
                let (ok, out, _) = c.kubectl(&[
                    "-n",
                    "argocd",
                    "get",
                    "statefulset",
                    name,
                    "-o",
                    "jsonpath={.status.readyReplicas}",
                ]);
                (ok && out.trim() == "1").then_some(())
            },
        )
        .await
    }
    ready(c, "argocd-application-controller").await;
    assert_argocd_ok(&g).await;

    rename_controller_as_helm(c);
    ready(c, HELM_CONTROLLER).await;
    assert_argocd_ok(&g).await;
    restore_upstream_controller(c);
}

/// The application controller's name under the Argo CD Helm chart.
const HELM_CONTROLLER: &str = "argo-cd-argocd-application-controller";

/// Replace the upstream-named application controller by the same StatefulSet under the Helm
/// chart's name (same labels): an Argo CD installed another way.
fn rename_controller_as_helm(c: &Cluster) {
    let mut v = get_json(c, "statefulset", "argocd", "argocd-application-controller");
    v["metadata"] = serde_json::json!({
        "name": HELM_CONTROLLER,
        "namespace": "argocd",
        "labels": v["metadata"]["labels"].clone(),
    });
    v.as_object_mut().unwrap().remove("status");
    kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "delete",
            "statefulset",
            "argocd-application-controller",
            "--wait=true",
        ],
    );
    let (ok, _, err) =
        c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(&v.to_string()));
    assert!(ok, "{err}");
}

/// Undo [`rename_controller_as_helm`]: the upstream names back for the other tests.
fn restore_upstream_controller(c: &Cluster) {
    kubectl_ok(
        c,
        &["-n", "argocd", "delete", "statefulset", HELM_CONTROLLER],
    );
    install_argocd(c);
}

/// The wrong cluster is refused before any write (checked by what exists afterwards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cluster_is_refused_before_any_write() {
    let c = realkube::cluster();
    // The bootstrap test removes the recorded identity to start from an empty cluster.
    let _x = c.exclusive().await;
    let g = Gitops::shipped(c, "rk-guard");
    let cfg = g
        .repo
        .read("environments/rk-guard/config.yaml")
        .replace("  name: ai-dev ", "  name: prod-eu ");
    g.repo.env("rk-guard", &cfg);
    g.ok(&["root"]).await;
    // Without a recorded identity, the kubeconfig's cluster entry (`ai-dev`) cannot confirm prod-eu.
    if !identity_recorded(c) {
        let o = g.platform(&["pause", "qwen-cpu"]).await;
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("cannot confirm that the target is cluster `prod-eu`"),
            "{}",
            stderr(&o)
        );
        // The fix is aimed at the target the config selects, and names bootstrap.
        let kubectl = format!(
            "`kubectl --kubeconfig {} --context ",
            c.kubeconfig.display()
        );
        assert!(stderr(&o).contains(&kubectl), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("`platform bootstrap --env rk-guard`"),
            "{}",
            stderr(&o)
        );
        // A command that only reads goes on, with a warning.
        let o = g.platform(&["status"]).await;
        let err = stderr(&o);
        assert!(
            err.contains("warning: cannot confirm that the target is cluster `prod-eu`"),
            "{err}"
        );
        assert!(!err.contains("error: cannot confirm"), "{err}");
        assert!(err.contains(&kubectl), "{err}");
    }
    // The identity recorded as the README says (the other tests' environments say ai-dev too).
    let _ = c.kubectl(&[
        "-n",
        "kube-system",
        "create",
        "configmap",
        "cluster-identity",
        "--from-literal=clusterName=ai-dev",
    ]);
    for args in [
        &["up", "--allow-unpushed", "--timeout", "30s"][..],
        &["pause", "qwen-cpu"][..],
        &["teardown", "--yes"][..],
        &["status"][..],
    ] {
        let o = g.platform(args).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("wrong cluster"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("prod-eu"), "{}", stderr(&o));
    }
    assert!(!c
        .names("appprojects", Some("argocd"))
        .contains(&"appproject.argoproj.io/rk-guard".to_string()));
    let (_, out, _) = c.kubectl(&[
        "get",
        "applications",
        "-A",
        "-l",
        "app.kubernetes.io/part-of=rk-guard",
        "-o",
        "name",
    ]);
    assert!(out.trim().is_empty(), "{out}");
}

const STATUS_ENV: &str = "cluster:
  name: ai-dev
repoURL: REPO_URL
repoBranch: main
features: { raw-vllm: true, kserve: false, llm-d: false }
models:
  - name: rk-greedy
    layer: raw-vllm
    namespace: rk-status
    source: hf://Qwen/Qwen2.5-7B-Instruct
    preset: vllm-gpu
    gpus: 8
    tensorParallelSize: 8
  - name: rk-noclaim
    layer: raw-vllm
    namespace: rk-status
    source: hf://Qwen/Qwen2.5-7B-Instruct
    preset: vllm-gpu
    gpus: 1
    storage: { storageClassName: no-such-class }
  - name: rk-held
    layer: raw-vllm
    namespace: rk-status
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    preset: vllm-cpu
    resources:
      requests: { cpu: \"2\", memory: 6Gi }
      limits: { cpu: \"2\", memory: 8Gi }
";

/// `status` says why a model is not ready in the real scheduler's words (a GPU request no node can
/// satisfy; an unbound PVC), and stage-model refuses a ReadWriteOnce volume that any unfinished pod
/// mounts, naming it, even when the model itself is paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reasons_and_volume_holders_come_from_the_real_scheduler() {
    let c = realkube::cluster();
    let g = Gitops::new(c, "rk-status", STATUS_ENV);
    g.ok(&["root"]).await;
    let _ = c.kubectl(&["create", "namespace", "rk-status"]);
    // What the model apps' sync would apply.
    for m in ["rk-greedy", "rk-noclaim", "rk-held"] {
        let dir = g.tree_dir().join("models").join(m);
        kubectl_ok(c, &["apply", "--server-side", "-f", dir.to_str().unwrap()]);
    }
    let reasons = eventually(
        "status to give both reasons",
        Duration::from_secs(60),
        || {
            let m = status_models(&g);
            let r = |n: &str| m[n]["reasons"].to_string();
            let held_ready = m["rk-held"]["state"] == "ready";
            (r("rk-greedy").contains("Insufficient nvidia.com/gpu")
                && r("rk-noclaim").contains("unbound")
                && held_ready)
                .then(|| (r("rk-greedy"), r("rk-noclaim")))
        },
    )
    .await;
    assert!(
        reasons.0.contains("Insufficient nvidia.com/gpu"),
        "{reasons:?}"
    );

    // stage-model: the running model holds its volume; paused, a debug pod still does.
    let weights = tempfile::tempdir().unwrap();
    std::fs::write(weights.path().join("config.json"), "{}").unwrap();
    std::fs::write(weights.path().join("model.safetensors"), b"weights").unwrap();
    let stage = [
        "stage-model",
        "rk-held",
        "--from-dir",
        weights.path().to_str().unwrap(),
        "--pod-timeout",
        "20s",
    ];
    let o = g.platform(&stage).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("in use by pod(s) rk-held-"),
        "{}",
        stderr(&o)
    );
    g.ok(&["pause", "rk-held", "--wait", "--timeout", "1m"])
        .await;
    eventually("rk-held's pods to be gone", Duration::from_secs(60), || {
        let (_, out, _) = c.kubectl(&[
            "get",
            "pods",
            "-n",
            "rk-status",
            "-l",
            "app.kubernetes.io/name=rk-held",
            "-o",
            "name",
        ]);
        let left = c.names("pods", Some("rk-status"));
        (out.trim().is_empty() && !left.iter().any(|p| p.contains("rk-held-"))).then_some(())
    })
    .await;
    let debug = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "debug-shell", "namespace": "rk-status"},
        "spec": {"containers": [{"name": "sh", "image": "busybox", "command": ["sleep", "3600"],
                                 "volumeMounts": [{"name": "w", "mountPath": "/w"}]}],
                 "volumes": [{"name": "w", "persistentVolumeClaim": {"claimName": "rk-held-weights"}}]}});
    let (ok, _, err) = c.kubectl_stdin(&["apply", "-f", "-"], Some(&debug.to_string()));
    assert!(ok, "{err}");
    let o = g.platform(&stage).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("debug-shell"), "{}", stderr(&o));
    let _ = c.kubectl(&["delete", "namespace", "rk-status", "--wait=false"]);
}

const ROLLOUT_ENV: &str = "cluster:
  name: ai-dev
repoURL: REPO_URL
repoBranch: main
features: { raw-vllm: true, kserve: false, llm-d: false }
models:
  - name: rk-roll
    layer: raw-vllm
    namespace: rk-roll
    source: hf://Qwen/Qwen2.5-7B-Instruct
    preset: vllm-gpu
    gpus: 1
";

/// The models of `platform status -o json`, by name (run synchronously: inside `eventually`).
fn status_models(g: &Gitops) -> std::collections::BTreeMap<String, Value> {
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("platform"))
        .args(["--repo", g.path().to_str().unwrap(), "--env", &g.env])
        .args(["status", "-o", "json"])
        .env("PLATFORM_KUBECONFIG", &g.cluster.kubeconfig)
        .output()
        .unwrap();
    models_by_name(&json_of(&String::from_utf8_lossy(&out.stdout)))
}

/// The status of model `name` as `platform status -o json` reports it.
fn model_status(g: &Gitops, name: &str) -> Value {
    status_models(g)[name].clone()
}

/// Issue 20: a Deployment whose new template's pod is not ready while the old pod still serves is
/// not ready (the real deployment controller's observedGeneration, updatedReplicas and replicas),
/// though its readyReplicas equals spec.replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_rolled_out_model_is_not_ready() {
    let c = realkube::cluster();
    let g = Gitops::new(c, "rk-roll", ROLLOUT_ENV);
    g.ok(&["root"]).await;
    let _ = c.kubectl(&["create", "namespace", "rk-roll"]);
    let dir = g.tree_dir().join("models").join("rk-roll");
    kubectl_ok(c, &["apply", "--server-side", "-f", dir.to_str().unwrap()]);
    eventually("rk-roll to be ready", Duration::from_secs(60), || {
        (model_status(&g, "rk-roll")["state"] == "ready").then_some(())
    })
    .await;
    // A new template no node can run (5 GPUs, the node has 4), surged beside the old pod.
    let patch = r#"{"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {"spec": {"containers": [{"name": "vllm",
            "resources": {"requests": {"nvidia.com/gpu": "5"}, "limits": {"nvidia.com/gpu": "5"}}}]}}}}"#;
    kubectl_ok(
        c,
        &[
            "-n",
            "rk-roll",
            "patch",
            "deployment",
            "rk-roll",
            "--type=strategic",
            "-p",
            patch,
        ],
    );
    let st = eventually(
        "the rollout to be observed",
        Duration::from_secs(60),
        || {
            let dep = get_json(c, "deployment", "rk-roll", "rk-roll");
            let n = |p: &str| dep.pointer(p).and_then(Value::as_i64).unwrap_or(0);
            (n("/status/observedGeneration") >= 2 && n("/status/replicas") == 2).then_some(dep)
        },
    )
    .await;
    assert_eq!(st["status"]["readyReplicas"], 1, "{st}");
    let m = model_status(&g, "rk-roll");
    assert_eq!(m["state"], "not-ready", "{m}");
    assert!(
        m["reasons"]
            .to_string()
            .contains("old replica(s) still running"),
        "{m}"
    );
    let _ = c.kubectl(&["delete", "namespace", "rk-roll", "--wait=false"]);
}

const SMOKE_ENV: &str = "cluster:
  name: ai-dev
repoURL: REPO_URL
repoBranch: main
features: { raw-vllm: true, kserve: false, llm-d: false }
models:
  - name: rk-smoke
    layer: raw-vllm
    namespace: rk-smoke
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    preset: vllm-cpu
    resources:
      requests: { cpu: \"2\", memory: 6Gi }
      limits: { cpu: \"2\", memory: 8Gi }
";

/// A kubeconfig like the admin's whose user is ServiceAccount `sa` of `ns` (a token).
fn kubeconfig_of_service_account(c: &Cluster, ns: &str, sa: &str, dir: &Path) -> PathBuf {
    kubectl_ok(c, &["-n", ns, "create", "serviceaccount", sa]);
    let token = kubectl_ok(c, &["-n", ns, "create", "token", sa]);
    let mut kc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&c.kubeconfig).unwrap()).unwrap();
    kc["users"][0]["user"] = serde_yaml::from_str(&format!("{{token: {}}}", token.trim())).unwrap();
    let path = dir.join(format!("{sa}.kubeconfig"));
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

/// issue 19 Medium 4: a port-forward the real kube-apiserver does not open is the cluster API's
/// failure, exit 4, in words: refused by RBAC (a user with the built-in `view` role: 403), or not
/// opened at all (admin; no kubelet answers behind the node: 5xx), instead of polling /health
/// until the timeout and blaming a model "still loading" (exit 3) with a Debug `Status {…}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_says_when_the_real_api_server_refuses_or_cannot_open_the_port_forward() {
    let c = realkube::cluster();
    let g = Gitops::new(c, "rk-smoke", SMOKE_ENV);
    g.ok(&["root"]).await;
    let _ = c.kubectl(&["create", "namespace", "rk-smoke"]);
    let dir = g.tree_dir().join("models").join("rk-smoke");
    kubectl_ok(c, &["apply", "--server-side", "-f", dir.to_str().unwrap()]);
    eventually("rk-smoke to be ready", Duration::from_secs(90), || {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("platform"))
            .args(["--repo", g.path().to_str().unwrap(), "--env", "rk-smoke"])
            .args(["status", "-o", "json"])
            .env("PLATFORM_KUBECONFIG", &c.kubeconfig)
            .output()
            .unwrap();
        let st = json_of(&String::from_utf8_lossy(&out.stdout));
        (models_by_name(&st)["rk-smoke"]["state"] == "ready").then_some(())
    })
    .await;
    let no_debug = |all: &str| {
        for debug in ["Status {", "Some(", "ListMeta"] {
            assert!(!all.contains(debug), "Rust Debug ({debug}): {all}");
        }
        assert!(!all.contains("may still be loading"), "{all}");
    };
    // The admin: the API server finds no kubelet to forward to.
    let o = g.platform(&["smoke", "rk-smoke", "--timeout", "60s"]).await;
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(4), "{all}");
    assert!(
        stdout(&o).contains(
            "rk-smoke  raw-vllm  port-forward  ERROR  endpoint: the API server could not open the \
             port-forward to pod rk-smoke-"
        ),
        "{all}"
    );
    assert!(stdout(&o).contains("HTTP 5"), "{all}");
    no_debug(&all);
    // A user who may read (built-in `view`) but not port-forward: refused at once.
    let home = tempfile::tempdir().unwrap();
    let viewer = kubeconfig_of_service_account(c, "rk-smoke", "viewer", home.path());
    kubectl_ok(
        c,
        &[
            "create",
            "clusterrolebinding",
            "rk-smoke-viewer",
            "--clusterrole=view",
            "--serviceaccount=rk-smoke:viewer",
        ],
    );
    let o = g
        .platform(&[
            "smoke",
            "rk-smoke",
            "--timeout",
            "60s",
            "-o",
            "json",
            "--kubeconfig",
            viewer.to_str().unwrap(),
        ])
        .await;
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(4), "{all}");
    let m = &json_of(&stdout(&o))["models"][0];
    assert_eq!(
        (m["result"].as_str(), m["check"].as_str()),
        (Some("error"), Some("endpoint")),
        "{m}"
    );
    let reason = m["reason"].as_str().unwrap();
    for want in [
        "the API server refused the port-forward to pod rk-smoke-",
        "pods/portforward",
        "(Forbidden, HTTP 403)",
        "RBAC",
    ] {
        assert!(reason.contains(want), "{want}: {reason}");
    }
    no_debug(&all);
    let _ = c.kubectl(&["delete", "clusterrolebinding", "rk-smoke-viewer"]);
    let _ = c.kubectl(&["delete", "namespace", "rk-smoke", "--wait=false"]);
}

const STAGE_ENV: &str = "cluster:
  name: ai-dev
repoURL: REPO_URL
repoBranch: main
features: { raw-vllm: true, kserve: false, llm-d: false }
models:
  - name: rk-unbound
    layer: raw-vllm
    namespace: rk-stage
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    preset: vllm-cpu
    storage: { storageClassName: no-such-class }
    resources:
      requests: { cpu: \"2\", memory: 6Gi }
      limits: { cpu: \"2\", memory: 8Gi }
";

/// A staging pod the real scheduler cannot place (its PVC never binds: no such StorageClass):
/// stage-model says what the pod waits for in the scheduler's words with the time left, ends with
/// exit 3 at --pod-timeout (a timeout, not a remote failure), and deletes the pod (issue 19
/// Medium 12, Low 11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_pod_the_scheduler_cannot_place_times_out_saying_why() {
    let c = realkube::cluster();
    let g = Gitops::new(c, "rk-stage", STAGE_ENV);
    g.ok(&["root"]).await;
    let weights = tempfile::tempdir().unwrap();
    std::fs::write(weights.path().join("config.json"), "{}").unwrap();
    std::fs::write(weights.path().join("model.safetensors"), b"weights").unwrap();
    let o = g
        .platform(&[
            "stage-model",
            "rk-unbound",
            "--from-dir",
            weights.path().to_str().unwrap(),
            "--pod-timeout",
            "8s",
        ])
        .await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    // The wait, said through the reporter while it lasts: the scheduler's condition on the pod.
    let waiting = err
        .lines()
        .find(|l| l.contains("staging pod rk-stage/platform-stage-rk-unbound: not scheduled: "))
        .unwrap_or_else(|| panic!("no progress line naming the scheduler's reason:\n{err}"));
    assert!(
        waiting.contains("Unschedulable") && waiting.ends_with("s left)"),
        "{waiting}"
    );
    assert!(
        err.contains(
            "staging pod platform-stage-rk-unbound did not start within 8s (--pod-timeout): not scheduled: Unschedulable"
        ),
        "{err}"
    );
    let pods = c.names("pods", Some("rk-stage"));
    assert!(
        !pods.iter().any(|p| p.contains("platform-stage-rk-unbound")),
        "the staging pod survived: {pods:?}"
    );
    let _ = c.kubectl(&["delete", "namespace", "rk-stage", "--wait=false"]);
}

// ---------------------------------------------------------------------------------------------
// `platform bootstrap`: the real v3.5.1 install manifest served over loopback HTTP.

const TOKEN_VAR: &str = "RK_GITOPS_TOKEN";

fn fixture_manifest(c: &Cluster) -> PathBuf {
    c.shared.join("fixtures/argocd-v3.5.1-install.yaml")
}

/// The fixture's objects as (kind, name, namespaced-by-default).
fn manifest_objects(c: &Cluster) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(fixture_manifest(c)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|d| {
            let v: Value = serde::Deserialize::deserialize(d).ok()?;
            Some((
                v["kind"].as_str()?.to_string(),
                v["metadata"]["name"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The install's objects except the CRDs (which the tier installs for every test).
fn install_objects(c: &Cluster) -> Vec<(String, String)> {
    manifest_objects(c)
        .into_iter()
        .filter(|(k, _)| k != "CustomResourceDefinition")
        .collect()
}

fn exists(c: &Cluster, kind: &str, name: &str) -> bool {
    let cluster_scoped = kind.starts_with("Cluster");
    let mut args = vec!["get", kind, name, "--ignore-not-found", "-o", "name"];
    if !cluster_scoped {
        args.extend(["-n", "argocd"]);
    }
    let (ok, out, err) = c.kubectl(&args);
    assert!(ok, "kubectl get {kind} {name}: {err}");
    !out.trim().is_empty()
}

/// Remove what an Argo CD install created (not the CRDs), the redis and repository Secrets and the
/// cluster identity: an empty cluster as far as bootstrap can tell.
fn uninstall_argocd(c: &Cluster) {
    for (kind, name) in install_objects(c) {
        let target = format!("{kind}/{name}");
        let mut args = vec!["delete", target.as_str(), "--ignore-not-found"];
        if !kind.starts_with("Cluster") {
            args.extend(["-n", "argocd"]);
        }
        kubectl_ok(c, &args);
    }
    kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "delete",
            "secret",
            "argocd-redis",
            "--ignore-not-found",
        ],
    );
    kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "delete",
            "secret",
            "-l",
            "argocd.argoproj.io/secret-type=repository",
        ],
    );
    kubectl_ok(
        c,
        &[
            "-n",
            "kube-system",
            "delete",
            "configmap",
            "cluster-identity",
            "--ignore-not-found",
        ],
    );
}

/// A loopback HTTP server: `/good/install.yaml` is the fixture, `/tampered/install.yaml` the same
/// with another image. Returns its base URL.
async fn serve_manifests(c: &Cluster) -> String {
    use axum::routing::get;
    let good = std::fs::read_to_string(fixture_manifest(c)).unwrap();
    let bad = good.replacen(
        "image: quay.io/argoproj/argocd:v3.5.1",
        "image: quay.io/evil/argocd:v3.5.1",
        1,
    );
    assert_ne!(good, bad);
    let app = axum::Router::new()
        .route("/good/install.yaml", get(move || async move { good }))
        .route("/tampered/install.yaml", get(move || async move { bad }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

impl Gitops {
    /// `platform bootstrap ARGS` with the manifest URL, the cache directory and the token variable.
    async fn bootstrap(&self, url: &str, cache: &Path, token: &str, args: &[&str]) -> Output {
        let mut cmd = self.repo.cmd();
        cmd.arg("--env")
            .arg(&self.env)
            .arg("bootstrap")
            .args(args)
            .env("PLATFORM_KUBECONFIG", &self.cluster.kubeconfig)
            .env("PLATFORM_ARGOCD_URL", url)
            .env("XDG_CACHE_HOME", cache)
            .env(TOKEN_VAR, token)
            .env_remove("KUBECONFIG")
            .timeout(Duration::from_secs(300));
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
            {
                out.push(p);
            }
        }
    }
    out
}

/// From an empty cluster: a tampered manifest is refused with nothing applied; a non-interactive
/// run without --yes records nothing; the dry run lists what it would create; the real run applies
/// the verified v3.5.1 manifest (cached), the health check, the redis password and the repository
/// credential, and waits until the node stand-in has made Argo CD ready; a second run (and one
/// from --manifests FILE) has nothing to do; the token appears in no output and no file; and what
/// `root` renders for Argo CD is the same manifest, the same argocd-cm keys, the same names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_installs_the_pinned_argocd_and_hands_it_over() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    uninstall_argocd(c);
    let base = serve_manifests(c).await;
    let good = format!("{base}/good/install.yaml");
    let g = Gitops::shipped(c, "ai-dev");
    let cache = tempfile::tempdir().unwrap();
    let token = format!("rk-tok-{}-SENSITIVE", std::process::id());
    let no_install = |c: &Cluster| {
        let left: Vec<String> = install_objects(c)
            .into_iter()
            .filter(|(k, n)| exists(c, k, n))
            .map(|(k, n)| format!("{k}/{n}"))
            .collect();
        assert!(left.is_empty(), "applied: {left:?}");
        assert!(!exists(c, "secret", "argocd-redis"));
    };
    let mut outputs = Vec::new();

    // A tampered manifest: refused, both hashes named, nothing applied (kubectl sees nothing).
    let tampered = format!("{base}/tampered/install.yaml");
    let o = g
        .bootstrap(&tampered, cache.path(), &token, &["--yes"])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("795a3a972224da6a7f9d32c3e946445f062b60fb46028476715affeb688236e3")
            && stderr(&o).contains("nothing was applied"),
        "{}",
        stderr(&o)
    );
    no_install(c);
    outputs.push(o);

    // No terminal and no --yes: the brand-new cluster's identity is not recorded, nothing is applied.
    let o = g.bootstrap(&good, cache.path(), &token, &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("pass --yes"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no cluster identity recorded yet"),
        "{}",
        stderr(&o)
    );
    no_install(c);
    assert!(!identity_recorded(c), "identity recorded");
    outputs.push(o);

    // The dry run: every object listed, still nothing applied (and, issue 19 Low 12, nothing
    // written: the cache the run above filled is emptied first).
    let _ = std::fs::remove_dir_all(cache.path().join("platform"));
    let o = g
        .bootstrap(
            &good,
            cache.path(),
            &token,
            &["--dry-run", "--repo-token-env", TOKEN_VAR],
        )
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("create    Deployment argocd/argocd-server"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("create    ConfigMap kube-system/cluster-identity"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("create    Secret argocd/repo-"),
        "{}",
        stdout(&o)
    );
    no_install(c);
    // Issue 19 Low 12: a dry run writes nothing, not even the manifest cache; the loopback URL is
    // plain http: said, the sha256 still guards it.
    assert!(
        files_containing(cache.path(), "kind").is_empty(),
        "the dry run wrote the cache: {:?}",
        files_containing(cache.path(), "kind")
    );
    assert!(
        stderr(&o).contains("downloaded over plain http"),
        "{}",
        stderr(&o)
    );
    outputs.push(o);

    // The real run: verified, cached, applied, configured, ready.
    let o = g
        .bootstrap(
            &good,
            cache.path(),
            &token,
            &["--yes", "--repo-token-env", TOKEN_VAR, "--timeout", "3m"],
        )
        .await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("ready"), "{}", stderr(&o));
    outputs.push(o);
    let cached = cache.path().join("platform/argocd/v3.5.1/install.yaml");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        std::fs::read(fixture_manifest(c)).unwrap()
    );
    for (kind, name) in install_objects(c) {
        assert!(exists(c, &kind, &name), "{kind}/{name} missing");
    }
    let id = get_json(c, "configmap", "kube-system", "cluster-identity");
    assert_eq!(id["data"]["clusterName"], "ai-dev");
    let cm = get_json(c, "configmap", "argocd", "argocd-cm");
    let health = cm["data"]["resource.customizations.health.argoproj.io_Application"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(health.contains("obj.status.health.status"), "{cm}");
    let redis = get_json(c, "secret", "argocd", "argocd-redis");
    assert!(
        redis["data"]["auth"]
            .as_str()
            .is_some_and(|a| a.len() >= 16),
        "{redis}"
    );
    for (kind, name) in [
        ("statefulset", "argocd-application-controller"),
        ("deployment", "argocd-repo-server"),
        ("deployment", "argocd-redis"),
        ("deployment", "argocd-server"),
    ] {
        let v = get_json(c, kind, "argocd", name);
        assert_eq!(
            v["status"]["readyReplicas"], 1,
            "{kind} {name}: {}",
            v["status"]
        );
    }
    let secrets = json_of(&kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "get",
            "secrets",
            "-l",
            "argocd.argoproj.io/secret-type=repository",
            "-o",
            "json",
        ],
    ));
    let items = secrets["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{secrets}");
    let data = &items[0]["data"];
    let decode = |k: &str| b64_decode(data[k].as_str().unwrap_or_default());
    assert_eq!(decode("url"), g.url);
    assert_eq!(decode("username"), "x-access-token");
    assert_eq!(decode("password"), token);

    // Again: nothing to do (also from --manifests FILE); a tampered file is refused.
    let o = g
        .bootstrap(
            &good,
            cache.path(),
            &token,
            &["--repo-token-env", TOKEN_VAR],
        )
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    outputs.push(o);
    let fixture = fixture_manifest(c);
    let o = g
        .bootstrap(
            &tampered,
            cache.path(),
            &token,
            &["--manifests", fixture.to_str().unwrap(), "--dry-run"],
        )
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    assert!(
        stdout(&o).lines().all(|l| l.starts_with("unchanged ")),
        "{}",
        stdout(&o)
    );
    outputs.push(o);
    let bad_file = cache.path().join("tampered.yaml");
    std::fs::write(
        &bad_file,
        std::fs::read_to_string(&fixture)
            .unwrap()
            .replacen("replicas: 1", "replicas: 3", 1),
    )
    .unwrap();
    let o = g
        .bootstrap(
            &good,
            cache.path(),
            &token,
            &["--manifests", bad_file.to_str().unwrap()],
        )
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was applied"), "{}", stderr(&o));
    outputs.push(o);

    // doctor: the pinned version, the health check, the credential.
    let o = g.platform(&["doctor", "-o", "json"]).await;
    let checks = json_of(&stdout(&o));
    for name in ["argocd-version", "argocd-health", "argocd-repo"] {
        let found: Vec<&Value> = checks
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["check"] == name)
            .collect();
        assert!(
            found.len() == 1 && found[0]["level"] == "OK",
            "{name}: {checks:#}"
        );
    }
    outputs.push(o);

    // The hand-over: the same manifest (the catalog's URL, whose sha256 is the fixture's), the same
    // argocd-cm keys, the same names (no prefix, suffix or renaming transformer).
    g.ok(&["root"]).await;
    let dir = g.tree_dir().join("argocd");
    let k: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        k["resources"],
        serde_json::json!([
            "https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.1/manifests/install.yaml"
        ])
    );
    assert_eq!(k["namespace"], "argocd");
    let keys: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
    for renaming in [
        "namePrefix",
        "nameSuffix",
        "replacements",
        "images",
        "components",
    ] {
        assert!(!keys.contains(&renaming), "{k}");
    }
    let patch: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("argocd-cm.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        k["patches"],
        serde_json::json!([{"path": "argocd-cm.yaml"}])
    );
    assert!(manifest_objects(c).contains(&(
        "ConfigMap".into(),
        patch["metadata"]["name"].as_str().unwrap().into()
    )));
    assert_eq!(
        patch["data"]["resource.customizations.health.argoproj.io_Application"],
        health.as_str()
    );
    // The Application and the project it needs pass the API server's validation.
    let app = g.tree_dir().join("apps/platform/argocd/argocd.yaml");
    let project = g.tree_dir().join("project.yaml");
    let (ok, out, err) = c.kubectl(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=platform",
        "-f",
        app.to_str().unwrap(),
        "-f",
        project.to_str().unwrap(),
    ]);
    assert!(ok, "{err}\n{out}");
    let app: Value = serde_yaml::from_str(&std::fs::read_to_string(&app).unwrap()).unwrap();
    assert_eq!(app["spec"]["source"]["path"], "clusters/ai-dev/argocd");
    assert_eq!(app["spec"]["destination"]["namespace"], "argocd");
    assert!(app["metadata"]["finalizers"].is_null(), "{app}");

    // The token: in no output, no rendered file, no cache file.
    for o in &outputs {
        assert!(!stdout(o).contains(&token) && !stderr(o).contains(&token));
    }
    assert!(files_containing(g.path(), &token).is_empty());
    assert!(files_containing(cache.path(), &token).is_empty());
}

fn b64_decode(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// An Argo CD installed with other names (the Helm chart's `argo-cd-argocd-…`) is left alone: no
/// second controller, only the argocd-cm keys are applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_leaves_a_helm_named_argocd_alone() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    install_argocd(c);
    let base = serve_manifests(c).await;
    let g = Gitops::shipped(c, "ai-dev");
    let cache = tempfile::tempdir().unwrap();
    // The Helm chart's names, same labels; the upstream-named controller gone.
    rename_controller_as_helm(c);
    kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "patch",
            "configmap",
            "argocd-cm",
            "--type",
            "json",
            "-p",
            r#"[{"op": "remove", "path": "/data"}]"#,
        ],
    );

    let o = g
        .bootstrap(
            &format!("{base}/good/install.yaml"),
            cache.path(),
            "",
            &["--yes", "--timeout", "1m"],
        )
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already installed differently")
            && stderr(&o).contains("StatefulSet argocd/argo-cd-argocd-application-controller"),
        "{}",
        stderr(&o)
    );
    // Issue 19 Low 9: what was found is named, not the pinned version as if it were installed.
    assert!(
        stderr(&o).contains("(installed another way, namespace argocd; left alone)")
            && !stderr(&o).contains("✓ Argo CD v3.5.1:"),
        "{}",
        stderr(&o)
    );
    // Not duplicated: no upstream-named controller appeared; the health check was merged in.
    assert!(!exists(c, "statefulset", "argocd-application-controller"));
    let cm = get_json(c, "configmap", "argocd", "argocd-cm");
    assert!(
        cm["data"]["resource.customizations.health.argoproj.io_Application"].is_string(),
        "{cm}"
    );
    // A second run has nothing to do.
    let o = g
        .bootstrap(
            &format!("{base}/good/install.yaml"),
            cache.path(),
            "",
            &["--yes"],
        )
        .await;
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    // bootstrap --uninstall leaves it alone too, saying why.
    let o = g
        .bootstrap(
            &format!("{base}/good/install.yaml"),
            cache.path(),
            "",
            &["--uninstall", "--yes"],
        )
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("was not installed by `platform bootstrap`: left alone"),
        "{}",
        stderr(&o)
    );
    assert!(exists(
        c,
        "statefulset",
        "argo-cd-argocd-application-controller"
    ));
    assert!(exists(c, "deployment", "argocd-server"));
    restore_upstream_controller(c);
}

/// The marks Helm puts on what it installs (issue 19 Medium 6): chart labels and the release
/// annotation.
const HELM_LABELS: [&str; 3] = [
    "helm.sh/chart=argo-cd-7.7.0",
    "app.kubernetes.io/managed-by=Helm",
    "app.kubernetes.io/instance=argo-cd",
];

/// Every object of namespace argocd (and the cluster-scoped ones of the install) with its
/// resourceVersion.
fn argocd_versions(c: &Cluster) -> Vec<String> {
    // Workloads: their generation, labels and when platform last applied to them (the
    // controller-manager keeps writing their status and rollout annotations after `kubectl set
    // image`, which is not a change of ours); the rest: their resourceVersion.
    let workloads = kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "get",
            "deployments,statefulsets",
            "-o",
            "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.generation} {.metadata.labels} platform@{.metadata.managedFields[?(@.manager==\"platform\")].time}{\"\\n\"}{end}",
        ],
    );
    let others = kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "get",
            "services,configmaps,secrets,serviceaccounts,roles,rolebindings,networkpolicies",
            "-o",
            "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}",
        ],
    );
    let mut v: Vec<String> = workloads
        .lines()
        .chain(others.lines())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Issue 19 Medium 6 and Low 9: a Helm release that keeps the upstream names in namespace argocd
/// (`fullnameOverride`), at another version, is found by Helm's marks and left alone: no object of
/// the namespace changes (workloads: generation, labels and platform's last apply; the rest:
/// resourceVersions), and bootstrap says what it found, not the pinned
/// version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_leaves_a_helm_release_with_upstream_names_alone() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    install_argocd(c);
    let _ = c.kubectl(&[
        "-n",
        "kube-system",
        "create",
        "configmap",
        "cluster-identity",
        "--from-literal=clusterName=ai-dev",
    ]);
    let base = serve_manifests(c).await;
    let g = Gitops::shipped(c, "ai-dev");
    let cache = tempfile::tempdir().unwrap();
    // The chart's server at its own version, every component marked as Helm's.
    kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "set",
            "image",
            "deployment/argocd-server",
            "argocd-server=quay.io/argoproj/argocd:v2.13.0",
        ],
    );
    kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "set",
            "image",
            "statefulset/argocd-application-controller",
            "argocd-application-controller=quay.io/argoproj/argocd:v2.13.0",
        ],
    );
    let workloads = ["deployments", "statefulsets"];
    for kind in workloads {
        let mut args = vec!["-n", "argocd", "label", kind, "--all", "--overwrite"];
        args.extend(HELM_LABELS);
        kubectl_ok(c, &args);
        kubectl_ok(
            c,
            &[
                "-n",
                "argocd",
                "annotate",
                kind,
                "--all",
                "--overwrite",
                "meta.helm.sh/release-name=argo-cd",
            ],
        );
    }
    let before = argocd_versions(c);

    let o = g
        .bootstrap(
            &format!("{base}/good/install.yaml"),
            cache.path(),
            "",
            &["--yes", "--timeout", "1m"],
        )
        .await;
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(
            "Argo CD v2.13.0 (installed by Helm, release argo-cd, namespace argocd; left alone)"
        ),
        "{err}"
    );
    assert!(!err.contains("✓ Argo CD v3.5.1"), "{err}");
    assert_eq!(argocd_versions(c), before, "{err}");
    let server = get_json(c, "deployment", "argocd", "argocd-server");
    let containers = server["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0]["image"], "quay.io/argoproj/argocd:v2.13.0");

    // Back to the upstream install for the other tests.
    for kind in workloads {
        let mut args = vec!["-n", "argocd", "label", kind, "--all"];
        let unlabel: Vec<String> = HELM_LABELS
            .iter()
            .map(|l| format!("{}-", l.split('=').next().unwrap()))
            .collect();
        args.extend(unlabel.iter().map(String::as_str));
        kubectl_ok(c, &args);
        kubectl_ok(
            c,
            &[
                "-n",
                "argocd",
                "annotate",
                kind,
                "--all",
                "meta.helm.sh/release-name-",
            ],
        );
    }
    install_argocd(c);
}

/// A kubeconfig for ServiceAccount default/`name` (a token user, no RBAC binding): the admin
/// kubeconfig with its user replaced.
fn token_kubeconfig(c: &Cluster, name: &str, dir: &Path) -> PathBuf {
    let _ = c.kubectl(&["-n", "default", "create", "serviceaccount", name]);
    let token = kubectl_ok(c, &["-n", "default", "create", "token", name]);
    let mut kc: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&c.kubeconfig).unwrap()).unwrap();
    for u in kc["users"].as_array_mut().unwrap() {
        u["user"] = serde_json::json!({"token": token.trim()});
    }
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

/// Issue 19 Medium 1: a user without RBAC gets the API server's refusal in words (message, reason,
/// code, what to check), never kube's Debug of the Status, from every cluster command; an invalid
/// object's 422 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refusals_are_plain_words() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    let g = Gitops::shipped(c, "rk-rbac");
    g.ok(&["root"]).await;
    let dir = tempfile::tempdir().unwrap();
    let nobody = token_kubeconfig(c, "rk-nobody", dir.path());
    // Bootstrap reads a 403 on the cluster identity as the target guard does (the kubeconfig's
    // cluster entry confirms the target), so its first refusal comes after the manifest: serve it.
    let manifest = format!("{}/good/install.yaml", serve_manifests(c).await);
    let debug = ["Status {", "Some(", "ListMeta", "ApiError:"];
    for args in [
        &["status"][..],
        &["pause", "qwen-cpu"][..],
        &["resume", "qwen-cpu"][..],
        &["up", "--allow-unpushed", "--timeout", "30s"][..],
        &["teardown", "--yes"][..],
        &["doctor"][..],
        &["bootstrap", "--dry-run"][..],
    ] {
        let mut cmd = g.repo.cmd();
        cmd.arg("--env")
            .arg(&g.env)
            .args(args)
            .env("PLATFORM_KUBECONFIG", &nobody)
            .env("PLATFORM_ARGOCD_URL", &manifest)
            .env("XDG_CACHE_HOME", dir.path())
            .env_remove("KUBECONFIG")
            .timeout(Duration::from_secs(120));
        let o = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let (out, err) = (stdout(&o), stderr(&o));
        // doctor turns every refusal into a FAIL line (exit 1); the others stop at the first (4).
        let code = if args[0] == "doctor" { 1 } else { 4 };
        assert_eq!(o.status.code(), Some(code), "{args:?}: {out}{err}");
        let text = format!("{out}{err}");
        assert!(
            text.contains("(Forbidden, HTTP 403)")
                && text.contains("system:serviceaccount:default:rk-nobody")
                && text.contains("`kubectl --kubeconfig ")
                && text.contains(" auth can-i "),
            "{args:?}: {text}"
        );
        for d in debug {
            assert!(!text.contains(d), "{args:?} printed {d:?}: {text}");
        }
    }

    // A 422: an object the API server finds invalid (a server-side dry run of it, so nothing is
    // written), through bootstrap's comparison.
    let bad = dir.path().join("invalid.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-root-ca.crt\n  namespace: default\ndata:\n  \"not a key!\": x\n",
    )
    .unwrap();
    let before = get_json(c, "configmap", "default", "kube-root-ca.crt");
    let o = g
        .platform(&[
            "bootstrap",
            "--dry-run",
            "--manifests",
            bad.to_str().unwrap(),
            "--insecure-skip-verify",
        ])
        .await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("is invalid") && err.contains("(Invalid, HTTP 422)"),
        "{err}"
    );
    for d in debug {
        assert!(!err.contains(d), "printed {d:?}: {err}");
    }
    let after = get_json(c, "configmap", "default", "kube-root-ca.crt");
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
}

// ---------------------------------------------------------------------------------------------
// `platform move`: the model keeps its stable route while its backend changes layer.

/// What the observer saw: every snapshot of the route whose two readings agreed, and every
/// moment the route weighted a backend that was not ready (or left the model out).
#[derive(Default)]
struct RouteLog {
    snapshots: usize,
    /// The route's matches and filters as first seen.
    path: Option<String>,
    splits: Vec<String>,
    violations: Vec<String>,
}

/// Whether the model's backend `service` in `ns` is ready, as the API shows it: raw vLLM's
/// Deployment available and not scaled to 0; KServe's ISVC Ready and not stopped.
async fn backend_ready(client: &kube::Client, ns: &str, service: &str) -> bool {
    use kube::api::{Api, DynamicObject};
    use kube::discovery::ApiResource;
    let (ar, name) = if let Some(isvc) = service.strip_suffix("-predictor") {
        let gvk =
            kube::api::GroupVersionKind::gvk("serving.kserve.io", "v1beta1", "InferenceService");
        (ApiResource::from_gvk(&gvk), isvc.to_string())
    } else {
        let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment");
        (ApiResource::from_gvk(&gvk), service.to_string())
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let Ok(Some(o)) = api.get_opt(&name).await else {
        return false;
    };
    let v = serde_json::to_value(&o).unwrap();
    if ar.kind == "Deployment" {
        v["spec"]["replicas"].as_i64().unwrap_or(0) > 0
            && v["status"]["availableReplicas"].as_i64().unwrap_or(0) > 0
    } else {
        v["metadata"]["annotations"]["serving.kserve.io/stop"] != "true"
            && v["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    }
}

/// The route's backends as (namespace, service, weight), and its matches and filters.
async fn route_backends(
    client: &kube::Client,
    name: &str,
) -> Option<(Vec<(String, String, i64)>, String)> {
    use kube::api::{Api, DynamicObject};
    let gvk = kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let ar = kube::discovery::ApiResource::from_gvk(&gvk);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "inference", &ar);
    let o = api.get_opt(name).await.ok()??;
    let v = serde_json::to_value(&o).unwrap();
    let rule = &v["spec"]["rules"][0];
    let backends = rule["backendRefs"]
        .as_array()?
        .iter()
        .map(|b| {
            (
                b["namespace"].as_str().unwrap_or("inference").to_string(),
                b["name"].as_str().unwrap_or_default().to_string(),
                b["weight"].as_i64().unwrap_or(1),
            )
        })
        .collect();
    Some((backends, format!("{} {}", rule["matches"], rule["filters"])))
}

/// Observe model `name`'s route every 100 ms until `stop` is set: each snapshot reads the route,
/// the readiness of every backend it weights, and the route again (a snapshot counts only when
/// both readings agree, so a shift between them is not mistaken for a violation).
fn observe_route(
    c: &'static Cluster,
    name: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<RouteLog> {
    tokio::spawn(async move {
        let client = c.client().await;
        let mut log = RouteLog::default();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            if let Some((before, path)) = route_backends(&client, name).await {
                let mut ready = Vec::new();
                for (ns, svc, w) in &before {
                    ready.push(*w == 0 || backend_ready(&client, ns, svc).await);
                }
                // The path match and its rewrite are the URL: a shift must never touch them.
                let first = log.path.get_or_insert_with(|| path.clone()).clone();
                if path != first {
                    log.violations
                        .push(format!("the route's matches/filters changed: {path}"));
                }
                let again = route_backends(&client, name).await.map(|(b, _)| b);
                if again.as_ref() == Some(&before) {
                    log.snapshots += 1;
                    let split = format!("{before:?}");
                    if log.splits.last() != Some(&split) {
                        log.splits.push(split.clone());
                    }
                    if before.iter().map(|b| b.2).sum::<i64>() == 0 {
                        log.violations.push(format!("no weight at all: {split}"));
                    }
                    for ((ns, svc, w), ok) in before.iter().zip(ready) {
                        if !ok {
                            log.violations
                                .push(format!("weight {w} on {ns}/{svc}, not ready: {split}"));
                        }
                    }
                }
            } else {
                log.violations.push("the route is gone".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        log
    })
}

/// The shipped ai-dev config with qwen-cpu's weights downloaded by its pods (a kubelet-less
/// cluster cannot exec into a staging pod), and llm-d off.
fn movable(c: &'static Cluster) -> Gitops {
    let cfg = common::shipped_config("REPO_URL").replacen(
        "    storage:\n      staged: true\n      dir: qwen",
        "    storage:\n      staged: false\n      dir: qwen",
        1,
    );
    assert!(cfg.contains("staged: false\n      dir: qwen"));
    let g = Gitops::new(c, "ai-dev", &cfg);
    // The user's config is committed (`platform move` commits only its own edits of it).
    let repo = git2::Repository::open(g.path()).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_path(Path::new("environments/ai-dev/config.yaml"))
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = repo.signature().unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(
        Some("HEAD"),
        &sig,
        &sig,
        "the environment's config",
        &tree,
        &parents,
    )
    .unwrap();
    g
}

/// Argo CD installed, the movable environment published, everything up (models synced).
async fn movable_up(c: &'static Cluster) -> Gitops {
    install_argocd(c);
    let g = movable(c);
    g.publish().await;
    g.argo_on();
    g.ok(&["up", "--sync-models", "--timeout", "4m"]).await;
    g
}

/// Teardown, then nothing left (seen by kubectl), Argo CD's stand-in off.
async fn teardown_clean(g: &Gitops) {
    g.ok(&[
        "teardown",
        "--yes",
        "--finalizer-timeout",
        "90s",
        "--release-timeout",
        "2m",
    ])
    .await;
    assert_nothing_left(g.cluster);
    g.argo_off();
}

/// `platform move` as a process killed once its stderr says step `step` began.
fn move_killed_at(g: &Gitops, args: &[&str], step: usize) {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("platform"));
    cmd.arg("--repo")
        .arg(g.path())
        .args(["--color", "never", "--env", &g.env])
        .args(args)
        .env("PLATFORM_KUBECONFIG", &g.cluster.kubeconfig)
        .env_remove("KUBECONFIG")
        .env_remove("PLATFORM_ENV")
        .env_remove("PLATFORM_REPO")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let want = format!("step {step}/");
    let mut seen = String::new();
    for line in std::io::BufReader::new(err).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(&want) {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the move ended before step {step}:\n{seen}"
    );
}

fn git_subjects(g: &Gitops) -> Vec<String> {
    let repo = git2::Repository::open(g.path()).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    walk.take(6)
        .map(|id| {
            let c = repo.find_commit(id.unwrap()).unwrap();
            c.summary().ok().flatten().unwrap_or_default().to_string()
        })
        .collect()
}

/// Done when (issue 22): qwen-cpu moves KServe → raw vLLM and back on the real control plane,
/// reachable at the same route throughout (never weighted onto a backend that is not ready),
/// the config's comments kept, two readable commits per move; the move back is killed at two
/// of its steps and re-run to completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_keeps_the_route_on_ready_backends_between_layers() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    let g = movable_up(c).await;
    let cfg_before = g.repo.read("environments/ai-dev/config.yaml");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let observer = observe_route(c, "qwen-cpu", stop.clone());
    let o = g
        .ok(&[
            "move",
            "qwen-cpu",
            "--to",
            "raw-vllm",
            "--no-smoke",
            "--timeout",
            "3m",
        ])
        .await;
    eprintln!("{}", stderr(&o));
    assert!(
        stderr(&o).contains("qwen-cpu moved to raw-vllm"),
        "{}",
        stderr(&o)
    );

    // config.yaml: edited in place, the comments kept.
    let cfg = g.repo.read("environments/ai-dev/config.yaml");
    assert!(
        cfg.contains("  - name: qwen-cpu\n    app: qwen-cpu-raw-vllm\n    layer: raw-vllm\n"),
        "{cfg}"
    );
    assert!(!cfg.contains("moveTo"));
    for line in cfg_before
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
    {
        assert!(cfg.contains(line), "comment lost: {line}");
    }
    let subjects = git_subjects(&g);
    assert!(
        subjects[0].contains("move qwen-cpu to raw-vllm (2/2)"),
        "{subjects:?}"
    );
    assert!(
        subjects[1].contains("move qwen-cpu to raw-vllm (1/2)"),
        "{subjects:?}"
    );

    // The cluster, seen by kubectl: the route on raw vLLM alone, KServe's copy pruned.
    let route = get_json(c, "httproute", "inference", "qwen-cpu");
    let refs = route["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs[0]["namespace"], "serving");
    assert_eq!(refs[0]["name"], "qwen-cpu");
    eventually("KServe's qwen-cpu pruned", Duration::from_secs(60), || {
        c.names("inferenceservice", Some("kserve"))
            .is_empty()
            .then_some(())
    })
    .await;
    assert!(c
        .names("applications", Some("argocd"))
        .contains(&"application.argoproj.io/qwen-cpu-raw-vllm".to_string()));
    assert!(!c
        .names("applications", Some("argocd"))
        .contains(&"application.argoproj.io/qwen-cpu".to_string()));
    let d = get_json(c, "deployment", "serving", "qwen-cpu");
    assert_eq!(d["status"]["availableReplicas"], 1, "{}", d["status"]);

    // And back to KServe, killed as each step after the first commit begins (sync, wait, shift,
    // pause, second commit), re-run each time: every run picks up where the last one stopped.
    let back = ["move", "qwen-cpu", "--to", "kserve", "--no-smoke"];
    move_killed_at(&g, &back, 3);
    assert!(g
        .repo
        .read("environments/ai-dev/config.yaml")
        .contains("moveTo: kserve"));
    for step in 4..=7 {
        move_killed_at(&g, &back, step);
    }
    let o = g
        .ok(&[
            "move",
            "qwen-cpu",
            "--to",
            "kserve",
            "--no-smoke",
            "--timeout",
            "3m",
        ])
        .await;
    assert!(
        stderr(&o).contains("qwen-cpu moved to kserve"),
        "{}",
        stderr(&o)
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let log = observer.await.unwrap();
    eprintln!(
        "route splits seen ({} snapshots): {:?}",
        log.snapshots, log.splits
    );
    assert!(
        log.violations.is_empty(),
        "{:?}\nsplits: {:?}",
        log.violations,
        log.splits
    );
    assert!(log.snapshots > 20, "{} snapshots", log.snapshots);
    // The observer saw the route carry both backends, then one.
    assert!(
        log.splits
            .iter()
            .any(|s| s.contains("\"serving\"") && s.contains("\"kserve\"")),
        "{:?}",
        log.splits
    );

    let cfg = g.repo.read("environments/ai-dev/config.yaml");
    assert!(
        cfg.contains("    app: qwen-cpu-kserve\n    layer: kserve\n"),
        "{cfg}"
    );
    // Five interruptions, still exactly two commits for the move back.
    let subjects = git_subjects(&g);
    assert!(
        subjects[0].contains("move qwen-cpu to kserve (2/2)"),
        "{subjects:?}"
    );
    assert!(
        subjects[1].contains("move qwen-cpu to kserve (1/2)"),
        "{subjects:?}"
    );
    assert!(
        subjects[2].contains("move qwen-cpu to raw-vllm (2/2)"),
        "{subjects:?}"
    );
    // A re-run of a finished move says so and changes nothing.
    let o = g.ok(&["move", "qwen-cpu", "--to", "kserve"]).await;
    assert!(
        stderr(&o).contains("the move is complete"),
        "{}",
        stderr(&o)
    );
    assert_eq!(git_subjects(&g), subjects);
    let refs = get_json(c, "httproute", "inference", "qwen-cpu")["spec"]["rules"][0]["backendRefs"]
        .clone();
    assert_eq!(refs.as_array().unwrap().len(), 1, "{refs}");
    assert_eq!(refs[0]["name"], "qwen-cpu-predictor");
    let st = json_of(&stdout(&g.ok(&["status", "-o", "json"]).await));
    let m = &models_by_name(&st)["qwen-cpu"];
    assert_eq!(m["layer"], "kserve", "{m}");
    assert_eq!(m["route"], "kserve 100", "{m}");

    teardown_clean(&g).await;
}

/// A smoke that fails (the real API server has no kubelet to port-forward to) stops the move
/// with the route untouched and says how to roll back; `--rollback` leaves the old backend
/// serving alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_smoke_stops_the_move_and_rollback_keeps_the_old_backend() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    let g = movable_up(c).await;

    // Someone's uncommitted change to config.yaml is never committed by a move: refused, nothing
    // written, the change still there.
    let cfg_path = "environments/ai-dev/config.yaml";
    let committed = g.repo.read(cfg_path);
    let edited = committed.replacen("maxModelLen: 16384", "maxModelLen: 8192", 1);
    assert_ne!(edited, committed);
    g.repo.write(cfg_path, &edited);
    let o = g
        .platform(&["move", "qwen-cpu", "--to", "raw-vllm", "--no-smoke"])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has changes that are not committed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(g.repo.read(cfg_path), edited);
    assert!(!git_subjects(&g)[0].contains("move qwen-cpu"));
    g.repo.write(cfg_path, &committed);

    let o = g
        .platform(&[
            "move",
            "qwen-cpu",
            "--to",
            "raw-vllm",
            "--timeout",
            "3m",
            "--smoke-timeout",
            "10s",
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("smoke of qwen-cpu on raw-vllm failed"),
        "{err}"
    );
    assert!(err.contains("platform move qwen-cpu --rollback"), "{err}");
    let refs = get_json(c, "httproute", "inference", "qwen-cpu")["spec"]["rules"][0]["backendRefs"]
        .clone();
    for r in refs.as_array().unwrap() {
        let w = r["weight"].as_i64().unwrap();
        if r["namespace"] == "serving" {
            assert_eq!(w, 0, "{refs}");
        } else {
            assert_eq!(w, 100, "{refs}");
        }
    }
    let st = json_of(&stdout(&g.ok(&["status", "-o", "json"]).await));
    let rows: Vec<&Value> = st["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "qwen-cpu")
        .collect();
    assert_eq!(rows.len(), 2, "both declarations: {rows:?}");

    let o = g
        .ok(&["move", "qwen-cpu", "--rollback", "--timeout", "3m"])
        .await;
    assert!(
        stderr(&o).contains("on kserve only again"),
        "{}",
        stderr(&o)
    );
    assert!(!g
        .repo
        .read("environments/ai-dev/config.yaml")
        .contains("moveTo"));
    assert!(git_subjects(&g)[0].contains("roll back the move of qwen-cpu to raw-vllm"));
    eventually(
        "the raw-vLLM declaration pruned",
        Duration::from_secs(60),
        || {
            c.names("deployments", Some("serving"))
                .iter()
                .all(|d| !d.ends_with("/qwen-cpu"))
                .then_some(())
        },
    )
    .await;
    let refs = get_json(c, "httproute", "inference", "qwen-cpu")["spec"]["rules"][0]["backendRefs"]
        .clone();
    assert_eq!(refs.as_array().unwrap().len(), 1, "{refs}");
    assert_eq!(refs[0]["name"], "qwen-cpu-predictor");
    assert!(backend_ready(&c.client().await, "kserve", "qwen-cpu-predictor").await);

    teardown_clean(&g).await;
}

/// `--keep-old`: the old backend stays declared and paused, and git's route agrees with the live
/// one (`moveShare: 100`), so a sync of the routing app cannot send traffic back to it; a later
/// `move` without it removes the old declaration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_old_records_the_share_in_git_and_a_later_move_removes_the_old() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    let g = movable_up(c).await;

    let o = g
        .ok(&[
            "move",
            "qwen-cpu",
            "--to",
            "raw-vllm",
            "--no-smoke",
            "--keep-old",
            "--timeout",
            "3m",
        ])
        .await;
    assert!(
        stderr(&o).contains("kserve is paused and still declared"),
        "{}",
        stderr(&o)
    );
    let cfg = g.repo.read("environments/ai-dev/config.yaml");
    assert!(
        cfg.contains("moveTo: raw-vllm") && cfg.contains("moveShare: 100"),
        "{cfg}"
    );
    let route = g
        .repo
        .read("clusters/ai-dev/serving/routing/route-qwen-cpu.yaml");
    assert!(route.contains("name: qwen-cpu-predictor\n          namespace: kserve\n          port: 80\n          weight: 0"), "{route}");
    assert!(route.contains("name: qwen-cpu\n          namespace: serving\n          port: 80\n          weight: 100"), "{route}");
    let isvc = get_json(c, "inferenceservice", "kserve", "qwen-cpu");
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/stop"],
        "true"
    );

    let o = g
        .ok(&[
            "move",
            "qwen-cpu",
            "--to",
            "raw-vllm",
            "--no-smoke",
            "--timeout",
            "3m",
        ])
        .await;
    assert!(
        stderr(&o).contains("qwen-cpu moved to raw-vllm"),
        "{}",
        stderr(&o)
    );
    let cfg = g.repo.read("environments/ai-dev/config.yaml");
    assert!(
        !cfg.contains("moveShare") && !cfg.contains("moveTo"),
        "{cfg}"
    );
    eventually("KServe's qwen-cpu pruned", Duration::from_secs(60), || {
        c.names("inferenceservice", Some("kserve"))
            .is_empty()
            .then_some(())
    })
    .await;

    teardown_clean(&g).await;
}

// ---------------------------------------------------------------------------------------------
// `platform rollback` (issue 23): a past render commit restored as a new commit, pushed, synced.

fn head_of(g: &Gitops) -> git2::Oid {
    git2::Repository::open(g.path())
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap()
}

fn tree_entry(g: &Gitops, commit: git2::Oid, path: &str) -> git2::Oid {
    let repo = git2::Repository::open(g.path()).unwrap();
    let c = repo.find_commit(commit).unwrap();
    let id = c.tree().unwrap().get_path(Path::new(path)).unwrap().id();
    id
}

/// Render and push A, then B (a model added), bring both up; roll back to A with --push: the new
/// commit's inputs and tree are A's, it is on the remote, and the cluster converges: Argo CD
/// prunes the added model's Application and the root apps report the rollback commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_a_render_commit_pushes_it_and_the_cluster_converges() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    install_argocd(c);
    let g = movable(c);
    g.publish().await;
    g.argo_on();
    g.ok(&["up", "--timeout", "4m"]).await;
    let a = head_of(&g);

    let cfg = g.repo.read("environments/ai-dev/config.yaml") + common::EXTRA_MODEL;
    g.repo.env("ai-dev", &cfg);
    g.publish().await;
    let b = head_of(&g);
    g.ok(&["up", "--timeout", "4m"]).await;
    let apps = || c.names("applications", Some("argocd"));
    eventually(
        "Application qwen-extra (B's model)",
        Duration::from_secs(60),
        || {
            apps()
                .iter()
                .any(|n| n.ends_with("qwen-extra"))
                .then_some(())
        },
    )
    .await;

    let o = g.ok(&["rollback", "--dry-run"]).await;
    assert!(
        stdout(&o).contains("model removed: qwen-extra"),
        "{}",
        stdout(&o)
    );
    assert_eq!(head_of(&g), b, "the dry run committed");

    let o = g.ok(&["rollback", "--push", "--timeout", "4m"]).await;
    let e = stderr(&o);
    assert!(e.contains("rolled back ai-dev to"), "{e}");
    assert!(e.contains("pushed to"), "{e}");
    assert!(e.contains("are Synced and Healthy"), "{e}");
    let new = head_of(&g);
    assert_ne!(new, b);
    for p in [
        "clusters/ai-dev",
        "environments/ai-dev/config.yaml",
        "catalog",
    ] {
        assert_eq!(tree_entry(&g, new, p), tree_entry(&g, a, p), "{p}");
    }
    let remote = git2::Repository::open_bare(g.remote.path()).unwrap();
    assert_eq!(
        remote.find_reference("refs/heads/main").unwrap().target(),
        Some(new),
        "the rollback is not on the remote"
    );
    // The cluster converges on A: the added model's Application is pruned, the serving layer's
    // root app is at the rollback commit.
    eventually(
        "Application qwen-extra pruned",
        Duration::from_secs(90),
        || (!apps().iter().any(|n| n.ends_with("qwen-extra"))).then_some(()),
    )
    .await;
    let root = get_json(c, "application", "argocd", "ai-dev-serving");
    assert_eq!(
        root["status"]["sync"]["revision"],
        new.to_string().as_str(),
        "{}",
        root["status"]
    );
    teardown_clean(&g).await;
}

// ---------------------------------------------------------------------------------------------
// diff --cluster: what Argo CD would change, against the real API server's dry run.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_cluster_shows_what_argocd_would_change() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    install_argocd(c);
    let g = Gitops::shipped(c, "ai-dev");
    g.publish().await;
    g.argo_on();
    g.ok(&["up", "--sync-models", "--timeout", "4m"]).await;

    // In sync: exit 0, nothing on stdout.
    let o = g.platform(&["diff", "--cluster"]).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).trim().is_empty(), "{}", stdout(&o));
    assert!(stderr(&o).contains("in sync"), "{}", stderr(&o));

    // A paused raw vLLM model (replicas 0, owned by pause/resume) is no difference.
    g.ok(&["pause", "qwen-gpu", "--wait", "--timeout", "2m"])
        .await;
    assert_eq!(
        get_json(c, "deployment", "serving", "qwen-gpu")["spec"]["replicas"],
        0
    );
    let o = g.platform(&["diff", "--cluster", "qwen-gpu"]).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    // A model's args changed in config.yaml: exit 1, the change shown in its Deployment.
    let cfg = g
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("maxModelLen: 16384", "maxModelLen: 8192");
    g.repo.env("ai-dev", &cfg);
    let o = g.platform(&["diff", "--cluster"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("# Deployment serving/qwen-gpu would change"),
        "{out}"
    );
    assert!(out.contains("---") && out.contains("+++"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with('-') && l.contains("16384")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with('+') && l.contains("8192")),
        "{out}"
    );
    // Only that object; replicas (0 live, 1 rendered) stays ignored.
    assert!(!out.contains("replicas"), "{out}");
    assert!(
        stderr(&o).contains("1 object(s) differ from the cluster: 1 would change"),
        "{}",
        stderr(&o)
    );
    let v = json_of(&stdout(
        &g.platform(&["diff", "--cluster", "qwen-gpu", "-o", "json"])
            .await,
    ));
    assert_eq!(v["identical"], false);
    assert_eq!(v["changed"], 1, "{v}");
    assert_eq!(v["objects"][0]["kind"], "Deployment");
    assert_eq!(v["objects"][0]["app"], "qwen-gpu");
    // The other model's app is untouched by the change.
    let o = g.platform(&["diff", "--cluster", "qwen-cpu"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // A model removed from config.yaml: what Argo CD tracks for it would be pruned (its
    // Application from the root app, its route from the routing app).
    let start = cfg.find("  - name: qwen-cpu").unwrap();
    let end = cfg.find("  - name: qwen-gpu").unwrap();
    g.repo
        .env("ai-dev", &format!("{}{}", &cfg[..start], &cfg[end..]));
    let o = g.platform(&["diff", "--cluster"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("# Application argocd/qwen-cpu would be pruned"),
        "{out}"
    );
    assert!(out.contains("+++ /dev/null"), "{out}");
    assert!(stderr(&o).contains("would be pruned"), "{}", stderr(&o));
    // Back, so that teardown knows every model.
    g.repo.env("ai-dev", &cfg);

    g.ok(&[
        "teardown",
        "--yes",
        "--finalizer-timeout",
        "90s",
        "--release-timeout",
        "2m",
    ])
    .await;
    g.argo_off();
}

// ---------------------------------------------------------------------------------------------
// logs / port-forward: the error paths (this tier has no kubelet to serve a log or a forward).

const LOGS_ENV: &str = "cluster:
  name: ai-dev
repoURL: REPO_URL
repoBranch: main
features: { raw-vllm: true, kserve: false, llm-d: false }
models:
  - name: rk-pending
    layer: raw-vllm
    namespace: rk-logs
    source: hf://Qwen/Qwen2.5-7B-Instruct
    preset: vllm-gpu
    gpus: 8
    tensorParallelSize: 8
  - name: rk-paused
    layer: raw-vllm
    namespace: rk-logs
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    preset: vllm-cpu
    resources:
      requests: { cpu: \"2\", memory: 6Gi }
      limits: { cpu: \"2\", memory: 8Gi }
";

/// A model whose pod the real scheduler cannot place gives the scheduler's reason; a paused one
/// says it is paused and how to resume; a model not synced says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_port_forward_give_the_reason_there_is_no_pod() {
    let c = realkube::cluster();
    let g = Gitops::new(c, "rk-logs", LOGS_ENV);
    g.ok(&["root"]).await;
    let o = g.platform(&["logs", "rk-pending"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not in the cluster yet"),
        "{}",
        stderr(&o)
    );
    let _ = c.kubectl(&["create", "namespace", "rk-logs"]);
    for m in ["rk-pending", "rk-paused"] {
        let dir = g.tree_dir().join("models").join(m);
        kubectl_ok(c, &["apply", "--server-side", "-f", dir.to_str().unwrap()]);
    }
    eventually(
        "the scheduler to refuse rk-pending",
        Duration::from_secs(60),
        || {
            let m = model_status(&g, "rk-pending");
            m["reasons"]
                .to_string()
                .contains("Insufficient nvidia.com/gpu")
                .then_some(())
        },
    )
    .await;
    for cmd in ["logs", "port-forward"] {
        let o = g.platform(&[cmd, "rk-pending"]).await;
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("pod rk-logs/rk-pending-") && err.contains("has not started"),
            "{cmd}: {err}"
        );
        assert!(err.contains("Insufficient nvidia.com/gpu"), "{cmd}: {err}");
    }
    g.ok(&["pause", "rk-paused", "--wait", "--timeout", "1m"])
        .await;
    for cmd in ["logs", "port-forward"] {
        let o = g.platform(&[cmd, "rk-paused"]).await;
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("model rk-paused is paused")
                && stderr(&o).contains("`platform resume rk-paused --wait`"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    let _ = c.kubectl(&["delete", "namespace", "rk-logs", "--wait=false"]);
}

// ---------------------------------------------------------------------------------------------
// argocd ui: the server found by its labels, the URL, the password only on request.

impl Gitops {
    /// The binary as a child process (stdout and stderr piped), to read while it runs and signal.
    fn spawn(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("platform"))
            .args(["--repo", self.path().to_str().unwrap(), "--env", &self.env])
            .args(["--color", "never"])
            .args(args)
            .env("PLATFORM_KUBECONFIG", &self.cluster.kubeconfig)
            .env_remove("KUBECONFIG")
            .env_remove("PLATFORM_ENV")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Read the child's stderr until `done` holds for what was read (at most 60 s); then SIGINT it and
/// return its exit code, stdout and the whole stderr.
async fn interrupt_when(
    mut child: std::process::Child,
    done: impl Fn(&str) -> bool + Send + 'static,
) -> (Option<i32>, String, String) {
    use std::io::Read;
    let mut err = child.stderr.take().unwrap();
    let read = tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !done(&seen) {
            let n = err.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        (err, seen)
    });
    let (mut err, mut seen) = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the command said nothing in time")
        .unwrap();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        (child.wait_with_output().unwrap(), rest)
    })
    .await
    .unwrap();
    seen.push_str(&out.1);
    (
        out.0.status.code(),
        String::from_utf8_lossy(&out.0.stdout).into_owned(),
        seen,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_ui_forwards_to_the_server_and_shows_the_password_only_on_request() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    install_argocd(c);
    let g = Gitops::shipped(c, "ai-dev");
    eventually("argocd-server to be ready", Duration::from_secs(90), || {
        let v = json_of(&kubectl_ok(
            c,
            &[
                "-n",
                "argocd",
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=argocd-server",
                "-o",
                "json",
            ],
        ));
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| {
                p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .then_some(())
    })
    .await;
    let password = format!("rk-admin-{}-SECRET", std::process::id());
    let _ = c.kubectl(&[
        "-n",
        "argocd",
        "delete",
        "secret",
        "argocd-initial-admin-secret",
        "--ignore-not-found",
    ]);
    kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "create",
            "secret",
            "generic",
            "argocd-initial-admin-secret",
            &format!("--from-literal=password={password}"),
        ],
    );

    // --show-password -o json: the URL and the password on stdout, never on stderr.
    let child = g.spawn(&[
        "argocd",
        "ui",
        "--port",
        "0",
        "--show-password",
        "-o",
        "json",
    ]);
    let (code, out, err) = interrupt_when(child, |e| e.contains("Ctrl-C to stop")).await;
    assert_eq!(code, Some(130), "{out}{err}");
    let v = json_of(&out);
    assert!(
        v["url"].as_str().unwrap().starts_with("https://127.0.0.1:"),
        "{v}"
    );
    assert_eq!(v["password"], password.as_str(), "{v}");
    assert_eq!(v["username"], "admin");
    assert_eq!(v["namespace"], "argocd");
    assert!(
        v["pod"].as_str().unwrap().starts_with("argocd-server-"),
        "{v}"
    );
    assert!(!err.contains(&password), "{err}");
    assert!(err.contains("Argo CD UI: https://127.0.0.1:"), "{err}");

    // Without --show-password: no password anywhere, and how to get it.
    let child = g.spawn(&["argocd", "ui", "--port", "0"]);
    let (code, out, err) = interrupt_when(child, |e| e.contains("Ctrl-C to stop")).await;
    assert_eq!(code, Some(130), "{out}{err}");
    assert!(
        !out.contains(&password) && !err.contains(&password),
        "{out}{err}"
    );
    assert!(out.trim().is_empty(), "{out}");
    assert!(err.contains("--show-password"), "{err}");

    // The Secret deleted (the password was changed): said so.
    kubectl_ok(
        c,
        &[
            "-n",
            "argocd",
            "delete",
            "secret",
            "argocd-initial-admin-secret",
        ],
    );
    let child = g.spawn(&["argocd", "ui", "--port", "0", "--show-password"]);
    let (code, out, err) = interrupt_when(child, |e| e.contains("Ctrl-C to stop")).await;
    assert_eq!(code, Some(130), "{out}{err}");
    assert!(out.trim().is_empty(), "{out}");
    assert!(
        err.contains("argocd-initial-admin-secret does not exist"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// bootstrap --uninstall: refused while Applications exist, then everything bootstrap installed goes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_uninstall_refuses_while_apps_exist_then_removes_what_it_installed() {
    let c = realkube::cluster();
    let _x = c.exclusive().await;
    uninstall_argocd(c);
    let base = serve_manifests(c).await;
    let good = format!("{base}/good/install.yaml");
    let g = Gitops::shipped(c, "ai-dev");
    let cache = tempfile::tempdir().unwrap();
    let o = g.bootstrap(&good, cache.path(), "", &["--yes"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    g.publish().await;
    g.argo_on();
    g.ok(&["up", "--timeout", "4m"]).await;

    // Applications exist: refused, with the fix, nothing deleted.
    let o = g
        .bootstrap(&good, cache.path(), "", &["--uninstall", "--yes"])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("Application(s)") && err.contains("`platform teardown`"),
        "{err}"
    );
    assert!(err.contains("nothing was deleted"), "{err}");
    assert!(exists(c, "Deployment", "argocd-server"));

    g.ok(&[
        "teardown",
        "--yes",
        "--finalizer-timeout",
        "90s",
        "--release-timeout",
        "2m",
    ])
    .await;
    g.argo_off();

    // The dry run lists what goes and deletes nothing.
    let o = g
        .bootstrap(&good, cache.path(), "", &["--uninstall", "--dry-run"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "delete    Deployment argocd/argocd-server",
        "delete    ConfigMap argocd/argocd-cm",
        "delete    Secret argocd/argocd-redis",
        "delete    CustomResourceDefinition applications.argoproj.io",
        "delete    Namespace argocd",
    ] {
        assert!(out.contains(want), "{want}:\n{out}");
    }
    assert!(!out.contains("cluster-identity"), "{out}");
    assert!(!out.contains("blocks"), "{out}");
    assert!(exists(c, "Deployment", "argocd-server"));

    // A Secret bootstrap did not install (another cluster's credentials): deleting the namespace
    // would delete it. The dry run names it; the uninstall refuses and deletes nothing.
    let (ok, _, err) = c.kubectl(&[
        "-n",
        "argocd",
        "create",
        "secret",
        "generic",
        "user-cluster",
        "--from-literal=server=https://example.invalid",
    ]);
    assert!(ok, "{err}");
    let o = g
        .bootstrap(&good, cache.path(), "", &["--uninstall", "--dry-run"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("blocks    Secret argocd/user-cluster"),
        "{}",
        stdout(&o)
    );
    let o = g
        .bootstrap(&good, cache.path(), "", &["--uninstall", "--yes"])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("Secret argocd/user-cluster") && err.contains("nothing was deleted"),
        "{err}"
    );
    assert!(exists(c, "Deployment", "argocd-server"));
    let (ok, _, err) = c.kubectl(&["-n", "argocd", "delete", "secret", "user-cluster"]);
    assert!(ok, "{err}");

    // Without a terminal and without --yes: refused.
    let o = g.bootstrap(&good, cache.path(), "", &["--uninstall"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    assert!(exists(c, "Deployment", "argocd-server"));

    let o = g
        .bootstrap(&good, cache.path(), "", &["--uninstall", "--yes"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("Argo CD removed"), "{}", stderr(&o));
    let (ok, out, err) = c.kubectl(&[
        "get",
        "namespace",
        "argocd",
        "--ignore-not-found",
        "-o",
        "name",
    ]);
    assert!(ok, "{err}");
    assert!(out.trim().is_empty(), "namespace argocd left: {out}");
    for (kind, name) in manifest_objects(c) {
        if kind.starts_with("Cluster") || kind == "CustomResourceDefinition" {
            let (ok, out, err) =
                c.kubectl(&["get", &kind, &name, "--ignore-not-found", "-o", "name"]);
            assert!(ok, "{err}");
            assert!(out.trim().is_empty(), "{kind} {name} left");
        }
    }
    assert!(identity_recorded(c), "the cluster identity must stay");

    // A second run has nothing to do.
    let o = g
        .bootstrap(&good, cache.path(), "", &["--uninstall", "--yes"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));

    // Leave the tier as the other tests expect it: the CRDs and an Argo CD.
    install_argocd(c);
}
