//! Retries for API calls: 429 and 5xx answers, connection errors and requests that got no answer
//! within the request timeout are retried with exponential backoff and jitter; anything else (404,
//! 409, 422, …) is returned at once. Every attempt has a deadline (the [`Retry`] policy's request
//! timeout, 30 s unless `--request-timeout` says otherwise), so an API server that accepts a request
//! and never answers cannot hang a command; each such attempt is said to the policy's reporter as a
//! warning as it happens. The policy is built once per command and travels in the cluster
//! [`Client`](super::Client).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::report::Reporter;

/// Default deadline of one API request (kubectl's `--request-timeout` has none; a CLI that waits for
/// a cluster needs one).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a command's API requests are retried: the deadline of one request and where "no answer,
/// retrying" warnings go.
#[derive(Clone)]
pub struct Retry {
    request_timeout: Duration,
    reporter: Arc<dyn Reporter>,
}

impl Retry {
    /// `request_timeout` per attempt (at least 1 ms), warnings to `reporter`.
    pub fn new(request_timeout: Duration, reporter: Arc<dyn Reporter>) -> Retry {
        Retry {
            request_timeout: request_timeout.max(Duration::from_millis(1)),
            reporter,
        }
    }

    /// The deadline of one API request.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    fn notice(&self, msg: &str) {
        self.reporter.warn(msg);
    }
}

impl Default for Retry {
    /// The default request timeout, warnings nowhere (tests, benches, library users).
    fn default() -> Retry {
        Retry::new(DEFAULT_REQUEST_TIMEOUT, Arc::new(crate::report::Silent))
    }
}

impl std::fmt::Debug for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// The error of a request that got no answer in time (retryable, like a connection error).
fn no_answer(after: Duration) -> kube::Error {
    kube::Error::Service(Box::new(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the API server did not answer within {} (--request-timeout)",
            humantime::format_duration(after)
        ),
    )))
}

const ATTEMPTS: u32 = 6;
const BASE: Duration = Duration::from_millis(200);
const CAP: Duration = Duration::from_secs(5);

/// Whether an error is worth retrying.
pub fn retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Run `f` until it succeeds, fails with a non-retryable error, or runs out of attempts, each
/// attempt within `policy`'s request timeout.
pub async fn retry<T, F, Fut>(policy: &Retry, mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        let limit = policy.request_timeout();
        let result = match tokio::time::timeout(limit, f()).await {
            Ok(r) => r,
            Err(_) => {
                if attempt + 1 < ATTEMPTS {
                    policy.notice(&format!(
                        "the API server did not answer within {} (attempt {} of {ATTEMPTS}); retrying",
                        humantime::format_duration(limit),
                        attempt + 1
                    ));
                }
                Err(no_answer(limit))
            }
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) if attempt + 1 < ATTEMPTS && retryable(&e) => {
                let backoff = BASE.saturating_mul(1 << attempt).min(CAP);
                // Jitter: 50–100% of the backoff, from the clock's sub-second noise.
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let jitter = 0.5 + f64::from(nanos % 1000) / 2000.0;
                tokio::time::sleep(backoff.mul_f64(jitter)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Event;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// Keeps the warnings it is given.
    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    impl Reporter for Warnings {
        fn event(&self, e: Event<'_>) {
            if let Event::Warning(w) = e {
                self.0.lock().unwrap().push(w.to_string());
            }
        }
    }

    fn policy(timeout: Duration) -> (Retry, Arc<Warnings>) {
        let w = Arc::new(Warnings::default());
        (Retry::new(timeout, w.clone()), w)
    }

    /// The first attempt never answers, the second does.
    async fn silent_once(policy: &Retry) -> Result<u32, kube::Error> {
        let calls = AtomicU32::new(0);
        retry(policy, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    std::future::pending::<()>().await;
                }
                Ok(n)
            }
        })
        .await
    }

    #[tokio::test]
    async fn an_unanswered_request_is_retried_and_said_to_the_policys_reporter() {
        let (p, w) = policy(Duration::from_millis(20));
        assert_eq!(silent_once(&p).await.unwrap(), 1);
        assert_eq!(
            *w.0.lock().unwrap(),
            ["the API server did not answer within 20ms (attempt 1 of 6); retrying"]
        );
    }

    #[tokio::test]
    async fn each_command_s_policy_is_its_own() {
        let (a, wa) = policy(Duration::from_millis(20));
        let (b, wb) = policy(Duration::from_millis(30));
        let (ra, rb) = tokio::join!(silent_once(&a), silent_once(&b));
        assert_eq!((ra.unwrap(), rb.unwrap()), (1, 1));
        assert_eq!(
            *wa.0.lock().unwrap(),
            ["the API server did not answer within 20ms (attempt 1 of 6); retrying"]
        );
        assert_eq!(
            *wb.0.lock().unwrap(),
            ["the API server did not answer within 30ms (attempt 1 of 6); retrying"]
        );
    }

    #[tokio::test]
    async fn a_refusal_is_returned_at_once_without_a_warning() {
        let (p, w) = policy(Duration::from_millis(20));
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(&p, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(kube::Error::Api(Box::new(kube::core::Status {
                    status: Some(kube::core::response::StatusSummary::Failure),
                    code: 404,
                    message: "not found".to_string(),
                    reason: "NotFound".to_string(),
                    metadata: None,
                    details: None,
                })))
            }
        })
        .await;
        assert!(matches!(r, Err(kube::Error::Api(s)) if s.code == 404));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(w.0.lock().unwrap().is_empty());
    }

    #[test]
    fn the_default_policy_waits_thirty_seconds() {
        assert_eq!(Retry::default().request_timeout(), DEFAULT_REQUEST_TIMEOUT);
    }
}
