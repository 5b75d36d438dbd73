//! The HTTP checks against an OpenAI-compatible endpoint (vLLM): `/health` polled with backoff
//! until a deadline, `/v1/models` lists the served name, and a streamed completion returns a
//! non-empty reply, timed (time to first token, total latency) and counted.
//!
//! Everything the server sends is hostile until shown otherwise: every body is read up to a cap
//! ([`consts::SMOKE_BODY_MAX`], error bodies [`consts::SMOKE_ERROR_BODY_MAX`]) before a deadline,
//! the stream up to a number of content chunks too, and every piece of server text that reaches a
//! message or the report goes through [`Endpoint::shown`] (the API key cut out, control
//! characters escaped, the length cut).

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use serde_json::{json, Value};
use tokio::time::Instant as Deadline;

use super::apikey::ApiKey;
use super::error::{Check, Failed, Received, SmokeError};
use super::sse::{Event, Parser};
use crate::consts;
use crate::text::ellipsize;

/// The fixed prompt: a model that follows instructions answers `pong`.
pub const PROMPT: &str = "Reply with exactly: pong";
pub const MAX_TOKENS: u32 = 16;
/// The most content chunks read from the stream before it is stopped.
pub const MAX_CHUNKS: u64 = MAX_TOKENS as u64 * consts::SMOKE_CHUNKS_PER_TOKEN;
/// The most of an error body kept for a message.
const BODY_SHOWN: usize = 300;
/// The most of a received reply shown when the stream is refused.
const RECEIVED_SHOWN: usize = 60;
/// How many of the listed model ids a message shows, and how much of each.
const IDS_SHOWN: usize = 10;
const ID_SHOWN: usize = 80;

/// Where and how to send requests.
pub struct Endpoint {
    pub http: reqwest::Client,
    /// `http://host[:port][/prefix]`, without a trailing slash.
    pub base: String,
    /// Host header (KServe routes by it through its Gateway).
    pub host: Option<String>,
    pub key: Option<ApiKey>,
    /// The port-forward's error reports, added to connection errors (None through a Gateway).
    pub forward: Option<super::forward::ErrorSlot>,
    /// The engine that answers: its health and OpenAI paths.
    pub runtime: &'static dyn crate::serving::Runtime,
}

impl Endpoint {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, SmokeError> {
        let mut r = self.http.request(method, self.url(path));
        if let Some(h) = &self.host {
            r = r.header(HOST, h);
        }
        if let Some(k) = &self.key {
            let v = k.header().map_err(|why| SmokeError::BadResponse {
                url: self.url(path),
                message: format!("the API key can't be sent: {why}"),
            })?;
            r = r.header(AUTHORIZATION, v);
        }
        Ok(r)
    }

    /// A request that failed: the API server's refusal of the port-forward when that is why (the
    /// endpoint was never reached), else the connection error.
    fn http_error(&self, path: &str, e: reqwest::Error) -> SmokeError {
        if let Some(n) = self.forward.as_ref().and_then(|f| f.failing()) {
            return n.error();
        }
        SmokeError::Http {
            url: self.url(path),
            source: e,
            forward: self.forward.as_ref().and_then(|f| f.get()),
        }
    }

