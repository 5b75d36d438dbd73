//! What can make a smoke test of one model fail, each naming the check, the object and the fix.

use std::time::Duration;

use crate::error::{Classify, ErrorClass};

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
        "Secret {namespace}/{name} (apiKeySecret of model {model}) does not exist: create it in the model's \
         namespace (`kubectl -n {namespace} create secret generic {name} --from-file={key}=PATH`)"
    )]
    SecretMissing {
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
    /// The API server answered the port-forward request itself with an error: a 4xx at once
    /// (`refused`), or 5xx/unreachable on every try (a kubelet it cannot reach). `message` is the
    /// API's message in words.
    #[error(
        "the API server {} the port-forward to pod {pod}: {message}",
        if *.refused { "refused" } else { "could not open" }
    )]
    PortForward {
        pod: String,
        message: String,
        refused: bool,
    },
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
    #[error("{url}: {}", too_large(*.limit, .announced))]
    BodyTooLarge {
        url: String,
        limit: usize,
        /// The Content-Length the server announced, when that alone was over the cap.
        announced: Option<u64>,
    },
    #[error("{url}: {why}; stopped reading after {received}")]
    StreamTooLong {
        url: String,
        why: String,
        received: Box<Received>,
    },
    #[error(
        "{url}: the stream ended without `data: [DONE]` after {chunks} content chunk(s) ({events} \
         event(s)); received: \"{received}\""
    )]
    NoDone {
        url: String,
        chunks: u64,
        events: u64,
        received: String,
    },
    #[error("{url}: asked for a stream (stream: true) but the server answered {}", not_a_stream(.content_type))]
    NotAStream {
        url: String,
        content_type: Option<String>,
    },
    #[error("{url}: the streamed reply is empty ({chunks} chunk(s), finish reason {finish})")]
    EmptyReply {
        url: String,
        chunks: u64,
        finish: String,
    },
}

/// What a refused stream had given.
#[derive(Debug)]
pub struct Received {
    pub events: u64,
    pub chunks: u64,
    pub bytes: usize,
    /// The start of the reply (redacted, cut).
    pub text: String,
}

impl std::fmt::Display for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} event(s), {} content chunk(s), {} bytes; received: \"{}\"",
            self.events, self.chunks, self.bytes, self.text
        )
    }
}

fn too_large(limit: usize, announced: &Option<u64>) -> String {
    let cap = format!(
        "the {} smoke reads of one answer (a model list takes kilobytes)",
        shown_bytes(limit)
    );
    match announced {
        Some(n) => {
            format!("the answer announces {n} bytes (Content-Length), more than {cap}; not read")
        }
        None => format!("the answer is larger than {cap}; stopped reading"),
    }
}

fn not_a_stream(content_type: &Option<String>) -> String {
    match content_type.as_deref() {
        Some(t) if t.starts_with("application/json") => format!(
            "one JSON document (Content-Type {t}), not server-sent events (text/event-stream)"
        ),
        Some(t) => format!("Content-Type {t}, not server-sent events (text/event-stream)"),
        None => "without a Content-Type, not server-sent events (text/event-stream)".to_string(),
    }
}

/// A byte count as a cap is usually written: `1 MiB`, `16 KiB`, else bytes.
pub fn shown_bytes(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
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

impl Classify for SmokeError {
    /// A deadline passed (exit 3); the cluster API failed or refused (reading the model's objects,
    /// the port-forward: exit 4); else a check said no (exit 1), the model server's answers
    /// included.
    fn class(&self) -> ErrorClass {
        use SmokeError as E;
        match self {
            E::HealthTimeout { .. } | E::Timeout { .. } => ErrorClass::Timeout,
            E::Cluster(e) => e.class(),
            E::Api { .. } | E::PortForward { .. } => ErrorClass::Remote,
            E::NotDeployed { .. }
            | E::Paused { .. }
            | E::NoReadyPod { .. }
            | E::SecretMissing { .. }
            | E::SecretKeyMissing { .. }
            | E::SecretKeyUnusable { .. }
            | E::NoGatewayOnLayer { .. }
            | E::Gateway { .. }
            | E::HttpClient(_)
            | E::Listen { .. }
            | E::Http { .. }
            | E::Status { .. }
            | E::ServedNameMissing { .. }
            | E::BadResponse { .. }
            | E::BodyTooLarge { .. }
            | E::StreamTooLong { .. }
            | E::NoDone { .. }
            | E::NotAStream { .. }
            | E::EmptyReply { .. } => ErrorClass::CheckFailed,
        }
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

/// The message with its causes, for a report line (the request errors already name theirs); a
/// Kubernetes client error in the chain is put in words (`crate::cluster::api_error`) and ends it.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, reason)
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn api_errors_are_put_in_words_with_what_to_do() {
        let w = crate::cluster::api_error::describe(&api(
            403,
            "Forbidden",
            "pods \"p\" is forbidden: User \"u\" cannot get resource \"pods/portforward\"",
        ));
        assert!(
            w.contains("pods \"p\" is forbidden: User \"u\" cannot get resource \"pods/portforward\" (Forbidden, HTTP 403); "),
            "{w}"
        );
        assert!(w.contains("RBAC"), "{w}");
        let w = crate::cluster::api_error::describe(&api(500, "", "no preferred addresses found"));
        assert!(
            w.contains("no preferred addresses found (no reason given, HTTP 500)"),
            "{w}"
        );
        for w in [
            w,
            crate::cluster::api_error::describe(&api(401, "Unauthorized", "")),
        ] {
            assert!(!w.contains("Status {") && !w.contains("Some("), "{w}");
        }
    }

    #[test]
    fn the_cluster_refusing_is_remote_a_server_answering_badly_is_a_failed_check() {
        let refused = SmokeError::PortForward {
            pod: "p".into(),
            message: "m".into(),
            refused: true,
        };
        assert_eq!(refused.class(), ErrorClass::Remote);
        assert!(refused.to_string().contains("refused the port-forward"));
        let cluster = SmokeError::Cluster(crate::cluster::ClusterError::api(
            "reading InferenceService kserve/m",
            api(403, "Forbidden", "forbidden"),
        ));
        assert_eq!(cluster.class(), ErrorClass::Remote);
        let line = chain(&cluster);
        assert!(
            line.contains("reading InferenceService kserve/m: the API server refused: forbidden (Forbidden, HTTP 403); ")
                && line.contains("RBAC"),
            "{line}"
        );
        let no_done = SmokeError::NoDone {
            url: "u".into(),
            chunks: 2,
            events: 3,
            received: "po".into(),
        };
        assert_eq!(no_done.class(), ErrorClass::CheckFailed);
        assert_eq!(shown_bytes(1 << 20), "1 MiB");
        assert_eq!(shown_bytes(16 << 10), "16 KiB");
        assert_eq!(shown_bytes(1000), "1000 bytes");
    }
}
