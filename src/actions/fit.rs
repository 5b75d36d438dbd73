//! `platform fit`: gather what [`crate::fit`]'s rule needs for each model (its `config.json` and
//! weight sizes, from the Hub or a directory; the GPU type from the catalog; utilisation, tensor
//! parallel size, context and KV dtype from the model's arguments) and judge it.

use std::path::Path;

use crate::catalog::{Catalog, Device};
use crate::fit::{self, Inputs, Verdict};
use crate::hub::{FileFilter, HubClient, HubError};
use crate::plan::PlannedModel;
use crate::report::{size, Reporter};

/// vLLM's default `--gpu-memory-utilization` (vllm/config/cache.py; it was 0.9 before).
pub const VLLM_DEFAULT_UTILIZATION: f64 = 0.92;
/// Bytes `config.json` may have.
const CONFIG_CAP: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FitCommandError {
    #[error("model {model}: {message}")]
    Model { model: String, message: String },
    #[error(transparent)]
    Hub(#[from] HubError),
    /// Reading the nodes' GPU labels failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

fn model_error(pm: &PlannedModel, message: impl Into<String>) -> FitCommandError {
    FitCommandError::Model {
        model: pm.name.clone(),
        message: message.into(),
    }
}

/// A model's `config.json` and the bytes of its weight files.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub config_json: String,
    pub weights_bytes: u64,
    /// Where they were read from, for the report.
    pub from: String,
}

fn is_weight(path: &str) -> bool {
    path.ends_with(".safetensors")
}

/// From a local directory (a downloaded snapshot).
pub fn from_dir(pm: &PlannedModel, dir: &Path) -> Result<ModelFiles, FitCommandError> {
    let config = dir.join("config.json");
    let config_json = crate::fsread::read_text(&config, CONFIG_CAP, "config.json")
        .map_err(|e| model_error(pm, format!("{}: {}", config.display(), e.reason())))?;
    let mut weights_bytes = 0;
    let entries =
        std::fs::read_dir(dir).map_err(|e| model_error(pm, format!("{}: {e}", dir.display())))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_weight(&name) {
            weights_bytes += std::fs::metadata(e.path()).map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(ModelFiles {
        config_json,
        weights_bytes,
        from: dir.display().to_string(),
    })
}

/// From the Hub: the file sizes of the revision's listing, and `config.json` (downloaded into the
/// stage-model cache).
pub async fn from_hub(
    client: &HubClient,
    pm: &PlannedModel,
    reporter: &dyn Reporter,
) -> Result<ModelFiles, FitCommandError> {
    let Some(repo) = pm.model.hf_repo() else {
        return Err(model_error(
            pm,
            format!(
                "its source {} is not a Hub repository: give the files with --from-dir DIR",
                pm.model.source
            ),
        ));
    };
    let listing = client
        .resolve_with(repo, &pm.model.revision, &FileFilter::default(), reporter)
        .await?;
    let weights_bytes = listing
        .files
        .iter()
        .filter(|f| is_weight(&f.path))
        .map(|f| f.size)
        .sum();
    let only_config = FileFilter::new(&["config.json"], &[])?;
    let snap = client
        .resolve_with(repo, &listing.commit, &only_config, reporter)
        .await?;
    let local = client.download(&snap, reporter, None).await?;
    let path = local.dir.join("config.json");
    let config_json = crate::fsread::read_text(&path, CONFIG_CAP, "config.json")
        .map_err(|e| model_error(pm, format!("{}: {}", path.display(), e.reason())))?;
    Ok(ModelFiles {
        config_json,
        weights_bytes,
        from: format!(
            "{} at {}",
            pm.model.source,
            &listing.commit[..listing.commit.len().min(12)]
        ),
    })
}

/// The GPU a model is checked against: its name, memory, and where the choice came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    pub name: String,
    pub bytes: u64,
    pub from: String,
}

/// The catalog's GPU type `name` (`gpus:` in presets.yaml), or an error listing the known ones.
pub fn catalog_gpu(catalog: &Catalog, name: &str) -> Result<Gpu, String> {
    match catalog.gpus.get(name) {
        Some(g) => Ok(Gpu {
            name: name.to_string(),
            bytes: g.memory.value() as u64,
            from: "--gpu".into(),
        }),
        None => {
            let known: Vec<&str> = catalog.gpus.keys().map(String::as_str).collect();
            Err(format!(
                "unknown GPU type `{name}` (known: {}; add one under gpus: in {})",
                known.join(", "),
                catalog.files.presets.display()
            ))
        }
    }
}

/// GPU feature discovery's labels on a node.
pub const PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
pub const MEMORY_LABEL: &str = "nvidia.com/gpu.memory";

/// The GPU a node's labels name: the catalog type whose `products` has its
/// `nvidia.com/gpu.product`, else its `nvidia.com/gpu.memory` (MiB) under the product's name.
pub fn gpu_of_node(node: &serde_json::Value, catalog: &Catalog) -> Option<Gpu> {
    let label = |k: &str| {
        node.pointer(&format!("/metadata/labels/{}", k.replace('/', "~1")))
            .and_then(serde_json::Value::as_str)
    };
    let node_name = node
        .pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("?");
    let product = label(PRODUCT_LABEL)?;
    let from = format!("node {node_name}'s {PRODUCT_LABEL}={product}");
    if let Some((name, g)) = catalog
        .gpus
        .iter()
        .find(|(_, g)| g.products.iter().any(|p| p == product))
    {
        return Some(Gpu {
            name: name.clone(),
            bytes: g.memory.value() as u64,
            from,
        });
    }
    let mib: u64 = label(MEMORY_LABEL)?.parse().ok()?;
    Some(Gpu {
        name: product.to_string(),
        bytes: mib << 20,
        from: format!("{from}, {MEMORY_LABEL}={mib}"),
    })
}

/// The smallest GPU among the cluster's nodes (a model may land on any of them).
pub async fn smallest_node_gpu(
    client: &crate::cluster::Client,
    catalog: &Catalog,
) -> Result<Option<Gpu>, crate::cluster::ClusterError> {
    let nodes =
        crate::cluster::observed::list_json(client, crate::cluster::kinds::NODE, "", None).await?;
    Ok(nodes
        .iter()
        .filter_map(|n| gpu_of_node(n, catalog))
        .min_by_key(|g| g.bytes))
}

/// What `fit` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The GPU GPU models are checked against (None when only CPU models are).
    pub gpu: Option<Gpu>,
    /// Overrides the model's `--gpu-memory-utilization` (else vLLM's default).
    pub utilization: Option<f64>,
    /// Activations, CUDA graphs and memory outside torch, per GPU.
    pub overhead_bytes: u64,
}

