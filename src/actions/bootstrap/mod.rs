//! `platform bootstrap`: Argo CD at the version pinned in `catalog/argocd.yaml`, on a cluster with or
//! without one. The upstream install manifest (downloaded over HTTPS and verified by sha256, or a
//! local file) is server-side applied, CRDs first and Established before the rest, into the catalog's
//! namespace; `argocd-cm` gets the catalog's keys merged in; `argocd-redis` gets its password when
//! absent; a private GitOps repository gets its credential Secret; then it waits until Argo CD is
//! usable. An Argo CD installed some other way (a Helm release, another namespace) is left alone:
//! only the configuration and the credential are applied to it. Every step compares first, so a
//! second run changes nothing and says so.
//!
//! One responsibility per file: [`manifest`] (fetch, verify, cache, parse), [`identity`] (the
//! cluster-identity ConfigMap), [`objects`] (discovery, create/update/unchanged, server-side apply,
//! CRDs Established), [`config`] (argocd-cm keys, argocd-redis), [`credential`] (the repository
//! Secret), [`existing`] (an Argo CD found by labels), [`ready`] (the readiness wait), [`checks`]
//! (what `doctor` reports about them).

pub mod checks;
pub mod config;
pub mod credential;
pub mod existing;
pub mod identity;
pub mod manifest;
pub mod objects;
mod openssh;
pub mod ready;
mod run;
pub mod uninstall;

use std::path::PathBuf;

pub use run::{run, Options, Outcome};

use crate::cluster::ClusterError;

/// What can go wrong bootstrapping, each naming its subject and the fix. Messages never hold a
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(
        "the Argo CD install manifest from {origin} has sha256 {actual}, but {catalog} pins {expected}; \
         nothing was applied. {fix}"
    )]
    Checksum {
        origin: String,
        expected: String,
        actual: String,
        catalog: String,
        fix: String,
    },
    #[error("downloading the Argo CD install manifest from {url}: {message}")]
    Download { url: String, message: String },
    #[error("reading the Argo CD install manifest {}: {message}", .path.display())]
    ReadManifest { path: PathBuf, message: String },
    #[error(
        "the Argo CD install manifest from {origin} is not valid: {message}; nothing was applied"
    )]
    BadManifest { origin: String, message: String },
    #[error("writing the manifest cache {}: {source}", .path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Credential(String),
    #[error(
        "CustomResourceDefinition {name} is not Established after {secs}s ({reason}); nothing else \
         was applied: `kubectl describe crd {name}`"
    )]
    NotEstablished {
        name: String,
        secs: u64,
        reason: String,
    },
    #[error(
        "{} still exist: Argo CD manages them, and removing it would orphan them (or leave them stuck on \
         their finalizers); nothing was deleted. Remove them first: `platform teardown` (Applications \
         platform did not render: delete them in Argo CD)",
        list_apps(.apps)
    )]
    AppsExist { apps: Vec<String> },
    #[error(
        "{found} was not installed by `platform bootstrap`: left alone, nothing was deleted; remove it the \
         way it was installed{}",
        .helm.as_deref().map(|r| format!(" (`helm uninstall {r}`)")).unwrap_or_default()
    )]
    NotOurs { found: String, helm: Option<String> },
    #[error(
        "namespace {namespace} holds {} bootstrap did not install: {}; deleting the namespace would \
         delete them, so nothing was deleted. Move or delete them first (`platform bootstrap --uninstall \
         --dry-run` lists them again)",
        if .objects.len() == 1 { "an object" } else { "objects" },
        .objects.join(", ")
    )]
    ForeignObjects {
        namespace: String,
        objects: Vec<String>,
    },
    #[error("timed out waiting for Argo CD's objects to be deleted; still there: {}", .pending.join(", "))]
    UninstallTimeout { pending: Vec<String> },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

fn list_apps(apps: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut s = format!(
        "{} Application(s) ({}",
        apps.len(),
        apps.iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    if apps.len() > SHOWN {
        s.push_str(&format!(", and {} more", apps.len() - SHOWN));
    }
    s.push(')');
    s
}

#[cfg(test)]
mod uninstall_hint_tests {
    use super::*;

    #[test]
    fn apps_exist_names_the_environment_once() {
        let e = BootstrapError::AppsExist {
            apps: vec!["qwen".into()],
        };
        let shown = crate::envs::Hint::always("prod").apply(&e.to_string());
        assert_eq!(shown.matches("--env").count(), 1, "{shown}");
        assert!(shown.contains("`platform teardown --env prod`"), "{shown}");
    }
}
