//! Files platform writes once for the user to own: `init` (a GitOps repository's first
//! `environments/<env>/config.yaml` and `.gitignore`) and `catalog eject` (the embedded catalog and
//! templates, to customise). Neither ever overwrites a file the user has (init only with `--force`).

pub mod config_text;
pub mod eject;
pub mod init;
mod write;

use std::path::PathBuf;

pub use write::FileAction;

use crate::diag::Diagnostics;

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{} exists{}: {hint}", .paths[0].display(), others(.paths.len()))]
    Exists { paths: Vec<PathBuf>, hint: String },
    /// What init would write fails the lint checks (nothing was written).
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error("{0}")]
    Lint(#[from] crate::lint::LintError),
    #[error("{0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Template(#[from] crate::render::TemplateError),
    #[error("{what} {value:?} is not valid: {help}")]
    BadValue {
        what: &'static str,
        value: String,
        help: &'static str,
    },
    #[error("no --repo-url given and {0} has no `origin` remote: pass --repo-url URL (the GitOps repository Argo CD will read, e.g. git@github.com:acme/platform-gitops.git)")]
    NoRepoUrl(PathBuf),
    #[error("the repository URL {0} carries a credential: pass it without `user:token@` (Argo CD gets credentials from a repository Secret, never from config.yaml)")]
    CredentialInUrl(String),
    #[error("{path} is ignored by {by}: Argo CD would never see clusters/ (remove the ignore rule and re-run)")]
    IgnoresClusters { path: String, by: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("git: {what}: {message}")]
    Git { what: String, message: String },
}

fn others(n: usize) -> String {
    match n {
        1 => String::new(),
        2 => " (and 1 other file)".to_string(),
        n => format!(" (and {} other files)", n - 1),
    }
}
