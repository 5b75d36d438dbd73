//! Which GitOps repository a command works on when `--repo` / `PLATFORM_REPO` names none, and
//! where its git directory is.

use std::path::{Path, PathBuf};

/// The enclosing git work tree (a directory holding `.git`), else the current directory.
pub fn default_repo() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    enclosing_work_tree(&cwd).unwrap_or(cwd)
}

/// The nearest of `dir` and its ancestors that holds `.git` (a directory, or the file of a linked
/// work tree).
fn enclosing_work_tree(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// The git directory and work tree holding `dir` (absolute), found as git finds them: the nearest
/// `.git` on the way up, a directory with a `HEAD`, or a file `gitdir: <path>` (linked work trees,
/// submodules). Not libgit2: opening a repository with it loads OpenSSL's CA store first, which
/// cost more than the rest of a 1000-model re-render's writing path (issue 14).
pub fn git_dir_of(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    for d in dir.ancestors() {
        let dot = d.join(".git");
        let Ok(meta) = std::fs::metadata(&dot) else {
            continue;
        };
        if meta.is_dir() && dot.join("HEAD").is_file() {
            return Some((dot, d.to_path_buf()));
        }
        if meta.is_file() {
            let text = std::fs::read_to_string(&dot).ok()?;
            let target = text.trim().strip_prefix("gitdir:")?.trim();
            return Some((d.join(target).canonicalize().ok()?, d.to_path_buf()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_directory_holding_git_is_the_repository() {
        let top = tempfile::tempdir().unwrap();
        let deep = top.path().join("environments/ai-dev");
        std::fs::create_dir_all(&deep).unwrap();
        // (The temporary directory may itself sit in a work tree: nothing inside `top` is one.)
        assert!(enclosing_work_tree(&deep).is_none_or(|d| !d.starts_with(top.path())));
        std::fs::create_dir(top.path().join(".git")).unwrap();
        assert_eq!(enclosing_work_tree(&deep), Some(top.path().to_path_buf()));
        // A linked work tree's `.git` is a file.
        std::fs::write(top.path().join("environments/.git"), "gitdir: elsewhere\n").unwrap();
        assert_eq!(
            enclosing_work_tree(&deep),
            Some(top.path().join("environments"))
        );
    }
}
