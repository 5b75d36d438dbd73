//! `platform move MODEL --to LAYER`: runbook 003 as one command. The steps are data
//! ([`steps`]); the state lives in git (config.yaml's `moveTo:`/`layer:`/`app:`) and the cluster
//! (the Applications, the serving objects, the live route's weights), never in a local file, so
//! a re-run after an interruption continues where it stopped: each step looks first and does
//! only what is missing.
//!
//! Invariant: the route never gives weight to a backend that is not ready (a share moves to the
//! new backend only once it is ready; the old one is paused only once it has no share), and the
//! model is never absent from its route.

mod git;
pub mod steps;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};

use super::route::{self, LiveBackend};
use super::{fit, pause, smoke, stage, status, up};
use crate::cluster::{kinds, Client, ClusterError};
use crate::config::{Model, ServingLayer};
use crate::consts;
use crate::plan::{AppKind, Plan, PlannedModel};
use crate::report::Reporter;
pub use steps::{Back, Shape, Step};

/// What `move` is asked.
pub struct Options {
    pub to: ServingLayer,
    /// The new backend's route shares, ending at 100.
    pub shares: Vec<u32>,
    pub smoke: bool,
    pub keep_old: bool,
    /// Delete the old layer's PVC with it (kept by default).
    pub delete_old_volume: bool,
    /// Each wait (sync, ready, stop) ends by then.
    pub timeout: Duration,
    pub smoke_opts: smoke::Options,
    /// How to push (`--allow-insecure-http`).
    pub http: crate::gitops::git::PlainHttp,
    /// The fit check on the destination (prepared by the caller: the GPU and the model's files),
    /// None when it does not apply (a CPU model, another runtime) or was skipped.
    pub fit: Option<(fit::ModelFiles, fit::Options)>,
    /// What staging the destination needs (the download clients), when it reads pre-staged
    /// weights.
    /// Taken by the one staging step that uses it.
    pub stage: std::sync::Mutex<Option<(stage::run::Input, stage::run::Options)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// The move cannot start or go on as asked: exit 1.
    #[error("{0}")]
    Refused(String),
    /// A step's check failed (smoke, readiness): exit 1.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Git(#[from] crate::gitops::git::GitError),
    #[error(transparent)]
    Gitops(#[from] crate::gitops::GitopsError),
    #[error(transparent)]
    Stage(#[from] stage::StageError),
    #[error(transparent)]
    Edit(#[from] crate::config::edit::EditError),
    /// Loading, planning or rendering the edited config.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Where the model stands, read from config.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// On `from`, no move declared.
    On(ServingLayer),
    /// Declared on both: `from` (its own layer) and `to` (`moveTo:`).
    Moving {
        from: ServingLayer,
        to: ServingLayer,
    },
}

/// The model's position in config.yaml.
pub fn position(m: &Model) -> Where {
    match m.move_to {
        Some(to) if to != m.layer => Where::Moving { from: m.layer, to },
        _ => Where::On(m.layer),
    }
}

/// The shape of a move of `m` to `opts.to`, or why it cannot be asked now.
pub fn shape(m: &Model, opts: &Options, stage: bool) -> Result<Shape, MoveError> {
    let from = match position(m) {
        Where::Moving { from, to } if to == opts.to => from,
        Where::Moving { to, .. } => {
            return Err(MoveError::Refused(format!(
                "{} is moving to {to} already: finish that move (`platform move {} --to {to}`) or roll it back (`platform move {} --rollback`)",
                m.name, m.name, m.name
            )))
        }
        Where::On(l) if l == opts.to => {
            return Err(MoveError::Refused(format!(
                "{} is on {l} already (config.yaml says layer: {l}); nothing to move",
                m.name
            )))
        }
        Where::On(l) => l,
    };
    for l in [from, opts.to] {
        if let Some(why) = crate::serving::layer(l).move_refusal() {
            return Err(MoveError::Refused(format!(
                "{} cannot move to or from {l}: {why}",
                m.name
            )));
        }
    }
    Ok(Shape {
        model: m.name.clone(),
        from,
        to: opts.to,
        shares: opts.shares.clone(),
        stage,
        smoke: opts.smoke,
        keep_old: opts.keep_old,
    })
}

/// What a move did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The commits it made (short ids and subjects).
    pub commits: Vec<String>,
}

/// Everything a step needs.
pub struct Mover<'a> {
    pub repo: &'a std::path::Path,
    pub env: &'a str,
    pub client: &'a Client,
    pub reporter: Arc<dyn Reporter>,
    pub opts: &'a Options,
}

impl Mover<'_> {
    /// Run the steps of `shape` in order.
    pub async fn run(&self, shape: &Shape) -> Result<Outcome, MoveError> {
        let mut out = Outcome::default();
        let all = steps::steps(shape);
        for (i, step) in all.iter().enumerate() {
            self.reporter.line(&format!(
                "step {}/{}: {}",
                i + 1,
                all.len(),
                steps::describe(*step, shape)
            ));
            self.step(*step, shape, &mut out).await?;
        }
        Ok(out)
    }

