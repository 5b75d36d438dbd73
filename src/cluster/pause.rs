//! Pause and resume a model on any serving layer.
//! KServe ISVC and LLMInferenceService: the `serving.kserve.io/stop` annotation ("true" stops; resume
//! removes it). raw vLLM: scale the Deployment to 0, remembering the replica count in an annotation
//! that resume restores. Both are idempotent.

use std::time::Duration;

use kube::api::{DynamicObject, Patch};
use serde_json::{json, Value};

use super::kinds::{self, Kind};
use super::{health, ClusterError};
use crate::catalog::resolve::PlannedModel;
use crate::config::ServingLayer;
use crate::consts;

/// What pause/resume did to one model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub model: String,
    pub layer: String,
    pub action: String,
    pub changed: bool,
}

pub fn kind_of(layer: ServingLayer) -> Kind {
    match layer {
        ServingLayer::RawVllm => kinds::DEPLOYMENT,
        ServingLayer::Kserve => kinds::INFERENCE_SERVICE,
        ServingLayer::LlmD => kinds::LLM_INFERENCE_SERVICE,
    }
}

async fn get(
    client: &kube::Client,
    m: &PlannedModel,
) -> Result<(Kind, DynamicObject), ClusterError> {
    let kind = kind_of(m.model.layer);
    match kind.api(client, &m.namespace).get_opt(&m.name).await {
        Ok(Some(o)) => Ok((kind, o)),
        Ok(None) => Err(ClusterError::NotDeployed {
            model: m.name.clone(),
            object: format!("{} {}/{}", kind.kind, m.namespace, m.name),
            app: m.app.clone(),
        }),
        Err(e) => Err(ClusterError::api(
            format!("reading {} {}/{}", kind.kind, m.namespace, m.name),
            e,
        )),
    }
}

/// Pause one model (no-op when it is paused already).
pub async fn pause(client: &kube::Client, m: &PlannedModel) -> Result<Outcome, ClusterError> {
    let (kind, obj) = get(client, m).await?;
    let v = kinds::json(&obj);
    let api = kind.api(client, &m.namespace);
    let (action, patch) = match m.model.layer {
        ServingLayer::Kserve | ServingLayer::LlmD => {
            if health::has_stop_annotation(&v) {
                (
                    "already paused (serving.kserve.io/stop=true)".to_string(),
                    None,
                )
            } else {
                (
                    "annotated serving.kserve.io/stop=true".to_string(),
                    Some(
                        json!({"metadata": {"annotations": {consts::ANNOTATION_KSERVE_STOP: "true"}}}),
                    ),
                )
            }
        }
        ServingLayer::RawVllm => {
            let replicas = v
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if replicas == 0 {
                ("already paused (0 replicas)".to_string(), None)
            } else {
                (
                    format!(
                        "scaled {replicas} -> 0 (remembered in {})",
                        consts::ANNOTATION_PAUSED_REPLICAS
                    ),
                    Some(json!({
                        "metadata": {"annotations": {consts::ANNOTATION_PAUSED_REPLICAS: replicas.to_string()}},
                        "spec": {"replicas": 0},
                    })),
                )
            }
        }
    };
    finish(&api, kind, m, action, patch, "pausing").await
}

/// Resume one model (no-op when it is running already).
pub async fn resume(client: &kube::Client, m: &PlannedModel) -> Result<Outcome, ClusterError> {
    let (kind, obj) = get(client, m).await?;
    let v = kinds::json(&obj);
    let api = kind.api(client, &m.namespace);
    let (action, patch) = match m.model.layer {
        ServingLayer::Kserve | ServingLayer::LlmD => {
            if health::has_stop_annotation(&v) {
                (
                    "removed serving.kserve.io/stop".to_string(),
                    Some(
                        json!({"metadata": {"annotations": {consts::ANNOTATION_KSERVE_STOP: null}}}),
                    ),
                )
            } else {
                ("already running (no stop annotation)".to_string(), None)
            }
        }
        ServingLayer::RawVllm => {
            let replicas = v
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let remembered = v
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(consts::ANNOTATION_PAUSED_REPLICAS));
            match (replicas, remembered) {
                (0, r) => {
                    let (target, why) = restore_count(r, m.model.replicas);
                    (
                        match why {
                            Some(why) => format!("scaled 0 -> {target} ({why})"),
                            None => format!("scaled 0 -> {target}"),
                        },
                        Some(json!({
                            "metadata": {"annotations": {consts::ANNOTATION_PAUSED_REPLICAS: null}},
                            "spec": {"replicas": target},
                        })),
                    )
                }
                (n, Some(_)) => (
                    format!("already running ({n} replicas); cleared a stale pause annotation"),
                    Some(
                        json!({"metadata": {"annotations": {consts::ANNOTATION_PAUSED_REPLICAS: null}}}),
                    ),
                ),
                (n, None) => (format!("already running ({n} replicas)"), None),
            }
        }
    };
    finish(&api, kind, m, action, patch, "resuming").await
}

