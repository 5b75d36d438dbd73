//! Downloads: parallel ranges, positional writes through a fixed buffer, resume, verification,
//! atomic rename into place, and the ready-file hook.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::CONTENT_RANGE;
use reqwest::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Sender;

use super::api::HubClient;
use super::auth::HubConfig;
use super::cache::{snapshot_dir, validate_file_path};
use super::consts::*;
use super::error::HubError;
use super::http::{error_chain, shown_url, Failure, Http};
use super::origin::Origin;
use super::progress;
use super::retry::RetryState;
use super::snapshot::{HubFile, LocalSnapshot, ReadyFile, Snapshot};
use super::verify::{md5_file, sha256_file, HashState, PrefixHasher, Sums};
use crate::report::Reporter;
use crate::sync::lock;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct RangeState {
    size: u64,
    range_size: u64,
    done: Vec<u64>,
}

#[derive(Clone, Copy)]
struct Chunk {
    start: u64,
    len: u64,
}

/// How much of each range is written, and the first range not complete (so the written prefix is
/// found without scanning every range of a large file).
struct Written {
    done: Vec<u64>,
    first_open: usize,
}

impl Written {
    fn new(done: Vec<u64>) -> Self {
        Written {
            done,
            first_open: 0,
        }
    }

    /// Bytes `[0, end)` are written: the end of the written prefix.
    fn prefix(&mut self, chunks: &[Chunk]) -> u64 {
        while self.first_open < chunks.len()
            && self.done[self.first_open] >= chunks[self.first_open].len
        {
            self.first_open += 1;
        }
        match chunks.get(self.first_open) {
            Some(c) => c.start + self.done[self.first_open],
            None => chunks.last().map(|c| c.start + c.len).unwrap_or(0),
        }
    }
}

/// One file being downloaded.
struct FileJob {
    file: HubFile,
    /// The file's URL for messages (no query string: a signed URL's signature is never shown).
    shown: String,
    part: PathBuf,
    state_path: PathBuf,
    dest: PathBuf,
    chunks: Vec<Chunk>,
    range_size: u64,
    handle: File,
    write_turn: Mutex<()>,
    done: Mutex<Written>,
    /// A single stream's hash, advanced by the stream itself as it writes.
    hash: Mutex<Option<HashState>>,
    /// A file in ranges: the hash on its own thread, following the written prefix.
    follower: Mutex<Follower>,
    persist: Mutex<()>,
    saved_at: Mutex<std::time::Instant>,
    remaining: AtomicUsize,
    failed: AtomicBool,
}

/// The hash of a file in ranges: started with the file's first range, over once the file is
/// verified or failed (never started again).
enum Follower {
    NotStarted,
    Running(PrefixHasher),
    Over,
}

impl FileJob {
    fn single(&self) -> bool {
        self.chunks.len() == 1
    }

    fn done_of(&self, i: usize) -> u64 {
        lock(&self.done).done[i]
    }

    /// Records `n` more bytes of chunk `i` (after they were written) and tells the hash how far
    /// the written prefix reaches; saves the resume state when the range is complete, when
    /// `save` asks, or when the last save is [`STATE_SAVE_INTERVAL`] old. The saved state never
    /// claims more than what is written.
    fn advance(&self, i: usize, n: u64, save: bool) -> std::io::Result<()> {
        if self.single() {
            lock(&self.done).done[i] += n;
            return Ok(());
        }
        let (complete, prefix) = {
            let mut d = lock(&self.done);
            d.done[i] += n;
            (d.done[i] >= self.chunks[i].len, d.prefix(&self.chunks))
        };
        if let Follower::Running(h) = &*lock(&self.follower) {
            h.written(prefix);
        }
        let due = save || complete || lock(&self.saved_at).elapsed() >= STATE_SAVE_INTERVAL;
        if due {
            self.save_state()?;
        }
        Ok(())
    }

