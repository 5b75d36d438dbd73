//! Plan → the JSON contexts templates see. All decisions (args, env, probes, security) are made here,
//! so an overriding template only changes layout, never has to re-derive a gotcha.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::catalog::{Catalog, Device, Preset, SyncMode};
use crate::config::Model;
use crate::plan::{AppKind, Plan, PlannedApp, PlannedModel};
use crate::serving::runtime::{ArgsInput, Readiness};
use crate::serving::{self, Runtime, Weights};
use crate::{consts, layout};

pub fn common_labels(env: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        consts::LABEL_MANAGED_BY.into(),
        consts::MANAGED_BY_VALUE.into(),
    );
    m.insert(consts::LABEL_PART_OF.into(), env.into());
    m
}

/// What the hand-over kustomization template needs (see `templates/argocd-kustomization.yaml.j2`).
pub fn argocd_ctx(spec: &crate::catalog::argocd::ArgoCdSpec) -> Value {
    let patches: Vec<String> = spec
        .patches()
        .iter()
        .map(|(name, _)| format!("{name}.yaml"))
        .collect();
    json!({
        "app": spec.app.as_ref().map(|a| a.name.as_str()).unwrap_or_default(),
        "version": spec.version,
        "sha256": spec.sha256,
        "namespace": spec.namespace,
        "installURL": spec.install_url,
        "patches": patches,
    })
}

pub fn project_ctx(plan: &Plan) -> Value {
    let cfg = &plan.config;
    let namespaces = &plan.project_namespaces;
    let destinations: Vec<Value> = namespaces
        .iter()
        .map(|ns| json!({"server": "https://kubernetes.default.svc", "namespace": ns}))
        .collect();
    json!({
        "name": plan.env,
        "namespace": plan.argocd_namespace,
        "labels": common_labels(&plan.env),
        "description": format!("Platform apps of environment {} (cluster {})", plan.env, cfg.cluster.name),
        "sourceRepos": plan.project_repos,
        "destinations": destinations,
        "clusterResources": plan.project_cluster_resources,
    })
}

pub fn root_ctx(plan: &Plan, layer: &str) -> Value {
    let mut labels = common_labels(&plan.env);
    labels.insert(consts::LABEL_LAYER.into(), layer.into());
    json!({
        "name": layout::root_app_name(&plan.env, layer),
        "namespace": plan.argocd_namespace,
        "labels": labels,
        "finalizer": consts::ARGOCD_FINALIZER,
        "project": plan.env,
        "layer": layer,
        "repoURL": plan.config.repo_url,
        "targetRevision": plan.config.repo_branch,
        "path": layout::apps_dir(&plan.env, layer),
    })
}

