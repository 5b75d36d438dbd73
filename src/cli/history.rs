use anyhow::Result;
use comfy_table::{presets::NOTHING, Table};

use super::{to_data, Ctx, Output};
use crate::gitops::git::GitRepo;
use crate::gitops::history::{self, Revision};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The render commits of the environment, newest first: the commits reachable from HEAD that changed \
clusters/<env>/ or its inputs (environments/<env>/config.yaml, catalog/, templates/). For each: \
REV (short hash, what `platform rollback REV` takes), DATE (UTC), SUBJECT, and CHANGES: files \
added (+), changed (~), removed (-) under clusters/<env>/, the models config.yaml added, changed \
or removed (by name, both versions parsed), and the inputs it changed. With -o json|yaml: a list \
of {rev, commit, date, subject, files: {added, changed, removed}, inputs, models: {added, removed, \
changed} or null}.

Examples:
  platform history --env prod
  platform history --env prod -n 5 -o json")]
pub struct Args {
    /// How many render commits to list.
    #[arg(short = 'n', long = "max-count", default_value_t = history::DEFAULT_LIMIT, value_name = "N")]
    pub limit: usize,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let git = GitRepo::open(&ctx.repo)?;
    let revs = history::history(&git, &ctx.env, args.limit)?;
    if ctx.output != Output::Table {
        ctx.printer.data(&to_data(ctx.output, &revs)?);
        return Ok(());
    }
    if revs.is_empty() {
        ctx.printer.info(format!(
            "no render commit of {} yet: `platform root --env {} --commit` makes one",
            crate::layout::tree(&ctx.env),
            ctx.env
        ));
        return Ok(());
    }
    ctx.printer.data(&table(&revs));
    Ok(())
}

fn table(revs: &[Revision]) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(vec!["REV", "DATE", "SUBJECT", "CHANGES"]);
    for r in revs {
        t.add_row(vec![
            r.rev.clone(),
            r.date.replace('T', " ").trim_end_matches('Z').to_string(),
            r.subject.clone(),
            changes(r),
        ]);
    }
    let mut out = t.to_string();
    out.push('\n');
    out
}

/// `files +2 ~1 -0 · models +b ~a -c · inputs config.yaml`.
pub fn changes(r: &Revision) -> String {
    let mut parts = Vec::new();
    if !r.files.is_empty() {
        parts.push(format!(
            "files +{} ~{} -{}",
            r.files.added.len(),
            r.files.changed.len(),
            r.files.removed.len()
        ));
    }
    if let Some(m) = r.models.as_ref().filter(|m| !m.is_empty()) {
        let names = m
            .added
            .iter()
            .map(|n| format!("+{n}"))
            .chain(m.changed.iter().map(|n| format!("~{n}")))
            .chain(m.removed.iter().map(|n| format!("-{n}")))
            .collect::<Vec<_>>();
        parts.push(format!("models {}", names.join(" ")));
    }
    if !r.inputs.is_empty() {
        let shown = r
            .inputs
            .iter()
            .map(|p| p.rsplit('/').next().unwrap_or(p))
            .take(3)
            .collect::<Vec<_>>()
            .join(", ");
        let more = r.inputs.len().saturating_sub(3);
        parts.push(if more > 0 {
            format!("inputs {shown} (+{more})")
        } else {
            format!("inputs {shown}")
        });
    }
    parts.join(" · ")
}
