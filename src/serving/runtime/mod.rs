//! The engine that serves a model, behind the same seam as the layers: how it is started (command
//! line), where it listens, which paths answer health and the OpenAI API, how it takes an API key,
//! and what a model must get right for it (checks that name the config field and the fix).
//!
//! vLLM runs in our own container on every layer (`vllm.rs`). llama.cpp (`llama_cpp.rs`) and
//! Ollama (`ollama.rs`) run on KServe as ClusterServingRuntimes the catalog's presets define; a new
//! runtime is a file here and an arm in [`named`].

mod llama_cpp;
mod ollama;
mod vllm;

use std::collections::BTreeMap;

use crate::catalog::Preset;
use crate::config::{Model, RuntimeName, ServingLayer};
use crate::consts;

use super::Weights;

/// A problem a runtime finds in a model: the field under the model (`.args`, `.env.X`, …), what
/// is wrong, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(field: &str, message: impl Into<String>, help: &str) -> Problem {
        Problem {
            field: field.to_string(),
            message: message.into(),
            help: Some(help.to_string()),
        }
    }
}

/// What a runtime's checks look at: the model, its preset, the arguments and environment as
/// rendered (preset then model), and the CPU cores its pods get (for a CPU preset).
pub struct CheckInput<'a> {
    pub model: &'a Model,
    pub preset: &'a Preset,
    pub args: Vec<&'a str>,
    pub env: BTreeMap<&'a str, &'a str>,
    /// The cores the serving pod can count on (None when neither a request nor, where the layer
    /// counts it, a limit is set).
    pub cpu_cores: Option<f64>,
    /// What `cpu_cores` was read from, for messages ("none" when unset).
    pub cpu_shown: String,
}

/// What a runtime's arguments depend on: the model, its preset, how the weights arrive and where
/// the container sees them (`mount`: the staged directory or KServe's `/mnt/models`).
pub struct ArgsInput<'a> {
    pub model: &'a Model,
    pub preset: &'a Preset,
    pub weights: &'a Weights,
    pub mount: &'a str,
}

/// How a ClusterServingRuntime's container checks that the engine is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// `GET` on the runtime's health path.
    Http,
    /// A command in the container (exit 0 = ready).
    Exec(Vec<String>),
}

/// One serving engine.
pub trait Runtime: Sync {
    fn name(&self) -> RuntimeName;

    /// The container port the engine listens on.
    fn port(&self) -> u16;

    /// The path that answers 200 once the engine is up (probes and smoke).
    fn health_path(&self) -> &'static str;

    /// The OpenAI-compatible API's model list (`GET`).
    fn models_path(&self) -> &'static str {
        "/v1/models"
    }

    /// The OpenAI-compatible API's completion path: chat (`/v1/chat/completions`) or plain
    /// (`/v1/completions`).
    fn completion_path(&self, chat: bool) -> &'static str {
        if chat {
            "/v1/chat/completions"
        } else {
            "/v1/completions"
        }
    }

    /// The environment variable the engine reads the API key it enforces from, if it has one.
    fn api_key_env(&self) -> Option<&'static str>;

    /// The name clients send as `"model"` and `/v1/models` lists.
    fn served_name<'m>(&self, m: &'m Model) -> &'m str {
        m.served_name()
    }

    /// Whether the engine is served on `layer`.
    fn serves_on(&self, _layer: ServingLayer) -> bool {
        true
    }

    /// The KServe model format of the engine's ClusterServingRuntime (`modelFormat.name`); None
    /// when it runs in our own `kserve-container` (vLLM).
    fn model_format(&self) -> Option<&'static str> {
        None
    }

    /// The engine's per-model arguments: model location, identity, then the preset's, derived
    /// and the model's own. On a ClusterServingRuntime they follow the runtime's own
    /// ([`Runtime::server_args`]): KServe concatenates the two lists.
    fn args(&self, input: &ArgsInput<'_>) -> Vec<String>;

    /// Per-model environment the engine needs (before the preset's and the model's own).
    fn env(&self, _m: &Model, _weights: &Weights) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The ClusterServingRuntime container's command and the arguments every model shares.
    fn server_command(&self) -> Vec<String> {
        Vec::new()
    }

    fn server_args(&self) -> Vec<String> {
        Vec::new()
    }

    /// Environment every model of the ClusterServingRuntime shares.
    fn server_env(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// How the ClusterServingRuntime's readiness probe asks.
    fn readiness(&self) -> Readiness {
        Readiness::Http
    }

    /// What the model gets wrong for this engine (on its preset's device).
    fn problems(&self, input: &CheckInput<'_>) -> Vec<Problem>;
}

static VLLM: vllm::Vllm = vllm::Vllm;
static LLAMA_CPP: llama_cpp::LlamaCpp = llama_cpp::LlamaCpp;
static OLLAMA: ollama::Ollama = ollama::Ollama;

/// The descriptor of a runtime.
pub fn named(name: RuntimeName) -> &'static dyn Runtime {
    match name {
        RuntimeName::Vllm => &VLLM,
        RuntimeName::LlamaCpp => &LLAMA_CPP,
        RuntimeName::Ollama => &OLLAMA,
    }
}

/// The runtime that serves `m`.
pub fn of(m: &Model) -> &'static dyn Runtime {
    named(m.runtime)
}

/// The default runtime, for what is not about one model (the probes every vLLM pod shares).
pub fn default_runtime() -> &'static dyn Runtime {
    &VLLM
}

/// The ClusterServingRuntime a non-vLLM preset is rendered as: `platform-<preset>`.
pub fn serving_runtime_name(preset: &str) -> String {
    format!("{}{preset}", consts::SERVING_RUNTIME_PREFIX)
}

/// Whether a flag (`--x` or `--x=…`) is among `args`.
pub fn has_flag<S: AsRef<str>>(args: &[S], flag: &str) -> bool {
    args.iter().any(|a| {
        let a = a.as_ref();
        a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('='))
    })
}

/// The model's settings for other engines than its own (`llamaCpp`, `ollama`, `file`): each is an
/// error naming the field, since it would silently do nothing.
pub fn foreign_settings(m: &Model) -> Vec<Problem> {
    let mut out = Vec::new();
    let rt = m.runtime;
    if m.llama_cpp.is_some() && rt != RuntimeName::LlamaCpp {
        out.push(Problem::new(
            ".llamaCpp",
            format!("llama.cpp settings on a model whose runtime is {rt}"),
            "remove `llamaCpp`, or set `runtime: llama-cpp`",
        ));
    }
    if m.ollama.is_some() && rt != RuntimeName::Ollama {
        out.push(Problem::new(
            ".ollama",
            format!("Ollama settings on a model whose runtime is {rt}"),
            "remove `ollama`, or set `runtime: ollama`",
        ));
    }
    if m.file.is_some() && rt != RuntimeName::LlamaCpp {
        out.push(Problem::new(
            ".file",
            format!("`file` names one GGUF file for llama.cpp; this model's runtime is {rt}"),
            "remove `file` (vLLM serves the whole repository), or set `runtime: llama-cpp`",
        ));
    }
    out
}
