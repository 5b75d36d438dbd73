use anyhow::Result;
use serde::Serialize;

use super::{to_data, CheckFailed, Ctx, Output};
use crate::gitops::{self, git::GitRepo, ChangeKind};
use crate::render::RenderedTree;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Compares what `platform root` would render now with what is committed at HEAD (what Argo CD will \
read once pushed), or with the files on disk (--working-tree). Prints a unified diff on stdout; \
with -o json|yaml, one document instead: {against, profile, identical, files: [{path, status \
(added|modified|removed), diff}]} where against is HEAD or working-tree, each file with its own unified diff. Exit 0 when equal, 1 when \
different: usable as a CI gate.

Warns (stderr, never changing the exit code) when the inputs (environments/<env>/config.yaml, \
catalog/, templates/) differ from HEAD, or HEAD is ahead of the remote-tracking branch of the \
config's repoURL/repoBranch (what Argo CD reads; read locally, the remote is not contacted): \
`platform root --commit --push` records and publishes them.

Example:
  platform diff --env prod -o json")]
pub struct Args {
    #[command(flatten)]
    pub profile: super::ProfileArg,
    /// Compare with the working tree instead of HEAD.
    #[arg(long)]
    pub working_tree: bool,
}

/// `diff -o json|yaml`.
#[derive(Serialize)]
struct Report<'a> {
    /// `HEAD` or `working-tree`.
    against: &'static str,
    profile: &'a str,
    identical: bool,
    files: Vec<FileDiff<'a>>,
}

#[derive(Serialize)]
struct FileDiff<'a> {
    path: &'a str,
    status: &'static str,
    diff: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = ctx.load()?;
    let (plan, tree) = ctx.render(&inputs, args.profile.profile.as_deref())?;
    let git = GitRepo::open(&ctx.repo);
    if let Ok(git) = &git {
        // Offline: the remote-tracking branch says whether HEAD was pushed (a CI gate neither
        // reaches the network nor sends credentials).
        let check = super::root::PushCheck::Tracking;
        super::root::warn_unrecorded(ctx, git, Some((&inputs.config, check)));
    }
    let (changes, against) = if args.working_tree {
        (gitops::diff(&ctx.repo, &tree)?, "the working tree")
    } else {
        let git = git?;
        let head = git.head_source()?;
        (gitops::diff_against(&head, &tree)?, "HEAD")
    };
    let profile = plan.profile.name.as_str();
    if ctx.output != Output::Table {
        let key = if args.working_tree {
            "working-tree"
        } else {
            "HEAD"
        };
        let report = report(&changes, &tree, key, profile);
        ctx.printer.data(&to_data(ctx.output, &report)?);
    }
    if changes.is_empty() {
        ctx.printer.success(format!(
            "the rendered tree (profile {profile}) matches {against} ({} files)",
            tree.files.len()
        ));
        return Ok(());
    }
    if ctx.output == Output::Table {
        ctx.printer.data(&changes.unified_diff(&tree));
    }
    Err(CheckFailed(format!(
        "{} file(s) differ between the rendered tree (profile {profile}) and {against}",
        changes.changes.len(),
    ))
    .into())
}

fn report<'a>(
    changes: &'a gitops::ChangeSet,
    tree: &RenderedTree,
    against: &'static str,
    profile: &'a str,
) -> Report<'a> {
    Report {
        against,
        profile,
        identical: changes.is_empty(),
        files: changes
            .changes
            .iter()
            .map(|c| FileDiff {
                path: &c.path,
                status: match c.kind {
                    ChangeKind::Add => "added",
                    ChangeKind::Modify => "modified",
                    ChangeKind::Delete => "removed",
                },
                diff: c.unified_diff(tree),
            })
            .collect(),
    }
}
