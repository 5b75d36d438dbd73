//! `platform bootstrap --uninstall`: remove the Argo CD bootstrap installed. What goes: the
//! self-managing Application (first, its finalizer removed, so Argo CD neither re-creates nor
//! cascades anything), the pinned install manifest's objects (argocd-cm with the keys bootstrap
//! merged in among them) in reverse order, bootstrap's own Secrets (argocd-redis, the repository
//! credential for the config's repoURL), the CRDs, then the namespace. The cluster identity
//! ConfigMap stays. Refused while Applications other than the self-managing one exist (Argo CD
//! manages them: `platform teardown` first), and for an Argo CD bootstrap did not install (found by
//! labels: other names, another namespace, Helm; or the upstream names without platform's field
//! manager on argocd-cm). Every object is looked at first: a second run has nothing to do.

use std::time::Duration;

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{json, Value};

use super::credential;
use super::existing::{self, Existing};
use super::manifest::Manifest;
use super::objects::{Desired, Resolver};
use super::{config, BootstrapError};
use crate::catalog::argocd::ArgoCdSpec;
use crate::cluster::health::Progress;
use crate::cluster::wait::{until, Stopped, Tick, Until};
use crate::cluster::{kinds, Client, ClusterError};
use crate::consts;
use crate::report::Reporter;

#[derive(Debug, Clone)]
pub struct Options {
    /// List what would be deleted; delete nothing.
    pub dry_run: bool,
    /// The config's repoURL (whose credential Secret bootstrap created).
    pub repo_url: String,
    /// How long the deletions may take to complete.
    pub timeout: Duration,
}

/// What happened (or, with `dry_run`, would).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// `Kind ns/name` of every object deleted (or to delete), in order.
    pub deleted: Vec<String>,
    /// `Kind ns/name` of the objects in the namespace that bootstrap did not install (another
    /// cluster's Secret, a repository credential, an AppProject): deleting the namespace would
    /// delete them, so the uninstall is refused while they exist (the dry run lists them).
    pub foreign: Vec<String>,
}

/// Objects Kubernetes or Argo CD create on their own in Argo CD's namespace (kind, name).
const SELF_CREATED: &[(&str, &str)] = &[
    ("ConfigMap", "kube-root-ca.crt"),
    ("ServiceAccount", "default"),
    ("Secret", "argocd-initial-admin-secret"),
    ("AppProject", "default"),
];

const POLL: Duration = Duration::from_secs(1);

