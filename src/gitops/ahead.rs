//! The output tree read ahead: `root` lists `clusters/<env>/` and reads its files on a thread of
//! its own while the inputs load and the plan is made, work that runs on one thread and leaves a
//! core idle. Reading the 6516 files of a 1000-model tree after rendering was 35 ms of a 140 ms
//! re-render (issue 24); read ahead, the comparison looks files up in memory.
//!
//! The snapshot is a cache, never an authority of its own:
//! - it is taken by a run that holds the tree's lock (or by one that writes nothing), so nothing
//!   platform writes changes the tree between the snapshot and the comparison;
//! - it holds what it saw exactly: the listing of each directory, opened from its parent without
//!   following a link (a link is an entry, never followed), and the sha256 of each regular file,
//!   also opened without following a link (no file's text is kept: a file is compared by its sum);
//! - whatever it did not see (a link, a special file, a file over the cap or past the budget, a
//!   directory it could not list, a name that is not UTF-8) is looked at on disk as before, with
//!   the same errors;
//! - it reads at most [`consts::READ_AHEAD_BYTES`] in all, and each file up to the cap the tree's
//!   reader applies;
//! - a file whose status is the one the tree's index recorded is not read: its recorded sum is
//!   taken (`super::index` says when a file is recorded, and why that is safe).

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::io::Read;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use rustix::fs;
use sha2::{Digest, Sha256};

use super::index::{Status, TreeIndex};
use super::lock::lock_path;
use crate::consts;

/// What the read-ahead saw under `clusters/<env>/`.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Repo-relative directories listed completely (the tree's root first), none through a link.
    dirs: BTreeSet<String>,
    /// Every entry under those directories that is not a directory, repo-relative.
    entries: BTreeSet<String>,
    /// The sha256 of each regular file read (repo-relative path → sum): a file is compared by
    /// its sum, so the snapshot holds no file's text (a 1000-model tree is 9 MB).
    sums: foldhash::HashMap<String, [u8; 32]>,
    /// Directories that could not be listed (their entries are unknown).
    unlisted: BTreeSet<String>,
    /// The index for the next run: the recorded entries that still matched, and the files read
    /// that can be recorded.
    index: TreeIndex,
    /// Whether `index` differs from the one this run found.
    index_changed: bool,
}

impl Snapshot {
    /// Every file under `dir` (recursively) when `dir` was listed completely, with the directories
    /// seen on the way; None when the snapshot cannot say.
    pub fn list<'a>(&'a self, dir: &'a str) -> Option<(BTreeSet<String>, Vec<&'a str>)> {
        let prefix = format!("{dir}/");
        let unlisted_below = self
            .unlisted
            .range(prefix.clone()..)
            .next()
            .is_some_and(|d| d.starts_with(&prefix));
        if !self.dirs.contains(dir) || unlisted_below {
            return None;
        }
        let under = |p: &&String| p.starts_with(&prefix);
        let files = self.entries.range(prefix.clone()..).take_while(under);
        // Paths under `dir/` sort together (`dir-x` sorts between `dir` and `dir/`).
        let below = self.dirs.range(prefix.clone()..).take_while(under);
        let dirs = std::iter::once(dir).chain(below.map(String::as_str));
        Some((files.cloned().collect(), dirs.collect()))
    }

    /// The tree's index for the next run, when it differs from the one this run found (only a
    /// run that holds the tree's lock may save it).
    pub fn take_index_update(&mut self) -> Option<TreeIndex> {
        self.index_changed.then(|| std::mem::take(&mut self.index))
    }

    /// Whether the file `rel` held `text` when it was read (None: not read).
    pub fn holds(&self, rel: &str, text: &str) -> Option<bool> {
        let sum = self.sums.get(rel)?;
        Some(sum[..] == Sha256::digest(text.as_bytes())[..])
    }
}

/// A read-ahead under way; dropping it tells the thread to stop.
pub struct ReadAhead {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Snapshot>>,
}

impl ReadAhead {
    /// Start reading `clusters/<env>/` of `repo`. Nothing is read when the environment's name is
    /// not a valid one or the way to the tree is not made of real directories.
    pub fn start(repo: &Path, env: &str) -> ReadAhead {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = crate::names::is_dns1123_label(env)
            .then(|| {
                let (repo, env) = (repo.to_path_buf(), env.to_string());
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name("read-ahead".into())
                    .spawn(move || {
                        let index = TreeIndex::load(&index_path(&repo, &env));
                        let root = crate::layout::tree(&env);
                        let budget = consts::READ_AHEAD_BYTES;
                        snapshot(&repo, &root, &stop, budget, index, SystemTime::now())
                    })
                    .ok() // no thread: everything is read from disk
            })
            .flatten();
        ReadAhead { stop, thread }
    }