    fn save_state(&self) -> std::io::Result<()> {
        let _g = lock(&self.persist);
        // Another stream may have saved a newer state meanwhile: save what is true now.
        let done = lock(&self.done).done.clone();
        let st = RangeState {
            size: self.file.size,
            range_size: self.range_size,
            done,
        };
        let tmp = self.state_path.with_extension("state.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&st).unwrap_or_default())?;
        std::fs::rename(&tmp, &self.state_path)?;
        *lock(&self.saved_at) = std::time::Instant::now();
        Ok(())
    }

    /// Starts the hash of a file in ranges (once, with its first range), from what earlier runs
    /// wrote.
    fn start_follower(&self) -> std::io::Result<()> {
        let mut follower = lock(&self.follower);
        if self.single() || !matches!(*follower, Follower::NotStarted) {
            return Ok(());
        }
        *follower = Follower::Over; // also when it cannot start: the file fails then
        let h = PrefixHasher::start(
            self.handle.try_clone()?,
            self.file.size,
            HashState::for_file(&self.file),
        )?;
        h.written(lock(&self.done).prefix(&self.chunks));
        *follower = Follower::Running(h);
        Ok(())
    }

    /// The follower, taken out (a failed file's hash stops when it is dropped).
    fn end_follower(&self) -> Option<PrefixHasher> {
        match std::mem::replace(&mut *lock(&self.follower), Follower::Over) {
            Follower::Running(h) => Some(h),
            _ => None,
        }
    }

    /// A single stream's hash takes the batch just written (it follows what the hash has seen,
    /// or, after a resume, the hash reads the bytes before it back first).
    fn hash_written(&self, batch: &Batch) -> std::io::Result<()> {
        if !self.single() {
            return Ok(());
        }
        let mut g = lock(&self.hash);
        let Some(hs) = g.as_mut() else { return Ok(()) };
        if hs.upto() < batch.offset {
            let mut scratch = Vec::with_capacity(WRITE_BUFFER);
            hs.catch_up(&self.handle, batch.end(), &mut scratch)?;
            return Ok(());
        }
        let mut offset = batch.offset;
        for part in &batch.parts {
            hs.feed(offset, part);
            offset += part.len() as u64;
        }
        Ok(())
    }

    /// The file's sha256 (and MD5) once every range is written: from the follower, or by reading
    /// back what the single stream's hash has not seen.
    fn finish_hash(&self) -> std::io::Result<Sums> {
        if let Some(h) = self.end_follower() {
            h.written(lock(&self.done).prefix(&self.chunks));
            return h.finish();
        }
        let hs = lock(&self.hash).take();
        let mut hs = hs.unwrap_or_else(|| HashState::for_file(&self.file));
        let mut scratch = Vec::with_capacity(WRITE_BUFFER);
        hs.catch_up(&self.handle, self.file.size, &mut scratch)?;
        Ok(hs.finish_all())
    }

    /// Truncates a single-stream partial file (the server ignored or refused our Range).
    fn restart_single(&self) -> std::io::Result<()> {
        self.handle.set_len(0)?;
        *lock(&self.done) = Written::new(vec![0]);
        *lock(&self.hash) = Some(HashState::for_file(&self.file));
        Ok(())
    }

    fn remove_partial(&self) {
        let _ = std::fs::remove_file(&self.part);
        let _ = std::fs::remove_file(&self.state_path);
    }
}

/// What one download run works with: the transport, its settings, the source the files come
/// from, the snapshot and the reporter.
struct Ctx<'a> {
    http: &'a Http,
    config: &'a HubConfig,
    origin: &'a dyn Origin,
    snap: &'a Snapshot,
    progress: &'a dyn Reporter,
}

enum Prepared {
    Cached(ReadyFile),
    Job(Arc<FileJob>),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HubError + '_ {
    move |e| HubError::io(path, e)
}

/// Classifies one file of the snapshot: already in `final_dir` with the right size (kept, hashed
/// when the Hub gave no sha256), or a job downloading it through `partial_dir`, resuming what an
/// earlier run left there.
fn prepare(
    file: &HubFile,
    shown: String,
    final_dir: &Path,
    partial_dir: &Path,
    range_size: u64,
) -> Result<Prepared, HubError> {
    let dest = final_dir.join(&file.path);
    if let Some(ready) = cached_file(file, &dest)? {
        return Ok(Prepared::Cached(ready));
    }
    let part = partial_dir.join(format!("{}{PART_SUFFIX}", file.path));
    let state_path = partial_dir.join(format!("{}{STATE_SUFFIX}", file.path));
    let handle = open_partial(&part)?;
    let split = range_size > 0 && file.size > range_size;
    let (chunks, done) = if split {
        resume_ranges(file, &handle, &part, &state_path, range_size)?
    } else {
        let _ = std::fs::remove_file(&state_path);
        resume_single(file, &handle, &part)?
    };
    Ok(Prepared::Job(Arc::new(FileJob {
        file: file.clone(),
        shown,
        part,
        state_path,
        dest,
        remaining: AtomicUsize::new(chunks.len()),
        chunks,
        range_size,
        handle,
        write_turn: Mutex::new(()),
        done: Mutex::new(Written::new(done)),
        hash: Mutex::new(Some(HashState::for_file(file))),
        follower: Mutex::new(Follower::NotStarted),
        persist: Mutex::new(()),
        saved_at: Mutex::new(std::time::Instant::now()),
        failed: AtomicBool::new(false),
    })))
}

/// The file at `dest` when it is a regular file of the snapshot's size: the check every download
/// makes before fetching (the sha256 is the Hub's, or computed here when the Hub gave none).
fn cached_file(file: &HubFile, dest: &Path) -> Result<Option<ReadyFile>, HubError> {
    let Ok(meta) = std::fs::metadata(dest) else {
        return Ok(None);
    };
    if !meta.is_file() || meta.len() != file.size {
        return Ok(None);
    }
    let sha256 = match &file.sha256 {
        Some(s) => s.clone(),
        None => sha256_file(dest).map_err(io_err(dest))?,
    };
    Ok(Some(ReadyFile {
        path: file.path.clone(),
        local_path: dest.to_path_buf(),
        size: file.size,
        sha256,
    }))
}

