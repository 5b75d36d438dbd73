//! Ollama, as a KServe ClusterServingRuntime (`platform-<preset>`): it pulls the model tag from its
//! own registry at start into the model's PVC (`OLLAMA_MODELS`), so a restart does not pull again,
//! and serves the OpenAI API under that tag. CPU or GPU, from the same image.

use super::{ArgsInput, CheckInput, Problem, Readiness, Runtime};
use crate::config::{Model, RuntimeName, ServingLayer};
use crate::consts;
use crate::serving::Weights;

pub struct Ollama;

/// The variable the start script reads the tag to pull from.
const MODEL_ENV: &str = "PLATFORM_OLLAMA_MODEL";

/// Starts the server, waits for it, pulls the tag (a no-op when the PVC has it) and then waits on
/// the server; TERM stops the server. A failed pull fails the container (its log says why).
const START: &str = r#"ollama serve & serve=$!
trap 'kill -TERM "$serve"' TERM INT
until ollama list >/dev/null 2>&1; do kill -0 "$serve" 2>/dev/null || exit 1; sleep 1; done
ollama pull "$PLATFORM_OLLAMA_MODEL" || { kill -TERM "$serve"; exit 1; }
wait "$serve""#;

/// A tag Ollama's registry names: `name[:tag]`, optionally `namespace/name`.
fn is_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 200
        && !t.starts_with(['-', '.', '/', ':'])
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
}

impl Runtime for Ollama {
    fn name(&self) -> RuntimeName {
        RuntimeName::Ollama
    }

    fn port(&self) -> u16 {
        consts::KSERVE_RUNTIME_PORT
    }

    /// "Ollama is running" once the server listens (the model may still be pulling: readiness
    /// asks for the model itself).
    fn health_path(&self) -> &'static str {
        "/"
    }

    fn api_key_env(&self) -> Option<&'static str> {
        None
    }

    fn served_name<'m>(&self, m: &'m Model) -> &'m str {
        m.ollama
            .as_ref()
            .map(|o| o.model.as_str())
            .unwrap_or(&m.name)
    }

    fn serves_on(&self, layer: ServingLayer) -> bool {
        layer == ServingLayer::Kserve
    }

    fn model_format(&self) -> Option<&'static str> {
        Some("ollama")
    }

    fn args(&self, _input: &ArgsInput<'_>) -> Vec<String> {
        Vec::new()
    }

    fn env(&self, m: &Model, _weights: &Weights) -> Vec<(String, String)> {
        let mut env = vec![
            (MODEL_ENV.into(), self.served_name(m).to_string()),
            (
                "OLLAMA_MODELS".into(),
                format!("{}/{}", consts::MODEL_MOUNT, m.weights_dir()),
            ),
        ];
        if let Some(len) = m.max_model_len {
            env.push(("OLLAMA_CONTEXT_LENGTH".into(), len.to_string()));
        }
        env
    }

    fn server_command(&self) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), START.into()]
    }

    fn server_env(&self) -> Vec<(String, String)> {
        vec![
            ("OLLAMA_HOST".into(), format!("0.0.0.0:{}", self.port())),
            ("HOME".into(), "/tmp".into()),
            // Keep the model loaded: the first request after an unload waits for a reload.
            ("OLLAMA_KEEP_ALIVE".into(), "-1".into()),
        ]
    }

    fn readiness(&self) -> Readiness {
        Readiness::Exec(vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("ollama show \"${MODEL_ENV}\" >/dev/null"),
        ])
    }

    fn problems(&self, input: &CheckInput<'_>) -> Vec<Problem> {
        let m = input.model;
        let mut out = Vec::new();
        match &m.ollama {
            None => out.push(Problem::new(
                ".ollama.model",
                "an Ollama model needs the tag to pull",
                "set `ollama: {model: qwen3:4b}`",
            )),
            Some(o) if !is_tag(&o.model) => out.push(Problem::new(
                ".ollama.model",
                format!("`{}` is not an Ollama model tag", o.model.escape_debug()),
                "write it as Ollama's library names it: `qwen3:4b`, `llama3.1:8b`",
            )),
            Some(_) => {}
        }
        if !m.source.is_empty() {
            out.push(Problem::new(
                ".source",
                "Ollama pulls its model from its own registry; a source would be ignored",
                "remove `source` (the tag goes in `ollama.model`)",
            ));
        }
        if m.storage.staged == Some(true) {
            out.push(Problem::new(
                ".storage.staged",
                "Ollama pulls its own weights: there is nothing for `platform stage-model` to stage",
                "remove `storage.staged` (the PVC keeps what Ollama pulled)",
            ));
        }
        if m.api_key_secret.is_some() {
            out.push(Problem::new(
                ".apiKeySecret",
                "Ollama cannot enforce an API key",
                "remove `apiKeySecret`, or serve the model with llama-cpp or vllm",
            ));
        }
        if m.served_name.is_some() {
            out.push(Problem::new(
                ".servedName",
                "Ollama serves the model under its tag",
                "remove `servedName`; clients send the tag (`ollama.model`)",
            ));
        }
        if !m.args.is_empty() {
            out.push(Problem::new(
                ".args",
                "Ollama takes no command-line arguments",
                "remove `args`; use `env` for OLLAMA_* settings",
            ));
        }
        out
    }
}
