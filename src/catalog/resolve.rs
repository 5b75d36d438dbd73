//! config × catalog → which groups are on (and why), and the `Plan` for a profile.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::model_checks;
use super::{AppSpec, Catalog, Group, GroupKind, Preset, Profile, ServingLayerSpec, SyncMode};
use crate::config::{EnvConfig, Model};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::layout;

/// One catalog group after the config's gates were applied.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedGroup {
    pub name: String,
    pub layer: String,
    pub enabled: bool,
    /// Why it is on or off, e.g. `features.kserve: true` or `default (features.llm-d absent)`.
    pub reason: String,
    /// Where its apps are rendered: `clusters/<env>/apps/<layer>/<group>`.
    pub catalog_path: String,
}

/// Apply the config's feature flags and config-value gates to every catalog group, in catalog order.
pub fn resolve_groups(cfg: &EnvConfig, env: &str, catalog: &Catalog) -> Vec<ResolvedGroup> {
    let cfg_json = serde_json::to_value(cfg).unwrap_or_default();
    catalog
        .groups
        .iter()
        .map(|g| {
            let (enabled, reason) = gate_state(g, cfg, &cfg_json);
            ResolvedGroup {
                name: g.name.clone(),
                layer: g.layer.clone(),
                enabled,
                reason,
                catalog_path: layout::group_path(env, &g.layer, &g.name),
            }
        })
        .collect()
}

fn gate_state(g: &Group, cfg: &EnvConfig, cfg_json: &serde_json::Value) -> (bool, String) {
    let Some(gate) = &g.gate else {
        return (true, "core (always on)".to_string());
    };
    if let Some(feature) = &gate.feature {
        return match cfg.features.get(feature) {
            Some(v) => (*v, format!("features.{feature}: {v}")),
            None => (
                gate.default,
                format!("default {} (features.{feature} not set)", gate.default),
            ),
        };
    }
    let key = gate.config.as_deref().unwrap_or_default();
    let want = gate.equals.as_deref().unwrap_or_default();
    let got = lookup(cfg_json, key);
    let on = got.as_deref() == Some(want);
    let shown = got.unwrap_or_else(|| "unset".to_string());
    (
        on,
        format!("{key} is {shown} ({} {want})", if on { "==" } else { "!=" }),
    )
}

/// A dotted key (`gpu_stack`, `dns.provider`) of the config, as a string.
fn lookup(v: &serde_json::Value, key: &str) -> Option<String> {
    let mut cur = v;
    for part in key.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Warnings about the resolved groups: domain needed, requirement disabled, GPUs needed, ignored flags,
/// unknown feature names (errors). `requires_is_error` turns a disabled requirement into an error
/// (`root`, `lint`); `resolve-groups` keeps it a warning like the platform it replaces.
pub fn group_diagnostics(
    cfg: &EnvConfig,
    cfg_file: &Path,
    catalog: &Catalog,
    groups: &[ResolvedGroup],
    requires_is_error: bool,
) -> Vec<Diagnostic> {
    let mut out = feature_flag_diagnostics(cfg, cfg_file, catalog);
    out.extend(enabled_group_diagnostics(
        &cfg.domain,
        cfg_file,
        catalog,
        groups,
        requires_is_error,
    ));
    out
}

/// The config's feature flags that gate no group: a group switched by a config value (warning:
/// ignored), or an unknown name (error, with the closest known one).
fn feature_flag_diagnostics(
    cfg: &EnvConfig,
    cfg_file: &Path,
    catalog: &Catalog,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let features = catalog.feature_names();
    for name in cfg.features.keys() {
        if features.contains(name.as_str()) {
            continue;
        }
        let field = format!("features.{name}");
        if let Some(gate) = catalog
            .group(name)
            .and_then(|g| g.gate.as_ref())
            .filter(|x| x.config.is_some())
        {
            out.push(
                Diagnostic::warning(format!(
                    "ignored: group `{name}` is enabled by `{}: {}`, not by a feature flag",
                    gate.config.as_deref().unwrap_or_default(),
                    gate.equals.as_deref().unwrap_or_default()
                ))
                .file(cfg_file)
                .field(field),
            );
            continue;
        }
        let d = Diagnostic::error(format!("unknown feature `{name}`"))
            .file(cfg_file)
            .field(field);
        out.push(match did_you_mean(name, features.iter().copied()) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!(
                "features the catalog knows: {}",
                features.iter().copied().collect::<Vec<_>>().join(", ")
            )),
        });
    }
    out
}

