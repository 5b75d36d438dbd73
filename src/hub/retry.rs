//! Retry policy: exponential backoff with jitter, server-requested waits (`Retry-After`,
//! `RateLimit`, `RateLimit-Reset`), and a deadline per request across its attempts.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

use super::consts::*;
use super::error::HubError;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Consecutive failed attempts (without progress) before giving up.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_backoff: Duration,
    /// Longest honoured server-requested wait; longer requests are capped to this.
    pub max_server_wait: Duration,
    /// The longest one request may go without success, its attempts and the waits between them
    /// together, counted from its first attempt (for a download range: from the last byte that
    /// arrived). An attempt still waiting for an answer when it passes is abandoned, and no retry
    /// is started that could not begin before it. Default [`RETRY_DEADLINE`] (5 minutes).
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: RETRY_MAX_ATTEMPTS,
            base_delay: RETRY_BASE_DELAY,
            max_backoff: RETRY_MAX_BACKOFF,
            max_server_wait: RETRY_MAX_SERVER_WAIT,
            deadline: RETRY_DEADLINE,
        }
    }
}

/// A duration for messages: `300s`, `1.5s`.
pub(crate) fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Attempts of one request (or one range, whose counter and deadline restart when bytes arrive).
pub(crate) struct RetryState<'a> {
    policy: &'a RetryPolicy,
    pub(crate) failures: u32,
    since: Instant,
}

impl<'a> RetryState<'a> {
    pub(crate) fn new(policy: &'a RetryPolicy) -> Self {
        RetryState {
            policy,
            failures: 0,
            since: Instant::now(),
        }
    }

    /// Progress was made: the attempts and the deadline start again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
        self.since = Instant::now();
    }

    /// What is left of the deadline.
    pub(crate) fn remaining(&self) -> Duration {
        self.policy.deadline.saturating_sub(self.since.elapsed())
    }

    /// Run one attempt (or the part of it that waits for an answer) within what is left of the
    /// deadline; `Err` is the error to give up with when the deadline passes first.
    pub(crate) async fn bounded<F: Future>(&self, url: &str, f: F) -> Result<F::Output, HubError> {
        tokio::time::timeout(self.remaining(), f)
            .await
            .map_err(|_| {
                self.deadline_error(
                    url,
                    self.failures + 1,
                    "the last attempt got no answer in time".to_string(),
                )
            })
    }

    /// Giving up at the deadline after `attempts` attempts, the last one failing because of `last`.
    fn deadline_error(&self, url: &str, attempts: u32, last: String) -> HubError {
        HubError::DeadlineExceeded {
            url: url.to_string(),
            deadline: secs(self.policy.deadline),
            attempts,
            last,
        }
    }

    /// Records a failed attempt of `url` (why: `reason`; `server_wait`: the wait the server asked
    /// for, if it did). Ok: how long to wait before the next attempt and the line that says so;
    /// Err: the error to give up with (out of attempts, or the next attempt could not start before
    /// the deadline). A wait the server asked for (`Retry-After`, `RateLimit` on a 429/503) does
    /// not count against the deadline: the server answered and said when to come back (such waits
    /// are bounded by `max_server_wait` and `max_attempts`).
    pub(crate) fn failed(
        &mut self,
        url: &str,
        reason: String,
        server_wait: Option<Duration>,
    ) -> Result<(Duration, String), HubError> {
        let Some(wait) = self.next_delay(server_wait) else {
            return Err(HubError::RetriesExhausted {
                url: url.to_string(),
                attempts: self.failures,
                last: reason,
            });
        };
        let attempt = format!(
            "attempt {} of {} failed",
            self.failures,
            self.policy.max_attempts.max(1)
        );
        if server_wait.is_some() {
            self.since += wait;
            return Ok((
                wait,
                format!("{reason} ({attempt}; waiting as the server asks)"),
            ));
        }
        let left = self.remaining();
        if wait >= left {
            return Err(self.deadline_error(url, self.failures, reason));
        }
        let line = format!(
            "{reason} ({attempt}; giving up {} from now without a success)",
            secs(Duration::from_secs((left - wait).as_secs()))
        );
        Ok((wait, line))
    }

    /// Records a failure; the wait before the next attempt, or `None` when out of attempts.
    pub(crate) fn next_delay(&mut self, server_wait: Option<Duration>) -> Option<Duration> {
        self.failures += 1;
        if self.failures >= self.policy.max_attempts.max(1) {
            return None;
        }
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1u32 << (self.failures - 1).min(20));
        let backoff = exp.min(self.policy.max_backoff);
        // Full jitter in [backoff/2, backoff].
        let jittered = backoff / 2 + backoff.mul_f64(jitter() / 2.0);
        Some(match server_wait {
            Some(w) => {
                w.min(self.policy.max_server_wait) + jittered.min(Duration::from_millis(250)) / 4
            }
            None => jittered,
        })
    }
}

