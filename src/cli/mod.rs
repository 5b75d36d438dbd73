//! Command-line interface: clap definitions, one file per command. Commands parse, call the library,
//! print; they hold no logic of their own beyond that.

mod argocd;
mod bootstrap;
mod catalog;
mod cluster;
mod completions;
mod diff;
mod doctor;
mod env;
mod fit;
mod history;
mod init;
mod lint;
mod logs;
mod model;
mod modelcar;
mod pause;
mod plan;
mod portforward;
mod relocate;
mod resolve_groups;
mod rollback;
mod root;
mod signals;
mod smoke;
mod stage;
mod status;
mod teardown;
mod up;
pub mod usage;
mod wait;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, EnvConfig};
use crate::consts;
use crate::diag::Diagnostic;
use crate::envs;
use crate::ui::{ColorChoice, Printer};

const AFTER_HELP: &str = "\
From nothing:
  platform init --env prod --cluster-name prod-eu \\
      --repo-url git@github.com:acme/gitops.git
      scaffold environments/prod/config.yaml (catalog embedded)
  platform catalog eject
      copy the embedded catalog into catalog/ to customise it
A repository's catalog/ replaces the embedded catalog as a whole; a file in templates/ replaces \
the embedded template of that name.

Rendering:
  platform resolve-groups
      write clusters/<env>/groups.generated.yaml from the feature flags
  platform plan --profile full
      why each group is on/off, waves, apps, models
  platform root --profile full
      render the GitOps tree Argo CD syncs into clusters/<env>/
  platform root --profile full --check
      exit 1 when the committed tree is stale (for CI)
  platform lint
      every validation, nothing written

The cluster day (each command prints its target; `platform env` says which environment):
  platform bootstrap --env prod
      install the pinned Argo CD, record the cluster's identity
  platform root --commit --push
      render, commit exactly the generated files, push
  platform up --sync-models --smoke
      apply the root apps, sync wave by wave, start the models, prove they answer
  platform status
      apps, models, PVCs, and why anything is not ready
  platform pause qwen-gpu   /   platform resume qwen-gpu --wait
      stop a model on any layer (its GPUs are released), bring it back
  platform smoke --all
      prove every model answers: /health, /v1/models, a streamed completion
  platform teardown
      ordered teardown, then an audit of anything that survived

Exit codes: 0 ok · 1 invalid input or a check failed · 2 internal error · 3 timeout · 4 the \
cluster, the Hub, a registry or a git remote failed · 130 / 143 interrupted by SIGINT / SIGTERM";

/// The help heading of the flags every command takes.
pub const GLOBAL: &str = "Global options";

/// Global flags that mean nothing to some commands: hidden from those commands' help (still
/// accepted, and ignored).
const NOT_APPLICABLE: &[(&str, &[&str])] = &[
    ("completions", &["repo", "env", "output"]),
    ("catalog", &["env"]),
];

/// The command line: [`Cli`]'s definitions with what derive cannot say (help that depends on
/// the command, global flags that do not apply).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command().mut_subcommand("plan", |c| {
        c.mut_arg("profile", |a| {
            a.help(
                "Layer profile to plan (catalog/layers.yaml `profiles:`); default: the config's \
                 layerProfile, else the widest. The plan's first line names it and its layers",
            )
        })
    });
    // Global flags are copied into each subcommand that lacks them when the command is built: a
    // hidden copy given to a subcommand first stays hidden there (and in its own subcommands).
    for (sub, ids) in NOT_APPLICABLE {
        let hidden: Vec<clap::Arg> = cmd
            .get_arguments()
            .filter(|a| ids.contains(&a.get_id().as_str()))
            .map(|a| a.clone().hide(true))
            .collect();
        cmd = cmd.mut_subcommand(*sub, |c| c.args(hidden));
    }
    cmd
}

