//! The target guard: which cluster a command talks to, printed before acting, and a refusal —
//! before any write — when it is unreachable or is not the cluster the environment names.
//!
//! Kubeconfig, first found: `--kubeconfig`, `PLATFORM_KUBECONFIG`, the config's `cluster.kubeconfig`,
//! and only when the config says `useGlobalContext: true`, `KUBECONFIG` / `~/.kube/config`.
//! Context: `--context`, else the config's `cluster.context`, else the file's current context.
//!
//! Identity (what is compared with `cluster.name`): the ConfigMap `kube-system/cluster-identity`
//! key `clusterName` when the cluster has it; otherwise the kubeconfig's cluster entry name, equal to
//! `cluster.name` or ending in `_<name>` (GKE `gke_<project>_<location>_<name>`) or `/<name>` (EKS
//! ARNs). A ConfigMap that cannot be read (403) counts as none. Bootstrap reads it the same way
//! ([`recorded_identity`]).
//!
//! A target that records another name is refused, whatever the command. One that cannot be
//! confirmed (no identity recorded, a cluster entry named otherwise) is refused by the commands
//! that write ([`Access::Write`]) with the commands that record the identity, both aimed at the
//! target's kubeconfig and context; the commands that only read ([`Access::ReadOnly`]: doctor,
//! status, wait, smoke, fit, logs, diff against the cluster) go on with a warning saying so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{ExecConfig, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Api, Client};

use super::api_error::{self, Plugin};
use super::retry::Retry;
use super::ClusterError;
use crate::config::EnvConfig;
use crate::fsread;

pub const KUBECONFIG_ENV: &str = "PLATFORM_KUBECONFIG";
pub const IDENTITY_NAMESPACE: &str = "kube-system";
pub const IDENTITY_CONFIGMAP: &str = "cluster-identity";
pub const IDENTITY_KEY: &str = "clusterName";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// The environment the command acts on, named in the commands a refusal suggests.
    pub env: Option<String>,
}

/// What a command does to the cluster it connects to: whether it may go on when the cluster's
/// identity cannot be confirmed (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// It only reads (doctor, status, wait, smoke, fit, logs, diff against the cluster): an
    /// unconfirmed identity is a warning ([`Target::unconfirmed`]).
    ReadOnly,
    /// It writes: an unconfirmed identity is refused before anything is written.
    Write,
}

/// A connected, verified cluster.
#[derive(Clone)]
pub struct Target {
    pub kubeconfig: PathBuf,
    pub context: String,
    pub cluster_entry: String,
    pub server: String,
    pub version: String,
    /// How the identity was confirmed.
    pub identity: String,
    /// Set when a read-only command goes on although the identity could not be confirmed: the
    /// warning to print (what is unconfirmed and how to record the identity).
    pub unconfirmed: Option<String>,
    /// The command's cluster client (its requests follow the command's retry policy).
    pub client: super::Client,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "target: kubeconfig {} · context {} · server {} (Kubernetes {}) · {}",
            self.kubeconfig.display(),
            self.context,
            self.server,
            self.version,
            self.identity
        )
    }
}

fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        None => PathBuf::from(p),
    }
}

/// Which kubeconfig file to use, and why.
pub fn kubeconfig_path(cfg: &EnvConfig, opts: &TargetOptions) -> Result<PathBuf, ClusterError> {
    if let Some(p) = &opts.kubeconfig {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os(KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = cfg.cluster.kubeconfig.as_deref().filter(|p| !p.is_empty()) {
        return Ok(expand_home(p));
    }
    if cfg.cluster.use_global_context {
        if let Some(first) =
            std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).next())
        {
            return Ok(first);
        }
        return Ok(expand_home("~/.kube/config"));
    }
    Err(ClusterError::NoKubeconfig {
        cluster: cfg.cluster.name.clone(),
    })
}

