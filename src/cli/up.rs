use std::time::{Duration, Instant};

use anyhow::Result;

use super::cluster::{connect, duration_at_least, runtime, TargetArgs};
use super::{CheckFailed, Ctx, InputError};
use crate::actions::fit::{self, Gate};
use crate::consts;
use crate::diag::Diagnostic;
use crate::gitops::{self, git::GitRepo};
use crate::render::check;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Order: refuse if clusters/<env>/ is stale or (unless --allow-unpushed) not committed and pushed to the config's repoURL/repoBranch; check the target cluster; server-side apply the AppProject and the root apps of the profile (field manager `platform`); then wave by wave, in layer order: start a sync of the wave's manual apps (writing the Application `operation`, only when none is in flight) and watch every app of the wave until Synced + Healthy + reconciled after the sync (+ the pushed commit for apps that read this repository). Model apps are manual (the cost gate): they are synced only with --sync-models. A Degraded app or failed sync stops at once with the reason; a timeout exits 3.

With --sync-models --fit (the cost gate's check), before anything is applied, every vLLM model is judged as `platform fit` judges it (config.json and weight sizes from the Hub; the GPU type from --gpu, else the smallest GPU the nodes name in their nvidia.com/gpu.product labels; a CPU model against its pod's memory): a model that does not fit, or a GPU model whose GPU type is unknown, is not synced (the reason, with the numbers and the fix, is printed); everything else comes up as usual, then up exits 1 naming the models it held back. A model fit cannot read (a source that is not a Hub repository) is synced with a warning; one whose files cannot be fetched stops up before anything is applied.

With --sync-models --smoke, the synced models are then smoke-tested as `platform smoke` does (ready pod, /health, /v1/models, a streamed completion, through a port-forward): exit 1 when one fails.")]
pub struct Args {
    #[command(flatten)]
    pub profile: super::ProfileArg,
    /// Also sync and wait for the manual-sync model apps (they cost money: GPUs).
    #[arg(long)]
    pub sync_models: bool,
    /// After the last wave, smoke-test the models that were synced, as `platform smoke` does
    /// (port-forward; exit 1 when one fails).
    #[arg(long, requires = "sync_models")]
    pub smoke: bool,
    /// Before syncing the model apps, check that each vLLM model starts on its GPU type, as
    /// `platform fit` does; a model that does not fit (or whose GPU type is unknown) is not
    /// synced, and up exits 1.
    #[arg(long, requires = "sync_models")]
    pub fit: bool,
    /// The GPU type --fit checks GPU models against (gpus: in catalog/presets.yaml); default: the
    /// smallest GPU the nodes name in their nvidia.com/gpu.product (and gpu.memory) labels.
    #[arg(long, value_name = "TYPE", requires = "fit")]
    pub gpu: Option<String>,
    /// Give up after this long in total (exit 3).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub timeout: Duration,
    /// Apply and sync even though the generated tree is not committed and pushed (syncs the branch head).
    #[arg(long)]
    pub allow_unpushed: bool,
    /// Say what would be applied (a server-side dry run of the AppProject and root apps: created,
    /// configured or unchanged) and synced (apps by wave); write nothing.
    #[arg(long, conflicts_with = "smoke")]
    pub dry_run: bool,
    /// Take over fields another field manager owns on the AppProject/root apps.
    #[arg(long)]
    pub force_conflicts: bool,
    #[command(flatten)]
    pub http: super::GitHttpArg,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Refuse a stale or unpushed tree, apply the AppProject and root apps, then bring the plan up
/// wave by wave (`cluster::up::run`), and smoke-test the synced models with `--smoke`.
pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = ctx.load()?;
    let (plan, tree) = ctx.render(&inputs, args.profile.profile.as_deref())?;
    let profile = plan.profile.name.clone();
    let cfg = &inputs.config;
    let revision = pushed_revision(ctx, cfg, &tree, &profile, &args)?;
    let sync_revision = revision.clone().unwrap_or_else(|| cfg.repo_branch.clone());

    let (roots, _) = check::objects(&tree.root_files(&plan));
    // The user's AWS credentials (environment or profile), for the Secret KServe reads s3://
    // weights with: read only when a model needs them.
    let s3_keys = if plan.models.iter().any(|m| m.reads_s3()) {
        crate::s3::AwsCredentials::from_env()?
    } else {
        None
    };

    let gpu = match &args.gpu {
        Some(name) => Some(fit::catalog_gpu(&inputs.catalog, name).map_err(InputError)?),
        None => None,
    };