    /// The snapshot, once the thread is done (empty when it could not read anything).
    pub fn finish(mut self) -> Snapshot {
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn index_path(repo: &Path, env: &str) -> std::path::PathBuf {
    super::index::path(&lock_path(repo, env))
}

/// What `root` holds under `repo`, `index` being the tree's index and `now` the time before any
/// file is looked at.
fn snapshot(
    repo: &Path,
    root: &str,
    stop: &AtomicBool,
    budget: u64,
    index: TreeIndex,
    now: SystemTime,
) -> Snapshot {
    let mut snap = Snapshot::default();
    snap.sums.reserve(index.len());
    snap.index.reserve(index.len());
    let mut walk = Walk {
        snap,
        budget,
        buf: Vec::new(),
        stop,
        recorded: index,
        started: now,
    };
    // The way to the tree: every component a real directory (else the disk is asked, which
    // names the link); below it, each directory is opened from its parent without following a
    // link.
    if !matches!(super::inspect(repo, root), Ok(Some(meta)) if meta.is_dir()) {
        return Snapshot::default();
    }
    let Ok(fd) = fs::openat(fs::CWD, repo.join(root), DIR_FLAGS, fs::Mode::empty()) else {
        return Snapshot::default();
    };
    if !super::index::trusts_times(&fd) {
        // Every file is read, none is recorded (`super::index` says why).
        walk.recorded = TreeIndex::default();
        walk.started = SystemTime::UNIX_EPOCH;
    }
    walk.dir(fd, root.to_string(), 0);
    if stop.load(Ordering::Relaxed) {
        return Snapshot::default();
    }
    // Entries left in the old index: files gone or changed since.
    walk.snap.index_changed |= !walk.recorded.is_empty();
    walk.snap
}

const DIR_FLAGS: fs::OFlags = fs::OFlags::RDONLY
    .union(fs::OFlags::DIRECTORY)
    .union(fs::OFlags::NOFOLLOW)
    .union(fs::OFlags::CLOEXEC);

struct Walk<'a> {
    snap: Snapshot,
    budget: u64,
    buf: Vec<u8>,
    stop: &'a AtomicBool,
    /// The index the run found; an entry is taken out when its file is looked at.
    recorded: TreeIndex,
    /// Before any file was looked at (whether a file's status has settled).
    started: SystemTime,
}

impl Walk<'_> {
    /// List the directory `rel` (open as `fd`, `depth` below the tree's root), read its regular
    /// files, then its subdirectories. Deeper than a rendered tree ever goes, the disk is asked
    /// (the walk recurses, and holds a descriptor per level).
    fn dir(&mut self, fd: OwnedFd, rel: String, depth: usize) {
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        if depth > consts::READ_AHEAD_DEPTH {
            self.snap.unlisted.insert(rel);
            return;
        }
        let Ok(mut listing) = fs::Dir::new(fd) else {
            self.snap.unlisted.insert(rel);
            return;
        };
        let mut subdirs = Vec::new();
        let mut complete = true;
        while let Some(entry) = listing.read() {
            let Ok(entry) = entry else {
                complete = false;
                break;
            };
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            let Ok(dirfd) = listing.fd() else {
                complete = false;
                break;
            };
            let (Ok(text_name), kind) = (name.to_str(), kind(dirfd, &entry)) else {
                complete = false; // a name that is not UTF-8: the disk is asked
                break;
            };
            let path = format!("{rel}/{text_name}");
            match kind {
                Some(fs::FileType::Directory) => subdirs.push((name.to_owned(), path)),
                Some(fs::FileType::RegularFile) => {
                    let known = self.known(dirfd, name, &path);
                    if let Some(sum) = known.or_else(|| self.sum(dirfd, name, &path)) {
                        self.snap.sums.insert(path.clone(), sum);
                    }
                    self.snap.entries.insert(path);
                }
                Some(_) => {
                    self.snap.entries.insert(path);
                }
                None => {
                    complete = false;
                    break;
                }
            }
        }
        let Ok(dirfd) = listing.fd() else {
            self.snap.unlisted.insert(rel);
            return;
        };
        for (name, path) in subdirs {
            match fs::openat(dirfd, name.as_c_str(), DIR_FLAGS, fs::Mode::empty()) {
                Ok(fd) => self.dir(fd, path, depth + 1),
                Err(_) => {
                    self.snap.unlisted.insert(path);
                }
            }
        }
        if complete {
            self.snap.dirs.insert(rel);
        } else {
            self.snap.unlisted.insert(rel);
        }
    }

