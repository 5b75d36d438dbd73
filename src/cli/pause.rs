use std::time::Duration;

use anyhow::Result;

use super::cluster::{connect, duration_at_least, runtime, select_models, TargetArgs};
use super::{to_data, Ctx, Output};
use crate::actions::pause;
use crate::consts;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
KServe InferenceService and LLMInferenceService: sets serving.kserve.io/stop=\"true\" (resume \
removes it); the model app is manual-sync, so Argo CD does not revert it. raw vLLM: scales the \
Deployment to 0 and remembers the replica count in platform.ai/paused-replicas, which resume \
restores. Idempotent: pausing a paused model changes nothing.")]
pub struct Args {
    /// Models to act on (names from config.yaml).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    /// Every model of the environment.
    #[arg(long, conflicts_with = "models")]
    pub all: bool,
    /// Wait until each model reports stopped (pause) or ready (resume).
    #[arg(long)]
    pub wait: bool,
    /// Say what would be scaled or annotated (the same reads), change nothing.
    #[arg(long, conflicts_with = "wait")]
    pub dry_run: bool,
    /// How long --wait waits.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub timeout: Duration,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args, resume: bool) -> Result<()> {
    let (inputs, plan) = ctx.plan(None)?;
    let models = select_models(ctx, &inputs, &plan, &args.models, args.all)?;
    runtime()?.block_on(async {
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::Write).await?;
        let mut outcomes = Vec::new();
        let write = if args.dry_run {
            pause::Write::DryRun
        } else {
            pause::Write::Apply
        };
        for m in &models {
            let o = if resume {
                pause::resume_with(&target.client, m, write).await?
            } else {
                pause::pause_with(&target.client, m, write).await?
            };
            if args.dry_run {
                let what = if o.changed {
                    "would do"
                } else {
                    "nothing to do"
                };
                ctx.printer
                    .info(format!("{} ({}): {what}: {}", o.model, o.layer, o.action));
            } else {
                ctx.printer
                    .success(format!("{} ({}): {}", o.model, o.layer, o.action));
            }
            outcomes.push(o);
        }
        if args.dry_run {
            ctx.printer.info("dry run: nothing changed");
        }
        if args.wait {
            let reporter = ctx.reporter();
            let waits = models.iter().map(|m| {
                pause::wait_for(&target.client, m, !resume, args.timeout, reporter.as_ref())
            });
            for (m, r) in models.iter().zip(futures::future::join_all(waits).await) {
                r?;
                ctx.printer.success(format!(
                    "{} is {}",
                    m.name,
                    if resume { "ready" } else { "stopped" }
                ));
            }
        }
        if ctx.output != Output::Table {
            ctx.printer.data(&to_data(ctx.output, &outcomes)?);
        }
        Ok(())
    })
}
