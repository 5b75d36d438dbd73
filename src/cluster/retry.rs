//! Retries for API calls: 429 and 5xx answers and connection errors are retried with exponential
//! backoff and jitter; anything else (404, 409, 422, …) is returned at once.

use std::future::Future;
use std::time::Duration;

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
        match f().await {
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
