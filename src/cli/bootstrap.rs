use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::cluster::{duration_at_least, runtime, TargetArgs};
use super::{to_data, CheckFailed, Ctx, Output};
use crate::actions::bootstrap::credential::Credential;
use crate::actions::bootstrap::existing::Existing;
use crate::actions::bootstrap::identity;
use crate::actions::bootstrap::manifest::{self, Source};
use crate::actions::bootstrap::objects::Change;
use crate::actions::bootstrap::uninstall;
use crate::actions::bootstrap::{self as boot, Options};
use crate::catalog::argocd::ArgoCdSpec;
use crate::cluster::target::{self, Target};
use crate::consts;
use crate::ui::Confirmation;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Installs Argo CD at the version pinned in catalog/argocd.yaml, idempotently, on a cluster with \
or without one:
  - the target is shown (kubeconfig, context, server); a cluster that says
    another name in ConfigMap kube-system/cluster-identity is refused before
    any write; a brand-new cluster gets that identity (cluster.name) recorded
    once you confirm (type the name on a terminal, or pass --yes);
  - the upstream install manifest is downloaded over HTTPS from the catalog's
    installURL and must have the catalog's sha256 (else nothing is applied);
    it is cached in
    ${XDG_CACHE_HOME:-~/.cache}/platform/argocd/<version>/install.yaml and
    verified again on every use (a dry run never writes it); PLATFORM_ARGOCD_URL
    downloads it from another URL (a mirror), verified the same way (plain
    http:// is accepted with a warning: the sha256 still guards it);
    --manifests FILE reads it from a file instead (clusters without internet),
    verified the same way;
  - server-side apply (field manager platform): CRDs first, Established, then
    the rest into the catalog's namespace; argocd-cm gets the catalog's keys
    (the Application health check) merged in, other keys untouched;
    argocd-redis gets a random password when absent;
  - --repo-token-env VAR / --repo-ssh-key FILE: the repository credential
    Secret for the config's repoURL (the token is read from the variable,
    never from an argument; it is never printed); a key Argo CD cannot use
    (passphrase, truncated, not a key) or a token with whitespace inside is
    refused before anything is written;
  - waits until the application controller, repo-server, redis and server are
    ready (exit 3 after --timeout, saying why each one is not).
An Argo CD installed another way (found by its app.kubernetes.io/name labels: other names, another \
namespace, or Helm's marks on a component or argocd-cm, even with the upstream names) is left \
alone and named as found: only the argocd-cm keys and the credential are applied to it. --dry-run \
lists every object as create/update/unchanged and writes nothing. A second run says \"nothing to \
do\".
Then `platform root --commit --push` renders Application `argocd` (clusters/<env>/argocd/: the \
same manifest and argocd-cm keys), through which Argo CD manages itself, and `platform up` syncs \
it.
--uninstall removes the Argo CD bootstrap installed: the self-managing Application (its finalizer \
removed first, so nothing cascades or comes back), the pinned manifest's objects (argocd-cm among \
them), argocd-redis, the repository credential Secret for repoURL, the CRDs and the namespace, \
then waits until they are gone (--timeout); the cluster identity ConfigMap stays. It is refused \
while other Applications exist (`platform teardown` removes platform's) and for an Argo CD \
bootstrap did not install (found by labels, or without platform's field manager on argocd-cm). It \
asks for the cluster name unless --yes; with --dry-run it lists what it would delete (-o json: \
[{change: delete, object}]). A second run has nothing to do.

Examples:
  platform bootstrap --yes
  platform bootstrap --dry-run -o json
  platform bootstrap --uninstall --dry-run
  platform bootstrap --uninstall")]
pub struct Args {
    /// Remove the Argo CD bootstrap installed (refused while other Applications exist, and for an
    /// Argo CD installed another way); with --dry-run, list what would be deleted.
    #[arg(long, conflicts_with_all = ["repo_token_env", "repo_ssh_key"])]
    pub uninstall: bool,
    /// List what would be created or updated (every object: create/update/unchanged; `-o json` for
    /// data); write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Record the identity of a brand-new cluster without asking (with --uninstall: delete without
    /// asking for the cluster name).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Read the install manifest from FILE instead of downloading it (verified against the catalog's sha256).
    #[arg(long, value_name = "FILE")]
    pub manifests: Option<PathBuf>,
    /// With --manifests: apply FILE even when its sha256 is not the pinned one (a patched or mirrored
    /// manifest); said loudly.
    #[arg(long, requires = "manifests")]
    pub insecure_skip_verify: bool,
    /// Environment variable holding an HTTPS token for the GitOps repository (repoURL).
    #[arg(long, value_name = "VAR", conflicts_with = "repo_ssh_key")]
    pub repo_token_env: Option<String>,
    /// User name sent with the token.
    #[arg(long, value_name = "USER", requires = "repo_token_env", default_value = crate::actions::bootstrap::credential::DEFAULT_USERNAME)]
    pub repo_username: String,
    /// ssh private key for an ssh repoURL (git@host:org/repo.git).
    #[arg(long, value_name = "FILE")]
    pub repo_ssh_key: Option<PathBuf>,
    /// How long Argo CD may take to become ready (exit 3 after it).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub timeout: Duration,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.uninstall {
        return uninstall(ctx, args);
    }
    let inputs = ctx.load()?;
    let spec = inputs.catalog.argocd.clone();
    let credential = Credential::for_repo(
        args.repo_token_env.as_deref(),
        &args.repo_username,
        args.repo_ssh_key.as_deref(),
        &inputs.config.repo_url,
    )?;
    for w in credential.iter().flat_map(Credential::warnings) {
        ctx.printer.security_warning(w);
    }
    let source = source(&args);
    let cluster_name = inputs.config.cluster.name.clone();
    runtime()?.block_on(async {
        let mut target = open(ctx, &inputs.config, &args.target).await?;
        let identity =
            identity::check(&target.client, &cluster_name, &target.cluster_entry).await?;
        target.identity = identity.describe(&cluster_name);
        let record = identity.to_record(&cluster_name);
        ctx.printer.info(target.to_string());
        let m = manifest::obtain(&spec, &source).await?;
        for n in &m.notes {
            ctx.printer.info(n);
        }
        for w in m
            .warnings
            .iter()
            .cloned()
            .chain(m.unverified_warning(args.dry_run))
        {
            ctx.printer.security_warning(w);
        }
        if record.is_some() && !args.dry_run {
            confirm(&target, &cluster_name, args.yes)?;
        }
        let opts = Options {
            dry_run: args.dry_run,
            record_identity: record,
            repo_url: inputs.config.repo_url.clone(),
            credential,
            timeout: args.timeout,
        };
        let reporter = ctx.reporter();
        let outcome = boot::run(&target.client, &spec, &m, &opts, reporter.as_ref()).await?;
        report(ctx, &spec, &outcome, args.dry_run);
        Ok(())
    })
}

