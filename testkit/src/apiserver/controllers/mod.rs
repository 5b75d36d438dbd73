//! Scripted controllers: tokio tasks reacting to store changes with a delay, each writing
//! the status (and children) the real controller would.
//!
//! The dispatcher listens to every change and enqueues keys; a key is reconciled once per
//! pending period (de-duplicated), and a reconcile may ask to run again later.

mod argo;
mod gateways;
mod kserve;
mod storage;
mod workloads;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::apply;
use super::faults::FinalizerBehavior;
use super::store::{Event, EventType, Key};
use super::util;
use super::State;
use crate::lock;

/// Controller state kept between reconciles.
pub struct Ctl {
    pub state: Arc<State>,
    pending: Mutex<HashSet<Key>>,
    /// When each deleting object was first seen deleting (by uid).
    deleting_since: Mutex<HashMap<String, Instant>>,
    pub argo: Mutex<HashMap<String, argo::Track>>,
}

impl Ctl {
    /// Reconciles `key` after `delay` (unless a reconcile is already pending).
    pub fn enqueue(self: &Arc<Self>, key: Key, delay: Duration) {
        if !lock(&self.pending).insert(key.clone()) {
            return;
        }
        let ctl = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            lock(&ctl.pending).remove(&key);
            let again = ctl.reconcile(&key);
            ctl.state
                .reconciled
                .send_modify(|m| *m.entry(key.clone()).or_insert(0) += 1);
            if let Some(again) = again {
                ctl.enqueue(key, again);
            }
        });
    }

    fn delay(&self) -> Duration {
        self.state.opts.controller_delay
    }

    /// Writes an object through `f` under the store lock, recording `manager` in
    /// managedFields. Returns the new object (None when gone).
    pub fn write(
        &self,
        key: &Key,
        manager: &str,
        subresource: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let rt = key.rt()?;
        let result = self.state.store.mutate(key, |obj| {
            let old = obj.clone();
            f(obj);
            if *obj == old {
                return false;
            }
            apply::record_update(rt, Some(&old), obj, manager, subresource);
            true
        })?;
        result.ok()
    }

    fn reconcile(self: &Arc<Self>, key: &Key) -> Option<Duration> {
        let obj = self.state.store.get(key)?;
        if key.group == "argoproj.io" && !self.state.opts.argo_controller {
            return None;
        }
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            if key.group.is_empty() && key.plural == "namespaces" {
                self.state.store.finalize_namespace(&key.name);
                return None;
            }
            if let Some(again) = self.finalize(key, &obj) {
                return Some(again);
            }
        }
        match (key.group, key.plural) {
            ("argoproj.io", "applications") => argo::reconcile(self, key, &obj),
            ("serving.kserve.io", "inferenceservices") => kserve::reconcile_isvc(self, key, &obj),
            ("serving.kserve.io", "llminferenceservices") => {
                kserve::reconcile_llmisvc(self, key, &obj)
            }
            ("apps", "deployments") => workloads::reconcile_deployment(self, key, &obj),
            ("", "pods") => workloads::reconcile_pod(self, key, &obj),
            ("", "persistentvolumeclaims") => storage::reconcile_pvc(self, key, &obj),
            ("", "persistentvolumes") => storage::reconcile_pv(self, key, &obj),
            ("gateway.networking.k8s.io", "gateways") => {
                gateways::reconcile_gateway(self, key, &obj)
            }
            ("gateway.networking.k8s.io", "httproutes") => {
                gateways::reconcile_route(self, key, &obj)
            }
            _ => None,
        }
    }

    /// Argo CD's resources finalizer deletes what the app manages before it goes: here a model
    /// app's workloads, Services, route grants and (standing in for the routing app's) routes
    /// (labelled `platform.ai/model=<app>`: the app is named after its model). PVCs are left to teardown's own PVC step, which the cluster tests check in order.
    fn delete_app_resources(&self, app: &str) {
        for (g, v, p) in [
            ("apps", "v1", "deployments"),
            ("serving.kserve.io", "v1beta1", "inferenceservices"),
            ("serving.kserve.io", "v1alpha1", "llminferenceservices"),
            ("", "v1", "services"),
            ("gateway.networking.k8s.io", "v1", "httproutes"),
            ("gateway.networking.k8s.io", "v1beta1", "referencegrants"),
        ] {
            let Some(rt) = super::resources::find(g, v, p) else {
                continue;
            };
            let (items, _) = self.state.store.list(rt, None);
            for o in items.iter().filter(|o| {
                o.pointer("/metadata/labels/platform.ai~1model")
                    .and_then(Value::as_str)
                    == Some(app)
            }) {
                let k = Key::new(
                    rt,
                    util::str_at(o, "/metadata/namespace"),
                    util::str_at(o, "/metadata/name"),
                );
                let opts = super::store::DeleteOpts {
                    propagation: super::store::Propagation::Background,
                    precondition_uid: None,
                    precondition_rv: None,
                    dry_run: false,
                };
                let _ = self.state.store.delete(rt, &k, &opts);
            }
        }
    }

    /// Finalizers of a deleting object: removed after the configured delay, never when the
    /// controller is "gone"; the Argo CD resources finalizer goes after `argo_delay` by
    /// default. Returns when to look again.
    fn finalize(&self, key: &Key, obj: &Value) -> Option<Duration> {
        let kind = util::str_at(obj, "/kind").to_string();
        let uid = util::str_at(obj, "/metadata/uid").to_string();
        let configured = self.state.faults().finalizers.get(&kind).copied();
        let (delay, which): (Duration, fn(&str) -> bool) = match configured {
            Some(FinalizerBehavior::Never) => return None,
            Some(FinalizerBehavior::RemoveAfter(d)) => (d, |_| true),
            None if kind == "Application" => (self.state.opts.argo_delay, |f: &str| {
                f.starts_with("resources-finalizer.argocd.argoproj.io")
                    || f.starts_with("post-delete-finalizer.argocd.argoproj.io")
            }),
            None => return None,
        };
        let since = *lock(&self.deleting_since)
            .entry(uid.clone())
            .or_insert_with(Instant::now);
        let elapsed = since.elapsed();
        if elapsed < delay {
            return Some(delay - elapsed);
        }
        if kind == "Application" {
            self.delete_app_resources(&key.name);
        }
        let manager = if kind == "Application" {
            "argocd-application-controller"
        } else {
            "test-finalizer-controller"
        };
        self.write(key, manager, "", |o| {
            if let Some(fins) = o
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
            {
                fins.retain(|f| !f.as_str().is_some_and(which));
            }
        });
        lock(&self.deleting_since).remove(&uid);
        None
    }

    /// Keys of objects of a resource in a namespace matching `pred`.
    pub fn keys_where(
        &self,
        group: &'static str,
        plural: &'static str,
        namespace: Option<&str>,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Key> {
        let Some(rt) = super::resources::RESOURCES
            .iter()
            .find(|r| r.group == group && r.plural == plural)
        else {
            return Vec::new();
        };
        self.state
            .store
            .list(rt, namespace)
            .0
            .iter()
            .filter(|o| pred(o))
            .map(|o| {
                Key::new(
                    rt,
                    util::str_at(o, "/metadata/namespace"),
                    util::str_at(o, "/metadata/name"),
                )
            })
            .collect()
    }
}

