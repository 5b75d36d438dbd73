//! Ordered teardown that leaves nothing billable behind, touching only what platform manages:
//!  1. stop the root apps from re-creating their children (auto-sync off);
//!  2. pause every model;
//!  3. delete the manual serving apps (models, serving layers' Gateways) and wait for them;
//!  4. delete the remaining Gateways platform manages and wait until their LoadBalancer Services are gone;
//!  5. delete the model PVCs (unless kept) and wait for their PVs;
//!  6. delete the Applications in reverse wave order (then the root apps and the AppProject), waiting
//!     for each to disappear and detecting finalizers that never finish;
//!  7. audit: every surviving Gateway, LoadBalancer Service, PVC, Released/Retain PV, InferenceService,
//!     LLMInferenceService, Deployment/StatefulSet platform renders or its apps track, Namespace it
//!     created, its AppProject and Applications, in the namespaces platform manages.
//!
//! With `--strip-finalizers`, an Application stuck on Argo CD's resources finalizer (Argo CD gone)
//! has its resources deleted by platform before the finalizer is removed: nobody else would.
//!
//! Re-running after a partial teardown continues: every step skips what is already gone.
//!
//! The ordered steps are data ([`steps::build`]): `--dry-run` prints them and [`run`] executes the
//! same list.

mod audit;
mod delete;
pub mod steps;

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{DynamicObject, ListParams, Patch};
use serde::Serialize;
use serde_json::{json, Value};

pub use audit::audit;
use delete::{delete_and_wait, lb_services, pvs_of, wait_gone};
pub use steps::{Action, Found, Phase, Step};

use super::pause;
use crate::cluster::kinds::{self, Kind};
use crate::cluster::{apply, Client, ClusterError};
use crate::consts;
use crate::layout::root_app_name;
use crate::plan::{AppKind, Plan};
use crate::report::Reporter;

#[derive(Debug, Clone)]
pub struct Options {
    pub keep_pvcs: bool,
    pub strip_finalizers: bool,
    /// How long an object may stay terminating before its finalizer counts as stuck.
    pub finalizer_timeout: Duration,
    /// How long to wait for LoadBalancer Services and PVs to be released, and for an object
    /// terminating without finalizers of its own (then a timeout, exit 3).
    pub release_timeout: Duration,
}

/// A survivor found by the audit.
#[derive(Debug, Clone, Serialize)]
pub struct Survivor {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub detail: String,
    /// Why it survived: a finalizer pending (and whose), still terminating, kept on purpose
    /// (Delete=false, reclaim policy Retain), not platform's.
    pub why: String,
    /// What removes it (a command).
    pub fix: String,
}

fn managed_selector() -> String {
    format!("{}={}", consts::LABEL_MANAGED_BY, consts::MANAGED_BY_VALUE)
}

fn name_of(o: &DynamicObject) -> String {
    o.metadata.name.clone().unwrap_or_default()
}

/// The namespaces platform manages (every destination of the AppProject but argocd itself).
pub fn managed_namespaces(plan: &Plan) -> BTreeSet<String> {
    plan.project_namespaces
        .iter()
        .filter(|n| **n != plan.argocd_namespace)
        .cloned()
        .collect()
}

/// Applications in deletion order: manual serving apps first, then catalog apps by reverse (layer, wave),
/// then the root apps (reverse layer order).
pub fn app_order(plan: &Plan) -> (Vec<String>, Vec<String>, Vec<String>) {
    // plan.apps is in bring-up order: models (wave 4) go before their layer's Gateway app (wave 3).
    let serving: Vec<String> = plan
        .apps
        .iter()
        .rev()
        .filter(|a| a.kind != AppKind::Catalog)
        .map(|a| a.name.clone())
        .collect();
    let mut catalog: Vec<&crate::plan::PlannedApp> = plan
        .apps
        .iter()
        .filter(|a| a.kind == AppKind::Catalog)
        .collect();
    catalog.reverse(); // plan.apps is in bring-up order
    let roots: Vec<String> = plan
        .profile
        .layers
        .iter()
        .rev()
        .map(|l| root_app_name(&plan.env, l))
        .collect();
    (
        serving,
        catalog.into_iter().map(|a| a.name.clone()).collect(),
        roots,
    )
}

async fn list(
    client: &Client,
    kind: Kind,
    ns: &str,
    selector: Option<&str>,
) -> Result<Vec<DynamicObject>, ClusterError> {
    let api = kind.api(client, ns);
    let mut lp = ListParams::default();
    if let Some(s) = selector {
        lp = lp.labels(s);
    }
    Ok(client
        .retry(|| api.list(&lp))
        .await
        .map_err(|e| ClusterError::api(format!("listing {} in {ns}", kind.plural), e))?
        .items)
}