/// Load the kubeconfig, connect (short timeouts), check reachability and identity. Nothing is written.
/// The target's client follows `retry` (the command's request timeout and reporter). An identity
/// that cannot be confirmed is refused under [`Access::Write`] and noted in
/// [`Target::unconfirmed`] under [`Access::ReadOnly`]; another cluster's is always refused.
pub async fn connect(
    cfg: &EnvConfig,
    opts: &TargetOptions,
    retry: Retry,
    access: Access,
) -> Result<Target, ClusterError> {
    let mut target = open(cfg, opts, retry).await?;
    match verify_identity(&target.client, &cfg.cluster.name, &target.cluster_entry).await {
        Ok(identity) => target.identity = identity,
        Err(ClusterError::Unconfirmed {
            expected, entry, ..
        }) => {
            let fix = record_fix(&expected, &target, opts.env.as_deref());
            if access == Access::Write {
                return Err(ClusterError::Unconfirmed {
                    expected,
                    entry,
                    fix,
                });
            }
            target.identity = format!("identity NOT confirmed (cluster entry {entry})");
            target.unconfirmed = Some(format!(
                "cannot confirm that the target is cluster `{expected}` (kubeconfig cluster entry \
                 `{entry}`, no readable ConfigMap {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP}): this command \
                 only reads, so it goes on; commands that write refuse until the identity is \
                 recorded.\nhelp: if it is that cluster, {fix}"
            ));
        }
        Err(e) => return Err(e),
    }
    Ok(target)
}

/// How to record the identity of `target` as `expected`: bootstrap (which asks for the name to be
/// typed), or kubectl aimed at the same kubeconfig and context as the command.
impl Target {
    /// `--kubeconfig K --context C`: what a suggested kubectl needs to reach this target.
    pub fn kubectl_flags(&self) -> String {
        format!(
            "--kubeconfig {} --context {}",
            shell_word(&self.kubeconfig.display().to_string()),
            shell_word(&self.context)
        )
    }
}

fn record_fix(expected: &str, target: &Target, env: Option<&str>) -> String {
    let bootstrap = match env {
        Some(e) => format!("platform bootstrap --env {e}"),
        None => "platform bootstrap".to_string(),
    };
    format!(
        "`{bootstrap}` records it (after you type the cluster name; it also installs Argo CD), \
         or record it yourself: `kubectl {} -n {IDENTITY_NAMESPACE} create configmap \
         {IDENTITY_CONFIGMAP} --from-literal={IDENTITY_KEY}={expected}`",
        target.kubectl_flags(),
    )
}

/// `s` as one shell word: as is when it is plain, else single-quoted.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@=+,~%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// [`connect`] without the identity check (`identity` says so): for `bootstrap`, which records the
/// identity of a brand-new cluster after the user confirmed the target.
pub async fn open(
    cfg: &EnvConfig,
    opts: &TargetOptions,
    retry: Retry,
) -> Result<Target, ClusterError> {
    let path = kubeconfig_path(cfg, opts)?;
    let kc = load_kubeconfig(&path)?;
    let context = opts
        .context
        .clone()
        .or_else(|| cfg.cluster.context.clone().filter(|c| !c.is_empty()))
        .or_else(|| kc.current_context.clone())
        .ok_or_else(|| ClusterError::Kubeconfig {
            path: path.clone(),
            message: "no context given and no current-context set".into(),
        })?;
    let Some(ctx) = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.clone())
    else {
        return Err(ClusterError::NoContext {
            path: path.clone(),
            context,
            available: kc.contexts.iter().map(|c| c.name.clone()).collect(),
        });
    };
    let server = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        cluster: None,
        user: None,
    };
    let mut config = kube::Config::from_custom_kubeconfig(kc.clone(), &options)
        .await
        .map_err(|e| ClusterError::Kubeconfig {
            path: path.clone(),
            message: e.to_string(),
        })?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let plugin = exec_plugin(&kc, ctx.user.as_deref());
    let plugin = Plugin {
        command: plugin.and_then(|e| e.command.as_deref()),
        install_hint: plugin.and_then(|e| e.install_hint.as_deref()),
    };
    // An exec credential plugin runs here: its failure is described without its output.
    let client = Client::try_from(config).map_err(|e| ClusterError::Kubeconfig {
        path: path.clone(),
        message: api_error::describe_with(&e, &plugin),
    })?;
    let version = match tokio::time::timeout(REACH_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(info)) => info.git_version,
        // The server answered: not unreachable, but refused (a 401 from expired credentials).
        Ok(Err(kube::Error::Api(s))) => {
            return Err(ClusterError::api(
                format!("asking {server} for its version"),
                kube::Error::Api(s),
            ))
        }
        Ok(Err(e)) => {
            return Err(ClusterError::Unreachable {
                server,
                message: api_error::describe_with(&e, &plugin),
                kubeconfig: path,
            })
        }
        Err(_) => {
            return Err(ClusterError::Unreachable {
                server,
                message: format!("no answer within {}s", REACH_TIMEOUT.as_secs()),
                kubeconfig: path,
            })
        }
    };
    Ok(Target {
        kubeconfig: path,
        context,
        cluster_entry: ctx.cluster,
        server,
        version,
        identity: "identity not checked yet".to_string(),
        unconfirmed: None,
        client: super::Client::new(client, retry),
    })
}

