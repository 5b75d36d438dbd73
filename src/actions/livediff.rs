//! `platform diff --cluster`: the rendered tree against the live objects, i.e. what Argo CD would
//! change on its next sync (as `argocd app diff`, `flux diff` and `kubectl diff` show it).
//!
//! Each rendered object that exists is server-side applied in dry-run (`dryRun=All`, forced, as
//! the field manager that applies it: Argo CD's for an app's resources, platform's for what `up`
//! applies itself) and the server's answer is compared with the live object, both without the
//! fields the server manages (managedFields, resourceVersion, generation, uid, creationTimestamp,
//! status, last-applied and tracking annotations) and without the fields the owning Application's
//! `ignoreDifferences` names (raw vLLM's `/spec/replicas`, owned by pause/resume). An object that
//! does not exist would be created; an object Argo CD tracks for the app (its `status.resources`)
//! that is no longer rendered would be pruned.

use std::collections::{BTreeMap, HashMap};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde::Serialize;
use serde_json::Value;

use crate::cluster::{kinds, Client, ClusterError};
use crate::consts;
use crate::plan::Plan;
use crate::render::check::{self, RenderedObject};
use crate::render::RenderedTree;
use crate::report::Reporter;

/// The field manager Argo CD applies with (server-side apply), so a dry run as it shows the fields
/// it would also remove.
pub const ARGOCD_MANAGER: &str = "argocd-controller";
/// Argo CD's resource tracking annotation (`app:group/Kind:namespace/name`).
pub const TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";
/// Annotations the server or a client writes on its own, never rendered.
const DEFAULTED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    TRACKING_ANNOTATION,
    "deployment.kubernetes.io/revision",
];
/// Metadata the API server manages.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

/// Which part of the tree to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything rendered: the AppProject and root apps (`up` applies them), every Application and
    /// the resources of every app whose source is in the repository.
    All,
    /// The resources of these Applications only.
    Apps(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub scope: Scope,
}

/// What a sync would do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Changed,
    Created,
    Pruned,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Changed => "would change",
            Change::Created => "would be created",
            Change::Pruned => "would be pruned",
        }
    }
}

/// One object that differs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDiff {
    /// The Application that syncs it (none: applied by `platform up` itself).
    pub app: Option<String>,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub change: Change,
    /// Why, when it is not a plain field change (its API is not served yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The unified diff, live (`---`) to rendered (`+++`).
    pub diff: String,
}

impl ObjectDiff {
    /// `Kind namespace/name` or `Kind name`.
    pub fn shown(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// The comparison.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Objects compared (rendered, plus the tracked ones found no longer rendered).
    pub compared: usize,
    pub in_sync: usize,
    pub changed: usize,
    pub created: usize,
    pub pruned: usize,
    pub objects: Vec<ObjectDiff>,
    /// Apps whose resources are not compared, and why (a chart, a kustomization).
    pub not_compared: Vec<String>,
}

impl Outcome {
    pub fn identical(&self) -> bool {
        self.objects.is_empty()
    }
}

/// An Application of the rendered tree, as far as the comparison needs it.
#[derive(Debug, Clone)]
struct App {
    name: String,
    /// `clusters/<env>/…/` (with a trailing slash) when its source is a directory of the tree.
    dir: Option<String>,
    /// A kustomization (Argo CD builds it; its files are not objects as written).
    kustomize: bool,
    dest_namespace: String,
    ignore: Vec<Value>,
}

fn s<'v>(v: &'v Value, p: &str) -> &'v str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn apps_of(objs: &[RenderedObject], tree: &RenderedTree) -> Vec<App> {
    objs.iter()
        .filter(|o| o.kind == kinds::APPLICATION.kind)
        .map(|o| {
            let v = &o.value;
            let path = v
                .pointer("/spec/source/path")
                .and_then(Value::as_str)
                .or_else(|| {
                    v.pointer("/spec/sources")
                        .and_then(Value::as_array)
                        .and_then(|a| a.iter().find_map(|s| s.get("path")?.as_str()))
                })
                .filter(|p| !p.is_empty())
                .map(|p| format!("{}/", p.trim_end_matches('/')));
            let dir = path.filter(|d| tree.files.keys().any(|f| f.starts_with(d.as_str())));
            let kustomize = dir.as_ref().is_some_and(|d| {
                tree.files
                    .contains_key(&format!("{d}{}", consts::KUSTOMIZATION_FILE))
            });
            App {
                name: o.name.clone(),
                dir,
                kustomize,
                dest_namespace: s(v, "/spec/destination/namespace").to_string(),
                ignore: v
                    .pointer("/spec/ignoreDifferences")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The app whose directory holds `path` (the deepest one).
fn owner<'a>(apps: &'a [App], path: &str) -> Option<&'a App> {
    apps.iter()
        .filter(|a| a.dir.as_deref().is_some_and(|d| path.starts_with(d)))
        .max_by_key(|a| a.dir.as_deref().map_or(0, str::len))
}

/// One object to compare, where it goes and who applies it.
struct Wanted<'a> {
    obj: &'a RenderedObject,
    app: Option<&'a App>,
}

