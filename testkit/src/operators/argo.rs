//! Argo CD's application controller, as far as platform can observe it, for the AppProjects a test
//! registers ([`ArgoCd::serve`]); Applications of any other project are left alone, as if no Argo CD
//! ran for them ([`ArgoCd::forget`] turns it off mid-test).
//!
//! - A source in the test's GitOps repository is read from the bare remote at the synced revision
//!   (a branch resolves to its tip): every `*.yaml` of `path` (recursively with `directory.recurse`),
//!   applied in sync-wave order (server-side apply, field manager `argocd-controller`, tracking
//!   annotation), into the destination namespace (`CreateNamespace=true` creates it). A root app
//!   therefore creates its child Applications, a model app the model's objects.
//! - Other sources (Helm charts, other repositories, a Kustomize directory) cannot be fetched or
//!   built here: nothing is applied and the app is Synced at their targetRevision.
//! - Manual apps sync when a client writes `operation`; automated apps when the branch moves or a
//!   resource went missing (selfHeal), pruning what the new revision no longer holds.
//! - Status goes through the main resource (the CRD has no status subresource): `operationState`
//!   Running, then Succeeded/Failed with `finishedAt` and `operation` cleared, `sync`, `health`
//!   (Argo CD's health rules for the kinds platform renders; a child Application's health only with
//!   the `argocd-cm` health customization, as in Argo CD), `resources`, `reconciledAt` — all times
//!   in whole seconds, as Argo CD writes them.
//! - Deleting an app with `resources-finalizer.argocd.argoproj.io` deletes its resources
//!   (foreground) and removes the finalizer once they are gone; a resource annotated
//!   `argocd.argoproj.io/sync-options: Delete=false` (or `Prune=false`) is left alone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{dyn_api, json as to_json, now, s, Kinds, TICK};

const MANAGER: &str = "argocd-controller";
const FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
const NS: &str = "argocd";
const TRACKING: &str = "argocd.argoproj.io/tracking-id";

#[derive(Clone)]
struct Served {
    repo_url: String,
    git_dir: PathBuf,
}

#[derive(Default)]
pub struct ArgoCd {
    projects: Mutex<HashMap<String, Served>>,
    stopped: std::sync::atomic::AtomicBool,
}

/// One desired object of an app.
#[derive(Clone, Debug)]
struct Desired {
    obj: Value,
    wave: i64,
}

impl ArgoCd {
    /// Reconcile the Applications of `project`, reading `repo_url` from the bare repository `git_dir`.
    pub fn serve(&self, project: &str, repo_url: &str, git_dir: &Path) {
        self.projects.lock().unwrap().insert(
            project.to_string(),
            Served {
                repo_url: repo_url.to_string(),
                git_dir: git_dir.to_path_buf(),
            },
        );
    }

    /// Stop reconciling `project` (Argo CD gone: finalizers are no longer honoured).
    pub fn forget(&self, project: &str) {
        self.projects.lock().unwrap().remove(project);
    }

    /// End [`ArgoCd::run`] (its API server is going away).
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub async fn run(&self, client: kube::Client, kinds: Kinds) {
        let apps = dyn_api(
            &client,
            "argoproj.io",
            "v1alpha1",
            "Application",
            "applications",
            Some(NS),
        );
        while !self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(list) = apps.list(&ListParams::default()).await {
                let health_check = app_health_customised(&client).await;
                let by_name: BTreeMap<String, Value> = list
                    .items
                    .iter()
                    .map(|o| (o.metadata.name.clone().unwrap_or_default(), to_json(o)))
                    .collect();
                for v in by_name.values() {
                    let served = self
                        .projects
                        .lock()
                        .unwrap()
                        .get(s(v, "/spec/project"))
                        .cloned();
                    if let Some(served) = served {
                        let ctx = Ctx {
                            client: &client,
                            kinds: &kinds,
                            served: &served,
                            apps: &by_name,
                            health_check,
                        };
                        ctx.reconcile(v).await;
                    }
                }
            }
            tokio::time::sleep(TICK).await;
        }
    }
}

async fn app_health_customised(client: &kube::Client) -> bool {
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), NS);
    matches!(cms.get_opt("argocd-cm").await, Ok(Some(cm))
        if cm.data.as_ref().is_some_and(|d| d.contains_key("resource.customizations.health.argoproj.io_Application")))
}

