//! Which planned models `stage-model` stages: only pre-staged ones (`storage.staged: true`), whose
//! serving pods read the weights from the PVC; the others fetch their weights themselves.

use super::StageError;
use crate::plan::{Plan, PlannedModel};

/// `--all`: every pre-staged model of the plan.
pub fn all_pre_staged(plan: &Plan) -> Vec<&PlannedModel> {
    plan.models.iter().filter(|m| m.staged).collect()
}

/// Refuse the first named model that is not pre-staged.
pub fn check_pre_staged(models: &[&PlannedModel]) -> Result<(), StageError> {
    match models.iter().find(|m| !m.staged) {
        Some(m) => Err(StageError::NotPreStaged {
            model: m.name.clone(),
            why: why_not_staged(m),
        }),
        None => Ok(()),
    }
}

/// How a model that is not pre-staged gets its weights, and whether staging could apply.
fn why_not_staged(m: &PlannedModel) -> String {
    use crate::config::source::Source;
    use crate::serving::Weights;
    match m.weights() {
        Weights::Pulled => format!(
            "Ollama pulls {} itself into the model's volume: there is nothing to stage",
            crate::serving::runtime::of(&m.model).served_name(&m.model)
        ),
        Weights::Storage(uri)
            if matches!(m.model.source.parsed(), Ok(Source::Oci { .. } | Source::Pvc { .. })) =>
        {
            format!("its weights are in {uri}: there is nothing to stage")
        }
        Weights::Storage(uri) => format!(
            "KServe fetches {uri} itself (storage.staged: false); set storage.staged: true to stage it"
        ),
        Weights::Hub | Weights::Staged => format!(
            "its serving pods fetch {} themselves (storage.staged: false); set storage.staged: true to stage it",
            m.model.source
        ),
    }
}