/// Opens (creating it and its directories) the partial file at `part` without truncating it, so
/// what an earlier run wrote can be resumed.
fn open_partial(part: &Path) -> Result<File, HubError> {
    if let Some(parent) = part.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(part)
        .map_err(io_err(part))
}

/// Cuts a file of `size` bytes into ranges of `range_size` (the last one shorter).
fn split_chunks(size: u64, range_size: u64) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < size {
        let len = range_size.min(size - start);
        chunks.push(Chunk { start, len });
        start += len;
    }
    chunks
}

/// The ranges of a file downloaded in parallel and how much of each is written: the saved resume
/// state when it matches this file, these ranges and a partial file of full length, else nothing
/// (the partial file is emptied). The partial file is sized to the whole file for positional writes.
fn resume_ranges(
    file: &HubFile,
    handle: &File,
    part: &Path,
    state_path: &Path,
    range_size: u64,
) -> Result<(Vec<Chunk>, Vec<u64>), HubError> {
    let part_len = handle.metadata().map_err(io_err(part))?.len();
    let chunks = split_chunks(file.size, range_size);
    let saved: Option<RangeState> = std::fs::read(state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let done = match saved {
        Some(s)
            if s.size == file.size
                && s.range_size == range_size
                && s.done.len() == chunks.len()
                && part_len == file.size
                && s.done.iter().zip(&chunks).all(|(d, c)| *d <= c.len) =>
        {
            s.done
        }
        _ => {
            // Only a file with bytes in it is emptied: ext4 flushes a file truncated to zero
            // when it is closed (auto_da_alloc), which would stall the end of every download.
            if part_len > 0 {
                handle.set_len(0).map_err(io_err(part))?;
            }
            vec![0; chunks.len()]
        }
    };
    handle.set_len(file.size).map_err(io_err(part))?;
    Ok((chunks, done))
}

/// The one range of a file downloaded in a single stream and how much of it is written: the
/// partial file's length, unless it is longer than the file (then it is emptied).
fn resume_single(
    file: &HubFile,
    handle: &File,
    part: &Path,
) -> Result<(Vec<Chunk>, Vec<u64>), HubError> {
    let part_len = handle.metadata().map_err(io_err(part))?.len();
    let have = if part_len > file.size {
        handle.set_len(0).map_err(io_err(part))?;
        0
    } else {
        part_len
    };
    Ok((
        vec![Chunk {
            start: 0,
            len: file.size,
        }],
        vec![have],
    ))
}

enum StreamEnd {
    Retry(String),
    Fatal(HubError),
}

/// Bytes received for chunk `i` at `offset`, as they came off the connection (no copy).
struct Batch {
    offset: u64,
    parts: Vec<Bytes>,
    len: u64,
}

impl Batch {
    fn new(offset: u64) -> Self {
        Batch {
            offset,
            parts: Vec::new(),
            len: 0,
        }
    }

    fn end(&self) -> u64 {
        self.offset + self.len
    }

    fn push(&mut self, b: Bytes) {
        self.len += b.len() as u64;
        self.parts.push(b);
    }
}

/// Writes a batch at its offset with one positional vectored write (more when the kernel takes
/// part of it), records it and advances the hash.
fn write_batch(job: &FileJob, i: usize, batch: &Batch, save: bool) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> = batch
        .parts
        .iter()
        .map(|b| std::io::IoSlice::new(b))
        .collect();
    let mut rest = &mut slices[..];
    let mut at = batch.offset;
    // The kernel writes a file's pages one writer at a time (the inode lock) and spins while it
    // waits: the streams of a file take turns here instead, asleep.
    let turn = lock(&job.write_turn);
    while !rest.is_empty() {
        let n = rustix::io::pwritev(&job.handle, &rest[..rest.len().min(MAX_IOVECS)], at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        at += n as u64;
        std::io::IoSlice::advance_slices(&mut rest, n);
    }
    drop(turn);
    job.advance(i, batch.len, save)?;
    job.hash_written(batch)
}

/// One stream's writes: one batch on the blocking pool while the next one fills, so the
/// connection is read while the disk is written. Batches of a chunk are written in order.
struct Writes<'a> {
    ctx: &'a Ctx<'a>,
    job: &'a Arc<FileJob>,
    i: usize,
    inflight: Option<(u64, tokio::task::JoinHandle<std::io::Result<()>>)>,
}

