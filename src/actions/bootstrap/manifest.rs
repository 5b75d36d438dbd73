//! The Argo CD install manifest: downloaded from the catalog's URL over HTTPS (or read from a local
//! file), verified against the catalog's sha256 before anything else looks at it, cached under the
//! user's cache directory (written atomically, re-verified on every use), and parsed into objects.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::BootstrapError;
use crate::catalog::argocd::ArgoCdSpec;

/// Overrides the catalog's install URL (a mirror; tests serve the manifest from loopback). The
/// sha256 is still verified, so a plain `http://` URL is accepted with a warning that `-q` does not
/// silence (the download is not private, but cannot be altered unnoticed).
pub const URL_ENV: &str = "PLATFORM_ARGOCD_URL";
/// The largest manifest accepted (v3.5.1 is about 1.4 MB).
const MAX_BYTES: u64 = 64 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the manifest comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The catalog's URL (or [`URL_ENV`]); `cache` is the cache root (None: no cache), read
    /// and, unless `read_only` (a dry run writes nothing), written.
    Download {
        cache: Option<PathBuf>,
        read_only: bool,
    },
    /// `--manifests FILE`; `verify: false` with `--insecure-skip-verify`.
    File { path: PathBuf, verify: bool },
}

/// A verified (or knowingly unverified) manifest, parsed.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it came from, for messages.
    pub origin: String,
    pub sha256: String,
    pub verified: bool,
    /// The objects, in file order.
    pub objects: Vec<Value>,
    /// What happened on the way (cache hit, download, …), for the user.
    pub notes: Vec<String>,
    /// Security warnings (a plain-http download), never silenced by `-q`.
    pub warnings: Vec<String>,
    /// What the catalog pins, for [`Manifest::unverified_warning`].
    pinned: String,
    catalog: String,
}

impl Manifest {
    /// The warning for a manifest used although it is not the pinned one (`--insecure-skip-verify`),
    /// in the tense of what happens: a dry run applies nothing.
    pub fn unverified_warning(&self, dry_run: bool) -> Option<String> {
        if self.verified {
            return None;
        }
        let what = if dry_run {
            "the dry run compares it unverified and would apply it unverified"
        } else {
            "applying it unverified"
        };
        Some(format!(
            "{} is NOT the pinned manifest (sha256 {}, {} pins {}): {what} (--insecure-skip-verify)",
            self.origin, self.sha256, self.catalog, self.pinned
        ))
    }
}

/// `$XDG_CACHE_HOME/platform`, else `~/.cache/platform`.
pub fn cache_root() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("platform"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::text::hex(&Sha256::digest(bytes))
}

/// Obtain the manifest from `source`, verified against `spec.sha256`.
pub async fn obtain(spec: &ArgoCdSpec, source: &Source) -> Result<Manifest, BootstrapError> {
    match source {
        Source::File { path, verify } => {
            let bytes = read_capped(path).map_err(|message| BootstrapError::ReadManifest {
                path: path.clone(),
                message,
            })?;
            let origin = path.display().to_string();
            let sha = sha256_hex(&bytes);
            if *verify {
                check_sha(spec, &origin, &sha, FIX_FILE)?;
            }
            let verified = sha == spec.sha256;
            parse(spec, origin, sha, verified, &bytes, Vec::new())
        }
        Source::Download { cache, read_only } => {
            download_cached(spec, cache.as_deref(), *read_only).await
        }
    }
}

const FIX_FILE: &str =
    "Use the file of the pinned release, or change version/installURL/sha256 in \
    catalog/argocd.yaml together (or pass --insecure-skip-verify to apply it anyway)";
const FIX_URL: &str = "The download is not the pinned release (a moved tag, a proxy, tampering): \
    check the URL, or change version/installURL/sha256 in catalog/argocd.yaml together";

fn check_sha(
    spec: &ArgoCdSpec,
    origin: &str,
    actual: &str,
    fix: &str,
) -> Result<(), BootstrapError> {
    if actual == spec.sha256 {
        return Ok(());
    }
    Err(BootstrapError::Checksum {
        origin: origin.to_string(),
        expected: spec.sha256.clone(),
        actual: actual.to_string(),
        catalog: spec.file.clone(),
        fix: fix.to_string(),
    })
}

async fn download_cached(
    spec: &ArgoCdSpec,
    cache: Option<&Path>,
    read_only: bool,
) -> Result<Manifest, BootstrapError> {
    let url = std::env::var(URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| spec.install_url.clone());
    // Every message shows the URL with any credential in it masked; only the request uses it.
    let shown = crate::gitops::git::redact(&url);
    let mut notes = Vec::new();
    if url != spec.install_url {
        notes.push(format!(
            "install manifest URL overridden by {URL_ENV}: {shown}"
        ));
    }
    let cached = cache.map(|c| c.join(spec.cache_rel_path()));
    if let Some(path) = &cached {
        if let Ok(bytes) = read_capped(path) {
            let sha = sha256_hex(&bytes);
            if sha == spec.sha256 {
                notes.push(format!(
                    "install manifest {} (cached, sha256 verified)",
                    path.display()
                ));
                return parse(spec, path.display().to_string(), sha, true, &bytes, notes);
            }
            notes.push(format!(
                "the cached {} has sha256 {sha}, not the pinned one: downloading it again",
                path.display()
            ));
        }
    }
    let bytes = fetch(&url, &shown).await?;
    let sha = sha256_hex(&bytes);
    check_sha(spec, &shown, &sha, FIX_URL)?;
    notes.push(format!("downloaded {shown} (sha256 verified)"));
    match &cached {
        Some(path) if read_only => notes.push(format!(
            "not cached as {} (a dry run writes nothing)",
            path.display()
        )),
        Some(path) => {
            write_atomic(path, &bytes)?;
            notes.push(format!("cached as {}", path.display()));
        }
        None => {}
    }
    let mut m = parse(spec, shown.clone(), sha, true, &bytes, notes)?;
    m.warnings.extend(plain_http_warning(&shown));
    Ok(m)
}

