//! The text of every input file this process parsed, by the path its diagnostics name, so a
//! diagnostic made far from the text (a semantic check names a field, not a line) can still be
//! placed and shown with its line when it is printed. rustc keeps a `SourceMap` for the same
//! reason. Loaders call [`remember`]; the printer and `lint -o json` call [`super::Diagnostic::located`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::locate::{self, Node};

/// One input file: its text and, parsed on first use, its positioned YAML tree.
pub struct Source {
    pub text: String,
    tree: OnceLock<Option<Node>>,
}

impl Source {
    /// The YAML tree (None when the text is not valid YAML).
    pub fn tree(&self) -> Option<&Node> {
        self.tree.get_or_init(|| locate::parse(&self.text)).as_ref()
    }

    /// Line `n` (1-based) without its line break.
    pub fn line(&self, n: usize) -> Option<&str> {
        self.text.lines().nth(n.checked_sub(1)?)
    }
}

fn map() -> &'static Mutex<HashMap<PathBuf, Arc<Source>>> {
    static MAP: OnceLock<Mutex<HashMap<PathBuf, Arc<Source>>>> = OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// Keep `text` as the content of `file` (the path diagnostics about it carry). Reading the same
/// file again replaces it.
pub fn remember(file: &Path, text: &str) {
    let src = Arc::new(Source {
        text: text.to_string(),
        tree: OnceLock::new(),
    });
    if let Ok(mut m) = map().lock() {
        m.insert(file.to_path_buf(), src);
    }
}

/// The text remembered for `file`.
pub fn get(file: &Path) -> Option<Arc<Source>> {
    map().lock().ok()?.get(file).cloned()
}