/// Compare the rendered tree with the cluster.
pub async fn run(
    client: &Client,
    plan: &Plan,
    tree: &RenderedTree,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Outcome, ClusterError> {
    // groups.generated.yaml is a list for ApplicationSets, not an object.
    let files: BTreeMap<String, String> = tree
        .files
        .iter()
        .filter(|(p, _)| !p.ends_with(&format!("/{}", consts::GROUPS_FILE)))
        .filter(|(p, _)| !p.ends_with(&format!("/{}", consts::KUSTOMIZATION_FILE)))
        .map(|(p, t)| (p.clone(), t.clone()))
        .collect();
    let objs_tree = RenderedTree {
        files,
        owned: Vec::new(),
    };
    let (objs, problems) = check::objects(&objs_tree);
    if let Some(p) = problems.first() {
        return Err(ClusterError::Protocol {
            what: "reading the rendered tree".into(),
            reason: p.to_string(),
        });
    }
    let apps = apps_of(&objs, tree);
    let mut not_compared = Vec::new();
    let in_scope = |a: &App| match &opts.scope {
        Scope::All => true,
        Scope::Apps(names) => names.contains(&a.name),
    };
    for a in apps.iter().filter(|a| in_scope(a)) {
        if a.dir.is_none() {
            not_compared.push(format!(
                "app {}: its source is not a directory of this tree (a chart or another repository): `argocd app diff {}` compares it",
                a.name, a.name
            ));
        } else if a.kustomize {
            not_compared.push(format!(
                "app {}: a kustomization Argo CD builds (`argocd app diff {}` compares it)",
                a.name, a.name
            ));
        }
    }
    let mut wanted = Vec::new();
    for o in &objs {
        let app = owner(&apps, &o.path);
        let take = match (&opts.scope, app) {
            (_, Some(a)) if a.kustomize => false,
            (Scope::All, _) => true,
            (Scope::Apps(names), Some(a)) => names.contains(&a.name),
            (Scope::Apps(_), None) => false,
        };
        if take {
            wanted.push(Wanted { obj: o, app });
        }
    }
    reporter.note(&format!(
        "comparing {} rendered object(s) with the cluster (server-side dry run)",
        wanted.len()
    ));
    let mut resolver = Resolver::default();
    let mut out = Outcome {
        compared: 0,
        in_sync: 0,
        changed: 0,
        created: 0,
        pruned: 0,
        objects: Vec::new(),
        not_compared,
    };
    let mut rendered_keys: HashMap<String, Vec<(String, String, String)>> = HashMap::new();
    for w in &wanted {
        out.compared += 1;
        let d = compare(client, &mut resolver, w, &plan.argocd_namespace).await?;
        if let Some(app) = w.app {
            let ns = namespace_of(w.obj, Some(app)).unwrap_or_default();
            rendered_keys.entry(app.name.clone()).or_default().push((
                w.obj.kind.clone(),
                ns,
                w.obj.name.clone(),
            ));
        }
        match d {
            Compared::Differs(d) => out.objects.push(d),
            Compared::Same => out.in_sync += 1,
            Compared::NotPermitted(why) => {
                out.compared -= 1;
                out.not_compared.push(why);
            }
        }
    }
    // Tracked by Argo CD for an app but no longer rendered: pruned on the next sync.
    for a in apps
        .iter()
        .filter(|a| in_scope(a) && a.dir.is_some() && !a.kustomize)
    {
        let keys = rendered_keys.remove(&a.name).unwrap_or_default();
        for d in pruned(client, &mut resolver, a, &keys, &plan.argocd_namespace).await? {
            out.compared += 1;
            out.objects.push(d);
        }
    }
    for o in &out.objects {
        match o.change {
            Change::Changed => out.changed += 1,
            Change::Created => out.created += 1,
            Change::Pruned => out.pruned += 1,
        }
    }
    Ok(out)
}

/// The namespace an object lands in: its own, else its app's destination; None when cluster-scoped
/// (decided by the caller from discovery).
fn namespace_of(o: &RenderedObject, app: Option<&App>) -> Option<String> {
    let own = s(&o.value, "/metadata/namespace");
    if !own.is_empty() {
        return Some(own.to_string());
    }
    app.map(|a| a.dest_namespace.clone())
        .filter(|n| !n.is_empty())
}

/// API resources found by discovery (one request per kind), None when the cluster does not serve it.
#[derive(Default)]
struct Resolver {
    known: HashMap<(String, String), Option<(ApiResource, bool)>>,
}

impl Resolver {
    async fn resolve(
        &mut self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<(ApiResource, bool)>, ClusterError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(v) = self.known.get(&key) {
            return Ok(v.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = match kinds::Kind::lookup(api_version, kind) {
            Some(k) => Some((k.resource(), k.namespaced)),
            None => {
                let kube = client.kube();
                match client
                    .retry(|| kube::discovery::pinned_kind(&kube, &gvk))
                    .await
                {
                    Ok((ar, caps)) => Some((ar, caps.scope == kube::discovery::Scope::Namespaced)),
                    Err(kube::Error::Api(s)) if s.code == 404 => None,
                    Err(kube::Error::Discovery(_)) => None,
                    Err(e) => {
                        return Err(ClusterError::api(
                            format!("discovering the API of {api_version} {kind}"),
                            e,
                        ))
                    }
                }
            }
        };
        self.known.insert(key, found.clone());
        Ok(found)
    }
}

fn api(client: &Client, ar: &ApiResource, namespaced: bool, ns: &str) -> Api<DynamicObject> {
    if namespaced {
        Api::namespaced_with(client.kube(), ns, ar)
    } else {
        Api::all_with(client.kube(), ar)
    }
}

/// Compare one rendered object with its live copy: None when in sync.
async fn compare(
    client: &Client,
    resolver: &mut Resolver,
    w: &Wanted<'_>,
    argocd_namespace: &str,
) -> Result<Compared, ClusterError> {
    let o = w.obj;
    let mut d = ObjectDiff {
        app: w.app.map(|a| a.name.clone()),
        api_version: o.api_version.clone(),
        kind: o.kind.clone(),
        namespace: None,
        name: o.name.clone(),
        change: Change::Created,
        note: None,
        diff: String::new(),
    };
    let ignore = w.app.map(|a| a.ignore.as_slice()).unwrap_or_default();
    let Some((ar, namespaced)) = resolver.resolve(client, &o.api_version, &o.kind).await? else {
        d.namespace = namespace_of(o, w.app);
        d.note = Some(format!(
            "the cluster does not serve {} {} (its CRD is not installed yet)",
            o.api_version, o.kind
        ));
        let mut after = normalize(&o.value, &[]);
        mask_secret_data(None, Some(&mut after));
        d.diff = unified(None, Some(&after), &d);
        return Ok(Compared::Differs(d));
    };
    let ns = if namespaced {
        Some(
            namespace_of(o, w.app)
                .unwrap_or_else(|| default_namespace(o, argocd_namespace).to_string()),
        )
    } else {
        None
    };
    d.namespace = ns.clone();
    let shown = d.shown();
    let api = api(client, &ar, namespaced, ns.as_deref().unwrap_or_default());
    let live = client
        .retry(|| api.get_opt(&o.name))
        .await
        .map_err(|e| ClusterError::api(format!("reading {shown}"), e))?;
    let Some(live) = live else {
        let mut body = o.value.clone();
        set_namespace(&mut body, ns.as_deref());
        let mut after = normalize(&body, &pointers(ignore, o));
        mask_secret_data(None, Some(&mut after));
        d.diff = unified(None, Some(&after), &d);
        return Ok(Compared::Differs(d));
    };
    let live = kinds::json(&live);
    let mut body = o.value.clone();
    set_namespace(&mut body, ns.as_deref());
    let manager = match w.app {
        Some(_) => {
            // Keep Argo CD's tracking annotation: it owns it, and the dry run would drop it.
            let tracking = live
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(TRACKING_ANNOTATION))
                .cloned();
            if let (Some(t), Some(m)) = (
                tracking,
                body.get_mut("metadata").and_then(Value::as_object_mut),
            ) {
                if let Some(a) = m
                    .entry("annotations")
                    .or_insert_with(|| Value::Object(Default::default()))
                    .as_object_mut()
                {
                    a.insert(TRACKING_ANNOTATION.into(), t);
                }
            }
            ARGOCD_MANAGER
        }
        None => consts::FIELD_MANAGER,
    };
    let params = PatchParams {
        dry_run: true,
        force: true,
        field_manager: Some(manager.into()),
        ..Default::default()
    };
    let patch = Patch::Apply(&body);
    let dry = match client.retry(|| api.patch(&o.name, &params, &patch)).await {
        Ok(dry) => dry,
        // Reading is allowed, a dry-run patch is not: the object is listed as not compared.
        Err(kube::Error::Api(e)) if e.code == 403 => {
            return Ok(Compared::NotPermitted(format!(
                "{shown}: these credentials may read it but not dry-run a patch of it (a \
                 server-side dry run needs the patch permission)"
            )));
        }
        Err(e) => {
            return Err(ClusterError::api(
                format!("server-side dry-run apply of {shown}"),
                e,
            ))
        }
    };
    let paths = pointers(ignore, o);
    let mut before = normalize(&live, &paths);
    let mut after = normalize(&kinds::json(&dry), &paths);
    if before == after {
        return Ok(Compared::Same);
    }
    mask_secret_data(Some(&mut before), Some(&mut after));
    d.change = Change::Changed;
    d.diff = unified(Some(&before), Some(&after), &d);
    Ok(Compared::Differs(d))
}

/// What comparing one object found.
enum Compared {
    Same,
    Differs(ObjectDiff),
    /// The credentials may not dry-run it: why, listed with what was not compared.
    NotPermitted(String),
}

/// Applications and the AppProject live in Argo CD's namespace; anything else in `default`.
fn default_namespace<'a>(o: &RenderedObject, argocd_namespace: &'a str) -> &'a str {
    if o.kind == kinds::APPLICATION.kind || o.kind == kinds::APP_PROJECT.kind {
        argocd_namespace
    } else {
        "default"
    }
}