/// How far above the configured `replicas` a remembered count is still restored: a raw-vLLM
/// Deployment's replicas are owned by pause/resume (Argo CD ignores `/spec/replicas`), so an operator
/// may have scaled it by hand before pausing; anything beyond this is not trusted.
pub const RESUME_HEADROOM: u32 = 2;

/// The replica count resume restores from the pause annotation's value (`None`: no annotation),
/// and a note saying why when it is not simply the remembered count. The annotation lives in the
/// cluster, where anyone can edit it, so it is trusted only when it is a whole number from 1 to
/// [`RESUME_HEADROOM`] times the configured `replicas` (at least 1); anything else restores the
/// configured count.
pub fn restore_count(annotation: Option<&Value>, configured: u32) -> (u32, Option<String>) {
    let configured = configured.max(1);
    let ceiling = configured.saturating_mul(RESUME_HEADROOM);
    let key = consts::ANNOTATION_PAUSED_REPLICAS;
    let Some(raw) = annotation else {
        return (
            configured,
            Some(format!(
                "no {key} annotation (scaled to 0 by something else?); restored the configured {configured}"
            )),
        );
    };
    // Annotations are strings; shown as JSON so an odd value stays on one line, and cut.
    let shown = raw.to_string();
    let shown = crate::text::ellipsize(&shown, 40);
    let annotation = format!("annotation {key}={shown}");
    let why = match raw.as_str().and_then(|s| s.parse::<u64>().ok()) {
        Some(n) if n >= 1 && n <= u64::from(configured) => return (n as u32, None),
        Some(n) if n >= 1 && n <= u64::from(ceiling) => {
            return (
                n as u32,
                Some(format!(
                    "{annotation} is above the configured {configured} (scaled by hand before the pause?); \
                     restored as remembered"
                )),
            )
        }
        Some(0) => "is 0, not a count to resume to".to_string(),
        Some(_) => format!(
            "is more than {RESUME_HEADROOM}x the configured {configured}, not trusted"
        ),
        None => "is not a replica count".to_string(),
    };
    (
        configured,
        Some(format!(
            "{annotation} {why}; restored the configured {configured}"
        )),
    )
}

/// Apply the patch (if any) and say what happened.
async fn finish(
    api: &kube::Api<DynamicObject>,
    kind: Kind,
    m: &PlannedModel,
    action: String,
    patch: Option<Value>,
    verb: &str,
) -> Result<Outcome, ClusterError> {
    let changed = patch.is_some();
    if let Some(p) = patch {
        let patch = Patch::Merge(&p);
        let pp = super::apply::patch_params();
        super::retry::retry(|| api.patch(&m.name, &pp, &patch))
            .await
            .map_err(|e| {
                ClusterError::api(
                    format!("{verb} {} {}/{}", kind.kind, m.namespace, m.name),
                    e,
                )
            })?;
    }
    Ok(Outcome {
        model: m.name.clone(),
        layer: m.serving_layer.clone(),
        action,
        changed,
    })
}

/// The model's current state as its serving object reports it.
pub async fn state(
    client: &kube::Client,
    m: &PlannedModel,
) -> Result<Option<health::ModelState>, ClusterError> {
    let kind = kind_of(m.model.layer);
    let obj = kind
        .api(client, &m.namespace)
        .get_opt(&m.name)
        .await
        .map_err(|e| {
            ClusterError::api(
                format!("reading {} {}/{}", kind.kind, m.namespace, m.name),
                e,
            )
        })?;
    Ok(obj.map(|o| model_state(m.model.layer, &kinds::json(&o))))
}

