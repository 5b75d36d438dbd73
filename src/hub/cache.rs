//! Cache layout and the validation of names that become paths.

use std::path::{Path, PathBuf};

use super::consts::PARTIAL_DIR;
use super::error::HubError;

pub use crate::config::source::is_repo_part;

/// `org/name` (or `name`), each part as [`is_repo_part`] says.
pub(crate) fn validate_repo(repo: &str) -> Result<(), HubError> {
    let parts: Vec<&str> = repo.split('/').collect();
    let ok = (1..=2).contains(&parts.len()) && parts.iter().all(|p| is_repo_part(p));
    if ok {
        Ok(())
    } else {
        Err(HubError::InvalidRepo {
            repo: repo.to_string(),
        })
    }
}

/// A relative path with normal components only (no `..`, no absolute path, no backslash).
pub(crate) fn validate_file_path(repo: &str, path: &str) -> Result<(), HubError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && path.split('/').next() != Some(PARTIAL_DIR);
    if ok {
        Ok(())
    } else {
        Err(HubError::InvalidPath {
            repo: repo.to_string(),
            path: path.to_string(),
        })
    }
}

pub(crate) fn snapshot_dir(cache: &Path, repo: &str, commit: &str) -> Result<PathBuf, HubError> {
    validate_repo(repo)?;
    if commit.is_empty() || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HubError::InvalidPath {
            repo: repo.to_string(),
            path: commit.to_string(),
        });
    }
    Ok(cache.join(repo.replace('/', "--")).join(commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_repo("Qwen/Qwen2.5-0.5B-Instruct").is_ok());
        assert!(validate_repo("gpt2").is_ok());
        for bad in ["../x", "a/b/c", "a/..", "", "a b/c", "a--b/c"] {
            assert!(validate_repo(bad).is_err(), "{bad}");
        }
        assert!(validate_file_path("r", "original/params.json").is_ok());
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "a\\b", ".partial/x"] {
            assert!(validate_file_path("r", bad).is_err(), "{bad}");
        }
        let d = snapshot_dir(Path::new("/c"), "org/name", "abc123").expect("dir");
        assert_eq!(d, PathBuf::from("/c/org--name/abc123"));
    }
}
