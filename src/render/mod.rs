//! Plan → RenderedTree: every file `root` writes, as text, keyed by repo-relative path.
//! Pure: no I/O (templates are loaded beforehand), no clock, no randomness.

pub mod check;
pub mod context;
pub mod engine;
pub mod lazy;
pub mod provenance;
pub mod schema;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

pub use engine::{context as template_context, TemplateError, TemplateSources, Templates};

use crate::catalog::resolve::ResolvedGroup;
use crate::catalog::Catalog;
use crate::plan::{AppKind, Plan, PlannedModel};
use crate::{consts, layout};

/// Files to write, and the parts of the tree this render owns (where stale generated files are pruned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderedTree {
    /// Repo-relative path (forward slashes) → content.
    pub files: BTreeMap<String, String>,
    /// Repo-relative files or directories (ending in `/`) this render is authoritative for.
    pub owned: Vec<String>,
}

impl RenderedTree {
    /// The AppProject and the root apps of the plan's layers (what `up` applies itself; Argo CD
    /// syncs the rest), as a tree of their own.
    pub fn root_files(&self, plan: &Plan) -> RenderedTree {
        let env = &plan.env;
        let wanted: BTreeSet<String> = std::iter::once(layout::project_file(env))
            .chain(
                plan.profile
                    .layers
                    .iter()
                    .map(|l| layout::root_file(env, l)),
            )
            .collect();
        RenderedTree {
            files: self
                .files
                .iter()
                .filter(|(p, _)| wanted.contains(*p))
                .map(|(p, t)| (p.clone(), t.clone()))
                .collect(),
            owned: Vec::new(),
        }
    }

    /// The rendered text of `path` (empty when it is not rendered).
    pub fn text(&self, path: &str) -> &str {
        self.files.get(path).map_or("", String::as_str)
    }

    /// Whether `path` lies inside a directory this render owns (the listing of which is
    /// complete: a file there that is not listed does not exist).
    pub fn in_owned_dir(&self, path: &str) -> bool {
        self.owned
            .iter()
            .any(|o| o.ends_with('/') && path.starts_with(o.as_str()))
    }
}

/// Render the whole tree of a plan: AppProject, one root app per layer with apps, child apps, serving
/// layers' shared objects and every model's manifests. Every file goes through
/// [`Templates::render_file`]: the generated header is the renderer's, never trusted to a template,
/// and a template that renders nothing is an error.
pub fn render(
    plan: &Plan,
    catalog: &Catalog,
    templates: &Templates,
) -> Result<RenderedTree, TemplateError> {
    let mut tree = RenderedTree::default();
    render_roots(&mut tree, plan, templates)?;
    for part in render_parts(plan, catalog, templates) {
        tree.files.extend(part?);
    }
    render_argocd(&mut tree, plan, catalog, templates)?;
    render_objects(&mut tree, plan, catalog, templates)?;
    own_serving_dirs(&mut tree, plan, catalog);
    Ok(tree)
}

/// The AppProject and one root app per layer of the profile that has apps.
fn render_roots(
    tree: &mut RenderedTree,
    plan: &Plan,
    templates: &Templates,
) -> Result<(), TemplateError> {
    let (env, header) = (&plan.env, consts::GENERATED_HEADER);
    tree.owned.push(layout::project_file(env));
    tree.files.insert(
        layout::project_file(env),
        templates.render_file(
            "appproject.yaml.j2",
            &template_context(json!({"header": header, "project": context::project_ctx(plan)})),
        )?,
    );
    let layers_with_apps: BTreeSet<&str> = plan.apps.iter().map(|a| a.layer.as_str()).collect();
    for layer in &plan.profile.layers {
        tree.owned.push(layout::root_file(env, layer));
        tree.owned
            .push(format!("{}/", layout::apps_dir(env, layer)));
        if !layers_with_apps.contains(layer.as_str()) {
            continue; // an empty path would make the root app fail to sync
        }
        tree.files.insert(
            layout::root_file(env, layer),
            templates.render_file(
                "root-application.yaml.j2",
                &template_context(
                    json!({"header": header, "root": context::root_ctx(plan, layer)}),
                ),
            )?,
        );
    }
    Ok(())
}

/// Files of a part of the tree, in the order they are rendered.
type Files = Vec<(String, String)>;

/// Models rendered by one job of [`render_parts`]: small enough that the jobs share the cores
/// evenly to the end, large enough that taking a job costs nothing.
const MODELS_PER_JOB: usize = 32;