pub fn app_ctx(plan: &Plan, app: &PlannedApp) -> Value {
    let cfg = &plan.config;
    let spec = &app.spec;
    let mut labels = common_labels(&plan.env);
    labels.insert(consts::LABEL_LAYER.into(), app.layer.clone().into());
    labels.insert(consts::LABEL_GROUP.into(), app.group.clone().into());
    if app.kind == AppKind::Model {
        labels.insert(consts::LABEL_MODEL.into(), app.name.clone().into());
    }
    let gitops = |path: Option<&str>, reference: Option<&str>| {
        let mut s = Map::new();
        s.insert("repoURL".into(), cfg.repo_url.clone().into());
        s.insert("targetRevision".into(), cfg.repo_branch.clone().into());
        if let Some(p) = path {
            s.insert("path".into(), p.into());
        }
        if let Some(r) = reference {
            s.insert("ref".into(), r.into());
        }
        Value::Object(s)
    };
    let sources: Vec<Value> = match app.kind {
        AppKind::Model => vec![gitops(Some(&layout::model_dir(&plan.env, &app.name)), None)],
        AppKind::Routing => vec![gitops(Some(&layout::routing_dir(&plan.env)), None)],
        AppKind::Serving => vec![gitops(
            Some(&layout::serving_dir(
                &plan.env,
                app.serving_layer.as_deref().unwrap_or_default(),
            )),
            None,
        )],
        AppKind::Catalog => {
            if let Some(h) = &spec.source.helm {
                let mut helm = Map::new();
                helm.insert(
                    "releaseName".into(),
                    h.release_name
                        .clone()
                        .unwrap_or_else(|| spec.name.clone())
                        .into(),
                );
                if let Some(vf) = &spec.values_file {
                    helm.insert("valueFiles".into(), json!([format!("$values/{vf}")]));
                }
                if let Some(v) = &spec.values {
                    helm.insert("valuesObject".into(), v.clone());
                }
                let chart = json!({
                    "repoURL": h.repo_url,
                    "chart": h.chart,
                    "targetRevision": h.version,
                    "helm": helm,
                });
                let mut v = vec![chart];
                if spec.values_file.is_some() {
                    v.push(gitops(None, Some("values")));
                }
                v
            } else if spec.source.objects.is_some() {
                vec![gitops(
                    Some(&layout::objects_dir(&plan.env, &app.name)),
                    None,
                )]
            } else if let Some(g) = &spec.source.git {
                vec![
                    json!({"repoURL": g.repo_url, "targetRevision": g.target_revision, "path": g.path}),
                ]
            } else {
                vec![gitops(spec.source.path.as_deref(), None)]
            }
        }
    };
    let mut policy = Map::new();
    if spec.sync == SyncMode::Auto {
        policy.insert(
            "automated".into(),
            json!({"prune": true, "selfHeal": spec.self_heal}),
        );
    }
    if !spec.sync_options.is_empty() {
        policy.insert("syncOptions".into(), json!(spec.sync_options));
    }
    if let Some(r) = &spec.retry {
        policy.insert("retry".into(), serde_json::to_value(r).unwrap_or_default());
    }
    json!({
        "name": app.name,
        "namespace": plan.argocd_namespace,
        "labels": labels,
        "wave": app.wave.to_string(),
        // No resources finalizer when deleting the app must leave its resources (Argo CD itself).
        "finalizer": if spec.keep_resources { None } else { Some(consts::ARGOCD_FINALIZER) },
        "project": plan.env,
        "sources": sources,
        "destinationNamespace": app.namespace,
        "manual": spec.sync == SyncMode::Manual,
        "syncPolicy": policy,
        "ignoreDifferences": serde_json::to_value(&spec.ignore_differences).unwrap_or_default(),
    })
}

fn model_labels(env: &str, name: &str, layer: &str) -> Map<String, Value> {
    let mut labels = common_labels(env);
    labels.insert(consts::LABEL_NAME.into(), name.into());
    labels.insert(consts::LABEL_MODEL.into(), name.into());
    labels.insert(consts::LABEL_LAYER.into(), layer.into());
    labels
}

pub fn serving_ctx(plan: &Plan, catalog: &Catalog, layer: &str) -> Value {
    let spec = &catalog.serving[layer];
    let mut labels = common_labels(&plan.env);
    labels.insert(consts::LABEL_LAYER.into(), layer.into());
    json!({
        "layer": layer,
        "namespace": spec.namespace,
        "labels": labels,
        "gateway": gateway_ctx(plan, catalog, layer),
        "runtimes": serving_runtimes_ctx(plan, layer),
    })
}

/// A serving layer's Gateway, as its shared objects and its models see it.
fn gateway_ctx(plan: &Plan, catalog: &Catalog, layer: &str) -> Value {
    let spec = &catalog.serving[layer];
    json!({
        "name": layout::gateway_name(layer, spec.gateway_name.as_deref()),
        "namespace": spec.namespace,
        "className": plan.config.gateway.class_name,
    })
}