    /// `text` from the server with the API key taken out (a proxy may echo the header back).
    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(k) => k.redact(text),
            None => text.to_string(),
        }
    }

    /// Server text as a message may show it: the API key taken out, control characters escaped
    /// (one line, no terminal escapes), cut to `max` characters.
    fn shown(&self, text: &str, max: usize) -> String {
        let escaped: String = self
            .redact(text)
            .chars()
            .flat_map(|c| {
                let e: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                e
            })
            .collect();
        ellipsize(&escaped, max)
    }

    /// What a status usually means here.
    fn hint(&self, status: u16) -> Option<String> {
        match status {
            401 | 403 if self.key.is_some() => {
                Some("the endpoint refused the API key from apiKeySecret".to_string())
            }
            401 | 403 => Some(
                "the endpoint wants an API key: name its Secret in the model's apiKeySecret"
                    .to_string(),
            ),
            404 if self.host.is_some() => Some(
                "the Gateway has no route for this Host: check the InferenceService URL and --domain"
                    .to_string(),
            ),
            404 => Some("no such route on this server".to_string()),
            _ => None,
        }
    }

    /// A non-2xx answer, with a short body (read until `deadline`) and a hint for the common
    /// statuses.
    async fn status_error(
        &self,
        path: &str,
        resp: reqwest::Response,
        deadline: Deadline,
    ) -> SmokeError {
        let status = resp.status().as_u16();
        let body = self.shown(&error_message(resp, deadline).await, BODY_SHOWN);
        SmokeError::Status {
            url: self.url(path),
            status,
            body,
            hint: self.hint(status),
        }
    }

    /// A whole answer, refused past [`consts::SMOKE_BODY_MAX`] (announced or read) and cut off
    /// at `deadline`.
    async fn body(
        &self,
        path: &str,
        what: &str,
        resp: reqwest::Response,
        deadline: Deadline,
        timeout: Duration,
    ) -> Result<Vec<u8>, SmokeError> {
        let limit = consts::SMOKE_BODY_MAX;
        let too_large = |announced| SmokeError::BodyTooLarge {
            url: self.url(path),
            limit,
            announced,
        };
        if let Some(n) = resp
            .content_length()
            .filter(|n| usize::try_from(*n).map_or(true, |n| n > limit))
        {
            return Err(too_large(Some(n)));
        }
        let mut stream = resp.bytes_stream();
        let mut buf = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Err(timed_out(what, timeout)),
                Ok(None) => return Ok(buf),
                Ok(Some(Err(e))) => return Err(self.http_error(path, e)),
                Ok(Some(Ok(b))) if buf.len() + b.len() > limit => return Err(too_large(None)),
                Ok(Some(Ok(b))) => buf.extend_from_slice(&b),
            }
        }
    }
}

/// The error message of a JSON error body (`{"error": {"message"}}`, `{"message"}`,
/// `{"detail"}`), else the text: the first [`consts::SMOKE_ERROR_BODY_MAX`] bytes read before
/// `deadline` (not cut for showing: [`Endpoint::shown`] does that, after taking the key out).
async fn error_message(resp: reqwest::Response, deadline: Deadline) -> String {
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
        buf.extend_from_slice(&chunk);
        if buf.len() >= consts::SMOKE_ERROR_BODY_MAX {
            buf.truncate(consts::SMOKE_ERROR_BODY_MAX);
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            ["/error/message", "/error", "/message", "/detail"]
                .iter()
                .find_map(|p| v.pointer(p).and_then(Value::as_str).map(str::to_string))
        })
        .unwrap_or(text)
        .trim()
        .to_string()
}