#[derive(Debug, Parser)]
#[command(
    name = "platform",
    version,
    about = "Render and drive a GitOps LLM-serving platform on Kubernetes (Argo CD, KServe, llm-d, raw vLLM)",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// The GitOps repository (default: the enclosing git work tree, else the current directory).
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "DIR", env = "PLATFORM_REPO")]
    pub repo: Option<PathBuf>,
    /// Environment: the folder under environments/ holding config.yaml [default: the repository's
    /// current one (`platform env use`), else the only one, else ai-dev].
    #[arg(
        long,
        short = 'e',
        global = true,
        help_heading = GLOBAL,
        value_name = "NAME",
        env = "PLATFORM_ENV"
    )]
    pub env: Option<String>,
    /// Only errors (and requested data) are printed.
    #[arg(long, short, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
    /// More detail on stderr (repeatable).
    #[arg(long, short, global = true, help_heading = GLOBAL, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour on stderr/stdout; NO_COLOR is honoured under `auto`.
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Format of data printed on stdout by commands that print data.
    #[arg(long, short, global = true, help_heading = GLOBAL, value_enum, default_value_t = Output::Table, value_name = "FORMAT")]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a GitOps repository: environments/<env>/config.yaml (commented), .gitignore, git init.
    Init(init::Args),
    /// The catalog embedded in platform: `catalog eject` writes it into the repository to customise.
    Catalog(catalog::Args),
    /// Resolve feature gates into clusters/<env>/groups.generated.yaml (the ApplicationSet input).
    #[command(name = "resolve-groups")]
    ResolveGroups(resolve_groups::Args),
    /// Render the GitOps tree for a profile: AppProject, root apps per layer, child apps, model manifests.
    Root(root::Args),
    /// Show the plan: each group on/off and why, apps with waves and sync mode, models.
    Plan(plan::Args),
    /// Run every validation of config, catalog, templates and rendered output; writes nothing.
    Lint(lint::Args),
    /// Compare what `root` would render now with HEAD, the working tree, or the live cluster (--cluster: what Argo CD would change); exit 1 if different.
    Diff(diff::Args),
    /// The render commits of the environment, newest first: what each changed (files, models, inputs).
    History(history::Args),
    /// Preflight against the cluster: OK/WARN/FAIL lines with fixes, exit 1 on any FAIL.
    Doctor(doctor::Args),
    /// Whether each vLLM model fits its GPU type: weights, KV cache at maxModelLen, the verdict and the longest context that fits.
    Fit(fit::Args),
    /// Install Argo CD (pinned, sha256-verified), configure it, record the cluster identity; idempotent.
    Bootstrap(bootstrap::Args),
    /// Argo CD itself: `argocd ui` port-forwards to argocd-server and prints the URL (and, on request, the initial admin password).
    Argocd(argocd::Args),
    /// Bring the cluster up: apply the AppProject and root apps, then sync and wait wave by wave.
    Up(up::Args),
    /// Applications by layer and wave, models, PVCs, and why anything is not ready.
    Status(status::Args),
    /// Wait until every Application of the profile is Synced and Healthy (watches; exit 3 on timeout).
    Wait(wait::Args),
    /// Ordered teardown that leaves nothing billable behind, then an audit of survivors.
    Teardown(teardown::Args),
    /// Copy a model's weights onto its PVC through a short-lived pod, verified and idempotent.
    #[command(name = "stage-model")]
    StageModel(stage::Args),
    /// KServe modelcar images: `modelcar push` builds one from a model's files (no container engine) and pushes it.
    Modelcar(modelcar::Args),
    /// Prove that models answer: ready pod, /health, /v1/models, a streamed completion (port-forward or Gateway).
    Smoke(smoke::Args),
    /// Move a model to another serving layer behind its stable URL: declare, sync, smoke, shift the route, pause and remove the old one (two commits).
    #[command(name = "move")]
    Move(relocate::Args),
    /// Add or remove a model in config.yaml, in place (comments kept), checked as `lint` checks before it is written.
    Model(model::Args),
    /// Roll the environment back to a past render commit: a new commit restoring its inputs and tree, pushed and synced.
    Rollback(rollback::Args),
    /// Stream a model's serving-pod log on any layer (-f follows; --previous, --container, --tail, --since).
    Logs(logs::Args),
    /// Forward a local port to a model's serving pod on any layer; prints http://127.0.0.1:PORT/v1.
    #[command(name = "port-forward")]
    PortForward(portforward::Args),
    /// Pause models on any layer (KServe stop annotation, or raw vLLM scaled to 0).
    Pause(pause::Args),
    /// Resume paused models (restores the remembered replica count on raw vLLM).
    Resume(pause::Args),
    /// The environments of the repository: `env list`, `env use NAME` (the one commands act on without --env), `env current`.
    Env(env::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions::Args),
}

