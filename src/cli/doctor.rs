use anyhow::Result;

use super::cluster::{connect, runtime, TargetArgs};
use super::{to_data, CheckFailed, Ctx, Output};
use crate::actions::doctor::{self, Level};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks: API reachable and its version; the CRDs the enabled groups need (Argo CD's must exist; \
the ones platform installs are WARN until `platform up`); Argo CD's application controller and \
repo-server ready (found by labels); Argo CD's version against the one pinned in \
catalog/argocd.yaml; the Application health customization in argocd-cm (the exact snippet is \
printed); the repository credential Secret when the repoURL is an ssh URL; a default \
StorageClass; the configured GatewayClass accepted; \
LoadBalancer Services with addresses; allocatable nvidia.com/gpu versus \
what the enabled models request; RBAC for the verbs platform uses. Exit 1 on any FAIL.")]
pub struct Args {
    #[command(flatten)]
    pub profile: super::ProfileArg,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (inputs, plan) = ctx.plan(args.profile.profile.as_deref())?;
    runtime()?.block_on(async {
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::ReadOnly).await?;
        let mut checks = doctor::run(&target, &plan).await;
        checks.extend(
            crate::actions::bootstrap::checks::checks(
                &target.client,
                &inputs.catalog.argocd,
                &plan.argocd_namespace,
                &inputs.config.repo_url,
            )
            .await,
        );
        if ctx.output == Output::Table {
            // Columns line up across rows whatever the check's name; a fix goes under the detail.
            let mut t = crate::ui::rows();
            for c in &checks {
                let level = match c.level {
                    Level::Ok => "OK",
                    Level::Warn => "WARN",
                    Level::Fail => "FAIL",
                };
                t.add_row(vec![level, c.check.as_str(), c.detail.as_str()]);
                if let Some(fix) = &c.fix {
                    for l in fix.lines() {
                        t.add_row(vec!["", "", l]);
                    }
                }
            }
            ctx.printer.data(&ctx.printer.hinted(&crate::ui::text(&t)));
        } else {
            ctx.printer.data(&to_data(ctx.output, &checks)?);
        }
        let fails = checks.iter().filter(|c| c.level == Level::Fail).count();
        let warns = checks.iter().filter(|c| c.level == Level::Warn).count();
        if fails > 0 {
            return Err(CheckFailed(format!("doctor: {fails} FAIL, {warns} WARN")).into());
        }
        ctx.printer
            .success(format!("doctor: no FAIL ({warns} WARN)"));
        Ok(())
    })
}
