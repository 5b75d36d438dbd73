//! The verbs on resources: get, list, create, update, patch (merge/JSON/strategic/apply),
//! delete, deletecollection, and the status and scale subresources.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::apply;
use super::errors::{success_status, ApiError, ApiResult};
use super::patch::{self, PatchKind};
use super::resources::ResourceType;
use super::selectors::{LabelSelector, Selectors};
use super::store::{DeleteOpts, Key, Propagation};
use super::strategy;
use super::util::{self, Query};
use super::State;

/// One request on a resource path.
pub struct Ctx {
    pub state: Arc<State>,
    pub rt: &'static ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub query: Query,
    pub content_type: String,
    pub user_agent: String,
    pub accept: String,
}

impl Ctx {
    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    fn key(&self) -> ApiResult<Key> {
        let name = self
            .name
            .as_deref()
            .ok_or_else(|| ApiError::method_not_allowed("a name is required"))?;
        Ok(Key::new(self.rt, self.ns(), name))
    }

    fn dry_run(&self) -> bool {
        self.query.non_empty("dryRun").is_some()
    }

    /// `fieldManager`, or the user agent's program name (as the real server defaults it).
    fn manager(&self) -> String {
        match self.query.non_empty("fieldManager") {
            Some(m) => m.to_string(),
            None => {
                let ua = self.user_agent.split('/').next().unwrap_or("").trim();
                if ua.is_empty() {
                    "unknown".into()
                } else {
                    ua.chars().take(128).collect()
                }
            }
        }
    }

    fn sub(&self) -> &str {
        self.subresource.as_deref().unwrap_or("")
    }
}

fn next_cluster_ip(state: &State) -> String {
    let n = state.ip_counter.fetch_add(1, Ordering::Relaxed);
    format!("10.96.{}.{}", (n / 250) % 250, n % 250 + 1)
}

/// GET on an object or a subresource.
pub fn get(ctx: &Ctx) -> ApiResult<Value> {
    let key = ctx.key()?;
    let obj = ctx
        .state
        .store
        .get(&key)
        .ok_or_else(|| ApiError::not_found(ctx.rt, &key.name))?;
    match ctx.sub() {
        "" | "status" => Ok(obj),
        "scale" if ctx.rt.has("scale") => Ok(scale_view(&obj)),
        other => Err(ApiError::not_found_path(other)),
    }
}

/// The list kind's name (`DeploymentList`).
fn list_kind(rt: &ResourceType) -> String {
    format!("{}List", rt.kind)
}

/// GET on a collection (not a watch): selectors, `limit` and `continue`.
pub fn list(ctx: &Ctx) -> ApiResult<Value> {
    let selectors = Selectors::from_query(&ctx.query)?;
    let (items, rv) = ctx.state.store.list(ctx.rt, ctx.namespace.as_deref());
    let mut items: Vec<Value> = items.into_iter().filter(|o| selectors.matches(o)).collect();
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(token) = ctx.query.non_empty("continue") {
        let after = decode_continue(token)
            .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
        items.retain(|o| continue_key(o) > after);
    }
    if let Some(limit) = ctx
        .query
        .non_empty("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
    {
        if items.len() > limit {
            let rest = items.len() - limit;
            items.truncate(limit);
            if let Some(last) = items.last() {
                meta.insert(
                    "continue".into(),
                    json!(encode_continue(&continue_key(last))),
                );
                meta.insert("remainingItemCount".into(), json!(rest));
            }
        }
    }
    Ok(json!({
        "kind": list_kind(ctx.rt),
        "apiVersion": ctx.rt.api_version(),
        "metadata": meta,
        "items": items,
    }))
}

fn continue_key(obj: &Value) -> String {
    format!(
        "{}/{}",
        util::str_at(obj, "/metadata/namespace"),
        util::str_at(obj, "/metadata/name")
    )
}

fn encode_continue(s: &str) -> String {
    util::hex(s.as_bytes())
}

fn decode_continue(token: &str) -> Option<String> {
    if token.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Checks that the body names the same namespace as the URL (filling it in when absent).
fn reconcile_namespace(ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
    if !ctx.rt.namespaced {
        return Ok(());
    }
    let body_ns = util::str_at(obj, "/metadata/namespace").to_string();
    let url_ns = ctx.ns().to_string();
    if url_ns.is_empty() {
        return Err(ApiError::not_found_path(&ctx.rt.collection_path(None)));
    }
    if !body_ns.is_empty() && body_ns != url_ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let Some(meta) = util::metadata_mut(obj) {
        meta.insert("namespace".into(), json!(url_ns));
    }
    Ok(())
}

fn check_kind(ctx: &Ctx, obj: &Value) -> ApiResult<()> {
    let kind = util::str_at(obj, "/kind");
    let api_version = util::str_at(obj, "/apiVersion");
    if (!kind.is_empty() && kind != ctx.rt.kind)
        || (!api_version.is_empty() && api_version != ctx.rt.api_version())
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({}) or the kind ({kind}) does not match {}",
            ctx.rt.api_version(),
            ctx.rt.kind
        )));
    }
    Ok(())
}

