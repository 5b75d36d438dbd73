//! What `platform smoke` reports: one [`ModelReport`] per model (one line in a table, the same
//! fields in `-o json`), and the run's [`Report`] with its exit class.

use std::time::Duration;

use serde::Serialize;

use super::checks::Completion;
use super::error::{Check, Failed};
use crate::error::{Classify, ErrorClass};

/// How many characters of the reply are kept.
pub const REPLY_SHOWN: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Result {
    Pass,
    /// A check said no (exit 1).
    Fail,
    /// A check reached its deadline (exit 3).
    Timeout,
    /// The cluster API failed or refused (reading the model's objects, the port-forward): the
    /// model could not be checked (exit 4).
    Error,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelReport {
    pub model: String,
    pub layer: String,
    pub namespace: String,
    /// `port-forward` or `gateway`.
    pub path: String,
    /// The pod and local port, or the Gateway URL and Host header.
    pub endpoint: Option<String>,
    pub result: Result,
    /// The check that failed (or timed out).
    pub check: Option<Check>,
    /// Why it failed, or why it was skipped.
    pub reason: Option<String>,
    /// HTTP status of the completion (or of the failing request).
    pub http_status: Option<u16>,
    pub ttft_ms: Option<u64>,
    pub latency_ms: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// `usage` (the stream's usage block) or `chunks` (content chunks counted).
    pub token_source: Option<String>,
    /// Completion tokens divided by the total latency.
    pub tokens_per_second: Option<f64>,
    /// The first 60 characters of the reply.
    pub reply: Option<String>,
}

impl ModelReport {
    pub fn new(model: &str, layer: &str, namespace: &str, path: &str) -> ModelReport {
        ModelReport {
            model: model.to_string(),
            layer: layer.to_string(),
            namespace: namespace.to_string(),
            path: path.to_string(),
            endpoint: None,
            result: Result::Skipped,
            check: None,
            reason: None,
            http_status: None,
            ttft_ms: None,
            latency_ms: None,
            completion_tokens: None,
            token_source: None,
            tokens_per_second: None,
            reply: None,
        }
    }

    pub fn skipped(mut self, note: String) -> ModelReport {
        self.result = Result::Skipped;
        self.reason = Some(note);
        self
    }

    pub fn failed(mut self, f: Failed) -> ModelReport {
        self.result = match f.error.class() {
            ErrorClass::Timeout => Result::Timeout,
            ErrorClass::Remote => Result::Error,
            _ => Result::Fail,
        };
        self.check = Some(f.check);
        self.http_status = f.status.or(self.http_status);
        self.reason = Some(crate::actions::smoke::error::chain(&f.error));
        self
    }

    pub fn passed(mut self, c: &Completion) -> ModelReport {
        self.result = Result::Pass;
        self.http_status = Some(c.status);
        self.ttft_ms = c.ttft.map(ms);
        self.latency_ms = Some(ms(c.latency));
        let (tokens, source) = match c.usage_tokens {
            Some(n) => (n, "usage"),
            None => (c.chunks, "chunks"),
        };
        self.completion_tokens = Some(tokens);
        self.token_source = Some(source.to_string());
        let secs = c.latency.as_secs_f64();
        self.tokens_per_second = (secs > 0.0).then(|| (tokens as f64 / secs * 10.0).round() / 10.0);
        self.reply = Some(crate::text::ellipsize(&c.reply, REPLY_SHOWN));
        self
    }

    /// A few words for the progress line (the full line goes to stdout).
    pub fn summary(&self) -> String {
        match (self.result, self.check) {
            (Result::Pass, _) => "passed".into(),
            (Result::Fail, Some(c)) => format!("failed ({})", c.as_str()),
            (Result::Timeout, Some(c)) => format!("timed out ({})", c.as_str()),
            (Result::Error, Some(c)) => format!("could not be checked ({})", c.as_str()),
            (Result::Skipped, _) => "skipped".into(),
            (_, None) => "failed".into(),
        }
    }

    /// One line: model, layer, path, then the figures or the failed check and why.
    pub fn line(&self) -> String {
        self.cells().join("  ")
    }

    /// [`line`](Self::line)'s columns: model, layer, path, result, then the figures or the
    /// failed check and why.
    pub fn cells(&self) -> [String; 5] {
        let (result, detail) = self.outcome();
        [
            self.model.clone(),
            self.layer.clone(),
            self.path.clone(),
            result.to_string(),
            detail,
        ]
    }

    /// The result's word and what follows it.
    fn outcome(&self) -> (&'static str, String) {
        match self.result {
            Result::Pass => (
                "PASS",
                format!(
                    "HTTP {}  ttft {}  total {}  {} tokens ({}) {} tok/s  reply {:?}",
                    self.http_status.unwrap_or_default(),
                    self.ttft_ms.map(shown_ms).unwrap_or_else(|| "-".into()),
                    self.latency_ms.map(shown_ms).unwrap_or_else(|| "-".into()),
                    self.completion_tokens.unwrap_or_default(),
                    self.token_source.as_deref().unwrap_or("-"),
                    self.tokens_per_second
                        .map(|t| format!("{t:.1}"))
                        .unwrap_or_else(|| "-".into()),
                    self.reply.as_deref().unwrap_or_default()
                ),
            ),
            Result::Fail | Result::Timeout | Result::Error => (
                match self.result {
                    Result::Fail => "FAIL",
                    Result::Timeout => "TIMEOUT",
                    _ => "ERROR",
                },
                format!(
                    "{}{}: {}",
                    self.check.map(Check::as_str).unwrap_or("?"),
                    self.http_status
                        .map(|s| format!(" (HTTP {s})"))
                        .unwrap_or_default(),
                    self.reason.as_deref().unwrap_or_default()
                ),
            ),
            Result::Skipped => ("SKIPPED", self.reason.clone().unwrap_or_default()),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn shown_ms(ms: u64) -> String {
    if ms < 10_000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub env: String,
    pub models: Vec<ModelReport>,
    pub passed: usize,
    pub failed: usize,
    pub timed_out: usize,
    /// Models that could not be checked: the cluster API failed or refused.
    pub errored: usize,
    pub skipped: usize,
}

impl Report {
    pub fn new(env: &str, models: Vec<ModelReport>) -> Report {
        let count = |r: Result| models.iter().filter(|m| m.result == r).count();
        Report {
            env: env.to_string(),
            passed: count(Result::Pass),
            failed: count(Result::Fail),
            timed_out: count(Result::Timeout),
            errored: count(Result::Error),
            skipped: count(Result::Skipped),
            models,
        }
    }

    /// The models whose result is `r`, with the check that decided it.
    pub fn names(&self, r: Result) -> Vec<String> {
        self.models
            .iter()
            .filter(|m| m.result == r)
            .map(|m| match m.check {
                Some(c) => format!("{} ({})", m.model, c.as_str()),
                None => m.model.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_line_has_every_figure_and_a_char_safe_reply() {
        let c = Completion {
            status: 200,
            ttft: Some(Duration::from_millis(120)),
            latency: Duration::from_millis(500),
            reply: "é".repeat(100),
            chunks: 5,
            usage_tokens: None,
            finish_reason: Some("length".into()),
        };
        let r = ModelReport::new("m", "kserve", "ns", "port-forward").passed(&c);
        assert_eq!(r.completion_tokens, Some(5));
        assert_eq!(r.token_source.as_deref(), Some("chunks"));
        assert_eq!(r.tokens_per_second, Some(10.0));
        assert_eq!(r.reply.as_ref().unwrap().chars().count(), REPLY_SHOWN + 1);
        let line = r.line();
        for want in [
            "m  kserve  port-forward  PASS",
            "HTTP 200",
            "ttft 120ms",
            "total 500ms",
            "5 tokens (chunks) 10.0 tok/s",
        ] {
            assert!(line.contains(want), "{line}");
        }
    }
}
