//! `platform status`: Applications by layer and wave, models with their state and the underlying cause
//! of anything not ready, and the model PVCs. The JSON shape (`-o json`) is documented in the README.

use std::collections::BTreeMap;

use kube::api::ListParams;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::health::{self, Progress};
use crate::cluster::kinds;
use crate::cluster::observed::{has_pvc, Listed, Observed};
use crate::cluster::{Client, ClusterError};
use crate::layout::root_app_name;
use crate::plan::{Plan, PlannedModel};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub env: String,
    pub profile: String,
    pub apps: Vec<AppStatus>,
    pub models: Vec<ModelStatus>,
    pub pvcs: Vec<PvcStatus>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    pub name: String,
    pub layer: String,
    /// Sync wave; None for the root apps.
    pub wave: Option<i32>,
    /// `done`, `pending`, `failed` or `missing`.
    pub state: String,
    pub sync: String,
    pub health: String,
    pub operation: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatus {
    pub name: String,
    pub layer: String,
    pub namespace: String,
    /// `ready`, `paused`, `scaled-to-zero` (an autoscaler with min 0 stopped it while idle),
    /// `not-ready` or `not-deployed`.
    pub state: String,
    pub desired: Option<i64>,
    pub ready_replicas: Option<i64>,
    pub paused: bool,
    pub url: Option<String>,
    /// The stable URL (OpenAI base) through the models' Gateway, which does not change with the
    /// layer; None until the Gateway has an address, or when the model is not routed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_url: Option<String>,
    /// How the live route splits the model's traffic (`kserve 100, raw-vllm 0`); None when the
    /// model is not routed or its route does not exist yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// During `platform move`: `to <layer>` on the model's own declaration, `from <layer>` on
    /// the one the move added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moving: Option<String>,
    /// Why it is not ready: conditions, pods (unschedulable, image pull, probes), PVC.
    pub reasons: Vec<String>,
    /// The autoscaling range config.yaml asks for (absent for a fixed replica count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<ScaleRange>,
    /// The serving object reports the model stopped (a pause took effect, or its autoscaler has
    /// it at 0 where the layer says so): what `pause --wait` waits for.
    #[serde(skip)]
    pub stopped: bool,
}

/// An autoscaled model's range and autoscaler, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleRange {
    pub min: u32,
    pub max: u32,
    /// `hpa` or `keda`.
    pub class: String,
    pub metric: String,
    pub target: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PvcStatus {
    pub name: String,
    pub namespace: String,
    pub model: String,
    pub phase: String,
    pub capacity: Option<String>,
}

