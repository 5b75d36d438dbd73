//! `stage-model --download-only`: a snapshot straight into a directory of the user's, whose
//! differing files are never replaced behind their back.

use std::path::Path;

use super::download::{conflicts_in, remove_conflicts};
use super::snapshot::Snapshot;
use super::{FileFilter, HubClient, HubError, LocalSnapshot};
use crate::report::Reporter;

/// How many conflicting files a message names.
const SHOWN: usize = 5;

/// Download `repo` at `revision` into `to`. Files there that differ from the snapshot's are an
/// error ([`HubError::WouldOverwrite`]) unless `force`, which replaces them (said on `reporter`).
pub async fn fetch_to_dir(
    client: &HubClient,
    repo: &str,
    revision: &str,
    filter: &FileFilter,
    to: &Path,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<LocalSnapshot, HubError> {
    let snapshot = client
        .resolve_with(repo, revision, filter, reporter)
        .await?;
    let source = format!("hf://{repo}");
    let commit = format!("commit {}", snapshot.commit);
    prepare_dir(&snapshot, &source, &commit, to, force, reporter).await?;
    client.download_to_dir(&snapshot, to, reporter, None).await
}

/// Ready `to` for `snapshot` (of `source`, at `version`, both for messages): created when
/// missing; its files that differ from the snapshot's are an error
/// ([`HubError::WouldOverwrite`]) unless `force`, which removes them (said on `reporter`).
pub async fn prepare_dir(
    snapshot: &Snapshot,
    source: &str,
    version: &str,
    to: &Path,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<(), HubError> {
    let conflicts = conflicts_in(snapshot, to).await?;
    if !conflicts.is_empty() {
        let shown: Vec<String> = conflicts
            .iter()
            .take(SHOWN)
            .map(|c| format!("{} ({})", c.path, c.why))
            .collect();
        let more = match conflicts.len() {
            n if n > SHOWN => format!(" and {} more", n - SHOWN),
            _ => String::new(),
        };
        if !force {
            return Err(HubError::WouldOverwrite {
                dir: to.to_path_buf(),
                count: conflicts.len(),
                origin: source.to_string(),
                commit: version.to_string(),
                shown: format!("{}{more}", shown.join(", ")),
            });
        }
        remove_conflicts(to, &conflicts)?;
        reporter.note(&format!(
            "--force: replacing {} file(s) in {}: {}{more}",
            conflicts.len(),
            to.display(),
            shown.join(", ")
        ));
    }
    std::fs::create_dir_all(to).map_err(|e| HubError::io(to, e))
}
