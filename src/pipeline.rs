//! The sequence every command starts with, written once: load the inputs (templates, catalog,
//! config, with repoURL/repoBranch filled from git when empty) → plan a profile → render → check
//! the rendered objects. `lint` runs the same steps but collects every diagnostic instead of
//! stopping at the first failing step (`crate::lint`).

use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::config::{self, EnvConfig};
use crate::consts;
use crate::diag::Diagnostics;
use crate::gitops::git::{redact, GitRepo};
use crate::plan::Plan;
use crate::render::{self, check, RenderedTree, TemplateSources, Templates};
use crate::report::Reporter;

/// The inputs of rendering, loaded and checked.
pub struct Inputs {
    pub config_file: PathBuf,
    pub config: EnvConfig,
    pub catalog: Catalog,
    pub templates: Templates,
}

/// Which layer profile to plan.
#[derive(Debug, Clone, Copy)]
pub enum Profile<'a> {
    /// The named one, else the config's `layerProfile`, else the widest.
    Chosen(Option<&'a str>),
    /// The named one, else the widest (teardown: every layer).
    ChosenOrWidest(Option<&'a str>),
}

/// Load templates, catalog and config of `env` in `repo`. Catalog warnings are reported as
/// details, the git defaults as notes. For a large config.yaml the templates compile on a thread
/// of their own while the catalog and the config are parsed (the catalog needs only the
/// templates' names); the first error is the same as in that order one after the other:
/// templates, catalog, config.
pub fn load(repo: &Path, env: &str, reporter: &dyn Reporter) -> anyhow::Result<Inputs> {
    let sources = TemplateSources::read(repo)?;
    let names = sources.names();
    let compile = || sources.compile();
    let parse = || (Catalog::load(repo, &names), config::load(repo, env));
    let (templates, (catalog, config)) = if large_config(repo, env) {
        crate::parallel::join(compile, parse)
    } else {
        (compile(), parse())
    };
    let templates = templates?;
    let catalog = catalog?;
    for d in &catalog.warnings {
        reporter.detail(&format!("catalog: {d}"));
    }
    let (config_file, mut config) = config?;
    defaults_from_git(repo, &mut config, reporter);
    Ok(Inputs {
        config_file,
        config,
        catalog,
        templates,
    })
}

/// Whether `env`'s config.yaml is at least [`consts::LOAD_THREAD_MIN_CONFIG_BYTES`]: below that,
/// a thread for the templates costs more than it saves.
fn large_config(repo: &Path, env: &str) -> bool {
    config::is_valid_env_name(env)
        && std::fs::metadata(config::config_path(repo, env))
            .is_ok_and(|m| m.len() >= consts::LOAD_THREAD_MIN_CONFIG_BYTES)
}

/// Fill an empty repoURL from `origin` and an empty repoBranch from the current branch, saying so.
pub fn defaults_from_git(repo: &Path, config: &mut EnvConfig, reporter: &dyn Reporter) {
    if !config.repo_url.is_empty() && !config.repo_branch.is_empty() {
        return;
    }
    let git = GitRepo::open(repo).ok();
    if config.repo_url.is_empty() {
        if let Some(url) = git.as_ref().and_then(GitRepo::origin_url) {
            // A credential in origin's URL stays in .git/config: the rendered tree gets the URL
            // without it (Argo CD reads the repository Secret bootstrap installs).
            let clean = crate::url::without_credential(&url);
            reporter.note(&format!(
                "repoURL is not set in config.yaml: using origin's {}{}",
                redact(&clean),
                if clean == url {
                    ""
                } else {
                    " (without the credential origin's URL carries)"
                }
            ));
            config.repo_url = clean;
        }
    }
    if config.repo_branch.is_empty() {
        match git.as_ref().and_then(|g| g.branch().ok()) {
            Some(b) => {
                reporter.note(&format!(
                    "repoBranch is not set in config.yaml: using the current git branch, {b}"
                ));
                config.repo_branch = b;
            }
            None => {
                reporter.detail("repoBranch is not set in config.yaml: using main");
                config.repo_branch = "main".to_string();
            }
        }
    }
}

/// Validate the config against the catalog and plan the profile.
pub fn plan(inputs: &Inputs, env: &str, profile: Profile<'_>) -> Result<Plan, Diagnostics> {
    let name = match profile {
        Profile::Chosen(p) => p.map(str::to_string),
        Profile::ChosenOrWidest(p) => p
            .map(str::to_string)
            .or_else(|| inputs.catalog.widest_profile().map(|p| p.name.clone())),
    };
    Plan::build(
        &inputs.config,
        env,
        &inputs.config_file,
        &inputs.catalog,
        name.as_deref(),
    )
}

/// Plan and render; the rendered objects are checked (YAML, names, strict core kinds) when a
/// template under `templates/` differs from the embedded one. The embedded templates' output is
/// checked by the golden tests and by `lint`, which always checks every object; re-parsing every
/// file cost more than rendering it (issue 14).
pub fn render_checked(
    inputs: &Inputs,
    env: &str,
    profile: Profile<'_>,
) -> anyhow::Result<(Plan, RenderedTree)> {
    let plan = plan(inputs, env, profile)?;
    let tree = render::render(&plan, &inputs.catalog, &inputs.templates)?;
    if render::provenance::TemplateOrigins::of(&inputs.templates).all_shipped() {
        return Ok((plan, tree));
    }
    let problems = check::check_tree(&tree);
    if !problems.is_empty() {
        return Err(Diagnostics(problems).into());
    }
    Ok((plan, tree))
}
