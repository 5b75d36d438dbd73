//! The catalog's consistency checks, one function per part: layers, profiles, groups and their
//! gates and apps, serving layers, presets. [`Catalog::check`] runs them all.

use std::collections::{BTreeMap, BTreeSet};

use super::{name_error, unknown, Catalog, Group, Profile, RoutingSpec};
use crate::diag::Diagnostic;
use crate::names::{is_dns1123_label, is_dns1123_subdomain};

/// What the group checks share across groups: every app name and every gating feature seen.
#[derive(Default)]
struct Seen<'a> {
    groups: BTreeSet<&'a str>,
    apps: BTreeMap<&'a str, &'a str>,
    features: BTreeMap<&'a str, &'a str>,
}

const CRD_NAME_HELP: &str = "a CRD is named <plural>.<group> in lower case, and its group holds a \
     dot (e.g. gateways.gateway.networking.k8s.io): write the name `kubectl get crd` lists";

/// `<plural>.<group>` as the API server requires of a CRD: a lowercase DNS subdomain whose group
/// part has at least one dot (so at least three labels).
fn is_crd_name(name: &str) -> bool {
    is_dns1123_subdomain(name) && name.split('.').count() >= 3
}

impl Catalog {
    fn layer_set(&self) -> BTreeSet<&str> {
        self.layers.iter().map(String::as_str).collect()
    }

    /// Layers: each once, each a DNS label.
    pub(super) fn check_layers(&self, out: &mut Vec<Diagnostic>) {
        let f = &self.files;
        let layer_set: BTreeSet<&str> = self.layers.iter().map(String::as_str).collect();
        if layer_set.len() != self.layers.len() {
            out.push(
                Diagnostic::error("a layer is listed twice")
                    .file(&f.layers)
                    .field("layers"),
            );
        }
        for l in &self.layers {
            if !is_dns1123_label(l) {
                out.push(name_error(&f.layers, "layers", l));
            }
        }
    }

