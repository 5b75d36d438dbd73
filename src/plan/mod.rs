//! config × catalog → the `Plan`: every group, Argo CD Application (by layer and wave) and model of
//! one environment and profile, checked (`checks`: the serving layers' and runtimes' gotchas). It is
//! the type every command consumes: render turns it into files, the actions drive the cluster with
//! it.

pub mod checks;
pub mod scaling;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::catalog::resolve::{group_diagnostics, resolve_groups, ResolvedGroup};
use crate::catalog::{AppSpec, Catalog, GroupKind, Preset, Profile, ServingLayerSpec, SyncMode};
use crate::config::{EnvConfig, Model};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::layout;

/// Everything `root` renders for one environment and profile.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub env: String,
    pub profile: Profile,
    /// Layers of the catalog that are outside the profile (left untouched on disk).
    pub other_layers: Vec<String>,
    pub groups: Vec<PlannedGroup>,
    /// Argo CD Applications, in bring-up order (layer, wave, name).
    pub apps: Vec<PlannedApp>,
    pub models: Vec<PlannedModel>,
    /// Every repository and destination namespace of the enabled groups and models in *any* layer:
    /// the AppProject must keep allowing a wider profile's apps when a narrower one is rendered.
    pub project_repos: BTreeSet<String>,
    pub project_namespaces: BTreeSet<String>,
    /// The AppProject's clusterResourceWhitelist: Namespace (CreateNamespace, layer namespaces) and
    /// the cluster-scoped kinds the enabled apps declare.
    pub project_cluster_resources: BTreeSet<GroupKind>,
    /// The models' stable endpoint, when the plan has routed models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<PlannedRouting>,
    /// Warnings (errors stop `build`).
    pub diagnostics: Vec<Diagnostic>,
    /// The namespace Argo CD lives in (the catalog's `argocd.namespace`): the AppProject and every
    /// Application are there.
    #[serde(skip)]
    pub argocd_namespace: String,
    #[serde(skip)]
    pub config: EnvConfig,
}

/// The shared Gateway every routed model is reached through, and where its routes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRouting {
    pub namespace: String,
    pub gateway: String,
    pub path_prefix: String,
}