/// Everything a model template needs, as `model` (serialized straight into the template's values;
/// field order is the order `| yaml` writes mappings in).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelCtx<'a> {
    name: &'a str,
    namespace: &'a str,
    source: &'a str,
    revision: &'a str,
    served_name: &'a str,
    layer: &'a str,
    labels: Lazy,
    selector: Lazy,
    image: String,
    command: Shared,
    args: Lazy,
    env: Lazy,
    llmd_env: Lazy,
    port: u16,
    replicas: u32,
    gpus: u32,
    strategy: &'static str,
    resources: Lazy,
    tolerations: Shared,
    probes: Shared,
    pod_security_context: Shared,
    container_security_context: Shared,
    volume_mounts: Shared,
    volumes: Lazy,
    pvc: Lazy,
    weights: Lazy,
    canary_traffic_percent: Option<u8>,
    parallelism: Lazy,
    prefill: Option<Lazy>,
    gateway: Lazy,
    /// The KServe model spec of a model served by a ClusterServingRuntime (llama.cpp, Ollama);
    /// None for our own vLLM container.
    serving_runtime: Option<Lazy>,
    /// The S3 ServiceAccount of weights KServe reads from `s3://` (None otherwise).
    s3: Option<Lazy>,
    /// The PriorityClass the serving pods name (`priority:`), when set.
    priority_class_name: Option<&'a str>,
    /// `autoscaling:` as the templates render it ([`autoscaling_ctx`]), when set.
    autoscaling: Option<Lazy>,
    /// The namespace of the stable route's Gateway, which the NetworkPolicy admits (None when
    /// the model is not routed).
    routing_namespace: Option<&'a str>,
    /// The Service the stable route sends the model's traffic to on its layer.
    route_service: Option<String>,
}

/// A part of every model's context that only depends on a few choices (device, pre-staged, GPU):
/// made once per process and shared by reference (issue 14: rebuilding and converting them per
/// model was a third of rendering).
type Shared = minijinja::Value;

/// A part of a model's context as JSON that templates read without converting it whole
/// ([`crate::render::lazy`]).
type Lazy = minijinja::Value;

fn lazy(json: impl Into<Value>) -> Lazy {
    crate::render::lazy::value(json.into())
}

/// The parts of a model's context that every model with the same device, pre-staging and GPU
/// shares.
struct SharedParts {
    command: Shared,
    tolerations: Shared,
    probes: Shared,
    pod_security_context: Shared,
    container_security_context: Shared,
    volume_mounts: Shared,
}

impl SharedParts {
    /// `staged`: the weights volume is read-only (pre-staged), read-write (a cache), or absent
    /// (None: KServe puts the weights at /mnt/models).
    fn of(cpu: bool, staged: Option<bool>, gpu_pod: bool) -> SharedParts {
        use std::sync::OnceLock;
        static COMMAND: OnceLock<Shared> = OnceLock::new();
        static POD_SECURITY: OnceLock<Shared> = OnceLock::new();
        static CONTAINER_SECURITY: OnceLock<Shared> = OnceLock::new();
        static PROBES: [OnceLock<Shared>; 2] = [OnceLock::new(), OnceLock::new()];
        static MOUNTS: [OnceLock<Shared>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        static TOLERATIONS: [OnceLock<Shared>; 2] = [OnceLock::new(), OnceLock::new()];
        let once = |cell: &'static OnceLock<Shared>, make: &dyn Fn() -> Value| {
            cell.get_or_init(|| lazy(make())).clone()
        };
        SharedParts {
            command: once(&COMMAND, &|| {
                json!(["python3", "-m", "vllm.entrypoints.openai.api_server"])
            }),
            tolerations: once(&TOLERATIONS[usize::from(gpu_pod)], &|| tolerations(gpu_pod)),
            probes: once(&PROBES[usize::from(cpu)], &|| probes(cpu)),
            pod_security_context: once(&POD_SECURITY, &|| {
                json!({
                    "runAsNonRoot": true,
                    "runAsUser": 1000,
                    "runAsGroup": 1000,
                    "fsGroup": 1000,
                    "seccompProfile": {"type": "RuntimeDefault"},
                })
            }),
            container_security_context: once(&CONTAINER_SECURITY, &|| {
                json!({
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]},
                })
            }),
            volume_mounts: once(&MOUNTS[staged.map_or(2, usize::from)], &|| {
                volume_mounts(staged)
            }),
        }
    }
}