fn set_namespace(body: &mut Value, ns: Option<&str>) {
    if let (Some(ns), Some(m)) = (ns, body.get_mut("metadata").and_then(Value::as_object_mut)) {
        m.insert("namespace".into(), Value::String(ns.to_string()));
    }
}

/// The live objects Argo CD tracks for `app` that are not among `rendered` (kind, namespace, name).
async fn pruned(
    client: &Client,
    resolver: &mut Resolver,
    app: &App,
    rendered: &[(String, String, String)],
    argocd_namespace: &str,
) -> Result<Vec<ObjectDiff>, ClusterError> {
    let apps = kinds::APPLICATION.api(client, argocd_namespace);
    let live_app = client
        .retry(|| apps.get_opt(&app.name))
        .await
        .map_err(|e| {
            ClusterError::api(
                format!("reading Application {argocd_namespace}/{}", app.name),
                e,
            )
        })?;
    let Some(live_app) = live_app else {
        return Ok(Vec::new());
    };
    let live_app = kinds::json(&live_app);
    let mut out = Vec::new();
    let resources = live_app
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for r in resources {
        let (kind, ns, name) = (s(&r, "/kind"), s(&r, "/namespace"), s(&r, "/name"));
        if rendered
            .iter()
            .any(|(k, n, m)| k == kind && m == name && (n == ns || ns.is_empty()))
        {
            continue;
        }
        let (group, version) = (s(&r, "/group"), s(&r, "/version"));
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        if version.is_empty() {
            continue;
        }
        let Some((ar, namespaced)) = resolver.resolve(client, &api_version, kind).await? else {
            continue;
        };
        let api = api(client, &ar, namespaced, ns);
        let live = client
            .retry(|| api.get_opt(name))
            .await
            .map_err(|e| ClusterError::api(format!("reading {kind} {ns}/{name}"), e))?;
        let Some(live) = live else { continue };
        let mut d = ObjectDiff {
            app: Some(app.name.clone()),
            api_version,
            kind: kind.to_string(),
            namespace: (namespaced && !ns.is_empty()).then(|| ns.to_string()),
            name: name.to_string(),
            change: Change::Pruned,
            note: None,
            diff: String::new(),
        };
        let mut before = normalize(&kinds::json(&live), &[]);
        mask_secret_data(Some(&mut before), None);
        d.diff = unified(Some(&before), None, &d);
        out.push(d);
    }
    Ok(out)
}