    let started = Instant::now();
    let work = async {
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::Write).await?;
        let deadline = started + args.timeout;
        let hold = if args.fit {
            fit_gate(ctx, &inputs, &plan, &target.client, gpu).await?
        } else {
            Vec::new()
        };
        if args.dry_run {
            let applied = crate::cluster::apply::server_side_dry_run(
                &target.client,
                &roots,
                args.force_conflicts,
            )
            .await?;
            let opts = crate::actions::up::Options {
                models: args.sync_models,
                sync: Some(sync_revision.clone()),
                pushed: revision.clone(),
                deadline,
                initiator: "platform up".into(),
                s3_keys: None,
                hold,
            };
            let waves = crate::actions::up::preview(&plan, &opts);
            print_dry_run(ctx, &applied, &waves)?;
            ctx.printer.info(
                "dry run: nothing applied or synced (the apply above was the API server's dry run)",
            );
            return Ok(());
        }
        for a in
            crate::cluster::apply::server_side_apply(&target.client, &roots, args.force_conflicts)
                .await?
        {
            ctx.printer
                .success(format!("{} {}", a.object, a.result.as_str()));
        }
        let reporter = ctx.reporter();
        let opts = crate::actions::up::Options {
            models: args.sync_models,
            sync: Some(sync_revision.clone()),
            pushed: revision.clone(),
            deadline,
            initiator: "platform up".into(),
            s3_keys,
            hold,
        };
        let outcome =
            crate::actions::up::run(&target.client, &plan, &opts, reporter.as_ref()).await?;
        let skipped = outcome.skipped;
        let n = outcome.done;
        ctx.printer.success(format!(
            "up: {n} Application(s) of profile {profile} are Synced and Healthy"
        ));
        if !skipped.is_empty() {
            ctx.printer.info(format!(
                "not synced (manual, the cost gate): {} — pass --sync-models to bring them up",
                skipped.join(", ")
            ));
        }
        let held = outcome.held;
        if args.smoke {
            let targets: Vec<crate::actions::smoke::Target> = plan
                .models
                .iter()
                .filter(|m| !skipped.contains(&m.app) && !held.contains(&m.app))
                .map(|model| crate::actions::smoke::Target {
                    model,
                    explicit: false,
                })
                .collect();
            let opts = crate::actions::smoke::Options::default();
            let report = crate::actions::smoke::run(
                &target.client,
                &ctx.env,
                &targets,
                &opts,
                reporter.as_ref(),
            )
            .await;
            super::smoke::finish(ctx, &report)?;
        }
        if held.is_empty() {
            Ok(())
        } else {
            Err(CheckFailed(format!(
                "--fit held back {} model app(s) that would not start: {} (see above)",
                held.len(),
                held.join(", ")
            ))
            .into())
        }
    };
    // The whole operation honours --timeout, whatever it is waiting for (a wave, or an API server
    // that stopped answering).
    runtime()?.block_on(async {
        match tokio::time::timeout(args.timeout, work).await {
            Ok(r) => {
                // The total, whether it ended well or not.
                let took = Duration::from_secs(started.elapsed().as_secs());
                ctx.printer
                    .info(format!("up took {}", humantime::format_duration(took)));
                r
            }
            Err(_) => Err(crate::cluster::ClusterError::Timeout {
                what: format!("up (--timeout {})", humantime::format_duration(args.timeout)),
                pending: vec![
                    "the API server stopped answering (see the warnings above) or a step took longer than --timeout".into(),
                ],
            }
            .into()),
        }
    })
}

/// `up --dry-run`: what would be applied, then the apps by wave and what up would do with each.
fn print_dry_run(
    ctx: &Ctx,
    applied: &[crate::cluster::apply::Applied],
    waves: &[crate::actions::up::Planned],
) -> Result<()> {
    #[derive(serde::Serialize)]
    struct DryRun<'a> {
        apply: Vec<serde_json::Value>,
        apps: &'a [crate::actions::up::Planned],
    }
    if ctx.output != super::Output::Table {
        let apply = applied
            .iter()
            .map(|a| serde_json::json!({"object": a.object, "result": a.result.as_str()}))
            .collect();
        let data = DryRun { apply, apps: waves };
        ctx.printer.data(&super::to_data(ctx.output, &data)?);
        return Ok(());
    }
    let mut t = crate::ui::table(&["APPLY", "WOULD BE"]);
    for a in applied {
        t.add_row(vec![a.object.clone(), a.result.as_str().to_string()]);
    }
    let mut w = crate::ui::table(&["LAYER", "WAVE", "APP", "WOULD"]);
    for p in waves {
        w.add_row(vec![
            p.layer.clone(),
            p.wave.to_string(),
            p.app.clone(),
            p.action.clone(),
        ]);
    }
    ctx.printer
        .data(&format!("{}\n{}", crate::ui::text(&t), crate::ui::text(&w)));
    Ok(())
}

