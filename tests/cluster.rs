//! Cluster commands against the test API server (real Kubernetes REST over HTTP on loopback, with
//! scripted Argo CD / KServe / Deployment / Gateway / PVC controllers): the binary runs as a user
//! runs it, with a kubeconfig pointing at the server.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::apiserver;
mod common;
use platform_testkit::hub;
use platform_testkit::operators;

use std::time::Duration;

use apiserver::{AppOutcome, Options, TestApiServer};
use common::apienv::{run, Env};
use common::{stderr, stdout, TempRepo};
use serde_json::{json, Value};

/// A server whose identity is `cluster`, the shipped ai-dev environment rendered, and a kubeconfig.
async fn env_with(cluster: &str, opts: Options) -> Env {
    let server = TestApiServer::start(Options {
        cluster_name: cluster.into(),
        ..opts
    })
    .await;
    Env::new(server, TempRepo::new()).await
}

async fn env() -> Env {
    env_with("ai-dev", Options::default()).await
}

impl Env {
    /// Create the child Applications as the root apps would when Argo CD syncs them from git.
    fn seed_child_apps(&self) {
        for (path, text) in self.repo.tree("clusters/ai-dev/apps") {
            let v: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            self.server.put(v).unwrap();
        }
    }

    fn writes(&self) -> Vec<String> {
        self.server
            .request_log()
            .into_iter()
            .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
            .map(|r| format!("{} {} {}", r.verb, r.resource, r.name))
            .collect()
    }
}

/// The raw-vLLM Deployment qwen-gpu runs `replicas` again and no longer remembers a paused count.
fn assert_resumed_to(e: &Env, replicas: i64) {
    let dep = e
        .server
        .get("apps/v1", "Deployment", "serving", "qwen-gpu")
        .unwrap();
    assert_eq!(dep["spec"]["replicas"], replicas, "{dep}");
    assert!(
        dep["metadata"]["annotations"]
            .get("platform.ai/paused-replicas")
            .is_none(),
        "{dep}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cluster_is_refused_before_any_write() {
    let e = env_with("prod-cluster", Options::default()).await;
    e.server.clear_request_log();
    for args in [
        &["up", "--allow-unpushed"][..],
        &["pause", "qwen-cpu"][..],
        &["teardown", "--yes"][..],
    ] {
        let o = e.platform(args).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("wrong cluster"), "{}", stderr(&o));
        assert!(stderr(&o).contains("prod-cluster"), "{}", stderr(&o));
    }
    assert!(
        e.writes().is_empty(),
        "writes against the wrong cluster: {:?}",
        e.writes()
    );
    e.server.shutdown().await;
}

