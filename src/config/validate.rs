//! Semantic checks of a parsed config against the catalog: each one encodes a gotcha of the serving
//! layers (see DESIGN.md) and says how to fix it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{EnvConfig, Model, Quantity, ServingLayer, Strategy};
use crate::catalog::resolve::ResolvedGroup;
use crate::catalog::{is_dns1123_label, is_dns1123_subdomain, name_error, Catalog, Device, Preset};
use crate::consts::{self, GPU_RESOURCE};
use crate::diag::{did_you_mean, Diagnostic};

/// Every semantic problem of `cfg` (errors and warnings). `groups` are the resolved catalog groups.
pub fn validate(
    cfg: &EnvConfig,
    file: &Path,
    catalog: &Catalog,
    groups: &[ResolvedGroup],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let err = |field: &str, msg: String| Diagnostic::error(msg).file(file).field(field.to_string());
    if !is_dns1123_label(&cfg.cluster.name) {
        out.push(name_error(file, "cluster.name", &cfg.cluster.name));
    }
    if cfg.repo_url.trim().is_empty() {
        out.push(
            err(
                "repoURL",
                "is empty: Argo CD needs the GitOps repository URL".into(),
            )
            .help(
                "set `repoURL: https://…/your-gitops-repo.git` (the repository holding clusters/)",
            ),
        );
    }
    if cfg.repo_branch.trim().is_empty() {
        out.push(
            err("repoBranch", "is empty".into())
                .help("set the branch Argo CD reads, e.g. `repoBranch: main`"),
        );
    }
    if !cfg.domain.is_empty() && !is_dns1123_subdomain(&cfg.domain) {
        out.push(
            err("domain", format!("`{}` is not a DNS name", cfg.domain))
                .help("e.g. `domain: ai.example.com`, or \"\" for no public ingress"),
        );
    }
    if let Some(sc) = &cfg.storage_class_name {
        if !is_dns1123_subdomain(sc) {
            out.push(name_error(file, "storageClassName", sc));
        }
    }
    if !is_dns1123_subdomain(&cfg.gateway.class_name) {
        out.push(name_error(
            file,
            "gateway.className",
            &cfg.gateway.class_name,
        ));
    }

    let mut names = BTreeMap::new();
    for (i, m) in cfg.models.iter().enumerate() {
        let at = format!(
            "models[{}]",
            if m.name.is_empty() {
                i.to_string()
            } else {
                m.name.clone()
            }
        );
        if let Some(first) = names.insert(m.name.as_str(), i) {
            out.push(err(&at, format!("duplicate model name `{}` (also models[{first}])", m.name))
                .pointer(format!("models[{i}].name"))
                .help("model names are unique: they name the Argo CD Application and the serving objects"));
        }
        validate_model(m, &at, file, catalog, groups, &mut out);
    }
    out
}

