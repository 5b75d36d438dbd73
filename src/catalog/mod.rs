//! The data catalog under `catalog/`: layers and profiles, groups and their Argo CD apps, serving
//! layers, runtime presets. Loaded and checked as a whole; `resolve` combines it with a config.

pub mod argocd;
pub mod embedded;
pub mod resolve;
mod source;
mod types;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use source::{CatalogSource, WHOLE_DIRECTORY_HELP};
pub use types::*;

use crate::diag::{did_you_mean, yaml_diagnostic, Diagnostic, Diagnostics};

pub const LAYERS_FILE: &str = "layers.yaml";
pub const GROUPS_FILE: &str = "groups.yaml";
pub const SERVING_FILE: &str = "serving.yaml";
pub const PRESETS_FILE: &str = "presets.yaml";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Input(Box<Diagnostic>),
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// The whole catalog, checked.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Where it was read from: the repository's catalog/ or the embedded one.
    pub source: CatalogSource,
    /// Paths of the files, relative to the repo, for messages.
    pub files: CatalogFiles,
    pub layers: Vec<String>,
    pub profiles: Vec<Profile>,
    pub groups: Vec<Group>,
    pub serving: BTreeMap<String, ServingLayerSpec>,
    pub presets: BTreeMap<String, Preset>,
    /// The pinned Argo CD (`catalog/argocd.yaml`, else the embedded one).
    pub argocd: argocd::ArgoCdSpec,
}

#[derive(Debug, Clone)]
pub struct CatalogFiles {
    pub layers: PathBuf,
    pub groups: PathBuf,
    pub serving: PathBuf,
    pub presets: PathBuf,
}

