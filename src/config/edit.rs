//! Located edits of `environments/<env>/config.yaml`: set or remove one scalar field of one model
//! while every other byte of the file (comments, blank lines, indentation, quoting, line endings)
//! stays as the user wrote it. The file is never re-serialized.
//!
//! How: yaml-rust2's marked events (the parser `diag::locate` uses) give where each node of the
//! text starts; the model's entry under the top-level `models:` list and the field inside it are
//! found on that tree, and only the field's text is spliced. The result is then checked twice
//! before it is returned: read as plain YAML (serde_yaml_ng), it must equal the original with
//! exactly that field changed; read with the config's serde types ([`EnvConfig`]), it must load.
//! The module is pure (text in, text out): the caller writes the file, and adds its path to
//! the error it reports.
//!
//! The entry must be block style (`- name: x` with one `key: value` per line); a flow-style entry
//! (`- {name: x, layer: y}`) is refused with [`EditError::FlowStyle`].

use serde_yaml::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::EnvConfig;

/// Why a field of a model could not be edited. The caller adds the file's path.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("the config is not valid YAML, so platform does not edit it: fix the syntax first")]
    Syntax {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "the config has no `models:` list at its top level: add the model under `models:` first"
    )]
    NoModels,
    #[error("model `{model}` not found under `models:`{hint}")]
    ModelNotFound { model: String, hint: String },
    #[error("model `{model}` is listed {count} times under `models:`: keep one entry")]
    DuplicateModel { model: String, count: usize },
    #[error(
        "model `{model}` is written in flow style (`{{name: {model}, ...}}`) and platform edits only \
         block-style entries: write it as `- name: {model}` with one `key: value` per line below it"
    )]
    FlowStyle { model: String },
    #[error(
        "the entry of model `{model}` carries an anchor (`&name`) that other places may reuse: \
         remove the anchor (copy the entry where `*name` reused it) so platform can edit it"
    )]
    AnchoredEntry { model: String },
    #[error("model `{model}` has the field `{key}` more than once: keep one")]
    DuplicateField { model: String, key: String },
    #[error(
        "`{key}` of model `{model}` is {what}, not a single value: platform edits only one-line \
         `{key}: value` fields, change it by hand"
    )]
    NotScalar {
        model: String,
        key: String,
        what: &'static str,
    },
    #[error(
        "`{key}` of model `{model}` spans several lines (a block scalar or a wrapped value): write \
         it on one line as `{key}: value`"
    )]
    MultiLine { model: String, key: String },
    #[error("`{key}` of model `{model}` has a YAML tag (`!...`): remove the tag so platform can edit the value")]
    Tagged { model: String, key: String },
    #[error(
        "`{key}` of model `{model}` carries an anchor (`&name`) that other places may reuse: \
         remove the anchor (copy the value where `*name` reused it) so platform can edit it"
    )]
    AnchoredValue { model: String, key: String },
    #[error(
        "cannot edit `{key}` of model `{model}` in place ({what}): write the entry as \
         `- name: {model}` with one `key: value` per line"
    )]
    Layout {
        model: String,
        key: String,
        what: &'static str,
    },
    #[error(
        "with `{key}` of model `{model}` {change}, the config would no longer load (nothing was \
         changed): check the field and its value"
    )]
    WouldNotLoad {
        model: String,
        key: String,
        change: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("the config does not load even before this edit: fix it first (`platform lint` shows the problem)")]
    AlreadyInvalid {
        #[source]
        source: serde_yaml::Error,
    },
    /// A caller's mistake: `name` identifies the entry and is not edited here.
    #[error("`name` identifies model `{model}`: it is not a field this edit sets or removes (a platform bug)")]
    NameField { model: String },
    /// A caller's mistake: the key cannot be written as a plain YAML key.
    #[error("`{key}` cannot be written as a plain YAML key (a platform bug)")]
    InvalidKey { key: String },
    #[error(
        "model `{model}` is listed under `models:` already (models there: {names}): pick another \
         name, or remove it first (`platform model remove {model}`)"
    )]
    ModelExists { model: String, names: String },
    #[error(
        "cannot {what} in place: the `models:` list is not written one `- name: …` entry per \
         block ({detail}); edit config.yaml by hand"
    )]
    ListLayout { what: String, detail: &'static str },
    /// The result failed its own check: a bug here, nothing was written.
    #[error("editing `{key}` of model `{model}` went wrong: {detail} (a platform bug; nothing was changed)")]
    Internal {
        model: String,
        key: String,
        detail: String,
    },
}

/// Set `key` of the model named `model` (an entry of the top-level `models:` list) to the plain
/// scalar `value`, returning the new text.
///
/// - The key present with a one-line scalar value: only the value's text is replaced (a comment
///   after it on that line stays). A quoted value keeps its quote style.
/// - The key absent: a line `key: value` is inserted right after the line of the entry's `name:`,
///   at the entry's indentation and with that line's line ending.
///
/// `value` is written as is when YAML reads it back as the same text (so `2` stays the number 2
/// and `true` a boolean, as if the user had typed them); otherwise (`a: b`, `#x`, `*x`, an empty
/// string, leading or trailing spaces, ...) it is single-quoted, or double-quoted with escapes
/// when it holds control characters.
///
/// Keys of nested maps (`storage: {dir: ..}`, `env: {layer: ..}`) and other models are never
/// touched. The result is checked: as YAML it equals the original but for that field, and it
/// loads as an [`EnvConfig`]; otherwise an error is returned.
pub fn set_model_field(
    text: &str,
    model: &str,
    key: &str,
    value: &str,
) -> Result<String, EditError> {
    edit(text, model, key, Change::Set(value))
}

/// Remove the line of `key` (a one-line scalar value) from the entry of the model named `model`;
/// the text unchanged when the entry has no such key. The line goes with its comment and line
/// ending; every other line stays. When the key is the first of the entry, on the `- ` line,
/// the next key moves up onto that line instead (comment lines between the two go too).
/// Checked like [`set_model_field`].
pub fn remove_model_field(text: &str, model: &str, key: &str) -> Result<String, EditError> {
    edit(text, model, key, Change::Remove)
}

#[derive(Clone, Copy)]
enum Change<'a> {
    Set(&'a str),
    Remove,
}

/// The located edit, then its checks.
fn edit(text: &str, model: &str, key: &str, change: Change<'_>) -> Result<String, EditError> {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let Some((out, index, rendered)) = splice(body, model, key, change)? else {
        return Ok(text.to_string());
    };
    check(body, &out, index, model, key, rendered.as_deref())?;
    Ok(format!("{bom}{out}"))
}

