//! Wait for Applications to be done, all at once, by watching (no sleep-polling): every state change
//! is reported; Degraded or a failed operation ends the wait at once; a deadline ends it with what is
//! still pending and why.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::watcher;

use super::health::{self, Progress};
use super::kinds;
use super::{Client, ClusterError};
use crate::report::Reporter;

/// One Application to wait for, with the revision it must have synced (when known).
#[derive(Debug, Clone)]
pub struct AppWait {
    pub name: String,
    pub revision: Option<String>,
}

/// `app: why` for every app not done yet.
fn pending(state: &BTreeMap<String, Progress>) -> Vec<String> {
    state
        .iter()
        .filter_map(|(n, p)| match p {
            Progress::Done => None,
            Progress::Pending(r) | Progress::Failed(r) => Some(format!("{n}: {r}")),
        })
        .collect()
}

/// How often a wait says what it is still waiting for.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

/// Watch until every Application named exists in Argo CD's `namespace` (root apps create them when
/// they sync).
pub async fn wait_created(
    client: &Client,
    namespace: &str,
    names: &[String],
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let mut missing: std::collections::BTreeSet<&str> = names.iter().map(String::as_str).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let api = kinds::APPLICATION.api(client, namespace);
    let mut stream = Box::pin(watcher(api, watcher::Config::default()));
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                return Err(ClusterError::Timeout {
                    what: "Applications to be created by their root apps".into(),
                    pending: missing.iter().map(|n| format!("{n}: not created (is its root app syncing? `platform status`)")).collect(),
                });
            }
            ev = stream.next() => match ev {
                Some(Ok(watcher::Event::Apply(o))) | Some(Ok(watcher::Event::InitApply(o))) => {
                    if let Some(n) = o.metadata.name.as_deref() {
                        if missing.remove(n) {
                            reporter.update(n, "created");
                        }
                    }
                    if missing.is_empty() {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => reporter.line(&format!("  (watch interrupted, resuming: {})", crate::error::one_line(&e))),
                None => return Err(ClusterError::Protocol { what: "watching Applications".into(), reason: "the watch ended".into() }),
            }
        }
    }
}

/// Watch the Applications in Argo CD's `namespace` until every one of `apps` is done.
pub async fn wait_apps(
    client: &Client,
    namespace: &str,
    apps: &[AppWait],
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    if apps.is_empty() {
        return Ok(());
    }
    let wanted: BTreeMap<&str, &AppWait> = apps.iter().map(|a| (a.name.as_str(), a)).collect();
    let mut state: BTreeMap<String, Progress> = apps
        .iter()
        .map(|a| {
            (
                a.name.clone(),
                Progress::Pending("not created yet (its root app has not synced it)".into()),
            )
        })
        .collect();
    for a in apps {
        reporter.update(&a.name, "waiting for its status");
    }
    let api = kinds::APPLICATION.api(client, namespace);
    let mut stream = Box::pin(watcher(api, watcher::Config::default()));
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let started = std::time::Instant::now();
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        tokio::select! {
            _ = beat.tick() => {
                // What is being waited for, even when nothing changes (or the API went quiet).
                reporter.line(&format!(
                    "  still waiting after {}s: {}",
                    started.elapsed().as_secs(),
                    pending(&state).join("; ")
                ));
            }
            _ = &mut deadline => {
                return Err(ClusterError::Timeout { what: format!("{} Application(s)", apps.len()), pending: pending(&state) });
            }
            ev = stream.next() => {
                let obj = match ev {
                    Some(Ok(watcher::Event::Apply(o))) | Some(Ok(watcher::Event::InitApply(o))) => o,
                    Some(Ok(watcher::Event::Delete(o))) => {
                        let name = o.metadata.name.clone().unwrap_or_default();
                        if wanted.contains_key(name.as_str()) {
                            state.insert(name.clone(), Progress::Pending("deleted".into()));
                            reporter.update(&name, "deleted");
                        }
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    // The watcher re-establishes itself; a failure is only reported.
                    Some(Err(e)) => { reporter.line(&format!("  (watch interrupted, resuming: {})", crate::error::one_line(&e))); continue; }
                    None => return Err(ClusterError::Protocol { what: "watching Applications".into(), reason: "the watch ended".into() }),
                };
                let name = obj.metadata.name.clone().unwrap_or_default();
                let Some(want) = wanted.get(name.as_str()) else { continue };
                let p = health::application(&kinds::json(&obj), want.revision.as_deref());
                match &p {
                    Progress::Done => reporter.finish(&name, "Synced, Healthy"),
                    Progress::Pending(r) => reporter.update(&name, r),
                    Progress::Failed(r) => {
                        reporter.finish(&name, &format!("FAILED: {r}"));
                        return Err(ClusterError::AppFailed { app: name.clone(), reason: r.clone() });
                    }
                }
                state.insert(name, p);
                if state.values().all(|p| *p == Progress::Done) {
                    return Ok(());
                }
            }
        }
    }
}