/// Poll `GET /health` until it answers 200, with backoff, until `deadline`. Progress goes to
/// `note` (the last answer) every attempt.
pub async fn health(
    ep: &Endpoint,
    timeout: Duration,
    note: &(dyn Fn(&str) + Send + Sync),
) -> Result<u16, Failed> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut delay = Duration::from_millis(250);
    let mut last;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = ep
            .request(reqwest::Method::GET, ep.runtime.health_path())
            .map_err(|e| Failed::new(Check::Health, e))?
            .timeout(
                left.min(Duration::from_secs(10))
                    .max(Duration::from_millis(100)),
            )
            .send()
            .await;
        match attempt {
            Ok(r) if r.status().is_success() => return Ok(r.status().as_u16()),
            Ok(r) if matches!(r.status().as_u16(), 401 | 403) => {
                let until = Deadline::now() + left.max(Duration::from_millis(100));
                let e = ep.status_error(ep.runtime.health_path(), r, until).await;
                return Err(Failed::new(Check::Health, e));
            }
            Ok(r) => {
                let code = r.status().as_u16();
                last = match ep.hint(code) {
                    Some(h) => format!("HTTP {code}: {h}"),
                    None => format!("HTTP {code}"),
                };
            }
            Err(e) => {
                // The API server refused the port-forward itself (RBAC, pod gone) or keeps
                // failing to open it: polling cannot fix that.
                if let Some(n) = ep.forward.as_ref().and_then(|f| f.refused()) {
                    return Err(Failed::new(Check::Endpoint, n.error()));
                }
                last = super::error::describe(&e) + &forward_note(ep);
            }
        }
        note(&format!(
            "waiting for /health ({last}; {}s)",
            started.elapsed().as_secs()
        ));
        if Instant::now() + delay >= deadline {
            // The pod was never reached: the API server's failure, not a slow server.
            if let Some(n) = ep.forward.as_ref().and_then(|f| f.failing()) {
                return Err(Failed::new(Check::Endpoint, n.error()));
            }
            return Err(Failed::new(
                Check::Health,
                SmokeError::HealthTimeout {
                    url: ep.url(ep.runtime.health_path()),
                    waited: timeout,
                    last,
                },
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn forward_note(ep: &Endpoint) -> String {
    ep.forward
        .as_ref()
        .and_then(|f| f.get())
        .map(|f| format!(" (port-forward: {f})"))
        .unwrap_or_default()
}

/// `GET /v1/models` must list `served`.
pub async fn models(ep: &Endpoint, served: &str, timeout: Duration) -> Result<u16, Failed> {
    let fail = |e| Failed::new(Check::Models, e);
    let path = ep.runtime.models_path();
    let what = &format!("GET {path}");
    let deadline = Deadline::now() + timeout;
    let send = ep.request(reqwest::Method::GET, path).map_err(fail)?.send();
    let resp = match tokio::time::timeout_at(deadline, send).await {
        Err(_) => return Err(fail(timed_out(what, timeout))),
        Ok(Err(e)) => return Err(fail(ep.http_error(path, e))),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        return Err(fail(ep.status_error(path, resp, deadline).await));
    }
    let body = ep
        .body(path, what, resp, deadline, timeout)
        .await
        .map_err(fail)?;
    let listed = served_names(&body).map_err(|message| {
        fail(SmokeError::BadResponse {
            url: ep.url(path),
            message: ep.shown(&message, BODY_SHOWN),
        })
    })?;
    if listed.iter().any(|n| n == served) {
        Ok(status)
    } else {
        Err(fail(SmokeError::ServedNameMissing {
            url: ep.url(path),
            served: served.to_string(),
            listed: shown_ids(ep, &listed),
        }))
    }
}

/// The first few listed ids as a message shows them, and how many more there are.
fn shown_ids(ep: &Endpoint, ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ids
        .iter()
        .take(IDS_SHOWN)
        .map(|id| ep.shown(id, ID_SHOWN))
        .collect();
    if ids.len() > IDS_SHOWN {
        out.push(format!("and {} more", ids.len() - IDS_SHOWN));
    }
    out
}

fn timed_out(what: &str, after: Duration) -> SmokeError {
    SmokeError::Timeout {
        what: what.to_string(),
        after,
    }
}

/// The `data[].id` of a `/v1/models` answer.
pub fn served_names(body: &[u8]) -> Result<Vec<String>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the answer has no `data` list")?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
        .collect())
}

/// What the streamed completion gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub status: u16,
    pub ttft: Option<Duration>,
    pub latency: Duration,
    pub reply: String,
    /// Content chunks received.
    pub chunks: u64,
    /// `usage.completion_tokens` of the stream, when the server sent it.
    pub usage_tokens: Option<u64>,
    pub finish_reason: Option<String>,
}

/// The request body: the fixed prompt, temperature 0, 16 tokens, streamed with usage.
pub fn request_body(served: &str, completions: bool) -> Value {
    let mut body = json!({
        "model": served,
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if completions {
        body["prompt"] = json!(PROMPT);
    } else {
        body["messages"] = json!([{"role": "user", "content": PROMPT}]);
    }
    body
}

/// Fold one streamed chunk into `c`; Err with the server's message (whole: the caller redacts
/// and cuts it) for an error event or an event that is not JSON.
pub fn apply_chunk(
    c: &mut Completion,
    data: &str,
    first_token: impl FnOnce() -> Duration,
) -> Result<(), String> {
    let v: Value = serde_json::from_str(data)
        .map_err(|e| format!("a streamed event is not JSON ({e}): {data}"))?;
    if let Some(err) = v.get("error") {
        let msg = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| err.to_string());
        return Err(format!("the server sent an error in the stream: {msg}"));
    }
    if let Some(n) = v
        .pointer("/usage/completion_tokens")
        .and_then(Value::as_u64)
    {
        c.usage_tokens = Some(n);
    }
    let choice = v.pointer("/choices/0");
    let text = choice
        .and_then(|ch| ch.pointer("/delta/content").or_else(|| ch.get("text")))
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(f) = choice
        .and_then(|ch| ch.get("finish_reason"))
        .and_then(Value::as_str)
    {
        c.finish_reason = Some(f.to_string());
    }
    if !text.is_empty() {
        if c.ttft.is_none() {
            c.ttft = Some(first_token());
        }
        c.chunks += 1;
        c.reply.push_str(text);
    }
    Ok(())
}

/// The completion request in flight: where, until when, and since when.
struct InFlight<'a> {
    ep: &'a Endpoint,
    path: &'static str,
    started: Instant,
    deadline: Deadline,
    timeout: Duration,
}

