//! The shape of `environments/<env>/config.yaml`. Unknown keys are errors everywhere.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::quantity::Quantity;

/// One environment (one cluster). Key names follow the replaced Makefile platform where it had them
/// (`repoURL`, `repoBranch`, `gpu_stack`, `secret_backend`, …) so existing files keep working.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    pub cluster: Cluster,
    /// The GitOps repository Argo CD reads; empty: the `origin` remote of the repository.
    #[serde(rename = "repoURL", default)]
    pub repo_url: String,
    /// Branch Argo CD reads; empty: the current git branch (else `main`).
    #[serde(rename = "repoBranch", default)]
    pub repo_branch: String,
    /// Public domain; empty means no public ingress.
    #[serde(default)]
    pub domain: String,
    /// HA tier (cost | dev | prod). Not the layer profile.
    #[serde(default)]
    pub profile: Option<HaTier>,
    /// Layer profile `root`/`plan` use when `--profile` is not given.
    #[serde(rename = "layerProfile", default)]
    pub layer_profile: Option<String>,
    #[serde(default)]
    pub secret_backend: Option<String>,
    #[serde(default)]
    pub secret_store_auth: Option<String>,
    #[serde(default)]
    pub gpu_stack: GpuStack,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// StorageClass for model PVCs; unset means the cluster default.
    #[serde(rename = "storageClassName", default)]
    pub storage_class_name: Option<String>,
    /// Feature gates: `name: true|false` (YAML booleans only).
    #[serde(default)]
    pub features: BTreeMap<String, bool>,
    #[serde(default)]
    pub models: Vec<Model>,
    /// What models' KEDA autoscaling shares (the Prometheus server address).
    #[serde(default)]
    pub autoscaling: super::autoscaling::AutoscalingSettings,
    /// The S3-compatible endpoint `s3://bucket/prefix` model sources are read from. Optional:
    /// without it, AWS S3 in the region of the environment (`AWS_REGION`). Credentials never
    /// come from here (see [`S3Config`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
}

impl EnvConfig {
    /// A copy of the settings without the models (a fleet has them by the thousand), for what
    /// reads only the top-level keys. Every field is named, so a new one is not forgotten.
    pub fn without_models(&self) -> EnvConfig {
        let EnvConfig {
            cluster,
            repo_url,
            repo_branch,
            domain,
            profile,
            layer_profile,
            secret_backend,
            secret_store_auth,
            gpu_stack,
            dns,
            gateway,
            storage_class_name,
            features,
            models: _,
            autoscaling,
            s3,
        } = self;
        EnvConfig {
            cluster: cluster.clone(),
            repo_url: repo_url.clone(),
            repo_branch: repo_branch.clone(),
            domain: domain.clone(),
            profile: *profile,
            layer_profile: layer_profile.clone(),
            secret_backend: secret_backend.clone(),
            secret_store_auth: secret_store_auth.clone(),
            gpu_stack: *gpu_stack,
            dns: dns.clone(),
            gateway: gateway.clone(),
            storage_class_name: storage_class_name.clone(),
            features: features.clone(),
            models: Vec::new(),
            autoscaling: autoscaling.clone(),
            s3: s3.clone(),
        }
    }
}

