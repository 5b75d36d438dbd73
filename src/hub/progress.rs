//! Progress reporting: the [`Progress`] observer and a console implementation.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::snapshot::{HubFile, LocalSnapshot, ReadyFile, Snapshot};

/// Observer of a download. Calls come from the download task: keep them quick.
pub trait Progress: Send + Sync {
    /// Before any byte: the files to fetch with the bytes already on disk (resume), and how
    /// many files were already complete.
    fn started(&self, _snapshot: &Snapshot, _to_fetch: &[(&HubFile, u64)], _cached: usize) {}
    /// `n` more bytes of `path` are on disk.
    fn bytes(&self, _path: &str, _n: u64) {}
    /// A request failed and will be retried after `wait`.
    fn retrying(&self, _reason: &str, _wait: Duration) {}
    /// A file is verified and in place (`cached`: it already was).
    fn file_done(&self, _file: &ReadyFile, _cached: bool) {}
    fn finished(&self, _local: &LocalSnapshot) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Progress on stderr: indicatif bars on a TTY (total with throughput and ETA, one bar per file
/// in flight), periodic plain lines otherwise.
pub struct ConsoleProgress {
    inner: Mutex<Inner>,
    tty: bool,
    interval: Duration,
}

struct Inner {
    multi: MultiProgress,
    total_bar: Option<ProgressBar>,
    bars: HashMap<String, ProgressBar>,
    sizes: HashMap<String, (u64, u64)>,
    total: u64,
    done: u64,
    start: Instant,
    last_line: Instant,
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        Self::new()
    }
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

impl ConsoleProgress {
    /// Bars when stderr is a terminal, plain lines every 10 s otherwise.
    pub fn new() -> Self {
        Self::with_mode(std::io::stderr().is_terminal(), Duration::from_secs(10))
    }

    pub fn with_mode(tty: bool, interval: Duration) -> Self {
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        ConsoleProgress {
            inner: Mutex::new(Inner {
                multi: MultiProgress::with_draw_target(target),
                total_bar: None,
                bars: HashMap::new(),
                sizes: HashMap::new(),
                total: 0,
                done: 0,
                start: Instant::now(),
                last_line: Instant::now(),
            }),
            tty,
            interval,
        }
    }

    /// The terminal's progress group (None without a terminal), for bars drawn beside these.
    pub fn multi(&self) -> Option<MultiProgress> {
        self.tty.then(|| self.lock().multi.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn line(&self, s: &str) {
        let _ = writeln!(std::io::stderr(), "{s}");
    }
}

impl Progress for ConsoleProgress {
    fn started(&self, snap: &Snapshot, to_fetch: &[(&HubFile, u64)], cached: usize) {
        let mut g = self.lock();
        g.total = to_fetch.iter().map(|(f, _)| f.size).sum();
        g.done = to_fetch.iter().map(|(_, d)| d).sum();
        g.start = Instant::now();
        let short = &snap.commit[..snap.commit.len().min(12)];
        let msg = format!(
            "{}@{} ({short}): {} files to fetch ({:.1} MB, {:.1} MB already on disk), {cached} cached",
            snap.repo,
            snap.revision,
            to_fetch.len(),
            mb(g.total),
            mb(g.done)
        );
        for (f, d) in to_fetch {
            g.sizes.insert(f.path.clone(), (*d, f.size));
        }
        if self.tty {
            let _ = g.multi.println(&msg);
            let style = ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = g.multi.add(
                ProgressBar::new(g.total)
                    .with_style(style.clone())
                    .with_message("total"),
            );
            bar.set_position(g.done);
            g.total_bar = Some(bar);
            let file_style = ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            for (f, d) in to_fetch {
                let name: String = f
                    .path
                    .chars()
                    .rev()
                    .take(24)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let b = g.multi.add(
                    ProgressBar::new(f.size)
                        .with_style(file_style.clone())
                        .with_message(name),
                );
                b.set_position(*d);
                g.bars.insert(f.path.clone(), b);
            }
        } else {
            self.line(&msg);
        }
    }

    fn bytes(&self, path: &str, n: u64) {
        let mut g = self.lock();
        g.done += n;
        if let Some(e) = g.sizes.get_mut(path) {
            e.0 += n;
        }
        if self.tty {
            if let Some(b) = &g.total_bar {
                b.inc(n);
            }
            if let Some(b) = g.bars.get(path) {
                b.inc(n);
            }
        } else if g.last_line.elapsed() >= self.interval {
            g.last_line = Instant::now();
            let secs = g.start.elapsed().as_secs_f64().max(1e-3);
            let msg = format!(
                "downloaded {:.1}/{:.1} MB ({:.0}%), {:.1} MB/s",
                mb(g.done),
                mb(g.total),
                100.0 * g.done as f64 / g.total.max(1) as f64,
                mb(g.done) / secs
            );
            drop(g);
            self.line(&msg);
        }
    }

    fn retrying(&self, reason: &str, wait: Duration) {
        let msg = format!("retrying in {:.1}s: {reason}", wait.as_secs_f64());
        let g = self.lock();
        if self.tty {
            let _ = g.multi.println(msg);
        } else {
            drop(g);
            self.line(&msg);
        }
    }

    fn file_done(&self, file: &ReadyFile, cached: bool) {
        let mut g = self.lock();
        if let Some(b) = g.bars.remove(&file.path) {
            b.finish_and_clear();
            g.multi.remove(&b);
        }
        if !cached {
            let msg = format!(
                "verified {} ({:.1} MB, sha256 {})",
                file.path,
                mb(file.size),
                &file.sha256[..file.sha256.len().min(12)]
            );
            if self.tty {
                let _ = g.multi.println(msg);
            } else {
                drop(g);
                self.line(&msg);
            }
        }
    }

    fn finished(&self, local: &LocalSnapshot) {
        let g = self.lock();
        if let Some(b) = &g.total_bar {
            b.finish_and_clear();
        }
        let secs = g.start.elapsed().as_secs_f64().max(1e-3);
        let msg = if local.downloaded_bytes == 0 && local.cached_files == local.files.len() {
            format!(
                "all {} files of {}@{} already in {}: nothing downloaded",
                local.files.len(),
                local.repo,
                local.commit,
                local.dir.display()
            )
        } else {
            format!(
                "{} files of {}@{} in {} ({:.1} MB downloaded in {:.1}s, {:.1} MB/s; {} were cached)",
                local.files.len(),
                local.repo,
                local.commit,
                local.dir.display(),
                mb(local.downloaded_bytes),
                secs,
                mb(local.downloaded_bytes) / secs,
                local.cached_files
            )
        };
        // On a terminal other bars (the copy's) may still be drawn: print above them.
        if self.tty {
            let _ = g.multi.println(msg);
        } else {
            drop(g);
            self.line(&msg);
        }
    }
}