    /// Roll a declared move back: the old backend takes the whole route again and the new
    /// declaration is removed.
    pub async fn rollback(&self, shape: &Shape) -> Result<Outcome, MoveError> {
        let mut out = Outcome::default();
        let all = steps::rollback_steps();
        for (i, step) in all.iter().enumerate() {
            self.reporter.line(&format!(
                "rollback {}/{}: {}",
                i + 1,
                all.len(),
                steps::describe_back(*step, shape)
            ));
            let plan = self.plan()?;
            let (old, new) = declarations(&plan, shape)?;
            match step {
                Back::ResumeOld => {
                    pause::resume(self.client, old).await?;
                    pause::wait_for(
                        self.client,
                        old,
                        false,
                        self.opts.timeout,
                        self.reporter.as_ref(),
                    )
                    .await?;
                }
                Back::RouteOld => match self.live_share(&plan, new).await? {
                    // Not on the route (the declaration never synced) or at 0: old has it all.
                    None | Some(0) => self
                        .reporter
                        .note(&format!("the route gives {} nothing already", shape.to)),
                    Some(_) => self.set_route(&plan, old, new, 0).await?,
                },
                Back::Undeclare => {
                    let edit = |t: &str| {
                        let t =
                            crate::config::edit::remove_model_field(t, &shape.model, "moveShare")?;
                        crate::config::edit::remove_model_field(&t, &shape.model, "moveTo")
                    };
                    let msg = git::rollback_message(shape);
                    if let Some(c) = git::commit_config(self, edit, &msg)? {
                        out.commits.push(c);
                    }
                    // The route on the old backend alone, the new declaration pruned.
                    let head = git::pushed_head(self)?;
                    self.wait_synced(&[crate::layout::ROUTING_APP], &head)
                        .await?;
                    self.wait_apps_gone(&plan.argocd_namespace, std::slice::from_ref(&new.app))
                        .await?;
                }
            }
        }
        Ok(out)
    }

    /// Load and plan the environment as config.yaml says now (the steps that write render it
    /// themselves, in `git::commit_config`).
    fn plan(&self) -> Result<Plan, MoveError> {
        let inputs = crate::pipeline::load(self.repo, self.env, self.reporter.as_ref())?;
        crate::pipeline::plan(&inputs, self.env, crate::pipeline::Profile::Chosen(None))
            .map_err(|d| MoveError::Other(d.into()))
    }

