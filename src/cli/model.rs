use anyhow::Result;

use super::{to_data, Ctx, Output};
use crate::actions::model::{self, AddOptions, ModelEditError, Outcome};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Edits environments/<env>/config.yaml in place: every comment, blank line and layout outside the \
entry stays byte for byte. The edited file is checked with every check `platform lint` runs \
before it is written (atomically); on an error nothing is written and the error names the field \
and the fix. Nothing is rendered or committed: `platform root --commit --push` does that.

Examples:
  platform model add qwen-small --source hf://Qwen/Qwen2.5-0.5B-Instruct --layer raw-vllm \\
      --cpu 2 --memory 6Gi
  platform model add llama-8b --source hf://meta-llama/Llama-3.1-8B-Instruct --layer kserve --gpus 1
  platform model remove qwen-small")]
pub struct Args {
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Add a model entry to config.yaml (refused when the name is listed already).
    Add(Box<AddArgs>),
    /// Remove a model's entry (and the comment lines right above it) from config.yaml.
    Remove(RemoveArgs),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The model's name (DNS-1123: also its Application's name).
    pub name: String,
    /// Where the weights come from: hf://ORG/NAME, s3://BUCKET/PREFIX, oci://…, pvc://CLAIM/DIR.
    #[arg(long, value_name = "URI")]
    pub source: String,
    /// Serving layer: raw-vllm, kserve or llm-d.
    #[arg(long, value_name = "LAYER")]
    pub layer: String,
    /// Engine: vllm (default), llama-cpp or ollama.
    #[arg(long, value_name = "R")]
    pub runtime: Option<String>,
    /// GPUs per serving pod.
    #[arg(long, value_name = "N")]
    pub gpus: Option<u32>,
    /// Preset of catalog/presets.yaml (default: <runtime>-gpu with --gpus, else <runtime>-cpu).
    #[arg(long, value_name = "P")]
    pub preset: Option<String>,
    /// Name clients send as "model" (default: the model's name).
    #[arg(long, value_name = "S")]
    pub served_name: Option<String>,
    /// Hub revision (branch, tag or commit).
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    #[arg(long, value_name = "N")]
    pub replicas: Option<u32>,
    #[arg(long, value_name = "N")]
    pub max_model_len: Option<u32>,
    /// resources.requests.cpu (e.g. 2).
    #[arg(long, value_name = "CPU")]
    pub cpu: Option<String>,
    /// resources.requests.memory (e.g. 6Gi).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The model to remove.
    pub name: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let reporter = ctx.reporter();
    let out = match args.command {
        ModelCommand::Add(a) => {
            let a = *a;
            let opts = AddOptions {
                name: a.name,
                source: a.source,
                layer: a.layer,
                runtime: a.runtime,
                preset: a.preset,
                gpus: a.gpus,
                served_name: a.served_name,
                revision: a.revision,
                replicas: a.replicas,
                max_model_len: a.max_model_len,
                cpu: a.cpu,
                memory: a.memory,
            };
            model::add(&ctx.repo, &ctx.env, &opts, reporter.as_ref())
        }
        ModelCommand::Remove(a) => model::remove(&ctx.repo, &ctx.env, &a.name, reporter.as_ref()),
    };
    let out = match out {
        Ok(o) => o,
        // lint's findings, printed as lint prints them.
        Err(ModelEditError::Invalid(ds)) => return Err(ds.into()),
        Err(e) => return Err(e.into()),
    };
    print(ctx, &out)
}

fn print(ctx: &Ctx, out: &Outcome) -> Result<()> {
    super::print_warnings(&ctx.printer, &out.warnings);
    if ctx.output != Output::Table {
        ctx.printer.data(&to_data(ctx.output, out)?);
    }
    let to = if out.action == "added" { "to" } else { "from" };
    ctx.printer.success(format!(
        "{} model {} {to} {} (models: {}); render and publish it with `platform root --env {} --commit --push`",
        out.action,
        out.model,
        out.file,
        if out.models.is_empty() {
            "none".to_string()
        } else {
            out.models.join(", ")
        },
        ctx.env
    ));
    Ok(())
}