/// The located edit alone: the new text (BOM stripped), the entry's index under `models:` and
/// the value as written (`None` for a removal); `None` when there was nothing to remove.
fn splice(
    body: &str,
    model: &str,
    key: &str,
    change: Change<'_>,
) -> Result<Option<(String, usize, Option<String>)>, EditError> {
    if key == "name" {
        return Err(EditError::NameField {
            model: model.to_string(),
        });
    }
    if !plain_key(key) {
        return Err(EditError::InvalidKey {
            key: key.to_string(),
        });
    }
    let root = parse(body)?;
    let (index, entries) = find_entry(&root, body, model)?;
    let at = Field { body, model, key };
    let mut found = entries
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k.scalar() == Some(key));
    let field = found.next();
    if found.next().is_some() {
        return Err(EditError::DuplicateField {
            model: model.to_string(),
            key: key.to_string(),
        });
    }
    let (edited, rendered) = match (change, field) {
        (Change::Remove, None) => return Ok(None),
        (Change::Remove, Some((i, (k, v)))) => (at.remove(entries, i, k, v)?, None),
        (Change::Set(value), Some((_, (k, v)))) => {
            let (out, r) = at.replace(k, v, value)?;
            (out, Some(r))
        }
        (Change::Set(value), None) => {
            let (out, r) = at.insert(entries, value)?;
            (out, Some(r))
        }
    };
    Ok(Some((edited, index, rendered)))
}

/// The entry of `model` under the top-level `models:` list (a block-style map): its index and
/// its key/value pairs.
fn find_entry<'n>(
    root: &'n Node,
    body: &str,
    model: &str,
) -> Result<(usize, &'n Pairs), EditError> {
    let Kind::Map { entries, .. } = &root.kind else {
        return Err(EditError::NoModels);
    };
    let models = entries
        .iter()
        .find(|(k, _)| k.scalar() == Some("models"))
        .map(|(_, v)| v)
        .ok_or(EditError::NoModels)?;
    let items: &[Node] = match &models.kind {
        Kind::Seq { items } => items,
        // `models:` with nothing under it.
        Kind::Scalar { value, .. } if value.is_empty() || value == "~" || value == "null" => &[],
        _ => return Err(EditError::NoModels),
    };
    let name_of = |item: &Node| match &item.kind {
        Kind::Map { entries, .. } => entries
            .iter()
            .find(|(k, _)| k.scalar() == Some("name"))
            .and_then(|(_, v)| v.scalar())
            .map(str::to_string),
        _ => None,
    };
    let matches: Vec<(usize, &Node)> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| name_of(item).as_deref() == Some(model))
        .collect();
    match matches.as_slice() {
        [] => {
            let names: Vec<String> = items.iter().filter_map(name_of).collect();
            let hint = match crate::diag::did_you_mean(model, names.iter().map(String::as_str)) {
                Some(s) => format!(": did you mean `{s}`?"),
                None if names.is_empty() => ": the list is empty; add the model first".to_string(),
                None => format!(
                    " (models there: {}): check the name, or add the model first",
                    names.join(", ")
                ),
            };
            Err(EditError::ModelNotFound {
                model: model.to_string(),
                hint,
            })
        }
        [(i, entry)] => match &entry.kind {
            Kind::Map { anchored: true, .. } => Err(EditError::AnchoredEntry {
                model: model.to_string(),
            }),
            Kind::Map { .. } if is_flow(body, entry.start) => Err(EditError::FlowStyle {
                model: model.to_string(),
            }),
            Kind::Map { entries, .. } => Ok((*i, entries)),
            // `name_of` matched only maps.
            _ => Err(EditError::NoModels),
        },
        more => Err(EditError::DuplicateModel {
            model: model.to_string(),
            count: more.len(),
        }),
    }
}

/// A flow collection starts with its bracket; a block mapping's start mark is elsewhere.
fn is_flow(body: &str, start: usize) -> bool {
    matches!(body.as_bytes().get(start), Some(b'{' | b'['))
}

/// The edits of one field of one model in `body`.
struct Field<'a> {
    body: &'a str,
    model: &'a str,
    key: &'a str,
}

impl Field<'_> {
    fn err_layout(&self, what: &'static str) -> EditError {
        EditError::Layout {
            model: self.model.to_string(),
            key: self.key.to_string(),
            what,
        }
    }

    /// Byte range of the key's value, for a one-line scalar (an empty value: the point right
    /// after the key's colon). Refuses every other kind of value.
    fn value_span(&self, k: &Node, v: &Node) -> Result<(usize, usize), EditError> {
        let (model, key) = (self.model.to_string(), self.key.to_string());
        let not_scalar = |what| EditError::NotScalar {
            model: model.clone(),
            key: key.clone(),
            what,
        };
        match &v.kind {
            Kind::Map { .. } => Err(not_scalar("a map")),
            Kind::Seq { .. } => Err(not_scalar("a list")),
            Kind::Alias => Err(not_scalar("an alias (`*name`)")),
            Kind::Scalar { tagged: true, .. } => Err(EditError::Tagged { model, key }),
            Kind::Scalar { anchored: true, .. } => Err(EditError::AnchoredValue { model, key }),
            Kind::Scalar {
                value,
                style: TScalarStyle::Plain,
                ..
            } if value.is_empty() => {
                // `key:` with nothing after it: the parser's mark is at the next token.
                let colon = self.colon_after(k)?;
                Ok((colon + 1, colon + 1))
            }
            Kind::Scalar { value, style, .. } => {
                match scalar_end(self.body, v.start, *style, value) {
                    Some(end) => Ok((v.start, end)),
                    None => Err(EditError::MultiLine { model, key }),
                }
            }
        }
    }

    /// The byte offset of the `:` after the key `k` on its line.
    fn colon_after(&self, k: &Node) -> Result<usize, EditError> {
        let key_end = match &k.kind {
            Kind::Scalar { value, style, .. } => scalar_end(self.body, k.start, *style, value),
            _ => None,
        }
        .ok_or_else(|| self.err_layout("its key is not a one-line scalar"))?;
        let rest = &self.body[key_end..];
        let gap = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if rest[gap..].starts_with(':') {
            Ok(key_end + gap)
        } else {
            Err(self.err_layout("no `:` follows the key on its line"))
        }
    }

    /// Replace the value of the present key `k`.
    fn replace(&self, k: &Node, v: &Node, value: &str) -> Result<(String, String), EditError> {
        let (start, end) = self.value_span(k, v)?;
        let style = match &v.kind {
            Kind::Scalar { style, .. } => *style,
            _ => TScalarStyle::Plain,
        };
        let rendered = render(value, style);
        let insert = if start == end {
            format!(" {rendered}")
        } else {
            rendered.clone()
        };
        Ok((splice_text(self.body, start, end, &insert), rendered))
    }

    /// Insert `key: value` on a new line after the line of the entry's `name:`.
    fn insert(&self, entries: &Pairs, value: &str) -> Result<(String, String), EditError> {
        let body = self.body;
        let (name_key, name_value) = entries
            .iter()
            .find(|(k, _)| k.scalar() == Some("name"))
            .ok_or_else(|| self.err_layout("the entry has no `name:`"))?;
        let name_end = match &name_value.kind {
            Kind::Scalar { value, style, .. } => scalar_end(body, name_value.start, *style, value),
            _ => None,
        }
        .ok_or_else(|| self.err_layout("its `name:` value is not on one line"))?;
        let line_end = line_end(body, name_end);
        if !is_trailing(&body[name_end..line_end]) {
            return Err(self.err_layout("more follows `name:` on its line"));
        }
        let indent = body[line_start(body, name_key.start)..name_key.start]
            .chars()
            .count();
        let eol = match terminator(body, line_end) {
            "" => first_terminator(body),
            t => t,
        };
        let rendered = render(value, TScalarStyle::Plain);
        let line = format!("{eol}{:indent$}{}: {rendered}", "", self.key);
        Ok((splice_text(body, line_end, line_end, &line), rendered))
    }

    /// Remove the line of the present key (entry `i` of `entries`).
    fn remove(&self, entries: &Pairs, i: usize, k: &Node, v: &Node) -> Result<String, EditError> {
        let body = self.body;
        let (_, value_end) = self.value_span(k, v)?;
        let ls = line_start(body, k.start);
        let le = line_end(body, value_end);
        if body[k.start..value_end].contains(['\r', '\n']) {
            return Err(EditError::MultiLine {
                model: self.model.to_string(),
                key: self.key.to_string(),
            });
        }
        if !is_trailing(&body[value_end..le]) {
            return Err(self.err_layout("more follows its value on its line"));
        }
        if body[ls..k.start].bytes().all(|b| b == b' ') {
            // The key's own line: drop it with its line ending (the last line of a file without a
            // final line ending takes the previous line's ending instead).
            let term = terminator(body, le).len();
            let (from, to) = if term == 0 && ls > 0 {
                let prev = if body[..ls].ends_with("\r\n") { 2 } else { 1 };
                (ls - prev, le)
            } else {
                (ls, le + term)
            };
            return Ok(splice_text(body, from, to, ""));
        }
        // The first key of the entry, on the `- ` line: the next key moves up to its place.
        let Some((next, _)) = entries.get(i + 1) else {
            return Err(self.err_layout("it is the only key on the `- ` line"));
        };
        let between = &body[value_end..next.start];
        let only_comments = between
            .split(['\r', '\n'])
            .all(|l| l.trim_start().is_empty() || l.trim_start().starts_with('#'));
        if !only_comments {
            return Err(self.err_layout("the entry is not one `key: value` per line"));
        }
        Ok(splice_text(body, k.start, next.start, ""))
    }
}