/// On a cluster that records no identity (and whose kubeconfig cluster entry names another), the
/// commands that only read go on with a warning, those that write refuse; both say how to record
/// the identity aimed at the target the config selects (kubeconfig and context, not the global
/// context) and that `platform bootstrap` records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecorded_identity_warns_readers_and_refuses_writers() {
    let e = env().await;
    let cfg = e.repo.read("environments/ai-dev/config.yaml").replacen(
        "  name: ai-dev ",
        "  name: prod-eu ",
        1,
    );
    assert!(cfg.contains("name: prod-eu"));
    e.repo.write("environments/ai-dev/config.yaml", &cfg);
    let o = run(&e.repo, &["root", "--profile", "full"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let client =
        kube::Client::try_from(kube::Config::new(e.server.url().parse().unwrap())).unwrap();
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client, "kube-system");
    cms.delete("cluster-identity", &Default::default())
        .await
        .unwrap();
    let kc = e.kubeconfig.to_str().unwrap();
    let kubectl = format!(
        "`kubectl --kubeconfig {kc} --context ai-dev -n kube-system create configmap \
         cluster-identity --from-literal=clusterName=prod-eu`"
    );
    e.server.clear_request_log();
    for args in [
        &["doctor"][..],
        &["status"][..],
        &["wait", "--timeout", "5s"][..],
    ] {
        let o = e.platform(args).await;
        let err = stderr(&o);
        assert!(
            err.contains("warning: cannot confirm that the target is cluster `prod-eu`"),
            "{args:?}: {err}"
        );
        assert!(err.contains("this command only reads"), "{args:?}: {err}");
        assert!(err.contains(&kubectl), "{args:?}: {err}");
        assert!(err.contains("`platform bootstrap --env ai-dev`"), "{err}");
        assert!(!err.contains("nothing was changed"), "{args:?}: {err}");
    }
    // Even under -q the warning is printed.
    let o = e.platform(&["status", "-q"]).await;
    assert!(
        stderr(&o).contains("warning: cannot confirm"),
        "{}",
        stderr(&o)
    );
    for args in [
        &["up", "--allow-unpushed"][..],
        &["pause", "qwen-cpu"][..],
        &["teardown", "--yes"][..],
    ] {
        let o = e.platform(args).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("error: cannot confirm that the target is cluster `prod-eu`"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&kubectl), "{args:?}: {err}");
        assert!(err.contains("`platform bootstrap --env ai-dev`"), "{err}");
    }
    // (doctor asks SelfSubjectAccessReviews: questions, not writes)
    let writes: Vec<String> = e
        .writes()
        .into_iter()
        .filter(|w| !w.contains("selfsubjectaccessreviews"))
        .collect();
    assert!(writes.is_empty(), "writes: {writes:?}");
    // A recorded identity that names another cluster still refuses the readers.
    e.server
        .put(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster-identity", "namespace": "kube-system"},
            "data": {"clusterName": "ai-dev"}}))
        .unwrap();
    for args in [&["doctor"][..], &["status"][..]] {
        let o = e.platform(args).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("wrong cluster"), "{}", stderr(&o));
    }
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_api_is_refused_quickly() {
    let repo = TempRepo::new();
    let kc = repo.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters: [{name: ai-dev, cluster: {server: 'http://127.0.0.1:9'}}]\ncontexts: [{name: ai-dev, context: {cluster: ai-dev, user: u}}]\nusers: [{name: u, user: {}}]\ncurrent-context: ai-dev\n",
    )
    .unwrap();
    let o = run(&repo, &["status", "--kubeconfig", kc.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("unreachable"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_applies_roots_syncs_manual_apps_and_waits_wave_by_wave() {
    let e = env().await;
    e.seed_child_apps();
    let o = e
        .platform(&[
            "up",
            "--allow-unpushed",
            "--sync-models",
            "--timeout",
            "60s",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("target: kubeconfig"), "{err}");
    assert!(err.contains("AppProject argocd/ai-dev created"), "{err}");
    assert!(
        err.contains("wave 0 of layer platform: cert-manager"),
        "{err}"
    );
    // Field manager and SSA.
    let log = e.server.request_log();
    let applies: Vec<_> = log.iter().filter(|r| r.verb == "apply").collect();
    assert!(
        applies
            .iter()
            .any(|r| r.resource == "appprojects" && r.query.contains("fieldManager=platform")),
        "{applies:?}"
    );
    assert!(applies
        .iter()
        .any(|r| r.resource == "applications" && r.name == "ai-dev-serving"));
    // The manual model app got an operation written by platform, tagged as ours.
    let app = e
        .server
        .get("argoproj.io/v1alpha1", "Application", "argocd", "qwen-cpu")
        .unwrap();
    assert_eq!(
        app.pointer("/status/operationState/phase")
            .and_then(Value::as_str),
        Some("Succeeded"),
        "{app}"
    );
    let op = app.pointer("/status/operationState/operation").unwrap();
    assert_eq!(
        op.pointer("/info/0/name").and_then(Value::as_str),
        Some("platform"),
        "{op}"
    );
    e.server.shutdown().await;
}

/// The column at which `word` starts in `line`.
fn column_of(line: &str, word: &str) -> usize {
    line.find(word)
        .unwrap_or_else(|| panic!("{word} not in {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_up_say_things_once_and_plainly() {
    let e = env().await;
    // Nothing in the cluster yet: the apps' shared message is said once, empty tables say so.
    let o = e.platform(&["status"]).await;
    let out = stdout(&o);
    assert_eq!(
        out.matches("not in the cluster (apply with `platform up`")
            .count(),
        1,
        "{out}"
    );
    assert!(out.contains("  [1] not in the cluster"), "{out}");
    assert!(out.contains("no model PVCs in the cluster"), "{out}");
    assert!(!out.contains("?/"), "{out}");

    // up: created the first time, unchanged the second; one line per app that is done; the total.
    e.seed_child_apps();
    let up = ["up", "--allow-unpushed", "--timeout", "60s"];
    let o = e.platform(&up).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("AppProject argocd/ai-dev created"), "{err}");
    assert!(err.contains("up took "), "{err}");
    let o = e.platform(&up).await;
    let err = stderr(&o);
    assert!(err.contains("AppProject argocd/ai-dev unchanged"), "{err}");
    assert!(!err.contains(" created"), "{err}");
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("  cert-manager:"))
            .count(),
        1,
        "{err}"
    );

    // A KServe model's READY is its predictor's count, not `?/1`.
    e.seed_model("qwen-cpu");
    e.seed_model("qwen-gpu");
    e.server
        .wait_for(
            "apps/v1",
            "Deployment",
            "kserve",
            "qwen-cpu-predictor",
            Duration::from_secs(5),
            |d| d.and_then(|d| d.pointer("/status/readyReplicas")).is_some(),
        )
        .await
        .ok();
    let o = e.platform(&["status"]).await;
    let out = stdout(&o);
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("qwen-cpu") && l.contains("kserve"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains(" 1/1 ") || row.contains(" 0/1 "),
        "{row}\n{out}"
    );

    // One replica is one replica.
    let o = e.platform(&["resume", "qwen-gpu"]).await;
    assert!(
        stderr(&o).contains("already running (1 replica)"),
        "{}",
        stderr(&o)
    );

    // doctor's columns line up across rows.
    let o = e.platform(&["doctor"]).await;
    let out = stdout(&o);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| {
            ["OK ", "WARN ", "FAIL "]
                .iter()
                .any(|w| l.trim_start().starts_with(w))
        })
        .collect();
    assert!(rows.len() > 3, "{out}");
    // Where the detail starts: after the level and the check's name, however long.
    let third = |l: &str| {
        let check = l.split_whitespace().nth(1).unwrap();
        let after = column_of(l, check) + check.len();
        after + l[after..].len() - l[after..].trim_start().len()
    };
    let at = third(rows[0]);
    for r in &rows {
        assert_eq!(third(r), at, "{out}");
    }
    e.server.shutdown().await;
}

impl Env {
    /// Requests that would have changed something: every write but a server-side dry run.
    fn real_writes(&self) -> Vec<String> {
        self.server
            .request_log()
            .into_iter()
            .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
            .filter(|r| !r.query.contains("dryRun"))
            .map(|r| format!("{} {} {}", r.verb, r.resource, r.name))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_of_up_pause_resume_and_stage_model_write_nothing() {
    let e = env().await;
    e.seed_child_apps();
    e.seed_model("qwen-gpu");
    e.server.clear_request_log();

    // up: the apply as the API server's dry run, and the apps by wave.
    let o = e
        .platform(&["up", "--allow-unpushed", "--sync-models", "--dry-run"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |what: &str| {
        out.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what}:\n{out}"))
            .to_string()
    };
    assert!(
        line("AppProject argocd/ai-dev").contains("created"),
        "{out}"
    );
    assert!(
        line(" cert-manager ").contains("wait until Synced"),
        "{out}"
    );
    assert!(line(" qwen-gpu ").contains("sync at "), "{out}");
    assert!(
        stderr(&o).contains("dry run: nothing applied or synced"),
        "{}",
        stderr(&o)
    );
    let dry: Vec<_> = e
        .server
        .request_log()
        .into_iter()
        .filter(|r| r.verb == "apply")
        .collect();
    assert!(
        !dry.is_empty() && dry.iter().all(|r| r.query.contains("dryRun=All")),
        "{dry:?}"
    );
    // Without --sync-models the model apps are the cost gate's.
    let o = e
        .platform(&["up", "--allow-unpushed", "--dry-run", "-o", "json"])
        .await;
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let gpu = v["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == "qwen-gpu")
        .unwrap();
    assert!(gpu["action"].as_str().unwrap().starts_with("skip"), "{v}");
    assert_eq!(v["apply"][0]["result"], "created", "{v}");

    // pause / resume: what would be scaled.
    let o = e.platform(&["pause", "qwen-gpu", "--dry-run"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("qwen-gpu (raw-vllm): would do: scaled 1 -> 0"),
        "{}",
        stderr(&o)
    );
    let o = e.platform(&["resume", "qwen-gpu", "--dry-run"]).await;
    assert!(
        stderr(&o).contains("nothing to do: already running (1 replica)"),
        "{}",
        stderr(&o)
    );
    let dep = e
        .server
        .get("apps/v1", "Deployment", "serving", "qwen-gpu")
        .unwrap();
    assert_eq!(dep["spec"]["replicas"], 1);

    // stage-model: the files, their sizes and the target PVC; no pod, no PVC created.
    let src = model_dir();
    let dir = src.path().to_str().unwrap().to_string();
    let o = e
        .platform(&["stage-model", "qwen-cpu", "--from-dir", &dir, "--dry-run"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("-> PVC kserve/qwen-cpu-weights (would be created from the rendered manifest), /models/qwen: 4 file(s)"),
        "{out}"
    );
    assert!(out.contains("model.safetensors"), "{out}");
    let o = e
        .platform(&[
            "stage-model",
            "qwen-gpu",
            "--from-dir",
            &dir,
            "--dry-run",
            "-o",
            "json",
        ])
        .await;
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["pvc"], "serving/qwen-gpu-weights");
    assert_eq!(v[0]["pvcExists"], true);
    assert_eq!(v[0]["files"].as_array().unwrap().len(), 4);
    assert!(
        v[0]["refused"].as_str().unwrap().contains("pause it first"),
        "{v}"
    );

    assert_eq!(e.real_writes(), Vec::<String>::new());
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_without_sync_models_leaves_the_cost_gate_closed() {
    let e = env().await;
    e.seed_child_apps();
    let o = e
        .platform(&["up", "--allow-unpushed", "--timeout", "60s"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not synced (manual, the cost gate)"),
        "{}",
        stderr(&o)
    );
    let app = e
        .server
        .get("argoproj.io/v1alpha1", "Application", "argocd", "qwen-gpu")
        .unwrap();
    assert!(
        app.pointer("/status/operationState").is_none(),
        "model app was synced: {app}"
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_app_fails_fast_with_its_reason() {
    let e = env().await;
    e.seed_child_apps();
    e.server.set_app_outcome(
        "kserve",
        AppOutcome::Degraded("Deployment kserve-controller-manager has no ready replicas".into()),
    );
    let o = e
        .platform(&["up", "--allow-unpushed", "--timeout", "60s"])
        .await;
    // Exit 4 (the app failed), not 3: it stopped at the Degraded app, not at the deadline.
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Application kserve failed: Degraded"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("no ready replicas"), "{}", stderr(&o));
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_exits_3_and_says_what_is_pending() {
    let e = env_with(
        "ai-dev",
        Options {
            argo_delay: Duration::from_secs(30),
            ..Options::default()
        },
    )
    .await;
    e.seed_child_apps();
    let o = e
        .platform(&["up", "--allow-unpushed", "--timeout", "2s"])
        .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("timed out waiting"), "{}", stderr(&o));
    // The first wave: Argo CD's own Application (wave -2 of the platform layer).
    assert!(stderr(&o).contains("argocd:"), "{}", stderr(&o));
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried() {
    let e = env().await;
    e.seed_child_apps();
    e.server
        .fail_next_matching(2, 429, Some(1), Some("appprojects"), None);
    e.server
        .fail_next_matching(1, 500, None, Some("applications/ai-dev-platform"), None);
    let o = e
        .platform(&["up", "--allow-unpushed", "--timeout", "60s"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let statuses: Vec<u16> = e
        .server
        .request_log()
        .iter()
        .filter(|r| r.resource == "appprojects")
        .map(|r| r.status)
        .collect();
    assert!(statuses.starts_with(&[429, 429]), "{statuses:?}");
    assert!(
        statuses.contains(&200) || statuses.contains(&201),
        "{statuses:?}"
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssa_conflict_is_explained_and_force_takes_over() {
    let e = env().await;
    e.seed_child_apps();
    // Someone else owns the project's description with another value.
    let project: Value =
        serde_yaml::from_str(&e.repo.read("clusters/ai-dev/project.yaml")).unwrap();
    let mut other = project.clone();
    other["spec"]["description"] = json!("owned by someone else");
    apply_as(&e.server.url(), &other, "someone-else")
        .await
        .expect("seeding the conflicting owner");
    let o = e
        .platform(&["up", "--allow-unpushed", "--timeout", "60s"])
        .await;
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force-conflicts"), "{}", stderr(&o));
    let o = e
        .platform(&[
            "up",
            "--allow-unpushed",
            "--force-conflicts",
            "--timeout",
            "60s",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    e.server.shutdown().await;
}

/// Server-side apply as another field manager.
async fn apply_as(base: &str, obj: &Value, manager: &str) -> Result<(), kube::Error> {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::core::{ApiResource, GroupVersionKind};
    let client = kube::Client::try_from(kube::Config::new(base.parse().unwrap())).unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AppProject"),
        "appprojects",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, "argocd", &ar);
    let name = obj["metadata"]["name"].as_str().unwrap();
    api.patch(name, &PatchParams::apply(manager), &Patch::Apply(obj))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_round_trip_restores_replicas_on_raw_vllm() {
    let e = env_with(
        "ai-dev",
        Options {
            node_gpus: 2,
            ..Options::default()
        },
    )
    .await;
    e.seed_model("qwen-gpu");
    // Two replicas running.
    let mut dep = e
        .server
        .get("apps/v1", "Deployment", "serving", "qwen-gpu")
        .unwrap();
    dep["spec"]["replicas"] = json!(2);
    e.server.put(dep).unwrap();
    let o = e.platform(&["pause", "qwen-gpu"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("scaled 2 -> 0"), "{}", stderr(&o));
    let dep = e
        .server
        .get("apps/v1", "Deployment", "serving", "qwen-gpu")
        .unwrap();
    assert_eq!(dep["spec"]["replicas"], 0);
    assert_eq!(
        dep["metadata"]["annotations"]["platform.ai/paused-replicas"],
        "2"
    );
    // Idempotent.
    let o = e.platform(&["pause", "qwen-gpu"]).await;
    assert!(stderr(&o).contains("already paused"), "{}", stderr(&o));
    let o = e
        .platform(&["resume", "qwen-gpu", "--wait", "--timeout", "30s"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_resumed_to(&e, 2);
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_kserve_waits_for_stopped_and_resume_for_ready() {
    let e = env().await;
    e.seed_model("qwen-cpu");
    let o = e
        .platform(&["pause", "qwen-cpu", "--wait", "--timeout", "30s"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("qwen-cpu is stopped"), "{}", stderr(&o));
    let isvc = e
        .server
        .get(
            "serving.kserve.io/v1beta1",
            "InferenceService",
            "kserve",
            "qwen-cpu",
        )
        .unwrap();
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/stop"],
        "true"
    );
    let o = e
        .platform(&["resume", "qwen-cpu", "--wait", "--timeout", "30s"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("qwen-cpu is ready"), "{}", stderr(&o));
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_of_a_model_not_deployed_says_to_sync_it() {
    let e = env().await;
    let o = e.platform(&["pause", "qwen-cpu"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not in the cluster yet") && stderr(&o).contains("sync it first"),
        "{}",
        stderr(&o)
    );
    let o = e.platform(&["pause", "qwen-cpuu"]).await;
    assert!(
        stderr(&o).contains("did you mean `qwen-cpu`?"),
        "{}",
        stderr(&o)
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_explains_a_pending_gpu_pod() {
    let e = env().await;
    e.seed_model("qwen-gpu");
    e.server
        .put(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "qwen-gpu-abc", "namespace": "serving", "labels": {"app.kubernetes.io/name": "qwen-gpu"}},
            "spec": {"containers": [{"name": "vllm", "image": "vllm", "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}}]}
        }))
        .unwrap();
    // Let the pod controller judge it.
    e.server
        .wait_for(
            "v1",
            "Pod",
            "serving",
            "qwen-gpu-abc",
            Duration::from_secs(5),
            |p| p.and_then(|p| p.pointer("/status/conditions")).is_some(),
        )
        .await
        .ok();
    let o = e.platform(&["status", "-o", "json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let m = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "qwen-gpu")
        .unwrap()
        .clone();
    let reasons = m["reasons"].to_string();
    assert!(reasons.contains("Insufficient nvidia.com/gpu"), "{m}");
    let o = e.platform(&["status"]).await;
    assert!(
        stdout(&o).contains("qwen-gpu is not-ready because:"),
        "{}",
        stdout(&o)
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_deletes_in_order_and_audits_nothing_left() {
    let e = env().await;
    e.seed_child_apps();
    let o = e
        .platform(&[
            "up",
            "--allow-unpushed",
            "--sync-models",
            "--timeout",
            "60s",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    e.seed_model("qwen-cpu");
    e.seed_model("qwen-gpu");
    for (p, t) in e.repo.tree("clusters/ai-dev/serving") {
        e.server
            .put(serde_yaml::from_str(&t).unwrap_or_else(|x| panic!("{p}: {x}")))
            .unwrap();
    }
    let o = e.platform(&["teardown", "--dry-run"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("3 delete serving app"),
        "{}",
        stdout(&o)
    );
    e.server.clear_request_log();
    let o = e
        .platform(&["teardown", "--yes", "--release-timeout", "30s"])
        .await;
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    let deletes: Vec<String> = e
        .server
        .request_log()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| format!("{}/{}", r.resource, r.name))
        .collect();
    let pos = |x: &str| {
        deletes
            .iter()
            .position(|d| d == x)
            .unwrap_or_else(|| panic!("{x} not deleted: {deletes:?}"))
    };
    // Serving apps, then Gateways, then PVCs, then the platform apps in reverse wave order, the
    // root apps, the project last.
    for (first, then) in [
        ("applications/qwen-cpu", "applications/kserve-gateway"),
        (
            "applications/kserve-gateway",
            "gateways/kserve-ingress-gateway",
        ),
        (
            "gateways/kserve-ingress-gateway",
            "persistentvolumeclaims/qwen-gpu-weights",
        ),
        (
            "persistentvolumeclaims/qwen-cpu-weights",
            "applications/cert-manager",
        ),
        ("applications/kserve", "applications/kserve-crd"),
        ("applications/cert-manager", "applications/ai-dev-platform"),
        ("applications/ai-dev-platform", "appprojects/ai-dev"),
    ] {
        assert!(pos(first) < pos(then), "{first} before {then}: {deletes:?}");
    }
    e.server.shutdown().await;
}

/// A pod of `model` (mounting its PVC) stuck Terminating on a finalizer of its own, as one whose
/// node went away is.
fn terminating_pod(e: &Env, ns: &str, name: &str, model: &str, claim: &str) {
    e.server
        .put(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns,
                "labels": {"app.kubernetes.io/name": model},
                "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["example.com/hold"]},
            "spec": {"nodeName": "gone-node", "containers": [{"name": "vllm", "image": "vllm"}],
                "volumes": [{"name": "weights", "persistentVolumeClaim": {"claimName": claim}}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_says_what_it_waits_for_with_status_reasons_and_the_time_left() {
    let e = env().await;
    e.seed_model("qwen-gpu");
    terminating_pod(
        &e,
        "serving",
        "qwen-gpu-old",
        "qwen-gpu",
        "qwen-gpu-weights",
    );
    // No GPU on the node: the new pod cannot be scheduled. Off a terminal, a heartbeat of 1 s.
    let o = e
        .platform_env(
            &["resume", "qwen-gpu", "--wait", "--timeout", "4s"],
            &[("PLATFORM_PROGRESS_INTERVAL", "1")],
        )
        .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    let progress: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("  waiting for qwen-gpu to become ready: "))
        .collect();
    // Each look says status's reasons and the time left; the same reason is said again at each
    // heartbeat.
    assert!(!progress.is_empty(), "{err}");
    for l in &progress {
        assert!(l.contains("pod qwen-gpu-old Terminating since"), "{l}");
        assert!(l.ends_with(" left)"), "{l}");
    }
    let unschedulable = progress
        .iter()
        .filter(|l| {
            l.contains("Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu")
        })
        .count();
    assert!(unschedulable >= 2, "{err}");
    // The timeout says why too.
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: timed out waiting for qwen-gpu to become ready")
            && last.contains("Insufficient nvidia.com/gpu"),
        "{err}"
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_names_the_terminating_pod_that_holds_a_pvc() {
    let e = env().await;
    e.seed_child_apps();
    e.seed_model("qwen-gpu");
    // As the API server's admission adds it on create.
    let mut pvc = e
        .server
        .get("v1", "PersistentVolumeClaim", "serving", "qwen-gpu-weights")
        .unwrap();
    pvc["metadata"]["finalizers"] = json!(["kubernetes.io/pvc-protection"]);
    e.server.put(pvc).unwrap();
    terminating_pod(
        &e,
        "serving",
        "qwen-gpu-old",
        "qwen-gpu",
        "qwen-gpu-weights",
    );
    let o = e
        .platform_env(
            &[
                "teardown",
                "--yes",
                "--finalizer-timeout",
                "3s",
                "--release-timeout",
                "3s",
                "--strip-finalizers",
            ],
            &[("PLATFORM_PROGRESS_INTERVAL", "1")],
        )
        .await;
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "waiting for PersistentVolumeClaim serving/qwen-gpu-weights to be deleted: still \
             mounted by pod qwen-gpu-old Terminating since"
        ),
        "{err}"
    );
    assert!(
        err.contains("PersistentVolumeClaim serving/qwen-gpu-weights is still mounted by pod qwen-gpu-old Terminating since 2026-01-01T00:00:00Z (on node gone-node; finalizers: example.com/hold)"),
        "{err}"
    );
    // The suggested kubectl is aimed at the target (its kubeconfig and context).
    let kubectl = format!(
        "`kubectl --kubeconfig {} --context ai-dev -n serving delete pod qwen-gpu-old \
         --grace-period=0 --force`",
        e.kubeconfig.display()
    );
    assert!(err.contains(&kubectl), "{err}");
    assert!(!err.contains("the controller that owns"), "{err}");
    // Not stripped, even with --strip-finalizers: a pod still uses it.
    let pvc = e
        .server
        .get("v1", "PersistentVolumeClaim", "serving", "qwen-gpu-weights")
        .unwrap();
    assert!(
        pvc["metadata"]["finalizers"]
            .to_string()
            .contains("pvc-protection"),
        "{pvc}"
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_audit_says_why_each_survivor_survived_and_what_removes_it() {
    let e = env().await;
    e.seed_child_apps();
    e.seed_model("qwen-gpu");
    // A claim someone made by hand in a namespace platform manages.
    e.server
        .put(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "scratch", "namespace": "serving"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .unwrap();
    let o = e
        .platform(&[
            "teardown",
            "--yes",
            "--keep-pvcs",
            "--release-timeout",
            "5s",
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    let row = |name: &str| {
        out.lines()
            .find(|l| l.contains(name) && l.contains("PersistentVolumeClaim"))
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"))
            .to_string()
    };
    assert!(
        row("qwen-gpu-weights")
            .contains("kept on purpose: argocd.argoproj.io/sync-options Delete=false"),
        "{out}"
    );
    assert!(row("scratch").contains("not platform's"), "{out}");
    let kc = format!("--kubeconfig {} --context ai-dev", e.kubeconfig.display());
    assert!(
        out.contains("to remove them:")
            && out.contains(&format!(
                "PersistentVolumeClaim serving/qwen-gpu-weights: `kubectl {kc} -n serving delete \
                 persistentvolumeclaim qwen-gpu-weights` when its data is no longer needed"
            ))
            && out.contains(&format!(
                "`kubectl {kc} -n serving delete persistentvolumeclaim scratch` if it is yours"
            )),
        "{out}"
    );
    assert!(err.contains("error: audit: 2 object(s) survived"), "{err}");
    assert!(
        err.contains("\n  help: run the command listed for each survivor"),
        "{err}"
    );
    // The same in JSON.
    let o = e
        .platform(&["teardown", "--yes", "--keep-pvcs", "-o", "json"])
        .await;
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let kept = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "qwen-gpu-weights")
        .unwrap();
    assert!(
        kept["why"].as_str().unwrap().contains("Delete=false"),
        "{kept}"
    );
    assert!(kept["fix"].as_str().unwrap().contains("kubectl"), "{kept}");
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_finalizer_is_detected_and_can_be_stripped() {
    let e = env().await;
    e.seed_child_apps();
    e.server.stuck_finalizer("Application");
    let o = e
        .platform(&["teardown", "--yes", "--finalizer-timeout", "1s"])
        .await;
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("stuck terminating on finalizer(s) resources-finalizer.argocd.argoproj.io"),
        "{err}"
    );
    assert!(err.contains("--strip-finalizers"), "{err}");
    let o = e
        .platform(&[
            "teardown",
            "--yes",
            "--finalizer-timeout",
            "1s",
            "--strip-finalizers",
        ])
        .await;
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_checks_and_fails_on_missing_gpus() {
    let e = env().await;
    let o = e.platform(&["doctor", "-o", "json"]).await;
    let v: Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|x| panic!("{x}: {}", stdout(&o)));
    let checks = v.as_array().unwrap();
    assert!(checks
        .iter()
        .any(|c| c["check"] == "api" && c["level"] == "OK"));
    let gpu = checks.iter().find(|c| c["check"] == "gpus").unwrap();
    assert_eq!(gpu["level"], "FAIL", "the seeded node has no GPU: {gpu}");
    assert_eq!(o.status.code(), Some(1));
    e.server.shutdown().await;
}

/// doctor's checks, each from failing (or warning) to OK and back, against the cluster's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_follow_the_cluster_state() {
    let e = env_with(
        "ai-dev",
        Options {
            node_gpus: 4,
            ..Options::default()
        },
    )
    .await;
    let doctor = || async {
        let o = e.platform(&["doctor", "-o", "json"]).await;
        let v: Value =
            serde_json::from_str(&stdout(&o)).unwrap_or_else(|x| panic!("{x}: {}", stdout(&o)));
        (o.status.code(), v.as_array().unwrap().clone())
    };
    let find = |checks: &[Value], name: &str, detail: &str| -> Value {
        checks
            .iter()
            .find(|c| c["check"] == name && c["detail"].as_str().unwrap_or("").contains(detail))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check mentioning {detail:?}: {checks:#?}"))
    };

    // A bare cluster: no Argo CD controller, no health customization, no GatewayClass yet.
    let (code, checks) = doctor().await;
    assert_eq!(code, Some(1), "{checks:#?}");
    assert_eq!(
        find(&checks, "argocd", "no argocd-application-controller")["level"],
        "FAIL"
    );
    let health = find(&checks, "argocd-health", "lacks");
    assert_eq!(health["level"], "WARN");
    assert!(
        health["fix"]
            .as_str()
            .unwrap()
            .contains("resource.customizations.health.argoproj.io_Application"),
        "{health}"
    );
    assert_eq!(
        find(&checks, "storageclass", "default standard")["level"],
        "OK"
    );
    assert_eq!(
        find(&checks, "gatewayclass", "does not exist yet")["level"],
        "WARN"
    );
    assert_eq!(
        find(&checks, "crd", "applications.argoproj.io")["level"],
        "OK"
    );
    assert_eq!(find(&checks, "gpus", "4 allocatable")["level"], "OK");

    // Argo CD installed and configured, cert-manager's CRDs in, the GatewayClass accepted: every
    // check passes.
    assert_eq!(
        find(&checks, "crd", "certificates.cert-manager.io is missing")["level"],
        "WARN"
    );
    e.server
        .put(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": {"name": "certificates.cert-manager.io"},
                    "spec": {"group": "cert-manager.io", "scope": "Namespaced",
                             "names": {"plural": "certificates", "singular": "certificate", "kind": "Certificate"},
                             "versions": [{"name": "v1", "served": true, "storage": true,
                                           "schema": {"openAPIV3Schema": {"type": "object"}}}]}}))
        .unwrap();
    e.server
        .put(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "metadata": {"name": "argocd-application-controller", "namespace": "argocd",
                                 "labels": {"app.kubernetes.io/name": "argocd-application-controller"}},
                    "spec": {"replicas": 1, "serviceName": "x", "selector": {"matchLabels": {"app": "x"}},
                             "template": {"metadata": {"labels": {"app": "x"}},
                                          "spec": {"containers": [{"name": "c", "image": "quay.io/argoproj/argocd:v3.5.1"}]}}},
                    "status": {"replicas": 1, "readyReplicas": 1}}))
        .unwrap();
    e.server
        .put(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "argocd-repo-server", "namespace": "argocd",
                                 "labels": {"app.kubernetes.io/name": "argocd-repo-server"}},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "r"}},
                             "template": {"metadata": {"labels": {"app": "r"}},
                                          "spec": {"containers": [{"name": "c", "image": "argocd"}]}}},
                    "status": {"replicas": 1, "readyReplicas": 1}}))
        .unwrap();
    e.server
        .put(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "argocd-cm", "namespace": "argocd"},
                    "data": {"resource.customizations.health.argoproj.io_Application": "hs = {}\nreturn hs\n",
                             "resource.customizations.health.gateway.networking.k8s.io_HTTPRoute": "hs = {}\nreturn hs\n"}}))
        .unwrap();
    e.server
        .put(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                    "metadata": {"name": "agentgateway"},
                    "spec": {"controllerName": "agentgateway.dev/agentgateway"},
                    "status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                                               "lastTransitionTime": "2026-01-01T00:00:00Z", "message": ""}]}}))
        .unwrap();
    // The server's Deployment controller recomputes the repo server's status from its pods: ask
    // again until it has (bounded).
    let mut attempt = 0;
    let (code, checks) = loop {
        let (code, checks) = doctor().await;
        attempt += 1;
        if code == Some(0) || attempt >= 40 {
            break (code, checks);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let bad: Vec<&Value> = checks.iter().filter(|c| c["level"] != "OK").collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(code, Some(0));

    // The default StorageClass goes away, the GatewayClass is refused, a LoadBalancer has no address.
    e.server
        .put(
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                    "metadata": {"name": "standard"}, "provisioner": "test.local/hostpath",
                    "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
        )
        .unwrap();
    e.server
        .put(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                    "metadata": {"name": "agentgateway"},
                    "spec": {"controllerName": "agentgateway.dev/agentgateway"},
                    "status": {"conditions": [{"type": "Accepted", "status": "False", "reason": "InvalidParameters",
                                               "lastTransitionTime": "2026-01-01T00:00:00Z", "message": "bad"}]}}))
        .unwrap();
    e.server
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kserve"}}))
        .unwrap();
    e.server
        .put(json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "kserve-gateway", "namespace": "kserve"},
                    "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}))
        .unwrap();
    let (code, checks) = doctor().await;
    assert_eq!(code, Some(1));
    let sc = find(&checks, "storageclass", "no default StorageClass");
    assert_eq!(sc["level"], "FAIL");
    assert!(
        sc["fix"].as_str().unwrap().contains("storageClassName"),
        "{sc}"
    );
    assert_eq!(
        find(&checks, "gatewayclass", "not Accepted")["level"],
        "FAIL"
    );
    assert_eq!(
        find(
            &checks,
            "loadbalancer",
            "kserve/kserve-gateway has no address"
        )["level"],
        "WARN"
    );

    // Listing Argo CD's StatefulSets is forbidden: said as such, not as "Argo CD is missing".
    e.server
        .fail_next_matching(1, 403, None, Some("/statefulsets"), Some("GET"));
    let (_, checks) = doctor().await;
    let argocd = find(
        &checks,
        "argocd",
        "cannot look for argocd-application-controller",
    );
    assert_eq!(argocd["level"], "FAIL");
    assert!(
        !checks.iter().any(|c| c["detail"]
            .as_str()
            .unwrap_or("")
            .contains("no argocd-application-controller")),
        "{checks:#?}"
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_refuses_a_stale_tree_before_touching_the_cluster() {
    let e = env().await;
    let cfg = e
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("servedName: qwen2.5-0.5b\n", "servedName: q\n");
    e.repo.env("ai-dev", &cfg);
    e.server.clear_request_log();
    let o = e.platform(&["up", "--allow-unpushed"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is stale") && stderr(&o).contains("platform root --profile full"),
        "{}",
        stderr(&o)
    );
    assert!(
        e.server.request_log().is_empty(),
        "the cluster was contacted"
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_refuses_an_unpushed_tree_and_pins_the_pushed_commit() {
    let e = env().await;
    // The GitOps repository: a work tree with a bare `origin` that the config names.
    let remote = tempfile::tempdir().unwrap();
    let bare = git2::Repository::init_bare(remote.path()).unwrap();
    bare.set_head("refs/heads/main").unwrap();
    let url = format!("file://{}", remote.path().display());
    let g = git2::Repository::init(e.repo.path()).unwrap();
    g.config().unwrap().set_str("user.name", "t").unwrap();
    g.config()
        .unwrap()
        .set_str("user.email", "t@example.com")
        .unwrap();
    g.remote("origin", &url).unwrap();
    let cfg = e
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("https://github.com/example-org/ai-platform.git", &url);
    e.repo.env("ai-dev", &cfg);
    run(&e.repo, &["root", "--commit"]).await;
    e.seed_child_apps();
    e.server.clear_request_log();
    let o = e.platform(&["up"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not on") && stderr(&o).contains("--commit --push"),
        "{}",
        stderr(&o)
    );
    assert!(
        e.server.request_log().is_empty(),
        "the cluster was contacted"
    );

    let o = run(&e.repo, &["root", "--commit", "--push"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let head = g.head().unwrap().target().unwrap().to_string();
    e.seed_child_apps(); // the new commit's apps (repoURL changed)
    let o = e
        .platform(&["up", "--sync-models", "--timeout", "60s"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let app = e
        .server
        .get("argoproj.io/v1alpha1", "Application", "argocd", "qwen-cpu")
        .unwrap();
    assert_eq!(
        app.pointer("/status/sync/revision").and_then(Value::as_str),
        Some(head.as_str()),
        "{app}"
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_can_be_run_again_after_it_finished() {
    let e = env().await;
    e.seed_child_apps();
    let o = e.platform(&["teardown", "--yes"]).await;
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    let o = e.platform(&["teardown", "--yes"]).await;
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    assert!(
        stderr(&o).contains("nothing platform manages survived"),
        "{}",
        stderr(&o)
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_without_a_terminal_or_yes_refuses() {
    let e = env().await;
    e.seed_child_apps();
    e.server.clear_request_log();
    let o = e.platform(&["teardown"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("pass --yes"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("teardown plan for cluster ai-dev"),
        "{}",
        stdout(&o)
    );
    assert!(
        e.server.request_log().iter().all(|r| r.method == "GET"),
        "wrote without confirmation"
    );
    e.server.shutdown().await;
}

/// A local model directory: the default file set plus files that must not be staged.
fn model_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("config.json"),
        b"{\"model_type\": \"qwen2\"}\n",
    )
    .unwrap();
    std::fs::write(d.path().join("tokenizer.json"), b"{}\n").unwrap();
    std::fs::write(d.path().join("generation_config.json"), b"{}\n").unwrap();
    let weights: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(d.path().join("model.safetensors"), weights).unwrap();
    std::fs::write(d.path().join("pytorch_model.bin"), b"pickle").unwrap();
    std::fs::create_dir(d.path().join("original")).unwrap();
    std::fs::write(d.path().join("original/consolidated.pth"), b"x").unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_model_copies_verified_files_onto_the_pvc_and_is_idempotent() {
    let e = env().await;
    let src = model_dir();
    let dir = src.path().to_str().unwrap().to_string();
    let o = e
        .platform(&["stage-model", "qwen-cpu", "--from-dir", &dir])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("staged 4 file(s)"), "{}", stderr(&o));
    let vol = e.server.volumes_dir().join("kserve/qwen-cpu-weights/qwen");
    for f in [
        "config.json",
        "tokenizer.json",
        "generation_config.json",
        "model.safetensors",
    ] {
        assert_eq!(
            std::fs::read(vol.join(f)).unwrap(),
            std::fs::read(src.path().join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(!vol.join("pytorch_model.bin").exists() && !vol.join("original").exists());
    let marker: Value =
        serde_json::from_slice(&std::fs::read(vol.join(".platform-staged.json")).unwrap()).unwrap();
    assert_eq!(marker["files"].as_array().unwrap().len(), 4, "{marker}");
    assert!(marker["commit"].as_str().unwrap().starts_with("local-"));
    // No staging directory or pod left behind.
    assert!(!e
        .server
        .volumes_dir()
        .join("kserve/qwen-cpu-weights")
        .read_dir()
        .unwrap()
        .any(|d| d
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".staging")));
    assert!(
        e.server
            .get("v1", "Pod", "kserve", "platform-stage-qwen-cpu")
            .is_none(),
        "the staging pod survived"
    );
    // The pod was restricted.
    let created = e
        .server
        .request_log()
        .into_iter()
        .any(|r| r.method == "POST" && r.resource == "pods");
    assert!(created);

    // Same content again: nothing to do.
    let o = e
        .platform(&["stage-model", "qwen-cpu", "--from-dir", &dir])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already staged"), "{}", stderr(&o));
    // --force restages.
    let o = e
        .platform(&["stage-model", "qwen-cpu", "--from-dir", &dir, "--force"])
        .await;
    assert!(
        o.status.success() && stderr(&o).contains("staged 4 file(s)"),
        "{}",
        stderr(&o)
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_model_all_goes_on_after_a_failure_and_prints_a_table() {
    let e = env().await;
    // qwen-cpu runs on its ReadWriteOnce volume: refused; qwen-gpu is staged all the same.
    e.seed_model("qwen-cpu");
    let src = model_dir();
    let dir = src.path().to_str().unwrap().to_string();
    let o = e
        .platform(&["stage-model", "--all", "--from-dir", &dir])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    let row = |m: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(m))
            .unwrap_or_else(|| panic!("no row for {m}:\n{out}"))
            .to_string()
    };
    assert!(out.lines().next().unwrap().contains("MODEL"), "{out}");
    for h in ["RESULT", "SIZE", "TIME", "REASON"] {
        assert!(out.lines().next().unwrap().contains(h), "{out}");
    }
    assert!(row("qwen-cpu").contains("failed"), "{out}");
    assert!(row("qwen-cpu").contains("pause it first"), "{out}");
    assert!(
        row("qwen-gpu").contains("staged") && row("qwen-gpu").contains("MiB"),
        "{out}"
    );
    assert!(
        err.contains("1 of 2 model(s) failed to stage (qwen-cpu)"),
        "{err}"
    );
    assert!(e
        .server
        .volumes_dir()
        .join("serving/qwen-gpu-weights/qwen2.5-7b/config.json")
        .exists());
    // --fail-fast stops at the first; -o json says the same.
    let o = e
        .platform(&[
            "stage-model",
            "--all",
            "--from-dir",
            &dir,
            "--fail-fast",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["model"], "qwen-cpu");
    assert_eq!(v[0]["result"], "failed");
    assert_eq!(v[1]["model"], "qwen-gpu");
    assert_eq!(v[1]["result"], "skipped");
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_model_refuses_a_running_model_on_a_read_write_once_volume() {
    let e = env().await;
    e.seed_model("qwen-cpu");
    e.server
        .wait_for(
            "serving.kserve.io/v1beta1",
            "InferenceService",
            "kserve",
            "qwen-cpu",
            Duration::from_secs(10),
            |o| o.and_then(|o| o.pointer("/status/conditions")).is_some(),
        )
        .await
        .ok();
    let src = model_dir();
    e.server.clear_request_log();
    let o = e
        .platform(&[
            "stage-model",
            "qwen-cpu",
            "--from-dir",
            src.path().to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pause it first") && stderr(&o).contains("platform pause qwen-cpu"),
        "{}",
        stderr(&o)
    );
    assert!(
        !e.server
            .request_log()
            .iter()
            .any(|r| r.resource == "pods" && r.method == "POST"),
        "a pod was created"
    );
    // Paused (and its pods gone: the controllers delete them after pause returns), it stages.
    let o = e
        .platform(&["pause", "qwen-cpu", "--wait", "--timeout", "30s"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = e
        .platform(&[
            "stage-model",
            "qwen-cpu",
            "--from-dir",
            src.path().to_str().unwrap(),
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_stage_model_leaves_no_pod_behind() {
    let e = env().await;
    let src = model_dir();
    // Big enough that the copy is still running when the signal arrives.
    let big: Vec<u8> = vec![42u8; 64 << 20];
    std::fs::write(src.path().join("model-00002-of-00002.safetensors"), big).unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("platform"));
    cmd.args([
        "--repo",
        e.repo.path().to_str().unwrap(),
        "--color",
        "never",
        "stage-model",
        "qwen-cpu",
        "--from-dir",
        src.path().to_str().unwrap(),
        "--kubeconfig",
        e.kubeconfig.to_str().unwrap(),
    ]);
    cmd.stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    // Wait until the staging pod exists, then interrupt.
    e.server
        .wait_for(
            "v1",
            "Pod",
            "kserve",
            "platform-stage-qwen-cpu",
            Duration::from_secs(30),
            |p| p.is_some(),
        )
        .await
        .expect("the staging pod was never created");
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Cleaned up, it ends as a command SIGTERM killed would (issue 19 Medium 5), unless the copy
    // was done before the signal came (tests/hostile/stage.rs holds a download to be sure).
    if !(out.status.success() && err.contains("staged")) {
        assert_eq!(out.status.code(), Some(143), "{err}");
        assert!(err.contains("interrupted (SIGTERM)"), "{err}");
    }
    let gone = e
        .server
        .wait_for(
            "v1",
            "Pod",
            "kserve",
            "platform-stage-qwen-cpu",
            Duration::from_secs(10),
            |p| p.is_none(),
        )
        .await;
    assert!(gone.is_ok(), "the staging pod survived the kill");
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_model_downloads_from_the_hub_and_copies_while_downloading() {
    let e = env().await;
    let emu = qwen_on_the_hub().await;
    let cache = tempfile::tempdir().unwrap();
    let envs = hub_envs(&emu, cache.path());
    let o = e.platform_env(&["stage-model", "qwen-cpu"], &envs).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("is commit"), "{err}");
    assert!(
        err.contains("verified on the volume: ") && err.contains("model.safetensors"),
        "the copy reports each verified batch: {err}"
    );
    let vol = e.server.volumes_dir().join("kserve/qwen-cpu-weights/qwen");
    let repo = emu.repo("Qwen/Qwen2.5-0.5B-Instruct");
    for f in [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
        "model.safetensors",
    ] {
        let want = repo.get(f).unwrap().content();
        assert_eq!(
            std::fs::read(vol.join(f)).unwrap_or_else(|x| panic!("{f}: {x}")),
            want,
            "{f}"
        );
    }
    for f in ["pytorch_model.bin", "original", "model.gguf", "README.md"] {
        assert!(!vol.join(f).exists(), "{f} was staged");
    }
    let marker: Value =
        serde_json::from_slice(&std::fs::read(vol.join(".platform-staged.json")).unwrap()).unwrap();
    assert_eq!(marker["source"], "hf://Qwen/Qwen2.5-0.5B-Instruct");
    assert_eq!(marker["revision"], "main");
    assert_eq!(marker["commit"].as_str().unwrap().len(), 40, "{marker}");
    assert!(e
        .server
        .get("v1", "Pod", "kserve", "platform-stage-qwen-cpu")
        .is_none());

    // Same commit: no-op, and nothing downloaded again.
    emu.clear_log();
    let o = e.platform_env(&["stage-model", "qwen-cpu"], &envs).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already staged"), "{}", stderr(&o));
    assert!(
        emu.file_requests().is_empty(),
        "files were downloaded again"
    );
    drop(emu);
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_cached_file_is_caught_in_the_pod_and_nothing_is_swapped_in() {
    let e = env().await;
    let emu = qwen_on_the_hub().await;
    let cache = tempfile::tempdir().unwrap();
    let envs = hub_envs(&emu, cache.path());
    let o = e.platform_env(&["stage-model", "qwen-cpu"], &envs).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let vol = e.server.volumes_dir().join("kserve/qwen-cpu-weights/qwen");
    let marker_before = std::fs::read(vol.join(".platform-staged.json")).unwrap();

    // Bit rot in the cache: same size, one byte flipped. The cache is trusted by size, and the copy
    // does not hash a file whose sha256 the Hub promised: the pod's check must catch it.
    let cached = find_file(cache.path(), "model.safetensors").expect("cached weights");
    let mut bytes = std::fs::read(&cached).unwrap();
    bytes[7] ^= 0xff;
    std::fs::write(&cached, &bytes).unwrap();

    let o = e
        .platform_env(&["stage-model", "qwen-cpu", "--force"], &envs)
        .await;
    assert!(!o.status.success(), "a damaged file was staged");
    let err = stderr(&o);
    assert!(
        err.contains("sha256 mismatch for model.safetensors"),
        "{err}"
    );
    assert!(
        err.contains("is damaged") && err.contains(&cached.display().to_string()),
        "the message names the damaged local file: {err}"
    );
    // The volume still holds the previous, good copy; no staging directory or pod is left.
    assert_eq!(
        std::fs::read(vol.join(".platform-staged.json")).unwrap(),
        marker_before
    );
    let good = emu
        .repo("Qwen/Qwen2.5-0.5B-Instruct")
        .get("model.safetensors")
        .unwrap()
        .content();
    assert_eq!(std::fs::read(vol.join("model.safetensors")).unwrap(), good);
    let leftovers: Vec<_> = std::fs::read_dir(vol.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(e
        .server
        .get("v1", "Pod", "kserve", "platform-stage-qwen-cpu")
        .is_none());
    drop(emu);
    e.server.shutdown().await;
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for d in std::fs::read_dir(dir).ok()?.flatten() {
        let p = d.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if d.file_name() == name {
            return Some(p);
        }
    }
    None
}

/// Several tar streams (cut by bytes and by file count) land in one directory, each verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_in_small_batches_stages_and_verifies_every_file() {
    use platform::actions::stage::{LocalFile, Session};
    let e = env().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let inputs = platform::pipeline::load(root, "ai-dev", &platform::report::Silent).unwrap();
    let plan =
        platform::pipeline::plan(&inputs, "ai-dev", platform::pipeline::Profile::Chosen(None))
            .unwrap();
    let m = plan.models.iter().find(|m| m.name == "qwen-cpu").unwrap();
    e.seed_model("qwen-cpu");
    let client = platform::cluster::Client::from(
        kube::Client::try_from(kube::Config::new(e.server.url().parse().unwrap())).unwrap(),
    );

    let dir = tempfile::tempdir().unwrap();
    let sizes: [(&str, usize); 7] = [
        ("empty.json", 0),
        ("config.json", 10),
        ("a.safetensors", 300 << 10),
        ("b.safetensors", 700 << 10),
        ("sub/c.safetensors", (2 << 20) + 3),
        ("d.safetensors", 1 << 20),
        ("tokenizer.json", 5),
    ];
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    for (i, (name, size)) in sizes.iter().enumerate() {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let body: Vec<u8> = (0..*size).map(|j| (j * 31 + i) as u8).collect();
        std::fs::write(&p, &body).unwrap();
        // Half with a promised hash (not recomputed), half hashed while streaming.
        let sha256 = (i % 2 == 0).then(|| platform::hub::sha256_file(&p).unwrap());
        tx.send(LocalFile {
            path: name.to_string(),
            local: p,
            sha256,
        })
        .await
        .unwrap();
    }
    drop(tx);
    let session = Session::open(
        &client,
        m,
        "busybox",
        Duration::from_secs(30),
        &platform::report::Silent,
    )
    .await
    .unwrap()
    .with_batches(1 << 20, 3);
    let staged = session.transfer(rx, "c0ffee").await.unwrap();
    assert_eq!(staged.len(), sizes.len());
    session
        .finalize(&staged, "dir://test", "main", "c0ffee")
        .await
        .unwrap();
    session.close().await.unwrap();
    let vol = e.server.volumes_dir().join("kserve/qwen-cpu-weights/qwen");
    for f in &staged {
        let local = dir.path().join(&f.path);
        assert_eq!(
            std::fs::read(vol.join(&f.path)).unwrap(),
            std::fs::read(&local).unwrap(),
            "{}",
            f.path
        );
        assert_eq!(f.sha256, platform::hub::sha256_file(&local).unwrap());
    }
    // Several tar streams ran, each followed by its check.
    let execs: Vec<String> = e
        .server
        .request_log()
        .into_iter()
        .filter(|r| r.subresource == "exec")
        .map(|r| r.query)
        .collect();
    let tars = execs.iter().filter(|q| q.contains("command=tar")).count();
    let sums = execs
        .iter()
        .filter(|q| q.contains("command=sha256sum"))
        .count();
    assert!(tars >= 3, "{execs:#?}");
    assert_eq!(tars, sums, "every batch is verified: {execs:#?}");
    e.server.shutdown().await;
}

/// The exec connection is lost in the middle of a copy (an API server restart, a network cut):
/// stage-model fails promptly with the reason instead of waiting forever, and cleans up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_whose_connection_drops_fails_promptly_and_cleans_up() {
    let e = env().await;
    let src = model_dir();
    // More than the frames queued between the reader and the websocket.
    let big: Vec<u8> = (0..24u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(src.path().join("model-big.safetensors"), big).unwrap();
    let dir = src.path().to_str().unwrap().to_string();
    e.server.drop_exec_after(1 << 20);
    // It ends at all (it used to wait forever; the harness kills a command after 120 s and the
    // exit status then is a signal, not a code).
    let o = e
        .platform(&["stage-model", "qwen-cpu", "--from-dir", &dir])
        .await;
    let err = stderr(&o);
    assert!(o.status.code().is_some_and(|c| c != 0), "{err}");
    assert!(
        err.contains("closed before the command reported its exit status"),
        "the message says what happened: {err}"
    );
    let vol = e.server.volumes_dir().join("kserve/qwen-cpu-weights");
    assert!(!vol.join("qwen").exists(), "nothing was swapped in");
    assert!(e
        .server
        .get("v1", "Pod", "kserve", "platform-stage-qwen-cpu")
        .is_none());
    e.server.shutdown().await;
}

/// The staging pod cannot start (its PVC never binds): stage-model waits --pod-timeout, says why,
/// and deletes the pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_pod_that_cannot_start_says_why_and_is_deleted() {
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
    let src = model_dir();
    let dir = src.path().to_str().unwrap().to_string();
    let o = e
        .platform(&[
            "stage-model",
            "qwen-cpu",
            "--from-dir",
            &dir,
            "--pod-timeout",
            "2s",
        ])
        .await;
    let err = stderr(&o);
    // A timeout (issue 19 Medium 12).
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("staging pod platform-stage-qwen-cpu did not start")
            && err.contains("unbound immediate PersistentVolumeClaims"),
        "the reason is the scheduler's: {err}"
    );
    assert!(e
        .server
        .get("v1", "Pod", "kserve", "platform-stage-qwen-cpu")
        .is_none());
    e.server.shutdown().await;
}

/// The environment that points stage-model at the Hub emulator with its own cache.
/// A Hub emulator serving a small Qwen/Qwen2.5-0.5B-Instruct (the shipped qwen-cpu's source), no
/// faults.
async fn qwen_on_the_hub() -> hub::HubEmulator {
    hub::HubEmulator::start(
        vec![hub::small_model("Qwen/Qwen2.5-0.5B-Instruct")],
        hub::Faults::default(),
    )
    .await
}

fn hub_envs<'a>(emu: &'a hub::HubEmulator, cache: &'a std::path::Path) -> [(&'a str, &'a str); 3] {
    let cache = cache.to_str().unwrap();
    [
        ("HF_ENDPOINT", emu.endpoint.as_str()),
        ("PLATFORM_HUB_CACHE", cache),
        ("HF_HOME", cache),
    ]
}

/// `up` end to end on the test API server with Argo CD played by the same stand-in as on the real
/// tier (its scripted Argo CD off): nothing is seeded by hand; the root apps create their children
/// from the GitOps repository's bare remote, the model apps create the models, and the server's own
/// controllers (Deployments, Pods, KServe, PVCs) make them ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_end_to_end_with_the_argocd_stand_in() {
    let server = TestApiServer::start(Options {
        cluster_name: "ai-dev".into(),
        argo_controller: false,
        node_gpus: 1,
        ..Options::default()
    })
    .await;
    let repo = TempRepo::new();
    let (remote, url) = common::git_remote(&repo);
    repo.env("ai-dev", &common::shipped_config(&url));
    repo.write(".gitignore", "/kubeconfig\n");
    let kubeconfig = repo.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let o = run(&repo, &["root", "--commit", "--push"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let argo = operators::start_argo(&kubeconfig);
    argo.serve("ai-dev", &url, remote.path());

    let kc = kubeconfig.to_str().unwrap();
    let o = run(
        &repo,
        &[
            "up",
            "--sync-models",
            "--timeout",
            "90s",
            "--kubeconfig",
            kc,
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("are Synced and Healthy"),
        "{}",
        stderr(&o)
    );
    let o = run(&repo, &["status", "-o", "json", "--kubeconfig", kc]).await;
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    for m in st["models"].as_array().unwrap() {
        assert_eq!(m["state"], "ready", "{m}");
    }
    // The children came from git through the stand-in, not from the test.
    let created: Vec<String> = server
        .request_log()
        .into_iter()
        .filter(|r| r.resource == "applications" && r.method != "GET")
        .map(|r| r.name)
        .collect();
    assert!(created.iter().any(|n| n == "qwen-cpu"), "{created:?}");
    argo.stop();
    server.shutdown().await;
}

/// An API server that stops answering after the preflight (here: every argoproj.io request is
/// accepted and never answered): every request has a deadline, `up` honours --timeout (exit 3) and
/// says what it waits for, and `status` fails with the reason instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_stops_answering_cannot_hang_a_command() {
    let e = env().await;
    e.server.hang_matching("/apis/argoproj.io/");
    let o = e
        .platform(&[
            "up",
            "--allow-unpushed",
            "--timeout",
            "6s",
            "--request-timeout",
            "2s",
        ])
        .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not answer within 2s"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--timeout 6s"), "{}", stderr(&o));
    // Exit 3 is --timeout's own verdict (the bug was: forever, until the harness killed it).

    let o = e.platform(&["status", "--request-timeout", "1s"]).await;
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not answer within 1s"),
        "{}",
        stderr(&o)
    );
    e.server.shutdown().await;
}

/// `resume` does not trust the cluster's `platform.ai/paused-replicas`: a huge, negative or
/// non-numeric value restores the model's configured replicas, and the output says what and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_does_not_trust_a_tampered_pause_annotation() {
    let e = env().await;
    // Only the Deployment (and its namespace), as its Argo CD app would create them.
    e.server
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "serving"}}))
        .unwrap();
    for (path, text) in e.repo.tree("clusters/ai-dev/models/qwen-gpu") {
        let v: Value = serde_yaml::from_str(&text).unwrap_or_else(|x| panic!("{path}: {x}"));
        if v["kind"] == "Deployment" {
            e.server.put(v).unwrap();
        }
    }
    for (value, why) in [
        ("99999999999", "not trusted"),
        ("abc", "is not a replica count"),
        ("-3", "is not a replica count"),
    ] {
        let mut dep = e
            .server
            .get("apps/v1", "Deployment", "serving", "qwen-gpu")
            .unwrap();
        dep["spec"]["replicas"] = json!(0);
        dep["metadata"]["annotations"]["platform.ai/paused-replicas"] = json!(value);
        e.server.put(dep).unwrap();
        let o = e.platform(&["resume", "qwen-gpu"]).await;
        assert!(o.status.success(), "{value}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("platform.ai/paused-replicas=\"{value}\" "))
                && err.contains(why)
                && err.contains("restored the configured 1")
                && err.contains("scaled 0 -> 1"),
            "{value}: {err}"
        );
        assert_resumed_to(&e, 1);
    }
    e.server.shutdown().await;
}

/// A kubeconfig is a credential file: a YAML error in it names the file, the line and the column,
/// never a line of it (the parser's snippet printed the token); and it is read as a capped regular
/// file (`/dev/zero` is refused at once instead of filling memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_kubeconfig_is_reported_without_echoing_its_credentials() {
    let repo = TempRepo::new();
    let kc = repo.path().join("secret-kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: sk-secret-123\n    \
         bad: [unclosed\ncontexts: []\n",
    )
    .unwrap();
    let o = run(&repo, &["status", "--kubeconfig", kc.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains("sk-secret"), "{all}");
    assert!(
        all.contains("secret-kubeconfig") && all.contains("at line "),
        "{all}"
    );
    let zero = repo.path().join("zero-kubeconfig");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let o = run(&repo, &["status", "--kubeconfig", zero.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("zero-kubeconfig") && stderr(&o).contains("character device"),
        "{}",
        stderr(&o)
    );
}

/// A Hugging Face cache snapshot: every file a relative symlink into `../../blobs/`.
fn hf_cache_snapshot(shards: &[&str], present: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let blobs = root.path().join("blobs");
    let snap = root.path().join("snapshots/0123abcd");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    let weight_map: serde_json::Map<String, Value> = shards
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("layer.{i}.weight"), json!(s)))
        .collect();
    let index = json!({"metadata": {"total_size": 0}, "weight_map": weight_map}).to_string();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "config.json".into(),
            b"{\"model_type\": \"qwen2\"}\n".to_vec(),
        ),
        ("tokenizer.json".into(), b"{}\n".to_vec()),
        ("model.safetensors.index.json".into(), index.into_bytes()),
    ];
    for (i, s) in present.iter().enumerate() {
        let body: Vec<u8> = (0..200_000u32).map(|j| (j * 7 + i as u32) as u8).collect();
        files.push((s.to_string(), body));
    }
    for (i, (name, body)) in files.iter().enumerate() {
        let blob = format!("blob{i:04}");
        std::fs::write(blobs.join(&blob), body).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snap.join(name)).unwrap();
    }
    (root, snap)
}

/// `--from-dir` on a Hugging Face cache snapshot (the most common local layout) follows the
/// symlinks to their files, says so, and stages every file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_model_from_a_hugging_face_cache_snapshot_follows_its_symlinks() {
    let e = env().await;
    let shards = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let (_root, snap) = hf_cache_snapshot(&shards, &shards);
    let dir = snap.to_str().unwrap();
    let o = e
        .platform(&["stage-model", "qwen-cpu", "--from-dir", dir, "-v"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("staged 5 file(s)"), "{err}");
    assert!(
        err.contains("5 of the 5 file(s) are symlinks")
            && err.contains("model-00002-of-00002.safetensors -> ../../blobs/"),
        "{err}"
    );
    let vol = e.server.volumes_dir().join("kserve/qwen-cpu-weights/qwen");
    for f in [
        "config.json",
        "model.safetensors.index.json",
        shards[0],
        shards[1],
    ] {
        let on_volume = std::fs::symlink_metadata(vol.join(f)).unwrap();
        assert!(
            on_volume.is_file(),
            "{f} is not a regular file on the volume"
        );
        assert_eq!(
            std::fs::read(vol.join(f)).unwrap(),
            std::fs::read(snap.join(f)).unwrap(),
            "{f}"
        );
    }
    e.server.shutdown().await;
}

/// `--from-dir` checks its file set before anything is copied: a shard the safetensors index
/// lists but the directory lacks, a link to a device and a link to a directory are refused with
/// the path, and no staging pod is started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_model_from_dir_refuses_missing_shards_and_odd_links_before_copying() {
    let e = env().await;
    let shards = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let (_root, snap) = hf_cache_snapshot(&shards, &shards[..1]);
    let dir = snap.to_str().unwrap();
    let o = e
        .platform(&["stage-model", "qwen-cpu", "--from-dir", dir])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("model.safetensors.index.json")
            && err.contains("lacks model-00002-of-00002.safetensors")
            && !err.contains("lacks model-00001"),
        "{err}"
    );
    // Excluded by the globs: said so.
    std::fs::write(snap.join(shards[1]), b"x").unwrap();
    let o = e
        .platform(&[
            "stage-model",
            "qwen-cpu",
            "--from-dir",
            dir,
            "--exclude",
            "model-00002-*",
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--include/--exclude globs leave out model-00002-of-00002.safetensors"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(snap.join(shards[1])).unwrap();
    // A link to a device where a shard should be.
    std::os::unix::fs::symlink("/dev/zero", snap.join(shards[1])).unwrap();
    let o = e
        .platform(&["stage-model", "qwen-cpu", "--from-dir", dir])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{}: a symlink to /dev/zero, which is a device",
            snap.join(shards[1]).display()
        )),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(snap.join(shards[1])).unwrap();
    // A link to a directory.
    std::fs::write(snap.join(shards[1]), b"x").unwrap();
    std::os::unix::fs::symlink("/tmp", snap.join("extra")).unwrap();
    let o = e
        .platform(&["stage-model", "qwen-cpu", "--from-dir", dir])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("extra: a symlink to the directory /tmp"),
        "{}",
        stderr(&o)
    );
    assert!(
        !e.server
            .request_log()
            .iter()
            .any(|r| r.method == "POST" && r.resource == "pods"),
        "a staging pod was started"
    );
    e.server.shutdown().await;
}

/// `stage-model --download-only --to DIR` does not overwrite the user's files: files there that
/// differ from the snapshot's are listed and the download refused, unless `--force`; files equal
/// to the snapshot's (a finished earlier run) are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_only_refuses_to_overwrite_files_unless_forced() {
    let emu = qwen_on_the_hub().await;
    let repo = TempRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    let mine = b"{\"my\": \"own config\"}".to_vec();
    std::fs::write(to.path().join("config.json"), &mine).unwrap();
    // Same size as the snapshot's weights, other bytes.
    let weights = emu
        .repo("Qwen/Qwen2.5-0.5B-Instruct")
        .get("model.safetensors")
        .unwrap();
    std::fs::write(
        to.path().join("model.safetensors"),
        vec![7u8; weights.size as usize],
    )
    .unwrap();
    std::fs::write(to.path().join("notes.txt"), b"untouched").unwrap();
    let download = |force: bool| {
        let mut cmd = repo.cmd();
        cmd.args([
            "stage-model",
            "--download-only",
            "--source",
            "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "--revision",
            "main",
            "--to",
            to.path().to_str().unwrap(),
        ]);
        if force {
            cmd.arg("--force");
        }
        for (k, v) in hub_envs(&emu, cache.path()) {
            cmd.env(k, v);
        }
        cmd.env_remove("HF_TOKEN")
            .env_remove("HUGGING_FACE_HUB_TOKEN")
            .timeout(Duration::from_secs(60));
        async move {
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap()
        }
    };
    let o = download(false).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("2 file(s) there differ")
            && err.contains("config.json (")
            && err.contains("model.safetensors (another sha256)")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(to.path().join("config.json")).unwrap(), mine);
    assert!(
        emu.file_requests().is_empty(),
        "downloaded before refusing: {:?}",
        emu.file_requests()
    );
    let o = download(true).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--force: replacing 2 file(s)"),
        "{}",
        stderr(&o)
    );
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        let want = emu
            .repo("Qwen/Qwen2.5-0.5B-Instruct")
            .get(f)
            .unwrap()
            .content();
        assert_eq!(std::fs::read(to.path().join(f)).unwrap(), want, "{f}");
    }
    assert_eq!(
        std::fs::read(to.path().join("notes.txt")).unwrap(),
        b"untouched"
    );
    // Again: everything there is the snapshot's, nothing to refuse, nothing downloaded.
    emu.clear_log();
    let o = download(false).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(emu.file_requests().is_empty(), "{:?}", emu.file_requests());
}

/// bootstrap on a cluster that says another name: refused before any write (and before the
/// manifest is even read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_refuses_a_cluster_that_says_another_name() {
    let e = env_with("prod-eu", Options::default()).await;
    e.server.clear_request_log();
    let o = e
        .platform(&[
            "bootstrap",
            "--yes",
            "--manifests",
            "/nonexistent/install.yaml",
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("wrong cluster") && stderr(&o).contains("prod-eu"),
        "{}",
        stderr(&o)
    );
    assert!(e.writes().is_empty(), "{:?}", e.writes());
    e.server.shutdown().await;
}

/// The target guard and bootstrap read the cluster identity with one check: a 500 or a 503 is
/// retried (kube's client retries only 429/503/504 by itself; the guard used to fail on a 500), and a
/// ConfigMap that cannot be read (403) leaves the kubeconfig's cluster entry to confirm the target,
/// or refuses with the same words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_identity_checks_retry_a_5xx_and_treat_a_403_alike() {
    use platform::actions::bootstrap::identity::{self, Identity};
    use platform::cluster::target::verify_identity;
    let e = env().await;
    let client = platform::cluster::Client::from(
        kube::Client::try_from(kube::Config::new(e.server.url().parse().unwrap())).unwrap(),
    );
    let fail = |n, status| {
        e.server
            .fail_next_matching(n, status, None, Some("cluster-identity"), Some("GET"))
    };
    fail(2, 500);
    fail(2, 503);
    assert_eq!(
        verify_identity(&client, "ai-dev", "elsewhere")
            .await
            .unwrap(),
        "cluster ai-dev (ConfigMap kube-system/cluster-identity)"
    );
    fail(2, 500);
    fail(2, 503);
    let id = identity::check(&client, "ai-dev", "elsewhere")
        .await
        .unwrap();
    assert_eq!(id, Identity::Matches);

    e.server.clear_faults();
    fail(1000, 403);
    let entry = "gke_proj_europe-west4_ai-dev";
    let guard = verify_identity(&client, "ai-dev", entry).await.unwrap();
    assert_eq!(
        guard,
        format!("cluster ai-dev (kubeconfig cluster entry {entry})")
    );
    let boot = identity::check(&client, "ai-dev", entry).await.unwrap();
    assert_eq!(boot.describe("ai-dev"), guard);
    assert_eq!(boot.to_record("ai-dev"), None, "nothing recorded on a 403");
    let guard = verify_identity(&client, "ai-dev", "prod")
        .await
        .unwrap_err();
    let boot = identity::check(&client, "ai-dev", "prod")
        .await
        .unwrap_err();
    assert_eq!(guard.to_string(), boot.to_string());
    assert!(guard.to_string().contains("cannot confirm"), "{guard}");
    e.server.clear_faults();
}

/// A llama.cpp model stages its one GGUF file, nothing else of the repository.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_model_takes_only_the_gguf_file_of_a_llama_cpp_model() {
    let e = env().await;
    let cfg = e.repo.read("environments/ai-dev/config.yaml").replace(
        "    servedName: qwen2.5-0.5b\n    preset: vllm-cpu\n",
        "    servedName: qwen2.5-0.5b\n    runtime: llama-cpp\n    file: model.gguf\n    preset: llama-cpp-cpu\n",
    );
    assert!(cfg.contains("file: model.gguf"));
    e.repo.write("environments/ai-dev/config.yaml", &cfg);
    let emu = qwen_on_the_hub().await;
    let cache = tempfile::tempdir().unwrap();
    let o = e
        .platform_env(&["stage-model", "qwen-cpu"], &hub_envs(&emu, cache.path()))
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let vol = e.server.volumes_dir().join("kserve/qwen-cpu-weights/qwen");
    let want = emu
        .repo("Qwen/Qwen2.5-0.5B-Instruct")
        .get("model.gguf")
        .unwrap()
        .content();
    assert_eq!(std::fs::read(vol.join("model.gguf")).unwrap(), want);
    let mut staged: Vec<String> = std::fs::read_dir(&vol)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    staged.sort();
    assert_eq!(staged, [".platform-staged.json", "model.gguf"]);
    e.server.shutdown().await;
}

/// doctor checks that the Secrets models reference exist, reading their metadata only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_referenced_secrets_without_reading_them() {
    let e = env().await;
    let cfg = e.repo.read("environments/ai-dev/config.yaml").replace(
        "    servedName: qwen2.5-0.5b\n",
        "    servedName: qwen2.5-0.5b\n    hfTokenSecret: { name: hf-token, key: HF_TOKEN }\n",
    );
    e.repo.write("environments/ai-dev/config.yaml", &cfg);
    let secret_check = |o: &std::process::Output| -> Value {
        let v: Value =
            serde_json::from_str(&stdout(o)).unwrap_or_else(|x| panic!("{x}: {}", stdout(o)));
        v.as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "secret")
            .cloned()
            .unwrap_or_else(|| panic!("no secret check: {v}"))
    };
    let c = secret_check(&e.platform(&["doctor", "-o", "json"]).await);
    assert_eq!(c["level"], "FAIL", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("Secret kserve/hf-token (hfTokenSecret of model qwen-cpu) does not exist"),
        "{c}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("create secret generic hf-token --from-file=HF_TOKEN="),
        "{c}"
    );
    // The table's suggested kubectl is aimed at the target, never at the global context.
    let o = e.platform(&["doctor"]).await;
    let kc = format!("--kubeconfig {}", e.kubeconfig.display());
    assert!(
        stdout(&o).contains(&format!("`kubectl {kc} --context ")),
        "{}",
        stdout(&o)
    );
    e.server
        .put(json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": "hf-token", "namespace": "kserve"},
                    "data": {"HF_TOKEN": platform_testkit::apiserver::base64(b"hf_secretvalue123456")}}))
        .unwrap();
    let o = e.platform(&["doctor", "-o", "json", "-v"]).await;
    let c = secret_check(&o);
    assert_eq!(c["level"], "OK", "{c}");
    assert!(!format!("{}{}", stdout(&o), stderr(&o)).contains("hf_secretvalue"));
    e.server.shutdown().await;
}

/// `up` creates the Secret KServe reads S3 weights with from the user's AWS environment, before the
/// model syncs; never shows the keys; leaves an existing Secret alone; says how to create it when
/// there are no keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_creates_the_s3_secret_from_the_aws_environment() {
    let e = env().await;
    let cfg = e
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("    source: hf://Qwen/Qwen2.5-0.5B-Instruct\n    revision: main\n    servedName: qwen2.5-0.5b\n",
                 "    source: s3://models/qwen2.5-0.5b\n    revision: main\n    servedName: qwen2.5-0.5b\n")
        .replace("      staged: true\n      dir: qwen\n", "      staged: false\n      dir: qwen\n");
    assert!(
        cfg.contains("s3://models/qwen2.5-0.5b") && cfg.contains("staged: false\n      dir: qwen")
    );
    e.repo.write("environments/ai-dev/config.yaml", &cfg);
    e.repo
        .cmd()
        .args(["root", "--profile", "full"])
        .assert()
        .success();
    e.seed_child_apps();
    let secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let up = |envs: Vec<(&'static str, &'static str)>| {
        let e = &e;
        async move {
            e.platform_env(
                &[
                    "up",
                    "--allow-unpushed",
                    "--sync-models",
                    "--timeout",
                    "60s",
                    "-v",
                ],
                &envs,
            )
            .await
        }
    };
    // No keys: said how to create it, and up goes on.
    let o = up(vec![]).await;
    let err = stderr(&o);
    assert!(
        err.contains(
            "Secret kserve/platform-s3-credentials is missing and no AWS credentials are set"
        ),
        "{err}"
    );
    assert!(e
        .server
        .get("v1", "Secret", "kserve", "platform-s3-credentials")
        .is_none());
    let o = up(vec![
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
    ])
    .await;
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("created Secret kserve/platform-s3-credentials from your AWS credentials"),
        "{all}"
    );
    assert!(
        !all.contains(secret_key) && !all.contains("AKIAIOSFODNN7EXAMPLE"),
        "{all}"
    );
    let s = e
        .server
        .get("v1", "Secret", "kserve", "platform-s3-credentials")
        .unwrap();
    let data = |k: &str| -> String {
        use base64ct::Encoding;
        let b = s
            .pointer(&format!("/data/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        String::from_utf8(base64ct::Base64::decode_vec(b).unwrap_or_default()).unwrap_or_default()
    };
    assert_eq!(data("AWS_SECRET_ACCESS_KEY"), secret_key, "{s}");
    assert_eq!(
        s.pointer("/metadata/labels/app.kubernetes.io~1managed-by"),
        Some(&json!("platform"))
    );
    // An existing Secret is the user's: left as it is.
    let o = up(vec![
        ("AWS_ACCESS_KEY_ID", "AKIAOTHER"),
        ("AWS_SECRET_ACCESS_KEY", "other-secret-value-000000"),
    ])
    .await;
    assert!(
        stderr(&o).contains("exists: left as it is"),
        "{}",
        stderr(&o)
    );
    let s = e
        .server
        .get("v1", "Secret", "kserve", "platform-s3-credentials")
        .unwrap();
    assert!(!s.to_string().contains("other-secret"), "{s}");
    e.server.shutdown().await;
}

/// diff --cluster with credentials that may read an object but not dry-run a patch of it (403):
/// the object is listed as not compared and the rest is compared (it used to fail with exit 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_cluster_lists_what_it_may_not_dry_run_instead_of_failing() {
    let e = env().await;
    let project: Value =
        serde_yaml::from_str(&e.repo.read("clusters/ai-dev/project.yaml")).unwrap();
    e.server.put(project).unwrap();
    e.server
        .fail_next_matching(1000, 403, None, Some("/appprojects/"), Some("PATCH"));
    let o = e.platform(&["diff", "--cluster", "-o", "json"]).await;
    assert_ne!(o.status.code(), Some(4), "{}", stderr(&o));
    let v: Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|x| panic!("{x}: {}", stdout(&o)));
    let not = v["notCompared"].to_string();
    assert!(
        not.contains("AppProject") && not.contains("may read it but not dry-run a patch"),
        "{v}"
    );
    assert!(v["compared"].as_u64().unwrap() > 0, "{v}");
}