/// The steps a teardown would take now: what `--dry-run` prints and [`run`] executes.
pub async fn plan_steps(
    client: &Client,
    plan: &Plan,
    opts: &Options,
) -> Result<Vec<Step>, ClusterError> {
    Ok(steps::build(plan, &steps::found(client, plan).await?, opts))
}

/// Run `steps` (from [`plan_steps`]), then audit. Returns the survivors (empty: nothing billable
/// left).
pub async fn run(
    client: &Client,
    plan: &Plan,
    steps: &[Step],
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Vec<Survivor>, ClusterError> {
    let claims = Step::deleted_claims(steps);
    let mut announced = None;
    for step in steps {
        if announced != Some(step.phase) {
            announced = Some(step.phase);
            reporter.line(&format!(
                "{}/{} {}",
                step.phase as u8,
                Phase::COUNT,
                step.phase.title(opts.keep_pvcs)
            ));
        }
        execute(client, plan, step, &claims, opts, reporter).await?;
    }
    audit(client, plan).await
}

/// Execute one step. Objects already gone are skipped, so a re-run continues.
async fn execute(
    client: &Client,
    plan: &Plan,
    step: &Step,
    claims: &BTreeSet<(String, String)>,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let delete = |kind, ns, name| delete_and_wait(client, plan, kind, ns, name, opts, reporter);
    match &step.action {
        Action::DisableAutoSync { namespace, app } => {
            disable_auto_sync(client, namespace, app, reporter).await
        }
        Action::Pause { model, .. } => pause_model(client, plan, model, reporter).await,
        Action::ProtectPvc { namespace, name } => protect_pvc(client, namespace, name).await,
        Action::DeleteApp { namespace, name } => delete(kinds::APPLICATION, namespace, name).await,
        Action::DeleteGateway { namespace, name } => delete(kinds::GATEWAY, namespace, name).await,
        Action::DeletePvc { namespace, name } => delete(kinds::PVC, namespace, name).await,
        Action::DeleteProject { namespace, name } => {
            delete(kinds::APP_PROJECT, namespace, name).await
        }
        Action::AwaitLoadBalancers => {
            let namespaces = managed_namespaces(plan);
            wait_gone(
                "LoadBalancer Services",
                opts.release_timeout,
                reporter,
                || lb_services(client, &namespaces),
            )
            .await
        }
        Action::AwaitVolumes => await_volumes(client, claims, opts, reporter).await,
    }
}

/// Turn a root app's auto-sync off (gone already: nothing to do).
async fn disable_auto_sync(
    client: &Client,
    namespace: &str,
    app: &str,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let api = kinds::APPLICATION.api(client, namespace);
    let p = json!({"spec": {"syncPolicy": {"automated": null}}});
    let patch = Patch::Merge(&p);
    let params = apply::patch_params();
    match client.retry(|| api.patch(app, &params, &patch)).await {
        Ok(_) => reporter.finish(app, "auto-sync disabled"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            return Err(ClusterError::api(
                format!("disabling auto-sync of {app}"),
                e,
            ))
        }
    }
    Ok(())
}

/// Pause a model of the plan (not deployed any more: nothing to do).
async fn pause_model(
    client: &Client,
    plan: &Plan,
    model: &str,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let Some(m) = plan.models.iter().find(|m| m.name == model) else {
        return Ok(());
    };
    match pause::pause(client, m).await {
        Ok(o) => reporter.finish(&m.name, &o.action),
        Err(ClusterError::NotDeployed { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// `--keep-pvcs`: Argo CD keeps resources annotated Delete=false when their app is deleted.
async fn protect_pvc(client: &Client, namespace: &str, name: &str) -> Result<(), ClusterError> {
    let api = kinds::PVC.api(client, namespace);
    let body =
        json!({"metadata": {"annotations": {"argocd.argoproj.io/sync-options": "Delete=false"}}});
    let patch = Patch::Merge(&body);
    let params = apply::patch_params();
    match client.retry(|| api.patch(name, &params, &patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(ClusterError::api(
            format!("protecting PVC {namespace}/{name}"),
            e,
        )),
    }
}

/// Wait until the volumes of the deleted claims are gone. Delete-policy volumes disappear; Retain
/// ones stay Released and are reported by the audit.
async fn await_volumes(
    client: &Client,
    claims: &BTreeSet<(String, String)>,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    wait_gone(
        "PersistentVolumes",
        opts.release_timeout,
        reporter,
        || async {
            Ok(pvs_of(client, claims)
                .await?
                .into_iter()
                .filter(|(_, v)| {
                    v.pointer("/spec/persistentVolumeReclaimPolicy")
                        .and_then(Value::as_str)
                        != Some("Retain")
                })
                .map(|(n, _)| format!("PV {n}"))
                .collect())
        },
    )
    .await
}