impl PlannedRouting {
    /// The path a model is served under (`/models/<model>`); its OpenAI base is this + `/v1`.
    pub fn path(&self, model: &str) -> String {
        format!("{}/{model}", self.path_prefix.trim_end_matches('/'))
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedGroup {
    #[serde(flatten)]
    pub resolved: ResolvedGroup,
    /// Its layer is in the profile.
    pub in_profile: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// From a catalog group.
    Catalog,
    /// Shared objects of a serving layer (namespace, Gateway).
    Serving,
    /// The models' stable endpoint: the inference Gateway and one HTTPRoute per model.
    Routing,
    /// One model's serving manifests.
    Model,
}

impl std::fmt::Display for AppKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AppKind::Catalog => "Catalog",
            AppKind::Serving => "Serving",
            AppKind::Routing => "Routing",
            AppKind::Model => "Model",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedApp {
    pub name: String,
    pub kind: AppKind,
    pub group: String,
    pub layer: String,
    pub wave: i32,
    pub namespace: String,
    pub sync: SyncMode,
    /// Catalog apps: the spec. Serving/model apps: a spec synthesised from the serving layer.
    #[serde(skip)]
    pub spec: AppSpec,
    /// Serving/model apps: the serving layer (raw-vllm, kserve, llm-d).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_layer: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedModel {
    pub name: String,
    pub serving_layer: String,
    pub namespace: String,
    pub app: String,
    pub group: String,
    pub preset: String,
    pub image: String,
    pub gpus: u32,
    pub replicas: u32,
    /// The autoscaling range, when the model autoscales (`replicas` is then where it starts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<crate::config::Autoscaling>,
    pub staged: bool,
    /// During `platform move`, on the model's own layer: the layer it is moving to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moving_to: Option<String>,
    /// During `platform move`, the declaration on the destination layer: the layer it comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moving_from: Option<String>,
    /// Whether the model has a stable route: the catalog's routing group is on and its layer
    /// routes it (llm-d's router owns its own route). Only the model's own declaration has one;
    /// during a move it also carries the destination.
    pub routed: bool,
    #[serde(skip)]
    pub model: Model,
    #[serde(skip)]
    pub spec: Arc<ServingLayerSpec>,
    #[serde(skip)]
    pub preset_spec: Arc<Preset>,
}

impl PlannedModel {
    /// The descriptor of the serving layer the model is on (the seam: everything about it).
    pub fn layer(&self) -> &'static dyn crate::serving::Layer {
        crate::serving::layer(self.model.layer)
    }

    /// The autoscaler object the model's layer renders beside its workload (raw vLLM's HPA or
    /// KEDA ScaledObject), when the model autoscales there.
    pub fn autoscaler(&self) -> Option<crate::serving::Autoscaler> {
        self.model
            .autoscaling
            .as_ref()
            .and_then(|a| self.layer().autoscaler(&self.name, a))
    }

    /// How the serving pods get the weights (the seam decides).
    pub fn weights(&self) -> crate::serving::Weights {
        crate::serving::weights::of(&self.model)
    }

    /// Whether KServe's storage initializer reads the weights from `s3://` (the model then has a
    /// ServiceAccount carrying the endpoint and the credentials Secret's name).
    pub fn reads_s3(&self) -> bool {
        matches!(self.weights(), crate::serving::Weights::Storage(u) if u.starts_with("s3://"))
    }

    /// The namespace of the stable route's Gateway when the route sends this declaration's
    /// traffic to it: the plan routes, and its layer has a route backend (also the destination
    /// of a move, which the route carries until `move` shifts it). Its NetworkPolicy admits that
    /// namespace and its app carries the ReferenceGrant.
    pub fn route_from<'p>(&self, plan: &'p Plan) -> Option<&'p str> {
        plan.routing
            .as_ref()
            .filter(|_| self.layer().route_backend(&self.name).is_some())
            .map(|r| r.namespace.as_str())
    }

    /// Whether the model has a PVC of its own.
    pub fn has_pvc(&self) -> bool {
        self.weights().needs_pvc()
    }
}

/// One step of the bring-up: the apps of one (layer, wave), in plan order.
pub type Stage<'p> = (String, i32, Vec<&'p PlannedApp>);

