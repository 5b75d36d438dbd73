//! Deleting one object and waiting until it is gone, with stuck finalizers detected (and, with
//! `--strip-finalizers`, removed after doing the owner's work: see [`delete_app_resources`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, Patch};
use serde_json::{json, Value};

use super::{list, name_of, Options};
use crate::cluster::kinds::{self, Kind};
use crate::cluster::{apply, health, wait, Client, ClusterError};
use crate::consts;
use crate::plan::Plan;
use crate::report::Reporter;

/// How a deletion ended.
#[derive(Debug, PartialEq, Eq)]
enum Deleted {
    Gone,
    /// Still terminating on these finalizers after `--finalizer-timeout`.
    Stuck(Vec<String>),
    /// Still terminating after `--finalizer-timeout` with no finalizer of its own (a Namespace
    /// whose content cannot be removed): why, as its status says.
    Lingering(String),
}

/// What an object still there at the deadline waits for: its own finalizers, or (with none)
/// the reason its status conditions give.
fn at_deadline(obj: &Value) -> Deleted {
    let finalizers: Vec<String> = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !finalizers.is_empty() {
        return Deleted::Stuck(finalizers);
    }
    let reasons: Vec<String> = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        .filter_map(|c| c.get("message").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    Deleted::Lingering(if reasons.is_empty() {
        "it is still terminating, with no finalizer of its own and no condition saying why".into()
    } else {
        reasons.join("; ")
    })
}

/// A deletion that did not finish by the deadline and has no finalizer to strip: a timeout.
fn lingering(label: &str, opts: &Options, why: String) -> ClusterError {
    ClusterError::Timeout {
        what: format!(
            "{label} to be deleted (waited {}, the longer of --finalizer-timeout and \
             --release-timeout)",
            humantime::format_duration(opts.finalizer_timeout.max(opts.release_timeout))
        ),
        pending: vec![format!("{label}: {why}")],
    }
}

/// Delete one object (foreground) and wait until it is gone or stuck on a finalizer.
async fn delete_wait(
    client: &Client,
    api: &Api<DynamicObject>,
    name: &str,
    label: &str,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Deleted, ClusterError> {
    let dp = DeleteParams::foreground();
    match client.retry(|| api.delete(name, &dp)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {
            reporter.finish(label, "already gone");
            return Ok(Deleted::Gone);
        }
        Err(e) => return Err(ClusterError::api(format!("deleting {label}"), e)),
    }
    reporter.update(label, "deleting");
    let start = Instant::now();
    let mut said = Instant::now();
    loop {
        let cur = client
            .retry(|| api.get_opt(name))
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
        // Every wait has a deadline: an object that goes on terminating without finalizers of its
        // own (a Namespace whose content cannot be deleted never goes) is given as long as a
        // release, then reported.
        if start.elapsed() >= opts.finalizer_timeout.max(opts.release_timeout) {
            return Ok(at_deadline(&kinds::json(&obj)));
        }
        // What it waits for, at each heartbeat, with the time left before it counts as stuck.
        if said.elapsed() >= wait::heartbeat() {
            said = Instant::now();
            let limit = if finalizers.is_empty() {
                opts.finalizer_timeout.max(opts.release_timeout)
            } else {
                opts.finalizer_timeout
            };
            let why = waiting_on(client, &kinds::json(&obj)).await?;
            reporter.line(&format!(
                "  waiting for {label} to be deleted: {why} ({} left)",
                wait::left(limit.saturating_sub(start.elapsed()))
            ));
        }
        // Deletions are slow by nature (cascades, cloud load balancers): a short poll keeps this simple.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What a terminating object waits for, in words: the pods that still mount a protected PVC,
/// else its finalizers, else that it is still terminating.
async fn waiting_on(client: &Client, obj: &Value) -> Result<String, ClusterError> {
    let finalizers = finalizers_of(obj);
    if let Some(users) = pvc_users(client, obj, &finalizers).await? {
        return Ok(format!("still mounted by {}", users.join(", ")));
    }
    Ok(if finalizers.is_empty() {
        "still terminating (no finalizer of its own)".into()
    } else {
        format!("finalizer(s) {} pending", finalizers.join(", "))
    })
}

fn finalizers_of(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// For a PVC held by `kubernetes.io/pvc-protection`: the pods of its namespace that mount it,
/// each with its state (`pod p Running`, `pod p Terminating since …`); None for anything else or
/// when no pod mounts it.
pub(super) async fn pvc_users(
    client: &Client,
    obj: &Value,
    finalizers: &[String],
) -> Result<Option<Vec<String>>, ClusterError> {
    let str_at = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
    if str_at("/kind") != "PersistentVolumeClaim"
        || !finalizers.iter().any(|f| f == consts::PVC_PROTECTION)
    {
        return Ok(None);
    }
    let (ns, claim) = (str_at("/metadata/namespace"), str_at("/metadata/name"));
    let users: Vec<String> = super::list(client, kinds::POD, ns, None)
        .await?
        .iter()
        .map(kinds::json)
        .filter(|p| mounts(p, claim))
        .map(|p| describe_pod(&p))
        .collect();
    Ok((!users.is_empty()).then_some(users))
}

/// Whether `pod` mounts the claim `claim`.
fn mounts(pod: &Value, claim: &str) -> bool {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|v| {
            v.pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
                == Some(claim)
        })
}

/// `pod NAME PHASE`, or how long it has been terminating and on what.
fn describe_pod(pod: &Value) -> String {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str);
    match s("/metadata/deletionTimestamp") {
        Some(since) => health::terminating_pod(pod, since),
        None => format!(
            "pod {} {}",
            s("/metadata/name").unwrap_or("?"),
            s("/status/phase").unwrap_or("Pending")
        ),
    }
}

/// The error for an object stuck on `finalizers`: a PVC that pods still mount names them (the
/// finalizer is Kubernetes' own and right to wait), anything else blames the finalizer's owner.
async fn stuck_error(
    client: &Client,
    api: &Api<DynamicObject>,
    kind: (&str, &str, bool),
    ns: &str,
    name: &str,
    finalizers: Vec<String>,
) -> Result<ClusterError, ClusterError> {
    let (kind, plural, namespaced) = kind;
    if kind == "PersistentVolumeClaim" {
        if let Some(obj) = client
            .retry(|| api.get_opt(name))
            .await
            .map_err(|e| ClusterError::api(format!("reading {kind} {ns}/{name}"), e))?
        {
            if let Some(users) = pvc_users(client, &kinds::json(&obj), &finalizers).await? {
                return Ok(in_use(ns, name, users));
            }
        }
    }
    Ok(stuck(kind, plural, namespaced, ns, name, finalizers))
}

/// A PVC that pods still mount: name them and how each goes away.
pub(super) fn in_use(ns: &str, name: &str, users: Vec<String>) -> ClusterError {
    let terminating: Vec<&str> = users
        .iter()
        .filter(|u| u.contains(" Terminating since "))
        .filter_map(|u| u.split_whitespace().nth(1))
        .collect();
    let fix = if terminating.is_empty() {
        "delete those pods (or the workload that owns them), then re-run `platform teardown`"
            .to_string()
    } else {
        format!(
            "a pod stuck Terminating waits for its node's kubelet (or a finalizer of its own): \
             when that node is gone, `kubectl -n {ns} delete pod {} --grace-period=0 --force`, \
             then re-run `platform teardown`; do not strip the PVC's finalizer while a pod uses it",
            terminating.join(" ")
        )
    };
    ClusterError::InUse {
        object: format!("PersistentVolumeClaim {ns}/{name}"),
        users,
        fix,
    }
}

/// Remove every finalizer of a terminating object.
async fn strip(
    client: &Client,
    api: &Api<DynamicObject>,
    name: &str,
    label: &str,
    finalizers: &[String],
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let p = json!({"metadata": {"finalizers": null}});
    let patch = Patch::Merge(&p);
    let params = apply::patch_params();
    match client.retry(|| api.patch(name, &params, &patch)).await {
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
pub(super) async fn delete_and_wait(
    client: &Client,
    plan: &Plan,
    kind: Kind,
    ns: &str,
    name: &str,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let api = kind.api(client, ns);
    let label = format!("{} {}/{}", kind.kind, ns, name);
    let finalizers = match delete_wait(client, &api, name, &label, opts, reporter).await? {
        Deleted::Gone => return Ok(()),
        Deleted::Lingering(why) => return Err(lingering(&label, opts, why)),
        Deleted::Stuck(f) => f,
    };
    let k = (kind.kind, kind.plural, kind.namespaced);
    // A PVC that pods still mount is never stripped: Kubernetes is right to keep it.
    let err = stuck_error(client, &api, k, ns, name, finalizers.clone()).await?;
    if !opts.strip_finalizers || matches!(err, ClusterError::InUse { .. }) {
        return Err(err);
    }
    if kind == kinds::APPLICATION && finalizers.iter().any(|f| f == consts::ARGOCD_FINALIZER) {
        if let Some(app) = client
            .retry(|| api.get_opt(name))
            .await
            .map_err(|e| ClusterError::api(format!("reading {label}"), e))?
        {
            delete_app_resources(client, plan, &app, opts, reporter).await?;
        }
    }
    strip(client, &api, name, &label, &finalizers, reporter).await?;
    match delete_wait(client, &api, name, &label, opts, reporter).await? {
        Deleted::Gone => Ok(()),
        Deleted::Lingering(why) => Err(lingering(&label, opts, why)),
        Deleted::Stuck(f) => Err(stuck_error(client, &api, k, ns, name, f).await?),
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
        let k = m.layer().serving_kind();
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
    client: &Client,
    plan: &Plan,
    app: &DynamicObject,
    opts: &Options,
    reporter: &dyn Reporter,
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
                let (ar, caps) = match kube::discovery::pinned_kind(&client.kube(), &gvk).await {
                    Ok(found) => found,
                    // The kind is gone (its CRD was deleted): so are its objects.
                    Err(kube::Error::Api(s)) if s.code == 404 => continue,
                    Err(kube::Error::Discovery(_)) => continue,
                    Err(e) => return Err(ClusterError::api(format!("looking up {}", r.kind), e)),
                };
                let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
                let api: Api<DynamicObject> = if namespaced {
                    Api::namespaced_with(client.kube(), &r.namespace, &ar)
                } else {
                    Api::all_with(client.kube(), &ar)
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
        let f = match delete_wait(client, &api, &r.name, &label, opts, reporter).await? {
            Deleted::Gone => continue,
            Deleted::Lingering(why) => return Err(lingering(&label, opts, why)),
            Deleted::Stuck(f) => f,
        };
        let k = (r.kind.as_str(), plural.as_str(), namespaced);
        if let e @ ClusterError::InUse { .. } =
            stuck_error(client, &api, k, &r.namespace, &r.name, f.clone()).await?
        {
            return Err(e);
        }
        strip(client, &api, &r.name, &label, &f, reporter).await?;
        match delete_wait(client, &api, &r.name, &label, opts, reporter).await? {
            Deleted::Gone => {}
            Deleted::Lingering(why) => return Err(lingering(&label, opts, why)),
            Deleted::Stuck(f) => {
                return Err(stuck_error(client, &api, k, &r.namespace, &r.name, f).await?)
            }
        }
    }
    Ok(())
}

/// Wait until `check` finds nothing left (LB Services, PVs), up to `timeout`.
pub(super) async fn wait_gone<F, Fut>(
    what: &str,
    timeout: Duration,
    reporter: &dyn Reporter,
    mut check: F,
) -> Result<(), ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, ClusterError>>,
{
    let start = Instant::now();
    let mut said = Instant::now();
    loop {
        let left = check().await?;
        if left.is_empty() {
            reporter.finish(what, "released");
            return Ok(());
        }
        reporter.update(what, &format!("waiting for {}", left.join(", ")));
        if said.elapsed() >= wait::heartbeat() {
            said = Instant::now();
            reporter.line(&format!(
                "  waiting for {what} to be released: {} still there ({} left)",
                left.join(", "),
                wait::left(timeout.saturating_sub(start.elapsed()))
            ));
        }
        if start.elapsed() >= timeout {
            return Err(ClusterError::Timeout {
                what: what.to_string(),
                pending: left,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(super) async fn lb_services(
    client: &Client,
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

pub(super) async fn pvs_of(
    client: &Client,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_deadline_finalizers_are_stuck_and_anything_else_says_why_it_lingers() {
        let stuck = json!({"metadata": {"finalizers": ["example.com/hold"]}});
        assert_eq!(
            at_deadline(&stuck),
            Deleted::Stuck(vec!["example.com/hold".into()])
        );
        // A Namespace whose content cannot be removed: no metadata finalizer, its conditions say why.
        let ns = json!({"metadata": {"name": "ns"}, "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Terminating", "conditions": [
                {"type": "NamespaceDeletionDiscoveryFailure", "status": "False", "message": "All resources successfully discovered"},
                {"type": "NamespaceFinalizersRemaining", "status": "True",
                 "message": "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"}]}});
        assert_eq!(
            at_deadline(&ns),
            Deleted::Lingering("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".into())
        );
        let bare = json!({"metadata": {"name": "p"}});
        assert!(matches!(at_deadline(&bare), Deleted::Lingering(w) if w.contains("no finalizer")));
    }
}
