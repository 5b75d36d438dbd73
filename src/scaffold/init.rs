//! `platform init`: scaffold a GitOps repository — `environments/<env>/config.yaml` (commented,
//! filled from the options, checked with every lint check before anything is written) and a
//! `.gitignore` that does not hide `clusters/` — and `git init` it when it is not in a work tree.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config_text::{self, ConfigValues};
use super::write::{existing, write_all, FileAction};
use super::ScaffoldError;
use crate::catalog::{Catalog, CatalogSource};
use crate::config::GpuStack;
use crate::diag::{Diagnostic, Diagnostics};
use crate::lint::{lint, LintOptions};
use crate::render::Templates;
use crate::url::{credential_in, without_credential};
use crate::{config, consts};

pub struct InitOptions {
    /// The directory to scaffold (created when missing).
    pub repo: PathBuf,
    pub env: String,
    /// Default: the environment name.
    pub cluster_name: Option<String>,
    /// Default: `~/.kube/<cluster name>.yaml`.
    pub kubeconfig: Option<String>,
    /// Default: the `origin` remote's URL (an error without one).
    pub repo_url: Option<String>,
    /// Default: the current branch, else `main`.
    pub branch: Option<String>,
    pub gateway_class: String,
    pub gpu_stack: GpuStack,
    /// Replace an existing config.yaml that differs.
    pub force: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub path: String,
    pub action: FileAction,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitOutcome {
    pub repo: PathBuf,
    pub env: String,
    /// A git repository was created (there was no enclosing work tree).
    pub git_initialized: bool,
    pub files: Vec<FileOutcome>,
    pub repo_url: String,
    pub repo_url_from_origin: bool,
    pub has_origin: bool,
    pub branch: String,
    pub kubeconfig: String,
    pub kubeconfig_exists: bool,
    pub catalog: CatalogSource,
    /// Lint warnings about what was written (errors stop init).
    pub warnings: Vec<Diagnostic>,
}

impl InitOutcome {
    /// Whether this run changed anything on disk.
    pub fn changed(&self) -> bool {
        self.git_initialized
            || self
                .files
                .iter()
                .any(|f| matches!(f.action, FileAction::Created | FileAction::Overwritten))
    }
}

/// What `.gitignore` holds when init creates it.
pub const GITIGNORE: &str = "\
# clusters/<env>/ is the GitOps tree Argo CD syncs: commit it, never ignore it.
# Left behind by editors and interrupted tools:
.platform-*.tmp
*.swp
.DS_Store
";

/// The git state init starts from.
struct GitState {
    repo: Option<git2::Repository>,
    origin: Option<String>,
    branch: Option<String>,
}

pub fn init(opts: &InitOptions) -> Result<InitOutcome, ScaffoldError> {
    check_env(&opts.env)?;
    let git = git_state(&opts.repo);
    let (repo_url, from) = match (&opts.repo_url, &git.origin) {
        (Some(u), _) => (u.clone(), UrlFrom::Flag),
        (None, Some(o)) => (o.clone(), UrlFrom::Origin),
        (None, None) => return Err(ScaffoldError::NoRepoUrl(opts.repo.clone())),
    };
    check_url(&repo_url, from)?;
    let branch = opts
        .branch
        .clone()
        .or_else(|| git.branch.clone())
        .unwrap_or_else(|| "main".to_string());
    if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        return Err(ScaffoldError::BadValue {
            what: "--branch",
            value: branch,
            help: "a git branch name such as main",
        });
    }
    let cluster_name = opts
        .cluster_name
        .clone()
        .unwrap_or_else(|| opts.env.clone());
    check_line("--cluster-name", &cluster_name)?;
    let kubeconfig = opts
        .kubeconfig
        .clone()
        .unwrap_or_else(|| format!("~/.kube/{cluster_name}.yaml"));
    check_line("--kubeconfig", &kubeconfig)?;
    check_line("--gateway-class", &opts.gateway_class)?;
    let templates = Templates::load(&opts.repo)?;
    let catalog = Catalog::load(&opts.repo, &templates.names())?;
    let text = config_text::render(
        &ConfigValues {
            env: &opts.env,
            cluster_name: &cluster_name,
            kubeconfig: &kubeconfig,
            repo_url: &repo_url,
            branch: &branch,
            gateway_class: &opts.gateway_class,
            gpu_stack: opts.gpu_stack,
        },
        &catalog,
    );
    let warnings = validate(opts, &text)?;
    let (files, to_write) = plan_files(opts, text)?;
    if let Some(repo) = &git.repo {
        check_not_ignored(repo, &opts.repo, &opts.env)?;
    }
    let git_initialized = git.repo.is_none();
    if git_initialized {
        let repo = git_init(&opts.repo, &branch)?;
        check_not_ignored(&repo, &opts.repo, &opts.env)?;
    }
    write_all(&opts.repo, &to_write, opts.force)?;
    Ok(InitOutcome {
        repo: opts.repo.clone(),
        env: opts.env.clone(),
        git_initialized,
        files,
        repo_url,
        repo_url_from_origin: from == UrlFrom::Origin,
        has_origin: git.origin.is_some(),
        branch,
        kubeconfig_exists: expand_home(&kubeconfig).is_file(),
        kubeconfig,
        catalog: catalog.source,
        warnings,
    })
}