/// Where the install manifest comes from (a dry run never writes the cache).
fn source(args: &Args) -> Source {
    match &args.manifests {
        Some(path) => Source::File {
            path: path.clone(),
            verify: !args.insecure_skip_verify,
        },
        None => Source::Download {
            cache: manifest::cache_root(),
            read_only: args.dry_run,
        },
    }
}

/// `bootstrap --uninstall`: what would go (the refusals included), the confirmation, then the
/// deletions.
fn uninstall(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = ctx.load()?;
    let spec = inputs.catalog.argocd.clone();
    let source = source(&args);
    let cluster_name = inputs.config.cluster.name.clone();
    runtime()?.block_on(async {
        let target =
            super::cluster::connect(ctx, &inputs, &args.target, super::cluster::Access::Write)
                .await?;
        let m = manifest::obtain(&spec, &source).await?;
        for w in m.warnings.iter().cloned().chain(m.unverified_warning(true)) {
            ctx.printer.security_warning(w);
        }
        let mut opts = uninstall::Options {
            dry_run: true,
            repo_url: inputs.config.repo_url.clone(),
            timeout: args.timeout,
        };
        let reporter = ctx.reporter();
        let planned = uninstall::run(&target.client, &spec, &m, &opts, reporter.as_ref()).await?;
        let steps: Vec<UninstallStep> = planned
            .deleted
            .iter()
            .map(|o| UninstallStep {
                change: "delete",
                object: o,
            })
            // What is in the namespace that bootstrap did not install: the uninstall refuses.
            .chain(planned.foreign.iter().map(|o| UninstallStep {
                change: "blocks",
                object: o,
            }))
            .collect();
        if args.dry_run || ctx.output != Output::Table {
            ctx.printer.data(&match ctx.output {
                Output::Table => steps
                    .iter()
                    .map(|s| format!("{:<9} {}\n", s.change, s.object))
                    .collect(),
                o => to_data(o, &steps)?,
            });
        }
        if !planned.foreign.is_empty() && !planned.deleted.is_empty() {
            let e = crate::actions::bootstrap::BootstrapError::ForeignObjects {
                namespace: spec.namespace.clone(),
                objects: planned.foreign.clone(),
            };
            if args.dry_run {
                ctx.printer
                    .info(format!("the uninstall would be refused: {e}"));
            } else {
                return Err(e.into());
            }
        }
        if planned.deleted.is_empty() {
            ctx.printer.success(format!(
                "nothing to do: no Argo CD that bootstrap installed is left in namespace {}",
                spec.namespace
            ));
            return Ok(());
        }
        if args.dry_run {
            ctx.printer.success(format!(
                "dry run: {} object(s) to delete; nothing was deleted",
                planned.deleted.len()
            ));
            return Ok(());
        }
        if !args.yes {
            confirm_uninstall(&cluster_name, &spec.namespace)?;
        }
        opts.dry_run = false;
        let done = uninstall::run(&target.client, &spec, &m, &opts, reporter.as_ref()).await?;
        ctx.printer.success(format!(
            "Argo CD removed: {} object(s) deleted; the cluster identity (ConfigMap \
             kube-system/cluster-identity) stays",
            done.deleted.len()
        ));
        Ok(())
    })
}

