//! Progress of the copy onto the volume: the [`CopyProgress`] observer and a console implementation
//! (a bar beside the download's on a TTY, periodic lines otherwise).

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::StagedFile;

/// Observer of a copy. `sent` is called from blocking threads: keep it quick.
pub trait CopyProgress: Send + Sync {
    /// `n` more bytes of file data went to the pod.
    fn sent(&self, _n: u64) {}
    /// These files are on the volume and their sha256 checked in the pod.
    fn verified(&self, _files: &[StagedFile]) {}
    /// The copy ended (clear what is drawn; the command prints its own summary).
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCopyProgress;

impl CopyProgress for NoCopyProgress {}

/// On stderr: a bar (added to the download's [`MultiProgress`] when there is one, so the two draw
/// together) on a TTY, a line every `interval` otherwise.
pub struct ConsoleCopyProgress {
    bar: Option<ProgressBar>,
    state: Mutex<State>,
    interval: Duration,
    /// Where the files go, for the lines (`PVC ns/name`).
    target: String,
}

struct State {
    sent: u64,
    total: u64,
    verified: u64,
    start: Instant,
    last_line: Instant,
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

impl ConsoleCopyProgress {
    /// `multi`: the terminal's progress group (None: plain lines).
    pub fn new(
        multi: Option<&MultiProgress>,
        total: u64,
        target: String,
        interval: Duration,
    ) -> Self {
        let bar = multi.map(|m| {
            let style = ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            m.add(
                ProgressBar::new(total)
                    .with_style(style)
                    .with_message("copy to volume"),
            )
        });
        ConsoleCopyProgress {
            bar,
            state: Mutex::new(State {
                sent: 0,
                total,
                verified: 0,
                start: Instant::now(),
                last_line: Instant::now(),
            }),
            interval,
            target,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(s),
            None => {
                let _ = writeln!(std::io::stderr(), "{s}");
            }
        }
    }
}

impl CopyProgress for ConsoleCopyProgress {
    fn sent(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
            return;
        }
        let mut g = self.lock();
        g.sent += n;
        if g.last_line.elapsed() >= self.interval {
            g.last_line = Instant::now();
            let secs = g.start.elapsed().as_secs_f64().max(1e-3);
            let msg = format!(
                "copied {:.1}/{:.1} MB ({:.0}%) to {}, {:.1} MB/s, {:.1} MB verified",
                mb(g.sent),
                mb(g.total),
                100.0 * g.sent as f64 / g.total.max(1) as f64,
                self.target,
                mb(g.sent) / secs,
                mb(g.verified)
            );
            drop(g);
            self.line(&msg);
        }
    }

    fn verified(&self, files: &[StagedFile]) {
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        self.lock().verified += bytes;
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let shown = if names.len() > 3 {
            format!("{}, … ({} files)", names[..3].join(", "), names.len())
        } else {
            names.join(", ")
        };
        self.line(&format!(
            "verified on the volume: {shown} ({:.1} MB)",
            mb(bytes)
        ));
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sent_and_verified_bytes_without_a_terminal() {
        let p = ConsoleCopyProgress::new(None, 300, "PVC ns/x".into(), Duration::from_secs(3600));
        p.sent(100);
        p.sent(50);
        p.verified(&[StagedFile {
            path: "a".into(),
            size: 150,
            sha256: "0".into(),
        }]);
        let g = p.lock();
        assert_eq!((g.sent, g.total, g.verified), (150, 300, 150));
    }
}
