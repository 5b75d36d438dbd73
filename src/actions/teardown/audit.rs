//! The audit after a teardown: every survivor that may still cost money or block a re-run.

use std::collections::BTreeSet;

use kube::api::DynamicObject;
use serde_json::Value;

use super::{app_order, list, managed_namespaces, managed_selector, name_of, Survivor};
use crate::cluster::kinds;
use crate::cluster::{Client, ClusterError};
use crate::consts;
use crate::plan::Plan;

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

/// Every survivor platform leaves: in the namespaces it manages, Gateways, LoadBalancer Services,
/// PVCs, InferenceServices, LLMInferenceServices, the autoscalers (HPA, KEDA ScaledObject), the
/// models' HTTPRoutes and ReferenceGrants,
/// Deployments and StatefulSets it renders or its apps track; Released/Retain PVs; its
/// ClusterServingRuntimes and PriorityClasses; the namespaces it created; its AppProject and
/// Applications.
pub async fn audit(client: &Client, plan: &Plan) -> Result<Vec<Survivor>, ClusterError> {
    let namespaces = managed_namespaces(plan);
    let (serving, catalog, roots) = app_order(plan);
    let ours: BTreeSet<String> = serving.into_iter().chain(catalog).chain(roots).collect();
    let mut out = Vec::new();
    for ns in &namespaces {
        out.extend(billable_in(client, ns, &ours).await?);
        out.extend(workloads_in(client, ns, &ours).await?);
    }
    out.extend(retained_volumes(client, &namespaces).await?);
    out.extend(cluster_scoped(client).await?);
    out.extend(created_namespaces(client).await?);
    out.extend(argo_objects(client, plan, &namespaces, &ours).await?);
    Ok(out)
}

/// A survivor, with why it survived and what removes it: `obj` is the object as listed and
/// `managed` whether platform rendered it or one of its Applications tracks it.
fn survivor(kind: &str, namespace: &str, obj: &Value, managed: bool, detail: String) -> Survivor {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let (why, fix) = explain(kind, namespace, &name, obj, managed);
    Survivor {
        kind: kind.into(),
        namespace: namespace.into(),
        name,
        detail,
        why,
        fix,
    }
}

/// `kubectl [-n NS] delete KIND NAME`.
fn kubectl_delete(kind: &str, namespace: &str, name: &str) -> String {
    let ns = if namespace.is_empty() {
        String::new()
    } else {
        format!("-n {namespace} ")
    };
    format!("`kubectl {ns}delete {} {name}`", kind.to_ascii_lowercase())
}

/// Why an object survived a teardown, and what removes it.
fn explain(
    kind: &str,
    namespace: &str,
    name: &str,
    obj: &Value,
    managed: bool,
) -> (String, String) {
    let str_at = |p: &str| obj.pointer(p).and_then(Value::as_str);
    let finalizers: Vec<&str> = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let rerun =
        "wait until it is gone, then re-run `platform teardown` (it continues where it stopped)";
    if str_at("/metadata/deletionTimestamp").is_some() {
        if finalizers.is_empty() {
            let why = match kind {
                "Namespace" => "still terminating: Kubernetes is deleting its content".to_string(),
                _ => "still terminating (no finalizer of its own)".to_string(),
            };
            return (why, rerun.into());
        }
        let owners: Vec<String> = finalizers
            .iter()
            .map(|f| match *f {
                consts::ARGOCD_FINALIZER => {
                    format!("{f} (Argo CD deletes the app's resources first)")
                }
                consts::PVC_PROTECTION => format!("{f} (Kubernetes, while a pod mounts it)"),
                f => format!("{f} (its controller has not removed it)"),
            })
            .collect();
        let why = format!(
            "still terminating: finalizer(s) {} pending",
            owners.join(", ")
        );
        let fix = if finalizers == [consts::PVC_PROTECTION] {
            format!(
                "delete the pods that mount it (`kubectl -n {namespace} get pods` shows them; one \
                 stuck Terminating on a node that is gone: `kubectl -n {namespace} delete pod POD \
                 --grace-period=0 --force`), then re-run `platform teardown`"
            )
        } else {
            format!(
                "{rerun}; if the finalizer's controller is gone: `platform teardown --strip-finalizers`"
            )
        };
        return (why, fix);
    }
    if kind == "PersistentVolume" {
        return (
            format!(
                "kept on purpose: reclaim policy {} keeps the volume (and its disk) after its claim",
                str_at("/spec/persistentVolumeReclaimPolicy").unwrap_or("Retain")
            ),
            format!(
                "{} when its data is no longer needed (then delete the disk at your provider if it \
                 outlives it)",
                kubectl_delete(kind, "", name)
            ),
        );
    }
    let kept = str_at("/metadata/annotations/argocd.argoproj.io~1sync-options")
        .is_some_and(|o| o.split(',').any(|x| x.trim() == "Delete=false"));
    if kept {
        return (
            "kept on purpose: argocd.argoproj.io/sync-options Delete=false (teardown --keep-pvcs, \
             or the old volume of a move)"
                .into(),
            format!(
                "{} when its data is no longer needed",
                kubectl_delete(kind, namespace, name)
            ),
        );
    }
    if !managed {
        return (
            "not platform's (no managed-by=platform label, no platform app tracks it): teardown \
             leaves it"
                .into(),
            format!(
                "{} if it is yours to delete",
                kubectl_delete(kind, namespace, name)
            ),
        );
    }
    (
        "platform's, but this teardown did not delete it (made after the teardown planned, or a \
         step was interrupted)"
            .into(),
        "re-run `platform teardown`".into(),
    )
}