fn parse_body(ctx: &Ctx, body: &[u8]) -> ApiResult<Value> {
    let ct = ctx.content_type.split(';').next().unwrap_or("").trim();
    let v = if ct.contains("yaml") {
        patch::parse_yaml(body)?
    } else {
        patch::parse_json(body)?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request("the body must be an object"));
    }
    Ok(v)
}

/// POST on a collection.
pub fn create(ctx: &Ctx, body: &[u8]) -> ApiResult<(u16, Value)> {
    let mut obj = parse_body(ctx, body)?;
    check_kind(ctx, &obj)?;
    if ctx.rt.create_only {
        // SelfSubjectAccessReview: everything is allowed.
        if let Some(m) = obj.as_object_mut() {
            m.insert("apiVersion".into(), json!(ctx.rt.api_version()));
            m.insert("kind".into(), json!(ctx.rt.kind));
            m.insert(
                "status".into(),
                json!({"allowed": true, "reason": "test API server allows everything"}),
            );
            m.entry("metadata").or_insert_with(|| json!({}));
        }
        return Ok((201, obj));
    }
    reconcile_namespace(ctx, &mut obj)?;
    let state = ctx.state.clone();
    strategy::prepare_create(ctx.rt, &mut obj, || next_cluster_ip(&state))?;
    apply::record_update(ctx.rt, None, &mut obj, &ctx.manager(), "");
    let created = ctx.state.store.create(ctx.rt, obj, ctx.dry_run())?;
    Ok((201, created))
}

/// PUT on an object or a subresource.
pub fn update(ctx: &Ctx, body: &[u8]) -> ApiResult<Value> {
    let key = ctx.key()?;
    let body = parse_body(ctx, body)?;
    let old = ctx
        .state
        .store
        .get(&key)
        .ok_or_else(|| ApiError::not_found(ctx.rt, &key.name))?;
    let precondition = util::str_at(&body, "/metadata/resourceVersion").to_string();
    let new = match ctx.sub() {
        "" => {
            check_kind(ctx, &body)?;
            let mut new = body;
            reconcile_namespace(ctx, &mut new)?;
            strategy::prepare_update(ctx.rt, &old, &mut new)?;
            new
        }
        "status" => with_status_of(&old, &body, &precondition),
        "scale" if ctx.rt.has("scale") => from_scale(ctx, &old, &body, &precondition)?,
        other => return Err(ApiError::not_found_path(other)),
    };
    write(ctx, &key, &old, new)
}

