//! How the library tells the user what it is doing: one [`Reporter`] trait, events only. The
//! library never draws or prints progress itself; `ui::report` has the two implementations (bars on
//! a terminal, one line per event otherwise) and picks one from `-q`/`-v` and the terminal.
//!
//! Sizes are shown in binary units everywhere ([`size`]: KiB, MiB, GiB), like indicatif's
//! `binary_bytes` in the bars.

/// What happened. Items and transfers are named by the caller; the reporter keeps their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A step of the command started ("wave 2: …", "3/6 delete the manual serving apps").
    Step(&'a str),
    /// An object's state changed (shown when it differs from the last one); `done`: final state.
    State {
        item: &'a str,
        state: &'a str,
        done: bool,
    },
    /// Something worth a line (a file verified, a retry).
    Note(&'a str),
    /// A detail shown with `-v` only.
    Detail(&'a str),
    /// A warning: shown even with `-q`.
    Warning(&'a str),
    /// A transfer of `total` bytes, `done` of them already there (resumed), started.
    TransferStarted {
        id: &'a str,
        label: &'a str,
        total: u64,
        done: u64,
    },
    /// `n` more bytes of a transfer.
    Bytes { id: &'a str, n: u64 },
    /// A transfer ended (its bar is cleared; the caller says the outcome with a Note).
    TransferFinished { id: &'a str },
}

/// Receives the library's events. Calls come from any thread, some from blocking ones: keep
/// implementations quick.
pub trait Reporter: Send + Sync {
    fn event(&self, e: Event<'_>);

    /// A step started.
    fn line(&self, text: &str) {
        self.event(Event::Step(text));
    }
    /// `item` is now in `state`.
    fn update(&self, item: &str, state: &str) {
        self.event(Event::State {
            item,
            state,
            done: false,
        });
    }
    /// `item` reached its final `state`.
    fn finish(&self, item: &str, state: &str) {
        self.event(Event::State {
            item,
            state,
            done: true,
        });
    }
    fn note(&self, text: &str) {
        self.event(Event::Note(text));
    }
    fn detail(&self, text: &str) {
        self.event(Event::Detail(text));
    }
    fn warn(&self, text: &str) {
        self.event(Event::Warning(text));
    }
}

/// Reports nothing (tests, benches, library users that do not want output).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _e: Event<'_>) {}
}

/// A byte count in binary units, one decimal: `512 B`, `1.5 KiB`, `942.0 MiB`, `3.2 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A rate in binary units per second.
pub fn rate(bytes: u64, secs: f64) -> String {
    format!("{}/s", size((bytes as f64 / secs.max(1e-3)) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(512 * 1024 * 1024), "512.0 MiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(rate(2 * 1024 * 1024, 2.0), "1.0 MiB/s");
    }
}
