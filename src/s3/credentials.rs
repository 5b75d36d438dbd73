//! AWS credentials for `stage-model`, from the user's environment only (never config.yaml): the
//! standard variables, else the shared credentials file, else none (anonymous requests).

use std::fmt;
use std::path::{Path, PathBuf};

use super::consts::*;
use super::error::S3Error;
use crate::fsread;

/// A secret (an AWS secret access key or session token). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret; surrounding whitespace is dropped; `None` when nothing is left.
    pub fn new(s: impl Into<String>) -> Option<Self> {
        let s = s.into().trim().to_string();
        (!s.is_empty()).then_some(Secret(s))
    }

    /// The secret itself, for signing only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the credentials came from (safe to print).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`).
    Env,
    /// A profile of the shared credentials file.
    Profile { profile: String, path: PathBuf },
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Env => write!(f, "${ENV_ACCESS_KEY_ID} and ${ENV_SECRET_ACCESS_KEY}"),
            CredentialSource::Profile { profile, path } => {
                write!(f, "profile `{profile}` of {}", path.display())
            }
        }
    }
}

/// An access key pair (and session token). `Debug` shows where it came from, never a secret;
/// the access key id is not shown either.
#[derive(Clone)]
pub struct AwsCredentials {
    access_key_id: Secret,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    pub source: CredentialSource,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    pub fn new(
        access_key_id: Secret,
        secret_access_key: Secret,
        session_token: Option<Secret>,
        source: CredentialSource,
    ) -> Self {
        AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token,
            source,
        }
    }

    /// The signing credentials of `rusty_s3`.
    pub(crate) fn signing(&self) -> rusty_s3::Credentials {
        let (key, secret) = (
            self.access_key_id.expose_secret(),
            self.secret_access_key.expose_secret(),
        );
        match &self.session_token {
            Some(t) => rusty_s3::Credentials::new_with_token(key, secret, t.expose_secret()),
            None => rusty_s3::Credentials::new(key, secret),
        }
    }

    /// The key pair, for the Secret KServe's storage initializer reads S3 with (`platform up`).
    pub fn key_pair(&self) -> (&str, &str) {
        (
            self.access_key_id.expose_secret(),
            self.secret_access_key.expose_secret(),
        )
    }

    /// Temporary credentials (with a session token): a Secret made of them stops working.
    pub fn is_temporary(&self) -> bool {
        self.session_token.is_some()
    }

    /// Every secret string these credentials hold, to scrub from text a server sent back.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        let mut v = vec![
            self.secret_access_key.expose_secret(),
            self.access_key_id.expose_secret(),
        ];
        v.extend(self.session_token.as_ref().map(Secret::expose_secret));
        v
    }

    /// From the process environment; see [`AwsCredentials::from_vars`].
    pub fn from_env() -> Result<Option<Self>, S3Error> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`); else the profile
    /// `AWS_PROFILE` (default `default`) of `AWS_SHARED_CREDENTIALS_FILE` (default
    /// `~/.aws/credentials`); else `None` (anonymous). Only one of the two variables set, a profile
    /// named by `AWS_PROFILE` that is missing, or a profile without both keys is an error naming
    /// what to set.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, S3Error> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let key = var(ENV_ACCESS_KEY_ID).and_then(Secret::new);
        let secret = var(ENV_SECRET_ACCESS_KEY).and_then(Secret::new);
        match (key, secret) {
            (Some(key), Some(secret)) => {
                let token = var(ENV_SESSION_TOKEN).and_then(Secret::new);
                return Ok(Some(Self::new(key, secret, token, CredentialSource::Env)));
            }
            (Some(_), None) => {
                return Err(S3Error::IncompleteCredentials {
                    have: ENV_ACCESS_KEY_ID,
                    missing: ENV_SECRET_ACCESS_KEY,
                })
            }
            (None, Some(_)) => {
                return Err(S3Error::IncompleteCredentials {
                    have: ENV_SECRET_ACCESS_KEY,
                    missing: ENV_ACCESS_KEY_ID,
                })
            }
            (None, None) => {}
        }
        let explicit_profile = var(ENV_PROFILE);
        let profile = explicit_profile
            .clone()
            .unwrap_or_else(|| DEFAULT_PROFILE.to_string());
        let path = match var(ENV_SHARED_CREDENTIALS_FILE) {
            Some(p) => PathBuf::from(p),
            None => match var("HOME") {
                Some(h) => PathBuf::from(h).join(DEFAULT_CREDENTIALS_FILE),
                None => return Ok(None),
            },
        };
        let text = match fsread::read_text(&path, fsread::MAX_INPUT_BYTES, "AWS credentials file") {
            Ok(t) => t,
            Err(e)
                if e.io_kind() == Some(std::io::ErrorKind::NotFound)
                    && explicit_profile.is_none() =>
            {
                return Ok(None)
            }
            Err(source) => return Err(S3Error::CredentialsFile { path, source }),
        };
        from_profile(&text, &profile, &path, explicit_profile.is_some())
    }
}

/// The credentials of `profile` in the shared credentials file `text` (read from `path`).
fn from_profile(
    text: &str,
    profile: &str,
    path: &Path,
    required: bool,
) -> Result<Option<AwsCredentials>, S3Error> {
    let Some(keys) = ini_section(text, profile) else {
        if required {
            return Err(S3Error::NoSuchProfile {
                profile: profile.to_string(),
                path: path.to_path_buf(),
            });
        }
        return Ok(None);
    };
    let get = |k: &str| {
        keys.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
            .and_then(|(_, v)| Secret::new(v.clone()))
    };
    let (Some(key), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) else {
        return Err(S3Error::IncompleteProfile {
            profile: profile.to_string(),
            path: path.to_path_buf(),
        });
    };
    let source = CredentialSource::Profile {
        profile: profile.to_string(),
        path: path.to_path_buf(),
    };
    Ok(Some(AwsCredentials::new(
        key,
        secret,
        get("aws_session_token"),
        source,
    )))
}

/// The `key = value` pairs of section `[name]` of an INI text (`#`/`;` comments), or `None`.
fn ini_section(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut inside = false;
    let mut found = None::<Vec<(String, String)>>;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = head.trim() == name;
            if inside && found.is_none() {
                found = Some(Vec::new());
            }
            continue;
        }
        if inside {
            if let (Some(pairs), Some((k, v))) = (found.as_mut(), line.split_once('=')) {
                pairs.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn creds(vars: &[(&str, &str)]) -> Result<Option<AwsCredentials>, S3Error> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AwsCredentials::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn env_then_profile_then_anonymous_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s3cr3tdefault\n\n[ci]\naws_access_key_id=AKIDCI\naws_secret_access_key=s3cr3tci\naws_session_token = tok3n\n[half]\naws_access_key_id=x\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let c = creds(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3tenv"),
            ("AWS_SHARED_CREDENTIALS_FILE", f),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.source, CredentialSource::Env);
        assert_eq!(c.secrets()[0], "s3cr3tenv");
        let shown = format!("{c:?} {}", c.source);
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("AKID"),
            "{shown}"
        );

        let c = creds(&[("AWS_SHARED_CREDENTIALS_FILE", f)])
            .unwrap()
            .unwrap();
        assert_eq!(c.secrets()[0], "s3cr3tdefault");
        let c = creds(&[("AWS_SHARED_CREDENTIALS_FILE", f), ("AWS_PROFILE", "ci")])
            .unwrap()
            .unwrap();
        assert_eq!(c.secrets(), ["s3cr3tci", "AKIDCI", "tok3n"]);
        assert_eq!(c.source.to_string(), format!("profile `ci` of {f}"));

        let e = creds(&[("AWS_SHARED_CREDENTIALS_FILE", f), ("AWS_PROFILE", "nope")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("profile `nope`") && e.contains("AWS_PROFILE"),
            "{e}"
        );
        let e = creds(&[("AWS_SHARED_CREDENTIALS_FILE", f), ("AWS_PROFILE", "half")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("aws_secret_access_key"), "{e}");
        let e = creds(&[("AWS_ACCESS_KEY_ID", "AKID")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY is not"), "{e}");
        assert!(!e.contains("AKID\""), "{e}");

        // No variables, no file: anonymous.
        let home = dir.path().join("home");
        assert!(creds(&[("HOME", home.to_str().unwrap())])
            .unwrap()
            .is_none());
        assert!(format!("{:?}", Secret::new("x").unwrap()) == "Secret(<redacted>)");
    }
}
