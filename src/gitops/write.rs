//! Applying a change set to `clusters/<env>/`: all of it or none of it, even across a crash.
//!
//! One changed or added file is written to a temporary file beside its target, fsynced and renamed
//! over it (a rename is atomic). Anything else (more files, or a removal): the whole new tree is
//! built beside the old one (`clusters/.<env>.platform-new-…`: unchanged files hard-linked, new
//! ones written, stale ones left out), flushed to disk (each new file's data, or one `syncfs(2)`
//! for many), and swapped with the old tree by one `renameat2(RENAME_EXCHANGE)`; then the old tree
//! is removed. A crash before the swap leaves the old tree, after it the new one; never a mix.
//! What an interrupted run left beside the tree is cleaned up by the next writer (they hold the
//! tree's lock).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{inspect_known, ChangeKind, ChangeSet, GitopsError, KnownDirs};
use crate::render::RenderedTree;

/// Apply `set` (computed against the disk for `tree`) to `repo`. A symbolic link on the way to any
/// changed path is refused before anything is written. New files get the mode the umask gives
/// (0644 under umask 022).
pub fn apply(repo: &Path, tree: &RenderedTree, set: &ChangeSet) -> Result<(), GitopsError> {
    let known = KnownDirs::default();
    for c in &set.changes {
        inspect_known(repo, &c.path, &known)?;
    }
    match set.changes.as_slice() {
        [] => Ok(()),
        [one] if one.kind != ChangeKind::Delete => {
            write_one_file(repo, &one.path, tree.text(&one.path))
        }
        _ => Swap::prepare(repo, set)?.commit(tree, set),
    }
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> GitopsError + '_ {
    move |source| GitopsError::Write {
        path: path.to_path_buf(),
        source: crate::fsread::without_temp_path(source),
    }
}