/// `s3:`: where `s3://` model sources live. `platform stage-model` downloads from it; the same
/// fields map to KServe's `serving.kserve.io/s3-endpoint`, `s3-region`, `s3-usehttps`,
/// `s3-verifyssl` and `s3-usevirtualbucket` annotations. Every field is optional. Credentials are
/// never read from config.yaml: `stage-model` takes them from `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` or the shared credentials file
/// (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`; profile `AWS_PROFILE`, else
/// `default`), and reads anonymously when there are none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S3Config {
    /// Endpoint URL (`https://minio.example:9000`; `http://` for a plain-HTTP endpoint). Default
    /// `https://s3.<region>.amazonaws.com`. For `stage-model`, `AWS_ENDPOINT_URL_S3`, else
    /// `AWS_ENDPOINT_URL`, overrides it (as AWS SDKs do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region requests are signed for. Default `AWS_REGION`, else `AWS_DEFAULT_REGION`, else
    /// `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style addressing (`https://endpoint/bucket/key`) rather than virtual-hosted
    /// (`https://bucket.endpoint/key`). Default: `true` with a custom endpoint (MinIO, Ceph and
    /// most S3-compatible servers want it), `false` for AWS S3. KServe's `s3-usevirtualbucket` is
    /// its negation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Check the endpoint's TLS certificate (default `true`); `false` only for a self-signed
    /// test endpoint. KServe's `s3-verifyssl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_tls: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub name: String,
    #[serde(rename = "projectID", default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    /// Dedicated kubeconfig for this cluster (`~` expands).
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// Context inside that kubeconfig; its current context when unset.
    #[serde(default)]
    pub context: Option<String>,
    /// Opt in to the global default kubeconfig/context when no dedicated file is set.
    #[serde(rename = "useGlobalContext", default)]
    pub use_global_context: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HaTier {
    Cost,
    Dev,
    Prod,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum GpuStack {
    #[serde(rename = "gke-managed")]
    GkeManaged,
    #[serde(rename = "operator")]
    Operator,
    #[default]
    #[serde(rename = "none")]
    None,
}

impl GpuStack {
    pub fn as_str(self) -> &'static str {
        match self {
            GpuStack::GkeManaged => "gke-managed",
            GpuStack::Operator => "operator",
            GpuStack::None => "none",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    #[serde(default)]
    pub automate: bool,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub proxied: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfig {
    /// GatewayClass for the serving Gateways (default `agentgateway`).
    #[serde(default = "default_gateway_class")]
    pub class_name: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            class_name: default_gateway_class(),
        }
    }
}

fn default_gateway_class() -> String {
    "agentgateway".to_string()
}

/// Which of the three serving layers a model runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
pub enum ServingLayer {
    #[serde(rename = "raw-vllm")]
    RawVllm,
    #[serde(rename = "kserve")]
    Kserve,
    #[serde(rename = "llm-d")]
    LlmD,
}

impl ServingLayer {
    pub const ALL: [ServingLayer; 3] = [
        ServingLayer::RawVllm,
        ServingLayer::Kserve,
        ServingLayer::LlmD,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServingLayer::RawVllm => "raw-vllm",
            ServingLayer::Kserve => "kserve",
            ServingLayer::LlmD => "llm-d",
        }
    }
}

/// The layer config.yaml calls `name`.
pub fn serving_layer_named(name: &str) -> Option<ServingLayer> {
    ServingLayer::ALL.into_iter().find(|l| l.as_str() == name)
}

/// The names of every serving layer, as config.yaml and the catalog spell them.
pub fn serving_layer_names() -> Vec<&'static str> {
    ServingLayer::ALL.iter().map(|l| l.as_str()).collect()
}

impl fmt::Display for ServingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Strategy {
    Recreate,
    RollingUpdate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum AccessMode {
    ReadWriteOnce,
    ReadOnlyMany,
    ReadWriteMany,
    ReadWriteOncePod,
}

impl AccessMode {
    /// The access mode as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadOnlyMany => "ReadOnlyMany",
            AccessMode::ReadWriteMany => "ReadWriteMany",
            AccessMode::ReadWriteOncePod => "ReadWriteOncePod",
        }
    }

    /// Whether two pods on different nodes can mount the volume at once.
    pub fn is_shared(self) -> bool {
        matches!(self, AccessMode::ReadOnlyMany | AccessMode::ReadWriteMany)
    }
}

