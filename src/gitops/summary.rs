//! Commit messages that say what a render changed: groups switched on/off, Applications added or
//! removed, models added, changed or removed.

use std::collections::BTreeSet;

use super::{ChangeKind, ChangeSet};

/// What a change set means in platform terms.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub groups_enabled: BTreeSet<String>,
    pub groups_disabled: BTreeSet<String>,
    pub apps_added: BTreeSet<String>,
    pub apps_removed: BTreeSet<String>,
    pub apps_changed: BTreeSet<String>,
    pub models_added: BTreeSet<String>,
    pub models_changed: BTreeSet<String>,
    pub models_removed: BTreeSet<String>,
}

/// `apps/<layer>/<group>/<app>.yaml` → (group, app); `models/<model>/…` → model.
enum Part {
    App { group: String, app: String },
    Model(String),
    Other,
}

fn classify(env_base: &str, path: &str) -> Part {
    let Some(rest) = path
        .strip_prefix(env_base)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Part::Other;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["apps", _layer, group, file] => Part::App {
            group: group.to_string(),
            app: file.trim_end_matches(".yaml").to_string(),
        },
        ["models", model, ..] => Part::Model(model.to_string()),
        _ => Part::Other,
    }
}

impl Summary {
    pub fn of(env_base: &str, set: &ChangeSet) -> Summary {
        let mut s = Summary::default();
        let (mut before, mut after) = (BTreeSet::new(), BTreeSet::new());
        let (mut models_before, mut models_after) = (BTreeSet::new(), BTreeSet::new());
        for p in &set.unchanged {
            match classify(env_base, p) {
                Part::App { group, .. } => {
                    before.insert(group.clone());
                    after.insert(group);
                }
                Part::Model(m) => {
                    models_before.insert(m.clone());
                    models_after.insert(m);
                }
                Part::Other => {}
            }
        }
        for c in &set.changes {
            match (classify(env_base, &c.path), c.kind) {
                (Part::App { group, app }, kind) => {
                    if kind != ChangeKind::Add {
                        before.insert(group.clone());
                    }
                    if kind != ChangeKind::Delete {
                        after.insert(group);
                    }
                    match kind {
                        ChangeKind::Add => s.apps_added.insert(app),
                        ChangeKind::Delete => s.apps_removed.insert(app),
                        ChangeKind::Modify => s.apps_changed.insert(app),
                    };
                }
                (Part::Model(m), kind) => {
                    if kind != ChangeKind::Add {
                        models_before.insert(m.clone());
                    }
                    if kind != ChangeKind::Delete {
                        models_after.insert(m.clone());
                    }
                    if kind == ChangeKind::Modify {
                        s.models_changed.insert(m);
                    }
                }
                (Part::Other, _) => {}
            }
        }
        s.groups_enabled = after.difference(&before).cloned().collect();
        s.groups_disabled = before.difference(&after).cloned().collect();
        s.models_added = models_after.difference(&models_before).cloned().collect();
        s.models_removed = models_before.difference(&models_after).cloned().collect();
        s.models_changed = s
            .models_changed
            .difference(&s.models_added)
            .cloned()
            .collect::<BTreeSet<_>>()
            .difference(&s.models_removed)
            .cloned()
            .collect();
        s
    }

    fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut line = |label: &str, set: &BTreeSet<String>| {
            if !set.is_empty() {
                out.push(format!(
                    "{label}: {}",
                    set.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        };
        line("groups enabled", &self.groups_enabled);
        line("groups disabled", &self.groups_disabled);
        line("apps added", &self.apps_added);
        line("apps removed", &self.apps_removed);
        line("apps changed", &self.apps_changed);
        line("models added", &self.models_added);
        line("models changed", &self.models_changed);
        line("models removed", &self.models_removed);
        out
    }
}

/// `platform: render <env> (profile P)` + the user's message + what changed + file counts.
pub fn commit_message(env: &str, profile: &str, set: &ChangeSet, user: Option<&str>) -> String {
    let base = crate::layout::tree(env);
    let summary = Summary::of(&base, set);
    let mut msg = match user {
        Some(u) if !u.trim().is_empty() => format!("platform: {}\n\n", u.trim()),
        _ => format!("platform: render {env} (profile {profile})\n\n"),
    };
    if user.is_some() {
        msg.push_str(&format!("Rendered {env} with profile {profile}.\n"));
    }
    for l in summary.lines() {
        msg.push_str(&format!("- {l}\n"));
    }
    msg.push_str(&format!(
        "- files: {} added, {} changed, {} removed\n",
        set.count(ChangeKind::Add),
        set.count(ChangeKind::Modify),
        set.count(ChangeKind::Delete)
    ));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::FileChange;

    fn change(path: &str, kind: ChangeKind) -> FileChange {
        FileChange {
            path: path.into(),
            kind,
            old: None,
        }
    }

    #[test]
    fn summarises_groups_apps_and_models() {
        let set = ChangeSet {
            changes: vec![
                change(
                    "clusters/e/apps/serving/llm-d/kserve-llmisvc.yaml",
                    ChangeKind::Add,
                ),
                change(
                    "clusters/e/apps/serving/llm-d/qwen-llmd.yaml",
                    ChangeKind::Add,
                ),
                change(
                    "clusters/e/models/qwen-llmd/llmd-llminferenceservice.yaml",
                    ChangeKind::Add,
                ),
                change(
                    "clusters/e/apps/routing/public-edge/external-dns.yaml",
                    ChangeKind::Delete,
                ),
                change(
                    "clusters/e/models/qwen-cpu/kserve-inferenceservice.yaml",
                    ChangeKind::Modify,
                ),
            ],
            foreign: vec![],
            unchanged: vec![
                "clusters/e/apps/serving/kserve/kserve.yaml".into(),
                "clusters/e/models/qwen-cpu/model-pvc.yaml".into(),
            ],
        };
        let s = Summary::of("clusters/e", &set);
        assert_eq!(s.groups_enabled, BTreeSet::from(["llm-d".to_string()]));
        assert_eq!(
            s.groups_disabled,
            BTreeSet::from(["public-edge".to_string()])
        );
        assert_eq!(s.apps_removed, BTreeSet::from(["external-dns".to_string()]));
        assert_eq!(s.models_added, BTreeSet::from(["qwen-llmd".to_string()]));
        assert_eq!(s.models_changed, BTreeSet::from(["qwen-cpu".to_string()]));
        let msg = commit_message("e", "full", &set, Some("enable llm-d"));
        assert!(msg.starts_with("platform: enable llm-d\n\n"), "{msg}");
        assert!(msg.contains("- groups enabled: llm-d\n"), "{msg}");
        assert!(
            msg.contains("- files: 3 added, 1 changed, 1 removed\n"),
            "{msg}"
        );
    }
}
