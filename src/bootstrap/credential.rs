//! The repository credential Argo CD needs for a private GitOps repository: a Secret labelled
//! `argocd.argoproj.io/secret-type: repository` holding the config's `repoURL` and either an HTTPS
//! token (`--repo-token-env VAR`) or an ssh private key (`--repo-ssh-key FILE`). The credential is
//! never printed, logged or put in a message: errors name the variable or the file, never the value.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::Api;
use serde_json::{json, Value};

use super::BootstrapError;
use crate::cluster::retry::retry;
use crate::cluster::ClusterError;
use crate::consts;

pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
pub const DEFAULT_USERNAME: &str = "x-access-token";
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// A credential; `Debug` shows its kind only.
#[derive(Clone)]
pub enum Credential {
    Token { username: String, token: String },
    SshKey { key: String, file: PathBuf },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Token { username, .. } => write!(f, "Token({username}, <withheld>)"),
            Credential::SshKey { file, .. } => write!(f, "SshKey({}, <withheld>)", file.display()),
        }
    }
}

impl Credential {
    /// The credential bootstrap was given for `repo_url`: the token in environment variable
    /// `token_env` (sent with `username`), else the ssh key in `ssh_key`, else none; a token for an
    /// ssh URL or a key for an https one is refused.
    pub fn for_repo(
        token_env: Option<&str>,
        username: &str,
        ssh_key: Option<&Path>,
        repo_url: &str,
    ) -> Result<Option<Credential>, BootstrapError> {
        let credential = match (token_env, ssh_key) {
            (Some(var), _) => Credential::from_env(var, Some(username))?,
            (None, Some(file)) => Credential::from_key_file(file)?,
            (None, None) => return Ok(None),
        };
        credential.check_url(repo_url)?;
        Ok(Some(credential))
    }

    /// The token in environment variable `var` (the message names the variable, never a value).
    pub fn from_env(var: &str, username: Option<&str>) -> Result<Credential, BootstrapError> {
        let token = std::env::var(var).unwrap_or_default();
        let token = token.trim();
        if token.is_empty() {
            return Err(BootstrapError::Credential(format!(
                "--repo-token-env {var}: the environment variable {var} is unset or empty; export the \
                 repository token in it (the token is never passed as an argument)"
            )));
        }
        Ok(Credential::Token {
            username: username.unwrap_or(DEFAULT_USERNAME).to_string(),
            token: token.to_string(),
        })
    }

    /// The ssh private key in `path` (the message names the file, never its content).
    pub fn from_key_file(path: &Path) -> Result<Credential, BootstrapError> {
        let key =
            crate::fsread::read_text(path, MAX_KEY_BYTES, "ssh private key").map_err(|e| {
                BootstrapError::Credential(format!(
                    "--repo-ssh-key {}: {}",
                    path.display(),
                    e.reason()
                ))
            })?;
        if !key.trim_start().starts_with("-----BEGIN ") || !key.contains("PRIVATE KEY-----") {
            return Err(BootstrapError::Credential(format!(
                "--repo-ssh-key {}: not a PEM/OpenSSH private key (it must start with `-----BEGIN … PRIVATE KEY-----`)",
                path.display()
            )));
        }
        Ok(Credential::SshKey {
            key,
            file: path.to_path_buf(),
        })
    }

    /// The secret material, for scrubbing messages.
    pub fn secret(&self) -> &str {
        match self {
            Credential::Token { token, .. } => token,
            Credential::SshKey { key, .. } => key,
        }
    }

    /// A token authenticates https URLs, a key ssh ones.
    pub fn check_url(&self, repo_url: &str) -> Result<(), BootstrapError> {
        let ssh = is_ssh(repo_url);
        match self {
            Credential::Token { .. } if ssh => Err(BootstrapError::Credential(format!(
                "--repo-token-env: repoURL {repo_url} is an ssh URL; a token authenticates https URLs (pass --repo-ssh-key FILE, or use the https URL in config.yaml)"
            ))),
            Credential::SshKey { .. } if !ssh => Err(BootstrapError::Credential(format!(
                "--repo-ssh-key: repoURL {} is not an ssh URL; a key authenticates ssh URLs (git@host:org/repo.git or ssh://…); pass --repo-token-env VAR for https",
                crate::gitops::git::redact(repo_url)
            ))),
            _ => Ok(()),
        }
    }
}

