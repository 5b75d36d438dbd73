//! The steps of `platform move`, as data: `--dry-run` prints this list, a real run executes the
//! same list, and every step is idempotent (it looks at git and the cluster first), so a re-run
//! after an interruption passes quickly over what is done and continues where it stopped.

use crate::config::ServingLayer;

/// One step of a move of a model from layer `from` to layer `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Target guard (done by connecting), both layers movable and enabled, the model routed,
    /// `fit` on the destination's GPU.
    Preflight,
    /// Commit (and push) config.yaml with `moveTo:` and the tree rendering the model on both
    /// layers: a second Application `<model>-<to>`, the route listing both backends (the new one
    /// at weight 0).
    Declare,
    /// Sync the new Application (the routing app follows the branch) and wait until both are
    /// done at the pushed commit.
    SyncNew,
    /// The destination reads pre-staged weights: pause it, stage them with `stage-model`'s code,
    /// resume it.
    StageNew,
    /// Wait until the new backend is ready, then smoke it directly (a port-forward to its pod).
    SmokeNew,
    /// Give the new backend this share of the route (percent), the old one the rest, after
    /// checking the new one is ready; a smoke through the route follows every share but the last.
    Shift(u32),
    /// Pause the old backend (GPUs released); the route gives it nothing by now.
    PauseOld,
    /// Commit (and push) config.yaml with the model on `to` only (`app: <model>-<to>`), the
    /// route on the new backend alone; the old Application is pruned with its objects (the old
    /// PVC kept unless asked).
    RemoveOld,
    /// `--keep-old`: commit (and push) `moveShare: 100`: git routes the model to the new layer
    /// too, the old declaration stays (paused).
    KeepOld,
}

/// Steps of `move --rollback` while a move is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Back {
    /// Resume the old backend if it was paused and wait until it is ready.
    ResumeOld,
    /// Give the old backend the whole route.
    RouteOld,
    /// Commit (and push) config.yaml without `moveTo:`: the new Application is pruned.
    Undeclare,
}

/// What the move is asked to do.
#[derive(Debug, Clone)]
pub struct Shape {
    pub model: String,
    pub from: ServingLayer,
    pub to: ServingLayer,
    /// The route shares of the new backend, ending at 100.
    pub shares: Vec<u32>,
    /// The destination reads pre-staged weights from its own PVC.
    pub stage: bool,
    /// Smoke the new backend before it gets traffic, and the route between shares.
    pub smoke: bool,
    /// Leave the old backend declared (paused) instead of removing it.
    pub keep_old: bool,
}

/// The steps of a move, in order.
pub fn steps(s: &Shape) -> Vec<Step> {
    let mut out = vec![Step::Preflight, Step::Declare, Step::SyncNew];
    if s.stage {
        out.push(Step::StageNew);
    }
    out.push(Step::SmokeNew);
    out.extend(s.shares.iter().map(|p| Step::Shift(*p)));
    out.push(Step::PauseOld);
    out.push(if s.keep_old {
        Step::KeepOld
    } else {
        Step::RemoveOld
    });
    out
}

/// The steps of a rollback, in order.
pub fn rollback_steps() -> Vec<Back> {
    vec![Back::ResumeOld, Back::RouteOld, Back::Undeclare]
}

