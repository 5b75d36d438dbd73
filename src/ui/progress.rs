//! Progress of things being waited on: one spinner per item on a terminal (indicatif), one line per
//! state change otherwise. Hidden by -q.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Reporter {
    quiet: bool,
    bars: Option<(MultiProgress, Mutex<BTreeMap<String, ProgressBar>>)>,
    last: Mutex<BTreeMap<String, String>>,
}

impl Reporter {
    /// Bars when stderr is a terminal and not quiet; lines otherwise.
    pub fn new(quiet: bool) -> Reporter {
        let bars = (!quiet && std::io::stderr().is_terminal()).then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Mutex::new(BTreeMap::new()),
            )
        });
        Reporter {
            quiet,
            bars,
            last: Mutex::new(BTreeMap::new()),
        }
    }

    /// Report `item`'s state; printed only when it changed.
    pub fn update(&self, item: &str, state: &str) {
        if self.quiet {
            return;
        }
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.get(item).map(String::as_str) == Some(state) {
                return;
            }
            last.insert(item.to_string(), state.to_string());
        }
        match &self.bars {
            Some((multi, bars)) => {
                let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
                let bar = bars.entry(item.to_string()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    b.set_prefix(item.to_string());
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                });
                bar.set_message(state.to_string());
            }
            None => eprintln!("  {item}: {state}"),
        }
    }

    /// Mark an item finished (its spinner stops with the final state).
    pub fn finish(&self, item: &str, state: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some((_, bars)) => {
                let bars = bars.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(b) = bars.get(item) {
                    b.finish_with_message(state.to_string());
                } else {
                    drop(bars);
                    self.update(item, state);
                }
            }
            None => self.update(item, state),
        }
    }

    /// A line above the bars (or a plain line).
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}
