//! The Kubernetes client's errors in plain words: what the API server answered (its message, reason
//! and HTTP code, and what to do about a 401 or a 403), or why the kubeconfig's exec credential
//! plugin gave no credential. kube-rs's own `Display` of an API error appends the Rust `Debug` of
//! the `Status`, and that of a failed exec plugin holds the plugin's whole output (the token
//! included) and its environment: neither is ever shown. [`crate::error::causes`] uses
//! [`describe_cause`] for every error printed, so each command benefits.

use std::error::Error as StdError;

use kube::client::AuthError;

/// Who ran the plugin, for messages: the kubeconfig's `exec.command` when known.
#[derive(Debug, Clone, Default)]
pub struct Plugin<'a> {
    pub command: Option<&'a str>,
    pub install_hint: Option<&'a str>,
}

impl Plugin<'_> {
    fn name(&self) -> String {
        match self.command {
            Some(c) => format!("the kubeconfig's exec credential plugin `{c}`"),
            None => "the kubeconfig's exec credential plugin".to_string(),
        }
    }
}

/// `e` in plain words (never a `Debug`, never the output of an exec plugin).
pub fn describe(e: &kube::Error) -> String {
    describe_with(e, &Plugin::default())
}

/// [`describe`], naming the exec plugin when `e` is about it.
pub fn describe_with(e: &kube::Error, plugin: &Plugin<'_>) -> String {
    match e {
        kube::Error::Api(s) => status(s),
        kube::Error::Auth(a) => auth(a, plugin),
        kube::Error::Service(inner) => transport(inner.as_ref(), plugin),
        kube::Error::HyperError(inner) => transport(inner, plugin),
        other => other.to_string(),
    }
}

/// The plain words for `e` when it is one of the Kubernetes client's errors (kube's, its auth or
/// watcher errors, an API `Status`); `None` for any other error.
pub fn describe_cause(e: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(k) = as_kube(e) {
        return Some(describe(k));
    }
    if let Some(a) = e.downcast_ref::<AuthError>() {
        return Some(auth(a, &Plugin::default()));
    }
    if let Some(s) = e.downcast_ref::<kube::core::Status>() {
        return Some(status(s));
    }
    if let Some(w) = e.downcast_ref::<kube::runtime::watcher::Error>() {
        use kube::runtime::watcher::Error as W;
        return Some(match w {
            W::InitialListFailed(k) => format!("listing failed: {}", describe(k)),
            W::WatchStartFailed(k) => format!("starting the watch failed: {}", describe(k)),
            W::WatchFailed(k) => format!("the watch failed: {}", describe(k)),
            W::WatchError(s) => format!("the watch failed: {}", status(s)),
            W::NoResourceVersion => w.to_string(),
        });
    }
    None
}

fn as_kube<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a kube::Error> {
    e.downcast_ref::<kube::Error>()
        .or_else(|| e.downcast_ref::<Box<kube::Error>>().map(|b| b.as_ref()))
}

/// The API server's answer: its message, reason and code, and for 401/403 what to do.
pub fn status(s: &kube::core::Status) -> String {
    let reason = if s.reason.is_empty() {
        "no reason given"
    } else {
        &s.reason
    };
    let message = s.message.trim();
    let mut out = if message.is_empty() {
        format!("the API server refused ({reason}, HTTP {})", s.code)
    } else {
        format!(
            "the API server refused: {message} ({reason}, HTTP {})",
            s.code
        )
    };
    match s.code {
        401 => out.push_str(
            "; the kubeconfig's credentials were not accepted (an expired or revoked token or \
             certificate): renew them (log in again) and retry",
        ),
        403 => {
            out.push_str(
                "; your credentials lack that permission: ask for RBAC allowing it, or check ",
            );
            out.push_str(&can_i(message));
            out.push_str(" with the same kubeconfig");
        }
        _ => {}
    }
    out
}

/// `kubectl auth can-i VERB RESOURCE[.GROUP] [-n NS]` for a Forbidden message
/// (`… User "u" cannot patch resource "deployments" in API group "apps" in the namespace "ns"`).
fn can_i(message: &str) -> String {
    let quoted_after = |key: &str| -> Option<&str> {
        let rest = &message[message.find(key)? + key.len()..];
        rest.split('"').next()
    };
    let verb = message
        .find(" cannot ")
        .map(|i| &message[i + " cannot ".len()..])
        .and_then(|r| r.split_whitespace().next());
    let resource = quoted_after("resource \"");
    match (verb, resource) {
        (Some(verb), Some(resource)) => {
            let mut cmd = format!("`kubectl auth can-i {verb} {resource}");
            if let Some(group) = quoted_after("in API group \"").filter(|g| !g.is_empty()) {
                cmd.push('.');
                cmd.push_str(group);
            }
            if let Some(ns) = quoted_after("in the namespace \"").filter(|n| !n.is_empty()) {
                cmd.push_str(" -n ");
                cmd.push_str(ns);
            }
            cmd.push('`');
            cmd
        }
        _ => "`kubectl auth can-i --list`".to_string(),
    }
}

