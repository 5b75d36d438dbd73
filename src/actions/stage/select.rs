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
            hf_source: m.model.source.to_string(),
        }),
        None => Ok(()),
    }
}
