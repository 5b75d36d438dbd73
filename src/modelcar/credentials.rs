//! Registry credentials from the standard docker config file (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), as `docker login`, `podman login --authfile`, `skopeo login` and
//! `oras login` write it: `auths.<registry>.auth` (base64 of `user:password`) or
//! `auths.<registry>.identitytoken` (an OAuth2 refresh token); a `credHelpers.<registry>` or
//! `credsStore` entry runs `docker-credential-<name> get` with a deadline. No entry: anonymous.
//! Passwords and tokens are [`Secret`]s: their `Debug` and `Display` never show them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use serde::Deserialize;

use super::consts::{CRED_HELPER_TIMEOUT, ENV_DOCKER_CONFIG};
use super::ModelcarError;

/// A password or token: never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What the registry is sent when it asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `user:password` (HTTP Basic to the registry, or to its token service).
    Basic { user: String, password: Secret },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token service.
    IdentityToken(Secret),
}

impl Credential {
    /// The texts that must never appear in anything printed.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = match self {
            Credential::Basic { user, password } => {
                let pair = format!("{user}:{}", password.expose());
                vec![
                    password.expose().to_string(),
                    Base64::encode_string(pair.as_bytes()),
                ]
            }
            Credential::IdentityToken(t) => vec![t.expose().to_string()],
        };
        out.retain(|s| s.len() >= 4);
        out
    }

    /// Who, for messages: the user name, or "an identity token".
    pub fn who(&self) -> String {
        match self {
            Credential::Basic { user, .. } => format!("user {user}"),
            Credential::IdentityToken(_) => "an identity token".to_string(),
        }
    }
}

/// Where the credential came from (for messages), and the credential.
#[derive(Clone, Debug)]
pub struct Found {
    pub credential: Credential,
    pub from: String,
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The docker config file in use: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(ENV_DOCKER_CONFIG).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The credential for `registry` (`host[:port]`, `docker.io` for Docker Hub), or `None`
/// (anonymous) when the file or its entry does not exist.
pub fn lookup(registry: &str) -> Result<Option<Found>, ModelcarError> {
    match config_path() {
        Some(p) if p.exists() => lookup_in(&p, registry),
        _ => Ok(None),
    }
}

/// [`lookup`] in a given file.
pub fn lookup_in(path: &Path, registry: &str) -> Result<Option<Found>, ModelcarError> {
    let bad = |why: String| ModelcarError::DockerConfig {
        path: path.to_path_buf(),
        why,
    };
    let text = crate::fsread::read_text(path, crate::fsread::MAX_INPUT_BYTES, "docker config")
        .map_err(|e| bad(e.reason()))?;
    let cfg: DockerConfig = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "not a docker config file (JSON, line {}): {}",
            e.line(),
            plain_json(&e)
        ))
    })?;
    let from = path.display().to_string();
    if let Some((_, helper)) = cfg
        .cred_helpers
        .iter()
        .find(|(k, _)| same_registry(k, registry))
    {
        return run_helper(helper, registry, &from);
    }
    if let Some((key, entry)) = cfg.auths.iter().find(|(k, _)| same_registry(k, registry)) {
        if let Some(c) =
            entry_credential(entry).map_err(|why| bad(format!("auths.{key}: {why}")))?
        {
            return Ok(Some(Found {
                credential: c,
                from: format!("{from} (auths.{key})"),
            }));
        }
    }
    match cfg.creds_store.as_deref().filter(|s| !s.is_empty()) {
        Some(store) => run_helper(store, registry, &from),
        None => Ok(None),
    }
}

/// serde_json's message without echoing the file's content (a password could be in it).
fn plain_json(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "could not be read",
        Category::Syntax => "invalid JSON syntax",
        Category::Data => "a field has the wrong type",
        Category::Eof => "the file ends too early",
    }
}

fn entry_credential(e: &AuthEntry) -> Result<Option<Credential>, String> {
    if let Some(t) = e.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(Secret::new(t))));
    }
    if let Some(a) = e.auth.as_deref().filter(|a| !a.is_empty()) {
        let raw = Base64::decode_vec(a.trim()).map_err(|_| {
            "`auth` is not base64 of user:password (run `docker login` again)".to_string()
        })?;
        let pair = String::from_utf8(raw)
            .map_err(|_| "`auth` does not decode to text (run `docker login` again)".to_string())?;
        let Some((user, password)) = pair.split_once(':') else {
            return Err(
                "`auth` does not decode to user:password (run `docker login` again)".into(),
            );
        };
        return Ok(Some(Credential::Basic {
            user: user.to_string(),
            password: Secret::new(password),
        }));
    }
    match (e.username.as_deref(), e.password.as_deref()) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credential::Basic {
            user: u.to_string(),
            password: Secret::new(p),
        })),
        _ => Ok(None),
    }
}

