//! Ordered teardown that leaves nothing billable behind, touching only what platform manages:
//!  1. stop the root apps from re-creating their children (auto-sync off);
//!  2. pause every model;
//!  3. delete the manual serving apps (models, serving layers' Gateways) and wait for them;
//!  4. delete the remaining Gateways platform manages and wait until their LoadBalancer Services are gone;
//!  5. delete the model PVCs (unless kept) and wait for their PVs;
//!  6. delete the Applications in reverse wave order (then the root apps and the AppProject), waiting
//!     for each to disappear and detecting finalizers that never finish;
//!  7. audit: every surviving Gateway, LoadBalancer Service, PVC, Released/Retain PV, InferenceService,
//!     LLMInferenceService, Deployment/StatefulSet platform renders or its apps track, Namespace it
//!     created, its AppProject and Applications, in the namespaces platform manages.
//!
//! With `--strip-finalizers`, an Application stuck on Argo CD's resources finalizer (Argo CD gone)
//! has its resources deleted by platform before the finalizer is removed: nobody else would.
//!
//! Re-running after a partial teardown continues: every step skips what is already gone.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch};
use serde::Serialize;
use serde_json::{json, Value};

use super::kinds::{self, Kind};
use super::retry::retry;
use super::{apply, pause, ClusterError};
use crate::catalog::resolve::{AppKind, Plan};
use crate::consts;
use crate::render::context::root_app_name;
use crate::ui::progress::Reporter;

#[derive(Debug, Clone)]
pub struct Options {
    pub keep_pvcs: bool,
    pub strip_finalizers: bool,
    /// How long an object may stay terminating before its finalizer counts as stuck.
    pub finalizer_timeout: Duration,
    /// How long to wait for LoadBalancer Services and PVs to be released.
    pub release_timeout: Duration,
}

/// One planned deletion.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// A survivor found by the audit.
#[derive(Debug, Clone, Serialize)]
pub struct Survivor {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub detail: String,
}

fn managed_selector() -> String {
    format!("{}={}", consts::LABEL_MANAGED_BY, consts::MANAGED_BY_VALUE)
}

fn name_of(o: &DynamicObject) -> String {
    o.metadata.name.clone().unwrap_or_default()
}

/// The namespaces platform manages (every destination of the AppProject but argocd itself).
pub fn managed_namespaces(plan: &Plan) -> BTreeSet<String> {
    plan.project_namespaces
        .iter()
        .filter(|n| *n != consts::ARGOCD_NAMESPACE)
        .cloned()
        .collect()
}

/// Applications in deletion order: manual serving apps first, then catalog apps by reverse (layer, wave),
/// then the root apps (reverse layer order).
pub fn app_order(plan: &Plan) -> (Vec<String>, Vec<String>, Vec<String>) {
    // plan.apps is in bring-up order: models (wave 4) go before their layer's Gateway app (wave 3).
    let serving: Vec<String> = plan
        .apps
        .iter()
        .rev()
        .filter(|a| a.kind != AppKind::Catalog)
        .map(|a| a.name.clone())
        .collect();
    let mut catalog: Vec<&crate::catalog::resolve::PlannedApp> = plan
        .apps
        .iter()
        .filter(|a| a.kind == AppKind::Catalog)
        .collect();
    catalog.reverse(); // plan.apps is in bring-up order
    let roots: Vec<String> = plan
        .profile
        .layers
        .iter()
        .rev()
        .map(|l| root_app_name(&plan.env, l))
        .collect();
    (
        serving,
        catalog.into_iter().map(|a| a.name.clone()).collect(),
        roots,
    )
}

async fn list(
    client: &kube::Client,
    kind: Kind,
    ns: &str,
    selector: Option<&str>,
) -> Result<Vec<DynamicObject>, ClusterError> {
    let api = kind.api(client, ns);
    let mut lp = ListParams::default();
    if let Some(s) = selector {
        lp = lp.labels(s);
    }
    Ok(retry(|| api.list(&lp))
        .await
        .map_err(|e| ClusterError::api(format!("listing {} in {ns}", kind.plural), e))?
        .items)
}

