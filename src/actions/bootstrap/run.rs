//! The bootstrap action: what to apply (install, configuration, credential), compared with the
//! cluster, then applied in order and waited for.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::config;
use super::credential::{self, Credential};
use super::existing::{self, Existing};
use super::identity;
use super::manifest::Manifest;
use super::objects::{self, Change, Desired, Resolver};
use super::{ready, BootstrapError};
use crate::catalog::argocd::ArgoCdSpec;
use crate::cluster::target::{IDENTITY_CONFIGMAP, IDENTITY_NAMESPACE};
use crate::cluster::Client;
use crate::report::Reporter;

/// What the CLI decided.
#[derive(Debug, Clone)]
pub struct Options {
    /// Compare and report only; write nothing.
    pub dry_run: bool,
    /// The cluster has no identity yet and the user confirmed the target: record this name.
    pub record_identity: Option<String>,
    /// The config's repoURL (the credential's subject).
    pub repo_url: String,
    pub credential: Option<Credential>,
    /// How long Argo CD may take to become ready.
    pub timeout: Duration,
}

/// One object and what bootstrap does (or would do) to it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub change: Change,
    pub object: String,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub existing: Existing,
    pub steps: Vec<Step>,
    /// Argo CD was waited for and is ready.
    pub ready: bool,
}

impl Outcome {
    /// Anything created or updated (or, with --dry-run, anything that would be).
    pub fn changed(&self) -> bool {
        self.steps.iter().any(|s| s.change != Change::Unchanged)
    }
}

/// Compare everything with the cluster, then (unless dry run) apply and wait for readiness.
pub async fn run(
    client: &Client,
    spec: &ArgoCdSpec,
    manifest: &Manifest,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Outcome, BootstrapError> {
    let existing = existing::detect(client, &spec.namespace).await?;
    let (namespace, bodies) = match &existing {
        Existing::Other {
            namespace, found, ..
        } => {
            reporter.note(&format!(
                "Argo CD is already installed differently: {} ({}); platform only merges its \
                 argocd-cm keys{} in namespace {namespace}",
                existing.describe(),
                found.join(", "),
                if opts.credential.is_some() {
                    " and the repository credential"
                } else {
                    ""
                }
            ));
            (namespace.clone(), config::patch_objects(spec, namespace))
        }
        _ => (
            spec.namespace.clone(),
            install_bodies(client, spec, manifest).await?,
        ),
    };
    let mut desired = Vec::new();
    let mut resolver = Resolver::default();
    for body in bodies {
        desired.push(resolver.desired(client, body, &namespace, false).await?);
    }
    if let Some(cred) = &opts.credential {
        cred.check_url(&opts.repo_url)?;
        let name = credential::find(client, &namespace, &opts.repo_url)
            .await?
            .unwrap_or_else(|| credential::default_name(&opts.repo_url));
        let body = credential::secret_object(&name, &namespace, &opts.repo_url, cred);
        desired.push(resolver.desired(client, body, &namespace, true).await?);
    }
    let mut steps = Vec::new();
    if opts.record_identity.is_some() {
        steps.push(Step {
            change: Change::Create,
            object: format!("ConfigMap {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP}"),
        });
    }
    let mut changes = Vec::new();
    for d in &desired {
        let change = objects::classify(client, d).await?;
        steps.push(Step {
            change,
            object: d.describe(),
        });
        changes.push(change);
    }
    let mut outcome = Outcome {
        existing,
        steps,
        ready: false,
    };
    if opts.dry_run {
        return Ok(outcome);
    }
    if let Some(name) = &opts.record_identity {
        identity::record(client, name).await?;
        reporter.note(&format!(
            "recorded the cluster identity {name} (ConfigMap {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP})"
        ));
    }
    apply_all(client, &desired, &changes, reporter).await?;
    if !matches!(outcome.existing, Existing::Other { .. }) {
        reporter.note(
            "waiting for Argo CD to be ready (application controller, repo-server, redis, server)",
        );
        ready::wait(client, &namespace, opts.timeout, reporter).await?;
        outcome.ready = true;
    }
    Ok(outcome)
}

/// The namespace, the manifest with the catalog's ConfigMap keys merged in, and the redis Secret
/// when absent.
async fn install_bodies(
    client: &Client,
    spec: &ArgoCdSpec,
    manifest: &Manifest,
) -> Result<Vec<Value>, BootstrapError> {
    let mut bodies = vec![json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.namespace},
    })];
    let mut objs = manifest.objects.clone();
    config::merge_into_manifest(&mut objs, spec);
    bodies.extend(objs);
    bodies.extend(config::redis_secret(client, &spec.namespace).await?);
    Ok(bodies)
}

/// CRDs first (then Established), then everything else in order; unchanged objects are skipped.
async fn apply_all(
    client: &Client,
    desired: &[Desired],
    changes: &[Change],
    reporter: &dyn Reporter,
) -> Result<(), BootstrapError> {
    let todo = |crd: bool| {
        desired
            .iter()
            .zip(changes)
            .filter(move |(d, c)| d.is_crd() == crd && **c != Change::Unchanged)
    };
    for (d, c) in todo(true) {
        objects::apply(client, d).await?;
        reporter.note(&format!("{c}d {}", d.describe()));
    }
    let crds: Vec<&Desired> = desired.iter().filter(|d| d.is_crd()).collect();
    objects::wait_established(client, &crds).await?;
    for (d, c) in todo(false) {
        objects::apply(client, d).await?;
        reporter.note(&format!("{c}d {}", d.describe()));
    }
    Ok(())
}