/// One model's numbers.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFit {
    pub model: String,
    pub gpu: String,
    pub gpu_bytes: u64,
    /// How the GPU was chosen (`--gpu`, or a node's labels).
    pub gpu_from: String,
    pub tensor_parallel: u32,
    pub utilization: f64,
    /// Where the utilisation came from: the model's or preset's args, `--gpu-memory-utilization`,
    /// or vLLM's default.
    pub utilization_from: String,
    pub max_model_len: u32,
    pub max_model_len_from: String,
    pub dtype: String,
    pub kv_dtype_bytes: u32,
    pub overhead_bytes: u64,
    pub weights_bytes: u64,
    pub files_from: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// What the rule was given (the remedies of [`explain`] re-run it with other settings).
    #[serde(skip)]
    pub inputs: Inputs,
    /// Checked against the pod's memory (a CPU model), not a GPU.
    #[serde(skip)]
    pub on_cpu: bool,
}

/// The last `--flag=value` (or `--flag value`) among a model's arguments (the preset's, then its own).
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let mut found = None;
    for (i, a) in args.iter().enumerate() {
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v);
        } else if a == name {
            found = args.get(i + 1).map(String::as_str);
        }
    }
    found
}

/// vLLM's `VLLM_CPU_KVCACHE_SPACE` default, in GiB.
const VLLM_CPU_KVCACHE_DEFAULT_GIB: u64 = 4;

