//! `platform catalog eject`: write the embedded catalog (and, on request, the embedded templates)
//! into the repository for customising. Never overwrites anything: one existing file stops it
//! before a single file is written, naming every one that exists.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::write::{existing, write_all};
use super::ScaffoldError;
use crate::catalog::embedded;
use crate::consts;
use crate::render::engine::EMBEDDED as EMBEDDED_TEMPLATES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectOptions {
    pub catalog: bool,
    pub templates: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EjectOutcome {
    /// Version of platform the files come from.
    pub version: String,
    /// Repo-relative paths written, sorted.
    pub written: Vec<String>,
}

/// The files eject writes: (repo-relative path, content).
pub fn files(opts: EjectOptions) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if opts.catalog {
        for (rel, bytes) in embedded::FILES {
            out.push((format!("{}/{rel}", consts::CATALOG_DIR), bytes.to_vec()));
        }
    }
    if opts.templates {
        for (name, text) in EMBEDDED_TEMPLATES {
            out.push((
                format!("{}/{name}", consts::TEMPLATES_DIR),
                text.as_bytes().to_vec(),
            ));
        }
    }
    out.sort();
    out
}

pub fn eject(repo: &Path, opts: EjectOptions) -> Result<EjectOutcome, ScaffoldError> {
    let files = files(opts);
    let mut present: Vec<PathBuf> = Vec::new();
    for (rel, _) in &files {
        if existing(repo, rel)?.is_some() {
            present.push(repo.join(rel));
        }
    }
    if !present.is_empty() {
        return Err(ScaffoldError::Exists {
            paths: present,
            hint: "eject never overwrites a file: to take the embedded files of a newer platform, move the folder aside (`git mv catalog catalog.old`), eject again and compare (`git diff --no-index catalog.old catalog`)".to_string(),
        });
    }
    write_all(repo, &files, false)?;
    Ok(EjectOutcome {
        version: embedded::VERSION.to_string(),
        written: files.into_iter().map(|(rel, _)| rel).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This source repository has its own templates/, so it would render fine with a template
    /// missing from the embedded table: every user repository would not. Eject writes the table.
    #[test]
    fn eject_writes_every_template_of_the_source_tree_as_it_is() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(consts::TEMPLATES_DIR);
        let mut on_disk: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    format!("templates/{}", e.file_name().to_string_lossy()),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        on_disk.sort();
        let ejected = files(EjectOptions {
            catalog: false,
            templates: true,
        });
        assert_eq!(ejected, on_disk);
    }

    #[test]
    fn nothing_is_written_when_one_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("catalog/values")).unwrap();
        std::fs::write(dir.path().join("catalog/values/kserve.yaml"), "mine\n").unwrap();
        let opts = EjectOptions {
            catalog: true,
            templates: true,
        };
        let Err(ScaffoldError::Exists { paths, .. }) = eject(dir.path(), opts) else {
            panic!("an existing file was overwritten");
        };
        assert_eq!(paths, [dir.path().join("catalog/values/kserve.yaml")]);
        assert!(!dir.path().join("catalog/groups.yaml").exists());
        assert!(!dir.path().join("templates").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("catalog/values/kserve.yaml")).unwrap(),
            "mine\n"
        );
    }
}