/// How much of the stream was read.
#[derive(Default)]
struct Read {
    events: u64,
    bytes: usize,
}

impl InFlight<'_> {
    fn fail(&self, e: SmokeError) -> Failed {
        Failed::new(Check::Completion, e)
    }

    /// A failure of an answer that came with a success `status`.
    fn failed_answer(&self, status: u16, e: SmokeError) -> Failed {
        Failed {
            check: Check::Completion,
            error: e,
            status: Some(status),
        }
    }

    fn bad(&self, status: u16, message: String) -> Failed {
        self.failed_answer(
            status,
            SmokeError::BadResponse {
                url: self.ep.url(self.path),
                message: self.ep.shown(&message, BODY_SHOWN + 100),
            },
        )
    }

    /// The stream is refused for `why` after what was read.
    fn too_long(&self, why: String, c: &Completion, read: &Read) -> Failed {
        self.failed_answer(
            c.status,
            SmokeError::StreamTooLong {
                url: self.ep.url(self.path),
                why,
                received: Box::new(Received {
                    events: read.events,
                    chunks: c.chunks,
                    bytes: read.bytes,
                    text: self.ep.shown(&c.reply, RECEIVED_SHOWN),
                }),
            },
        )
    }

    fn timed_out(&self) -> Failed {
        self.fail(timed_out(&format!("POST {}", self.path), self.timeout))
    }

    /// The next body chunk before the deadline (None at the end).
    async fn next<B>(
        &self,
        stream: &mut (impl futures::Stream<Item = reqwest::Result<B>> + Unpin),
    ) -> Result<Option<B>, Failed> {
        match tokio::time::timeout_at(self.deadline, stream.next()).await {
            Err(_) => Err(self.timed_out()),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) => Err(self.fail(self.ep.http_error(self.path, e))),
            Ok(Some(Ok(b))) => Ok(Some(b)),
        }
    }
}

/// `POST /v1/chat/completions` (or `/v1/completions`), streamed, until `data: [DONE]`.
pub async fn completion(
    ep: &Endpoint,
    served: &str,
    completions: bool,
    timeout: Duration,
) -> Result<Completion, Failed> {
    let f = InFlight {
        ep,
        path: ep.runtime.completion_path(!completions),
        started: Instant::now(),
        deadline: Deadline::now() + timeout,
        timeout,
    };
    let req = ep
        .request(reqwest::Method::POST, f.path)
        .map_err(|e| f.fail(e))?
        .header(CONTENT_TYPE, "application/json")
        .body(request_body(served, completions).to_string());
    let resp = match tokio::time::timeout_at(f.deadline, req.send()).await {
        Err(_) => return Err(f.timed_out()),
        Ok(Err(e)) => return Err(f.fail(ep.http_error(f.path, e))),
        Ok(Ok(r)) => r,
    };
    if !resp.status().is_success() {
        return Err(f.fail(ep.status_error(f.path, resp, f.deadline).await));
    }
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if !content_type
        .as_deref()
        .is_some_and(|t| t.trim_start().starts_with("text/event-stream"))
    {
        return Err(f.failed_answer(
            resp.status().as_u16(),
            SmokeError::NotAStream {
                url: ep.url(f.path),
                content_type: content_type.map(|t| ep.shown(&t, ID_SHOWN)),
            },
        ));
    }
    let mut c = Completion {
        status: resp.status().as_u16(),
        ttft: None,
        latency: Duration::ZERO,
        reply: String::new(),
        chunks: 0,
        usage_tokens: None,
        finish_reason: None,
    };
    read_events(&f, resp, &mut c).await?;
    c.latency = f.started.elapsed();
    c.reply = ep.redact(&c.reply);
    c.finish_reason = c.finish_reason.map(|r| ep.shown(&r, ID_SHOWN));
    if c.reply.trim().is_empty() {
        return Err(f.failed_answer(
            c.status,
            SmokeError::EmptyReply {
                url: ep.url(f.path),
                chunks: c.chunks,
                finish: c.finish_reason.clone().unwrap_or_else(|| "none".into()),
            },
        ));
    }
    Ok(c)
}

