//! Fault injection and the request log.

use std::collections::HashMap;
use std::time::Duration;

/// One logged request.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub user_agent: String,
    /// get, list, watch, create, update, patch, apply, delete, deletecollection, exec,
    /// discovery, openapi, ...
    pub verb: String,
    /// Plural resource name (`deployments`), empty for non-resource paths.
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub status: u16,
}

/// A rule answering the next `remaining` matching requests with an error.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub remaining: u32,
    pub status: u16,
    pub retry_after: Option<u64>,
    pub path_contains: Option<String>,
    pub method: Option<String>,
}

/// What the scripted Argo CD controller does with an Application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppOutcome {
    /// Sync succeeds, health becomes Healthy (the default).
    Healthy,
    /// Sync succeeds, health becomes Degraded with this message.
    Degraded(String),
    /// The sync operation fails with this message (phase Failed, a SyncFailed resource).
    SyncFailed(String),
}

/// What happens to the finalizers of an object being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizerBehavior {
    /// The responsible controller removes them after this delay.
    RemoveAfter(Duration),
    /// The responsible controller is gone: they stay forever.
    Never,
}

/// A fault rule's status that means: never answer.
pub const HANG: u16 = 0;

#[derive(Default)]
pub struct Faults {
    pub rules: Vec<FaultRule>,
    pub log: Vec<LoggedRequest>,
    pub app_outcomes: HashMap<String, AppOutcome>,
    /// By kind (`Application`, `PersistentVolumeClaim`, ...).
    pub finalizers: HashMap<String, FinalizerBehavior>,
    /// The next `tar x` exec loses its connection (no exit status) after this many stdin bytes.
    pub exec_drop_after: Option<u64>,
    /// Where port-forwards of matching pods go (`TestApiServer::forward_port`), latest first.
    pub port_forwards: Vec<super::portforward::ForwardRule>,
    /// Port-forward websocket sessions open right now.
    pub port_forwards_open: usize,
    /// What `pods/NAME/log` answers for matching pods (`TestApiServer::pod_log`), latest first.
    pub pod_logs: Vec<LogRule>,
}

/// The log of the pods of `namespace` whose name starts with `pod_prefix`: its current container's
/// lines, or (`previous`) those of the container that ran before a restart.
#[derive(Debug, Clone)]
pub struct LogRule {
    pub namespace: String,
    pub pod_prefix: String,
    pub previous: bool,
    pub lines: Vec<String>,
}

impl Faults {
    /// The error to answer `method path` with, if a rule matches (and uses it up).
    pub fn take(&mut self, method: &str, path: &str) -> Option<(u16, Option<u64>)> {
        let rule = self.rules.iter_mut().find(|r| {
            r.remaining > 0
                && r.path_contains.as_deref().is_none_or(|p| path.contains(p))
                && r.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        rule.remaining -= 1;
        let out = (rule.status, rule.retry_after);
        self.rules.retain(|r| r.remaining > 0);
        Some(out)
    }
}
