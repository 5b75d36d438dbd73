//! Every validation of an environment, reported together, nothing written: config, catalog and
//! templates, the plan, then every rendered object (strict core types, optionally upstream CRD
//! schemas) and the groups file. `platform lint` prints it; `platform init` runs it on the config
//! it is about to write. Every problem is a finding of the report, a template or schema that stops
//! the checks too (so `lint -o json` always has one document to print): lint itself never fails.
//! Offline, except [`fit`] (`lint --fit`), which reads each model's config.json from the Hub.

use std::path::Path;

use crate::catalog::resolve::resolve_groups;
use crate::catalog::{Catalog, CatalogError, CatalogSource};
use crate::config::{self, ConfigError, EnvConfig};
use crate::diag::Diagnostic;
use crate::plan::Plan;
use crate::render::provenance::Provenance;
use crate::render::schema::{SchemaError, SchemaSet};
use crate::render::{self, check, TemplateError, Templates};

pub struct LintOptions<'a> {
    pub repo: &'a Path,
    pub env: &'a str,
    /// Layer profile; default: the config's layerProfile, else the widest.
    pub profile: Option<&'a str>,
    /// Folder of upstream CRD JSON Schemas.
    pub schemas: Option<&'a Path>,
    /// Check this text as `environments/<env>/config.yaml` instead of the file on disk.
    pub config_text: Option<&'a str>,
}

/// What a lint found.
pub struct LintReport {
    pub diagnostics: Vec<Diagnostic>,
    /// Rendered files checked (0 when the inputs did not get that far).
    pub files: usize,
    /// The catalog and templates used (None when the catalog location itself is wrong).
    pub inputs: Option<Provenance>,
    /// The plan that was checked (None when config or catalog had errors that stop planning):
    /// what [`fit`] judges.
    pub planned: Option<Planned>,
}

/// A plan lint built, with what it was built from.
pub struct Planned {
    pub plan: Plan,
    pub catalog: Catalog,
    /// config.yaml, as diagnostics name it.
    pub config_file: std::path::PathBuf,
}