/// The steps a teardown would take now (for --dry-run and for the confirmation prompt).
pub async fn plan_steps(
    client: &kube::Client,
    plan: &Plan,
    opts: &Options,
) -> Result<Vec<Step>, ClusterError> {
    let mut steps = Vec::new();
    let argo = kinds::APPLICATION.api(client, consts::ARGOCD_NAMESPACE);
    let (serving, catalog, roots) = app_order(plan);
    for r in &roots {
        if retry(|| argo.get_opt(r))
            .await
            .map_err(|e| ClusterError::api("reading Applications", e))?
            .is_some()
        {
            steps.push(Step {
                step: "1 disable auto-sync".into(),
                kind: "Application".into(),
                namespace: consts::ARGOCD_NAMESPACE.into(),
                name: r.clone(),
            });
        }
    }
    for m in &plan.models {
        if pause::state(client, m).await?.is_some() {
            steps.push(Step {
                step: "2 pause".into(),
                kind: "model".into(),
                namespace: m.namespace.clone(),
                name: m.name.clone(),
            });
        }
    }
    let lp = ListParams::default();
    let existing: BTreeSet<String> = retry(|| argo.list(&lp))
        .await
        .map_err(|e| ClusterError::api("listing Applications", e))?
        .items
        .iter()
        .map(name_of)
        .collect();
    for a in serving.iter().filter(|a| existing.contains(*a)) {
        steps.push(Step {
            step: "3 delete serving app".into(),
            kind: "Application".into(),
            namespace: consts::ARGOCD_NAMESPACE.into(),
            name: a.clone(),
        });
    }
    for ns in managed_namespaces(plan) {
        for g in list(client, kinds::GATEWAY, &ns, Some(&managed_selector())).await? {
            steps.push(Step {
                step: "4 delete Gateway".into(),
                kind: "Gateway".into(),
                namespace: ns.clone(),
                name: name_of(&g),
            });
        }
    }
    if !opts.keep_pvcs {
        for ns in managed_namespaces(plan) {
            for p in list(client, kinds::PVC, &ns, Some(&managed_selector())).await? {
                steps.push(Step {
                    step: "5 delete PVC".into(),
                    kind: "PersistentVolumeClaim".into(),
                    namespace: ns.clone(),
                    name: name_of(&p),
                });
            }
        }
    }
    for a in catalog
        .iter()
        .chain(&roots)
        .filter(|a| existing.contains(*a))
    {
        steps.push(Step {
            step: "6 delete Application".into(),
            kind: "Application".into(),
            namespace: consts::ARGOCD_NAMESPACE.into(),
            name: a.clone(),
        });
    }
    let projects = kinds::APP_PROJECT.api(client, consts::ARGOCD_NAMESPACE);
    if retry(|| projects.get_opt(&plan.env))
        .await
        .map_err(|e| ClusterError::api("reading the AppProject", e))?
        .is_some()
    {
        steps.push(Step {
            step: "6 delete AppProject".into(),
            kind: "AppProject".into(),
            namespace: consts::ARGOCD_NAMESPACE.into(),
            name: plan.env.clone(),
        });
    }
    Ok(steps)
}

/// How a deletion ended.
enum Deleted {
    Gone,
    /// Still terminating on these finalizers after `--finalizer-timeout`.
    Stuck(Vec<String>),
}