fn validate_model(
    m: &Model,
    at: &str,
    file: &Path,
    catalog: &Catalog,
    groups: &[ResolvedGroup],
    out: &mut Vec<Diagnostic>,
) {
    let err = |field: &str, msg: String| {
        Diagnostic::error(msg)
            .file(file)
            .field(format!("{at}{field}"))
    };
    // Room for the `-predictor` suffix KServe adds and the `-weights` PVC suffix.
    if !is_dns1123_label(&m.name) || m.name.len() > 45 {
        out.push(name_error(file, &format!("{at}.name"), &m.name)
            .help("a model name is a DNS-1123 label: lowercase letters, digits and '-', at most 45 characters (KServe appends `-predictor`)"));
    }
    if let Some(ns) = &m.namespace {
        if !is_dns1123_label(ns) {
            out.push(name_error(file, &format!("{at}.namespace"), ns));
        } else if RESERVED_NAMESPACES.contains(&ns.as_str()) || ns.starts_with("kube-") {
            out.push(
                err(".namespace", format!("`{ns}` is a system namespace"))
                    .help("serve models in a namespace of their own (teardown deletes what platform put there); leave `namespace` out for the layer's"),
            );
        }
    }
    check_model_strings(m, &err, out);
    if let Some(r) = &m.api_key_secret {
        check_api_key_secret(r, &err, out);
    }
    match m.hf_repo() {
        Some(repo) if is_hf_repo_id(repo) => {}
        _ => out.push(
            err(
                ".source",
                format!("`{}` is not a Hugging Face source", m.source),
            )
            .help("write `hf://<org>/<name>`, e.g. hf://Qwen/Qwen2.5-0.5B-Instruct"),
        ),
    }
    if m.revision.trim().is_empty() {
        out.push(
            err(".revision", "is empty".into())
                .help("use a branch, tag or commit sha (default: main)"),
        );
    }
    let dir = m.weights_dir();
    if dir.is_empty()
        || dir == "."
        || dir == ".."
        || !dir
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        out.push(err(".storage.dir", format!("`{dir}` is not a plain directory name"))
            .help("one path segment of letters, digits, '.', '_' or '-' (it lives directly under the PVC root)"));
    }
    if let Some(sc) = &m.storage.storage_class_name {
        if !is_dns1123_subdomain(sc) {
            out.push(name_error(
                file,
                &format!("{at}.storage.storageClassName"),
                sc,
            ));
        }
    }

    // Serving layer exists in the catalog and its group is on.
    let layer = m.layer.as_str();
    match catalog.serving.get(layer) {
        None => out.push(
            err(
                ".layer",
                format!("the catalog has no serving layer `{layer}`"),
            )
            .help(format!(
                "add servingLayers.{layer} to {}",
                catalog.files.serving.display()
            )),
        ),
        Some(spec) => {
            if let Some(g) = groups.iter().find(|g| g.name == spec.group) {
                if !g.enabled {
                    let gate = catalog
                        .group(&g.name)
                        .and_then(|cg| cg.gate.as_ref())
                        .and_then(|gt| gt.feature.clone())
                        .map(|f| format!("features.{f}: true"))
                        .unwrap_or_else(|| format!("enable group {}", g.name));
                    // A warning, not an error: a model can be prepared before its layer is switched on.
                    out.push(
                        Diagnostic::warning(format!(
                            "model `{}` is not rendered: its layer {layer} is off (group `{}`: {})",
                            m.name, g.name, g.reason
                        ))
                        .file(file)
                        .field(format!("{at}.layer"))
                        .help(format!(
                            "set `{gate}` to serve it, or move the model to another layer"
                        )),
                    );
                }
            }
        }
    }

    let preset = match catalog.presets.get(&m.preset) {
        Some(p) => p,
        None => {
            let d = err(".preset", format!("unknown preset `{}`", m.preset));
            out.push(
                match did_you_mean(&m.preset, catalog.presets.keys().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "presets in {}: {}",
                        catalog.files.presets.display(),
                        catalog
                            .presets
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                },
            );
            return;
        }
    };

    // What is rendered: the model's resources, or the preset's when it sets none.
    let resources = preset.resources_for(&m.resources);
    check_resources(resources, &format!("{at}.resources"), file, out);
    let req = |k: &str| resources.requests.get(k).map(Quantity::value);
    let lim = |k: &str| resources.limits.get(k).map(Quantity::value);

    // GPUs: count, tensor parallel, device.
    match preset.device {
        Device::Gpu if m.gpus == 0 => out.push(
            err(
                ".gpus",
                format!("preset `{}` runs on GPUs but gpus is 0", m.preset),
            )
            .help("set `gpus: N` (GPUs per pod) or use a CPU preset"),
        ),
        Device::Cpu if m.gpus > 0 => out.push(
            err(
                ".gpus",
                format!(
                    "preset `{}` is a CPU preset but gpus is {}",
                    m.preset, m.gpus
                ),
            )
            .help("set `gpus: 0` or use a GPU preset"),
        ),
        _ => {}
    }
    if let Some(tp) = m.tensor_parallel_size {
        if tp != m.gpus {
            out.push(
                err(
                    ".tensorParallelSize",
                    format!("is {tp} but the model has {} GPU(s) per pod", m.gpus),
                )
                .help("tensor parallel size must equal the GPU count: set both to the same number"),
            );
        }
    }

    // vLLM CPU gotchas.
    let env: BTreeMap<&str, &str> = preset
        .env
        .iter()
        .chain(m.env.iter())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if env
        .get("VLLM_CPU_OMP_THREADS_BIND")
        .is_some_and(|v| v.trim() == "all")
    {
        out.push(
            err(
                ".env.VLLM_CPU_OMP_THREADS_BIND",
                "must not be `all` (vLLM rejects it: invalid literal for int())".into(),
            )
            .help("leave it unset (auto) or give an explicit core-id list such as 0-3"),
        );
    }
    if preset.device == Device::Cpu {
        let cpu = if m.layer == ServingLayer::LlmD {
            req("cpu")
        } else {
            req("cpu").or(lim("cpu"))
        };
        if cpu.unwrap_or(0.0) < 2.0 {
            out.push(err(".resources.requests.cpu", format!(
                "vLLM on CPU needs at least 2 cores (got {})",
                resources.requests.get("cpu").map(|q| q.to_string()).unwrap_or_else(|| "none".into())))
                .help("set `resources.requests.cpu: \"2\"` (and `limits.cpu` ≥ it): vLLM reserves one core for the API server"));
        }
        let args = all_args(preset, m);
        if !args.iter().any(|a| *a == "--enforce-eager") {
            out.push(
                err(
                    ".args",
                    "vLLM on CPU needs --enforce-eager (torch.compile is slow and fragile on CPU)"
                        .into(),
                )
                .help("add --enforce-eager to the model's args or the preset's"),
            );
        }
        if let Some(d) = args.iter().rev().find_map(|a| a.strip_prefix("--dtype=")) {
            if d != "float32" {
                out.push(
                    err(
                        ".args",
                        format!("--dtype={d} on CPU: CPU has no fp16/bf16 fast path"),
                    )
                    .help("use --dtype=float32"),
                );
            }
        } else {
            out.push(
                err(".args", "vLLM on CPU needs --dtype=float32".into())
                    .help("add --dtype=float32"),
            );
        }
    }

    // KServe: default cpu limit of 1.
    if m.layer == ServingLayer::Kserve
        && req("cpu").is_some_and(|r| r > 1.0)
        && lim("cpu").is_none()
    {
        {
            {
                out.push(err(".resources.limits.cpu", format!(
                    "requests.cpu is {} but no cpu limit is set: KServe then defaults the limit to 1 and the Deployment is invalid forever",
                    resources.requests["cpu"]))
                    .help(format!("set `resources.limits.cpu` to at least {}", resources.requests["cpu"])));
            }
        }
    }

    // Single-slot workloads need Recreate.
    let single_slot = m.gpus > 0 || preset.device == Device::Cpu;
    match (m.layer, m.strategy) {
        (ServingLayer::LlmD, Some(_)) => out.push(err(".strategy", "llm-d pods are managed by the LLMInferenceService; `strategy` does not apply".into())
            .help("remove `strategy`")),
        (_, Some(Strategy::RollingUpdate)) if single_slot => out.push(err(".strategy", format!(
            "RollingUpdate on a single-slot model ({}): the surge pod needs a second free slot and deadlocks",
            if m.gpus > 0 { format!("{} GPU(s) per pod", m.gpus) } else { "a CPU vLLM pod".into() }))
            .help("use `strategy: Recreate` (the default)")),
        _ => {}
    }

    // Canary.
    if let Some(pct) = m.canary_traffic_percent {
        if m.layer != ServingLayer::Kserve {
            out.push(
                err(
                    ".canaryTrafficPercent",
                    format!(
                        "canary is a KServe InferenceService feature; this model is on {layer}"
                    ),
                )
                .help("remove it or move the model to kserve"),
            );
        } else {
            if pct > 100 {
                out.push(
                    err(
                        ".canaryTrafficPercent",
                        format!("{pct} is not a percentage"),
                    )
                    .help("use 0-100"),
                );
            }
            if !m.storage.access_mode.is_shared() {
                out.push(err(".canaryTrafficPercent", format!(
                    "canary runs a second revision pod, but the model volume is {:?}: both revisions pin to one node",
                    m.storage.access_mode))
                    .help("use `storage.accessMode: ReadOnlyMany` (or ReadWriteMany, e.g. Filestore) or drop the canary"));
            }
            out.push(
                Diagnostic::warning(
                    "canaryTrafficPercent is ignored by KServe in Standard (raw deployment) mode",
                )
                .file(file)
                .field(format!("{at}.canaryTrafficPercent")),
            );
        }
    }

    // llm-d prefill.
    if let Some(p) = &m.prefill {
        if m.layer != ServingLayer::LlmD {
            out.push(
                err(
                    ".prefill",
                    "prefill/decode disaggregation is an llm-d feature".into(),
                )
                .help(format!(
                    "remove `prefill` or move the model to llm-d (it is on {layer})"
                )),
            );
        }
        if preset.device == Device::Gpu && p.gpus == 0 {
            out.push(err(
                ".prefill.gpus",
                "prefill pods of a GPU preset need gpus ≥ 1".into(),
            ));
        }
        if let Some(tp) = p.tensor_parallel_size {
            if tp != p.gpus {
                out.push(
                    err(
                        ".prefill.tensorParallelSize",
                        format!("is {tp} but prefill pods have {} GPU(s)", p.gpus),
                    )
                    .help("tensor parallel size must equal the GPU count"),
                );
            }
        }
        check_resources(
            preset.resources_for(&p.resources),
            &format!("{at}.prefill.resources"),
            file,
            out,
        );
    }

    if (m.layer == ServingLayer::RawVllm || m.layer == ServingLayer::Kserve) && !m.storage.staged {
        {
            out.push(Diagnostic::warning("serving pods will download the weights from the Hub themselves")
                .file(file).field(format!("{at}.storage.staged"))
                .help("clusters behind a shared egress IP get HTTP 429 from Hugging Face: pre-stage with `platform stage-model` and set staged: true"));
        }
    }
    if m.max_model_len == Some(0) {
        out.push(err(".maxModelLen", "must be positive".into()));
    }
}

