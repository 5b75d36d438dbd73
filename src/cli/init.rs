use anyhow::Result;

use super::{to_data, Ctx, Output};
use crate::config::GpuStack;
use crate::gitops::git::redact;
use crate::scaffold::init::{init, InitOptions, InitOutcome};
use crate::scaffold::{FileAction, ScaffoldError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GpuStackArg {
    /// The cloud provider installs the NVIDIA driver stack (GKE).
    GkeManaged,
    /// platform deploys the NVIDIA GPU operator (group gpu-operator).
    Operator,
    /// No GPUs.
    None,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes, in the repository (--repo DIR, else the enclosing git work tree, else the current \
directory):
  environments/<env>/config.yaml   commented, filled from the flags; the
                                   example models are commented out, so a
                                   first `platform up` starts nothing that
                                   costs money
  .gitignore                       when there is none (an existing one is
                                   kept; init refuses if it hides clusters/,
                                   which Argo CD must see)
and runs `git init` (branch --branch) when the directory is not in a git work tree. The catalog \
is the one embedded in platform unless the repository has its own catalog/ (see `platform \
catalog eject`).

What it writes passes every `platform lint` check first: nothing is written otherwise. An \
existing config.yaml that differs is never overwritten (exit 1 naming it) unless --force; \
running init again with the same flags changes nothing and says so.

Example:
  platform init --env prod --cluster-name prod-eu \\
      --repo-url git@github.com:acme/platform-gitops.git")]
pub struct Args {
    /// Cluster identity written to cluster.name (default: the environment name).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// Dedicated kubeconfig of the cluster (default: ~/.kube/<cluster name>.yaml).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<String>,
    /// GitOps repository Argo CD reads (default: the `origin` remote's URL; required without one).
    #[arg(long, value_name = "URL")]
    pub repo_url: Option<String>,
    /// Branch Argo CD reads (default: the current branch, else main).
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// GatewayClass of the serving Gateways.
    #[arg(long, value_name = "NAME", default_value = "agentgateway")]
    pub gateway_class: String,
    /// GPU driver stack of the cluster.
    #[arg(long, value_enum, value_name = "STACK", default_value_t = GpuStackArg::None)]
    pub gpu_stack: GpuStackArg,
    /// Replace an existing environments/<env>/config.yaml that differs (its edits are lost).
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let opts = InitOptions {
        repo: ctx.repo.clone(),
        env: ctx.env.clone(),
        cluster_name: args.cluster_name,
        kubeconfig: args.kubeconfig,
        repo_url: args.repo_url,
        branch: args.branch,
        gateway_class: args.gateway_class,
        gpu_stack: match args.gpu_stack {
            GpuStackArg::GkeManaged => GpuStack::GkeManaged,
            GpuStackArg::Operator => GpuStack::Operator,
            GpuStackArg::None => GpuStack::None,
        },
        force: args.force,
    };
    let outcome = init(&opts).map_err(unwrap_input)?;
    for w in &outcome.warnings {
        ctx.printer.detail(format!("lint: {w}"));
    }
    if ctx.output != Output::Table {
        ctx.printer.data(&to_data(ctx.output, &outcome)?);
    }
    report(ctx, &outcome);
    Ok(())
}

/// Input problems keep their own type, so they print (and exit) as everywhere else.
pub(super) fn unwrap_input(e: ScaffoldError) -> anyhow::Error {
    match e {
        ScaffoldError::Invalid(ds) => ds.into(),
        ScaffoldError::Catalog(c) => c.into(),
        ScaffoldError::Template(t) => t.into(),
        other => other.into(),
    }
}

fn report(ctx: &Ctx, o: &InitOutcome) {
    let p = &ctx.printer;
    if !o.changed() {
        p.success(format!(
            "nothing to do: {} already holds what init writes ({})",
            o.repo.display(),
            o.files
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return;
    }
    if o.git_initialized {
        p.info(format!(
            "initialised a git repository in {} (branch {})",
            o.repo.display(),
            o.branch
        ));
    }
    for f in &o.files {
        let what = match f.action {
            FileAction::Created => "created",
            FileAction::Overwritten => "replaced (--force)",
            FileAction::Unchanged => "unchanged",
            FileAction::Kept => "kept (yours; it does not hide clusters/)",
        };
        p.info(format!("{what:>9} {}", f.path));
    }
    let from = if o.repo_url_from_origin {
        " (origin's)"
    } else {
        ""
    };
    p.info(format!(
        "repoURL {}{from} · repoBranch {} · catalog {}",
        redact(&o.repo_url),
        o.branch,
        o.catalog.describe()
    ));
    next_steps(ctx, o);
}

fn next_steps(ctx: &Ctx, o: &InitOutcome) {
    let p = &ctx.printer;
    let env = &o.env;
    p.success(format!("environments/{env}/config.yaml is ready; next:"));
    if !o.kubeconfig_exists {
        p.info(format!(
            "  write the cluster's kubeconfig to {} (your provider's get-credentials command with KUBECONFIG={})",
            o.kubeconfig, o.kubeconfig
        ));
    }
    if !o.has_origin {
        p.info(format!("  git remote add origin {}", redact(&o.repo_url)));
    }
    p.info(format!(
        "  git add environments/{env} .gitignore && git commit -m 'platform init'"
    ));
    for (cmd, why) in [
        (
            format!("platform bootstrap --env {env}"),
            "install Argo CD (pinned, verified), hand it to GitOps".to_string(),
        ),
        (
            format!("platform root --env {env} --commit --push"),
            format!("render clusters/{env}/, commit, push (Argo CD reads the remote)"),
        ),
        (
            format!("platform up --env {env}"),
            "apply the root apps, sync wave by wave (no model: no GPU cost)".to_string(),
        ),
    ] {
        p.info(format!("  {cmd:<44} {why}"));
    }
}
