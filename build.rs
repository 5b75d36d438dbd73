//! Embeds the shipped catalog: every regular file under `catalog/` (recursively, sorted, hidden
//! files skipped) becomes an entry of `$OUT_DIR/embedded_catalog.rs`, a table of
//! `(path relative to catalog/, bytes)` that `src/catalog/embedded.rs` includes. A file added to
//! `catalog/` later is embedded with no code change; `rerun-if-changed` on the directory makes
//! Cargo rebuild when any file in it is added, removed or edited.
//!
//! The catalog's top-level YAML files are also converted to JSON here (`$OUT_DIR/parsed/<file>.json`,
//! the table `PARSED`): the binary deserializes the shipped files from that JSON, about ten times
//! quicker than libyaml reads the YAML (issue 24). A file the conversion cannot represent (a
//! mapping key that is not a string, a tag, a float JSON has no spelling for) is left out and
//! read as YAML at run time, but `src/catalog/embedded.rs`'s test requires every top-level file to
//! have one (so a slow shipped file does not go unnoticed: quote the scalar it names), and that each
//! JSON reads into what the YAML reads into, type by type.
//!
//! Also names the build for `platform --version`: `PLATFORM_BUILD_COMMIT` (the commit checked out,
//! from `git rev-parse`, or the variable of that name when the build sets it; `unknown` outside a
//! git checkout) and `PLATFORM_BUILD_PROFILE` (Cargo's profile, debug or release).

use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let catalog = root.join("catalog");
    println!("cargo:rerun-if-changed=catalog");
    let mut files = Vec::new();
    walk(&catalog, &catalog, &mut files);
    files.sort();
    let mut out = String::from(
        "/// Every file of the shipped catalog: (path relative to `catalog/`, contents).\n\
         pub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        out.push_str(&format!("    ({rel:?}, include_bytes!({abs:?})),\n"));
    }
    out.push_str("];\n");
    out.push_str(&parsed_table(&files));
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded_catalog.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));

    println!("cargo:rerun-if-env-changed=PLATFORM_BUILD_COMMIT");
    let commit = match std::env::var("PLATFORM_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => git_commit(&root).unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=PLATFORM_BUILD_COMMIT={commit}");
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=PLATFORM_BUILD_PROFILE={profile}");
}

/// The table `PARSED: &[(file, json)]` of the top-level `.yaml` files of the catalog that convert
/// to JSON, their JSON written under `$OUT_DIR/parsed/`.
fn parsed_table(files: &[(String, String)]) -> String {
    let dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("parsed");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let mut out = String::from(
        "/// The shipped catalog's top-level YAML files as JSON (file, JSON): see build.rs.\n\
         pub static PARSED: &[(&str, &str)] = &[\n",
    );
    for (rel, abs) in files {
        if rel.contains('/') || !rel.ends_with(".yaml") {
            continue;
        }
        let text = std::fs::read_to_string(abs).unwrap_or_else(|e| panic!("reading {abs}: {e}"));
        let Some(json) = to_json(&text) else {
            println!(
                "cargo:warning=catalog/{rel} is read as YAML at run time: it is not one YAML \
                 document or has no JSON form"
            );
            continue;
        };
        let dest = dir.join(format!("{rel}.json"));
        std::fs::write(&dest, json).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
        let dest = dest
            .to_str()
            .unwrap_or_else(|| panic!("{}: not UTF-8", dest.display()));
        out.push_str(&format!("    ({rel:?}, include_str!({dest:?})),\n"));
    }
    out.push_str("];\n");
    out
}

/// `text` (one YAML document) as JSON, keys in the file's order; None when JSON cannot say the
/// same: a tag, a mapping key that is not a string, a float that is not finite.
fn to_json(text: &str) -> Option<String> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    plain(&value).then(|| serde_json::to_string(&value).ok())?
}

fn plain(v: &serde_yaml::Value) -> bool {
    use serde_yaml::Value;
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => n.as_f64().is_none_or(f64::is_finite),
        Value::Sequence(s) => s.iter().all(plain),
        Value::Mapping(m) => m.iter().all(|(k, v)| k.is_string() && plain(v)),
        Value::Tagged(_) => false,
    }
}

/// The commit checked out in `root` (12 hex digits), and Cargo told to run this again when HEAD
/// moves (the HEAD file and the branch it names, in the git directory of a linked work tree too).
fn git_commit(root: &Path) -> Option<String> {
    let dot = root.join(".git");
    let git_dir = if dot.is_file() {
        let text = std::fs::read_to_string(&dot).ok()?;
        root.join(text.trim().strip_prefix("gitdir:")?.trim())
    } else if dot.is_dir() {
        dot
    } else {
        return None;
    };
    let head = git_dir.join("HEAD");
    if head.is_file() {
        println!("cargo:rerun-if-changed={}", head.display());
        let common = match std::fs::read_to_string(git_dir.join("commondir")) {
            Ok(c) => git_dir.join(c.trim()),
            Err(_) => git_dir.clone(),
        };
        if let Some(r) = std::fs::read_to_string(&head)
            .ok()
            .and_then(|h| h.trim().strip_prefix("ref:").map(|r| r.trim().to_string()))
        {
            let ref_file = common.join(&r);
            if ref_file.is_file() {
                println!("cargo:rerun-if-changed={}", ref_file.display());
            }
        }
        let packed = common.join("packed-refs");
        if packed.is_file() {
            println!("cargo:rerun-if-changed={}", packed.display());
        }
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !commit.is_empty()).then_some(commit)
}

/// Regular files under `dir` as (relative path with `/`, absolute path). Hidden entries (editor
/// swap files, `.gitkeep`) are not part of the catalog.
fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            panic!("{}: catalog file names must be UTF-8", path.display());
        };
        if name.starts_with('.') {
            continue;
        }
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if meta.is_dir() {
            walk(base, &path, out);
        } else if meta.is_file() {
            let rel = path
                .strip_prefix(base)
                .expect("inside catalog/")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let abs = path
                .to_str()
                .unwrap_or_else(|| panic!("{}: not UTF-8", path.display()));
            out.push((rel, abs.to_string()));
        }
    }
}
