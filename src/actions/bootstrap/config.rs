//! Argo CD's configuration platform needs: the catalog's keys merged into `argocd-cm` and
//! `argocd-cmd-params-cm` (server-side apply owns only those keys: the others stay as they are), and
//! the `argocd-redis` Secret (key `auth`) when absent.
//!
//! Since v2.13 the upstream manifest creates `argocd-redis` itself, from an init container of the
//! redis Deployment (`argocd admin redis-initial-password`, which leaves an existing Secret alone),
//! and the repo-server, server and application controller need it to start. Bootstrap creates it
//! first, as the Makefile platform did, so no component waits on the redis pod's init container,
//! and a cluster whose pods cannot run that container still gets a password.

use std::collections::BTreeMap;
use std::io::Read as _;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{json, Value};

use crate::catalog::argocd::ArgoCdSpec;
use crate::cluster::{Client, ClusterError};

pub const REDIS_SECRET: &str = "argocd-redis";
pub const REDIS_KEY: &str = "auth";

/// Merge the catalog's keys into the manifest's ConfigMaps (one object each, as upstream ships
/// them; added when the manifest lacks one).
pub fn merge_into_manifest(objects: &mut Vec<Value>, spec: &ArgoCdSpec) {
    for (name, keys) in spec.patches() {
        let found = objects.iter_mut().find(|o| {
            o.get("kind").and_then(Value::as_str) == Some("ConfigMap")
                && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
        });
        match found {
            Some(cm) => {
                if !cm.get("data").is_some_and(Value::is_object) {
                    cm["data"] = json!({});
                }
                for (k, v) in keys {
                    cm["data"][k] = Value::String(v.clone());
                }
            }
            None => objects.push(cm_object(name, keys, &spec.namespace)),
        }
    }
}

/// Only the catalog's keys, as server-side apply bodies for an Argo CD platform did not install
/// (they touch nothing else of the ConfigMaps).
pub fn patch_objects(spec: &ArgoCdSpec, namespace: &str) -> Vec<Value> {
    spec.patches()
        .into_iter()
        .map(|(name, keys)| cm_object(name, keys, namespace))
        .collect()
}

fn cm_object(name: &str, keys: &BTreeMap<String, String>, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": keys,
    })
}

/// The `argocd-redis` Secret with a new random password, when `namespace` has none.
pub async fn redis_secret(client: &Client, namespace: &str) -> Result<Option<Value>, ClusterError> {
    let api: Api<Secret> = Api::namespaced(client.kube(), namespace);
    match client.retry(|| api.get_opt(REDIS_SECRET)).await {
        Ok(Some(_)) => return Ok(None),
        Ok(None) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            return Err(ClusterError::api(
                format!("reading Secret {namespace}/{REDIS_SECRET}"),
                e,
            ))
        }
    }
    let password = random_hex(16).map_err(|e| ClusterError::Protocol {
        what: "generating the redis password".into(),
        reason: e.to_string(),
    })?;
    Ok(Some(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": REDIS_SECRET,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": REDIS_SECRET, "app.kubernetes.io/part-of": "argocd"},
        },
        "stringData": {REDIS_KEY: password},
    })))
}

/// `n` random bytes from the operating system, as hex.
fn random_hex(n: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(crate::text::hex(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_are_merged_into_the_manifests_configmap_keeping_its_other_fields() {
        let spec = crate::catalog::argocd::load(
            &crate::catalog::CatalogSource::detect(std::path::Path::new("/nonexistent")).unwrap(),
            std::path::Path::new("/nonexistent"),
        )
        .unwrap();
        let mut objs = vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "argocd-cm", "labels": {"a": "b"}}, "data": {"other": "x"}})];
        merge_into_manifest(&mut objs, &spec);
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0]["data"]["other"], "x");
        assert_eq!(objs[0]["metadata"]["labels"]["a"], "b");
        assert!(objs[0]["data"][crate::catalog::argocd::HEALTH_KEY]
            .as_str()
            .unwrap()
            .contains("obj.status.health.status"));
        let mut none = vec![];
        merge_into_manifest(&mut none, &spec);
        assert_eq!(none.len(), 1);
        assert_eq!(none[0]["metadata"]["namespace"], "argocd");
    }

    #[test]
    fn passwords_differ() {
        assert_ne!(random_hex(16).unwrap(), random_hex(16).unwrap());
        assert_eq!(random_hex(16).unwrap().len(), 32);
    }
}
