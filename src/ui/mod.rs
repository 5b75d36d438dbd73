//! The one output gate: data to stdout, progress/warnings/errors to stderr, honouring -q/-v and colour.
//! The only module allowed to print (the crate denies print_stdout/print_stderr elsewhere).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

use console::style;

pub mod report;

/// `eprintln!` that never panics: a closed stderr (`2>&1 | head -1`) makes `eprintln!` panic
/// (exit 101); a line that cannot be written is dropped and the command goes on (its exit code is
/// its own), as `Printer::data` does for stdout.
macro_rules! err_line {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

use crate::diag::{Diagnostic, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct Printer {
    pub quiet: bool,
    pub verbose: u8,
    /// Gives the suggested commands of every message their `--env` (see [`crate::envs::Hint`]).
    pub hint: crate::envs::Hint,
}

impl Printer {
    /// Set up colours for both streams: `--color` wins, then NO_COLOR, then whether it is a terminal.
    pub fn new(quiet: bool, verbose: u8, color: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let (out, err) = match color {
            ColorChoice::Always => (true, true),
            ColorChoice::Never => (false, false),
            ColorChoice::Auto if no_color => (false, false),
            ColorChoice::Auto => (
                std::io::stdout().is_terminal(),
                std::io::stderr().is_terminal(),
            ),
        };
        console::set_colors_enabled(out);
        console::set_colors_enabled_stderr(err);
        Self {
            quiet,
            verbose,
            hint: crate::envs::Hint::default(),
        }
    }

    /// This printer, its messages' suggested commands naming the environment as `hint` says.
    pub fn with_hint(mut self, hint: crate::envs::Hint) -> Self {
        self.hint = hint;
        self
    }

    /// `text` with its suggested commands naming the environment (for tables printed as data).
    pub fn hinted(&self, text: &str) -> String {
        self.hint.apply(text)
    }

    /// Requested data (YAML, JSON, tables) on stdout.
    /// [`Printer::data`] of the concatenation of `parts`, without building it (a 1000-model tree
    /// is 9 MB).
    pub fn data_parts<'a>(&self, parts: impl IntoIterator<Item = &'a str>) {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let mut last = "";
        for p in parts {
            // A closed pipe (`| head`) is not an error worth reporting: stop writing.
            if out.write_all(p.as_bytes()).is_err() {
                return;
            }
            if !p.is_empty() {
                last = p;
            }
        }
        if !last.is_empty() && !last.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    pub fn data(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth reporting.
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') && !text.is_empty() {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    /// Requested data as it arrives (a log stream), written and flushed at once; the error says
    /// when stdout is closed (`| head`), so the caller can stop.
    pub fn data_bytes(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    }

    /// Progress and results for humans on stderr (hidden by -q).
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            err_line!("{}", self.hinted(msg.as_ref()));
        }
    }

    /// Details shown with -v.
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose > 0 && !self.quiet {
            err_line!("{}", style(self.hinted(msg.as_ref())).dim().for_stderr());
        }
    }

    /// A finding, rustc-style with the offending line when its file's text is known (see
    /// [`Diagnostic::located`]), else on one line.
    pub fn diagnostic(&self, d: &Diagnostic) {
        if d.severity == Severity::Warning && self.quiet {
            return;
        }
        let mut d = d.clone().located();
        // The suggested commands of the message and the fix, never the quoted line of the file.
        d.message = self.hinted(&d.message);
        d.help = d.help.as_deref().map(|h| self.hinted(h));
        if let Some(text) = d.snippet(console::colors_enabled_stderr()) {
            err_line!("{text}\n");
            return;
        }
        match d.severity {
            Severity::Error => err_line!("{} {d}", style("error:").red().bold().for_stderr()),
            Severity::Warning => {
                err_line!("{} {d}", style("warning:").yellow().bold().for_stderr())
            }
        }
    }

    /// A security warning (a credential others can read, a manifest applied unverified, a
    /// download in clear): printed whatever `-q` says; a security warning is never quiet.
    pub fn security_warning(&self, msg: impl AsRef<str>) {
        err_line!(
            "{} {}",
            style("warning:").yellow().bold().for_stderr(),
            self.hinted(msg.as_ref())
        );
    }

    pub fn error(&self, msg: impl AsRef<str>) {
        err_line!(
            "{} {}",
            style("error:").red().bold().for_stderr(),
            self.hinted(msg.as_ref())
        );
    }

    pub fn caused_by(&self, msg: impl AsRef<str>) {
        err_line!(
            "{} {}",
            style("caused by:").dim().for_stderr(),
            self.hinted(msg.as_ref())
        );
    }

    pub fn success(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            err_line!(
                "{} {}",
                style("✓").green().for_stderr(),
                self.hinted(msg.as_ref())
            );
        }
    }
}

/// What the user typed when asked to type a name to confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// stdin is not a terminal: nobody can answer.
    NoTerminal,
    Confirmed,
    /// They typed something else (trimmed).
    Refused(String),
}

/// Ask on stderr for `expected` to be typed (destructive or irreversible steps), reading a line
/// from stdin.
pub fn confirm_typed(prompt: &str, expected: &str) -> std::io::Result<Confirmation> {
    if !std::io::stdin().is_terminal() {
        return Ok(Confirmation::NoTerminal);
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    drop(err);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)?;
    Ok(if line.trim() == expected {
        Confirmation::Confirmed
    } else {
        Confirmation::Refused(line.trim().to_string())
    })
}

/// A table as the commands print them (`status`, `doctor`, `smoke`, `stage-model`, `teardown`):
/// no borders, every column aligned across rows.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = rows();
    t.set_header(header.iter().map(|h| h.to_string()));
    t
}

/// [`table`] without a header: rows whose columns line up (one line per item).
pub fn rows() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t
}

/// A table's text without the padding comfy-table puts around it: the space before the first
/// column, and the end of each line (the widest last cell would otherwise pad every line); the
/// columns stay two spaces apart. Ends with a newline.
pub fn text(t: &comfy_table::Table) -> String {
    let mut out: String = t
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}
