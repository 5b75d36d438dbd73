//! Per-kind create/update rules (what the real registry strategies and admission plugins do):
//! defaults, status reset, finalizers added by the system, immutable fields, validation.

use serde_json::{json, Value};

use super::errors::{ApiError, ApiResult};
use super::resources::ResourceType;
use super::selectors::LabelSelector;
use super::util;

/// The PVC protection finalizer the real admission plugin adds.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";

fn is(rt: &ResourceType, group: &str, plural: &str) -> bool {
    rt.group == group && rt.plural == plural
}

/// Defaults and resets for a new object.
pub fn prepare_create(
    rt: &ResourceType,
    obj: &mut Value,
    cluster_ip: impl FnOnce() -> String,
) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if rt.has("status") {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }
    let name = util::str_at(obj, "/metadata/name").to_string();
    if is(rt, "", "namespaces") {
        if let Some(m) = obj.as_object_mut() {
            m.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
            m.insert("status".into(), json!({"phase": "Active"}));
        }
        if let Some(meta) = util::metadata_mut(obj) {
            let labels = util::child_obj(meta, "labels");
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    } else if is(rt, "", "pods") {
        let qos = qos_class(obj);
        if let Some(m) = obj.as_object_mut() {
            m.insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": qos}),
            );
        }
    } else if is(rt, "", "persistentvolumeclaims") {
        if let Some(meta) = util::metadata_mut(obj) {
            let fins = meta.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(a) = fins.as_array_mut() {
                if !a.iter().any(|f| f == PVC_PROTECTION) {
                    a.push(json!(PVC_PROTECTION));
                }
            }
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Pending"}));
        }
    } else if is(rt, "", "persistentvolumes") {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Available"}));
        }
    } else if is(rt, "", "services") {
        let spec = obj.as_object_mut().map(|m| util::child_obj(m, "spec"));
        if let Some(spec) = spec {
            spec.entry("type").or_insert_with(|| json!("ClusterIP"));
            let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
            if !headless {
                let ip = cluster_ip();
                spec.insert("clusterIP".into(), json!(ip));
                spec.insert("clusterIPs".into(), json!([ip]));
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    p.entry("protocol").or_insert_with(|| json!("TCP"));
                    if let Some(port) = p.get("port").cloned() {
                        p.entry("targetPort").or_insert(port);
                    }
                }
            }
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"loadBalancer": {}}));
        }
    } else if is(rt, "apps", "deployments") {
        validate_deployment(rt, obj)?;
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("strategy").or_insert_with(|| {
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
            });
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
        }
    } else if is(rt, "", "secrets") {
        fold_string_data(obj);
    }
    Ok(())
}

/// Rules for an update of the object itself (not a subresource): status and system fields
/// come from the stored object.
pub fn prepare_update(rt: &ResourceType, old: &Value, new: &mut Value) -> ApiResult<()> {
    if !new.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if rt.has("status") {
        if let Some(m) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.remove("status"),
            };
        }
    }
    if is(rt, "", "namespaces") {
        if let (Some(m), Some(spec)) = (new.as_object_mut(), old.get("spec")) {
            m.insert("spec".into(), spec.clone());
        }
    } else if is(rt, "", "services") {
        for field in ["clusterIP", "clusterIPs"] {
            if let Some(v) = old.pointer(&format!("/spec/{field}")).cloned() {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.insert(field.into(), v);
                }
            }
        }
    } else if is(rt, "apps", "deployments") {
        validate_deployment(rt, new)?;
    } else if is(rt, "", "secrets") {
        fold_string_data(new);
    } else if is(rt, "", "persistentvolumeclaims") {
        // spec is immutable once bound except resources.requests (expansion).
        if let (Some(old_spec), Some(new_spec)) = (old.get("spec"), new.get_mut("spec")) {
            if let Some(ns) = new_spec.as_object_mut() {
                for field in [
                    "volumeName",
                    "storageClassName",
                    "accessModes",
                    "volumeMode",
                ] {
                    if let Some(v) = old_spec.get(field) {
                        ns.insert(field.into(), v.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

fn validate_deployment(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    let name = util::str_at(obj, "/metadata/name");
    let Some(sel) = obj.pointer("/spec/selector") else {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.selector",
            "Required value",
        ));
    };
    let selector = LabelSelector::from_object(sel);
    let template = json!({"metadata": {"labels": obj.pointer("/spec/template/metadata/labels").cloned().unwrap_or(json!({}))}});
    if selector.is_empty() || !selector.matches(&template) {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.template.metadata.labels",
            "Invalid value: `selector` does not match template `labels`",
        ));
    }
    if obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .is_some_and(|r| r < 0)
    {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0",
        ));
    }
    Ok(())
}

fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let any_resources = containers.iter().any(|c| {
        c.pointer("/resources/requests").is_some() || c.pointer("/resources/limits").is_some()
    });
    if !any_resources {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let limits = c.pointer("/resources/limits");
        let requests = c.pointer("/resources/requests");
        ["cpu", "memory"].iter().all(|r| {
            let l = limits.and_then(|l| l.get(*r));
            l.is_some()
                && requests
                    .and_then(|q| q.get(*r))
                    .is_none_or(|q| Some(q) == l)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// `stringData` is folded into `data` (base64), as the API server does.
fn fold_string_data(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    let Some(Value::Object(sd)) = m.remove("stringData") else {
        return;
    };
    let data = util::child_obj(m, "data");
    for (k, v) in sd {
        let s = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        data.insert(k, json!(base64(s.as_bytes())));
    }
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}
