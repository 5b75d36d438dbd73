use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{to_data, CheckFailed, Ctx, Output};
use crate::diag::{Diagnostic, Severity};
use crate::lint::{self, LintOptions};
use crate::render::provenance::Provenance;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks, all reported together: YAML syntax, unknown keys and feature names (with did-you-mean), \
types, duplicate or invalid names, models on a disabled layer, KServe cpu request > 1 without a \
limit, limit below request, tensor parallel ≠ GPUs, VLLM_CPU_OMP_THREADS_BIND=all, vLLM CPU with \
< 2 cores, RollingUpdate on a single-slot model, canary on a ReadWriteOnce volume, disabled \
required groups, unknown profile, catalog errors (duplicate apps, waves, unknown templates), \
then renders the tree and checks every object (strict core Kubernetes types; upstream CRD \
schemas with --schemas DIR). Offline.

With --fit (the cost gate, before GPU apps are synced), also judges every vLLM model as \
`platform fit` does, reading its config.json and weight sizes from the Hub: a GPU model on the GPU \
type --gpu names (lint reads no cluster: without --gpu, a warning per GPU model), a CPU model \
against its pod's memory. A model that does not fit is an error giving the KV cache it needs, \
what is left, the longest maxModelLen that fits and the fix (a lower maxModelLen, \
tensorParallelSize with gpus, a bigger GPU type); a model whose source is not a Hub repository \
is a warning (check it with `platform fit MODEL --from-dir DIR`), one whose files the Hub does \
not give an error. llama.cpp and Ollama models are not judged.")]
pub struct Args {
    /// Profile to render; default: the config's layerProfile, else the widest.
    #[arg(long, short)]
    pub profile: Option<String>,
    /// Folder of upstream CRD JSON Schemas (<group>/<kind>_<version>.json); unknown fields are errors.
    #[arg(long, value_name = "DIR", env = "PLATFORM_SCHEMAS")]
    pub schemas: Option<PathBuf>,
    /// Treat warnings as errors (exit 1 on any finding).
    #[arg(long)]
    pub strict: bool,
    /// Also check that every vLLM model starts on its GPU type (or in its pod's memory), as
    /// `platform fit` does; reads the Hub.
    #[arg(long)]
    pub fit: bool,
    /// The GPU type --fit checks GPU models against (gpus: in catalog/presets.yaml: T4, L4, A10G,
    /// L40S, A100-40GB, A100-80GB, H100-80GB, H200, B200).
    #[arg(long, value_name = "TYPE", requires = "fit")]
    pub gpu: Option<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    env: &'a str,
    errors: usize,
    warnings: usize,
    files: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs: Option<&'a Provenance>,
    diagnostics: &'a [Diagnostic],
}

/// With -o json|yaml, the report of a lint that could not start (an invalid --env, a --repo that
/// is not a directory): stdout always holds one document of that format.
pub fn print_invalid_invocation(
    printer: &crate::ui::Printer,
    output: Output,
    env: &str,
    message: &str,
) {
    if output == Output::Table {
        return;
    }
    let diagnostics = [Diagnostic::error(message)];
    let r = Report {
        env,
        errors: 1,
        warnings: 0,
        files: 0,
        inputs: None,
        diagnostics: &diagnostics,
    };
    if let Ok(text) = to_data(output, &r) {
        printer.data(&text);
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let opts = LintOptions {
        repo: &ctx.repo,
        env: &ctx.env,
        profile: args.profile.as_deref(),
        schemas: args.schemas.as_deref(),
        config_text: None,
    };
    let mut report = lint::lint(&opts, &|c| ctx.defaults_from_git(c));
    if args.fit {
        match &report.planned {
            Some(planned) => {
                let reporter = ctx.reporter();
                let (found, fits) = super::cluster::runtime()?.block_on(lint::fit(
                    planned,
                    args.gpu.as_deref(),
                    reporter.as_ref(),
                ));
                report.diagnostics.extend(found);
                for line in fits {
                    ctx.printer.info(format!("fit: {line}"));
                }
            }
            None => report.diagnostics.push(Diagnostic::warning(
                "--fit: no model was checked, the configuration has errors that stop planning",
            )),
        }
    }
    let mut diags: Vec<Diagnostic> = report
        .diagnostics
        .into_iter()
        .map(Diagnostic::located)
        .collect();
    let files = report.files;
    diags.sort_by_key(|d| d.severity);
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    if let Some(inputs) = &report.inputs {
        ctx.printer.info(inputs.describe());
    }
    if ctx.output == Output::Table {
        for d in &diags {
            ctx.printer.diagnostic(d);
        }
    } else {
        let r = Report {
            env: &ctx.env,
            errors,
            warnings,
            files,
            inputs: report.inputs.as_ref(),
            diagnostics: &diags,
        };
        ctx.printer.data(&to_data(ctx.output, &r)?);
    }
    let summary = format!(
        "lint {}: {errors} error(s), {warnings} warning(s), {files} rendered file(s) checked",
        ctx.env
    );
    if errors > 0 || (args.strict && warnings > 0) {
        return Err(CheckFailed(summary).into());
    }
    ctx.printer.success(summary);
    Ok(())
}
