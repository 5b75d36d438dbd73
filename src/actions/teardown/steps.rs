//! The teardown as data: [`build`] turns the plan and what exists now ([`Found`]) into the ordered
//! list of [`Step`]s. `--dry-run` prints that list and a real run executes the same list, so the two
//! cannot drift. [`build`] is pure (unit-tested below); [`found`] reads the cluster.

use std::collections::BTreeSet;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::{app_order, list, managed_namespaces, managed_selector, name_of, Options};
use crate::actions::pause;
use crate::cluster::kinds;
use crate::cluster::{Client, ClusterError};
use crate::plan::Plan;

/// The phases, in order; each is announced once by the real run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    StopRoots = 1,
    Pause = 2,
    ServingApps = 3,
    Gateways = 4,
    Volumes = 5,
    Apps = 6,
}

impl Phase {
    pub const COUNT: u8 = 6;

    pub fn title(self, keep_pvcs: bool) -> &'static str {
        match self {
            Phase::StopRoots => "stop the root apps from re-creating their children",
            Phase::Pause => "pause models",
            Phase::ServingApps => "delete the manual serving apps",
            Phase::Gateways => "delete Gateways and wait for their load balancers",
            Phase::Volumes if keep_pvcs => "keep PVCs (--keep-pvcs)",
            Phase::Volumes => "delete PVCs and wait for their volumes",
            Phase::Apps => "delete Applications in reverse wave order",
        }
    }
}

/// What one step does. Every namespaced object carries its namespace (Applications and the AppProject:
/// Argo CD's, from the catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Turn a root app's auto-sync off so it stops re-creating its children.
    DisableAutoSync {
        namespace: String,
        app: String,
    },
    /// Pause a model (KServe stop annotation, raw vLLM scaled to 0).
    Pause {
        model: String,
        namespace: String,
    },
    /// `--keep-pvcs`: annotate the claim `Delete=false` so Argo CD keeps it when its app goes.
    ProtectPvc {
        namespace: String,
        name: String,
    },
    DeleteApp {
        namespace: String,
        name: String,
    },
    DeleteGateway {
        namespace: String,
        name: String,
    },
    /// Wait until no LoadBalancer Service is left in the managed namespaces.
    AwaitLoadBalancers,
    DeletePvc {
        namespace: String,
        name: String,
    },
    /// Wait until the volumes of the deleted claims are gone (Retain ones are left to the audit).
    AwaitVolumes,
    DeleteProject {
        namespace: String,
        name: String,
    },
}

/// One step of the teardown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub phase: Phase,
    pub action: Action,
}

impl Step {
    /// (what, kind, namespace, name) as printed by `--dry-run`.
    pub fn describe(&self) -> (&'static str, &'static str, &str, &str) {
        match &self.action {
            Action::DisableAutoSync { namespace, app } => {
                ("disable auto-sync", "Application", namespace, app)
            }
            Action::Pause { model, namespace } => ("pause", "model", namespace, model),
            Action::ProtectPvc { namespace, name } => {
                ("keep PVC", "PersistentVolumeClaim", namespace, name)
            }
            Action::DeleteApp { namespace, name } if self.phase == Phase::ServingApps => {
                ("delete serving app", "Application", namespace, name)
            }
            Action::DeleteApp { namespace, name } => {
                ("delete Application", "Application", namespace, name)
            }
            Action::DeleteGateway { namespace, name } => {
                ("delete Gateway", "Gateway", namespace, name)
            }
            Action::AwaitLoadBalancers => {
                ("wait until released", "Service", "*", "type LoadBalancer")
            }
            Action::DeletePvc { namespace, name } => {
                ("delete PVC", "PersistentVolumeClaim", namespace, name)
            }
            Action::AwaitVolumes => (
                "wait until released",
                "PersistentVolume",
                "",
                "of the deleted PVCs",
            ),
            Action::DeleteProject { namespace, name } => {
                ("delete AppProject", "AppProject", namespace, name)
            }
        }
    }

    /// The claims whose volumes [`Action::AwaitVolumes`] waits for: every PVC deleted in `steps`.
    pub fn deleted_claims(steps: &[Step]) -> BTreeSet<(String, String)> {
        steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::DeletePvc { namespace, name } => Some((namespace.clone(), name.clone())),
                _ => None,
            })
            .collect()
    }
}

