//! Templates: minijinja with strict undefined, embedded in the binary; a file of the same name under
//! the repo's `templates/` overrides the embedded one (and new names there become available).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Value as Json;

use crate::consts;

/// The templates compiled into the binary: (name, source).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "appproject.yaml.j2",
        include_str!("../../templates/appproject.yaml.j2"),
    ),
    (
        "root-application.yaml.j2",
        include_str!("../../templates/root-application.yaml.j2"),
    ),
    (
        "application.yaml.j2",
        include_str!("../../templates/application.yaml.j2"),
    ),
    (
        "namespace.yaml.j2",
        include_str!("../../templates/namespace.yaml.j2"),
    ),
    (
        "gateway.yaml.j2",
        include_str!("../../templates/gateway.yaml.j2"),
    ),
    (
        "model-pvc.yaml.j2",
        include_str!("../../templates/model-pvc.yaml.j2"),
    ),
    (
        "raw-vllm-deployment.yaml.j2",
        include_str!("../../templates/raw-vllm-deployment.yaml.j2"),
    ),
    (
        "raw-vllm-service.yaml.j2",
        include_str!("../../templates/raw-vllm-service.yaml.j2"),
    ),
    (
        "raw-vllm-autoscaler.yaml.j2",
        include_str!("../../templates/raw-vllm-autoscaler.yaml.j2"),
    ),
    (
        "catalog-objects.yaml.j2",
        include_str!("../../templates/catalog-objects.yaml.j2"),
    ),
    (
        "routing-gateway.yaml.j2",
        include_str!("../../templates/routing-gateway.yaml.j2"),
    ),
    (
        "model-referencegrant.yaml.j2",
        include_str!("../../templates/model-referencegrant.yaml.j2"),
    ),
    (
        "model-httproute.yaml.j2",
        include_str!("../../templates/model-httproute.yaml.j2"),
    ),
    (
        "kserve-inferenceservice.yaml.j2",
        include_str!("../../templates/kserve-inferenceservice.yaml.j2"),
    ),
    (
        "kserve-s3-serviceaccount.yaml.j2",
        include_str!("../../templates/kserve-s3-serviceaccount.yaml.j2"),
    ),
    (
        "kserve-servingruntimes.yaml.j2",
        include_str!("../../templates/kserve-servingruntimes.yaml.j2"),
    ),
    (
        "llmd-llminferenceservice.yaml.j2",
        include_str!("../../templates/llmd-llminferenceservice.yaml.j2"),
    ),
    (
        "model-networkpolicy.yaml.j2",
        include_str!("../../templates/model-networkpolicy.yaml.j2"),
    ),
    (
        "argocd-kustomization.yaml.j2",
        include_str!("../../templates/argocd-kustomization.yaml.j2"),
    ),
    (
        "argocd-configmap-patch.yaml.j2",
        include_str!("../../templates/argocd-configmap-patch.yaml.j2"),
    ),
    (
        "groups.generated.yaml.j2",
        include_str!("../../templates/groups.generated.yaml.j2"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A template file that is not a readable regular text file (the error names the path).
    #[error("cannot read a template: {0}")]
    Read(crate::fsread::ReadError),
    #[error("template {name} ({origin}) rendered no YAML (only blank lines or comments): every generated file holds at least one object; fix the template")]
    Empty { name: String, origin: String },
    /// A syntax error (on load) or a render error: `file` is how the template is named
    /// (`templates/<name>` for the repository's, `<name> (embedded)`), line and column (1-based,
    /// in characters) where minijinja points.
    #[error("template {file}{}: {message}", at(*.line, *.column))]
    Render {
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("template `{0}` does not exist (neither embedded nor under templates/)")]
    Unknown(String),
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

impl TemplateError {
    /// This error as a finding about the template (for `lint`, whose report holds every problem).
    pub fn diagnostic(&self) -> crate::diag::Diagnostic {
        use crate::diag::Diagnostic;
        match self {
            TemplateError::Read(e) => Diagnostic::error(e.reason()).file(e.path()),
            TemplateError::Render {
                file,
                line,
                column,
                message,
            } => {
                let d = Diagnostic::error(message.clone()).file(file);
                match (line, column) {
                    (Some(l), Some(c)) => d.at(*l, *c),
                    (Some(l), None) => d.at(*l, 1),
                    _ => d,
                }
            }
            other => Diagnostic::error(other.to_string()),
        }
    }
}

/// Where each template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Embedded,
    Repo(PathBuf),
}

/// The templates' names and texts, read but not compiled: the catalog needs only the names, so
/// compiling can go on meanwhile ([`crate::pipeline::load`]).
pub struct TemplateSources {
    sources: BTreeMap<String, String>,
    origins: BTreeMap<String, Origin>,
}

impl TemplateSources {
    /// The embedded templates, overridden/extended by `repo/templates/*.j2`.
    pub fn read(repo: &Path) -> Result<TemplateSources, TemplateError> {
        let mut origins = BTreeMap::new();
        let mut sources: BTreeMap<String, String> = EMBEDDED
            .iter()
            .map(|(n, s)| {
                origins.insert(n.to_string(), Origin::Embedded);
                (n.to_string(), s.to_string())
            })
            .collect();
        let dir = repo.join(consts::TEMPLATES_DIR);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                // Every other `*.j2` entry is read, so a FIFO, a device or a huge file is an
                // error naming it, never a hang (nor silently skipped).
                if !name.ends_with(".j2") || path.is_dir() {
                    continue;
                }
                let text =
                    crate::fsread::read_text(&path, crate::fsread::MAX_INPUT_BYTES, "template")
                        .map_err(TemplateError::Read)?;
                // Kept for diagnostics, which show the offending line under the message.
                crate::diag::remember(&shown_path(&name), &text);
                origins.insert(name.clone(), Origin::Repo(path));
                sources.insert(name, text);
            }
        }
        Ok(TemplateSources { sources, origins })
    }

    /// The names of every template (embedded and the repository's).
    pub fn names(&self) -> BTreeSet<String> {
        self.origins.keys().cloned().collect()
    }

    /// Compiles every template: the errors name the template and the place in it.
    pub fn compile(self) -> Result<Templates, TemplateError> {
        let TemplateSources { sources, origins } = self;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // minijinja would JSON-escape `*.yaml.j2` by default; our templates escape through `| yaml`.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_filter("yaml", yaml_filter);
        for (name, text) in sources {
            let file = shown(&origins, &name);
            if let Err(e) = env.add_template_owned(name.clone(), text.clone()) {
                return Err(render_error(&file, Some(&text), &e));
            }
        }
        Ok(Templates { env, origins })
    }
}