/// Whether a key of the docker config (`ghcr.io`, `https://index.docker.io/v1/`,
/// `http://localhost:5000`) names `registry`.
pub fn same_registry(key: &str, registry: &str) -> bool {
    let host = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    let canon = |h: &str| match h {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        other => other.to_ascii_lowercase(),
    };
    canon(host) == canon(registry)
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// `docker-credential-<name> get`, the server on stdin, within [`CRED_HELPER_TIMEOUT`]. "Not found"
/// (exit 1 with "credentials not found") is anonymous access.
fn run_helper(name: &str, registry: &str, from: &str) -> Result<Option<Found>, ModelcarError> {
    let program = format!("docker-credential-{name}");
    let fail = |why: String| ModelcarError::CredentialHelper {
        helper: program.clone(),
        config: from.to_string(),
        why,
    };
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(fail(
            "the helper's name has characters a program name cannot have".into(),
        ));
    }
    let server = if registry == super::reference::DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "could not be started ({e}): install it, or remove the entry from the docker config \
                 and log in with `docker login` without a credential store"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = read_bounded(child.stdout.take());
    let err = read_bounded(child.stderr.take());
    let deadline = Instant::now() + CRED_HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "gave no answer within {} (is it waiting for a password prompt?)",
                    humantime::format_duration(CRED_HELPER_TIMEOUT)
                )));
            }
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        let said = String::from_utf8_lossy(if err.is_empty() { &out } else { &err }).to_string();
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // Its own words may hold a secret: only the first line, and only when it looks like words.
        let line = said.lines().next().unwrap_or("").trim();
        let shown = if line.len() <= 200 && line.contains(' ') {
            line
        } else {
            "(output not shown)"
        };
        return Err(fail(format!("failed ({status}): {shown}")));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out)
        .map_err(|_| fail("answered something that is not its JSON {Username, Secret}".into()))?;
    let credential = if answer.username == "<token>" {
        Credential::IdentityToken(Secret::new(answer.secret))
    } else {
        Credential::Basic {
            user: answer.username,
            password: Secret::new(answer.secret),
        }
    };
    Ok(Some(Found {
        credential,
        from: format!("{from} ({program})"),
    }))
}

/// Read at most 64 KiB of a child's pipe on a thread.
fn read_bounded<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(r) = r {
            let _ = r.take(64 * 1024).read_to_end(&mut buf);
        }
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("config.json");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn auths_entries_are_read_and_matched_by_host() {
        let d = tempfile::tempdir().unwrap();
        let auth = Base64::encode_string(b"alice:s3cret-pass");
        let p = write(
            d.path(),
            &format!(
                r#"{{"auths": {{"https://127.0.0.1:5000/v2/": {{"auth": "{auth}"}},
                   "https://index.docker.io/v1/": {{"identitytoken": "tok-123456"}}}}}}"#
            ),
        );
        let f = lookup_in(&p, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            f.credential,
            Credential::Basic {
                user: "alice".into(),
                password: Secret::new("s3cret-pass")
            }
        );
        assert!(!format!("{f:?}").contains("s3cret"));
        assert!(f.credential.secrets().contains(&auth));
        let hub = lookup_in(&p, "docker.io").unwrap().unwrap();
        assert!(matches!(hub.credential, Credential::IdentityToken(_)));
        assert!(lookup_in(&p, "ghcr.io").unwrap().is_none());
    }

    #[test]
    fn a_broken_file_is_named_without_its_content() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            r#"{"auths": {"x": {"auth": "hunter2-not-base64!"}}}"#,
        );
        let e = lookup_in(&p, "x").unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("auths.x"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let p = write(d.path(), r#"{"auths": {"x": "password123"#);
        let e = lookup_in(&p, "x").unwrap_err().to_string();
        assert!(!e.contains("password123"), "{e}");
    }

    #[test]
    fn a_missing_helper_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            r#"{"credHelpers": {"ghcr.io": "platform-test-absent"}}"#,
        );
        let e = lookup_in(&p, "ghcr.io").unwrap_err().to_string();
        assert!(e.contains("docker-credential-platform-test-absent"), "{e}");
        assert!(e.contains("could not be started"), "{e}");
    }
}