    async fn step(&self, step: Step, shape: &Shape, out: &mut Outcome) -> Result<(), MoveError> {
        match step {
            Step::Preflight => self.preflight(shape).await,
            Step::Declare => {
                let to = shape.to.as_str();
                let edit =
                    |t: &str| crate::config::edit::set_model_field(t, &shape.model, "moveTo", to);
                if let Some(c) = git::commit_config(self, edit, &git::declare_message(shape))? {
                    out.commits.push(c);
                }
                Ok(())
            }
            Step::SyncNew => {
                let plan = self.plan()?;
                let (_, new) = declarations(&plan, shape)?;
                let head = git::pushed_head(self)?;
                if shape.stage {
                    // Without its weights the new backend cannot become Healthy yet: start the
                    // sync and wait until its serving object and PVC exist (staging follows).
                    self.start_sync(&plan, new, &head).await?;
                } else {
                    let apps = [new.app.as_str(), crate::layout::ROUTING_APP];
                    self.sync(&plan, &apps, &head).await?;
                }
                // A volume an earlier move kept is this declaration's again: deleting its
                // Application deletes it (unless a later move keeps it once more).
                self.volume_kept(new, false).await
            }
            Step::StageNew => self.stage_new(shape).await,
            Step::SmokeNew => {
                let plan = self.plan()?;
                let (_, new) = declarations(&plan, shape)?;
                if shape.stage {
                    let head = git::pushed_head(self)?;
                    self.sync(
                        &plan,
                        &[new.app.as_str(), crate::layout::ROUTING_APP],
                        &head,
                    )
                    .await?;
                }
                pause::wait_for(
                    self.client,
                    new,
                    false,
                    self.opts.timeout,
                    self.reporter.as_ref(),
                )
                .await?;
                if self.opts.smoke {
                    self.smoke(new, &self.opts.smoke_opts, shape).await?;
                }
                Ok(())
            }
            Step::Shift(share) => {
                let plan = self.plan()?;
                let (old, new) = declarations(&plan, shape)?;
                // A re-run never takes traffic back from the new backend.
                if let Some(now) = self.live_share(&plan, new).await? {
                    if now >= share {
                        self.reporter
                            .note(&format!("the route gives {} {now} already", shape.to));
                        return Ok(());
                    }
                }
                self.set_route(&plan, old, new, share).await?;
                if share < 100 && self.opts.smoke {
                    let via = smoke::Options {
                        via: smoke::Via::Gateway {
                            domain: None,
                            route: plan.routing.clone(),
                        },
                        ..self.opts.smoke_opts.clone()
                    };
                    self.smoke(old, &via, shape).await?;
                }
                Ok(())
            }
            Step::PauseOld => {
                let plan = self.plan()?;
                let (old, new) = declarations(&plan, shape)?;
                self.check_no_share(&plan, old, new).await?;
                if !self.ready(new).await? {
                    return Err(MoveError::Failed(format!(
                        "{} on {} is not ready: {} on {} stays up as the fallback (`platform status`; `platform move {} --rollback`)",
                        new.name, new.serving_layer, old.name, old.serving_layer, shape.model
                    )));
                }
                pause::pause(self.client, old).await?;
                pause::wait_for(
                    self.client,
                    old,
                    true,
                    self.opts.timeout,
                    self.reporter.as_ref(),
                )
                .await?;
                Ok(())
            }
            Step::RemoveOld => self.remove_old(shape, out).await,
            Step::KeepOld => {
                let m = shape.model.clone();
                let edit =
                    move |t: &str| crate::config::edit::set_model_field(t, &m, "moveShare", "100");
                if let Some(c) = git::commit_config(self, edit, &git::keep_message(shape))? {
                    out.commits.push(c);
                }
                let head = git::pushed_head(self)?;
                self.wait_synced(&[crate::layout::ROUTING_APP], &head).await
            }
        }
    }

