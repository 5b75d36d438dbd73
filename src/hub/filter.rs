//! Which files of a repo to download.

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::consts::{DEFAULT_DENY, DEFAULT_INCLUDE};
use super::error::HubError;

/// Include/exclude globs (`*` also matches `/`, like `huggingface_hub`'s fnmatch).
///
/// Without caller includes the default set applies (configs, tokenizers, `*.safetensors` and
/// their index). Caller includes replace the default set. `*.bin`, `*.pt`, `*.pth`, `*.gguf` and
/// `original/**` are never selected unless a caller include matches them. Caller excludes always
/// win.
#[derive(Clone, Debug)]
pub struct FileFilter {
    include: GlobSet,
    caller_include: bool,
    deny: GlobSet,
    exclude: GlobSet,
    /// One file to take (a GGUF model's `file:`), unless the caller chose includes.
    only: Option<String>,
}

fn build<S: AsRef<str>>(globs: &[S]) -> Result<GlobSet, HubError> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let g = g.as_ref();
        b.add(Glob::new(g).map_err(|e| HubError::InvalidGlob {
            glob: g.to_string(),
            reason: e.to_string(),
        })?);
    }
    b.build().map_err(|e| HubError::InvalidGlob {
        glob: String::new(),
        reason: e.to_string(),
    })
}

impl FileFilter {
    pub fn new<S: AsRef<str>>(include: &[S], exclude: &[S]) -> Result<Self, HubError> {
        let caller_include = !include.is_empty();
        let include = if caller_include {
            build(include)?
        } else {
            build(DEFAULT_INCLUDE)?
        };
        Ok(FileFilter {
            include,
            caller_include,
            deny: build(DEFAULT_DENY)?,
            exclude: build(exclude)?,
            only: None,
        })
    }

    /// This filter for a one-file model: exactly `file`, unless the caller's includes choose
    /// (their excludes still win).
    pub fn for_file(&self, file: Option<&str>) -> FileFilter {
        let mut f = self.clone();
        if !f.caller_include {
            f.only = file.map(str::to_string);
        }
        f
    }

    pub fn matches(&self, path: &str) -> bool {
        if let Some(only) = &self.only {
            return path == only && !self.exclude.is_match(path);
        }
        if self.exclude.is_match(path) || !self.include.is_match(path) {
            return false;
        }
        self.caller_include || !self.deny.is_match(path)
    }
}

impl Default for FileFilter {
    fn default() -> Self {
        let empty: [&str; 0] = [];
        // The built-in globs are constants that compile; fall back to an empty set otherwise.
        FileFilter::new(&empty, &empty).unwrap_or_else(|_| FileFilter {
            include: GlobSet::empty(),
            caller_include: false,
            deny: GlobSet::empty(),
            exclude: GlobSet::empty(),
            only: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_file_model_takes_just_its_file() {
        let f = FileFilter::default().for_file(Some("q4_k_m.gguf"));
        assert!(f.matches("q4_k_m.gguf"));
        assert!(!f.matches("q8_0.gguf") && !f.matches("config.json"));
        // The caller's includes choose; their excludes always win.
        let f = FileFilter::new(&["*.gguf"], &[])
            .unwrap()
            .for_file(Some("q4_k_m.gguf"));
        assert!(f.matches("q8_0.gguf"));
        let f = FileFilter::new(&[], &["q4*"])
            .unwrap()
            .for_file(Some("q4_k_m.gguf"));
        assert!(!f.matches("q4_k_m.gguf"));
        assert!(FileFilter::default().for_file(None).matches("config.json"));
    }

    #[test]
    fn default_set() {
        let f = FileFilter::default();
        for p in [
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model-00001-of-00002.safetensors",
            "model.safetensors.index.json",
            "vocab.json",
            "merges.txt",
            "generation_config.json",
            "tokenizer.model",
        ] {
            assert!(f.matches(p), "{p}");
        }
        for p in [
            "pytorch_model.bin",
            "original/consolidated.00.pth",
            "original/model.safetensors",
            "x.gguf",
            "README.md",
            ".gitattributes",
            "training_args.pt",
        ] {
            assert!(!f.matches(p), "{p}");
        }
        let f = FileFilter::new(&["*.bin", "config.json"], &["config.json"]).expect("filter");
        assert!(f.matches("pytorch_model.bin"));
        assert!(!f.matches("config.json"));
        assert!(!f.matches("model.safetensors"));
    }
}