/// One file: a temporary file beside it, written and fsynced, renamed over it, the directory
/// fsynced.
fn write_one_file(repo: &Path, rel: &str, text: &str) -> Result<(), GitopsError> {
    use std::os::unix::fs::PermissionsExt;
    let target = repo.join(rel);
    let dir = target.parent().unwrap_or(repo);
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    // tempfile creates 0600 files by default; ask for 0666 at open(2) so the umask decides, as for
    // any file a command writes.
    let tmp = tempfile::Builder::new()
        .prefix(".platform-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(write_err(&target))?;
    let mut f = tmp.as_file();
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(write_err(&target))?;
    tmp.persist(&target)
        .map_err(|e| write_err(&target)(e.error))?;
    sync_dir(dir).map_err(write_err(dir))
}

/// The new tree being built beside the old one; removed on drop unless swapped in.
struct Swap {
    /// `repo/clusters/<env>`.
    root: PathBuf,
    /// `repo/clusters/.<env>.platform-new-<pid>`: the new tree until the swap, the old one after.
    staging: PathBuf,
    /// The tree's path relative to the repo (`clusters/<env>`), to map change paths into staging.
    rel_root: String,
}

impl Drop for Swap {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

const NEW: &str = "platform-new-";
const OLD: &str = "platform-old-";

impl Swap {
    /// Clean what an interrupted run left, create the staging directory and fill it with every
    /// file of the old tree that the change set does not touch (hard links).
    fn prepare(repo: &Path, set: &ChangeSet) -> Result<Swap, GitopsError> {
        let rel_root = tree_of(set)?;
        let root = repo.join(&rel_root);
        let parent = root.parent().unwrap_or(repo).to_path_buf();
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::fs::create_dir_all(&parent).map_err(write_err(&parent))?;
        recover(&parent, &name, &root)?;
        let staging = parent.join(format!(".{name}.{NEW}{}", std::process::id()));
        std::fs::create_dir(&staging).map_err(write_err(&staging))?;
        let swap = Swap {
            root,
            staging,
            rel_root,
        };
        let touched: HashSet<&str> = set
            .changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Add)
            .filter_map(|c| swap.inside(&c.path))
            .collect();
        if swap.root.is_dir() {
            mirror(&swap.root, &swap.staging, Path::new(""), &touched)?;
        }
        Ok(swap)
    }

    /// A change path relative to the tree, None when it is outside.
    fn inside<'a>(&self, path: &'a str) -> Option<&'a str> {
        path.strip_prefix(self.rel_root.as_str())?.strip_prefix('/')
    }

    /// Write the new and changed files, drop directories the stale files leave empty, flush, swap.
    fn commit(self, tree: &RenderedTree, set: &ChangeSet) -> Result<(), GitopsError> {
        let written: Vec<_> = set
            .changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Delete)
            .collect();
        // A few files: flush each (the journal orders the links, directories and the swap after
        // them). Many: one syncfs, which also flushes whatever else is dirty on the filesystem.
        let each = written.len() <= crate::consts::WRITE_SYNC_EACH_MAX;
        for c in written {
            let rel = self.inside(&c.path).unwrap_or_default();
            write_new(&self.staging.join(rel), tree.text(&c.path), each)?;
        }
        for c in set.changes.iter().filter(|c| c.kind == ChangeKind::Delete) {
            let rel = self.inside(&c.path).unwrap_or_default();
            let mut dir = self.staging.join(rel);
            // Directories left empty, up to the tree itself (an empty tree is removed below).
            while dir.pop() && dir.starts_with(&self.staging) && std::fs::remove_dir(&dir).is_ok() {
            }
        }
        let empty = !self.staging.exists();
        if empty {
            std::fs::create_dir(&self.staging).map_err(write_err(&self.staging))?;
        }
        if !each {
            sync_filesystem(&self.staging).map_err(write_err(&self.staging))?;
        }
        let parent = self.root.parent().unwrap_or(Path::new("."));
        if self.root.exists() {
            exchange(&self.staging, &self.root).map_err(write_err(&self.root))?;
        } else {
            std::fs::rename(&self.staging, &self.root).map_err(write_err(&self.root))?;
        }
        sync_dir(parent).map_err(write_err(parent))?;
        if empty {
            let _ = std::fs::remove_dir(&self.root);
        }
        Ok(()) // drop removes the old tree, now at the staging path
    }
}

/// `clusters/<env>`: the one tree every path of the change set lies in.
fn tree_of(set: &ChangeSet) -> Result<String, GitopsError> {
    let root_of = |p: &str| {
        let mut parts = p.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(c), Some(env), Some(_))
                if c == crate::consts::CLUSTERS_DIR && !env.is_empty() =>
            {
                Some(format!("{c}/{env}"))
            }
            _ => None,
        }
    };
    let mut root = None;
    for c in &set.changes {
        let r = root_of(&c.path);
        if r.is_none() || (root.is_some() && r != root) {
            return Err(GitopsError::BadPath {
                path: c.path.clone(),
            });
        }
        root = r;
    }
    root.ok_or_else(|| GitopsError::BadPath {
        path: String::new(),
    })
}

/// Remove what an interrupted writer left beside `clusters/<env>` of `repo` (see [`recover`]): run by
/// every command as soon as it holds the tree's lock, whatever it then writes (nothing, one file or
/// a swap), so a leftover never outlives the next run. Only inside a real `clusters/` directory:
/// a link there is left for the write itself to refuse with its path.
pub(super) fn clean_after_interrupted(repo: &Path, env: &str) -> Result<(), GitopsError> {
    let clusters = crate::consts::CLUSTERS_DIR;
    match super::inspect(repo, clusters) {
        Ok(Some(meta)) if meta.is_dir() => {}
        _ => return Ok(()),
    }
    let root = repo.join(crate::layout::tree(env));
    recover(&repo.join(clusters), env, &root)
}