impl Writes<'_> {
    /// Waits for the write in flight and reports its bytes.
    async fn settle(&mut self) -> Result<(), HubError> {
        let Some((n, h)) = self.inflight.take() else {
            return Ok(());
        };
        h.await
            .map_err(|e| HubError::Task(e.to_string()))?
            .map_err(io_err(&self.job.part))?;
        progress::bytes(self.ctx.progress, &self.job.file.path, n);
        Ok(())
    }

    /// Starts writing `batch` once the previous write is done.
    async fn start(&mut self, batch: Batch, save: bool) -> Result<(), HubError> {
        self.settle().await?;
        let (j, i, n) = (Arc::clone(self.job), self.i, batch.len);
        let h = tokio::task::spawn_blocking(move || write_batch(&j, i, &batch, save));
        self.inflight = Some((n, h));
        Ok(())
    }
}

async fn stream_body(
    ctx: &Ctx<'_>,
    job: &Arc<FileJob>,
    i: usize,
    resp: Response,
    start: u64,
) -> Result<(), StreamEnd> {
    let chunk = job.chunks[i];
    let end = chunk.start + chunk.len;
    let mut writes = Writes {
        ctx,
        job,
        i,
        inflight: None,
    };
    let mut batch = Batch::new(start);
    let mut body = resp.bytes_stream();
    let mut outcome = Ok(());
    while let Some(item) = body.next().await {
        match item {
            Ok(bytes) => {
                if bytes.len() as u64 > end - batch.end() {
                    outcome = Err(StreamEnd::Fatal(HubError::Protocol {
                        url: job.shown.clone(),
                        reason: format!(
                            "{}: the server sent more than the {} bytes expected",
                            job.file.path, job.file.size
                        ),
                    }));
                    break;
                }
                batch.push(bytes);
                if batch.len >= WRITE_BATCH || batch.parts.len() >= MAX_IOVECS {
                    let next = Batch::new(batch.end());
                    let full = std::mem::replace(&mut batch, next);
                    writes.start(full, false).await.map_err(StreamEnd::Fatal)?;
                }
            }
            Err(e) => {
                outcome = Err(StreamEnd::Retry(format!(
                    "{}: {}",
                    job.shown,
                    error_chain(&e.without_url())
                )));
                break;
            }
        }
    }
    // Keep what arrived, even when the connection broke (and save the state for a later run).
    writes.start(batch, true).await.map_err(StreamEnd::Fatal)?;
    writes.settle().await.map_err(StreamEnd::Fatal)?;
    outcome?;
    if job.done_of(i) < chunk.len {
        return Err(StreamEnd::Retry(format!(
            "{}: connection closed early",
            job.shown
        )));
    }
    Ok(())
}

fn content_range_start(resp: &Response) -> Option<u64> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

/// Downloads chunk `i` of `job` from where it stands, retrying broken connections and the
/// failures worth retrying within the policy's budget (reset whenever bytes arrive).
async fn run_chunk(ctx: &Ctx<'_>, job: &Arc<FileJob>, i: usize) -> Result<(), HubError> {
    let chunk = job.chunks[i];
    let mut retry = RetryState::new(&ctx.config.retry);
    loop {
        let done = job.done_of(i);
        if done >= chunk.len {
            return Ok(());
        }
        let start = chunk.start + done;
        let range = range_header(job, chunk, start);
        // Asked for at every attempt: a source that signs its URLs signs each one afresh, so a
        // signature never expires during a long run.
        let url = ctx.origin.file_url(ctx.snap, &job.file)?;
        let answer = retry
            .bounded(&job.shown, ctx.http.get(&url, range.as_deref()))
            .await?;
        let failure = match answer {
            Ok(resp) => {
                accept_answer(job, &resp, range.as_deref(), start)?;
                match receive(ctx, job, i, resp, &mut retry).await? {
                    None => return Ok(()),
                    Some(f) => f,
                }
            }
            Err(f) => f,
        };
        after_failure(ctx, job, &mut retry, failure).await?;
    }
}

/// The `Range` to ask for from `start` in `chunk`: open-ended for a single stream (none from the
/// start), bounded to the chunk when the file is downloaded in ranges.
fn range_header(job: &FileJob, chunk: Chunk, start: u64) -> Option<String> {
    if job.single() {
        (start > 0).then(|| format!("bytes={start}-"))
    } else {
        Some(format!("bytes={start}-{}", chunk.start + chunk.len - 1))
    }
}

