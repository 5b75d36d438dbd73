//! Which inputs a render uses: the catalog (the repository's or the embedded one) and the
//! repository templates that replace or extend the embedded ones. `plan` and `lint` print it.

use serde::Serialize;

use super::engine::{Origin, Templates, EMBEDDED};
use crate::catalog::CatalogSource;

/// Repository templates (under `templates/`), by what they do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TemplateOrigins {
    /// Replace the embedded template of the same name.
    pub overridden: Vec<String>,
    /// New names, usable from the catalog's serving layers.
    pub added: Vec<String>,
    /// Repository copies identical to the embedded template (this source repository's own
    /// `templates/`, or an untouched `catalog eject --templates`): nothing overridden.
    pub identical: Vec<String>,
}

impl TemplateOrigins {
    pub fn of(templates: &Templates) -> TemplateOrigins {
        let mut out = TemplateOrigins::default();
        for name in templates.names() {
            if !matches!(templates.origin(&name), Some(Origin::Repo(_))) {
                continue;
            }
            match EMBEDDED.iter().find(|(n, _)| *n == name) {
                Some((_, text)) if templates.source(&name).as_deref() == Some(*text) => {
                    out.identical.push(name)
                }
                Some(_) => out.overridden.push(name),
                None => out.added.push(name),
            }
        }
        out
    }

    /// Whether every template renders as shipped (none overridden or added): output the golden
    /// tests have seen.
    pub fn all_shipped(&self) -> bool {
        self.overridden.is_empty() && self.added.is_empty()
    }

    /// `embedded` or `embedded; overridden by templates/: a, b; added: c`.
    pub fn describe(&self) -> String {
        let mut s = "embedded".to_string();
        if !self.overridden.is_empty() {
            s.push_str(&format!(
                "; overridden by templates/: {}",
                self.overridden.join(", ")
            ));
        }
        if !self.added.is_empty() {
            s.push_str(&format!("; added in templates/: {}", self.added.join(", ")));
        }
        if !self.identical.is_empty() {
            s.push_str(&format!(
                " ({} identical cop{} in templates/)",
                self.identical.len(),
                if self.identical.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            ));
        }
        s
    }
}

/// The catalog and templates a render uses (`plan -o json` key `inputs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    pub catalog: CatalogSource,
    pub templates: TemplateOrigins,
}

impl Provenance {
    pub fn new(catalog: &CatalogSource, templates: &Templates) -> Provenance {
        Provenance {
            catalog: catalog.clone(),
            templates: TemplateOrigins::of(templates),
        }
    }

    /// `catalog: … · templates: …` for humans.
    pub fn describe(&self) -> String {
        format!(
            "catalog: {} · templates: {}",
            self.catalog.describe(),
            self.templates.describe()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_templates_are_told_apart_as_overrides_or_additions() {
        let dir = tempfile::tempdir().unwrap();
        let t = Templates::load(dir.path()).unwrap();
        assert_eq!(TemplateOrigins::of(&t), TemplateOrigins::default());
        assert_eq!(TemplateOrigins::of(&t).describe(), "embedded");
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/namespace.yaml.j2"), "x\n").unwrap();
        std::fs::write(dir.path().join("templates/extra.yaml.j2"), "x\n").unwrap();
        let same = EMBEDDED
            .iter()
            .find(|(n, _)| *n == "gateway.yaml.j2")
            .unwrap()
            .1;
        std::fs::write(dir.path().join("templates/gateway.yaml.j2"), same).unwrap();
        let t = Templates::load(dir.path()).unwrap();
        let o = TemplateOrigins::of(&t);
        assert_eq!(o.overridden, ["namespace.yaml.j2"]);
        assert_eq!(o.added, ["extra.yaml.j2"]);
        assert_eq!(o.identical, ["gateway.yaml.j2"]);
        assert_eq!(
            o.describe(),
            "embedded; overridden by templates/: namespace.yaml.j2; added in templates/: extra.yaml.j2 (1 identical copy in templates/)"
        );
    }
}
