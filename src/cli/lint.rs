use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{to_data, CheckFailed, Ctx, Output};
use crate::catalog::resolve::{resolve_groups, Plan};
use crate::catalog::{Catalog, CatalogError};
use crate::config::{self, ConfigError};
use crate::diag::{Diagnostic, Severity};
use crate::render::{self, check, schema, Templates};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks, all reported together: YAML syntax, unknown keys and feature names (with did-you-mean), types,
duplicate or invalid names, models on a disabled layer, KServe cpu request > 1 without a limit, limit
below request, tensor parallel ≠ GPUs, VLLM_CPU_OMP_THREADS_BIND=all, vLLM CPU with < 2 cores,
RollingUpdate on a single-slot model, canary on a ReadWriteOnce volume, disabled required groups,
unknown profile, catalog errors (duplicate apps, waves, unknown templates), then renders the tree and
checks every object (strict core Kubernetes types; upstream CRD schemas with --schemas DIR).")]
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
    diagnostics: &'a [Diagnostic],
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (mut diags, files) = collect(ctx, &args)?;
    diags.sort_by_key(|d| d.severity);
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
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

/// Every diagnostic, without stopping at the first failing stage when later ones can still run.
fn collect(ctx: &Ctx, args: &Args) -> Result<(Vec<Diagnostic>, usize)> {
    let mut diags = Vec::new();
    let templates = Templates::load(&ctx.repo)?;
    let catalog = match Catalog::load(&ctx.repo, &templates.names()) {
        Ok(c) => {
            diags.extend(
                c.check(&templates.names())
                    .into_iter()
                    .filter(|d| !d.is_error()),
            );
            Some(c)
        }
        Err(CatalogError::Input(d)) => {
            diags.push(*d);
            None
        }
        Err(CatalogError::Invalid(ds)) => {
            diags.extend(ds.0);
            None
        }
    };
    let config = match config::load(&ctx.repo, &ctx.env) {
        Ok((file, mut c)) => {
            ctx.defaults_from_git(&mut c);
            Some((file, c))
        }
        Err(ConfigError::Input(d)) => {
            diags.push(*d);
            None
        }
        Err(ConfigError::Invalid(ds)) => {
            diags.extend(ds.0);
            None
        }
    };
    let (Some(catalog), Some((file, cfg))) = (catalog, config) else {
        return Ok((diags, 0));
    };
    let plan = match Plan::build(&cfg, &ctx.env, &file, &catalog, args.profile.as_deref()) {
        Ok(p) => p,
        Err(ds) => {
            diags.extend(ds.0);
            return Ok((diags, 0));
        }
    };
    diags.extend(plan.diagnostics.iter().cloned());
    let tree = render::render(&plan, &catalog, &templates)?;
    let (objs, problems) = check::objects(&tree);
    diags.extend(problems);
    diags.extend(check::check_objects(&objs));
    if let Some(dir) = &args.schemas {
        diags.extend(schema::SchemaSet::load(dir)?.validate(&objs));
    }
    // groups.generated.yaml: a YAML list the ApplicationSets read.
    let groups = render::render_groups(
        &ctx.env,
        &resolve_groups(&cfg, &ctx.env, &catalog),
        &templates,
    )?;
    for (path, text) in &groups.files {
        if let Err(e) = serde_yaml::from_str::<Vec<serde_yaml::Value>>(text) {
            diags.push(
                Diagnostic::error(format!("rendered file is not a YAML list: {e}")).file(path),
            );
        }
    }
    Ok((diags, tree.files.len() + groups.files.len()))
}