/// A CPU model's "device": the pod's memory limit (else request), the KV cache vLLM allots
/// (`VLLM_CPU_KVCACHE_SPACE` GiB), and the weights in the dtype it runs (`--dtype=float32` on CPU
/// makes bf16 weights twice as large).
fn cpu_device(
    pm: &PlannedModel,
    args: &[String],
    shape: &fit::Shape,
    weights: u64,
) -> Result<(Gpu, u32, u64, Option<u64>), FitCommandError> {
    let m = &pm.model;
    let r = pm.preset_spec.resources_for(&m.resources);
    let (memory, which) = match (r.limits.get("memory"), r.requests.get("memory")) {
        (Some(q), _) => (q, "limits.memory"),
        (None, Some(q)) => (q, "requests.memory"),
        (None, None) => {
            return Err(model_error(
                pm,
                "a CPU model without a memory limit or request: nothing to check against",
            ))
        }
    };
    let env = |k: &str| m.env.get(k).or_else(|| pm.preset_spec.env.get(k));
    let space_gib = match env("VLLM_CPU_KVCACHE_SPACE") {
        Some(v) => v.trim().parse::<u64>().map_err(|_| {
            model_error(
                pm,
                format!("VLLM_CPU_KVCACHE_SPACE={v} is not a whole number of GiB"),
            )
        })?,
        None => VLLM_CPU_KVCACHE_DEFAULT_GIB,
    };
    let run_bytes = match flag(args, "--dtype").and_then(fit::dtype_bytes) {
        Some(b) => b,
        None => shape.dtype_bytes,
    };
    let weights = weights / u64::from(shape.dtype_bytes) * u64::from(run_bytes);
    let device = Gpu {
        name: "cpu".into(),
        bytes: memory.value() as u64,
        from: format!(
            "the pod's {which} {memory}; KV cache VLLM_CPU_KVCACHE_SPACE={space_gib} GiB"
        ),
    };
    Ok((device, run_bytes, weights, Some(space_gib << 30)))
}

/// Whether fit judges a model on a GPU (its preset runs on GPUs and it asks for some), rather than
/// against its pod's memory.
pub fn on_gpu(pm: &PlannedModel) -> bool {
    pm.preset_spec.device == Device::Gpu && pm.model.gpus > 0
}

/// Judge one vLLM model: on its GPU type (`opts.gpu`), or a CPU model against its pod's memory.
pub fn judge(
    pm: &PlannedModel,
    files: &ModelFiles,
    opts: &Options,
) -> Result<ModelFit, FitCommandError> {
    let m = &pm.model;
    if m.runtime != crate::config::RuntimeName::Vllm {
        return Err(model_error(
            pm,
            format!(
                "fit applies vLLM's memory rule; this model runs {}",
                m.runtime
            ),
        ));
    }
    let cpu = !on_gpu(pm);
    let shape = fit::parse(&files.config_json).map_err(|e| model_error(pm, e.to_string()))?;
    let args: Vec<String> = pm
        .preset_spec
        .args
        .iter()
        .chain(m.args.iter())
        .cloned()
        .collect();
    let (utilization, utilization_from) =
        match (opts.utilization, flag(&args, "--gpu-memory-utilization")) {
            (Some(u), _) => (u, "--gpu-memory-utilization of fit".to_string()),
            (None, Some(v)) => (
                v.parse::<f64>().map_err(|_| {
                    model_error(pm, format!("--gpu-memory-utilization={v} is not a number"))
                })?,
                "the preset's or the model's arguments".to_string(),
            ),
            (None, None) => (VLLM_DEFAULT_UTILIZATION, "vLLM's default".to_string()),
        };
    let (max_model_len, max_model_len_from) =
        match (m.max_model_len, flag(&args, "--max-model-len")) {
            (Some(n), _) => (n, "maxModelLen".to_string()),
            (None, Some(v)) => (
                v.parse()
                    .map_err(|_| model_error(pm, format!("--max-model-len={v} is not a number")))?,
                "the preset's or the model's arguments".to_string(),
            ),
            (None, None) => (
                shape.max_positions.ok_or_else(|| {
                    model_error(
                        pm,
                        "neither maxModelLen nor config.json's max_position_embeddings is set",
                    )
                })?,
                "config.json's max_position_embeddings (vLLM's default)".to_string(),
            ),
        };
    let kv_dtype_bytes = match flag(&args, "--kv-cache-dtype") {
        Some(d) if d.starts_with("fp8") => 1,
        _ => shape.dtype_bytes,
    };
    let tensor_parallel = m.tensor_parallel_size.unwrap_or(m.gpus).max(1);
    let (device, kv_dtype_bytes, weights_bytes, kv_cap) = if cpu {
        cpu_device(pm, &args, &shape, files.weights_bytes)?
    } else {
        let gpu = opts
            .gpu
            .clone()
            .ok_or_else(|| model_error(pm, "no GPU type: pass --gpu TYPE"))?;
        (gpu, kv_dtype_bytes, files.weights_bytes, None)
    };
    let utilization = if cpu { 1.0 } else { utilization };
    let utilization_from = if cpu {
        "the pod's memory limit, all of it".to_string()
    } else {
        utilization_from
    };
    let inputs = Inputs {
        shape: shape.clone(),
        weights_bytes,
        tensor_parallel: if cpu { 1 } else { tensor_parallel },
        utilization,
        gpu_bytes: device.bytes,
        overhead_bytes: opts.overhead_bytes,
        max_model_len,
        kv_dtype_bytes,
        kv_cap,
    };
    Ok(ModelFit {
        model: pm.name.clone(),
        gpu: device.name.clone(),
        gpu_bytes: inputs.gpu_bytes,
        gpu_from: device.from.clone(),
        tensor_parallel: inputs.tensor_parallel,
        utilization,
        utilization_from,
        max_model_len,
        max_model_len_from,
        dtype: shape.dtype.clone(),
        kv_dtype_bytes,
        overhead_bytes: opts.overhead_bytes,
        weights_bytes,
        files_from: files.from.clone(),
        verdict: fit::judge(&inputs),
        inputs,
        on_cpu: cpu,
    })
}

