use anyhow::Result;

use super::{print_warnings, to_data, CheckFailed, Ctx, Output};
use crate::catalog::resolve::{group_diagnostics, resolve_groups};
use crate::diag::Diagnostics;
use crate::gitops;
use crate::render::render_groups;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes one flow mapping per catalog group, in catalog order:
  - { name: kserve, layer: serving, enabled: \"true\", catalogPath: clusters/ai-dev/apps/serving/kserve }
A feature flag absent from config.yaml takes the group's default. Warnings (stderr, exit 0): a group
that needs a domain while `domain` is empty, a group whose required group is off, GPU-hungry groups.
Unknown feature names are errors.")]
pub struct Args {
    /// Write nothing; exit 1 and print a diff when the file on disk is stale (for CI).
    #[arg(long, conflicts_with = "stdout")]
    pub check: bool,
    /// Print the file on stdout instead of writing it.
    #[arg(long)]
    pub stdout: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = ctx.load()?;
    let groups = resolve_groups(&inputs.config, &ctx.env, &inputs.catalog);
    let diags = group_diagnostics(
        &inputs.config,
        &inputs.config_file,
        &inputs.catalog,
        &groups,
        false,
    );
    if diags.iter().any(|d| d.is_error()) {
        return Err(Diagnostics(diags).into());
    }
    print_warnings(&ctx.printer, &diags);
    let tree = render_groups(&ctx.env, &groups, &inputs.templates)?;
    if ctx.output != Output::Table {
        ctx.printer.data(&to_data(ctx.output, &groups)?);
    }
    if args.stdout {
        for text in tree.files.values() {
            ctx.printer.data(text);
        }
        return Ok(());
    }
    let changes = gitops::diff(&ctx.repo, &tree)?;
    let path = tree.owned.first().cloned().unwrap_or_default();
    let enabled = groups.iter().filter(|g| g.enabled).count();
    if args.check {
        if changes.is_empty() {
            ctx.printer.success(format!("{path} is up to date"));
            return Ok(());
        }
        ctx.printer.data(&changes.unified_diff());
        return Err(CheckFailed(format!(
            "{path} is stale: run `platform resolve-groups --env {}`",
            ctx.env
        ))
        .into());
    }
    if changes.is_empty() {
        ctx.printer.success(format!(
            "{path} unchanged ({} groups, {enabled} enabled)",
            groups.len()
        ));
        return Ok(());
    }
    gitops::apply(&ctx.repo, &changes)?;
    ctx.printer.success(format!(
        "wrote {path} ({} groups, {enabled} enabled)",
        groups.len()
    ));
    Ok(())
}