/// A transport failure: its chain of messages, with any auth or API error in plain words.
fn transport(e: &(dyn StdError + 'static), plugin: &Plugin<'_>) -> String {
    let mut out = String::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        let (msg, stop) = if let Some(a) = c.downcast_ref::<AuthError>() {
            (auth(a, plugin), true)
        } else if let Some(k) = as_kube(c) {
            (describe_with(k, plugin), true)
        } else {
            (c.to_string(), false)
        };
        if !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
        if stop {
            break;
        }
        cur = c.source();
    }
    out
}

/// An authentication failure; the exec plugin's output is never shown.
pub fn auth(a: &AuthError, plugin: &Plugin<'_>) -> String {
    let name = plugin.name();
    let hint = plugin
        .install_hint
        .map(|h| format!(" ({})", h.trim()))
        .unwrap_or_default();
    match a {
        AuthError::AuthExecStart(io) if io.kind() == std::io::ErrorKind::NotFound => {
            let where_ = match plugin.command {
                Some(c) if c.contains('/') => "no such file",
                Some(_) => "not on PATH",
                None => "no such command",
            };
            format!(
                "{name} was not found ({where_}){hint}: install it, or fix users[].user.exec.command \
                 in the kubeconfig"
            )
        }
        AuthError::AuthExecStart(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            format!("{name} cannot be run (permission denied): make it executable")
        }
        AuthError::AuthExecStart(io) => format!("{name} could not be started: {io}"),
        AuthError::AuthExecRun { out, .. } => {
            let status = match out.status.code() {
                Some(c) => format!("exit status {c}"),
                None => out.status.to_string(),
            };
            let said = first_line_without_secrets(&out.stderr, &out.stdout)
                .map(|l| format!("; it said: {l}"))
                .unwrap_or_default();
            format!(
                "{name} failed ({status}){said}; its output is not shown (it may hold a token): run \
                 it by hand to see why (log in again if its session expired)"
            )
        }
        AuthError::AuthExecParse(_) => format!(
            "{name} printed something that is not an ExecCredential (not shown: it may hold a token)"
        ),
        AuthError::ExecPluginFailed => format!(
            "{name} printed an ExecCredential without a status (neither a token nor a certificate)"
        ),
        AuthError::MissingCommand => {
            "the kubeconfig's exec credential plugin has no command (users[].user.exec.command)"
                .to_string()
        }
        other => other.to_string(),
    }
}

const MAX_LINE_CHARS: usize = 200;

/// The words of `text` a token could be made of.
/// A word this long in a plugin's stderr may be a token: the line is not shown.
const TOKEN_LIKE_CHARS: usize = 20;

/// The words of `text` a token could be made of.
fn token_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.+/=".contains(c)))
}

