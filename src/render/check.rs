//! Checks on rendered output: every file is YAML of well-formed objects, and core Kubernetes kinds
//! survive a strict round trip through the k8s-openapi types (a field the API server would drop, or a
//! quantity that is not a string, is reported).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RenderedTree;
use crate::catalog::{is_dns1123_label, is_dns1123_subdomain};
use crate::diag::Diagnostic;

/// One object of a rendered file.
#[derive(Debug, Clone)]
pub struct RenderedObject {
    pub path: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub value: Value,
}

/// Parse every file of the tree into objects; problems become error diagnostics.
pub fn objects(tree: &RenderedTree) -> (Vec<RenderedObject>, Vec<Diagnostic>) {
    let mut objs = Vec::new();
    let mut problems = Vec::new();
    for (path, text) in &tree.files {
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value = match serde_yaml::Value::deserialize(doc) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(Diagnostic::error(format!("rendered file is not valid YAML: {e}")).file(path)
                        .help("a template produced broken YAML: fix the template (templates/ overrides the embedded one)"));
                    break;
                }
            };
            if value.is_null() {
                continue; // comment-only document
            }
            let json: Value = match serde_json::to_value(&value) {
                Ok(j) => j,
                Err(e) => {
                    problems.push(
                        Diagnostic::error(format!(
                            "rendered YAML cannot be represented as JSON: {e}"
                        ))
                        .file(path),
                    );
                    continue;
                }
            };
            let s = |p: &str| json.pointer(p).and_then(Value::as_str).map(str::to_string);
            match (s("/apiVersion"), s("/kind"), s("/metadata/name")) {
                (Some(api_version), Some(kind), Some(name)) => objs.push(RenderedObject {
                    path: path.clone(),
                    api_version,
                    kind,
                    name,
                    value: json,
                }),
                _ => problems.push(
                    Diagnostic::error("rendered object lacks apiVersion, kind or metadata.name")
                        .file(path),
                ),
            }
        }
    }
    (objs, problems)
}

/// Every check on a rendered tree: each file parses into well-formed objects, and each object passes
/// [`check_objects`].
pub fn check_tree(tree: &RenderedTree) -> Vec<Diagnostic> {
    let (objs, mut problems) = objects(tree);
    problems.extend(check_objects(&objs));
    problems
}

/// Structural checks on every object: names, and a strict round trip for core kinds.
pub fn check_objects(objs: &[RenderedObject]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for o in objs {
        let at = |msg: String| {
            Diagnostic::error(msg)
                .file(&o.path)
                .field(format!("{} {}", o.kind, o.name))
        };
        if !is_dns1123_subdomain(&o.name) {
            out.push(at(format!(
                "`{}` is not a valid object name (DNS-1123)",
                o.name
            )));
        }
        if let Some(ns) = o
            .value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
        {
            if !is_dns1123_label(ns) {
                out.push(at(format!("`{ns}` is not a valid namespace name")));
            }
        }
        let result = match (o.api_version.as_str(), o.kind.as_str()) {
            ("v1", "Namespace") => strict::<Namespace>(&o.value),
            ("v1", "Service") => strict::<Service>(&o.value),
            ("v1", "PersistentVolumeClaim") => strict::<PersistentVolumeClaim>(&o.value),
            ("apps/v1", "Deployment") => strict::<Deployment>(&o.value),
            _ => Ok(()),
        };
        if let Err(msg) = result {
            out.push(
                at(msg).help("the API server would reject or silently drop this: fix the template"),
            );
        }
    }
    out
}

/// Deserialize into the typed object and back; anything lost on the way is a field the API does not know.
fn strict<T: DeserializeOwned + Serialize>(v: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(v.clone())
        .map_err(|e| format!("does not match the Kubernetes schema: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    missing_fields(v, &back, String::new(), &mut lost);
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "unknown field(s) the API server would drop: {}",
            lost.join(", ")
        ))
    }
}

fn missing_fields(orig: &Value, back: &Value, path: String, out: &mut Vec<String>) {
    match (orig, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(bv) => missing_fields(v, bv, p, out),
                    // Empty values (false, {}, []) may be omitted by the typed serializer.
                    None if is_empty(v) => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                missing_fields(x, y, format!("{path}[{i}]"), out);
            }
        }
        // A number where the API wants a string (quantities, int-or-string written as a string).
        (Value::Number(_), Value::String(_)) => {
            out.push(format!("{path} (write it as a quoted string)"))
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_and_integer_quantities_are_caught() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
            "spec": {"ports": [{"port": 80, "targetPrt": 8000}]}});
        let e = strict::<Service>(&svc).unwrap_err();
        assert!(e.contains("spec.ports[0].targetPrt"), "{e}");
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "a"},
            "spec": {"resources": {"requests": {"storage": 10}}}});
        assert!(strict::<PersistentVolumeClaim>(&pvc).is_err());
        let ok = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "a"},
            "spec": {"resources": {"requests": {"storage": "10Gi"}}}});
        strict::<PersistentVolumeClaim>(&ok).unwrap();
    }
}