pub fn model_ctx<'a>(plan: &'a Plan, catalog: &'a Catalog, pm: &'a PlannedModel) -> ModelCtx<'a> {
    let m = &pm.model;
    let preset = &pm.preset_spec;
    let layer = m.layer;
    let runtime = serving::runtime::of(m);
    let weights = pm.weights();
    let dir = m.weights_dir();
    let own_container = runtime.model_format().is_none();
    let mount = match (&weights, own_container) {
        (Weights::Staged | Weights::Hub | Weights::Pulled, true) => {
            format!("{}/{dir}", consts::MODEL_MOUNT)
        }
        _ => consts::KSERVE_MODEL_MOUNT.to_string(),
    };
    let pvc = m.pvc_name();
    let staged = m.staged();
    let (env_list, llmd_env) = container_env(m, preset, runtime, &weights);
    let storage_class = m
        .storage
        .storage_class_name
        .clone()
        .or_else(|| plan.config.storage_class_name.clone());
    let prefill = m.prefill.as_ref().map(|p| {
        json!({
            "replicas": p.replicas,
            "parallelism": parallelism(p.gpus, p.tensor_parallel_size),
            "resources": resources(preset.resources_for(&p.resources), p.gpus),
        })
    });
    let gpu_pod = m.gpus > 0 || m.prefill.as_ref().is_some_and(|p| p.gpus > 0);
    let weights_volume = match weights {
        Weights::Staged => Some(true),
        Weights::Hub | Weights::Pulled => Some(false),
        Weights::Storage(_) => None,
    };
    let shared = SharedParts::of(preset.device == Device::Cpu, weights_volume, gpu_pod);
    let args = runtime.args(&ArgsInput {
        model: m,
        preset,
        weights: &weights,
        mount: &mount,
    });
    let uri = weights_uri(m, &weights, &pvc, dir);
    let resources = resources(preset.resources_for(&m.resources), m.gpus);
    let serving_runtime = (!own_container)
        .then(|| runtime_model(pm, runtime, &weights, &uri, &args, &env_list, &resources));
    ModelCtx {
        name: &m.name,
        namespace: &pm.namespace,
        source: m.source.as_str(),
        revision: &m.revision,
        served_name: runtime.served_name(m),
        layer: layer.as_str(),
        labels: lazy(model_labels(&plan.env, &m.name, layer.as_str())),
        selector: lazy(json!({ consts::LABEL_NAME: m.name, consts::LABEL_MODEL: m.name })),
        image: preset.image_ref(),
        command: shared.command,
        args: lazy(args),
        env: lazy(env_list),
        llmd_env: lazy(llmd_env),
        port: runtime.port(),
        // An autoscaled model starts at its min (at least 1); the autoscaler takes it from there.
        replicas: m.start_replicas(),
        gpus: m.gpus,
        strategy: serving::layer(layer).strategy(m.strategy),
        resources: lazy(resources),
        tolerations: shared.tolerations,
        probes: shared.probes,
        pod_security_context: shared.pod_security_context,
        container_security_context: shared.container_security_context,
        volume_mounts: shared.volume_mounts,
        volumes: lazy(volumes(&pvc, weights_volume)),
        pvc: lazy(json!({
            "name": pvc,
            "size": m.storage.size.as_str(),
            "accessMode": format!("{:?}", m.storage.access_mode),
            "storageClassName": storage_class,
        })),
        weights: lazy(json!({"staged": staged, "dir": dir, "mountPath": mount, "uri": uri})),
        canary_traffic_percent: m.canary_traffic_percent,
        parallelism: lazy(parallelism(m.gpus, m.tensor_parallel_size)),
        prefill: prefill.map(lazy),
        gateway: lazy(gateway_ctx(plan, catalog, layer.as_str())),
        serving_runtime: serving_runtime.map(lazy),
        s3: pm.reads_s3().then(|| lazy(s3_ctx(plan, m))),
        priority_class_name: m.priority.as_deref(),
        autoscaling: m
            .autoscaling
            .as_ref()
            .map(|a| lazy(autoscaling_ctx(a, &pm.namespace, m.served_name(), plan))),
        routing_namespace: pm.route_from(plan),
        route_service: pm.layer().route_backend(&pm.name).map(|b| b.service),
    }
}