/// `old` with `source`'s status (and `source`'s resourceVersion as the precondition).
fn with_status_of(old: &Value, source: &Value, precondition: &str) -> Value {
    let mut new = old.clone();
    if let Some(m) = new.as_object_mut() {
        match source.get("status") {
            Some(s) => m.insert("status".into(), s.clone()),
            None => m.remove("status"),
        };
    }
    if let Some(meta) = util::metadata_mut(&mut new) {
        meta.insert("resourceVersion".into(), json!(precondition));
    }
    new
}

fn write(ctx: &Ctx, key: &Key, old: &Value, mut new: Value) -> ApiResult<Value> {
    let sub = match ctx.sub() {
        "scale" => "scale",
        "status" => "status",
        _ => "",
    };
    let track_sub = if sub == "scale" { "" } else { sub };
    apply::record_update(ctx.rt, Some(old), &mut new, &ctx.manager(), track_sub);
    if sub == "scale" {
        // record the scale writer under the scale subresource, as the real server does
        relabel_last_update(&mut new, &ctx.manager());
    }
    let out = ctx.state.store.update(ctx.rt, key, new, ctx.dry_run())?;
    match sub {
        "scale" => Ok(scale_view(&out)),
        _ => Ok(out),
    }
}

fn relabel_last_update(obj: &mut Value, manager: &str) {
    if let Some(list) = obj
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for e in list.iter_mut() {
            if e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some("Update")
            {
                if let Some(m) = e.as_object_mut() {
                    m.insert("subresource".into(), json!("scale"));
                }
            }
        }
    }
}

/// PATCH on an object or a subresource.
pub fn patch(ctx: &Ctx, body: &[u8]) -> ApiResult<(u16, Value)> {
    let kind = PatchKind::from_content_type(&ctx.content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(&ctx.content_type))?;
    let key = ctx.key()?;
    let live = ctx.state.store.get(&key);
    if kind == PatchKind::Apply {
        return apply_patch(ctx, &key, live, body);
    }
    // Like the real API server (GuaranteedUpdate), a patch without its own resourceVersion
    // precondition is re-applied to the fresh object when a concurrent write got in between.
    let has_precondition = serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|b| b.pointer("/metadata/resourceVersion").is_some());
    let mut live = live;
    let mut attempt = 0;
    loop {
        let result = patch_once(ctx, &key, live.take(), kind, body);
        match result {
            Err(e) if e.code == 409 && !has_precondition && attempt < 5 => {
                attempt += 1;
                live = ctx.state.store.get(&key);
            }
            other => return other,
        }
    }
}

fn patch_once(
    ctx: &Ctx,
    key: &Key,
    live: Option<Value>,
    kind: PatchKind,
    body: &[u8],
) -> ApiResult<(u16, Value)> {
    let old = live.ok_or_else(|| ApiError::not_found(ctx.rt, &key.name))?;
    let new = match ctx.sub() {
        "" => {
            let mut new = patch::apply_patch(kind, &old, body)?;
            reconcile_namespace(ctx, &mut new)?;
            strategy::prepare_update(ctx.rt, &old, &mut new)?;
            new
        }
        "status" => {
            let patched = patch::apply_patch(kind, &old, body)?;
            let rv = util::str_at(&patched, "/metadata/resourceVersion").to_string();
            with_status_of(&old, &patched, &rv)
        }
        "scale" if ctx.rt.has("scale") => {
            let view = scale_view(&old);
            let patched = patch::apply_patch(kind, &view, body)?;
            let rv = util::str_at(&patched, "/metadata/resourceVersion").to_string();
            from_scale(ctx, &old, &patched, &rv)?
        }
        other => return Err(ApiError::not_found_path(other)),
    };
    Ok((200, write(ctx, key, &old, new)?))
}

