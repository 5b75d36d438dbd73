//! Wait until Argo CD is usable: the application controller StatefulSet and the repo-server, redis
//! and server Deployments have every replica updated and ready. While waiting, and in the timeout
//! error, each component says why it is not (the pods' reasons: Pending and why, image pull
//! back-off, crash loop, a failing probe).

use std::time::{Duration, Instant};

use kube::api::ListParams;
use serde_json::Value;

use crate::cluster::kinds::{self, Kind};
use crate::cluster::{health, Client, ClusterError};
use crate::report::Reporter;

const POLL: Duration = Duration::from_secs(1);
const SAY_EVERY: Duration = Duration::from_secs(30);

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

/// Poll until every component is ready, or `deadline` (ClusterError::Timeout: exit 3).
pub async fn wait(
    client: &Client,
    ns: &str,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let start = Instant::now();
    let mut said = start;
    loop {
        let left = pending(client, ns).await?;
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(ClusterError::Timeout {
                what: format!(
                    "Argo CD to be ready in namespace {ns} (--timeout {})",
                    humantime::format_duration(timeout)
                ),
                pending: left,
            });
        }
        if said.elapsed() >= SAY_EVERY {
            reporter.note(&format!("still waiting for Argo CD: {}", left.join("; ")));
            said = Instant::now();
        }
        tokio::time::sleep(POLL).await;
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