impl Plan {
    /// The apps grouped by (layer, wave) in bring-up order (`plan.apps` is sorted that way).
    pub fn stages(&self) -> Vec<Stage<'_>> {
        let mut out: Vec<Stage<'_>> = Vec::new();
        for a in &self.apps {
            match out.last_mut() {
                Some((l, w, v)) if *l == a.layer && *w == a.wave => v.push(a),
                _ => out.push((a.layer.clone(), a.wave, vec![a])),
            }
        }
        out
    }

    /// Validate the config against the catalog and plan `profile` (the config's `layerProfile`, else
    /// the widest profile, when None). Errors come back together.
    pub fn build(
        cfg: &EnvConfig,
        env: &str,
        cfg_file: &Path,
        catalog: &Catalog,
        profile: Option<&str>,
    ) -> Result<Plan, Diagnostics> {
        let profile = pick_profile(cfg, cfg_file, catalog, profile)?;
        let resolved = resolve_groups(cfg, env, catalog);
        let mut diags = group_diagnostics(cfg, cfg_file, catalog, &resolved, true);
        diags.extend(checks::validate(cfg, cfg_file, catalog, &resolved));
        let in_profile = |layer: &str| profile.layers.iter().any(|l| l == layer);
        let groups: Vec<PlannedGroup> = resolved
            .iter()
            .map(|r| PlannedGroup {
                resolved: r.clone(),
                in_profile: in_profile(&r.layer),
                hint: catalog.group(&r.name).and_then(|g| g.hint.clone()),
            })
            .collect();
        diags.extend(missing_layers(catalog, &groups, &profile));
        let mut apps = catalog_apps(catalog, &groups);
        // Argo CD managing itself (the hand-over from `platform bootstrap`), first in its layer.
        if let Some(app) = catalog.argocd.app.as_ref().filter(|a| in_profile(&a.layer)) {
            apps.push(argocd_app(&catalog.argocd, app, env));
        }
        let models = plan_models(cfg, catalog, &groups, &mut apps);
        diags.extend(duplicate_app_names(&apps, cfg_file));
        let layer_idx = |l: &str| catalog.layer_index(l).unwrap_or(usize::MAX);
        apps.sort_by(|a, b| {
            (layer_idx(&a.layer), a.wave, &a.name).cmp(&(layer_idx(&b.layer), b.wave, &b.name))
        });
        if diags.iter().any(Diagnostic::is_error) {
            diags.sort_by_key(|d| d.severity);
            return Err(Diagnostics(diags));
        }
        let other_layers = catalog
            .layers
            .iter()
            .filter(|l| !in_profile(l))
            .cloned()
            .collect();
        let (project_repos, project_namespaces, mut project_cluster_resources) =
            project_scope(cfg, catalog, &groups);
        for a in apps
            .iter()
            .filter(|a| a.group == crate::catalog::argocd::GROUP)
        {
            project_cluster_resources.extend(a.spec.cluster_resources.iter().cloned());
        }
        let routing = catalog
            .routing
            .as_ref()
            .filter(|_| apps.iter().any(|a| a.kind == AppKind::Routing))
            .map(|r| PlannedRouting {
                namespace: r.namespace.clone(),
                gateway: r.gateway_name.clone(),
                path_prefix: r.path_prefix.clone(),
            });
        Ok(Plan {
            env: env.to_string(),
            profile,
            other_layers,
            groups,
            apps,
            models,
            project_repos,
            project_namespaces,
            project_cluster_resources,
            routing,
            diagnostics: diags,
            argocd_namespace: catalog.argocd.namespace.clone(),
            config: cfg.clone(),
        })
    }
}

/// The profile to plan: `--profile`, else the config's `layerProfile`, else the catalog's widest.
fn pick_profile(
    cfg: &EnvConfig,
    cfg_file: &Path,
    catalog: &Catalog,
    profile: Option<&str>,
) -> Result<Profile, Diagnostics> {
    let profile_name = profile
        .map(str::to_string)
        .or_else(|| cfg.layer_profile.clone())
        .or_else(|| catalog.widest_profile().map(|p| p.name.clone()))
        .unwrap_or_default();
    if let Some(p) = catalog.profile(&profile_name) {
        return Ok(p.clone());
    }
    let names = catalog.profile_names();
    let d = Diagnostic::error(format!("unknown profile `{profile_name}`"));
    let d = match did_you_mean(&profile_name, names.iter().copied()) {
        Some(s) => d.help(format!(
            "did you mean `{s}`? valid profiles: {}",
            names.join(", ")
        )),
        None => d.help(format!("valid profiles: {}", names.join(", "))),
    };
    let d = if profile.is_some() {
        d.field("--profile")
    } else {
        d.file(cfg_file).field("layerProfile")
    };
    Err(Diagnostics(vec![d]))
}

/// Warnings for enabled groups of the profile that need layers the profile leaves out.
fn missing_layers(
    catalog: &Catalog,
    groups: &[PlannedGroup],
    profile: &Profile,
) -> Vec<Diagnostic> {
    let in_profile = |layer: &str| profile.layers.iter().any(|l| l == layer);
    let mut out = Vec::new();
    for g in groups.iter().filter(|g| g.resolved.enabled && g.in_profile) {
        let Some(cg) = catalog.group(&g.resolved.name) else {
            continue;
        };
        let missing: Vec<&str> = cg
            .requires_layers
            .iter()
            .filter(|l| !in_profile(l))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            out.push(
                Diagnostic::warning(format!(
                    "group `{}` needs layer(s) {} which profile `{}` does not include",
                    cg.name,
                    missing.join(", "),
                    profile.name
                ))
                .help("use a wider --profile"),
            );
        }
    }
    out
}