/// A pseudo-random number in [0, 1) (no RNG dependency; jitter needs no quality).
fn jitter() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ nanos;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The wait a response asks for: the longest of `Retry-After`, `RateLimit` (`t=`/`reset=`) and
/// `RateLimit-Reset`.
pub(crate) fn server_wait(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let mut waits = Vec::new();
    if let Some(v) = get("retry-after") {
        waits.extend(parse_retry_after(v, SystemTime::now()));
    }
    if let Some(v) = get("ratelimit") {
        waits.extend(parse_ratelimit(v));
    }
    if let Some(v) = get("ratelimit-reset") {
        waits.extend(parse_reset_seconds(v));
    }
    waits.into_iter().max()
}

pub(crate) fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `RateLimit: "api";r=0;t=55` (structured-field draft) or `limit=100, remaining=0, reset=30`.
pub(crate) fn parse_ratelimit(v: &str) -> Option<Duration> {
    v.split([';', ','])
        .filter_map(|p| {
            let (k, val) = p.trim().split_once('=')?;
            matches!(k.trim(), "t" | "reset")
                .then(|| val.trim().trim_matches('"').parse::<u64>().ok())?
        })
        .max()
        .map(Duration::from_secs)
}

/// Seconds, or (if it looks like one) a Unix timestamp.
fn parse_reset_seconds(v: &str) -> Option<Duration> {
    let n = v.parse::<u64>().ok()?;
    if n > 1_000_000_000 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        Some(Duration::from_secs(n.saturating_sub(now)))
    } else {
        Some(Duration::from_secs(n))
    }
}

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn parse_http_date(v: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == mon)? as u64
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_waits() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("date");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).expect("epoch").as_secs(),
            784_111_777
        );
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("12", now), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_ratelimit("\"api\";r=0;t=55"),
            Some(Duration::from_secs(55))
        );
        assert_eq!(
            parse_ratelimit("limit=100, remaining=0, reset=30"),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn backoff_grows_and_stops() {
        let p = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            ..Default::default()
        };
        let mut s = RetryState::new(&p);
        let d1 = s.next_delay(None).expect("1");
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        let d2 = s.next_delay(None).expect("2");
        assert!(d2 >= Duration::from_millis(100) && d2 <= Duration::from_millis(200));
        assert!(s.next_delay(Some(Duration::from_secs(3))).expect("3") >= Duration::from_secs(3));
        assert!(s.next_delay(None).is_none());
    }

    #[test]
    fn the_deadline_stops_retries_but_server_requested_waits_do_not_count() {
        let p = RetryPolicy {
            max_attempts: 100,
            base_delay: Duration::from_millis(400),
            max_backoff: Duration::from_millis(400),
            max_server_wait: Duration::from_secs(10),
            deadline: Duration::from_millis(1000),
        };
        let mut s = RetryState::new(&p);
        let (wait, line) = s
            .failed("http://h/x", "http://h/x: timed out".into(), None)
            .unwrap();
        assert!(wait <= Duration::from_millis(400));
        assert!(
            line.starts_with("http://h/x: timed out (attempt 1 of 100 failed; giving up "),
            "{line}"
        );
        // The server asked for 5 s (beyond the deadline): honoured, and not counted.
        let (wait, line) = s
            .failed(
                "http://h/x",
                "HTTP 429".into(),
                Some(Duration::from_secs(5)),
            )
            .unwrap();
        assert!(wait >= Duration::from_secs(5), "{wait:?}");
        assert!(line.contains("waiting as the server asks"), "{line}");
        assert!(s.remaining() > Duration::from_millis(500));
        // Our own backoff is: with the deadline used up, the next failure gives up.
        s.since -= Duration::from_secs(60);
        match s.failed("http://h/x", "timed out".into(), None) {
            Err(HubError::DeadlineExceeded {
                attempts: 3,
                deadline,
                last,
                ..
            }) => {
                assert_eq!((deadline.as_str(), last.as_str()), ("1s", "timed out"));
            }
            other => panic!("{other:?}"),
        }
        // Out of attempts first: as before.
        let p = RetryPolicy {
            max_attempts: 1,
            ..p
        };
        let mut s = RetryState::new(&p);
        assert!(matches!(
            s.failed("u", "r".into(), None),
            Err(HubError::RetriesExhausted { attempts: 1, .. })
        ));
    }
}
