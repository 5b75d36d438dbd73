//! The API key a model's endpoint wants, read from the Secret its config names
//! (`apiKeySecret: {name, key}`). The key is sent as `Authorization: Bearer` and never printed,
//! logged or put in an error: [`ApiKey`]'s Debug is redacted and has no Display.

use k8s_openapi::api::core::v1::Secret;

use super::error::SmokeError;
use crate::cluster::Client;
use crate::plan::PlannedModel;

const REDACTED: &str = "<redacted>";

/// The shortest start of the key that is redacted where a text ends.
const PARTIAL_MIN: usize = 4;

/// A secret value. Debug shows `ApiKey(<redacted>)`.
#[derive(Clone)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    /// `text` with every occurrence of the key replaced by `<redacted>`: as it is, as it appears
    /// inside a JSON string, and a start of it that ends the text (a body or stream read up to a
    /// cap may stop inside an echoed key).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, REDACTED);
        let escaped = serde_json::to_string(&self.0).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        if escaped != self.0 {
            out = out.replace(escaped, REDACTED);
        }
        let cut = (PARTIAL_MIN..self.0.len())
            .rev()
            .find(|&n| self.0.is_char_boundary(n) && out.ends_with(&self.0[..n]));
        if let Some(n) = cut {
            out.truncate(out.len() - n);
            out.push_str(REDACTED);
        }
        out
    }

    /// The `Authorization` header value, marked sensitive (hyper leaves it out of its debug output).
    pub fn header(&self) -> Result<reqwest::header::HeaderValue, String> {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.0))
            .map_err(|_| "it is not a valid HTTP header value".to_string())?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// Why a Secret value can't be a bearer token (without showing it); None when it can.
pub fn unusable(value: &[u8]) -> Option<String> {
    let Ok(s) = std::str::from_utf8(value) else {
        return Some("it is not UTF-8 text".into());
    };
    if s.is_empty() {
        return Some("it is empty".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        let what = if c == '\n' || c == '\r' {
            "a line break inside it"
        } else if c.is_whitespace() {
            "whitespace inside it"
        } else if c.is_control() {
            "a control character"
        } else {
            "a non-ASCII character"
        };
        return Some(format!("it holds {what}"));
    }
    None
}

/// The model's API key, when its config names a Secret.
pub async fn read(client: &Client, m: &PlannedModel) -> Result<Option<ApiKey>, SmokeError> {
    let Some(r) = &m.model.api_key_secret else {
        return Ok(None);
    };
    let secret = format!("{}/{}", m.namespace, r.name);
    let api: kube::Api<Secret> = kube::Api::namespaced(client.kube(), &m.namespace);
    let obj = client
        .retry(|| api.get_opt(&r.name))
        .await
        .map_err(|e| SmokeError::Api {
            what: format!("reading Secret {secret} (apiKeySecret of model {})", m.name),
            source: e,
        })?
        .ok_or_else(|| SmokeError::SecretMissing {
            model: m.name.clone(),
            namespace: m.namespace.clone(),
            name: r.name.clone(),
            key: r.key.clone(),
        })?;
    let data = obj.data.unwrap_or_default();
    let Some(value) = data.get(&r.key) else {
        return Err(SmokeError::SecretKeyMissing {
            secret,
            key: r.key.clone(),
            model: m.name.clone(),
            keys: data.keys().cloned().collect(),
        });
    };
    // A key written with `--from-file` often ends with the file's newline: not part of the key.
    let mut bytes: &[u8] = &value.0;
    while let Some(rest) = bytes
        .strip_suffix(b"\n")
        .or_else(|| bytes.strip_suffix(b"\r"))
    {
        bytes = rest;
    }
    if let Some(why) = unusable(bytes) {
        return Err(SmokeError::SecretKeyUnusable {
            secret,
            key: r.key.clone(),
            why,
        });
    }
    Ok(Some(ApiKey(String::from_utf8_lossy(bytes).into_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_values_are_named_without_showing_them() {
        assert_eq!(unusable(b"sk-abc.123_XYZ"), None);
        for (v, what) in [
            (&b""[..], "empty"),
            (b"ab cd", "whitespace"),
            (b"ab\ncd", "line break"),
            (b"ab\x01cd", "control"),
            (b"\xff\xfe", "UTF-8"),
            ("clé".as_bytes(), "non-ASCII"),
        ] {
            let why = unusable(v).unwrap();
            assert!(why.contains(what), "{why}");
            assert!(!why.contains("ab"), "{why}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let k = ApiKey("sk-secret".into());
        assert_eq!(format!("{k:?}"), "ApiKey(<redacted>)");
        assert!(k.header().unwrap().is_sensitive());
        assert_eq!(
            k.redact("invalid token Bearer sk-secret."),
            "invalid token Bearer <redacted>."
        );
        // A text cut inside the key loses the start of the key too; a key inside a JSON string.
        assert_eq!(k.redact("got Bearer sk-sec"), "got Bearer <redacted>");
        assert_eq!(k.redact("ends with sk-"), "ends with sk-");
        let q = ApiKey("a\"b\\c-long".into());
        assert_eq!(
            q.redact(r#"{"got":"a\"b\\c-long"}"#),
            r#"{"got":"<redacted>"}"#
        );
    }
}
