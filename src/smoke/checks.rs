//! The HTTP checks against an OpenAI-compatible endpoint (vLLM): `/health` polled with backoff
//! until a deadline, `/v1/models` lists the served name, and a streamed completion returns a
//! non-empty reply, timed (time to first token, total latency) and counted.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use serde_json::{json, Value};

use super::apikey::ApiKey;
use super::error::{Check, Failed, SmokeError};
use super::sse::{Event, Parser};
use crate::text::ellipsize;

/// The fixed prompt: a model that follows instructions answers `pong`.
pub const PROMPT: &str = "Reply with exactly: pong";
pub const MAX_TOKENS: u32 = 16;
/// The most of an error body kept for a message.
const BODY_SHOWN: usize = 300;

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

    fn http_error(&self, path: &str, e: reqwest::Error) -> SmokeError {
        SmokeError::Http {
            url: self.url(path),
            source: e,
            forward: self.forward.as_ref().and_then(|f| f.get()),
        }
    }

    /// `text` from the server with the API key taken out (a proxy may echo the header back).
    fn redact(&self, text: String) -> String {
        match &self.key {
            Some(k) => k.redact(&text),
            None => text,
        }
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

    /// A non-2xx answer, with a short body and a hint for the common statuses.
    async fn status_error(&self, path: &str, resp: reqwest::Response) -> SmokeError {
        let status = resp.status().as_u16();
        let body = self.redact(short_body(resp).await);
        SmokeError::Status {
            url: self.url(path),
            status,
            body,
            hint: self.hint(status),
        }
    }
}

