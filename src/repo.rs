//! Which GitOps repository a command works on when `--repo` / `PLATFORM_REPO` names none.

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
