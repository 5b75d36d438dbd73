//! HTTP routing: parses Kubernetes API paths, applies fault injection, dispatches to
//! discovery, the resource verbs, watches and exec, and logs every request.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

use super::discovery;
use super::errors::ApiError;
use super::exec;
use super::faults::LoggedRequest;
use super::handlers::{self, Ctx};
use super::resources::{self, ResourceType};
use super::util::Query;
use super::watch;
use super::State;

/// Largest request body accepted (tar uploads go over exec, not bodies).
const MAX_BODY: usize = 64 << 20;

pub fn router(state: Arc<State>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// A parsed resource path.
pub struct ResourcePath {
    pub rt: &'static ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub watch_prefix: bool,
}

enum Route {
    Version,
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
    OpenApiV2,
    OpenApiV3,
    OpenApiV3Gv(String),
    Health,
    Resource(ResourcePath),
    NotFound,
}

fn parse_resource(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let (watch_prefix, rest) = match rest.first() {
        Some(&"watch") => (true, &rest[1..]),
        _ => (false, rest),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..]
            if !(tail.is_empty()
                || tail.len() == 1 && matches!(tail[0], "status" | "finalize")) =>
        {
            (Some(ns.to_string()), tail)
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    let rt = resources::find(group, version, plural)?;
    if namespace.is_some() && !rt.namespaced {
        return None;
    }
    if let Some(s) = &sub {
        if !(rt.has(s) || s == "finalize" && rt.plural == "namespaces") {
            return None;
        }
    }
    Some(ResourcePath {
        rt,
        namespace,
        name,
        subresource: sub,
        watch_prefix,
    })
}

fn route(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz"] | ["readyz"] | ["livez"] => Route::Health,
        ["api"] => Route::Api,
        ["api", "v1"] => Route::GroupVersion(String::new(), "v1".into()),
        ["api", "v1", rest @ ..] => match parse_resource("", "v1", rest) {
            Some(r) => Route::Resource(r),
            None => Route::NotFound,
        },
        ["apis"] => Route::Apis,
        ["apis", g] => Route::Group(g.to_string()),
        ["apis", g, v] => Route::GroupVersion(g.to_string(), v.to_string()),
        ["apis", g, v, rest @ ..] => match parse_resource(g, v, rest) {
            Some(r) => Route::Resource(r),
            None => Route::NotFound,
        },
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3Gv(rest.join("/")),
        _ => Route::NotFound,
    }
}

/// A JSON response.
pub fn json_response(code: u16, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The `Status` response for an error (with `Retry-After` when set).
pub fn error_response(e: &ApiError) -> Response {
    let mut resp = json_response(e.code, &e.to_status());
    if let Some(secs) = e.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

fn verb_of(method: &Method, rp: &ResourcePath, q: &Query, content_type: &str) -> &'static str {
    let watching = rp.watch_prefix || q.flag("watch");
    match (method.as_str(), rp.name.is_some()) {
        ("GET", _) if rp.subresource.as_deref() == Some("exec") => "exec",
        ("POST", _) if rp.subresource.as_deref() == Some("exec") => "exec",
        ("GET" | "POST", _) if rp.subresource.as_deref() == Some("portforward") => "portforward",
        ("GET", _) if watching => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) if content_type.starts_with("application/apply-patch") => "apply",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

async fn handle(AxState(state): AxState<Arc<State>>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let q = Query::parse(&raw_query);
    let hdr = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = hdr(header::CONTENT_TYPE);
    let user_agent = hdr(header::USER_AGENT);
    let accept = hdr(header::ACCEPT);
    let route = route(&path);
    let mut log = LoggedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: raw_query.clone(),
        content_type: content_type.clone(),
        user_agent: user_agent.clone(),
        verb: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        status: 0,
    };
    log.verb = match &route {
        Route::Resource(rp) => {
            log.resource = rp.rt.plural.to_string();
            log.subresource = rp.subresource.clone().unwrap_or_default();
            log.namespace = rp.namespace.clone().unwrap_or_default();
            log.name = rp.name.clone().unwrap_or_default();
            verb_of(&method, rp, &q, &content_type).to_string()
        }
        Route::OpenApiV2 | Route::OpenApiV3 | Route::OpenApiV3Gv(_) => "openapi".into(),
        Route::NotFound => "unknown".into(),
        _ => "discovery".into(),
    };

    let fault = state.faults().take(method.as_str(), &path);
    if let Some((super::faults::HANG, _)) = fault {
        // Accepted, never answered: the connection stays open until the client gives up.
        std::future::pending::<()>().await;
    }
    let resp = if let Some((code, retry_after)) = fault {
        let reason = match code {
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            409 => "Conflict",
            _ => "Unknown",
        };
        let mut e = ApiError::new(code, reason, format!("injected fault: {code} {reason}"));
        e.retry_after = retry_after;
        error_response(&e)
    } else {
        match route {
            Route::Resource(rp) if log.verb == "exec" => {
                let ctx = ctx_of(&state, rp, q, content_type, user_agent, accept);
                exec::handle(ctx, &mut parts, &method).await
            }
            Route::Resource(rp) if log.verb == "portforward" => {
                let ctx = ctx_of(&state, rp, q, content_type, user_agent, accept);
                super::portforward::handle(ctx, &mut parts).await
            }
            Route::Resource(rp) => {
                let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
                    Ok(b) => b,
                    Err(e) => {
                        let e = ApiError::new(413, "RequestEntityTooLarge", e.to_string());
                        return finish(&state, log, error_response(&e));
                    }
                };
                let verb = log.verb.clone();
                if !bytes.is_empty()
                    && !content_type.is_empty()
                    && !is_supported_body(&content_type)
                {
                    let e = ApiError::unsupported_media_type(&content_type);
                    return finish(&state, log, error_response(&e));
                }
                let ctx = ctx_of(&state, rp, q, content_type, user_agent, accept);
                resource(ctx, &verb, &bytes)
            }
            Route::Version => json_response(200, &discovery::version()),
            Route::Health => (StatusCode::OK, "ok").into_response(),
            Route::Api | Route::Apis if discovery::aggregated_version(&accept).is_some() => {
                let version = discovery::aggregated_version(&accept).unwrap_or("v2");
                let core = matches!(route, Route::Api);
                let mut resp = json_response(200, &discovery::aggregated(core, version));
                let ct = format!(
                    "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
                );
                if let Ok(v) = HeaderValue::from_str(&ct) {
                    resp.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                resp
            }
            Route::Api => json_response(200, &discovery::api_versions(&state.server_address)),
            Route::Apis => json_response(200, &discovery::api_group_list()),
            Route::Group(g) => match discovery::api_group(&g) {
                Some(v) => json_response(200, &v),
                None => error_response(&ApiError::not_found_path(&path)),
            },
            Route::GroupVersion(g, v) => match discovery::resource_list(&g, &v) {
                Some(doc) => json_response(200, &doc),
                None => error_response(&ApiError::not_found_path(&path)),
            },
            Route::OpenApiV3 => json_response(200, &discovery::openapi_v3_root()),
            Route::OpenApiV3Gv(p) => match discovery::openapi_v3_group_version(&p) {
                Some(doc) => json_response(200, &doc),
                None => error_response(&ApiError::not_found_path(&path)),
            },
            Route::OpenApiV2 => {
                if accept.contains("protobuf") && !accept.contains("json") {
                    error_response(&ApiError::new(
                        406,
                        "NotAcceptable",
                        "only application/json is served for /openapi/v2",
                    ))
                } else {
                    json_response(200, &discovery::openapi_v2())
                }
            }
            Route::NotFound => error_response(&ApiError::not_found_path(&path)),
        }
    };
    finish(&state, log, resp)
}

/// JSON (and its patch flavours) and YAML bodies; protobuf/CBOR clients get 415 and fall
/// back to JSON.
fn is_supported_body(content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or("").trim();
    base.contains("json") || base.contains("yaml") || base == "*/*" || base == "text/plain"
}

fn finish(state: &State, mut log: LoggedRequest, resp: Response) -> Response {
    log.status = resp.status().as_u16();
    state.faults().log.push(log);
    resp
}

fn ctx_of(
    state: &Arc<State>,
    rp: ResourcePath,
    query: Query,
    content_type: String,
    user_agent: String,
    accept: String,
) -> Ctx {
    Ctx {
        state: state.clone(),
        rt: rp.rt,
        namespace: rp.namespace,
        name: rp.name,
        subresource: rp.subresource,
        query,
        content_type,
        user_agent,
        accept,
    }
}

/// A followed log: `text` at once, then open (a chunk never comes) until the pod is deleted.
fn follow_log(ctx: &Ctx, text: String) -> Response {
    let key = super::store::Key::new(
        ctx.rt,
        ctx.namespace.as_deref().unwrap_or_default(),
        ctx.name.as_deref().unwrap_or_default(),
    );
    let state = ctx.state.clone();
    let first = futures_util::stream::once(async move {
        Ok::<axum::body::Bytes, std::convert::Infallible>(axum::body::Bytes::from(text))
    });
    let wait = futures_util::stream::once(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let gone = state
                .store
                .get(&key)
                .is_none_or(|p| p.pointer("/metadata/deletionTimestamp").is_some());
            if gone {
                return Ok(axum::body::Bytes::new());
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(axum::body::Body::from_stream(
            futures_util::StreamExt::chain(first, wait),
        ))
        .unwrap_or_else(|e| error_response(&super::errors::ApiError::internal(e.to_string())))
}

fn resource(ctx: Ctx, verb: &str, body: &[u8]) -> Response {
    if ctx.rt.create_only && verb != "create" {
        return error_response(&ApiError::method_not_allowed(format!(
            "{} only supports create",
            ctx.rt.plural
        )));
    }
    let result = match verb {
        "get" if ctx.subresource.as_deref() == Some("log") => {
            return match handlers::pod_log(&ctx) {
                Ok((text, false)) => {
                    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
                }
                // follow=true: the lines, then the stream stays open until the pod is gone.
                Ok((text, true)) => follow_log(&ctx, text),
                Err(e) => error_response(&e),
            };
        }
        "get" => handlers::get(&ctx).map(|v| (200, v)),
        "list" => handlers::list(&ctx).map(|v| (200, v)),
        "watch" => {
            // A watch on one object (`/watch/.../NAME` or `.../NAME?watch=1`) is a
            // collection watch narrowed to that name.
            let query = match &ctx.name {
                Some(name) => {
                    let by_name = format!("metadata.name={name}");
                    let fields = match ctx.query.non_empty("fieldSelector") {
                        Some(f) => format!("{f},{by_name}"),
                        None => by_name,
                    };
                    ctx.query.with("fieldSelector", &fields)
                }
                None => ctx.query.clone(),
            };
            return match watch::serve(ctx.state.clone(), ctx.rt, ctx.namespace.clone(), &query) {
                Ok(resp) => resp,
                Err(e) => error_response(&e),
            };
        }
        "create" if ctx.name.is_none() => handlers::create(&ctx, body),
        "update" => handlers::update(&ctx, body).map(|v| (200, v)),
        "patch" | "apply" => handlers::patch(&ctx, body),
        "delete" => handlers::delete(&ctx, body).map(|v| (200, v)),
        "deletecollection" => handlers::delete_collection(&ctx, body).map(|v| (200, v)),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb})"
        ))),
    };
    match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => error_response(&e),
    }
}