impl Command {
    /// Renders and compares files, moving no model weights (see `crate::alloc`).
    fn only_renders(&self) -> bool {
        matches!(
            self,
            Command::Root(_)
                | Command::ResolveGroups(_)
                | Command::Plan(_)
                | Command::Lint(_)
                | Command::Diff(_)
        )
    }
}

/// `--profile`, shared by the commands that plan.
#[derive(Debug, Clone, clap::Args)]
pub struct ProfileArg {
    /// Layer profile (see `platform plan`); default: the config's layerProfile, else the widest.
    #[arg(long, short)]
    pub profile: Option<String>,
}

/// Which files of a model to take, and the Hub token file: shared by `stage-model` and
/// `modelcar push`, which select the same files.
#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// Only files matching these globs (replaces the default set: config, tokenizer, *.safetensors).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip files matching these globs.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Read the Hub token from this file.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<std::path::PathBuf>,
}

impl FileArgs {
    /// The file filter the globs make.
    pub fn filter(&self) -> Result<crate::hub::FileFilter, crate::hub::HubError> {
        crate::hub::FileFilter::new(&self.include, &self.exclude)
    }
}

/// `--allow-insecure-http`, for the commands that talk to the git remote with credentials.
#[derive(Debug, Clone, clap::Args)]
pub struct GitHttpArg {
    /// Send git credentials (PLATFORM_GIT_TOKEN, a credential helper's, a password in the URL) to
    /// an http:// remote although anyone on the way can read them; without it they are refused
    /// before any is sent.
    #[arg(
        long,
        env = crate::gitops::git::ALLOW_HTTP_ENV,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_insecure_http: bool,
}

impl GitHttpArg {
    /// What the library is allowed to do; a warning when credentials may go over http to `url`.
    pub fn plain_http(&self, ctx: &Ctx, url: &str) -> crate::gitops::git::PlainHttp {
        use crate::gitops::git::{is_plain_http, redact, PlainHttp};
        if !self.allow_insecure_http {
            return PlainHttp::Refuse;
        }
        if is_plain_http(url) {
            ctx.reporter().warn(&format!(
                "--allow-insecure-http: git credentials may go to {} in clear",
                redact(url)
            ));
        }
        PlainHttp::Allow
    }
}

pub use crate::error::{CheckFailed, InputError};

/// Everything a command needs to know about the invocation.
pub struct Ctx {
    pub repo: PathBuf,
    pub env: String,
    /// Why no environment could be chosen, for the commands that need one only in some modes
    /// (`env` is then ai-dev, never to be used: [`Ctx::load`] returns this error).
    pub env_error: Option<String>,
    pub output: Output,
    pub printer: Printer,
    /// Built on first use by [`Ctx::reporter`], then shared by every step of the command: one
    /// `MultiProgress` per invocation, so notes of the load and bars of the cluster steps draw
    /// through the same terminal handle.
    reporter: std::sync::OnceLock<std::sync::Arc<dyn crate::report::Reporter>>,
}

pub use crate::pipeline::Inputs;
use crate::pipeline::{self, Profile};