/// The set of templates for one repo, ready to render.
pub struct Templates {
    env: Environment<'static>,
    origins: BTreeMap<String, Origin>,
}

impl Templates {
    /// Embedded templates, overridden/extended by `repo/templates/*.j2`.
    pub fn load(repo: &Path) -> Result<Templates, TemplateError> {
        TemplateSources::read(repo)?.compile()
    }

    /// How messages name template `name`: `templates/<name>` (the repository's file) or
    /// `<name> (embedded)`.
    pub fn shown(&self, name: &str) -> String {
        shown(&self.origins, name)
    }

    pub fn names(&self) -> BTreeSet<String> {
        self.origins.keys().cloned().collect()
    }

    pub fn origin(&self, name: &str) -> Option<&Origin> {
        self.origins.get(name)
    }

    /// The source text of a loaded template.
    pub fn source(&self, name: &str) -> Option<String> {
        self.env
            .get_template(name)
            .ok()
            .map(|t| t.source().to_string())
    }

    /// Render a template with a context made by [`context`] (made once and shared by every
    /// template of a model: converting it was a third of rendering, issue 14).
    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let t = self
            .env
            .get_template(name)
            .map_err(|_| TemplateError::Unknown(name.to_string()))?;
        t.render(ctx).map_err(|e| {
            // The error may lie in another template (an include): name and place that one.
            let at = e.name().unwrap_or(name);
            let template = self.env.get_template(at).ok();
            render_error(&self.shown(at), template.as_ref().map(|t| t.source()), &e)
        })
    }

    /// Render a template into the text of a generated file. The generated header is the
    /// renderer's, not the template's: a first line carrying the marker (the shipped templates'
    /// `{{ header }}`) is replaced by it, and a template without one still gets it. A render with
    /// no YAML content is an error naming the template.
    pub fn render_file(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let text = self.render(name, ctx)?;
        let body = if text.starts_with(consts::GENERATED_MARKER) {
            text.split_once('\n').map_or("", |(_, rest)| rest)
        } else {
            text.as_str()
        };
        let has_content = body
            .lines()
            .map(str::trim)
            .any(|l| !l.is_empty() && !l.starts_with('#') && l != "---" && l != "...");
        if !has_content {
            return Err(TemplateError::Empty {
                name: name.to_string(),
                origin: match self.origins.get(name) {
                    Some(Origin::Repo(_)) => format!("from {}", shown_path(name).display()),
                    _ => "embedded".to_string(),
                },
            });
        }
        // The shipped templates write the header themselves: the text is kept as it is (a copy
        // of every rendered file was 13 MB of a 1000-model render, issue 24).
        if text
            .strip_prefix(consts::GENERATED_HEADER)
            .is_some_and(|rest| rest.starts_with('\n'))
        {
            // Kept by the tree: give back the room it grew with (in place, mostly).
            let mut text = text;
            text.shrink_to_fit();
            return Ok(text);
        }
        Ok(format!("{}\n{body}", consts::GENERATED_HEADER))
    }
}

