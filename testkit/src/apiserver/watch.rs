//! Watches: newline-delimited JSON events over a chunked response, from a resourceVersion
//! (replayed from the history) or from the current state (synthetic ADDED events), with
//! selectors, bookmarks, `sendInitialEvents`, `timeoutSeconds`, and 410 Gone (an ERROR event)
//! for a resourceVersion older than the history.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::errors::{ApiError, ApiResult};
use super::resources::ResourceType;
use super::selectors::Selectors;
use super::store::{Event, EventType};
use super::util::Query;
use super::State;

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        if let Some(m) = meta.as_object_mut() {
            m.insert(
                "annotations".into(),
                json!({"k8s.io/initial-events-end": "true"}),
            );
        }
    }
    line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta}),
    )
}

struct Filter {
    rt: &'static ResourceType,
    namespace: Option<String>,
    selectors: Selectors,
}

impl Filter {
    fn in_scope(&self, ev: &Event) -> bool {
        ev.key.group == self.rt.group
            && ev.key.plural == self.rt.plural
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| ev.key.namespace == ns)
    }

    /// The event as this watcher sees it: selector transitions turn MODIFIED into ADDED or
    /// DELETED, as the real watch cache does.
    fn translate(&self, ev: &Event) -> Option<(&'static str, Value)> {
        if !self.in_scope(ev) {
            return None;
        }
        let now = self.selectors.matches(&ev.object);
        match ev.kind {
            EventType::Added => now.then(|| ("ADDED", ev.object.clone())),
            EventType::Deleted => {
                let before = ev.old.as_ref().map_or(now, |o| self.selectors.matches(o));
                (before || now).then(|| ("DELETED", ev.object.clone()))
            }
            EventType::Modified => {
                let before = ev.old.as_ref().is_some_and(|o| self.selectors.matches(o));
                match (before, now) {
                    (true, true) => Some(("MODIFIED", ev.object.clone())),
                    (false, true) => Some(("ADDED", ev.object.clone())),
                    (true, false) => Some(("DELETED", ev.object.clone())),
                    (false, false) => None,
                }
            }
        }
    }
}

/// Serves `?watch=1` on a collection.
pub fn serve(
    state: Arc<State>,
    rt: &'static ResourceType,
    namespace: Option<String>,
    q: &Query,
) -> ApiResult<Response> {
    let selectors = Selectors::from_query(q)?;
    let filter = Filter {
        rt,
        namespace,
        selectors,
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true" || v == "1");
    let timeout = q
        .non_empty("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let rv_param = q.non_empty("resourceVersion");
    let since = match (rv_param, send_initial) {
        (_, Some(true)) | (None, _) | (Some("0"), _) => None,
        (Some(rv), _) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
        ),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let sub = state.store.subscribe(rt, since);
    let mut gen_rx = state.watch_gen.subscribe();
    let interval = state.opts.bookmark_interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut sub = match sub {
            Ok(sub) => sub,
            Err((asked, oldest)) => {
                let status =
                    ApiError::gone(format!("too old resource version: {asked} ({oldest})"))
                        .to_status();
                let _ = tx.send(line("ERROR", &status)).await;
                return;
            }
        };
        let mut last_rv = sub.rv;
        if since.is_none() {
            for (_, obj) in &sub.snapshot {
                let in_ns = filter.namespace.as_deref().is_none_or(|ns| {
                    obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                });
                if in_ns
                    && filter.selectors.matches(obj)
                    && tx.send(line("ADDED", obj)).await.is_err()
                {
                    return;
                }
            }
            if send_initial == Some(true)
                && bookmarks
                && tx.send(bookmark(filter.rt, last_rv, true)).await.is_err()
            {
                return;
            }
        }
        for ev in &sub.replay {
            last_rv = last_rv.max(ev.rv);
            if let Some((kind, obj)) = filter.translate(ev) {
                if tx.send(line(kind, &obj)).await.is_err() {
                    return;
                }
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            let sleep_until = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                ev = sub.rx.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last_rv && since.is_none() {
                            continue;
                        }
                        last_rv = last_rv.max(ev.rv);
                        if let Some((kind, obj)) = filter.translate(&ev) {
                            if tx.send(line(kind, &obj)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let status = ApiError::gone("watch fell behind; resume with a fresh list").to_status();
                        let _ = tx.send(line("ERROR", &status)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(bookmark(filter.rt, last_rv, false)).await.is_err() {
                        return;
                    }
                }
                _ = sleep_until => return,
                _ = gen_rx.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}
