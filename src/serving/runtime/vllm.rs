//! vLLM's OpenAI-compatible server (`vllm serve`), in our custom container on raw vLLM and KServe
//! and as llm-d's engine.

use super::{has_flag, ArgsInput, CheckInput, Problem, Runtime};
use crate::catalog::Device;
use crate::config::RuntimeName;
use crate::consts;
use crate::serving::Weights;

pub struct Vllm;

impl Runtime for Vllm {
    fn name(&self) -> RuntimeName {
        RuntimeName::Vllm
    }

    fn port(&self) -> u16 {
        consts::VLLM_PORT
    }

    fn health_path(&self) -> &'static str {
        "/health"
    }

    fn api_key_env(&self) -> Option<&'static str> {
        Some(consts::VLLM_API_KEY_ENV)
    }

    fn args(&self, input: &ArgsInput<'_>) -> Vec<String> {
        let (m, preset) = (input.model, input.preset);
        let mut args: Vec<String> = Vec::new();
        if *input.weights == Weights::Hub {
            args.push(format!("--model={}", m.hf_repo().unwrap_or_default()));
            args.push(format!("--revision={}", m.revision));
        } else {
            args.push(format!("--model={}", input.mount));
        }
        args.push(format!("--served-model-name={}", m.served_name()));
        args.push("--host=0.0.0.0".into());
        args.push(format!("--port={}", self.port()));
        args.extend(preset.args.iter().cloned());
        if m.gpus > 1
            && !has_flag(&args, "--tensor-parallel-size")
            && !has_flag(&m.args, "--tensor-parallel-size")
        {
            args.push(format!("--tensor-parallel-size={}", m.gpus));
        }
        if let Some(len) = m.max_model_len {
            args.push(format!("--max-model-len={len}"));
        }
        args.extend(m.args.iter().cloned());
        args
    }

    fn problems(&self, input: &CheckInput<'_>) -> Vec<Problem> {
        let mut out = Vec::new();
        let problem = |field: &str, message: String, help: Option<&str>| Problem {
            field: field.to_string(),
            message,
            help: help.map(str::to_string),
        };
        if input
            .env
            .get("VLLM_CPU_OMP_THREADS_BIND")
            .is_some_and(|v| v.trim() == "all")
        {
            out.push(problem(
                ".env.VLLM_CPU_OMP_THREADS_BIND",
                "must not be `all` (vLLM rejects it: invalid literal for int())".into(),
                Some("leave it unset (auto) or give an explicit core-id list such as 0-3"),
            ));
        }
        if input.preset.device != Device::Cpu {
            return out;
        }
        if input.cpu_cores.unwrap_or(0.0) < 2.0 {
            out.push(problem(
                ".resources.requests.cpu",
                format!("vLLM on CPU needs at least 2 cores (got {})", input.cpu_shown),
                Some("set `resources.requests.cpu: \"2\"` (and `limits.cpu` ≥ it): vLLM reserves one core for the API server"),
            ));
        }
        if !input.args.contains(&"--enforce-eager") {
            out.push(problem(
                ".args",
                "vLLM on CPU needs --enforce-eager (torch.compile is slow and fragile on CPU)"
                    .into(),
                Some("add --enforce-eager to the model's args or the preset's"),
            ));
        }
        match input
            .args
            .iter()
            .rev()
            .find_map(|a| a.strip_prefix("--dtype="))
        {
            Some("float32") => {}
            Some(d) => out.push(problem(
                ".args",
                format!("--dtype={d} on CPU: CPU has no fp16/bf16 fast path"),
                Some("use --dtype=float32"),
            )),
            None => out.push(problem(
                ".args",
                "vLLM on CPU needs --dtype=float32".into(),
                Some("add --dtype=float32"),
            )),
        }
        out
    }
}
