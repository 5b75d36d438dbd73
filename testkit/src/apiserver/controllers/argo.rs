//! Argo CD Application controller (scripted): an operation (written by a client in the
//! top-level `operation` field, or by auto-sync) goes Running → Succeeded/Failed and is
//! cleared; after `argo_delay` the app is reconciled: sync Synced + revision, health
//! Healthy/Degraded, `reconciledAt` not before `finishedAt` (whole seconds, as Argo CD writes them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::faults::AppOutcome;
use super::super::store::Key;
use super::super::util;
use super::{lock, Ctl};

const MANAGER: &str = "argocd-application-controller";

/// Where an Application's current operation is.
#[derive(Debug, Clone)]
pub struct Track {
    op: Value,
    started: Instant,
    finished: Option<(Instant, i64)>,
}

fn desired_compare(app: &Value) -> Value {
    let mut v = json!({
        "destination": app.pointer("/spec/destination").cloned().unwrap_or(json!({})),
    });
    if let Some(m) = v.as_object_mut() {
        if let Some(s) = app.pointer("/spec/source") {
            m.insert("source".into(), s.clone());
        }
        if let Some(s) = app.pointer("/spec/sources") {
            m.insert("sources".into(), s.clone());
        }
    }
    v
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The commit a sync lands on: the operation's revision, a SHA targetRevision, a branch's commit
/// in a local (`file://`) repository, or a stable fake SHA for a branch name elsewhere.
fn revision(app: &Value, op: Option<&Value>) -> String {
    if let Some(r) = op
        .and_then(|o| o.pointer("/sync/revision"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        return r.to_string();
    }
    let target = util::str_at(app, "/spec/source/targetRevision");
    if is_sha(target) {
        return target.to_string();
    }
    let repo = util::str_at(app, "/spec/source/repoURL");
    // A repository on this machine (a test's bare remote): the branch's commit, as Argo CD resolves it.
    if let Some(sha) = repo
        .strip_prefix("file://")
        .and_then(|dir| branch_commit(dir, target))
    {
        return sha;
    }
    util::sha256_hex(&format!("{repo}@{target}"))[..40].to_string()
}

fn branch_commit(dir: &str, branch: &str) -> Option<String> {
    let repo = git2::Repository::open_bare(dir).ok()?;
    let refname = if branch.is_empty() || branch == "HEAD" {
        "HEAD".to_string()
    } else {
        format!("refs/heads/{branch}")
    };
    let commit = repo.revparse_single(&refname).ok()?.peel_to_commit().ok()?;
    Some(commit.id().to_string())
}

fn status_mut(app: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    let m = app.as_object_mut()?;
    Some(util::child_obj(m, "status"))
}

pub fn reconcile(ctl: &Arc<Ctl>, key: &Key, app: &Value) -> Option<Duration> {
    if app.pointer("/metadata/deletionTimestamp").is_some() {
        return None;
    }
    let uid = util::str_at(app, "/metadata/uid").to_string();
    let delay = ctl.state.opts.argo_delay;
    let outcome = ctl
        .state
        .faults()
        .app_outcomes
        .get(&key.name)
        .cloned()
        .unwrap_or(AppOutcome::Healthy);
    let op = app.get("operation").filter(|o| !o.is_null()).cloned();
    let track = lock(&ctl.argo).get(&uid).cloned();

    if let Some(op) = op {
        match track {
            Some(t) if t.op == op && t.finished.is_none() => {
                let due = t.started + delay;
                let now = Instant::now();
                if now < due {
                    return Some(due - now);
                }
                let finished_secs = complete(ctl, key, app, &op, &outcome)?;
                lock(&ctl.argo).insert(
                    uid,
                    Track {
                        finished: Some((Instant::now(), finished_secs)),
                        ..t
                    },
                );
                return Some(delay);
            }
            _ => {
                let started = util::now();
                let op_copy = op.clone();
                ctl.write(key, MANAGER, "", |a| {
                    if let Some(st) = status_mut(a) {
                        st.insert(
                            "operationState".into(),
                            json!({
                                "operation": op_copy,
                                "phase": "Running",
                                "message": "one or more tasks are running",
                                "startedAt": started,
                                "retryCount": 0,
                            }),
                        );
                    }
                })?;
                lock(&ctl.argo).insert(
                    uid,
                    Track {
                        op,
                        started: Instant::now(),
                        finished: None,
                    },
                );
                return Some(delay);
            }
        }
    }

    if let Some(Track {
        finished: Some((at, finished_secs)),
        op,
        ..
    }) = track
    {
        let due = at + delay;
        let now = Instant::now();
        if now < due {
            return Some(due - now);
        }
        reconciled(ctl, key, app, Some(&op), &outcome, finished_secs);
        lock(&ctl.argo).remove(&uid);
        return None;
    }

    // Idle: compare the spec with what was last compared.
    let desired = desired_compare(app);
    let compared = app.pointer("/status/sync/comparedTo").cloned();
    let automated = app
        .pointer("/spec/syncPolicy/automated")
        .is_some_and(|a| !a.is_null());
    // An automated app follows its branch: a moved branch (a push) is synced again.
    let moved = automated
        && app
            .pointer("/status/sync/revision")
            .and_then(Value::as_str)
            .is_some_and(|r| r != revision(app, None));
    if compared.as_ref() == Some(&desired) && !moved {
        return None;
    }
    if automated {
        let rev = revision(app, None);
        let prune = app
            .pointer("/spec/syncPolicy/automated/prune")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let sync_options = app
            .pointer("/spec/syncPolicy/syncOptions")
            .cloned()
            .unwrap_or(json!([]));
        ctl.write(key, MANAGER, "", |a| {
            if let Some(m) = a.as_object_mut() {
                m.insert(
                    "operation".into(),
                    json!({
                        "initiatedBy": {"automated": true},
                        "sync": {"revision": rev, "prune": prune, "syncOptions": sync_options},
                        "retry": {"limit": 5},
                    }),
                );
            }
        });
        return None;
    }
    let rev = revision(app, None);
    let now = util::now();
    ctl.write(key, MANAGER, "", |a| {
        let health = a
            .pointer("/status/health")
            .cloned()
            .unwrap_or(json!({"status": "Missing"}));
        if let Some(st) = status_mut(a) {
            st.insert(
                "sync".into(),
                json!({"status": "OutOfSync", "revision": rev, "comparedTo": desired}),
            );
            st.insert("health".into(), health);
            st.insert("reconciledAt".into(), json!(now));
            st.entry("sourceType").or_insert(json!("Directory"));
        }
    });
    None
}

/// Ends the running operation per the outcome; clears `operation`. Returns finishedAt.
fn complete(ctl: &Ctl, key: &Key, app: &Value, op: &Value, outcome: &AppOutcome) -> Option<i64> {
    let rev = revision(app, Some(op));
    let finished = util::now_secs();
    let source = app.pointer("/spec/source").cloned().unwrap_or(json!({}));
    let dest_ns = util::str_at(app, "/spec/destination/namespace").to_string();
    let (phase, message, resources) = match outcome {
        AppOutcome::SyncFailed(msg) => (
            "Failed",
            format!("one or more objects failed to apply, reason: {msg}"),
            json!([{
                "group": "apps", "version": "v1", "kind": "Deployment",
                "namespace": dest_ns, "name": key.name,
                "status": "SyncFailed", "message": msg,
                "hookPhase": "Failed", "syncPhase": "Sync"
            }]),
        ),
        _ => (
            "Succeeded",
            "successfully synced (all tasks run)".to_string(),
            json!([]),
        ),
    };
    ctl.write(key, MANAGER, "", |a| {
        let started = a
            .pointer("/status/operationState/startedAt")
            .cloned()
            .unwrap_or(json!(util::rfc3339(finished)));
        if let Some(m) = a.as_object_mut() {
            m.remove("operation");
        }
        if let Some(st) = status_mut(a) {
            st.insert(
                "operationState".into(),
                json!({
                    "operation": op,
                    "phase": phase,
                    "message": message,
                    "startedAt": started,
                    "finishedAt": util::rfc3339(finished),
                    "retryCount": 0,
                    "syncResult": {"revision": rev, "source": source, "resources": resources},
                }),
            );
            st.insert("health".into(), json!({"status": "Progressing"}));
        }
    })?;
    Some(finished)
}

/// The comparison after an operation: sync and health, `reconciledAt` after `finishedAt`.
fn reconciled(
    ctl: &Ctl,
    key: &Key,
    app: &Value,
    op: Option<&Value>,
    outcome: &AppOutcome,
    finished: i64,
) {
    let rev = revision(app, op);
    let desired = desired_compare(app);
    // Argo CD refreshes right after the operation: usually the same whole second as finishedAt.
    let reconciled_at = util::rfc3339(util::now_secs().max(finished));
    let (sync, health) = match outcome {
        AppOutcome::Healthy => ("Synced", json!({"status": "Healthy"})),
        AppOutcome::Degraded(msg) => ("Synced", json!({"status": "Degraded", "message": msg})),
        AppOutcome::SyncFailed(_) => ("OutOfSync", json!({"status": "Missing"})),
    };
    ctl.write(key, MANAGER, "", |a| {
        if let Some(st) = status_mut(a) {
            st.insert(
                "sync".into(),
                json!({"status": sync, "revision": rev, "comparedTo": desired}),
            );
            st.insert("health".into(), health);
            st.insert("reconciledAt".into(), json!(reconciled_at));
            st.insert("observedAt".into(), json!(reconciled_at));
            st.entry("sourceType").or_insert(json!("Directory"));
        }
    });
}