/// The exec credential plugin of kubeconfig user `user`, if it has one.
fn exec_plugin<'a>(kc: &'a Kubeconfig, user: Option<&str>) -> Option<&'a ExecConfig> {
    let user = user?;
    kc.auth_infos
        .iter()
        .find(|a| a.name == user)
        .and_then(|a| a.auth_info.as_ref())
        .and_then(|a| a.exec.as_ref())
}

/// Read and parse a kubeconfig: a regular file (a symlink to one is followed) of at most
/// [`fsread::MAX_INPUT_BYTES`], so `/dev/zero` or a FIFO cannot exhaust memory or hang. A YAML error
/// says the line, the column and what is wrong, never the text around it: a kubeconfig holds
/// credentials (tokens, keys), and the parser's snippet would print them. Relative file references
/// (certificate-authority, client-certificate, client-key, tokenFile, an exec command with a path)
/// are taken relative to the file's directory, as kubectl does.
pub fn load_kubeconfig(path: &Path) -> Result<Kubeconfig, ClusterError> {
    let err = |message: String| ClusterError::Kubeconfig {
        path: path.to_path_buf(),
        message,
    };
    // The kubeconfig error names the path already: the reason alone.
    let text = fsread::read_text(path, fsread::MAX_INPUT_BYTES, "kubeconfig")
        .map_err(|e| err(e.reason()))?;
    let mut kc = Kubeconfig::from_yaml(&text).map_err(|e| err(redacted_parse_error(&e)))?;
    if let Some(dir) = path.parent() {
        absolutize(&mut kc, dir);
    }
    Ok(kc)
}

/// What is wrong with a kubeconfig, with the line and column, never its content: no snippet, and
/// anything the parser quotes from the file (a value, a key) is replaced by `…`.
fn redacted_parse_error(e: &KubeconfigError) -> String {
    const HELP: &str =
        "fix the YAML there (the file's lines are not shown: kubeconfigs hold credentials)";
    let KubeconfigError::Parse(pe) = e else {
        return format!("invalid kubeconfig: {}", redact_quoted(&e.to_string()));
    };
    let plain = pe.without_snippet().to_string();
    let first = plain.lines().next().unwrap_or_default();
    // The location goes first, in our words.
    let what = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let what = redact_quoted(what);
    match pe.location().filter(|l| l.line() > 0) {
        Some(l) => format!(
            "invalid YAML at line {}, column {}: {what}; {HELP}",
            l.line(),
            l.column()
        ),
        None => format!("invalid YAML: {what}; {HELP}"),
    }
}

/// Replace every `"…"`, `'…'` and `` `…` `` span of a parser message with `…` (they quote the
/// file: values or keys, possibly secrets); a single quoted character (`','`) stays.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut open: Option<(char, String)> = None;
    for c in msg.chars() {
        match open.as_mut() {
            Some((q, inner)) if c == *q => {
                out.push(c);
                out.push_str(if inner.chars().count() == 1 {
                    inner
                } else {
                    "…"
                });
                out.push(c);
                open = None;
            }
            Some((_, inner)) => inner.push(c),
            None if matches!(c, '"' | '\'' | '`') => open = Some((c, String::new())),
            None => out.push(c),
        }
    }
    if let Some((q, _)) = open {
        out.push(q);
        out.push('…');
    }
    out
}

/// Make the relative file references of a kubeconfig relative to `dir`.
fn absolutize(kc: &mut Kubeconfig, dir: &Path) {
    let abs = |p: &mut Option<String>| {
        if let Some(v) = p.as_deref().filter(|v| Path::new(v).is_relative()) {
            if let Some(s) = dir.join(v).to_str() {
                *p = Some(s.to_string());
            }
        }
    };
    for named in &mut kc.clusters {
        if let Some(c) = named.cluster.as_mut() {
            abs(&mut c.certificate_authority);
        }
    }
    for named in &mut kc.auth_infos {
        if let Some(a) = named.auth_info.as_mut() {
            abs(&mut a.client_certificate);
            abs(&mut a.client_key);
            abs(&mut a.token_file);
            // Like client-go: only a command with a path separator is a path (`aws` is looked up).
            if let Some(exec) = a.exec.as_mut() {
                if exec
                    .command
                    .as_deref()
                    .is_some_and(|c| c.contains(std::path::MAIN_SEPARATOR))
                {
                    abs(&mut exec.command);
                }
            }
        }
    }
}