/// Remove what an interrupted writer left beside `root` (`.<env>.platform-new-*` or `-old-*`). A
/// run interrupted between moving the old tree away and moving the new one in (only where the
/// filesystem cannot exchange two directories) left no `root`: the old tree is put back.
fn recover(parent: &Path, name: &str, root: &Path) -> Result<(), GitopsError> {
    let entries = match std::fs::read_dir(parent) {
        Ok(e) => e,
        Err(source) => {
            return Err(GitopsError::Read {
                path: parent.to_path_buf(),
                source,
            })
        }
    };
    let prefix = format!(".{name}.");
    let mut leftovers: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix(&prefix)
                .is_some_and(|rest| rest.starts_with(NEW) || rest.starts_with(OLD))
        })
        .map(|e| e.path())
        .collect();
    leftovers.sort();
    if !root.exists() {
        let old = leftovers
            .iter()
            .find(|p| p.to_string_lossy().contains(&format!("{prefix}{OLD}")));
        if let Some(old) = old {
            std::fs::rename(old, root).map_err(write_err(root))?;
        }
    }
    for p in leftovers.iter().filter(|p| p.exists()) {
        std::fs::remove_dir_all(p).map_err(|source| GitopsError::Remove {
            path: p.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Recreate `from/rel` under `to/rel`: directories with their mode, every other entry (files, and
/// links or special files platform leaves alone) hard-linked, except the paths in `skip`.
fn mirror(from: &Path, to: &Path, rel: &Path, skip: &HashSet<&str>) -> Result<(), GitopsError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = from.join(rel);
    let read_err = |source| GitopsError::Read {
        path: dir.clone(),
        source,
    };
    let mode = std::fs::symlink_metadata(&dir)
        .map_err(read_err)?
        .permissions()
        .mode();
    let target = to.join(rel);
    if !rel.as_os_str().is_empty() {
        std::fs::create_dir(&target).map_err(write_err(&target))?;
    }
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
        .map_err(write_err(&target))?;
    for entry in std::fs::read_dir(&dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let child = rel.join(entry.file_name());
        if entry.file_type().map_err(read_err)?.is_dir() {
            mirror(from, to, &child, skip)?;
        } else if !skip.contains(child.to_string_lossy().as_ref()) {
            link_or_copy(&from.join(&child), &to.join(&child))?;
        }
    }
    Ok(())
}

/// A hard link (same inode: nothing is copied); a copy where the filesystem or its protections
/// refuse links (regular files only; a link or special file is re-created as what it is).
fn link_or_copy(from: &Path, to: &Path) -> Result<(), GitopsError> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(from).map_err(|source| GitopsError::Read {
        path: from.to_path_buf(),
        source,
    })?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(from).map_err(|source| GitopsError::Read {
            path: from.to_path_buf(),
            source,
        })?;
        return std::os::unix::fs::symlink(target, to).map_err(write_err(to));
    }
    if !ft.is_file() {
        return Err(GitopsError::NotAFile {
            path: from.to_path_buf(),
            what: "a special file (FIFO, socket or device) that cannot be linked",
        });
    }
    std::fs::copy(from, to).map(drop).map_err(write_err(to))
}

/// A new file in the staging tree (its directories created as needed), flushed when `sync` (else
/// the one syncfs before the swap flushes it).
fn write_new(path: &Path, text: &str, sync: bool) -> Result<(), GitopsError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    }
    let mut f = std::fs::File::create(path).map_err(write_err(path))?;
    f.write_all(text.as_bytes()).map_err(write_err(path))?;
    if sync {
        f.sync_data().map_err(write_err(path))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Flush every file written on the filesystem holding `dir` to disk (syncfs(2) on Linux).
fn sync_filesystem(dir: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let d = std::fs::File::open(dir)?;
        // SAFETY: syncfs only reads the descriptor, which lives until the end of this block.
        if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        Ok(())
    }
}