/// Delete one object (foreground) and wait until it is gone or stuck on a finalizer.
async fn delete_wait(
    api: &Api<DynamicObject>,
    name: &str,
    label: &str,
    opts: &Options,
    reporter: &Reporter,
) -> Result<Deleted, ClusterError> {
    let dp = DeleteParams::foreground();
    match retry(|| api.delete(name, &dp)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {
            reporter.finish(label, "already gone");
            return Ok(Deleted::Gone);
        }
        Err(e) => return Err(ClusterError::api(format!("deleting {label}"), e)),
    }
    reporter.update(label, "deleting");
    let start = Instant::now();
    loop {
        let cur = retry(|| api.get_opt(name))
            .await
            .map_err(|e| ClusterError::api(format!("reading {label}"), e))?;
        let Some(obj) = cur else {
            reporter.finish(label, "deleted");
            return Ok(Deleted::Gone);
        };
        let finalizers = obj.metadata.finalizers.clone().unwrap_or_default();
        if start.elapsed() >= opts.finalizer_timeout && !finalizers.is_empty() {
            return Ok(Deleted::Stuck(finalizers));
        }
        // Deletions are slow by nature (cascades, cloud load balancers): a short poll keeps this simple.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Remove every finalizer of a terminating object.
async fn strip(
    api: &Api<DynamicObject>,
    name: &str,
    label: &str,
    finalizers: &[String],
    reporter: &Reporter,
) -> Result<(), ClusterError> {
    let p = json!({"metadata": {"finalizers": null}});
    let patch = Patch::Merge(&p);
    let params = apply::patch_params();
    match retry(|| api.patch(name, &params, &patch)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => {
            return Err(ClusterError::api(
                format!("removing the finalizers of {label}"),
                e,
            ))
        }
    }
    reporter.update(
        label,
        &format!("stripped stuck finalizer(s) {}", finalizers.join(", ")),
    );
    Ok(())
}

fn stuck(
    kind: &str,
    plural: &str,
    namespaced: bool,
    ns: &str,
    name: &str,
    finalizers: Vec<String>,
) -> ClusterError {
    ClusterError::StuckFinalizer {
        object: format!("{kind} {ns}/{name}"),
        fix: format!(
            "the controller that owns {} is gone or failing; re-run with --strip-finalizers, or `kubectl {}patch {plural} {name} --type merge -p '{{\"metadata\":{{\"finalizers\":null}}}}'`",
            finalizers.join(", "),
            if namespaced { format!("-n {ns} ") } else { String::new() },
        ),
        finalizers,
    }
}

/// Delete one object and wait until it is gone. A finalizer still there after the deadline is stuck:
/// an error, or with `--strip-finalizers` removed. Stripping Argo CD's resources finalizer means
/// nobody deletes the app's resources, so platform deletes them first (see [`delete_app_resources`]).
async fn delete_and_wait(
    client: &kube::Client,
    plan: &Plan,
    kind: Kind,
    ns: &str,
    name: &str,
    opts: &Options,
    reporter: &Reporter,
) -> Result<(), ClusterError> {
    let api = kind.api(client, ns);
    let label = format!("{} {}/{}", kind.kind, ns, name);
    let Deleted::Stuck(finalizers) = delete_wait(&api, name, &label, opts, reporter).await? else {
        return Ok(());
    };
    if !opts.strip_finalizers {
        return Err(stuck(
            kind.kind,
            kind.plural,
            kind.namespaced,
            ns,
            name,
            finalizers,
        ));
    }
    if kind == kinds::APPLICATION && finalizers.iter().any(|f| f == consts::ARGOCD_FINALIZER) {
        if let Some(app) = retry(|| api.get_opt(name))
            .await
            .map_err(|e| ClusterError::api(format!("reading {label}"), e))?
        {
            delete_app_resources(client, plan, &app, opts, reporter).await?;
        }
    }
    strip(&api, name, &label, &finalizers, reporter).await?;
    match delete_wait(&api, name, &label, opts, reporter).await? {
        Deleted::Gone => Ok(()),
        Deleted::Stuck(f) => Err(stuck(kind.kind, kind.plural, kind.namespaced, ns, name, f)),
    }
}

/// One resource an Application manages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AppResource {
    /// Deletion order: workloads first, claims after them, CRDs and namespaces last.
    rank: u8,
    api_version: String,
    kind: String,
    namespace: String,
    name: String,
}

fn deletion_rank(kind: &str) -> u8 {
    match kind {
        "InferenceService"
        | "LLMInferenceService"
        | "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "CronJob"
        | "Pod" => 0,
        "PersistentVolumeClaim" => 2,
        "CustomResourceDefinition" => 3,
        "Namespace" => 4,
        _ => 1,
    }
}

/// What an Application manages: Argo CD's own record (`status.resources`, which covers Helm charts
/// too) and, for a model's app, the model's objects from the plan (in case Argo CD never recorded
/// them). Applications are left out: the teardown deletes them in its own order.
fn app_resources(plan: &Plan, app: &Value) -> Vec<AppResource> {
    let mut out = BTreeSet::new();
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for r in app
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (group, version, kind) = (s(r, "/group"), s(r, "/version"), s(r, "/kind"));
        if kind.is_empty() || version.is_empty() || kind == "Application" || kind == "AppProject" {
            continue;
        }
        out.insert(AppResource {
            rank: deletion_rank(&kind),
            api_version: if group.is_empty() {
                version
            } else {
                format!("{group}/{version}")
            },
            namespace: s(r, "/namespace"),
            name: s(r, "/name"),
            kind,
        });
    }
    let app_name = s(app, "/metadata/name");
    for m in plan.models.iter().filter(|m| m.app == app_name) {
        let k = pause::kind_of(m.model.layer);
        for (kind, name) in [(k, m.name.clone()), (kinds::PVC, m.model.pvc_name())] {
            out.insert(AppResource {
                rank: deletion_rank(kind.kind),
                api_version: kind.api_version.into(),
                kind: kind.kind.into(),
                namespace: m.namespace.clone(),
                name,
            });
        }
    }
    out.into_iter().collect()
}

