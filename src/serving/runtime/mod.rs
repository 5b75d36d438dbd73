//! The engine that serves a model, behind the same seam as the layers: how it is started (command
//! line), where it listens, which paths answer health and the OpenAI API, how it takes an API key,
//! and what a model must get right for it (checks that name the config field and the fix).
//!
//! vLLM is the first runtime (`vllm.rs`); a new one is a file here and an arm in [`of`].

mod vllm;

use std::collections::BTreeMap;

use crate::catalog::Preset;
use crate::config::Model;

/// A problem a runtime finds in a model: the field under the model (`.args`, `.env.X`, …), what
/// is wrong, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
    pub help: Option<String>,
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

/// One serving engine.
pub trait Runtime: Sync {
    /// The container port the engine listens on.
    fn port(&self) -> u16;

    /// The path that answers 200 once the model is loaded (probes and smoke).
    fn health_path(&self) -> &'static str;

    /// The OpenAI-compatible API's model list (`GET`).
    fn models_path(&self) -> &'static str;

    /// The OpenAI-compatible API's completion path: chat (`/v1/chat/completions`) or plain
    /// (`/v1/completions`).
    fn completion_path(&self, chat: bool) -> &'static str;

    /// The environment variable the engine reads the API key it enforces from, if it has one.
    fn api_key_env(&self) -> Option<&'static str>;

    /// The engine's arguments: model location, identity, network, then the preset's, derived and
    /// the model's own. `mount` is where pre-staged weights are mounted.
    fn args(&self, m: &Model, preset: &Preset, mount: &str) -> Vec<String>;

    /// What the model gets wrong for this engine (on its preset's device).
    fn problems(&self, input: &CheckInput<'_>) -> Vec<Problem>;
}

static VLLM: vllm::Vllm = vllm::Vllm;

/// The runtime that serves `m` (vLLM: the only one so far).
pub fn of(_m: &Model) -> &'static dyn Runtime {
    &VLLM
}

/// The default runtime, for what is not about one model (the probes every vLLM pod shares).
pub fn default_runtime() -> &'static dyn Runtime {
    &VLLM
}
