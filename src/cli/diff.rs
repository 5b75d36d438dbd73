use anyhow::Result;

use super::{CheckFailed, Ctx};
use crate::gitops::{self, git::GitRepo};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Compares what `platform root` would render now with what is committed at HEAD (what Argo CD will \
read once pushed), or with the files on disk (--working-tree). Prints a unified diff on stdout. \
Exit 0 when equal, 1 when different: usable as a CI gate.")]
pub struct Args {
    #[command(flatten)]
    pub profile: super::ProfileArg,
    /// Compare with the working tree instead of HEAD.
    #[arg(long)]
    pub working_tree: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = ctx.load()?;
    let (plan, tree) = ctx.render(&inputs, args.profile.profile.as_deref())?;
    let (changes, against) = if args.working_tree {
        (gitops::diff(&ctx.repo, &tree)?, "the working tree")
    } else {
        let git = GitRepo::open(&ctx.repo)?;
        let head = git.head_source()?;
        (gitops::diff_against(&head, &tree)?, "HEAD")
    };
    if changes.is_empty() {
        ctx.printer.success(format!(
            "the rendered tree (profile {}) matches {against} ({} files)",
            plan.profile.name,
            tree.files.len()
        ));
        return Ok(());
    }
    ctx.printer.data(&changes.unified_diff(&tree));
    Err(CheckFailed(format!(
        "{} file(s) differ between the rendered tree (profile {}) and {against}",
        changes.changes.len(),
        plan.profile.name
    ))
    .into())
}
