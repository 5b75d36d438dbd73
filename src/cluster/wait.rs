//! Waiting until a deadline: one helper every wait uses ([`until`]), and the Argo CD Application
//! waits built on it.
//!
//! [`until`] folds each observation of a stream through the caller's judgement ([`Progress`]: done,
//! pending and why, failed and why), says what it waits for through a callback when the reason
//! changes and at least every [`HEARTBEAT`] (with the time left), and stops at the deadline with a
//! timeout carrying the last reason. [`watch`] is the stream of a kind's objects: kube's watcher with
//! its default backoff, so a watch that keeps failing (RBAC, a flapping API server) is retried with
//! growing pauses, never in a hot loop. Applications are waited for all at once, by watching (no
//! sleep-polling): every state change is reported; Degraded or a failed operation ends the wait at
//! once; a deadline ends it with what is still pending and why.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::{watcher, WatchStreamExt};
use serde::de::DeserializeOwned;

use super::health::{self, Progress};
use super::kinds;
use super::{Client, ClusterError};
use crate::report::Reporter;

/// How often a wait says what it is still waiting for, at most.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// The heartbeat of every wait: [`HEARTBEAT`], or `PLATFORM_PROGRESS_INTERVAL` seconds when set
/// to a positive number below it (tests see the progress lines without waiting 30 s).
pub fn heartbeat() -> Duration {
    std::env::var(crate::consts::ENV_PROGRESS_INTERVAL)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s).clamp(Duration::from_millis(50), HEARTBEAT))
        .unwrap_or(HEARTBEAT)
}

/// A time left as the progress lines say it, in whole seconds (`14m 58s`).
pub fn left(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// The usual progress of a wait: on each change of reason and at each heartbeat, one line
/// `waiting for WHAT: REASON (T left)` through `reporter` (a line on a terminal and off it).
pub fn say(reporter: &dyn Reporter) -> impl FnMut(&Tick<'_>) + '_ {
    move |t: &Tick<'_>| reporter.line(&t.line())
}

/// Like [`say`], but only at heartbeats (the caller reports changes itself).
pub fn say_heartbeats(reporter: &dyn Reporter) -> impl FnMut(&Tick<'_>) + '_ {
    move |t: &Tick<'_>| {
        if !t.changed {
            reporter.line(&t.line())
        }
    }
}

/// For waits that poll: when to say what they wait for (every [`heartbeat`]), and the time left.
#[derive(Debug, Clone)]
pub struct Beat {
    start: std::time::Instant,
    said: std::time::Instant,
    every: Duration,
    timeout: Duration,
}

impl Beat {
    pub fn new(timeout: Duration) -> Beat {
        let now = std::time::Instant::now();
        Beat {
            start: now,
            said: now,
            every: heartbeat(),
            timeout,
        }
    }

    /// `(T left)` when a heartbeat is due (it then counts as said), else None.
    pub fn due(&mut self) -> Option<String> {
        if self.said.elapsed() < self.every {
            return None;
        }
        self.said = std::time::Instant::now();
        Some(format!(
            "({} left)",
            left(self.timeout.saturating_sub(self.start.elapsed()))
        ))
    }
}

/// One wait: what it waits for, how long, and how often it says so.
#[derive(Debug, Clone)]
pub struct Until {
    /// What is waited for (for the caller's messages).
    pub what: String,
    /// The reason before anything was observed.
    pub initial: String,
    pub timeout: Duration,
    /// The heartbeat period (capped at [`HEARTBEAT`]).
    pub every: Duration,
}

impl Until {
    pub fn new(what: impl Into<String>, initial: impl Into<String>, timeout: Duration) -> Until {
        Until {
            what: what.into(),
            initial: initial.into(),
            timeout,
            every: heartbeat(),
        }
    }

    /// A heartbeat more often than [`heartbeat`].
    pub fn every(mut self, every: Duration) -> Until {
        self.every = every.min(heartbeat());
        self
    }
}

/// What a wait says while it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick<'a> {
    pub what: &'a str,
    /// The last reason judged.
    pub reason: &'a str,
    pub elapsed: Duration,
    pub left: Duration,
    /// The reason just changed (else this is a heartbeat).
    pub changed: bool,
}

impl Tick<'_> {
    /// `  waiting for WHAT: REASON (T left)`.
    pub fn line(&self) -> String {
        format!(
            "  waiting for {}: {} ({} left)",
            self.what,
            self.reason,
            left(self.left)
        )
    }
}

