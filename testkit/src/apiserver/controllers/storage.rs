//! Storage (scripted): a PVC binds to a generated PV (reclaim policy from its StorageClass),
//! its directory is made under volumes_dir; the protection finalizer goes once no pod uses
//! the claim; a released PV is deleted (Delete) or marked Released (Retain).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::super::resources::{self, well_known};
use super::super::store::{DeleteOpts, Event, EventType, Key};
use super::super::strategy::PVC_PROTECTION;
use super::super::util;
use super::Ctl;

const MANAGER: &str = "kube-controller-manager";

/// Claims a pod mounts.
pub fn claims_of(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    v.pointer("/persistentVolumeClaim/claimName")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pod_active(pod: &Value) -> bool {
    !matches!(util::str_at(pod, "/status/phase"), "Succeeded" | "Failed")
}

fn storage_class(ctl: &Ctl, pvc: &Value) -> Option<Value> {
    let rt = resources::find("storage.k8s.io", "v1", "storageclasses")?;
    let named = util::str_at(pvc, "/spec/storageClassName");
    let (classes, _) = ctl.state.store.list(rt, None);
    if named.is_empty() {
        classes.into_iter().find(|c| {
            c.pointer("/metadata/annotations")
                .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
                .and_then(Value::as_str)
                == Some("true")
        })
    } else {
        classes
            .into_iter()
            .find(|c| util::str_at(c, "/metadata/name") == named)
    }
}

pub fn reconcile_pvc(ctl: &Arc<Ctl>, key: &Key, pvc: &Value) -> Option<Duration> {
    let users = ctl.keys_where("", "pods", Some(&key.namespace), |p| {
        pod_active(p) && claims_of(p).contains(&key.name)
    });
    if pvc.pointer("/metadata/deletionTimestamp").is_some() {
        let configured = ctl
            .state
            .faults()
            .finalizers
            .contains_key("PersistentVolumeClaim");
        if users.is_empty() && !configured {
            ctl.write(key, MANAGER, "", |o| {
                if let Some(f) = o
                    .pointer_mut("/metadata/finalizers")
                    .and_then(Value::as_array_mut)
                {
                    f.retain(|x| x != PVC_PROTECTION);
                }
            });
        }
        return None;
    }
    if util::str_at(pvc, "/status/phase") == "Bound" {
        return None;
    }
    let sc = storage_class(ctl, pvc)?;
    if util::str_at(&sc, "/volumeBindingMode") == "WaitForFirstConsumer" && users.is_empty() {
        return None;
    }
    let uid = util::str_at(pvc, "/metadata/uid");
    let pv_name = format!("pvc-{uid}");
    let storage = pvc
        .pointer("/spec/resources/requests/storage")
        .cloned()
        .unwrap_or(json!("1Gi"));
    let access = pvc
        .pointer("/spec/accessModes")
        .cloned()
        .unwrap_or(json!(["ReadWriteOnce"]));
    let reclaim = match util::str_at(&sc, "/reclaimPolicy") {
        "" => "Delete".to_string(),
        r => r.to_string(),
    };
    let dir = ctl.state.volumes_dir.join(&key.namespace).join(&key.name);
    let _ = std::fs::create_dir_all(&dir);
    let pv_rt = well_known::pvs();
    let pv_key = Key::new(pv_rt, "", &pv_name);
    if ctl.state.store.get(&pv_key).is_none() {
        let pv = json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": util::str_at(&sc, "/provisioner")}},
            "spec": {
                "capacity": {"storage": storage},
                "accessModes": access,
                "persistentVolumeReclaimPolicy": reclaim,
                "storageClassName": util::str_at(&sc, "/metadata/name"),
                "volumeMode": "Filesystem",
                "hostPath": {"path": dir.to_string_lossy()},
                "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                             "namespace": key.namespace, "name": key.name, "uid": uid},
            },
            "status": {"phase": "Bound"},
        });
        let _ = ctl.state.store.put(pv_rt, pv);
    }
    let sc_name = util::str_at(&sc, "/metadata/name").to_string();
    ctl.write(key, MANAGER, "", |o| {
        if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("volumeName".into(), json!(pv_name));
            spec.entry("storageClassName").or_insert(json!(sc_name));
        }
        if let Some(meta) = util::metadata_mut(o) {
            let ann = util::child_obj(meta, "annotations");
            ann.insert("pv.kubernetes.io/bind-completed".into(), json!("yes"));
            ann.insert("pv.kubernetes.io/bound-by-controller".into(), json!("yes"));
        }
        if let Some(m) = o.as_object_mut() {
            m.insert(
                "status".into(),
                json!({"phase": "Bound", "accessModes": access, "capacity": {"storage": storage}}),
            );
        }
    });
    None
}

pub fn reconcile_pv(ctl: &Arc<Ctl>, key: &Key, pv: &Value) -> Option<Duration> {
    if pv.pointer("/metadata/deletionTimestamp").is_some() {
        return None;
    }
    let claim_ns = util::str_at(pv, "/spec/claimRef/namespace");
    let claim_name = util::str_at(pv, "/spec/claimRef/name");
    if claim_name.is_empty() {
        return None;
    }
    let claim_uid = util::str_at(pv, "/spec/claimRef/uid");
    let claim = ctl
        .state
        .store
        .get(&Key::new(well_known::pvcs(), claim_ns, claim_name));
    let bound = claim
        .is_some_and(|c| claim_uid.is_empty() || util::str_at(&c, "/metadata/uid") == claim_uid);
    if bound {
        return None;
    }
    match util::str_at(pv, "/spec/persistentVolumeReclaimPolicy") {
        "Retain" => {
            ctl.write(key, MANAGER, "status", |o| {
                if let Some(m) = o.as_object_mut() {
                    m.insert("status".into(), json!({"phase": "Released"}));
                }
            });
        }
        _ => {
            let dir = ctl.state.volumes_dir.join(claim_ns).join(claim_name);
            let _ = std::fs::remove_dir_all(dir);
            let _ = ctl
                .state
                .store
                .delete(well_known::pvs(), key, &DeleteOpts::default());
        }
    }
    None
}

/// Pods waiting on a claim re-check when it changes; a deleted claim releases its PV.
pub fn on_pvc_event(ctl: &Arc<Ctl>, ev: &Event) {
    let ns = ev.key.namespace.clone();
    for k in ctl.keys_where("", "pods", Some(&ns), |p| {
        util::str_at(p, "/status/phase") == "Pending" && claims_of(p).contains(&ev.key.name)
    }) {
        ctl.enqueue(k, ctl.delay());
    }
    if ev.kind == EventType::Deleted {
        let pv = util::str_at(&ev.object, "/spec/volumeName");
        if !pv.is_empty() {
            ctl.enqueue(Key::new(well_known::pvs(), "", pv), ctl.delay());
        }
    }
}
