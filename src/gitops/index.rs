//! The output tree's index: for each file `root` read under `clusters/<env>/`, its status
//! (device, inode, mode, size, modification and change times) and the sha256 of what was read. A
//! later read-ahead that finds a file with the very same status takes the recorded sum instead of
//! reading the file: one stat(2) instead of open, fstat, read, read, close (reading the 6516 files
//! of a 1000-model tree kept a core busy for 60–90 ms of a re-render, issue 24). git's index
//! skips unchanged files the same way.
//!
//! A cache, never an authority:
//! - a file is recorded only from a read, with the status taken before reading it: a change
//!   during or after the read gives the file another change time, and the entry no longer matches;
//! - only when its status last changed at least [`consts::TREE_INDEX_SETTLED`] before the read:
//!   file times come from a coarse clock (and some filesystems keep whole seconds), so a change in
//!   the same tick as the recorded one could keep every time the same;
//! - the change time (ctime) is set by the kernel on every write, rename, link or chmod, and no
//!   program can set it; the modification time (which `touch -d` can) is compared as well;
//! - only on a local filesystem that keeps such a ctime from the local clock ([`trusts_times`]):
//!   on NFS, SMB, 9p, virtiofs or FUSE the server's clock sets the times (or there is no ctime,
//!   as on sshfs), and FAT and exFAT have none (`touch -r` gives a file its old times back);
//!   there every file is read, as without an index;
//! - an index that cannot be read or parsed is ignored (every file is read, as without one);
//! - it is written only by a run that holds the tree's lock and wrote nothing (after a write,
//!   the files' times have changed: the next run reads them and records them), to a temporary
//!   file renamed over the old one, beside the lock file (`.git/platform/clusters/<env>.index`),
//!   never in the tree.
//!
//! Known limit, as for git: a system clock set back can give a changed file a recorded status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::lock::TreeLock;
use crate::consts;

/// The first line of an index file (a format this build does not know is ignored).
const HEADER: &str = "platform tree index 1";

/// What stat(2) says of a file, as far as the index compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    dev: u64,
    ino: u64,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Status {
    /// The fields' types differ by architecture: each is widened to one type.
    #[allow(clippy::unnecessary_cast)]
    pub fn of(st: &rustix::fs::Stat) -> Status {
        Status {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            mode: st.st_mode as u32,
            size: st.st_size as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    /// Whether both times are at least [`consts::TREE_INDEX_SETTLED`] before `now`.
    pub fn settled(&self, now: SystemTime) -> bool {
        let Some(limit) = now
            .checked_sub(consts::TREE_INDEX_SETTLED)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        else {
            return false;
        };
        let before = |(s, ns): (i64, i64)| {
            let (Ok(s), Ok(ns)) = (u64::try_from(s), u32::try_from(ns)) else {
                return false;
            };
            ns < 1_000_000_000 && Duration::new(s, ns) <= limit
        };
        before(self.mtime) && before(self.ctime)
    }
}

/// Repo-relative path → the file's status and the sha256 of its text (foldhash: the keys are
/// the tree's own paths, and SipHash was a tenth of the read-ahead).
#[derive(Debug, Default)]
pub struct TreeIndex {
    entries: foldhash::HashMap<String, (Status, [u8; 32])>,
}

impl TreeIndex {
    /// The index at `path`; empty when it is missing, too large or not one this build writes.
    pub fn load(path: &Path) -> TreeIndex {
        crate::fsread::read_text(path, crate::fsread::MAX_INPUT_BYTES, "tree index")
            .ok()
            .and_then(|text| TreeIndex::parse(&text))
            .unwrap_or_default()
    }

    /// Take the entry of `rel` out of the index, with its key (for [`TreeIndex::keep`]).
    pub fn take(&mut self, rel: &str) -> Option<(String, Status, [u8; 32])> {
        self.entries
            .remove_entry(rel)
            .map(|(rel, (status, sum))| (rel, status, sum))
    }

    /// Keep an entry taken out of an index (its path is one an index holds: no line break).
    pub fn keep(&mut self, (rel, status, sum): (String, Status, [u8; 32])) {
        debug_assert!(!rel.contains('\n'), "{rel:?}");
        self.entries.insert(rel, (status, sum));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Room for `n` more entries (a run records about as many files as the last one).
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
    }

    /// Record `rel`; false for a path with a line break in it (not recorded: it is read every
    /// time).
    pub fn insert(&mut self, rel: String, status: Status, sum: [u8; 32]) -> bool {
        if rel.contains('\n') {
            return false;
        }
        self.entries.insert(rel, (status, sum));
        true
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write the index of the tree `lock` holds ([`path`]): a temporary file beside it, renamed
    /// over it (a reader sees the old index or the new one). Not flushed: after a crash, an index
    /// that is empty, old or unreadable only makes the next run read more. The error names the
    /// index, never the temporary file.
    pub fn save(&self, lock: &TreeLock) -> Result<(), (PathBuf, std::io::Error)> {
        let path = path(lock.path());
        self.write(&path)
            .map_err(|e| (path, crate::fsread::without_temp_path(e)))
    }

    fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(&super::lock::temp_prefix(path))
            .tempfile_in(dir)?;
        tmp.write_all(self.render().as_bytes())?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut rows: Vec<_> = self.entries.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = String::with_capacity(64 + rows.len() * 200);
        out.push_str(HEADER);
        out.push('\n');
        for (rel, (s, sum)) in rows {
            crate::text::push_hex(&mut out, sum);
            let _ = writeln!(
                out,
                " {} {} {} {} {} {} {} {} {rel}",
                s.dev, s.ino, s.mode, s.size, s.mtime.0, s.mtime.1, s.ctime.0, s.ctime.1
            );
        }
        out
    }

    /// None when any line is not one [`TreeIndex::render`] writes.
    fn parse(text: &str) -> Option<TreeIndex> {
        // Lines end at '\n' only (a path may end in '\r'); the text ends with one.
        let mut lines = text.strip_suffix('\n')?.split('\n');
        if lines.next()? != HEADER {
            return None;
        }
        let mut entries = foldhash::HashMap::default();
        entries.reserve(text.len() / 200);
        for line in lines {
            let (rel, status, sum) = parse_line(line)?;
            entries.insert(rel.to_string(), (status, sum));
        }
        Some(TreeIndex { entries })
    }
}

fn parse_line(line: &str) -> Option<(&str, Status, [u8; 32])> {
    let mut f = line.splitn(10, ' ');
    let sum = unhex(f.next()?)?;
    let status = Status {
        dev: field(&mut f)?,
        ino: field(&mut f)?,
        mode: field(&mut f)?,
        size: field(&mut f)?,
        mtime: (field(&mut f)?, field(&mut f)?),
        ctime: (field(&mut f)?, field(&mut f)?),
    };
    let rel = f.next().filter(|r| !r.is_empty())?;
    Some((rel, status, sum))
}

fn field<'a, T: std::str::FromStr>(f: &mut impl Iterator<Item = &'a str>) -> Option<T> {
    f.next()?.parse().ok()
}

/// Whether the filesystem holding `fd` keeps times the index can trust: a ctime the kernel sets on
/// every change, from this machine's clock (ext2/3/4, XFS, Btrfs, tmpfs, overlayfs, ZFS, F2FS).
pub fn trusts_times(fd: impl std::os::fd::AsFd) -> bool {
    const LOCAL: [u64; 7] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // XFS
        0x9123_683E, // Btrfs
        0x0102_1994, // tmpfs
        0x794C_7630, // overlayfs
        0x2FC1_2FC1, // ZFS
        0xF2F5_2010, // F2FS
    ];
    // The field's type differs by architecture.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::fstatfs(fd).is_ok_and(|s| LOCAL.contains(&(s.f_type as u64)))
}