/// A template context from the JSON the context module builds (converted where a template looks
/// inside, [`super::lazy`]).
pub fn context(json: serde_json::Value) -> Value {
    super::lazy::value(json)
}

/// `templates/<name>`.
fn shown_path(name: &str) -> std::path::PathBuf {
    Path::new(consts::TEMPLATES_DIR).join(name)
}

fn shown(origins: &BTreeMap<String, Origin>, name: &str) -> String {
    match origins.get(name) {
        Some(Origin::Repo(_)) => shown_path(name).display().to_string(),
        _ => format!("{name} (embedded)"),
    }
}

/// A minijinja error as [`TemplateError::Render`]: its kind and detail, the text it points at
/// quoted (`undefined value` says which), line and column from its byte range in `source`.
fn render_error(file: &str, source: Option<&str>, e: &minijinja::Error) -> TemplateError {
    let mut message = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let span = e.range().zip(source).and_then(|(r, src)| {
        let text = src.get(r.clone())?;
        let line_start = src[..r.start].rfind('\n').map_or(0, |i| i + 1);
        let column = src[line_start..r.start].chars().count() + 1;
        let line = src[..r.start].matches('\n').count() + 1;
        Some((text, line, column))
    });
    if let Some((text, _, _)) = span.filter(|(t, _, _)| !t.contains('\n') && t.len() <= 80) {
        if !message.contains(text) {
            message.push_str(&format!(" (`{}`)", text.trim()));
        }
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        message.push_str(&format!(": {s}"));
        src = s.source();
    }
    TemplateError::Render {
        file: file.to_string(),
        line: span.map(|(_, l, _)| l).or(e.line()),
        column: span.map(|(_, _, c)| c),
        message,
    }
}

/// `{{ value | yaml }}` renders a scalar inline (quoted when YAML would misread it: "4", "true");
/// `{{ value | yaml(N) }}` renders a mapping or list as a block on the following lines, indented by N
/// spaces (empty ones inline as `{}` / `[]`).
fn yaml_filter(value: Value, indent: Option<usize>) -> Result<String, minijinja::Error> {
    let err = |e: &dyn std::fmt::Display| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("yaml filter: {e}"),
        )
    };
    // The contexts' JSON as it is (crate::render::lazy); anything else a template made, converted.
    let converted;
    let json = match value.downcast_object_ref::<super::lazy::JsonNode>() {
        Some(node) => node.json(),
        None => {
            converted = serde_json::to_value(&value).map_err(|e| err(&e))?;
            &converted
        }
    };
    if let Some(out) = fast_yaml(json, indent.unwrap_or(0)) {
        return Ok(out);
    }
    let is_block = match json {
        serde_json::Value::Object(m) => !m.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        _ => false,
    };
    let text = serde_yaml::to_string(json).map_err(|e| err(&e))?;
    if !is_block {
        let t = text.trim_end();
        if t.contains('\n') {
            // A multi-line string: keep it a single-line JSON string.
            return Ok(json.to_string());
        }
        return Ok(t.to_string());
    }
    let pad = " ".repeat(indent.unwrap_or(0));
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.trim_end().lines() {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(out)
}

/// The `yaml` filter's output without a YAML emitter per call (issue 14: one per filter call was
/// a third of rendering): blocks are laid out here as serde_yaml lays them out (mapping values
/// indented by two, sequences at their key's indent), and each scalar is quoted exactly as
/// serde_yaml quotes it, asked once per distinct string. None (use serde_yaml) for what this does
/// not lay out: floats, multi-line strings, a sequence directly in a sequence.
fn fast_yaml(v: &Json, indent: usize) -> Option<String> {
    let mut out = String::with_capacity(match v {
        Json::Object(_) | Json::Array(_) => 256,
        _ => 32,
    });
    match v {
        Json::Object(m) if !m.is_empty() => block_map(m, indent, true, &mut out)?,
        Json::Array(a) if !a.is_empty() => block_seq(a, indent, &mut out)?,
        _ => inline_scalar(v, &mut out)?,
    }
    Some(out)
}