impl Ctx {
    /// Load config, catalog and templates (see `crate::pipeline::load`).
    pub fn load(&self) -> anyhow::Result<Inputs> {
        if let Some(e) = &self.env_error {
            return Err(InputError(e.clone()).into());
        }
        pipeline::load(&self.repo, &self.env, self.reporter().as_ref())
    }

    /// Load the inputs and plan `profile` (else the config's, else the widest): everything that
    /// can be checked before rendering or touching a cluster.
    pub fn plan(&self, profile: Option<&str>) -> anyhow::Result<(Inputs, crate::plan::Plan)> {
        let inputs = self.load()?;
        let plan = pipeline::plan(&inputs, &self.env, Profile::Chosen(profile))?;
        Ok((inputs, plan))
    }

    /// [`Ctx::plan`] with the widest profile when none is named (teardown: every layer).
    pub fn plan_widest(
        &self,
        profile: Option<&str>,
    ) -> anyhow::Result<(Inputs, crate::plan::Plan)> {
        let inputs = self.load()?;
        let plan = pipeline::plan(&inputs, &self.env, Profile::ChosenOrWidest(profile))?;
        Ok((inputs, plan))
    }

    /// Plan `profile` and render (see [`pipeline::render_checked`] for when the rendered objects
    /// are checked).
    pub fn render(
        &self,
        inputs: &Inputs,
        profile: Option<&str>,
    ) -> anyhow::Result<(crate::plan::Plan, crate::render::RenderedTree)> {
        pipeline::render_checked(inputs, &self.env, Profile::Chosen(profile))
    }

    /// The reporter for progress on stderr (bars on a terminal, lines otherwise; -q, -v): built
    /// once per command, the same one on every call.
    pub fn reporter(&self) -> std::sync::Arc<dyn crate::report::Reporter> {
        self.reporter
            .get_or_init(|| {
                crate::ui::report::with_hint(
                    crate::ui::report::reporter(self.printer.quiet, self.printer.verbose),
                    self.printer.hint.clone(),
                )
            })
            .clone()
    }

    /// Fill an empty repoURL from `origin` and an empty repoBranch from the current branch, saying so.
    pub fn defaults_from_git(&self, config: &mut EnvConfig) {
        pipeline::defaults_from_git(&self.repo, config, self.reporter().as_ref());
    }
}

