//! KServe (scripted, RawDeployment mode): each InferenceService / LLMInferenceService owns a
//! Deployment (`<name>-predictor` / `<name>-kserve`) whose pods run the serving containers;
//! it is Ready once that Deployment has an available replica. With the annotation
//! `serving.kserve.io/stop: "true"` the Deployment scales to 0 and the ISVC reports
//! `Stopped=True` and `Ready=False`, the LLMISVC `Ready=False` with
//! `WorkloadsReady=False reason Stopped`. A pod that can't be scheduled (GPUs) keeps the
//! service not Ready, with the Deployment's reason.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::super::resources::{self, ResourceType};
use super::super::store::Key;
use super::super::strategy;
use super::super::util;
use super::{conditions, set_condition, Ctl};

const MANAGER: &str = "kserve-controller";
pub const STOP_ANNOTATION: &str = "serving.kserve.io/stop";

fn stopped(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(STOP_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true")
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

fn deployments() -> Option<&'static ResourceType> {
    resources::find("apps", "v1", "deployments")
}

/// Creates or updates the owned Deployment; returns (available replicas, why not).
fn ensure_workload(
    ctl: &Ctl,
    owner: &Value,
    name: &str,
    labels: Value,
    pod_spec: Value,
    replicas: i64,
) -> Option<(i64, String)> {
    let rt = deployments()?;
    let ns = util::str_at(owner, "/metadata/namespace").to_string();
    let key = Key::new(rt, &ns, name);
    let template = json!({"metadata": {"labels": labels}, "spec": pod_spec});
    let d = match ctl.state.store.get(&key) {
        Some(d) => {
            let same = d.pointer("/spec/replicas").and_then(Value::as_i64) == Some(replicas)
                && d.pointer("/spec/template") == Some(&template);
            if same {
                d
            } else {
                let t = template.clone();
                ctl.write(&key, MANAGER, "", |o| {
                    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.insert("replicas".into(), json!(replicas));
                        spec.insert("template".into(), t);
                    }
                })?
            }
        }
        None => {
            let mut d = json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {
                    "name": name, "namespace": ns, "labels": labels,
                    "ownerReferences": [{
                        "apiVersion": util::str_at(owner, "/apiVersion"),
                        "kind": util::str_at(owner, "/kind"),
                        "name": util::str_at(owner, "/metadata/name"),
                        "uid": util::str_at(owner, "/metadata/uid"),
                        "controller": true, "blockOwnerDeletion": true,
                    }],
                },
                "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template},
            });
            strategy::prepare_create(rt, &mut d, String::new).ok()?;
            ctl.state.store.create(rt, d, false).ok()?
        }
    };
    let available = d
        .pointer("/status/availableReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let why = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
        .map(|c| util::str_at(c, "/reason").to_string())
        .unwrap_or_else(|| "Progressing".into());
    Some((available, why))
}

/// The predictor's pod spec: custom containers as given, or a `kserve-container` for a
/// `predictor.model`.
fn predictor_pod_spec(isvc: &Value) -> Value {
    let predictor = isvc
        .pointer("/spec/predictor")
        .cloned()
        .unwrap_or(json!({}));
    let mut spec = predictor.clone();
    if let Some(m) = spec.as_object_mut() {
        for k in [
            "model",
            "minReplicas",
            "maxReplicas",
            "scaleTarget",
            "scaleMetric",
            "canaryTrafficPercent",
            "deploymentStrategy",
        ] {
            m.remove(k);
        }
        if !m.contains_key("containers") {
            let resources = predictor
                .pointer("/model/resources")
                .cloned()
                .unwrap_or(json!({}));
            m.insert(
                "containers".into(),
                json!([{"name": "kserve-container", "image": "kserve/huggingfaceserver:latest",
                        "resources": resources}]),
            );
        }
    }
    spec
}

/// What both reconcilers start from: whether the service is stopped, its generation, and the
/// replicas its Deployment runs.
struct Desired {
    stop: bool,
    generation: Value,
    replicas: i64,
}

/// `None` while `obj` is being deleted; else [`Desired`], the replicas read at `replicas_at`
/// (at least one; none when stopped).
fn desired(obj: &Value, replicas_at: &str) -> Option<Desired> {
    if deleting(obj) {
        return None;
    }
    let stop = stopped(obj);
    let replicas = if stop {
        0
    } else {
        obj.pointer(replicas_at)
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(1)
    };
    Some(Desired {
        stop,
        generation: obj
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1)),
        replicas,
    })
}

