//! Where a field path (`models[qwen-cpu].resources.limits.cpu`, `features.kserv`) is in a YAML text.
//!
//! The typed load (serde_yaml_ng) keeps no positions once it succeeded, and the semantic checks
//! name fields by path. This second pass parses the same text with yaml-rust2's marked events into
//! a small tree of positioned nodes and walks the path down it, so a check only has to say *which*
//! field is wrong and every diagnostic still gets its line and column.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A place in the text: 1-based line, 0-based character column, and how many characters the
/// token spans on that line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

/// A positioned YAML node.
#[derive(Debug)]
pub struct Node {
    span: Span,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Scalar(String),
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
}

/// One step of a field path.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    /// `.key`
    Key(&'a str),
    /// `[name]` or `[3]`: a sequence item by its `name` (or its text, or its index), or a key.
    Select(&'a str),
}

/// Parse `text` into positioned nodes (the first document); `None` when it is not valid YAML.
pub fn parse(text: &str) -> Option<Node> {
    let mut b = Builder::default();
    Parser::new_from_str(text).load(&mut b, false).ok()?;
    b.root
}

/// The span of the field `path` in `root`, or of its deepest ancestor present in the text (a
/// field left at its default is not written). `message` picks between key and value: the value
/// when the message quotes it (`` `Qwen_CPU` is not a valid name``, also one value of a list or
/// map at the path), else the key. The flag says the span is such a quoted value (exact).
pub fn find(root: &Node, path: &str, message: &str) -> Option<(Span, bool)> {
    let steps = steps(path)?;
    let mut node = root;
    let mut best: Option<Span> = None;
    for step in &steps {
        let Some((at, next)) = child(node, step) else {
            break;
        };
        best = Some(at);
        node = next;
    }
    let best = best?;
    let quoted = |n: &Node| matches!(&n.kind, Kind::Scalar(v) if !v.is_empty() && message.contains(&format!("`{v}`")));
    let exact = match &node.kind {
        Kind::Scalar(_) => Some(node).filter(|n| quoted(n)),
        Kind::Seq(items) => items.iter().find(|i| quoted(i)),
        Kind::Map(entries) => entries.iter().map(|(_, v)| v).find(|v| quoted(v)),
    };
    Some(exact.map_or((best, false), |n| (n.span, true)))
}

/// `a.b[c][0].d` as steps; `None` for text that is not a field path (a flag such as `--profile`).
fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Step::Select(&r[..end]));
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() || key.contains(char::is_whitespace) || key.starts_with('-') {
                return None;
            }
            out.push(Step::Key(key));
            rest = &r[end..];
        }
    }
    Some(out)
}

/// The node one step below `node`, with the span that step points at (a key, a name, an item).
fn child<'n>(node: &'n Node, step: &Step<'_>) -> Option<(Span, &'n Node)> {
    match (&node.kind, step) {
        (Kind::Map(entries), Step::Key(k) | Step::Select(k)) => entries
            .iter()
            .find(|(key, _)| matches!(&key.kind, Kind::Scalar(s) if s == k))
            .map(|(key, value)| (key.span, value)),
        (Kind::Seq(items), Step::Select(sel)) => select(items, sel),
        _ => None,
    }
}

/// A sequence item by its `name:` (pointing at the name), its text, or its index.
fn select<'n>(items: &'n [Node], sel: &str) -> Option<(Span, &'n Node)> {
    for item in items {
        match &item.kind {
            Kind::Map(entries) => {
                let name = entries.iter().find(|(k, _)| scalar(k) == Some("name"));
                if let Some((_, v)) = name.filter(|(_, v)| scalar(v) == Some(sel)) {
                    return Some((v.span, item));
                }
            }
            Kind::Scalar(s) if s == sel => return Some((item.span, item)),
            _ => {}
        }
    }
    let i: usize = sel.parse().ok()?;
    items.get(i).map(|item| (item.span, item))
}