/// Delete an Application's resources as Argo CD's resources finalizer would (workloads, then the
/// rest, claims, CRDs and namespaces last), waiting for each; their own stuck finalizers are
/// stripped too (this runs only under --strip-finalizers).
async fn delete_app_resources(
    client: &kube::Client,
    plan: &Plan,
    app: &DynamicObject,
    opts: &Options,
    reporter: &Reporter,
) -> Result<(), ClusterError> {
    let v = kinds::json(app);
    for r in app_resources(plan, &v) {
        // Kinds platform knows need no discovery round trip; others (a chart's) are looked up.
        let (api, plural, namespaced) = match Kind::lookup(&r.api_version, &r.kind) {
            Some(k) => (
                k.api(client, &r.namespace),
                k.plural.to_string(),
                k.namespaced,
            ),
            None => {
                let (group, version) = r
                    .api_version
                    .split_once('/')
                    .unwrap_or(("", &r.api_version));
                let gvk = kube::api::GroupVersionKind::gvk(group, version, &r.kind);
                let (ar, caps) = match kube::discovery::pinned_kind(client, &gvk).await {
                    Ok(found) => found,
                    // The kind is gone (its CRD was deleted): so are its objects.
                    Err(kube::Error::Api(s)) if s.code == 404 => continue,
                    Err(kube::Error::Discovery(_)) => continue,
                    Err(e) => return Err(ClusterError::api(format!("looking up {}", r.kind), e)),
                };
                let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
                let api: Api<DynamicObject> = if namespaced {
                    Api::namespaced_with(client.clone(), &r.namespace, &ar)
                } else {
                    Api::all_with(client.clone(), &ar)
                };
                (api, ar.plural, namespaced)
            }
        };
        let label = format!(
            "{} {}/{} (of {})",
            r.kind,
            r.namespace,
            r.name,
            name_of(app)
        );
        if let Deleted::Stuck(f) = delete_wait(&api, &r.name, &label, opts, reporter).await? {
            strip(&api, &r.name, &label, &f, reporter).await?;
            if let Deleted::Stuck(f) = delete_wait(&api, &r.name, &label, opts, reporter).await? {
                return Err(stuck(
                    &r.kind,
                    &plural,
                    namespaced,
                    &r.namespace,
                    &r.name,
                    f,
                ));
            }
        }
    }
    Ok(())
}

/// Delete Applications one after another, waiting for each (their finalizers cascade).
async fn delete_apps<'a>(
    client: &kube::Client,
    plan: &Plan,
    names: impl Iterator<Item = &'a String>,
    opts: &Options,
    reporter: &Reporter,
) -> Result<(), ClusterError> {
    for a in names {
        delete_and_wait(
            client,
            plan,
            kinds::APPLICATION,
            consts::ARGOCD_NAMESPACE,
            a,
            opts,
            reporter,
        )
        .await?;
    }
    Ok(())
}

