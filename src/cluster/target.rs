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
//! ARNs). Anything else is refused with the command that records the identity.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

use super::ClusterError;
use crate::config::EnvConfig;

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
    pub client: Client,
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
pub async fn connect(cfg: &EnvConfig, opts: &TargetOptions) -> Result<Target, ClusterError> {
    let path = kubeconfig_path(cfg, opts)?;
    let kc = Kubeconfig::read_from(&path).map_err(|e| ClusterError::Kubeconfig {
        path: path.clone(),
        message: e.to_string(),
    })?;
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
    let client = Client::try_from(config).map_err(|e| ClusterError::Kubeconfig {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let version = match tokio::time::timeout(REACH_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(info)) => info.git_version,
        Ok(Err(e)) => {
            return Err(ClusterError::Unreachable {
                server,
                message: e.to_string(),
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
    let identity = verify_identity(&client, &cfg.cluster.name, &ctx.cluster).await?;
    Ok(Target {
        kubeconfig: path,
        context,
        cluster_entry: ctx.cluster,
        server,
        version,
        identity,
        client,
    })
}

/// Compare the cluster's identity with `expected` (see the module docs for exactly what).
pub async fn verify_identity(
    client: &Client,
    expected: &str,
    cluster_entry: &str,
) -> Result<String, ClusterError> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), IDENTITY_NAMESPACE);
    match cms.get_opt(IDENTITY_CONFIGMAP).await {
        Ok(Some(cm)) => {
            let found = cm
                .data
                .as_ref()
                .and_then(|d| d.get(IDENTITY_KEY))
                .cloned()
                .unwrap_or_default();
            if found == expected {
                return Ok(format!(
                    "cluster {expected} (ConfigMap {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP})"
                ));
            }
            return Err(ClusterError::WrongCluster {
                expected: expected.to_string(),
                found: format!("{found:?} in ConfigMap {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP}"),
            });
        }
        Ok(None) => {}
        // Not allowed to read it: fall back to the kubeconfig entry.
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        Err(e) => return Err(ClusterError::api("reading the cluster identity", e)),
    }
    if entry_matches(cluster_entry, expected) {
        return Ok(format!(
            "cluster {expected} (kubeconfig cluster entry {cluster_entry})"
        ));
    }
    Err(ClusterError::Unconfirmed {
        expected: expected.to_string(),
        entry: cluster_entry.to_string(),
    })
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