fn pad(out: &mut String, indent: usize) {
    const SPACES: &str = "                                ";
    let mut left = indent;
    while left > 0 {
        let n = left.min(SPACES.len());
        out.push_str(&SPACES[..n]);
        left -= n;
    }
}

fn block_map(
    m: &serde_json::Map<String, Json>,
    indent: usize,
    newline_first: bool,
    out: &mut String,
) -> Option<()> {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || newline_first {
            out.push('\n');
            pad(out, indent);
        }
        push_scalar_str(k, out)?;
        out.push(':');
        block_value(v, indent, out)?;
    }
    Some(())
}

/// A mapping's value after `key:`.
fn block_value(v: &Json, indent: usize, out: &mut String) -> Option<()> {
    match v {
        Json::Object(m) if !m.is_empty() => block_map(m, indent + 2, true, out),
        Json::Array(a) if !a.is_empty() => block_seq(a, indent, out),
        _ => {
            out.push(' ');
            inline_scalar(v, out)
        }
    }
}

fn block_seq(a: &[Json], indent: usize, out: &mut String) -> Option<()> {
    for item in a {
        out.push('\n');
        pad(out, indent);
        out.push_str("- ");
        match item {
            Json::Object(m) if !m.is_empty() => block_map(m, indent + 2, false, out)?,
            Json::Array(a) if !a.is_empty() => return None,
            _ => inline_scalar(item, out)?,
        }
    }
    Some(())
}

fn inline_scalar(v: &Json, out: &mut String) -> Option<()> {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) if n.is_i64() || n.is_u64() => {
            use std::fmt::Write;
            write!(out, "{n}").ok()?;
        }
        Json::String(s) => push_scalar_str(s, out)?,
        Json::Object(_) => out.push_str("{}"),
        Json::Array(_) => out.push_str("[]"),
        Json::Number(_) => return None,
    }
    Some(())
}

/// Whether serde_yaml surely writes `s` plain (asking it costs an emitter, and the memo a hash):
/// a letter, `/` or `--` and a letter first (names, paths, a runtime's flags), then only letters,
/// digits, `-`, `_`, `.`, `/`, `=`, `@` and `:` not last (no `: `, no space, nothing YAML gives a
/// meaning there, and no number starts so), and none of the words YAML 1.1 or 1.2 reads as a
/// bool, null or float.
fn is_plain_safe(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf",
    ];
    let b = s.as_bytes();
    let first_ok = match b {
        [c, ..] if c.is_ascii_alphabetic() || *c == b'/' => true,
        [b'-', b'-', c, ..] => c.is_ascii_alphabetic(),
        _ => false,
    };
    first_ok
        && b.iter().all(|&c| PLAIN_SAFE[usize::from(c)])
        && b.last() != Some(&b':')
        && (b.len() > 5 || !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)))
}

/// The bytes [`is_plain_safe`] lets through after the first, by value.
const PLAIN_SAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'/' | b'=' | b'@' | b':');
        c += 1;
    }
    t
};