/// `--dry-run -o json|yaml` shape: `{step, kind, namespace, name}` with `step` = "N what".
impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (what, kind, namespace, name) = self.describe();
        let mut st = s.serialize_struct("Step", 4)?;
        st.serialize_field("step", &format!("{} {what}", self.phase as u8))?;
        st.serialize_field("kind", kind)?;
        st.serialize_field("namespace", namespace)?;
        st.serialize_field("name", name)?;
        st.end()
    }
}

/// What exists on the cluster now: the input of [`build`] besides the plan.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Applications in Argo CD's namespace, by name.
    pub apps: BTreeSet<String>,
    /// Models whose serving object exists.
    pub deployed_models: BTreeSet<String>,
    /// Gateways platform manages (namespace, name).
    pub gateways: Vec<(String, String)>,
    /// PVCs platform manages (namespace, name).
    pub pvcs: Vec<(String, String)>,
    /// The environment's AppProject exists.
    pub project: bool,
}

/// The ordered steps for `plan` given what exists. Pure: the same inputs give the same list.
pub fn build(plan: &Plan, found: &Found, opts: &Options) -> Vec<Step> {
    let (serving, catalog, roots) = app_order(plan);
    let argo = || plan.argocd_namespace.clone();
    let mut steps = Vec::new();
    let mut push = |phase, action| steps.push(Step { phase, action });
    for app in roots.iter().filter(|r| found.apps.contains(*r)) {
        push(
            Phase::StopRoots,
            Action::DisableAutoSync {
                namespace: argo(),
                app: app.clone(),
            },
        );
    }
    for m in plan
        .models
        .iter()
        .filter(|m| found.deployed_models.contains(&m.name))
    {
        let (model, namespace) = (m.name.clone(), m.namespace.clone());
        push(Phase::Pause, Action::Pause { model, namespace });
    }
    if opts.keep_pvcs {
        for (namespace, name) in &found.pvcs {
            let (namespace, name) = (namespace.clone(), name.clone());
            push(Phase::Pause, Action::ProtectPvc { namespace, name });
        }
    }
    for name in serving.iter().filter(|a| found.apps.contains(*a)) {
        let (namespace, name) = (argo(), name.clone());
        push(Phase::ServingApps, Action::DeleteApp { namespace, name });
    }
    for (namespace, name) in &found.gateways {
        let (namespace, name) = (namespace.clone(), name.clone());
        push(Phase::Gateways, Action::DeleteGateway { namespace, name });
    }
    push(Phase::Gateways, Action::AwaitLoadBalancers);
    if !opts.keep_pvcs {
        for (namespace, name) in &found.pvcs {
            let (namespace, name) = (namespace.clone(), name.clone());
            push(Phase::Volumes, Action::DeletePvc { namespace, name });
        }
        if !found.pvcs.is_empty() {
            push(Phase::Volumes, Action::AwaitVolumes);
        }
    }
    for name in catalog
        .iter()
        .chain(&roots)
        .filter(|a| found.apps.contains(*a))
    {
        let (namespace, name) = (argo(), name.clone());
        push(Phase::Apps, Action::DeleteApp { namespace, name });
    }
    if found.project {
        push(
            Phase::Apps,
            Action::DeleteProject {
                namespace: argo(),
                name: plan.env.clone(),
            },
        );
    }
    steps
}

