use std::time::Duration;

use anyhow::Result;

use super::cluster::{connect, parse_duration, runtime, TargetArgs};
use super::up::stages;
use super::Ctx;
use crate::catalog::resolve::AppKind;
use crate::cluster::wait::{wait_apps, wait_created, AppWait};
use crate::ui::progress::Reporter;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Watches (no polling) every Application of the profile, wave by wave, until each is Synced + Healthy
and reconciled after its last sync. Model apps are included with --models. Exit 1 on a Degraded app
or failed sync (with the reason), 3 on timeout (with what is pending and why).")]
pub struct Args {
    #[command(flatten)]
    pub profile: super::ProfileArg,
    /// Also wait for the manual-sync model apps.
    #[arg(long)]
    pub models: bool,
    /// Give up after this long (exit 3).
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (inputs, plan) = ctx.plan(args.profile.profile.as_deref())?;
    runtime()?.block_on(async {
        let target = connect(ctx, &inputs, &args.target).await?;
        let deadline = std::time::Instant::now() + args.timeout;
        let reporter = Reporter::new(ctx.printer.quiet);
        let mut n = 0;
        for (layer, wave, apps) in stages(&plan) {
            let apps: Vec<_> = apps
                .into_iter()
                .filter(|a| a.kind == AppKind::Catalog || args.models)
                .collect();
            if apps.is_empty() {
                continue;
            }
            reporter.line(&format!("wave {wave} of layer {layer}"));
            let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
            wait_created(
                &target.client,
                &names,
                deadline.saturating_duration_since(std::time::Instant::now()),
                &reporter,
            )
            .await?;
            let waits: Vec<AppWait> = names
                .iter()
                .map(|n| AppWait {
                    name: n.clone(),
                    revision: None,
                })
                .collect();
            wait_apps(
                &target.client,
                &waits,
                deadline.saturating_duration_since(std::time::Instant::now()),
                &reporter,
            )
            .await?;
            n += waits.len();
        }
        ctx.printer
            .success(format!("{n} Application(s) are Synced and Healthy"));
        Ok(())
    })
}