/// A served model.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Model {
    /// DNS-1123 name; also the Argo CD Application name and the serving object name.
    pub name: String,
    pub layer: ServingLayer,
    /// Where the weights come from (`hf://org/name`, `s3://bucket/prefix`,
    /// `oci://registry/repo@sha256:…`, `pvc://claim/dir`), parsed once at load. Ollama models
    /// have none: Ollama pulls `ollama.model` from its own registry.
    #[serde(default)]
    pub source: super::source::ModelSource,
    /// The engine that serves the model: `vllm` (default), `llama-cpp` (GGUF) or `ollama`.
    #[serde(default)]
    pub runtime: RuntimeName,
    /// One file of the source to serve: the GGUF file of an `hf://` repository (llama.cpp).
    #[serde(default)]
    pub file: Option<String>,
    /// llama.cpp's `llama-server` settings (runtime `llama-cpp`).
    #[serde(default)]
    pub llama_cpp: Option<LlamaCpp>,
    /// Ollama's settings (runtime `ollama`): the model tag it pulls.
    #[serde(default)]
    pub ollama: Option<Ollama>,
    /// Hub revision (branch, tag or commit sha).
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Name clients send in `"model": …` (vLLM `--served-model-name`); defaults to the model name.
    #[serde(default)]
    pub served_name: Option<String>,
    /// Runtime preset from `catalog/presets.yaml`.
    pub preset: String,
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// GPUs per serving pod (decode pods for llm-d).
    #[serde(default)]
    pub gpus: u32,
    /// vLLM `--tensor-parallel-size`; must equal `gpus` when set.
    #[serde(default)]
    pub tensor_parallel_size: Option<u32>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    pub storage: Storage,
    /// Extra vLLM arguments, appended after the preset's.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables, merged over the preset's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub max_model_len: Option<u32>,
    /// KServe canary split of the latest revision.
    #[serde(default)]
    pub canary_traffic_percent: Option<u8>,
    /// llm-d only: a prefill pool for prefill/decode disaggregation.
    #[serde(default)]
    pub prefill: Option<Prefill>,
    /// Namespace override; the serving layer's namespace otherwise.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The Secret (in the model's namespace) holding the API key vLLM requires on `/v1` (rendered
    /// as `VLLM_API_KEY` from a `secretKeyRef`): `platform smoke` sends it as `Authorization:
    /// Bearer`, never printing it.
    #[serde(default)]
    pub api_key_secret: Option<SecretKeyRef>,
    /// Scale between `min` and `max` replicas on a metric (HPA or KEDA) instead of a fixed
    /// `replicas`.
    #[serde(default)]
    pub autoscaling: Option<super::autoscaling::Autoscaling>,
    /// A PriorityClass the catalog ships (`platform-gpu-serving`, …), rendered as the serving
    /// pods' `priorityClassName`.
    #[serde(default)]
    pub priority: Option<String>,
    /// A Secret key holding a Hugging Face token for gated models: wired as `HF_TOKEN` into the
    /// pods that download from the Hub (the value never enters git; `stage-model` reads the
    /// token from the user's environment instead).
    #[serde(default)]
    pub hf_token_secret: Option<SecretKeyRef>,
    /// Set by `platform move` for the duration of a move: the layer the model is moving to. The
    /// model is then declared on both layers (its Application on `layer`, a second one on
    /// `moveTo`), and its route carries both backends.
    #[serde(default)]
    pub move_to: Option<ServingLayer>,
    /// During a move: the share of the route (percent) git gives the `moveTo` layer (default 0).
    /// `platform move --keep-old` writes 100 once the old backend is paused.
    #[serde(default)]
    pub move_share: Option<u32>,
    /// The Argo CD Application serving the model (and its directory under
    /// `clusters/<env>/models/`); default: the model's name. `platform move` sets it to
    /// `<name>-<layer>` so the Application that brought the model up on its new layer keeps it:
    /// nothing is re-created or adopted when the move ends.
    #[serde(default)]
    pub app: Option<String>,
}

/// The engine serving a model. Its behaviour (arguments, port, paths, checks) lives in
/// `serving::runtime`; this is only the name config.yaml and the catalog's presets use.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize,
)]
pub enum RuntimeName {
    #[default]
    #[serde(rename = "vllm")]
    Vllm,
    #[serde(rename = "llama-cpp")]
    LlamaCpp,
    #[serde(rename = "ollama")]
    Ollama,
}

impl RuntimeName {
    pub const ALL: [RuntimeName; 3] = [
        RuntimeName::Vllm,
        RuntimeName::LlamaCpp,
        RuntimeName::Ollama,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeName::Vllm => "vllm",
            RuntimeName::LlamaCpp => "llama-cpp",
            RuntimeName::Ollama => "ollama",
        }
    }
}

