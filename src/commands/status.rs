//! `status`: every resource checked live against AWS, read-only. Without a state file the stack
//! is looked for by tag and name, as `up` would adopt it.

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::commands::{inspect, state_home, CommandError, Outputs, ResourceRow, Setup, StackState, EXIT_ATTENTION};
use crate::context::Ctx;
use crate::model::{Health, Key};
use crate::report::{self, Report, Text};
use crate::resources::certificate::{self, CertificateSummary};
use crate::resources::cluster::{DeploymentView, EventView, StoppedTask};
use crate::resources::{self, cluster, image, load_balancer};
use crate::state::s3::LockInfo;
use crate::state::{State, StateLocation};

#[derive(Debug, Serialize, Default)]
pub struct ServiceSummary {
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub healthy_targets: u32,
    /// The PRIMARY deployment's rollout state (IN_PROGRESS, COMPLETED, FAILED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// The range Application Auto Scaling keeps `desired` in, when the service is registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<ScalingRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_reason: Option<String>,
    /// The image the PRIMARY deployment runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Which image the stack wants and why (the config's, or one `deploy` shipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_choice: Option<image::Choice>,
    /// PRIMARY first, then ACTIVE deployments still running older tasks.
    pub deployments: Vec<DeploymentView>,
    /// The last `--events N` service events, oldest first.
    pub events: Vec<EventView>,
    /// The last few stopped tasks (ECS keeps them about an hour) with why they stopped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stopped_tasks: Vec<StoppedTask>,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
pub struct ScalingRange {
    pub min: u32,
    pub max: u32,
}

impl ScalingRange {
    /// The registered range, from the live check of the scalable target in `rows`.
    fn of(ctx: &Ctx, rows: &[ResourceRow]) -> Option<ScalingRange> {
        rows.iter().find(|r| r.name == Key::ScalableTarget && r.status != Health::Missing)?;
        let bound = |attr: &str| ctx.attr(Key::ScalableTarget, attr)?.parse().ok();
        Some(ScalingRange { min: bound("min_count")?, max: bound("max_count")? })
    }
}

/// How many stopped tasks `status` shows.
const STOPPED_TASKS: usize = 3;

impl ServiceSummary {
    pub async fn of(ctx: &Ctx, rows: &[ResourceRow], events: usize) -> Result<Option<ServiceSummary>, CommandError> {
        if ctx.id(Key::Service).is_none() {
            return Ok(None);
        }
        let health = async {
            match ctx.id(Key::TargetGroup) {
                Some(arn) => load_balancer::target_health(ctx, &arn).await.map(|(h, _)| h).unwrap_or(0),
                None => 0,
            }
        };
        let stopped = async {
            if events > 0 {
                cluster::stopped_tasks(ctx, STOPPED_TASKS).await
            } else {
                Ok(vec![])
            }
        };
        let (view, healthy_targets, stopped) = tokio::join!(cluster::service_view(ctx), health, stopped);
        let Some(view) = view? else { return Ok(None) };
        let mut deployments = view.deployments.clone();
        // The image of each deployment's revision (usually one or two revisions).
        let images =
            futures::future::join_all(deployments.iter().map(|d| cluster::definition(ctx, &d.task_definition_arn)))
                .await;
        for (d, def) in deployments.iter_mut().zip(images) {
            d.image = def?.map(|def| cluster::image_of(&def));
        }
        let image = deployments.iter().find(|d| d.status == "PRIMARY").and_then(|d| d.image.clone());
        let choice = image::wanted(ctx);
        Ok(Some(ServiceSummary {
            desired: view.desired,
            running: view.running,
            pending: view.pending,
            healthy_targets,
            rollout: view.rollout.clone(),
            rollout_reason: view.rollout_reason.clone(),
            image,
            image_choice: ctx.id(Key::TaskDefinition).map(|_| choice),
            events: view.last_events(events),
            deployments,
            stopped_tasks: stopped?,
            autoscaling: ScalingRange::of(ctx, rows),
        }))
    }

