//! What can make a smoke test of one model fail, each naming the check, the object and the fix.

use std::time::Duration;

/// The check a failure belongs to, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// A ready pod serves the model.
    Pod,
    /// The API key Secret can be read.
    ApiKey,
    /// The port-forward or the Gateway address.
    Endpoint,
    /// `GET /health`.
    Health,
    /// `GET /v1/models` lists the served name.
    Models,
    /// The streamed completion returns a reply.
    Completion,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Pod => "pod",
            Check::ApiKey => "api-key",
            Check::Endpoint => "endpoint",
            Check::Health => "health",
            Check::Models => "models",
            Check::Completion => "completion",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error(
        "{object} not found: the model is not in the cluster yet; sync it first \
         (`platform up --sync-models`, or sync the Argo CD app {app})"
    )]
    NotDeployed { object: String, app: String },
    #[error("the model is paused: `platform resume {model} --wait`, then smoke it again")]
    Paused { model: String },
    #[error("no ready pod behind {workload}{}", reasons_suffix(.reasons))]
    NoReadyPod {
        workload: String,
        reasons: Vec<String>,
    },
    #[error("reading the model's state")]
    Cluster(#[source] crate::cluster::ClusterError),
    #[error("{what}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "Secret {secret} (apiKeySecret of model {model}) does not exist: create it in the model's \
         namespace (`kubectl -n {namespace} create secret generic {name} --from-file={key}=PATH`)"
    )]
    SecretMissing {
        secret: String,
        model: String,
        namespace: String,
        name: String,
        key: String,
    },
    #[error("Secret {secret} has no key `{key}` (apiKeySecret.key of model {model}); its keys: {}", list_or_none(.keys))]
    SecretKeyMissing {
        secret: String,
        key: String,
        model: String,
        keys: Vec<String>,
    },
    #[error("the value of key `{key}` of Secret {secret} is not usable as an API key: {why}")]
    SecretKeyUnusable {
        secret: String,
        key: String,
        why: String,
    },
    #[error(
        "raw vLLM has no Gateway (the layer renders a ClusterIP Service only): smoke {model} \
         without --via-gateway"
    )]
    NoGatewayOnLayer { model: String },
    #[error("{gateway}: {why}")]
    Gateway { gateway: String, why: String },
    #[error("cannot build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    #[error("the API server refused the port-forward to pod {pod}: {message}")]
    PortForwardRefused { pod: String, message: String },
    #[error("cannot listen on 127.0.0.1 for the port-forward")]
    Listen {
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: {}{}", describe(.source), forward_suffix(.forward))]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
        /// What the port-forward reported (the API server's or the kubelet's error), if anything.
        forward: Option<String>,
    },
    #[error("{url} answered HTTP {status}{}{}", body_suffix(.body), hint_suffix(.hint))]
    Status {
        url: String,
        status: u16,
        body: String,
        hint: Option<String>,
    },
    #[error(
        "{url} did not answer 200 within {} (last: {last}); the server may still be loading the \
         model: `platform status` says why, or pass a longer --timeout",
        humantime::format_duration(*.waited)
    )]
    HealthTimeout {
        url: String,
        waited: Duration,
        last: String,
    },
    #[error("{what} took longer than {} (--timeout)", humantime::format_duration(*.after))]
    Timeout { what: String, after: Duration },
    #[error("{url}: the served name `{served}` is not listed (it serves: {}); check the model's servedName and the server's --served-model-name", list_or_none(.listed))]
    ServedNameMissing {
        url: String,
        served: String,
        listed: Vec<String>,
    },
    #[error("{url}: {message}")]
    BadResponse { url: String, message: String },
    #[error("{url}: the streamed reply is empty ({chunks} chunk(s), finish reason {finish})")]
    EmptyReply {
        url: String,
        chunks: u64,
        finish: String,
    },
}

fn reasons_suffix(r: &[String]) -> String {
    if r.is_empty() {
        String::new()
    } else {
        format!(": {}", r.join("; "))
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn body_suffix(b: &str) -> String {
    if b.is_empty() {
        String::new()
    } else {
        format!(": {b}")
    }
}

fn hint_suffix(h: &Option<String>) -> String {
    h.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
}

fn forward_suffix(f: &Option<String>) -> String {
    f.as_ref()
        .map(|f| format!(" (port-forward: {f})"))
        .unwrap_or_default()
}

/// A reqwest error in a few words (its Display hides the cause, which is the useful part).
pub fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the response broke off"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {cause}")
    }
}

impl SmokeError {
    /// A deadline passed (exit 3), rather than a check that failed.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            SmokeError::HealthTimeout { .. } | SmokeError::Timeout { .. }
        )
    }
}

/// A failure with the check it happened in.
#[derive(Debug)]
pub struct Failed {
    pub check: Check,
    pub error: SmokeError,
    /// The HTTP status of the failing request, when it got one.
    pub status: Option<u16>,
}

impl Failed {
    pub fn new(check: Check, error: SmokeError) -> Failed {
        let status = match &error {
            SmokeError::Status { status, .. } => Some(*status),
            _ => None,
        };
        Failed {
            check,
            error,
            status,
        }
    }
}

/// The message with its causes, for a report line (the request errors already name theirs).
pub fn chain(e: &SmokeError) -> String {
    if matches!(
        e,
        SmokeError::Api { .. }
            | SmokeError::Listen { .. }
            | SmokeError::Cluster(_)
            | SmokeError::HttpClient(_)
    ) {
        // Kubernetes errors in plain words (crate::cluster::api_error).
        return crate::error::one_line(e);
    }
    e.to_string()
}