impl fmt::Display for RuntimeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// llama.cpp `llama-server` settings; each has a default.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LlamaCpp {
    /// CPU threads for generation (`--threads`); default: the pod's whole-core CPU request.
    #[serde(default)]
    pub threads: Option<u32>,
    /// Context window of one slot, in tokens; default `maxModelLen`, else 4096. The server's
    /// total context (`--ctx-size`) is this times `parallel`.
    #[serde(default)]
    pub context_size: Option<u32>,
    /// Requests served at once (`--parallel` slots); default 2.
    #[serde(default)]
    pub parallel: Option<u32>,
}

/// Ollama settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ollama {
    /// The model tag Ollama pulls and serves (`qwen3:4b`); clients send it as `"model"`.
    pub model: String,
}

/// A key of a Secret in the model's namespace.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

fn default_revision() -> String {
    "main".to_string()
}

fn default_replicas() -> u32 {
    1
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub requests: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub limits: BTreeMap<String, Quantity>,
}

/// Where the weights come from at serving time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Storage {
    /// Weights are pre-staged on the model's PVC by `platform stage-model` (serving never
    /// downloads). Default: true, except for Ollama (it pulls), `oci://` sources (the image is
    /// the weights) and `pvc://` sources (already on a volume); read it through [`Model::staged`].
    #[serde(default)]
    pub staged: Option<bool>,
    /// Directory under the PVC holding the weights (default: the model name).
    #[serde(default)]
    pub dir: Option<String>,
    #[serde(default = "default_pvc_size")]
    pub size: Quantity,
    #[serde(default = "default_access_mode")]
    pub access_mode: AccessMode,
    /// Overrides the environment's `storageClassName` for this model.
    #[serde(default)]
    pub storage_class_name: Option<String>,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            staged: None,
            dir: None,
            size: default_pvc_size(),
            access_mode: default_access_mode(),
            storage_class_name: None,
        }
    }
}

fn default_pvc_size() -> Quantity {
    Quantity::parse("10Gi").expect("constant quantity")
}

fn default_access_mode() -> AccessMode {
    AccessMode::ReadWriteOnce
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Prefill {
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub tensor_parallel_size: Option<u32>,
    #[serde(default)]
    pub resources: Resources,
}

impl Model {
    /// The Argo CD Application (and models/ directory) of the model on its `layer`.
    pub fn app_name(&self) -> &str {
        self.app.as_deref().unwrap_or(&self.name)
    }

    /// The Application of the model on layer `to` while it moves there (`<name>-<layer>`).
    pub fn moving_app_name(&self, to: ServingLayer) -> String {
        format!("{}-{}", self.name, to.as_str())
    }

    pub fn served_name(&self) -> &str {
        self.served_name.as_deref().unwrap_or(&self.name)
    }

    /// Whether the weights are pre-staged on the model's PVC: `storage.staged`, else true unless
    /// Ollama pulls them, an `oci://` image carries them or a `pvc://` volume has them.
    pub fn staged(&self) -> bool {
        self.storage.staged.unwrap_or_else(|| {
            self.runtime != RuntimeName::Ollama
                && !matches!(
                    self.source.parsed(),
                    Ok(super::source::Source::Oci { .. } | super::source::Source::Pvc { .. })
                )
        })
    }

    /// The file the engine loads, for a one-file model (GGUF): `file:`, a file of the
    /// repository, bucket prefix or image.
    pub fn single_file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    pub fn weights_dir(&self) -> &str {
        self.storage.dir.as_deref().unwrap_or(&self.name)
    }

    /// `org/name` of an `hf://org/name` source.
    pub fn hf_repo(&self) -> Option<&str> {
        self.source.hf_repo()
    }

    pub fn pvc_name(&self) -> String {
        format!("{}-weights", self.name)
    }

    /// The replicas the model starts with: `replicas`, or an autoscaled model's `min` (at least 1).
    pub fn start_replicas(&self) -> u32 {
        self.autoscaling
            .as_ref()
            .map_or(self.replicas, |a| a.min.max(1))
    }

    /// Total GPUs the model asks for across pools and replicas (an autoscaled model: as it starts).
    pub fn total_gpus(&self) -> u32 {
        let prefill = self
            .prefill
            .as_ref()
            .map(|p| p.gpus * p.replicas)
            .unwrap_or(0);
        self.gpus * self.start_replicas() + prefill
    }
}
