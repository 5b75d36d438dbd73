//! Every validation of an environment, reported together, nothing written: config, catalog and
//! templates, the plan, then every rendered object (strict core types, optionally upstream CRD
//! schemas) and the groups file. `platform lint` prints it; `platform init` runs it on the config
//! it is about to write. Every problem is a finding of the report, a template or schema that stops
//! the checks too (so `lint -o json` always has one document to print): lint itself never fails.

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
    let files = match (catalog, config) {
        (Some(catalog), Some((file, cfg))) => {
            rendered(opts, &catalog, &templates, &file, &cfg, &mut diags).unwrap_or_else(|d| {
                diags.push(*d);
                0
            })
        }
        _ => 0,
    };
    LintReport {
        diagnostics: diags,
        files,
        inputs,
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
) -> Result<usize, Box<Diagnostic>> {
    let template = |e: TemplateError| Box::new(e.diagnostic());
    let plan = match Plan::build(cfg, opts.env, file, catalog, opts.profile) {
        Ok(p) => p,
        Err(ds) => {
            diags.extend(ds.0);
            return Ok(0);
        }
    };
    diags.extend(plan.diagnostics.iter().cloned());
    let tree = render::render(&plan, catalog, templates).map_err(template)?;
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