/// The error message of a JSON error body (`{"error": {"message"}}`, `{"message"}`,
/// `{"detail"}`), else the text, cut to a few hundred characters on a character boundary.
async fn short_body(resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > 16 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let msg = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            ["/error/message", "/error", "/message", "/detail"]
                .iter()
                .find_map(|p| v.pointer(p).and_then(Value::as_str).map(str::to_string))
        })
        .unwrap_or(text);
    ellipsize(msg.trim(), BODY_SHOWN)
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
            .request(reqwest::Method::GET, "/health")
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
                let e = ep.status_error("/health", r).await;
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
                // The API server refused the port-forward itself (RBAC, pod gone): polling
                // cannot fix that.
                if let Some((pod, message)) = ep.forward.as_ref().and_then(|f| f.refused()) {
                    let e = SmokeError::PortForwardRefused { pod, message };
                    return Err(Failed::new(Check::Endpoint, e));
                }
                last = super::error::describe(&e) + &forward_note(ep);
            }
        }
        note(&format!(
            "waiting for /health ({last}; {}s)",
            started.elapsed().as_secs()
        ));
        if Instant::now() + delay >= deadline {
            return Err(Failed::new(
                Check::Health,
                SmokeError::HealthTimeout {
                    url: ep.url("/health"),
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
    let path = "/v1/models";
    let send = ep.request(reqwest::Method::GET, path).map_err(fail)?.send();
    let resp = match tokio::time::timeout(timeout, send).await {
        Err(_) => return Err(fail(timed_out("GET /v1/models", timeout))),
        Ok(Err(e)) => return Err(fail(ep.http_error(path, e))),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        return Err(fail(ep.status_error(path, resp).await));
    }
    let body = match tokio::time::timeout(timeout, resp.bytes()).await {
        Err(_) => return Err(fail(timed_out("GET /v1/models", timeout))),
        Ok(Err(e)) => return Err(fail(ep.http_error(path, e))),
        Ok(Ok(b)) => b,
    };
    let listed = served_names(&body).map_err(|message| {
        fail(SmokeError::BadResponse {
            url: ep.url(path),
            message,
        })
    })?;
    if listed.iter().any(|n| n == served) {
        Ok(status)
    } else {
        Err(fail(SmokeError::ServedNameMissing {
            url: ep.url(path),
            served: served.to_string(),
            listed,
        }))
    }
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

/// Fold one streamed chunk into `c`; Err with the server's message for an error event.
pub fn apply_chunk(
    c: &mut Completion,
    data: &str,
    first_token: impl FnOnce() -> Duration,
) -> Result<(), String> {
    let v: Value = serde_json::from_str(data).map_err(|e| {
        format!(
            "a streamed event is not JSON ({e}): {}",
            ellipsize(data, 80)
        )
    })?;
    if let Some(err) = v.get("error") {
        let msg = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| err.to_string());
        return Err(format!(
            "the server sent an error in the stream: {}",
            ellipsize(&msg, BODY_SHOWN)
        ));
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

/// The most of a non-streamed JSON answer read.
const MAX_JSON: usize = 4 << 20;

/// The completion request in flight: where, until when, and since when.
struct InFlight<'a> {
    ep: &'a Endpoint,
    path: &'static str,
    started: Instant,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl InFlight<'_> {
    fn fail(&self, e: SmokeError) -> Failed {
        Failed::new(Check::Completion, e)
    }

    fn bad(&self, message: String) -> Failed {
        self.fail(SmokeError::BadResponse {
            url: self.ep.url(self.path),
            message: self.ep.redact(message),
        })
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

/// `POST /v1/chat/completions` (or `/v1/completions`), streamed, until `[DONE]` or the end.
pub async fn completion(
    ep: &Endpoint,
    served: &str,
    completions: bool,
    timeout: Duration,
) -> Result<Completion, Failed> {
    let f = InFlight {
        ep,
        path: if completions {
            "/v1/completions"
        } else {
            "/v1/chat/completions"
        },
        started: Instant::now(),
        deadline: tokio::time::Instant::now() + timeout,
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
        return Err(f.fail(ep.status_error(f.path, resp).await));
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
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        read_whole(&f, resp, &mut c).await?;
    } else {
        read_events(&f, resp, &mut c).await?;
    }
    c.latency = f.started.elapsed();
    if c.reply.trim().is_empty() {
        return Err(Failed {
            check: Check::Completion,
            status: Some(c.status),
            error: SmokeError::EmptyReply {
                url: ep.url(f.path),
                chunks: c.chunks,
                finish: c.finish_reason.clone().unwrap_or_else(|| "none".into()),
            },
        });
    }
    Ok(c)
}

/// Server-sent events until `data: [DONE]` (or the end of the body).
async fn read_events(
    f: &InFlight<'_>,
    resp: reqwest::Response,
    c: &mut Completion,
) -> Result<(), Failed> {
    let mut stream = resp.bytes_stream();
    let mut parser = Parser::default();
    while let Some(bytes) = f.next(&mut stream).await? {
        for ev in parser.feed(&bytes).map_err(|m| f.bad(m))? {
            match ev {
                Event::Done => return Ok(()),
                Event::Data(d) => {
                    apply_chunk(c, &d, || f.started.elapsed()).map_err(|m| f.bad(m))?
                }
            }
        }
    }
    for ev in parser.finish() {
        if let Event::Data(d) = ev {
            apply_chunk(c, &d, || f.started.elapsed()).map_err(|m| f.bad(m))?;
        }
    }
    Ok(())
}

/// A server that ignored `stream: true` answers one JSON object.
async fn read_whole(
    f: &InFlight<'_>,
    resp: reqwest::Response,
    c: &mut Completion,
) -> Result<(), Failed> {
    let mut stream = resp.bytes_stream();
    let mut whole = Vec::new();
    while let Some(bytes) = f.next(&mut stream).await? {
        whole.extend_from_slice(&bytes);
        if whole.len() > MAX_JSON {
            return Err(f.bad(format!("the answer is larger than {MAX_JSON} bytes")));
        }
    }
    let v: Value = serde_json::from_slice(&whole)
        .map_err(|e| f.bad(format!("the answer is not JSON ({e})")))?;
    let text = v
        .pointer("/choices/0/message/content")
        .or_else(|| v.pointer("/choices/0/text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    c.reply = text.to_string();
    c.chunks = u64::from(!text.is_empty());
    c.ttft = Some(f.started.elapsed());
    c.usage_tokens = v
        .pointer("/usage/completion_tokens")
        .and_then(Value::as_u64);
    c.finish_reason = v
        .pointer("/choices/0/finish_reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(())
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
