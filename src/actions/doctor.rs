//! `platform doctor`: preflight checks against the cluster, each OK, WARN or FAIL with the fix.

use std::collections::BTreeSet;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{ListParams, PostParams};
use kube::Api;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::kinds::{self, Kind};
use crate::cluster::observed::list_json;
use crate::cluster::target::Target;
use crate::cluster::{Client, ClusterError};
use crate::consts;
use crate::plan::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub level: Level,
    pub check: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(level: Level, name: &str, detail: impl Into<String>, fix: Option<String>) -> Check {
    Check {
        level,
        check: name.to_string(),
        detail: detail.into(),
        fix,
    }
}

/// Label every Argo CD install (upstream manifest, Helm chart, operator) puts on its components;
/// their names differ (the Helm chart prefixes its release name: `argo-cd-argocd-…`).
pub const ARGOCD_COMPONENT_LABEL: &str = "app.kubernetes.io/name";

/// One Argo CD component among the workloads carrying its `app.kubernetes.io/name` label (found by
/// label, in any namespace: a Helm release names it `<release>-argocd-…`).
fn argocd_component(workloads: &[Workload], component: &str, expected_ns: &str) -> Check {
    // Prefer the namespace platform writes Applications to.
    let found = workloads
        .iter()
        .find(|w| w.namespace == expected_ns)
        .or(workloads.first());
    match found {
        Some(w) if w.ready && w.namespace == expected_ns => check(
            Level::Ok,
            "argocd",
            format!("{component} ready ({} {}/{})", w.kind.kind, w.namespace, w.name),
            None,
        ),
        Some(w) if w.ready => check(
            Level::Warn,
            "argocd",
            format!(
                "{component} runs in namespace {} ({}/{}), but platform writes Applications to {expected_ns}",
                w.namespace, w.namespace, w.name
            ),
            Some(format!("Argo CD must watch namespace {expected_ns} (install it there, or enable apps in any namespace)")),
        ),
        Some(w) => check(
            Level::Fail,
            "argocd",
            format!("{component} {}/{} has no ready replica", w.namespace, w.name),
            Some(format!(
                "`kubectl -n {} describe {} {}`",
                w.namespace,
                w.kind.kind.to_lowercase(),
                w.name
            )),
        ),
        None => check(
            Level::Fail,
            "argocd",
            format!(
                "no {component} (no {} labelled {ARGOCD_COMPONENT_LABEL}={component})",
                component_kinds(component)
                    .iter()
                    .map(|k| k.kind)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            Some(format!("`platform bootstrap` installs Argo CD (namespace {expected_ns})")),
        ),
    }
}

/// A Deployment or StatefulSet found by label.
pub struct Workload {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    /// Its first container's image.
    pub image: String,
    /// Installed by Helm (see [`helm_release`]): the release name, when known.
    pub helm: Option<String>,
}

/// Helm's marks on an object: the annotation `meta.helm.sh/release-name` Helm 3 sets on all it
/// installs, or the chart labels (`helm.sh/chart`, `app.kubernetes.io/managed-by: Helm`, the release
/// in `app.kubernetes.io/instance`). `Some(release)` when Helm owns it (`"unnamed"` when only the
/// labels say so without a release).
pub fn helm_release(metadata: &Value) -> Option<String> {
    let at = |map: &str, key: &str| {
        metadata
            .get(map)
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(r) = at("annotations", "meta.helm.sh/release-name") {
        return Some(r.to_string());
    }
    let by_helm = at("labels", "helm.sh/chart").is_some()
        || at("labels", "app.kubernetes.io/managed-by")
            .is_some_and(|m| m.eq_ignore_ascii_case("helm"));
    by_helm.then(|| {
        at("labels", "app.kubernetes.io/instance")
            .unwrap_or("unnamed")
            .to_string()
    })
}

/// The kinds an Argo CD component runs as: the application controller is a StatefulSet upstream
/// (the Helm chart can make it a Deployment); every other component is a Deployment.
pub fn component_kinds(component: &str) -> &'static [Kind] {
    const CONTROLLER: [Kind; 2] = [kinds::STATEFUL_SET, kinds::DEPLOYMENT];
    const OTHERS: [Kind; 1] = [kinds::DEPLOYMENT];
    if component == "argocd-application-controller" {
        &CONTROLLER
    } else {
        &OTHERS
    }
}

/// Every workload of the kinds the Argo CD `component` runs as ([`component_kinds`]) labelled as
/// that component, in all namespaces.
pub async fn find_component(
    client: &Client,
    component: &str,
) -> Result<Vec<Workload>, ClusterError> {
    let selector = format!("{ARGOCD_COMPONENT_LABEL}={component}");
    let lp = ListParams::default().labels(&selector);
    let mut out = Vec::new();
    for &kind in component_kinds(component) {
        let api: Api<kube::api::DynamicObject> = kind.api_all(client);
        let items = client
            .retry(|| api.list(&lp))
            .await
            .map_err(|e| {
                ClusterError::api(
                    format!(
                        "listing {}s labelled {selector} in all namespaces",
                        kind.kind
                    ),
                    e,
                )
            })?
            .items;
        out.extend(items.iter().map(|o| {
            let v = kinds::json(o);
            Workload {
                kind,
                namespace: o.metadata.namespace.clone().unwrap_or_default(),
                name: o.metadata.name.clone().unwrap_or_default(),
                ready: v
                    .pointer("/status/readyReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    >= 1,
                image: v
                    .pointer("/spec/template/spec/containers/0/image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                helm: v.get("metadata").and_then(helm_release),
            }
        }));
    }
    Ok(out)
}

/// The CRDs of Argo CD itself (`platform bootstrap` installs them).
const ARGOCD_CRDS: [&str; 2] = ["applications.argoproj.io", "appprojects.argoproj.io"];

/// Run every check; listing failures become FAIL lines rather than aborting.
pub async fn run(target: &Target, plan: &Plan) -> Vec<Check> {
    let client = &target.client;
    let mut out = vec![check(
        Level::Ok,
        "api",
        format!("{} reachable, Kubernetes {}", target.server, target.version),
        None,
    )];
    out.extend(crds(client, plan).await);
    out.extend(argocd(client, &plan.argocd_namespace).await);
    out.push(storage_class(client, plan).await);
    out.push(gateway_class(client, plan).await);
    out.extend(load_balancers(client, plan).await);
    out.extend(gpus(client, plan).await);
    out.extend(secrets(client, plan).await);
    out.push(rbac(client, &plan.argocd_namespace).await);
    out
}

/// The Secrets models reference (`hfTokenSecret`, `apiKeySecret`) exist in their namespaces.
/// Only their metadata is read: doctor never sees a value (nor, so, whether the key is there).
async fn secrets(client: &Client, plan: &Plan) -> Vec<Check> {
    let mut out = Vec::new();
    for pm in &plan.models {
        let m = &pm.model;
        let refs = [
            ("hfTokenSecret", &m.hf_token_secret),
            ("apiKeySecret", &m.api_key_secret),
        ];
        for (field, r) in refs {
            let Some(r) = r else { continue };
            let api: Api<k8s_openapi::api::core::v1::Secret> =
                Api::namespaced(client.kube(), &pm.namespace);
            let what = format!(
                "Secret {}/{} ({field} of model {})",
                pm.namespace, r.name, m.name
            );
            out.push(match client.retry(|| api.get_metadata_opt(&r.name)).await {
                Ok(Some(_)) => check(Level::Ok, "secret", format!("{what} exists (its value is not read)"), None),
                Ok(None) => check(
                    Level::Fail,
                    "secret",
                    format!("{what} does not exist: the model's pods cannot start"),
                    Some(format!(
                        "`kubectl -n {} create secret generic {} --from-file={}=FILE` (FILE holds the value; never in git)",
                        pm.namespace, r.name, r.key
                    )),
                ),
                Err(e) => check(Level::Fail, "secret", format!("{what}: {}", crate::cluster::api_error::describe(&e)), None),
            });
        }
    }
    out
}

/// The CRDs the plan needs: Argo CD's (FAIL when missing), then those each app of the plan installs
/// (`crds:` in catalog/groups.yaml; WARN: `platform up` installs them).
fn needed_crds(plan: &Plan) -> Vec<(String, Level, String)> {
    let mut need: Vec<(String, Level, String)> = ARGOCD_CRDS
        .iter()
        .map(|c| {
            let fix = "`platform bootstrap` installs Argo CD".to_string();
            (c.to_string(), Level::Fail, fix)
        })
        .collect();
    for a in &plan.apps {
        for crd in &a.spec.crds {
            let fix = format!(
                "installed by the {} app (wave {}) on `platform up`",
                a.name, a.wave
            );
            need.push((crd.clone(), Level::Warn, fix));
        }
    }
    need
}

async fn crds(client: &Client, plan: &Plan) -> Vec<Check> {
    let crds = match list_json(client, kinds::CRD, "", None).await {
        Ok(c) => c,
        Err(e) => return vec![check(Level::Fail, "crds", crate::error::one_line(&e), None)],
    };
    let have: BTreeSet<&str> = crds
        .iter()
        .filter_map(|c| c.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    needed_crds(plan)
        .into_iter()
        .map(|(crd, level, fix)| {
            if have.contains(crd.as_str()) {
                check(Level::Ok, "crd", crd, None)
            } else {
                check(level, "crd", format!("{crd} is missing"), Some(fix))
            }
        })
        .collect()
}

/// Argo CD's controller and repo server, found by label wherever they run; a list that fails (RBAC,
/// a broken API) says so rather than "not installed".
async fn argocd(client: &Client, ns: &str) -> Vec<Check> {
    let mut out = Vec::new();
    for component in ["argocd-application-controller", "argocd-repo-server"] {
        out.push(match find_component(client, component).await {
            Err(e) => check(
                Level::Fail,
                "argocd",
                format!(
                    "cannot look for {component}: {}",
                    crate::error::one_line(&e)
                ),
                None,
            ),
            Ok(found) => argocd_component(&found, component, ns),
        });
    }
    out
}

/// A default StorageClass, unless every model PVC names its class.
async fn storage_class(client: &Client, plan: &Plan) -> Check {
    let needs_default = plan
        .models
        .iter()
        .any(|m| m.model.storage.storage_class_name.is_none())
        && plan.config.storage_class_name.is_none();
    let scs = match list_json(client, kinds::STORAGE_CLASS, "", None).await {
        Ok(s) => s,
        Err(e) => {
            return check(
                Level::Fail,
                "storageclass",
                crate::error::one_line(&e),
                None,
            )
        }
    };
    let default = scs.iter().find(|s| {
        s.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class")
            .and_then(Value::as_str)
            == Some("true")
    });
    match (default, needs_default) {
        (Some(d), _) => {
            let name = d.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
            check(Level::Ok, "storageclass", format!("default {name}"), None)
        }
        (None, true) => check(
            Level::Fail,
            "storageclass",
            "no default StorageClass and model PVCs name none",
            Some("mark one default (storageclass.kubernetes.io/is-default-class=true) or set storageClassName in config.yaml".into()),
        ),
        (None, false) => check(
            Level::Ok,
            "storageclass",
            "no default, but every PVC names its class",
            None,
        ),
    }
}

/// The config's GatewayClass exists and is Accepted.
async fn gateway_class(client: &Client, plan: &Plan) -> Check {
    let class = &plan.config.gateway.class_name;
    let gcs = kinds::GATEWAY_CLASS.api(client, "");
    match client.retry(|| gcs.get_opt(class)).await {
        Ok(Some(gc)) => {
            let v = kinds::json(&gc);
            if crate::cluster::health::condition(&v, "Accepted").map(|c| c.0) == Some("True") {
                check(Level::Ok, "gatewayclass", format!("{class} accepted"), None)
            } else {
                check(
                    Level::Fail,
                    "gatewayclass",
                    format!("{class} exists but is not Accepted"),
                    Some(format!("`kubectl describe gatewayclass {class}`")),
                )
            }
        }
        Ok(None) => check(
            Level::Warn,
            "gatewayclass",
            format!("{class} does not exist yet"),
            Some("installed by the agentgateway app (wave 2) on `platform up`".into()),
        ),
        Err(e) => check(
            Level::Warn,
            "gatewayclass",
            format!(
                "cannot read GatewayClass {class}: {}",
                crate::error::one_line(&e)
            ),
            None,
        ),
    }
}

/// Every LoadBalancer Service in the managed namespaces has an address.
async fn load_balancers(client: &Client, plan: &Plan) -> Vec<Check> {
    let mut out = Vec::new();
    for ns in crate::actions::teardown::managed_namespaces(plan) {
        for s in list_json(client, kinds::SERVICE, &ns, None)
            .await
            .unwrap_or_default()
        {
            if s.pointer("/spec/type").and_then(Value::as_str) != Some("LoadBalancer") {
                continue;
            }
            let name = s
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            out.push(if s.pointer("/status/loadBalancer/ingress/0").is_some() {
                check(
                    Level::Ok,
                    "loadbalancer",
                    format!("{ns}/{name} has an address"),
                    None,
                )
            } else {
                check(
                    Level::Warn,
                    "loadbalancer",
                    format!("{ns}/{name} has no address yet"),
                    Some(format!("`kubectl -n {ns} describe service {name}`")),
                )
            });
        }
    }
    out
}

/// Enough allocatable GPUs for the models (no check when no model wants one).
async fn gpus(client: &Client, plan: &Plan) -> Option<Check> {
    let want: u32 = plan.models.iter().map(|m| m.model.total_gpus()).sum();
    if want == 0 {
        return None;
    }
    let nodes = match list_json(client, kinds::NODE, "", None).await {
        Ok(n) => n,
        Err(e) => return Some(check(Level::Warn, "gpus", crate::error::one_line(&e), None)),
    };
    let have: i64 = nodes
        .iter()
        .filter_map(|n| {
            n.pointer("/status/allocatable")
                .and_then(|a| a.get(consts::GPU_RESOURCE))
                .and_then(Value::as_str)
        })
        .filter_map(|q| q.parse::<i64>().ok())
        .sum();
    let gpu = consts::GPU_RESOURCE;
    Some(if have >= i64::from(want) {
        check(
            Level::Ok,
            "gpus",
            format!("{have} allocatable {gpu} for {want} requested by the models"),
            None,
        )
    } else {
        check(
            Level::Fail,
            "gpus",
            format!("{have} allocatable {gpu} but the enabled models request {want}"),
            Some("add GPU nodes (or a node pool that autoscales), or disable GPU models".into()),
        )
    })
}

/// The verbs platform uses (group, resource, verb, in Argo CD's namespace; otherwise cluster-wide).
const VERBS: [(&str, &str, &str, bool); 9] = [
    ("argoproj.io", "applications", "patch", true),
    ("argoproj.io", "applications", "watch", true),
    ("argoproj.io", "applications", "delete", true),
    ("argoproj.io", "appprojects", "patch", true),
    ("apps", "deployments", "patch", false),
    ("serving.kserve.io", "inferenceservices", "patch", false),
    ("gateway.networking.k8s.io", "gateways", "delete", false),
    ("", "persistentvolumeclaims", "delete", false),
    ("", "pods", "create", false),
];

/// RBAC for the verbs platform uses (SelfSubjectAccessReview); Argo CD's objects in `argocd_ns`.
async fn rbac(client: &Client, argocd_ns: &str) -> Check {
    let ssar: Api<SelfSubjectAccessReview> = Api::all(client.kube());
    let mut denied = Vec::new();
    for (group, resource, verb, in_argocd) in VERBS {
        let ns = if in_argocd { argocd_ns } else { "" };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.to_string()),
                    resource: Some(resource.to_string()),
                    verb: Some(verb.to_string()),
                    namespace: (!ns.is_empty()).then(|| ns.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let scope = if ns.is_empty() {
            String::new()
        } else {
            format!(" in {ns}")
        };
        match ssar.create(&PostParams::default(), &review).await {
            Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => denied.push(format!("{verb} {resource}{scope}")),
            Err(e) => denied.push(format!(
                "{verb} {resource} (review failed: {})",
                crate::cluster::api_error::describe(&e)
            )),
        }
    }
    if denied.is_empty() {
        check(
            Level::Ok,
            "rbac",
            format!("allowed: the {} verbs platform uses", VERBS.len()),
            None,
        )
    } else {
        check(
            Level::Fail,
            "rbac",
            format!("denied: {}", denied.join(", ")),
            Some("grant these to your user (`kubectl auth can-i --list`)".into()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helm_marks_name_the_release() {
        let release = |m: Value| helm_release(&m);
        assert_eq!(
            release(json!({"annotations": {"meta.helm.sh/release-name": "argo"}})),
            Some("argo".into())
        );
        assert_eq!(
            release(
                json!({"labels": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "cd"}})
            ),
            Some("cd".into())
        );
        assert_eq!(
            release(json!({"labels": {"helm.sh/chart": "argo-cd-7.7.0"}})),
            Some("unnamed".into())
        );
        assert_eq!(
            release(
                json!({"labels": {"app.kubernetes.io/name": "argocd-server", "app.kubernetes.io/part-of": "argocd"}})
            ),
            None
        );
        assert_eq!(release(json!({})), None);
    }
}
