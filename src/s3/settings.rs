//! Where the S3 API is: endpoint, region, addressing, TLS; from config.yaml's `s3:` block and the
//! standard AWS environment variables.

use reqwest::Url;

use super::consts::*;
pub use super::endpoint::EndpointSource;
use super::error::S3Error;
use crate::config::S3Config;

/// Everything about the S3 API but the credentials.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub endpoint: Url,
    pub endpoint_from: EndpointSource,
    pub region: String,
    /// Path-style (`endpoint/bucket/key`) rather than virtual-hosted (`bucket.endpoint/key`).
    pub path_style: bool,
    pub verify_tls: bool,
}

impl S3Settings {
    /// From config.yaml's `s3:` block and the process environment; see [`S3Settings::from_vars`].
    pub fn from_env(cfg: Option<&S3Config>) -> Result<Self, S3Error> {
        Self::from_vars(cfg, |k| std::env::var(k).ok())
    }

    /// Endpoint: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else `s3.endpoint`, else
    /// `https://s3.<region>.amazonaws.com`. Region: `s3.region`, else `AWS_REGION`, else
    /// `AWS_DEFAULT_REGION`, else `us-east-1`. Path style: `s3.pathStyle`, else whether the
    /// endpoint is a custom one. TLS verification: `s3.verifyTls`, else on.
    pub fn from_vars(
        cfg: Option<&S3Config>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, S3Error> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let cfg = cfg.cloned().unwrap_or_default();
        let region = cfg
            .region
            .clone()
            .or_else(|| var(ENV_REGION))
            .or_else(|| var(ENV_DEFAULT_REGION))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let (text, from) = if let Some(v) = var(ENV_ENDPOINT_URL_S3) {
            (v, EndpointSource::Env(ENV_ENDPOINT_URL_S3))
        } else if let Some(v) = var(ENV_ENDPOINT_URL) {
            (v, EndpointSource::Env(ENV_ENDPOINT_URL))
        } else if let Some(v) = cfg.endpoint.clone() {
            (v, EndpointSource::Config)
        } else {
            (
                format!("https://s3.{region}.amazonaws.com"),
                EndpointSource::Default,
            )
        };
        let text = text.trim().to_string();
        if let Some(reason) = crate::config::validate::s3_endpoint_defect(&text) {
            return Err(S3Error::InvalidEndpoint {
                endpoint: crate::url::without_credential(&text),
                from,
                reason,
            });
        }
        let endpoint = Url::parse(&text).map_err(|e| S3Error::InvalidEndpoint {
            endpoint: text.clone(),
            from: from.clone(),
            reason: e.to_string(),
        })?;
        let custom = from != EndpointSource::Default;
        Ok(S3Settings {
            endpoint,
            path_style: cfg.path_style.unwrap_or(custom),
            verify_tls: cfg.verify_tls.unwrap_or(true),
            region,
            endpoint_from: from,
        })
    }

    /// The endpoint as messages show it (no trailing `/`).
    pub fn shown_endpoint(&self) -> String {
        self.endpoint.as_str().trim_end_matches('/').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(cfg: Option<&S3Config>, vars: &[(&str, &str)]) -> Result<S3Settings, S3Error> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        S3Settings::from_vars(cfg, |k| m.get(k).cloned())
    }

    #[test]
    fn defaults_config_and_env_overrides() {
        let s = settings(None, &[]).unwrap();
        assert_eq!(s.endpoint.as_str(), "https://s3.us-east-1.amazonaws.com/");
        assert_eq!(
            (s.region.as_str(), s.path_style, s.verify_tls),
            ("us-east-1", false, true)
        );
        let s = settings(None, &[("AWS_DEFAULT_REGION", "eu-west-3")]).unwrap();
        assert_eq!(s.endpoint.as_str(), "https://s3.eu-west-3.amazonaws.com/");
        let cfg = S3Config {
            endpoint: Some("http://minio.local:9000".into()),
            region: Some("eu-central-1".into()),
            path_style: None,
            verify_tls: Some(false),
        };
        let s = settings(Some(&cfg), &[("AWS_REGION", "us-west-2")]).unwrap();
        assert_eq!(s.endpoint.as_str(), "http://minio.local:9000/");
        assert_eq!(s.endpoint_from, EndpointSource::Config);
        assert_eq!(
            (s.region.as_str(), s.path_style, s.verify_tls),
            ("eu-central-1", true, false)
        );
        let s = settings(
            Some(&cfg),
            &[
                ("AWS_ENDPOINT_URL", "http://a:1"),
                ("AWS_ENDPOINT_URL_S3", "http://b:2"),
            ],
        )
        .unwrap();
        assert_eq!(s.endpoint.as_str(), "http://b:2/");
        assert_eq!(s.endpoint_from, EndpointSource::Env("AWS_ENDPOINT_URL_S3"));
        let e = settings(None, &[("AWS_ENDPOINT_URL_S3", "ftp://x")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("AWS_ENDPOINT_URL_S3") && e.contains("not http or https"),
            "{e}"
        );
        let e = settings(None, &[("AWS_ENDPOINT_URL", "https://k:s3cr3t@h")])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