/// The models' stable endpoint as its templates see it: the Gateway, one route per routed model
/// (its backends: the model's Service on its layer at weight 100, and during a move the
/// destination's at 0) and the namespaces that must grant the routes access.
pub fn routing_ctx(plan: &Plan, spec: &crate::catalog::RoutingSpec) -> Value {
    let mut labels = common_labels(&plan.env);
    labels.insert(consts::LABEL_GROUP.into(), spec.group.clone().into());
    let backend = |pm: &PlannedModel, weight: u32| {
        pm.layer().route_backend(&pm.name).map(|b| {
            json!({"layer": pm.serving_layer, "namespace": pm.namespace, "service": b.service,
                   "port": b.port, "weight": weight})
        })
    };
    // The models on their way to another layer, looked through for each routed model (few or
    // none: scanning every model for each made this quadratic).
    let moving: Vec<&PlannedModel> = plan
        .models
        .iter()
        .filter(|d| d.moving_from.is_some())
        .collect();
    let mut routes = Vec::new();
    for pm in plan.models.iter().filter(|pm| pm.routed) {
        let destination = moving.iter().copied().find(|d| d.name == pm.name);
        let share = destination.map_or(0, |_| pm.model.move_share.unwrap_or(0).min(100));
        let mut backends: Vec<Value> = backend(pm, 100 - share).into_iter().collect();
        backends.extend(destination.and_then(|d| backend(d, share)));
        let mut route_labels = labels.clone();
        route_labels.insert(consts::LABEL_MODEL.into(), pm.name.clone().into());
        // Built as maps, not with json! (which serializes what it is given: a copy of each).
        let mut route = Map::new();
        route.insert("model".into(), pm.name.clone().into());
        route.insert("labels".into(), Value::Object(route_labels));
        let path = plan.routing.as_ref().map(|r| r.path(&pm.name));
        route.insert("path".into(), path.into());
        route.insert("backends".into(), Value::Array(backends));
        routes.push(Value::Object(route));
    }
    let mut ctx = Map::new();
    ctx.insert("namespace".into(), spec.namespace.clone().into());
    ctx.insert("labels".into(), Value::Object(labels));
    let gateway = json!({"name": spec.gateway_name, "className": plan.config.gateway.class_name});
    ctx.insert("gateway".into(), gateway);
    ctx.insert("routes".into(), Value::Array(routes));
    Value::Object(ctx)
}

/// The ServiceAccount KServe's storage initializer reads S3 with: `<model>-s3`, KServe's
/// `serving.kserve.io/s3-*` annotations from the environment's `s3:` block (only what it sets), and
/// the credentials Secret by name.
fn s3_ctx(plan: &Plan, m: &Model) -> Value {
    let cfg = plan.config.s3.clone().unwrap_or_default();
    let mut ann = BTreeMap::new();
    let key = |k: &str| format!("{}{k}", consts::KSERVE_S3_ANNOTATION);
    let flag = |b: bool| if b { "1" } else { "0" };
    if let Some(e) = &cfg.endpoint {
        let (scheme, host) = e.split_once("://").unwrap_or(("https", e.as_str()));
        ann.insert(key("endpoint"), host.trim_end_matches('/').to_string());
        ann.insert(key("usehttps"), flag(scheme != "http").to_string());
    }
    if let Some(r) = &cfg.region {
        ann.insert(key("region"), r.clone());
    }
    // Path-style unless told otherwise once the endpoint is not AWS's (MinIO, Ceph, …).
    if let Some(path_style) = cfg.path_style.or(cfg.endpoint.as_ref().map(|_| true)) {
        ann.insert(key("usevirtualbucket"), flag(!path_style).to_string());
    }
    if cfg.verify_tls == Some(false) {
        ann.insert(key("verifyssl"), "0".to_string());
    }
    json!({
        "serviceAccount": format!("{}-s3", m.name),
        "secret": consts::S3_CREDENTIALS_SECRET,
        "annotations": ann,
    })
}