/// What the cluster's identity ConfigMap says about `expected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// It names `expected`.
    Matches,
    /// There is none yet.
    Absent,
    /// Reading it is forbidden (403): the kubeconfig's cluster entry has to confirm the target.
    Forbidden,
}

/// The one identity check: read ConfigMap `kube-system/cluster-identity` (retrying 429, 5xx and
/// requests without an answer, like every call) and compare its `clusterName` with `expected`. A
/// cluster that records another name is refused ([`ClusterError::WrongCluster`]); one that cannot
/// be read for another reason is an API error.
pub async fn recorded_identity(
    client: &super::Client,
    expected: &str,
) -> Result<Recorded, ClusterError> {
    let cms: Api<ConfigMap> = Api::namespaced(client.kube(), IDENTITY_NAMESPACE);
    let cm = match client.retry(|| cms.get_opt(IDENTITY_CONFIGMAP)).await {
        Ok(Some(cm)) => cm,
        Ok(None) => return Ok(Recorded::Absent),
        Err(kube::Error::Api(e)) if e.code == 403 => return Ok(Recorded::Forbidden),
        Err(e) => return Err(ClusterError::api("reading the cluster identity", e)),
    };
    let found = cm
        .data
        .as_ref()
        .and_then(|d| d.get(IDENTITY_KEY))
        .cloned()
        .unwrap_or_default();
    if found == expected {
        return Ok(Recorded::Matches);
    }
    Err(ClusterError::WrongCluster {
        expected: expected.to_string(),
        found: format!("{found:?} in ConfigMap {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP}"),
    })
}

/// How the target line shows an identity confirmed by the ConfigMap.
pub fn recorded_description(expected: &str) -> String {
    format!("cluster {expected} (ConfigMap {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP})")
}

/// The identity confirmed by the kubeconfig's cluster entry (when the cluster records none that
/// can be read), or [`ClusterError::Unconfirmed`] with the command that records it.
pub fn entry_identity(expected: &str, cluster_entry: &str) -> Result<String, ClusterError> {
    if entry_matches(cluster_entry, expected) {
        return Ok(format!(
            "cluster {expected} (kubeconfig cluster entry {cluster_entry})"
        ));
    }
    Err(ClusterError::Unconfirmed {
        expected: expected.to_string(),
        entry: cluster_entry.to_string(),
        fix: format!(
            "`platform bootstrap` records it, or record it yourself: `kubectl \
             --kubeconfig KUBECONFIG --context CONTEXT -n {IDENTITY_NAMESPACE} create configmap \
             {IDENTITY_CONFIGMAP} --from-literal={IDENTITY_KEY}={expected}`"
        ),
    })
}

/// Compare the cluster's identity with `expected` (see the module docs for exactly what).
pub async fn verify_identity(
    client: &super::Client,
    expected: &str,
    cluster_entry: &str,
) -> Result<String, ClusterError> {
    match recorded_identity(client, expected).await? {
        Recorded::Matches => Ok(recorded_description(expected)),
        Recorded::Absent | Recorded::Forbidden => entry_identity(expected, cluster_entry),
    }
}

/// `ai-dev`, `gke_proj_europe-west4_ai-dev`, `arn:aws:eks:…:cluster/ai-dev` all match `ai-dev`.
pub fn entry_matches(entry: &str, expected: &str) -> bool {
    entry == expected
        || entry.ends_with(&format!("_{expected}"))
        || entry.ends_with(&format!("/{expected}"))
}