/// Remove the Argo CD bootstrap installed (see the module's doc).
pub async fn run(
    client: &Client,
    spec: &ArgoCdSpec,
    manifest: &Manifest,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Outcome, BootstrapError> {
    let ns = spec.namespace.as_str();
    let existing = existing::detect(client, ns).await?;
    match &existing {
        Existing::Other { helm, .. } => {
            let found = existing.describe();
            return Err(BootstrapError::NotOurs {
                found: found.trim_end_matches("; left alone)").to_string() + ")",
                helm: helm.clone(),
            });
        }
        Existing::Upstream if !applied_by_platform(client, ns).await? => {
            return Err(BootstrapError::NotOurs {
                found: format!(
                    "Argo CD in namespace {ns} (the upstream manifest's names, but argocd-cm has no \
                     field written by platform)"
                ),
                helm: None,
            });
        }
        _ => {}
    }
    let self_app = spec.app.as_ref().map(|a| a.name.clone());
    let apps = other_apps(client, ns, self_app.as_deref()).await?;
    if !apps.is_empty() {
        return Err(BootstrapError::AppsExist { apps });
    }
    // What bootstrap applied, in the order to delete it.
    let mut resolver = Resolver::default();
    let mut bodies: Vec<Value> = Vec::new();
    if let Some(app) = &self_app {
        bodies.push(
            json!({"apiVersion": kinds::APPLICATION.api_version, "kind": kinds::APPLICATION.kind,
            "metadata": {"name": app, "namespace": ns}}),
        );
    }
    let (crds, rest): (Vec<Value>, Vec<Value>) =
        manifest.objects.iter().cloned().partition(|o| {
            o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
        });
    bodies.extend(rest.into_iter().rev());
    let secret = |name: String| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}});
    bodies.push(secret(config::REDIS_SECRET.to_string()));
    if !opts.repo_url.is_empty() {
        let name = match credential::find(client, ns, &opts.repo_url).await {
            Ok(Some(n)) => n,
            _ => credential::default_name(&opts.repo_url),
        };
        bodies.push(secret(name));
    }
    bodies.extend(crds.into_iter().rev());
    bodies.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    let ours: Vec<(String, String)> = bodies
        .iter()
        .map(|b| {
            let f = |p: &str| b.pointer(p).and_then(Value::as_str).unwrap_or_default();
            (f("/kind").to_string(), f("/metadata/name").to_string())
        })
        .collect();
    let foreign = foreign(client, ns, &ours).await?;

    let mut present: Vec<Desired> = Vec::new();
    for body in bodies {
        let d = match resolver.desired(client, body, ns, false).await {
            Ok(d) => d,
            // A kind no longer served (its CRD is gone already): nothing of it is left.
            Err(ClusterError::Api { source, .. })
                if matches!(source.as_ref(), kube::Error::Api(s) if s.code == 404)
                    || matches!(source.as_ref(), kube::Error::Discovery(_)) =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        if exists(client, &d).await? {
            present.push(d);
        }
    }
    let outcome = Outcome {
        deleted: present.iter().map(Desired::describe).collect(),
        foreign,
    };
    if opts.dry_run || present.is_empty() {
        return Ok(outcome);
    }
    if !outcome.foreign.is_empty() {
        return Err(BootstrapError::ForeignObjects {
            namespace: ns.to_string(),
            objects: outcome.foreign,
        });
    }
    for d in &present {
        if d.resource.kind == kinds::APPLICATION.kind {
            // Neither re-created by its own selfHeal nor cascading: the finalizer goes first.
            let patch = Patch::Merge(json!({"metadata": {"finalizers": null}}));
            let api = d.api(client);
            let pp = PatchParams::default();
            match client.retry(|| api.patch(&d.name, &pp, &patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => {
                    return Err(ClusterError::api(
                        format!("removing the finalizers of {}", d.describe()),
                        e,
                    )
                    .into())
                }
            }
        }
        delete(client, d).await?;
        reporter.note(&format!("deleted {}", d.describe()));
    }
    reporter.note("waiting for the deletions to complete");
    let polls = futures::stream::unfold(true, |first| {
        let present = &present;
        async move {
            if !first {
                tokio::time::sleep(POLL).await;
            }
            let mut pending = Vec::new();
            for d in present {
                match exists(client, d).await {
                    Ok(true) => pending.push(d.describe()),
                    Ok(false) => {}
                    Err(e) => return Some((Err(e), false)),
                }
            }
            Some((Ok(pending), false))
        }
    });
    let spec = Until::new(
        format!(
            "the deletion of Argo CD's objects (--timeout {})",
            humantime::format_duration(opts.timeout)
        ),
        "not checked yet",
        opts.timeout,
    );
    let mut left: Vec<String> = Vec::new();
    let mut failed = None;
    let judge = |poll: Result<Vec<String>, ClusterError>| match poll {
        Ok(l) if l.is_empty() => Some(Progress::Done),
        Ok(l) => {
            left = l;
            Some(Progress::Pending(format!(
                "{} object(s) still there: {}",
                left.len(),
                left.join(", ")
            )))
        }
        Err(e) => {
            failed = Some(e);
            Some(Progress::Failed(String::new()))
        }
    };
    let heartbeat = |t: &Tick<'_>| {
        if !t.changed {
            reporter.note(&heartbeat_line(t));
        }
    };
    match until(polls, &spec, judge, heartbeat).await {
        Ok(()) => Ok(outcome),
        Err(Stopped::Timeout(_)) => Err(BootstrapError::UninstallTimeout { pending: left }),
        Err(stopped) => Err(failed
            .unwrap_or_else(|| ClusterError::Protocol {
                what: format!("waiting for Argo CD's objects in namespace {ns} to be deleted"),
                reason: stopped.to_string(),
            })
            .into()),
    }
}

/// What the wait says every 30 s: what is still there, and the time left.
fn heartbeat_line(t: &Tick<'_>) -> String {
    format!(
        "still waiting for {}: {} ({}s elapsed, {}s left)",
        t.what,
        t.reason,
        t.elapsed.as_secs(),
        t.left.as_secs()
    )
}