/// What happens to each file: created, unchanged, kept (.gitignore), overwritten (--force), or a
/// refusal naming every config that differs; and the files to write.
#[allow(clippy::type_complexity)]
fn plan_files(
    opts: &InitOptions,
    text: String,
) -> Result<(Vec<FileOutcome>, Vec<(String, Vec<u8>)>), ScaffoldError> {
    let config_rel = format!(
        "{}/{}/{}",
        consts::ENVIRONMENTS_DIR,
        opts.env,
        consts::CONFIG_FILE
    );
    let mut files = Vec::new();
    let mut conflicts = Vec::new();
    let mut to_write = Vec::new();
    for (rel, content, replaceable) in [
        (config_rel, text.into_bytes(), true),
        (
            ".gitignore".to_string(),
            GITIGNORE.as_bytes().to_vec(),
            false,
        ),
    ] {
        let action = match existing(&opts.repo, &rel)? {
            None => FileAction::Created,
            Some(old) if old == content => FileAction::Unchanged,
            // An existing .gitignore is the user's: kept (and checked not to hide clusters/).
            Some(_) if !replaceable => FileAction::Kept,
            Some(_) if opts.force => FileAction::Overwritten,
            Some(_) => {
                conflicts.push(opts.repo.join(&rel));
                continue;
            }
        };
        if matches!(action, FileAction::Created | FileAction::Overwritten) {
            to_write.push((rel.clone(), content));
        }
        files.push(FileOutcome { path: rel, action });
    }
    if !conflicts.is_empty() {
        return Err(ScaffoldError::Exists {
            paths: conflicts,
            hint: "init never overwrites a file: edit it yourself, or pass --force to replace it with a fresh one (your changes to it are lost)".to_string(),
        });
    }
    Ok((files, to_write))
}

/// The same checks as `platform lint`, on the text about to be written; errors stop init.
fn validate(opts: &InitOptions, text: &str) -> Result<Vec<Diagnostic>, ScaffoldError> {
    let report = lint(
        &LintOptions {
            repo: &opts.repo,
            env: &opts.env,
            profile: None,
            schemas: None,
            config_text: Some(text),
        },
        &|_| {},
    );
    let (errors, warnings): (Vec<_>, Vec<_>) = report
        .diagnostics
        .into_iter()
        .partition(Diagnostic::is_error);
    if !errors.is_empty() {
        return Err(ScaffoldError::Invalid(Diagnostics(errors)));
    }
    Ok(warnings)
}

fn git_state(dir: &Path) -> GitState {
    let repo = if dir.exists() {
        git2::Repository::discover(dir)
            .ok()
            .filter(|r| r.workdir().is_some())
    } else {
        None
    };
    let origin = repo.as_ref().and_then(|r| {
        r.find_remote("origin")
            .ok()
            .and_then(|o| o.url().ok().map(str::to_string))
    });
    let branch = repo.as_ref().and_then(current_branch);
    GitState {
        repo,
        origin,
        branch,
    }
}

/// The branch HEAD is on (also before the first commit); None on a detached HEAD.
fn current_branch(repo: &git2::Repository) -> Option<String> {
    let head = repo.find_reference("HEAD").ok()?;
    let target = head.symbolic_target().ok()??;
    target.strip_prefix("refs/heads/").map(str::to_string)
}

/// Where init took the repository URL from (the fix for a bad one differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlFrom {
    Flag,
    Origin,
}

/// A credential in the repository URL would be written to config.yaml, committed and printed:
/// `user:token@` in the authority (any user part of an http(s) URL, a `user:password` of any
/// scheme), or a query string. Git and Argo CD URLs take no query string, so any `?…` is taken
/// for a credential whatever its name (`access_token`, `private_token`, `token`, `sig`,
/// `X-Amz-Signature`, …): refused, never shown (the URL is printed with it masked).
fn check_url(url: &str, from: UrlFrom) -> Result<(), ScaffoldError> {
    if let Some(what) = credential_in(url) {
        // redact() masks URLs with a scheme; an scp-like `host:path?…` is masked here.
        let shown = crate::gitops::git::redact(url);
        let shown = match shown.split_once('?') {
            Some((base, _)) => format!("{base}?***"),
            None => shown,
        };
        return Err(ScaffoldError::CredentialInUrl {
            url: shown,
            what,
            from,
            clean: without_credential(url),
        });
    }
    if url.trim().is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ScaffoldError::BadValue {
            what: "--repo-url",
            value: url.to_string(),
            help: "a git URL such as git@github.com:acme/platform-gitops.git or https://github.com/acme/platform-gitops.git",
        });
    }
    Ok(())
}