impl Catalog {
    /// Load the catalog of `repo`: its own `catalog/` folder when it has one, else the catalog
    /// embedded in the binary (see [`CatalogSource`]). `known_templates` is the set of template
    /// names available (embedded and repo-local), used to reject serving layers that name a
    /// template that does not exist.
    pub fn load(repo: &Path, known_templates: &BTreeSet<String>) -> Result<Catalog, CatalogError> {
        let source = CatalogSource::detect(repo)?;
        let layers: LayersFile = read(&source, repo, LAYERS_FILE)?;
        let groups: GroupsFile = read(&source, repo, GROUPS_FILE)?;
        let serving: ServingFile = read(&source, repo, SERVING_FILE)?;
        let presets: PresetsFile = read(&source, repo, PRESETS_FILE)?;
        let files = CatalogFiles {
            layers: source.label(repo, LAYERS_FILE),
            groups: source.label(repo, GROUPS_FILE),
            serving: source.label(repo, SERVING_FILE),
            presets: source.label(repo, PRESETS_FILE),
        };
        let argocd = argocd::load(&source, repo)?;
        let mut catalog = Catalog {
            source,
            files,
            layers: layers.layers,
            profiles: layers.profiles,
            groups: groups.groups,
            serving: serving.serving_layers,
            presets: presets.presets,
            argocd,
        };
        let problems = catalog.check(known_templates);
        if problems.iter().any(Diagnostic::is_error) {
            return Err(CatalogError::Invalid(Diagnostics(problems)));
        }
        values::inline_embedded(
            &mut catalog.groups,
            &catalog.source,
            repo,
            &catalog.files.groups,
        )?;
        Ok(catalog)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    pub fn profile_names(&self) -> Vec<&str> {
        self.profiles.iter().map(|p| p.name.as_str()).collect()
    }

    /// The widest profile (the last one).
    pub fn widest_profile(&self) -> Option<&Profile> {
        self.profiles.last()
    }

    pub fn layer_index(&self, layer: &str) -> Option<usize> {
        self.layers.iter().position(|l| l == layer)
    }

    /// Every feature flag name a group is gated by.
    pub fn feature_names(&self) -> BTreeSet<&str> {
        self.groups
            .iter()
            .filter_map(|g| g.gate.as_ref()?.feature.as_deref())
            .collect()
    }

    /// Consistency checks; errors and warnings.
    pub fn check(&self, known_templates: &BTreeSet<String>) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let f = &self.files;
        let layer_set: BTreeSet<&str> = self.layers.iter().map(String::as_str).collect();
        if layer_set.len() != self.layers.len() {
            out.push(
                Diagnostic::error("a layer is listed twice")
                    .file(&f.layers)
                    .field("layers"),
            );
        }
        for l in &self.layers {
            if !is_dns1123_label(l) {
                out.push(name_error(&f.layers, "layers", l));
            }
        }
        // Profiles: known layers, in layer order, additive.
        let mut seen_profiles = BTreeSet::new();
        let mut previous: Option<&Profile> = None;
        if self.profiles.is_empty() {
            out.push(
                Diagnostic::error("no profiles defined")
                    .file(&f.layers)
                    .field("profiles"),
            );
        }
        for p in &self.profiles {
            let field = format!("profiles[{}]", p.name);
            if !seen_profiles.insert(p.name.as_str()) {
                out.push(
                    Diagnostic::error(format!("profile `{}` is defined twice", p.name))
                        .file(&f.layers)
                        .field(&field),
                );
            }
            for l in &p.layers {
                if !layer_set.contains(l.as_str()) {
                    out.push(unknown(
                        &f.layers,
                        &format!("{field}.layers"),
                        "layer",
                        l,
                        &self.layers,
                    ));
                }
            }
            let idx: Vec<usize> = p
                .layers
                .iter()
                .filter_map(|l| self.layer_index(l))
                .collect();
            if idx.windows(2).any(|w| w[0] >= w[1]) {
                out.push(
                    Diagnostic::error("layers are not in apply order")
                        .file(&f.layers)
                        .field(format!("{field}.layers"))
                        .help(format!(
                            "list them in the order of `layers`: {}",
                            self.layers.join(", ")
                        )),
                );
            }
            if let Some(prev) = previous {
                let missing: Vec<&str> = prev
                    .layers
                    .iter()
                    .filter(|l| !p.layers.contains(l))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    out.push(
                        Diagnostic::error(format!(
                            "profile `{}` drops layer(s) {} of the narrower profile `{}`",
                            p.name,
                            missing.join(", "),
                            prev.name
                        ))
                        .file(&f.layers)
                        .field(format!("{field}.layers"))
                        .help("profiles are additive: each one contains every layer of the profile before it"),
                    );
                }
            }
            previous = Some(p);
        }
        // Groups.
        let group_names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        let mut seen_groups = BTreeSet::new();
        let mut app_names: BTreeMap<&str, &str> = BTreeMap::new();
        let mut features: BTreeMap<&str, &str> = BTreeMap::new();
        for g in &self.groups {
            let field = format!("groups[{}]", g.name);
            if !is_dns1123_label(&g.name) {
                out.push(name_error(&f.groups, &field, &g.name));
            }
            if !seen_groups.insert(g.name.as_str()) {
                out.push(
                    Diagnostic::error(format!("group `{}` is defined twice", g.name))
                        .file(&f.groups)
                        .field(&field),
                );
            }
            if !layer_set.contains(g.layer.as_str()) {
                out.push(unknown(
                    &f.groups,
                    &format!("{field}.layer"),
                    "layer",
                    &g.layer,
                    &self.layers,
                ));
            }
            match (&g.gate, g.core) {
                (Some(_), true) => out.push(
                    Diagnostic::error("a core group cannot have a gate").file(&f.groups).field(&field)
                        .help("remove `core: true` or the `gate`"),
                ),
                (None, false) => out.push(
                    Diagnostic::error("an optional group needs a gate").file(&f.groups).field(&field)
                        .help("add `core: true`, or `gate: {feature: NAME, default: false}`, or `gate: {config: KEY, equals: VALUE}`"),
                ),
                (Some(gate), false) => match (&gate.feature, &gate.config, &gate.equals) {
                    (Some(feat), None, None) => {
                        if let Some(other) = features.insert(feat.as_str(), g.name.as_str()) {
                            out.push(Diagnostic::error(format!("feature `{feat}` already gates group `{other}`"))
                                .file(&f.groups).field(format!("{field}.gate.feature")));
                        }
                    }
                    (None, Some(_), Some(_)) => {}
                    _ => out.push(
                        Diagnostic::error("a gate is either `feature` (+ `default`) or `config` + `equals`")
                            .file(&f.groups).field(format!("{field}.gate")),
                    ),
                },
                (None, true) => {}
            }
            for r in &g.requires {
                if !group_names.contains(&r.as_str()) {
                    out.push(unknown(
                        &f.groups,
                        &format!("{field}.requires"),
                        "group",
                        r,
                        &group_names,
                    ));
                }
            }
            for l in &g.requires_layers {
                if !layer_set.contains(l.as_str()) {
                    out.push(unknown(
                        &f.groups,
                        &format!("{field}.requiresLayers"),
                        "layer",
                        l,
                        &self.layers,
                    ));
                }
            }
            for a in &g.apps {
                let afield = format!("{field}.apps[{}]", a.name);
                if !is_dns1123_subdomain(&a.name) {
                    out.push(name_error(&f.groups, &afield, &a.name));
                }
                if !is_dns1123_label(&a.namespace) {
                    out.push(name_error(
                        &f.groups,
                        &format!("{afield}.namespace"),
                        &a.namespace,
                    ));
                }
                if let Some(other) = app_names.insert(a.name.as_str(), g.name.as_str()) {
                    out.push(
                        Diagnostic::error(format!(
                            "app `{}` is also defined in group `{other}`",
                            a.name
                        ))
                        .file(&f.groups)
                        .field(&afield)
                        .help("Argo CD Application names are unique per namespace: rename one"),
                    );
                }
                let kinds = [
                    a.source.helm.is_some(),
                    a.source.git.is_some(),
                    a.source.path.is_some(),
                ];
                if kinds.iter().filter(|k| **k).count() != 1 {
                    out.push(
                        Diagnostic::error("a source is exactly one of `helm`, `git` or `path`")
                            .file(&f.groups)
                            .field(format!("{afield}.source")),
                    );
                }
                if a.values_file.is_some() && a.source.helm.is_none() {
                    out.push(
                        Diagnostic::error("`valuesFile` only applies to a helm source")
                            .file(&f.groups)
                            .field(format!("{afield}.valuesFile")),
                    );
                }
                if a.values.is_some() && a.source.helm.is_none() {
                    out.push(
                        Diagnostic::error("`values` only applies to a helm source")
                            .file(&f.groups)
                            .field(format!("{afield}.values")),
                    );
                }
                if let Some(v) = &a.values {
                    if !v.is_object() {
                        out.push(
                            Diagnostic::error("`values` must be a mapping")
                                .file(&f.groups)
                                .field(format!("{afield}.values")),
                        );
                    }
                }
            }
        }
        // Serving layers.
        for (name, s) in &self.serving {
            let field = format!("servingLayers.{name}");
            if !crate::config::ServingLayer::ALL
                .iter()
                .any(|l| l.as_str() == name)
            {
                out.push(unknown(
                    &f.serving,
                    &field,
                    "serving layer",
                    name,
                    &["raw-vllm", "kserve", "llm-d"],
                ));
            }
            if !group_names.contains(&s.group.as_str()) {
                out.push(unknown(
                    &f.serving,
                    &format!("{field}.group"),
                    "group",
                    &s.group,
                    &group_names,
                ));
            }
            if !is_dns1123_label(&s.namespace) {
                out.push(name_error(
                    &f.serving,
                    &format!("{field}.namespace"),
                    &s.namespace,
                ));
            }
            for t in s.templates.iter().chain(&s.shared_templates) {
                if !known_templates.contains(t) {
                    let names: Vec<&str> = known_templates.iter().map(String::as_str).collect();
                    out.push(unknown(
                        &f.serving,
                        &format!("{field}.templates"),
                        "template",
                        t,
                        &names,
                    ));
                }
            }
        }
        // Presets.
        for (name, p) in &self.presets {
            let field = format!("presets.{name}");
            match &p.digest {
                Some(d) if !d.is_empty() => {
                    let hex = d.strip_prefix("sha256:").unwrap_or("");
                    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        out.push(Diagnostic::error(format!("`{d}` is not a sha256 digest"))
                            .file(&f.presets).field(format!("{field}.digest"))
                            .help("write sha256:<64 hex digits> (e.g. from `crane digest IMAGE` or `docker buildx imagetools inspect IMAGE`)"));
                    }
                }
                _ => out.push(
                    Diagnostic::warning(format!("image `{}` is not digest-pinned", p.image))
                        .file(&f.presets).field(format!("{field}.digest"))
                        .help("add `digest: sha256:…` so every node runs the same bytes (`crane digest IMAGE`)"),
                ),
            }
            if p.image.contains('@') {
                out.push(
                    Diagnostic::error("put the digest in `digest:`, not in `image:`")
                        .file(&f.presets)
                        .field(format!("{field}.image")),
                );
            }
        }
        out
    }
}