/// Swap two directories in one step. Where the filesystem cannot (no RENAME_EXCHANGE, or not
/// Linux): move `b` away to a `-old-` name, move `a` into place, move the old tree to `a`'s path
/// (a crash in between leaves no `b`; the next writer puts the old tree back, see [`recover`]).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
        let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
        // SAFETY: two NUL-terminated paths that outlive the call; no pointer is kept.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if !matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
        ) {
            return Err(e);
        }
    }
    exchange_by_renames(a, b)
}

/// [`exchange`] in three renames.
fn exchange_by_renames(a: &Path, b: &Path) -> std::io::Result<()> {
    let old = b.with_file_name(
        a.file_name()
            .map(|n| n.to_string_lossy().replace(NEW, OLD))
            .unwrap_or_default(),
    );
    std::fs::rename(b, &old)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&old, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::diff;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn gen(s: &str) -> String {
        format!("{}\n{s}\n", crate::consts::GENERATED_MARKER)
    }

    fn tree(files: &[(&str, String)]) -> RenderedTree {
        RenderedTree {
            files: files
                .iter()
                .map(|(p, c)| (p.to_string(), c.clone()))
                .collect::<BTreeMap<_, _>>(),
            owned: ["clusters/e/a.yaml", "clusters/e/m/", "clusters/e/n/"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn read(repo: &Path, rel: &str) -> String {
        std::fs::read_to_string(repo.join(rel)).unwrap()
    }

    fn leftovers(repo: &Path) -> Vec<String> {
        std::fs::read_dir(repo.join("clusters"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "e")
            .collect()
    }

    #[test]
    fn a_swap_keeps_what_it_does_not_own_and_leaves_nothing_beside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        let t1 = tree(&[
            ("clusters/e/a.yaml", gen("a")),
            ("clusters/e/m/x/b.yaml", gen("b")),
            ("clusters/e/m/y/c.yaml", gen("c")),
        ]);
        apply(repo, &t1, &diff(repo, &t1).unwrap()).unwrap();
        // A user's file and link, and a directory mode of theirs, in the tree.
        std::fs::write(repo.join("clusters/e/m/x/notes.txt"), "mine\n").unwrap();
        std::os::unix::fs::symlink("a.yaml", repo.join("clusters/e/link")).unwrap();
        std::fs::set_permissions(
            repo.join("clusters/e/m"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        let unchanged_inode = |repo: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(repo.join("clusters/e/a.yaml"))
                .unwrap()
                .ino()
        };
        let before = unchanged_inode(repo);

        let t2 = tree(&[
            ("clusters/e/a.yaml", gen("a")),
            ("clusters/e/m/x/b.yaml", gen("b2")),
            ("clusters/e/n/d.yaml", gen("d")),
        ]);
        let set = diff(repo, &t2).unwrap();
        assert_eq!(set.changes.len(), 3, "{set:?}");
        apply(repo, &t2, &set).unwrap();
        assert!(diff(repo, &t2).unwrap().is_empty());
        assert_eq!(read(repo, "clusters/e/m/x/b.yaml"), gen("b2"));
        assert_eq!(read(repo, "clusters/e/m/x/notes.txt"), "mine\n");
        assert_eq!(
            std::fs::read_link(repo.join("clusters/e/link")).unwrap(),
            Path::new("a.yaml")
        );
        let mode = std::fs::metadata(repo.join("clusters/e/m"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        assert!(
            !repo.join("clusters/e/m/y").exists(),
            "emptied directory kept"
        );
        assert_eq!(
            unchanged_inode(repo),
            before,
            "an unchanged file was rewritten"
        );
        assert!(leftovers(repo).is_empty(), "{:?}", leftovers(repo));

        // Every file removed: the tree goes.
        std::fs::remove_file(repo.join("clusters/e/m/x/notes.txt")).unwrap();
        std::fs::remove_file(repo.join("clusters/e/link")).unwrap();
        let t3 = tree(&[]);
        apply(repo, &t3, &diff(repo, &t3).unwrap()).unwrap();
        assert!(!repo.join("clusters/e").exists());
        assert!(leftovers(repo).is_empty());
    }

    #[test]
    fn a_failed_write_changes_nothing_and_leaves_nothing_beside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        let t1 = tree(&[
            ("clusters/e/a.yaml", gen("a")),
            ("clusters/e/b.yaml", gen("b")),
        ]);
        apply(repo, &t1, &diff(repo, &t1).unwrap()).unwrap();
        // `n/c.yaml` cannot be written: `n` is a file of the new tree.
        let t2 = tree(&[
            ("clusters/e/a.yaml", gen("a")),
            ("clusters/e/b.yaml", gen("b2")),
            ("clusters/e/n", gen("n")),
            ("clusters/e/n/c.yaml", gen("c")),
        ]);
        let set = diff(repo, &t2).unwrap();
        assert!(apply(repo, &t2, &set).is_err());
        assert_eq!(read(repo, "clusters/e/b.yaml"), gen("b"));
        assert!(leftovers(repo).is_empty(), "{:?}", leftovers(repo));
    }

    #[test]
    fn the_next_writer_cleans_up_after_an_interrupted_one() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        let clusters = repo.join("clusters");
        let t1 = tree(&[
            ("clusters/e/a.yaml", gen("a")),
            ("clusters/e/b.yaml", gen("b")),
        ]);
        apply(repo, &t1, &diff(repo, &t1).unwrap()).unwrap();
        // Interrupted while building the new tree, and after a swap before removing the old one.
        std::fs::create_dir_all(clusters.join(".e.platform-new-1/x")).unwrap();
        std::fs::create_dir_all(clusters.join(".e.platform-old-2")).unwrap();
        // Another environment's tree and a user's entry are not ours to clean.
        std::fs::create_dir_all(clusters.join(".f.platform-new-3")).unwrap();
        std::fs::create_dir_all(clusters.join(".e.mine")).unwrap();
        let t2 = tree(&[
            ("clusters/e/a.yaml", gen("a2")),
            ("clusters/e/b.yaml", gen("b2")),
        ]);
        apply(repo, &t2, &diff(repo, &t2).unwrap()).unwrap();
        let mut left = leftovers(repo);
        left.sort();
        assert_eq!(left, vec![".e.mine", ".f.platform-new-3"]);

        // Interrupted between the renames of the fallback exchange: the old tree is put back
        // before anything else, then the new render applies to it.
        let staging = clusters.join(".e.platform-new-9");
        std::fs::create_dir(&staging).unwrap();
        std::fs::write(staging.join("a.yaml"), gen("half")).unwrap();
        std::fs::rename(clusters.join("e"), clusters.join(".e.platform-old-9")).unwrap();
        let t3 = tree(&[
            ("clusters/e/a.yaml", gen("a3")),
            ("clusters/e/b.yaml", gen("b2")),
        ]);
        let set = diff(repo, &t3).unwrap();
        assert_eq!(set.changes.len(), 2, "{set:?}"); // against an empty tree
        apply(repo, &t3, &set).unwrap();
        assert_eq!(read(repo, "clusters/e/a.yaml"), gen("a3"));
        assert_eq!(read(repo, "clusters/e/b.yaml"), gen("b2"));
        let mut left = leftovers(repo);
        left.sort();
        assert_eq!(left, vec![".e.mine", ".f.platform-new-3"]);
    }

    #[test]
    fn the_fallback_exchange_swaps_two_directories() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join(".e.platform-new-1");
        let b = dir.path().join("e");
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("new"), "").unwrap();
        std::fs::write(b.join("old"), "").unwrap();
        exchange_by_renames(&a, &b).unwrap();
        assert!(b.join("new").exists() && a.join("old").exists());
        assert!(!dir.path().join(".e.platform-old-1").exists());
    }
}