/// Where the index of a tree lives: beside the tree's lock file (`super::lock::lock_path`).
pub fn path(lock_file: &Path) -> PathBuf {
    super::lock::Kept::Index.path(lock_file)
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(ctime: i64) -> Status {
        Status {
            dev: u64::MAX,
            ino: 7,
            mode: 0o100644,
            size: 3,
            mtime: (ctime - 5, 999_999_999),
            ctime: (ctime, 0),
        }
    }

    #[test]
    fn an_index_reads_back_what_it_wrote_and_ignores_anything_else() {
        let mut index = TreeIndex::default();
        index.insert("clusters/e/a b.yaml".into(), status(100), [0xab; 32]);
        index.insert("clusters/e/x.yaml".into(), status(200), [1; 32]);
        index.insert("clusters/e/new\nline".into(), status(300), [2; 32]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.index");
        index.write(&path).unwrap();
        let mut back = TreeIndex::load(&path);
        assert_eq!(back.entries.len(), 2);
        assert_eq!(
            back.take("clusters/e/a b.yaml").map(|(_, s, sum)| (s, sum)),
            Some((status(100), [0xab; 32]))
        );
        assert_eq!(
            back.take("clusters/e/x.yaml").map(|(_, s, sum)| (s, sum)),
            Some((status(200), [1; 32]))
        );

        let text = std::fs::read_to_string(&path).unwrap();
        for broken in [
            text.replacen(HEADER, "platform tree index 2", 1),
            text.replacen(" 7 ", " seven ", 1),
            text.replacen("abab", "zz", 1),
            format!("{text}{}\n", "0".repeat(64)),
            String::new(),
        ] {
            std::fs::write(&path, broken).unwrap();
            assert!(TreeIndex::load(&path).is_empty());
        }
        assert!(TreeIndex::load(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn times_are_trusted_on_a_local_filesystem_only() {
        let shm = std::fs::File::open("/dev/shm").unwrap();
        assert!(trusts_times(&shm), "tmpfs");
        let proc = std::fs::File::open("/proc/self").unwrap();
        assert!(!trusts_times(&proc), "procfs");
    }

    #[test]
    fn a_status_is_settled_only_well_after_both_times() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let settled = consts::TREE_INDEX_SETTLED.as_secs();
        let s = status(1000);
        assert!(s.settled(at(1000 + settled)));
        assert!(!s.settled(at(1000 + settled - 1)));
        let future_mtime = Status {
            mtime: (5000, 0),
            ..s.clone()
        };
        assert!(!future_mtime.settled(at(1000 + settled)));
        assert!(!Status {
            ctime: (-1, 0),
            ..s
        }
        .settled(at(1000 + settled)));
    }
}