pub fn reconcile_isvc(ctl: &Arc<Ctl>, key: &Key, obj: &Value) -> Option<Duration> {
    let Desired {
        stop,
        generation,
        replicas,
    } = desired(obj, "/spec/predictor/minReplicas")?;
    let url = format!("http://{}-{}.example.com", key.name, key.namespace);
    let internal = format!(
        "http://{}-predictor.{}.svc.cluster.local",
        key.name, key.namespace
    );
    let labels = json!({
        "serving.kserve.io/inferenceservice": key.name,
        "app": format!("isvc.{}-predictor", key.name),
        "component": "predictor",
    });
    let (available, why) = ensure_workload(
        ctl,
        obj,
        &format!("{}-predictor", key.name),
        labels,
        predictor_pod_spec(obj),
        replicas,
    )?;
    let ready = !stop && available > 0;
    let mut conds = conditions(obj);
    if stop {
        let msg = "The InferenceService is stopped";
        set_condition(&mut conds, "IngressReady", "False", "Stopped", msg);
        set_condition(&mut conds, "PredictorReady", "False", "Stopped", msg);
        set_condition(&mut conds, "Ready", "False", "Stopped", msg);
        set_condition(&mut conds, "Stopped", "True", "Stopped", msg);
    } else if ready {
        set_condition(&mut conds, "IngressReady", "True", "", "");
        set_condition(&mut conds, "PredictorReady", "True", "", "");
        set_condition(&mut conds, "Ready", "True", "", "");
        set_condition(&mut conds, "Stopped", "False", "", "");
    } else {
        let msg = "Deployment does not have minimum availability.";
        set_condition(&mut conds, "IngressReady", "True", "", "");
        set_condition(&mut conds, "PredictorReady", "False", &why, msg);
        set_condition(&mut conds, "Ready", "False", &why, msg);
        set_condition(&mut conds, "Stopped", "False", "", "");
    }
    let stop = !ready;
    let state = if stop { "Pending" } else { "Loaded" };
    ctl.write(key, MANAGER, "status", |o| {
        if let Some(m) = o.as_object_mut() {
            let mut st = json!({
                "observedGeneration": generation,
                "conditions": conds,
                "address": {"url": internal},
                "modelStatus": {
                    "states": {"activeModelState": state, "targetModelState": state},
                    "transitionStatus": if stop { "InProgress" } else { "UpToDate" },
                },
                "components": {"predictor": {"url": internal}},
            });
            if !stop {
                if let Some(s) = st.as_object_mut() {
                    s.insert("url".into(), json!(url));
                }
            }
            m.insert("status".into(), st);
        }
    });
    None
}

pub fn reconcile_llmisvc(ctl: &Arc<Ctl>, key: &Key, obj: &Value) -> Option<Duration> {
    let Desired {
        stop,
        generation,
        replicas,
    } = desired(obj, "/spec/replicas")?;
    let url = format!("http://{}.{}.example.com", key.name, key.namespace);
    let mut pod_spec = obj.pointer("/spec/template").cloned().unwrap_or(json!({}));
    if pod_spec.get("containers").is_none() {
        if let Some(m) = pod_spec.as_object_mut() {
            m.insert(
                "containers".into(),
                json!([{"name": "main", "image": "ghcr.io/llm-d/llm-d:latest"}]),
            );
        }
    }
    let labels = json!({
        "app.kubernetes.io/name": key.name,
        "app.kubernetes.io/part-of": "llminferenceservice",
        "app.kubernetes.io/component": "llminferenceservice-workload",
    });
    let (available, why) = ensure_workload(
        ctl,
        obj,
        &format!("{}-kserve", key.name),
        labels,
        pod_spec,
        replicas,
    )?;
    let mut conds = conditions(obj);
    if !stop && available == 0 {
        let msg = "Deployment does not have minimum availability.";
        set_condition(&mut conds, "MainWorkloadReady", "False", &why, msg);
        set_condition(&mut conds, "WorkloadsReady", "False", &why, msg);
        set_condition(&mut conds, "RouterReady", "True", "", "");
        set_condition(&mut conds, "PresetsCombined", "True", "", "");
        set_condition(&mut conds, "Ready", "False", &why, msg);
    } else if stop {
        let msg = "The LLMInferenceService is stopped";
        set_condition(&mut conds, "MainWorkloadReady", "False", "Stopped", msg);
        set_condition(&mut conds, "WorkloadsReady", "False", "Stopped", msg);
        set_condition(&mut conds, "RouterReady", "True", "", "");
        set_condition(&mut conds, "PresetsCombined", "True", "", "");
        set_condition(&mut conds, "Ready", "False", "Stopped", msg);
    } else {
        set_condition(&mut conds, "MainWorkloadReady", "True", "", "");
        set_condition(&mut conds, "WorkloadsReady", "True", "", "");
        set_condition(&mut conds, "RouterReady", "True", "", "");
        set_condition(&mut conds, "PresetsCombined", "True", "", "");
        set_condition(&mut conds, "Ready", "True", "", "");
    }
    ctl.write(key, MANAGER, "status", |o| {
        if let Some(m) = o.as_object_mut() {
            let mut st = json!({"observedGeneration": generation, "conditions": conds});
            if !stop && available > 0 {
                if let Some(s) = st.as_object_mut() {
                    s.insert("url".into(), json!(url));
                    s.insert("addresses".into(), json!([{"url": url}]));
                }
            }
            m.insert("status".into(), st);
        }
    });
    None
}