/// Refuse a stale `clusters/<env>/`, and (unless `--allow-unpushed`) a tree that is not committed
/// and pushed to the config's repoURL/repoBranch: Argo CD syncs the remote. The pushed commit, or
/// None with `--allow-unpushed` (Argo CD syncs the branch head).
fn pushed_revision(
    ctx: &Ctx,
    cfg: &crate::config::EnvConfig,
    tree: &crate::render::RenderedTree,
    profile: &str,
    args: &Args,
) -> Result<Option<String>> {
    if let Ok(git) = GitRepo::open(&ctx.repo) {
        // Without --allow-unpushed an unpushed HEAD is refused below.
        let remote = args.allow_unpushed.then(|| {
            let http = args.http.plain_http(ctx, &cfg.repo_url);
            (cfg, super::root::PushCheck::Ask(http))
        });
        super::root::warn_unrecorded(ctx, &git, remote);
    }
    let stale = gitops::diff(&ctx.repo, tree)?;
    if !stale.is_empty() {
        return Err(CheckFailed(format!(
            "{}/ is stale ({} file(s) differ from what `root` renders now): run `platform root --profile {profile}`, commit and push, then `platform up`",
            crate::layout::tree(&ctx.env),
            stale.changes.len()
        ))
        .into());
    }
    if args.allow_unpushed {
        ctx.printer.info(format!(
            "--allow-unpushed: Argo CD syncs whatever {} holds at {}",
            cfg.repo_branch, cfg.repo_url
        ));
        Ok(None)
    } else {
        let git = GitRepo::open(&ctx.repo)?;
        let dirty = git.dirty_paths(&tree.owned)?;
        if !dirty.is_empty() {
            return Err(CheckFailed(format!(
                "the generated tree is not committed ({} changed: {}…): run `platform root --profile {profile} --commit --push` (or pass --allow-unpushed)",
                dirty.len(),
                dirty.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            ))
            .into());
        }
        let http = args.http.plain_http(ctx, &cfg.repo_url);
        let st = git.push_state(Some(&cfg.repo_url), &cfg.repo_branch, http)?;
        if !st.pushed {
            return Err(CheckFailed(format!(
                "HEAD {} is not on {} branch {} (remote tip: {}), and Argo CD syncs the remote: push it (`platform root --commit --push`) or pass --allow-unpushed",
                crate::text::short_rev(&st.head.to_string()),
                crate::gitops::git::redact(&cfg.repo_url),
                cfg.repo_branch,
                st.remote.map(|o| crate::text::short_rev(&o.to_string()).to_string()).unwrap_or_else(|| "none".into())
            ))
            .into());
        }
        Ok(Some(st.head.to_string()))
    }
}

/// `--fit`: judge every model of the plan before anything is applied; the apps of those that
/// would not start (or cannot be shown to) are held back. A model whose files cannot be fetched
/// stops up here.
async fn fit_gate(
    ctx: &Ctx,
    inputs: &super::Inputs,
    plan: &crate::plan::Plan,
    client: &crate::cluster::Client,
    gpu: Option<fit::Gpu>,
) -> Result<Vec<String>> {
    let needs_gpu = plan
        .models
        .iter()
        .any(|m| m.model.runtime == crate::config::RuntimeName::Vllm && fit::on_gpu(m));
    let gpu = match gpu {
        Some(g) => Some(g),
        None if needs_gpu => fit::smallest_node_gpu(client, &inputs.catalog).await?,
        None => None,
    };
    if let Some(g) = &gpu {
        ctx.printer.info(format!(
            "fit: GPU {} ({}), from {}",
            g.name,
            crate::report::size(g.bytes),
            g.from
        ));
    }
    let hub = crate::hub::HubClient::from_env(None)?;
    let opts = fit::Options {
        gpu,
        utilization: None,
        overhead_bytes: fit::DEFAULT_OVERHEAD,
    };
    let reporter = ctx.reporter();
    let mut hold = Vec::new();
    for g in fit::gate(&hub, &plan.models, &opts, reporter.as_ref()).await {
        if g.refused() {
            hold.push(g.app.clone());
        }
        let model = &g.model;
        match g.outcome {
            Gate::Judged(f) if f.verdict.fits => {
                ctx.printer.success(format!("fit: {}", fit::fits_line(&f)));
            }
            Gate::Judged(f) => {
                let e = fit::explain(&f, &inputs.catalog);
                ctx.printer.diagnostic(
                    &Diagnostic::error(format!("not syncing {}: {}", g.app, e.message)).help(
                        format!("{}; `platform fit {model}` shows every number", e.fix),
                    ),
                );
            }
            Gate::NoGpu => ctx.printer.diagnostic(
                &Diagnostic::error(format!(
                    "not syncing {}: fit cannot check {model}, its GPU type is unknown (no --gpu, and no node names its GPU in a {} label)",
                    g.app,
                    fit::PRODUCT_LABEL
                ))
                .help("pass --gpu TYPE (gpus: in catalog/presets.yaml), or run GPU feature discovery on the GPU nodes"),
            ),
            Gate::NoFiles { source } => ctx.printer.diagnostic(
                &Diagnostic::warning(format!(
                    "fit cannot check {model}: its source {source} is not a Hub repository; syncing it unchecked"
                ))
                .help(format!("check it with `platform fit {model} --from-dir DIR`")),
            ),
            Gate::OtherRuntime(r) => ctx
                .printer
                .detail(format!("fit: {model} runs {r}, not vLLM: not checked")),
            Gate::Failed(e) => {
                return Err(anyhow::Error::from(e).context(format!(
                    "--fit could not check model {model}: nothing was applied or synced"
                )))
            }
        }
    }
    Ok(hold)
}
