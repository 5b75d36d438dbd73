//! Bring-up, wave by wave (`platform up`, and `platform wait` without the syncs): in layer order,
//! for each (layer, wave) wait until its Applications exist (their root app creates them), start a
//! sync of the wave's manual apps (the Application `operation`, only when none is in flight), and
//! watch every app of the wave until it is done (see [`crate::cluster::health::application`]). Model apps are
//! manual (the cost gate): they take part only when asked, and not those `up --fit` refused
//! ([`Options::hold`]).

use std::time::Instant;

use crate::catalog::SyncMode;
use crate::cluster::argo::{self, SyncStart};
use crate::cluster::wait::{wait_apps, wait_created, AppWait};
use crate::cluster::{Client, ClusterError};
use crate::plan::{AppKind, Plan, PlannedApp};
use crate::report::Reporter;

/// What a bring-up does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Include the manual model apps (sync them with `sync`, wait for them either way).
    pub models: bool,
    /// Start syncs of manual apps at this revision; None: only wait (`platform wait`).
    pub sync: Option<String>,
    /// The pushed commit Applications that read the GitOps repository must report as synced.
    pub pushed: Option<String>,
    /// Everything is done by then (a timeout error otherwise).
    pub deadline: Instant,
    /// Recorded in the operation (`initiatedBy`/`info`).
    pub initiator: String,
    /// The user's S3 keys, for the Secret KServe reads `s3://` weights with (created before the
    /// models that need it sync, when missing).
    pub s3_keys: Option<crate::s3::AwsCredentials>,
    /// Apps left alone even with `models`: the model apps `up --fit` refused (they would not
    /// start).
    pub hold: Vec<String>,
}

/// What a bring-up did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Applications waited for until Synced and Healthy.
    pub done: usize,
    /// Manual apps left alone (models without `models`).
    pub skipped: Vec<String>,
    /// Apps of `hold` left alone.
    pub held: Vec<String>,
}

/// Whether an app's source is the GitOps repository (so its synced revision must be the pushed one).
pub fn reads_gitops_repo(a: &PlannedApp) -> bool {
    a.kind != AppKind::Catalog || a.spec.source.path.is_some() || a.spec.source.objects.is_some()
}

/// One app of `up --dry-run`'s list: what a real run would do with it, wave by wave.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    pub layer: String,
    pub wave: i32,
    pub app: String,
    /// `sync at <rev>` (a manual app up syncs), `wait` (an app that syncs by itself), `skip
    /// (manual, the cost gate)`, `hold (--fit)`.
    pub action: String,
}

/// What [`run`] would do with `opts`, app by app in its order, without looking at the cluster.
pub fn preview(plan: &Plan, opts: &Options) -> Vec<Planned> {
    let mut out = Vec::new();
    for (layer, wave, apps) in plan.stages() {
        for a in apps {
            let action = if a.kind != AppKind::Catalog && !opts.models {
                "skip (manual, the cost gate: --sync-models brings it up)".to_string()
            } else if a.kind != AppKind::Catalog && opts.hold.contains(&a.name) {
                "hold (--fit: it would not start)".to_string()
            } else {
                match (&opts.sync, a.sync == SyncMode::Manual) {
                    (Some(rev), true) => format!(
                        "sync at {}, then wait until Synced and Healthy",
                        crate::text::short_rev(rev)
                    ),
                    _ => "wait until Synced and Healthy (it syncs by itself)".to_string(),
                }
            };
            out.push(Planned {
                layer: layer.clone(),
                wave,
                app: a.name.clone(),
                action,
            });
        }
    }
    out
}

/// Go through the plan's waves (see the module docs).
pub async fn run(
    client: &Client,
    plan: &Plan,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Outcome, ClusterError> {
    let mut out = Outcome::default();
    let left = || opts.deadline.saturating_duration_since(Instant::now());
    for (layer, wave, apps) in plan.stages() {
        let selected: Vec<&PlannedApp> = apps
            .into_iter()
            .filter(|a| {
                if a.kind == AppKind::Catalog {
                    true
                } else if !opts.models {
                    out.skipped.push(a.name.clone());
                    false
                } else if opts.hold.contains(&a.name) {
                    out.held.push(a.name.clone());
                    false
                } else {
                    true
                }
            })
            .collect();
        if selected.is_empty() {
            continue;
        }
        reporter.line(&format!(
            "wave {wave} of layer {layer}: {}",
            selected
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let names: Vec<String> = selected.iter().map(|a| a.name.clone()).collect();
        wait_created(client, &plan.argocd_namespace, &names, left(), reporter).await?;
        if let Some(revision) = &opts.sync {
            let syncing: Vec<&str> = selected.iter().map(|a| a.name.as_str()).collect();
            let namespaces = super::s3_secret::namespaces_needing(plan, &syncing);
            super::s3_secret::ensure_all(client, &namespaces, opts.s3_keys.as_ref(), reporter)
                .await?;
            for a in selected.iter().filter(|a| a.sync == SyncMode::Manual) {
                match argo::start_sync(
                    client,
                    &plan.argocd_namespace,
                    &a.name,
                    revision,
                    &a.spec.sync_options,
                    &opts.initiator,
                )
                .await?
                {
                    SyncStart::Started => reporter.update(
                        &a.name,
                        &format!("sync started at {}", crate::text::short_rev(revision)),
                    ),
                    SyncStart::InFlight(true) => {
                        reporter.update(&a.name, "platform's sync already in progress")
                    }
                    SyncStart::InFlight(false) => {
                        reporter.update(&a.name, "a sync started by someone else is in progress")
                    }
                }
            }
        }
        let waits: Vec<AppWait> = selected
            .iter()
            .map(|a| AppWait {
                name: a.name.clone(),
                revision: opts.pushed.clone().filter(|_| reads_gitops_repo(a)),
            })
            .collect();
        wait_apps(client, &plan.argocd_namespace, &waits, left(), reporter).await?;
        out.done += waits.len();
    }
    Ok(out)
}
