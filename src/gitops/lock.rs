//! An exclusive lock on an environment's output tree (`clusters/<env>/`) for the commands that write
//! it, so two runs never interleave their writes and prunes. `flock(2)`, non-blocking: a second
//! writer is refused at once with the holder's pid and command. The kernel releases the lock when
//! the process exits, however it exits; the lock file itself stays (deleting it would let a third
//! run lock a new file while the second still holds the old one).
//!
//! Where the lock file lives, so that it is never generated output, never committed, never pruned
//! and never in a diff: in a git work tree, inside the git directory
//! (`.git/platform/<path of clusters/<env> in the work tree>.lock`), which git does not track; in a
//! directory that is not a git work tree, `.platform-<env>.lock` beside `clusters/` (outside the
//! output tree). What platform keeps of a tree ([`Kept`]: its index, the parsed config) lives
//! beside the lock file, with its own extension for `.lock`.
//!
//! Taking the lock also removes what an interrupted writer left beside the tree
//! (`clusters/.<env>.platform-new-<pid>/`): its writer no longer holds the lock, so it is dead.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::GitopsError;
use crate::consts;

/// Held while the output tree is being written; dropping it releases the lock.
#[derive(Debug)]
pub struct TreeLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl TreeLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TreeLock {
    fn drop(&mut self) {
        if let Ok(mut held) = HELD.lock() {
            if let Some(i) = held.iter().position(|p| *p == self.path) {
                held.swap_remove(i);
            }
        }
    }
}

/// What platform keeps beside a tree's lock file, named by extension for `.lock`: the tree's
/// index (`<env>.index`, `super::index`) and the parsed config (`<env>.config`, `config::cache`).
/// Written only by the lock's holder ([`is_held`]), through a temporary file ([`temp_prefix`]).
#[derive(Debug, Clone, Copy)]
pub enum Kept {
    Index,
    Config,
}

impl Kept {
    const ALL: [Kept; 2] = [Kept::Index, Kept::Config];

    fn extension(self) -> &'static str {
        match self {
            Kept::Index => "index",
            Kept::Config => "config",
        }
    }

    /// Where it lives beside `lock_file` ([`lock_path`]).
    pub fn path(self, lock_file: &Path) -> PathBuf {
        lock_file.with_extension(self.extension())
    }
}

/// The lock files this process holds: what platform keeps beside a lock (the tree's index, the
/// parsed config) is written only by the lock's holder.
static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Whether this process holds `lock_file` ([`lock_path`]).
pub fn is_held(lock_file: &Path) -> bool {
    HELD.lock()
        .is_ok_and(|held| held.iter().any(|p| p == lock_file))
}

/// The name a file kept beside a lock (`<env>.index`, `<env>.config`) is written under before it
/// is renamed over the kept one: `<env>.index.tmp-XXXXXX`. The lock's next holder removes what a
/// killed writer left ([`lock_tree`]).
pub fn temp_prefix(kept: &Path) -> String {
    let name = kept.file_name().unwrap_or_default().to_string_lossy();
    format!("{name}{KEPT_TEMP}")
}

const KEPT_TEMP: &str = ".tmp-";