/// What may follow a value on its line in block style: spaces and a comment.
fn is_trailing(rest: &str) -> bool {
    let t = rest.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

fn splice_text(body: &str, start: usize, end: usize, with: &str) -> String {
    let mut out = String::with_capacity(body.len() + with.len());
    out.push_str(&body[..start]);
    out.push_str(with);
    out.push_str(&body[end..]);
    out
}

/// Byte offset where the line holding `pos` starts (YAML line breaks: `\r\n`, `\n`, `\r`).
fn line_start(body: &str, pos: usize) -> usize {
    body[..pos].rfind(['\n', '\r']).map_or(0, |i| i + 1)
}

/// Byte offset of the line break ending the line holding `pos` (or the end of the text).
fn line_end(body: &str, pos: usize) -> usize {
    body[pos..]
        .find(['\n', '\r'])
        .map_or(body.len(), |i| pos + i)
}

/// The line break at `pos` (`""` at the end of the text).
fn terminator(body: &str, pos: usize) -> &'static str {
    let rest = &body[pos..];
    if rest.starts_with("\r\n") {
        "\r\n"
    } else if rest.starts_with('\n') {
        "\n"
    } else if rest.starts_with('\r') {
        "\r"
    } else {
        ""
    }
}

/// The file's first line break, `\n` when it has none.
fn first_terminator(body: &str) -> &'static str {
    body.find(['\n', '\r'])
        .map(|i| terminator(body, i))
        .unwrap_or("\n")
}

/// Byte offset just past a one-line scalar starting at `start`; `None` when it spans lines (or
/// is a block scalar) or the text there is not the scalar.
fn scalar_end(body: &str, start: usize, style: TScalarStyle, value: &str) -> Option<usize> {
    let rest = body.get(start..)?;
    let bytes = rest.as_bytes();
    match style {
        TScalarStyle::Plain => {
            // A one-line plain scalar is its text exactly (a wrapped one is folded).
            (!value.is_empty() && rest.starts_with(value)).then(|| start + value.len())
        }
        TScalarStyle::SingleQuoted => {
            if bytes.first() != Some(&b'\'') {
                return None;
            }
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    b'\'' => return Some(start + i + 1),
                    b'\n' | b'\r' => return None,
                    _ => i += 1,
                }
            }
            None
        }
        TScalarStyle::DoubleQuoted => {
            if bytes.first() != Some(&b'"') {
                return None;
            }
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' if matches!(bytes.get(i + 1), Some(b'\n' | b'\r')) => return None,
                    // Escapes are ASCII after the backslash: skipping one byte is safe in UTF-8.
                    b'\\' => i += 2,
                    b'"' => return Some(start + i + 1),
                    b'\n' | b'\r' => return None,
                    _ => i += 1,
                }
            }
            None
        }
        _ => None,
    }
}

/// `value` as YAML text: as is when YAML reads it back as the same plain text, else quoted
/// (keeping an existing value's quote style).
fn render(value: &str, style: TScalarStyle) -> String {
    let control = value.chars().any(|c| c.is_control());
    match style {
        TScalarStyle::DoubleQuoted => double_quoted(value),
        TScalarStyle::SingleQuoted if !control => single_quoted(value),
        _ if plain_value(value) => value.to_string(),
        _ if !control => single_quoted(value),
        _ => double_quoted(value),
    }
}

fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn double_quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `value` can be written plain after `key: ` and read back as the same text.
fn plain_value(value: &str) -> bool {
    !value.is_empty()
        && !value.chars().any(|c| c.is_control())
        && one_pair(&format!("k: {value}\n")).is_some_and(|(k, v)| k == "k" && v == value)
}

/// Whether `key` can be written plain as a key and read back as the same text.
fn plain_key(key: &str) -> bool {
    !key.is_empty()
        && !key.chars().any(|c| c.is_control())
        && one_pair(&format!("{key}: v\n")).is_some_and(|(k, v)| k == key && v == "v")
}

/// The key and value of a one-pair mapping of plain untagged scalars, else `None`.
fn one_pair(text: &str) -> Option<(String, String)> {
    #[derive(Default)]
    struct Collect(Vec<Event>);
    impl MarkedEventReceiver for Collect {
        fn on_event(&mut self, ev: Event, _: Marker) {
            self.0.push(ev);
        }
    }
    let mut c = Collect::default();
    Parser::new_from_str(text).load(&mut c, true).ok()?;
    match c.0.as_slice() {
        [Event::StreamStart, Event::DocumentStart, Event::MappingStart(0, None), Event::Scalar(k, TScalarStyle::Plain, 0, None), Event::Scalar(v, TScalarStyle::Plain, 0, None), Event::MappingEnd, Event::DocumentEnd, Event::StreamEnd] => {
            Some((k.clone(), v.clone()))
        }
        _ => None,
    }
}

