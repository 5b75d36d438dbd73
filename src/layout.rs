//! The layout of the rendered tree: every path under `clusters/<env>/` and every name `root` gives an
//! object that other commands find again (root apps, serving layers' shared apps and Gateways). The
//! renderer writes these paths, and the cluster commands, `up` and git use the same functions, so
//! nothing re-derives a path or a name from text.
//!
//! ```text
//! clusters/<env>/
//!   project.yaml                          AppProject
//!   root-<layer>.yaml                     app-of-apps of one layer (Application `<env>-<layer>`)
//!   apps/<layer>/<group>/<app>.yaml       child Applications
//!   serving/<serving-layer>/<file>        shared objects of a serving layer
//!   serving/routing/<file>                the models' stable endpoint (Gateway, ReferenceGrants)
//!   serving/routing/route-<model>.yaml    one model's HTTPRoute
//!   models/<app>/<file>                   one model's manifests (<app>: the model's name, or
//!                                         `<model>-<layer>` for a declaration `move` added)
//!   argocd/                               Argo CD's hand-over kustomization
//!   objects/<app>/<file>                  a catalog objects file an app syncs (PriorityClasses)
//!   groups.generated.yaml                 `resolve-groups`
//! ```
//! `<file>` is the template's name without `.j2`.

use crate::consts;

/// The template of a model's weights volume: rendered only when the model's layer gives it a PVC.
pub const MODEL_PVC_TEMPLATE: &str = "model-pvc.yaml.j2";

/// The template of a model's S3 ServiceAccount: rendered only when KServe's storage initializer
/// reads the model's weights from `s3://`.
pub const MODEL_S3_SA_TEMPLATE: &str = "kserve-s3-serviceaccount.yaml.j2";

/// The template of a serving layer's ClusterServingRuntimes: rendered only when one of its models
/// runs on one (llama.cpp, Ollama).
pub const SERVING_RUNTIMES_TEMPLATE: &str = "kserve-servingruntimes.yaml.j2";
/// The template of a raw-vLLM model's HPA or KEDA ScaledObject: rendered only for a model with
/// `autoscaling:`.
pub const MODEL_AUTOSCALER_TEMPLATE: &str = "raw-vllm-autoscaler.yaml.j2";

/// The template of a model's ReferenceGrant: rendered only when the model's stable route sends
/// traffic to it.
pub const MODEL_GRANT_TEMPLATE: &str = "model-referencegrant.yaml.j2";

/// The Application of the models' stable endpoint (catalog `routing:`).
pub const ROUTING_APP: &str = "model-routing";

/// The template that writes a catalog objects file (`source: { objects: FILE }`) into the tree.
pub const CATALOG_OBJECTS_TEMPLATE: &str = "catalog-objects.yaml.j2";

/// `clusters/<env>`: the tree one environment renders into.
pub fn tree(env: &str) -> String {
    format!("{}/{env}", consts::CLUSTERS_DIR)
}

/// `clusters/<env>/project.yaml`.
pub fn project_file(env: &str) -> String {
    format!("{}/project.yaml", tree(env))
}

/// `clusters/<env>/root-<layer>.yaml`: the app-of-apps of one layer.
pub fn root_file(env: &str, layer: &str) -> String {
    format!("{}/root-{layer}.yaml", tree(env))
}

/// `<env>-<layer>`: the name of the app-of-apps of one layer.
pub fn root_app_name(env: &str, layer: &str) -> String {
    format!("{env}-{layer}")
}

/// `clusters/<env>/apps/<layer>`: what a layer's root app syncs.
pub fn apps_dir(env: &str, layer: &str) -> String {
    format!("{}/apps/{layer}", tree(env))
}

/// `clusters/<env>/apps/<layer>/<group>`: where a group's apps are rendered.
pub fn group_path(env: &str, layer: &str, group: &str) -> String {
    format!("{}/{group}", apps_dir(env, layer))
}