/// The apps of every enabled group in the profile, as the catalog declares them.
fn catalog_apps(catalog: &Catalog, groups: &[PlannedGroup]) -> Vec<PlannedApp> {
    let mut apps = Vec::new();
    for g in groups.iter().filter(|g| g.resolved.enabled && g.in_profile) {
        let Some(cg) = catalog.group(&g.resolved.name) else {
            continue;
        };
        for a in &cg.apps {
            apps.push(PlannedApp {
                name: a.name.clone(),
                kind: AppKind::Catalog,
                group: cg.name.clone(),
                layer: cg.layer.clone(),
                wave: a.wave,
                namespace: a.namespace.clone(),
                sync: a.sync,
                spec: a.clone(),
                serving_layer: None,
            });
        }
    }
    apps
}

/// Every model whose serving group is enabled and in the profile: its plan, its Application, and
/// one shared-objects Application per serving layer that has models and shared templates.
fn plan_models(
    cfg: &EnvConfig,
    catalog: &Catalog,
    groups: &[PlannedGroup],
    apps: &mut Vec<PlannedApp>,
) -> Vec<PlannedModel> {
    let mut models = Vec::new();
    let mut layers_with_models = BTreeSet::new();
    let routing_on = routing_enabled(catalog, groups);
    // The models being moved (few or none), looked through for each model: scanning every model
    // for each made planning quadratic in the number of models.
    let movers: Vec<&Model> = cfg.models.iter().filter(|c| c.move_to.is_some()).collect();
    // One copy of each layer's spec and each preset, shared by the models that use it (a copy per
    // model was 8 M instructions of a 1000-model plan, issue 24).
    let mut shared_specs: HashMap<&str, Arc<ServingLayerSpec>> = HashMap::new();
    let mut shared_presets: HashMap<&str, Arc<Preset>> = HashMap::new();
    for m in cfg.models.iter().flat_map(declarations) {
        let m = &m;
        let layer = m.layer.as_str();
        let (Some((layer_key, spec)), Some((preset_key, preset))) = (
            catalog.serving.get_key_value(layer),
            catalog.presets.get_key_value(&m.preset),
        ) else {
            continue; // reported by validate
        };
        let Some(group) = groups.iter().find(|g| g.resolved.name == spec.group) else {
            continue;
        };
        if !group.resolved.enabled || !group.in_profile {
            continue; // disabled: reported by validate; outside the profile: not rendered
        }
        layers_with_models.insert(layer);
        let namespace = m
            .namespace
            .clone()
            .unwrap_or_else(|| spec.namespace.clone());
        let app = m.app_name().to_string();
        apps.push(PlannedApp {
            name: app.clone(),
            kind: AppKind::Model,
            group: spec.group.clone(),
            layer: group.resolved.layer.clone(),
            wave: spec.wave,
            namespace: namespace.clone(),
            sync: spec.sync,
            spec: serving_app_spec(&app, spec, &namespace, spec.wave),
            serving_layer: Some(layer.to_string()),
        });
        let moving_from = movers
            .iter()
            .find(|c| c.name == m.name && c.move_to == Some(m.layer) && c.layer != m.layer)
            .map(|c| c.layer.to_string());
        models.push(PlannedModel {
            name: m.name.clone(),
            serving_layer: layer.to_string(),
            namespace,
            app,
            moving_to: m.move_to.map(|l| l.to_string()),
            routed: moving_from.is_none()
                && routing_on
                && crate::serving::layer(m.layer)
                    .route_backend(&m.name)
                    .is_some(),
            moving_from,
            group: spec.group.clone(),
            preset: m.preset.clone(),
            image: preset.image_ref(),
            gpus: m.gpus,
            replicas: m.start_replicas(),
            autoscaling: m.autoscaling.clone(),
            staged: m.staged(),
            model: m.clone(),
            spec: shared_specs
                .entry(layer_key.as_str())
                .or_insert_with(|| Arc::new(spec.clone()))
                .clone(),
            preset_spec: shared_presets
                .entry(preset_key.as_str())
                .or_insert_with(|| Arc::new(preset.clone()))
                .clone(),
        });
    }
    for layer in &layers_with_models {
        apps.extend(shared_app(catalog, groups, layer));
    }
    if models.iter().any(|pm| pm.routed) {
        apps.extend(routing_app(catalog, groups));
    }
    models
}

