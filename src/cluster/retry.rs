//! Retries for API calls: 429 and 5xx answers, connection errors and requests that got no answer
//! within the request timeout are retried with exponential backoff and jitter; anything else (404,
//! 409, 422, …) is returned at once. Every attempt has a deadline ([`request_timeout`], 30 s unless
//! `--request-timeout` says otherwise), so an API server that accepts a request and never answers
//! cannot hang a command; each such attempt is said on stderr as it happens.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default deadline of one API request (kubectl's `--request-timeout` has none; a CLI that waits for
/// a cluster needs one).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
static REQUEST_TIMEOUT_MS: AtomicU64 = AtomicU64::new(30_000);
/// Where "no answer, retrying" warnings go: the command's reporter (process-wide, because retries
/// happen deep inside every cluster call).
static REPORTER: std::sync::OnceLock<std::sync::Arc<dyn crate::report::Reporter>> =
    std::sync::OnceLock::new();

/// Set the deadline of one API request (the process-wide `--request-timeout`).
pub fn set_request_timeout(d: Duration) {
    REQUEST_TIMEOUT_MS.store(d.as_millis().max(1) as u64, Ordering::Relaxed);
}

pub fn request_timeout() -> Duration {
    Duration::from_millis(REQUEST_TIMEOUT_MS.load(Ordering::Relaxed))
}

/// Report "no answer, retrying" as warnings to `r` (the command's reporter); unset: nowhere.
pub fn set_reporter(r: std::sync::Arc<dyn crate::report::Reporter>) {
    let _ = REPORTER.set(r);
}

fn notice(msg: &str) {
    if let Some(r) = REPORTER.get() {
        r.warn(msg);
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

/// Run `f` until it succeeds, fails with a non-retryable error, or runs out of attempts.
pub async fn retry<T, F, Fut>(mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        let limit = request_timeout();
        let result = match tokio::time::timeout(limit, f()).await {
            Ok(r) => r,
            Err(_) => {
                if attempt + 1 < ATTEMPTS {
                    notice(&format!(
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