/// `git@host:…` or `ssh://…`: a repository that needs a credential.
pub fn is_ssh(url: &str) -> bool {
    url.starts_with("ssh://") || (url.contains('@') && url.contains(':') && !url.contains("://"))
}

/// The name of the repository Secret for `repo_url`: an existing one (any name) holding that URL,
/// else `repo-<sha256(url)[..10]>`.
pub async fn find(
    client: &kube::Client,
    namespace: &str,
    repo_url: &str,
) -> Result<Option<String>, ClusterError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}=repository"));
    let list = retry(|| api.list(&lp))
        .await
        .map_err(|e| ClusterError::api(format!("listing repository Secrets in {namespace}"), e))?;
    Ok(list.items.into_iter().find_map(|s| {
        let url = s.data.as_ref()?.get("url")?;
        (String::from_utf8_lossy(&url.0) == repo_url).then(|| s.metadata.name.unwrap_or_default())
    }))
}

pub fn default_name(repo_url: &str) -> String {
    format!(
        "repo-{}",
        &super::manifest::sha256_hex(repo_url.as_bytes())[..10]
    )
}

/// The Secret (server-side apply body) for `repo_url` named `name`.
pub fn secret_object(name: &str, namespace: &str, repo_url: &str, cred: &Credential) -> Value {
    let b = |s: &str| k8s_openapi::ByteString(s.as_bytes().to_vec());
    let mut data = std::collections::BTreeMap::from([
        ("type".to_string(), b("git")),
        ("url".to_string(), b(repo_url)),
    ]);
    match cred {
        Credential::Token { username, token } => {
            data.insert("username".into(), b(username));
            data.insert("password".into(), b(token));
        }
        Credential::SshKey { key, .. } => {
            data.insert("sshPrivateKey".into(), b(key));
        }
    }
    let mut v = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                SECRET_TYPE_LABEL: "repository",
                consts::LABEL_MANAGED_BY: consts::MANAGED_BY_VALUE,
            },
        },
    });
    // ByteString serializes as base64, as the API expects.
    v["data"] = serde_json::to_value(&data).unwrap_or_default();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls() {
        assert!(is_ssh("git@github.com:acme/gitops.git"));
        assert!(is_ssh("ssh://git@github.com/acme/gitops.git"));
        assert!(!is_ssh("https://github.com/acme/gitops.git"));
        assert!(!is_ssh("https://user@github.com/acme/gitops.git"));
        assert!(!is_ssh("file:///tmp/x.git"));
    }

    #[test]
    fn a_credential_never_shows_in_debug_or_errors() {
        let c = Credential::Token {
            username: "u".into(),
            token: "tok-SECRET".into(),
        };
        assert!(!format!("{c:?}").contains("SECRET"));
        let e = c
            .check_url("git@github.com:a/b.git")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("SECRET"), "{e}");
        let o = secret_object("repo-x", "argocd", "https://h/r.git", &c);
        assert_eq!(o["metadata"]["labels"][SECRET_TYPE_LABEL], "repository");
        assert!(!o.to_string().contains("tok-SECRET"));
    }

    #[test]
    fn a_missing_variable_names_the_variable() {
        let e = Credential::from_env("PLATFORM_TEST_NO_SUCH_VAR_42", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PLATFORM_TEST_NO_SUCH_VAR_42"), "{e}");
    }

    #[test]
    fn the_credential_for_a_repo_is_the_one_given_and_fits_its_url() {
        let https = "https://github.com/acme/gitops.git";
        assert!(Credential::for_repo(None, DEFAULT_USERNAME, None, https)
            .unwrap()
            .is_none());
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(
            &key,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        let ssh = "git@github.com:acme/gitops.git";
        let c = Credential::for_repo(None, DEFAULT_USERNAME, Some(&key), ssh)
            .unwrap()
            .unwrap();
        assert!(matches!(c, Credential::SshKey { .. }));
        let e = Credential::for_repo(None, DEFAULT_USERNAME, Some(&key), https)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--repo-ssh-key") && e.contains("not an ssh URL"),
            "{e}"
        );
    }
}
