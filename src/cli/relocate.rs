//! `platform move MODEL --to LAYER`: args → options → the move's steps (printed with --dry-run,
//! run otherwise) → one line per commit.

use std::time::Duration;

use anyhow::Result;

use super::cluster::{connect, duration_at_least, runtime, TargetArgs};
use super::Ctx;
use crate::actions::relocate::{self, steps, Mover, Options};
use crate::actions::{fit, smoke};
use crate::config::ServingLayer;
use crate::consts;
use crate::error::InputError;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Moves a model between serving layers without its clients noticing: its stable route \
(http://<inference-gateway>/models/<model>/v1, `platform status`) keeps the URL while the \
backend changes. Runbook 003 as one command:
  1. preflight: the target cluster, both layers enabled and movable, the model routed, `fit` \
on the destination's GPU (its GPU type from --gpu, else the nodes' labels)
  2. commit + push config.yaml with `moveTo: LAYER` (edited in place: comments stay): the model \
declared on both layers, Application <model>-<layer> for the new one, the route listing both \
(the new one at weight 0); then sync the new app and wait until it is Synced and Healthy
  3. (weights pre-staged on the destination: pause it, stage-model, resume it)
  4. wait until the new backend is ready, smoke it through a port-forward; a failure stops here \
with the route untouched (`--rollback` undoes the declaration)
  5. shift the route's weights (--steps 10,50,100: a smoke through the route between steps), \
only ever onto a ready backend
  6. pause the old backend (only once the new one is ready and the old has no share), then commit \