/// The overhead the gates (`lint --fit`, `up --fit`) assume per GPU: `platform fit --overhead`'s
/// default.
pub const DEFAULT_OVERHEAD: u64 = 2 << 30;

/// What the gate (`lint --fit`, `up --fit`) found about one model of the plan.
#[derive(Debug)]
pub struct Gated {
    pub model: String,
    /// Its Argo CD Application: what `up` syncs or holds back.
    pub app: String,
    pub outcome: Gate,
}

#[derive(Debug)]
pub enum Gate {
    /// fit judged it; the verdict says whether it fits.
    Judged(Box<ModelFit>),
    /// A GPU model whose GPU type nobody named (no `--gpu`, no labelled node).
    NoGpu,
    /// A vLLM model whose files fit cannot read: its source is not a Hub repository.
    NoFiles { source: String },
    /// Not a vLLM model: fit's rule does not apply.
    OtherRuntime(crate::config::RuntimeName),
    /// Its files could not be read, or its config.json or settings make no sense.
    Failed(FitCommandError),
}

impl Gated {
    /// Whether `up --fit` holds the model back: it does not fit, or it needs a GPU of a type
    /// nobody named (the gate cannot show it starts).
    pub fn refused(&self) -> bool {
        match &self.outcome {
            Gate::Judged(f) => !f.verdict.fits,
            Gate::NoGpu => true,
            _ => false,
        }
    }
}

/// Judge every model of `models` the way `platform fit` does (files from the Hub, `opts.gpu` for
/// the GPU ones): the gate of `lint --fit` and `up --fit`. Every model gets an answer; what to do
/// with it is the caller's.
pub async fn gate(
    hub: &HubClient,
    models: &[PlannedModel],
    opts: &Options,
    reporter: &dyn Reporter,
) -> Vec<Gated> {
    let mut out = Vec::new();
    for pm in models {
        let m = &pm.model;
        let outcome = if m.runtime != crate::config::RuntimeName::Vllm {
            Gate::OtherRuntime(m.runtime)
        } else if on_gpu(pm) && opts.gpu.is_none() {
            Gate::NoGpu
        } else if m.hf_repo().is_none() {
            Gate::NoFiles {
                source: m.source.to_string(),
            }
        } else {
            match from_hub(hub, pm, reporter).await {
                Ok(files) => match judge(pm, &files, opts) {
                    Ok(f) => Gate::Judged(Box::new(f)),
                    Err(e) => Gate::Failed(e),
                },
                Err(e) => Gate::Failed(e),
            }
        };
        out.push(Gated {
            model: pm.name.clone(),
            app: pm.app.clone(),
            outcome,
        });
    }
    out
}

/// Why a model does not fit, with the numbers, and what would make it fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub message: String,
    /// Each remedy named here was checked with the rule.
    pub fix: String,
}

/// Bytes that may be negative, as [`size`] writes them.
pub fn signed_size(bytes: i64) -> String {
    if bytes < 0 {
        format!("-{}", size(bytes.unsigned_abs()))
    } else {
        size(bytes as u64)
    }
}

/// Tensor parallel sizes worth suggesting: powers of two up to 8 that divide the query heads.
const TP_CANDIDATES: [u32; 3] = [2, 4, 8];

