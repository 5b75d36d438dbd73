use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{to_data, CheckFailed, Ctx, Output};
use crate::diag::{Diagnostic, Severity};
use crate::lint::{self, LintError, LintOptions};
use crate::render::provenance::Provenance;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks, all reported together: YAML syntax, unknown keys and feature names (with did-you-mean), \
types, duplicate or invalid names, models on a disabled layer, KServe cpu request > 1 without a \
limit, limit below request, tensor parallel ≠ GPUs, VLLM_CPU_OMP_THREADS_BIND=all, vLLM CPU with \
< 2 cores, RollingUpdate on a single-slot model, canary on a ReadWriteOnce volume, disabled \
required groups, unknown profile, catalog errors (duplicate apps, waves, unknown templates), \
then renders the tree and checks every object (strict core Kubernetes types; upstream CRD \
schemas with --schemas DIR).")]
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

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let opts = LintOptions {
        repo: &ctx.repo,
        env: &ctx.env,
        profile: args.profile.as_deref(),
        schemas: args.schemas.as_deref(),
        config_text: None,
    };
    let report = lint::lint(&opts, &|c| ctx.defaults_from_git(c)).map_err(|e| match e {
        // Unwrapped, so the exit code is the template's or the schema's (1).
        LintError::Template(t) => anyhow::Error::from(t),
        LintError::Schema(s) => anyhow::Error::from(s),
    })?;
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
