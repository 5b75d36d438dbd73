//! The two [`Reporter`]s: [`Terminal`] (indicatif spinners and bars through one `MultiProgress`,
//! only on a TTY) and [`Lines`] (one line per event on stderr, transfers every `interval`). Pick one
//! with [`reporter`].

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{rate, size, Event, Reporter, Silent};
use crate::sync::lock;

/// How often [`Lines`] says how a transfer is going.
pub const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// The reporter for this invocation: nothing under `-q` but warnings, bars on a terminal, lines
/// otherwise; details with `-v`.
pub fn reporter(quiet: bool, verbose: u8) -> Arc<dyn Reporter> {
    if quiet {
        return Arc::new(WarningsOnly);
    }
    if std::io::stderr().is_terminal() {
        Arc::new(Terminal::new(verbose > 0))
    } else {
        Arc::new(Lines::new(verbose > 0, LINE_INTERVAL))
    }
}

/// `inner`, its events' suggested commands naming the environment and the target as `hint` says.
pub fn with_hint(inner: Arc<dyn Reporter>, hint: crate::envs::Hint) -> Arc<dyn Reporter> {
    Arc::new(Hinted { inner, hint })
}

struct Hinted {
    inner: Arc<dyn Reporter>,
    hint: crate::envs::Hint,
}

impl Reporter for Hinted {
    fn event(&self, e: Event<'_>) {
        let h = |t: &str| self.hint.apply(t);
        match e {
            Event::Step(t) => self.inner.event(Event::Step(&h(t))),
            Event::Note(t) => self.inner.event(Event::Note(&h(t))),
            Event::Detail(t) => self.inner.event(Event::Detail(&h(t))),
            Event::Warning(t) => self.inner.event(Event::Warning(&h(t))),
            Event::State { item, state, done } => self.inner.event(Event::State {
                item,
                state: &h(state),
                done,
            }),
            other => self.inner.event(other),
        }
    }
}

fn eprint_line(s: &str) {
    let _ = writeln!(std::io::stderr(), "{s}");
}

/// `-q`: warnings only.
struct WarningsOnly;

impl Reporter for WarningsOnly {
    fn event(&self, e: Event<'_>) {
        if let Event::Warning(w) = e {
            eprint_line(&format!("warning: {w}"));
        }
        Silent.event(e);
    }
}

/// Item states already shown, so a state is printed only when it changes.
#[derive(Default)]
struct Seen(Mutex<BTreeMap<String, String>>);

impl Seen {
    fn changed(&self, item: &str, state: &str) -> bool {
        let mut g = lock(&self.0);
        if g.get(item).map(String::as_str) == Some(state) {
            return false;
        }
        g.insert(item.to_string(), state.to_string());
        true
    }
}

/// One line per event.
pub struct Lines {
    verbose: bool,
    interval: Duration,
    seen: Seen,
    transfers: Mutex<BTreeMap<String, LineTransfer>>,
}

struct LineTransfer {
    label: String,
    total: u64,
    done: u64,
    start_done: u64,
    start: Instant,
    last: Instant,
}

