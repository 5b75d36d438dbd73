//! Git remote URLs: the credential one may carry (`user:token@`, a query string such as
//! `?access_token=`), found and removed, so that none is ever written into config.yaml or the rendered
//! tree. `init`, the repoURL taken from `origin` and config validation share these.

/// `(scheme, userinfo, the rest after the userinfo)` of a URL (`scheme://[userinfo@]rest`); an scp-like
/// `git@host:path` has no scheme and its user is not a credential.
pub fn split_url(url: &str) -> (&str, Option<&str>, &str) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return ("", None, url);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => (scheme, Some(&rest[..at]), &rest[at + 1..]),
        None => (scheme, None, rest),
    }
}

/// What credential `url` carries, in words, if any.
pub fn credential_in(url: &str) -> Option<&'static str> {
    let (scheme, userinfo, _) = split_url(url);
    let in_userinfo = userinfo.is_some_and(|u| u.contains(':') || scheme.starts_with("http"));
    if in_userinfo {
        Some("`user:token@`")
    } else if url.contains('?') {
        Some("a query string (`?…`, such as `?access_token=`)")
    } else {
        None
    }
}

/// `url` without its credential: no query string, no user part (http) or password (other schemes).
pub fn without_credential(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    match split_url(url) {
        (scheme, Some(user), rest) if !scheme.starts_with("http") => match user.split_once(':') {
            Some((name, _)) if !name.is_empty() => format!("{scheme}://{name}@{rest}"),
            _ => format!("{scheme}://{rest}"),
        },
        (scheme, Some(_), rest) => format!("{scheme}://{rest}"),
        _ => url.to_string(),
    }
}