    async fn preflight(&self, shape: &Shape) -> Result<(), MoveError> {
        let plan = self.plan()?;
        for l in [shape.from, shape.to] {
            if let Some(why) = crate::serving::layer(l).move_refusal() {
                return Err(MoveError::Refused(format!(
                    "{} cannot move to or from {l}: {why}",
                    shape.model
                )));
            }
        }
        let own = plan
            .models
            .iter()
            .find(|pm| pm.name == shape.model && pm.moving_from.is_none())
            .ok_or_else(|| {
                MoveError::Refused(format!(
                    "{} is not rendered: its layer's feature is off or outside the profile (`platform plan`)",
                    shape.model
                ))
            })?;
        if !own.routed || plan.routing.is_none() {
            return Err(MoveError::Refused(format!(
                "{} has no stable route to move its traffic with: turn on `features.model-routes: true` in config.yaml, `platform root --commit --push`, `platform up`",
                shape.model
            )));
        }
        // The plan with the move declared, before anything is written: the destination's own
        // gotchas and its layer's feature gate (which feature to turn on) come out here.
        let mut inputs = crate::pipeline::load(self.repo, self.env, self.reporter.as_ref())?;
        if let Some(m) = inputs
            .config
            .models
            .iter_mut()
            .find(|m| m.name == shape.model)
        {
            m.move_to = Some(shape.to);
        }
        crate::pipeline::plan(&inputs, self.env, crate::pipeline::Profile::Chosen(None)).map_err(
            |d| {
                MoveError::Refused(format!(
                    "{} cannot be declared on {}, nothing was changed:\n{d}",
                    shape.model, shape.to
                ))
            },
        )?;
        self.reporter.note(&format!(
            "{} on {}: {}",
            shape.model,
            shape.from,
            status::model(self.client, own).await?.state
        ));
        if let Some((files, fit_opts)) = &self.opts.fit {
            let mut there = own.clone();
            there.model.layer = shape.to;
            let f = fit::judge(&there, files, fit_opts)
                .map_err(|e| MoveError::Refused(e.to_string()))?;
            if !f.verdict.fits {
                return Err(MoveError::Refused(format!(
                    "{} does not fit on {} ({}): {}; nothing was changed (`platform fit {}` shows the numbers)",
                    shape.model, f.gpu, f.gpu_from, fit_summary(&f), shape.model
                )));
            }
            self.reporter
                .note(&format!("fit on {}: {}", f.gpu, fit_summary(&f)));
        }
        Ok(())
    }

    /// Pause the new backend, stage its weights with stage-model's code, resume it.
    async fn stage_new(&self, shape: &Shape) -> Result<(), MoveError> {
        let taken = self.opts.stage.lock().ok().and_then(|mut s| s.take());
        let Some((input, opts)) = taken else {
            return Err(MoveError::Refused(format!(
                "{} reads pre-staged weights on {}: nothing to download them with",
                shape.model, shape.to
            )));
        };
        let inputs = crate::pipeline::load(self.repo, self.env, self.reporter.as_ref())?;
        let (plan, tree) = crate::pipeline::render_checked(
            &inputs,
            self.env,
            crate::pipeline::Profile::Chosen(None),
        )?;
        let (_, new) = declarations(&plan, shape)?;
        // A re-run after the route gave the new backend a share: it serves; never stop it.
        if self.live_share(&plan, new).await?.unwrap_or(0) > 0 {
            self.reporter.note(&format!(
                "{} on {} has a share of the route: its weights were staged",
                shape.model, shape.to
            ));
            return Ok(());
        }
        pause::pause(self.client, new).await?;
        pause::wait_for(
            self.client,
            new,
            true,
            self.opts.timeout,
            self.reporter.as_ref(),
        )
        .await?;
        let stager =
            stage::run::Stager::prepare(self.client, input, opts, self.reporter.clone()).await?;
        let (objs, _) = crate::render::check::objects(&tree);
        stager.stage(new, &objs, std::future::pending()).await?;
        pause::resume(self.client, new).await?;
        Ok(())
    }