impl Lines {
    pub fn new(verbose: bool, interval: Duration) -> Lines {
        Lines {
            verbose,
            interval,
            seen: Seen::default(),
            transfers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Bytes done of a transfer (for tests).
    pub fn transferred(&self, id: &str) -> Option<u64> {
        lock(&self.transfers).get(id).map(|t| t.done)
    }
}

impl Reporter for Lines {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Step(s) | Event::Note(s) => eprint_line(s),
            Event::Detail(s) if self.verbose => eprint_line(s),
            Event::Detail(_) => {}
            Event::Warning(w) => eprint_line(&format!("warning: {w}")),
            Event::State { item, state, .. } => {
                if self.seen.changed(item, state) {
                    eprint_line(&format!("  {item}: {state}"));
                }
            }
            Event::TransferStarted {
                id,
                label,
                total,
                done,
            } => {
                let now = Instant::now();
                let t = LineTransfer {
                    label: label.to_string(),
                    total,
                    done,
                    start_done: done,
                    start: now,
                    last: now,
                };
                lock(&self.transfers).insert(id.to_string(), t);
            }
            Event::Bytes { id, n } => {
                let mut g = lock(&self.transfers);
                let Some(t) = g.get_mut(id) else { return };
                t.done += n;
                if t.last.elapsed() < self.interval {
                    return;
                }
                t.last = Instant::now();
                let msg = format!(
                    "{}: {}/{} ({:.0}%), {}",
                    t.label,
                    size(t.done),
                    size(t.total),
                    100.0 * t.done as f64 / t.total.max(1) as f64,
                    rate(t.done - t.start_done, t.start.elapsed().as_secs_f64())
                );
                drop(g);
                eprint_line(&msg);
            }
            Event::TransferFinished { .. } => {}
        }
    }
}

/// Spinners for items and bars for transfers, all in one `MultiProgress` on stderr.
pub struct Terminal {
    verbose: bool,
    multi: MultiProgress,
    seen: Seen,
    spinners: Mutex<BTreeMap<String, ProgressBar>>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Terminal {
    pub fn new(verbose: bool) -> Terminal {
        Terminal {
            verbose,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            seen: Seen::default(),
            spinners: Mutex::new(BTreeMap::new()),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn println(&self, s: &str) {
        let _ = self.multi.println(s);
    }

    fn spinner(&self, item: &str) -> ProgressBar {
        lock(&self.spinners)
            .entry(item.to_string())
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b.set_prefix(item.to_string());
                b.enable_steady_tick(Duration::from_millis(120));
                b
            })
            .clone()
    }
}

impl Reporter for Terminal {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Step(s) | Event::Note(s) => self.println(s),
            Event::Detail(s) if self.verbose => self.println(s),
            Event::Detail(_) => {}
            Event::Warning(w) => self.println(&format!("warning: {w}")),
            Event::State { item, state, done } => {
                if !self.seen.changed(item, state) && !done {
                    return;
                }
                let bar = self.spinner(item);
                if done {
                    bar.finish_with_message(state.to_string());
                } else {
                    bar.set_message(state.to_string());
                }
            }
            Event::TransferStarted {
                id,
                label,
                total,
                done,
            } => {
                let style = ProgressStyle::with_template(
                    "{msg:>24} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                let short: String = {
                    let chars: Vec<char> = label.chars().collect();
                    chars[chars.len().saturating_sub(24)..].iter().collect()
                };
                let bar = self.multi.add(
                    ProgressBar::new(total)
                        .with_style(style)
                        .with_message(short),
                );
                bar.set_position(done);
                if let Some(old) = lock(&self.bars).insert(id.to_string(), bar) {
                    old.finish_and_clear();
                    self.multi.remove(&old);
                }
            }
            Event::Bytes { id, n } => {
                if let Some(b) = lock(&self.bars).get(id) {
                    b.inc(n);
                }
            }
            Event::TransferFinished { id } => {
                if let Some(b) = lock(&self.bars).remove(id) {
                    b.finish_and_clear();
                    self.multi.remove(&b);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_the_bytes_of_each_transfer() {
        let r = Lines::new(false, Duration::from_secs(3600));
        r.event(Event::TransferStarted {
            id: "a",
            label: "a",
            total: 300,
            done: 50,
        });
        r.event(Event::Bytes { id: "a", n: 100 });
        r.event(Event::Bytes { id: "b", n: 7 });
        assert_eq!(r.transferred("a"), Some(150));
        assert_eq!(r.transferred("b"), None);
    }

    #[test]
    fn a_state_is_shown_only_when_it_changes() {
        let s = Seen::default();
        assert!(s.changed("app", "Syncing"));
        assert!(!s.changed("app", "Syncing"));
        assert!(s.changed("app", "Healthy"));
    }
}