/// `clusters/<env>/apps/<layer>/<group>/<app>.yaml`: one child Application.
pub fn app_file(env: &str, layer: &str, group: &str, app: &str) -> String {
    format!("{}/{app}.yaml", group_path(env, layer, group))
}

/// `clusters/<env>/models`: every model's manifests.
pub fn models_root(env: &str) -> String {
    format!("{}/models", tree(env))
}

/// `clusters/<env>/models/<model>`: one model's serving manifests.
pub fn model_dir(env: &str, model: &str) -> String {
    format!("{}/{model}", models_root(env))
}

/// `clusters/<env>/serving`: every serving layer's shared objects.
pub fn serving_root(env: &str) -> String {
    format!("{}/serving", tree(env))
}

/// `clusters/<env>/serving/<layer>`: one serving layer's shared objects.
pub fn serving_dir(env: &str, layer: &str) -> String {
    format!("{}/{layer}", serving_root(env))
}

/// `clusters/<env>/serving/routing`: the models' stable endpoint (a directory Argo CD reads
/// flat, like every other).
pub fn routing_dir(env: &str) -> String {
    format!("{}/routing", serving_root(env))
}

/// `clusters/<env>/serving/routing/route-<model>.yaml`: one model's HTTPRoute.
pub fn route_file(env: &str, model: &str) -> String {
    format!("{}/route-{model}.yaml", routing_dir(env))
}

/// `clusters/<env>/argocd`: the kustomization through which Argo CD manages itself.
pub fn argocd_dir(env: &str) -> String {
    format!("{}/argocd", tree(env))
}

/// `clusters/<env>/objects`: the catalog's objects files, one directory per app that syncs one.
pub fn objects_root(env: &str) -> String {
    format!("{}/objects", tree(env))
}

/// `clusters/<env>/objects/<app>`: what an app with `source: { objects: FILE }` syncs.
pub fn objects_dir(env: &str, app: &str) -> String {
    format!("{}/{app}", objects_root(env))
}

/// `clusters/<env>/groups.generated.yaml`.
pub fn groups_file(env: &str) -> String {
    format!("{}/{}", tree(env), consts::GROUPS_FILE)
}

/// The file a template renders into: its name without `.j2`.
pub fn output_name(template: &str) -> &str {
    template.strip_suffix(".j2").unwrap_or(template)
}

/// `<dir>/<template without .j2>`.
pub fn output_file(dir: &str, template: &str) -> String {
    format!("{dir}/{}", output_name(template))
}

/// `<serving-layer>-gateway`: the Application holding a serving layer's shared objects.
pub fn shared_app_name(serving_layer: &str) -> String {
    format!("{serving_layer}-gateway")
}

/// The name of a serving layer's shared Gateway: the catalog's `gatewayName`, else `<layer>-gateway`.
pub fn gateway_name(layer: &str, configured: Option<&str>) -> String {
    configured
        .map(str::to_string)
        .unwrap_or_else(|| format!("{layer}-gateway"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_under_the_environment_tree() {
        assert_eq!(project_file("e"), "clusters/e/project.yaml");
        assert_eq!(root_file("e", "core"), "clusters/e/root-core.yaml");
        assert_eq!(root_app_name("e", "core"), "e-core");
        assert_eq!(
            app_file("e", "core", "g", "a"),
            "clusters/e/apps/core/g/a.yaml"
        );
        assert_eq!(
            output_file(&model_dir("e", "m"), "model-pvc.yaml.j2"),
            "clusters/e/models/m/model-pvc.yaml"
        );
        assert_eq!(serving_dir("e", "kserve"), "clusters/e/serving/kserve");
        assert_eq!(argocd_dir("e"), "clusters/e/argocd");
        assert_eq!(groups_file("e"), "clusters/e/groups.generated.yaml");
        assert_eq!(gateway_name("kserve", None), "kserve-gateway");
        assert_eq!(gateway_name("kserve", Some("gw")), "gw");
    }
}
