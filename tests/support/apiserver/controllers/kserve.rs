//! KServe (scripted): InferenceService and LLMInferenceService become Ready; with the
//! annotation `serving.kserve.io/stop: "true"` the ISVC reports `Stopped=True` and
//! `Ready=False`, the LLMISVC `Ready=False` with `WorkloadsReady=False reason Stopped`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::super::store::Key;
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

pub fn reconcile_isvc(ctl: &Arc<Ctl>, key: &Key, obj: &Value) -> Option<Duration> {
    if deleting(obj) {
        return None;
    }
    let stop = stopped(obj);
    let generation = obj
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let url = format!("http://{}-{}.example.com", key.name, key.namespace);
    let internal = format!(
        "http://{}-predictor.{}.svc.cluster.local",
        key.name, key.namespace
    );
    let mut conds = conditions(obj);
    if stop {
        let msg = "The InferenceService is stopped";
        set_condition(&mut conds, "IngressReady", "False", "Stopped", msg);
        set_condition(&mut conds, "PredictorReady", "False", "Stopped", msg);
        set_condition(&mut conds, "Ready", "False", "Stopped", msg);
        set_condition(&mut conds, "Stopped", "True", "Stopped", msg);
    } else {
        set_condition(&mut conds, "IngressReady", "True", "", "");
        set_condition(&mut conds, "PredictorReady", "True", "", "");
        set_condition(&mut conds, "Ready", "True", "", "");
        set_condition(&mut conds, "Stopped", "False", "", "");
    }
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
    if deleting(obj) {
        return None;
    }
    let stop = stopped(obj);
    let generation = obj
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let url = format!("http://{}.{}.example.com", key.name, key.namespace);
    let mut conds = conditions(obj);
    if stop {
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
            if !stop {
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
