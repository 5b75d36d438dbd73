//! The errors of `platform model add|remove` (apart from the action, so that crate::error can
//! classify them without an import cycle through lint).

use std::path::PathBuf;

use crate::config::edit::EditError;
use crate::diag::Diagnostics;

#[derive(Debug, thiserror::Error)]
pub enum ModelEditError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Edit {
        path: String,
        #[source]
        source: EditError,
    },
    #[error("model `{model}` is not in {path} (models there: {names}){hint}")]
    Unknown {
        model: String,
        path: String,
        names: String,
        hint: String,
    },
    /// The edited config does not pass lint: the findings, nothing written.
    #[error(transparent)]
    Invalid(Diagnostics),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Gitops(#[from] crate::gitops::GitopsError),
}