/// Check the edit: as YAML the result equals the original with exactly that field changed, and
/// it loads with the config's serde types.
fn check(
    before: &str,
    after: &str,
    index: usize,
    model: &str,
    key: &str,
    rendered: Option<&str>,
) -> Result<(), EditError> {
    let internal = |detail: String| EditError::Internal {
        model: model.to_string(),
        key: key.to_string(),
        detail,
    };
    let old: Value = serde_yaml::from_str(before).map_err(|e| EditError::Syntax {
        source: Box::new(e),
    })?;
    let new: Value = serde_yaml::from_str(after)
        .map_err(|e| internal(format!("the edited text is not valid YAML ({e})")))?;
    let mut expected = old;
    let entry = expected
        .get_mut("models")
        .and_then(|m| m.get_mut(index))
        .and_then(Value::as_mapping_mut)
        .ok_or_else(|| internal("the entry is not where it was found".to_string()))?;
    match rendered {
        Some(r) => {
            let v: Value = serde_yaml::from_str(r)
                .map_err(|e| internal(format!("the value written does not read back ({e})")))?;
            entry.insert(Value::String(key.to_string()), v);
        }
        None => {
            entry.remove(key);
        }
    }
    if new != expected {
        return Err(internal(
            "read back, the config differs in more than that field".to_string(),
        ));
    }
    if let Err(e) = serde_yaml::from_str::<EnvConfig>(after) {
        return Err(match serde_yaml::from_str::<EnvConfig>(before) {
            Err(source) => EditError::AlreadyInvalid { source },
            Ok(_) => EditError::WouldNotLoad {
                model: model.to_string(),
                key: key.to_string(),
                change: match rendered {
                    Some(r) => format!("set to {r}"),
                    None => "removed".to_string(),
                },
                source: e,
            },
        });
    }
    Ok(())
}

/// The key/value pairs of a map, in the order written.
type Pairs = [(Node, Node)];

/// A node of the first document, with the byte offset where the parser marked it.
#[derive(Debug)]
struct Node {
    start: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Scalar {
        value: String,
        style: TScalarStyle,
        anchored: bool,
        tagged: bool,
    },
    Alias,
    Map {
        anchored: bool,
        entries: Vec<(Node, Node)>,
    },
    Seq {
        items: Vec<Node>,
    },
}

impl Node {
    fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// The positioned tree of the first document of `body`.
fn parse(body: &str) -> Result<Node, EditError> {
    // The parser counts characters; splicing needs bytes.
    let offsets: Vec<usize> = body
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(body.len()))
        .collect();
    let mut b = Builder {
        offsets: &offsets,
        stack: Vec::new(),
        root: None,
    };
    Parser::new_from_str(body)
        .load(&mut b, false)
        .map_err(|e| EditError::Syntax {
            source: Box::new(e),
        })?;
    b.root.ok_or(EditError::NoModels)
}

struct Builder<'a> {
    offsets: &'a [usize],
    stack: Vec<(usize, Frame)>,
    root: Option<Node>,
}

enum Frame {
    Map(bool, Vec<(Node, Node)>, Option<Node>),
    Seq(Vec<Node>),
}

impl Builder<'_> {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some((_, Frame::Seq(items))) => items.push(node),
            Some((_, Frame::Map(_, entries, key))) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let start = self
            .offsets
            .get(mark.index())
            .copied()
            .unwrap_or(usize::MAX);
        if self.root.is_some() {
            return;
        }
        match ev {
            Event::Scalar(value, style, anchor, tag) => self.push(Node {
                start,
                kind: Kind::Scalar {
                    value,
                    style,
                    anchored: anchor != 0,
                    tagged: tag.is_some(),
                },
            }),
            Event::Alias(_) => self.push(Node {
                start,
                kind: Kind::Alias,
            }),
            Event::MappingStart(anchor, _) => self
                .stack
                .push((start, Frame::Map(anchor != 0, Vec::new(), None))),
            Event::SequenceStart(..) => self.stack.push((start, Frame::Seq(Vec::new()))),
            Event::MappingEnd | Event::SequenceEnd => {
                let node = match self.stack.pop() {
                    Some((start, Frame::Map(anchored, entries, _))) => Node {
                        start,
                        kind: Kind::Map { anchored, entries },
                    },
                    Some((start, Frame::Seq(items))) => Node {
                        start,
                        kind: Kind::Seq { items },
                    },
                    None => return,
                };
                self.push(node);
            }
            _ => {}
        }
    }
}

/// A value of a new model entry ([`add_model`]).
#[derive(Debug, Clone, PartialEq)]
pub enum NewValue {
    /// Text: written plain when YAML reads it back as the same string, else quoted (`"2"`).
    Str(String),
    /// A number, written plain.
    Num(u64),
    /// A nested block map, one `key: value` per line.
    Map(Vec<(String, NewValue)>),
}

impl NewValue {
    fn yaml(&self) -> Value {
        match self {
            NewValue::Str(s) => Value::String(s.clone()),
            NewValue::Num(n) => Value::Number((*n).into()),
            NewValue::Map(fields) => {
                let mut m = serde_yaml::Mapping::new();
                for (k, v) in fields {
                    m.insert(Value::String(k.clone()), v.yaml());
                }
                Value::Mapping(m)
            }
        }
    }

    /// `key: value` lines at `indent` spaces.
    fn lines(&self, key: &str, indent: usize, out: &mut Vec<String>) {
        match self {
            NewValue::Str(s) => {
                let reads_as_text =
                    serde_yaml::from_str::<Value>(s).is_ok_and(|v| v.as_str() == Some(s));
                let text = if reads_as_text {
                    render(s, TScalarStyle::Plain)
                } else {
                    double_quoted(s)
                };
                out.push(format!("{:indent$}{key}: {text}", ""));
            }
            NewValue::Num(n) => out.push(format!("{:indent$}{key}: {n}", "")),
            NewValue::Map(fields) => {
                out.push(format!("{:indent$}{key}:", ""));
                for (k, v) in fields {
                    v.lines(k, indent + 2, out);
                }
            }
        }
    }
}

/// The `models:` list: the value node and its items (none for an empty `models:`).
fn models_list<'n>(root: &'n Node, body: &str) -> Result<(&'n Node, &'n [Node]), EditError> {
    let Kind::Map { entries, .. } = &root.kind else {
        return Err(EditError::NoModels);
    };
    let (key, models) = entries
        .iter()
        .find(|(k, _)| k.scalar() == Some("models"))
        .map(|(k, v)| (k, v))
        .ok_or(EditError::NoModels)?;
    match &models.kind {
        Kind::Seq { .. } if is_flow(body, models.start) => Err(EditError::ListLayout {
            what: "change the models".into(),
            detail: "it is a flow list `[...]`",
        }),
        Kind::Seq { items } => Ok((models, items)),
        Kind::Scalar { value, .. } if value.is_empty() || value == "~" || value == "null" => {
            Ok((key, &[]))
        }
        _ => Err(EditError::NoModels),
    }
}

/// The entry's `name:`.
fn item_name(item: &Node) -> Option<&str> {
    match &item.kind {
        Kind::Map { entries, .. } => entries
            .iter()
            .find(|(k, _)| k.scalar() == Some("name"))
            .and_then(|(_, v)| v.scalar()),
        _ => None,
    }
}

/// The lines of `body` as (start, end without the line break, next line's start).
fn lines_of(body: &str) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let end = line_end(body, pos);
        let next = end + terminator(body, end).len();
        out.push((pos, end, next));
        pos = next;
    }
    out
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Where a block entry of the list sits: the index of its `- ` line in `lines`, the dash's
/// column, the first line of its own comments above, and the line after its last line.
struct Span {
    dash_line: usize,
    dash_col: usize,
    first: usize,
    after: usize,
}

