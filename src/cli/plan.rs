use anyhow::Result;
use comfy_table::{presets::NOTHING, Table};

use super::{print_warnings, to_data, Ctx, Output};
use crate::catalog::SyncMode;
use crate::plan::Plan;
use crate::render::provenance::Provenance;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    /// A Mermaid flowchart of the sync waves, for docs and PRs.
    Mermaid,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  platform plan --profile full
  platform plan -o json | jq '.groups[] | select(.enabled)'
  platform plan --format mermaid > waves.mmd")]
pub struct Args {
    #[command(flatten)]
    pub profile: super::ProfileArg,
    /// Human format (ignored with -o json|yaml).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `-o json|yaml`: the plan plus the inputs it was made from (key `inputs`).
#[derive(serde::Serialize)]
struct PlanData<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    inputs: &'a Provenance,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (inputs, plan) = ctx.plan(args.profile.profile.as_deref())?;
    let provenance = Provenance::new(&inputs.catalog.source, &inputs.templates);
    print_warnings(&ctx.printer, &plan.diagnostics);
    let text = match (ctx.output, args.format) {
        (Output::Table, Format::Table) => format!(
            "{}
{}",
            provenance.describe(),
            tables(&plan)
        ),
        (Output::Table, Format::Mermaid) => mermaid(&plan),
        (o, _) => to_data(
            o,
            &PlanData {
                plan: &plan,
                inputs: &provenance,
            },
        )?,
    };
    ctx.printer.data(&text);
    Ok(())
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(header.iter().map(|h| h.to_string()));
    t
}

fn tables(plan: &Plan) -> String {
    let mut out = format!(
        "environment {} · profile {} (layers: {})\n\nGROUPS\n",
        plan.env,
        plan.profile.name,
        plan.profile.layers.join(", ")
    );
    let mut g = table(&["GROUP", "LAYER", "ENABLED", "IN PROFILE", "WHY"]);
    for grp in &plan.groups {
        g.add_row(vec![
            grp.resolved.name.clone(),
            grp.resolved.layer.clone(),
            yes_no(grp.resolved.enabled),
            yes_no(grp.in_profile),
            grp.resolved.reason.clone(),
        ]);
    }
    out.push_str(&g.to_string());
    out.push_str("\n\nAPPLICATIONS (bring-up order)\n");
    let mut a = table(&["LAYER", "WAVE", "APP", "GROUP", "KIND", "SYNC", "NAMESPACE"]);
    for app in &plan.apps {
        a.add_row(vec![
            app.layer.clone(),
            app.wave.to_string(),
            app.name.clone(),
            app.group.clone(),
            format!("{:?}", app.kind).to_lowercase(),
            match app.sync {
                SyncMode::Auto => "auto".to_string(),
                SyncMode::Manual => "manual".to_string(),
            },
            app.namespace.clone(),
        ]);
    }
    out.push_str(&a.to_string());
    out.push_str("\n\nMODELS\n");
    if plan.models.is_empty() {
        out.push_str("  (none in this profile)\n");
    } else {
        let mut m = table(&[
            "MODEL",
            "LAYER",
            "NAMESPACE",
            "PRESET",
            "GPUS",
            "REPLICAS",
            "WEIGHTS",
        ]);
        for model in &plan.models {
            m.add_row(vec![
                model.name.clone(),
                model.serving_layer.clone(),
                model.namespace.clone(),
                model.preset.clone(),
                model.model.total_gpus().to_string(),
                match &model.autoscaling {
                    Some(a) => format!("{}-{} ({})", a.min, a.max, a.class),
                    None => model.replicas.to_string(),
                },
                weights(model),
            ]);
        }
        out.push_str(&m.to_string());
        out.push('\n');
    }
    out
}

/// How the model's pods get the weights, in a few words.
fn weights(model: &crate::plan::PlannedModel) -> String {
    use crate::serving::Weights;
    match model.weights() {
        Weights::Staged => format!("staged ({})", model.model.pvc_name()),
        Weights::Hub => model.model.source.to_string(),
        Weights::Storage(uri) => uri,
        Weights::Pulled => format!(
            "pulls {}",
            crate::serving::runtime::of(&model.model).served_name(&model.model)
        ),
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// `flowchart LR` with one subgraph per (layer, wave) in bring-up order, chained.
fn mermaid(plan: &Plan) -> String {
    let mut out = format!(
        "%% platform plan: environment {} profile {}\nflowchart LR\n",
        plan.env, plan.profile.name
    );
    let stages = plan.stages();
    let id = |s: &str| s.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    for (i, (layer, wave, apps)) in stages.iter().enumerate() {
        out.push_str(&format!("  subgraph s{i}[\"{layer} · wave {wave}\"]\n"));
        for a in apps {
            let manual = if a.sync == SyncMode::Manual {
                " (manual)"
            } else {
                ""
            };
            out.push_str(&format!("    {}[\"{}{manual}\"]\n", id(&a.name), a.name));
        }
        out.push_str("  end\n");
    }
    for i in 1..stages.len() {
        out.push_str(&format!("  s{} --> s{i}\n", i - 1));
    }
    out
}
