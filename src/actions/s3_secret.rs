//! The Secret KServe's storage initializer reads S3 keys from (`platform-s3-credentials` in a model's
//! namespace), created by `platform up` from the user's AWS environment before the models that need
//! it sync. Its values never enter git, a log or the terminal; one that exists is left as it is (the
//! user may manage it).

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::PostParams;
use kube::Api;
use serde_json::json;

use crate::cluster::{Client, ClusterError};
use crate::consts;
use crate::plan::Plan;
use crate::report::Reporter;
use crate::s3::AwsCredentials;

/// What happened to one namespace's Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Exists,
    /// Missing, and no keys to create it from.
    Missing,
}

/// The namespaces of the models among `apps` whose weights KServe reads from S3.
pub fn namespaces_needing(plan: &Plan, apps: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = plan
        .models
        .iter()
        .filter(|m| apps.contains(&m.app.as_str()) && m.reads_s3())
        .map(|m| m.namespace.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Make sure `platform-s3-credentials` exists in each namespace, creating it (and the namespace,
/// labelled as platform's) from `keys`; says what it did, never the values.
pub async fn ensure_all(
    client: &Client,
    namespaces: &[String],
    keys: Option<&AwsCredentials>,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let name = consts::S3_CREDENTIALS_SECRET;
    for ns in namespaces {
        let what = format!("Secret {ns}/{name}");
        match ensure(client, ns, keys).await? {
            Outcome::Created => {
                reporter.line(&format!("created {what} from your AWS credentials (S3 weights)"));
                if keys.is_some_and(AwsCredentials::is_temporary) {
                    reporter.warn(&format!("{what} holds temporary credentials (AWS_SESSION_TOKEN was set): KServe cannot read S3 once they expire; replace it with long-lived keys"));
                }
            }
            Outcome::Exists => reporter.detail(&format!("{what} exists: left as it is")),
            Outcome::Missing => reporter.warn(&format!(
                "{what} is missing and no AWS credentials are set (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile): KServe cannot read the S3 weights; create it: kubectl -n {ns} create secret generic {name} --from-literal=AWS_ACCESS_KEY_ID=… --from-literal=AWS_SECRET_ACCESS_KEY=…"
            )),
        }
    }
    Ok(())
}

async fn ensure(
    client: &Client,
    ns: &str,
    keys: Option<&AwsCredentials>,
) -> Result<Outcome, ClusterError> {
    let name = consts::S3_CREDENTIALS_SECRET;
    let secrets: Api<Secret> = Api::namespaced(client.kube(), ns);
    let what = format!("reading Secret {ns}/{name}");
    // Metadata only: an existing Secret's values are never read.
    if client
        .retry(|| secrets.get_metadata_opt(name))
        .await
        .map_err(|e| ClusterError::api(what, e))?
        .is_some()
    {
        return Ok(Outcome::Exists);
    }
    let Some(keys) = keys else {
        return Ok(Outcome::Missing);
    };
    ensure_namespace(client, ns).await?;
    let labels = json!({consts::LABEL_MANAGED_BY: consts::MANAGED_BY_VALUE});
    let (key_id, secret_key) = keys.key_pair();
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "stringData": {
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret_key,
        },
    }))
    .map_err(|e| ClusterError::Protocol {
        what: format!("building Secret {ns}/{name}"),
        reason: e.to_string(),
    })?;
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(Outcome::Created),
        // Created meanwhile (by the user or another run): theirs stands.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Outcome::Exists),
        Err(e) => Err(ClusterError::api(format!("creating Secret {ns}/{name}"), e)),
    }
}

/// The namespace, created (labelled as platform's) when Argo CD has not created it yet.
async fn ensure_namespace(client: &Client, ns: &str) -> Result<(), ClusterError> {
    let api: Api<Namespace> = Api::all(client.kube());
    let what = format!("reading namespace {ns}");
    if client
        .retry(|| api.get_metadata_opt(ns))
        .await
        .map_err(|e| ClusterError::api(what, e))?
        .is_some()
    {
        return Ok(());
    }
    let body: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {consts::LABEL_MANAGED_BY: consts::MANAGED_BY_VALUE}},
    }))
    .map_err(|e| ClusterError::Protocol {
        what: format!("building namespace {ns}"),
        reason: e.to_string(),
    })?;
    match api.create(&PostParams::default(), &body).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(ClusterError::api(format!("creating namespace {ns}"), e)),
    }
}