/// Sets a condition, keeping `lastTransitionTime` when the status did not change.
pub fn set_condition(
    conds: &mut Vec<Value>,
    ctype: &str,
    status: &str,
    reason: &str,
    message: &str,
) {
    let now = util::now();
    match conds
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
    {
        Some(c) => {
            let same = c.get("status").and_then(Value::as_str) == Some(status);
            let ltt = if same {
                c.get("lastTransitionTime").cloned().unwrap_or(json!(now))
            } else {
                json!(now)
            };
            *c = json!({"type": ctype, "status": status, "reason": reason, "message": message,
                        "lastTransitionTime": ltt});
        }
        None => conds.push(json!({"type": ctype, "status": status, "reason": reason,
                                  "message": message, "lastTransitionTime": now})),
    }
}

/// The conditions array of `obj.status` (empty when absent).
pub fn conditions(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn on_event(ctl: &Arc<Ctl>, ev: &Event) {
    let d = ctl.delay();
    let key = ev.key.clone();
    let obj = &ev.object;
    // Anything happening in a terminating namespace re-checks the namespace.
    if !key.namespace.is_empty() {
        let ns_key = Key {
            group: "",
            plural: "namespaces",
            namespace: String::new(),
            name: key.namespace.clone(),
        };
        if ctl
            .state
            .store
            .get(&ns_key)
            .is_some_and(|n| n.pointer("/metadata/deletionTimestamp").is_some())
        {
            ctl.enqueue(ns_key, d);
        }
    }
    // A change to an owned object re-checks its controller owner (pods -> Deployment,
    // Deployment -> InferenceService, ...).
    if let Some(owner) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
    {
        let kind = util::str_at(owner, "/kind");
        if let Some(rt) = super::resources::by_kind_name(kind) {
            let owner_key = Key::new(rt, &key.namespace, util::str_at(owner, "/name"));
            ctl.enqueue(owner_key, d);
        }
    }
    match (key.group, key.plural, ev.kind) {
        (_, _, EventType::Deleted) => {}
        ("argoproj.io", "applications", _) => ctl.enqueue(key.clone(), Duration::from_millis(10)),
        _ => ctl.enqueue(key.clone(), d),
    }
    match (key.group, key.plural) {
        ("", "pods") => workloads::on_pod_event(ctl, ev),
        ("", "persistentvolumeclaims") => storage::on_pvc_event(ctl, ev),
        ("gateway.networking.k8s.io", "gateways") if ev.kind == EventType::Deleted => {
            gateways::on_gateway_deleted(ctl, obj)
        }
        _ => {}
    }
}

/// Runs the controllers until the store is dropped.
pub async fn run(state: Arc<State>) {
    let mut rx = state.store.subscribe_all();
    let ctl = Arc::new(Ctl {
        state,
        pending: Mutex::new(HashSet::new()),
        deleting_since: Mutex::new(HashMap::new()),
        argo: Mutex::new(HashMap::new()),
    });
    resync(&ctl);
    loop {
        match rx.recv().await {
            Ok(ev) => on_event(&ctl, &ev),
            Err(broadcast::error::RecvError::Lagged(_)) => resync(&ctl),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Enqueues every object (start-up and after falling behind).
fn resync(ctl: &Arc<Ctl>) {
    for rt in super::resources::RESOURCES.iter() {
        for key in ctl.keys_where(rt.group, rt.plural, None, |_| true) {
            ctl.enqueue(key, ctl.delay());
        }
    }
}