    /// The recorded sum of `path` when the file's status is still the recorded one.
    fn known(&mut self, dirfd: BorrowedFd<'_>, name: &CStr, path: &str) -> Option<[u8; 32]> {
        let (rel, status, sum) = self.recorded.take(path)?;
        let now = fs::statat(dirfd, name, fs::AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if Status::of(&now) != status {
            self.snap.index_changed = true;
            return None;
        }
        self.snap.index.keep((rel, status, sum));
        Some(sum)
    }

    /// A regular file's sha256 when it fits the cap and the budget, recorded in the index when its
    /// status (taken before reading it) has settled.
    fn sum(&mut self, dirfd: BorrowedFd<'_>, name: &CStr, path: &str) -> Option<[u8; 32]> {
        let fd = super::open_no_follow_at(dirfd, name).ok()?;
        let stat = fs::fstat(&fd).ok()?;
        let len = u64::try_from(stat.st_size).ok()?;
        if fs::FileType::from_raw_mode(stat.st_mode) != fs::FileType::RegularFile
            || len > crate::fsread::MAX_INPUT_BYTES
            || len > self.budget
        {
            return None;
        }
        // Into the one buffer the walk reuses; one byte more than fstat said: a file that grew
        // meanwhile is left to the disk.
        self.buf.clear();
        self.buf.reserve(len as usize + 1);
        std::fs::File::from(fd)
            .take(len + 1)
            .read_to_end(&mut self.buf)
            .ok()?;
        if self.buf.len() as u64 != len {
            return None;
        }
        self.budget -= len;
        let sum = Sha256::digest(&self.buf).into();
        let status = Status::of(&stat);
        if status.settled(self.started) && self.snap.index.insert(path.to_string(), status, sum) {
            self.snap.index_changed = true;
        }
        Some(sum)
    }
}

/// What an entry is, without following a link (asked when the directory does not say).
fn kind(dirfd: BorrowedFd<'_>, entry: &fs::DirEntry) -> Option<fs::FileType> {
    match entry.file_type() {
        fs::FileType::Unknown => {
            fs::statat(dirfd, entry.file_name(), fs::AtFlags::SYMLINK_NOFOLLOW)
                .ok()
                .map(|st| fs::FileType::from_raw_mode(st.st_mode))
        }
        known => Some(known),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(repo: &Path, rel: &str, text: &str) {
        let p = repo.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn take(repo: &Path, budget: u64) -> Snapshot {
        take_with(repo, budget, TreeIndex::default(), SystemTime::now())
    }

    fn take_with(repo: &Path, budget: u64, index: TreeIndex, now: SystemTime) -> Snapshot {
        snapshot(
            repo,
            "clusters/e",
            &AtomicBool::new(false),
            budget,
            index,
            now,
        )
    }

    #[test]
    fn a_snapshot_lists_without_following_links_and_sums_what_fits_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        put(repo, "clusters/e/a/x.yaml", "x\n");
        put(repo, "clusters/e/a/deeper/y.yaml", "yy\n");
        put(repo, "clusters/e/a-b/z.yaml", "z\n");
        let outside = tempfile::tempdir().unwrap();
        put(outside.path(), "o.yaml", "theirs\n");
        std::os::unix::fs::symlink(outside.path(), repo.join("clusters/e/a/link")).unwrap();

        let s = take(repo, u64::MAX);
        let (files, dirs) = s.list("clusters/e/a").unwrap();
        assert_eq!(
            files.into_iter().collect::<Vec<_>>(),
            [
                "clusters/e/a/deeper/y.yaml",
                "clusters/e/a/link",
                "clusters/e/a/x.yaml"
            ]
        );
        assert_eq!(dirs, ["clusters/e/a", "clusters/e/a/deeper"]);
        assert_eq!(s.holds("clusters/e/a/x.yaml", "x\n"), Some(true));
        assert_eq!(s.holds("clusters/e/a/x.yaml", "x2\n"), Some(false));
        // A link is listed, never read through; what was not read is not known.
        assert_eq!(s.holds("clusters/e/a/link", ""), None);
        assert_eq!(s.holds("clusters/e/a/link/o.yaml", "theirs\n"), None);
        assert!(s.list("clusters/e/a/link").is_none());
        assert!(s.list("clusters/e/missing").is_none());

        // Past the budget, files are listed but not read.
        let s = take(repo, 3);
        assert_eq!(s.list("clusters/e").unwrap().0.len(), 4);
        let read = [
            "clusters/e/a/x.yaml",
            "clusters/e/a/deeper/y.yaml",
            "clusters/e/a-b/z.yaml",
        ]
        .iter()
        .filter(|p| s.holds(p, "").is_some())
        .count();
        assert_eq!(read, 1, "3 bytes hold one of the 2-byte files, and no more");
    }

    fn status(repo: &Path, rel: &str) -> Status {
        let st = fs::statat(fs::CWD, repo.join(rel), fs::AtFlags::SYMLINK_NOFOLLOW).unwrap();
        Status::of(&st)
    }

    #[test]
    fn a_recorded_status_gives_the_recorded_sum_and_a_changed_one_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        put(repo, "clusters/e/x.yaml", "x\n");
        put(repo, "clusters/e/y.yaml", "y\n");
        let later = SystemTime::now() + consts::TREE_INDEX_SETTLED * 2;

        // Just written: read, not recorded; settled: read and recorded.
        assert!(take(repo, u64::MAX).take_index_update().is_none());
        let mut s = take_with(repo, u64::MAX, TreeIndex::default(), later);
        let mut recorded = s.take_index_update().expect("both files recorded");
        assert!(recorded.take("clusters/e/x.yaml").is_some());

        // A recorded status: the file is not read (the recorded sum is what it holds).
        let mut index = TreeIndex::default();
        let fake: [u8; 32] = Sha256::digest(b"recorded\n").into();
        index.insert(
            "clusters/e/x.yaml".into(),
            status(repo, "clusters/e/x.yaml"),
            fake,
        );
        let mut s = take_with(repo, u64::MAX, index, SystemTime::now());
        assert_eq!(s.holds("clusters/e/x.yaml", "recorded\n"), Some(true));
        assert_eq!(s.holds("clusters/e/y.yaml", "y\n"), Some(true));
        assert!(s.take_index_update().is_none(), "nothing new to record");

        // Changed since (another size, or the same size): read.
        for text in ["x2\n", "x3\n"] {
            let mut index = TreeIndex::default();
            index.insert(
                "clusters/e/x.yaml".into(),
                status(repo, "clusters/e/x.yaml"),
                fake,
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
            put(repo, "clusters/e/x.yaml", text);
            let mut s = take_with(repo, u64::MAX, index, SystemTime::now());
            assert_eq!(s.holds("clusters/e/x.yaml", text), Some(true), "{text}");
            assert!(
                s.take_index_update().is_some(),
                "the stale entry is dropped"
            );
        }
    }

    #[test]
    fn below_the_depth_limit_the_disk_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let deep = (0..=consts::READ_AHEAD_DEPTH + 1)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join("/");
        put(dir.path(), &format!("clusters/e/{deep}/x.yaml"), "x\n");
        put(dir.path(), "clusters/e/y.yaml", "y\n");
        let s = take(dir.path(), u64::MAX);
        assert!(
            s.list("clusters/e").is_none(),
            "a listing with a hole in it"
        );
        assert_eq!(s.holds("clusters/e/y.yaml", "y\n"), Some(true));
        assert_eq!(s.holds(&format!("clusters/e/{deep}/x.yaml"), "x\n"), None);
    }

    #[test]
    fn nothing_is_read_through_a_linked_tree_or_for_an_invalid_environment() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        put(outside.path(), "a/x.yaml", "x\n");
        std::fs::create_dir(dir.path().join("clusters")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("clusters/e")).unwrap();
        let s = ReadAhead::start(dir.path(), "e").finish();
        assert!(s.list("clusters/e").is_none());
        assert!(s.sums.is_empty());
        put(dir.path(), "x/y.yaml", "y\n");
        let s = ReadAhead::start(dir.path(), "../x").finish();
        assert!(s.sums.is_empty() && s.dirs.is_empty());
    }
}