/// What each enabled group needs and may lack: a domain (the config's is `domain`), the groups it
/// requires (an error when `requires_is_error`), GPUs.
fn enabled_group_diagnostics(
    domain: &str,
    cfg_file: &Path,
    catalog: &Catalog,
    groups: &[ResolvedGroup],
    requires_is_error: bool,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let enabled: BTreeSet<&str> = groups
        .iter()
        .filter(|g| g.enabled)
        .map(|g| g.name.as_str())
        .collect();
    for rg in groups.iter().filter(|g| g.enabled) {
        let Some(g) = catalog.group(&rg.name) else {
            continue;
        };
        let hint = g
            .hint
            .as_deref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        if g.needs_domain && domain.is_empty() {
            out.push(
                Diagnostic::warning(format!(
                    "group `{}` needs a domain but `domain` is empty{hint}",
                    g.name
                ))
                .file(cfg_file)
                .field("domain")
                .help("set `domain:` or disable the group"),
            );
        }
        for r in &g.requires {
            if !enabled.contains(r.as_str()) {
                let msg = format!(
                    "group `{}` requires group `{r}`, which is disabled{hint}",
                    g.name
                );
                let d = if requires_is_error {
                    Diagnostic::error(msg)
                } else {
                    Diagnostic::warning(msg)
                };
                out.push(d.file(cfg_file).field(gate_field(catalog, r)).help(format!(
                    "enable `{r}` ({}), or disable `{}`",
                    gate_field(catalog, r),
                    g.name
                )));
            }
        }
        if g.min_gpus > 0 {
            out.push(
                Diagnostic::warning(format!(
                    "group `{}` needs at least {} GPU(s){hint}; its model apps stay manual-sync (the cost gate)",
                    g.name, g.min_gpus
                ))
                .file(cfg_file)
                .field(gate_field(catalog, &g.name)),
            );
        }
    }
    out
}

/// The config field that switches a group (for messages).
fn gate_field(catalog: &Catalog, group: &str) -> String {
    match catalog.group(group).and_then(|g| g.gate.as_ref()) {
        Some(gate) if gate.feature.is_some() => {
            format!("features.{}", gate.feature.as_deref().unwrap_or_default())
        }
        Some(gate) => gate.config.clone().unwrap_or_default(),
        None => format!("group {group}"),
    }
}

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
    /// Warnings (errors stop `build`).
    pub diagnostics: Vec<Diagnostic>,
    /// The namespace Argo CD lives in (the catalog's `argocd.namespace`): the AppProject and every
    /// Application are there.
    #[serde(skip)]
    pub argocd_namespace: String,
    #[serde(skip)]
    pub config: EnvConfig,
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
    /// One model's serving manifests.
    Model,
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
    pub staged: bool,
    #[serde(skip)]
    pub model: Model,
    #[serde(skip)]
    pub spec: ServingLayerSpec,
    #[serde(skip)]
    pub preset_spec: Preset,
}

impl PlannedModel {
    /// The descriptor of the serving layer the model is on (the seam: everything about it).
    pub fn layer(&self) -> &'static dyn crate::serving::Layer {
        crate::serving::layer(self.model.layer)
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
        diags.extend(model_checks::validate(cfg, cfg_file, catalog, &resolved));
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
        for a in apps.iter().filter(|a| a.group == super::argocd::GROUP) {
            project_cluster_resources.extend(a.spec.cluster_resources.iter().cloned());
        }
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
    for m in &cfg.models {
        let layer = m.layer.as_str();
        let (Some(spec), Some(preset)) =
            (catalog.serving.get(layer), catalog.presets.get(&m.preset))
        else {
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
        apps.push(PlannedApp {
            name: m.name.clone(),
            kind: AppKind::Model,
            group: spec.group.clone(),
            layer: group.resolved.layer.clone(),
            wave: spec.wave,
            namespace: namespace.clone(),
            sync: spec.sync,
            spec: serving_app_spec(&m.name, spec, &namespace, spec.wave),
            serving_layer: Some(layer.to_string()),
        });
        models.push(PlannedModel {
            name: m.name.clone(),
            serving_layer: layer.to_string(),
            namespace,
            app: m.name.clone(),
            group: spec.group.clone(),
            preset: m.preset.clone(),
            image: preset.image_ref(),
            gpus: m.gpus,
            replicas: m.replicas,
            staged: m.storage.staged,
            model: m.clone(),
            spec: spec.clone(),
            preset_spec: preset.clone(),
        });
    }
    for layer in &layers_with_models {
        apps.extend(shared_app(catalog, groups, layer));
    }
    models
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
                    "two Argo CD Applications would be named `{}` (a {:?} app of group `{}` and a {:?} app of group `{}`)",
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
    for m in &cfg.models {
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
    spec: &super::argocd::ArgoCdSpec,
    hand_over: &super::argocd::HandOverApp,
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
        source: super::Source {
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
    };
    PlannedApp {
        name: app.name.clone(),
        kind: AppKind::Catalog,
        group: super::argocd::GROUP.to_string(),
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
        source: super::Source::default(),
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
    }
}