    /// Profiles: at least one, known layers, in layer order, each containing the one before.
    pub(super) fn check_profiles(&self, out: &mut Vec<Diagnostic>) {
        let f = &self.files;
        let layer_set = self.layer_set();
        // Profiles: known layers, in layer order, additive.
        let mut seen_profiles = BTreeSet::new();
        let mut previous: Option<&Profile> = None;
        if self.profiles.is_empty() {
            out.push(
                Diagnostic::error("no profiles defined")
                    .file(&f.layers)
                    .field("profiles"),
            );
        }
        for p in &self.profiles {
            let field = format!("profiles[{}]", p.name);
            if !seen_profiles.insert(p.name.as_str()) {
                out.push(
                    Diagnostic::error(format!("profile `{}` is defined twice", p.name))
                        .file(&f.layers)
                        .field(&field),
                );
            }
            for l in &p.layers {
                if !layer_set.contains(l.as_str()) {
                    out.push(unknown(
                        &f.layers,
                        &format!("{field}.layers"),
                        "layer",
                        l,
                        &self.layers,
                    ));
                }
            }
            let idx: Vec<usize> = p
                .layers
                .iter()
                .filter_map(|l| self.layer_index(l))
                .collect();
            if idx.windows(2).any(|w| w[0] >= w[1]) {
                out.push(
                    Diagnostic::error("layers are not in apply order")
                        .file(&f.layers)
                        .field(format!("{field}.layers"))
                        .help(format!(
                            "list them in the order of `layers`: {}",
                            self.layers.join(", ")
                        )),
                );
            }
            if let Some(prev) = previous {
                let missing: Vec<&str> = prev
                    .layers
                    .iter()
                    .filter(|l| !p.layers.contains(l))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    out.push(
                        Diagnostic::error(format!(
                            "profile `{}` drops layer(s) {} of the narrower profile `{}`",
                            p.name,
                            missing.join(", "),
                            prev.name
                        ))
                        .file(&f.layers)
                        .field(format!("{field}.layers"))
                        .help("profiles are additive: each one contains every layer of the profile before it"),
                    );
                }
            }
            previous = Some(p);
        }
    }

    /// Groups: names, layers, gates, references, then their apps.
    pub(super) fn check_groups(&self, out: &mut Vec<Diagnostic>) {
        let mut seen = Seen::default();
        for g in &self.groups {
            let field = format!("groups[{}]", g.name);
            self.check_group(g, &field, &mut seen, out);
            self.check_gate(g, &field, &mut seen, out);
            self.check_apps(g, &field, &mut seen, out);
            self.check_crds(g, &field, out);
        }
    }

    /// The CRD names a group's apps install (`crds:`, what `doctor` looks for): each must be a name
    /// the API server accepts, else doctor would report it missing forever.
    fn check_crds(&self, g: &Group, field: &str, out: &mut Vec<Diagnostic>) {
        for a in &g.apps {
            for crd in a.crds.iter().filter(|c| !is_crd_name(c)) {
                out.push(
                    Diagnostic::error(format!("`{crd}` is not a CustomResourceDefinition name"))
                        .file(&self.files.groups)
                        .field(format!("{field}.apps[{}].crds", a.name))
                        .help(CRD_NAME_HELP),
                );
            }
        }
    }

    /// One group's name, layer and the groups and layers it requires.
    fn check_group<'a>(
        &'a self,
        g: &'a Group,
        field: &str,
        seen: &mut Seen<'a>,
        out: &mut Vec<Diagnostic>,
    ) {
        let f = &self.files;
        let layer_set = self.layer_set();
        let group_names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        let seen_groups = &mut seen.groups;
        if !is_dns1123_label(&g.name) {
            out.push(name_error(&f.groups, field, &g.name));
        }
        if !seen_groups.insert(g.name.as_str()) {
            out.push(
                Diagnostic::error(format!("group `{}` is defined twice", g.name))
                    .file(&f.groups)
                    .field(field),
            );
        }
        if !layer_set.contains(g.layer.as_str()) {
            out.push(unknown(
                &f.groups,
                &format!("{field}.layer"),
                "layer",
                &g.layer,
                &self.layers,
            ));
        }
        for r in &g.requires {
            if !group_names.contains(&r.as_str()) {
                out.push(unknown(
                    &f.groups,
                    &format!("{field}.requires"),
                    "group",
                    r,
                    &group_names,
                ));
            }
        }
        for l in &g.requires_layers {
            if !layer_set.contains(l.as_str()) {
                out.push(unknown(
                    &f.groups,
                    &format!("{field}.requiresLayers"),
                    "layer",
                    l,
                    &self.layers,
                ));
            }
        }
    }

    /// A core group has no gate; an optional one is gated by one feature, or by a config value.
    fn check_gate<'a>(
        &self,
        g: &'a Group,
        field: &str,
        seen: &mut Seen<'a>,
        out: &mut Vec<Diagnostic>,
    ) {
        let f = &self.files;
        let features = &mut seen.features;
        let error = |msg: &str, path: String| Diagnostic::error(msg).file(&f.groups).field(path);
        match (&g.gate, g.core) {
            (Some(_), true) => out.push(
                error("a core group cannot have a gate", field.to_string())
                    .help("remove `core: true` or the `gate`"),
            ),
            (None, false) => out.push(error("an optional group needs a gate", field.to_string()).help(
                "add `core: true`, or `gate: {feature: NAME, default: false}`, or `gate: {config: KEY, equals: VALUE}`",
            )),
            (Some(gate), false) => match (&gate.feature, &gate.config, &gate.equals) {
                (Some(feat), None, None) => {
                    if let Some(other) = features.insert(feat.as_str(), g.name.as_str()) {
                        out.push(error(
                            &format!("feature `{feat}` already gates group `{other}`"),
                            format!("{field}.gate.feature"),
                        ));
                    }
                }
                (None, Some(_), Some(_)) => {}
                _ => out.push(error(
                    "a gate is either `feature` (+ `default`) or `config` + `equals`",
                    format!("{field}.gate"),
                )),
            },
            (None, true) => {}
        }
    }

    /// A group's apps: names, namespaces, unique across groups, one source kind, helm-only values.
    fn check_apps<'a>(
        &self,
        g: &'a Group,
        field: &str,
        seen: &mut Seen<'a>,
        out: &mut Vec<Diagnostic>,
    ) {
        let f = &self.files;
        let app_names = &mut seen.apps;
        for a in &g.apps {
            let afield = format!("{field}.apps[{}]", a.name);
            if !is_dns1123_subdomain(&a.name) {
                out.push(name_error(&f.groups, &afield, &a.name));
            }
            if !is_dns1123_label(&a.namespace) {
                out.push(name_error(
                    &f.groups,
                    &format!("{afield}.namespace"),
                    &a.namespace,
                ));
            }
            if let Some(other) = app_names.insert(a.name.as_str(), g.name.as_str()) {
                out.push(
                    Diagnostic::error(format!(
                        "app `{}` is also defined in group `{other}`",
                        a.name
                    ))
                    .file(&f.groups)
                    .field(&afield)
                    .help("Argo CD Application names are unique per namespace: rename one"),
                );
            }
            let kinds = [
                a.source.helm.is_some(),
                a.source.git.is_some(),
                a.source.path.is_some(),
                a.source.objects.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                out.push(
                    Diagnostic::error(
                        "a source is exactly one of `helm`, `git`, `path` or `objects`",
                    )
                    .file(&f.groups)
                    .field(format!("{afield}.source")),
                );
            }
            let helm_only = [
                ("valuesFile", a.values_file.is_some()),
                ("values", a.values.is_some()),
            ];
            for (key, _) in helm_only.iter().filter(|(_, set)| *set) {
                if a.source.helm.is_none() {
                    out.push(
                        Diagnostic::error(format!("`{key}` only applies to a helm source"))
                            .file(&f.groups)
                            .field(format!("{afield}.{key}")),
                    );
                }
            }
            if let Some(v) = &a.values {
                if !v.is_object() {
                    out.push(
                        Diagnostic::error("`values` must be a mapping")
                            .file(&f.groups)
                            .field(format!("{afield}.values")),
                    );
                }
            }
        }
    }

    /// Serving layers: known names, their group, namespace and templates exist.
    pub(super) fn check_serving(
        &self,
        known_templates: &BTreeSet<String>,
        out: &mut Vec<Diagnostic>,
    ) {
        let f = &self.files;
        let group_names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        // Serving layers.
        for (name, s) in &self.serving {
            let field = format!("servingLayers.{name}");
            let layers = crate::config::serving_layer_names();
            if !layers.contains(&name.as_str()) {
                out.push(unknown(&f.serving, &field, "serving layer", name, &layers));
            }
            if !group_names.contains(&s.group.as_str()) {
                out.push(unknown(
                    &f.serving,
                    &format!("{field}.group"),
                    "group",
                    &s.group,
                    &group_names,
                ));
            }
            if !is_dns1123_label(&s.namespace) {
                out.push(name_error(
                    &f.serving,
                    &format!("{field}.namespace"),
                    &s.namespace,
                ));
            }
            for t in s.templates.iter().chain(&s.shared_templates) {
                if !known_templates.contains(t) {
                    let names: Vec<&str> = known_templates.iter().map(String::as_str).collect();
                    out.push(unknown(
                        &f.serving,
                        &format!("{field}.templates"),
                        "template",
                        t,
                        &names,
                    ));
                }
            }
        }
        if let Some(r) = &self.routing {
            self.check_routing(r, &group_names, known_templates, out);
        }
    }

    /// `routing:`: its group and templates exist, its names are valid.
    fn check_routing(
        &self,
        r: &RoutingSpec,
        group_names: &[&str],
        known_templates: &BTreeSet<String>,
        out: &mut Vec<Diagnostic>,
    ) {
        let f = &self.files;
        if !group_names.contains(&r.group.as_str()) {
            out.push(unknown(
                &f.serving,
                "routing.group",
                "group",
                &r.group,
                group_names,
            ));
        }
        for (field, v) in [
            ("routing.namespace", &r.namespace),
            ("routing.gatewayName", &r.gateway_name),
        ] {
            if !is_dns1123_label(v) {
                out.push(name_error(&f.serving, field, v));
            }
        }
        let segment = r.path_prefix.trim_matches('/');
        if !r.path_prefix.starts_with('/')
            || segment.is_empty()
            || !segment.split('/').all(is_dns1123_label)
        {
            out.push(
                Diagnostic::error(format!("`{}` is not a path prefix", r.path_prefix))
                    .file(&f.serving)
                    .field("routing.pathPrefix")
                    .help("write `/` and lowercase DNS-style segments, e.g. /models"),
            );
        }
        for t in r.templates.iter().chain(std::iter::once(&r.route_template)) {
            if !known_templates.contains(t) {
                let names: Vec<&str> = known_templates.iter().map(String::as_str).collect();
                out.push(unknown(
                    &f.serving,
                    "routing.templates",
                    "template",
                    t,
                    &names,
                ));
            }
        }
    }

    /// Presets: images pinned by a well-formed digest, given in `digest:`.
    pub(super) fn check_presets(&self, out: &mut Vec<Diagnostic>) {
        let f = &self.files;
        // Presets.
        for (name, p) in &self.presets {
            let field = format!("presets.{name}");
            match &p.digest {
                Some(d) if !d.is_empty() => {
                    let hex = d.strip_prefix("sha256:").unwrap_or("");
                    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        out.push(Diagnostic::error(format!("`{d}` is not a sha256 digest"))
                            .file(&f.presets).field(format!("{field}.digest"))
                            .help("write sha256:<64 hex digits> (e.g. from `crane digest IMAGE` or `docker buildx imagetools inspect IMAGE`)"));
                    }
                }
                _ => out.push(
                    Diagnostic::warning(format!("image `{}` is not digest-pinned", p.image))
                        .file(&f.presets).field(format!("{field}.digest"))
                        .help("add `digest: sha256:…` so every node runs the same bytes (`crane digest IMAGE`)"),
                ),
            }
            if p.image.contains('@') {
                out.push(
                    Diagnostic::error("put the digest in `digest:`, not in `image:`")
                        .file(&f.presets)
                        .field(format!("{field}.image")),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::engine::Templates;

    /// The embedded catalog, loaded (hence checked) as a repository without catalog/ sees it, and
    /// the template names it was checked against.
    fn shipped() -> (Catalog, BTreeSet<String>) {
        let dir = tempfile::tempdir().unwrap();
        let names = Templates::load(dir.path()).unwrap().names();
        (Catalog::load(dir.path(), &names).unwrap(), names)
    }

    fn errors(c: &Catalog, templates: &BTreeSet<String>) -> Vec<String> {
        c.check(templates)
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn crd_names_must_be_plural_dot_group() {
        let (mut c, t) = shipped();
        assert_eq!(errors(&c, &t), Vec::<String>::new());
        let (group, app) = c
            .groups
            .iter_mut()
            .find_map(|g| {
                let name = g.name.clone();
                g.apps
                    .iter_mut()
                    .find(|a| !a.crds.is_empty())
                    .map(|a| (name, a))
            })
            .unwrap();
        let bad = [
            "Gateways.gateway.networking.k8s.io",
            "gateways",
            "gateways.example",
            "gateways..k8s.io",
            "gateways.gateway_api.k8s.io",
            "",
        ];
        app.crds = bad.iter().map(ToString::to_string).collect();
        app.crds.push("widgets.example.com".into());
        let field = format!("groups[{group}].apps[{}].crds", app.name);
        let errs = errors(&c, &t);
        assert_eq!(errs.len(), bad.len(), "{errs:#?}");
        for (crd, e) in bad.iter().zip(&errs) {
            assert!(
                e.starts_with("embedded catalog/groups.yaml")
                    && e.contains(&format!(
                        "{field}: `{crd}` is not a CustomResourceDefinition name"
                    ))
                    && e.contains("help: a CRD is named <plural>.<group>"),
                "{crd}: {e}"
            );
        }
    }

    #[test]
    fn values_apply_to_helm_sources_only() {
        let (mut c, t) = shipped();
        assert_eq!(errors(&c, &t), Vec::<String>::new());
        let app = c
            .groups
            .iter_mut()
            .flat_map(|g| g.apps.iter_mut())
            .find(|a| a.source.helm.is_none())
            .unwrap();
        let name = app.name.clone();
        app.values = Some(serde_json::json!({"replicas": 2}));
        app.values_file = Some("values/x.yaml".into());
        let errs = errors(&c, &t);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        for key in ["values", "valuesFile"] {
            assert!(
                errs.iter().any(|e| e.contains(&format!(
                    "apps[{name}].{key}: `{key}` only applies to a helm source"
                ))),
                "{key}: {errs:#?}"
            );
        }
    }
}
