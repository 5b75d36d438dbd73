use std::path::PathBuf;

use anyhow::Result;
use comfy_table::{presets::NOTHING, Table};

use super::cluster::runtime;
use super::{to_data, CheckFailed, Ctx, InputError, Output};
use crate::actions::fit::{self, ModelFiles, ModelFit, Options};
use crate::hub::HubClient;
use crate::plan::PlannedModel;
use crate::report::size;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Before any GPU is paid for: vLLM refuses to start when one request at max_model_len does not fit \
in the KV cache left after the weights and its own overhead (\"To serve at least one request with \
the model's max seq len (N), X GiB KV cache is needed, which is larger than the available KV cache \
memory\"). fit computes that rule per GPU of the pod:

  KV bytes/token = 2 x full-attention layers x max(1, KV heads / TP) x head_dim x KV dtype bytes
                   (sliding-window layers hold at most their window; MLA one latent per layer)
  available      = utilisation x GPU memory - weights / TP - overhead
  fits           if KV bytes/token x maxModelLen <= available

and prints the numbers, the verdict and the largest maxModelLen that fits. Inputs: config.json and \
the safetensors sizes from the Hub (the revision's listing; config.json into stage-model's cache) \
or --from-dir; utilisation from the model's or preset's --gpu-memory-utilization, else vLLM's \
default 0.92 (say which); maxModelLen, else --max-model-len, else config.json's \
max_position_embeddings; --kv-cache-dtype=fp8* halves the KV cache; TP = tensorParallelSize, else \
gpus. GPU types and their memory are catalog data (gpus: in catalog/presets.yaml). The overhead \
(activations, CUDA graphs, memory outside torch) is an estimate: vLLM's startup profiling log is \
the ground truth. A CPU model is checked against its pod's memory limit instead: its weights in \
the dtype vLLM runs them (--dtype=float32 doubles bf16 weights) and the fixed KV space \
VLLM_CPU_KVCACHE_SPACE. Exit 1 when a model does not fit. -o json prints one object per model.")]
pub struct Args {
    /// Models to check (default: every vLLM model of the plan).
    pub models: Vec<String>,
    /// The GPU type the model would run on (see gpus: in catalog/presets.yaml: T4, L4, A10G, L40S,
    /// A100-40GB, A100-80GB, H100-80GB, H200, B200). Without it, the smallest GPU the cluster's
    /// nodes name in their nvidia.com/gpu.product (and gpu.memory) labels.
    #[arg(long)]
    pub gpu: Option<String>,
    /// Read config.json and the safetensors from this directory instead of the Hub (one model).
    #[arg(long, value_name = "DIR")]
    pub from_dir: Option<PathBuf>,
    /// Override the model's --gpu-memory-utilization.
    #[arg(long, value_name = "FRACTION")]
    pub gpu_memory_utilization: Option<f64>,
    /// Activations, CUDA graphs and memory outside torch, per GPU.
    #[arg(long, value_name = "SIZE", default_value = "2GiB", value_parser = super::modelcar::parse_size)]
    pub overhead: u64,
    /// Read the Hub token from this file.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub target: super::cluster::TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if let Some(u) = args.gpu_memory_utilization {
        if !(u > 0.0 && u <= 1.0) {
            return Err(InputError(format!(
                "--gpu-memory-utilization {u}: a fraction above 0 and at most 1"
            ))
            .into());
        }
    }
    let (inputs, plan) = ctx.plan(None)?;
    let models: Vec<&PlannedModel> = if args.models.is_empty() {
        plan.models
            .iter()
            .filter(|m| m.model.gpus > 0 && m.model.runtime == crate::config::RuntimeName::Vllm)
            .collect()
    } else {
        super::cluster::select_models(ctx, &inputs, &plan, &args.models, false)?
    };
    if models.is_empty() {
        return Err(InputError("no vLLM model to check: name one".into()).into());
    }
    if args.from_dir.is_some() && models.len() != 1 {
        return Err(InputError(
            "--from-dir holds one model's files: name exactly one model".into(),
        )
        .into());
    }
    let any_gpu = models.iter().any(|m| m.model.gpus > 0);
    let gpu = match &args.gpu {
        Some(name) => Some(fit::catalog_gpu(&inputs.catalog, name).map_err(InputError)?),
        None if !any_gpu => None,
        None => Some(runtime()?.block_on(async {
            let target = super::cluster::connect(
                ctx,
                &inputs,
                &args.target,
                super::cluster::Access::ReadOnly,
            )
            .await?;
            fit::smallest_node_gpu(&target.client, &inputs.catalog)
                .await?
                .ok_or_else(|| {
                    anyhow::Error::from(InputError(format!(
                        "no node names its GPU ({} label): pass --gpu TYPE",
                        fit::PRODUCT_LABEL
                    )))
                })
        })?),
    };
    if let Some(g) = &gpu {
        ctx.reporter().note(&format!(
            "GPU: {} ({}), from {}",
            g.name,
            size(g.bytes),
            g.from
        ));
    }
    let opts = Options {
        gpu: gpu.clone(),
        utilization: args.gpu_memory_utilization,
        overhead_bytes: args.overhead,
    };
    let reporter = ctx.reporter();
    let mut fits = Vec::new();
    for pm in models {
        let files: ModelFiles = match &args.from_dir {
            Some(dir) => fit::from_dir(pm, dir)?,
            None => {
                let client = HubClient::from_env(args.token_file.as_deref())?;
                runtime()?.block_on(fit::from_hub(&client, pm, reporter.as_ref()))?
            }
        };
        fits.push(fit::judge(pm, &files, &opts)?);
    }
    ctx.printer.data(&match ctx.output {
        Output::Table => table(&fits),
        o => to_data(o, &fits)?,
    });
    let failed: Vec<&str> = fits
        .iter()
        .filter(|f| !f.verdict.fits)
        .map(|f| f.model.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CheckFailed(format!("does not fit: {}", failed.join(", "))).into())
    }
}

fn table(fits: &[ModelFit]) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(vec![
        "MODEL",
        "GPU",
        "TP",
        "WEIGHTS/GPU",
        "KV/TOKEN",
        "KV@LEN",
        "AVAILABLE",
        "VERDICT",
        "LONGEST THAT FITS",
    ]);
    for f in fits {
        let v = &f.verdict;
        let available = fit::signed_size(v.available_bytes);
        t.add_row(vec![
            f.model.clone(),
            format!("{} ({})", f.gpu, size(f.gpu_bytes)),
            f.tensor_parallel.to_string(),
            size(v.weights_bytes_per_gpu),
            size(v.kv_bytes_per_token),
            format!("{} @ {}", size(v.kv_bytes_needed), f.max_model_len),
            available,
            if v.fits { "fits" } else { "DOES NOT FIT" }.to_string(),
            v.max_model_len_that_fits.to_string(),
        ]);
    }
    let mut out = t.to_string();
    out.push('\n');
    for f in fits {
        out.push_str(&format!(
            "{}: utilisation {} ({}), maxModelLen {} ({}), {} weights ({}), KV dtype {} byte(s), overhead {}\n",
            f.model, f.utilization, f.utilization_from, f.max_model_len, f.max_model_len_from,
            size(f.weights_bytes), f.files_from, f.kv_dtype_bytes, size(f.overhead_bytes)
        ));
    }
    out
}