/// A value init writes into config.yaml as one YAML scalar: non-empty, one line, no control
/// character (a newline would make the written file invalid YAML, reported at a line of a file
/// the user never wrote).
fn check_line(what: &'static str, value: &str) -> Result<(), ScaffoldError> {
    if !value.trim().is_empty() && !value.chars().any(char::is_control) {
        return Ok(());
    }
    Err(ScaffoldError::BadValue {
        what,
        value: value.to_string(),
        help: "a non-empty value on one line, without control characters (newline, tab, …)",
    })
}

fn git_init(dir: &Path, branch: &str) -> Result<git2::Repository, ScaffoldError> {
    std::fs::create_dir_all(dir).map_err(|source| ScaffoldError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut o = git2::RepositoryInitOptions::new();
    o.initial_head(branch);
    git2::Repository::init_opts(dir, &o).map_err(|e| ScaffoldError::Git {
        what: format!("initialising a repository in {}", dir.display()),
        message: e.message().to_string(),
    })
}

/// Refuse when git would ignore the rendered tree (Argo CD reads only what is pushed).
fn check_not_ignored(repo: &git2::Repository, dir: &Path, env: &str) -> Result<(), ScaffoldError> {
    let Some(workdir) = repo.workdir() else {
        return Ok(());
    };
    let base = dir
        .canonicalize()
        .ok()
        .and_then(|d| {
            let w = workdir.canonicalize().ok()?;
            d.strip_prefix(&w).ok().map(Path::to_path_buf)
        })
        .unwrap_or_default();
    let probe = base
        .join(consts::CLUSTERS_DIR)
        .join(env)
        .join("project.yaml");
    if repo.is_path_ignored(&probe).unwrap_or(false) {
        return Err(ScaffoldError::IgnoresClusters {
            path: probe.display().to_string(),
            by: "a git ignore rule (.gitignore, .git/info/exclude or core.excludesFile)"
                .to_string(),
        });
    }
    Ok(())
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Whether `env` can be scaffolded (the CLI checked it already; the library does not trust that).
pub fn check_env(env: &str) -> Result<(), ScaffoldError> {
    if config::is_valid_env_name(env) {
        Ok(())
    } else {
        Err(ScaffoldError::BadValue {
            what: "--env",
            value: env.to_string(),
            help: config::ENV_NAME_RULE,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_a_credential_are_refused_plain_ones_accepted() {
        for ok in [
            "git@github.com:acme/gitops.git",
            "https://github.com/acme/gitops.git",
            "ssh://git@github.com/acme/gitops.git",
            "file:///srv/git/gitops.git",
        ] {
            assert!(check_url(ok, UrlFrom::Flag).is_ok(), "{ok}");
        }
        for (bad, clean) in [
            (
                "https://x-access-token:ghp_secret@github.com/acme/gitops.git",
                "https://github.com/acme/gitops.git",
            ),
            (
                "https://ghp_secret@github.com/acme/gitops.git",
                "https://github.com/acme/gitops.git",
            ),
            (
                "ssh://git:pw_secret@github.com/acme/gitops.git",
                "ssh://git@github.com/acme/gitops.git",
            ),
            // Issue 19 High 6: a query string is a credential too, whatever its name.
            (
                "https://h/acme/x.git?access_token=secret",
                "https://h/acme/x.git",
            ),
            (
                "https://h/acme/x.git?private_token=secret&ref=main",
                "https://h/acme/x.git",
            ),
            ("https://h/x.git?X-Amz-Signature=secret", "https://h/x.git"),
            ("git@h:acme/x.git?token=secret", "git@h:acme/x.git"),
        ] {
            for from in [UrlFrom::Flag, UrlFrom::Origin] {
                let e = check_url(bad, from).unwrap_err().to_string();
                assert!(e.contains("carries a credential"), "{bad}: {e}");
                assert!(!e.contains("secret"), "{e}");
                assert_eq!(without_credential(bad), clean);
                if from == UrlFrom::Origin {
                    assert!(
                        e.contains(&format!("git remote set-url origin {clean}")),
                        "{e}"
                    );
                }
            }
        }
        assert!(check_url("", UrlFrom::Flag).is_err());
        assert!(check_url("https://github.com/a b", UrlFrom::Flag).is_err());
        assert!(check_url("https://github.com/a\u{7}b", UrlFrom::Flag).is_err());
    }

    #[test]
    fn the_gitignore_hides_nothing_argo_cd_reads() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join(".gitignore"), GITIGNORE).unwrap();
        for p in [
            "clusters/prod/project.yaml",
            "clusters/prod/apps/platform/platform-core/cert-manager.yaml",
            "environments/prod/config.yaml",
            "catalog/values/kserve.yaml",
        ] {
            assert!(!repo.is_path_ignored(p).unwrap(), "{p}");
        }
        assert!(check_not_ignored(&repo, dir.path(), "prod").is_ok());
    }
}