/// The JSON pointers `ignoreDifferences` names for object `o` (jsonPointers, and jqPathExpressions
/// that are plain paths such as `.spec.replicas`).
fn pointers(ignore: &[Value], o: &RenderedObject) -> Vec<String> {
    let group = o
        .api_version
        .split_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default();
    let ns = s(&o.value, "/metadata/namespace");
    let mut out = Vec::new();
    for e in ignore {
        let matches = |field: &str, actual: &str| match e.get(field).and_then(Value::as_str) {
            None | Some("") if field != "kind" => true,
            Some("*") => true,
            Some(want) => want == actual,
            None => false,
        };
        let name_ok = matches!(e.get("name").and_then(Value::as_str), None | Some(""))
            || s(e, "/name") == o.name;
        let ns_ok = matches!(e.get("namespace").and_then(Value::as_str), None | Some(""))
            || s(e, "/namespace") == ns;
        if !(matches("group", group) && matches("kind", &o.kind) && name_ok && ns_ok) {
            continue;
        }
        for p in e
            .get("jsonPointers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            out.push(p.to_string());
        }
        for q in e
            .get("jqPathExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if let Some(p) = jq_path(q) {
                out.push(p);
            }
        }
    }
    out
}

/// The pointer segment that stands for every element of an array (a jq path's `[]`).
const EACH: &str = "[]";

