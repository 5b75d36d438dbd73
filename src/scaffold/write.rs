//! Writing a set of new files all or nothing: every file goes to a temporary file beside its
//! target first, then all are renamed into place; without `overwrite` the rename refuses to replace
//! a file that appeared meanwhile (link(2) semantics), so nothing the user has is ever clobbered.

use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use super::ScaffoldError;

/// What happened (or would happen) to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    Created,
    Overwritten,
    /// Already there with exactly this content.
    Unchanged,
    /// Already there with other content, left alone by design (init's `.gitignore`).
    Kept,
}

/// What is at `repo/rel` now: None when nothing (not even a dangling link) is there.
pub fn existing(repo: &Path, rel: &str) -> Result<Option<Vec<u8>>, ScaffoldError> {
    let path = repo.join(rel);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ScaffoldError::Write { path, source }),
        // Anything that is not a readable regular file (a link to nowhere, a FIFO, a directory)
        // counts as "there, and different".
        Ok(m) if !m.is_file() => Ok(Some(Vec::new())),
        Ok(m) if m.len() > crate::fsread::MAX_INPUT_BYTES => Ok(Some(Vec::new())),
        Ok(_) => std::fs::read(&path)
            .map(Some)
            .map_err(|source| ScaffoldError::Write { path, source }),
    }
}

/// Write `files` (repo-relative path, content) under `repo`: temporary files first, then renames.
pub fn write_all(
    repo: &Path,
    files: &[(String, Vec<u8>)],
    overwrite: bool,
) -> Result<(), ScaffoldError> {
    use std::os::unix::fs::PermissionsExt;
    let mut staged = Vec::new();
    for (rel, bytes) in files {
        let target = repo.join(rel);
        let dir = target.parent().unwrap_or(repo);
        let io = |source| ScaffoldError::Write {
            path: target.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        // 0666 at open(2): the umask decides, as for any file a command writes.
        let mut tmp = tempfile::Builder::new()
            .prefix(".platform-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(io)?;
        tmp.write_all(bytes)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(io)?;
        staged.push((tmp, target));
    }
    for (tmp, target) in staged {
        let done = if overwrite {
            tmp.persist(&target).map(|_| ())
        } else {
            tmp.persist_noclobber(&target).map(|_| ())
        };
        done.map_err(|e| ScaffoldError::Write {
            path: target.clone(),
            source: e.error,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_all_and_never_clobbers_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            ("a/b.yaml".to_string(), b"one\n".to_vec()),
            ("c.yaml".to_string(), b"two\n".to_vec()),
        ];
        write_all(dir.path(), &files, false).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a/b.yaml")).unwrap(),
            b"one\n"
        );
        assert_eq!(existing(dir.path(), "c.yaml").unwrap().unwrap(), b"two\n");
        assert_eq!(existing(dir.path(), "nope").unwrap(), None);
        let again = vec![("c.yaml".to_string(), b"three\n".to_vec())];
        assert!(write_all(dir.path(), &again, false).is_err());
        assert_eq!(std::fs::read(dir.path().join("c.yaml")).unwrap(), b"two\n");
        write_all(dir.path(), &again, true).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("c.yaml")).unwrap(),
            b"three\n"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("l")).unwrap();
        assert!(
            existing(dir.path(), "l").unwrap().is_some(),
            "a dangling link is something"
        );
    }
}