/// The `predictor.model` of a model a ClusterServingRuntime serves: the runtime and format, the
/// `storageUri` KServe fetches (a pre-staged claim is `pvc://`), the per-model arguments and
/// environment, and the model's PVC mounted read-write where the engine downloads or pulls.
fn runtime_model(
    pm: &PlannedModel,
    runtime: &dyn Runtime,
    weights: &Weights,
    uri: &str,
    args: &[String],
    env: &[Value],
    resources: &Value,
) -> Value {
    let m = &pm.model;
    let storage_uri = matches!(weights, Weights::Staged | Weights::Storage(_)).then_some(uri);
    let own_volume = matches!(weights, Weights::Hub | Weights::Pulled);
    let mut mounts = vec![json!({"name": "tmp", "mountPath": "/tmp"})];
    let mut volumes =
        vec![json!({"name": "tmp", "emptyDir": {"sizeLimit": consts::TMP_SIZE_LIMIT}})];
    if own_volume {
        mounts.push(json!({"name": "weights", "mountPath": consts::MODEL_MOUNT}));
        volumes
            .push(json!({"name": "weights", "persistentVolumeClaim": {"claimName": m.pvc_name()}}));
    }
    json!({
        "runtime": serving::runtime::serving_runtime_name(&m.preset),
        "format": runtime.model_format(),
        "storageUri": storage_uri,
        "args": args,
        "env": env,
        "resources": resources,
        "volumeMounts": mounts,
        "volumes": volumes,
    })
}

/// The ClusterServingRuntimes of the non-vLLM presets that models on `layer` use: one object per
/// preset (`platform-<preset>`), its image pinned, the engine's shared command line, probes on its
/// health path and the hardened container security context.
pub fn serving_runtimes_ctx(plan: &Plan, layer: &str) -> Vec<Value> {
    let mut seen = std::collections::BTreeMap::new();
    for pm in plan.models.iter().filter(|pm| pm.serving_layer == layer) {
        let runtime = serving::runtime::of(&pm.model);
        if let Some(format) = runtime.model_format() {
            seen.entry(pm.preset.clone()).or_insert_with(|| {
                runtime_object(plan, &pm.preset, &pm.preset_spec, runtime, format)
            });
        }
    }
    seen.into_values().collect()
}

fn runtime_object(
    plan: &Plan,
    name: &str,
    preset: &Preset,
    runtime: &dyn Runtime,
    format: &str,
) -> Value {
    let mut labels = common_labels(&plan.env);
    labels.insert(consts::LABEL_RUNTIME.into(), runtime.name().as_str().into());
    let probe = |period: u32, failures: u32, readiness: bool| {
        let how = match (readiness, runtime.readiness()) {
            (true, Readiness::Exec(cmd)) => json!({"exec": {"command": cmd}}),
            _ => json!({"httpGet": {"path": runtime.health_path(), "port": runtime.port()}}),
        };
        let mut p = how.as_object().cloned().unwrap_or_default();
        p.insert("periodSeconds".into(), period.into());
        p.insert("timeoutSeconds".into(), 5.into());
        p.insert("failureThreshold".into(), failures.into());
        Value::Object(p)
    };
    let env: Vec<Value> = runtime
        .server_env()
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    json!({
        "name": serving::runtime::serving_runtime_name(name),
        "labels": labels,
        "description": preset.description,
        "format": format,
        "image": preset.image_ref(),
        "command": runtime.server_command(),
        "args": runtime.server_args(),
        "env": env,
        "port": runtime.port(),
        "probes": {
            "startup": probe(10, 180, false),
            "readiness": probe(10, 3, true),
            "liveness": probe(30, 3, false),
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        },
    })
}