/// The warning for a download over plain http (the sha256 still guards what is applied).
fn plain_http_warning(url: &str) -> Option<String> {
    crate::gitops::git::is_plain_http(url).then(|| {
        format!(
            "the Argo CD install manifest was downloaded over plain http ({url}): anyone on the \
                 way could read it; it was verified against the pinned sha256, so it cannot have \
                 been altered. Use an https:// URL (PLATFORM_ARGOCD_URL or installURL)"
        )
    })
}

/// Download `url` (capped); errors name it as `shown` (credentials masked) and never quote the
/// client's own text of the URL.
async fn fetch(url: &str, shown: &str) -> Result<Vec<u8>, BootstrapError> {
    let err = |message: String| BootstrapError::Download {
        url: shown.to_string(),
        message,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let resp = client.get(url).send().await.map_err(|e| {
        err(format!(
            "{} (no internet? pass --manifests FILE)",
            e.without_url()
        ))
    })?;
    if !resp.status().is_success() {
        return Err(err(format!("HTTP {}", resp.status())));
    }
    if resp.content_length().is_some_and(|n| n > MAX_BYTES) {
        return Err(err(format!("larger than {MAX_BYTES} bytes")));
    }
    let mut body = Vec::new();
    let mut resp = resp;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| err(e.without_url().to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_BYTES {
            return Err(err(format!("larger than {MAX_BYTES} bytes")));
        }
    }
    Ok(body)
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    crate::fsread::read_text(path, MAX_BYTES, "install manifest")
        .map(String::into_bytes)
        .map_err(|e| e.reason())
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BootstrapError> {
    let io = |source: std::io::Error| BootstrapError::Cache {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Every YAML document that is an object (apiVersion, kind, metadata.name).
fn parse(
    spec: &ArgoCdSpec,
    origin: String,
    sha256: String,
    verified: bool,
    bytes: &[u8],
    notes: Vec<String>,
) -> Result<Manifest, BootstrapError> {
    let bad = |message: String| BootstrapError::BadManifest {
        origin: origin.clone(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let mut objects = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| bad(format!("document {}: {e}", i + 1)))?;
        if v.is_null() {
            continue;
        }
        let field = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if field("/apiVersion").is_empty()
            || field("/kind").is_empty()
            || field("/metadata/name").is_empty()
        {
            return Err(bad(format!(
                "document {} lacks apiVersion, kind or metadata.name",
                i + 1
            )));
        }
        objects.push(v);
    }
    if objects.is_empty() {
        return Err(bad("it holds no object".into()));
    }
    Ok(Manifest {
        origin,
        sha256,
        verified,
        objects,
        notes,
        warnings: Vec::new(),
        pinned: spec.sha256.clone(),
        catalog: spec.file.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sha: &str) -> ArgoCdSpec {
        let mut s = crate::catalog::argocd::load(
            &crate::catalog::CatalogSource::detect(std::path::Path::new("/nonexistent")).unwrap(),
            std::path::Path::new("/nonexistent"),
        )
        .unwrap();
        s.sha256 = sha.to_string();
        s
    }

    const DOC: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n";

    #[tokio::test]
    async fn a_file_is_verified_and_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("install.yaml");
        std::fs::write(&f, DOC).unwrap();
        let good = spec(&sha256_hex(DOC.as_bytes()));
        let src = Source::File {
            path: f.clone(),
            verify: true,
        };
        let m = obtain(&good, &src).await.unwrap();
        assert_eq!(m.objects.len(), 2);
        assert!(m.verified);
        let bad = spec(&"0".repeat(64));
        let e = obtain(&bad, &src).await.unwrap_err().to_string();
        assert!(
            e.contains(&"0".repeat(64)) && e.contains(&sha256_hex(DOC.as_bytes())),
            "{e}"
        );
        assert!(e.contains("nothing was applied"), "{e}");
        let m = obtain(
            &bad,
            &Source::File {
                path: f,
                verify: false,
            },
        )
        .await
        .unwrap();
        assert!(!m.verified);
        let w = m.unverified_warning(false).unwrap();
        assert!(
            w.contains("NOT the pinned manifest") && w.contains("applying it unverified"),
            "{w}"
        );
        let w = m.unverified_warning(true).unwrap();
        assert!(
            w.contains("would apply it unverified") && !w.contains("applying"),
            "{w}"
        );
    }

    #[test]
    fn the_cache_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("argocd/v1/install.yaml");
        write_atomic(&p, b"x").unwrap();
        write_atomic(&p, b"y").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"y");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
