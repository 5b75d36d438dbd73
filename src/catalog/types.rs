//! The catalog's data model: layers, profiles, groups with their Argo CD apps, serving layers, presets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `catalog/layers.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayersFile {
    /// Layers in apply order.
    pub layers: Vec<String>,
    /// Profiles, narrowest first; each must contain every layer of the one before it.
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub layers: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `catalog/groups.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsFile {
    pub groups: Vec<Group>,
}

/// A capability group: the unit a feature flag turns on or off.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    pub layer: String,
    /// Always enabled.
    #[serde(default)]
    pub core: bool,
    /// How an optional group is switched on.
    #[serde(default)]
    pub gate: Option<Gate>,
    /// Groups that must be enabled for this one to work.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Layers that must be in the profile for this one to work.
    #[serde(default)]
    pub requires_layers: Vec<String>,
    #[serde(default)]
    pub needs_domain: bool,
    /// GPUs the group needs when enabled (warned about: it costs money).
    #[serde(default)]
    pub min_gpus: u32,
    /// Shown next to the group in warnings and `plan`.
    #[serde(default)]
    pub hint: Option<String>,
    #[serde(default)]
    pub apps: Vec<AppSpec>,
}

/// `feature: NAME` (+ `default`) or `config: dotted.key` + `equals: VALUE`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    #[serde(default)]
    pub feature: Option<String>,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub config: Option<String>,
    #[serde(default)]
    pub equals: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    #[default]
    Auto,
    Manual,
}

/// One Argo CD Application of a group.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppSpec {
    pub name: String,
    pub wave: i32,
    pub namespace: String,
    pub source: Source,
    /// Helm values file in the GitOps repo (rendered as a second `$values` source).
    #[serde(default)]
    pub values_file: Option<String>,
    /// Inline Helm values (rendered as `helm.valuesObject`).
    #[serde(default)]
    pub values: Option<serde_json::Value>,
    #[serde(default)]
    pub sync: SyncMode,
    #[serde(default)]
    pub sync_options: Vec<String>,
    #[serde(default)]
    pub ignore_differences: Vec<IgnoreDifference>,
    #[serde(default)]
    pub retry: Option<Retry>,
    /// Cluster-scoped kinds the app creates (CRDs, ClusterRoles, webhooks, …): the AppProject's
    /// `clusterResourceWhitelist` is the union over the enabled apps, so nothing else (a model app
    /// above all) can create cluster-scoped objects.
    #[serde(default)]
    pub cluster_resources: Vec<GroupKind>,
    /// CustomResourceDefinitions the app installs, by name (`gateways.gateway.networking.k8s.io`):
    /// `doctor` expects them once the app has synced, and names the app that installs a missing one.
    #[serde(default)]
    pub crds: Vec<String>,
    /// Deleting the Application leaves its resources in place (no resources finalizer): Argo CD's
    /// own Application, whose deletion must not uninstall Argo CD.
    #[serde(default)]
    pub keep_resources: bool,
    /// An automated app's `selfHeal` (default true). The routing app has it off: its routes'
    /// live weights belong to `platform move`, and only a commit may change them.
    #[serde(default = "default_self_heal")]
    pub self_heal: bool,
}

/// An API group and kind (`group: ""` is the core group).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupKind {
    #[serde(default)]
    pub group: String,
    pub kind: String,
}

/// Exactly one of `helm`, `git`, `path` or `objects`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    #[serde(default)]
    pub helm: Option<HelmSource>,
    #[serde(default)]
    pub git: Option<GitSource>,
    /// A directory of the GitOps repository itself.
    #[serde(default)]
    pub path: Option<String>,
    /// A file of the catalog (relative to `catalog/`, e.g. `objects/priority-classes.yaml`) holding
    /// plain Kubernetes objects: `root` writes it to `clusters/<env>/objects/<app>/` and the app
    /// syncs that directory. Ejected with the catalog, so the objects are the user's to change.
    #[serde(default)]
    pub objects: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmSource {
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    pub chart: String,
    pub version: String,
    #[serde(default)]
    pub release_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitSource {
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    pub path: String,
    pub target_revision: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IgnoreDifference {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retry {
    pub limit: i64,
    #[serde(default)]
    pub backoff: Option<Backoff>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backoff {
    pub duration: String,
    pub factor: i64,
    pub max_duration: String,
}

/// `catalog/serving.yaml`: how each serving layer's models are rendered and synced.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServingFile {
    pub serving_layers: BTreeMap<String, ServingLayerSpec>,
    /// The stable endpoint of every model: one shared Gateway, one HTTPRoute per model.
    #[serde(default)]
    pub routing: Option<RoutingSpec>,
}

fn default_self_heal() -> bool {
    true
}

/// `routing:` in catalog/serving.yaml: the shared inference Gateway every model is reached
/// through at one URL (`http://<gateway>/<pathPrefix>/<model>/v1`), whatever its layer. One
/// HTTPRoute per model points at the model's backend on its current layer (both layers, weighted,
/// during `platform move`); ReferenceGrants admit the routes into the layers' namespaces.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoutingSpec {
    /// The catalog group whose gate enables the routes.
    pub group: String,
    /// Where the Gateway and the HTTPRoutes live.
    pub namespace: String,
    pub wave: i32,
    pub gateway_name: String,
    /// The first path segment of every model's URL (`/models`).
    pub path_prefix: String,
    /// Templates rendered once (Gateway, ReferenceGrants) into clusters/<env>/serving/routing/.
    pub templates: Vec<String>,
    /// The template rendered once per routed model (its HTTPRoute).
    pub route_template: String,
    #[serde(default)]
    pub sync: SyncMode,
    #[serde(default)]
    pub sync_options: Vec<String>,
    #[serde(default)]
    pub ignore_differences: Vec<IgnoreDifference>,
    /// Argo CD's `selfHeal` for the routing app (see [`AppSpec::self_heal`]).
    #[serde(default = "default_self_heal")]
    pub self_heal: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServingLayerSpec {
    /// The catalog group whose gate enables this serving layer.
    pub group: String,
    pub namespace: String,
    pub wave: i32,
    /// Templates rendered per model, one file each, in this order.
    pub templates: Vec<String>,
    /// Templates rendered once per serving layer (namespace, Gateway) when it has a model.
    #[serde(default)]
    pub shared_templates: Vec<String>,
    /// Sync wave of the shared objects' Application (before the models').
    #[serde(default)]
    pub shared_wave: i32,
    /// Name of the layer's shared Gateway.
    #[serde(default)]
    pub gateway_name: Option<String>,
    #[serde(default)]
    pub sync: SyncMode,
    #[serde(default)]
    pub sync_options: Vec<String>,
    #[serde(default)]
    pub ignore_differences: Vec<IgnoreDifference>,
    #[serde(default)]
    pub retry: Option<Retry>,
}

