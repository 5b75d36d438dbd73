//! config × catalog → which groups are on, and why (gates, feature flags, their diagnostics). The
//! `Plan` built on them lives in `crate::plan`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::{Catalog, Group};
use crate::config::EnvConfig;
use crate::diag::{did_you_mean, Diagnostic};
use crate::layout;

/// One catalog group after the config's gates were applied.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedGroup {
    pub name: String,
    pub layer: String,
    pub enabled: bool,
    /// Why it is on or off, e.g. `features.kserve: true` or `default (features.llm-d absent)`.
    pub reason: String,
    /// Where its apps are rendered: `clusters/<env>/apps/<layer>/<group>`.
    pub catalog_path: String,
}

/// Apply the config's feature flags and config-value gates to every catalog group, in catalog order.
pub fn resolve_groups(cfg: &EnvConfig, env: &str, catalog: &Catalog) -> Vec<ResolvedGroup> {
    // The gates look up a few top-level keys: the models (1000 of them in a fleet, a third of
    // planning) are serialized only when a gate names them.
    let gates_models = catalog.groups.iter().any(|g| {
        g.gate
            .as_ref()
            .and_then(|gate| gate.config.as_deref())
            .is_some_and(|key| key.split('.').next() == Some("models"))
    });
    let cfg_json = if gates_models {
        serde_json::to_value(cfg)
    } else {
        serde_json::to_value(cfg.without_models())
    }
    .unwrap_or_default();
    catalog
        .groups
        .iter()
        .map(|g| {
            let (enabled, reason) = gate_state(g, cfg, &cfg_json);
            ResolvedGroup {
                name: g.name.clone(),
                layer: g.layer.clone(),
                enabled,
                reason,
                catalog_path: layout::group_path(env, &g.layer, &g.name),
            }
        })
        .collect()
}

fn gate_state(g: &Group, cfg: &EnvConfig, cfg_json: &serde_json::Value) -> (bool, String) {
    let Some(gate) = &g.gate else {
        return (true, "core (always on)".to_string());
    };
    if let Some(feature) = &gate.feature {
        return match cfg.features.get(feature) {
            Some(v) => (*v, format!("features.{feature}: {v}")),
            None => (
                gate.default,
                format!("default {} (features.{feature} not set)", gate.default),
            ),
        };
    }
    let key = gate.config.as_deref().unwrap_or_default();
    let want = gate.equals.as_deref().unwrap_or_default();
    let got = lookup(cfg_json, key);
    let on = got.as_deref() == Some(want);
    let shown = got.unwrap_or_else(|| "unset".to_string());
    (
        on,
        format!("{key} is {shown} ({} {want})", if on { "==" } else { "!=" }),
    )
}

/// A dotted key (`gpu_stack`, `dns.provider`) of the config, as a string.
fn lookup(v: &serde_json::Value, key: &str) -> Option<String> {
    let mut cur = v;
    for part in key.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Warnings about the resolved groups: domain needed, requirement disabled, GPUs needed, ignored flags,
/// unknown feature names (errors). `requires_is_error` turns a disabled requirement into an error
/// (`root`, `lint`); `resolve-groups` keeps it a warning like the platform it replaces.
pub fn group_diagnostics(
    cfg: &EnvConfig,
    cfg_file: &Path,
    catalog: &Catalog,
    groups: &[ResolvedGroup],
    requires_is_error: bool,
) -> Vec<Diagnostic> {
    let mut out = feature_flag_diagnostics(cfg, cfg_file, catalog);
    out.extend(enabled_group_diagnostics(
        &cfg.domain,
        cfg_file,
        catalog,
        groups,
        requires_is_error,
    ));
    out
}

/// The config's feature flags that gate no group: a group switched by a config value (warning:
/// ignored), or an unknown name (error, with the closest known one).
fn feature_flag_diagnostics(
    cfg: &EnvConfig,
    cfg_file: &Path,
    catalog: &Catalog,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let features = catalog.feature_names();
    for name in cfg.features.keys() {
        if features.contains(name.as_str()) {
            continue;
        }
        let field = format!("features.{name}");
        if let Some(gate) = catalog
            .group(name)
            .and_then(|g| g.gate.as_ref())
            .filter(|x| x.config.is_some())
        {
            out.push(
                Diagnostic::warning(format!(
                    "ignored: group `{name}` is enabled by `{}: {}`, not by a feature flag",
                    gate.config.as_deref().unwrap_or_default(),
                    gate.equals.as_deref().unwrap_or_default()
                ))
                .file(cfg_file)
                .field(field),
            );
            continue;
        }
        let d = Diagnostic::error(format!("unknown feature `{name}`"))
            .file(cfg_file)
            .field(field);
        out.push(match did_you_mean(name, features.iter().copied()) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!(
                "features the catalog knows: {}",
                features.iter().copied().collect::<Vec<_>>().join(", ")
            )),
        });
    }
    out
}

/// What each enabled group needs and may lack: a domain (the config's is `domain`), the groups it
/// requires (an error when `requires_is_error`), GPUs.
fn enabled_group_diagnostics(
    domain: &str,
    cfg_file: &Path,
    catalog: &Catalog,
    groups: &[ResolvedGroup],
    requires_is_error: bool,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let enabled: BTreeSet<&str> = groups
        .iter()
        .filter(|g| g.enabled)
        .map(|g| g.name.as_str())
        .collect();
    for rg in groups.iter().filter(|g| g.enabled) {
        let Some(g) = catalog.group(&rg.name) else {
            continue;
        };
        let hint = g
            .hint
            .as_deref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        if g.needs_domain && domain.is_empty() {
            out.push(
                Diagnostic::warning(format!(
                    "group `{}` needs a domain but `domain` is empty{hint}",
                    g.name
                ))
                .file(cfg_file)
                .field("domain")
                .help("set `domain:` or disable the group"),
            );
        }
        for r in &g.requires {
            if !enabled.contains(r.as_str()) {
                let msg = format!(
                    "group `{}` requires group `{r}`, which is disabled{hint}",
                    g.name
                );
                let d = if requires_is_error {
                    Diagnostic::error(msg)
                } else {
                    Diagnostic::warning(msg)
                };
                out.push(d.file(cfg_file).field(gate_field(catalog, r)).help(format!(
                    "enable `{r}` ({}), or disable `{}`",
                    gate_field(catalog, r),
                    g.name
                )));
            }
        }
        if g.min_gpus > 0 {
            out.push(
                Diagnostic::warning(format!(
                    "group `{}` needs at least {} GPU(s){hint}; its model apps stay manual-sync (the cost gate)",
                    g.name, g.min_gpus
                ))
                .file(cfg_file)
                .field(gate_field(catalog, &g.name)),
            );
        }
    }
    out
}

/// The config field that switches a group (for messages).
fn gate_field(catalog: &Catalog, group: &str) -> String {
    match catalog.group(group).and_then(|g| g.gate.as_ref()) {
        Some(gate) if gate.feature.is_some() => {
            format!("features.{}", gate.feature.as_deref().unwrap_or_default())
        }
        Some(gate) => gate.config.clone().unwrap_or_default(),
        None => format!("group {group}"),
    }
}
