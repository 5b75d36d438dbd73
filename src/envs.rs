//! Which environment a command acts on, and the suggested commands that name it.
//!
//! Resolution, first found: `--env` / `PLATFORM_ENV`; the repository's current environment, which
//! `platform env use NAME` records in the repository's own git configuration (`.git/config`, key
//! `platform.env`: local and untracked, as `kubectl config use-context` records a context in the
//! kubeconfig; `git config platform.env` reads it too); the only environment under `environments/`
//! when there is exactly one; `ai-dev` when it exists. Otherwise the command is refused with the
//! environments there are and how to choose.
//!
//! The git configuration is read without libgit2 (opening a repository with it loads OpenSSL's CA
//! store, see `crate::repo::git_dir_of`): a `[platform]` section's `env` key, the last one wins, as
//! git reads it. Writing (`env use`) goes through libgit2.

use std::path::{Path, PathBuf};

use crate::config;
use crate::consts;

/// The git configuration key holding the repository's current environment.
pub const CURRENT_KEY: &str = "platform.env";

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(
        "no environment under {}/ in {}: create one with `platform init --env NAME` (or pass --repo DIR \
         to point at the GitOps repository)",
        consts::ENVIRONMENTS_DIR,
        .repo.display()
    )]
    NoEnvironment { repo: PathBuf },
    #[error(
        "several environments ({}) and none chosen: pass --env NAME, or choose this repository's \
         current one with `platform env use NAME`",
        .available.join(", ")
    )]
    Ambiguous { available: Vec<String> },
    #[error(
        "environment `{name}` not found under {}/ (environments: {}){}",
        consts::ENVIRONMENTS_DIR,
        if .available.is_empty() { "none".to_string() } else { .available.join(", ") },
        if *.current { format!("; it is this repository's current environment ({CURRENT_KEY} in its git config): choose another with `platform env use NAME`") } else { String::new() }
    )]
    NotFound {
        name: String,
        available: Vec<String>,
        /// It came from the recorded current environment.
        current: bool,
    },
    #[error("`{name}` is not a valid environment name: {}", config::ENV_NAME_RULE)]
    Invalid { name: String },
    #[error(
        "{} is not inside a git repository: `platform env use` records the current environment in the \
         repository's git config; run `git init` there first, or pass --env NAME / set PLATFORM_ENV",
        .repo.display()
    )]
    NotGit { repo: PathBuf },
    #[error("recording {CURRENT_KEY} in {}: {}", .path.display(), .source.message())]
    Write {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
}

/// Where the environment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `--env`.
    Flag,
    /// `PLATFORM_ENV`.
    Variable,
    /// `platform env use`.
    Current,
    /// The only environment under environments/.
    Only,
    /// `ai-dev`, among several, none chosen.
    Default,
}

/// The environment a command acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub name: String,
    pub source: Source,
}

impl Chosen {
    /// Why this one, for the line every command prints (`environment: prod (the only one)`).
    pub fn why(&self) -> &'static str {
        match self.source {
            Source::Flag => "--env",
            Source::Variable => "PLATFORM_ENV",
            Source::Current => "current: `platform env use`",
            Source::Only => "the only one",
            Source::Default => "the default",
        }
    }
}

/// The environments of the repository: folders under environments/ with a config.yaml, sorted.
pub fn list(repo: &Path) -> Vec<String> {
    config::list_envs(repo)
        .into_iter()
        .filter(|e| config::is_valid_env_name(e))
        .collect()
}

/// The git configuration file of the repository holding `repo` (the common one of a linked work
/// tree).
fn git_config_path(repo: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(repo).ok()?;
    let (git_dir, _) = crate::repo::git_dir_of(&abs)?;
    let common = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(c) => git_dir.join(c.trim()),
        Err(_) => git_dir,
    };
    Some(common.join("config"))
}

/// The current environment recorded by `platform env use` (not checked against environments/).
pub fn current(repo: &Path) -> Option<String> {
    let text = std::fs::read_to_string(git_config_path(repo)?).ok()?;
    read_key(&text, "platform", "env")
}

/// `key` of section `section` in git config text (no subsection; names are case-insensitive;
/// the last assignment wins; quotes and trailing comments dropped).
fn read_key(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    let mut found = None;
    for line in text.lines() {
        let mut line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let Some(end) = rest.find(']') else { continue };
            in_section = rest[..end].trim().eq_ignore_ascii_case(section);
            line = rest[end + 1..].trim();
        }
        if !in_section || line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let (k, v) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, "true"),
        };
        if !k.eq_ignore_ascii_case(key) {
            continue;
        }
        let v = match v.strip_prefix('"') {
            Some(q) => q.split('"').next().unwrap_or_default(),
            None => v.split(['#', ';']).next().unwrap_or_default().trim(),
        };
        found = Some(v.to_string());
    }
    found
}

