//! `doctor`'s Argo CD checks that `platform bootstrap` makes pass: the running version against the
//! one pinned in `catalog/argocd.yaml` (the application controller's image tag), the catalog's
//! `argocd-cm` keys (the Application health check), and the repository credential when the GitOps
//! repository looks private (an ssh URL) or a credential exists.

use serde_json::Value;

use super::credential;
use crate::actions::doctor::{find_component, Check, Level};
use crate::catalog::argocd::ArgoCdSpec;
use crate::cluster::api_error::describe;
use crate::cluster::kinds;
use crate::cluster::Client;
use crate::error::one_line;
use crate::gitops::git::redact;

fn check(level: Level, name: &str, detail: impl Into<String>, fix: Option<String>) -> Check {
    Check {
        level,
        check: name.to_string(),
        detail: detail.into(),
        fix,
    }
}

/// Every bootstrap check, in namespace `ns` (where platform writes Applications).
pub async fn checks(client: &Client, spec: &ArgoCdSpec, ns: &str, repo_url: &str) -> Vec<Check> {
    vec![
        version(client, spec, ns).await,
        config_keys(client, spec, ns).await,
    ]
    .into_iter()
    .chain(repo_credential(client, ns, repo_url).await)
    .collect()
}

/// The tag of an image reference (`quay.io/argoproj/argocd:v3.5.1` → `v3.5.1`; digests dropped).
pub fn image_tag(image: &str) -> Option<&str> {
    let image = image.split('@').next().unwrap_or(image);
    let (_, tag) = image.rsplit_once(':')?;
    (!tag.contains('/')).then_some(tag)
}

async fn version(client: &Client, spec: &ArgoCdSpec, ns: &str) -> Check {
    const NAME: &str = "argocd-version";
    let component = "argocd-application-controller";
    let found = match find_component(client, component).await {
        Ok(f) => f,
        Err(e) => {
            return check(
                Level::Warn,
                NAME,
                format!("cannot look for {component}: {}", one_line(&e)),
                None,
            )
        }
    };
    let Some(w) = found.iter().find(|w| w.namespace == ns).or(found.first()) else {
        return check(
            Level::Warn,
            NAME,
            format!("no {component}: Argo CD is not installed"),
            Some(format!(
                "`platform bootstrap` installs Argo CD {}",
                spec.version
            )),
        );
    };
    let api = w.kind.api(client, &w.namespace);
    let image = match client.retry(|| api.get_opt(&w.name)).await {
        Ok(Some(o)) => kinds::json(&o)
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Ok(None) => String::new(),
        Err(e) => {
            return check(
                Level::Warn,
                NAME,
                format!("cannot read {}/{}: {}", w.namespace, w.name, describe(&e)),
                None,
            )
        }
    };
    match image_tag(&image) {
        Some(tag) if tag == spec.version => check(
            Level::Ok,
            NAME,
            format!("Argo CD {tag}, as pinned in {}", spec.file),
            None,
        ),
        tag => check(
            Level::Warn,
            NAME,
            format!(
                "Argo CD {} runs ({} {}/{}), {} pins {}",
                tag.unwrap_or("of unknown version"),
                w.kind.kind,
                w.namespace,
                w.name,
                spec.file,
                spec.version
            ),
            Some("`platform bootstrap` applies the pinned release (an Argo CD installed another way is left alone: upgrade it the way it was installed)".into()),
        ),
    }
}

async fn config_keys(client: &Client, spec: &ArgoCdSpec, ns: &str) -> Check {
    const NAME: &str = "argocd-health";
    let cm = kinds::CONFIG_MAP.api(client, ns);
    match client.retry(|| cm.get_opt("argocd-cm")).await {
        Ok(found) => {
            let v = found.as_ref().map(kinds::json).unwrap_or_default();
            let missing: Vec<&str> = spec
                .argocd_cm
                .keys()
                .filter(|k| v.pointer("/data").and_then(|d| d.get(k.as_str())).is_none())
                .map(String::as_str)
                .collect();
            if missing.is_empty() {
                return check(
                    Level::Ok,
                    NAME,
                    "health customizations present (Application, HTTPRoute)",
                    None,
                );
            }
            check(
                Level::Warn,
                NAME,
                format!(
                    "argocd-cm lacks {}{}: {}",
                    missing.join(", "),
                    if found.is_none() {
                        " (no ConfigMap argocd-cm)"
                    } else {
                        ""
                    },
                    missing
                        .iter()
                        .map(|k| if k.ends_with("_HTTPRoute") {
                            "the models' routes show Degraded while a model's app is not synced, which stops `up` at the routing app"
                        } else {
                            "root apps will not wait for their children's waves"
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                Some(format!(
                    "`platform bootstrap` merges it in; or add to ConfigMap {ns}/argocd-cm:\n{}",
                    spec.cm_snippet()
                )),
            )
        }
        Err(e) => check(
            Level::Warn,
            NAME,
            format!("cannot read argocd-cm: {}", describe(&e)),
            None,
        ),
    }
}

async fn repo_credential(client: &Client, ns: &str, repo_url: &str) -> Option<Check> {
    const NAME: &str = "argocd-repo";
    let private = credential::is_ssh(repo_url);
    let shown = redact(repo_url);
    match credential::find(client, ns, repo_url).await {
        Ok(Some(name)) => Some(check(
            Level::Ok,
            NAME,
            format!("repository credential Secret {ns}/{name} for {shown}"),
            None,
        )),
        Ok(None) if private => Some(check(
            Level::Fail,
            NAME,
            format!("no repository credential for {shown} (an ssh URL): Argo CD cannot read the GitOps repository"),
            Some("platform bootstrap --repo-ssh-key FILE (or use an https URL with --repo-token-env VAR)".into()),
        )),
        Ok(None) => None,
        Err(e) => Some(check(Level::Warn, NAME, format!("cannot look for the repository credential: {}", one_line(&e)), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("quay.io/argoproj/argocd:v3.5.1"), Some("v3.5.1"));
        assert_eq!(
            image_tag("localhost:5000/argocd:v3.4.0@sha256:abc"),
            Some("v3.4.0")
        );
        assert_eq!(image_tag("localhost:5000/argocd"), None);
        assert_eq!(image_tag("argocd"), None);
    }
}