/// Run every check. `fill` completes a parsed config before planning (the CLI fills an empty
/// repoURL/repoBranch from git and says so).
pub fn lint(opts: &LintOptions<'_>, fill: &dyn Fn(&mut EnvConfig)) -> LintReport {
    let mut diags = Vec::new();
    // A template that cannot be read or parsed stops the checks: nothing can be rendered.
    let templates = match Templates::load(opts.repo) {
        Ok(t) => t,
        Err(e) => {
            return LintReport {
                diagnostics: vec![e.diagnostic()],
                files: 0,
                inputs: None,
                planned: None,
            }
        }
    };
    let inputs = CatalogSource::detect(opts.repo)
        .ok()
        .map(|s| Provenance::new(&s, &templates));
    let catalog = match Catalog::load(opts.repo, &templates.names()) {
        Ok(c) => {
            diags.extend(c.warnings.iter().cloned());
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
    let config = match load_config(opts) {
        Ok((file, mut c)) => {
            fill(&mut c);
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
    let mut planned = None;
    let files = match (catalog, config) {
        (Some(catalog), Some((file, cfg))) => {
            let mut plan = None;
            let files = rendered(
                opts, &catalog, &templates, &file, &cfg, &mut diags, &mut plan,
            )
            .unwrap_or_else(|d| {
                diags.push(*d);
                0
            });
            planned = plan.map(|plan| Planned {
                plan,
                catalog,
                config_file: file,
            });
            files
        }
        _ => 0,
    };
    LintReport {
        diagnostics: diags,
        files,
        inputs,
        planned,
    }
}

fn load_config(opts: &LintOptions<'_>) -> Result<(std::path::PathBuf, EnvConfig), ConfigError> {
    match opts.config_text {
        None => config::load(opts.repo, opts.env),
        Some(text) => {
            let rel =
                crate::diag::display_path(opts.repo, &config::config_path(opts.repo, opts.env));
            let cfg = config::parse(text, &rel)?;
            Ok((rel, cfg))
        }
    }
}

/// Plan, render and check every object; returns the number of files checked, or the problem that
/// stopped rendering (a template error, a schema folder that cannot be used).
fn rendered(
    opts: &LintOptions<'_>,
    catalog: &Catalog,
    templates: &Templates,
    file: &Path,
    cfg: &EnvConfig,
    diags: &mut Vec<Diagnostic>,
    planned: &mut Option<Plan>,
) -> Result<usize, Box<Diagnostic>> {
    let template = |e: TemplateError| Box::new(e.diagnostic());
    let plan = match Plan::build(cfg, opts.env, file, catalog, opts.profile) {
        Ok(p) => planned.insert(p),
        Err(ds) => {
            diags.extend(ds.0);
            return Ok(0);
        }
    };
    diags.extend(plan.diagnostics.iter().cloned());
    let tree = render::render(plan, catalog, templates).map_err(template)?;
    let (objs, problems) = check::objects(&tree);
    diags.extend(problems);
    diags.extend(check::check_objects(&objs));
    if let Some(dir) = opts.schemas {
        let mut schemas = SchemaSet::load(dir).map_err(|e| Box::new(schema_diagnostic(&e)))?;
        diags.extend(schemas.validate(&objs));
    }
    // groups.generated.yaml: a YAML list the ApplicationSets read.
    let groups =
        render::render_groups(opts.env, &resolve_groups(cfg, opts.env, catalog), templates)
            .map_err(template)?;
    for (path, text) in &groups.files {
        if let Err(e) = serde_yaml::from_str::<Vec<serde_yaml::Value>>(text) {
            diags.push(
                Diagnostic::error(format!("rendered file is not a YAML list: {e}")).file(path),
            );
        }
    }
    Ok(tree.files.len() + groups.files.len())
}

fn schema_diagnostic(e: &SchemaError) -> Diagnostic {
    let d = Diagnostic::error(e.to_string());
    match e {
        SchemaError::Missing(_) => d.field("--schemas").help(
            "point --schemas (or PLATFORM_SCHEMAS) at a folder of <group>/<kind>_<version>.json",
        ),
        SchemaError::Read { path, .. } => d.file(path),
        SchemaError::Input(r) => d.file(r.path()),
    }
}

/// `lint --fit`: what `platform fit` says about every model of the plan, as findings (this one
/// reads the Hub: each model's config.json and weight sizes). A model that does not fit is an
/// error with the numbers and the fix; a GPU model whose GPU type is unknown (no `gpu`: lint reads
/// no cluster) or whose files fit cannot read is a warning naming the model. Also returns one line
/// per model that fits.
pub async fn fit(
    planned: &Planned,
    gpu: Option<&str>,
    reporter: &dyn crate::report::Reporter,
) -> (Vec<Diagnostic>, Vec<String>) {
    use crate::actions::fit::{self, Gate};
    let file = &planned.config_file;
    let gpu = match gpu
        .map(|g| fit::catalog_gpu(&planned.catalog, g))
        .transpose()
    {
        Ok(g) => g,
        Err(message) => return (vec![Diagnostic::error(message).field("--gpu")], Vec::new()),
    };
    let hub = match crate::hub::HubClient::from_env(None) {
        Ok(h) => h,
        Err(e) => {
            let d = Diagnostic::error(format!(
                "--fit cannot read models from the Hub: {}",
                crate::error::one_line(&e)
            ));
            return (vec![d], Vec::new());
        }
    };
    let opts = fit::Options {
        gpu,
        utilization: None,
        overhead_bytes: fit::DEFAULT_OVERHEAD,
    };
    let known: Vec<&str> = planned.catalog.gpus.keys().map(String::as_str).collect();
    let (mut diags, mut fits) = (Vec::new(), Vec::new());
    for g in fit::gate(&hub, &planned.plan.models, &opts, reporter).await {
        let model = &g.model;
        let at = format!("models[{model}]");
        let d = match g.outcome {
            Gate::Judged(f) if f.verdict.fits => {
                fits.push(fit::fits_line(&f));
                continue;
            }
            Gate::Judged(f) => {
                let e = fit::explain(&f, &planned.catalog);
                // Point at what the model sets: its memory limit (a CPU model), its maxModelLen.
                let m = (planned.plan.models.iter())
                    .find(|m| &m.name == model)
                    .map(|m| &m.model);
                let field = match m {
                    Some(m) if f.on_cpu && m.resources.limits.contains_key("memory") => {
                        format!("{at}.resources.limits.memory")
                    }
                    Some(m) if m.max_model_len.is_some() => format!("{at}.maxModelLen"),
                    _ => at,
                };
                Diagnostic::error(e.message).field(field).help(e.fix)
            }
            Gate::NoGpu => Diagnostic::warning(format!(
                "fit cannot check {model}: its GPU type is unknown (lint reads no cluster)"
            ))
            .field(format!("{at}.gpus"))
            .help(format!(
                "pass --gpu TYPE, the GPU it will run on ({}), or check it against the cluster's nodes with `platform fit {model}`",
                known.join(", ")
            )),
            Gate::NoFiles { source } => Diagnostic::warning(format!(
                "fit cannot check {model}: its source {source} is not a Hub repository"
            ))
            .field(format!("{at}.source"))
            .help(format!("check it with `platform fit {model} --from-dir DIR`")),
            Gate::OtherRuntime(_) => continue,
            Gate::Failed(e) => {
                let reason = match &e {
                    fit::FitCommandError::Model { message, .. } => message.clone(),
                    e => crate::error::one_line(e),
                };
                Diagnostic::error(format!("fit could not check {model}: {reason}")).field(at)
            }
        };
        diags.push(d.file(file));
    }
    (diags, fits)
}
