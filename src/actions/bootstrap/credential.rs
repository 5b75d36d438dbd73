//! The repository credential Argo CD needs for a private GitOps repository: a Secret labelled
//! `argocd.argoproj.io/secret-type: repository` holding the config's `repoURL` and either an HTTPS
//! token (`--repo-token-env VAR`) or an ssh private key (`--repo-ssh-key FILE`). The credential is
//! never printed, logged or put in a message: errors name the variable or the file, never the value.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::Api;
use serde_json::{json, Value};

use super::BootstrapError;
use crate::cluster::{Client, ClusterError};
use crate::consts;

pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
pub const DEFAULT_USERNAME: &str = "x-access-token";
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// A credential; `Debug` shows its kind only.
#[derive(Clone)]
pub enum Credential {
    Token {
        username: String,
        token: String,
    },
    /// `mode`: the key file's permission bits when it was read.
    SshKey {
        key: String,
        file: PathBuf,
        mode: u32,
    },
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
    /// Surrounding whitespace (a trailing newline of `$(cat file)`) is trimmed; whitespace inside
    /// is refused: no token has any, so it is a paste gone wrong that Argo CD would send as is.
    pub fn from_env(var: &str, username: Option<&str>) -> Result<Credential, BootstrapError> {
        let token = std::env::var(var).unwrap_or_default();
        let token = token.trim();
        if token.is_empty() {
            return Err(BootstrapError::Credential(format!(
                "--repo-token-env {var}: the environment variable {var} is unset or empty; export the \
                 repository token in it (the token is never passed as an argument)"
            )));
        }
        if token.chars().any(char::is_whitespace) {
            return Err(BootstrapError::Credential(format!(
                "--repo-token-env {var}: the value of {var} has whitespace (a space, tab or line \
                 break) inside it, which no token has; nothing was changed: export the token alone \
                 (the value is not shown)"
            )));
        }
        Ok(Credential::Token {
            username: username.unwrap_or(DEFAULT_USERNAME).to_string(),
            token: token.to_string(),
        })
    }

    /// The ssh private key in `path` (the message names the file, never its content), refused when
    /// Argo CD could not use it (see [`check_private_key`]).
    pub fn from_key_file(path: &Path) -> Result<Credential, BootstrapError> {
        let refuse = |why: String| {
            BootstrapError::Credential(format!(
                "--repo-ssh-key {}: {why}; nothing was changed",
                path.display()
            ))
        };
        let key = crate::fsread::read_text(path, MAX_KEY_BYTES, "ssh private key")
            .map_err(|e| refuse(e.reason()))?;
        check_private_key(&key).map_err(refuse)?;
        let mode = std::fs::metadata(path).map(|m| m.mode()).unwrap_or(0);
        Ok(Credential::SshKey {
            key,
            file: path.to_path_buf(),
            mode,
        })
    }

    /// What the user should know about the credential (a key file others can read).
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Credential::SshKey { file, mode, .. } if mode & 0o077 != 0 => {
                vec![format!(
                "--repo-ssh-key {}: the private key file is readable by {} (mode {:o}); restrict \
                 it: `chmod 600 {}`",
                file.display(),
                if mode & 0o007 != 0 { "others" } else { "its group" },
                mode & 0o777,
                file.display()
            )]
            }
            _ => Vec::new(),
        }
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

const REMOVE_PASSPHRASE: &str = "remove the passphrase on a copy of the key \
    (`ssh-keygen -p -N '' -f COPY`) and pass the copy, or make a deploy key without one";

/// Whether Argo CD can use `text` as an ssh private key, as Go's `ssh.ParsePrivateKey` reads them:
/// an OpenSSH key (`BEGIN OPENSSH PRIVATE KEY`), or PEM PKCS#1 RSA, SEC1 EC or PKCS#8; without a
/// passphrase (Argo CD cannot ask for one), whole (a truncated or corrupted key is refused here,
/// not by Argo CD at its next fetch). The reason never quotes the key.
pub fn check_private_key(text: &str) -> Result<(), String> {
    let text = text.trim();
    let Some(label) = text
        .lines()
        .next()
        .and_then(|l| l.trim().strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
    else {
        return Err(
            "not a private key: it must start with `-----BEGIN … PRIVATE KEY-----`".to_string(),
        );
    };
    // Legacy PEM encryption (`Proc-Type: 4,ENCRYPTED` + `DEK-Info`).
    if text.contains("Proc-Type:") && text.contains("ENCRYPTED") {
        return Err(format!(
            "the key is protected by a passphrase, which Argo CD cannot use: {REMOVE_PASSPHRASE}"
        ));
    }
    let corrupt = |e: &dyn std::fmt::Display| {
        format!(
            "the key is truncated or corrupted ({e}); pass the whole private key file, as \
             ssh-keygen wrote it"
        )
    };
    match label {
        "OPENSSH PRIVATE KEY" => {
            let key = match ssh_key::PrivateKey::from_openssh(text) {
                Ok(key) => key,
                Err(_) if super::openssh::is_unencrypted_p521(text) => return Ok(()),
                Err(
                    ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. },
                ) => {
                    return Err(
                        "the key's type is not one Argo CD reads (RSA, ECDSA or Ed25519)"
                            .to_string(),
                    )
                }
                Err(e) => return Err(corrupt(&e)),
            };
            if key.is_encrypted() {
                return Err(format!(
                    "the key is protected by a passphrase, which Argo CD cannot use: {REMOVE_PASSPHRASE}"
                ));
            }
            Ok(())
        }
        "ENCRYPTED PRIVATE KEY" => Err(format!(
            "the key is an encrypted PKCS#8 key (protected by a passphrase), which Argo CD cannot \
             use: {REMOVE_PASSPHRASE}"
        )),
        "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" => {
            use pkcs1::der::Decode as _;
            let (found, der) = pem_rfc7468::decode_vec(text.as_bytes()).map_err(|e| corrupt(&e))?;
            if found != label {
                return Err(corrupt(&format!("it ends as a `{found}` block")));
            }
            let parsed = match label {
                "RSA PRIVATE KEY" => pkcs1::RsaPrivateKey::from_der(&der).map(|_| ()),
                "EC PRIVATE KEY" => sec1::EcPrivateKey::from_der(&der).map(|_| ()),
                _ => pkcs8::PrivateKeyInfo::from_der(&der).map(|_| ()),
            };
            parsed.map_err(|e| corrupt(&e))
        }
        other => Err(format!(
            "a `{other}` block is not a private key Argo CD reads (OpenSSH, or PEM RSA, EC or \
             PKCS#8)"
        )),
    }
}