/// A model as config.yaml declares it, and, while it moves, once more on the layer it moves to
/// (its own Application there: `<name>-<layer>`).
fn declarations(m: &Model) -> Vec<Model> {
    let mut out = vec![m.clone()];
    if let Some(to) = m.move_to.filter(|to| *to != m.layer) {
        let mut there = m.clone();
        there.layer = to;
        there.move_to = None;
        there.app = Some(m.moving_app_name(to));
        out.push(there);
    }
    out
}

/// Whether the catalog's `routing:` group is enabled and its layer in the profile.
fn routing_enabled(catalog: &Catalog, groups: &[PlannedGroup]) -> bool {
    catalog.routing.as_ref().is_some_and(|r| {
        groups
            .iter()
            .any(|g| g.resolved.name == r.group && g.resolved.enabled && g.in_profile)
    })
}

/// The Application of the models' stable endpoint (catalog `routing:`).
fn routing_app(catalog: &Catalog, groups: &[PlannedGroup]) -> Option<PlannedApp> {
    let r = catalog.routing.as_ref()?;
    let layer = groups
        .iter()
        .find(|g| g.resolved.name == r.group)?
        .resolved
        .layer
        .clone();
    Some(PlannedApp {
        name: layout::ROUTING_APP.to_string(),
        kind: AppKind::Routing,
        group: r.group.clone(),
        layer,
        wave: r.wave,
        namespace: r.namespace.clone(),
        sync: r.sync,
        spec: AppSpec {
            name: layout::ROUTING_APP.to_string(),
            wave: r.wave,
            namespace: r.namespace.clone(),
            source: crate::catalog::Source::default(),
            values_file: None,
            values: None,
            sync: r.sync,
            sync_options: r.sync_options.clone(),
            ignore_differences: r.ignore_differences.clone(),
            retry: None,
            cluster_resources: Vec::new(),
            crds: Vec::new(),
            keep_resources: false,
            self_heal: r.self_heal,
        },
        serving_layer: None,
    })
}

/// The Application of a serving layer's shared objects, when the layer has shared templates.
fn shared_app(catalog: &Catalog, groups: &[PlannedGroup], layer: &str) -> Option<PlannedApp> {
    let spec = &catalog.serving[layer];
    if spec.shared_templates.is_empty() {
        return None;
    }
    let group = groups
        .iter()
        .find(|g| g.resolved.name == spec.group)
        .map(|g| g.resolved.layer.clone());
    let name = layout::shared_app_name(layer);
    Some(PlannedApp {
        name: name.clone(),
        kind: AppKind::Serving,
        group: spec.group.clone(),
        layer: group.unwrap_or_default(),
        wave: spec.shared_wave,
        namespace: spec.namespace.clone(),
        sync: spec.sync,
        spec: serving_app_spec(&name, spec, &spec.namespace, spec.shared_wave),
        serving_layer: Some(layer.to_string()),
    })
}

/// Application names are unique in the Argo CD namespace.
fn duplicate_app_names(apps: &[PlannedApp], cfg_file: &Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for a in apps {
        if let Some(prev) = seen.insert(a.name.as_str(), a) {
            out.push(
                Diagnostic::error(format!(
                    "two Argo CD Applications would be named `{}` (a {} app of group `{}` and a {} app of group `{}`)",
                    a.name, prev.kind, prev.group, a.kind, a.group
                ))
                .file(cfg_file)
                .help("rename the model (models[].name) so it differs from every catalog app"),
            );
        }
    }
    out
}

