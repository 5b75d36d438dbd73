//! Token and endpoint configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::HeaderValue;

use super::consts::*;
use super::error::HubError;
use super::retry::RetryPolicy;
use crate::fsread;

/// A Hub access token. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct HfToken(String);

impl HfToken {
    /// Wraps a token; surrounding whitespace (a trailing newline in a token file) is dropped.
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let t = token.into().trim().to_string();
        (!t.is_empty()).then_some(HfToken(t))
    }

    /// The secret itself, for the `Authorization` header only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// What makes the token unusable in an HTTP header (a line break, whitespace, a control or a
    /// non-ASCII character; a real token has none), said without showing the token.
    pub fn defect(&self) -> Option<&'static str> {
        self.0.chars().find_map(|c| match c {
            '\n' | '\r' => Some("a line break"),
            ' ' | '\t' => Some("whitespace"),
            c if c.is_control() => Some("a control character"),
            c if !c.is_ascii() => Some("a non-ASCII character"),
            _ => None,
        })
    }

    /// `Authorization: Bearer <token>`, marked sensitive; `None` when the token cannot be one.
    pub(crate) fn header(&self) -> Option<HeaderValue> {
        if self.defect().is_some() {
            return None;
        }
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.0)).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

impl fmt::Debug for HfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HfToken(<redacted>)")
    }
}