/// `.spec.replicas` → `/spec/replicas`, `.spec.rules[].backendRefs[].weight` →
/// `/spec/rules/[]/backendRefs/[]/weight` (`[]`: every element, see [`remove_pointer`]); None for
/// anything that is not a plain field path.
fn jq_path(q: &str) -> Option<String> {
    let rest = q.strip_prefix('.')?;
    let parts: Vec<&str> = rest.split('.').collect();
    let plain = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let mut out = String::new();
    for p in parts {
        let (field, arrays) = match p.find("[]") {
            Some(i) => (&p[..i], &p[i..]),
            None => (p, ""),
        };
        if !plain(field) || arrays.len() % 2 != 0 || arrays.as_bytes().chunks(2).any(|c| c != b"[]")
        {
            return None;
        }
        out.push('/');
        out.push_str(field);
        for _ in 0..arrays.len() / 2 {
            out.push('/');
            out.push_str(EACH);
        }
    }
    Some(out)
}

/// An object without what the server manages and what the app ignores.
pub fn normalize(v: &Value, ignore: &[String]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
        // An Application's pending sync (Argo CD clears it when done).
        o.remove("operation");
    }
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in SERVER_METADATA {
            m.remove(*k);
        }
        let empty = match m.get_mut("annotations").and_then(Value::as_object_mut) {
            Some(a) => {
                for k in DEFAULTED_ANNOTATIONS {
                    a.remove(*k);
                }
                a.is_empty()
            }
            None => false,
        };
        if empty {
            m.remove("annotations");
        }
    }
    for p in ignore {
        remove_pointer(&mut v, p);
    }
    v
}