    /// Smoke declaration `pm` (a failure stops the move, saying how to roll back).
    async fn smoke(
        &self,
        pm: &PlannedModel,
        opts: &smoke::Options,
        shape: &Shape,
    ) -> Result<(), MoveError> {
        let r = smoke::model(self.client, pm, true, opts, self.reporter.as_ref()).await;
        if r.result == smoke::report::Result::Pass {
            self.reporter.note(&r.line());
            return Ok(());
        }
        Err(MoveError::Failed(format!(
            "smoke of {} on {} failed: {}\nthe route still sends {} to what was ready; roll back with `platform move {} --rollback`, or fix it and re-run `platform move {} --to {}`",
            pm.name,
            pm.serving_layer,
            r.line(),
            pm.name,
            shape.model,
            shape.model,
            shape.to
        )))
    }

    /// Give `new` `share` percent of the route and `old` the rest, each only if it is ready.
    async fn set_route(
        &self,
        plan: &Plan,
        old: &PlannedModel,
        new: &PlannedModel,
        share: u32,
    ) -> Result<(), MoveError> {
        let routing = plan.routing.as_ref().ok_or_else(|| {
            MoveError::Refused(
                "the environment has no stable routes (features.model-routes)".into(),
            )
        })?;
        for (pm, weight) in [(new, share), (old, 100 - share)] {
            if weight > 0 && !self.ready(pm).await? {
                return Err(MoveError::Failed(format!(
                    "{} on {} is not ready: the route gives it nothing until it is (`platform status`)",
                    pm.name, pm.serving_layer
                )));
            }
        }
        let live = route::read(self.client, routing, &old.name)
            .await?
            .ok_or_else(|| {
                MoveError::Failed(format!(
                    "HTTPRoute {}/{} does not exist: sync the app {} (`platform up`)",
                    routing.namespace,
                    old.name,
                    crate::layout::ROUTING_APP
                ))
            })?;
        let mut backends = route::backends(&live, &routing.namespace);
        let wanted = shifted(&mut backends, old, new, share);
        if !wanted {
            return Err(MoveError::Failed(format!(
                "HTTPRoute {}/{} does not list {} on {} yet: the app {} has not synced the move's first commit",
                routing.namespace, old.name, new.name, new.serving_layer, crate::layout::ROUTING_APP
            )));
        }
        let api = kinds::HTTP_ROUTE.api(self.client, &routing.namespace);
        let pp = PatchParams {
            field_manager: Some(consts::FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(route::weights_patch(&live, &routing.namespace, &backends));
        self.client
            .retry(|| api.patch(&old.name, &pp, &patch))
            .await
            .map_err(|e| {
                ClusterError::api(
                    format!("patching HTTPRoute {}/{}", routing.namespace, old.name),
                    e,
                )
            })?;
        self.reporter.note(&format!(
            "route {}: {}",
            old.name,
            route::describe(plan, &old.name, &backends)
        ));
        Ok(())
    }

    /// The share the live route gives declaration `pm` (None: no route, or it does not list it).
    async fn live_share(&self, plan: &Plan, pm: &PlannedModel) -> Result<Option<u32>, MoveError> {
        let Some(routing) = &plan.routing else {
            return Ok(None);
        };
        let live = route::read(self.client, routing, &pm.name).await?;
        Ok(live.and_then(|l| {
            route::backends(&l, &routing.namespace)
                .into_iter()
                .find(|b| route::is_backend_of(b, pm))
                .map(|b| b.weight)
        }))
    }

    /// A re-run after the last commit of a move (`to`) or of a rollback (None): commit and push
    /// what an interruption left uncommitted, wait until Argo CD has the route at the pushed
    /// commit and, after a move, has pruned every other Application of the model.
    pub async fn finish(&self, model: &str, to: Option<ServingLayer>) -> Result<(), MoveError> {
        if let Some(c) = git::commit_pending(self, &git::finish_message(model))? {
            self.reporter
                .note(&format!("committed what the interrupted run left: {c}"));
        }
        let head = git::pushed_head(self)?;
        self.wait_synced(&[crate::layout::ROUTING_APP], &head)
            .await?;
        let Some(to) = to else {
            return Ok(());
        };
        let plan = self.plan()?;
        let keep = format!("{model}-{to}");
        let others: Vec<&str> = plan
            .models
            .iter()
            .filter(|pm| pm.name != model)
            .map(|pm| pm.app.as_str())
            .collect();
        let olds: Vec<String> = std::iter::once(model.to_string())
            .chain(
                crate::config::serving_layer_names()
                    .into_iter()
                    .map(|l| format!("{model}-{l}")),
            )
            .filter(|a| *a != keep && !others.contains(&a.as_str()))
            .collect();
        self.wait_apps_gone(&plan.argocd_namespace, &olds).await
    }

    async fn ready(&self, pm: &PlannedModel) -> Result<bool, MoveError> {
        Ok(status::model(self.client, pm).await?.state == "ready")
    }

    /// Before the old backend stops: the live route gives it nothing.
    async fn check_no_share(
        &self,
        plan: &Plan,
        old: &PlannedModel,
        new: &PlannedModel,
    ) -> Result<(), MoveError> {
        let Some(routing) = &plan.routing else {
            return Ok(());
        };
        let live = route::read(self.client, routing, &old.name).await?;
        let backends = live
            .map(|l| route::backends(&l, &routing.namespace))
            .unwrap_or_default();
        let old_share: u32 = backends
            .iter()
            .filter(|b| route::is_backend_of(b, old))
            .map(|b| b.weight)
            .sum();
        let new_share: u32 = backends
            .iter()
            .filter(|b| route::is_backend_of(b, new))
            .map(|b| b.weight)
            .sum();
        if old_share > 0 || new_share == 0 {
            return Err(MoveError::Failed(format!(
                "the route still gives {} on {} a share ({}): the old backend is not paused",
                old.name,
                old.serving_layer,
                route::describe(plan, &old.name, &backends)
            )));
        }
        Ok(())
    }

    /// The second commit: the model on its new layer only; then wait until Argo CD has it.
    async fn remove_old(&self, shape: &Shape, out: &mut Outcome) -> Result<(), MoveError> {
        let plan = self.plan()?;
        let (old, new) = declarations(&plan, shape)?;
        if !self.opts.delete_old_volume {
            self.volume_kept(old, true).await?;
        }
        let app = new.app.clone();
        let m = shape.model.clone();
        let to = shape.to.as_str().to_string();
        let edit = move |t: &str| {
            let t = crate::config::edit::set_model_field(t, &m, "layer", &to)?;
            let t = crate::config::edit::set_model_field(&t, &m, "app", &app)?;
            crate::config::edit::remove_model_field(&t, &m, "moveTo")
        };
        let edit = move |t: &str| {
            let t = edit(t)?;
            crate::config::edit::remove_model_field(&t, &shape.model, "moveShare")
        };
        if let Some(c) = git::commit_config(self, edit, &git::remove_message(shape))? {
            out.commits.push(c);
        }
        // A volume an earlier move kept is the new declaration's for good now.
        self.volume_kept(new, false).await?;
        let head = git::pushed_head(self)?;
        self.wait_synced(&[crate::layout::ROUTING_APP], &head)
            .await?;
        self.wait_apps_gone(&plan.argocd_namespace, std::slice::from_ref(&old.app))
            .await
    }

    /// Argo CD `Delete=false` on a declaration's PVC (`keep`): deleting its Application leaves
    /// the volume; or (`!keep`) that annotation, as a move set it, removed.
    async fn volume_kept(&self, pm: &PlannedModel, keep: bool) -> Result<(), MoveError> {
        if !pm.has_pvc() {
            return Ok(());
        }
        let api = kinds::PVC.api(self.client, &pm.namespace);
        let name = pm.model.pvc_name();
        let what = format!("PVC {}/{name}", pm.namespace);
        let live = self
            .client
            .retry(|| api.get_opt(&name))
            .await
            .map_err(|e| ClusterError::api(format!("reading {what}"), e))?;
        let Some(live) = live else {
            return Ok(());
        };
        let ours = live
            .metadata
            .annotations
            .and_then(|a| a.get(consts::ARGOCD_SYNC_OPTIONS).cloned())
            .is_some_and(|v| v == KEEP_VOLUME);
        if ours == keep {
            return Ok(());
        }
        let value = if keep {
            serde_json::json!(KEEP_VOLUME)
        } else {
            serde_json::Value::Null
        };
        let patch = Patch::Merge(
            serde_json::json!({"metadata": {"annotations": {consts::ARGOCD_SYNC_OPTIONS: value}}}),
        );
        let pp = PatchParams::default();
        self.client
            .retry(|| api.patch(&name, &pp, &patch))
            .await
            .map_err(|e| ClusterError::api(format!("annotating {what}"), e))?;
        if keep {
            self.reporter.note(&format!(
                "{what} kept (Argo CD Delete=false): its weights stay for a move back; --delete-old-volume deletes it with the old backend"
            ));
        }
        Ok(())
    }

    /// Poll until none of `apps` exists (the root app prunes them; Argo CD deletes their objects).
    async fn wait_apps_gone(&self, namespace: &str, apps: &[String]) -> Result<(), MoveError> {
        let api = kinds::APPLICATION.api(self.client, namespace);
        let deadline = Instant::now() + self.opts.timeout;
        let mut beat = crate::cluster::wait::Beat::new(self.opts.timeout);
        loop {
            let mut left = Vec::new();
            for a in apps {
                if self
                    .client
                    .retry(|| api.get_opt(a))
                    .await
                    .map_err(|e| ClusterError::api(format!("reading Application {a}"), e))?
                    .is_some()
                {
                    left.push(a.clone());
                }
            }
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    what: "the old Application to be pruned".into(),
                    pending: left
                        .iter()
                        .map(|a| {
                            format!(
                                "{a}: still exists (is the root app syncing? `platform status`)"
                            )
                        })
                        .collect(),
                }
                .into());
            }
            if let Some(t) = beat.due() {
                self.reporter.line(&format!(
                    "  waiting for Argo CD to prune {}: still there {t}",
                    left.join(", ")
                ));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Sync `apps` (the manual ones) at `revision` and wait until each is done there.
    async fn sync(&self, plan: &Plan, apps: &[&str], revision: &str) -> Result<(), MoveError> {
        let mut sub = plan.clone();
        sub.apps.retain(|a| apps.contains(&a.name.as_str()));
        self.up(&sub, Some(revision), revision).await
    }

    /// `up`'s waves over `sub`'s apps: syncs at `sync` (None: only waits), every app done at
    /// `pushed`, within the move's timeout.
    async fn up(&self, sub: &Plan, sync: Option<&str>, pushed: &str) -> Result<(), MoveError> {
        let opts = up::Options {
            models: true,
            sync: sync.map(str::to_string),
            pushed: Some(pushed.to_string()),
            deadline: Instant::now() + self.opts.timeout,
            initiator: "platform move".into(),
            s3_keys: None,
            hold: Vec::new(),
        };
        up::run(self.client, sub, &opts, self.reporter.as_ref()).await?;
        Ok(())
    }

    /// Start the sync of the new declaration's Application at `revision` (once it exists) and
    /// wait until its serving object and PVC exist.
    async fn start_sync(
        &self,
        plan: &Plan,
        new: &PlannedModel,
        revision: &str,
    ) -> Result<(), MoveError> {
        let ns = &plan.argocd_namespace;
        crate::cluster::wait::wait_created(
            self.client,
            ns,
            std::slice::from_ref(&new.app),
            self.opts.timeout,
            self.reporter.as_ref(),
        )
        .await?;
        let sync_options = plan
            .apps
            .iter()
            .find(|a| a.name == new.app)
            .map(|a| a.spec.sync_options.clone())
            .unwrap_or_default();
        crate::cluster::argo::start_sync(
            self.client,
            ns,
            &new.app,
            revision,
            &sync_options,
            "platform move",
        )
        .await?;
        let pvcs = kinds::PVC.api(self.client, &new.namespace);
        let claim = new.model.pvc_name();
        let deadline = Instant::now() + self.opts.timeout;
        let mut beat = crate::cluster::wait::Beat::new(self.opts.timeout);
        loop {
            let pvc = self
                .client
                .retry(|| pvcs.get_opt(&claim))
                .await
                .map_err(|e| {
                    ClusterError::api(format!("reading PVC {}/{claim}", new.namespace), e)
                })?;
            let serving = pause::state(self.client, new).await?.is_some();
            if pvc.is_some() && serving {
                return Ok(());
            }
            if let Some(t) = beat.due() {
                let missing: Vec<String> = [
                    (pvc.is_none(), format!("PVC {}/{claim}", new.namespace)),
                    (
                        !serving,
                        format!("{} {}", new.layer().serving_kind().kind, new.name),
                    ),
                ]
                .into_iter()
                .filter_map(|(m, w)| m.then_some(w))
                .collect();
                self.reporter.line(&format!(
                    "  waiting for {} on {} to be created: {} not there yet {t}",
                    new.name,
                    new.serving_layer,
                    missing.join(" and ")
                ));
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    what: format!("{} on {} to be created", new.name, new.serving_layer),
                    pending: vec![format!(
                        "PVC {}/{claim} or the serving object not there yet (`platform status`)",
                        new.namespace
                    )],
                }
                .into());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Wait (no sync) until `apps` are done at `revision`.
    async fn wait_synced(&self, apps: &[&str], revision: &str) -> Result<(), MoveError> {
        let plan = self.plan()?;
        let mut sub = plan.clone();
        sub.apps
            .retain(|a| apps.contains(&a.name.as_str()) && a.kind == AppKind::Routing);
        self.up(&sub, None, revision).await
    }
}

/// The sync options a move puts on the old PVC so that Argo CD keeps it.
const KEEP_VOLUME: &str = "Delete=false,Prune=false";

/// A fit verdict in one line.
fn fit_summary(f: &fit::ModelFit) -> String {
    let gib = |b: f64| b / f64::from(1u32 << 30);
    format!(
        "KV cache for one request at maxModelLen {} needs {:.2} GiB, {:.2} GiB is left after the weights; the longest maxModelLen that fits is {}",
        f.max_model_len,
        gib(f.verdict.kv_bytes_needed as f64),
        gib(f.verdict.available_bytes.max(0) as f64),
        f.verdict.max_model_len_that_fits
    )
}

/// The model's two declarations during the move: on its own layer, and the one `moveTo:` added.
fn declarations<'p>(
    plan: &'p Plan,
    shape: &Shape,
) -> Result<(&'p PlannedModel, &'p PlannedModel), MoveError> {
    let find = |layer: ServingLayer, moving_from: bool| {
        plan.models.iter().find(|pm| {
            pm.name == shape.model
                && pm.model.layer == layer
                && pm.moving_from.is_some() == moving_from
        })
    };
    match (find(shape.from, false), find(shape.to, true)) {
        (Some(o), Some(n)) => Ok((o, n)),
        _ => Err(MoveError::Refused(format!(
            "config.yaml does not declare {} on both {} and {} (moveTo: {}): it changed under the move",
            shape.model, shape.from, shape.to, shape.to
        ))),
    }
}

/// Set the shares of `backends` (the new one `share`, the old one the rest); false when the
/// route does not list the new backend.
fn shifted(
    backends: &mut [LiveBackend],
    old: &PlannedModel,
    new: &PlannedModel,
    share: u32,
) -> bool {
    let mut found = false;
    for b in backends.iter_mut() {
        if route::is_backend_of(b, new) {
            b.weight = share;
            found = true;
        } else if route::is_backend_of(b, old) {
            b.weight = 100 - share;
        }
    }
    found
}
