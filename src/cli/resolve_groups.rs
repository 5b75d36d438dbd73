use anyhow::Result;
use serde::Serialize;

use super::{print_warnings, to_data, CheckFailed, Ctx, Output};
use crate::catalog::resolve::{group_diagnostics, resolve_groups};
use crate::diag::Diagnostics;
use crate::gitops;
use crate::render::render_groups;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes one flow mapping per catalog group, in catalog order:
  - { name: kserve, layer: serving, enabled: \"true\", catalogPath:
    clusters/ai-dev/apps/serving/kserve }
A feature flag absent from config.yaml takes the group's default. Warnings (stderr, exit 0): a \
group that needs a domain while `domain` is empty, a group whose required group is off, \
GPU-hungry groups. Unknown feature names are errors.
With -o json|yaml, stdout holds one document of that format: the resolved groups (also with \
--stdout), or with --check `{path, upToDate, diff}`.")]
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
    let path = tree.owned.first().cloned().unwrap_or_default();
    // One format per stream: with -o json|yaml, stdout carries exactly one document of that format.
    let structured = ctx.output != Output::Table;
    if args.stdout {
        if structured {
            ctx.printer.data(&to_data(ctx.output, &groups)?);
        } else {
            for text in tree.files.values() {
                ctx.printer.data(text);
            }
        }
        return Ok(());
    }
    let enabled = groups.iter().filter(|g| g.enabled).count();
    if args.check {
        let changes = gitops::diff(&ctx.repo, &tree)?;
        let diff = changes.unified_diff(&tree);
        if structured {
            let report = CheckReport {
                path: &path,
                up_to_date: changes.is_empty(),
                diff: &diff,
            };
            ctx.printer.data(&to_data(ctx.output, &report)?);
        } else if !changes.is_empty() {
            ctx.printer.data(&diff);
        }
        if changes.is_empty() {
            ctx.printer.success(format!("{path} is up to date"));
            return Ok(());
        }
        return Err(CheckFailed(format!(
            "{path} is stale: run `platform resolve-groups --env {}`",
            ctx.env
        ))
        .into());
    }
    let _lock = gitops::lock_tree(&ctx.repo, &ctx.env, "resolve-groups")?;
    let changes = gitops::diff(&ctx.repo, &tree)?;
    if changes.is_empty() {
        ctx.printer.success(format!(
            "{path} unchanged ({} groups, {enabled} enabled)",
            groups.len()
        ));
    } else {
        gitops::apply(&ctx.repo, &tree, &changes)?;
        ctx.printer.success(format!(
            "wrote {path} ({} groups, {enabled} enabled)",
            groups.len()
        ));
    }
    if structured {
        ctx.printer.data(&to_data(ctx.output, &groups)?);
    }
    Ok(())
}

/// `resolve-groups --check -o json|yaml`: one document saying whether the file is up to date.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckReport<'a> {
    path: &'a str,
    up_to_date: bool,
    /// The unified diff from the file on disk to the resolved one (empty when up to date).
    diff: &'a str,
}