/// Namespaces a model must not be served in.
const RESERVED_NAMESPACES: &[&str] = &[consts::ARGOCD_NAMESPACE];
/// Kubernetes' largest replica count (int32).
const MAX_REPLICAS: u32 = i32::MAX as u32;
/// vLLM's served model name is an HTTP-visible identifier: keep it short.
const MAX_SERVED_NAME: usize = 253;

/// `org/name` as the Hub accepts it (both parts as the download checks them).
fn is_hf_repo_id(repo: &str) -> bool {
    let parts: Vec<&str> = repo.split('/').collect();
    parts.len() == 2 && parts.iter().all(|p| crate::hub::is_repo_part(p))
}

/// A git revision the Hub resolves: a branch, tag or commit sha (no whitespace, no shell or ref
/// metacharacters).
fn is_revision(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && !r.starts_with(['-', '/', '.'])
        && !r.contains("..")
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// A container environment variable name (Kubernetes: `[-._a-zA-Z][-._a-zA-Z0-9]*`).
fn is_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || "-._".contains(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// Strings that end up in manifests or on a command line: sane characters and sizes, counts the API
/// accepts.
fn check_model_strings(
    m: &Model,
    err: &dyn Fn(&str, String) -> Diagnostic,
    out: &mut Vec<Diagnostic>,
) {
    if !m.revision.trim().is_empty() && !is_revision(&m.revision) {
        out.push(
            err(
                ".revision",
                format!(
                    "`{}` is not a branch, tag or commit",
                    m.revision.escape_debug()
                ),
            )
            .help(
                "letters, digits, '-', '_', '.', '/' (e.g. main, v1.0, a 40-character commit sha)",
            ),
        );
    }
    if let Some(n) = &m.served_name {
        if n.is_empty()
            || n.len() > MAX_SERVED_NAME
            || n.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            let shown = crate::text::prefix(n, 40);
            out.push(
                err(".servedName", format!("`{}{}` is not a usable model name ({} bytes)", shown.escape_debug(), if n.chars().count() > 40 { "…" } else { "" }, n.len()))
                    .help(format!("at most {MAX_SERVED_NAME} characters, no spaces or control characters: clients send it in every request")),
            );
        }
    }
    for k in m.env.keys() {
        if !is_env_name(k) {
            out.push(
                err(&format!(".env.{k}"), format!("`{}` is not an environment variable name", k.escape_debug()))
                    .help("letters, digits, '_', '-', '.', not starting with a digit (e.g. VLLM_LOGGING_LEVEL)"),
            );
        }
    }
    if m.replicas > MAX_REPLICAS {
        out.push(err(
            ".replicas",
            format!(
                "{} is more than Kubernetes accepts ({MAX_REPLICAS})",
                m.replicas
            ),
        ));
    }
    if let Some(p) = &m.prefill {
        if p.replicas > MAX_REPLICAS {
            out.push(err(
                ".prefill.replicas",
                format!(
                    "{} is more than Kubernetes accepts ({MAX_REPLICAS})",
                    p.replicas
                ),
            ));
        }
    }
    if m.storage.size.value() <= 0.0 {
        out.push(
            err(
                ".storage.size",
                format!("`{}` is not a positive size", m.storage.size),
            )
            .help(
                "the volume must hold the weights, e.g. 5Gi for a 0.5B model, 40Gi for a 7B model",
            ),
        );
    }
}

/// A Secret key as Kubernetes accepts it: `[-._a-zA-Z0-9]+`, at most 253 characters.
fn is_secret_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k != "."
        && k != ".."
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// `apiKeySecret: {name, key}` names a Secret in the model's namespace and a key in it.
fn check_api_key_secret(
    r: &super::SecretKeyRef,
    err: &dyn Fn(&str, String) -> Diagnostic,
    out: &mut Vec<Diagnostic>,
) {
    if !is_dns1123_subdomain(&r.name) {
        out.push(
            err(
                ".apiKeySecret.name",
                format!("`{}` is not a Secret name", r.name.escape_debug()),
            )
            .help("the name of a Secret in the model's namespace (lowercase letters, digits, '-', '.'), e.g. `qwen-api-key`"),
        );
    }
    if !is_secret_key(&r.key) {
        out.push(
            err(
                ".apiKeySecret.key",
                format!("`{}` is not a Secret key", r.key.escape_debug()),
            )
            .help("a key of that Secret's data: letters, digits, '-', '_', '.', e.g. `api-key`"),
        );
    }
}

/// Generic resource checks: quantities are valid (parsed already), no GPU in resources, limit ≥ request.
fn check_resources(r: &super::Resources, at: &str, file: &Path, out: &mut Vec<Diagnostic>) {
    let keys: BTreeSet<&String> = r.requests.keys().chain(r.limits.keys()).collect();
    for k in keys {
        if k == GPU_RESOURCE {
            out.push(
                Diagnostic::error(format!(
                    "{GPU_RESOURCE} is set from `gpus`, not from resources"
                ))
                .file(file)
                .field(at)
                .help("remove it here and set `gpus: N` on the model"),
            );
            continue;
        }
        if let (Some(req), Some(lim)) = (r.requests.get(k), r.limits.get(k)) {
            if lim.value() < req.value() {
                out.push(
                    Diagnostic::error(format!("limits.{k} ({lim}) is below requests.{k} ({req})"))
                        .file(file)
                        .field(format!("{at}.limits.{k}"))
                        .help(format!("raise limits.{k} to at least {req}")),
                );
            }
        }
    }
}

/// The vLLM arguments a model runs with: the preset's, then the model's.
pub fn all_args<'a>(preset: &'a Preset, m: &'a Model) -> Vec<&'a String> {
    preset.args.iter().chain(m.args.iter()).collect()
}