/// `bootstrap --uninstall -o json|yaml`: `[{change: delete, object}]`.
#[derive(serde::Serialize)]
struct UninstallStep<'a> {
    change: &'static str,
    object: &'a str,
}

fn confirm_uninstall(cluster: &str, namespace: &str) -> Result<()> {
    let prompt = format!(
        "This deletes Argo CD (namespace {namespace}, its CRDs) from cluster {cluster}. Type the cluster name to continue: "
    );
    match crate::ui::confirm_typed(&prompt, cluster)? {
        Confirmation::Confirmed => Ok(()),
        Confirmation::NoTerminal => Err(CheckFailed(
            "bootstrap --uninstall asks for the cluster name on a terminal: pass --yes to run it non-interactively; nothing was deleted".into(),
        )
        .into()),
        Confirmation::Refused(typed) => {
            Err(CheckFailed(format!("`{typed}` is not `{cluster}`: nothing was deleted")).into())
        }
    }
}

/// The target, connected and reachable, identity not yet checked.
async fn open(ctx: &Ctx, cfg: &crate::config::EnvConfig, t: &TargetArgs) -> Result<Target> {
    let opts = super::cluster::target_options(ctx, t);
    let target = target::open(cfg, &opts, super::cluster::retry_policy(ctx, t)).await?;
    ctx.printer.hint.set_kubectl_target(target.kubectl_flags());
    Ok(target)
}

/// A brand-new cluster's identity is recorded only once the user confirmed the target shown.
fn confirm(target: &Target, name: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let prompt = format!(
        "Cluster {} has no identity yet. Type `{name}` to record it as {name} and install Argo CD: ",
        target.server
    );
    match crate::ui::confirm_typed(&prompt, name)? {
        Confirmation::Confirmed => Ok(()),
        Confirmation::NoTerminal => Err(CheckFailed(format!(
            "the cluster at {} (context {}) has no identity yet; bootstrap records it as `{name}` only once \
             you confirm the target: run it on a terminal, or pass --yes if that target is right; nothing was changed",
            target.server, target.context
        ))
        .into()),
        Confirmation::Refused(typed) => {
            Err(CheckFailed(format!("`{typed}` is not `{name}`: nothing was changed")).into())
        }
    }
}

fn report(ctx: &Ctx, spec: &ArgoCdSpec, o: &boot::Outcome, dry_run: bool) {
    let version = &spec.version;
    let count = |c: Change| o.steps.iter().filter(|s| s.change == c).count();
    let (create, update, same) = (
        count(Change::Create),
        count(Change::Update),
        count(Change::Unchanged),
    );
    if dry_run && ctx.output == Output::Table {
        let mut out = String::new();
        for s in &o.steps {
            out.push_str(&format!("{:<9} {}\n", s.change.to_string(), s.object));
        }
        ctx.printer.data(&out);
    } else if ctx.output != Output::Table {
        // `-o json|yaml`: [{change, object}] (with or without --dry-run).
        match to_data(ctx.output, &o.steps) {
            Ok(text) => ctx.printer.data(&text),
            Err(e) => ctx.printer.error(e.to_string()),
        }
    }
    if let (Existing::Other { namespace, .. }, Some(app)) = (&o.existing, &spec.app) {
        ctx.printer.info(format!(
            "note: this Argo CD (namespace {namespace}) is not the one platform installs; `platform root` \
             renders Application {}, which would install the pinned {version} beside it: copy \
             catalog/argocd.yaml into your repository's catalog/ and remove its `app:` entry",
            app.name
        ));
    }
    // An Argo CD platform did not install is named as found, not as the pinned version.
    let other = matches!(o.existing, Existing::Other { .. });
    if !o.changed() {
        ctx.printer.success(if other {
            format!(
                "nothing to do: {} has the configuration platform needs",
                o.existing.describe()
            )
        } else {
            format!(
                "nothing to do: Argo CD {version} is installed and configured{}",
                if o.ready { " and ready" } else { "" }
            )
        });
    } else if dry_run {
        ctx.printer.success(format!(
            "dry run: {create} to create, {update} to update, {same} unchanged; nothing was changed"
        ));
    } else if other {
        ctx.printer.success(format!(
            "{}: its configuration {create} created, {update} updated, {same} unchanged; next: \
             `platform root --commit --push`, then `platform up`",
            o.existing.describe()
        ));
    } else {
        ctx.printer.success(format!(
            "Argo CD {version}: {create} created, {update} updated, {same} unchanged{}; next: \
             `platform root --commit --push`, then `platform up`",
            if o.ready { ", ready" } else { "" }
        ));
    }
}