fn entry_span(
    body: &str,
    lines: &[(usize, usize, usize)],
    item: &Node,
    what: &str,
) -> Result<Span, EditError> {
    let layout = |detail| EditError::ListLayout {
        what: what.to_string(),
        detail,
    };
    if is_flow(body, item.start) {
        return Err(layout("the entry is written in flow style `{...}`"));
    }
    // A block map's start mark is after its first key: the entry starts at that key.
    let start = match &item.kind {
        Kind::Map { entries, .. } => entries.first().map_or(item.start, |(k, _)| k.start),
        _ => item.start,
    };
    let dash_line = lines
        .iter()
        .position(|(s, _, next)| *s <= start && start < *next)
        .ok_or(layout("the entry was not found in the text"))?;
    let (ls, _, _) = lines[dash_line];
    let prefix = &body[ls..start];
    let dash_col = indent_of(prefix);
    if prefix.trim_start_matches(' ').trim_end_matches(' ') != "-" {
        return Err(layout("its `- ` is not on the line of its first key"));
    }
    let text = |i: usize| &body[lines[i].0..lines[i].1];
    let is_comment = |i: usize| text(i).trim_start().starts_with('#');
    let mut first = dash_line;
    while first > 0 && is_comment(first - 1) && indent_of(text(first - 1)) >= dash_col {
        first -= 1;
    }
    let mut after = dash_line + 1;
    while after < lines.len() {
        let t = text(after);
        if !t.trim().is_empty() && indent_of(t) <= dash_col {
            break;
        }
        after += 1;
    }
    Ok(Span {
        dash_line,
        dash_col,
        first,
        after,
    })
}

/// Append a model entry to the top-level `models:` list: `- name: <name>` then `fields` in
/// order, one `key: value` per line (nested maps as blocks), at the list's indentation, after the
/// last entry (separated by a blank line when the entries are). Every other byte stays. Checked
/// as YAML: the result equals the original with that entry appended. Whether the model is valid
/// is the caller's check (`platform model add` runs lint on the result).
pub fn add_model(
    text: &str,
    name: &str,
    fields: &[(String, NewValue)],
) -> Result<String, EditError> {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let root = parse(body)?;
    let (list, items) = models_list(&root, body)?;
    let names: Vec<&str> = items.iter().filter_map(item_name).collect();
    if names.contains(&name) {
        return Err(EditError::ModelExists {
            model: name.to_string(),
            names: names.join(", "),
        });
    }
    let lines = lines_of(body);
    let eol = first_terminator(body);
    let what = format!("add model `{name}`");
    let (at, dash_col, blank) = match items.last() {
        Some(last) => {
            let span = entry_span(body, &lines, last, &what)?;
            // After the entry's last line that is not blank.
            let mut end = span.after;
            while end > span.dash_line + 1
                && body[lines[end - 1].0..lines[end - 1].1].trim().is_empty()
            {
                end -= 1;
            }
            let blank = items.len() > 1
                && span.first > 0
                && body[lines[span.first - 1].0..lines[span.first - 1].1]
                    .trim()
                    .is_empty();
            (lines[end - 1].1, span.dash_col, blank)
        }
        None => {
            // `models:` alone: the entry goes right below it.
            let key_line = lines
                .iter()
                .find(|(s, _, next)| *s <= list.start && list.start < *next)
                .ok_or(EditError::NoModels)?;
            let col = indent_of(&body[key_line.0..key_line.1]);
            if !is_trailing(
                &body[list.start + "models:".len().min(key_line.1 - list.start)..key_line.1],
            ) {
                return Err(EditError::ListLayout {
                    what,
                    detail: "`models:` has something after it on its line",
                });
            }
            (key_line.1, col + 2, false)
        }
    };
    let mut new_lines = vec![format!(
        "{:dash_col$}- name: {}",
        "",
        render(name, TScalarStyle::Plain)
    )];
    for (k, v) in fields {
        v.lines(k, dash_col + 2, &mut new_lines);
    }
    let mut insert = String::new();
    if blank {
        insert.push_str(eol);
    }
    for l in &new_lines {
        insert.push_str(eol);
        insert.push_str(l);
    }
    let out = splice_text(body, at, at, &insert);
    // Checked: the original with that entry appended.
    let internal = |detail: String| EditError::Internal {
        model: name.to_string(),
        key: "models".to_string(),
        detail,
    };
    let old: Value = serde_yaml::from_str(body).map_err(|e| EditError::Syntax {
        source: Box::new(e),
    })?;
    let new: Value = serde_yaml::from_str(&out)
        .map_err(|e| internal(format!("the edited text is not valid YAML ({e})")))?;
    let mut entry = serde_yaml::Mapping::new();
    entry.insert(
        Value::String("name".into()),
        Value::String(name.to_string()),
    );
    for (k, v) in fields {
        entry.insert(Value::String(k.clone()), v.yaml());
    }
    let mut expected = old;
    match expected.get_mut("models") {
        Some(Value::Sequence(seq)) => seq.push(Value::Mapping(entry)),
        Some(v @ Value::Null) => *v = Value::Sequence(vec![Value::Mapping(entry)]),
        _ => return Err(internal("`models:` is not a list".to_string())),
    }
    if new != expected {
        return Err(internal(
            "read back, the config differs in more than the new entry".to_string(),
        ));
    }
    Ok(format!("{bom}{out}"))
}