/// An autoscaled model's `autoscaling` as templates see it: `min`, `max`, `class` (hpa|keda),
/// `metric`, `target`; `resource` (cpu|memory, else null) with KServe's `scaleMetric` for it;
/// `prometheus` {serverAddress, query, threshold} for the Prometheus metrics (KEDA's trigger, or
/// KServe's External metric); `kserveMetrics`, the InferenceService's `autoScaling.metrics`
/// (KServe's KEDA reconciler builds its triggers only from these).
fn autoscaling_ctx(
    a: &crate::config::Autoscaling,
    namespace: &str,
    served_name: &str,
    plan: &Plan,
) -> Value {
    let target = a.target();
    let resource = a.metric.is_resource().then(|| a.metric.as_str());
    let prometheus = a.metric.prometheus_query(namespace, served_name).map(|q| {
        json!({
            "serverAddress": plan.config.autoscaling.prometheus.clone().unwrap_or_default(),
            "query": q,
            "threshold": target.to_string(),
        })
    });
    let kserve_metrics = match (&prometheus, resource) {
        (Some(p), _) => json!([{"type": "External", "external": {
            "metric": {"backend": "prometheus", "serverAddress": p["serverAddress"], "query": p["query"]},
            "target": {"type": "Value", "value": target.to_string()},
        }}]),
        (None, Some(r)) => json!([{"type": "Resource", "resource": {
            "name": r,
            "target": {"type": "Utilization", "averageUtilization": target},
        }}]),
        (None, None) => Value::Null,
    };
    json!({
        "min": a.min,
        "max": a.max,
        "class": a.class.as_str(),
        "metric": a.metric.as_str(),
        "target": target,
        "resource": resource,
        "prometheus": prometheus,
        "kserveMetrics": kserve_metrics,
    })
}

/// The vLLM container's environment and llm-d's (preset and model variables only): writable caches
/// on the read-only root filesystem, offline Hub when pre-staged, and the API key reference.
fn container_env(
    m: &Model,
    preset: &Preset,
    runtime: &dyn Runtime,
    weights: &Weights,
) -> (Vec<Value>, Vec<Value>) {
    if runtime.model_format().is_some() {
        return (runtime_env(m, preset, runtime, weights), Vec::new());
    }
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), "/tmp".into()),
        ("XDG_CACHE_HOME".into(), "/tmp/.cache".into()),
    ];
    if let Weights::Storage(uri) = weights {
        // KServe's storage initializer (or modelcar) fills /mnt/models for our own container.
        env.push(("STORAGE_URI".into(), uri.clone()));
    }
    if *weights != Weights::Hub {
        env.push(("HF_HOME".into(), "/tmp/hf".into()));
        env.push(("HF_HUB_OFFLINE".into(), "1".into()));
        env.push(("TRANSFORMERS_OFFLINE".into(), "1".into()));
    } else {
        env.push((
            "HF_HOME".into(),
            format!("{}/.hf-cache", consts::MODEL_MOUNT),
        ));
    }
    let mut extra = preset.env.clone();
    extra.extend(m.env.clone());
    env.retain(|(k, _)| !extra.contains_key(k));
    let mut llmd_env: Vec<Value> = extra
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    env.extend(extra);
    let mut env_list: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    secret_refs(m, runtime, weights, &mut [&mut env_list, &mut llmd_env]);
    (env_list, llmd_env)
}

/// A ClusterServingRuntime model's own environment: the engine's per-model variables, then the
/// preset's and the model's, then the Secret references.
fn runtime_env(m: &Model, preset: &Preset, runtime: &dyn Runtime, weights: &Weights) -> Vec<Value> {
    let mut env: BTreeMap<String, String> = runtime.env(m, weights).into_iter().collect();
    env.extend(preset.env.clone());
    env.extend(m.env.clone());
    let mut list: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    secret_refs(m, runtime, weights, &mut [&mut list]);
    list
}

