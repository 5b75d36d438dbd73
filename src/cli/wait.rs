use std::time::Duration;

use anyhow::Result;

use super::cluster::{connect, duration_at_least, runtime, TargetArgs};
use super::Ctx;
use crate::consts;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Watches (no polling) every Application of the profile, wave by wave, until each is Synced + \
Healthy and reconciled after its last sync. Model apps are included with --models. Exit 1 on a \
Degraded app or failed sync (with the reason), 3 on timeout (with what is pending and why).")]
pub struct Args {
    #[command(flatten)]
    pub profile: super::ProfileArg,
    /// Also wait for the manual-sync model apps.
    #[arg(long)]
    pub models: bool,
    /// Give up after this long (exit 3).
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub timeout: Duration,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (inputs, plan) = ctx.plan(args.profile.profile.as_deref())?;
    runtime()?.block_on(async {
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::ReadOnly).await?;
        let reporter = ctx.reporter();
        let opts = crate::actions::up::Options {
            models: args.models,
            sync: None,
            pushed: None,
            deadline: std::time::Instant::now() + args.timeout,
            initiator: String::new(),
            s3_keys: None,
            hold: Vec::new(),
        };
        let n = crate::actions::up::run(&target.client, &plan, &opts, reporter.as_ref())
            .await?
            .done;
        ctx.printer
            .success(format!("{n} Application(s) are Synced and Healthy"));
        Ok(())
    })
}