/// Remove the entry of the model named `model` from the top-level `models:` list, with the
/// comment lines right above it (at its indentation or deeper) and the lines below it up to the
/// next entry or key; the last entry takes the blank line before it instead of after. Every other
/// byte stays. Checked as YAML: the result equals the original without that entry.
pub fn remove_model(text: &str, model: &str) -> Result<String, EditError> {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let root = parse(body)?;
    // The entry's errors (absent, listed twice, flow style, anchored) as for a field edit.
    let (index, _) = find_entry(&root, body, model)?;
    let (_, items) = models_list(&root, body)?;
    let item = items.get(index).ok_or(EditError::NoModels)?;
    let lines = lines_of(body);
    let span = entry_span(body, &lines, item, &format!("remove model `{model}`"))?;
    let blank = |i: usize| body[lines[i].0..lines[i].1].trim().is_empty();
    let (mut first, mut after) = (span.first, span.after);
    let last = index + 1 == items.len();
    if last {
        // Keep the blank lines after it (they separate what follows); drop the one before it.
        while after > span.dash_line + 1 && blank(after - 1) {
            after -= 1;
        }
        while first > 0 && blank(first - 1) {
            first -= 1;
        }
    }
    let from = lines[first].0;
    let to = lines.get(after).map_or(body.len(), |l| l.0);
    let to = if last && after == lines.len() {
        // The entry ends the file: its line break goes with it only when text stays before it.
        body.len()
    } else {
        to
    };
    let mut out = splice_text(body, from, to, "");
    if last && to == body.len() && from > 0 && !out.ends_with(['\n', '\r']) {
        out.push_str(first_terminator(body));
    }
    let internal = |detail: String| EditError::Internal {
        model: model.to_string(),
        key: "models".to_string(),
        detail,
    };
    let old: Value = serde_yaml::from_str(body).map_err(|e| EditError::Syntax {
        source: Box::new(e),
    })?;
    let new: Value = serde_yaml::from_str(&out)
        .map_err(|e| internal(format!("the edited text is not valid YAML ({e})")))?;
    let mut expected = old;
    if let Some(Value::Sequence(seq)) = expected.get_mut("models") {
        if index < seq.len() {
            seq.remove(index);
        }
    }
    // The last entry removed: `models:` may read as null rather than an empty list.
    let emptied = |v: &Value| {
        v.get("models")
            .is_some_and(|m| m.is_null() || m.as_sequence().is_some_and(Vec::is_empty))
    };
    let same = new == expected || {
        let (mut a, mut b) = (new.clone(), expected.clone());
        if emptied(&a) && emptied(&b) {
            if let (Some(x), Some(y)) = (a.get_mut("models"), b.get_mut("models")) {
                *x = Value::Null;
                *y = Value::Null;
            }
        }
        a == b
    };
    if !same {
        return Err(internal(
            "read back, the config differs in more than the removed entry".to_string(),
        ));
    }
    Ok(format!("{bom}{out}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Classify, ErrorClass};

    const AI_DEV: &str = include_str!("../../environments/ai-dev/config.yaml");

    /// The text removed from `a` and the text put in its place in `b` (common prefix and suffix
    /// dropped): everything outside is byte-identical.
    fn diff<'s>(a: &'s str, b: &'s str) -> (&'s str, &'s str) {
        let p = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        let s = a[p..]
            .bytes()
            .rev()
            .zip(b[p..].bytes().rev())
            .take_while(|(x, y)| x == y)
            .count();
        (&a[p..a.len() - s], &b[p..b.len() - s])
    }

    fn load(text: &str) -> EnvConfig {
        serde_yaml::from_str(text.trim_start_matches('\u{feff}')).unwrap()
    }

    fn model<'c>(cfg: &'c EnvConfig, name: &str) -> &'c crate::config::Model {
        cfg.models.iter().find(|m| m.name == name).unwrap()
    }

    #[test]
    fn the_shipped_config_round_trips_a_layer_change() {
        let moved = set_model_field(AI_DEV, "qwen-cpu", "layer", "raw-vllm").unwrap();
        assert_eq!(diff(AI_DEV, &moved), ("kserve", "raw-vllm"));
        let cfg = load(&moved);
        assert_eq!(
            model(&cfg, "qwen-cpu").layer,
            crate::config::ServingLayer::RawVllm
        );
        assert_eq!(
            model(&cfg, "qwen-llmd").layer,
            crate::config::ServingLayer::LlmD
        );
        let back = set_model_field(&moved, "qwen-cpu", "layer", "kserve").unwrap();
        assert_eq!(back, AI_DEV);
    }

    #[test]
    fn the_shipped_config_round_trips_an_added_key() {
        // `platform move`'s first edit, through the public call.
        let added = set_model_field(AI_DEV, "qwen-cpu", "moveTo", "raw-vllm").unwrap();
        assert_eq!(
            added,
            AI_DEV.replacen(
                "  - name: qwen-cpu\n",
                "  - name: qwen-cpu\n    moveTo: raw-vllm\n",
                1
            )
        );
        assert!(added.contains("  - name: qwen-cpu\n    moveTo: raw-vllm\n    layer: kserve\n"));
        assert_eq!(
            model(&load(&added), "qwen-cpu").move_to,
            Some(crate::config::ServingLayer::RawVllm)
        );
        // Removing it (the public call: the result loads) gives the original back.
        let removed = remove_model_field(&added, "qwen-cpu", "moveTo").unwrap();
        assert_eq!(removed, AI_DEV);
        // A field the types know, through the public calls both ways.
        let added = set_model_field(AI_DEV, "qwen-gpu", "namespace", "gpu-models").unwrap();
        assert_eq!(
            added,
            AI_DEV.replacen(
                "  - name: qwen-gpu\n",
                "  - name: qwen-gpu\n    namespace: gpu-models\n",
                1
            )
        );
        assert_eq!(
            model(&load(&added), "qwen-gpu").namespace.as_deref(),
            Some("gpu-models")
        );
        assert_eq!(
            remove_model_field(&added, "qwen-gpu", "namespace").unwrap(),
            AI_DEV
        );
        // Absent: a no-op.
        assert_eq!(
            remove_model_field(AI_DEV, "qwen-gpu", "moveTo").unwrap(),
            AI_DEV
        );
    }

    const CFG: &str = "\
# top comment
cluster: {name: c}   # the cluster
models:
  # first model
  - name: a          # model a
    # where it runs
    layer: kserve    # trailing comment
    preset: p
    env:
      layer: deep    # nested, same key
    storage: {dir: a, size: 1Gi}

  # between entries
  - preset: p
    layer: raw-vllm
    name: b
    prefill:
      replicas: 3