/// Wait until `check` finds nothing left (LB Services, PVs), up to `timeout`.
async fn wait_gone<F, Fut>(
    what: &str,
    timeout: Duration,
    reporter: &Reporter,
    mut check: F,
) -> Result<(), ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, ClusterError>>,
{
    let start = Instant::now();
    loop {
        let left = check().await?;
        if left.is_empty() {
            reporter.finish(what, "released");
            return Ok(());
        }
        reporter.update(what, &format!("waiting for {}", left.join(", ")));
        if start.elapsed() >= timeout {
            return Err(ClusterError::Timeout {
                what: what.to_string(),
                pending: left,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn lb_services(
    client: &kube::Client,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<String>, ClusterError> {
    let mut out = Vec::new();
    for ns in namespaces {
        for s in list(client, kinds::SERVICE, ns, None).await? {
            if kinds::json(&s)
                .pointer("/spec/type")
                .and_then(Value::as_str)
                == Some("LoadBalancer")
            {
                out.push(format!("Service {ns}/{}", name_of(&s)));
            }
        }
    }
    Ok(out)
}

async fn pvs_of(
    client: &kube::Client,
    claims: &BTreeSet<(String, String)>,
) -> Result<Vec<(String, Value)>, ClusterError> {
    let pvs = list(client, kinds::PV, "", None).await?;
    Ok(pvs
        .iter()
        .map(kinds::json)
        .filter(|v| {
            let ns = v
                .pointer("/spec/claimRef/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            let n = v
                .pointer("/spec/claimRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            claims.contains(&(ns.to_string(), n.to_string()))
        })
        .map(|v| {
            (
                v.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                v,
            )
        })
        .collect())
}

/// Run the teardown. Returns the audit's survivors (empty: nothing billable left).
pub async fn run(
    client: &kube::Client,
    plan: &Plan,
    opts: &Options,
    reporter: &Reporter,
) -> Result<Vec<Survivor>, ClusterError> {
    let argo = kinds::APPLICATION.api(client, consts::ARGOCD_NAMESPACE);
    let (serving, catalog, roots) = app_order(plan);
    let namespaces = managed_namespaces(plan);
    let params = apply::patch_params();

    reporter.line("1/6 stop the root apps from re-creating their children");
    for r in &roots {
        let p = json!({"spec": {"syncPolicy": {"automated": null}}});
        let patch = Patch::Merge(&p);
        match retry(|| argo.patch(r, &params, &patch)).await {
            Ok(_) => reporter.finish(r, "auto-sync disabled"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(ClusterError::api(format!("disabling auto-sync of {r}"), e)),
        }
    }

    reporter.line("2/6 pause models");
    for m in &plan.models {
        match pause::pause(client, m).await {
            Ok(o) => reporter.finish(&m.name, &o.action),
            Err(ClusterError::NotDeployed { .. }) => {}
            Err(e) => return Err(e),
        }
    }

    if opts.keep_pvcs {
        // Argo CD keeps resources annotated Delete=false when their app is deleted.
        for ns in &namespaces {
            let api = kinds::PVC.api(client, ns);
            for p in list(client, kinds::PVC, ns, Some(&managed_selector())).await? {
                let body = json!({"metadata": {"annotations": {"argocd.argoproj.io/sync-options": "Delete=false"}}});
                let patch = Patch::Merge(&body);
                let n = name_of(&p);
                retry(|| api.patch(&n, &params, &patch))
                    .await
                    .map_err(|e| ClusterError::api(format!("protecting PVC {ns}/{n}"), e))?;
            }
        }
    }

    reporter.line("3/6 delete the manual serving apps");
    delete_apps(client, plan, serving.iter(), opts, reporter).await?;

    reporter.line("4/6 delete Gateways and wait for their load balancers");
    for ns in &namespaces {
        for g in list(client, kinds::GATEWAY, ns, Some(&managed_selector())).await? {
            delete_and_wait(
                client,
                plan,
                kinds::GATEWAY,
                ns,
                &name_of(&g),
                opts,
                reporter,
            )
            .await?;
        }
    }
    wait_gone(
        "LoadBalancer Services",
        opts.release_timeout,
        reporter,
        || lb_services(client, &namespaces),
    )
    .await?;

    if opts.keep_pvcs {
        reporter.line("5/6 keep PVCs (--keep-pvcs)");
    } else {
        reporter.line("5/6 delete PVCs and wait for their volumes");
        let mut claims = BTreeSet::new();
        for ns in &namespaces {
            for p in list(client, kinds::PVC, ns, Some(&managed_selector())).await? {
                let n = name_of(&p);
                claims.insert((ns.clone(), n.clone()));
                delete_and_wait(client, plan, kinds::PVC, ns, &n, opts, reporter).await?;
            }
        }
        // Delete-policy volumes disappear; Retain ones stay Released and are reported by the audit.
        wait_gone(
            "PersistentVolumes",
            opts.release_timeout,
            reporter,
            || async {
                Ok(pvs_of(client, &claims)
                    .await?
                    .into_iter()
                    .filter(|(_, v)| {
                        v.pointer("/spec/persistentVolumeReclaimPolicy")
                            .and_then(Value::as_str)
                            != Some("Retain")
                    })
                    .map(|(n, _)| format!("PV {n}"))
                    .collect())
            },
        )
        .await?;
    }

    reporter.line("6/6 delete Applications in reverse wave order");
    delete_apps(client, plan, catalog.iter().chain(&roots), opts, reporter).await?;
    delete_and_wait(
        client,
        plan,
        kinds::APP_PROJECT,
        consts::ARGOCD_NAMESPACE,
        &plan.env,
        opts,
        reporter,
    )
    .await?;

    audit(client, plan).await
}

/// Whether platform rendered `o` (managed-by label) or one of its Applications tracks it (Argo CD's
/// tracking annotation or instance label).
fn managed_or_tracked(o: &DynamicObject, apps: &BTreeSet<String>) -> bool {
    let labels = o.metadata.labels.clone().unwrap_or_default();
    if labels.get(consts::LABEL_MANAGED_BY).map(String::as_str) == Some(consts::MANAGED_BY_VALUE) {
        return true;
    }
    if labels
        .get("app.kubernetes.io/instance")
        .is_some_and(|i| apps.contains(i))
    {
        return true;
    }
    o.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("argocd.argoproj.io/tracking-id"))
        .and_then(|t| t.split(':').next())
        .is_some_and(|app| apps.contains(app))
}

/// Every survivor in the namespaces platform manages: Gateways, LoadBalancer Services, PVCs,
/// Released/Retain PVs, InferenceServices, LLMInferenceServices, the Deployments and StatefulSets
/// platform renders or its apps track, the namespaces it created, its AppProject and Applications.
pub async fn audit(client: &kube::Client, plan: &Plan) -> Result<Vec<Survivor>, ClusterError> {
    let namespaces = managed_namespaces(plan);
    let mut out = Vec::new();
    for ns in &namespaces {
        for g in list(client, kinds::GATEWAY, ns, None).await? {
            out.push(Survivor {
                kind: "Gateway".into(),
                namespace: ns.clone(),
                name: name_of(&g),
                detail: "still exists (its LoadBalancer is billable)".into(),
            });
        }
        for s in list(client, kinds::SERVICE, ns, None).await? {
            let v = kinds::json(&s);
            if v.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") {
                let ip = v
                    .pointer("/status/loadBalancer/ingress/0/ip")
                    .and_then(Value::as_str)
                    .unwrap_or("no address");
                out.push(Survivor {
                    kind: "Service".into(),
                    namespace: ns.clone(),
                    name: name_of(&s),
                    detail: format!("type LoadBalancer ({ip})"),
                });
            }
        }
        for p in list(client, kinds::PVC, ns, None).await? {
            let v = kinds::json(&p);
            let size = v
                .pointer("/status/capacity/storage")
                .and_then(Value::as_str)
                .unwrap_or("?");
            out.push(Survivor {
                kind: "PersistentVolumeClaim".into(),
                namespace: ns.clone(),
                name: name_of(&p),
                detail: format!("{size} disk"),
            });
        }
    }
    for pv in list(client, kinds::PV, "", None).await? {
        let v = kinds::json(&pv);
        let ns = v
            .pointer("/spec/claimRef/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let phase = v
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let policy = v
            .pointer("/spec/persistentVolumeReclaimPolicy")
            .and_then(Value::as_str)
            .unwrap_or("");
        if namespaces.contains(ns) && (phase == "Released" || policy == "Retain") {
            out.push(Survivor {
                kind: "PersistentVolume".into(),
                namespace: String::new(),
                name: name_of(&pv),
                detail: format!(
                    "{phase}, reclaim policy {policy} (claim {ns}/{})",
                    v.pointer("/spec/claimRef/name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                ),
            });
        }
    }
    let (serving, catalog, roots) = app_order(plan);
    let ours: BTreeSet<String> = serving.into_iter().chain(catalog).chain(roots).collect();
    // Workloads: every KServe serving object in the managed namespaces, and the Deployments and
    // StatefulSets platform renders or one of its Applications tracks (GPUs are billed by the pod).
    for ns in &namespaces {
        for kind in [kinds::INFERENCE_SERVICE, kinds::LLM_INFERENCE_SERVICE] {
            match list(client, kind, ns, None).await {
                Ok(items) => out.extend(items.iter().map(|o| Survivor {
                    kind: kind.kind.into(),
                    namespace: ns.clone(),
                    name: name_of(o),
                    detail: "serving workload still exists".into(),
                })),
                // The CRD is not installed (or already deleted): no such objects.
                Err(ClusterError::Api {
                    code: Some(404), ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        for kind in [kinds::DEPLOYMENT, kinds::STATEFUL_SET] {
            for o in list(client, kind, ns, None).await? {
                if managed_or_tracked(&o, &ours) {
                    let v = kinds::json(&o);
                    out.push(Survivor {
                        kind: kind.kind.into(),
                        namespace: ns.clone(),
                        name: name_of(&o),
                        detail: format!(
                            "{} replica(s)",
                            v.pointer("/spec/replicas")
                                .and_then(Value::as_i64)
                                .unwrap_or(1)
                        ),
                    });
                }
            }
        }
    }
    for n in list(client, kinds::NAMESPACE, "", Some(&managed_selector())).await? {
        out.push(Survivor {
            kind: "Namespace".into(),
            namespace: String::new(),
            name: name_of(&n),
            detail: if n.metadata.deletion_timestamp.is_some() {
                "created by platform, still terminating".into()
            } else {
                "created by platform".into()
            },
        });
    }
    let projects = kinds::APP_PROJECT.api(client, consts::ARGOCD_NAMESPACE);
    if retry(|| projects.get_opt(&plan.env))
        .await
        .map_err(|e| ClusterError::api("reading the AppProject", e))?
        .is_some()
    {
        out.push(Survivor {
            kind: "AppProject".into(),
            namespace: consts::ARGOCD_NAMESPACE.into(),
            name: plan.env.clone(),
            detail: "still exists".into(),
        });
    }
    for a in list(client, kinds::APPLICATION, consts::ARGOCD_NAMESPACE, None).await? {
        let v = kinds::json(&a);
        let part_of = v
            .pointer(&format!(
                "/metadata/labels/{}",
                consts::LABEL_PART_OF.replace('/', "~1")
            ))
            .and_then(Value::as_str);
        let dest = v
            .pointer("/spec/destination/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if ours.contains(&name_of(&a))
            || part_of == Some(plan.env.as_str())
            || namespaces.contains(dest)
        {
            out.push(Survivor {
                kind: "Application".into(),
                namespace: consts::ARGOCD_NAMESPACE.into(),
                name: name_of(&a),
                detail: format!("destination namespace {dest}"),
            });
        }
    }
    Ok(out)
}
