//! The object store: every object as JSON, a global resourceVersion counter, the event history
//! that watches replay from, and a broadcast of every change (watches and controllers listen).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::errors::{ApiError, ApiResult};
use super::resources::{self, well_known, ResourceType};
use super::util;

/// Where an object lives: group + plural (version-independent), namespace ("" when cluster
/// scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub group: &'static str,
    pub plural: &'static str,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(rt: &ResourceType, namespace: &str, name: &str) -> Key {
        Key {
            group: rt.group,
            plural: rt.plural,
            namespace: if rt.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    pub fn rt(&self) -> Option<&'static ResourceType> {
        resources::RESOURCES
            .iter()
            .find(|r| r.group == self.group && r.plural == self.plural)
    }
}

/// The kind of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub rt: &'static ResourceType,
    pub key: Key,
    pub object: Value,
    /// The object before a modification (selector transitions need it).
    pub old: Option<Value>,
}

/// How a delete treats dependents (objects whose ownerReferences name the deleted one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// Options of a delete request.
#[derive(Clone, Debug)]
pub struct DeleteOpts {
    pub propagation: Propagation,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl Default for DeleteOpts {
    fn default() -> Self {
        DeleteOpts {
            propagation: Propagation::Background,
            precondition_uid: None,
            precondition_rv: None,
            dry_run: false,
        }
    }
}

pub struct Inner {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Events at or below this resourceVersion are no longer in the history.
    compacted: u64,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
}

/// What a watch starts from.
pub struct Subscription {
    pub replay: Vec<Arc<Event>>,
    pub rx: broadcast::Receiver<Arc<Event>>,
    pub rv: u64,
    /// Current objects (for watches that start with the current state).
    pub snapshot: Vec<(&'static ResourceType, Value)>,
}

impl Store {
    pub fn new(history_limit: usize) -> Store {
        let (tx, _) = broadcast::channel(16_384);
        Store {
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                rv: 1,
                history: VecDeque::new(),
                history_limit: history_limit.max(1),
                compacted: 0,
            }),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver of every future change.
    pub fn subscribe_all(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, key: &Key) -> Option<Value> {
        self.lock().objects.get(key).cloned()
    }

    /// Objects of one resource type, in one namespace or all, sorted by namespace/name.
    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
            .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Starts a watch: changes after `since` (replayed from the history), or the current
    /// objects when `since` is `None`. `Err(oldest)` when the history no longer reaches back.
    pub fn subscribe(
        &self,
        rt: &ResourceType,
        since: Option<u64>,
    ) -> Result<Subscription, (u64, u64)> {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        match since {
            Some(since) => {
                if since < inner.compacted {
                    return Err((since, inner.compacted + 1));
                }
                let replay = inner
                    .history
                    .iter()
                    .filter(|e| e.rv > since)
                    .cloned()
                    .collect();
                Ok(Subscription {
                    replay,
                    rx,
                    rv: inner.rv,
                    snapshot: Vec::new(),
                })
            }
            None => {
                let snapshot = inner
                    .objects
                    .iter()
                    .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
                    .filter_map(|(k, v)| Some((k.rt()?, v.clone())))
                    .collect();
                Ok(Subscription {
                    replay: Vec::new(),
                    rx,
                    rv: inner.rv,
                    snapshot,
                })
            }
        }
    }

    /// Drops the watch history (watches from an older resourceVersion get 410 Gone).
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted = inner.rv;
    }

    fn emit(
        &self,
        inner: &mut Inner,
        kind: EventType,
        rt: &'static ResourceType,
        key: Key,
        object: Value,
        old: Option<Value>,
    ) {
        let ev = Arc::new(Event {
            rv: inner.rv,
            kind,
            rt,
            key,
            object,
            old,
        });
        inner.history.push_back(ev.clone());
        while inner.history.len() > inner.history_limit {
            if let Some(dropped) = inner.history.pop_front() {
                inner.compacted = dropped.rv;
            }
        }
        let _ = self.tx.send(ev);
    }

    /// A copy of `obj` with the store's next resourceVersion (the counter advanced).
    fn next_version(inner: &mut Inner, obj: &Value) -> Value {
        inner.rv += 1;
        let mut v = obj.clone();
        if let Some(meta) = util::metadata_mut(&mut v) {
            meta.insert("resourceVersion".into(), json!(inner.rv.to_string()));
        }
        v
    }