/// `catalog/presets.yaml`: runtime presets models refer to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PresetsFile {
    pub presets: BTreeMap<String, Preset>,
    /// GPU types `platform fit` knows, by name (`--gpu NAME`).
    #[serde(default)]
    pub gpus: BTreeMap<String, GpuType>,
}

/// A GPU type: the memory `nvidia-smi` reports, and the `nvidia.com/gpu.product` label values
/// (GPU feature discovery) that name it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GpuType {
    /// Total memory, as a quantity (`23034Mi`).
    pub memory: crate::config::Quantity,
    #[serde(default)]
    pub products: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Gpu,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Preset {
    /// The engine the preset runs (`vllm` by default). A non-vLLM preset is a KServe
    /// ClusterServingRuntime named `platform-<preset>`, rendered for the models that use it.
    #[serde(default)]
    pub runtime: crate::config::RuntimeName,
    /// `registry/repo:tag`.
    pub image: String,
    /// `sha256:…` the tag resolved to; the rendered image is `image@digest`.
    #[serde(default)]
    pub digest: Option<String>,
    pub device: Device,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Requests and limits of a model that sets none (a pod without them is the first to be
    /// OOM-killed and lets the node overcommit). Must respect the layer gotchas itself (e.g. an
    /// explicit cpu limit >= the cpu request for KServe).
    #[serde(default)]
    pub resources: Option<crate::config::Resources>,
}

impl Preset {
    /// The resources a model (or its prefill) runs with: its own, or this preset's when it sets none.
    /// Validation and rendering both go through here, so what is checked is what is rendered.
    pub fn resources_for<'a>(
        &'a self,
        own: &'a crate::config::Resources,
    ) -> &'a crate::config::Resources {
        if own.requests.is_empty() && own.limits.is_empty() {
            self.resources.as_ref().unwrap_or(own)
        } else {
            own
        }
    }

    /// The image reference rendered into manifests (digest-pinned when a digest is known).
    pub fn image_ref(&self) -> String {
        match &self.digest {
            Some(d) if !d.is_empty() => format!("{}@{}", self.image, d),
            _ => self.image.clone(),
        }
    }
}

impl Source {
    /// The repository URL Argo CD fetches from (None for a path in the GitOps repo).
    pub fn repo_url(&self) -> Option<&str> {
        if let Some(h) = &self.helm {
            Some(&h.repo_url)
        } else {
            self.git.as_ref().map(|g| g.repo_url.as_str())
        }
    }
}