/// The child apps, the routes and the models (in jobs of [`MODELS_PER_JOB`]), on a few threads
/// that each take the next job no thread has taken (issue 24: the apps and the routes rendered on
/// one thread before the models, a third of the render). Their files and errors in that order:
/// the first error is the one rendering them one after the other meets.
fn render_parts(
    plan: &Plan,
    catalog: &Catalog,
    templates: &Templates,
) -> Vec<Result<Files, TemplateError>> {
    let mut jobs: Vec<crate::parallel::Job<'_, Result<Files, TemplateError>>> = vec![
        Box::new(|| render_apps(plan, catalog, templates)),
        Box::new(|| render_routing(plan, catalog, templates)),
    ];
    for models in plan.models.chunks(MODELS_PER_JOB) {
        jobs.push(Box::new(move || {
            render_models(models, plan, catalog, templates)
        }));
    }
    if plan.models.len() <= MODELS_PER_JOB {
        // A small environment: starting a thread costs more than it saves. Up to the first error.
        let mut parts = Vec::with_capacity(jobs.len());
        for job in jobs {
            let part = job();
            let failed = part.is_err();
            parts.push(part);
            if failed {
                break;
            }
        }
        return parts;
    }
    crate::parallel::run_jobs(jobs)
}

/// Every child Application, and each serving layer's shared objects (Gateway, namespace).
fn render_apps(
    plan: &Plan,
    catalog: &Catalog,
    templates: &Templates,
) -> Result<Files, TemplateError> {
    let (env, header) = (&plan.env, consts::GENERATED_HEADER);
    let mut files = Files::with_capacity(plan.apps.len());
    for app in &plan.apps {
        let path = layout::app_file(env, &app.layer, &app.group, &app.name);
        files.push((
            path,
            templates.render_file(
                "application.yaml.j2",
                // The app's context as it is (json! would copy it).
                &minijinja::context! {
                    header => header, app => template_context(context::app_ctx(plan, app))
                },
            )?,
        ));
        if app.kind == AppKind::Serving {
            let layer = app.serving_layer.as_deref().unwrap_or_default();
            let ctx = template_context(
                json!({"header": header, "serving": context::serving_ctx(plan, catalog, layer)}),
            );
            let no_runtimes = ctx
                .get_attr("serving")
                .and_then(|s| s.get_attr("runtimes"))
                .is_ok_and(|r| r.len() == Some(0));
            for t in &catalog.serving[layer].shared_templates {
                if t == layout::SERVING_RUNTIMES_TEMPLATE && no_runtimes {
                    continue; // no model of the layer runs a ClusterServingRuntime
                }
                let path = layout::output_file(&layout::serving_dir(env, layer), t);
                files.push((path, templates.render_file(t, &ctx)?));
            }
        }
    }
    Ok(files)
}

/// The models' stable endpoint (catalog `routing:`): the shared Gateway, the ReferenceGrants and
/// one HTTPRoute per routed model, when the plan has the routing app.
fn render_routing(
    plan: &Plan,
    catalog: &Catalog,
    templates: &Templates,
) -> Result<Files, TemplateError> {
    let mut files = Files::new();
    let (Some(spec), true) = (
        catalog.routing.as_ref(),
        plan.apps.iter().any(|a| a.kind == AppKind::Routing),
    ) else {
        return Ok(files);
    };
    let (env, header) = (&plan.env, consts::GENERATED_HEADER);
    // Made once and shared by every route's context (a template value is reference counted):
    // converting the whole routing object, every route in it, once per route made rendering
    // quadratic in the number of routed models (issue 24: 4 s for 1000 models).
    let routing = template_context(context::routing_ctx(plan, spec));
    let ctx = minijinja::context! { header => header, routing => routing.clone() };
    for t in &spec.templates {
        let path = layout::output_file(&layout::routing_dir(env), t);
        files.push((path, templates.render_file(t, &ctx)?));
    }
    let routes = routing.get_attr("routes").ok();
    for route in routes
        .iter()
        .flat_map(|r| r.try_iter().into_iter().flatten())
    {
        let model = route.get_attr("model").ok();
        let model = model.as_ref().and_then(|m| m.as_str()).unwrap_or_default();
        let path = layout::route_file(env, model);
        let ctx =
            minijinja::context! { header => header, routing => routing.clone(), route => route };
        files.push((path, templates.render_file(&spec.route_template, &ctx)?));
    }
    Ok(files)
}

/// The manifests of `models` on their serving layers (a model's files depend on no other
/// model's); the first failing model's error in config order.
fn render_models(
    models: &[PlannedModel],
    plan: &Plan,
    catalog: &Catalog,
    templates: &Templates,
) -> Result<Files, TemplateError> {
    let (env, header) = (&plan.env, consts::GENERATED_HEADER);
    let mut out = Files::with_capacity(models.len() * 4);
    for pm in models {
        let ctx = minijinja::context! {
            header => header,
            model => context::model_ctx(plan, catalog, pm),
        };
        for t in &pm.spec.templates {
            if t == layout::MODEL_PVC_TEMPLATE && !pm.has_pvc() {
                continue; // e.g. llm-d's hf:// weights: KServe's storage initializer downloads
            }
            if t == layout::MODEL_S3_SA_TEMPLATE && !pm.reads_s3() {
                continue; // only for weights KServe's storage initializer reads from S3
            }
            if t == layout::MODEL_GRANT_TEMPLATE && pm.route_from(plan).is_none() {
                continue; // no stable route sends traffic here
            }
            if t == layout::MODEL_AUTOSCALER_TEMPLATE && pm.model.autoscaling.is_none() {
                continue; // a fixed replica count: no HPA or ScaledObject
            }
            let path = layout::output_file(&layout::model_dir(env, &pm.app), t);
            out.push((path, templates.render_file(t, &ctx)?));
        }
    }
    Ok(out)
}