/// Record `name` as the repository's current environment (it must exist under environments/).
pub fn use_env(repo: &Path, name: &str) -> Result<PathBuf, EnvError> {
    if !config::is_valid_env_name(name) {
        return Err(EnvError::Invalid { name: name.into() });
    }
    let available = list(repo);
    if !available.iter().any(|e| e == name) {
        return Err(EnvError::NotFound {
            name: name.into(),
            available,
            current: false,
        });
    }
    let path = git_config_path(repo).ok_or_else(|| EnvError::NotGit {
        repo: repo.to_path_buf(),
    })?;
    let err = |source| EnvError::Write {
        path: path.clone(),
        source,
    };
    let mut cfg = git2::Config::open(&path).map_err(err)?;
    cfg.set_str(CURRENT_KEY, name).map_err(err)?;
    Ok(path)
}

/// The environment a command acts on: `given` (the flag or the variable, checked by the caller)
/// if any, else the rules of the module docs.
pub fn resolve(repo: &Path, given: Option<(String, Source)>) -> Result<Chosen, EnvError> {
    if let Some((name, source)) = given {
        return Ok(Chosen { name, source });
    }
    let available = list(repo);
    if let Some(name) = current(repo).filter(|c| !c.is_empty()) {
        if !config::is_valid_env_name(&name) {
            return Err(EnvError::Invalid { name });
        }
        if !available.contains(&name) {
            return Err(EnvError::NotFound {
                name,
                available,
                current: true,
            });
        }
        return Ok(Chosen {
            name,
            source: Source::Current,
        });
    }
    match available.as_slice() {
        [] => Err(EnvError::NoEnvironment {
            repo: repo.to_path_buf(),
        }),
        [only] => Ok(Chosen {
            name: only.clone(),
            source: Source::Only,
        }),
        many if many.iter().any(|e| e == consts::DEFAULT_ENV) => Ok(Chosen {
            name: consts::DEFAULT_ENV.to_string(),
            source: Source::Default,
        }),
        _ => Err(EnvError::Ambiguous { available }),
    }
}

/// How suggested commands name the environment: `--env E` is added when a command typed without
/// `--env` would act on another environment than E (none when it would act on E); and, once the
/// command connected, every suggested `kubectl …` names the kubeconfig and context of its target
/// (never the global context).
#[derive(Debug, Clone, Default)]
pub struct Hint {
    env: Option<String>,
    /// `--kubeconfig K --context C`, set once by the command's connect (shared by every clone).
    kubectl: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl PartialEq for Hint {
    fn eq(&self, other: &Hint) -> bool {
        self.env == other.env && self.kubectl.get() == other.kubectl.get()
    }
}

impl Eq for Hint {}

impl Hint {
    /// The hint for commands acting on `env` in `repo`.
    pub fn new(repo: &Path, env: &str) -> Hint {
        let implicit = resolve(repo, None).ok().map(|c| c.name);
        Hint {
            env: (implicit.as_deref() != Some(env)).then(|| env.to_string()),
            ..Hint::default()
        }
    }

    /// A hint that always names `env`.
    pub fn always(env: &str) -> Hint {
        Hint {
            env: Some(env.to_string()),
            ..Hint::default()
        }
    }

    /// The suggested command `platform <args>`, with `--env E` when needed.
    pub fn command(&self, args: &str) -> String {
        match &self.env {
            // `env …` chooses the environment: it never takes --env.
            Some(e) if !names_env(args) && !args.starts_with("env ") => {
                format!("platform {args} --env {e}")
            }
            _ => format!("platform {args}"),
        }
    }

    /// Every later suggested `` `kubectl …` `` gets `flags` (the target's `--kubeconfig K
    /// --context C`); the first call wins.
    pub fn set_kubectl_target(&self, flags: String) {
        let _ = self.kubectl.set(flags);
    }

    /// `kubectl <args>` aimed at the target, when known and not named already.
    fn kubectl(&self, args: &str) -> String {
        match self.kubectl.get() {
            Some(f) if !args.contains("--kubeconfig") => format!("kubectl {f} {args}"),
            _ => format!("kubectl {args}"),
        }
    }