    fn render(&self, text: &mut Text) {
        let range = self.autoscaling.map(|r| format!(" (autoscaling {}..={})", r.min, r.max)).unwrap_or_default();
        text.line(format!(
            "service: desired {}{range}, running {}, pending {}, healthy targets {}{}",
            self.desired,
            self.running,
            self.pending,
            self.healthy_targets,
            self.rollout.as_deref().map(|r| format!(", rollout {}", r.to_lowercase())).unwrap_or_default()
        ));
        if let Some(image) = &self.image {
            let note = self
                .image_choice
                .as_ref()
                .and_then(image::Choice::note)
                .map(|n| format!("  ({n})"))
                .unwrap_or_default();
            text.line(format!("  image: {image}{note}"));
        }
        if !self.deployments.is_empty() {
            text.line("  deployments:");
            let rows: Vec<Vec<String>> = self
                .deployments
                .iter()
                .map(|d| {
                    vec![
                        format!("    {}", d.status),
                        d.task_definition.clone(),
                        d.image.clone().unwrap_or_else(|| "-".into()),
                        format!("running {}/{}, pending {}, failed {}", d.running, d.desired, d.pending, d.failed),
                        match (&d.rollout, &d.rollout_reason) {
                            (Some(state), Some(reason)) => format!("{state}: {reason}"),
                            (Some(state), None) => state.clone(),
                            _ => String::new(),
                        },
                    ]
                })
                .collect();
            text.table(&rows);
        }
        if !self.events.is_empty() {
            text.line("  last events:");
            for e in &self.events {
                text.line(format!("    {}  {}", e.at, e.message));
            }
        }
        if !self.stopped_tasks.is_empty() {
            text.line("  stopped tasks:");
            for t in &self.stopped_tasks {
                text.line(format!(
                    "    {}  {}  {}  {}",
                    t.stopped_at.as_deref().unwrap_or("-"),
                    t.task_id,
                    t.task_definition,
                    t.reason
                ));
            }
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub stack: String,
    pub region: String,
    pub state: StackState,
    /// Where the state lives; `tracked` says whether it records anything.
    pub state_file: String,
    pub tracked: bool,
    pub resources: Vec<ResourceRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSummary>,
    /// The certificate the HTTPS listener serves (requested or given), with [https].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateSummary>,
    pub outputs: Outputs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The lock on an S3 state: a run going on, or one that died (then `unlock` removes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockInfo>,
    /// Where the stack's VPC says its state lives, when that is not `state_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_elsewhere: Option<String>,
    /// The local file (left by `state push`) that led to `state_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_pointer: Option<String>,
}

impl Report for StatusReport {
    const COMMAND: &'static str = "status";

    fn render(&self, text: &mut Text) {
        text.line(format!("stack {} in {}: {}", self.stack, self.region, self.state.word()));
        if let Some(pointer) = &self.state_pointer {
            text.line(format!(
                "  state: {} (the pointer {pointer} that `state push` left leads there)",
                self.state_file
            ));
        }
        if let Some(hint) = &self.hint {
            text.line(format!("  {hint}"));
        }
        if let Some(lock) = &self.lock {
            text.line(format!(
                "  locked by {} (lock ID {}): a run is going on, or died (then `unlock {}` removes its lock)",
                lock.describe(),
                lock.lock_id,
                lock.lock_id
            ));
        }
        if !self.resources.is_empty() {
            render_rows(text, &self.resources);
        }
        if let Some(s) = &self.service {
            text.line(String::new());
            s.render(text);
        }
        if let Some(c) = &self.certificate {
            text.line(String::new());
            let expiry = match (&c.not_after, c.days_left) {
                (Some(at), Some(days)) => format!(", expires {at} ({days} days)"),
                _ => String::new(),
            };
            text.line(format!(
                "certificate: {} ({}{}) {}{expiry}{}",
                c.arn,
                c.source,
                c.domain.as_deref().map(|d| format!(", {d}")).unwrap_or_default(),
                c.status.to_lowercase(),
                if c.in_use_by_listener { ", in use by the HTTPS listener" } else { "" }
            ));
            for warning in &c.warnings {
                text.line(format!("  warning: {warning}"));
            }
        }
        if self.tracked && self.state != StackState::Retained {
            text.line(String::new());
            text.line("outputs:");
            self.outputs.render(text);
        }
    }
}

pub fn render_rows(text: &mut Text, rows: &[ResourceRow]) {
    let mut table = vec![vec!["RESOURCE".to_string(), "KIND".into(), "STATUS".into(), "ID".into()]];
    for r in rows {
        let mut id = r.id.clone().unwrap_or_else(|| "-".into());
        let mut detail = r.detail.clone();
        if !r.recorded && r.status != Health::Missing {
            detail = [detail, "not in the state file".to_string()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
        }
        if !detail.is_empty() {
            id = format!("{id}  ({detail})");
        }
        table.push(vec![r.name.to_string(), r.kind.to_string(), r.status.word().to_string(), id]);
    }
    text.table(&table);
}

pub async fn run(setup: &Setup, args: &StatusArgs) -> Result<ExitCode, CommandError> {
    let report = status(setup, args.events as usize).await?;
    report::emit(setup.format, &report);
    let attention = report.state.needs_attention() || report.state_elsewhere.is_some();
    Ok(if attention { ExitCode::from(EXIT_ATTENTION) } else { ExitCode::SUCCESS })
}

pub async fn status(setup: &Setup, events: usize) -> Result<StatusReport, CommandError> {
    // The lock is read beside the state, without taking it.
    let (state, lock, home) = tokio::try_join!(
        setup.read_state(),
        async {
            match &setup.state {
                StateLocation::S3 { bucket, key } => {
                    Ok(setup.bucket(bucket).read_lock(key).await?.and_then(|(info, _)| info))
                }
                StateLocation::Local(_) => Ok::<_, CommandError>(None),
            }
        },
        state_home::find(setup)
    )?;
    // The stack's resources say its state lives at another location than this run's.
    let elsewhere = home.as_ref().and_then(|h| Some((h, h.elsewhere(setup)?)));
    let state_elsewhere = elsewhere.map(|(_, other)| other.to_string());
    let state = state.unwrap_or_else(|| State::new(&setup.config.name, &setup.region));
    let tracked = !state.resources.is_empty();
    // Only the table, kept on purpose by `down --retain-table`: a finished state.
    let retained = state.resources.len() == 1 && state.attr(&Key::Table.to_string(), "retained").is_some();
    // With a state: every resource it records and the config asks for. Without: every resource a
    // stack of this name could have, looked for by tag and name.
    let graph_config =
        if tracked { resources::covering(&setup.config, &state) } else { resources::discovering(&setup.config) };
    let graph = resources::stack(&graph_config, false)?;
    let ctx: Arc<Ctx> = setup.read_only(state);
    let mut rows = if retained {
        let table = graph.get(Key::Table).expect("every stack has a table");
        vec![ResourceRow { name: Key::Table, kind: Key::Table.kind(), inspection: table.inspect(&ctx).await? }]
    } else {
        inspect(setup, &graph, ctx.clone()).await?
    };
    if !tracked {
        rows.retain(|r| r.status != Health::Missing);
    }
    let service = if retained { None } else { ServiceSummary::of(&ctx, &rows, events).await? };
    let certificate = if retained { None } else { certificate::summary(&ctx).await? };
    let (state, hint) = if retained {
        let table = ctx.id(Key::Table).unwrap_or_default();
        (
            StackState::Retained,
            Some(format!("only table {table} is left, kept by `down --retain-table` (deletion protection on)")),
        )
    } else if !tracked && rows.is_empty() {
        (
            StackState::NotDeployed,
            Some(format!("nothing of it found by tag or name, and no state at {}", setup.location())),
        )
    } else if let Some((home, other)) = elsewhere {
        (
            if tracked { StackState::of(&rows) } else { StackState::Untracked },
            Some(state_home::refusal(setup, home, other).to_string()),
        )
    } else if !tracked {
        let hint = format!(
            "{} resources exist but no state at {} records them: run `fargate-stack up` to adopt them, \
             or `fargate-stack down --name {}` to delete them",
            rows.len(),
            setup.location(),
            setup.config.name
        );
        (StackState::Untracked, Some(hint))
    } else {
        let mut state = StackState::of(&rows);
        // A certificate that cannot serve (expired, revoked, not the listener's) is not something
        // `up` repairs: it needs attention.
        if certificate.as_ref().is_some_and(|c| c.problem) && matches!(state, StackState::Up | StackState::Deploying) {
            state = StackState::Drifted;
        }
        let unrecorded = rows.iter().filter(|r| !r.recorded && r.status != Health::Missing).count();
        let hint = (unrecorded > 0)
            .then(|| format!("{unrecorded} resources are not in the state file yet: `fargate-stack up` adopts them"));
        (state, hint)
    };
    Ok(StatusReport {
        stack: setup.config.name.clone(),
        region: setup.region.clone(),
        state,
        state_file: setup.location(),
        tracked,
        outputs: Outputs::of(&ctx),
        resources: rows,
        service,
        certificate,
        hint,
        lock,
        state_elsewhere,
        state_pointer: setup.pointer.as_ref().map(|p| p.display().to_string()),
    })
}
