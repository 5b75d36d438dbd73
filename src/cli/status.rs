use std::time::Duration;

use anyhow::Result;
use comfy_table::Table;

use super::cluster::{connect, duration_at_least, runtime, TargetArgs};
use super::signals::Interrupt;
use super::{to_data, Ctx, Output};
use crate::actions::status::{gather, Report};
use crate::consts;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
-o json prints {env, profile, apps[], models[], pvcs[]}:
  apps[]:   {name, layer, wave (null for root apps),
             state: done|pending|failed|missing, sync, health,
             operation, message}
  models[]: {name, layer, namespace,
             state: ready|paused|scaled-to-zero|not-ready|not-deployed,
             desired, readyReplicas, paused, url, reasons[],
             autoscaling (only when autoscaled): {min, max, class, metric, target},
             stableUrl (routed models, once the models' Gateway has an address),
             route (routed models: the live split, e.g. \"kserve 100, raw-vllm 0\"),
             moving (during `platform move`: \"to LAYER\" or \"from LAYER\")}
  pvcs[]:   {name, namespace, model, phase, capacity}
With --watch, -o json prints that document once per refresh, compact, one per line (JSON \
Lines: read it line by line, e.g. `jq -c .models`).
For anything not ready, reasons name the cause: pod unschedulable (e.g. Insufficient \
nvidia.com/gpu), image pull back-off, failing probe, PVC not bound, ISVC/LLMISVC condition \
messages.")]
pub struct Args {
    #[command(flatten)]
    pub profile: super::ProfileArg,
    /// Refresh every --interval until interrupted (Ctrl-C: exit 130, SIGTERM: 143). With -o json
    /// each refresh is one compact JSON document on its own line (JSON Lines); with -o yaml, one
    /// `---` document of a YAML stream.
    #[arg(long)]
    pub watch: bool,
    /// Refresh interval of --watch (at least 1s).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration_at_least(consts::MIN_WATCH_INTERVAL))]
    pub interval: Duration,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (inputs, plan) = ctx.plan(args.profile.profile.as_deref())?;
    runtime()?.block_on(async {
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::ReadOnly).await?;
        if !args.watch {
            let report = gather(&target.client, &plan).await?;
            ctx.printer
                .data(&ctx.printer.hinted(&render(ctx.output, &report)?));
            return Ok(());
        }
        let interrupt = Interrupt::listen()?;
        interrupt
            .guard(async {
                loop {
                    let report = gather(&target.client, &plan).await?;
                    ctx.printer
                        .data(&ctx.printer.hinted(&render_watched(ctx.output, &report)?));
                    tokio::time::sleep(args.interval).await;
                }
            })
            .await
    })
}

/// One report as the table or `-o json|yaml`.
fn render(output: Output, report: &Report) -> Result<String> {
    match output {
        Output::Table => Ok(table(report)),
        o => to_data(o, report),
    }
}

/// One refresh of `--watch`: JSON Lines (one compact document per line), a `---` YAML document,
/// or the table.
fn render_watched(output: Output, report: &Report) -> Result<String> {
    match output {
        Output::Json => Ok(serde_json::to_string(report)? + "\n"),
        Output::Yaml => Ok(format!("---\n{}", to_data(Output::Yaml, report)?)),
        Output::Table => Ok(table(report)),
    }
}

fn new_table(header: &[&str]) -> Table {
    crate::ui::table(header)
}

fn table(r: &Report) -> String {
    let mut out = format!(
        "environment {} · profile {}\n\nAPPLICATIONS\n",
        r.env, r.profile
    );
    let mut t = new_table(&[
        "LAYER",
        "WAVE",
        "APP",
        "SYNC",
        "HEALTH",
        "OPERATION",
        "STATE",
        "MESSAGE",
    ]);
    let notes = Footnotes::of(r.apps.iter().map(|a| a.message.as_str()));
    for a in &r.apps {
        t.add_row(vec![
            a.layer.clone(),
            a.wave
                .map(|w| w.to_string())
                .unwrap_or_else(|| "root".into()),
            a.name.clone(),
            a.sync.clone(),
            a.health.clone(),
            a.operation.clone(),
            a.state.clone(),
            notes.cell(&a.message),
        ]);
    }
    out.push_str(&or_none(t, r.apps.len(), "no Applications in this profile"));
    out.push_str(&notes.lines());
    out.push_str("\n\nMODELS\n");
    let mut t = new_table(&["MODEL", "LAYER", "NAMESPACE", "STATE", "READY", "URL"]);
    let mut routes = Vec::new();
    for m in &r.models {
        let mut ready = match (m.ready_replicas, m.desired) {
            (Some(r), Some(d)) => format!("{r}/{d}"),
            // Paused, or not deployed: no replica to count.
            _ if m.paused || m.state == "not-deployed" => "-".into(),
            // The layer reports no counts and there is no workload to read them from yet.
            _ => "unknown".into(),
        };
        if let Some(a) = &m.autoscaling {
            // The range the autoscaler moves in, beside the current count.
            ready = format!("{ready} ({}-{} {})", a.min, a.max, a.class)
                .trim_start()
                .to_string();
        }
        if m.stable_url.is_some() || m.route.is_some() {
            routes.push(vec![
                m.name.clone(),
                m.stable_url
                    .clone()
                    .unwrap_or_else(|| "(the Gateway has no address yet)".into()),
                m.route.clone().unwrap_or_else(|| "(no route yet)".into()),
            ]);
        }
        let layer = match &m.moving {
            Some(mv) => format!("{} (moving {mv})", m.layer),
            None => m.layer.clone(),
        };
        t.add_row(vec![
            m.name.clone(),
            layer,
            m.namespace.clone(),
            m.state.clone(),
            ready,
            m.url.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&or_none(
        t,
        r.models.len(),
        "no models (declare them under models: in config.yaml)",
    ));
    for m in r.models.iter().filter(|m| !m.reasons.is_empty()) {
        out.push_str(&format!("\n  {} is {} because:", m.name, m.state));
        for reason in &m.reasons {
            out.push_str(&format!("\n    - {reason}"));
        }
    }
    if !routes.is_empty() {
        out.push_str(
            "\n\nSTABLE URLS (the same whatever the layer; `platform move` shifts the route)\n",
        );
        let mut t = new_table(&["MODEL", "BASE URL", "ROUTE"]);
        for r in routes {
            t.add_row(r);
        }
        out.push_str(&t.to_string());
    }
    out.push_str("\n\nPVCS\n");
    let mut t = new_table(&["PVC", "NAMESPACE", "MODEL", "PHASE", "CAPACITY"]);
    for p in &r.pvcs {
        t.add_row(vec![
            p.name.clone(),
            p.namespace.clone(),
            p.model.clone(),
            p.phase.clone(),
            p.capacity.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&or_none(t, r.pvcs.len(), "no model PVCs in the cluster"));
    out.push('\n');
    out
}

/// The table, or `  none` in words when it has no rows (a table of headers alone says nothing).
fn or_none(t: Table, rows: usize, none: &str) -> String {
    if rows == 0 {
        format!("  {none}")
    } else {
        t.to_string()
    }
}

/// A message that several rows share is said once, below the table, and the rows point at it
/// (`[1]`): after a teardown every app has the same long "not in the cluster" message.
struct Footnotes(Vec<String>);

impl Footnotes {
    fn of<'a>(messages: impl Iterator<Item = &'a str>) -> Footnotes {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for m in messages.filter(|m| !m.is_empty()) {
            match counts.iter_mut().find(|(x, _)| *x == m) {
                Some((_, n)) => *n += 1,
                None => counts.push((m, 1)),
            }
        }
        Footnotes(
            counts
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(m, _)| m.to_string())
                .collect(),
        )
    }

    /// The row's cell: its message, or the footnote mark of a shared one.
    fn cell(&self, message: &str) -> String {
        match self.0.iter().position(|m| m == message) {
            Some(i) => format!("[{}]", i + 1),
            None => message.to_string(),
        }
    }

    /// The shared messages, one line each.
    fn lines(&self) -> String {
        self.0
            .iter()
            .enumerate()
            .map(|(i, m)| format!("\n  [{}] {m}", i + 1))
            .collect()
    }
}