/// Remove the temporary files a killed holder of `lock_file` left beside it (only this
/// environment's: the folder is shared by every environment of the repository).
fn remove_kept_temps(lock_file: &Path) {
    let (Some(dir), Some(stem)) = (lock_file.parent(), lock_file.file_stem()) else {
        return;
    };
    let stem = stem.to_string_lossy();
    let prefixes = Kept::ALL.map(|k| format!("{stem}.{}{KEPT_TEMP}", k.extension()));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The lock file for `clusters/<env>/` of `repo` (see the module documentation).
pub fn lock_path(repo: &Path, env: &str) -> PathBuf {
    let in_git = repo.canonicalize().ok().and_then(|repo| {
        let (git_dir, work_tree) = crate::repo::git_dir_of(&repo)?;
        Some((git_dir, repo.strip_prefix(&work_tree).ok()?.to_path_buf()))
    });
    match in_git {
        Some((git_dir, sub)) => {
            let mut p = git_dir
                .join(consts::LOCK_DIR_IN_GIT)
                .join(sub)
                .join(crate::layout::tree(env));
            p.set_extension("lock");
            p
        }
        None => repo.join(format!(".platform-{env}.lock")),
    }
}

/// Take the exclusive lock on `clusters/<env>/` of `repo` for `command` (named to whoever waits).
pub fn lock_tree(repo: &Path, env: &str, command: &str) -> Result<TreeLock, GitopsError> {
    let tree = crate::layout::tree(env);
    let path = lock_path(repo, env);
    let err = |source| GitopsError::Lock {
        tree: tree.clone(),
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // Never through a link; the mode is the umask's.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(err)?;
    // SAFETY: flock on a file descriptor this function owns for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::WouldBlock {
            return Err(err(e));
        }
        // The holder writes "<pid> <command>" right after locking; it may not have yet: look a
        // few times, briefly (this only words the refusal).
        let mut text = String::new();
        for _ in 0..5 {
            text.clear();
            let _ = file.rewind();
            let _ = (&file).take(256).read_to_string(&mut text);
            if !text.trim().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut words = text.split_whitespace();
        let pid = words.next().and_then(|p| p.parse::<u32>().ok());
        let holder_command = words.next().unwrap_or("root");
        return Err(GitopsError::Locked {
            tree,
            command: holder_command.to_string(),
            holder: match pid {
                Some(pid) => format!("pid {pid}"),
                None => format!("lock file {}", path.display()),
            },
        });
    }
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{} {command}", std::process::id()))
        .map_err(err)?;
    if let Ok(mut held) = HELD.lock() {
        held.push(path.clone());
    }
    remove_kept_temps(&path);
    let lock = TreeLock { _file: file, path };
    // Whoever held the lock before and left a half-built tree beside this one is gone (the kernel
    // released its lock): clean up now, not only before the next swap.
    super::write::clean_after_interrupted(repo, env)?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid_until_the_first_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_tree(dir.path(), "e", "root").unwrap();
        assert_eq!(first.path(), dir.path().join(".platform-e.lock"));
        let e = lock_tree(dir.path(), "e", "resolve-groups").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "another `platform root` is writing clusters/e/ (pid {}); wait for it",
                std::process::id()
            )
        );
        // Another environment is another tree.
        let other = lock_tree(dir.path(), "f", "root").unwrap();
        drop(first);
        let again = lock_tree(dir.path(), "e", "resolve-groups").unwrap();
        drop((again, other));
    }

    #[test]
    fn in_a_git_work_tree_the_lock_lives_in_the_git_directory() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let sub = dir.path().join("gitops");
        std::fs::create_dir(&sub).unwrap();
        let l = lock_tree(&sub, "ai-dev", "root").unwrap();
        let git_dir = dir.path().canonicalize().unwrap().join(".git");
        assert_eq!(
            l.path().canonicalize().unwrap(),
            git_dir.join("platform/gitops/clusters/ai-dev.lock")
        );
        assert!(!sub.join(".platform-ai-dev.lock").exists());
    }

    #[test]
    fn in_a_linked_work_tree_the_lock_lives_in_its_git_directory() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path().join("main")).unwrap();
        let wt_git = dir.path().join("main/.git/worktrees/wt");
        std::fs::create_dir_all(&wt_git).unwrap();
        let wt = dir.path().join("wt");
        std::fs::create_dir(&wt).unwrap();
        std::fs::write(wt.join(".git"), "gitdir: ../main/.git/worktrees/wt\n").unwrap();
        let l = lock_tree(&wt, "ai-dev", "root").unwrap();
        assert_eq!(
            l.path().canonicalize().unwrap(),
            wt_git
                .canonicalize()
                .unwrap()
                .join("platform/clusters/ai-dev.lock")
        );
    }

    /// Issue 19 Medium 9: the leftover of an interrupted swap goes with the next lock, whatever
    /// that run writes; while another run holds the lock, its staging tree is left alone.
    #[test]
    fn taking_the_lock_removes_what_an_interrupted_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        let clusters = dir.path().join("clusters");
        for d in [
            ".e.platform-new-4242/models/m",
            ".e.platform-old-7",
            ".f.platform-new-4242",
            "e",
        ] {
            std::fs::create_dir_all(clusters.join(d)).unwrap();
        }
        std::fs::write(clusters.join(".e.platform-new-4242/models/m/a.yaml"), "x").unwrap();
        let held = lock_tree(dir.path(), "e", "root").unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&clusters)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".f.platform-new-4242", "e"]);
        // A live writer's staging tree: the second run is refused and removes nothing.
        std::fs::create_dir(clusters.join(".e.platform-new-1")).unwrap();
        assert!(lock_tree(dir.path(), "e", "root").is_err());
        assert!(clusters.join(".e.platform-new-1").exists());
        drop(held);
    }

    #[test]
    fn a_link_at_the_lock_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "keep\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(".platform-e.lock")).unwrap();
        assert!(matches!(
            lock_tree(dir.path(), "e", "root"),
            Err(GitopsError::Lock { .. })
        ));
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep\n");
    }
}
