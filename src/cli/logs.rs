use std::time::Duration;

use anyhow::Result;

use super::cluster::{connect, duration_at_least, one_model, runtime, TargetArgs};
use super::signals::Interrupt;
use super::{Ctx, InputError, Output};
use crate::actions::servingpod::{self, LogOptions, PodError};
use crate::consts;
use crate::error::Classified;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The model's serving pod on any layer, found as `smoke` and `status` find it (raw vLLM: the \
model's Service's pods; KServe: <isvc>-predictor; llm-d: <name>-kserve): the first ready pod by \
name, else the first whose container started (a crash-looping server has a log). Read through \
the API server (pods/log), no kubectl; the log goes to stdout as it comes, in bounded chunks. The \
container is the serving one (kserve-container, vllm, main) unless --container names another.
With -f the stream stays open until Ctrl-C (exit 130) or the container ends. A paused model has \
no pod: the error says so (`platform resume MODEL`); a Pending pod gives the reason `status` \
gives (unschedulable on nvidia.com/gpu, image pull, PVC unbound). The log is the data: -o \
json|yaml does not apply.

Examples:
  platform logs qwen-gpu
  platform logs qwen-cpu -f --tail 100
  platform logs qwen-gpu --previous          # the container before its last restart
  platform logs qwen-cpu --since 10m --container storage-initializer")]
pub struct Args {
    /// The model (a name from config.yaml).
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Keep streaming new lines until Ctrl-C or the container ends.
    #[arg(long, short = 'f', conflicts_with = "previous")]
    pub follow: bool,
    /// The log of the container before its last restart (a crash's output).
    #[arg(long)]
    pub previous: bool,
    /// The container (default: the serving one).
    #[arg(long, short = 'c', value_name = "NAME")]
    pub container: Option<String>,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<u32>,
    /// Only lines newer than this (e.g. 10m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub since: Option<Duration>,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if ctx.output != Output::Table {
        return Err(InputError(
            "logs prints the container's log as it is: -o json|yaml does not apply".into(),
        )
        .into());
    }
    let (inputs, plan) = ctx.plan(None)?;
    let m = one_model(ctx, &inputs, &plan, &args.model)?;
    let opts = LogOptions {
        follow: args.follow,
        previous: args.previous,
        container: args.container.clone(),
        tail: args.tail.map(i64::from),
        since: args.since,
    };
    runtime()?.block_on(async {
        let interrupt = Interrupt::listen()?;
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::ReadOnly).await?;
        let pod = servingpod::find(&target.client, m, true)
            .await
            .map_err(Classified::of)?;
        ctx.printer.info(format!(
            "pod {}/{}{} container {}{}",
            pod.namespace,
            pod.name,
            if pod.pods > 1 {
                format!(" (1 of {} pods)", pod.pods)
            } else {
                String::new()
            },
            opts.container.as_deref().unwrap_or(&pod.container),
            if pod.ready { "" } else { " (not ready)" }
        ));
        let printer = ctx.printer.clone();
        let mut sink = move |b: &[u8]| printer.data_bytes(b);
        let streamed = interrupt
            .guard(async {
                match servingpod::logs(&target.client, &pod, &opts, &mut sink).await {
                    // stdout closed (`| head`): done, as kubectl is.
                    Err(PodError::Write(io)) if io.kind() == std::io::ErrorKind::BrokenPipe => {
                        Ok(())
                    }
                    r => r.map_err(|e| Classified::of(e).into()),
                }
            })
            .await;
        streamed
    })
}