pub fn model_state(layer: ServingLayer, v: &Value) -> health::ModelState {
    match layer {
        ServingLayer::RawVllm => health::deployment(v),
        ServingLayer::Kserve => health::inference_service(v),
        ServingLayer::LlmD => health::llm_inference_service(v),
    }
}

/// Wait until the model is stopped (`stopped = true`) or ready, watching its object.
pub async fn wait_for(
    client: &kube::Client,
    m: &PlannedModel,
    stopped: bool,
    timeout: Duration,
) -> Result<(), ClusterError> {
    use futures::StreamExt;
    use kube::runtime::{watcher, WatchStreamExt};
    let kind = kind_of(m.model.layer);
    let api = kind.api(client, &m.namespace);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={}", m.name));
    // Backoff: a watch that keeps failing (RBAC, a flapping API server) is retried with growing
    // pauses instead of in a hot loop; the deadline below still bounds the whole wait.
    let mut stream = Box::pin(watcher(api, cfg).default_backoff());
    let mut last = String::from("no status yet");
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                return Err(ClusterError::Timeout {
                    what: format!("{} to {}", m.name, if stopped { "stop" } else { "become ready" }),
                    pending: vec![format!("{}: {last}", m.name)],
                });
            }
            ev = stream.next() => {
                // A watcher only ends when its stream is dropped; should it end anyway, say so
                // rather than poll a finished stream until the deadline.
                let Some(ev) = ev else {
                    return Err(ClusterError::Protocol {
                        what: format!("watching {} {}", kind.kind, m.name),
                        reason: format!("the watch ended (last seen: {last})"),
                    });
                };
                let obj = match ev {
                    Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
                    Ok(_) => continue,
                    Err(e) => { last = format!("watch error: {}", crate::error::one_line(&e)); continue; }
                };
                let st = model_state(m.model.layer, &kinds::json(&obj));
                if (stopped && st.stopped) || (!stopped && st.ready) {
                    return Ok(());
                }
                last = st.reason.unwrap_or_else(|| if st.stopped { "stopped".into() } else { "not ready".into() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore(v: Option<Value>, configured: u32) -> (u32, Option<String>) {
        restore_count(v.as_ref(), configured)
    }

    #[test]
    fn a_remembered_count_within_the_configured_replicas_is_restored_as_is() {
        assert_eq!(restore(Some(json!("2")), 2), (2, None));
        assert_eq!(restore(Some(json!("1")), 3), (1, None));
    }

    #[test]
    fn an_untrustworthy_annotation_restores_the_configured_count_and_says_why() {
        let (n, why) = restore(Some(json!("99999999999")), 2);
        assert_eq!(n, 2);
        let why = why.unwrap();
        assert!(
            why.contains("platform.ai/paused-replicas=\"99999999999\"")
                && why.contains("not trusted")
                && why.contains("restored the configured 2"),
            "{why}"
        );
        assert_eq!(restore(Some(json!("5")), 2).0, 2);
        // Scaled by hand above the config before the pause: restored, and said so.
        let (n, why) = restore(Some(json!("4")), 2);
        assert_eq!(n, 4);
        assert!(why.unwrap().contains("above the configured 2"));
        for bad in ["abc", "-3", "1.5", "", " 2"] {
            let (n, why) = restore(Some(json!(bad)), 1);
            assert_eq!(n, 1, "{bad:?}");
            assert_eq!(
                why.as_deref(),
                Some(
                    format!(
                        "annotation platform.ai/paused-replicas={} is not a replica count; restored the configured 1",
                        json!(bad)
                    )
                    .as_str()
                ),
            );
        }
        // Not a string at all (an annotation edited through the API as a number).
        assert_eq!(restore(Some(json!(3)), 4).0, 4);
        let (n, why) = restore(Some(json!("0")), 3);
        assert_eq!((n, why.unwrap().contains("is 0")), (3, true));
        // No annotation: the configured count, said so.
        let (n, why) = restore(None, 2);
        assert_eq!(n, 2);
        assert!(why
            .unwrap()
            .contains("no platform.ai/paused-replicas annotation"));
        // A model configured with 0 replicas still resumes to one.
        assert_eq!(restore(Some(json!("5")), 0).0, 1);
        assert_eq!(restore(Some(json!("2")), 0).0, 2);
        // A huge value is cut in the message.
        let long = "9".repeat(500);
        let why = restore(Some(json!(long)), 1).1.unwrap();
        assert!(why.len() < 200, "{why}");
    }
}
