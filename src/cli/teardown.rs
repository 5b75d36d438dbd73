use std::time::Duration;

use anyhow::Result;
use comfy_table::{presets::NOTHING, Table};

use super::cluster::{connect, duration_at_least, runtime, TargetArgs};
use super::{to_data, CheckFailed, Ctx, Output};
use crate::actions::teardown::{self, Options};
use crate::consts;
use crate::ui::Confirmation;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Order: stop the root apps re-creating children → pause models → delete the manual serving apps → \
delete Gateways and wait until their LoadBalancer Services are gone → delete PVCs (unless \
--keep-pvcs) and wait for their PVs → delete Applications in reverse wave order, then the root \
apps and the AppProject → audit. Only objects platform manages are deleted (label \
app.kubernetes.io/managed-by=platform, or the Applications it renders). The audit lists every \
surviving Gateway, LoadBalancer Service, PVC, Released/Retain PV and Application in the managed \
namespaces; exit 1 if any survived. Re-running after a partial teardown continues safely. A real \
run asks for the cluster name (or --yes).")]
pub struct Args {
    /// Print the ordered plan of what exists now; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for the cluster name (for scripts).
    #[arg(long)]
    pub yes: bool,
    /// Keep the model PVCs (and their weights).
    #[arg(long)]
    pub keep_pvcs: bool,
    /// Remove finalizers that are stuck past --finalizer-timeout instead of stopping.
    #[arg(long)]
    pub strip_finalizers: bool,
    /// How long an object may stay terminating before its finalizer counts as stuck.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub finalizer_timeout: Duration,
    /// How long to wait for load balancers and volumes to be released, and for an object that
    /// goes on terminating without finalizers of its own (a Namespace whose content is stuck).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub release_timeout: Duration,
    /// Layer profile whose apps are torn down; default: the widest (everything).
    #[arg(long, short)]
    pub profile: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    // Teardown covers every layer unless a profile is named: plan the widest one.
    let (inputs, plan) = ctx.plan_widest(args.profile.as_deref())?;
    let opts = Options {
        keep_pvcs: args.keep_pvcs,
        strip_finalizers: args.strip_finalizers,
        finalizer_timeout: args.finalizer_timeout,
        release_timeout: args.release_timeout,
    };
    runtime()?.block_on(async {
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::Write).await?;
        let steps = teardown::plan_steps(&target.client, &plan, &opts).await?;
        if args.dry_run || !args.yes {
            let text = match ctx.output {
                Output::Table => {
                    let mut t = Table::new();
                    t.load_preset(NOTHING);
                    t.set_header(vec!["STEP", "KIND", "NAMESPACE", "NAME"]);
                    for s in &steps {
                        let (what, kind, namespace, name) = s.describe();
                        let step = format!("{} {what}", s.phase as u8);
                        t.add_row(vec![step.as_str(), kind, namespace, name]);
                    }
                    format!(
                        "teardown plan for cluster {}:\n{t}\n",
                        inputs.config.cluster.name
                    )
                }
                o => to_data(o, &steps)?,
            };
            ctx.printer.data(&text);
        }
        if args.dry_run {
            ctx.printer
                .info(format!("dry run: {} step(s), nothing deleted", steps.len()));
            return Ok(());
        }
        if !args.yes {
            confirm(&inputs.config.cluster.name)?;
        }
        let reporter = ctx.reporter();
        let survivors =
            teardown::run(&target.client, &plan, &steps, &opts, reporter.as_ref()).await?;
        if survivors.is_empty() {
            ctx.printer.success(format!(
                "teardown of {} complete: nothing platform manages survived",
                inputs.config.cluster.name
            ));
            return Ok(());
        }
        let text = match ctx.output {
            Output::Table => {
                let mut t = Table::new();
                t.load_preset(NOTHING);
                t.set_header(vec!["KIND", "NAMESPACE", "NAME", "DETAIL", "WHY"]);
                for s in &survivors {
                    t.add_row(vec![
                        s.kind.clone(),
                        s.namespace.clone(),
                        s.name.clone(),
                        s.detail.clone(),
                        s.why.clone(),
                    ]);
                }
                let fixes: Vec<String> = survivors
                    .iter()
                    .map(|s| {
                        let ns = if s.namespace.is_empty() {
                            String::new()
                        } else {
                            format!("{}/", s.namespace)
                        };
                        format!("  {} {ns}{}: {}", s.kind, s.name, s.fix)
                    })
                    .collect();
                // The commands are aimed at the target like every printed hint.
                ctx.printer.hinted(&format!(
                    "survivors:\n{t}\nto remove them:\n{}\n",
                    fixes.join("\n")
                ))
            }
            o => to_data(o, &survivors)?,
        };
        ctx.printer.data(&text);
        Err(CheckFailed(format!(
            "audit: {} object(s) survived the teardown (listed above, each with why and what \
             removes it)\n  help: {}",
            survivors.len(),
            audit_help(&survivors)
        ))
        .into())
    })
}

/// The way forward after an audit that found survivors.
fn audit_help(survivors: &[teardown::Survivor]) -> String {
    let rerun = "re-run `platform teardown`";
    if survivors.iter().all(|s| s.fix == rerun) {
        format!("{rerun}: it continues where this one stopped")
    } else {
        format!(
            "run the command listed for each survivor under \"to remove them\" (or keep what is \
             kept on purpose), then {rerun} to check that nothing else is left"
        )
    }
}

/// Ask for the cluster name on a terminal; refuse without one.
fn confirm(cluster: &str) -> Result<()> {
    let prompt = format!("This deletes the platform's apps, Gateways and PVCs on cluster {cluster}. Type the cluster name to continue: ");
    match crate::ui::confirm_typed(&prompt, cluster)? {
        Confirmation::Confirmed => Ok(()),
        Confirmation::NoTerminal => Err(CheckFailed("teardown asks for the cluster name on a terminal: pass --yes to run it non-interactively".into()).into()),
        Confirmation::Refused(typed) => {
            Err(CheckFailed(format!("`{typed}` is not `{cluster}`: nothing was deleted")).into())
        }
    }
}