fn read<T: DeserializeOwned>(
    source: &CatalogSource,
    repo: &Path,
    rel: &str,
) -> Result<T, CatalogError> {
    let text = source.read_text(repo, rel).map_err(CatalogError::Input)?;
    serde_yaml::from_str(&text)
        .map_err(|e| CatalogError::Input(Box::new(yaml_diagnostic(&e, &source.label(repo, rel)))))
}

fn unknown<S: AsRef<str>>(
    file: &Path,
    field: &str,
    what: &str,
    name: &str,
    valid: &[S],
) -> Diagnostic {
    let names: Vec<&str> = valid.iter().map(AsRef::as_ref).collect();
    let d = Diagnostic::error(format!("unknown {what} `{name}`"))
        .file(file)
        .field(field);
    match did_you_mean(name, names.iter().copied()) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d.help(format!("valid: {}", names.join(", "))),
    }
}

pub(crate) fn name_error(file: &Path, field: &str, name: &str) -> Diagnostic {
    Diagnostic::error(format!("`{name}` is not a valid Kubernetes name"))
        .file(file)
        .field(field)
        .help("use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (DNS-1123 label)")
}

/// RFC 1123 label: what Kubernetes accepts for namespaces, Services and most object names.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: labels joined by dots, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_files_must_be_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let cat = dir.path().join("catalog");
        std::fs::create_dir(&cat).unwrap();
        std::os::unix::fs::symlink("/dev/zero", cat.join(LAYERS_FILE)).unwrap();
        let Err(CatalogError::Input(d)) = Catalog::load(dir.path(), &BTreeSet::new()) else {
            panic!("/dev/zero accepted");
        };
        assert!(
            d.message
                .contains("catalog file is a character device, not a regular file"),
            "{d}"
        );
        assert_eq!(d.file.as_deref(), Some(Path::new("catalog/layers.yaml")));
    }

    #[test]
    fn dns1123() {
        assert!(is_dns1123_label("qwen-cpu"));
        assert!(is_dns1123_label("a1"));
        for bad in ["", "Qwen", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
        assert!(is_dns1123_subdomain("kserve-crd.x"));
    }
}
