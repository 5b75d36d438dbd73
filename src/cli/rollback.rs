use std::time::Duration;

use anyhow::Result;

use super::cluster::{duration_at_least, TargetArgs};
use super::{to_data, Ctx, Output};
use crate::actions::rollback::{self, Outcome};
use crate::consts;
use crate::gitops::{self, git::GitRepo};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
helm rollback, the GitOps way: a NEW commit whose environment inputs (environments/<env>/config.yaml, \
catalog/, templates/) and clusters/<env>/ equal those of REV; history is never rewritten, so the \
rollback is itself a render commit `platform history` lists and a later rollback undoes. REV is \
any commit git names (a hash from `platform history`, a prefix of one, HEAD~2); default: the render \
commit before HEAD's (a render commit changed clusters/<env>/; a commit of inputs alone is not one). \
A REV whose inputs were committed after its tree was rendered (a hand-committed config.yaml) is \
refused, naming the render commit to use instead; --force restores it as it is. catalog/ and \
templates/ are shared: restoring them while other environments exist under environments/ is \
refused, naming those (--include-shared restores them anyway; --dry-run warns). Uncommitted changes to those paths are refused (commit or stash them first); \
other pending changes of yours are left alone. With --push, the commit is pushed as `root --commit \
--push` pushes (the config's repoURL/repoBranch, never forced, the same credentials), then synced \
as `platform up` syncs it (roots applied, wave by wave, the pushed commit; model apps with \
--sync-models); --no-sync stops after the push. Without --push nothing leaves the repository. \
--dry-run prints what would be restored (files A/M/D under clusters/<env>/, the inputs, the models) \
and writes nothing; -o json|yaml prints {target, files, inputs, models, uncommitted, other_envs, committed, dry_run}.

Examples:
  platform rollback --env prod --dry-run
  platform rollback 3f2a9c1d7e0b --env prod --push
  platform rollback --env prod --push --no-sync")]
pub struct Args {
    /// The commit to restore (default: the render commit before HEAD's; see `platform history`).
    pub rev: Option<String>,
    /// Push the new commit to the config's repoURL/repoBranch (never forced), then sync.
    #[arg(long)]
    pub push: bool,
    /// Print what would be restored; write, commit and push nothing.
    #[arg(long, conflicts_with = "push")]
    pub dry_run: bool,
    /// Also restore REV's catalog/ and templates/ when other environments render from them.
    #[arg(long)]
    pub include_shared: bool,
    /// Restore REV even when its inputs are not the ones its tree was rendered from.
    #[arg(long)]
    pub force: bool,
    /// After pushing, do not sync (Argo CD's automated root apps still pick the commit up).
    #[arg(long, requires = "push")]
    pub no_sync: bool,
    /// Also sync and wait for the manual-sync model apps, as `up --sync-models` does.
    #[arg(long, conflicts_with = "no_sync")]
    pub sync_models: bool,
    /// Give up the sync after this long (exit 3).
    #[arg(long, default_value = "30m", value_name = "DURATION", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub timeout: Duration,
    #[command(flatten)]
    pub http: super::GitHttpArg,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let opts = rollback::Options {
        env: ctx.env.clone(),
        rev: args.rev.clone(),
        dry_run: args.dry_run,
        force: args.force,
        include_shared: args.include_shared,
    };
    let reporter = ctx.reporter();
    let out = rollback::run(&ctx.repo, &opts, reporter.as_ref())?;
    print(ctx, &out)?;
    if args.dry_run {
        if !out.uncommitted.is_empty() {
            ctx.printer
                .diagnostic(&crate::diag::Diagnostic::warning(format!(
                    "{} (the real run refuses them)",
                    rollback::dirty_message(&ctx.env, &out.uncommitted)
                )));
        }
        if !out.other_envs.is_empty() && !args.include_shared {
            let shared = rollback::shared_inputs(&ctx.env, &out.inputs);
            ctx.printer
                .diagnostic(&crate::diag::Diagnostic::warning(format!(
                    "{} (the real run refuses without it)",
                    rollback::shared_message(&ctx.env, &out.target.rev, &shared, &out.other_envs)
                )));
        }
        ctx.printer.info(format!(
            "dry run: {} would be restored as {} holds them; nothing written",
            rollback::describe(&out),
            out.target.rev
        ));
        return Ok(());
    }
    if out.is_empty() {
        ctx.printer.info(format!(
            "nothing to restore: the inputs and {}/ at HEAD already equal {}'s",
            crate::layout::tree(&ctx.env),
            out.target.rev
        ));
    } else if let Some(c) = &out.committed {
        ctx.printer.success(format!(
            "rolled back {} to {} as new commit {}",
            ctx.env,
            out.target.rev,
            crate::text::short_rev(c)
        ));
    }
    if !args.push {
        ctx.printer.info(format!(
            "not pushed: Argo CD reads the remote; `platform rollback --env {} {} --push` (or `git push`) publishes it",
            ctx.env, out.target.rev
        ));
        return Ok(());
    }
    let inputs = ctx.load()?;
    let git = GitRepo::open(&ctx.repo)?;
    super::root::push(ctx, &git, &inputs.config, &args.http)?;
    if args.no_sync {
        return Ok(());
    }
    // `up` refuses a tree this platform would not render from these inputs (restored from an
    // older render): say so rather than sync half of it.
    let (_, tree) = ctx.render(&inputs, None)?;
    let stale = gitops::diff(&ctx.repo, &tree)?;
    if !stale.is_empty() {
        ctx.printer.diagnostic(
            &crate::diag::Diagnostic::warning(format!(
                "this platform renders {} file(s) of the restored {}/ differently (it was rendered by another version): not syncing; Argo CD's automated root apps still read the pushed commit",
                stale.changes.len(),
                crate::layout::tree(&ctx.env)
            ))
            .help(format!(
                "re-render and publish: `platform root --env {} --commit --push`, then `platform up`",
                ctx.env
            )),
        );
        return Ok(());
    }
    super::up::run(
        ctx,
        super::up::Args {
            profile: super::ProfileArg { profile: None },
            sync_models: args.sync_models,
            smoke: false,
            fit: false,
            gpu: None,
            timeout: args.timeout,
            allow_unpushed: false,
            force_conflicts: false,
            dry_run: false,
            http: args.http,
            target: args.target,
        },
    )
}

/// The restored changes: A/M/D lines, the inputs and the models (or `-o json|yaml`).
fn print(ctx: &Ctx, out: &Outcome) -> Result<()> {
    if ctx.output != Output::Table {
        ctx.printer.data(&to_data(ctx.output, out)?);
        return Ok(());
    }
    let mut text = String::new();
    for (sym, list) in [
        ("A", &out.files.added),
        ("M", &out.files.changed),
        ("D", &out.files.removed),
    ] {
        for p in list {
            text.push_str(&format!("{sym} {p}\n"));
        }
    }
    for p in &out.inputs {
        text.push_str(&format!("input {p}\n"));
    }
    if let Some(m) = &out.models {
        for (label, list) in [
            ("model added", &m.added),
            ("model changed", &m.changed),
            ("model removed", &m.removed),
        ] {
            for n in list {
                text.push_str(&format!("{label}: {n}\n"));
            }
        }
    }
    ctx.printer.data(&text);
    ctx.printer.info(format!(
        "rollback target {} ({}): {}",
        out.target.rev,
        out.target.subject,
        rollback::describe(out)
    ));
    Ok(())
}