pub fn run() -> ExitCode {
    use clap::FromArgMatches;
    // `--version` names the pinned Argo CD and charts: read from the embedded catalog only when
    // asked, so every other invocation starts as fast as before.
    let asks_version = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--version" || a == "-V");
    let matches = if asks_version {
        // clap keeps `&'static str` versions (its `string` feature is off): once per process.
        let text: &'static str = Box::leak(
            crate::catalog::embedded::version_text()
                .trim_end()
                .to_string()
                .into_boxed_str(),
        );
        command().version(text).long_version(text).get_matches()
    } else {
        command().get_matches()
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command()).exit());
    if cli.command.only_renders() {
        crate::alloc::arenas_for_rendering();
    }
    let printer = Printer::new(cli.quiet, cli.verbose, cli.color);
    let repo = match cli.repo.clone() {
        Some(r) => r,
        None => crate::repo::default_repo(),
    };
    let given = cli.env.clone().map(|e| {
        let source = match matches.value_source("env") {
            Some(clap::parser::ValueSource::EnvVariable) => envs::Source::Variable,
            _ => envs::Source::Flag,
        };
        (e, source)
    });
    let checked = match &given {
        Some((e, _)) => check_env_name(e, matches.value_source("env")),
        None => Ok(()),
    }
    .and_then(|()| check_repo_dir(&repo, matches.value_source("repo")));
    // Commands that act on no environment need none (`env` reports its own).
    let needs_env = !matches!(
        cli.command,
        Command::Completions(_) | Command::Catalog(_) | Command::Env(_)
    );
    let refuse = |e: &InputError| {
        if matches!(cli.command, Command::Lint(_)) {
            // `lint -o json|yaml` prints its one document even about the invocation.
            let env = given.as_ref().map(|g| g.0.as_str()).unwrap_or_default();
            lint::print_invalid_invocation(&printer, cli.output, env, &e.0);
        }
        report(&printer, &InputError(e.0.clone()).into())
    };
    if let Err(e) = &checked {
        return refuse(e);
    }
    // Commands with modes that read no environment (`modelcar push --from`, `stage-model
    // --download-only`) refuse only when they load one.
    let maybe_env = matches!(cli.command, Command::Modelcar(_) | Command::StageModel(_));
    let chosen = choose_env(&cli.command, &repo, given.clone());
    let (env, env_error) = match &chosen {
        Ok(c) => (c.name.clone(), None),
        Err(e) if needs_env && !maybe_env => return refuse(e),
        Err(e) => (consts::DEFAULT_ENV.to_string(), Some(e.0.clone())),
    };
    if let (Ok(c), true) = (&chosen, needs_env) {
        printer.info(format!("environment: {} ({})", c.name, c.why()));
    }
    // No environment chosen (a command that needs none): hints name none either.
    let hint = match env_error {
        Some(_) => envs::Hint::default(),
        None => envs::Hint::new(&repo, &env),
    };
    let printer = printer.with_hint(hint);
    let ctx = Ctx {
        repo,
        env,
        env_error,
        output: cli.output,
        printer: printer.clone(),
        reporter: std::sync::OnceLock::new(),
    };
    let result = match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Catalog(a) => catalog::run(&ctx, a),
        Command::ResolveGroups(a) => resolve_groups::run(&ctx, a),
        Command::Root(a) => root::run(&ctx, a),
        Command::Plan(a) => plan::run(&ctx, a),
        Command::Lint(a) => lint::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::History(a) => history::run(&ctx, a),
        Command::Doctor(a) => doctor::run(&ctx, a),
        Command::Fit(a) => fit::run(&ctx, a),
        Command::Bootstrap(a) => bootstrap::run(&ctx, a),
        Command::Argocd(a) => argocd::run(&ctx, a),
        Command::Up(a) => up::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Wait(a) => wait::run(&ctx, a),
        Command::Teardown(a) => teardown::run(&ctx, a),
        Command::StageModel(a) => stage::run(&ctx, a),
        Command::Modelcar(a) => modelcar::run(&ctx, a),
        Command::Smoke(a) => smoke::run(&ctx, a),
        Command::Move(a) => relocate::run(&ctx, a),
        Command::Rollback(a) => rollback::run(&ctx, a),
        Command::Model(a) => model::run(&ctx, a),
        Command::Logs(a) => logs::run(&ctx, a),
        Command::PortForward(a) => portforward::run(&ctx, a),
        Command::Pause(a) => pause::run(&ctx, a, false),
        Command::Resume(a) => pause::run(&ctx, a, true),
        Command::Env(a) => env::run(&ctx, a, chosen),
        Command::Completions(a) => completions::run(&ctx, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A signal that ended a command with nothing to add (`status --watch`): 130 / 143, quietly.
        Err(e) => match e.downcast_ref::<crate::error::Interrupted>() {
            Some(i) => ExitCode::from(i.0.exit_code()),
            None => report(&printer, &e),
        },
    }
}

/// The environment the command acts on (see `crate::envs`): `init` scaffolds `--env` or ai-dev.
fn choose_env(
    command: &Command,
    repo: &std::path::Path,
    given: Option<(String, envs::Source)>,
) -> Result<envs::Chosen, InputError> {
    if matches!(command, Command::Init(_)) {
        let (name, source) =
            given.unwrap_or((consts::DEFAULT_ENV.to_string(), envs::Source::Default));
        return Ok(envs::Chosen { name, source });
    }
    envs::resolve(repo, given).map_err(|e| InputError(e.to_string()))
}

