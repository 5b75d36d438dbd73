//! The data catalog under `catalog/`: layers and profiles, groups and their Argo CD apps, serving
//! layers, runtime presets. Loaded and checked as a whole; `resolve` combines it with a config.

pub mod argocd;
mod checks;
pub mod embedded;
pub mod objects;
pub mod resolve;
mod source;
mod types;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub(crate) use crate::names::name_error;
pub use crate::names::{is_dns1123_label, is_dns1123_subdomain};
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
    /// The models' stable endpoint (`routing:` in serving.yaml), when the catalog has one.
    pub routing: Option<RoutingSpec>,
    pub presets: BTreeMap<String, Preset>,
    /// GPU types and their memory (`gpus:` in presets.yaml), for `platform fit`.
    pub gpus: BTreeMap<String, GpuType>,
    /// The pinned Argo CD (`catalog/argocd.yaml`, else the embedded one).
    pub argocd: argocd::ArgoCdSpec,
    /// The objects files apps sync (`source: { objects: FILE }`), by path under `catalog/`.
    pub objects: BTreeMap<String, objects::ObjectsFile>,
    /// What [`Catalog::check`] found that is not an error (loading fails on an error).
    pub warnings: Vec<Diagnostic>,
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
        let layers = read::<LayersFile>(&source, repo, LAYERS_FILE)?;
        let groups = read::<GroupsFile>(&source, repo, GROUPS_FILE)?;
        let serving = read::<ServingFile>(&source, repo, SERVING_FILE)?;
        let presets = read::<PresetsFile>(&source, repo, PRESETS_FILE)?;
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
            routing: serving.routing,
            presets: presets.presets,
            gpus: presets.gpus,
            argocd,
            objects: BTreeMap::new(),
            warnings: Vec::new(),
        };
        let mut problems = catalog.check(known_templates);
        let (objects, objects_problems) = objects::load(
            &catalog.groups,
            &catalog.source,
            repo,
            &catalog.files.groups,
        );
        catalog.objects = objects;
        problems.extend(objects_problems);
        problems.extend(values::check_repo_files(
            &catalog.groups,
            &catalog.source,
            repo,
            &catalog.files.groups,
        ));
        if problems.iter().any(Diagnostic::is_error) {
            return Err(CatalogError::Invalid(Diagnostics(problems)));
        }
        catalog.warnings = problems;
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

    /// The PriorityClasses the catalog ships: (name, group), from the objects files of the groups'
    /// apps, in group order.
    pub fn priority_classes(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        for g in &self.groups {
            for a in &g.apps {
                let Some(file) = a.source.objects.as_ref().and_then(|f| self.objects.get(f)) else {
                    continue;
                };
                for (kind, name) in &file.objects {
                    if kind == objects::PRIORITY_CLASS {
                        out.push((name.as_str(), g.name.as_str()));
                    }
                }
            }
        }
        out
    }

    /// Every feature flag name a group is gated by.
    pub fn feature_names(&self) -> BTreeSet<&str> {
        self.groups
            .iter()
            .filter_map(|g| g.gate.as_ref()?.feature.as_deref())
            .collect()
    }

    /// Consistency checks; errors and warnings (see `checks.rs`, one function per rule set).
    pub fn check(&self, known_templates: &BTreeSet<String>) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        self.check_layers(&mut out);
        self.check_profiles(&mut out);
        self.check_groups(&mut out);
        self.check_serving(known_templates, &mut out);
        self.check_presets(&mut out);
        out
    }
}

/// The catalog file `rel` as `T`: from the build's JSON when it is the shipped text
/// ([`embedded::parsed`]), else parsed as YAML.
fn read<T: DeserializeOwned>(
    source: &CatalogSource,
    repo: &Path,
    rel: &str,
) -> Result<T, CatalogError> {
    let text = source.read_text(repo, rel).map_err(CatalogError::Input)?;
    if let Some(shipped) = embedded::parsed(rel, &text) {
        return Ok(shipped);
    }
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
