//! llama.cpp's `llama-server`: one GGUF file, on CPU or offloaded to the pod's GPUs, as a KServe
//! ClusterServingRuntime (`platform-<preset>`). The file arrives through KServe (`pvc://` when
//! pre-staged, `s3://`, `oci://`) at `/mnt/models`, or llama-server downloads it from the Hub
//! itself (`--hf-repo`/`--hf-file`, cached on the model's PVC).

use super::{has_flag, ArgsInput, CheckInput, Problem, Runtime};
use crate::catalog::Preset;
use crate::config::source::Source;
use crate::config::{Model, Quantity, RuntimeName, ServingLayer};
use crate::consts;
use crate::serving::Weights;

pub struct LlamaCpp;

/// A slot's context when neither `llamaCpp.contextSize` nor `maxModelLen` is set.
const DEFAULT_CONTEXT: u32 = 4096;
/// Parallel slots when `llamaCpp.parallel` is unset.
const DEFAULT_PARALLEL: u32 = 2;

impl LlamaCpp {
    fn context(m: &Model) -> u32 {
        m.llama_cpp
            .as_ref()
            .and_then(|l| l.context_size)
            .or(m.max_model_len)
            .unwrap_or(DEFAULT_CONTEXT)
    }

    fn parallel(m: &Model) -> u32 {
        m.llama_cpp
            .as_ref()
            .and_then(|l| l.parallel)
            .unwrap_or(DEFAULT_PARALLEL)
    }

    /// `llamaCpp.threads`, else the whole cores the pod requests (none on a GPU pod).
    fn threads(m: &Model, preset: &Preset) -> Option<u32> {
        if let Some(t) = m.llama_cpp.as_ref().and_then(|l| l.threads) {
            return Some(t);
        }
        if m.gpus > 0 {
            return None;
        }
        let cores = preset
            .resources_for(&m.resources)
            .requests
            .get("cpu")
            .map(Quantity::value)?;
        Some((cores.floor() as u32).max(1))
    }
}

impl Runtime for LlamaCpp {
    fn name(&self) -> RuntimeName {
        RuntimeName::LlamaCpp
    }

    fn port(&self) -> u16 {
        consts::KSERVE_RUNTIME_PORT
    }

    /// 503 while the model loads, 200 once it serves.
    fn health_path(&self) -> &'static str {
        "/health"
    }

    fn api_key_env(&self) -> Option<&'static str> {
        Some(consts::LLAMA_API_KEY_ENV)
    }

    fn serves_on(&self, layer: ServingLayer) -> bool {
        layer == ServingLayer::Kserve
    }

    fn model_format(&self) -> Option<&'static str> {
        Some("gguf")
    }

    fn args(&self, input: &ArgsInput<'_>) -> Vec<String> {
        let (m, preset) = (input.model, input.preset);
        let file = m.single_file().unwrap_or_default();
        let mut args = Vec::new();
        if *input.weights == Weights::Hub {
            args.push(format!("--hf-repo={}", m.hf_repo().unwrap_or_default()));
            args.push(format!("--hf-file={file}"));
        } else {
            args.push(format!("--model={}/{file}", input.mount));
        }
        args.push(format!("--alias={}", m.served_name()));
        if let Some(t) = Self::threads(m, preset) {
            args.push(format!("--threads={t}"));
        }
        let parallel = Self::parallel(m);
        args.push(format!(
            "--ctx-size={}",
            u64::from(Self::context(m)) * u64::from(parallel)
        ));
        args.push(format!("--parallel={parallel}"));
        if m.gpus > 0
            && !has_flag(&preset.args, "--n-gpu-layers")
            && !has_flag(&m.args, "--n-gpu-layers")
        {
            args.push("--n-gpu-layers=999".into());
        }
        args.extend(preset.args.iter().cloned());
        args.extend(m.args.iter().cloned());
        args
    }

    fn env(&self, m: &Model, weights: &Weights) -> Vec<(String, String)> {
        match weights {
            Weights::Hub => vec![(
                "LLAMA_CACHE".into(),
                format!("{}/{}", consts::MODEL_MOUNT, m.weights_dir()),
            )],
            _ => Vec::new(),
        }
    }

    fn server_command(&self) -> Vec<String> {
        vec!["/app/llama-server".into()]
    }

    fn server_args(&self) -> Vec<String> {
        vec![
            "--host=0.0.0.0".into(),
            format!("--port={}", self.port()),
            "--metrics".into(),
        ]
    }

    fn server_env(&self) -> Vec<(String, String)> {
        vec![("HOME".into(), "/tmp".into())]
    }

    fn problems(&self, input: &CheckInput<'_>) -> Vec<Problem> {
        let m = input.model;
        let mut out = Vec::new();
        match m.single_file() {
            None => out.push(Problem::new(
                ".file",
                "llama.cpp serves one GGUF file, and none is named",
                "name it: `file: qwen2.5-0.5b-instruct-q4_k_m.gguf` (the file in the repository, bucket prefix or image)",
            )),
            Some(f) if !f.to_ascii_lowercase().ends_with(".gguf") => out.push(Problem::new(
                ".file",
                format!("`{f}` is not a GGUF file: llama.cpp cannot load safetensors or other formats"),
                "name a .gguf file, or serve safetensors weights with `runtime: vllm`",
            )),
            Some(f) if f.contains('/') || f.starts_with('.') => out.push(Problem::new(
                ".file",
                format!("`{f}` is not a plain file name"),
                "name a file at the top of the repository, bucket prefix or image",
            )),
            Some(_) => {}
        }
        let hub_download =
            matches!(m.source.parsed(), Ok(Source::HuggingFace { .. })) && !m.staged();
        if hub_download && m.revision != "main" {
            out.push(Problem::new(
                ".revision",
                format!("llama-server downloads the Hub's main branch only; revision is `{}`", m.revision),
                "pre-stage the file (`storage.staged: true`, then `platform stage-model`) to pin a revision",
            ));
        }
        if m.tensor_parallel_size.is_some_and(|tp| tp > 1) {
            out.push(Problem::new(
                ".tensorParallelSize",
                "llama.cpp has no tensor parallelism: it splits the model's layers across the pod's GPUs",
                "remove `tensorParallelSize` (gpus alone sets how many GPUs the pod gets)",
            ));
        }
        let l = m.llama_cpp.clone().unwrap_or_default();
        for (field, v) in [
            ("threads", l.threads),
            ("contextSize", l.context_size),
            ("parallel", l.parallel),
        ] {
            if v == Some(0) {
                out.push(Problem::new(
                    &format!(".llamaCpp.{field}"),
                    "must be at least 1",
                    "leave it out for the default",
                ));
            }
        }
        if let (Some(t), Some(cores)) = (l.threads, input.cpu_cores) {
            if f64::from(t) > cores.max(1.0) && m.gpus == 0 {
                out.push(Problem::new(
                    ".llamaCpp.threads",
                    format!("{t} threads on {} CPU core(s): threads beyond the cores slow generation down", input.cpu_shown),
                    "set threads to the pod's CPU request, or leave it out (the default)",
                ));
            }
        }
        out
    }
}
