//! Where the catalog comes from: the repository's own `catalog/` folder, or the one compiled into
//! the binary. The rule is per directory, not per file: a repository with a `catalog/` folder uses
//! it entirely (groups, serving layers, presets and values files refer to each other, so a mix of
//! two versions could be inconsistent in ways no check sees); without one, the embedded catalog is
//! used. Templates are overridden per file (see `render::engine`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{embedded, CatalogError};
use crate::consts;
use crate::diag::{display_path, Diagnostic};

/// The catalog in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum CatalogSource {
    /// Compiled into the binary (this version of platform).
    Embedded { version: String },
    /// The repository's `catalog/` folder (this path).
    Repo { path: PathBuf },
}

/// The help every "your catalog/ is incomplete" message carries.
pub const WHOLE_DIRECTORY_HELP: &str = "a repository's catalog/ replaces the embedded catalog as a whole: add the missing file (`platform catalog eject` into an empty repository shows the full set), or remove catalog/ to use the embedded catalog";

impl CatalogSource {
    /// The repository's `catalog/` when it exists (a directory, or a link to one), else the
    /// embedded catalog. A `catalog` that is not a directory, or a broken link, is an error: it
    /// was surely meant as an override.
    pub fn detect(repo: &Path) -> Result<CatalogSource, CatalogError> {
        let dir = repo.join(consts::CATALOG_DIR);
        let problem = |msg: String| {
            CatalogError::Input(Box::new(
                Diagnostic::error(msg)
                    .file(display_path(repo, &dir))
                    .help("a repository's catalog/ folder replaces the embedded catalog; remove or rename this entry to use the embedded one"),
            ))
        };
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(CatalogSource::Repo { path: dir }),
            Ok(_) => Err(problem("is not a directory".to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(&dir).is_ok() {
                    return Err(problem("is a broken symbolic link".to_string()));
                }
                Ok(CatalogSource::Embedded {
                    version: embedded::VERSION.to_string(),
                })
            }
            Err(e) => Err(problem(format!("cannot be read: {e}"))),
        }
    }

    pub fn is_embedded(&self) -> bool {
        matches!(self, CatalogSource::Embedded { .. })
    }

    /// How messages name the catalog file `rel` (relative to `catalog/`): `catalog/<rel>` (relative
    /// to the repository) or `embedded catalog/<rel>`.
    pub fn label(&self, repo: &Path, rel: &str) -> PathBuf {
        match self {
            CatalogSource::Repo { path } => display_path(repo, &path.join(rel)),
            CatalogSource::Embedded { .. } => {
                PathBuf::from(format!("embedded {}/{rel}", consts::CATALOG_DIR))
            }
        }
    }

    /// One line for humans: `embedded (platform 0.1.0)` or `repository catalog/ (/path/catalog)`.
    pub fn describe(&self) -> String {
        match self {
            CatalogSource::Embedded { version } => format!("embedded (platform {version})"),
            CatalogSource::Repo { path } => {
                format!("the repository's catalog/ ({})", path.display())
            }
        }
    }

    /// The text of the catalog file `rel` (relative to `catalog/`). Errors are diagnostics naming
    /// the file as [`label`](Self::label) does.
    pub fn read_text(&self, repo: &Path, rel: &str) -> Result<String, Box<Diagnostic>> {
        let label = self.label(repo, rel);
        match self {
            CatalogSource::Repo { path } => {
                // A regular file of bounded size (a link to /dev/zero or a FIFO would never end).
                crate::fsread::read_text(
                    &path.join(rel),
                    crate::fsread::MAX_INPUT_BYTES,
                    "catalog file",
                )
                .map_err(|e| {
                    let mut d = crate::config::read_diagnostic(&e, &label, "catalog file");
                    if e.io_kind() == Some(std::io::ErrorKind::NotFound) {
                        d = Diagnostic::error("catalog file not found")
                            .file(&label)
                            .help(WHOLE_DIRECTORY_HELP);
                    }
                    Box::new(d)
                })
                .inspect(|text| crate::diag::remember(&label, text))
            }
            CatalogSource::Embedded { .. } => {
                let bytes = embedded::get(rel).ok_or_else(|| {
                    Box::new(
                        Diagnostic::error("not in the embedded catalog")
                            .file(&label)
                            .help("the embedded catalog holds: ".to_string() + &embedded_names()),
                    )
                })?;
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    Box::new(
                        Diagnostic::error(format!(
                            "not UTF-8 text (invalid byte at offset {})",
                            e.valid_up_to()
                        ))
                        .file(&label),
                    )
                })?;
                let text = text.strip_prefix('\u{feff}').unwrap_or(text);
                crate::diag::remember(&label, text);
                Ok(text.to_string())
            }
        }
    }
}

fn embedded_names() -> String {
    embedded::FILES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_catalog_folder_wins_else_the_embedded_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = CatalogSource::detect(dir.path()).unwrap();
        assert!(s.is_embedded());
        assert_eq!(
            s.label(dir.path(), "groups.yaml"),
            PathBuf::from("embedded catalog/groups.yaml")
        );
        assert!(s
            .read_text(dir.path(), "groups.yaml")
            .unwrap()
            .contains("groups:"));
        let e = s.read_text(dir.path(), "nope.yaml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("embedded catalog/nope.yaml: not in the embedded catalog"),
            "{e}"
        );

        std::fs::create_dir(dir.path().join("catalog")).unwrap();
        let s = CatalogSource::detect(dir.path()).unwrap();
        assert_eq!(
            s,
            CatalogSource::Repo {
                path: dir.path().join("catalog")
            }
        );
        let e = s.read_text(dir.path(), "groups.yaml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("catalog/groups.yaml: catalog file not found"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("replaces the embedded catalog as a whole"),
            "{e}"
        );
    }

    #[test]
    fn a_catalog_that_is_not_a_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("catalog"), "x").unwrap();
        let Err(CatalogError::Input(d)) = CatalogSource::detect(dir.path()) else {
            panic!("a file named catalog was accepted");
        };
        assert_eq!(
            d.to_string().lines().next(),
            Some("catalog: is not a directory")
        );
        std::fs::remove_file(dir.path().join("catalog")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("catalog")).unwrap();
        let Err(CatalogError::Input(d)) = CatalogSource::detect(dir.path()) else {
            panic!("a broken link was taken for no catalog");
        };
        assert!(d.message.contains("broken symbolic link"), "{d}");
    }
}