fn s(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

pub async fn gather(client: &Client, plan: &Plan) -> Result<Report, ClusterError> {
    let api = kinds::APPLICATION.api(client, &plan.argocd_namespace);
    let lp = ListParams::default();
    let list = client
        .retry(|| api.list(&lp))
        .await
        .map_err(|e| ClusterError::api("listing Applications", e))?;
    let by_name: BTreeMap<String, Value> = list
        .items
        .iter()
        .map(|o| (o.metadata.name.clone().unwrap_or_default(), kinds::json(o)))
        .collect();
    let mut apps = Vec::new();
    let layers_with_apps: Vec<&String> = plan
        .profile
        .layers
        .iter()
        .filter(|l| plan.apps.iter().any(|a| &a.layer == *l))
        .collect();
    let rows = layers_with_apps
        .iter()
        .map(|l| (root_app_name(&plan.env, l), (*l).clone(), None))
        .chain(
            plan.apps
                .iter()
                .map(|a| (a.name.clone(), a.layer.clone(), Some(a.wave))),
        );
    for (name, layer, wave) in rows {
        apps.push(match by_name.get(&name) {
            None => AppStatus {
                name,
                layer,
                wave,
                state: "missing".into(),
                sync: String::new(),
                health: String::new(),
                operation: String::new(),
                message: "not in the cluster (apply with `platform up`; children appear when their root app syncs)".into(),
            },
            Some(v) => {
                let (state, message) = match health::application(v, None) {
                    Progress::Done => ("done", String::new()),
                    Progress::Pending(r) => ("pending", r),
                    Progress::Failed(r) => ("failed", r),
                };
                AppStatus {
                    name,
                    layer,
                    wave,
                    state: state.into(),
                    sync: s(v, "/status/sync/status"),
                    health: s(v, "/status/health/status"),
                    operation: s(v, "/status/operationState/phase"),
                    message,
                }
            }
        });
    }
    let mut models = Vec::new();
    let mut pvcs = Vec::new();
    let observed = Observed::Listed(Box::new(Listed::gather(client, &plan.models).await?));
    let address = match &plan.routing {
        Some(r) => super::route::gateway_address(client, r).await?,
        None => None,
    };
    for m in &plan.models {
        let (mut status, pvc) = model_status(&observed, m).await?;
        if let (true, Some(r)) = (m.routed, &plan.routing) {
            status.stable_url = address
                .as_deref()
                .map(|a| super::route::base_url(r, a, &m.name));
            status.route = super::route::read(client, r, &m.name).await?.map(|v| {
                super::route::describe(plan, &m.name, &super::route::backends(&v, &r.namespace))
            });
        }
        models.push(status);
        pvcs.extend(pvc);
    }
    Ok(Report {
        env: plan.env.clone(),
        profile: plan.profile.name.clone(),
        apps,
        models,
        pvcs,
    })
}

/// One model's state and, when it is not ready, why (what `status` reports for it).
pub async fn model(client: &Client, m: &PlannedModel) -> Result<ModelStatus, ClusterError> {
    model_status(&Observed::Direct(client.clone()), m)
        .await
        .map(|(s, _)| s)
}

async fn model_status(
    observed: &Observed,
    m: &PlannedModel,
) -> Result<(ModelStatus, Option<PvcStatus>), ClusterError> {
    let obj = observed.serving(m).await?;
    let pvc = observed.pvc(m).await?;
    let pvc_status = pvc.as_ref().map(|p| PvcStatus {
        name: m.model.pvc_name(),
        namespace: m.namespace.clone(),
        model: m.name.clone(),
        phase: s(p, "/status/phase"),
        capacity: p
            .pointer("/status/capacity/storage")
            .and_then(Value::as_str)
            .map(str::to_string),
    });
    let Some(v) = obj else {
        let why = format!(
            "{} {}/{} not found: sync the app {} (`platform up --sync-models`)",
            m.layer().serving_kind().kind,
            m.namespace,
            m.name,
            m.app
        );
        return Ok((model_line(m, "not-deployed", None, vec![why]), pvc_status));
    };
    let mut st = m.layer().state(&v);
    let scaled_to_zero = scaled_to_zero(observed, m, &v, &mut st).await?;
    if st.ready_replicas.is_none() && !st.stopped {
        // KServe reports no counts: its predictor's Deployment has them.
        if let Some(w) = observed.workload(m).await? {
            st.desired = Some(health::spec_replicas(&w));
            st.ready_replicas = Some(
                w.pointer("/status/readyReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            );
        }
    }
    let reasons = if st.ready || st.stopped || scaled_to_zero {
        Vec::new()
    } else {
        not_ready_reasons(observed, m, &st, pvc.as_ref()).await?
    };
    let state = if scaled_to_zero {
        "scaled-to-zero"
    } else if st.stopped {
        "paused"
    } else if st.ready {
        "ready"
    } else {
        "not-ready"
    };
    let mut line = model_line(m, state, Some(&st), reasons);
    line.paused = st.stopped && !scaled_to_zero;
    line.url = model_url(m, &v);
    Ok((line, pvc_status))
}

/// For an autoscaled model: its current count from the Deployment the autoscaler moves (KServe's
/// predictor; raw vLLM's serving object is that Deployment already) into `st`, and whether its
/// autoscaler has it at 0 replicas (`min: 0`, idle), as opposed to a pause.
async fn scaled_to_zero(
    observed: &Observed,
    m: &PlannedModel,
    serving: &Value,
    st: &mut health::ModelState,
) -> Result<bool, ClusterError> {
    let Some(a) = &m.model.autoscaling else {
        return Ok(false);
    };
    if st.stopped {
        return Ok(a.min == 0
            && m.layer().scaled_to_zero(serving)
            && !autoscaler_held(observed, m).await?);
    }
    let Some(w) = observed.workload(m).await? else {
        return Ok(false);
    };
    let desired = health::spec_replicas(&w);
    st.desired = Some(desired);
    st.ready_replicas = Some(
        w.pointer("/status/readyReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0),
    );
    Ok(a.min == 0 && desired == 0)
}

/// Whether the model's autoscaler is held by `platform pause` (a KEDA model paused while its
/// autoscaler had it at 0 keeps no replica count to remember: the ScaledObject says it is paused).
async fn autoscaler_held(observed: &Observed, m: &PlannedModel) -> Result<bool, ClusterError> {
    let Some(a) = m.autoscaler() else {
        return Ok(false);
    };
    Ok(observed
        .autoscaler(m)
        .await?
        .is_some_and(|obj| a.is_held(&obj)))
}

/// A model's status line; `st` is absent when the model is not deployed.
fn model_line(
    m: &PlannedModel,
    state: &str,
    st: Option<&health::ModelState>,
    reasons: Vec<String>,
) -> ModelStatus {
    ModelStatus {
        name: m.name.clone(),
        layer: m.serving_layer.clone(),
        namespace: m.namespace.clone(),
        state: state.into(),
        desired: st.and_then(|s| s.desired),
        ready_replicas: st.and_then(|s| s.ready_replicas),
        paused: st.is_some_and(|s| s.stopped),
        stopped: st.is_some_and(|s| s.stopped),
        url: None,
        stable_url: None,
        route: None,
        moving: m
            .moving_to
            .as_ref()
            .map(|l| format!("to {l}"))
            .or_else(|| m.moving_from.as_ref().map(|l| format!("from {l}"))),
        reasons,
        autoscaling: m.model.autoscaling.as_ref().map(|a| ScaleRange {
            min: a.min,
            max: a.max,
            class: a.class.as_str().into(),
            metric: a.metric.as_str().into(),
            target: a.target(),
        }),
    }
}

/// Why a deployed model is not ready: the serving object's own word, then its pods' problems
/// (scheduling, image pulls, crashes) and its PVC's.
async fn not_ready_reasons(
    observed: &Observed,
    m: &PlannedModel,
    st: &health::ModelState,
    pvc: Option<&Value>,
) -> Result<Vec<String>, ClusterError> {
    let mut reasons: Vec<String> = st.reason.iter().cloned().collect();
    reasons.extend(
        observed
            .pods(m)
            .await?
            .iter()
            .filter_map(health::pod_problem),
    );
    match pvc {
        Some(p) => reasons.extend(health::pvc_problem(p)),
        None if has_pvc(m) => reasons.push(format!(
            "PVC {}/{} does not exist",
            m.namespace,
            m.model.pvc_name()
        )),
        None => {}
    }
    Ok(reasons)
}

/// Where the model answers inside the cluster (its layer says: the raw vLLM Service, KServe's
/// `status.url`).
fn model_url(m: &PlannedModel, v: &Value) -> Option<String> {
    m.layer().in_cluster_url(&m.name, &m.namespace, v)
}