/// Gateways, LoadBalancer Services and PVCs in `ns`: what a cloud bills by the hour.
async fn billable_in(
    client: &Client,
    ns: &str,
    ours: &BTreeSet<String>,
) -> Result<Vec<Survivor>, ClusterError> {
    let mut out = Vec::new();
    for g in list(client, kinds::GATEWAY, ns, None).await? {
        let detail = "still exists (its LoadBalancer is billable)".to_string();
        let managed = managed_or_tracked(&g, ours);
        out.push(survivor("Gateway", ns, &kinds::json(&g), managed, detail));
    }
    for s in list(client, kinds::SERVICE, ns, None).await? {
        let v = kinds::json(&s);
        if v.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") {
            let ip = v
                .pointer("/status/loadBalancer/ingress/0/ip")
                .and_then(Value::as_str)
                .unwrap_or("no address");
            let managed = managed_or_tracked(&s, ours);
            let detail = format!("type LoadBalancer ({ip})");
            out.push(survivor("Service", ns, &v, managed, detail));
        }
    }
    for p in list(client, kinds::PVC, ns, None).await? {
        let v = kinds::json(&p);
        let size = v
            .pointer("/status/capacity/storage")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let managed = managed_or_tracked(&p, ours);
        let detail = format!("{size} disk");
        let mut s = survivor("PersistentVolumeClaim", ns, &v, managed, detail);
        // Kept by Kubernetes while pods mount it: name them.
        let finalizers = p.metadata.finalizers.clone().unwrap_or_default();
        if p.metadata.deletion_timestamp.is_some() {
            if let Some(users) = super::delete::pvc_users(client, &v, &finalizers).await? {
                s.why = format!(
                    "still terminating: {} pending while {} mount(s) it",
                    consts::PVC_PROTECTION,
                    users.join(", ")
                );
                if let ClusterError::InUse { fix, .. } = super::delete::in_use(ns, &s.name, users) {
                    s.fix = fix;
                }
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// Released or Retain volumes whose claim was in a managed namespace.
async fn retained_volumes(
    client: &Client,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<Survivor>, ClusterError> {
    let mut out = Vec::new();
    for pv in list(client, kinds::PV, "", None).await? {
        let v = kinds::json(&pv);
        let field = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (ns, phase) = (field("/spec/claimRef/namespace"), field("/status/phase"));
        let policy = field("/spec/persistentVolumeReclaimPolicy");
        if namespaces.contains(&ns) && (phase == "Released" || policy == "Retain") {
            let claim = field("/spec/claimRef/name");
            let detail = format!("{phase}, reclaim policy {policy} (claim {ns}/{claim})");
            out.push(survivor("PersistentVolume", "", &v, true, detail));
        }
    }
    Ok(out)
}

/// Every KServe serving object in `ns`, and the Deployments and StatefulSets platform renders or
/// one of its Applications tracks (GPUs are billed by the pod).
async fn workloads_in(
    client: &Client,
    ns: &str,
    ours: &BTreeSet<String>,
) -> Result<Vec<Survivor>, ClusterError> {
    let mut out = Vec::new();
    for kind in [kinds::INFERENCE_SERVICE, kinds::LLM_INFERENCE_SERVICE] {
        match list(client, kind, ns, None).await {
            Ok(items) => out.extend(items.iter().map(|o| {
                let detail = "serving workload still exists".to_string();
                let managed = managed_or_tracked(o, ours);
                survivor(kind.kind, ns, &kinds::json(o), managed, detail)
            })),
            // The CRD is not installed (or already deleted): no such objects.
            Err(e) if e.code() == Some(404) => {}
            Err(e) => return Err(e),
        }
    }
    // Autoscalers would scale a workload that survived back up; KEDA's CRD may be absent. The
    // models' routes and grants would route a re-run's traffic to whatever takes their names.
    for (kind, detail) in [
        (kinds::HPA, "autoscaler still exists"),
        (kinds::SCALED_OBJECT, "autoscaler still exists"),
        (kinds::HTTP_ROUTE, "a model's route still exists"),
        (kinds::REFERENCE_GRANT, "a model's route grant still exists"),
    ] {
        match list(client, kind, ns, None).await {
            Ok(items) => out.extend(
                items
                    .iter()
                    .filter(|o| managed_or_tracked(o, ours))
                    .map(|o| survivor(kind.kind, ns, &kinds::json(o), true, detail.into())),
            ),
            Err(e) if e.code() == Some(404) => {}
            Err(e) => return Err(e),
        }
    }
    for kind in [kinds::DEPLOYMENT, kinds::STATEFUL_SET] {
        for o in list(client, kind, ns, None).await? {
            if managed_or_tracked(&o, ours) {
                let replicas = kinds::json(&o)
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                let detail = crate::text::count(replicas, "replica");
                out.push(survivor(kind.kind, ns, &kinds::json(&o), true, detail));
            }
        }
    }
    Ok(out)
}

/// The cluster-scoped objects platform rendered (ClusterServingRuntimes of llama.cpp and Ollama,
/// the catalog's PriorityClasses): no namespace deletion takes them.
async fn cluster_scoped(client: &Client) -> Result<Vec<Survivor>, ClusterError> {
    let mut out = Vec::new();
    for kind in [kinds::CLUSTER_SERVING_RUNTIME, kinds::PRIORITY_CLASS] {
        match list(client, kind, "", Some(&managed_selector())).await {
            Ok(items) => out.extend(items.iter().map(|o| {
                let detail = "rendered by platform".into();
                survivor(kind.kind, "", &kinds::json(o), true, detail)
            })),
            // The CRD is not installed (or already deleted): no such objects.
            Err(e) if e.code() == Some(404) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Namespaces platform created.
async fn created_namespaces(client: &Client) -> Result<Vec<Survivor>, ClusterError> {
    Ok(
        list(client, kinds::NAMESPACE, "", Some(&managed_selector()))
            .await?
            .iter()
            .map(|n| {
                let detail = if n.metadata.deletion_timestamp.is_some() {
                    "created by platform, still terminating"
                } else {
                    "created by platform"
                };
                survivor("Namespace", "", &kinds::json(n), true, detail.to_string())
            })
            .collect(),
    )
}

/// The AppProject, and the Applications platform renders, labels part of the environment, or that
/// deploy into a managed namespace.
async fn argo_objects(
    client: &Client,
    plan: &Plan,
    namespaces: &BTreeSet<String>,
    ours: &BTreeSet<String>,
) -> Result<Vec<Survivor>, ClusterError> {
    let argo = plan.argocd_namespace.as_str();
    let mut out = Vec::new();
    let projects = kinds::APP_PROJECT.api(client, argo);
    if let Some(p) = client
        .retry(|| projects.get_opt(&plan.env))
        .await
        .map_err(|e| ClusterError::api("reading the AppProject", e))?
    {
        let detail = "still exists".into();
        out.push(survivor("AppProject", argo, &kinds::json(&p), true, detail));
    }
    let part_of_label = format!(
        "/metadata/labels/{}",
        consts::LABEL_PART_OF.replace('/', "~1")
    );
    for a in list(client, kinds::APPLICATION, argo, None).await? {
        let v = kinds::json(&a);
        let part_of = v.pointer(&part_of_label).and_then(Value::as_str);
        let dest = v
            .pointer("/spec/destination/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if ours.contains(&name_of(&a))
            || part_of == Some(plan.env.as_str())
            || namespaces.contains(dest)
        {
            let managed = ours.contains(&name_of(&a));
            let detail = format!("destination namespace {dest}");
            out.push(survivor("Application", argo, &v, managed, detail));
        }
    }
    Ok(out)
}
