//! The text of the `environments/<env>/config.yaml` that `platform init` writes: commented so it
//! reads as documentation (like the shipped `environments/ai-dev/config.yaml`), filled from the
//! flags, the feature gates listed from the catalog in use, and example models commented out so a
//! first `up` starts nothing that costs money.

use crate::catalog::Catalog;
use crate::config::GpuStack;

/// The values init fills in.
#[derive(Debug, Clone)]
pub struct ConfigValues<'a> {
    pub env: &'a str,
    pub cluster_name: &'a str,
    pub kubeconfig: &'a str,
    pub repo_url: &'a str,
    pub branch: &'a str,
    pub gateway_class: &'a str,
    pub gpu_stack: GpuStack,
}

/// Column where trailing comments start.
const COMMENT_COLUMN: usize = 34;

/// `line` padded to the comment column, then `# comment`.
fn with_comment(line: &str, comment: &str) -> String {
    if comment.is_empty() {
        return format!("{line}\n");
    }
    let comment = comment.replace(['\n', '\r'], " ");
    let width = (COMMENT_COLUMN - 1).max(line.chars().count() + 1);
    format!("{line:<width$}# {comment}\n")
}

/// A YAML scalar (quoted when YAML would misread it).
pub fn scalar(s: &str) -> String {
    serde_yaml::to_string(s)
        .map(|t| t.trim_end().to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

pub fn render(v: &ConfigValues<'_>, catalog: &Catalog) -> String {
    let mut out = header(v);
    out.push_str("cluster:\n");
    out.push_str(&with_comment(
        &format!("  name: {}", scalar(v.cluster_name)),
        "cluster identity; cluster commands refuse a cluster that differs",
    ));
    out.push_str(&with_comment(
        "  # projectID: my-project",
        "cloud project (informational)",
    ));
    out.push_str(&with_comment(
        "  # location: europe-west4",
        "region or zone (informational)",
    ));
    out.push_str(&with_comment(
        &format!("  kubeconfig: {}", scalar(v.kubeconfig)),
        "dedicated kubeconfig: never whatever the global context is",
    ));
    out.push_str(&with_comment(
        "  # context: my-context",
        "context inside that file (default: its current context)",
    ));
    out.push_str(&with_comment(
        "  # useGlobalContext: false",
        "opt in to ~/.kube/config's current context instead",
    ));
    out.push_str(&format!(
        "\n# The GitOps repository Argo CD syncs (this repository) and the branch it reads.\nrepoURL: {}\nrepoBranch: {}\n\n",
        scalar(v.repo_url),
        scalar(v.branch)
    ));
    out.push_str(&with_comment(
        "domain: \"\"",
        "public domain; \"\" = no public ingress",
    ));
    out.push_str(&with_comment(
        "# profile: cost",
        "HA tier: cost | dev | prod (not the layer profile)",
    ));
    out.push_str(&with_comment(
        "# layerProfile: full",
        &format!(
            "layer profile root/plan use without --profile: {} (default: the widest)",
            catalog.profile_names().join(" | ")
        ),
    ));
    out.push_str(&with_comment(
        &format!("gpu_stack: {}", v.gpu_stack.as_str()),
        "gke-managed | operator | none (operator enables gpu-operator)",
    ));
    out.push_str("\ngateway:\n");
    out.push_str(&with_comment(
        &format!("  className: {}", scalar(v.gateway_class)),
        "GatewayClass of the serving Gateways",
    ));
    out.push('\n');
    out.push_str(&with_comment(
        "# storageClassName: premium-rwo",
        "model PVCs; unset = the cluster's default StorageClass",
    ));
    out.push_str(&features(catalog));
    out.push_str(MODELS);
    out
}

fn header(v: &ConfigValues<'_>) -> String {
    let env = v.env;
    format!(
        "# Environment {env}: one file per cluster. `platform` reads it for every command:
#   platform plan --env {env}                   what would be rendered, and why
#   platform lint --env {env}                   check everything below, write nothing
#   platform root --env {env} --commit --push   render clusters/{env}/ (what Argo CD syncs), commit, push
# Unknown keys, unknown feature names and non-boolean feature values are errors (with the line).
# Groups, Argo CD apps, chart versions and runtime presets come from the catalog embedded in
# platform; `platform catalog eject` copies it into catalog/ when you need to change them.

"
    )
}

/// One line per feature gate of the catalog, at its default, with the group's hint.
fn features(catalog: &Catalog) -> String {
    let mut out = String::from(
        "\n# Feature gates (YAML booleans). A flag left out takes the catalog default (shown here).\nfeatures:\n",
    );
    let mut any = false;
    for g in &catalog.groups {
        let Some(gate) = &g.gate else { continue };
        let Some(feature) = &gate.feature else {
            continue;
        };
        any = true;
        let hint = g.hint.as_deref().unwrap_or("");
        out.push_str(&with_comment(
            &format!("  {}: {}", scalar(feature), gate.default),
            hint,
        ));
    }
    if !any {
        // `features:` alone would be null.
        out = out.replace("features:\n", "features: {}\n");
    }
    out
}

/// Marker lines of the example models (tests uncomment them).
pub const MODELS_PLACEHOLDER: &str = "models: []";

const MODELS: &str = "
# Models. layer: raw-vllm | kserve | llm-d. Each gets its own manual-sync Argo CD Application (the
# cost gate): nothing runs until `platform up --sync-models` (or an explicit sync). The examples
# below are commented out, so a first `platform up` starts no model: to serve one, replace `[]`
# with the entries, then `platform stage-model NAME` (weights onto its volume) and
# `platform up --sync-models`.
models: []
  # Qwen 0.5B on CPU through KServe (2 cores, 8 GiB), weights pre-staged on the PVC by
  # `platform stage-model qwen-cpu` and served offline from /models/qwen.
  # - name: qwen-cpu
  #   layer: kserve
  #   source: hf://Qwen/Qwen2.5-0.5B-Instruct
  #   revision: main
  #   servedName: qwen2.5-0.5b
  #   preset: vllm-cpu
  #   resources:
  #     requests: { cpu: \"2\", memory: 6Gi }
  #     limits: { cpu: \"2\", memory: 8Gi }   # explicit: KServe would default the cpu limit to 1
  #   storage:
  #     dir: qwen
  #     size: 5Gi
  #
  # Qwen 7B on one NVIDIA GPU, raw vLLM (replicas owned by `platform pause/resume`).
  # - name: qwen-gpu
  #   layer: raw-vllm
  #   source: hf://Qwen/Qwen2.5-7B-Instruct
  #   servedName: qwen2.5-7b
  #   preset: vllm-gpu
  #   gpus: 1
  #   tensorParallelSize: 1
  #   maxModelLen: 16384
  #   resources:
  #     requests: { cpu: \"4\", memory: 24Gi }
  #     limits: { memory: 32Gi }
  #   storage:
  #     dir: qwen2.5-7b
  #     size: 40Gi
  #
  # One GGUF file on CPU with llama.cpp (a KServe ClusterServingRuntime from the catalog's presets).
  # - name: qwen-gguf
  #   layer: kserve
  #   runtime: llama-cpp
  #   source: hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF
  #   file: qwen2.5-0.5b-instruct-q4_k_m.gguf
  #   preset: llama-cpp-cpu
  #
  # Ollama pulling a tag into the model's volume (no source, nothing to stage).
  # - name: qwen3-ollama
  #   layer: kserve
  #   runtime: ollama
  #   ollama: { model: \"qwen3:4b\" }
  #   preset: ollama-cpu
";