+ push config.yaml with the model on the new layer only (`app: <model>-<layer>`: the \
Application that brought it up keeps it); Argo CD prunes the old one, its PVC kept unless \
--delete-old-volume. With --keep-old the commit records `moveShare: 100` instead
Every step looks at git and the cluster first, so re-running the same command after an \
interruption continues where it stopped. Refused: moves to or from llm-d (its router owns the \
model's route and InferencePool on the isolated llm-d gateway; prefill/decode needs >= 2 GPUs), \
models with `namespace:` (both declarations would share object names).
The commits follow `root --commit --push`'s rules (nothing staged, never forced); config.yaml \
must be committed, and a pending change to it is refused (a move commits only its own edits).

Examples:
  platform move qwen-cpu --to raw-vllm --dry-run
  platform move qwen-cpu --to raw-vllm
  platform move qwen-gpu --to kserve --steps 10,50,100 --gpu L4
  platform move qwen-cpu --rollback")]
pub struct Args {
    /// The model (a name from config.yaml).
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// The serving layer to move it to: raw-vllm or kserve.
    #[arg(long, value_name = "LAYER", required_unless_present = "rollback")]
    pub to: Option<String>,
    /// Print the steps and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Undo a declared move: the old backend resumed and given the whole route, `moveTo` removed.
    #[arg(long, conflicts_with_all = ["to", "steps", "keep_old", "delete_old_volume"])]
    pub rollback: bool,
    /// The new backend's shares of the route, ascending, ending at 100 (default: 100 at once).
    #[arg(long, value_name = "PERCENTS", value_parser = parse_steps)]
    pub steps: Option<Shares>,
    /// Leave the old backend declared (paused): the second commit records `moveShare: 100` (git's
    /// route agrees with the live one) instead of removing it; a later move removes it.
    #[arg(long)]
    pub keep_old: bool,
    /// Delete the old layer's PVC with it (kept by default).
    #[arg(long)]
    pub delete_old_volume: bool,
    /// Skip the smokes (you have validated the new backend yourself).
    #[arg(long)]
    pub no_smoke: bool,
    /// Skip the fit check on the destination.
    #[arg(long)]
    pub skip_fit: bool,
    /// The destination's GPU type for the fit check (a type of `platform fit --help`).
    #[arg(long, value_name = "TYPE")]
    pub gpu: Option<String>,
    /// How long each wait may take (sync, ready, stop, prune).
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub timeout: Duration,
    /// How long each smoke request may take.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub smoke_timeout: Duration,
    /// Hugging Face token file (fit and staging read the Hub).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub http: super::GitHttpArg,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `--steps 10,50,100`.
#[derive(Debug, Clone)]
pub struct Shares(Vec<u32>);

fn parse_steps(s: &str) -> std::result::Result<Shares, String> {
    steps::parse_shares(s).map(Shares)
}

fn layer(name: &str) -> Result<ServingLayer> {
    crate::config::serving_layer_named(name).ok_or_else(|| {
        InputError(format!(
            "--to {name}: not a serving layer (raw-vllm, kserve, llm-d)"
        ))
        .into()
    })
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = ctx.load()?;
    let m = super::cluster::config_model(ctx, &inputs, &args.model)?;
    let to = match (&args.to, relocate::position(m)) {
        (Some(t), _) => layer(t)?,
        (None, relocate::Where::Moving { to, .. }) => to,
        (None, relocate::Where::On(l)) => {
            // Also a re-run of a rollback whose edit was made: finish its commit and wait.
            finished(ctx, &inputs, &args, m, l, None)?;
            ctx.printer.success(format!(
                "{} is not moving (config.yaml has no moveTo): it is on {l} only",
                m.name
            ));
            return Ok(());
        }
    };
    let mut opts = options(ctx, &inputs, &args, to);
    let dest_staged = {
        let mut there = m.clone();
        there.layer = to;
        crate::serving::weights::of(&there).needs_pvc() && there.staged()
    };
    if !args.rollback && relocate::position(m) == relocate::Where::On(to) {
        if m.app.as_deref() != Some(m.moving_app_name(to).as_str()) {
            return Err(InputError(format!(
                "{} is on {to} already (config.yaml says layer: {to}); nothing to move",
                m.name
            ))
            .into());
        }
        finished(ctx, &inputs, &args, m, to, Some(to))?;
        ctx.printer.success(format!(
            "{} is on {to} (Application {}): the move is complete",
            m.name,
            m.moving_app_name(to)
        ));
        return Ok(());
    }
    let shape = relocate::shape(m, &opts, dest_staged)?;
    if args.dry_run {
        let lines: Vec<String> = if args.rollback {
            steps::rollback_steps()
                .into_iter()
                .map(|s| steps::describe_back(s, &shape))
                .collect()
        } else {
            steps::steps(&shape)
                .into_iter()
                .map(|s| steps::describe(s, &shape))
                .collect()
        };
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{}. {l}\n", i + 1))
            .collect();
        ctx.printer.data(&text);
        return Ok(());
    }
    let needs_fit = !args.rollback
        && !args.skip_fit
        && m.gpus > 0
        && m.runtime == crate::config::RuntimeName::Vllm
        && relocate::position(m) == relocate::Where::On(shape.from);
    runtime()?.block_on(async {
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::Write).await?;
        if needs_fit {
            opts.fit = Some(fit_inputs(ctx, &inputs, &target.client, m, &args).await?);
        }
        if dest_staged && !args.rollback {
            opts.stage = std::sync::Mutex::new(Some(stage_inputs(&args, m)?));
        }
        let mover = Mover {
            repo: &ctx.repo,
            env: &ctx.env,
            client: &target.client,
            reporter: ctx.reporter(),
            opts: &opts,
        };
        let out = if args.rollback {
            mover.rollback(&shape).await?
        } else {
            mover.run(&shape).await?
        };
        for c in &out.commits {
            ctx.printer.detail(format!("commit {c}"));
        }
        ctx.printer.success(if args.rollback {
            format!("{} is on {} only again", shape.model, shape.from)
        } else if args.keep_old {
            format!(
                "{} is served by {} (the route's whole share); {} is paused and still declared",
                shape.model, shape.to, shape.from
            )
        } else {
            format!(
                "{} moved to {}: the same URL, {} removed",
                shape.model, shape.to, shape.from
            )
        });
        Ok(())
    })
}

/// The move's options from the arguments (the fit and staging inputs are added once the cluster
/// is known).
fn options(ctx: &Ctx, inputs: &super::Inputs, args: &Args, to: ServingLayer) -> Options {
    Options {
        to,
        shares: args.steps.clone().map_or_else(|| vec![100], |s| s.0),
        smoke: !args.no_smoke,
        keep_old: args.keep_old,
        delete_old_volume: args.delete_old_volume,
        timeout: args.timeout,
        smoke_opts: smoke::Options {
            timeout: args.smoke_timeout,
            ..smoke::Options::default()
        },
        http: args.http.plain_http(ctx, &inputs.config.repo_url),
        fit: None,
        stage: std::sync::Mutex::new(None),
    }
}

/// Finish what an interrupted run left (a move's last commit when `moved` is Some, a
/// rollback's otherwise): commit and push it, wait until Argo CD has it. `--dry-run` says so.
fn finished(
    ctx: &Ctx,
    inputs: &super::Inputs,
    args: &Args,
    m: &crate::config::Model,
    on: ServingLayer,
    moved: Option<ServingLayer>,
) -> Result<()> {
    if args.dry_run {
        ctx.printer.data(&format!(
            "1. commit and push what an interrupted `platform move` left, and wait until Argo CD has {} on {on} only\n",
            m.name
        ));
        return Ok(());
    }
    let opts = options(ctx, inputs, args, on);
    runtime()?.block_on(async {
        let target = connect(ctx, inputs, &args.target, super::cluster::Access::Write).await?;
        let mover = Mover {
            repo: &ctx.repo,
            env: &ctx.env,
            client: &target.client,
            reporter: ctx.reporter(),
            opts: &opts,
        };
        mover.finish(&m.name, moved).await?;
        Ok(())
    })
}

/// The GPU (--gpu, else the nodes' labels) and the model's files from the Hub, for the fit step.
async fn fit_inputs(
    ctx: &Ctx,
    inputs: &super::Inputs,
    client: &crate::cluster::Client,
    m: &crate::config::Model,
    args: &Args,
) -> Result<(fit::ModelFiles, fit::Options)> {
    let gpu = match &args.gpu {
        Some(name) => fit::catalog_gpu(&inputs.catalog, name).map_err(InputError)?,
        None => fit::smallest_node_gpu(client, &inputs.catalog)
            .await?
            .ok_or_else(|| {
                InputError(format!(
                    "no node names its GPU ({} label): pass --gpu TYPE, or --skip-fit",
                    fit::PRODUCT_LABEL
                ))
            })?,
    };
    let plan = crate::pipeline::plan(inputs, &ctx.env, crate::pipeline::Profile::Chosen(None))?;
    let pm = plan
        .models
        .iter()
        .find(|pm| pm.name == m.name)
        .ok_or_else(|| InputError(format!("{} is not rendered (`platform plan`)", m.name)))?;
    let hub = crate::hub::HubClient::from_env(args.token_file.as_deref())?;
    let files = fit::from_hub(&hub, pm, ctx.reporter().as_ref()).await?;
    Ok((
        files,
        fit::Options {
            gpu: Some(gpu),
            utilization: None,
            overhead_bytes: 2 << 30, // `platform fit`'s default --overhead
        },
    ))
}

/// The download clients staging the destination needs.
fn stage_inputs(
    args: &Args,
    m: &crate::config::Model,
) -> Result<(
    crate::actions::stage::run::Input,
    crate::actions::stage::run::Options,
)> {
    let mut r = crate::actions::stage::run::Remotes::default();
    if m.source.s3().is_some() {
        return Err(InputError(format!(
            "{}: moving onto pre-staged s3:// weights is not supported yet: run `platform stage-model` on the destination after step 2, or set storage.staged: false",
            m.name
        ))
        .into());
    }
    r.hub = Some(crate::hub::HubClient::from_env(args.token_file.as_deref())?);
    Ok((
        crate::actions::stage::run::Input::Remote(Box::new(r)),
        crate::actions::stage::run::Options {
            revision: None,
            filter: crate::hub::FileFilter::default().for_file(m.single_file()),
            force: false,
            image: crate::actions::stage::DEFAULT_IMAGE.to_string(),
            pod_timeout: args.timeout,
        },
    ))
}
