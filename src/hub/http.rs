//! One HTTP attempt: manual redirects (the token only goes to the endpoint's origin) and
//! classification of the outcome for the retry loops.

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, LOCATION, RANGE};
use reqwest::{Client, Method, Response, StatusCode, Url};

use super::auth::HubConfig;
use super::consts::*;
use super::error::HubError;
use super::retry::server_wait;

pub(crate) struct Http {
    client: Client,
    /// `Bearer <token>`, checked once when the client is made (sensitive: never logged).
    auth: Option<HeaderValue>,
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
    /// A client for `config`'s endpoint; a token an HTTP header cannot carry is refused here.
    pub(crate) fn new(config: &HubConfig) -> Result<Self, HubError> {
        let endpoint = config.endpoint.as_str();
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
        let auth = config.auth_header()?;
        let client = Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .danger_accept_invalid_certs(!config.verify_tls)
            .build()
            .map_err(|e| HubError::Client(e.to_string()))?;
        Ok(Http {
            client,
            auth,
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
        self.send(Method::GET, url, &[], range).await
    }

    /// `method` on `url` with `headers` (and `Range` if given), following redirects. `Ok` only for
    /// a 2xx status; a URL in a failure has no query string (a signature is never shown).
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&str, &str)],
        range: Option<&str>,
    ) -> Result<Response, Failure> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.client.request(method.clone(), url.clone());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(r) = range {
                req = req.header(RANGE, r);
            }
            let token_sent = match &self.auth {
                Some(h) if same_origin(&url, &self.endpoint) => {
                    req = req.header(AUTHORIZATION, h.clone());
                    true
                }
                _ => false,
            };
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => return Err(send_failure(&url, e)),
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
                            url: shown_url(&url),
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
                    reason: format!("{}: HTTP {}", shown_url(&url), status.as_u16()),
                    wait,
                });
            }
            let body = error_body(resp).await;
            url.set_query(None);
            url.set_fragment(None);
            return Err(Failure::Status {
                status: status.as_u16(),
                url,
                body,
                token_sent,
            });
        }
        Err(Failure::Fatal(HubError::Protocol {
            url: shown_url(&url),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }
}

/// The start of an error answer's body (at most [`ERROR_BODY_LIMIT`] characters, and never more
/// than a few times that many bytes read: a server cannot make us hold a large error body).
async fn error_body(mut resp: Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_LIMIT * 4 {
        match resp.chunk().await {
            Ok(Some(c)) => bytes.extend_from_slice(&c),
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(ERROR_BODY_LIMIT)
        .collect()
}

/// A request that could not be sent: a local problem (the request could not even be built: a bad
/// header value, URL, …) fails at once, as retrying cannot change it; anything else (connect,
/// timeout, a connection cut) is worth another attempt.
pub(crate) fn send_failure(url: &Url, e: reqwest::Error) -> Failure {
    // reqwest's message repeats the URL, query string included: said once, without it.
    let e = e.without_url();
    if e.is_builder() {
        return Failure::Fatal(HubError::Request {
            url: shown_url(url),
            reason: error_chain(&e),
        });
    }
    Failure::Retry {
        reason: format!("{}: {}", shown_url(url), error_chain(&e)),
        wait: None,
    }
}

/// `url` as messages show it: without its query string, fragment and credentials (a presigned
/// URL's signature and a session token live in the query).
pub fn shown_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_that_cannot_be_built_is_not_retried() {
        let url = Url::parse("http://127.0.0.1:9/x").expect("url");
        let e = Client::new()
            .get(url.clone())
            .header("x-bad", "a\nb")
            .send()
            .await
            .expect_err("a bad header value");
        match send_failure(&url, e) {
            Failure::Fatal(HubError::Request { url: u, reason }) => {
                assert_eq!(u, url.to_string());
                assert!(!reason.is_empty());
            }
            _ => panic!("a local error was classified as retryable"),
        }
        // A refused connection is worth another attempt (a port that was just free).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/x")).expect("url");
        let e = Client::new()
            .get(url.clone())
            .send()
            .await
            .expect_err("refused");
        assert!(matches!(send_failure(&url, e), Failure::Retry { .. }));
        let signed = Url::parse("https://u:p@h/b/k?X-Amz-Signature=abc#f").expect("url");
        assert_eq!(shown_url(&signed), "https://h/b/k");
    }
}
