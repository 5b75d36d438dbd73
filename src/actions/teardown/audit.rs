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
        out.extend(billable_in(client, ns).await?);
        out.extend(workloads_in(client, ns, &ours).await?);
    }
    out.extend(retained_volumes(client, &namespaces).await?);
    out.extend(cluster_scoped(client).await?);
    out.extend(created_namespaces(client).await?);
    out.extend(argo_objects(client, plan, &namespaces, &ours).await?);
    Ok(out)
}

fn survivor(kind: &str, namespace: &str, name: String, detail: String) -> Survivor {
    Survivor {
        kind: kind.into(),
        namespace: namespace.into(),
        name,
        detail,
    }
}

/// Gateways, LoadBalancer Services and PVCs in `ns`: what a cloud bills by the hour.
async fn billable_in(client: &Client, ns: &str) -> Result<Vec<Survivor>, ClusterError> {
    let mut out = Vec::new();
    for g in list(client, kinds::GATEWAY, ns, None).await? {
        let detail = "still exists (its LoadBalancer is billable)".to_string();
        out.push(survivor("Gateway", ns, name_of(&g), detail));
    }
    for s in list(client, kinds::SERVICE, ns, None).await? {
        let v = kinds::json(&s);
        if v.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") {
            let ip = v
                .pointer("/status/loadBalancer/ingress/0/ip")
                .and_then(Value::as_str)
                .unwrap_or("no address");
            out.push(survivor(
                "Service",
                ns,
                name_of(&s),
                format!("type LoadBalancer ({ip})"),
            ));
        }
    }
    for p in list(client, kinds::PVC, ns, None).await? {
        let v = kinds::json(&p);
        let size = v
            .pointer("/status/capacity/storage")
            .and_then(Value::as_str)
            .unwrap_or("?");
        out.push(survivor(
            "PersistentVolumeClaim",
            ns,
            name_of(&p),
            format!("{size} disk"),
        ));
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
            out.push(survivor("PersistentVolume", "", name_of(&pv), detail));
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
                survivor(kind.kind, ns, name_of(o), detail)
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
                    .map(|o| survivor(kind.kind, ns, name_of(o), detail.into())),
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
                out.push(survivor(
                    kind.kind,
                    ns,
                    name_of(&o),
                    format!("{replicas} replica(s)"),
                ));
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
            Ok(items) => out.extend(
                items
                    .iter()
                    .map(|o| survivor(kind.kind, "", name_of(o), "rendered by platform".into())),
            ),
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
                survivor("Namespace", "", name_of(n), detail.to_string())
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
    if client
        .retry(|| projects.get_opt(&plan.env))
        .await
        .map_err(|e| ClusterError::api("reading the AppProject", e))?
        .is_some()
    {
        out.push(survivor(
            "AppProject",
            argo,
            plan.env.clone(),
            "still exists".into(),
        ));
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
            out.push(survivor(
                "Application",
                argo,
                name_of(&a),
                format!("destination namespace {dest}"),
            ));
        }
    }
    Ok(out)
}