/// Why a wait stopped without being done (each carries the last reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("{0}")]
    Failed(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("the watch ended (last seen: {0})")]
    Ended(String),
}

/// Fold `stream` through `judge` (None: nothing new) until it is done, failed, the stream ends, or
/// `spec.timeout` passes. `progress` hears every change of reason, and a heartbeat every
/// `spec.every` from the start.
pub async fn until<T>(
    stream: impl Stream<Item = T>,
    spec: &Until,
    mut judge: impl FnMut(T) -> Option<Progress>,
    mut progress: impl FnMut(&Tick<'_>),
) -> Result<(), Stopped> {
    let mut stream = std::pin::pin!(stream);
    let started = tokio::time::Instant::now();
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let every = spec.every.clamp(Duration::from_millis(1), heartbeat());
    let mut beat = tokio::time::interval_at(started + every, every);
    let mut last = spec.initial.clone();
    loop {
        let changed = tokio::select! {
            biased;
            _ = &mut deadline => return Err(Stopped::Timeout(last)),
            _ = beat.tick() => false,
            item = stream.next() => {
                let Some(item) = item else { return Err(Stopped::Ended(last)) };
                match judge(item) {
                    Some(Progress::Done) => return Ok(()),
                    Some(Progress::Failed(r)) => return Err(Stopped::Failed(r)),
                    Some(Progress::Pending(r)) if r != last => { last = r; true }
                    _ => continue,
                }
            }
        };
        let elapsed = started.elapsed();
        progress(&Tick {
            what: &spec.what,
            reason: &last,
            elapsed,
            left: spec.timeout.saturating_sub(elapsed),
            changed,
        });
    }
}

/// One observation of a watch.
#[derive(Debug)]
pub enum Seen<K> {
    /// Listed, created or changed.
    Applied(K),
    Deleted(K),
    /// The watch failed (in one line); it resumes after a backoff.
    Interrupted(String),
}

/// Watch the objects of `api` that `cfg` selects (by name with a field selector, or by labels),
/// resuming after errors with kube's default backoff.
pub fn watch<K>(api: kube::Api<K>, cfg: watcher::Config) -> impl Stream<Item = Seen<K>> + Send
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    seen(watcher(api, cfg).default_backoff())
}

/// Watcher events as [`Seen`] (the init markers dropped).
fn seen<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
) -> impl Stream<Item = Seen<K>> {
    events.filter_map(|ev| {
        futures::future::ready(match ev {
            Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => {
                Some(Seen::Applied(o))
            }
            Ok(watcher::Event::Delete(o)) => Some(Seen::Deleted(o)),
            Ok(_) => None,
            Err(e) => Some(Seen::Interrupted(
                super::api_error::describe_cause(&e).unwrap_or_else(|| e.to_string()),
            )),
        })
    })
}

/// The watch-ended error of a wait on `what`.
fn ended(what: &str) -> ClusterError {
    ClusterError::Protocol {
        what: what.into(),
        reason: "the watch ended".into(),
    }
}

/// One Application to wait for, with the revision it must have synced (when known).
#[derive(Debug, Clone)]
pub struct AppWait {
    pub name: String,
    pub revision: Option<String>,
}

/// `app: why` for every app not done yet.
fn pending(state: &BTreeMap<String, Progress>) -> Vec<String> {
    state
        .iter()
        .filter_map(|(n, p)| match p {
            Progress::Done => None,
            Progress::Pending(r) | Progress::Failed(r) => Some(format!("{n}: {r}")),
        })
        .collect()
}

/// Say a watch error (the watch resumes by itself).
fn interrupted(reporter: &dyn Reporter, e: &str) {
    reporter.line(&format!("  (watch interrupted, resuming: {e})"));
}

