//! Embeds the shipped catalog: every regular file under `catalog/` (recursively, sorted, hidden
//! files skipped) becomes an entry of `$OUT_DIR/embedded_catalog.rs`, a table of
//! `(path relative to catalog/, bytes)` that `src/catalog/embedded.rs` includes. A file added to
//! `catalog/` later is embedded with no code change; `rerun-if-changed` on the directory makes
//! Cargo rebuild when any file in it is added, removed or edited.

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
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded_catalog.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
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