impl fmt::Display for HfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the token came from (safe to print).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    Env(&'static str),
    File(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Env(v) => write!(f, "${v}"),
            TokenSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Everything a [`super::HubClient`] needs.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Hub base URL (`HF_ENDPOINT`), e.g. `https://huggingface.co` or a mirror.
    pub endpoint: String,
    pub token: Option<HfToken>,
    pub token_source: Option<TokenSource>,
    /// Root of the download cache (`<cache_dir>/<org>--<name>/<commit>/<path>`).
    pub cache_dir: PathBuf,
    /// Requests in flight at once, across files and ranges.
    pub concurrency: usize,
    /// Files larger than this are fetched as parallel ranges of this size (0: never split).
    pub range_size: u64,
    pub retry: RetryPolicy,
    /// Connecting to the endpoint (or the CDN) gives up after this long ([`CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// A response that sends nothing (no headers, no body byte) for this long is a failed,
    /// retried attempt ([`READ_TIMEOUT`]); [`RetryPolicy::deadline`] bounds the attempts together.
    pub read_timeout: Duration,
    /// Check the server's TLS certificate (default). `false` accepts any certificate: only for
    /// an S3-compatible endpoint with a self-signed one (`s3.verifyTls: false`).
    pub verify_tls: bool,
}

impl HubConfig {
    /// Defaults with an explicit endpoint and cache dir and no token.
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        HubConfig {
            endpoint: endpoint.into(),
            token: None,
            token_source: None,
            cache_dir: cache_dir.into(),
            concurrency: DEFAULT_CONCURRENCY,
            range_size: DEFAULT_RANGE_SIZE,
            retry: RetryPolicy::default(),
            connect_timeout: CONNECT_TIMEOUT,
            read_timeout: READ_TIMEOUT,
            verify_tls: true,
        }
    }

    /// The `Authorization` header value for the token (if any): a token an HTTP header cannot
    /// carry is refused here, before any request, naming where it came from and never showing it.
    pub fn auth_header(&self) -> Result<Option<HeaderValue>, HubError> {
        let Some(token) = &self.token else {
            return Ok(None);
        };
        let from = || {
            self.token_source
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "the configuration".to_string())
        };
        match (token.defect(), token.header()) {
            (None, Some(h)) => Ok(Some(h)),
            (defect, _) => Err(HubError::MalformedToken {
                from: from(),
                defect: defect.unwrap_or("a character an HTTP header cannot carry"),
            }),
        }
    }

    /// The download cache: `PLATFORM_HUB_CACHE`, else `$XDG_CACHE_HOME/platform/hub`, else
    /// `~/.cache/platform/hub` (S3 snapshots go there too, under `s3--<bucket>/`).
    pub fn cache_dir_from_vars(var: impl Fn(&str) -> Option<String>) -> Result<PathBuf, HubError> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        if let Some(dir) = var(ENV_CACHE_DIR) {
            Ok(PathBuf::from(dir))
        } else if let Some(xdg) = var(ENV_XDG_CACHE) {
            Ok(PathBuf::from(xdg).join(CACHE_SUBDIR))
        } else if let Some(h) = var("HOME") {
            Ok(PathBuf::from(h).join(".cache").join(CACHE_SUBDIR))
        } else {
            Err(HubError::NoCacheDir { var: ENV_CACHE_DIR })
        }
    }

    /// From the process environment; see [`HubConfig::from_vars`].
    pub fn from_env(token_file: Option<&Path>) -> Result<Self, HubError> {
        Self::from_vars(|k| std::env::var(k).ok(), token_file)
    }

    /// Token: the explicit `token_file` (must be readable), else `HF_TOKEN`, else
    /// `HUGGING_FACE_HUB_TOKEN`, else `$HF_HOME/token` (default `~/.cache/huggingface/token`, absent
    /// means anonymous). Endpoint: `HF_ENDPOINT` or `https://huggingface.co`. Cache:
    /// `PLATFORM_HUB_CACHE`, else `$XDG_CACHE_HOME/platform/hub`, else `~/.cache/platform/hub`.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        token_file: Option<&Path>,
    ) -> Result<Self, HubError> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let endpoint = var(ENV_ENDPOINT).unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let home = var("HOME").map(PathBuf::from);
        let cache_dir = Self::cache_dir_from_vars(var)?;
        let read = |path: &Path| {
            fsread::read_text(path, fsread::MAX_INPUT_BYTES, "token file").map_err(|source| {
                HubError::TokenFile {
                    path: path.to_path_buf(),
                    source,
                }
            })
        };
        let (token, token_source) = if let Some(path) = token_file {
            let text = read(path)?;
            (
                HfToken::new(text),
                Some(TokenSource::File(path.to_path_buf())),
            )
        } else if let Some(t) = var(ENV_TOKEN).and_then(HfToken::new) {
            (Some(t), Some(TokenSource::Env(ENV_TOKEN)))
        } else if let Some(t) = var(ENV_TOKEN_LEGACY).and_then(HfToken::new) {
            (Some(t), Some(TokenSource::Env(ENV_TOKEN_LEGACY)))
        } else {
            let hf_home = var(ENV_HF_HOME)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(DEFAULT_HF_HOME)));
            match hf_home.map(|h| h.join(TOKEN_FILE_NAME)) {
                Some(path) => match read(&path) {
                    Ok(text) => (HfToken::new(text), Some(TokenSource::File(path))),
                    Err(HubError::TokenFile { source, .. })
                        if source.io_kind() == Some(std::io::ErrorKind::NotFound) =>
                    {
                        (None, None)
                    }
                    Err(e) => return Err(e),
                },
                None => (None, None),
            }
        };
        let token_source = token.as_ref().and(token_source);
        Ok(HubConfig {
            token,
            token_source,
            ..HubConfig::new(endpoint, cache_dir)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)], file: Option<&Path>) -> HubConfig {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubConfig::from_vars(|k| m.get(k).cloned(), file).expect("config")
    }

    #[test]
    fn token_precedence_and_redaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "hf_file\n").expect("write");
        let home = dir.path().to_str().expect("utf8");
        let c = cfg(
            &[
                ("HF_TOKEN", "hf_a"),
                ("HUGGING_FACE_HUB_TOKEN", "hf_b"),
                ("HOME", home),
            ],
            None,
        );
        assert_eq!(c.token.as_ref().map(|t| t.expose_secret()), Some("hf_a"));
        let c = cfg(&[("HUGGING_FACE_HUB_TOKEN", "hf_b"), ("HOME", home)], None);
        assert_eq!(c.token.as_ref().map(|t| t.expose_secret()), Some("hf_b"));
        let c = cfg(&[("HF_HOME", home), ("HOME", home)], None);
        assert_eq!(c.token.as_ref().map(|t| t.expose_secret()), Some("hf_file"));
        let c = cfg(
            &[("HF_TOKEN", "hf_a"), ("HOME", home)],
            Some(&dir.path().join("token")),
        );
        assert_eq!(c.token.as_ref().map(|t| t.expose_secret()), Some("hf_file"));
        assert!(!format!("{c:?}").contains("hf_file"));
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(c.cache_dir, dir.path().join(".cache/platform/hub"));
        let c = cfg(
            &[("HOME", "/nonexistent-home"), ("XDG_CACHE_HOME", "/x")],
            None,
        );
        assert!(c.token.is_none());
        assert_eq!(c.cache_dir, PathBuf::from("/x/platform/hub"));
    }
}
