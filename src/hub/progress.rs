//! What a download tells the user, as [`Reporter`] events: a total transfer and one per file in
//! flight, a note per verified file, retries, and a summary. Drawing is `ui::report`'s job.

use std::time::{Duration, Instant};

use super::snapshot::{HubFile, LocalSnapshot, ReadyFile, Snapshot};
use crate::report::{rate, size, Event, Reporter};
use crate::text::short_rev;

/// Id of the whole download's transfer.
pub const TOTAL: &str = "download";

/// Before any byte: the files to fetch with the bytes already on disk (resume), and how many files
/// were already complete.
pub fn started(r: &dyn Reporter, snap: &Snapshot, to_fetch: &[(&HubFile, u64)], cached: usize) {
    let total: u64 = to_fetch.iter().map(|(f, _)| f.size).sum();
    let done: u64 = to_fetch.iter().map(|(_, d)| d).sum();
    r.note(&format!(
        "{}@{} ({}): {} files to fetch ({}, {} already on disk), {cached} cached",
        snap.repo,
        snap.revision,
        short_rev(&snap.commit),
        to_fetch.len(),
        size(total),
        size(done)
    ));
    if to_fetch.is_empty() {
        return;
    }
    r.event(Event::TransferStarted {
        id: TOTAL,
        label: "download",
        total,
        done,
    });
    for (f, d) in to_fetch {
        r.event(Event::TransferStarted {
            id: &f.path,
            label: &f.path,
            total: f.size,
            done: *d,
        });
    }
}

/// `n` more bytes of `path` are on disk.
pub fn bytes(r: &dyn Reporter, path: &str, n: u64) {
    r.event(Event::Bytes { id: TOTAL, n });
    r.event(Event::Bytes { id: path, n });
}

/// A request failed and will be retried after `wait`.
pub fn retrying(r: &dyn Reporter, reason: &str, wait: Duration) {
    r.note(&format!("retrying in {:.1}s: {reason}", wait.as_secs_f64()));
}

/// A file is verified and in place (`cached`: it already was).
pub fn file_done(r: &dyn Reporter, file: &ReadyFile, cached: bool) {
    r.event(Event::TransferFinished { id: &file.path });
    if !cached {
        r.note(&format!(
            "verified {} ({}, sha256 {})",
            file.path,
            size(file.size),
            short_rev(&file.sha256)
        ));
    }
}

/// The download ended; `start`: when it began.
pub fn finished(r: &dyn Reporter, local: &LocalSnapshot, start: Instant) {
    r.event(Event::TransferFinished { id: TOTAL });
    let secs = start.elapsed().as_secs_f64();
    if local.downloaded_bytes == 0 && local.cached_files == local.files.len() {
        r.note(&format!(
            "all {} files of {}@{} already in {}: nothing downloaded",
            local.files.len(),
            local.repo,
            local.commit,
            local.dir.display()
        ));
    } else {
        r.note(&format!(
            "{} files of {}@{} in {} ({} downloaded in {secs:.1}s, {}; {} were cached)",
            local.files.len(),
            local.repo,
            local.commit,
            local.dir.display(),
            size(local.downloaded_bytes),
            rate(local.downloaded_bytes, secs),
            local.cached_files
        ));
    }
}
