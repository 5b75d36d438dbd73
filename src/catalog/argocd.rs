//! `catalog/argocd.yaml`: the Argo CD `platform bootstrap` installs (version, install manifest URL
//! and its sha256, namespace), the keys it merges into `argocd-cm` / `argocd-cmd-params-cm`, and the
//! Application that hands Argo CD over to GitOps. A repository without its own `catalog/argocd.yaml`
//! uses the copy compiled into the binary.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{is_dns1123_label, read, CatalogError, CatalogSource};
use crate::diag::{Diagnostic, Diagnostics};

pub const ARGOCD_FILE: &str = "argocd.yaml";
/// The argocd-cm key holding the Application health check platform relies on.
pub const HEALTH_KEY: &str = "resource.customizations.health.argoproj.io_Application";
/// The `group` of Argo CD's own Application (not a catalog group: it exists in every plan whose
/// profile includes its layer).
pub const GROUP: &str = "argocd";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArgoCdFile {
    argocd: ArgoCdSpec,
}

/// The pinned Argo CD.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArgoCdSpec {
    /// Release tag, e.g. `v3.5.1` (also the image tag doctor compares).
    pub version: String,
    /// HTTPS URL of the release's `install.yaml`.
    #[serde(rename = "installURL")]
    pub install_url: String,
    /// Lower-case hex sha256 of that file.
    pub sha256: String,
    pub namespace: String,
    /// The hand-over Application; absent: `root` renders none (an Argo CD managed another way).
    #[serde(default)]
    pub app: Option<HandOverApp>,
    /// Keys merged into ConfigMap argocd-cm.
    #[serde(default)]
    pub argocd_cm: BTreeMap<String, String>,
    /// Keys merged into ConfigMap argocd-cmd-params-cm.
    #[serde(default)]
    pub argocd_cmd_params_cm: BTreeMap<String, String>,
    /// Where it was read from, for messages (`catalog/argocd.yaml` or `(embedded) catalog/argocd.yaml`).
    #[serde(skip)]
    pub file: String,
}

/// The Application through which Argo CD manages itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HandOverApp {
    pub name: String,
    pub layer: String,
    pub wave: i32,
}

impl ArgoCdSpec {
    /// The argocd-cm keys as a `data:` snippet a user can paste (what `doctor` prints).
    pub fn cm_snippet(&self) -> String {
        let mut out = String::from("data:\n");
        for (k, v) in &self.argocd_cm {
            out.push_str(&format!("  {k}: |\n"));
            for l in v.lines() {
                out.push_str(&format!("    {l}\n"));
            }
        }
        out.trim_end().to_string()
    }

    /// The ConfigMaps bootstrap patches, with their keys and the hand-over's patch file names.
    pub fn patches(&self) -> Vec<(&'static str, &BTreeMap<String, String>)> {
        [
            ("argocd-cm", &self.argocd_cm),
            ("argocd-cmd-params-cm", &self.argocd_cmd_params_cm),
        ]
        .into_iter()
        .filter(|(_, keys)| !keys.is_empty())
        .collect()
    }

    /// The path of the install manifest in the user's cache: `<cache>/argocd/<version>/install.yaml`.
    pub fn cache_rel_path(&self) -> String {
        format!("argocd/{}/install.yaml", self.version)
    }
}

/// The pin of the catalog in use (`source`), checked. A repository catalog without `argocd.yaml`
/// (ejected before the file existed) uses the embedded pin: the one exception to "the catalog is
/// replaced as a whole", so that such a repository keeps working; `platform plan` names the file used.
pub fn load(source: &CatalogSource, repo: &Path) -> Result<ArgoCdSpec, CatalogError> {
    let in_repo = match source {
        CatalogSource::Repo { path } => path.join(ARGOCD_FILE).exists(),
        CatalogSource::Embedded { .. } => false,
    };
    // The shipped file (build.rs's table of the embedded catalog) when the repository's has none.
    let from = if in_repo {
        source.clone()
    } else {
        CatalogSource::Embedded {
            version: super::embedded::VERSION.to_string(),
        }
    };
    let f: ArgoCdFile = read(&from, repo, ARGOCD_FILE)?;
    let mut spec = f.argocd;
    spec.file = from.label(repo, ARGOCD_FILE).display().to_string();
    let problems = check(&spec);
    if !problems.is_empty() {
        return Err(CatalogError::Invalid(Diagnostics(problems)));
    }
    Ok(spec)
}

fn check(spec: &ArgoCdSpec) -> Vec<Diagnostic> {
    let file = Path::new(&spec.file);
    let err = |field: &str, msg: String, help: &str| {
        Diagnostic::error(msg)
            .file(file)
            .field(format!("argocd.{field}"))
            .help(help.to_string())
    };
    let mut out = Vec::new();
    if !spec.install_url.starts_with("https://") {
        out.push(err(
            "installURL",
            format!("`{}` is not an https:// URL", spec.install_url),
            "the install manifest is downloaded over HTTPS only",
        ));
    }
    if spec.sha256.len() != 64 || !spec.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        out.push(err(
            "sha256",
            format!("`{}` is not a sha256 (64 hex digits)", spec.sha256),
            "put the sha256 of the install manifest here (`sha256sum install.yaml`)",
        ));
    }
    if spec.version.is_empty() || !spec.install_url.contains(&spec.version) {
        out.push(err(
            "version",
            format!(
                "version `{}` does not appear in installURL `{}`",
                spec.version, spec.install_url
            ),
            "change version, installURL and sha256 together",
        ));
    }
    let app_name = spec.app.as_ref().map(|a| &a.name);
    for (field, v) in [("namespace", Some(&spec.namespace)), ("app.name", app_name)] {
        let Some(v) = v else { continue };
        if !is_dns1123_label(v) {
            out.push(err(
                field,
                format!("`{v}` is not a DNS-1123 label"),
                "lower-case letters, digits and `-`, at most 63 characters",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_pins_argocd_with_the_health_check() {
        let dir = tempfile::tempdir().unwrap();
        let spec = load(&CatalogSource::detect(dir.path()).unwrap(), dir.path()).unwrap();
        assert_eq!(spec.version, "v3.5.1");
        assert!(spec.install_url.ends_with("/v3.5.1/manifests/install.yaml"));
        assert!(spec.argocd_cm.contains_key(HEALTH_KEY));
        assert!(spec.file.starts_with("embedded "));
        assert!(spec.cm_snippet().contains("    return hs"));
    }

    #[test]
    fn a_bad_pin_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("catalog")).unwrap();
        let embedded = super::super::embedded::get(ARGOCD_FILE).unwrap();
        let text = std::str::from_utf8(embedded)
            .unwrap()
            .replace("795a3a97", "zz")
            .replace("https://raw", "http://raw");
        std::fs::write(dir.path().join("catalog/argocd.yaml"), text).unwrap();
        let CatalogError::Invalid(ds) =
            load(&CatalogSource::detect(dir.path()).unwrap(), dir.path()).unwrap_err()
        else {
            panic!("not Invalid")
        };
        let all: String = ds.0.iter().map(|d| format!("{d}\n")).collect();
        assert!(all.contains("argocd.sha256"), "{all}");
        assert!(all.contains("argocd.installURL"), "{all}");
        assert!(all.contains("catalog/argocd.yaml"), "{all}");
    }
}
