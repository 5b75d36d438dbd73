use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::cluster::{connect, one_model, runtime, TargetArgs};
use super::signals::Interrupt;
use super::{to_data, CheckFailed, Ctx, Output};
use crate::actions::servingpod;
use crate::error::Classified;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Forwards 127.0.0.1:LOCAL_PORT (default: any free port) to the model's serving pod on any layer \
(raw vLLM: the model's Service's pods; KServe: <isvc>-predictor; llm-d: <name>-kserve; the first \
ready pod by name) on the port it serves, through the API server (pods/portforward, as smoke \
does; no kubectl). Prints the OpenAI base URL, http://127.0.0.1:PORT/v1, on stderr (with -o \
json|yaml: {model, namespace, pod, podPort, localPort, url} on stdout) and runs until Ctrl-C \
(exit 130) or the pod ends (exit 1: run it again to reach the new pod). A paused model has no pod: \
the error says so (`platform resume MODEL`); a Pending pod gives the reason `status` gives.

Examples:
  platform port-forward qwen-cpu
  platform port-forward qwen-gpu 8000
  curl http://127.0.0.1:8000/v1/models")]
pub struct Args {
    /// The model (a name from config.yaml).
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// The local port (default: any free one).
    #[arg(value_name = "LOCAL_PORT")]
    pub local_port: Option<u16>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `port-forward -o json|yaml`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    model: &'a str,
    namespace: &'a str,
    pod: &'a str,
    pod_port: u16,
    local_port: u16,
    url: &'a str,
}

/// How often the pod is looked at while forwarding.
const CHECK_EVERY: Duration = Duration::from_secs(5);

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (inputs, plan) = ctx.plan(None)?;
    let m = one_model(ctx, &inputs, &plan, &args.model)?;
    runtime()?.block_on(async {
        let interrupt = Interrupt::listen()?;
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::ReadOnly).await?;
        let client = target.client.clone();
        let pod = servingpod::find(&client, m, false)
            .await
            .map_err(Classified::of)?;
        let fwd = servingpod::forward(&client, &pod, args.local_port.unwrap_or(0))
            .await
            .map_err(Classified::of)?;
        let local = fwd.forward.local_addr();
        let line = format!(
            "forwarding {} -> pod {}/{} port {} (Ctrl-C to stop)",
            fwd.url, pod.namespace, pod.name, pod.port
        );
        // The URL is the data asked for: under -q (no progress) it still reaches stdout.
        if ctx.printer.quiet && ctx.output == Output::Table {
            ctx.printer.data(&fwd.url);
        } else {
            ctx.printer.info(line);
        }
        if ctx.output != Output::Table {
            let r = Report {
                model: &m.name,
                namespace: &pod.namespace,
                pod: &pod.name,
                pod_port: pod.port,
                local_port: local.port(),
                url: &fwd.url,
            };
            ctx.printer.data(&to_data(ctx.output, &r)?);
        }
        let errors = fwd.forward.last_error_handle();
        let watched = interrupt
            .guard(async {
                loop {
                    tokio::time::sleep(CHECK_EVERY).await;
                    if let Some(why) = errors.refused() {
                        return Err(Classified::of(why.error()).into());
                    }
                    if let Some(why) = servingpod::gone(&client, &pod).await.map_err(Classified::of)? {
                        return Err(CheckFailed(format!(
                            "{why}: the port-forward ended; `platform port-forward {}` reaches the model's new pod",
                            m.name
                        ))
                        .into());
                    }
                }
            })
            .await;
        fwd.forward.close().await;
        watched
    })
}