";

    #[test]
    fn comments_and_layout_survive() {
        let out = set_model_field(CFG, "a", "layer", "llm-d").unwrap();
        assert_eq!(out, CFG.replace("layer: kserve    #", "layer: llm-d    #"));
        let out = set_model_field(CFG, "a", "priority", "high").unwrap();
        assert_eq!(
            out,
            CFG.replacen("# model a\n", "# model a\n    priority: high\n", 1)
        );
        assert!(out
            .contains("  - name: a          # model a\n    priority: high\n    # where it runs\n"));
        assert_eq!(remove_model_field(&out, "a", "priority").unwrap(), CFG);
        // Removing a key keeps the comment line above it.
        let out = remove_model_field(CFG, "a", "layer").unwrap_err();
        assert!(matches!(out, EditError::WouldNotLoad { .. }), "{out}");
        let (out, _, _) = splice(CFG, "a", "layer", Change::Remove).unwrap().unwrap();
        assert_eq!(
            out,
            CFG.replacen("    layer: kserve    # trailing comment\n", "", 1)
        );
        assert!(out.contains("    # where it runs\n    preset: p\n"));
    }

    #[test]
    fn nested_keys_of_the_same_name_are_untouched() {
        let out = set_model_field(CFG, "a", "layer", "llm-d").unwrap();
        let cfg = load(&out);
        assert_eq!(
            model(&cfg, "a").env.get("layer").map(String::as_str),
            Some("deep")
        );
        assert_eq!(model(&cfg, "b").layer, crate::config::ServingLayer::RawVllm);
        // `replicas` only nested (under prefill): absent at the top, so inserted there.
        let out = set_model_field(CFG, "b", "replicas", "2").unwrap();
        assert_eq!(
            out,
            CFG.replacen("name: b\n", "name: b\n    replicas: 2\n", 1)
        );
        let cfg = load(&out);
        assert_eq!(model(&cfg, "b").replicas, 2);
        assert_eq!(model(&cfg, "b").prefill.as_ref().unwrap().replicas, 3);
        assert_eq!(remove_model_field(CFG, "b", "replicas").unwrap(), CFG);
        // `dir` only inside `storage: {..}`: the located edit adds a top-level key, and the
        // loader refuses it (Model has no `dir`), storage untouched either way.
        let (out, _, _) = splice(CFG, "a", "dir", Change::Set("x")).unwrap().unwrap();
        assert_eq!(
            out,
            CFG.replacen("# model a\n", "# model a\n    dir: x\n", 1)
        );
        assert!(out.contains("storage: {dir: a, size: 1Gi}"));
        assert!(matches!(
            set_model_field(CFG, "a", "dir", "x"),
            Err(EditError::WouldNotLoad { .. })
        ));
        assert_eq!(remove_model_field(CFG, "a", "dir").unwrap(), CFG);
    }

    #[test]
    fn name_need_not_be_the_first_key() {
        let out = set_model_field(CFG, "b", "layer", "kserve").unwrap();
        assert_eq!(diff(CFG, &out), ("raw-vllm", "kserve"));
        let out = set_model_field(CFG, "b", "namespace", "ns").unwrap();
        assert!(out.contains("    name: b\n    namespace: ns\n    prefill:\n"));
        // The first key, on the `- ` line: the next key moves up.
        let out = remove_model_field(CFG, "b", "preset").unwrap_err();
        assert!(matches!(out, EditError::WouldNotLoad { .. }), "{out}");
        let (out, _, _) = splice(CFG, "b", "preset", Change::Remove).unwrap().unwrap();
        assert!(
            out.contains("  # between entries\n  - layer: raw-vllm\n    name: b\n"),
            "{out}"
        );
    }

    #[test]
    fn crlf_line_endings_are_kept() {
        let crlf = CFG.replace('\n', "\r\n");
        let out = set_model_field(&crlf, "a", "layer", "llm-d").unwrap();
        assert_eq!(diff(&crlf, &out), ("kserve", "llm-d"));
        let out = set_model_field(&crlf, "a", "namespace", "ns").unwrap();
        assert_eq!(
            out,
            crlf.replacen("# model a\r\n", "# model a\r\n    namespace: ns\r\n", 1)
        );
        assert!(!out.replace("\r\n", "").contains('\n'));
        assert_eq!(remove_model_field(&out, "a", "namespace").unwrap(), crlf);
    }

    #[test]
    fn last_line_without_line_ending_and_bom() {
        let text = "\u{feff}cluster: {name: c}\nmodels:\n- name: a\n  layer: kserve\n  preset: p";
        let out = set_model_field(text, "a", "preset", "q").unwrap();
        assert_eq!(diff(text, &out), ("p", "q"));
        let short = "\u{feff}cluster: {name: c}\nmodels:\n- layer: kserve\n  preset: p\n  name: a";
        let out = set_model_field(short, "a", "namespace", "ns").unwrap();
        assert_eq!(out, format!("{short}\n  namespace: ns"));
        assert!(out.starts_with('\u{feff}'));
        assert_eq!(remove_model_field(&out, "a", "namespace").unwrap(), short);
    }

    #[test]
    fn flow_style_is_refused_with_the_fix() {
        let text = "cluster: {name: c}\nmodels:\n- {name: a, layer: kserve, preset: p}\n";
        let err = set_model_field(text, "a", "layer", "llm-d").unwrap_err();
        assert!(matches!(err, EditError::FlowStyle { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("model `a` is written in flow style"), "{msg}");
        assert!(msg.contains("write it as `- name: a`"), "{msg}");
        let text = "cluster: {name: c}\nmodels: [{name: a, layer: kserve, preset: p}]\n";
        assert!(matches!(
            remove_model_field(text, "a", "layer"),
            Err(EditError::FlowStyle { .. })
        ));
        // A flow map inside a block entry is a value like any other: not the entry.
        let text = "cluster: {name: c}\nmodels:\n- name: a\n  layer: kserve\n  preset: p\n  storage: {dir: d}\n";
        let err = set_model_field(text, "a", "storage", "x").unwrap_err();
        assert!(
            matches!(err, EditError::NotScalar { what: "a map", .. }),
            "{err}"
        );
    }

    #[test]
    fn a_missing_model_is_named_with_a_hint() {
        let err = set_model_field(AI_DEV, "qwen-cpuu", "layer", "kserve").unwrap_err();
        assert_eq!(
            err.to_string(),
            "model `qwen-cpuu` not found under `models:`: did you mean `qwen-cpu`?"
        );
        let err = remove_model_field(AI_DEV, "mistral", "layer").unwrap_err();
        assert!(
            err.to_string()
                .contains("(models there: qwen-cpu, qwen-gpu, qwen-llmd): check the name"),
            "{err}"
        );
        assert!(matches!(
            set_model_field("cluster: {name: c}\n", "a", "layer", "kserve"),
            Err(EditError::NoModels)
        ));
        let err = set_model_field("cluster: {name: c}\nmodels:\n", "a", "layer", "k").unwrap_err();
        assert!(err.to_string().contains("the list is empty"), "{err}");
        assert_eq!(err.class(), ErrorClass::Input);
    }

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(render("raw-vllm", TScalarStyle::Plain), "raw-vllm");
        assert_eq!(render("2", TScalarStyle::Plain), "2");
        assert_eq!(render("a:b", TScalarStyle::Plain), "a:b");
        assert_eq!(render("a: b", TScalarStyle::Plain), "'a: b'");
        assert_eq!(render("a #b", TScalarStyle::Plain), "'a #b'");
        assert_eq!(render("#x", TScalarStyle::Plain), "'#x'");
        assert_eq!(render("*x", TScalarStyle::Plain), "'*x'");
        assert_eq!(render("[x]", TScalarStyle::Plain), "'[x]'");
        assert_eq!(render(" x", TScalarStyle::Plain), "' x'");
        assert_eq!(render("", TScalarStyle::Plain), "''");
        assert_eq!(render("it's: x", TScalarStyle::Plain), "'it''s: x'");
        assert_eq!(render("a\nb\"", TScalarStyle::Plain), "\"a\\nb\\\"\"");
        // An existing value's quotes are kept.
        assert_eq!(render("x", TScalarStyle::SingleQuoted), "'x'");
        assert_eq!(render("x", TScalarStyle::DoubleQuoted), "\"x\"");
        let text =
            "cluster: {name: c}\nmodels:\n- name: \"a\"\n  layer: \"kserve\" # q\n  preset: 'p'\n";
        let out = set_model_field(text, "a", "layer", "llm-d").unwrap();
        assert_eq!(diff(text, &out), ("kserve", "llm-d"));
        let out = set_model_field(text, "a", "preset", "it's").unwrap();
        assert_eq!(diff(text, &out), ("p", "it''s"));
        assert_eq!(model(&load(&out), "a").preset, "it's");
        let out = set_model_field(text, "a", "namespace", "a: b").unwrap();
        assert!(out.contains("\n  namespace: 'a: b'\n"), "{out}");
        assert_eq!(model(&load(&out), "a").namespace.as_deref(), Some("a: b"));
    }

    #[test]
    fn an_empty_value_is_filled_after_its_colon() {
        let text = "cluster: {name: c}\nmodels:\n- name: a\n  layer: kserve\n  preset: p\n  namespace:   # later\n";
        let out = set_model_field(text, "a", "namespace", "ns").unwrap();
        assert_eq!(out, text.replace("namespace:   #", "namespace: ns   #"));
        assert!(out.ends_with("  namespace: ns   # later\n"));
        let out = remove_model_field(text, "a", "namespace").unwrap();
        assert_eq!(out, text.replacen("  namespace:   # later\n", "", 1));
    }

    #[test]
    fn what_cannot_be_edited_in_place_is_refused() {
        let base = "cluster: {name: c}\nmodels:\n- name: a\n  layer: kserve\n  preset: p\n";
        let err = |extra: &str, key: &str| {
            set_model_field(&format!("{base}{extra}"), "a", key, "x").unwrap_err()
        };
        assert!(matches!(
            err("  args: [--x]\n", "args"),
            EditError::NotScalar { what: "a list", .. }
        ));
        assert!(matches!(
            err("  revision: |\n    main\n", "revision"),
            EditError::MultiLine { .. }
        ));
        assert!(matches!(
            err("  revision: 'a\n    b'\n", "revision"),
            EditError::MultiLine { .. }
        ));
        assert!(matches!(
            err("  revision: !!str main\n", "revision"),
            EditError::Tagged { .. }
        ));
        assert!(matches!(
            err("  revision: &r main\n", "revision"),
            EditError::AnchoredValue { .. }
        ));
        assert!(matches!(
            err("  revision: a\n  revision: b\n", "revision"),
            EditError::DuplicateField { .. }
        ));
        let dup = format!("{base}- name: a\n  layer: kserve\n  preset: p\n");
        assert!(matches!(
            set_model_field(&dup, "a", "layer", "x"),
            Err(EditError::DuplicateModel { count: 2, .. })
        ));
        let anchored =
            "cluster: {name: c}\nmodels:\n- &m\n  name: a\n  layer: kserve\n  preset: p\n";
        assert!(matches!(
            set_model_field(anchored, "a", "layer", "x"),
            Err(EditError::AnchoredEntry { .. })
        ));
        let e = set_model_field(base, "a", "name", "b").unwrap_err();
        assert_eq!(e.class(), ErrorClass::Internal);
        assert!(matches!(
            set_model_field(base, "a", "a: b", "x"),
            Err(EditError::InvalidKey { .. })
        ));
        assert!(matches!(
            set_model_field("models: [a\n", "a", "layer", "x"),
            Err(EditError::Syntax { .. })
        ));
    }

    #[test]
    fn a_config_broken_before_the_edit_is_reported_as_such() {
        let text =
            "cluster: {name: c}\nmodels:\n- name: a\n  layer: kserve\n  preset: p\n  typo: 1\n";
        let err = set_model_field(text, "a", "layer", "llm-d").unwrap_err();
        assert!(matches!(err, EditError::AlreadyInvalid { .. }), "{err}");
        // Removing the offending key is fine: the result loads.
        let out = remove_model_field(text, "a", "typo").unwrap();
        assert_eq!(out, text.replacen("  typo: 1\n", "", 1));
    }

    #[test]
    fn the_check_catches_an_edit_that_changed_more() {
        let before = "cluster: {name: c}\nmodels:\n- name: a\n  layer: kserve\n  preset: p\n";
        let after = "cluster: {name: d}\nmodels:\n- name: a\n  layer: llm-d\n  preset: p\n";
        let err = check(before, after, 0, "a", "layer", Some("llm-d")).unwrap_err();
        assert!(matches!(err, EditError::Internal { .. }), "{err}");
        let after = "cluster: {name: c}\nmodels:\n- name: a\n  layer: llm-d\n  preset: p\n";
        check(before, after, 0, "a", "layer", Some("llm-d")).unwrap();
    }

    fn extra() -> Vec<(String, NewValue)> {
        vec![
            ("layer".into(), NewValue::Str("raw-vllm".into())),
            (
                "source".into(),
                NewValue::Str("hf://Qwen/Qwen2.5-0.5B-Instruct".into()),
            ),
            ("preset".into(), NewValue::Str("vllm-cpu".into())),
            ("gpus".into(), NewValue::Num(0)),
            (
                "resources".into(),
                NewValue::Map(vec![(
                    "requests".into(),
                    NewValue::Map(vec![
                        ("cpu".into(), NewValue::Str("2".into())),
                        ("memory".into(), NewValue::Str("6Gi".into())),
                    ]),
                )]),
            ),
        ]
    }

    #[test]
    fn add_model_appends_an_entry_and_keeps_every_other_byte() {
        let out = add_model(AI_DEV, "qwen-extra", &extra()).unwrap();
        assert_eq!(
            out,
            format!("{AI_DEV}\n  - name: qwen-extra\n    layer: raw-vllm\n    source: hf://Qwen/Qwen2.5-0.5B-Instruct\n    \
             preset: vllm-cpu\n    gpus: 0\n    resources:\n      requests:\n        cpu: \"2\"\n        memory: 6Gi\n"),
            "{out}"
        );
        let cfg: EnvConfig = serde_yaml::from_str(&out).unwrap();
        assert_eq!(cfg.models.len(), 4);
        let e = add_model(AI_DEV, "qwen-gpu", &extra()).unwrap_err();
        assert!(matches!(e, EditError::ModelExists { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("(models there: qwen-cpu, qwen-gpu, qwen-llmd)"),
            "{e}"
        );
        // An empty list, and one entry: no blank line added.
        let out = add_model("models:\nother: 1\n", "m", &extra()[..1]).unwrap();
        assert_eq!(out, "models:\n  - name: m\n    layer: raw-vllm\nother: 1\n");
        let out = add_model(
            "models:\n- name: a\n  layer: kserve\n# end\n",
            "b",
            &extra()[..1],
        )
        .unwrap();
        assert_eq!(
            out,
            "models:\n- name: a\n  layer: kserve\n- name: b\n  layer: raw-vllm\n# end\n"
        );
        assert!(matches!(
            add_model("models: []\n", "m", &extra()),
            Err(EditError::ListLayout { .. })
        ));
    }

    #[test]
    fn remove_model_takes_its_entry_and_comments_only() {
        let gpu_from = AI_DEV.find("  # The same model family").unwrap();
        let gpu_to = AI_DEV.find("  # llm-d prefill/decode").unwrap();
        let out = remove_model(AI_DEV, "qwen-gpu").unwrap();
        assert_eq!(out, format!("{}{}", &AI_DEV[..gpu_from], &AI_DEV[gpu_to..]));
        let cpu_from = AI_DEV.find("  # Qwen 0.5B on CPU").unwrap();
        let out = remove_model(AI_DEV, "qwen-cpu").unwrap();
        assert_eq!(
            out,
            format!("{}{}", &AI_DEV[..cpu_from], &AI_DEV[gpu_from..])
        );
        // The last one: the blank line before it goes, the file still ends with a line break.
        let out = remove_model(AI_DEV, "qwen-llmd").unwrap();
        let before_gap = AI_DEV[..gpu_to].trim_end_matches('\n');
        assert_eq!(out, format!("{before_gap}\n"));
        let e = remove_model(AI_DEV, "qwen-xl").unwrap_err();
        assert!(matches!(e, EditError::ModelNotFound { .. }), "{e}");
        // Add then remove: the original text again.
        let added = add_model(AI_DEV, "qwen-extra", &extra()).unwrap();
        assert_eq!(remove_model(&added, "qwen-extra").unwrap(), AI_DEV);
    }
}
