//! Pause and resume a model on any serving layer.
//! KServe ISVC and LLMInferenceService: the `serving.kserve.io/stop` annotation ("true" stops; resume
//! removes it). raw vLLM: scale the Deployment to 0, remembering the replica count in an annotation
//! that resume restores. Both are idempotent. An autoscaled raw-vLLM model's KEDA ScaledObject is
//! paused with KEDA's own annotation first (see `serving/autoscaler.rs`; an HPA stops acting on a
//! Deployment at 0 by itself).

use std::time::Duration;

use futures::StreamExt;
use kube::api::{DynamicObject, Patch};
use kube::runtime::watcher;

use crate::cluster::health::{self, Progress};
use crate::cluster::kinds::{self, Kind};
use crate::cluster::wait::{self, until, Seen, Stopped, Until};
use crate::cluster::{Client, ClusterError};
use crate::plan::PlannedModel;
use crate::report::Reporter;

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

/// Pause one model (no-op when it is paused already). An autoscaler platform renders beside the
/// workload (raw vLLM's KEDA ScaledObject) is held first, so it cannot scale the model back up.
pub async fn pause(client: &Client, m: &PlannedModel) -> Result<Outcome, ClusterError> {
    pause_with(client, m, Write::Apply).await
}

/// Whether pause/resume write their patches, or only say what they would do (`--dry-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Apply,
    DryRun,
}

/// [`pause`], or with [`Write::DryRun`] what it would do (the same reads, no write).
pub async fn pause_with(
    client: &Client,
    m: &PlannedModel,
    write: Write,
) -> Result<Outcome, ClusterError> {
    let (kind, obj) = get(client, m).await?;
    let held = autoscaler_step(client, m, true, write).await?;
    let change = m.layer().pause(&kinds::json(&obj));
    finish(client, kind, m, change, "pausing", held, write).await
}

/// Resume one model (no-op when it is running already). Its autoscaler is released first, so a
/// KEDA pause does not scale the workload straight back to 0.
pub async fn resume(client: &Client, m: &PlannedModel) -> Result<Outcome, ClusterError> {
    resume_with(client, m, Write::Apply).await
}

/// [`resume`], or with [`Write::DryRun`] what it would do.
pub async fn resume_with(
    client: &Client,
    m: &PlannedModel,
    write: Write,
) -> Result<Outcome, ClusterError> {
    let (kind, obj) = get(client, m).await?;
    let released = autoscaler_step(client, m, false, write).await?;
    let change = m
        .layer()
        .resume(&kinds::json(&obj), crate::serving::Configured::of(&m.model));
    finish(client, kind, m, change, "resuming", released, write).await
}

/// Hold (`pause`) or release the model's autoscaler object, when its layer renders one: what was
/// done (None when there is no autoscaler to mention) and whether anything changed.
async fn autoscaler_step(
    client: &Client,
    m: &PlannedModel,
    pause: bool,
    write: Write,
) -> Result<Option<(String, bool)>, ClusterError> {
    let Some(a) = m.autoscaler() else {
        return Ok(None);
    };
    let verb = if pause { "pausing" } else { "resuming" };
    let what = format!("{} {}/{}", a.kind.kind, m.namespace, a.name);
    let api = a.kind.api(client, &m.namespace);
    let obj = match client.retry(|| api.get_opt(&a.name)).await {
        Ok(Some(o)) => kinds::json(&o),
        // Not synced (or deleted by hand): nothing acts on the workload through it.
        Ok(None) => return Ok(Some((format!("{what} not found"), false))),
        Err(e) => return Err(ClusterError::api(format!("{verb} {what}"), e)),
    };
    let change = if pause { a.pause(&obj) } else { a.resume(&obj) };
    let changed = change.patch.is_some();
    if let Some(p) = change.patch.filter(|_| write == Write::Apply) {
        let patch = Patch::Merge(&p);
        let pp = crate::cluster::apply::patch_params();
        client
            .retry(|| api.patch(&a.name, &pp, &patch))
            .await
            .map_err(|e| ClusterError::api(format!("{verb} {what}"), e))?;
    }
    Ok(Some((change.action, changed)))
}

/// Apply the patch (if any) and say what happened (after what was done to the autoscaler).
async fn finish(
    client: &Client,
    kind: Kind,
    m: &PlannedModel,
    change: crate::serving::Change,
    verb: &str,
    autoscaler: Option<(String, bool)>,
    write: Write,
) -> Result<Outcome, ClusterError> {
    let mut changed = change.patch.is_some();
    if let Some(p) = change.patch.filter(|_| write == Write::Apply) {
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
    let action = match autoscaler {
        Some((first, autoscaler_changed)) => {
            changed |= autoscaler_changed;
            format!("{first}; {}", change.action)
        }
        None => change.action,
    };
    Ok(Outcome {
        model: m.name.clone(),
        layer: m.serving_layer.clone(),
        action,
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

/// Wait until the model is stopped (`stopped = true`) or ready, watching its object. Each change
/// of the object, and each heartbeat, reads the model as `status` does, so what is said (at every
/// change of reason and at least every heartbeat, with the time left) and a timeout carry the
/// reason `status` would give: the serving object's conditions, its pods (unschedulable,
/// terminating, image pulls, probes), its PVC.
pub async fn wait_for(
    client: &Client,
    m: &PlannedModel,
    stopped: bool,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let kind = m.layer().serving_kind();
    let api = kind.api(client, &m.namespace);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={}", m.name));
    let what = format!(
        "{} to {}",
        m.name,
        if stopped { "stop" } else { "become ready" }
    );
    let spec = Until::new(what, "no status yet", timeout);
    // The object's changes, and a look every heartbeat (pods change without the object).
    let ticks = futures::stream::unfold(tokio::time::interval(spec.every), |mut i| async move {
        i.tick().await;
        Some((None, i))
    });
    let changes = wait::watch(api, cfg).map(Some);
    let looks = futures::stream::select(changes, ticks).then(|seen| async move {
        match seen {
            Some(Seen::Interrupted(e)) => Err(format!("watch error: {e}")),
            _ => crate::actions::status::model(client, m)
                .await
                .map_err(|e| e.to_string()),
        }
    });
    let judge = |look: Result<super::status::ModelStatus, String>| match look {
        Ok(st) => {
            let done = if stopped {
                st.stopped
            } else {
                st.state == "ready"
            };
            Some(if done {
                Progress::Done
            } else {
                Progress::Pending(why_not(&st))
            })
        }
        Err(e) => Some(Progress::Pending(e)),
    };
    match until(looks, &spec, judge, wait::say(reporter)).await {
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

/// Why a model is not where a wait wants it, in one line: `status`'s reasons, else its state
/// (`not-ready (0/1 ready)`, `paused`).
pub fn why_not(st: &super::status::ModelStatus) -> String {
    if !st.reasons.is_empty() {
        return st.reasons.join("; ");
    }
    match (st.desired, st.ready_replicas) {
        (Some(d), Some(r)) => format!("{} ({r}/{d} ready)", st.state),
        _ => st.state.clone(),
    }
}
