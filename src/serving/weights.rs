//! Where a model's weights come from at serving time, decided once from its runtime, source,
//! `storage.staged` and layer: the renderer, stage-model, status and teardown all ask here.

use crate::config::source::Source;
use crate::config::{Model, RuntimeName};

/// How the serving pods get a model's weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weights {
    /// Pre-staged on the model's PVC by `platform stage-model`.
    Staged,
    /// The engine downloads them from the Hub itself, caching on the model's PVC.
    Hub,
    /// KServe puts them at `/mnt/models` from this URI (its storage initializer for `s3://`,
    /// `hf://` on llm-d and `pvc://`; a modelcar sidecar for `oci://`).
    Storage(String),
    /// The engine pulls them by name (Ollama), keeping what it pulled on the model's PVC.
    Pulled,
}

impl Weights {
    /// Whether the model gets a PVC of its own (rendered, staged onto, listed by status, kept or
    /// deleted by teardown).
    pub fn needs_pvc(&self) -> bool {
        !matches!(self, Weights::Storage(_))
    }
}

/// The weights of `m` on its layer.
pub fn of(m: &Model) -> Weights {
    if m.runtime == RuntimeName::Ollama {
        return Weights::Pulled;
    }
    if m.staged() {
        return Weights::Staged;
    }
    match m.source.parsed() {
        Ok(Source::HuggingFace { repo }) if !super::layer(m.layer).pods_download_weights() => {
            Weights::Storage(hub_uri(repo, &m.revision))
        }
        Ok(Source::HuggingFace { .. }) | Err(_) => Weights::Hub,
        // One object of a bucket prefix (a GGUF file): KServe fetches just that object.
        Ok(Source::S3 { .. }) if m.single_file().is_some() => Weights::Storage(format!(
            "{}/{}",
            m.source.as_str().trim_end_matches('/'),
            m.single_file().unwrap_or_default()
        )),
        Ok(_) => Weights::Storage(m.source.as_str().to_string()),
    }
}

/// `hf://org/name`, with `:revision` unless it is `main` (KServe's form).
pub fn hub_uri(repo: &str, revision: &str) -> String {
    if revision == "main" {
        format!("hf://{repo}")
    } else {
        format!("hf://{repo}:{revision}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(yaml: &str) -> Model {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn each_source_reaches_the_pods_its_own_way() {
        let m = model("{name: a, layer: kserve, source: hf://o/n, preset: p}");
        assert_eq!(of(&m), Weights::Staged);
        let m = model(
            "{name: a, layer: kserve, source: hf://o/n, preset: p, storage: {staged: false}}",
        );
        assert_eq!(of(&m), Weights::Hub);
        let m = model("{name: a, layer: llm-d, source: hf://o/n, revision: v1, preset: p, storage: {staged: false}}");
        assert_eq!(of(&m), Weights::Storage("hf://o/n:v1".into()));
        let m = model("{name: a, layer: kserve, source: 'oci://r.example/m@sha256:ab', preset: p}");
        assert_eq!(
            of(&m),
            Weights::Storage("oci://r.example/m@sha256:ab".into())
        );
        assert!(!of(&m).needs_pvc());
        let m =
            model("{name: a, layer: kserve, runtime: ollama, ollama: {model: 'q:1'}, preset: p}");
        assert_eq!(of(&m), Weights::Pulled);
        assert!(of(&m).needs_pvc());
    }
}