/// The mask of a Secret value both sides share (or the only side has).
const SECRET_MASK: &str = "++++++++";
/// The mask of the rendered value when it differs from the live one (as Argo CD masks them).
const SECRET_MASK_CHANGED: &str = "++++++++++++";

/// Replace every value of a Secret's `data` and `stringData` by a mask, on both sides: the same
/// mask when live and rendered hold the same value, a different one when they differ, so a diff
/// shows which keys change without printing a secret (as `argocd app diff` does).
pub fn mask_secret_data(live: Option<&mut Value>, rendered: Option<&mut Value>) {
    let is_secret =
        |v: &Option<&mut Value>| v.as_deref().is_some_and(|v| s(v, "/kind") == "Secret");
    if !is_secret(&live) && !is_secret(&rendered) {
        return;
    }
    let (mut live, mut rendered) = (live, rendered);
    for field in ["data", "stringData"] {
        let old = live
            .as_deref()
            .and_then(|v| v.get(field))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(m) = live
            .as_deref_mut()
            .and_then(|v| v.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            for v in m.values_mut() {
                *v = Value::String(SECRET_MASK.into());
            }
        }
        if let Some(m) = rendered
            .as_deref_mut()
            .and_then(|v| v.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            for (k, v) in m.iter_mut() {
                let mask = match old.get(k) {
                    Some(o) if o != v => SECRET_MASK_CHANGED,
                    _ => SECRET_MASK,
                };
                *v = Value::String(mask.into());
            }
        }
        // Anything else that is not a plain map (a malformed Secret) is not printed either.
        for side in [live.as_deref_mut(), rendered.as_deref_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(o) = side.as_object_mut() {
                if o.get(field).is_some_and(|f| !f.is_object() && !f.is_null()) {
                    o.insert(field.into(), Value::String(SECRET_MASK.into()));
                }
            }
        }
    }
}

/// Remove what `pointer` names; a `[]` segment stands for every element of an array there.
fn remove_pointer(v: &mut Value, pointer: &str) {
    let Some(rest) = pointer.strip_prefix('/') else {
        return;
    };
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    remove_at(v, &segments);
}

fn remove_at(v: &mut Value, segments: &[String]) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    if first == EACH {
        if let Value::Array(a) = v {
            for e in a.iter_mut() {
                remove_at(e, rest);
            }
        }
        return;
    }
    if rest.is_empty() {
        match v {
            Value::Object(m) => {
                m.remove(first);
            }
            Value::Array(a) => {
                if let Ok(i) = first.parse::<usize>() {
                    if i < a.len() {
                        a.remove(i);
                    }
                }
            }
            _ => {}
        }
        return;
    }
    let next = match v {
        Value::Object(m) => m.get_mut(first),
        Value::Array(a) => first.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    };
    if let Some(n) = next {
        remove_at(n, rest);
    }
}