/// Read what exists now.
pub async fn found(client: &Client, plan: &Plan) -> Result<Found, ClusterError> {
    let argo = kinds::APPLICATION.api(client, &plan.argocd_namespace);
    let lp = kube::api::ListParams::default();
    let apps = client
        .retry(|| argo.list(&lp))
        .await
        .map_err(|e| ClusterError::api("listing Applications", e))?
        .items
        .iter()
        .map(name_of)
        .collect();
    let mut deployed_models = BTreeSet::new();
    for m in &plan.models {
        if pause::state(client, m).await?.is_some() {
            deployed_models.insert(m.name.clone());
        }
    }
    let (mut gateways, mut pvcs) = (Vec::new(), Vec::new());
    for ns in managed_namespaces(plan) {
        for g in list(client, kinds::GATEWAY, &ns, Some(&managed_selector())).await? {
            gateways.push((ns.clone(), name_of(&g)));
        }
        for p in list(client, kinds::PVC, &ns, Some(&managed_selector())).await? {
            pvcs.push((ns.clone(), name_of(&p)));
        }
    }
    let projects = kinds::APP_PROJECT.api(client, &plan.argocd_namespace);
    let project = client
        .retry(|| projects.get_opt(&plan.env))
        .await
        .map_err(|e| ClusterError::api("reading the AppProject", e))?
        .is_some();
    Ok(Found {
        apps,
        deployed_models,
        gateways,
        pvcs,
        project,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn opts(keep_pvcs: bool) -> Options {
        Options {
            keep_pvcs,
            strip_finalizers: false,
            finalizer_timeout: Duration::from_secs(1),
            release_timeout: Duration::from_secs(1),
        }
    }

    /// The shipped ai-dev environment planned with the widest profile.
    fn plan() -> Plan {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (file, config) = crate::config::load(repo, "ai-dev").expect("shipped config loads");
        let templates = crate::render::Templates::load(repo).expect("templates load");
        let catalog = crate::catalog::Catalog::load(repo, &templates.names()).expect("catalog");
        let widest = catalog.widest_profile().map(|p| p.name.clone());
        Plan::build(&config, "ai-dev", &file, &catalog, widest.as_deref()).expect("plan builds")
    }

    /// Everything the plan renders exists.
    fn everything(plan: &Plan) -> Found {
        let (s, c, r) = app_order(plan);
        let ns = plan.models[0].namespace.clone();
        Found {
            apps: s.into_iter().chain(c).chain(r).collect(),
            deployed_models: plan.models.iter().map(|m| m.name.clone()).collect(),
            gateways: vec![(ns.clone(), "gw".into())],
            pvcs: plan
                .models
                .iter()
                .map(|m| (m.namespace.clone(), m.model.pvc_name()))
                .collect(),
            project: true,
        }
    }

    #[test]
    fn phases_come_in_order_and_serving_apps_go_before_gateways_and_claims() {
        let plan = plan();
        let steps = build(&plan, &everything(&plan), &opts(false));
        let phases: Vec<Phase> = steps.iter().map(|s| s.phase).collect();
        let mut sorted = phases.clone();
        sorted.sort();
        assert_eq!(phases, sorted, "{steps:#?}");
        for p in [
            Phase::StopRoots,
            Phase::Pause,
            Phase::ServingApps,
            Phase::Gateways,
            Phase::Volumes,
            Phase::Apps,
        ] {
            assert!(phases.contains(&p), "no {p:?} step in {steps:#?}");
        }
        assert_eq!(
            steps.last().map(|s| &s.action),
            Some(&Action::DeleteProject {
                namespace: "argocd".into(),
                name: "ai-dev".into()
            })
        );
        // The roots go after every child app.
        let (_, catalog, roots) = app_order(&plan);
        let deleted: Vec<&str> = steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::DeleteApp { name, .. } if s.phase == Phase::Apps => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let expected: Vec<&str> = catalog.iter().chain(&roots).map(String::as_str).collect();
        assert_eq!(deleted, expected);
    }

    #[test]
    fn keep_pvcs_protects_the_claims_and_deletes_none() {
        let plan = plan();
        let steps = build(&plan, &everything(&plan), &opts(true));
        assert!(steps
            .iter()
            .any(|s| matches!(s.action, Action::ProtectPvc { .. })));
        assert!(!steps
            .iter()
            .any(|s| matches!(s.action, Action::DeletePvc { .. } | Action::AwaitVolumes)));
        assert!(Step::deleted_claims(&steps).is_empty());
    }

    #[test]
    fn on_an_empty_cluster_only_the_load_balancer_check_remains() {
        let plan = plan();
        let steps = build(&plan, &Found::default(), &opts(false));
        assert_eq!(
            steps,
            vec![Step {
                phase: Phase::Gateways,
                action: Action::AwaitLoadBalancers
            }]
        );
    }

    #[test]
    fn only_what_exists_is_touched() {
        let plan = plan();
        let model = plan.models[0].clone();
        let found = Found {
            apps: [model.app.clone()].into(),
            deployed_models: [model.name.clone()].into(),
            ..Found::default()
        };
        let steps = build(&plan, &found, &opts(false));
        let json = serde_json::to_value(&steps).expect("serializes");
        assert_eq!(json[0]["step"], "2 pause");
        assert_eq!(json[0]["name"], model.name.as_str());
        assert_eq!(json[1]["step"], "3 delete serving app");
        assert_eq!(json[1]["name"], model.app.as_str());
        assert_eq!(json.as_array().map(Vec::len), Some(3), "{json:#}");
    }
}