    /// Stores `new` at `key` and announces it as Modified from `old`.
    fn store_modified(
        &self,
        inner: &mut Inner,
        rt: &'static ResourceType,
        key: &Key,
        new: &Value,
        old: Value,
    ) {
        inner.objects.insert(key.clone(), new.clone());
        self.emit(
            inner,
            EventType::Modified,
            rt,
            key.clone(),
            new.clone(),
            Some(old),
        );
    }

    /// Removes `key` for good and announces it as Deleted: `gone` is its last state, `old` the
    /// stored one.
    fn remove_for_good(
        &self,
        inner: &mut Inner,
        rt: &'static ResourceType,
        key: &Key,
        gone: &Value,
        old: Value,
    ) {
        inner.objects.remove(key);
        self.emit(
            inner,
            EventType::Deleted,
            rt,
            key.clone(),
            gone.clone(),
            Some(old),
        );
    }

    /// Creates an object: fills uid, creationTimestamp, generation and resourceVersion.
    /// The caller has applied the resource's create strategy already.
    pub fn create(
        &self,
        rt: &'static ResourceType,
        mut obj: Value,
        dry_run: bool,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        let ns = util::str_at(&obj, "/metadata/namespace").to_string();
        let mut name = util::str_at(&obj, "/metadata/name").to_string();
        if name.is_empty() {
            let generate = util::str_at(&obj, "/metadata/generateName").to_string();
            if generate.is_empty() {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
            name = format!("{generate}{}", util::suffix(&generate, 5));
        }
        validate_name(rt, &name)?;
        if rt.namespaced {
            if ns.is_empty() {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            let ns_key = Key::new(well_known::namespaces(), "", &ns);
            match inner.objects.get(&ns_key) {
                None => return Err(ApiError::not_found(well_known::namespaces(), &ns)),
                Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
                    return Err(ApiError::forbidden(format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        rt.qualified()
                    )))
                }
                Some(_) => {}
            }
        }
        let key = Key::new(rt, &ns, &name);
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        let rv = inner.rv + 1;
        if let Some(obj_map) = obj.as_object_mut() {
            obj_map.insert("apiVersion".into(), json!(rt.api_version()));
            obj_map.insert("kind".into(), json!(rt.kind));
        }
        if let Some(meta) = util::metadata_mut(&mut obj) {
            meta.insert("name".into(), json!(name));
            if rt.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.remove("namespace");
            }
            meta.insert("uid".into(), json!(util::new_uid()));
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            meta.insert("creationTimestamp".into(), json!(util::now()));
            meta.insert("generation".into(), json!(1));
            meta.remove("deletionTimestamp");
            meta.remove("deletionGracePeriodSeconds");
        }
        if dry_run {
            return Ok(obj);
        }
        inner.rv = rv;
        inner.objects.insert(key.clone(), obj.clone());
        self.emit(&mut inner, EventType::Added, rt, key, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces an object with `new` (already merged by the caller). Keeps uid,
    /// creationTimestamp and deletionTimestamp; checks a resourceVersion precondition when
    /// `new` carries one; bumps generation when anything but metadata/status changed.
    /// An object being deleted whose finalizers become empty is removed.
    pub fn update(
        &self,
        rt: &'static ResourceType,
        key: &Key,
        new: Value,
        dry_run: bool,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        let Some(old) = inner.objects.get(key).cloned() else {
            return Err(ApiError::not_found(rt, &key.name));
        };
        let want_rv = util::str_at(&new, "/metadata/resourceVersion");
        if !want_rv.is_empty() && want_rv != util::str_at(&old, "/metadata/resourceVersion") {
            return Err(ApiError::stale(rt, &key.name));
        }
        let new_name = util::str_at(&new, "/metadata/name");
        if !new_name.is_empty() && new_name != key.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({new_name}) does not match the name on the URL ({})",
                key.name
            )));
        }
        self.commit(&mut inner, rt, key, old, new, dry_run)
    }

    /// Applies `f` to the stored object under the lock and commits when it returns true
    /// (controllers use this: no lost updates). `None` when the object is gone.
    pub fn mutate(
        &self,
        key: &Key,
        f: impl FnOnce(&mut Value) -> bool,
    ) -> Option<ApiResult<Value>> {
        let rt = key.rt()?;
        let mut inner = self.lock();
        let old = inner.objects.get(key).cloned()?;
        let mut new = old.clone();
        if !f(&mut new) {
            return Some(Ok(old));
        }
        Some(self.commit(&mut inner, rt, key, old, new, false))
    }

    fn commit(
        &self,
        inner: &mut Inner,
        rt: &'static ResourceType,
        key: &Key,
        old: Value,
        mut new: Value,
        dry_run: bool,
    ) -> ApiResult<Value> {
        // Identity and server-owned metadata come from the stored object.
        if let Some(obj_map) = new.as_object_mut() {
            obj_map.insert("apiVersion".into(), json!(rt.api_version()));
            obj_map.insert("kind".into(), json!(rt.kind));
        }
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        if let Some(meta) = util::metadata_mut(&mut new) {
            // deletionTimestamp can't be set or cleared by an update either.
            for field in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                match old_meta.get(field) {
                    Some(v) => {
                        meta.insert(field.into(), v.clone());
                    }
                    None => {
                        meta.remove(field);
                    }
                }
            }
            meta.insert(
                "resourceVersion".into(),
                old_meta
                    .get("resourceVersion")
                    .cloned()
                    .unwrap_or(json!("")),
            );
        }
        if strip_volatile(&new) == strip_volatile(&old) {
            return Ok(old);
        }
        if spec_changed(&old, &new) {
            let generation = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if let Some(meta) = util::metadata_mut(&mut new) {
                meta.insert("generation".into(), json!(generation + 1));
            }
        }
        let rv = inner.rv + 1;
        if let Some(meta) = util::metadata_mut(&mut new) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        if dry_run {
            return Ok(new);
        }
        inner.rv = rv;
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        if deleting && finalizers(&new).is_empty() && !is_namespace_holding(rt, &new) {
            self.remove_for_good(inner, rt, key, &new, old);
            let uid = util::str_at(&new, "/metadata/uid").to_string();
            self.collect_dependents(inner, &uid, Propagation::Background);
            return Ok(new);
        }
        self.store_modified(inner, rt, key, &new, old);
        Ok(new)
    }

    /// Deletes an object: removed at once without finalizers, otherwise marked with
    /// deletionTimestamp and kept until its finalizers are gone. Returns the object.
    pub fn delete(
        &self,
        rt: &'static ResourceType,
        key: &Key,
        opts: &DeleteOpts,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        self.delete_locked(&mut inner, rt, key, opts)
    }

    fn delete_locked(
        &self,
        inner: &mut Inner,
        rt: &'static ResourceType,
        key: &Key,
        opts: &DeleteOpts,
    ) -> ApiResult<Value> {
        let Some(old) = inner.objects.get(key).cloned() else {
            return Err(ApiError::not_found(rt, &key.name));
        };
        if let Some(uid) = &opts.precondition_uid {
            if uid != util::str_at(&old, "/metadata/uid") {
                return Err(ApiError::conflict(
                    rt,
                    &key.name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        util::str_at(&old, "/metadata/uid")
                    ),
                ));
            }
        }
        if let Some(want) = &opts.precondition_rv {
            if want != util::str_at(&old, "/metadata/resourceVersion") {
                return Err(ApiError::stale(rt, &key.name));
            }
        }
        if opts.dry_run {
            return Ok(old);
        }
        let holds = !finalizers(&old).is_empty() || is_namespace_holding(rt, &old);
        if holds {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(old);
            }
            let mut new = Self::next_version(inner, &old);
            if let Some(meta) = util::metadata_mut(&mut new) {
                meta.insert("deletionTimestamp".into(), json!(util::now()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            if rt.plural == "namespaces" && rt.group.is_empty() {
                if let Some(m) = new.as_object_mut() {
                    m.insert("status".into(), json!({"phase": "Terminating"}));
                }
            }
            if opts.propagation == Propagation::Orphan {
                self.orphan_dependents(inner, util::str_at(&old, "/metadata/uid"));
            }
            self.store_modified(inner, rt, key, &new, old);
            return Ok(new);
        }
        let gone = Self::next_version(inner, &old);
        self.remove_for_good(inner, rt, key, &gone, old);
        let uid = util::str_at(&gone, "/metadata/uid").to_string();
        self.collect_dependents(inner, &uid, opts.propagation);
        Ok(gone)
    }

    /// Garbage collection: deletes (or orphans) objects owned by `uid`.
    fn collect_dependents(&self, inner: &mut Inner, uid: &str, propagation: Propagation) {
        if uid.is_empty() {
            return;
        }
        if propagation == Propagation::Orphan {
            self.orphan_dependents(inner, uid);
            return;
        }
        for key in dependents(inner, uid) {
            if let Some(rt) = key.rt() {
                let _ = self.delete_locked(inner, rt, &key, &DeleteOpts::default());
            }
        }
    }

    fn orphan_dependents(&self, inner: &mut Inner, uid: &str) {
        for key in dependents(inner, uid) {
            let (Some(rt), Some(old)) = (key.rt(), inner.objects.get(&key).cloned()) else {
                continue;
            };
            let mut new = old.clone();
            if let Some(refs) = new
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            }
            let _ = self.commit(inner, rt, &key, old, new, false);
        }
    }

    /// Namespace controller step: deletes what is left in a terminating namespace and removes
    /// the namespace once it is empty.
    pub fn finalize_namespace(&self, name: &str) {
        let mut inner = self.lock();
        let ns_rt = well_known::namespaces();
        let ns_key = Key::new(ns_rt, "", name);
        match inner.objects.get(&ns_key) {
            Some(ns) if ns.pointer("/metadata/deletionTimestamp").is_some() => {}
            _ => return,
        }
        let contents: Vec<Key> = inner
            .objects
            .keys()
            .filter(|k| k.namespace == name)
            .cloned()
            .collect();
        if contents.is_empty() {
            let Some(old) = inner.objects.get(&ns_key).cloned() else {
                return;
            };
            if !finalizers(&old).is_empty() {
                return;
            }
            let gone = Self::next_version(&mut inner, &old);
            self.remove_for_good(&mut inner, ns_rt, &ns_key, &gone, old);
            return;
        }
        for key in contents {
            let deleting = inner
                .objects
                .get(&key)
                .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some());
            if deleting {
                continue;
            }
            if let Some(rt) = key.rt() {
                let _ = self.delete_locked(&mut inner, rt, &key, &DeleteOpts::default());
            }
        }
    }

    /// Inserts or replaces an object as is (test seeding): metadata is completed, no
    /// strategy runs, an event is sent.
    pub fn put(&self, rt: &'static ResourceType, mut obj: Value) -> ApiResult<Value> {
        let mut inner = self.lock();
        let ns = util::str_at(&obj, "/metadata/namespace").to_string();
        let name = util::str_at(&obj, "/metadata/name").to_string();
        if name.is_empty() {
            return Err(ApiError::bad_request("put: metadata.name is required"));
        }
        let key = Key::new(rt, &ns, &name);
        let old = inner.objects.get(&key).cloned();
        inner.rv += 1;
        let rv = inner.rv;
        if let Some(m) = obj.as_object_mut() {
            m.insert("apiVersion".into(), json!(rt.api_version()));
            m.insert("kind".into(), json!(rt.kind));
        }
        if let Some(meta) = util::metadata_mut(&mut obj) {
            let old_meta = old.as_ref().and_then(|o| o.get("metadata"));
            let keep = |f: &str, default: Value| {
                old_meta.and_then(|m| m.get(f)).cloned().unwrap_or(default)
            };
            if !meta.contains_key("uid") {
                meta.insert("uid".into(), keep("uid", json!(util::new_uid())));
            }
            if !meta.contains_key("creationTimestamp") {
                meta.insert(
                    "creationTimestamp".into(),
                    keep("creationTimestamp", json!(util::now())),
                );
            }
            if !meta.contains_key("generation") {
                meta.insert("generation".into(), keep("generation", json!(1)));
            }
            if !rt.namespaced {
                meta.remove("namespace");
            }
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        inner.objects.insert(key.clone(), obj.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(&mut inner, kind, rt, key, obj.clone(), old);
        Ok(obj)
    }
}

/// The keys of the objects that `uid` owns (an ownerReference to it).
fn dependents(inner: &Inner, uid: &str) -> Vec<Key> {
    inner
        .objects
        .iter()
        .filter(|(_, v)| owned_by(v, uid))
        .map(|(k, _)| k.clone())
        .collect()
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A namespace stays until the namespace controller has emptied it.
fn is_namespace_holding(rt: &ResourceType, obj: &Value) -> bool {
    rt.group.is_empty()
        && rt.plural == "namespaces"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
        })
}

fn strip_volatile(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    o
}

/// Anything but metadata and status changed (what bumps `generation`).
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}

/// DNS-1123 checks on names, as the real API validates them (422 Invalid).
fn validate_name(rt: &ResourceType, name: &str) -> ApiResult<()> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(ok_char)
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if valid || rt.create_only {
        Ok(())
    } else {
        Err(ApiError::invalid(
            rt,
            name,
            "metadata.name",
            &format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        ))
    }
}