/// Watch until every Application named exists in Argo CD's `namespace` (root apps create them when
/// they sync).
pub async fn wait_created(
    client: &Client,
    namespace: &str,
    names: &[String],
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let mut missing: std::collections::BTreeSet<&str> = names.iter().map(String::as_str).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let api = kinds::APPLICATION.api(client, namespace);
    // Those that exist already are not news: only a creation seen while waiting is said.
    let lp = kube::api::ListParams::default();
    let existing = client
        .retry(|| api.list_metadata(&lp))
        .await
        .map_err(|e| ClusterError::api("listing Applications", e))?;
    for o in &existing.items {
        if let Some(n) = o.metadata.name.as_deref() {
            missing.remove(n);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let spec = Until::new(
        "Applications to be created by their root apps",
        "not created",
        timeout,
    );
    let judge = |seen: Seen<_>| match seen {
        Seen::Applied(o) => {
            let o: kube::api::DynamicObject = o;
            if let Some(n) = o.metadata.name.as_deref() {
                if missing.remove(n) {
                    reporter.update(n, "created");
                }
            }
            Some(if missing.is_empty() {
                Progress::Done
            } else {
                let names: Vec<&str> = missing.iter().copied().collect();
                Progress::Pending(format!("not created yet: {}", names.join(", ")))
            })
        }
        Seen::Deleted(_) => None,
        Seen::Interrupted(e) => {
            interrupted(reporter, &e);
            None
        }
    };
    let heartbeat = say_heartbeats(reporter);
    let result = until(
        watch(api, watcher::Config::default()),
        &spec,
        judge,
        heartbeat,
    )
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(Stopped::Timeout(_)) => Err(ClusterError::Timeout {
            what: spec.what,
            pending: missing
                .iter()
                .map(|n| format!("{n}: not created (is its root app syncing? `platform status`)"))
                .collect(),
        }),
        Err(_) => Err(ended("watching Applications")),
    }
}

/// Watch the Applications in Argo CD's `namespace` until every one of `apps` is done.
pub async fn wait_apps(
    client: &Client,
    namespace: &str,
    apps: &[AppWait],
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    if apps.is_empty() {
        return Ok(());
    }
    let wanted: BTreeMap<&str, &AppWait> = apps.iter().map(|a| (a.name.as_str(), a)).collect();
    let mut state: BTreeMap<String, Progress> = apps
        .iter()
        .map(|a| {
            (
                a.name.clone(),
                Progress::Pending("not created yet (its root app has not synced it)".into()),
            )
        })
        .collect();
    let api = kinds::APPLICATION.api(client, namespace);
    let spec = Until::new(
        format!("{} Application(s)", apps.len()),
        pending(&state).join("; "),
        timeout,
    );
    let mut failed = None;
    let judge = |seen: Seen<kube::api::DynamicObject>| {
        let (name, p) = match seen {
            Seen::Applied(o) => {
                let name = o.metadata.name.clone().unwrap_or_default();
                let want = wanted.get(name.as_str())?;
                (
                    name,
                    health::application(&kinds::json(&o), want.revision.as_deref()),
                )
            }
            Seen::Deleted(o) => {
                let name = o.metadata.name.clone().unwrap_or_default();
                wanted.get(name.as_str())?;
                reporter.update(&name, "deleted");
                state.insert(name, Progress::Pending("deleted".into()));
                return Some(Progress::Pending(pending(&state).join("; ")));
            }
            Seen::Interrupted(e) => {
                interrupted(reporter, &e);
                return None;
            }
        };
        match &p {
            Progress::Done => reporter.finish(&name, "Synced, Healthy"),
            Progress::Pending(r) => reporter.update(&name, r),
            Progress::Failed(r) => {
                reporter.finish(&name, &format!("FAILED: {r}"));
                failed = Some(name);
                return Some(p);
            }
        }
        state.insert(name, p);
        Some(if state.values().all(|p| *p == Progress::Done) {
            Progress::Done
        } else {
            Progress::Pending(pending(&state).join("; "))
        })
    };
    // What is being waited for, even when nothing changes (or the API went quiet).
    let heartbeat = say_heartbeats(reporter);
    let result = until(
        watch(api, watcher::Config::default()),
        &spec,
        judge,
        heartbeat,
    )
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(Stopped::Failed(reason)) => Err(ClusterError::AppFailed {
            app: failed.unwrap_or_default(),
            reason,
        }),
        Err(Stopped::Timeout(_)) => Err(ClusterError::Timeout {
            what: spec.what,
            pending: pending(&state),
        }),
        Err(Stopped::Ended(_)) => Err(ended("watching Applications")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Items of a fake stream, each after its delay (in virtual seconds), then silence.
    fn after(items: Vec<(u64, Progress)>) -> impl Stream<Item = Progress> {
        futures::stream::iter(items)
            .then(|(secs, p)| async move {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                p
            })
            .chain(futures::stream::pending())
    }

    fn pending(r: &str) -> Progress {
        Progress::Pending(r.into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_says_changes_and_a_heartbeat_and_times_out_with_the_last_reason() {
        let spec = Until::new("the thing", "nothing yet", Duration::from_secs(100));
        let items = vec![(10, pending("a")), (35, pending("a")), (5, pending("b"))];
        let mut ticks = Vec::new();
        let r = until(after(items), &spec, Some, |t: &Tick<'_>| {
            assert_eq!(t.what, "the thing");
            assert_eq!(t.elapsed + t.left, Duration::from_secs(100));
            ticks.push((t.elapsed.as_secs(), t.reason.to_string(), t.changed));
        })
        .await;
        assert_eq!(r, Err(Stopped::Timeout("b".into())));
        let want = [
            (10, "a", true),
            (30, "a", false),
            (50, "b", true),
            (60, "b", false),
            (90, "b", false),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(s, r, c)| (*s, r.to_string(), *c))
            .collect();
        assert_eq!(ticks, want);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_wait_still_says_what_it_waits_for() {
        let spec =
            Until::new("x", "nothing yet", Duration::from_secs(65)).every(Duration::from_secs(60));
        let mut ticks = Vec::new();
        let r = until(
            futures::stream::pending::<Progress>(),
            &spec,
            Some,
            |t: &Tick<'_>| ticks.push((t.elapsed.as_secs(), t.reason.to_string())),
        )
        .await;
        assert_eq!(r, Err(Stopped::Timeout("nothing yet".into())));
        // Never less often than every 30 s, whatever the caller asked.
        assert_eq!(
            ticks,
            [
                (30, "nothing yet".to_string()),
                (60, "nothing yet".to_string())
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_when_done_failed_or_the_stream_ends() {
        let spec = Until::new("x", "nothing yet", Duration::from_secs(100));
        let done = until(
            after(vec![(1, pending("a")), (1, Progress::Done)]),
            &spec,
            Some,
            |_| {},
        );
        assert_eq!(done.await, Ok(()));
        let failed = after(vec![(1, Progress::Failed("broken".into()))]);
        assert_eq!(
            until(failed, &spec, Some, |_| {}).await,
            Err(Stopped::Failed("broken".into()))
        );
        let ended = futures::stream::iter([pending("a")]);
        assert_eq!(
            until(ended, &spec, Some, |_| {}).await,
            Err(Stopped::Ended("a".into()))
        );
        // Nothing new (None) changes nothing.
        let quiet = after(vec![(1, pending("a")), (1, Progress::Done)]);
        let r = until(quiet, &spec, |_| None, |_| {}).await;
        assert_eq!(r, Err(Stopped::Timeout("nothing yet".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_watch_backs_off_instead_of_hot_looping() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = attempts.clone();
        // A watch that fails at once, every time; bounded, so that a hot loop ends the stream
        // (and fails the test) instead of spinning with the virtual clock stopped.
        let failing = futures::stream::repeat_with(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Err::<watcher::Event<ConfigMap>, _>(watcher::Error::NoResourceVersion)
        })
        .take(1000);
        let spec = Until::new("x", "nothing yet", Duration::from_secs(300));
        let judge = |s: Seen<ConfigMap>| match s {
            Seen::Interrupted(e) => Some(Progress::Pending(e)),
            _ => None,
        };
        let r = until(seen(failing.default_backoff()), &spec, judge, |_| {}).await;
        let Err(Stopped::Timeout(last)) = r else {
            panic!("not a timeout: {r:?}")
        };
        assert!(last.contains("resourceVersion"), "{last}");
        // 0.8 s doubling up to 30 s (with jitter): about 15 attempts in 300 s, never hundreds.
        let n = attempts.load(Ordering::SeqCst);
        assert!((3..=40).contains(&n), "{n} attempts in 300 s");
    }
}
