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
    /// The URL is shown with the credential masked; `clean` is it without the credential.
    #[error("{}", credential_message(.url, .what, *.from, .clean))]
    CredentialInUrl {
        url: String,
        what: &'static str,
        from: init::UrlFrom,
        clean: String,
    },
    #[error("{path} is ignored by {by}: Argo CD would never see clusters/ (remove the ignore rule and re-run)")]
    IgnoresClusters { path: String, by: String },
    #[error("{path} is a symbolic link (to {target}): platform writes nothing through a link, which may lead out of the repository; replace it with a real directory (or point --repo at the real repository) and re-run")]
    Symlink { path: PathBuf, target: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("git: {what}: {message}")]
    Git { what: String, message: String },
}

fn credential_message(url: &str, what: &str, from: init::UrlFrom, clean: &str) -> String {
    const WHY: &str = "Argo CD gets credentials from a repository Secret, never from config.yaml";
    match from {
        init::UrlFrom::Flag => format!(
            "the repository URL {url} carries a credential ({what}): pass it without one, e.g. --repo-url {clean} ({WHY})"
        ),
        init::UrlFrom::Origin => format!(
            "the repository URL comes from the `origin` remote, {url}, which carries a credential ({what}): init would write it into config.yaml. Remove it from the remote with `git remote set-url origin {clean}` (keep the token in a git credential helper), or pass --repo-url URL ({WHY})"
        ),
    }
}

fn others(n: usize) -> String {
    match n {
        1 => String::new(),
        2 => " (and 1 other file)".to_string(),
        n => format!(" (and {} other files)", n - 1),
    }
}