fn scalar(n: &Node) -> Option<&str> {
    match &n.kind {
        Kind::Scalar(s) => Some(s),
        _ => None,
    }
}

/// Builds the node tree from parser events.
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    done: bool,
}

enum Frame {
    Map(Span, Vec<(Node, Node)>, Option<Node>),
    Seq(Span, Vec<Node>),
}

impl Builder {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, key)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => {
                self.root = Some(node);
                self.done = true;
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        let at = |len| Span {
            line: mark.line(),
            col: mark.col(),
            len,
        };
        match ev {
            Event::Scalar(v, style, _, _) => {
                let quotes = matches!(
                    style,
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted
                );
                let len = match style {
                    TScalarStyle::Literal | TScalarStyle::Folded => 1,
                    _ => v.chars().count().max(1) + if quotes { 2 } else { 0 },
                };
                self.push(Node {
                    span: at(len),
                    kind: Kind::Scalar(v),
                });
            }
            Event::Alias(_) => self.push(Node {
                span: at(1),
                kind: Kind::Scalar(String::new()),
            }),
            Event::MappingStart(..) => self.stack.push(Frame::Map(at(1), Vec::new(), None)),
            Event::SequenceStart(..) => self.stack.push(Frame::Seq(at(1), Vec::new())),
            Event::MappingEnd => {
                if let Some(Frame::Map(span, entries, _)) = self.stack.pop() {
                    // A block mapping's start mark is not where it is written: use its first key.
                    let span = entries.first().map_or(span, |(k, _)| k.span);
                    self.push(Node {
                        span,
                        kind: Kind::Map(entries),
                    });
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(span, items)) = self.stack.pop() {
                    self.push(Node {
                        span,
                        kind: Kind::Seq(items),
                    });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
cluster:
  name: ai-dev
features:
  kserve: true
  kserv: true
models:
- name: qwen-cpu
  resources:
    limits: {cpu: \"2\", memory: 4Gi}
- name: Qwen_CPU
  args: [--a, --b]
";

    fn at(path: &str, message: &str) -> Option<(usize, usize, usize)> {
        let root = parse(CONFIG).unwrap();
        find(&root, path, message).map(|(s, _)| (s.line, s.col + 1, s.len))
    }

    #[test]
    fn keys_names_and_indexes_are_found() {
        assert_eq!(at("features.kserv", "unknown feature"), Some((5, 3, 5)));
        assert_eq!(at("models[qwen-cpu]", "dup"), Some((7, 9, 8)));
        assert_eq!(at("models[1]", "x"), Some((10, 3, 4)));
        assert_eq!(
            at("models[qwen-cpu].resources.limits.cpu", "x"),
            Some((9, 14, 3))
        );
    }

    #[test]
    fn the_value_when_the_message_quotes_it() {
        assert_eq!(
            at(
                "models[Qwen_CPU].name",
                "`Qwen_CPU` is not a valid Kubernetes name"
            ),
            Some((10, 9, 8))
        );
        assert_eq!(
            at("models[Qwen_CPU].args", "`--b` is set by platform"),
            Some((11, 15, 3))
        );
        assert_eq!(
            at("models[qwen-cpu].resources.limits", "`4Gi` is below"),
            Some((9, 32, 3))
        );
        // A quoted scalar spans its quotes.
        assert_eq!(
            at("models[qwen-cpu].resources.limits.cpu", "`2` is too small"),
            Some((9, 19, 3))
        );
    }

    #[test]
    fn a_missing_field_points_at_its_deepest_ancestor() {
        assert_eq!(at("models[qwen-cpu].storage.dir", "x"), Some((7, 9, 8)));
        assert_eq!(at("nothere.x", "x"), None);
        assert_eq!(at("--profile", "x"), None);
    }

    #[test]
    fn invalid_yaml_has_no_tree() {
        assert!(parse("a: [b\n").is_none());
    }
}
