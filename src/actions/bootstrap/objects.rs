//! Objects of any kind (found by discovery), compared with the cluster and server-side applied
//! (field manager `platform`): each is `create`, `update` or `unchanged`, decided by a server-side
//! dry run compared with the live object, so a second run applies nothing. CRDs go first and must be
//! Established before anything else is applied.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{self, Scope};
use serde::Serialize;
use serde_json::Value;

use super::BootstrapError;
use crate::cluster::apply::apply_params;
use crate::cluster::{health, Client, ClusterError};

const ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Create,
    Update,
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Unchanged => "unchanged",
        })
    }
}

/// One desired object, resolved against the cluster's API.
#[derive(Clone)]
pub struct Desired {
    pub obj: Value,
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
    /// Sensitive (a Secret): its content and the server's messages about it are never shown.
    pub secret: bool,
}

impl Desired {
    /// `Kind ns/name` (or `Kind name`).
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.resource.kind, self.name),
            None => format!("{} {}", self.resource.kind, self.name),
        }
    }

    pub fn api(&self, client: &Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.kube(), ns, &self.resource),
            None => Api::all_with(client.kube(), &self.resource),
        }
    }

    pub fn is_crd(&self) -> bool {
        self.resource.group == "apiextensions.k8s.io"
            && self.resource.kind == "CustomResourceDefinition"
    }
}

/// Resolves kinds through discovery, once per group/version/kind.
#[derive(Default)]
pub struct Resolver {
    known: BTreeMap<(String, String), (ApiResource, bool)>,
}

impl Resolver {
    /// `obj` with its API; a namespaced object without a namespace goes to `default_ns`.
    pub async fn desired(
        &mut self,
        client: &Client,
        mut obj: Value,
        default_ns: &str,
        secret: bool,
    ) -> Result<Desired, ClusterError> {
        let api_version = str_at(&obj, "/apiVersion");
        let kind = str_at(&obj, "/kind");
        let name = str_at(&obj, "/metadata/name");
        let key = (api_version.clone(), kind.clone());
        if !self.known.contains_key(&key) {
            let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
            let gvk = GroupVersionKind::gvk(group, version, &kind);
            let kube = client.kube();
            let (ar, caps) = client
                .retry(|| discovery::pinned_kind(&kube, &gvk))
                .await
                .map_err(|e| ClusterError::api(format!("discovering {api_version} {kind}"), e))?;
            self.known
                .insert(key.clone(), (ar, caps.scope == Scope::Namespaced));
        }
        let (resource, namespaced) = self.known[&key].clone();
        let namespace = if namespaced {
            let ns = obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(default_ns)
                .to_string();
            obj["metadata"]["namespace"] = Value::String(ns.clone());
            Some(ns)
        } else {
            None
        };
        Ok(Desired {
            obj,
            resource,
            namespace,
            name,
            secret,
        })
    }
}

fn str_at(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// An API error about `d`; for a Secret only the status code and reason (the server may quote the
/// submitted data).
fn api_error(d: &Desired, what: &str, e: kube::Error) -> ClusterError {
    if d.secret {
        let reason = match &e {
            kube::Error::Api(s) => format!("HTTP {} {}", s.code, s.reason),
            _ => "request failed".to_string(),
        };
        return ClusterError::Protocol {
            what: format!("{what} {}", d.describe()),
            reason: format!("{reason} (details withheld: the object holds a credential)"),
        };
    }
    ClusterError::api(format!("{what} {}", d.describe()), e)
}

/// The live object vs what applying would make of it (a server-side dry run).
pub async fn classify(client: &Client, d: &Desired) -> Result<Change, ClusterError> {
    let api = d.api(client);
    let live = match client.retry(|| api.get_opt(&d.name)).await {
        Ok(Some(o)) => o,
        Ok(None) => return Ok(Change::Create),
        // The namespace does not exist yet: neither does the object.
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Change::Create),
        Err(e) => return Err(api_error(d, "reading", e)),
    };
    let patch = Patch::Apply(&d.obj);
    // As `apply` below writes it (forced: taking over fields), but only a dry run.
    let params = apply_params(true).dry_run();
    let after = client
        .retry(|| api.patch(&d.name, &params, &patch))
        .await
        .map_err(|e| api_error(d, "server-side dry run of", e))?;
    Ok(if comparable(&live) == comparable(&after) {
        Change::Unchanged
    } else {
        Change::Update
    })
}

/// An object without what changes on every write (managed fields, resourceVersion).
fn comparable(o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    v
}

/// Server-side apply (field manager `platform`, taking over conflicting fields: the pinned release
/// is authoritative).
pub async fn apply(client: &Client, d: &Desired) -> Result<(), ClusterError> {
    let api = d.api(client);
    let patch = Patch::Apply(&d.obj);
    let params = apply_params(true); // force
    client
        .retry(|| api.patch(&d.name, &params, &patch))
        .await
        .map_err(|e| api_error(d, "server-side apply of", e))?;
    Ok(())
}

/// Wait until every CRD named is Established (polling, with a deadline).
pub async fn wait_established(client: &Client, crds: &[&Desired]) -> Result<(), BootstrapError> {
    let deadline = Instant::now() + ESTABLISHED_TIMEOUT;
    for d in crds {
        let api = d.api(client);
        loop {
            let reason = match client.retry(|| api.get_opt(&d.name)).await {
                Ok(Some(o)) => {
                    let v = serde_json::to_value(&o).unwrap_or_default();
                    match health::condition(&v, "Established") {
                        Some(("True", _, _)) => break,
                        Some((_, r, m)) => format!("{r}: {m}"),
                        None => "no Established condition yet".to_string(),
                    }
                }
                Ok(None) => "not found".to_string(),
                Err(e) => crate::cluster::api_error::describe(&e),
            };
            if Instant::now() >= deadline {
                return Err(BootstrapError::NotEstablished {
                    name: d.name.clone(),
                    secs: ESTABLISHED_TIMEOUT.as_secs(),
                    reason,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}