/// Argo CD managing itself: the pinned manifest plus the ConfigMap keys bootstrap applies. Its
/// directory is this render's unless the app's layer is outside the profile (a catalog without
/// the app prunes what an earlier render wrote).
fn render_argocd(
    tree: &mut RenderedTree,
    plan: &Plan,
    catalog: &Catalog,
    templates: &Templates,
) -> Result<(), TemplateError> {
    let header = consts::GENERATED_HEADER;
    let spec = &catalog.argocd;
    let dir = layout::argocd_dir(&plan.env);
    if spec
        .app
        .as_ref()
        .is_none_or(|a| plan.profile.layers.contains(&a.layer))
    {
        tree.owned.push(format!("{dir}/"));
    }
    if !plan
        .apps
        .iter()
        .any(|a| a.group == crate::catalog::argocd::GROUP)
    {
        return Ok(());
    }
    tree.files.insert(
        format!("{dir}/kustomization.yaml"),
        templates.render_file(
            "argocd-kustomization.yaml.j2",
            &template_context(json!({"header": header, "argocd": context::argocd_ctx(spec)})),
        )?,
    );
    for (name, keys) in spec.patches() {
        tree.files.insert(
            format!("{dir}/{name}.yaml"),
            templates.render_file(
                "argocd-configmap-patch.yaml.j2",
                &template_context(json!({"header": header, "cm": {"name": name, "data": keys}})),
            )?,
        );
    }
    Ok(())
}

/// The catalog objects files of the plan's apps (`source: { objects: FILE }`), each in its app's
/// directory. The directory of every such app whose layer is in the profile is this render's (an
/// app switched off prunes its objects).
fn render_objects(
    tree: &mut RenderedTree,
    plan: &Plan,
    catalog: &Catalog,
    templates: &Templates,
) -> Result<(), TemplateError> {
    for g in catalog
        .groups
        .iter()
        .filter(|g| plan.profile.layers.contains(&g.layer))
    {
        for a in g.apps.iter().filter(|a| a.source.objects.is_some()) {
            tree.owned
                .push(format!("{}/", layout::objects_dir(&plan.env, &a.name)));
        }
    }
    for app in &plan.apps {
        let Some(file) = app.spec.source.objects.as_deref() else {
            continue;
        };
        let Some(objects) = catalog.objects.get(file) else {
            continue; // reported when the catalog loaded
        };
        let name = std::path::Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("objects.yaml");
        let ctx = template_context(json!({
            "header": consts::GENERATED_HEADER,
            "objects": {"app": app.name, "file": format!("{}/{file}", consts::CATALOG_DIR), "text": objects.text.trim_end()},
        }));
        tree.files.insert(
            format!("{}/{name}", layout::objects_dir(&plan.env, &app.name)),
            templates.render_file(layout::CATALOG_OBJECTS_TEMPLATE, &ctx)?,
        );
    }
    Ok(())
}

/// Models and serving layers live outside apps/<layer>/: own them only when every layer that hosts
/// a serving group is in the profile (a narrower profile never deletes wider layers' files).
fn own_serving_dirs(tree: &mut RenderedTree, plan: &Plan, catalog: &Catalog) {
    let serving_hosts: BTreeSet<&str> = catalog
        .serving
        .values()
        .filter_map(|s| catalog.group(&s.group).map(|g| g.layer.as_str()))
        .collect();
    if serving_hosts
        .iter()
        .all(|l| plan.profile.layers.iter().any(|p| p == l))
    {
        tree.owned
            .push(format!("{}/", layout::models_root(&plan.env)));
        tree.owned
            .push(format!("{}/", layout::serving_root(&plan.env)));
    }
}

/// `clusters/<env>/groups.generated.yaml` in the replaced platform's format.
pub fn render_groups(
    env: &str,
    groups: &[ResolvedGroup],
    templates: &Templates,
) -> Result<RenderedTree, TemplateError> {
    let path = layout::groups_file(env);
    let text = templates.render_file(
        "groups.generated.yaml.j2",
        &template_context(
            json!({"header": consts::GENERATED_HEADER, "env": env, "groups": groups}),
        ),
    )?;
    Ok(RenderedTree {
        files: BTreeMap::from([(path.clone(), text)]),
        owned: vec![path],
    })
}
