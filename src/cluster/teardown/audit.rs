//! The audit after a teardown: every survivor that may still cost money or block a re-run.

use std::collections::BTreeSet;

use kube::api::DynamicObject;
use serde_json::Value;

use super::{app_order, list, managed_namespaces, managed_selector, name_of, Survivor};
use crate::catalog::resolve::Plan;
use crate::cluster::kinds;
use crate::cluster::retry::retry;
use crate::cluster::ClusterError;
use crate::consts;

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
                Err(e) if e.code() == Some(404) => {}
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