/// A string as serde_yaml writes it (plain, or quoted when YAML would misread it), memoised: the
/// same names, labels and flags recur in every model.
fn push_scalar_str(s: &str, out: &mut String) -> Option<()> {
    use foldhash::HashMap;
    use std::cell::RefCell;
    thread_local! {
        static SCALARS: RefCell<HashMap<String, Option<String>>> = RefCell::new(HashMap::default());
    }
    if is_plain_safe(s) {
        out.push_str(s);
        return Some(());
    }
    if s.contains('\n') {
        return None;
    }
    SCALARS.with(|c| {
        if let Some(hit) = c.borrow().get(s) {
            out.push_str(hit.as_deref()?);
            return Some(());
        }
        let text = serde_yaml::to_string(s).ok();
        let quoted = text
            .as_deref()
            .map(str::trim_end)
            .filter(|t| !t.contains('\n') && !t.starts_with("---"))
            .map(str::to_string);
        out.push_str(quoted.as_deref()?);
        let mut c = c.borrow_mut();
        // Bounded: a fleet's distinct strings are model names and a few dozen constants.
        if c.len() > 100_000 {
            c.clear();
        }
        c.insert(s.to_string(), quoted);
        Some(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, ctx: serde_json::Value) -> Result<String, TemplateError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/t.j2"), src).unwrap();
        Templates::load(dir.path())
            .unwrap()
            .render("t.j2", &context(ctx))
    }

    #[test]
    fn yaml_filter_quotes_ambiguous_scalars_and_indents_blocks() {
        let out = render(
            "w: {{ w | yaml }}\nb: {{ b | yaml }}\nm:{{ m | yaml(2) }}\ne: {{ e | yaml(2) }}\n",
            serde_json::json!({"w": "4", "b": "true", "m": {"a": [1, "x"]}, "e": []}),
        )
        .unwrap();
        assert_eq!(out, "w: '4'\nb: 'true'\nm:\n  a:\n  - 1\n  - x\ne: []\n");
        let v: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(v["w"].as_str(), Some("4"));
    }

    #[test]
    fn the_fast_layout_is_what_serde_yaml_writes() {
        let v = serde_json::json!({
            "labels": {"app.kubernetes.io/name": "m", "n": "4", "b": "yes", "e": "", "x": "a: b"},
            "list": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"k": {"n": "s"}}}],
            "args": ["--model=/models/q", "--port=8000", "-x", "#c", "null", "~", "*a"],
            "empty": {}, "none": [], "n": 3, "t": true, "z": null,
            "nested": {"a": {"b": [1, 2]}, "c": [{"d": {}}]},
        });
        for indent in [0, 2, 8] {
            let want = serde_yaml::to_string(&v).unwrap();
            let pad = " ".repeat(indent);
            let want: String = want
                .trim_end()
                .lines()
                .map(|l| format!("\n{pad}{l}"))
                .collect();
            assert_eq!(fast_yaml(&v, indent).as_deref(), Some(want.as_str()));
        }
        for s in ["4", "true", "a b", "", "0x1", "1e3", "-", "@x", "it's"] {
            let want = serde_yaml::to_string(s).unwrap();
            let mut out = String::new();
            push_scalar_str(s, &mut out).unwrap();
            assert_eq!(out, want.trim_end(), "{s}");
        }
        assert_eq!(fast_yaml(&serde_json::json!({"f": 1.5}), 0), None);
        assert_eq!(fast_yaml(&serde_json::json!("a\nb"), 0), None);
    }

    /// Every string the fast path writes plain, serde_yaml writes plain too: all short strings over
    /// the safe characters, YAML's special words in every case, and the shapes names take.
    #[test]
    fn what_is_written_plain_without_asking_serde_yaml_is_what_serde_yaml_writes() {
        let alphabet = [
            'a', 'e', 'n', 'o', 'x', 'E', 'N', 'Y', '0', '1', '9', '-', '_', '.', '/', '=', '@',
            ':', ' ', '#',
        ];
        let mut cases: Vec<String> = Vec::new();
        for a in alphabet {
            cases.push(a.to_string());
            for b in alphabet {
                cases.push(format!("{a}{b}"));
                for c in alphabet {
                    cases.push(format!("{a}{b}{c}"));
                }
            }
        }
        for w in [
            "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf",
        ] {
            cases.push(w.to_string());
            cases.push(w.to_uppercase());
            let mut t = w.to_string();
            t[..1].make_ascii_uppercase();
            cases.push(t);
        }
        cases.extend(
            [
                "qwen-cpu-17",
                "Qwen/Qwen2.5-0.5B-Instruct",
                "e10",
                "e1.5",
                "x0x1",
                "nvidia.com/gpu",
                "app.kubernetes.io/name",
                "vllm.entrypoints.openai.api_server",
                "Recreate",
                "a_b",
                "ReadWriteOnce",
                "python3",
                "E5",
                "n1",
                "NaN",
                "Inf",
                "v1.2.3",
                "--model=/models/qwen2.5-7b",
                "--host=0.0.0.0",
                "--gpu-memory-utilization=0.90",
                "--enable-prefix-caching",
                "--x=a: b",
                "--1",
                "---a",
                "-a",
                "/models",
                "/tmp/.cache",
                "/",
                "//a",
                "/a:",
                "docker.io/vllm/vllm-openai:v0.11.0@sha256:014a95f21c9edf6abe0aea6b07353f96baa4ec29",
                "a:1",
                "a::b",
                "a:b:c",
                "a=b",
                "a@b",
                "a #b",
                "a#b",
            ]
            .map(String::from),
        );
        let mut plain = 0;
        for s in &cases {
            if is_plain_safe(s) {
                plain += 1;
                let want = serde_yaml::to_string(s.as_str()).unwrap();
                assert_eq!(want.trim_end(), s, "serde_yaml quotes {s:?}");
            }
        }
        assert!(plain > 1000, "{plain} of {} cases were plain", cases.len());
        for s in [
            "--model=/models/qwen2.5-7b",
            "/tmp/.cache",
            "docker.io/vllm/vllm-openai:v0.11.0@sha256:014a95f21c9edf6abe0aea6b07353f96baa4ec29",
        ] {
            assert!(is_plain_safe(s), "{s} is asked of serde_yaml");
        }
    }

    #[test]
    fn undefined_variables_are_errors_naming_template_and_line() {
        let e = render("a: 1\nb: {{ missing.field }}\n", serde_json::json!({})).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("t.j2"), "{msg}");
        assert!(msg.contains("line 2") || msg.contains(":2"), "{msg}");
    }

    /// Issue 19 Low 3: the repository's template by its path, with line and column, for a render
    /// error and a syntax error alike.
    #[test]
    fn template_errors_name_the_file_line_and_column() {
        let e = render(
            "a: 1\nb: {{ model.nmae }}\n",
            serde_json::json!({"model": {}}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "template templates/t.j2:2:7: undefined value (`model.nmae`)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/s.j2"), "a: 1\nb:   {{ x }\n").unwrap();
        let Err(e) = Templates::load(dir.path()) else {
            panic!("a syntax error loaded");
        };
        let msg = e.to_string();
        assert!(msg.starts_with("template templates/s.j2:2:"), "{msg}");
        assert!(msg.contains("syntax error"), "{msg}");
        let d = e.diagnostic();
        assert_eq!(d.file.as_deref(), Some(Path::new("templates/s.j2")));
        assert_eq!(d.line, Some(2));
        assert!(d.column.is_some());
    }

    #[test]
    fn the_renderer_owns_the_generated_header_and_refuses_an_empty_render() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("templates");
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join("bare.j2"), "kind: A\n").unwrap();
        std::fs::write(t.join("own.j2"), "{{ header }}\nkind: A\n").unwrap();
        std::fs::write(
            t.join("old.j2"),
            "# generated by platform (old words)\nkind: A\n",
        )
        .unwrap();
        std::fs::write(t.join("empty.j2"), "{% if false %}kind: A{% endif %}").unwrap();
        std::fs::write(t.join("comments.j2"), "{{ header }}\n# nothing\n---\n\n").unwrap();
        let ts = Templates::load(dir.path()).unwrap();
        let ctx = context(serde_json::json!({"header": consts::GENERATED_HEADER}));
        let want = format!("{}\nkind: A\n", consts::GENERATED_HEADER);
        for name in ["bare.j2", "own.j2", "old.j2"] {
            assert_eq!(ts.render_file(name, &ctx).unwrap(), want, "{name}");
        }
        for name in ["empty.j2", "comments.j2"] {
            let e = ts.render_file(name, &ctx).unwrap_err();
            assert!(matches!(e, TemplateError::Empty { .. }), "{name}: {e}");
            assert!(e.to_string().contains(&format!("templates/{name}")), "{e}");
        }
    }

    #[test]
    fn a_template_that_is_not_a_regular_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("templates");
        std::fs::create_dir(&t).unwrap();
        std::os::unix::fs::symlink("/dev/zero", t.join("namespace.yaml.j2")).unwrap();
        let Err(e) = Templates::load(dir.path()) else {
            panic!("a link to /dev/zero was accepted (or skipped)");
        };
        let msg = e.to_string();
        assert!(
            msg.contains("namespace.yaml.j2: is a character device, not a regular file"),
            "{msg}"
        );
    }

    #[test]
    fn repo_template_overrides_embedded_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/namespace.yaml.j2"), "custom\n").unwrap();
        let t = Templates::load(dir.path()).unwrap();
        assert!(matches!(
            t.origin("namespace.yaml.j2"),
            Some(Origin::Repo(_))
        ));
        assert_eq!(
            t.render("namespace.yaml.j2", &context(serde_json::json!({})))
                .unwrap(),
            "custom\n"
        );
        assert_eq!(t.origin("gateway.yaml.j2"), Some(&Origin::Embedded));
    }
}
