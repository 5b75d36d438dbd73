//! Argo CD without the argocd CLI: manual syncs by writing the Application's top-level `operation`
//! field.

use kube::api::Patch;
use serde_json::{json, Value};

use super::kinds;
use super::{Client, ClusterError};
use crate::consts;

/// Value of the `info` entry that marks an operation platform started.
pub const OPERATION_TAG: &str = "platform";

/// The `operation` body of a manual sync: every field explicit, tagged as platform's.
pub fn sync_operation(revision: &str, sync_options: &[String], initiator: &str) -> Value {
    json!({
        "initiatedBy": {"username": consts::FIELD_MANAGER, "automated": false},
        "info": [{"name": OPERATION_TAG, "value": initiator}],
        "sync": {
            "revision": revision,
            "prune": true,
            "dryRun": false,
            "syncOptions": sync_options,
            "syncStrategy": {"hook": {}},
        },
        "retry": {"limit": 3, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}},
    })
}

/// Whether an operation is pending or running, and whether platform started it.
pub fn operation_in_flight(app: &Value) -> Option<bool> {
    let pending = app.get("operation").filter(|o| !o.is_null());
    let running = matches!(
        app.pointer("/status/operationState/phase")
            .and_then(Value::as_str),
        Some("Running") | Some("Terminating")
    );
    let op = pending.or_else(|| {
        running
            .then(|| app.pointer("/status/operationState/operation"))
            .flatten()
    })?;
    let ours = op.get("info").and_then(Value::as_array).is_some_and(|i| {
        i.iter()
            .any(|e| e.get("name").and_then(Value::as_str) == Some(OPERATION_TAG))
    });
    Some(ours)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStart {
    Started,
    /// An operation was already pending or running (true: platform's own).
    InFlight(bool),
}

/// Start a sync of `app` (in Argo CD's `namespace`) at `revision`, only when no operation is pending
/// or running. The write is conditional on the resourceVersion read, so a concurrent start is never
/// overwritten.
pub async fn start_sync(
    client: &Client,
    namespace: &str,
    app: &str,
    revision: &str,
    sync_options: &[String],
    initiator: &str,
) -> Result<SyncStart, ClusterError> {
    let api = kinds::APPLICATION.api(client, namespace);
    for _ in 0..5 {
        let obj = client
            .retry(|| api.get(app))
            .await
            .map_err(|e| ClusterError::api(format!("reading Application {app}"), e))?;
        let v = kinds::json(&obj);
        if let Some(ours) = operation_in_flight(&v) {
            return Ok(SyncStart::InFlight(ours));
        }
        let rv = obj.metadata.resource_version.clone().unwrap_or_default();
        let patch = json!({
            "metadata": {"resourceVersion": rv},
            "operation": sync_operation(revision, sync_options, initiator),
        });
        let params = super::apply::patch_params();
        match api.patch(app, &params, &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(SyncStart::Started),
            Err(kube::Error::Api(s)) if s.code == 409 => continue, // changed since we read it: look again
            Err(e) if super::retry::retryable(&e) => continue,
            Err(e) => {
                return Err(ClusterError::api(
                    format!("starting a sync of Application {app}"),
                    e,
                ))
            }
        }
    }
    Err(ClusterError::Protocol {
        what: format!("starting a sync of Application {app}"),
        reason: "the Application kept changing; try again".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_is_explicit_and_tagged() {
        let op = sync_operation("abc", &["ServerSideApply=true".into()], "platform up");
        assert_eq!(op["sync"]["revision"], "abc");
        assert_eq!(op["sync"]["prune"], true);
        assert_eq!(op["sync"]["syncOptions"][0], "ServerSideApply=true");
        assert_eq!(op["initiatedBy"]["automated"], false);
        let app = json!({"operation": op});
        assert_eq!(operation_in_flight(&app), Some(true));
        let foreign =
            json!({"status": {"operationState": {"phase": "Running", "operation": {"sync": {}}}}});
        assert_eq!(operation_in_flight(&foreign), Some(false));
        let idle = json!({"status": {"operationState": {"phase": "Succeeded"}}});
        assert_eq!(operation_in_flight(&idle), None);
    }
}