    /// `text` with every suggested command in backquotes (`` `platform …` ``, `` `kubectl …` ``)
    /// made by [`Hint::command`] / aimed at the target: the one place where printed hints get their
    /// `--env`, `--kubeconfig` and `--context`.
    pub fn apply(&self, text: &str) -> String {
        let platform = self.env.is_some() && text.contains("`platform ");
        let kubectl = self.kubectl.get().is_some() && text.contains("`kubectl ");
        if !platform && !kubectl {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut rest = text;
        while let Some(open) = rest.find('`') {
            out.push_str(&rest[..=open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('`') else {
                rest = after;
                break;
            };
            let span = &after[..close];
            match span.strip_prefix("platform ") {
                Some(args)
                    if !span.contains('\n')
                        && args.starts_with(|c: char| c.is_ascii_lowercase()) =>
                {
                    out.push_str(&self.command(args))
                }
                _ => match span.strip_prefix("kubectl ") {
                    Some(args) if !span.contains('\n') => out.push_str(&self.kubectl(args)),
                    _ => out.push_str(span),
                },
            }
            out.push('`');
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// Whether a command line names an environment already (`--env`, `-e`, `init`'s own).
fn names_env(args: &str) -> bool {
    args.split_whitespace()
        .any(|w| w == "--env" || w == "-e" || w.starts_with("--env="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_config_keys_are_read_as_git_reads_them() {
        let text = "[core]\n\tbare = false\n[Platform]\n\tenv = prod ; chosen\n[remote \"origin\"]\n\tenv = x\n";
        assert_eq!(read_key(text, "platform", "env").as_deref(), Some("prod"));
        let text = "[platform]\n env = \"a\"\n[platform] env = b\n";
        assert_eq!(read_key(text, "platform", "env").as_deref(), Some("b"));
        assert_eq!(read_key("[core]\nenv = x\n", "platform", "env"), None);
    }

    #[test]
    fn hints_name_the_environment_only_when_needed() {
        let h = Hint::always("prod");
        assert_eq!(
            h.apply("run `platform root --profile full`, then `platform up`; `kubectl get x`"),
            "run `platform root --profile full --env prod`, then `platform up --env prod`; `kubectl get x`"
        );
        assert_eq!(
            h.apply("`platform init --env x` and `platform` alone and `unclosed"),
            "`platform init --env x` and `platform` alone and `unclosed"
        );
        assert_eq!(h.command("pause qwen"), "platform pause qwen --env prod");
        h.set_kubectl_target("--kubeconfig /k/prod --context prod-eu".into());
        assert_eq!(
            h.apply("`kubectl -n x delete pod p` or `kubectl --kubeconfig a get x`; `platform up`"),
            "`kubectl --kubeconfig /k/prod --context prod-eu -n x delete pod p` or \
             `kubectl --kubeconfig a get x`; `platform up --env prod`"
        );
        let none = Hint::default();
        assert_eq!(none.apply("`platform up`"), "`platform up`");
        assert_eq!(none.command("up"), "platform up");
    }

    fn repo_with(envs: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for e in envs {
            let d = dir.path().join("environments").join(e);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("config.yaml"), "cluster: {name: x}\n").unwrap();
        }
        dir
    }

    #[test]
    fn resolution_order() {
        let one = repo_with(&["prod"]);
        let c = resolve(one.path(), None).unwrap();
        assert_eq!((c.name.as_str(), c.source), ("prod", Source::Only));
        let given = resolve(one.path(), Some(("x".into(), Source::Flag))).unwrap();
        assert_eq!(given.source, Source::Flag);
        let two = repo_with(&["ai-dev", "prod"]);
        assert_eq!(resolve(two.path(), None).unwrap().source, Source::Default);
        let two = repo_with(&["prod", "staging"]);
        let e = resolve(two.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("prod, staging") && e.contains("platform env use"),
            "{e}"
        );
        assert!(matches!(
            use_env(two.path(), "prod"),
            Err(EnvError::NotGit { .. })
        ));
        git2::Repository::init(two.path()).unwrap();
        let e = use_env(two.path(), "qa").unwrap_err().to_string();
        assert!(
            e.contains("`qa` not found") && e.contains("prod, staging"),
            "{e}"
        );
        use_env(two.path(), "staging").unwrap();
        let c = resolve(two.path(), None).unwrap();
        assert_eq!((c.name.as_str(), c.source), ("staging", Source::Current));
        assert_eq!(Hint::new(two.path(), "staging"), Hint::default());
        assert_eq!(Hint::new(two.path(), "prod"), Hint::always("prod"));
        std::fs::remove_dir_all(two.path().join("environments/staging")).unwrap();
        let e = resolve(two.path(), None).unwrap_err().to_string();
        assert!(e.contains("current environment"), "{e}");
        assert!(matches!(
            resolve(repo_with(&[]).path(), None),
            Err(EnvError::NoEnvironment { .. })
        ));
    }
}
