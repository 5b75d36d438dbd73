//! Pure health predicates over objects as the API returns them (JSON): is an Argo CD Application
//! done, is a model ready or stopped, and why is something not ready. No I/O: tested on fixtures.

use serde_json::Value;

use crate::consts;

/// Where an object stands on its way to done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Done,
    /// Still moving; the reason says what it waits for.
    Pending(String),
    /// Will not get there without a human: the reason says why (fail fast).
    Failed(String),
}

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn time(v: &Value, pointer: &str) -> Option<std::time::SystemTime> {
    s(v, pointer).and_then(|t| humantime::parse_rfc3339_weak(t).ok())
}

/// The strict done test for an Application: sync Synced, health Healthy, no operation pending,
/// `operationState.finishedAt` set and `reconciledAt` not before it, and (when known) the synced revision
/// equal to `revision`. Degraded health or a failed operation is `Failed` with the reason and the
/// failing resources.
pub fn application(app: &Value, revision: Option<&str>) -> Progress {
    let health = s(app, "/status/health/status").unwrap_or("Unknown");
    let sync = s(app, "/status/sync/status").unwrap_or("Unknown");
    let phase = s(app, "/status/operationState/phase");
    let op_msg = s(app, "/status/operationState/message").unwrap_or("");

    if let Some(why) = failure(app) {
        return Progress::Failed(why);
    }
    if app.get("operation").is_some_and(|o| !o.is_null()) {
        return Progress::Pending("sync operation pending".into());
    }
    match phase {
        Some("Running") | Some("Terminating") => {
            return Progress::Pending(format!("sync running{}", colon(op_msg)))
        }
        // Never needed a sync (already in the desired state when created): done once the
        // controller has compared it.
        None if sync == "Synced"
            && health == "Healthy"
            && time(app, "/status/reconciledAt").is_some() =>
        {
            return revision_pending(app, revision).unwrap_or(Progress::Done);
        }
        None => return Progress::Pending(format!("never synced ({sync}, {health})")),
        _ => {}
    }
    if sync != "Synced" {
        return Progress::Pending(format!("sync status {sync}"));
    }
    if health != "Healthy" {
        let msg = s(app, "/status/health/message").unwrap_or("");
        return Progress::Pending(format!("health {health}{}", colon(msg)));
    }
    let (Some(finished), Some(reconciled)) = (
        time(app, "/status/operationState/finishedAt"),
        time(app, "/status/reconciledAt"),
    ) else {
        return Progress::Pending("waiting for the controller to reconcile after the sync".into());
    };
    // Argo CD writes both in whole seconds and refreshes right after an operation ends, so the
    // reconcile that follows a sync usually carries the same second as `finishedAt`. Requiring a
    // strictly later second waited for the next periodic reconcile (about 3 minutes) on a real
    // Argo CD; an earlier second is a reconcile from before the sync ended.
    if reconciled < finished {
        return Progress::Pending("waiting for the controller to reconcile after the sync".into());
    }
    revision_pending(app, revision).unwrap_or(Progress::Done)
}

/// `: text`, or nothing for an empty text.
fn colon(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// ` [a; b]`, or nothing for an empty list.
fn bracketed(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(" [{}]", items.join("; "))
    }
}

/// Why the app has failed: a finished operation that failed (with the failing resources), or
/// Degraded health (with the degraded resources). None while it has not failed.
fn failure(app: &Value) -> Option<String> {
    let phase = s(app, "/status/operationState/phase");
    if matches!(phase, Some("Failed") | Some("Error")) && app.get("operation").is_none() {
        let op_msg = s(app, "/status/operationState/message").unwrap_or("");
        return Some(format!(
            "sync {}: {op_msg}{}",
            phase.unwrap_or_default().to_lowercase(),
            bracketed(&failing_sync_resources(app))
        ));
    }
    if s(app, "/status/health/status") == Some("Degraded") {
        let msg = s(app, "/status/health/message").unwrap_or("");
        return Some(format!(
            "Degraded{}{}",
            colon(msg),
            bracketed(&degraded_resources(app))
        ));
    }
    None
}

