//! Diagnostics: one finding about the user's input, with where it is and how to fix it.

pub mod locate;
pub mod sources;

use std::fmt;
use std::path::{Path, PathBuf};

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use serde::Serialize;

pub use sources::remember;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A finding about a file the user wrote (config, catalog, template) or about what they asked for.
/// As data (`lint -o json`): `{severity, file, line, column, path, message, help}`, null where
/// unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file the finding is about, when there is one.
    pub file: Option<PathBuf>,
    /// 1-based line and column (in characters): from the YAML parser, or found from `field` by
    /// [`Diagnostic::located`].
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The field, as a path such as `models[qwen-cpu].resources.limits.cpu`.
    #[serde(rename = "path")]
    pub field: Option<String>,
    pub message: String,
    /// What would fix it.
    pub help: Option<String>,
    /// The path to point at when it is not `field` (a duplicate names the first of two items
    /// alike, but is about the second).
    #[serde(skip)]
    pub pointer: Option<String>,
    /// The offending line, to show under the message (see [`Diagnostic::located`]).
    #[serde(skip)]
    pub excerpt: Option<Excerpt>,
    /// The offending line holds a secret: point at it, never show it.
    #[serde(skip)]
    pub secret_line: bool,
}

/// One line of the input and the part of it a diagnostic is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    /// The line's text, without its line break.
    pub text: String,
    /// Byte range of the offending token in `text`.
    pub start: usize,
    pub end: usize,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: None,
            line: None,
            column: None,
            field: None,
            message: message.into(),
            help: None,
            pointer: None,
            excerpt: None,
            secret_line: false,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(message)
        }
    }

    pub fn file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Point at `path` rather than at `field` (see [`Diagnostic::pointer`]).
    pub fn pointer(mut self, path: impl Into<String>) -> Self {
        self.pointer = Some(path.into());
        self
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The line this is about holds a secret: `file:line:col` is shown, the line itself never.
    pub fn secret_line(mut self) -> Self {
        self.secret_line = true;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// This diagnostic with its line, column and excerpt filled in from the text its file had
    /// when it was read (see [`sources`]): a diagnostic that names a field gets the field's
    /// position; one that has a position (a YAML error) gets the line shown.
    pub fn located(mut self) -> Self {
        if self.excerpt.is_some() {
            return self;
        }
        let Some(src) = self.file.as_deref().and_then(sources::get) else {
            return self;
        };
        let mut len = None;
        let found = (src.tree())
            .zip(self.pointer.as_deref().or(self.field.as_deref()))
            .and_then(|(tree, field)| locate::find(tree, field, &self.message));
        // The parser's position wins unless the path leads to the very value the message quotes.
        if let Some((span, _)) = found.filter(|(_, exact)| *exact || self.line.is_none()) {
            self = self.at(span.line, span.col + 1);
            len = Some(span.len);
        }
        if self.secret_line {
            return self;
        }
        if let (Some(line), Some(col)) = (self.line, self.column) {
            if let Some(text) = src.line(line) {
                self.excerpt = Some(Excerpt::of(text, col, len));
            }
        }
        self
    }

    /// rustc-style text: the message, `--> file:line:col`, the line with a caret under the field
    /// (labelled with its path) and the help. `None` when there is no excerpt to show.
    pub fn snippet(&self, color: bool) -> Option<String> {
        let ex = self.excerpt.as_ref()?;
        let file = self.file.as_ref()?.display().to_string();
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let mut mark = AnnotationKind::Primary.span(ex.start..ex.end);
        if let Some(field) = &self.field {
            mark = mark.label(field.as_str());
        }
        let source = Snippet::source(ex.text.as_str())
            .line_start(self.line?)
            .path(file)
            .annotation(mark);
        let mut group = level.primary_title(self.message.as_str()).element(source);
        if let Some(help) = &self.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        Some(renderer.render(&[group]))
    }
}

impl Excerpt {
    /// The token of `text` at 1-based character column `col`: `len` characters when known, else
    /// up to the next space or YAML punctuation (at least one character).
    fn of(text: &str, col: usize, len: Option<usize>) -> Excerpt {
        let byte_at = |chars: usize| {
            text.char_indices()
                .nth(chars)
                .map_or(text.len(), |(i, _)| i)
        };
        let start = byte_at(col.saturating_sub(1));
        let end = match len {
            Some(n) => byte_at(col.saturating_sub(1) + n.max(1)),
            None => {
                let rest = &text[start..];
                let first = rest.chars().next().map_or(0, char::len_utf8);
                let stop = rest[first..]
                    .find(|c: char| c.is_whitespace() || ",:[]{}#".contains(c))
                    .map_or(rest.len(), |i| i + first);
                start + stop
            }
        };
        Excerpt {
            text: text.to_string(),
            start,
            end: end.max(start),
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: field: message` then `  help: …` on its own line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let (Some(l), Some(c)) = (self.line, self.column) {
                write!(f, ":{l}:{c}")?;
            }
            wrote = true;
        }
        if let Some(field) = &self.field {
            if wrote {
                write!(f, ": ")?;
            }
            write!(f, "{field}")?;
            wrote = true;
        }
        if wrote {
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// A set of findings that stopped the command (at least one is an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors().count();
        write!(f, "{n} error{} in the input", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `word` (Jaro-Winkler ≥ 0.8 or a small edit distance), for did-you-mean hints.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(word, c);
        let close = score >= 0.8 || strsim::levenshtein(word, c) <= 2;
        if close && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

/// Turn a serde_yaml error into a diagnostic with line:column, the field path and a did-you-mean.
pub fn yaml_diagnostic(e: &serde_yaml::Error, file: &Path) -> Diagnostic {
    let full = e.to_string();
    let mut message = strip_location(&full).to_string();
    let mut field = None;
    // serde_yaml prefixes the path of the offending value: `models[0].layer: unknown variant …`.
    if let Some((path, rest)) = message.split_once(": ") {
        if !path.contains(' ') && !path.is_empty() {
            field = Some(path.to_string());
            message = rest.to_string();
        }
    }
    let mut d = Diagnostic::error(message.clone()).file(file);
    if let Some(loc) = e.location() {
        d = d.at(loc.line(), loc.column());
    }
    if let Some(f) = field {
        d = d.field(f);
    }
    if let Some(help) = unknown_name_help(&message) {
        d = d.help(help);
    } else if message.contains("expected a boolean") {
        d = d.help("write true or false (unquoted); yes/no/on/off and strings are not booleans");
    }
    d
}

fn strip_location(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => &msg[..i],
        _ => msg,
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and variants), suggest the closest.
fn unknown_name_help(message: &str) -> Option<String> {
    let kind = if message.starts_with("unknown field") {
        "key"
    } else if message.starts_with("unknown variant") {
        "value"
    } else {
        return None;
    };
    let mut ticks = message.split('`').skip(1).step_by(2);
    let word = ticks.next()?;
    let expected: Vec<&str> = ticks.collect();
    match did_you_mean(word, expected.iter().copied()) {
        Some(s) => Some(format!("did you mean `{s}`?")),
        None if !expected.is_empty() => Some(format!("valid {kind}s: {}", expected.join(", "))),
        None => None,
    }
}

/// `path` relative to `repo` when it is inside it (for messages).
pub fn display_path(repo: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(repo)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_close_names_only() {
        let names = ["kserve", "llm-d", "raw-vllm"];
        assert_eq!(did_you_mean("kserv", names), Some("kserve"));
        assert_eq!(did_you_mean("llmd", names), Some("llm-d"));
        assert_eq!(did_you_mean("rawvllm", names), Some("raw-vllm"));
        assert_eq!(did_you_mean("postgres", names), None);
    }

    #[test]
    fn a_field_is_placed_and_shown_with_its_line() {
        let file = Path::new("test-env/located.yaml");
        remember(file, "cluster:\n  name: a\nfeatures:\n  kserv: true\n");
        let d = Diagnostic::error("unknown feature `kserv`")
            .file(file)
            .field("features.kserv")
            .help("did you mean `kserve`?")
            .located();
        assert_eq!((d.line, d.column), (Some(4), Some(3)));
        assert_eq!(
            d.snippet(false).unwrap(),
            "error: unknown feature `kserv`
 --> test-env/located.yaml:4:3
  |
4 |   kserv: true
  |   ^^^^^ features.kserv
  |
  = help: did you mean `kserve`?"
        );
        // A parser error keeps its position and gets the token under it marked.
        let d = Diagnostic::error("bad").file(file).at(2, 9).located();
        assert_eq!(d.excerpt.as_ref().map(|e| e.start..e.end), Some(8..9));
        // Past the end of the text, or a file never read: no excerpt, the one-line form.
        assert!(Diagnostic::error("x")
            .file(file)
            .at(9, 1)
            .located()
            .snippet(false)
            .is_none());
        let d = Diagnostic::error("x")
            .file("nowhere.yaml")
            .field("a.b")
            .located();
        assert_eq!((d.line, d.snippet(false)), (None, None));
    }

    #[test]
    fn display_puts_location_field_and_help_in_order() {
        let d = Diagnostic::error("must be a boolean")
            .file("environments/x/config.yaml")
            .at(3, 9)
            .field("features.kserve")
            .help("write true or false");
        assert_eq!(
            d.to_string(),
            "environments/x/config.yaml:3:9: features.kserve: must be a boolean\n  help: write true or false"
        );
    }
}
