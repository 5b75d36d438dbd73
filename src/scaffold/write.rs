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

/// What is at `repo/rel` now: None when nothing (not even a dangling link) is there. A directory
/// on the way that is a symbolic link is refused (see [`refuse_linked_dirs`]).
pub fn existing(repo: &Path, rel: &str) -> Result<Option<Vec<u8>>, ScaffoldError> {
    refuse_linked_dirs(repo, rel)?;
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

/// Refuse when a directory on the way to `repo/rel` (`environments`, `environments/<env>`,
/// `catalog`, …) is a symbolic link: it may lead out of the repository, and nothing is written
/// through one (as `root` refuses links on the way into clusters/). The file itself may be a link:
/// it counts as an existing file, which is never written through either (a rename replaces it).
pub fn refuse_linked_dirs(repo: &Path, rel: &str) -> Result<(), ScaffoldError> {
    let Some(parent) = Path::new(rel)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    else {
        return Ok(());
    };
    match crate::gitops::inspect(repo, &parent.to_string_lossy()) {
        Ok(_) => Ok(()),
        Err(crate::gitops::GitopsError::Symlink { path, target, .. }) => {
            Err(ScaffoldError::Symlink {
                path: repo.join(path),
                target,
            })
        }
        Err(crate::gitops::GitopsError::Read { path, source }) => Err(ScaffoldError::Write {
            path: repo.join(path),
            source,
        }),
        Err(e) => Err(ScaffoldError::Write {
            path: repo.join(rel),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// Write `files` (repo-relative path, content) under `repo`: temporary files first, then renames.
pub fn write_all(
    repo: &Path,
    files: &[(String, Vec<u8>)],
    overwrite: bool,
) -> Result<(), ScaffoldError> {
    use std::os::unix::fs::PermissionsExt;
    for (rel, _) in files {
        refuse_linked_dirs(repo, rel)?;
    }
    let mut staged = Vec::new();
    for (rel, bytes) in files {
        let target = repo.join(rel);
        let dir = target.parent().unwrap_or(repo);
        let io = |source| ScaffoldError::Write {
            path: target.clone(),
            source: crate::fsread::without_temp_path(source),
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
            source: crate::fsread::without_temp_path(e.error),
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

    /// Issue 19 Low 10: a write that fails names the file being written, not tempfile's temporary
    /// file (`at path ".platform-XXXX.tmp"`). sysfs refuses new files even to root (a read-only
    /// directory would not stop a test running as root).
    #[test]
    fn a_failed_write_names_the_destination_not_the_temporary_file() {
        assert!(Path::new("/sys/kernel").is_dir(), "sysfs is not mounted");
        let files = vec![("x.yaml".to_string(), b"x\n".to_vec())];
        let e = write_all(Path::new("/sys"), &files, false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "cannot write /sys/x.yaml: Permission denied (os error 13)"
        );
    }

    /// Issue 19 Medium 10: a directory on the way that is a link (here out of the repository) is
    /// refused before anything is read or written there.
    #[test]
    fn nothing_is_written_through_a_linked_directory() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("catalog")).unwrap();
        let files = vec![("catalog/values/x.yaml".to_string(), b"x\n".to_vec())];
        for e in [
            existing(dir.path(), "catalog/values/x.yaml").unwrap_err(),
            write_all(dir.path(), &files, true).unwrap_err(),
        ] {
            assert!(
                matches!(&e, ScaffoldError::Symlink { path, .. } if path == &dir.path().join("catalog")),
                "{e}"
            );
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