/// `--env` / `PLATFORM_ENV` names a folder under environments/ and clusters/: a single DNS-1123
/// label, never a path (`../../outside/e` would read and write outside the repository).
fn check_env_name(env: &str, source: Option<clap::parser::ValueSource>) -> Result<(), InputError> {
    if config::is_valid_env_name(env) {
        return Ok(());
    }
    let from = match source {
        Some(clap::parser::ValueSource::EnvVariable) => format!("PLATFORM_ENV={env:?}"),
        _ => format!("--env {env:?}"),
    };
    Err(InputError(format!(
        "{from} is not a valid environment name: {}",
        config::ENV_NAME_RULE
    )))
}

/// `--repo` / `PLATFORM_REPO` names a directory (or nothing yet: init creates it); a regular file
/// there would otherwise surface as a catalog or config error about paths under it.
fn check_repo_dir(
    repo: &std::path::Path,
    source: Option<clap::parser::ValueSource>,
) -> Result<(), InputError> {
    match std::fs::metadata(repo) {
        Ok(m) if !m.is_dir() => {
            let from = match source {
                Some(clap::parser::ValueSource::EnvVariable) => "PLATFORM_REPO",
                _ => "--repo",
            };
            Err(InputError(format!(
                "{from} {} is not a directory: point it at the GitOps repository (the directory holding environments/)",
                repo.display()
            )))
        }
        _ => Ok(()),
    }
}

/// Print an error (diagnostics one per line, then `caused by:` lines) and choose the exit code from
/// its class (see `crate::error`).
fn report(p: &Printer, e: &anyhow::Error) -> ExitCode {
    if let Some(ds) = crate::error::diagnostics_of(e) {
        for d in &ds {
            p.diagnostic(d);
        }
        let n = ds.iter().filter(|d| d.is_error()).count();
        if n > 1 {
            p.error(format!("{n} errors; nothing was written"));
        }
        return ExitCode::from(crate::error::ErrorClass::Input.exit_code());
    }
    let dyn_e: &(dyn std::error::Error + 'static) = e.as_ref();
    let mut causes = crate::error::causes(dyn_e).into_iter();
    p.error(causes.next().unwrap_or_default());
    for c in causes {
        p.caused_by(c);
    }
    ExitCode::from(crate::error::class_of(e).exit_code())
}

/// What a command built and no longer needs, left to the process's exit: the kernel takes the
/// memory back whole, where dropping it frees every allocation one by one (a 1000-model tree,
/// its plan and its inputs are some 100 000 of them: 2.5 ms of a re-render, issue 24). Only at
/// the end of a command that returns straight to `main`.
pub fn freed_by_exit<T>(value: T) {
    std::mem::forget(value);
}

/// Print warnings of a successful step.
pub fn print_warnings(p: &Printer, diags: &[Diagnostic]) {
    for d in diags {
        p.diagnostic(d);
    }
}

/// Serialize data for `-o json|yaml`.
pub fn to_data<T: serde::Serialize>(output: Output, value: &T) -> anyhow::Result<String> {
    match output {
        Output::Json => Ok(serde_json::to_string_pretty(value).context("serializing JSON")? + "\n"),
        Output::Yaml => serde_yaml::to_string(value).context("serializing YAML"),
        Output::Table => unreachable_table(),
    }
}

fn unreachable_table() -> anyhow::Result<String> {
    Err(anyhow::anyhow!("internal: table output has no serializer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reporter_is_built_once_per_command() {
        let ctx = Ctx {
            repo: PathBuf::from("."),
            env: consts::DEFAULT_ENV.to_string(),
            env_error: None,
            output: Output::Table,
            printer: Printer::new(false, 0, ColorChoice::Never),
            reporter: std::sync::OnceLock::new(),
        };
        let (a, b) = (ctx.reporter(), ctx.reporter());
        assert!(std::sync::Arc::ptr_eq(&a, &b));
    }
}
