//! Wait until Argo CD is usable: the application controller StatefulSet and the repo-server, redis
//! and server Deployments have every replica updated and ready. While waiting, and in the timeout
//! error, each component says why it is not (the pods' reasons: Pending and why, image pull
//! back-off, crash loop, a failing probe).

use std::time::Duration;

use kube::api::ListParams;
use serde_json::Value;

use crate::cluster::health::{self, Progress};
use crate::cluster::kinds::{self, Kind};
use crate::cluster::wait::{until, Stopped, Until};
use crate::cluster::{Client, ClusterError};
use crate::report::Reporter;

const POLL: Duration = Duration::from_secs(1);

/// The components that must be ready, as the upstream manifest names them.
pub const COMPONENTS: &[(Kind, &str)] = &[
    (kinds::STATEFUL_SET, "argocd-application-controller"),
    (kinds::DEPLOYMENT, "argocd-repo-server"),
    (kinds::DEPLOYMENT, "argocd-redis"),
    (kinds::DEPLOYMENT, "argocd-server"),
];

/// Every replica updated and ready, as the controller observed the current generation (the one
/// rollout rule of [`health::rollout`]).
pub fn workload_ready(v: &Value) -> bool {
    health::rollout(v).is_ok()
}

/// Why each component is not ready yet (empty when all are).
async fn pending(client: &Client, ns: &str) -> Result<Vec<String>, ClusterError> {
    let mut out = Vec::new();
    for (kind, name) in COMPONENTS {
        let api = kind.api(client, ns);
        let obj = client
            .retry(|| api.get_opt(name))
            .await
            .map_err(|e| ClusterError::api(format!("reading {} {ns}/{name}", kind.kind), e))?;
        let Some(obj) = obj else {
            out.push(format!("{} {ns}/{name} does not exist", kind.kind));
            continue;
        };
        let v = kinds::json(&obj);
        if workload_ready(&v) {
            continue;
        }
        let ready = v
            .pointer("/status/readyReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let want = v
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let reasons = pod_reasons(client, ns, name).await?;
        out.push(format!(
            "{} {ns}/{name}: {ready}/{want} ready{}",
            kind.kind,
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join("; "))
            }
        ));
    }
    Ok(out)
}

/// The reasons of the component's pods (found by the upstream `app.kubernetes.io/name` label).
async fn pod_reasons(
    client: &Client,
    ns: &str,
    component: &str,
) -> Result<Vec<String>, ClusterError> {
    let api = kinds::POD.api(client, ns);
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/name={component}"));
    let pods = client
        .retry(|| api.list(&lp))
        .await
        .map_err(|e| ClusterError::api(format!("listing the pods of {ns}/{component}"), e))?;
    let mut reasons: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| health::pod_problem(&kinds::json(p)))
        .collect();
    if reasons.is_empty() && pods.items.is_empty() {
        reasons.push("no pod yet".into());
    }
    Ok(reasons)
}

/// Poll until every component is ready, or `timeout` (ClusterError::Timeout: exit 3), saying what
/// is still pending every [`HEARTBEAT`](crate::cluster::wait::HEARTBEAT). Each poll's requests
/// retry with backoff themselves.
pub async fn wait(
    client: &Client,
    ns: &str,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let polls = futures::stream::unfold(true, |first| async move {
        if !first {
            tokio::time::sleep(POLL).await;
        }
        Some((pending(client, ns).await, false))
    });
    let what = format!(
        "Argo CD to be ready in namespace {ns} (--timeout {})",
        humantime::format_duration(timeout)
    );
    let spec = Until::new(what, "not checked yet", timeout);
    let mut left: Vec<String> = vec![spec.initial.clone()];
    let mut failed = None;
    let judge = |poll: Result<Vec<String>, ClusterError>| match poll {
        Ok(l) if l.is_empty() => Some(Progress::Done),
        Ok(l) => {
            left = l;
            Some(Progress::Pending(left.join("; ")))
        }
        Err(e) => {
            failed = Some(e);
            Some(Progress::Failed(String::new()))
        }
    };
    let heartbeat = crate::cluster::wait::say_heartbeats(reporter);
    match until(polls, &spec, judge, heartbeat).await {
        Ok(()) => Ok(()),
        Err(Stopped::Timeout(_)) => Err(ClusterError::Timeout {
            what: spec.what,
            pending: left,
        }),
        Err(stopped) => Err(failed.unwrap_or_else(|| ClusterError::Protocol {
            what: format!("waiting for Argo CD in namespace {ns}"),
            reason: stopped.to_string(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_means_every_replica_updated_and_ready_for_this_generation() {
        let ok = json!({"metadata": {"generation": 2}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 1}});
        assert!(workload_ready(&ok));
        let mut old = ok.clone();
        old["status"]["observedGeneration"] = json!(1);
        assert!(!workload_ready(&old));
        let mut none = ok.clone();
        none["status"]["readyReplicas"] = json!(0);
        assert!(!workload_ready(&none));
    }
}