/// Checks the answer is the bytes asked for: a 206 from `start`, or a 200 to a single stream
/// (which then starts over from byte 0). Anything else would put bytes at the wrong place.
fn accept_answer(
    job: &FileJob,
    resp: &Response,
    range: Option<&str>,
    start: u64,
) -> Result<(), HubError> {
    let status = resp.status().as_u16();
    let ok = match (range.is_some(), status) {
        (false, _) => true,
        (true, 206) => content_range_start(resp) == Some(start),
        (true, 200) if job.single() => {
            job.restart_single().map_err(io_err(&job.part))?;
            true
        }
        _ => false,
    };
    if !ok {
        return Err(HubError::Protocol {
            url: job.shown.clone(),
            reason: format!(
                "{}: the server did not honour `Range: {}` (HTTP {status})",
                job.file.path,
                range.unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// Streams the answer's body into chunk `i`: `None` when the chunk is complete, the failure to
/// retry when the connection broke (resetting the retry budget when bytes arrived meanwhile).
async fn receive(
    ctx: &Ctx<'_>,
    job: &Arc<FileJob>,
    i: usize,
    resp: Response,
    retry: &mut RetryState<'_>,
) -> Result<Option<Failure>, HubError> {
    let before = job.done_of(i);
    match stream_body(ctx, job, i, resp, job.chunks[i].start + before).await {
        Ok(()) => Ok(None),
        Err(StreamEnd::Fatal(e)) => Err(e),
        Err(StreamEnd::Retry(reason)) => {
            if job.done_of(i) > before {
                retry.reset();
            }
            Ok(Some(Failure::Retry { reason, wait: None }))
        }
    }
}

/// Decides what a failed attempt means: wait and try again (telling the reporter), start a single
/// stream over (416: the partial file is longer than the server's), or give up with the error
/// naming the repo, commit and file.
async fn after_failure(
    ctx: &Ctx<'_>,
    job: &FileJob,
    retry: &mut RetryState<'_>,
    failure: Failure,
) -> Result<(), HubError> {
    let snap = ctx.snap;
    match failure {
        Failure::Retry { reason, wait } => {
            let (d, line) = retry.failed(&job.shown, reason, wait)?;
            progress::retrying(ctx.progress, &line, d);
            tokio::time::sleep(d).await;
            Ok(())
        }
        Failure::Status { status: 416, .. } if job.single() => {
            job.restart_single().map_err(io_err(&job.part))
        }
        Failure::Status {
            status,
            url,
            body,
            token_sent,
        } => Err(ctx
            .origin
            .status_error(snap, &job.file.path, status, &url, body, token_sent)),
        Failure::Fatal(e) => Err(e),
    }
}

/// All ranges are in: finish the hash, verify, rename into place.
async fn finalize(ctx: &Ctx<'_>, job: &Arc<FileJob>) -> Result<ReadyFile, HubError> {
    let j = Arc::clone(job);
    let (actual, md5) = tokio::task::spawn_blocking(move || j.finish_hash())
        .await
        .map_err(|e| HubError::Task(e.to_string()))?
        .map_err(io_err(&job.part))?;
    let len = std::fs::metadata(&job.part)
        .map_err(io_err(&job.part))?
        .len();
    let snap = ctx.snap;
    if len != job.file.size {
        job.remove_partial();
        return Err(HubError::SizeMismatch {
            repo: snap.repo.clone(),
            commit: snap.commit.clone(),
            path: job.file.path.clone(),
            expected: job.file.size,
            actual: len,
        });
    }
    if let Some(expected) = &job.file.sha256 {
        if *expected != actual {
            job.remove_partial();
            return Err(HubError::HashMismatch {
                repo: snap.repo.clone(),
                commit: snap.commit.clone(),
                path: job.file.path.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    if let (Some(expected), Some(actual)) = (&job.file.md5, md5) {
        if *expected != actual {
            job.remove_partial();
            return Err(HubError::Md5Mismatch {
                repo: snap.repo.clone(),
                path: job.file.path.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    if let Some(parent) = job.dest.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::rename(&job.part, &job.dest).map_err(io_err(&job.dest))?;
    let _ = std::fs::remove_file(&job.state_path);
    Ok(ReadyFile {
        path: job.file.path.clone(),
        local_path: job.dest.clone(),
        size: job.file.size,
        sha256: actual,
    })
}

/// Removes the partial directory tree if nothing is left in it.
fn prune_empty(dir: &Path, stop: &Path) {
    let mut d = dir.to_path_buf();
    while d.starts_with(stop) {
        if std::fs::remove_dir(&d).is_err() {
            break;
        }
        if !d.pop() {
            break;
        }
    }
}

fn prune_partial_tree(root: &Path) {
    fn walk(d: &Path) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(d);
    }
    walk(root);
}

/// A file of a snapshot that already exists in a directory and differs from the snapshot's: a
/// download into that directory would replace it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// Path in the snapshot (and relative to the directory).
    pub path: String,
    /// How it differs (`another size: …`, `a directory`, …).
    pub why: String,
    /// Whether it can be replaced (a file or a symlink; a directory cannot).
    pub replaceable: bool,
}

/// The files of `snap` that exist in `dir` and differ from the snapshot's (not a regular file,
/// another size, or another sha256 for an LFS file): what [`HubClient::download_to_dir`] would
/// overwrite. A file equal to the snapshot's (LFS: same sha256; others: same size, the check every
/// download makes) is not one: the download keeps it. Hashes files of the right size.
pub async fn conflicts_in(snap: &Snapshot, dir: &Path) -> Result<Vec<Conflict>, HubError> {
    let files = snap.files.clone();
    let repo = snap.repo.clone();
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for f in &files {
            validate_file_path(&repo, &f.path)?;
            let dest = dir.join(&f.path);
            let meta = match std::fs::symlink_metadata(&dest) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                // A parent that is a file: creating the file will fail and say so.
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(HubError::io(&dest, e)),
            };
            let conflict = |why: String, replaceable: bool| Conflict {
                path: f.path.clone(),
                why,
                replaceable,
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                out.push(conflict("a symlink".into(), true));
            } else if ft.is_dir() {
                out.push(conflict("a directory".into(), false));
            } else if !ft.is_file() {
                out.push(conflict("not a regular file".into(), false));
            } else if meta.len() != f.size {
                out.push(conflict(
                    format!("{} bytes, the snapshot's has {}", meta.len(), f.size),
                    true,
                ));
            } else if let Some(want) = &f.sha256 {
                if sha256_file(&dest).map_err(io_err(&dest))? != *want {
                    out.push(conflict("another sha256".into(), true));
                }
            } else if let Some(want) = &f.md5 {
                if md5_file(&dest).map_err(io_err(&dest))? != *want {
                    out.push(conflict("another MD5".into(), true));
                }
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| HubError::Task(e.to_string()))?
}

/// Remove the replaceable `conflicts` from `dir` (files and symlinks; a symlink's target is left
/// alone), so a download puts the snapshot's files there. A directory in the way is an error.
pub fn remove_conflicts(dir: &Path, conflicts: &[Conflict]) -> Result<(), HubError> {
    for c in conflicts {
        let p = dir.join(&c.path);
        if !c.replaceable {
            return Err(HubError::io(
                &p,
                std::io::Error::other(format!("{} is in the way: move it away", c.why)),
            ));
        }
        std::fs::remove_file(&p).map_err(io_err(&p))?;
    }
    Ok(())
}

impl HubClient {
    /// Downloads `snap` into the cache (`<cache>/<org>--<name>/<commit>/`).
    pub async fn download(
        &self,
        snap: &Snapshot,
        progress: &dyn Reporter,
        ready: Option<Sender<ReadyFile>>,
    ) -> Result<LocalSnapshot, HubError> {
        let dir = snapshot_dir(&self.config.cache_dir, &snap.repo, &snap.commit)?;
        self.engine()
            .download_cached(snap, &dir, progress, ready)
            .await
    }

    /// Downloads `snap` straight into `dir` (partial files under `dir/.partial/`).
    pub async fn download_to_dir(
        &self,
        snap: &Snapshot,
        dir: &Path,
        progress: &dyn Reporter,
        ready: Option<Sender<ReadyFile>>,
    ) -> Result<LocalSnapshot, HubError> {
        self.engine()
            .download_to_dir(snap, dir, progress, ready)
            .await
    }

    fn engine(&self) -> Engine<'_> {
        Engine {
            http: &self.http,
            config: &self.config,
            origin: self,
        }
    }
}

/// The download engine, whatever the source: a snapshot's files (path, size, expected digests)
/// fetched from the URLs `origin` gives, in parallel ranges, resumed, retried, verified, put in
/// place and handed to the consumer as each one is ready.
pub(crate) struct Engine<'a> {
    pub(crate) http: &'a Http,
    pub(crate) config: &'a HubConfig,
    pub(crate) origin: &'a dyn Origin,
}

impl Engine<'_> {
    /// Downloads `snap` into the cache directory `dir` (`<repo dir>/<commit>`), partial files in
    /// `<repo dir>/.partial/<commit>/`.
    pub(crate) async fn download_cached(
        &self,
        snap: &Snapshot,
        dir: &Path,
        progress: &dyn Reporter,
        ready: Option<Sender<ReadyFile>>,
    ) -> Result<LocalSnapshot, HubError> {
        let repo_dir = dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.to_path_buf());
        let partial = repo_dir.join(PARTIAL_DIR).join(&snap.commit);
        let out = self
            .download_into(snap, dir, &partial, progress, ready)
            .await;
        prune_empty(&partial, &repo_dir);
        out
    }

    /// Downloads `snap` straight into `dir` (partial files under `dir/.partial/`).
    pub(crate) async fn download_to_dir(
        &self,
        snap: &Snapshot,
        dir: &Path,
        progress: &dyn Reporter,
        ready: Option<Sender<ReadyFile>>,
    ) -> Result<LocalSnapshot, HubError> {
        let partial = dir.join(PARTIAL_DIR);
        let out = self
            .download_into(snap, dir, &partial, progress, ready)
            .await;
        prune_partial_tree(&partial);
        out
    }

    /// Downloads the files of `snap` missing from `final_dir` through `partial_dir`, telling
    /// `progress` and `ready` about each file once it is in place (the cached ones first); the
    /// files are listed in the snapshot's order. Every file is tried: the errors are returned
    /// together.
    async fn download_into(
        &self,
        snap: &Snapshot,
        final_dir: &Path,
        partial_dir: &Path,
        progress: &dyn Reporter,
        ready: Option<Sender<ReadyFile>>,
    ) -> Result<LocalSnapshot, HubError> {
        let (cached, jobs) = self.classify(snap, final_dir, partial_dir)?;
        let start = std::time::Instant::now();
        let already = announce(progress, snap, &cached, &jobs, ready.as_ref()).await;
        let ctx = Ctx {
            http: self.http,
            config: self.config,
            origin: self.origin,
            snap,
            progress,
        };
        let (fetched, errors) = run_jobs(&ctx, jobs, ready.as_ref()).await;
        if let Some(e) = one_error(errors) {
            return Err(e);
        }
        let local = local_snapshot(snap, final_dir, cached, fetched, already);
        progress::finished(progress, &local, start);
        Ok(local)
    }

    /// Sorts the files of `snap` into those already in `final_dir` and the jobs fetching the
    /// others (each path checked first: a snapshot cannot write outside `final_dir`).
    fn classify(
        &self,
        snap: &Snapshot,
        final_dir: &Path,
        partial_dir: &Path,
    ) -> Result<(Vec<ReadyFile>, Vec<Arc<FileJob>>), HubError> {
        let mut cached = Vec::new();
        let mut jobs = Vec::new();
        for f in &snap.files {
            validate_file_path(&snap.repo, &f.path)?;
            let shown = shown_url(&self.origin.file_url(snap, f)?);
            match prepare(f, shown, final_dir, partial_dir, self.config.range_size)? {
                Prepared::Cached(r) => cached.push(r),
                Prepared::Job(j) => jobs.push(j),
            }
        }
        Ok((cached, jobs))
    }
}

/// Tells `progress` what is to fetch (and what an earlier run left to resume) and hands the cached
/// files to `progress` and `ready` at once; returns the bytes already written by earlier runs.
async fn announce(
    progress: &dyn Reporter,
    snap: &Snapshot,
    cached: &[ReadyFile],
    jobs: &[Arc<FileJob>],
    ready: Option<&Sender<ReadyFile>>,
) -> u64 {
    let resumed: Vec<(&HubFile, u64)> = jobs
        .iter()
        .map(|j| (&j.file, lock(&j.done).done.iter().sum::<u64>()))
        .collect();
    progress::started(progress, snap, &resumed, cached.len());
    for r in cached {
        progress::file_done(progress, r, true);
        if let Some(tx) = ready {
            let _ = tx.send(r.clone()).await;
        }
    }
    resumed.iter().map(|(_, d)| d).sum()
}

/// Runs every chunk of every job, the configured concurrency at a time,
/// small files first so the consumer gets something at once, then ranges file by file. Returns
/// the files completed and the errors met (a file stops at its first error, the others go on).
async fn run_jobs(
    ctx: &Ctx<'_>,
    mut jobs: Vec<Arc<FileJob>>,
    ready: Option<&Sender<ReadyFile>>,
) -> (Vec<ReadyFile>, Vec<HubError>) {
    jobs.sort_by_key(|j| (j.chunks.len() > 1, j.file.size));
    let tasks: Vec<(Arc<FileJob>, usize)> = jobs
        .iter()
        .flat_map(|j| (0..j.chunks.len()).map(move |i| (Arc::clone(j), i)))
        .collect();
    let mut results = futures::stream::iter(tasks)
        .map(|(job, i)| run_task(ctx, job, i, ready))
        .buffer_unordered(ctx.config.concurrency.max(1));
    let mut done_files = Vec::new();
    let mut errors = Vec::new();
    while let Some(r) = results.next().await {
        match r {
            Ok(Some(f)) => done_files.push(f),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    (done_files, errors)
}

/// Downloads chunk `i` of `job` (skipped once the file failed); the task finishing the file's last
/// chunk verifies it, puts it in place and hands it to the reporter and `ready`. An error marks
/// the file failed so its other chunks stop.
async fn run_task(
    ctx: &Ctx<'_>,
    job: Arc<FileJob>,
    i: usize,
    ready: Option<&Sender<ReadyFile>>,
) -> Result<Option<ReadyFile>, HubError> {
    if job.failed.load(Ordering::SeqCst) {
        return Ok(None);
    }
    let fetched = async {
        job.start_follower().map_err(io_err(&job.part))?;
        run_chunk(ctx, &job, i).await
    };
    let out = match fetched.await {
        Ok(()) if job.remaining.fetch_sub(1, Ordering::SeqCst) == 1 => {
            finalize(ctx, &job).await.map(Some)
        }
        Ok(()) => Ok(None),
        Err(e) => Err(e),
    };
    match out {
        Ok(Some(r)) => {
            progress::file_done(ctx.progress, &r, false);
            if let Some(tx) = ready {
                let _ = tx.send(r.clone()).await;
            }
            Ok(Some(r))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            job.failed.store(true, Ordering::SeqCst);
            // Its hash stops now rather than when the run ends.
            drop(job.end_follower());
            Err(e)
        }
    }
}

/// The error to return for `errors`: none, the only one, or [`HubError::Several`] keeping the
/// first.
fn one_error(errors: Vec<HubError>) -> Option<HubError> {
    let count = errors.len();
    let first = errors.into_iter().next()?;
    Some(if count == 1 {
        first
    } else {
        HubError::Several {
            count,
            first: Box::new(first),
        }
    })
}

/// The snapshot as it is in `final_dir`: the cached and fetched files in the snapshot's order,
/// and the bytes this run downloaded (neither cached nor written by an earlier run).
fn local_snapshot(
    snap: &Snapshot,
    final_dir: &Path,
    cached: Vec<ReadyFile>,
    fetched: Vec<ReadyFile>,
    already: u64,
) -> LocalSnapshot {
    let cached_files = cached.len();
    let cached_bytes: u64 = cached.iter().map(|c| c.size).sum();
    let mut files = cached;
    files.extend(fetched);
    let order: std::collections::HashMap<&str, usize> = snap
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_str(), i))
        .collect();
    files.sort_by_key(|f| order.get(f.path.as_str()).copied().unwrap_or(usize::MAX));
    LocalSnapshot {
        repo: snap.repo.clone(),
        commit: snap.commit.clone(),
        dir: final_dir.to_path_buf(),
        files,
        downloaded_bytes: snap
            .total_bytes()
            .saturating_sub(cached_bytes)
            .saturating_sub(already),
        cached_files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn ranged_job(dir: &Path) -> Arc<FileJob> {
        let file = HubFile {
            path: "model.safetensors".into(),
            size: 4 * 1024,
            sha256: None,
            md5: None,
        };
        match prepare(
            &file,
            "http://127.0.0.1/x".into(),
            &dir.join("final"),
            &dir.join("partial"),
            1024,
        )
        .unwrap()
        {
            Prepared::Job(j) => j,
            Prepared::Cached(_) => panic!("nothing is cached"),
        }
    }

    fn saved(job: &FileJob) -> Option<Vec<u64>> {
        let b = std::fs::read(&job.state_path).ok()?;
        Some(serde_json::from_slice::<RangeState>(&b).ok()?.done)
    }

    #[test]
    fn resume_state_is_saved_on_range_end_and_stream_end_not_on_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let job = ranged_job(dir.path());
        assert_eq!(job.chunks.len(), 4);
        job.advance(0, 100, false).unwrap();
        job.advance(1, 200, false).unwrap();
        assert_eq!(
            saved(&job),
            None,
            "a write in the middle of a range is not saved at once"
        );
        job.advance(0, 924, false).unwrap();
        assert_eq!(
            saved(&job),
            Some(vec![1024, 200, 0, 0]),
            "a finished range is saved"
        );
        job.advance(1, 50, false).unwrap();
        assert_eq!(saved(&job), Some(vec![1024, 200, 0, 0]));
        // A stream that ends (connection lost) saves what it wrote.
        job.advance(1, 0, true).unwrap();
        assert_eq!(saved(&job), Some(vec![1024, 250, 0, 0]));
        // Another run picks the saved state up.
        job.handle.write_all_at(&[0u8; 4], 4 * 1024 - 4).unwrap();
        drop(job);
        let again = ranged_job(dir.path());
        assert_eq!(lock(&again.done).done, vec![1024, 250, 0, 0]);
    }

    #[test]
    fn the_written_prefix_ends_at_the_first_range_not_complete() {
        let chunks = split_chunks(4 * 1024, 1024);
        let mut w = Written::new(vec![0; 4]);
        assert_eq!(w.prefix(&chunks), 0);
        w.done[1] = 1024;
        w.done[0] = 1000;
        assert_eq!(w.prefix(&chunks), 1000);
        w.done[0] = 1024;
        w.done[2] = 5;
        assert_eq!(w.prefix(&chunks), 2048 + 5);
        w.done[2] = 1024;
        w.done[3] = 1024;
        assert_eq!(w.prefix(&chunks), 4 * 1024);
        assert_eq!(w.first_open, 4);
    }

    #[test]
    fn a_batch_of_many_small_buffers_is_written_in_place_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let job = ranged_job(dir.path());
        // More buffers than one pwritev takes, into the second range.
        let mut batch = Batch::new(1024);
        let bytes: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
        for piece in bytes.chunks(1) {
            batch.push(Bytes::copy_from_slice(piece));
        }
        assert!(batch.parts.len() > MAX_IOVECS);
        write_batch(&job, 1, &batch, false).unwrap();
        let mut back = vec![0u8; 1024];
        job.handle.read_exact_at(&mut back, 1024).unwrap();
        assert_eq!(back, bytes);
        assert_eq!(lock(&job.done).done, vec![0, 1024, 0, 0]);
    }

    #[test]
    fn a_stale_resume_state_is_saved_after_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let job = ranged_job(dir.path());
        *lock(&job.saved_at) = std::time::Instant::now() - STATE_SAVE_INTERVAL;
        job.advance(2, 10, false).unwrap();
        assert_eq!(saved(&job), Some(vec![0, 0, 10, 0]));
    }
}
