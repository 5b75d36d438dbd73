//! Gateway API (scripted): a Gateway gets `Accepted`/`Programmed`, an address, and a
//! LoadBalancer Service (labelled with the gateway name) with an ingress IP; the Service
//! disappears `lb_service_delete_delay` after the Gateway. HTTPRoutes get accepted parents.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::super::resources::well_known;
use super::super::store::{DeleteOpts, Key};
use super::super::strategy;
use super::super::util;
use super::{conditions, set_condition, Ctl};

const MANAGER: &str = "gateway-controller";
pub const GATEWAY_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

fn lb_name(gw: &Value) -> String {
    let name = util::str_at(gw, "/metadata/name");
    match util::str_at(gw, "/spec/gatewayClassName") {
        "" => format!("{name}-lb"),
        class => format!("{name}-{class}"),
    }
}

pub fn reconcile_gateway(ctl: &Arc<Ctl>, key: &Key, gw: &Value) -> Option<Duration> {
    if gw.pointer("/metadata/deletionTimestamp").is_some() {
        return None;
    }
    let svc_rt = well_known::services();
    let svc_key = Key::new(svc_rt, &key.namespace, &lb_name(gw));
    let listeners = gw
        .pointer("/spec/listeners")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let svc = match ctl.state.store.get(&svc_key) {
        Some(s) => s,
        None => {
            let ports: Vec<Value> = listeners
                .iter()
                .map(|l| {
                    json!({"name": util::str_at(l, "/name"), "port": l.get("port").cloned().unwrap_or(json!(80)),
                           "protocol": "TCP"})
                })
                .collect();
            let mut svc = json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": svc_key.name, "namespace": key.namespace,
                             "labels": {GATEWAY_LABEL: key.name}},
                "spec": {"type": "LoadBalancer", "ports": ports,
                         "selector": {GATEWAY_LABEL: key.name}},
            });
            let state = ctl.state.clone();
            let _ = strategy::prepare_create(svc_rt, &mut svc, || {
                let n = state.ip_counter.fetch_add(1, Ordering::Relaxed);
                format!("10.96.{}.{}", (n / 250) % 250, n % 250 + 1)
            });
            ctl.state.store.create(svc_rt, svc, false).ok()?
        }
    };
    let ip = match svc
        .pointer("/status/loadBalancer/ingress/0/ip")
        .and_then(Value::as_str)
    {
        Some(ip) => ip.to_string(),
        None => {
            let n = ctl.state.ip_counter.fetch_add(1, Ordering::Relaxed);
            let ip = format!("10.0.0.{}", n % 250 + 1);
            let ip_copy = ip.clone();
            ctl.write(&svc_key, "cloud-controller-manager", "status", |s| {
                if let Some(m) = s.as_object_mut() {
                    m.insert(
                        "status".into(),
                        json!({"loadBalancer": {"ingress": [{"ip": ip_copy}]}}),
                    );
                }
            });
            ip
        }
    };
    let generation = gw
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let mut conds = conditions(gw);
    set_condition(&mut conds, "Accepted", "True", "Accepted", "");
    set_condition(&mut conds, "Programmed", "True", "Programmed", "");
    for c in conds.iter_mut().filter_map(Value::as_object_mut) {
        c.insert("observedGeneration".into(), generation.clone());
    }
    let listener_status: Vec<Value> = listeners
        .iter()
        .map(|l| {
            json!({
                "name": util::str_at(l, "/name"),
                "attachedRoutes": 0,
                "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                "conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                     "observedGeneration": generation, "lastTransitionTime": util::now()},
                    {"type": "Programmed", "status": "True", "reason": "Programmed", "message": "",
                     "observedGeneration": generation, "lastTransitionTime": util::now()},
                ]
            })
        })
        .collect();
    ctl.write(key, MANAGER, "status", |g| {
        let keep_listeners = g.pointer("/status/listeners").cloned();
        let listeners = match keep_listeners {
            Some(old) if old.as_array().map(Vec::len) == Some(listener_status.len()) => old,
            _ => json!(listener_status),
        };
        if let Some(m) = g.as_object_mut() {
            m.insert(
                "status".into(),
                json!({
                    "addresses": [{"type": "IPAddress", "value": ip}],
                    "conditions": conds,
                    "listeners": listeners,
                }),
            );
        }
    });
    None
}

/// The Gateway's LoadBalancer Services go after the configured delay.
pub fn on_gateway_deleted(ctl: &Arc<Ctl>, gw: &Value) {
    let ns = util::str_at(gw, "/metadata/namespace").to_string();
    let name = util::str_at(gw, "/metadata/name").to_string();
    let delay = ctl.state.opts.lb_service_delete_delay;
    let ctl = ctl.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let keys = ctl.keys_where("", "services", Some(&ns), |s| {
            s.pointer("/metadata/labels")
                .and_then(|l| l.get(GATEWAY_LABEL))
                .and_then(Value::as_str)
                == Some(name.as_str())
        });
        for k in keys {
            let _ = ctl
                .state
                .store
                .delete(well_known::services(), &k, &DeleteOpts::default());
        }
    });
}

pub fn reconcile_route(ctl: &Arc<Ctl>, key: &Key, route: &Value) -> Option<Duration> {
    if route.pointer("/metadata/deletionTimestamp").is_some() {
        return None;
    }
    let generation = route
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let parents: Vec<Value> = route
        .pointer("/spec/parentRefs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            json!({
                "parentRef": p,
                "controllerName": "test.local/gateway-controller",
                "conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                     "observedGeneration": generation, "lastTransitionTime": util::now()},
                    {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "",
                     "observedGeneration": generation, "lastTransitionTime": util::now()},
                ]
            })
        })
        .collect();
    let current = route.pointer("/status/parents").cloned();
    let same = current.as_ref().and_then(Value::as_array).is_some_and(|c| {
        c.len() == parents.len()
            && c.iter()
                .zip(&parents)
                .all(|(a, b)| a.get("parentRef") == b.get("parentRef"))
    });
    if same {
        return None;
    }
    ctl.write(key, MANAGER, "status", |r| {
        if let Some(m) = r.as_object_mut() {
            m.insert("status".into(), json!({"parents": parents}));
        }
    });
    None
}
