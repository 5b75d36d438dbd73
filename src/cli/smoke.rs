use std::time::Duration;

use anyhow::Result;

use super::cluster::{connect, duration_at_least, runtime, select_models, TargetArgs};
use super::{to_data, CheckFailed, Ctx, Output};
use crate::actions::smoke::{self, report::Report, Options, Target, Via};
use crate::consts;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks, in order, per model (the line says which failed and why):
  pod         a ready pod serves it (else why not: unschedulable on
              nvidia.com/gpu, image pull, PVC unbound, paused, not synced)
  api-key     the Secret named by the model's apiKeySecret is readable (sent
              as Authorization: Bearer, never printed)
  health      GET /health answers 200 within --timeout (polled with backoff)
  models      GET /v1/models lists the model's servedName
  completion  POST /v1/chat/completions (or /v1/completions) \"Reply with
              exactly: pong\", temperature 0, max_tokens 16, streamed: a
              non-empty reply
Path: a port-forward through the API server to one ready pod (raw vLLM: the model's Service's \
pods; KServe: <isvc>-predictor; llm-d: <name>-kserve), on 127.0.0.1:<ephemeral>, closed \
afterwards; or, with --via-gateway, the model's stable route: the models' Gateway \
(inference/inference-gateway) status.addresses[0] + /models/<model>, the URL `platform status` \
prints; for a model without one (llm-d), or with --layer-gateway, the layer's Gateway with the \
Host KServe assigns (<isvc>-<namespace>.<domain>) or llm-d's /<namespace>/<name> prefix.
Every answer is read up to 1 MiB; the stream must be server-sent events ending with `data: \
[DONE]`, within 64 content chunks. Server text is shown with the API key cut out.
Paused models are skipped with a note unless named. Exit 0 all passed (or skipped), 1 a check \
failed, 4 the cluster API failed or refused (reading the model's objects, the port-forward) and \
no check failed, 3 a check timed out and nothing else went wrong.
-o json prints {env, models: [{model, layer, namespace, path, endpoint, result: \
pass|fail|timeout|error|skipped, check, reason, httpStatus, ttftMs, latencyMs, completionTokens, \
tokenSource: usage|chunks, tokensPerSecond, reply}], passed, failed, timedOut, errored, skipped}.

Examples:
  platform smoke qwen-cpu
  platform smoke --all -o json
  platform smoke qwen-cpu --via-gateway
  platform smoke qwen-cpu --via-gateway --layer-gateway --domain models.example.org")]
pub struct Args {
    /// Models to smoke (names from config.yaml); a named model is tested even when paused.
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    /// Every model of the environment that is not paused.
    #[arg(long, conflicts_with = "models")]
    pub all: bool,
    /// Go through a Gateway as a tenant would, instead of a port-forward to a pod: the model's
    /// stable route (the models' Gateway, /models/<model>) when it has one, else its layer's Gateway.
    #[arg(long)]
    pub via_gateway: bool,
    /// With --via-gateway: the layer's own Gateway even for a model with a stable route.
    #[arg(long, requires = "via_gateway")]
    pub layer_gateway: bool,
    /// KServe ingress domain of the Host header with --via-gateway (default: the host of the
    /// InferenceService's status.url, else example.com).
    #[arg(long, value_name = "DOMAIN", requires = "via_gateway")]
    pub domain: Option<String>,
    /// How long /health may take to answer 200 (polled with backoff), and each later request.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub timeout: Duration,
    /// POST /v1/completions (a prompt) instead of /v1/chat/completions (messages).
    #[arg(long)]
    pub completions: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

impl Args {
    fn options(&self, routing: Option<&crate::plan::PlannedRouting>) -> Options {
        Options {
            via: if self.via_gateway {
                Via::Gateway {
                    domain: self.domain.clone(),
                    route: if self.layer_gateway {
                        None
                    } else {
                        routing.cloned()
                    },
                }
            } else {
                Via::PortForward
            },
            timeout: self.timeout,
            completions: self.completions,
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (inputs, plan) = ctx.plan(None)?;
    let models = select_models(ctx, &inputs, &plan, &args.models, args.all)?;
    let targets: Vec<Target> = models
        .iter()
        .map(|m| Target {
            model: m,
            explicit: !args.all,
        })
        .collect();
    let opts = args.options(plan.routing.as_ref());
    runtime()?.block_on(async {
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::ReadOnly).await?;
        let reporter = ctx.reporter();
        let report = smoke::run(&target.client, &ctx.env, &targets, &opts, reporter.as_ref()).await;
        finish(ctx, &report)
    })
}

/// Print the report (one line per model, or -o json|yaml) and turn it into the exit class.
pub(super) fn finish(ctx: &Ctx, report: &Report) -> Result<()> {
    match ctx.output {
        Output::Table => {
            // One line per model, its columns lined up across models.
            let mut t = crate::ui::rows();
            for m in &report.models {
                t.add_row(m.cells());
            }
            ctx.printer.data(&ctx.printer.hinted(&crate::ui::text(&t)));
        }
        o => ctx.printer.data(&to_data(o, report)?),
    }
    let failed = report.names(smoke::report::Result::Fail);
    if !failed.is_empty() {
        return Err(CheckFailed(format!(
            "smoke: {} of {} model(s) failed: {}",
            failed.len(),
            report.models.len(),
            failed.join(", ")
        ))
        .into());
    }
    let errored = report.names(smoke::report::Result::Error);
    if !errored.is_empty() {
        return Err(crate::error::RemoteFailed(format!(
            "smoke: {} of {} model(s) could not be checked (the cluster API failed or refused): {}",
            errored.len(),
            report.models.len(),
            errored.join(", ")
        ))
        .into());
    }
    let timed_out = report.names(smoke::report::Result::Timeout);
    if !timed_out.is_empty() {
        return Err(crate::cluster::ClusterError::Timeout {
            what: "smoke".into(),
            pending: timed_out,
        }
        .into());
    }
    ctx.printer.success(format!(
        "smoke: {} passed, {} skipped",
        report.passed, report.skipped
    ));
    Ok(())
}
