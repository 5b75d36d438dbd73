//! The shape issue 20 set, checked on the source: no import cycle between the files of `src/`, and
//! only the serving seam (`src/serving/`) and the config type itself match on the serving layer.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `a/b` for `src/a/b.rs` and `src/a/b/mod.rs`.
fn module_of(p: &Path) -> String {
    let rel = p.strip_prefix(src()).unwrap().with_extension("");
    let s = rel.to_string_lossy().replace('\\', "/");
    s.strip_suffix("/mod").map(str::to_string).unwrap_or(s)
}

/// The code of a file without comments and without its unit tests.
fn code(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b…` and `super::…` path in `code` of `module`, as module path segments (a
/// `{a, b}` group gives one path per item). `super` is the module's parent, whether the module is
/// `a/b.rs` or `a/b/mod.rs`.
fn paths(code: &str, module: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut parent: Vec<String> = module.split('/').map(str::to_string).collect();
    parent.pop();
    let bytes = code.as_bytes();
    for (root, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut from = 0;
        while let Some(i) = code[from..].find(root) {
            let start = from + i;
            from = start + root.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let rest = &code[from..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let mut segs: Vec<String> = base.clone();
            segs.extend(
                rest[..end]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
            if rest[end..].starts_with('{') {
                let close = rest[end..].find('}').map(|c| end + c).unwrap_or(rest.len());
                for item in rest[end + 1..close].split(',') {
                    let first = item.trim().split("::").next().unwrap_or("").trim();
                    let first = first.split_whitespace().next().unwrap_or("");
                    if !first.is_empty() && first != "self" {
                        let mut p = segs.clone();
                        p.push(first.to_string());
                        out.push(p);
                    }
                }
            }
            out.push(segs);
        }
    }
    out
}

/// File → files it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .into_iter()
        .map(|p| (module_of(&p), p))
        .filter(|(m, _)| m != "lib" && m != "main")
        .collect();
    let resolve = |segs: &[String]| -> Option<String> {
        (1..=segs.len())
            .rev()
            .map(|n| segs[..n].join("/"))
            .find(|k| modules.contains_key(k))
    };
    let mut edges = BTreeMap::new();
    for (m, p) in &modules {
        let uses: BTreeSet<String> = paths(&code(p), m)
            .iter()
            .filter_map(|s| resolve(s))
            .filter(|t| t != m)
            .collect();
        edges.insert(m.clone(), uses);
    }
    edges
}

/// A cycle through `start`, if any (depth-first).
fn cycle_from(
    g: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in g.get(at).into_iter().flatten() {
        if next == start {
            let mut c = path.clone();
            c.push(start.to_string());
            return Some(c);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(c) = cycle_from(g, start, next, path, seen) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_import_cycle_between_files() {
    let g = graph();
    assert!(
        g.contains_key("serving") && g["plan"].contains("serving"),
        "{g:?}"
    );
    let mut cycles = Vec::new();
    for m in g.keys() {
        let mut path = vec![m.clone()];
        if let Some(c) = cycle_from(&g, m, m, &mut path, &mut BTreeSet::new()) {
            cycles.push(c.join(" -> "));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
    // The config does not reach for the downloader.
    assert!(
        !g["config/validate"].contains("hub"),
        "{:?}",
        g["config/validate"]
    );
}

#[test]
fn only_the_seam_matches_on_the_serving_layer() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let outside: Vec<String> = files
        .iter()
        .filter(|p| {
            let m = module_of(p);
            !m.starts_with("serving") && m != "config/types"
        })
        .filter(|p| code(p).contains("ServingLayer::"))
        .map(|p| module_of(p))
        .collect();
    assert!(
        outside.is_empty(),
        "ServingLayer:: outside src/serving: {outside:?}"
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    let mut path = vec!["a".to_string()];
    assert_eq!(
        cycle_from(&g, "a", "a", &mut path, &mut BTreeSet::new()),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let mut path = vec!["d".to_string()];
    assert_eq!(
        cycle_from(&g, "d", "d", &mut path, &mut BTreeSet::new()),
        None
    );
    let used = paths("use crate::x::{y, z::w};\nuse super::q;", "m/n");
    assert!(
        used.contains(&vec!["x".to_string(), "y".to_string()]),
        "{used:?}"
    );
    assert!(
        used.contains(&vec!["m".to_string(), "q".to_string()]),
        "{used:?}"
    );
}
