//! Pause and resume a model on any serving layer.
//! KServe ISVC and LLMInferenceService: the `serving.kserve.io/stop` annotation ("true" stops; resume
//! removes it). raw vLLM: scale the Deployment to 0, remembering the replica count in an annotation
//! that resume restores. Both are idempotent.

use std::time::Duration;

use kube::api::{DynamicObject, Patch};
use kube::runtime::watcher;

use crate::cluster::health::{self, Progress};
use crate::cluster::kinds::{self, Kind};
use crate::cluster::wait::{self, until, Seen, Stopped, Until};
use crate::cluster::{Client, ClusterError};
use crate::plan::PlannedModel;

/// What pause/resume did to one model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub model: String,
    pub layer: String,
    pub action: String,
    pub changed: bool,
}

async fn get(client: &Client, m: &PlannedModel) -> Result<(Kind, DynamicObject), ClusterError> {
    let kind = m.layer().serving_kind();
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
pub async fn pause(client: &Client, m: &PlannedModel) -> Result<Outcome, ClusterError> {
    let (kind, obj) = get(client, m).await?;
    let change = m.layer().pause(&kinds::json(&obj));
    finish(client, kind, m, change, "pausing").await
}

/// Resume one model (no-op when it is running already).
pub async fn resume(client: &Client, m: &PlannedModel) -> Result<Outcome, ClusterError> {
    let (kind, obj) = get(client, m).await?;
    let change = m.layer().resume(&kinds::json(&obj), m.model.replicas);
    finish(client, kind, m, change, "resuming").await
}

/// Apply the patch (if any) and say what happened.
async fn finish(
    client: &Client,
    kind: Kind,
    m: &PlannedModel,
    change: crate::serving::Change,
    verb: &str,
) -> Result<Outcome, ClusterError> {
    let changed = change.patch.is_some();
    if let Some(p) = change.patch {
        let api = kind.api(client, &m.namespace);
        let patch = Patch::Merge(&p);
        let pp = crate::cluster::apply::patch_params();
        client
            .retry(|| api.patch(&m.name, &pp, &patch))
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
        action: change.action,
        changed,
    })
}

/// The model's current state as its serving object reports it.
pub async fn state(
    client: &Client,
    m: &PlannedModel,
) -> Result<Option<health::ModelState>, ClusterError> {
    let layer = m.layer();
    let kind = layer.serving_kind();
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
    Ok(obj.map(|o| layer.state(&kinds::json(&o))))
}

/// Wait until the model is stopped (`stopped = true`) or ready, watching its object.
pub async fn wait_for(
    client: &Client,
    m: &PlannedModel,
    stopped: bool,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let layer = m.layer();
    let kind = layer.serving_kind();
    let api = kind.api(client, &m.namespace);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={}", m.name));
    let what = format!(
        "{} to {}",
        m.name,
        if stopped { "stop" } else { "become ready" }
    );
    let spec = Until::new(what, "no status yet", timeout);
    let judge = |seen: Seen<DynamicObject>| match seen {
        Seen::Applied(obj) => {
            let st = layer.state(&kinds::json(&obj));
            if (stopped && st.stopped) || (!stopped && st.ready) {
                return Some(Progress::Done);
            }
            let fallback = if st.stopped { "stopped" } else { "not ready" };
            Some(Progress::Pending(
                st.reason.unwrap_or_else(|| fallback.into()),
            ))
        }
        Seen::Deleted(_) => None,
        Seen::Interrupted(e) => Some(Progress::Pending(format!("watch error: {e}"))),
    };
    match until(wait::watch(api, cfg), &spec, judge, |_| {}).await {
        Ok(()) => Ok(()),
        Err(Stopped::Timeout(last)) => Err(ClusterError::Timeout {
            what: spec.what,
            pending: vec![format!("{}: {last}", m.name)],
        }),
        // A watcher only ends when its stream is dropped; should it end anyway, say so rather
        // than poll a finished stream until the deadline.
        Err(Stopped::Ended(last) | Stopped::Failed(last)) => Err(ClusterError::Protocol {
            what: format!("watching {} {}", kind.kind, m.name),
            reason: format!("the watch ended (last seen: {last})"),
        }),
    }
}