/// For messages: a path relative to the home directory when it is under it.
pub fn shown(p: &Path) -> String {
    match std::env::var_os("HOME").map(PathBuf::from) {
        Some(home) if p.starts_with(&home) => {
            format!("~/{}", p.strip_prefix(&home).unwrap_or(p).display())
        }
        _ => p.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/home/u/.kube/prod-eu"), "/home/u/.kube/prod-eu");
        assert_eq!(shell_word("my kube"), "'my kube'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn entry_names_that_confirm_a_cluster() {
        assert!(entry_matches("ai-dev", "ai-dev"));
        assert!(entry_matches("gke_proj_europe-west4_ai-dev", "ai-dev"));
        assert!(entry_matches(
            "arn:aws:eks:eu-west-1:123:cluster/ai-dev",
            "ai-dev"
        ));
        assert!(!entry_matches("gke_proj_europe-west4_ai-dev-2", "ai-dev"));
        assert!(!entry_matches("prod", "ai-dev"));
    }

    const SECRET: &str = "sk-secret-123";

    fn kubeconfig_error(dir: &Path, text: &str) -> String {
        let path = dir.join("kc.yaml");
        std::fs::write(&path, text).unwrap();
        match load_kubeconfig(&path) {
            Ok(_) => panic!("parsed: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_kubeconfig_yaml_error_names_file_line_and_column_never_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let head = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n";
        for tail in [
            // A syntax error on the line after the token.
            format!("    token: {SECRET}\n    bad: [unclosed\ncontexts: []\n"),
            format!("    token: {SECRET}\n   oops: x\n"),
            // A type error on the token's own value (the parser quotes such values).
            format!("    token: [{SECRET}]\n"),
            format!("    token: {{\"{SECRET}\": 1}}\n"),
            format!("    token: {SECRET}\n    token: {SECRET}-2\n"),
        ] {
            let msg = kubeconfig_error(dir.path(), &format!("{head}{tail}"));
            assert!(!msg.contains("sk-secret"), "{msg}");
            assert!(msg.contains("kc.yaml"), "{msg}");
            assert!(msg.contains("at line "), "{msg}");
        }
        let msg = kubeconfig_error(
            dir.path(),
            &format!("{head}    token: {SECRET}\n    bad: [unclosed\n"),
        );
        assert!(msg.contains("line 7"), "{msg}");
    }

    #[test]
    fn a_kubeconfig_is_read_as_a_capped_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = load_kubeconfig(&zero).unwrap_err().to_string();
        assert!(e.contains("character device") && e.contains("zero"), "{e}");
        let e = load_kubeconfig(dir.path()).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
    }

    #[test]
    fn relative_file_references_are_relative_to_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kc.yaml");
        std::fs::write(
            &path,
            "\u{feff}apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://x\n    \
             certificate-authority: ca.pem\nusers:\n- name: u\n  user:\n    client-certificate: /abs/c.pem\n    \
             client-key: keys/k.pem\n    tokenFile: tok\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      \
             command: aws\n",
        )
        .unwrap();
        let kc = load_kubeconfig(&path).unwrap();
        let c = kc.clusters[0].cluster.as_ref().unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(
            c.certificate_authority.as_deref(),
            Some(format!("{d}/ca.pem").as_str())
        );
        let u = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(u.client_certificate.as_deref(), Some("/abs/c.pem"));
        assert_eq!(
            u.client_key.as_deref(),
            Some(format!("{d}/keys/k.pem").as_str())
        );
        assert_eq!(u.token_file.as_deref(), Some(format!("{d}/tok").as_str()));
        assert_eq!(u.exec.as_ref().unwrap().command.as_deref(), Some("aws"));
    }

    #[test]
    fn quoted_spans_are_redacted() {
        assert_eq!(
            redact_quoted("invalid type: string \"sk-1\", expected `ab` or 'cd'"),
            "invalid type: string \"…\", expected `…` or '…'"
        );
        assert_eq!(redact_quoted("unterminated \"sk-1"), "unterminated \"…");
        assert_eq!(
            redact_quoted("illegal placement of ',' indicator"),
            "illegal placement of ',' indicator"
        );
    }

    fn cfg(kubeconfig: Option<&str>, global: bool) -> EnvConfig {
        let mut text = String::from("cluster:\n  name: c\n");
        if let Some(k) = kubeconfig {
            text.push_str(&format!("  kubeconfig: {k}\n"));
        }
        if global {
            text.push_str("  useGlobalContext: true\n");
        }
        crate::config::parse(&text, Path::new("c.yaml")).unwrap()
    }

    #[test]
    fn kubeconfig_precedence() {
        let opts = TargetOptions {
            kubeconfig: Some("/flag".into()),
            context: None,
            env: None,
        };
        assert_eq!(
            kubeconfig_path(&cfg(Some("/cfg"), false), &opts).unwrap(),
            PathBuf::from("/flag")
        );
        assert_eq!(
            kubeconfig_path(&cfg(Some("/cfg"), false), &TargetOptions::default()).unwrap(),
            PathBuf::from("/cfg")
        );
        // No dedicated file and no opt-in: refuse rather than use whatever the global context is.
        if std::env::var_os(KUBECONFIG_ENV).is_none() {
            assert!(matches!(
                kubeconfig_path(&cfg(None, false), &TargetOptions::default()),
                Err(ClusterError::NoKubeconfig { .. })
            ));
        }
    }
}
