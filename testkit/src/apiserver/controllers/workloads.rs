//! Workloads (scripted): Deployments own pods directly (no ReplicaSets) and report replica
//! counts; pods are scheduled on the seeded node and run once their claims are bound, or
//! stay Pending (Unschedulable) when they ask for more `nvidia.com/gpu` than is free.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::super::resources::well_known;
use super::super::store::{DeleteOpts, Event, EventType, Key};
use super::super::strategy;
use super::super::util;
use super::storage::claims_of;
use super::{set_condition, Ctl};

const NODE: &str = "node-1";
pub const GPU: &str = "nvidia.com/gpu";

fn owner_uid(obj: &Value, kind: &str) -> Option<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("kind").and_then(Value::as_str) == Some(kind))
        .and_then(|r| r.get("uid").and_then(Value::as_str))
        .map(str::to_string)
}

fn quantity(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// GPUs a pod asks for (limits, else requests, summed over containers).
pub fn gpus_of(pod: &Value) -> i64 {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let lim = quantity(c.pointer("/resources/limits").and_then(|l| l.get(GPU)));
                    if lim > 0 {
                        lim
                    } else {
                        quantity(c.pointer("/resources/requests").and_then(|l| l.get(GPU)))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn ready(pod: &Value) -> bool {
    util::str_at(pod, "/status/phase") == "Running"
        && pod.pointer("/metadata/deletionTimestamp").is_none()
}

fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    util::sha256_hex(&template.to_string())
        .bytes()
        .take(10)
        .map(|b| ALPHABET[(b as usize) % ALPHABET.len()] as char)
        .collect()
}

pub fn reconcile_deployment(ctl: &Arc<Ctl>, key: &Key, d: &Value) -> Option<Duration> {
    if d.pointer("/metadata/deletionTimestamp").is_some() {
        return None;
    }
    let uid = util::str_at(d, "/metadata/uid").to_string();
    let want = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0) as usize;
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = template_hash(&template);
    let pods_rt = well_known::pods();
    let (all, _) = ctl.state.store.list(pods_rt, Some(&key.namespace));
    let owned: Vec<Value> = all
        .into_iter()
        .filter(|p| owner_uid(p, "Deployment").as_deref() == Some(uid.as_str()))
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .collect();
    let label_of = |p: &Value| {
        p.pointer("/metadata/labels/pod-template-hash")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (mut current, old): (Vec<Value>, Vec<Value>) =
        owned.into_iter().partition(|p| label_of(p) == hash);
    let delete = |p: &Value| {
        let k = Key::new(pods_rt, &key.namespace, util::str_at(p, "/metadata/name"));
        let _ = ctl.state.store.delete(pods_rt, &k, &DeleteOpts::default());
    };
    for p in &old {
        delete(p);
    }
    while current.len() > want {
        if let Some(p) = current.pop() {
            delete(&p);
        }
    }
    while current.len() < want {
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("pod-template-hash".into(), json!(hash));
        }
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": format!("{}-{hash}-{}", key.name, util::suffix(&key.name, 5)),
                "namespace": key.namespace,
                "labels": labels,
                "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": key.name,
                                     "uid": uid, "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": template.get("spec").cloned().unwrap_or(json!({})),
        });
        if strategy::prepare_create(pods_rt, &mut pod, String::new).is_err() {
            break;
        }
        match ctl.state.store.create(pods_rt, pod.clone(), false) {
            Ok(created) => current.push(created),
            Err(_) => break,
        }
    }
    let ready_count = current.iter().filter(|p| ready(p)).count() as i64;
    let total = current.len() as i64;
    let generation = d
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let mut conds = super::conditions(d);
    if ready_count >= want as i64 {
        set_condition(
            &mut conds,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        );
        set_condition(
            &mut conds,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!(
                "ReplicaSet \"{}-{hash}\" has successfully progressed.",
                key.name
            ),
        );
    } else {
        set_condition(
            &mut conds,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        );
        set_condition(
            &mut conds,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{}-{hash}\" is progressing.", key.name),
        );
    }
    ctl.write(key, "kube-controller-manager", "status", |o| {
        let mut st = serde_json::Map::new();
        st.insert("observedGeneration".into(), generation);
        for (field, n) in [
            ("replicas", total),
            ("updatedReplicas", total),
            ("readyReplicas", ready_count),
            ("availableReplicas", ready_count),
            ("unavailableReplicas", (want as i64 - ready_count).max(0)),
        ] {
            if n > 0 {
                st.insert(field.into(), json!(n));
            }
        }
        st.insert("conditions".into(), json!(conds));
        if let Some(m) = o.as_object_mut() {
            m.insert("status".into(), Value::Object(st));
        }
    });
    None
}