/// The API key the engine enforces and the Hub token of a gated model, from the Secrets the config
/// names: references, so neither value ever enters the rendered tree.
fn secret_refs(m: &Model, runtime: &dyn Runtime, weights: &Weights, lists: &mut [&mut Vec<Value>]) {
    let mut refs = Vec::new();
    if let (Some(r), Some(var)) = (&m.api_key_secret, runtime.api_key_env()) {
        refs.push((var, r));
    }
    let hub = matches!(weights, Weights::Hub)
        || matches!(weights, Weights::Storage(u) if u.starts_with("hf://"));
    if let (Some(r), true) = (&m.hf_token_secret, hub) {
        refs.push((consts::HF_TOKEN_ENV, r));
    }
    for (var, r) in refs {
        let key = json!({"name": var,
                         "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}}});
        for list in lists.iter_mut() {
            list.retain(|e| e["name"] != var);
            list.push(key.clone());
        }
    }
}

/// Requests and limits as strings, with the GPUs on both.
fn resources(r: &crate::config::Resources, gpus: u32) -> Value {
    let mut requests: Map<String, Value> = r
        .requests
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().into()))
        .collect();
    let mut limits: Map<String, Value> = r
        .limits
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().into()))
        .collect();
    if gpus > 0 {
        requests.insert(consts::GPU_RESOURCE.into(), gpus.to_string().into());
        limits.insert(consts::GPU_RESOURCE.into(), gpus.to_string().into());
    }
    let mut out = Map::new();
    if !requests.is_empty() {
        out.insert("requests".into(), Value::Object(requests));
    }
    if !limits.is_empty() {
        out.insert("limits".into(), Value::Object(limits));
    }
    Value::Object(out)
}

fn tolerations(gpu_pod: bool) -> Value {
    if gpu_pod {
        json!([{"key": consts::GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}])
    } else {
        json!([])
    }
}

/// Probes on the engine's health path sized for slow cold starts: up to 30 min to load weights
/// (GPU) or warm up (CPU). Made once per process: vLLM is the one runtime so far.
fn probes(cpu: bool) -> Value {
    let rt = serving::runtime::default_runtime();
    let probe = |period: u32, failures: u32, timeout: u32| {
        json!({
            "httpGet": {"path": rt.health_path(), "port": rt.port()},
            "periodSeconds": period,
            "timeoutSeconds": timeout,
            "failureThreshold": failures,
        })
    };
    let startup_failures = if cpu { 60 } else { 180 };
    json!({
        "startup": probe(10, startup_failures, 5),
        "readiness": probe(10, 3, 5),
        "liveness": probe(30, 3, 10),
    })
}

/// The container's volume mounts: weights (read-only when pre-staged; none when KServe puts them
/// at /mnt/models), /tmp, shared memory.
fn volume_mounts(staged: Option<bool>) -> Value {
    let mut v = Vec::new();
    if let Some(read_only) = staged {
        v.push(json!({"name": "weights", "mountPath": consts::MODEL_MOUNT, "readOnly": read_only}));
    }
    v.push(json!({"name": "tmp", "mountPath": "/tmp"}));
    v.push(json!({"name": "shm", "mountPath": "/dev/shm"}));
    Value::Array(v)
}

/// The pod's volumes behind [`volume_mounts`].
fn volumes(pvc: &str, staged: Option<bool>) -> Value {
    let mut v = Vec::new();
    if let Some(read_only) = staged {
        v.push(json!({"name": "weights", "persistentVolumeClaim": {"claimName": pvc, "readOnly": read_only}}));
    }
    v.push(json!({"name": "tmp", "emptyDir": {"sizeLimit": consts::TMP_SIZE_LIMIT}}));
    v.push(json!({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}));
    Value::Array(v)
}

/// `pvc://<claim>/<dir>` when pre-staged, the URI KServe fetches, else the Hub repository (with
/// its revision unless main).
fn weights_uri(m: &Model, weights: &Weights, pvc: &str, dir: &str) -> String {
    match weights {
        Weights::Staged => format!("pvc://{pvc}/{dir}"),
        Weights::Storage(uri) => uri.clone(),
        Weights::Hub | Weights::Pulled => {
            serving::weights::hub_uri(m.hf_repo().unwrap_or_default(), &m.revision)
        }
    }
}

fn parallelism(gpus: u32, tp: Option<u32>) -> Value {
    if gpus > 1 || tp.is_some_and(|t| t > 1) {
        json!({"tensor": tp.unwrap_or(gpus)})
    } else {
        Value::Null
    }
}