/// A unified diff, live (`---`) to rendered (`+++`), of the objects as YAML.
fn unified(live: Option<&Value>, rendered: Option<&Value>, d: &ObjectDiff) -> String {
    let yaml = |v: Option<&Value>| {
        v.map_or(String::new(), |v| {
            serde_yaml::to_string(v).unwrap_or_default()
        })
    };
    let (old, new) = (yaml(live), yaml(rendered));
    let id = match &d.namespace {
        Some(ns) => format!("{}/{ns}/{}", d.kind, d.name),
        None => format!("{}/{}", d.kind, d.name),
    };
    let a = if live.is_some() {
        format!("live/{id}")
    } else {
        "/dev/null".to_string()
    };
    let b = if rendered.is_some() {
        format!("rendered/{id}")
    } else {
        "/dev/null".to_string()
    };
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&a, &b)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalize_drops_server_fields_and_ignored_pointers() {
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "m", "uid": "u", "resourceVersion": "3", "generation": 2,
                "managedFields": [], "creationTimestamp": "t",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 0, "template": {}},
            "status": {"replicas": 0}
        });
        let n = normalize(&live, &["/spec/replicas".to_string()]);
        assert_eq!(
            n,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "m"}, "spec": {"template": {}}})
        );
    }

    #[test]
    fn secret_values_are_masked_alike_when_equal_and_apart_when_changed() {
        let mut live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"same": "c2VjcmV0", "changed": "b2xk", "gone": "eA=="}});
        let mut rendered = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"same": "c2VjcmV0", "changed": "bmV3", "added": "eQ=="},
            "stringData": {"plain": "hunter2"}});
        mask_secret_data(Some(&mut live), Some(&mut rendered));
        assert_eq!(
            live["data"],
            json!({"same": SECRET_MASK, "changed": SECRET_MASK, "gone": SECRET_MASK})
        );
        assert_eq!(
            rendered["data"],
            json!({"same": SECRET_MASK, "changed": SECRET_MASK_CHANGED, "added": SECRET_MASK})
        );
        assert_eq!(rendered["stringData"], json!({"plain": SECRET_MASK}));
        let d = ObjectDiff {
            app: None,
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("argocd".into()),
            name: "s".into(),
            change: Change::Changed,
            note: None,
            diff: String::new(),
        };
        let text = unified(Some(&live), Some(&rendered), &d);
        for secret in ["c2VjcmV0", "b2xk", "bmV3", "eA==", "eQ==", "hunter2"] {
            assert!(!text.contains(secret), "{secret} printed:\n{text}");
        }
        assert!(
            text.contains(&format!("+  changed: '{SECRET_MASK_CHANGED}'"))
                || text.contains(&format!("+  changed: {SECRET_MASK_CHANGED}")),
            "{text}"
        );
        // A pruned Secret (live only) and other kinds.
        let mut pruned = json!({"kind": "Secret", "data": {"k": "dg=="}});
        mask_secret_data(Some(&mut pruned), None);
        assert_eq!(pruned["data"], json!({"k": SECRET_MASK}));
        let mut cm = json!({"kind": "ConfigMap", "data": {"k": "v"}});
        mask_secret_data(Some(&mut cm), None);
        assert_eq!(cm["data"], json!({"k": "v"}));
    }

    #[test]
    fn ignore_differences_match_group_kind_and_name() {
        let o = RenderedObject {
            path: "p".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "m".into(),
            value: json!({"metadata": {"name": "m"}}),
        };
        let ignore = vec![
            json!({"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}),
            json!({"group": "", "kind": "Service", "jsonPointers": ["/spec/x"]}),
            json!({"group": "apps", "kind": "Deployment", "name": "other", "jsonPointers": ["/spec/y"]}),
            json!({"group": "*", "kind": "Deployment", "jqPathExpressions": [".spec.template.x", ".a[] | .b", ".spec.rules[].backendRefs[].weight", ".x[0]"]}),
        ];
        assert_eq!(
            pointers(&ignore, &o),
            vec![
                "/spec/replicas".to_string(),
                "/spec/template/x".to_string(),
                "/spec/rules/[]/backendRefs/[]/weight".to_string()
            ]
        );
    }

    #[test]
    fn array_paths_drop_the_field_of_every_element() {
        // The routing app's ignoreDifferences (catalog/serving.yaml): `platform move` changes the
        // weights, Argo CD ignores them, so does diff --cluster.
        let route = json!({"kind": "HTTPRoute", "spec": {"rules": [
            {"backendRefs": [{"name": "a", "weight": 90}, {"name": "b", "weight": 10}]},
            {"backendRefs": [{"name": "c", "weight": 100}]},
            {"matches": []}
        ]}});
        let p = jq_path(".spec.rules[].backendRefs[].weight").unwrap();
        assert_eq!(
            normalize(&route, &[p]),
            json!({"kind": "HTTPRoute", "spec": {"rules": [
                {"backendRefs": [{"name": "a"}, {"name": "b"}]},
                {"backendRefs": [{"name": "c"}]},
                {"matches": []}
            ]}})
        );
        // Plain pointers, escaped segments and indexes still work.
        let mut v = json!({"a": {"b/c": 1, "d": [1, 2]}});
        remove_pointer(&mut v, "/a/b~1c");
        remove_pointer(&mut v, "/a/d/0");
        assert_eq!(v, json!({"a": {"d": [2]}}));
    }
}