/// Source repositories and destination namespaces of every enabled group and model, in every layer.
fn project_scope(
    cfg: &EnvConfig,
    catalog: &Catalog,
    groups: &[PlannedGroup],
) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<GroupKind>) {
    let mut repos = BTreeSet::from([cfg.repo_url.clone()]);
    let mut cluster = BTreeSet::from([GroupKind {
        group: String::new(),
        kind: "Namespace".into(),
    }]);
    let mut namespaces = BTreeSet::from([catalog.argocd.namespace.clone()]);
    let enabled = |name: &str| {
        groups
            .iter()
            .any(|g| g.resolved.name == name && g.resolved.enabled)
    };
    for g in catalog.groups.iter().filter(|g| enabled(&g.name)) {
        for a in &g.apps {
            repos.extend(a.source.repo_url().map(str::to_string));
            namespaces.insert(a.namespace.clone());
            cluster.extend(a.cluster_resources.iter().cloned());
        }
    }
    if let Some(r) = catalog.routing.as_ref().filter(|r| enabled(&r.group)) {
        namespaces.insert(r.namespace.clone());
    }
    for m in cfg.models.iter().flat_map(declarations) {
        if let Some(spec) = catalog
            .serving
            .get(m.layer.as_str())
            .filter(|s| enabled(&s.group))
        {
            namespaces.insert(spec.namespace.clone());
            namespaces.insert(
                m.namespace
                    .clone()
                    .unwrap_or_else(|| spec.namespace.clone()),
            );
        }
    }
    (repos, namespaces, cluster)
}

/// The Application through which Argo CD manages itself: the kustomization `root` renders under
/// `clusters/<env>/argocd/`, synced automatically, its resources kept when it is deleted.
fn argocd_app(
    spec: &crate::catalog::argocd::ArgoCdSpec,
    hand_over: &crate::catalog::argocd::HandOverApp,
    env: &str,
) -> PlannedApp {
    let kind = |group: &str, kind: &str| GroupKind {
        group: group.into(),
        kind: kind.into(),
    };
    let app = AppSpec {
        name: hand_over.name.clone(),
        wave: hand_over.wave,
        namespace: spec.namespace.clone(),
        source: crate::catalog::Source {
            path: Some(layout::argocd_dir(env)),
            ..Default::default()
        },
        values_file: None,
        values: None,
        sync: SyncMode::Auto,
        // The CRDs exceed the client-side apply annotation limit; bootstrap applied them this way.
        sync_options: vec!["ServerSideApply=true".into()],
        ignore_differences: Vec::new(),
        retry: None,
        cluster_resources: vec![
            kind("apiextensions.k8s.io", "CustomResourceDefinition"),
            kind("rbac.authorization.k8s.io", "ClusterRole"),
            kind("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ],
        crds: Vec::new(),
        keep_resources: true,
        self_heal: true,
    };
    PlannedApp {
        name: app.name.clone(),
        kind: AppKind::Catalog,
        group: crate::catalog::argocd::GROUP.to_string(),
        layer: hand_over.layer.clone(),
        wave: app.wave,
        namespace: app.namespace.clone(),
        sync: app.sync,
        spec: app,
        serving_layer: None,
    }
}

/// The Argo CD app spec of a model (or a serving layer's shared objects): the GitOps repo path with the
/// serving layer's sync policy.
fn serving_app_spec(name: &str, spec: &ServingLayerSpec, namespace: &str, wave: i32) -> AppSpec {
    AppSpec {
        name: name.to_string(),
        wave,
        namespace: namespace.to_string(),
        source: crate::catalog::Source::default(),
        values_file: None,
        values: None,
        sync: spec.sync,
        sync_options: spec.sync_options.clone(),
        ignore_differences: spec.ignore_differences.clone(),
        retry: spec.retry.clone(),
        // Models and Gateways are namespaced; a layer's Namespace is whitelisted for every project.
        cluster_resources: Vec::new(),
        crds: Vec::new(),
        keep_resources: false,
        self_heal: true,
    }
}