fn apply_patch(ctx: &Ctx, key: &Key, live: Option<Value>, body: &[u8]) -> ApiResult<(u16, Value)> {
    let manager = ctx.query.non_empty("fieldManager").ok_or_else(|| {
        ApiError::bad_request("PATCH /apply: fieldManager is required for apply requests")
    })?;
    let mut applied = patch::parse_yaml(body)?;
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    }
    check_kind(ctx, &applied)?;
    if util::str_at(&applied, "/apiVersion").is_empty()
        || util::str_at(&applied, "/kind").is_empty()
    {
        return Err(ApiError::bad_request(
            "apiVersion and kind must be set in an applied configuration",
        ));
    }
    let body_name = util::str_at(&applied, "/metadata/name");
    if body_name != key.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            key.name
        )));
    }
    reconcile_namespace(ctx, &mut applied)?;
    let force = ctx.query.flag("force");
    let sub = match ctx.sub() {
        "" => "",
        "status" => "status",
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "apply is not supported on the {other} subresource"
            )))
        }
    };
    match live {
        None if sub.is_empty() => {
            let result = apply::apply(ctx.rt, None, &applied, manager, force, sub)?;
            let mut obj = result.object;
            let entries = apply::read_entries(&obj);
            let state = ctx.state.clone();
            strategy::prepare_create(ctx.rt, &mut obj, || next_cluster_ip(&state))?;
            apply::write_entries(&mut obj, &entries);
            if let Some(m) = obj.as_object_mut() {
                m.insert("apiVersion".into(), json!(ctx.rt.api_version()));
                m.insert("kind".into(), json!(ctx.rt.kind));
            }
            let created = ctx.state.store.create(ctx.rt, obj, ctx.dry_run())?;
            Ok((201, created))
        }
        None => Err(ApiError::not_found(ctx.rt, &key.name)),
        Some(live) => {
            let result = apply::apply(ctx.rt, Some(&live), &applied, manager, force, sub)?;
            let mut new = result.object;
            if sub.is_empty() {
                strategy::prepare_update(ctx.rt, &live, &mut new)?;
            } else {
                let entries = apply::read_entries(&new);
                new = with_status_of(
                    &live,
                    &new,
                    util::str_at(&live, "/metadata/resourceVersion"),
                );
                apply::write_entries(&mut new, &entries);
            }
            let out = ctx.state.store.update(ctx.rt, key, new, ctx.dry_run())?;
            Ok((200, out))
        }
    }
}

/// The autoscaling/v1 Scale of a Deployment.
pub fn scale_view(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .map(LabelSelector::from_object)
        .map(|s| s.to_string_form())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": util::str_at(obj, "/metadata/name"),
            "namespace": util::str_at(obj, "/metadata/namespace"),
            "uid": util::str_at(obj, "/metadata/uid"),
            "resourceVersion": util::str_at(obj, "/metadata/resourceVersion"),
            "creationTimestamp": util::str_at(obj, "/metadata/creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        }
    })
}

fn from_scale(ctx: &Ctx, old: &Value, scale: &Value, precondition: &str) -> ApiResult<Value> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            ctx.rt,
            ctx.name.as_deref().unwrap_or(""),
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0",
        ));
    }
    let mut new = old.clone();
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    if let Some(meta) = util::metadata_mut(&mut new) {
        meta.insert("resourceVersion".into(), json!(precondition));
    }
    Ok(new)
}

fn delete_opts(ctx: &Ctx, body: &[u8]) -> ApiResult<DeleteOpts> {
    let mut opts = DeleteOpts {
        dry_run: ctx.dry_run(),
        ..DeleteOpts::default()
    };
    let body_opts = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        patch::parse_json(body)?
    };
    let policy = ctx
        .query
        .non_empty("propagationPolicy")
        .map(str::to_string)
        .or_else(|| {
            body_opts
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    opts.propagation = match policy.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid propagationPolicy {other:?}: must be Orphan, Background or Foreground"
            )))
        }
    };
    if body_opts.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
        opts.propagation = Propagation::Orphan;
    }
    if body_opts
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        opts.dry_run = true;
    }
    opts.precondition_uid = body_opts
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    opts.precondition_rv = body_opts
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(opts)
}

