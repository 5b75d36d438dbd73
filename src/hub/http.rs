//! One HTTP attempt: manual redirects (the token only goes to the endpoint's origin) and
//! classification of the outcome for the retry loops.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, LOCATION, RANGE};
use reqwest::{Client, Response, StatusCode, Url};

use super::auth::HfToken;
use super::consts::*;
use super::error::HubError;
use super::retry::server_wait;

pub(crate) struct Http {
    client: Client,
    token: Option<HfToken>,
    endpoint: Url,
}

pub(crate) enum Failure {
    /// Worth another attempt (408/429/5xx, connection error), after at least `wait` if given.
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    /// A final HTTP status the caller maps to a meaningful error.
    Status {
        status: u16,
        url: Url,
        body: String,
        token_sent: bool,
    },
    Fatal(HubError),
}

/// The error for a final HTTP status about `repo` that the caller has no special meaning for:
/// 401/403 name the token to set, anything else is an HTTP error with the body's start.
pub(crate) fn status_error(
    repo: &str,
    status: u16,
    url: &Url,
    body: String,
    token_sent: bool,
) -> HubError {
    match status {
        401 | 403 => HubError::Unauthorized {
            repo: repo.to_string(),
            status,
            url: url.to_string(),
            token_sent,
        },
        _ => HubError::Http {
            url: url.to_string(),
            status,
            body,
        },
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl Http {
    pub(crate) fn new(endpoint: &str, token: Option<HfToken>) -> Result<Self, HubError> {
        let endpoint =
            Url::parse(endpoint.trim_end_matches('/')).map_err(|e| HubError::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                reason: e.to_string(),
            })?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(HubError::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                reason: "scheme must be http or https".into(),
            });
        }
        let client = Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| HubError::Client(e.to_string()))?;
        Ok(Http {
            client,
            token,
            endpoint,
        })
    }

    /// `{endpoint}/{suffix}` (the endpoint may carry a path prefix).
    pub(crate) fn url(&self, suffix: &str) -> Result<Url, HubError> {
        let s = format!(
            "{}/{}",
            self.endpoint.as_str().trim_end_matches('/'),
            suffix
        );
        Url::parse(&s).map_err(|e| HubError::InvalidEndpoint {
            endpoint: s,
            reason: e.to_string(),
        })
    }

    /// GET `url` (with `Range` if given), following redirects. `Ok` only for a 2xx status.
    pub(crate) async fn get(&self, url: &Url, range: Option<&str>) -> Result<Response, Failure> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.client.get(url.clone());
            if let Some(r) = range {
                req = req.header(RANGE, r);
            }
            let token_sent = match &self.token {
                Some(t) if same_origin(&url, &self.endpoint) => {
                    req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose_secret()));
                    true
                }
                _ => false,
            };
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    return Err(Failure::Retry {
                        reason: format!("{url}: {}", error_chain(&e)),
                        wait: None,
                    })
                }
            };
            let status = resp.status();
            if status.is_redirection() {
                let next = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                match next {
                    Some(n) => {
                        url = n;
                        continue;
                    }
                    None => {
                        return Err(Failure::Fatal(HubError::Protocol {
                            url: url.to_string(),
                            reason: format!("HTTP {status} without a valid Location"),
                        }))
                    }
                }
            }
            if status.is_success() {
                return Ok(resp);
            }
            let wait = server_wait(resp.headers());
            if status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS
                || status.is_server_error()
            {
                return Err(Failure::Retry {
                    reason: format!("{url}: HTTP {}", status.as_u16()),
                    wait,
                });
            }
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(ERROR_BODY_LIMIT).collect();
            return Err(Failure::Status {
                status: status.as_u16(),
                url,
                body,
                token_sent,
            });
        }
        Err(Failure::Fatal(HubError::Protocol {
            url: url.to_string(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }
}

/// An error and its sources on one line (reqwest hides the interesting part in the chain).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters stay).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a `/`-separated path, keeping the separators.
pub(crate) fn encode_path(p: &str) -> String {
    p.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}