/// Server-sent events until `data: [DONE]`: refused past [`consts::SMOKE_BODY_MAX`] bytes or
/// [`MAX_CHUNKS`] content chunks, and when the stream ends without `[DONE]`.
async fn read_events(
    f: &InFlight<'_>,
    resp: reqwest::Response,
    c: &mut Completion,
) -> Result<(), Failed> {
    let mut stream = resp.bytes_stream();
    let mut parser = Parser::default();
    let mut read = Read::default();
    while let Some(bytes) = f.next(&mut stream).await? {
        read.bytes += bytes.len();
        let events = parser.feed(&bytes).map_err(|m| f.bad(c.status, m))?;
        if fold(f, c, &mut read, events)? {
            return Ok(());
        }
        if read.bytes > consts::SMOKE_BODY_MAX {
            let why = format!(
                "the stream went past {} for max_tokens {MAX_TOKENS}",
                super::error::shown_bytes(consts::SMOKE_BODY_MAX)
            );
            return Err(f.too_long(why, c, &read));
        }
    }
    if fold(f, c, &mut read, parser.finish())? {
        return Ok(());
    }
    Err(f.failed_answer(
        c.status,
        SmokeError::NoDone {
            url: f.ep.url(f.path),
            chunks: c.chunks,
            events: read.events,
            received: f.ep.shown(&c.reply, RECEIVED_SHOWN),
        },
    ))
}

/// Fold `events` into `c`; true at `data: [DONE]`. Refuses more than [`MAX_CHUNKS`] content
/// chunks.
fn fold(
    f: &InFlight<'_>,
    c: &mut Completion,
    read: &mut Read,
    events: Vec<Event>,
) -> Result<bool, Failed> {
    for ev in events {
        let Event::Data(d) = ev else {
            return Ok(true);
        };
        read.events += 1;
        apply_chunk(c, &d, || f.started.elapsed()).map_err(|m| f.bad(c.status, m))?;
        if c.chunks > MAX_CHUNKS {
            let why = format!(
                "the server streamed more than {MAX_CHUNKS} content chunks for max_tokens \
                 {MAX_TOKENS} (it does not honour max_tokens)"
            );
            return Err(f.too_long(why, c, read));
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(events: &[&str]) -> Completion {
        let mut c = Completion {
            status: 200,
            ttft: None,
            latency: Duration::ZERO,
            reply: String::new(),
            chunks: 0,
            usage_tokens: None,
            finish_reason: None,
        };
        for e in events {
            apply_chunk(&mut c, e, || Duration::from_millis(7)).unwrap();
        }
        c
    }

    #[test]
    fn chat_and_completion_chunks_are_folded() {
        let c = fold(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"po"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"ng"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}"#,
        ]);
        assert_eq!(c.reply, "pong");
        assert_eq!(c.chunks, 2);
        assert_eq!(c.usage_tokens, Some(2));
        assert_eq!(c.ttft, Some(Duration::from_millis(7)));
        assert_eq!(c.finish_reason.as_deref(), Some("stop"));
        let c = fold(&[r#"{"choices":[{"text":"pong"}]}"#]);
        assert_eq!((c.reply.as_str(), c.usage_tokens), ("pong", None));
    }

    #[test]
    fn an_error_event_fails_with_its_message() {
        let mut c = fold(&[]);
        let e = apply_chunk(&mut c, r#"{"error":{"message":"out of memory"}}"#, || {
            Duration::ZERO
        })
        .unwrap_err();
        assert!(e.contains("out of memory"), "{e}");
        assert!(apply_chunk(&mut c, "not json", || Duration::ZERO).is_err());
    }

    #[test]
    fn the_request_is_the_fixed_prompt_at_temperature_zero() {
        let b = request_body("qwen", false);
        assert_eq!(b["messages"][0]["content"], PROMPT);
        assert_eq!(
            (
                b["temperature"].clone(),
                b["max_tokens"].clone(),
                b["stream"].clone()
            ),
            (json!(0), json!(16), json!(true))
        );
        assert_eq!(request_body("qwen", true)["prompt"], PROMPT);
    }

    #[test]
    fn served_names_and_cutting() {
        assert_eq!(
            served_names(br#"{"object":"list","data":[{"id":"a"},{"id":"b"}]}"#).unwrap(),
            vec!["a", "b"]
        );
        assert!(served_names(b"<html>").is_err());
        assert_eq!(ellipsize("héllo wörld", 4), "héll…");
        assert_eq!(ellipsize("ok", 4), "ok");
    }
}