/// The first non-empty line of a plugin's stderr, trimmed, with control characters escaped and
/// capped, unless it may hold a secret: a word of its stdout (where the credential is) long
/// enough to be one, or any word that looks like a token (a failing plugin's stdout is often
/// empty while its stderr quotes the token it could not refresh).
fn first_line_without_secrets(stderr: &[u8], stdout: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let out = String::from_utf8_lossy(stdout);
    let echoes_stdout = token_words(&out)
        .filter(|w| w.len() >= 12)
        .any(|w| line.contains(w));
    let looks_like_a_token =
        line.contains("eyJ") || token_words(line).any(|w| w.len() >= TOKEN_LIKE_CHARS);
    if echoes_stdout || looks_like_a_token {
        return None;
    }
    let line: String = line.chars().flat_map(char::escape_debug).collect();
    let mut shown: String = line.chars().take(MAX_LINE_CHARS).collect();
    if line.chars().count() > MAX_LINE_CHARS {
        shown.push('…');
    }
    Some(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_plugins_stderr_is_shown_only_without_anything_like_a_token() {
        assert_eq!(
            first_line_without_secrets(b"\n  login required: run `acme login`\n", b""),
            Some("login required: run `acme login`".into())
        );
        // stdout empty (the plugin failed), the token in stderr: not shown.
        let jwt = b"error: refresh of eyJhbGciOiJSUzI1NiJ9.x.y failed";
        assert_eq!(first_line_without_secrets(jwt, b""), None);
        let long = b"error: token abcdefghijklmnopqrstuvwxyz0123 expired";
        assert_eq!(first_line_without_secrets(long, b""), None);
        assert_eq!(
            first_line_without_secrets(b"bad\x1b[31m colour", b""),
            Some("bad\\u{1b}[31m colour".into())
        );
    }

    fn status_of(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            status: Some(kube::core::response::StatusSummary::Failure),
            code,
            message: message.to_string(),
            reason: reason.to_string(),
            metadata: None,
            details: None,
        }))
    }

    #[test]
    fn an_api_error_is_its_message_reason_and_code_never_a_debug() {
        let e = status_of(
            403,
            "Forbidden",
            "deployments.apps \"x\" is forbidden: User \"u\" cannot patch resource \"deployments\" \
             in API group \"apps\" in the namespace \"ns\"",
        );
        let d = describe(&e);
        assert!(
            d.starts_with("the API server refused: deployments.apps"),
            "{d}"
        );
        assert!(d.contains("(Forbidden, HTTP 403)"), "{d}");
        assert!(
            d.contains("`kubectl auth can-i patch deployments.apps -n ns`"),
            "{d}"
        );
        assert!(!d.contains("Status {") && !d.contains("Some("), "{d}");
        let d = describe(&status_of(
            403,
            "Forbidden",
            "namespaces is forbidden: User \"u\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope",
        ));
        assert!(d.contains("`kubectl auth can-i list namespaces`"), "{d}");
        let d = describe(&status_of(401, "Unauthorized", "Unauthorized"));
        assert!(d.contains("HTTP 401") && d.contains("log in again"), "{d}");
        let d = describe(&status_of(
            422,
            "Invalid",
            "Deployment.apps \"x\" is invalid: spec.selector: field is immutable",
        ));
        assert!(d.contains("field is immutable (Invalid, HTTP 422)"), "{d}");
        let d = describe(&status_of(500, "", ""));
        assert_eq!(d, "the API server refused (no reason given, HTTP 500)");
    }

    fn failed_plugin(stdout: &str, stderr: &str, code: i32) -> AuthError {
        use std::os::unix::process::ExitStatusExt;
        AuthError::AuthExecRun {
            cmd: "TOKEN=\"x\" \"/bin/plugin\" \"--secret\"".into(),
            out: Box::new(std::process::Output {
                status: std::process::ExitStatus::from_raw(code << 8),
                stdout: stdout.as_bytes().to_vec(),
                stderr: stderr.as_bytes().to_vec(),
            }),
        }
    }

    #[test]
    fn a_failed_exec_plugin_is_named_with_its_status_never_its_output() {
        let token = "TOPSECRET-token-123456";
        let stdout =
            format!("{{\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}");
        let plugin = Plugin {
            command: Some("aws"),
            install_hint: None,
        };
        let e = kube::Error::Auth(failed_plugin(&stdout, "\n  session expired\nmore\n", 1));
        let d = describe_with(&e, &plugin);
        assert!(
            d.contains("exec credential plugin `aws` failed (exit status 1)"),
            "{d}"
        );
        assert!(d.contains("it said: session expired;"), "{d}");
        assert!(
            !d.contains(token) && !d.contains("--secret") && !d.contains("Output"),
            "{d}"
        );
        // A stderr that repeats the token is not shown.
        let e = kube::Error::Auth(failed_plugin(&stdout, &format!("got {token}"), 2));
        let d = describe(&e);
        assert!(d.contains("(exit status 2)") && !d.contains(token), "{d}");
        assert!(!d.contains("it said"), "{d}");
        // Inside a transport error (a token refreshed during a request).
        let e = kube::Error::Service(Box::new(failed_plugin(&stdout, "", 1)));
        let d = describe(&e);
        assert!(
            d.contains("failed (exit status 1)") && !d.contains(token),
            "{d}"
        );
    }

    #[test]
    fn a_missing_exec_plugin_is_named() {
        let nf = || AuthError::AuthExecStart(std::io::Error::from(std::io::ErrorKind::NotFound));
        let d = auth(
            &nf(),
            &Plugin {
                command: Some("kubelogin"),
                install_hint: Some("brew install kubelogin\n"),
            },
        );
        assert!(
            d.starts_with(
                "the kubeconfig's exec credential plugin `kubelogin` was not found (not on PATH) (brew install kubelogin)"
            ),
            "{d}"
        );
        let d = auth(
            &nf(),
            &Plugin {
                command: Some("/opt/x/plugin"),
                install_hint: None,
            },
        );
        assert!(
            d.contains("`/opt/x/plugin` was not found (no such file)"),
            "{d}"
        );
    }

    #[test]
    fn causes_are_recognised_through_boxes() {
        let e: Box<kube::Error> = Box::new(status_of(404, "NotFound", "x not found"));
        let d = describe_cause(&e).unwrap();
        assert_eq!(
            d,
            "the API server refused: x not found (NotFound, HTTP 404)"
        );
        let io = std::io::Error::other("plain");
        assert!(describe_cause(&io).is_none());
    }
}
