//! `status`: every resource checked live against AWS, read-only. Without a state file the stack
//! is looked for by tag and name, as `up` would adopt it.

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::commands::cost::Bill;
use crate::commands::{inspect, state_home, CommandError, Outputs, ResourceRow, Setup, StackState, EXIT_ATTENTION};
use crate::context::Ctx;
use crate::graph::Graph;
use crate::model::{Health, Key, Shape, RETAINED};
use crate::report::{self, Report, Text};
use crate::resources::listener_https::{self, CertificateSummary};
use crate::resources::schedule::{self, NextChange, SCHEDULED_ACTIONS};
use crate::resources::service::status::ServiceSummary;
use crate::resources::task_definition::image;
use crate::resources::{self, autoscaling};
use crate::state::s3::LockInfo;
use crate::state::{State, StateLocation};

/// How many stopped tasks `status` shows.
const STOPPED_TASKS: usize = 3;

/// The service's part of `status`.
fn render_service(summary: &ServiceSummary, text: &mut Text) {
    let range = summary.autoscaling.map(|r| format!(" (autoscaling {}..={})", r.min, r.max)).unwrap_or_default();
    text.line(format!(
        "service: desired {}{range}, running {}, pending {}, healthy targets {}{}",
        summary.desired,
        summary.running,
        summary.pending,
        summary.healthy_targets,
        summary.rollout.as_deref().map(|r| format!(", rollout {}", r.to_lowercase())).unwrap_or_default()
    ));
    if let Some(capacity) = &summary.capacity {
        let tasks: Vec<String> = capacity.tasks.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let tasks = if tasks.is_empty() { String::new() } else { format!("; tasks: {}", tasks.join(", ")) };
        text.line(format!("  capacity: {}{tasks}", capacity.strategy));
    }
    text.line(format!("  network: {}", summary.egress));
    if let Some(image) = &summary.image {
        let note =
            summary.image_choice.as_ref().and_then(image::Choice::note).map(|n| format!("  ({n})")).unwrap_or_default();
        text.line(format!("  image: {image}{note}"));
    }
    if !summary.deployments.is_empty() {
        text.line("  deployments:");
        let rows: Vec<Vec<String>> = summary
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
    if !summary.events.is_empty() {
        text.line("  last events:");
        for e in &summary.events {
            text.line(format!("    {}  {}", e.at, e.message));
        }
    }
    if !summary.stopped_tasks.is_empty() {
        text.line("  stopped tasks:");
        for t in &summary.stopped_tasks {
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
    /// The next change `[[autoscaling.schedule]]` makes to the range, as AWS has the actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_scheduled_change: Option<NextChange>,
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
    /// The monthly bill of what was applied (of the config, for a state from before bills were
    /// recorded); none for a stack that is not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Bill>,
    /// Replacements an interrupted `up` did not finish, and what the next `up` does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<String>,
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
        for unfinished in &self.unfinished {
            text.line(format!("  unfinished: {unfinished}"));
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
            render_service(s, text);
        }
        if let Some(next) = &self.next_scheduled_change {
            text.line(format!(
                "  next scheduled change: {} {} ({}), autoscaling.schedule {:?}: min {}, max {}",
                next.local, next.timezone, next.at, next.name, next.min_count, next.max_count
            ));
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
        if let Some(cost) = &self.cost {
            text.line(String::new());
            cost.render("bill", text);
        }
        if self.tracked && self.state != StackState::Retained {
            text.line(String::new());
            text.line("outputs:");
            self.outputs.render(text);
        }
    }
}

/// The service's and the certificate's parts of `status`.
type Summaries = (Option<ServiceSummary>, Option<CertificateSummary>, Option<NextChange>);

async fn summaries(ctx: &Ctx, rows: &[ResourceRow], events: usize) -> Result<Summaries, CommandError> {
    let view = ctx.scope();
    let found = |key: Key| rows.iter().any(|r| r.name == key && r.status != Health::Missing);
    let range = autoscaling::range(&view, &found);
    let (service, certificate, next) = tokio::try_join!(
        ServiceSummary::of(&view, events, STOPPED_TASKS, range),
        listener_https::summary(&view),
        schedule::next_scheduled_change(&view, found(SCHEDULED_ACTIONS)),
    )?;
    Ok((service, certificate, next))
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

/// The rows of what `down` kept on purpose, one at a time (there are few).
async fn retained_rows(graph: &Graph, ctx: &Ctx, state: &State) -> Result<Vec<ResourceRow>, CommandError> {
    let mut rows = vec![];
    for node in graph.resources().filter(|n| state.get(&n.key().to_string()).is_some()) {
        rows.push(ResourceRow { name: node.key(), kind: node.key().kind(), inspection: node.inspect(ctx).await? });
    }
    Ok(rows)
}

/// Who holds the S3 state's lock, if anyone (a local state's lock is its own file's business).
async fn read_lock(setup: &Setup) -> Result<Option<LockInfo>, CommandError> {
    match &setup.state {
        StateLocation::S3 { bucket, key } => {
            Ok(setup.bucket(bucket).await?.read_lock(key).await?.and_then(|(info, _)| info))
        }
        StateLocation::Local(_) => Ok(None),
    }
}

pub async fn status(setup: &Setup, events: usize) -> Result<StatusReport, CommandError> {
    // The lock is read beside the state, without taking it.
    let (state, lock, home) = tokio::try_join!(setup.read_state(), read_lock(setup), state_home::find(setup))?;
    // The stack's resources say its state lives at another location than this run's.
    let elsewhere = home.as_ref().and_then(|h| Some((h, h.elsewhere(setup)?)));
    let state_elsewhere = elsewhere.map(|(_, other)| other.to_string());
    let state = state.unwrap_or_else(|| State::new(&setup.config.name, &setup.region));
    let tracked = !state.resources.is_empty();
    // Only what `down` kept on purpose (the table, with `--retain-table`): a finished state.
    let retained = tracked && state.resources.values().all(|r| r.attrs.contains_key(RETAINED));
    // With a state: every resource it records and the config asks for. Without: every resource a
    // stack of this name could have, looked for by tag and name.
    let shape = if tracked { Shape::covering(&setup.config, &state) } else { Shape::discovering(&setup.config) };
    let graph = resources::stack(&shape)?;
    let cost = if tracked && !retained { Some(bill(setup, &graph, &state).await) } else { None };
    let ctx: Arc<Ctx> = setup.read_only(state.clone());
    let mut rows =
        if retained { retained_rows(&graph, &ctx, &state).await? } else { inspect(setup, &graph, ctx.clone()).await? };
    if !tracked {
        rows.retain(|r| r.status != Health::Missing);
    }
    let (service, certificate, next_scheduled_change) =
        if retained { (None, None, None) } else { summaries(&ctx, &rows, events).await? };
    let (state, hint) = if retained {
        (StackState::Retained, Some(retained_hint(&graph, &ctx)))
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
        (StackState::Untracked, Some(untracked_hint(setup, &rows)))
    } else {
        tracked_state(&rows, certificate.as_ref())
    };
    let unfinished = graph.unfinished(&ctx);
    Ok(StatusReport {
        unfinished,
        stack: setup.config.name.clone(),
        region: setup.region.clone(),
        state,
        state_file: setup.location(),
        tracked,
        outputs: Outputs::of(&ctx),
        resources: rows,
        service,
        next_scheduled_change,
        certificate,
        hint,
        lock,
        state_elsewhere,
        state_pointer: setup.pointer.as_ref().map(|p| p.display().to_string()),
        cost,
    })
}

/// What `down --retain-table` kept, and how to find each (its retention note, with its id).
fn retained_hint(graph: &Graph, ctx: &Ctx) -> String {
    let kept: Vec<String> = graph
        .resources()
        .filter_map(|n| Some(n.lifecycle().retention?.status.replace("{id}", &ctx.id(n.key())?)))
        .collect();
    kept.join("; ")
}

/// Resources found by tag or name that no state records: how to adopt them or delete them.
fn untracked_hint(setup: &Setup, rows: &[ResourceRow]) -> String {
    format!(
        "{} resources exist but no state at {} records them: run `fargate-stack up --adopt` to adopt them, \
         or `fargate-stack down --name {}` to delete them",
        rows.len(),
        setup.location(),
        setup.config.name
    )
}

/// A tracked stack's state from its resources' rows and its certificate, and what `up` would adopt.
fn tracked_state(rows: &[ResourceRow], certificate: Option<&CertificateSummary>) -> (StackState, Option<String>) {
    let mut state = StackState::of(rows);
    // A certificate that cannot serve (expired, revoked, not the listener's) is not something
    // `up` repairs: it needs attention.
    if certificate.is_some_and(|c| c.problem) && matches!(state, StackState::Up | StackState::Deploying) {
        state = StackState::Drifted;
    }
    let unrecorded = rows.iter().filter(|r| !r.recorded && r.status != Health::Missing).count();
    let hint = (unrecorded > 0)
        .then(|| format!("{unrecorded} resources are not in the state file yet: `fargate-stack up` adopts them"));
    (state, hint)
}

/// What the stack bills: as applied last, or (a state from before bills were recorded) as the
/// config would.
async fn bill(setup: &Setup, graph: &Graph, state: &State) -> Bill {
    let applied = state.applied.as_ref().map(|a| a.bill.clone()).filter(|b| !b.is_empty());
    let lines = applied.unwrap_or_else(|| graph.bill(&setup.config));
    setup.fetch_prices(&[&lines]).await;
    setup.bill(&lines, None)
}