/// Pending while the synced revision is not `want` (the pushed commit); None when it is or when
/// no revision is required.
fn revision_pending(app: &Value, want: Option<&str>) -> Option<Progress> {
    let want = want?;
    let got = synced_revisions(app);
    if got.iter().any(|r| r == want) {
        return None;
    }
    Some(Progress::Pending(format!(
        "synced revision {} is not the pushed commit {}",
        got.first()
            .map(|r| crate::text::short_rev(r))
            .unwrap_or("none"),
        crate::text::short_rev(want)
    )))
}

/// `status.sync.revision` and `status.sync.revisions[]` (multi-source apps).
pub fn synced_revisions(app: &Value) -> Vec<String> {
    let mut out: Vec<String> = s(app, "/status/sync/revision")
        .map(|r| vec![r.to_string()])
        .unwrap_or_default();
    if let Some(list) = app
        .pointer("/status/sync/revisions")
        .and_then(Value::as_array)
    {
        out.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
    }
    out
}

fn failing_sync_resources(app: &Value) -> Vec<String> {
    app.pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter(|r| {
                    matches!(s(r, "/status"), Some("SyncFailed"))
                        || matches!(s(r, "/hookPhase"), Some("Failed") | Some("Error"))
                })
                .map(|r| {
                    format!(
                        "{} {}/{}: {}",
                        s(r, "/kind").unwrap_or("?"),
                        s(r, "/namespace").unwrap_or(""),
                        s(r, "/name").unwrap_or("?"),
                        s(r, "/message").unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn degraded_resources(app: &Value) -> Vec<String> {
    app.pointer("/status/resources")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter(|r| s(r, "/health/status") == Some("Degraded"))
                .map(|r| {
                    format!(
                        "{} {}/{}{}",
                        s(r, "/kind").unwrap_or("?"),
                        s(r, "/namespace").unwrap_or(""),
                        s(r, "/name").unwrap_or("?"),
                        s(r, "/health/message")
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A condition of `status.conditions[]` by type: (status, reason, message).
pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<(&'a str, &'a str, &'a str)> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| s(c, "/type") == Some(kind))
        .map(|c| {
            (
                s(c, "/status").unwrap_or("Unknown"),
                s(c, "/reason").unwrap_or(""),
                s(c, "/message").unwrap_or(""),
            )
        })
}

/// What a serving object says about its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelState {
    pub ready: bool,
    pub stopped: bool,
    pub desired: Option<i64>,
    pub ready_replicas: Option<i64>,
    /// Why it is not ready (condition messages), when it is not.
    pub reason: Option<String>,
}

fn stop_annotation(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(consts::ANNOTATION_KSERVE_STOP))
        .and_then(Value::as_str)
        == Some("true")
}

/// KServe InferenceService: Ready condition; stopped means `Stopped=True`.
pub fn inference_service(isvc: &Value) -> ModelState {
    let ready = condition(isvc, "Ready").map(|c| c.0) == Some("True");
    let stopped = condition(isvc, "Stopped").map(|c| c.0) == Some("True");
    ModelState {
        ready,
        stopped,
        desired: isvc
            .pointer("/spec/predictor/minReplicas")
            .and_then(Value::as_i64),
        ready_replicas: None,
        reason: (!ready && !stopped)
            .then(|| not_true_conditions(isvc))
            .flatten(),
    }
}

/// LLMInferenceService: Ready condition; stopped means `Ready=False` with a sub-condition whose
/// reason is `Stopped` (KServe ≥ 0.17 honours the stop annotation).
pub fn llm_inference_service(llm: &Value) -> ModelState {
    let ready = condition(llm, "Ready").map(|c| c.0) == Some("True");
    let stopped_reason = llm
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| s(c, "/status") == Some("False") && s(c, "/reason") == Some("Stopped"))
        });
    let stopped = !ready && stopped_reason;
    ModelState {
        ready,
        stopped,
        desired: llm.pointer("/spec/replicas").and_then(Value::as_i64),
        ready_replicas: None,
        reason: (!ready && !stopped)
            .then(|| not_true_conditions(llm))
            .flatten(),
    }
}

/// The replica count of a workload's spec (1 when unset, as Kubernetes defaults it).
pub fn spec_replicas(w: &Value) -> i64 {
    w.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// The one rule for "a Deployment or StatefulSet has rolled out" (kubectl rollout status's, with
/// ready for available): the controller has observed the current generation, every wanted replica
/// runs the current template and is ready, and no replica of an older template is left. Err says
/// what is still missing.
pub fn rollout(w: &Value) -> Result<(), String> {
    let n = |p: &str| w.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let want = spec_replicas(w);
    let generation = n("/metadata/generation");
    if n("/status/observedGeneration") < generation {
        return Err(format!(
            "the controller has not seen generation {generation} yet (rollout starting)"
        ));
    }
    let (updated, ready, total) = (
        n("/status/updatedReplicas"),
        n("/status/readyReplicas"),
        n("/status/replicas"),
    );
    if updated < want {
        return Err(format!("{updated}/{want} replicas updated, {ready} ready"));
    }
    if total > updated {
        return Err(format!(
            "{} old replica(s) still running (rollout in progress)",
            total - updated
        ));
    }
    if ready < want {
        return Err(format!("{ready}/{want} replicas ready"));
    }
    Ok(())
}

/// raw-vLLM Deployment: ready when it has rolled out ([`rollout`]) to a non-zero spec.replicas;
/// stopped (paused) when scaled to 0.
pub fn deployment(dep: &Value) -> ModelState {
    let desired = spec_replicas(dep);
    let ready_replicas = dep
        .pointer("/status/readyReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let stopped = desired == 0;
    let rolled_out = if stopped { Ok(()) } else { rollout(dep) };
    ModelState {
        ready: !stopped && rolled_out.is_ok(),
        stopped,
        desired: Some(desired),
        ready_replicas: Some(ready_replicas),
        reason: rolled_out.err(),
    }
}

/// Whether the stop annotation is set on a KServe object.
pub fn has_stop_annotation(obj: &Value) -> bool {
    stop_annotation(obj)
}

fn not_true_conditions(obj: &Value) -> Option<String> {
    let cs = obj.pointer("/status/conditions")?.as_array()?;
    let msgs: Vec<String> = cs
        .iter()
        .filter(|c| s(c, "/status") != Some("True"))
        .map(|c| {
            let mut m = format!(
                "{}={}",
                s(c, "/type").unwrap_or("?"),
                s(c, "/status").unwrap_or("?")
            );
            if let Some(r) = s(c, "/reason").filter(|r| !r.is_empty()) {
                m.push_str(&format!(" {r}"));
            }
            if let Some(msg) = s(c, "/message").filter(|r| !r.is_empty()) {
                m.push_str(&format!(": {msg}"));
            }
            m
        })
        .collect();
    if msgs.is_empty() {
        Some("no conditions reported yet".into())
    } else {
        Some(msgs.join("; "))
    }
}

/// Why a pod is not ready: unschedulable (e.g. Insufficient nvidia.com/gpu), image pull back-off,
/// crash loop, failing probe. None when it is Running and Ready.
pub fn pod_problem(pod: &Value) -> Option<String> {
    let name = s(pod, "/metadata/name").unwrap_or("?");
    let phase = s(pod, "/status/phase").unwrap_or("Pending");
    if let Some(since) = s(pod, "/metadata/deletionTimestamp") {
        return Some(terminating_pod(pod, since));
    }
    if let Some(("False", reason, msg)) = condition(pod, "PodScheduled") {
        return Some(format!("pod {name} Pending: {reason}: {msg}"));
    }
    let statuses = pod
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            pod.pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    for c in statuses {
        let cname = s(c, "/name").unwrap_or("?");
        if let Some(reason) = s(c, "/state/waiting/reason") {
            let msg = s(c, "/state/waiting/message").unwrap_or("");
            if reason != "ContainerCreating" && reason != "PodInitializing" {
                return Some(format!(
                    "pod {name} container {cname}: {reason}{}",
                    if msg.is_empty() {
                        String::new()
                    } else {
                        format!(": {msg}")
                    }
                ));
            }
        }
        if s(c, "/state/running/startedAt").is_some() && c.get("ready") == Some(&Value::Bool(false))
        {
            let restarts = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            return Some(format!(
                "pod {name} container {cname} running but not ready (readiness/startup probe failing{})",
                if restarts > 0 { format!(", {restarts} restarts") } else { String::new() }
            ));
        }
    }
    if phase == "Pending" {
        return Some(format!("pod {name} Pending"));
    }
    if phase == "Failed" {
        return Some(format!(
            "pod {name} Failed: {}",
            s(pod, "/status/message").unwrap_or("")
        ));
    }
    if let Some(("False", reason, msg)) = condition(pod, "Ready") {
        return Some(
            format!("pod {name} not Ready: {reason} {msg}")
                .trim_end()
                .to_string(),
        );
    }
    None
}

/// `pod NAME Terminating since T (on node N; finalizers: …)`: a pod being deleted, which still
/// holds its GPUs and volumes until its kubelet (or a finalizer's controller) lets it go.
pub fn terminating_pod(pod: &Value, since: &str) -> String {
    let name = s(pod, "/metadata/name").unwrap_or("?");
    let mut extra = Vec::new();
    if let Some(node) = s(pod, "/spec/nodeName").filter(|n| !n.is_empty()) {
        extra.push(format!("on node {node}"));
    }
    let finalizers: Vec<&str> = pod
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !finalizers.is_empty() {
        extra.push(format!("finalizers: {}", finalizers.join(", ")));
    }
    let mut line = format!("pod {name} Terminating since {since}");
    if !extra.is_empty() {
        line.push_str(&format!(" ({})", extra.join("; ")));
    }
    line
}

/// What a pod that does not run yet is waiting for, in words: the scheduler (and why it cannot
/// place the pod: an unbound PVC, no GPU), then on its node the volume and the image (a pull
/// error by name), with the latest of `events` (the pod's, as the API lists them) from the kubelet
/// or the volume controllers: pulling the image, attaching or mounting the volume. The scheduler's
/// own events are left out: its condition on the pod says the same.
pub fn pod_waiting_for(pod: &Value, events: &[Value]) -> String {
    let node = s(pod, "/spec/nodeName").filter(|n| !n.is_empty());
    let mut what = match (condition(pod, "PodScheduled"), node) {
        (Some(("False", reason, msg)), _) => format!("not scheduled: {}", words(reason, msg)),
        (_, None) => "waiting for the scheduler to place it".to_string(),
        (_, Some(node)) => match container_waiting(pod) {
            Some((cname, reason, msg)) => {
                format!("on node {node}: container {cname}: {}", words(reason, msg))
            }
            None => {
                format!("on node {node}: attaching and mounting its volumes, pulling its image")
            }
        },
    };
    if let Some(e) = latest_event(events) {
        let (reason, msg) = (
            s(e, "/reason").unwrap_or(""),
            s(e, "/message").unwrap_or(""),
        );
        what.push_str(&format!(" (last event: {})", words(reason, msg)));
    }
    what
}

/// `reason: message`, either part left out when empty.
fn words(reason: &str, msg: &str) -> String {
    match (reason.is_empty(), msg.trim().is_empty()) {
        (_, true) => reason.to_string(),
        (true, false) => msg.trim().to_string(),
        (false, false) => format!("{reason}: {}", msg.trim()),
    }
}

/// The first container waiting for something other than being created: (name, reason, message).
fn container_waiting(pod: &Value) -> Option<(&str, &str, &str)> {
    ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .find_map(|c| {
            let reason = s(c, "/state/waiting/reason")?;
            (reason != "ContainerCreating" && reason != "PodInitializing").then(|| {
                (
                    s(c, "/name").unwrap_or("?"),
                    reason,
                    s(c, "/state/waiting/message").unwrap_or(""),
                )
            })
        })
}

/// The most recent event that is not the scheduler's (its word is the PodScheduled condition).
fn latest_event(events: &[Value]) -> Option<&Value> {
    let when = |e: &Value| {
        [
            "/series/lastObservedTime",
            "/lastTimestamp",
            "/eventTime",
            "/metadata/creationTimestamp",
        ]
        .iter()
        .find_map(|p| time(e, p))
    };
    events
        .iter()
        .filter(|e| {
            !matches!(
                s(e, "/reason"),
                Some("Scheduled" | "FailedScheduling") | None
            )
        })
        .max_by_key(|e| when(e))
}

/// Why a PVC is not usable yet.
pub fn pvc_problem(pvc: &Value) -> Option<String> {
    let name = s(pvc, "/metadata/name").unwrap_or("?");
    match s(pvc, "/status/phase") {
        Some("Bound") => None,
        Some(p) => Some(format!(
            "PVC {name} {p} (no volume bound yet: check its StorageClass and provisioner)"
        )),
        None => Some(format!("PVC {name} Pending")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    const DONE_APP: &str = "
metadata: {name: kserve}
status:
  sync: {status: Synced, revision: abc123}
  health: {status: Healthy}
  reconciledAt: '2026-11-22T10:00:05Z'
  operationState: {phase: Succeeded, startedAt: '2026-11-22T10:00:00Z', finishedAt: '2026-11-22T10:00:02Z'}
";

    #[test]
    fn application_done_needs_everything() {
        assert_eq!(application(&yaml(DONE_APP), None), Progress::Done);
        assert_eq!(application(&yaml(DONE_APP), Some("abc123")), Progress::Done);
        assert!(
            matches!(application(&yaml(DONE_APP), Some("def456")), Progress::Pending(r) if r.contains("not the pushed commit def456"))
        );
        let stale = DONE_APP.replace("10:00:05Z", "10:00:01Z");
        assert!(
            matches!(application(&yaml(&stale), None), Progress::Pending(r) if r.contains("reconcile"))
        );
        // Argo CD's refresh right after the sync lands in the same (whole) second.
        let same_second = DONE_APP.replace("10:00:05Z", "10:00:02Z");
        assert_eq!(application(&yaml(&same_second), None), Progress::Done);
        let pending_op = format!("{DONE_APP}operation: {{sync: {{revision: main}}}}\n");
        assert!(
            matches!(application(&yaml(&pending_op), None), Progress::Pending(r) if r.contains("operation pending"))
        );
        let out_of_sync = DONE_APP.replace("status: Synced", "status: OutOfSync");
        assert!(
            matches!(application(&yaml(&out_of_sync), None), Progress::Pending(r) if r.contains("OutOfSync"))
        );
        let progressing = DONE_APP.replace(
            "status: Healthy",
            "status: Progressing, message: rolling out",
        );
        assert!(
            matches!(application(&yaml(&progressing), None), Progress::Pending(r) if r.contains("Progressing: rolling out"))
        );
        let running = DONE_APP.replace("phase: Succeeded", "phase: Running");
        assert!(matches!(
            application(&yaml(&running), None),
            Progress::Pending(_)
        ));
        let never =
            "metadata: {name: x}\nstatus: {sync: {status: OutOfSync}, health: {status: Missing}}\n";
        assert!(
            matches!(application(&yaml(never), None), Progress::Pending(r) if r.contains("never synced"))
        );
    }

    #[test]
    fn degraded_and_failed_sync_fail_fast_with_resources() {
        let degraded = "
status:
  sync: {status: Synced}
  health: {status: Degraded, message: Deployment has no ready replicas}
  resources:
    - {kind: Deployment, namespace: serving, name: qwen-gpu, health: {status: Degraded, message: 'Deployment exceeded its progress deadline'}}
    - {kind: Service, namespace: serving, name: qwen-gpu, health: {status: Healthy}}
";
        match application(&yaml(degraded), None) {
            Progress::Failed(r) => {
                assert!(
                    r.contains("Degraded: Deployment has no ready replicas"),
                    "{r}"
                );
                assert!(
                    r.contains("Deployment serving/qwen-gpu: Deployment exceeded"),
                    "{r}"
                );
                assert!(!r.contains("Service"), "{r}");
            }
            other => panic!("{other:?}"),
        }
        let failed = "
status:
  sync: {status: OutOfSync}
  health: {status: Missing}
  operationState:
    phase: Failed
    message: one or more objects failed to apply
    syncResult:
      resources:
        - {kind: InferenceService, namespace: kserve, name: qwen-cpu, status: SyncFailed, message: 'admission webhook denied the request'}
";
        match application(&yaml(failed), None) {
            Progress::Failed(r) => {
                assert!(
                    r.contains("sync failed: one or more objects failed to apply"),
                    "{r}"
                );
                assert!(
                    r.contains("InferenceService kserve/qwen-cpu: admission webhook denied"),
                    "{r}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kserve_ready_and_stopped() {
        let ready = yaml("metadata: {name: q}\nstatus: {conditions: [{type: Ready, status: 'True'}, {type: PredictorReady, status: 'True'}]}");
        assert!(inference_service(&ready).ready);
        let stopped = yaml("metadata: {name: q, annotations: {serving.kserve.io/stop: 'true'}}\nstatus: {conditions: [{type: Ready, status: 'False', reason: Stopped}, {type: Stopped, status: 'True'}]}");
        let st = inference_service(&stopped);
        assert!(st.stopped && !st.ready && st.reason.is_none());
        assert!(has_stop_annotation(&stopped));
        let failing = yaml("status: {conditions: [{type: Ready, status: 'False', reason: ReconcileFailed, message: 'must be less than or equal to cpu limit of 1'}]}");
        assert!(inference_service(&failing)
            .reason
            .unwrap()
            .contains("cpu limit of 1"));
        let llm_stopped = yaml("status: {conditions: [{type: Ready, status: 'False'}, {type: WorkloadsReady, status: 'False', reason: Stopped}]}");
        assert!(llm_inference_service(&llm_stopped).stopped);
        let llm_ready = yaml("status: {conditions: [{type: Ready, status: 'True'}]}");
        assert!(llm_inference_service(&llm_ready).ready);
    }

    #[test]
    fn deployment_replicas() {
        let d = yaml(
            "spec: {replicas: 2}\nstatus: {replicas: 2, updatedReplicas: 2, readyReplicas: 1}",
        );
        let st = deployment(&d);
        assert!(!st.ready && !st.stopped);
        assert_eq!(st.reason.as_deref(), Some("1/2 replicas ready"));
        assert!(deployment(&yaml("spec: {replicas: 0}\nstatus: {}")).stopped);
        let done = "metadata: {generation: 2}\nspec: {replicas: 1}\nstatus: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: 1}";
        assert!(deployment(&yaml(done)).ready);
    }

    #[test]
    fn a_half_rolled_out_deployment_is_not_ready() {
        // The old pod still serves (readyReplicas 1 of 1) but the new template's pod is not ready.
        let surge = yaml("metadata: {generation: 2}\nspec: {replicas: 1}\nstatus: {observedGeneration: 2, replicas: 2, updatedReplicas: 1, readyReplicas: 1}");
        let st = deployment(&surge);
        assert!(!st.ready);
        assert_eq!(
            st.reason.as_deref(),
            Some("1 old replica(s) still running (rollout in progress)")
        );
        // A new generation the controller has not observed yet.
        let unseen = yaml("metadata: {generation: 3}\nspec: {replicas: 1}\nstatus: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: 1}");
        assert!(deployment(&unseen).reason.unwrap().contains("generation 3"));
        // Nothing updated yet.
        let none = yaml("spec: {replicas: 2}\nstatus: {replicas: 2, readyReplicas: 2}");
        assert_eq!(
            deployment(&none).reason.as_deref(),
            Some("0/2 replicas updated, 2 ready")
        );
    }

    #[test]
    fn pod_problems_name_the_cause() {
        let gpu = yaml("metadata: {name: p}\nstatus: {phase: Pending, conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable, message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.'}]}");
        assert!(pod_problem(&gpu)
            .unwrap()
            .contains("Insufficient nvidia.com/gpu"));
        let pull = yaml("metadata: {name: p}\nstatus: {phase: Pending, containerStatuses: [{name: vllm, ready: false, state: {waiting: {reason: ImagePullBackOff, message: 'Back-off pulling image'}}}]}");
        assert_eq!(
            pod_problem(&pull).unwrap(),
            "pod p container vllm: ImagePullBackOff: Back-off pulling image"
        );
        let probe = yaml("metadata: {name: p}\nstatus: {phase: Running, containerStatuses: [{name: vllm, ready: false, restartCount: 3, state: {running: {startedAt: '2026-11-22T10:00:00Z'}}}]}");
        assert!(pod_problem(&probe)
            .unwrap()
            .contains("probe failing, 3 restarts"));
        let ok = yaml("metadata: {name: p}\nstatus: {phase: Running, conditions: [{type: Ready, status: 'True'}], containerStatuses: [{name: vllm, ready: true, state: {running: {startedAt: '2026-11-22T10:00:00Z'}}}]}");
        assert_eq!(pod_problem(&ok), None);
        assert!(
            pvc_problem(&yaml("metadata: {name: w}\nstatus: {phase: Pending}"))
                .unwrap()
                .contains("StorageClass")
        );
    }

    #[test]
    fn a_pod_that_does_not_run_yet_says_what_it_waits_for() {
        let created = yaml("metadata: {name: p}\nstatus: {phase: Pending}");
        assert_eq!(
            pod_waiting_for(&created, &[]),
            "waiting for the scheduler to place it"
        );
        let unbound = yaml("metadata: {name: p}\nstatus: {phase: Pending, conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable, message: '0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.'}]}");
        // The scheduler's own event repeats its condition: left out.
        let scheduler = yaml("reason: FailedScheduling\nmessage: '0/1 nodes are available'\nlastTimestamp: '2026-11-22T10:00:09Z'");
        assert_eq!(
            pod_waiting_for(&unbound, &[scheduler]),
            "not scheduled: Unschedulable: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        );
        let on_node = "metadata: {name: p}\nspec: {nodeName: n1}\nstatus: {phase: Pending, conditions: [{type: PodScheduled, status: 'True'}], containerStatuses: [{name: stage, ready: false, state: {waiting: {reason: WAITING}}}]}";
        let creating = yaml(&on_node.replace("WAITING", "ContainerCreating"));
        let attach = yaml("reason: FailedAttachVolume\nmessage: 'AttachVolume.Attach failed for volume pv-1'\nlastTimestamp: '2026-11-22T10:00:05Z'");
        let pulling = yaml("reason: Pulling\nmessage: 'Pulling image busybox'\nlastTimestamp: '2026-11-22T10:00:07Z'");
        assert_eq!(
            pod_waiting_for(&creating, &[]),
            "on node n1: attaching and mounting its volumes, pulling its image"
        );
        assert_eq!(
            pod_waiting_for(&creating, &[pulling.clone(), attach.clone()]),
            "on node n1: attaching and mounting its volumes, pulling its image (last event: Pulling: Pulling image busybox)",
            "the latest event"
        );
        let backoff = yaml(&on_node.replace("WAITING", "ImagePullBackOff"));
        assert_eq!(
            pod_waiting_for(&backoff, &[attach]),
            "on node n1: container stage: ImagePullBackOff (last event: FailedAttachVolume: AttachVolume.Attach failed for volume pv-1)"
        );
    }
}
