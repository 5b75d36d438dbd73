use anyhow::Result;
use serde::Serialize;

use super::cluster::{connect, runtime, select_models};
use super::{to_data, CheckFailed, Ctx, Output};
use crate::actions::livediff::{self, Scope};
use crate::diag::{Diagnostic, Diagnostics};
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

With --cluster: the rendered tree against the LIVE objects, i.e. what Argo CD would change on its \
next sync (as `argocd app diff` / `flux diff` / `kubectl diff`). Each rendered object that exists \
is server-side applied in dry-run (dryRun=All) and the answer compared with the live object, \
without server-managed fields (managedFields, resourceVersion, generation, uid, \
creationTimestamp, status, last-applied and tracking annotations) and without what the owning \
Application's ignoreDifferences names (a paused raw vLLM model's /spec/replicas is no \
difference). Objects that do not exist \"would be created\"; objects Argo CD tracks for an app \
(its status.resources) that are no longer rendered \"would be pruned\". Apps whose source is a \
chart or a kustomization are listed as not compared. A unified diff per object (--- live, +++ \
rendered) on stdout and a summary on stderr; -o json|yaml: {env, profile, against: cluster, \
identical, compared, inSync, changed, created, pruned, objects: [{app, apiVersion, kind, \
namespace, name, change (changed|created|pruned), note, diff}], notCompared}. Read-only: nothing \
is written. Exit 0 in sync, 1 any difference, 4 the cluster API failed.

Examples:
  platform diff                      # rendered tree vs HEAD
  platform diff --env prod -o json   # the same, as data
  platform diff --cluster            # rendered tree vs the live cluster
  platform diff --cluster qwen-gpu   # one model's app only
  platform diff --cluster --app model-routing -o json")]
pub struct Args {
    #[command(flatten)]
    pub profile: super::ProfileArg,
    /// Compare with the working tree instead of HEAD.
    #[arg(long, conflicts_with = "cluster")]
    pub working_tree: bool,
    /// Compare with the live objects in the cluster (what Argo CD would change).
    #[arg(long)]
    pub cluster: bool,
    /// With --cluster: only this model's Application.
    #[arg(value_name = "MODEL", requires = "cluster")]
    pub model: Option<String>,
    /// With --cluster: only this Application's resources.
    #[arg(
        long,
        value_name = "APP",
        requires = "cluster",
        conflicts_with = "model"
    )]
    pub app: Option<String>,
    #[command(flatten)]
    pub target: super::cluster::TargetArgs,
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
    if args.cluster {
        return live(ctx, args);
    }
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

/// `diff --cluster -o json|yaml`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LiveReport<'a> {
    env: &'a str,
    profile: &'a str,
    against: &'static str,
    identical: bool,
    #[serde(flatten)]
    outcome: &'a livediff::Outcome,
}

/// `diff --cluster`: the rendered tree against the live objects.
fn live(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = ctx.load()?;
    // What is compared is the work tree's render; say (before connecting) when it is not what
    // is committed and pushed, as `diff` against HEAD does.
    if let Ok(git) = GitRepo::open(&ctx.repo) {
        let check = super::root::PushCheck::Tracking;
        super::root::warn_unrecorded(ctx, &git, Some((&inputs.config, check)));
    }
    let (plan, tree) = ctx.render(&inputs, args.profile.profile.as_deref())?;
    let scope = match (&args.model, &args.app) {
        (Some(m), _) => {
            let models = select_models(ctx, &inputs, &plan, std::slice::from_ref(m), false)?;
            let mut apps: Vec<String> = models.iter().map(|m| m.app.clone()).collect();
            // A model mid-move has two declarations (one app per layer).
            for pm in plan.models.iter().filter(|pm| &pm.name == m) {
                if !apps.contains(&pm.app) {
                    apps.push(pm.app.clone());
                }
            }
            Scope::Apps(apps)
        }
        (None, Some(a)) => {
            if !plan.apps.iter().any(|p| &p.name == a) {
                let names: Vec<&str> = plan.apps.iter().map(|p| p.name.as_str()).collect();
                let help = match crate::diag::did_you_mean(a, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("apps: {}", names.join(", ")),
                };
                return Err(Diagnostics(vec![Diagnostic::error(format!(
                    "no Application `{a}` in the rendered tree (profile {})",
                    plan.profile.name
                ))
                .help(help)])
                .into());
            }
            Scope::Apps(vec![a.clone()])
        }
        (None, None) => Scope::All,
    };
    let opts = livediff::Options { scope };
    let outcome = runtime()?.block_on(async {
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::ReadOnly).await?;
        let reporter = ctx.reporter();
        anyhow::Ok(livediff::run(&target.client, &plan, &tree, &opts, reporter.as_ref()).await?)
    })?;
    let profile = plan.profile.name.as_str();
    for n in &outcome.not_compared {
        ctx.printer.info(format!("not compared: {n}"));
    }
    match ctx.output {
        Output::Table => {
            let text: String = outcome
                .objects
                .iter()
                .map(|o| {
                    let note = o
                        .note
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default();
                    format!("# {} {}{note}\n{}", o.shown(), o.change.as_str(), o.diff)
                })
                .collect();
            if !text.is_empty() {
                ctx.printer.data(&text);
            }
        }
        o => {
            let report = LiveReport {
                env: &ctx.env,
                profile,
                against: "cluster",
                identical: outcome.identical(),
                outcome: &outcome,
            };
            ctx.printer.data(&to_data(o, &report)?);
        }
    }
    if outcome.identical() {
        ctx.printer.success(format!(
            "the cluster matches the rendered tree (profile {profile}): {} object(s) in sync",
            outcome.in_sync
        ));
        return Ok(());
    }
    Err(CheckFailed(format!(
        "{} object(s) differ from the cluster: {} would change, {} would be created, {} would be pruned ({} in sync)",
        outcome.objects.len(),
        outcome.changed,
        outcome.created,
        outcome.pruned,
        outcome.in_sync
    ))
    .into())
}