/// Leaves the pod Pending with `PodScheduled=False` and records a FailedScheduling event.
fn pending(ctl: &Ctl, key: &Key, reason: &str, message: &str) {
    let Some(pod) = ctl.state.store.get(key) else {
        return;
    };
    let cond = pod.pointer("/status/conditions/0");
    let unchanged = util::str_at(&pod, "/status/phase") == "Pending"
        && cond.is_some_and(|c| c["reason"] == reason && c["message"] == message);
    if unchanged {
        return;
    }
    ctl.write(key, "kube-scheduler", "status", |o| {
        let qos = o
            .pointer("/status/qosClass")
            .cloned()
            .unwrap_or(json!("BestEffort"));
        if let Some(m) = o.as_object_mut() {
            m.insert(
                "status".into(),
                json!({
                    "phase": "Pending",
                    "qosClass": qos,
                    "conditions": [{"type": "PodScheduled", "status": "False", "reason": reason,
                                    "message": message, "lastProbeTime": null,
                                    "lastTransitionTime": util::now()}],
                }),
            );
        }
    });
    let now = util::now();
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{}.failedscheduling", key.name), "namespace": key.namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": key.namespace,
                           "name": key.name, "uid": util::str_at(&pod, "/metadata/uid")},
        "reason": "FailedScheduling",
        "message": message,
        "type": "Warning",
        "source": {"component": "default-scheduler"},
        "reportingComponent": "default-scheduler",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let _ = ctl.state.store.put(well_known::events(), event);
}

pub fn reconcile_pod(ctl: &Arc<Ctl>, key: &Key, pod: &Value) -> Option<Duration> {
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return None;
    }
    if matches!(
        util::str_at(pod, "/status/phase"),
        "Running" | "Succeeded" | "Failed"
    ) {
        return None;
    }
    let want_gpus = gpus_of(pod);
    if want_gpus > 0 {
        let node = ctl
            .state
            .store
            .get(&Key::new(well_known::nodes(), "", NODE));
        let allocatable = node
            .as_ref()
            .map(|n| quantity(n.pointer("/status/allocatable").and_then(|a| a.get(GPU))))
            .unwrap_or(0);
        let pods_rt = well_known::pods();
        let used: i64 = ctl
            .state
            .store
            .list(pods_rt, None)
            .0
            .iter()
            .filter(|p| util::str_at(p, "/metadata/uid") != util::str_at(pod, "/metadata/uid"))
            .filter(|p| !util::str_at(p, "/spec/nodeName").is_empty())
            .filter(|p| !matches!(util::str_at(p, "/status/phase"), "Succeeded" | "Failed"))
            .map(gpus_of)
            .sum();
        if want_gpus > allocatable - used {
            pending(
                ctl,
                key,
                "Unschedulable",
                "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
            );
            return None;
        }
    }
    for claim in claims_of(pod) {
        match ctl
            .state
            .store
            .get(&Key::new(well_known::pvcs(), &key.namespace, &claim))
        {
            None => {
                pending(
                    ctl,
                    key,
                    "Unschedulable",
                    &format!("persistentvolumeclaim \"{claim}\" not found"),
                );
                return None;
            }
            Some(pvc) if util::str_at(&pvc, "/status/phase") != "Bound" => {
                pending(
                    ctl,
                    key,
                    "Unschedulable",
                    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
                );
                // A WaitForFirstConsumer claim binds now that a pod uses it.
                ctl.enqueue(
                    Key::new(well_known::pvcs(), &key.namespace, &claim),
                    ctl.delay(),
                );
                return None;
            }
            Some(_) => {}
        }
    }
    let now = util::now();
    let n = ctl
        .state
        .ip_counter
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pod_ip = format!("10.244.0.{}", n % 250 + 2);
    ctl.write(key, "kubelet", "status", |o| {
        let qos = o.pointer("/status/qosClass").cloned().unwrap_or(json!("BestEffort"));
        let containers: Vec<Value> = o
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                json!({
                    "name": util::str_at(c, "/name"),
                    "image": util::str_at(c, "/image"),
                    "imageID": format!("{}@sha256:{}", util::str_at(c, "/image"), util::sha256_hex(util::str_at(c, "/image"))),
                    "containerID": format!("containerd://{}", util::sha256_hex(&format!("{}{}", util::str_at(c, "/name"), now))),
                    "ready": true, "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                })
            })
            .collect();
        if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(NODE));
        }
        if let Some(m) = o.as_object_mut() {
            let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
            m.insert(
                "status".into(),
                json!({
                    "phase": "Running",
                    "qosClass": qos,
                    "hostIP": "192.0.2.10",
                    "podIP": pod_ip,
                    "podIPs": [{"ip": pod_ip}],
                    "startTime": now,
                    "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                                   cond("ContainersReady"), cond("PodScheduled")],
                    "containerStatuses": containers,
                }),
            );
        }
    });
    None
}

/// A pod change re-checks its Deployment; a pod going away may free GPUs or a claim.
pub fn on_pod_event(ctl: &Arc<Ctl>, ev: &Event) {
    let d = ctl.delay();
    if let Some(uid) = owner_uid(&ev.object, "Deployment") {
        for k in ctl.keys_where("apps", "deployments", Some(&ev.key.namespace), |dep| {
            util::str_at(dep, "/metadata/uid") == uid
        }) {
            ctl.enqueue(k, d);
        }
    }
    if ev.kind == EventType::Deleted {
        for k in ctl.keys_where("", "pods", None, |p| {
            util::str_at(p, "/status/phase") == "Pending"
        }) {
            ctl.enqueue(k, d);
        }
        for claim in claims_of(&ev.object) {
            ctl.enqueue(Key::new(well_known::pvcs(), &ev.key.namespace, &claim), d);
        }
    }
}
