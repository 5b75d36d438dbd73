//! Shared set-up of the commands that talk to a cluster: the plan, the target guard, a runtime.

use std::time::Duration;

use anyhow::Result;

use super::{Ctx, InputError, Inputs};
use crate::cluster::retry::Retry;
pub use crate::cluster::target::Access;
use crate::cluster::target::{self, Target, TargetOptions};
use crate::consts;
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::plan::{Plan, PlannedModel};

/// Flags every cluster command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Kubeconfig to use instead of the config's `cluster.kubeconfig` (also PLATFORM_KUBECONFIG).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Context inside the kubeconfig (default: the config's `cluster.context`, else the current one).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// How long one API request may go unanswered before it is abandoned and retried (up to 6
    /// attempts); a command never hangs on an API server that stops answering.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration_at_least(consts::MIN_REQUEST_TIMEOUT))]
    pub request_timeout: Duration,
}

/// Parse `15m`, `90s`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration (e.g. 90s, 15m, 1h): {e}"))
}

/// A duration flag's parser that refuses values below `min` (clap names the flag in the error):
/// `0s` is never what a user means by a timeout or an interval.
pub fn duration_at_least(
    min: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s| {
        let d = parse_duration(s)?;
        if d < min {
            return Err(format!(
                "`{s}` is too short: the smallest value accepted is {}",
                humantime::format_duration(min)
            ));
        }
        Ok(d)
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The command's retry policy: `--request-timeout` per API request, retry warnings to its reporter.
pub fn retry_policy(ctx: &Ctx, t: &TargetArgs) -> Retry {
    Retry::new(t.request_timeout, ctx.reporter())
}

/// The target guard's options from the command line.
pub fn target_options(ctx: &Ctx, t: &TargetArgs) -> TargetOptions {
    TargetOptions {
        kubeconfig: t.kubeconfig.clone(),
        context: t.context.clone(),
        env: Some(ctx.env.clone()),
    }
}

/// Connect through the target guard and print the target (its client carries the command's retry
/// policy). A read-only command on a target whose identity cannot be confirmed goes on after a
/// warning (printed even under -q); one that writes is refused (see [`Access`]).
pub async fn connect(ctx: &Ctx, inputs: &Inputs, t: &TargetArgs, access: Access) -> Result<Target> {
    let opts = target_options(ctx, t);
    let target = target::connect(&inputs.config, &opts, retry_policy(ctx, t), access).await?;
    ctx.printer.hint.set_kubectl_target(target.kubectl_flags());
    ctx.printer.info(target.to_string());
    if let Some(w) = &target.unconfirmed {
        ctx.printer.security_warning(w);
    }
    Ok(target)
}

/// The planned models named on the command line (or all with `all`), with did-you-mean for typos and
/// a clear message for models whose layer is off.
pub fn select_models<'p>(
    ctx: &Ctx,
    inputs: &Inputs,
    plan: &'p Plan,
    names: &[String],
    all: bool,
) -> Result<Vec<&'p PlannedModel>> {
    if all {
        return Ok(plan.models.iter().collect());
    }
    if names.is_empty() {
        return Err(Diagnostics(vec![
            Diagnostic::error("no model named").help("name one or more models, or pass --all")
        ])
        .into());
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for n in names {
        if let Some(m) = plan.models.iter().find(|m| &m.name == n) {
            out.push(m);
            continue;
        }
        let file = &inputs.config_file;
        if let Some(m) = inputs.config.models.iter().find(|m| &m.name == n) {
            problems.push(
                Diagnostic::error(format!(
                    "model `{n}` is not rendered: its layer {} is off or outside the profile",
                    m.layer
                ))
                .file(file)
                .help("enable its layer's feature in config.yaml (see `platform plan`)"),
            );
            continue;
        }
        problems.push(unknown_model(ctx, inputs, n));
    }
    if !problems.is_empty() {
        return Err(Diagnostics(problems).into());
    }
    Ok(out)
}

/// The one planned model named `name` (logs, port-forward), with select_models' diagnostics.
pub fn one_model<'p>(
    ctx: &Ctx,
    inputs: &Inputs,
    plan: &'p Plan,
    name: &str,
) -> Result<&'p PlannedModel> {
    let models = select_models(ctx, inputs, plan, &[name.to_string()], false)?;
    models
        .first()
        .copied()
        .ok_or_else(|| InputError(format!("model `{name}` is not rendered")).into())
}

/// Model `name` as config.yaml declares it (rendered or not), or an error naming the file and
/// the models it has.
pub fn config_model<'i>(
    ctx: &Ctx,
    inputs: &'i Inputs,
    name: &str,
) -> Result<&'i crate::config::Model> {
    inputs
        .config
        .models
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Diagnostics(vec![unknown_model(ctx, inputs, name)]).into())
}

fn unknown_model(ctx: &Ctx, inputs: &Inputs, name: &str) -> Diagnostic {
    let names: Vec<&str> = inputs
        .config
        .models
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    let d = Diagnostic::error(format!("unknown model `{name}` in environment {}", ctx.env))
        .file(&inputs.config_file);
    match did_you_mean(name, names.iter().copied()) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d.help(format!("models: {}", names.join(", "))),
    }
}