/// The Secrets, ConfigMaps, ServiceAccounts and AppProjects of namespace `ns` that are neither
/// among `ours` (kind, name: the manifest's and bootstrap's own) nor created by Kubernetes or Argo
/// CD themselves nor written by platform (`up`'s AppProject), as `Kind ns/name`.
async fn foreign(
    client: &Client,
    ns: &str,
    ours: &[(String, String)],
) -> Result<Vec<String>, ClusterError> {
    let kinds_listed = [
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        (kinds::APP_PROJECT.api_version, kinds::APP_PROJECT.kind),
    ];
    let mut out = Vec::new();
    let mut resolver = Resolver::default();
    for (api_version, kind) in kinds_listed {
        let probe = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "probe", "namespace": ns}});
        let d = match resolver.desired(client, probe, ns, false).await {
            Ok(d) => d,
            // Not served (the AppProject CRD is gone): none of it exists.
            Err(ClusterError::Api { source, .. })
                if matches!(source.as_ref(), kube::Error::Api(s) if s.code == 404)
                    || matches!(source.as_ref(), kube::Error::Discovery(_)) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let api = d.api(client);
        let lp = ListParams::default();
        let list = match client.retry(|| api.list(&lp)).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(ClusterError::api(format!("listing {kind}s in {ns}"), e)),
        };
        for o in list.items {
            let name = o.metadata.name.clone().unwrap_or_default();
            let by_platform = o
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .any(|f| f.manager.as_deref() == Some(consts::FIELD_MANAGER));
            let known = ours.iter().any(|(k, n)| k == kind && *n == name)
                || SELF_CREATED.iter().any(|(k, n)| *k == kind && *n == name);
            if !known && !by_platform {
                out.push(format!("{kind} {ns}/{name}"));
            }
        }
    }
    Ok(out)
}

/// Whether platform's field manager wrote argocd-cm (bootstrap merges the catalog's keys into it).
async fn applied_by_platform(client: &Client, ns: &str) -> Result<bool, ClusterError> {
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.kube(), ns);
    let cm = client
        .retry(|| api.get_opt("argocd-cm"))
        .await
        .map_err(|e| ClusterError::api(format!("reading ConfigMap {ns}/argocd-cm"), e))?;
    Ok(cm.is_some_and(|cm| {
        cm.metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|f| f.manager.as_deref() == Some(consts::FIELD_MANAGER))
    }))
}

/// Applications in any namespace other than the self-managing one, as `namespace/name`.
async fn other_apps(
    client: &Client,
    ns: &str,
    self_app: Option<&str>,
) -> Result<Vec<String>, ClusterError> {
    let api = kinds::APPLICATION.api_all(client);
    let lp = ListParams::default();
    let list = match client.retry(|| api.list(&lp)).await {
        Ok(l) => l,
        // The CRD is gone: no Application can exist.
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Vec::new()),
        Err(e) => {
            return Err(ClusterError::api(
                "listing Applications in all namespaces",
                e,
            ))
        }
    };
    let mut out: Vec<String> = list
        .items
        .iter()
        .map(kinds::json)
        .filter_map(|a| {
            let n = a.pointer("/metadata/name")?.as_str()?.to_string();
            let an = a
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (!(an == ns && Some(n.as_str()) == self_app)).then(|| format!("{an}/{n}"))
        })
        .collect();
    out.sort();
    Ok(out)
}

async fn exists(client: &Client, d: &Desired) -> Result<bool, ClusterError> {
    let api = d.api(client);
    match client.retry(|| api.get_opt(&d.name)).await {
        Ok(o) => Ok(o.is_some()),
        // Its namespace or its kind is gone.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(ClusterError::api(format!("reading {}", d.describe()), e)),
    }
}

async fn delete(client: &Client, d: &Desired) -> Result<(), ClusterError> {
    let api = d.api(client);
    let dp = DeleteParams::background();
    match client.retry(|| api.delete(&d.name, &dp)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(ClusterError::api(format!("deleting {}", d.describe()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_names_what_is_left_and_the_time_left() {
        let t = Tick {
            what: "the deletion of Argo CD's objects (--timeout 10m)",
            reason: "1 object(s) still there: Namespace argocd",
            elapsed: Duration::from_secs(30),
            left: Duration::from_secs(570),
            changed: false,
        };
        assert_eq!(
            heartbeat_line(&t),
            "still waiting for the deletion of Argo CD's objects (--timeout 10m): 1 object(s) still \
             there: Namespace argocd (30s elapsed, 570s left)"
        );
    }
}