/// `git@host:…` or `ssh://…`: a repository that needs a credential.
pub fn is_ssh(url: &str) -> bool {
    url.starts_with("ssh://") || (url.contains('@') && url.contains(':') && !url.contains("://"))
}

/// The name of the repository Secret for `repo_url`: an existing one (any name) holding that URL,
/// else `repo-<sha256(url)[..10]>`.
pub async fn find(
    client: &Client,
    namespace: &str,
    repo_url: &str,
) -> Result<Option<String>, ClusterError> {
    let api: Api<Secret> = Api::namespaced(client.kube(), namespace);
    let lp = ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}=repository"));
    let list = client
        .retry(|| api.list(&lp))
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

    /// A new key from `ssh-keygen -t KIND` (openssh-client; `.ci/run` installs it).
    fn keygen(dir: &Path, kind: &str, extra: &[&str]) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = dir.join(format!("id_{kind}_{n}"));
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", "test", "-f"])
            .arg(&key)
            .args(extra)
            .output()
            .expect("ssh-keygen (apt-get install openssh-client)");
        assert!(out.status.success(), "{out:?}");
        key
    }

    #[test]
    fn keys_argo_cd_can_use_pass_and_others_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        for (kind, extra) in [
            ("ed25519", &[][..]),
            ("ecdsa", &[][..]),
            ("ecdsa", &["-b", "521"][..]),
            ("rsa", &["-b", "2048"][..]),
            ("rsa", &["-b", "2048", "-m", "PEM"][..]),
            ("ecdsa", &["-m", "PEM"][..]),
            ("ecdsa", &["-m", "PKCS8"][..]),
        ] {
            let key = keygen(dir.path(), kind, extra);
            assert_eq!(check_private_key(&read(&key)), Ok(()), "{kind} {extra:?}");
        }
        let good = read(&keygen(dir.path(), "ed25519", &[]));
        let pem = read(&keygen(dir.path(), "rsa", &["-b", "2048", "-m", "PEM"]));
        let three: String = good.lines().take(3).map(|l| format!("{l}\n")).collect();
        let garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END OPENSSH PRIVATE KEY-----\n";
        let pem_cut: String = pem
            .lines()
            .take(5)
            .chain(pem.lines().last())
            .map(|l| format!("{l}\n"))
            .collect();
        for (text, why) in [
            (three.as_str(), "truncated or corrupted"),
            (garbage, "truncated or corrupted"),
            (pem_cut.as_str(), "truncated or corrupted"),
            ("ssh-ed25519 AAAAC3Nza test", "not a private key"),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a private key Argo CD reads"),
            ("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n", "passphrase"),
        ] {
            let e = check_private_key(text).unwrap_err();
            assert!(e.contains(why), "{why}: {e}");
        }
        let locked = keygen(dir.path(), "ed25519", &[]);
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-p", "-N", "pass-phrase", "-P", "", "-f"])
            .arg(&locked)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let e = check_private_key(&read(&locked)).unwrap_err();
        assert!(e.contains("passphrase"), "{e}");
    }

    #[test]
    fn a_token_with_whitespace_inside_is_refused_naming_the_variable_only() {
        let var = "PLATFORM_TEST_TOKEN_WITH_SPACE";
        std::env::set_var(var, "ghp_abc def\n");
        let e = Credential::from_env(var, None).unwrap_err().to_string();
        std::env::remove_var(var);
        assert!(e.contains(var) && e.contains("whitespace"), "{e}");
        assert!(!e.contains("ghp_abc"), "{e}");
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
        let key = keygen(dir.path(), "ed25519", &[]);
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