/// [`Explanation`] of a model that does not fit: the KV cache one request at `maxModelLen` needs
/// against what is left, how that was computed, and the remedies the rule says work (a shorter
/// `maxModelLen`; more GPUs with tensor parallel; a bigger GPU type of `catalog`; for a CPU model,
/// more KV space and memory).
pub fn explain(f: &ModelFit, catalog: &Catalog) -> Explanation {
    let v = &f.verdict;
    let i = &f.inputs;
    let longest = if v.max_model_len_that_fits == 0 {
        "not even the weights fit, so no maxModelLen does".to_string()
    } else {
        format!(
            "the longest maxModelLen that fits is {}",
            v.max_model_len_that_fits
        )
    };
    let mut fixes = Vec::new();
    if v.max_model_len_that_fits > 0 {
        fixes.push(format!(
            "lower maxModelLen to {} or less",
            v.max_model_len_that_fits
        ));
    }
    let message = if f.on_cpu {
        let kv_space = i.kv_cap.unwrap_or(0);
        let needed_space = v.kv_bytes_needed.max(kv_space).div_ceil(1 << 30) << 30;
        if v.kv_bytes_needed > kv_space {
            fixes.push(format!(
                "raise VLLM_CPU_KVCACHE_SPACE to {} (GiB)",
                needed_space >> 30
            ));
        }
        // The memory the weights, the overhead and that KV space need, in whole GiB.
        let memory = (i.weights_bytes + i.overhead_bytes + needed_space).div_ceil(1 << 30) << 30;
        let bigger = Inputs {
            gpu_bytes: memory,
            kv_cap: Some(needed_space),
            ..i.clone()
        };
        if memory > i.gpu_bytes && fit::judge(&bigger).fits {
            fixes.push(format!(
                "raise the memory limit (resources.limits.memory) to {}Gi",
                memory >> 30
            ));
        }
        format!(
            "{} does not fit its pod's memory ({}): one request at maxModelLen {} needs {} of KV cache, and {} is left for it (VLLM_CPU_KVCACHE_SPACE {}, capped by memory {} - weights {} - overhead {}); {longest}",
            f.model,
            size(i.gpu_bytes),
            f.max_model_len,
            size(v.kv_bytes_needed),
            signed_size(v.available_bytes),
            size(kv_space),
            size(i.gpu_bytes),
            size(i.weights_bytes),
            size(i.overhead_bytes),
        )
    } else {
        if let Some(tp) = TP_CANDIDATES
            .into_iter()
            .filter(|&t| t > i.tensor_parallel && i.shape.heads % t == 0)
            .find(|&t| {
                fit::judge(&Inputs {
                    tensor_parallel: t,
                    ..i.clone()
                })
                .fits
            })
        {
            fixes.push(format!(
                "raise tensorParallelSize to {tp} with gpus: {tp} (weights and KV heads split over {tp} GPUs)"
            ));
        }
        let mut bigger: Vec<(&String, u64)> = catalog
            .gpus
            .iter()
            .map(|(name, g)| (name, g.memory.value() as u64))
            .filter(|(_, bytes)| *bytes > i.gpu_bytes)
            .collect();
        bigger.sort_by_key(|(_, bytes)| *bytes);
        if let Some((name, bytes)) = bigger.into_iter().find(|(_, bytes)| {
            fit::judge(&Inputs {
                gpu_bytes: *bytes,
                ..i.clone()
            })
            .fits
        }) {
            fixes.push(format!(
                "run it on a bigger GPU: {name} ({}) is the smallest GPU type of the catalog it fits",
                size(bytes)
            ));
        }
        format!(
            "{} does not fit on {} ({}): one request at maxModelLen {} needs {} of KV cache per GPU, and {} is left for it ({} x {} - weights {} per GPU at tensor parallel {} - overhead {}); {longest}",
            f.model,
            f.gpu,
            size(f.gpu_bytes),
            f.max_model_len,
            size(v.kv_bytes_needed),
            signed_size(v.available_bytes),
            f.utilization,
            size(f.gpu_bytes),
            size(v.weights_bytes_per_gpu),
            f.tensor_parallel,
            size(f.overhead_bytes),
        )
    };
    let fix = if fixes.is_empty() {
        "no single change fit checked is enough: a shorter maxModelLen, more GPUs (tensorParallelSize with gpus) or a bigger GPU, together".to_string()
    } else {
        fixes.join("; or ")
    };
    Explanation { message, fix }
}

/// One line about a model that fits: its KV cache at `maxModelLen` against what is left.
pub fn fits_line(f: &ModelFit) -> String {
    let on = if f.on_cpu {
        "its pod's memory".to_string()
    } else {
        format!("{} ({})", f.gpu, size(f.gpu_bytes))
    };
    format!(
        "{} fits on {on}: {} of KV cache at maxModelLen {}, {} left; up to {} fits",
        f.model,
        size(f.verdict.kv_bytes_needed),
        f.max_model_len,
        signed_size(f.verdict.available_bytes),
        f.verdict.max_model_len_that_fits
    )
}