/// What a step does, in words.
pub fn describe(step: Step, s: &Shape) -> String {
    let (m, from, to) = (&s.model, s.from, s.to);
    match step {
        Step::Preflight => format!(
            "preflight: the target cluster, {from} and {to} enabled and movable, {m}'s stable route, fit on {to}"
        ),
        Step::Declare => format!(
            "commit and push config.yaml with `moveTo: {to}`: {m} declared on {from} and on {to} (Application {m}-{to}), its route listing both ({to} at weight 0)"
        ),
        Step::SyncNew => format!("sync Application {m}-{to} and wait until it is Synced and Healthy"),
        Step::StageNew => format!(
            "pause {m} on {to}, stage its weights onto its PVC (stage-model), resume it"
        ),
        Step::SmokeNew => {
            if s.smoke {
                format!("wait until {m} is ready on {to}, then smoke it through a port-forward")
            } else {
                format!("wait until {m} is ready on {to} (no smoke: --no-smoke)")
            }
        }
        Step::Shift(p) => {
            let then = if p < 100 && s.smoke {
                ", then smoke the route"
            } else {
                ""
            };
            format!("route {m}: {to} {p}, {from} {} (only once {to} is ready){then}", 100 - p)
        }
        Step::PauseOld => format!("pause {m} on {from} (its pods stop: their GPUs or cores are released)"),
        Step::RemoveOld => format!(
            "commit and push config.yaml with {m} on {to} only (`app: {m}-{to}`): Argo CD prunes {m} on {from}"
        ),
        Step::KeepOld => format!(
            "commit and push config.yaml with `moveShare: 100`: the route in git gives {to} everything too; {m} stays declared on {from}, paused"
        ),
    }
}

/// What a rollback step does, in words.
pub fn describe_back(step: Back, s: &Shape) -> String {
    let (m, from, to) = (&s.model, s.from, s.to);
    match step {
        Back::ResumeOld => format!("resume {m} on {from} if paused and wait until it is ready"),
        Back::RouteOld => format!("route {m}: {from} 100, {to} 0"),
        Back::Undeclare => format!(
            "commit and push config.yaml without `moveTo`: Argo CD prunes {m} on {to} (Application {m}-{to})"
        ),
    }
}

/// `--steps 10,50,100`: ascending shares from 1 to 100, ending at 100.
pub fn parse_shares(text: &str) -> Result<Vec<u32>, String> {
    let mut out: Vec<u32> = Vec::new();
    for part in text.split(',').map(str::trim) {
        let p: u32 = part
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("`{part}` is not a whole percentage"))?;
        if p == 0 || p > 100 {
            return Err(format!("{p}: each share is between 1 and 100"));
        }
        if out.last().is_some_and(|l| *l >= p) {
            return Err(format!("{p}: shares go up (e.g. 10,50,100)"));
        }
        out.push(p);
    }
    if out.last() != Some(&100) {
        return Err("the last share is 100 (the new backend takes the whole route)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            model: "qwen-cpu".into(),
            from: ServingLayer::Kserve,
            to: ServingLayer::RawVllm,
            shares: vec![100],
            stage: false,
            smoke: true,
            keep_old: false,
        }
    }

    #[test]
    fn a_move_declares_syncs_smokes_shifts_pauses_and_removes() {
        let s = shape();
        assert_eq!(
            steps(&s),
            vec![
                Step::Preflight,
                Step::Declare,
                Step::SyncNew,
                Step::SmokeNew,
                Step::Shift(100),
                Step::PauseOld,
                Step::RemoveOld
            ]
        );
        let s = Shape {
            shares: vec![10, 50, 100],
            stage: true,
            keep_old: true,
            ..shape()
        };
        let st = steps(&s);
        assert!(st.contains(&Step::StageNew));
        assert!(!st.contains(&Step::RemoveOld));
        assert_eq!(st.last(), Some(&Step::KeepOld));
        assert_eq!(st.iter().filter(|s| matches!(s, Step::Shift(_))).count(), 3);
        assert!(describe(Step::Shift(10), &s).contains("raw-vllm 10, kserve 90"));
    }

    #[test]
    fn shares_go_up_to_100() {
        assert_eq!(parse_shares("10,50,100"), Ok(vec![10, 50, 100]));
        assert_eq!(parse_shares("100"), Ok(vec![100]));
        assert!(parse_shares("50").is_err());
        assert!(parse_shares("50,10,100").is_err());
        assert!(parse_shares("0,100").is_err());
        assert!(parse_shares("x").is_err());
    }
}