/// DELETE on an object.
pub fn delete(ctx: &Ctx, body: &[u8]) -> ApiResult<Value> {
    if !ctx.sub().is_empty() {
        return Err(ApiError::method_not_allowed(
            "delete is not supported on subresources",
        ));
    }
    let key = ctx.key()?;
    let opts = delete_opts(ctx, body)?;
    let out = ctx.state.store.delete(ctx.rt, &key, &opts)?;
    // Built-in registries answer an immediate delete with a Status; custom resources (and
    // objects kept by finalizers) with the object.
    let builtin = matches!(
        ctx.rt.group,
        "" | "apps" | "storage.k8s.io" | "apiextensions.k8s.io"
    );
    let kept = out.pointer("/metadata/deletionTimestamp").is_some();
    if builtin && !kept && ctx.rt.plural != "pods" && !opts.dry_run {
        let mut status = success_status();
        if let Some(m) = status.as_object_mut() {
            m.insert(
                "details".into(),
                json!({"name": key.name, "group": ctx.rt.group, "kind": ctx.rt.plural,
                       "uid": util::str_at(&out, "/metadata/uid")}),
            );
        }
        return Ok(status);
    }
    Ok(out)
}

/// DELETE on a collection.
pub fn delete_collection(ctx: &Ctx, body: &[u8]) -> ApiResult<Value> {
    let selectors = Selectors::from_query(&ctx.query)?;
    let opts = delete_opts(ctx, body)?;
    let (items, _) = ctx.state.store.list(ctx.rt, ctx.namespace.as_deref());
    let mut deleted = Vec::new();
    for obj in items.into_iter().filter(|o| selectors.matches(o)) {
        let key = Key::new(
            ctx.rt,
            util::str_at(&obj, "/metadata/namespace"),
            util::str_at(&obj, "/metadata/name"),
        );
        if let Ok(d) = ctx.state.store.delete(ctx.rt, &key, &opts) {
            deleted.push(d);
        }
    }
    Ok(json!({
        "kind": list_kind(ctx.rt),
        "apiVersion": ctx.rt.api_version(),
        "metadata": {"resourceVersion": ctx.state.store.current_rv().to_string()},
        "items": deleted,
    }))
}

/// GET pods/NAME/log: the lines a test registered ([`super::TestApiServer::pod_log`]), else a
/// fixed line per container (the test server has no container output). `tailLines` keeps the
/// last lines; `previous=true` without a registered previous log is the kubelet's 400.
pub fn pod_log(ctx: &Ctx) -> ApiResult<(String, bool)> {
    let pod = get(&Ctx {
        state: ctx.state.clone(),
        rt: ctx.rt,
        namespace: ctx.namespace.clone(),
        name: ctx.name.clone(),
        subresource: None,
        query: Query::default(),
        content_type: String::new(),
        user_agent: String::new(),
        accept: String::new(),
    })?;
    let container = match ctx.query.non_empty("container") {
        Some(c) => c.to_string(),
        None => util::str_at(&pod, "/spec/containers/0/name").to_string(),
    };
    let name = util::str_at(&pod, "/metadata/name").to_string();
    let known = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| util::str_at(c, "/name") == container));
    if !known {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let previous = ctx.query.flag("previous");
    let ns = util::str_at(&pod, "/metadata/namespace").to_string();
    let rule = ctx
        .state
        .faults()
        .pod_logs
        .iter()
        .rev()
        .find(|r| r.namespace == ns && name.starts_with(&r.pod_prefix) && r.previous == previous)
        .cloned();
    let follow = ctx.query.flag("follow");
    let Some(rule) = rule else {
        if previous {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        return Ok((
            format!("test-apiserver: no output recorded for container {container} of pod {name}\n"),
            follow,
        ));
    };
    let mut lines = rule.lines;
    if let Some(n) = ctx
        .query
        .get("tailLines")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    Ok((text, follow && !previous))
}