struct Ctx<'a> {
    client: &'a kube::Client,
    kinds: &'a Kinds,
    served: &'a Served,
    apps: &'a BTreeMap<String, Value>,
    health_check: bool,
}

/// The app's sources (single or multi).
fn sources(app: &Value) -> Vec<Value> {
    if let Some(v) = app.pointer("/spec/sources").and_then(Value::as_array) {
        return v.clone();
    }
    app.pointer("/spec/source").cloned().into_iter().collect()
}

fn is_sha(r: &str) -> bool {
    r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit())
}

fn health_rank(h: &str) -> u8 {
    match h {
        "Healthy" => 0,
        "Suspended" => 1,
        "Progressing" => 2,
        "Missing" => 3,
        "Unknown" => 4,
        _ => 5, // Degraded
    }
}

impl Ctx<'_> {
    fn ours(&self, src: &Value) -> bool {
        s(src, "/repoURL") == self.served.repo_url
    }

    /// A source's revision as a commit (our repository) or as written (anything else).
    fn resolve(&self, src: &Value, wanted: Option<&str>) -> Result<String, String> {
        let rev = wanted
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| s(src, "/targetRevision"));
        if !self.ours(src) {
            return Ok(rev.to_string());
        }
        let repo = git2::Repository::open_bare(&self.served.git_dir).map_err(|e| e.to_string())?;
        if is_sha(rev) {
            return Ok(rev.to_string());
        }
        let refname = if rev.is_empty() || rev == "HEAD" {
            "HEAD".to_string()
        } else {
            format!("refs/heads/{rev}")
        };
        let oid = repo
            .revparse_single(&refname)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| format!("unable to resolve '{rev}' to a commit SHA: {e}"))?
            .id();
        Ok(oid.to_string())
    }

    /// Every object under the source's path at `commit`.
    fn manifests(&self, src: &Value, commit: &str) -> Result<Vec<Desired>, String> {
        let Some(path) = src.get("path").and_then(Value::as_str) else {
            return Ok(Vec::new());
        };
        if !self.ours(src) {
            return Ok(Vec::new());
        }
        let recurse = src.pointer("/directory/recurse").and_then(Value::as_bool) == Some(true);
        let repo = git2::Repository::open_bare(&self.served.git_dir).map_err(|e| e.to_string())?;
        let oid = git2::Oid::from_str(commit).map_err(|e| e.to_string())?;
        let tree = repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(|e| format!("commit {commit}: {e}"))?;
        let dir = tree
            .get_path(Path::new(path))
            .and_then(|e| e.to_object(&repo))
            .and_then(|o| o.peel_to_tree())
            .map_err(|_| format!("{path}: app path does not exist"))?;
        if dir.get_name("kustomization.yaml").is_some() {
            // A Kustomize app (Argo CD's own, with a remote base): no kustomize here, so, like other
            // sources that cannot be fetched, nothing is applied.
            return Ok(Vec::new());
        }
        let mut texts = Vec::new();
        dir.walk(git2::TreeWalkMode::PreOrder, |root, e| {
            let name = e.name().unwrap_or("");
            if !recurse && !root.is_empty() {
                return git2::TreeWalkResult::Skip;
            }
            if e.kind() == Some(git2::ObjectType::Blob)
                && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
            {
                if let Ok(b) = repo.find_blob(e.id()) {
                    texts.push((
                        format!("{root}{name}"),
                        String::from_utf8_lossy(b.content()).into_owned(),
                    ));
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (file, text) in texts {
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let v = Value::deserialize(doc).map_err(|e| format!("{path}/{file}: {e}"))?;
                if v.is_null() {
                    continue;
                }
                let wave = v
                    .pointer("/metadata/annotations/argocd.argoproj.io~1sync-wave")
                    .and_then(Value::as_str)
                    .and_then(|w| w.parse().ok())
                    .unwrap_or(0);
                out.push(Desired { obj: v, wave });
            }
        }
        // Namespaces first, then by wave (Argo CD's phase/wave/kind ordering, reduced).
        out.sort_by_key(|d| (s(&d.obj, "/kind") != "Namespace", d.wave));
        Ok(out)
    }

    fn app_name<'v>(&self, app: &'v Value) -> &'v str {
        s(app, "/metadata/name")
    }

    async fn patch_app(&self, app: &Value, patch: Value) {
        let api = dyn_api(
            self.client,
            "argoproj.io",
            "v1alpha1",
            "Application",
            "applications",
            Some(NS),
        );
        if let Err(e) = api
            .patch(
                self.app_name(app),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            // A stand-in that cannot write status is a bug of the test: say it on the terminal.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "argo stand-in: writing Application {}: {}",
                self.app_name(app),
                e.to_string().chars().take(400).collect::<String>()
            );
        }
    }

    async fn reconcile(&self, app: &Value) {
        if app.pointer("/metadata/deletionTimestamp").is_some() {
            self.finalize(app).await;
            return;
        }
        let srcs = sources(app);
        let op = app.get("operation").filter(|o| !o.is_null()).cloned();
        let op_rev = op
            .as_ref()
            .and_then(|o| o.pointer("/sync/revision"))
            .and_then(Value::as_str);
        let mut revisions = Vec::new();
        for src in &srcs {
            // An operation's revision applies to the source of this repository.
            let wanted = if self.ours(src) { op_rev } else { None };
            match self.resolve(src, wanted) {
                Ok(r) => revisions.push(r),
                Err(e) => {
                    self.comparison_error(app, &e).await;
                    return;
                }
            }
        }
        let mut desired = Vec::new();
        for (src, rev) in srcs.iter().zip(&revisions) {
            match self.manifests(src, rev) {
                Ok(d) => desired.extend(d),
                Err(e) => {
                    self.comparison_error(app, &e).await;
                    return;
                }
            }
        }
        let dest_ns = s(app, "/spec/destination/namespace").to_string();
        let live = self.live(&desired, &dest_ns).await;
        let missing = live.iter().any(Option::is_none);
        let synced_rev = synced_revisions(app);
        let automated = app
            .pointer("/spec/syncPolicy/automated")
            .is_some_and(|a| !a.is_null());
        let self_heal = app
            .pointer("/spec/syncPolicy/automated/selfHeal")
            .and_then(Value::as_bool)
            == Some(true);
        let auto_due = automated && (synced_rev != revisions || (missing && self_heal));
        if op.is_some() || auto_due {
            let op = op.unwrap_or_else(|| {
                json!({"sync": {"revision": revisions.first().cloned().unwrap_or_default(),
                                "prune": app.pointer("/spec/syncPolicy/automated/prune").and_then(Value::as_bool).unwrap_or(false)},
                       "initiatedBy": {"automated": true}})
            });
            self.sync(app, op, &srcs, &revisions, &desired, &dest_ns)
                .await;
            return;
        }
        // A refresh: compare and assess health.
        let (sync, health, msg, resources) =
            self.assess(app, &desired, &live, &synced_rev, &revisions);
        let now_status = json!({"sync": sync_status(&srcs, &revisions, sync, app), "health": health_json(&health, &msg), "resources": resources});
        let old = json!({"sync": app.pointer("/status/sync").cloned().unwrap_or(Value::Null),
                         "health": app.pointer("/status/health").cloned().unwrap_or(Value::Null),
                         "resources": app.pointer("/status/resources").cloned().unwrap_or(Value::Null)});
        if now_status != old || app.pointer("/status/reconciledAt").is_none() {
            let mut st = now_status;
            st["reconciledAt"] = json!(now());
            self.patch_app(app, json!({ "status": st })).await;
        }
    }

    async fn comparison_error(&self, app: &Value, msg: &str) {
        if app
            .pointer("/status/conditions/0/message")
            .and_then(Value::as_str)
            == Some(msg)
        {
            return;
        }
        let t = now();
        self.patch_app(
            app,
            json!({"status": {
                "sync": {"status": "Unknown"},
                "health": {"status": "Unknown"},
                "conditions": [{"type": "ComparisonError", "message": msg, "lastTransitionTime": t}],
                "reconciledAt": t,
            }}),
        )
        .await;
    }

    /// Each desired object's live copy.
    async fn live(&self, desired: &[Desired], dest_ns: &str) -> Vec<Option<Value>> {
        let mut out = Vec::new();
        for d in desired {
            let ns = match s(&d.obj, "/metadata/namespace") {
                "" => dest_ns,
                n => n,
            };
            let got = match self
                .kinds
                .api(s(&d.obj, "/apiVersion"), s(&d.obj, "/kind"), ns)
                .await
            {
                Ok((api, _)) => api
                    .get_opt(s(&d.obj, "/metadata/name"))
                    .await
                    .ok()
                    .flatten()
                    .map(|o: DynamicObject| to_json(&o)),
                Err(_) => None,
            };
            out.push(got);
        }
        out
    }

    /// Sync status, app health (worst of its resources) with a message, and the resources list.
    fn assess(
        &self,
        app: &Value,
        desired: &[Desired],
        live: &[Option<Value>],
        synced_rev: &[String],
        revisions: &[String],
    ) -> (&'static str, String, String, Vec<Value>) {
        let mut worst = ("Healthy".to_string(), String::new());
        let mut resources = Vec::new();
        let mut out_of_sync = synced_rev != revisions;
        let dest_ns = s(app, "/spec/destination/namespace");
        for (d, l) in desired.iter().zip(live) {
            let (h, m) = match l {
                None => ("Missing".to_string(), String::new()),
                Some(l) => self.health(l),
            };
            out_of_sync |= l.is_none();
            if health_rank(&h) > health_rank(&worst.0) {
                worst = (h.clone(), m.clone());
            }
            let (group, version) = match s(&d.obj, "/apiVersion").split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), s(&d.obj, "/apiVersion").to_string()),
            };
            let ns = match s(&d.obj, "/metadata/namespace") {
                "" if s(&d.obj, "/kind") != "Namespace" => dest_ns,
                n => n,
            };
            resources.push(
                json!({"group": group, "version": version, "kind": s(&d.obj, "/kind"),
                "namespace": ns, "name": s(&d.obj, "/metadata/name"),
                "status": if l.is_some() {"Synced"} else {"OutOfSync"},
                "health": {"status": h}}),
            );
        }
        (
            if out_of_sync { "OutOfSync" } else { "Synced" },
            worst.0,
            worst.1,
            resources,
        )
    }

    /// Argo CD's built-in health for the kinds platform renders.
    fn health(&self, l: &Value) -> (String, String) {
        let st = |p: &str| l.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let h = |x: &str, m: String| (x.to_string(), m);
        match s(l, "/kind") {
            "Deployment" | "StatefulSet" => {
                let want = l
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                if st("/status/observedGeneration") < st("/metadata/generation") {
                    return h("Progressing", "Waiting for rollout to finish: observed generation less than desired generation".into());
                }
                if let Some(c) = super::condition(l, "Progressing") {
                    if s(c, "/reason") == "ProgressDeadlineExceeded" {
                        return h(
                            "Degraded",
                            format!(
                                "Deployment {:?} exceeded its progress deadline",
                                s(l, "/metadata/name")
                            ),
                        );
                    }
                }
                let ready = if s(l, "/kind") == "Deployment" {
                    st("/status/availableReplicas")
                } else {
                    st("/status/readyReplicas")
                };
                if ready < want {
                    return h("Progressing", format!("Waiting for rollout to finish: {ready} of {want} updated replicas are available..."));
                }
                h("Healthy", String::new())
            }
            "PersistentVolumeClaim" => match s(l, "/status/phase") {
                "Bound" => h("Healthy", String::new()),
                "Lost" => h("Degraded", String::new()),
                _ => h("Progressing", String::new()),
            },
            "Service" if s(l, "/spec/type") == "LoadBalancer" => {
                if l.pointer("/status/loadBalancer/ingress/0").is_some() {
                    h("Healthy", String::new())
                } else {
                    h("Progressing", String::new())
                }
            }
            "InferenceService" | "LLMInferenceService" => {
                if super::condition(l, "Stopped").is_some_and(|c| c["status"] == "True") {
                    return h("Suspended", "stopped".into());
                }
                match super::condition(l, "Ready") {
                    Some(c) if c["status"] == "True" => h("Healthy", String::new()),
                    Some(c) if s(c, "/reason") == "Stopped" => h("Suspended", "stopped".into()),
                    Some(c) => h("Progressing", s(c, "/message").to_string()),
                    None => h("Progressing", "Waiting for status".into()),
                }
            }
            "Application" if self.health_check => {
                // Through the health customization: the child's own health (Progressing until it has one).
                let name = s(l, "/metadata/name");
                let child = self.apps.get(name).unwrap_or(l);
                match child
                    .pointer("/status/health/status")
                    .and_then(Value::as_str)
                {
                    Some(x) => h(x, s(child, "/status/health/message").to_string()),
                    None => h("Progressing", String::new()),
                }
            }
            _ => h("Healthy", String::new()),
        }
    }

    async fn sync(
        &self,
        app: &Value,
        op: Value,
        srcs: &[Value],
        revisions: &[String],
        desired: &[Desired],
        dest_ns: &str,
    ) {
        let started = app
            .pointer("/status/operationState/startedAt")
            .filter(|_| s(app, "/status/operationState/phase") == "Running")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(now);
        self.patch_app(
            app,
            json!({"status": {"operationState": {"operation": op, "phase": "Running",
                "message": "one or more tasks are running", "startedAt": started}}}),
        )
        .await;
        let name = self.app_name(app).to_string();
        let sync_opts: Vec<String> = op
            .pointer("/sync/syncOptions")
            .or_else(|| app.pointer("/spec/syncPolicy/syncOptions"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut failure = None;
        if sync_opts.iter().any(|o| o == "CreateNamespace=true") && !dest_ns.is_empty() {
            let ns =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": dest_ns}});
            if let Err(e) = self.apply(&name, &ns, dest_ns).await {
                failure = Some(e);
            }
        }
        let mut results = Vec::new();
        if failure.is_none() {
            for d in desired {
                let gv = s(&d.obj, "/apiVersion");
                let (group, version) = gv.split_once('/').unwrap_or(("", gv));
                match self.apply(&name, &d.obj, dest_ns).await {
                    Ok(()) => results.push(json!({"group": group, "version": version, "kind": s(&d.obj, "/kind"), "name": s(&d.obj, "/metadata/name"),
                        "namespace": s(&d.obj, "/metadata/namespace"), "status": "Synced", "message": "configured"})),
                    Err(e) => {
                        results.push(json!({"group": group, "version": version, "kind": s(&d.obj, "/kind"), "name": s(&d.obj, "/metadata/name"),
                            "namespace": s(&d.obj, "/metadata/namespace"), "status": "SyncFailed", "message": e}));
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        // Prune what the synced revision no longer holds.
        let prune = op.pointer("/sync/prune").and_then(Value::as_bool) == Some(true);
        if failure.is_none() && prune {
            self.prune(app, desired, dest_ns).await;
        }
        let finished = now();
        let (phase, message) = match &failure {
            None => (
                "Succeeded",
                "successfully synced (all tasks run)".to_string(),
            ),
            Some(e) => (
                "Failed",
                format!("one or more objects failed to apply, reason: {e}"),
            ),
        };
        let live = self.live(desired, dest_ns).await;
        let synced: Vec<String> = if failure.is_none() {
            revisions.to_vec()
        } else {
            synced_revisions(app)
        };
        let (sync, health, msg, resources) = self.assess(app, desired, &live, &synced, revisions);
        let mut sync_result = json!({"resources": results,
            "revision": revisions.first().cloned().unwrap_or_default()});
        if app.pointer("/spec/sources").is_some() {
            sync_result["revisions"] = json!(revisions);
        }
        let mut status = json!({
            "operationState": {"operation": op, "phase": phase, "message": message,
                               "startedAt": started, "finishedAt": finished, "syncResult": sync_result},
            "health": health_json(&health, &msg),
            "resources": resources,
            "reconciledAt": now(),
        });
        if failure.is_none() {
            status["sync"] = sync_status(srcs, revisions, sync, app);
        }
        self.patch_app(app, json!({"operation": null, "status": status}))
            .await;
    }

    async fn apply(&self, app: &str, obj: &Value, dest_ns: &str) -> Result<(), String> {
        let mut obj = obj.clone();
        let (api, namespaced) = self
            .kinds
            .api(s(&obj, "/apiVersion"), s(&obj, "/kind"), {
                let n = s(&obj, "/metadata/namespace");
                if n.is_empty() {
                    dest_ns
                } else {
                    n
                }
            })
            .await?;
        let ns = match s(&obj, "/metadata/namespace") {
            "" => dest_ns.to_string(),
            n => n.to_string(),
        };
        let name = s(&obj, "/metadata/name").to_string();
        let tracking = format!(
            "{app}:{}/{}:{}/{name}",
            group_of(&obj),
            s(&obj, "/kind"),
            if namespaced { ns.as_str() } else { "" }
        );
        let m = obj
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or("the object has no metadata")?;
        if namespaced {
            m.insert("namespace".into(), json!(ns));
        }
        m.entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("metadata.annotations is not a map")?
            .insert(TRACKING.into(), json!(tracking));
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await
        .map(|_| ())
        .map_err(|e| match e {
            kube::Error::Api(r) => r.message,
            e => e.to_string(),
        })
    }

    /// Delete the resources the app tracked but no longer wants.
    async fn prune(&self, app: &Value, desired: &[Desired], dest_ns: &str) {
        let want: Vec<(String, String, String)> = desired
            .iter()
            .map(|d| {
                let ns = match s(&d.obj, "/metadata/namespace") {
                    "" => dest_ns,
                    n => n,
                };
                (
                    s(&d.obj, "/kind").to_string(),
                    ns.to_string(),
                    s(&d.obj, "/metadata/name").to_string(),
                )
            })
            .collect();
        for r in app
            .pointer("/status/resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let key = (
                s(&r, "/kind").to_string(),
                s(&r, "/namespace").to_string(),
                s(&r, "/name").to_string(),
            );
            if want
                .iter()
                .any(|w| w.0 == key.0 && w.2 == key.2 && (w.1 == key.1 || key.1.is_empty()))
            {
                continue;
            }
            self.delete_resource(&r).await;
        }
    }

    /// Delete one tracked resource; true while it still exists.
    async fn delete_resource(&self, r: &Value) -> bool {
        let av = match s(r, "/group") {
            "" => s(r, "/version").to_string(),
            g => format!("{g}/{}", s(r, "/version")),
        };
        let Ok((api, _)) = self.kinds.api(&av, s(r, "/kind"), s(r, "/namespace")).await else {
            return false;
        };
        match api.get_opt(s(r, "/name")).await {
            Ok(Some(o)) => {
                // `argocd.argoproj.io/sync-options: Delete=false` (app deletion) or
                // `Prune=false` (pruning) keeps the object, as Argo CD does.
                let kept = o
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("argocd.argoproj.io/sync-options"))
                    .is_some_and(|v| {
                        v.split(',')
                            .any(|o| o.trim() == "Delete=false" || o.trim() == "Prune=false")
                    });
                if kept {
                    return false;
                }
                if o.metadata.deletion_timestamp.is_none() {
                    let _ = api.delete(s(r, "/name"), &DeleteParams::foreground()).await;
                }
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// The resources finalizer: delete every resource of the app, then let the app go.
    async fn finalize(&self, app: &Value) {
        let has = app
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == FINALIZER));
        if !has {
            return;
        }
        let mut left = false;
        for r in app
            .pointer("/status/resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            left |= self.delete_resource(&r).await;
        }
        if left {
            return;
        }
        let rest: Vec<Value> = app
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|x| x != FINALIZER)
            .collect();
        self.patch_app(app, json!({"metadata": {"finalizers": rest}}))
            .await;
    }
}

fn group_of(obj: &Value) -> String {
    s(obj, "/apiVersion")
        .split_once('/')
        .map(|(g, _)| g.to_string())
        .unwrap_or_default()
}

fn synced_revisions(app: &Value) -> Vec<String> {
    if let Some(r) = app
        .pointer("/status/sync/revisions")
        .and_then(Value::as_array)
    {
        return r
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
    }
    app.pointer("/status/sync/revision")
        .and_then(Value::as_str)
        .map(|r| vec![r.to_string()])
        .unwrap_or_default()
}

fn sync_status(srcs: &[Value], revisions: &[String], status: &str, app: &Value) -> Value {
    let multi = app.pointer("/spec/sources").is_some();
    let mut compared =
        json!({"destination": app.pointer("/spec/destination").cloned().unwrap_or(json!({}))});
    if multi {
        compared["sources"] = json!(srcs);
        json!({"status": status, "revisions": revisions, "comparedTo": compared})
    } else {
        compared["source"] = srcs.first().cloned().unwrap_or(json!({}));
        json!({"status": status, "revision": revisions.first().cloned().unwrap_or_default(), "comparedTo": compared})
    }
}

fn health_json(h: &str, msg: &str) -> Value {
    if msg.is_empty() {
        json!({ "status": h })
    } else {
        json!({"status": h, "message": msg})
    }
}
