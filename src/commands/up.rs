//! `up`: check every resource live, refuse what would replace something, then create what is
//! missing and update what differs, concurrently in dependency order, and wait for a healthy
//! service. `up --dry-run` stops after the check and prints the plan.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::cli::UpArgs;
use crate::commands::{
    check_steps, confirm, inspect, state_home, summary, CommandError, Outputs, ResourceRow, Setup, StackState,
};
use crate::config::ConfigSource;
use crate::context::{Ctx, DownOptions};
use crate::graph::{Direction, Graph, StepReport, StepResult};
use crate::model::{Change, Health, Key, Kind, Outcome};
use crate::report::{self, Report, Text};
use crate::resources::{self, cluster, image};
use crate::state::{Applied, State, Store};

/// `up --dry-run --detailed-exitcode`: the plan has changes (as Terraform's 2).
pub const EXIT_PLAN_CHANGES: u8 = 2;

/// What `up` would do to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    /// It exists (found by tag or name) but the state does not record it.
    Adopt,
    Update,
    /// The config asks for a change AWS cannot make in place: `up` refuses.
    Replace,
    /// Recorded but no longer in the config.
    Delete,
    /// AWS is still settling it.
    Wait,
    Unchanged,
    /// Something that is not the stack's is in the way (or AWS would refuse): `up` refuses.
    Blocked,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Adopt => "adopt",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Wait => "wait",
            Action::Unchanged => "unchanged",
            Action::Blocked => "blocked",
        }
    }

    fn of(row: &ResourceRow) -> Action {
        if row.blocked.is_some() {
            Action::Blocked
        } else if row.replacements().next().is_some() {
            Action::Replace
        } else if row.status == Health::Missing {
            Action::Create
        } else if !row.recorded {
            Action::Adopt
        } else if row.status == Health::Drifted {
            Action::Update
        } else if row.status == Health::Pending {
            Action::Wait
        } else {
            Action::Unchanged
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PlanRow {
    pub name: Key,
    pub kind: Kind,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The config last applied to this stack, when it is not the one this run uses.
#[derive(Debug, Serialize)]
pub struct ConfigSwitch {
    pub last_applied: String,
    pub last_applied_at: String,
    pub now: String,
}

#[derive(Debug, Serialize)]
pub struct Plan {
    pub resources: Vec<PlanRow>,
    /// Actions and how many resources get each.
    pub counts: BTreeMap<Action, usize>,
    /// The rollout the changes cause, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// Why `up` would stop before changing anything: replacements.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// Why `up` would stop before changing anything: what is in the way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_switch: Option<ConfigSwitch>,
    /// Which image the task definition gets, when a `deploy` is involved (see `resources::image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// With [autoscaling]: who owns the desired count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<String>,
}

/// Removed from the config and deleted before the up pass, not after it: while the service is
/// registered with Application Auto Scaling, the autoscaler moves the desired count that the up
/// pass puts back to `service.desired_count`.
fn deleted_before_the_up_pass(key: Key) -> bool {
    matches!(key.kind(), Kind::ScalableTarget | Kind::ScalingPolicy)
}

/// Config changes that remove a part of the network: refused, like any replacement.
fn removal_refused(key: Key, setup: &Setup) -> Option<Change> {
    let net = &setup.config.network;
    let change = |field: &str, to: u8| {
        Some(Change {
            field: field.into(),
            from: format!("{} or more", key.index()? + 1),
            to: to.to_string(),
            replace: true,
        })
    };
    match key {
        Key::PublicSubnet(_) | Key::PrivateSubnet(_) => change("network.az_count", net.az_count),
        Key::NatGateway(_) | Key::ElasticIp(_) | Key::PrivateRouteTable(_) => {
            change("network.nat_gateways", net.nat_gateways)
        }
        _ => None,
    }
}

impl Plan {
    /// The plan from the live rows of the config's graph, the resources the state records that
    /// the config no longer has, and the config last applied.
    fn new(
        setup: &Setup,
        rows: &[ResourceRow],
        orphans: &[ResourceRow],
        applied: Option<&Applied>,
        image: Option<String>,
    ) -> Plan {
        let mut resources: Vec<PlanRow> = rows
            .iter()
            .map(|r| PlanRow {
                name: r.name,
                kind: r.kind,
                action: Action::of(r),
                id: r.id.clone(),
                changes: r.changes.clone(),
                detail: if r.changes.is_empty() { r.detail.clone() } else { String::new() },
            })
            .collect();
        let blocked: Vec<String> = rows.iter().filter_map(|r| r.blocked.clone()).collect();
        for orphan in orphans {
            let refused = removal_refused(orphan.name, setup);
            resources.push(PlanRow {
                name: orphan.name,
                kind: orphan.kind,
                action: if refused.is_some() { Action::Replace } else { Action::Delete },
                id: orphan.id.clone(),
                changes: refused.into_iter().collect(),
                detail: "no longer in the config".into(),
            });
        }
        let mut counts = BTreeMap::new();
        for r in &resources {
            *counts.entry(r.action).or_default() += 1;
        }
        let refused: Vec<String> = resources
            .iter()
            .filter(|r| r.action == Action::Replace)
            .map(|r| {
                let why: Vec<String> = r.changes.iter().filter(|c| c.replace).map(Change::to_string).collect();
                format!("{}: {}", r.name, why.join("; "))
            })
            .collect();
        // A new task definition revision rolls the running service onto it.
        let definition = resources.iter().find(|r| r.name == Key::TaskDefinition && r.action == Action::Update);
        let service_runs = resources.iter().any(|r| r.name == Key::Service && r.action != Action::Create);
        let rollout = definition.filter(|_| service_runs).map(|d| {
            let changes: Vec<String> = d.changes.iter().map(Change::to_string).collect();
            format!("the service rolls onto a new task definition revision ({})", changes.join("; "))
        });
        let config_switch =
            applied.filter(|a| a.config != setup.source.path && a.sha256 != setup.source.sha256).map(|a| {
                ConfigSwitch {
                    last_applied: a.config.clone(),
                    last_applied_at: a.at.clone(),
                    now: setup.source.path.clone(),
                }
            });
        // With [autoscaling], a changed service.desired_count is no change: the autoscaler owns the count.
        let scaling = setup.config.autoscaling.as_ref().map(|a| {
            format!(
                "with [autoscaling], Application Auto Scaling owns the running count ({}..={}): service.desired_count \
                 ({}) is not applied to a running service",
                a.min_count, a.max_count, setup.config.service.desired_count
            )
        });
        Plan { resources, counts, rollout, refused, blocked, config_switch, image, scaling }
    }

    /// A plan `up` would refuse is an error (exit 1), so that CI stops on it; with
    /// `--detailed-exitcode`, as Terraform's: 0 no changes, 2 changes.
    fn exit_code(&self, detailed: bool) -> Result<ExitCode, CommandError> {
        let stops: Vec<&String> = self.refused.iter().chain(&self.blocked).collect();
        if !stops.is_empty() {
            return Err(CommandError::Reported(format!(
                "`up` would change nothing and stop: {} (see the plan)",
                stops.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
            )));
        }
        let changes = self.resources.iter().any(|r| {
            matches!(r.action, Action::Create | Action::Adopt | Action::Update | Action::Delete | Action::Replace)
        });
        Ok(if detailed && changes { ExitCode::from(EXIT_PLAN_CHANGES) } else { ExitCode::SUCCESS })
    }

    fn count(&self, action: Action) -> usize {
        self.counts.get(&action).copied().unwrap_or(0)
    }

    /// Nothing to create, adopt, update or delete (with `--no-wait`, nothing to wait for either).
    fn converged(&self, no_wait: bool) -> bool {
        self.resources.iter().all(|r| r.action == Action::Unchanged || (no_wait && r.action == Action::Wait))
    }

    fn render(&self, text: &mut Text) {
        let mut table = vec![];
        for r in &self.resources {
            table.push(vec![format!("  {}", r.action.word()), r.name.to_string(), r.detail.clone()]);
            for change in &r.changes {
                let note = if change.replace { "  (replaces it: refused)" } else { "" };
                table.push(vec![String::new(), format!("  {change}{note}")]);
            }
        }
        text.table(&table);
        if let Some(image) = &self.image {
            text.line(format!("image: {image}"));
        }
        if let Some(rollout) = &self.rollout {
            text.line(format!("rollout: {rollout}"));
        }
        if let Some(scaling) = &self.scaling {
            text.line(format!("note: {scaling}"));
        }
        if let Some(switch) = &self.config_switch {
            text.line(format!(
                "config: this run uses {}, but {} was applied last ({}); `up` asks before applying it",
                switch.now, switch.last_applied, switch.last_applied_at
            ));
        }
        text.line(format!(
            "plan: {} to create, {} to adopt, {} to update, {} to delete, {} to replace (refused), {} unchanged{}",
            self.count(Action::Create),
            self.count(Action::Adopt),
            self.count(Action::Update),
            self.count(Action::Delete),
            self.count(Action::Replace),
            self.count(Action::Unchanged) + self.count(Action::Wait),
            match self.count(Action::Blocked) {
                0 => String::new(),
                n => format!(", {n} blocked"),
            }
        ));
        for refusal in &self.refused {
            text.line(format!("refused: {refusal}"));
        }
        for why in &self.blocked {
            text.line(format!("blocked: {why}"));
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub stack: String,
    pub region: String,
    pub dry_run: bool,
    #[serde(flatten)]
    pub plan: Plan,
}

impl Report for PlanReport {
    const COMMAND: &'static str = "plan";

    fn render(&self, text: &mut Text) {
        text.line(format!("plan for stack {} in {} (dry run: nothing is changed)", self.stack, self.region));
        self.plan.render(text);
    }
}

#[derive(Debug, Serialize)]
pub struct UpReport {
    pub event: &'static str,
    pub stack: String,
    pub region: String,
    pub state_file: String,
    pub ok: bool,
    /// The stack after the run: `up`, `deploying` (not waited for), or `partial` (a step failed).
    pub state: StackState,
    pub elapsed_ms: u64,
    pub nothing_to_change: bool,
    pub steps: Vec<StepReport>,
    pub outputs: Outputs,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    no_wait: bool,
}

impl Report for UpReport {
    const COMMAND: &'static str = "up";

    fn render(&self, text: &mut Text) {
        if !self.ok {
            return;
        }
        text.line(format!("stack {} is up in {}", self.stack, self.region));
        self.outputs.render(text);
        if self.no_wait {
            text.line("  (not waited for the service to become healthy: see `fargate-stack status`)");
        }
    }
}

pub async fn run(setup: &Setup, args: &UpArgs) -> Result<ExitCode, CommandError> {
    if args.dry_run {
        let report = dry_run(setup).await?;
        report::emit(setup.format, &report);
        return report.plan.exit_code(args.detailed_exitcode);
    }
    let store = setup.open_state().await?;
    let ctx = setup.context(store, DownOptions::default());
    let result = apply(setup, args, &ctx).await;
    ctx.store().release().await;
    result
}

/// The live rows of the config's graph, and of what the state records beyond it.
async fn check(
    setup: &Setup,
    graph: &Graph,
    ctx: &Arc<Ctx>,
    state: &State,
) -> Result<(Vec<ResourceRow>, Vec<ResourceRow>), CommandError> {
    let rows = inspect(setup, graph, ctx.clone()).await?;
    let beyond = resources::stack(&resources::covering(&setup.config, state), false)?;
    let extra: Vec<Key> =
        beyond.keys().into_iter().filter(|k| graph.get(*k).is_none() && state.get(&k.to_string()).is_some()).collect();
    let mut orphans = vec![];
    for key in extra {
        let node = beyond.get(key).expect("covering graph has it");
        orphans.push(ResourceRow { name: key, kind: key.kind(), inspection: node.inspect(ctx).await? });
    }
    Ok((rows, orphans))
}

async fn dry_run(setup: &Setup) -> Result<PlanReport, CommandError> {
    let state = setup.read_state().await?.unwrap_or_else(|| State::new(&setup.config.name, &setup.region));
    let graph = resources::stack(&setup.config, false)?;
    let ctx = setup.read_only(state.clone());
    let (home, checked) = tokio::join!(state_home::find(setup), check(setup, &graph, &ctx, &state));
    let (rows, orphans) = checked?;
    let mut plan = Plan::new(setup, &rows, &orphans, state.applied.as_ref(), image::wanted(&ctx).note());
    if let Some(home) = home? {
        if let Some(other) = home.elsewhere(setup) {
            plan.blocked.push(state_home::refusal(setup, &home, other).to_string());
        }
    }
    Ok(PlanReport { stack: setup.config.name.clone(), region: setup.region.clone(), dry_run: true, plan })
}

async fn apply(setup: &Setup, args: &UpArgs, ctx: &Arc<Ctx>) -> Result<ExitCode, CommandError> {
    let state = ctx.snapshot();
    let graph = resources::stack(&setup.config, !args.no_wait)?;
    let progress = setup.progress(&graph.keys());
    let location = setup.location();
    progress.note(&format!("fargate-stack up: stack {} in {} (state {location})", setup.config.name, setup.region));
    setup.report_interrupted(ctx.store(), &progress);
    // Before anything is looked up (looking up records what it finds): a stack whose state lives
    // elsewhere is not adopted into a second state. A VPC made before the tag existed gets it.
    if let Some(home) = state_home::check(setup).await?.filter(|h| h.tag.is_none()) {
        state_home::set(setup, &home.vpc, &location).await?;
    }
    // Before any change: one round of concurrent describe calls says what would happen; beside
    // it, an az_count the region cannot hold is refused.
    let (zones, checked) = tokio::join!(ctx.availability_zones(), check(setup, &graph, ctx, &state));
    zones?;
    let (rows, orphans) = checked?;
    let plan = Plan::new(setup, &rows, &orphans, state.applied.as_ref(), image::wanted(ctx).note());
    if let Some(image) = &plan.image {
        progress.note(&format!("image: {image}"));
    }
    if !plan.blocked.is_empty() {
        return Err(CommandError::Refused(format!(
            "nothing was changed: {}. fargate-stack never overwrites or deletes what is not the stack's",
            plan.blocked.join("; ")
        )));
    }
    if !plan.refused.is_empty() {
        // HTTPS can move without the rest of the stack: through a run without it.
        let https_only = plan.refused.iter().all(|r| r.contains("https."));
        let how = if https_only {
            "A certificate's domain and a record's zone cannot change: to move HTTPS, remove [https] (or switch \
             to certificate_arn) and run `up`, which deletes the certificate and records, then set the new \
             values and run `up` again"
        } else {
            "These replace resources (and their data): run `fargate-stack down` (with --retain-table to keep \
             the table's data), then `up`"
        };
        return Err(CommandError::Refused(format!("nothing was changed: {}. {how}", plan.refused.join("; "))));
    }
    let started = std::time::Instant::now();
    let converged = plan.converged(args.no_wait);
    if let Some(switch) = plan.config_switch.as_ref().filter(|_| !converged && !args.yes) {
        switch.confirm(&setup.config.name)?;
    }
    let steps = if converged {
        // A service that is ok runs the recorded revision with every target healthy: its rollout
        // completed, even if no wait saw it (`--no-wait` runs). Remember it for `rollback`.
        if rows.iter().any(|r| r.name == Key::Service && r.status == Health::Ok) {
            if let Some(arn) = ctx.id(Key::TaskDefinition) {
                cluster::note_completed(ctx, &arn).await?;
            }
        }
        let unchanged = |key| StepReport {
            key,
            result: StepResult::Done { outcome: Outcome::Unchanged },
            elapsed: Default::default(),
        };
        graph.keys().into_iter().map(unchanged).collect()
    } else {
        execute(setup, &graph, ctx, &progress, &plan, &state).await?
    };
    let result = check_steps(&steps);
    if result.is_ok() {
        record_applied(ctx.store(), &setup.source).await?;
    }
    let elapsed = if converged { started.elapsed() } else { progress.elapsed() };
    let what = if converged { "nothing to change".to_string() } else { summary(&steps) };
    let verdict = if result.is_ok() { "done" } else { "failed" };
    progress.note(&format!("{verdict} in {:.1}s: {what}", elapsed.as_secs_f64()));
    for warning in ctx.warnings() {
        progress.note(&format!("warning: {warning}"));
    }
    let all_unchanged = plan.resources.iter().all(|r| r.action == Action::Unchanged);
    let report = UpReport {
        event: "result",
        stack: setup.config.name.clone(),
        region: setup.region.clone(),
        state_file: location,
        ok: result.is_ok(),
        state: match (&result, args.no_wait) {
            (Err(_), _) => StackState::Partial,
            (Ok(()), true) if !all_unchanged => StackState::Deploying,
            (Ok(()), _) => StackState::Up,
        },
        elapsed_ms: elapsed.as_millis() as u64,
        nothing_to_change: converged,
        steps,
        outputs: Outputs::of(ctx),
        warnings: ctx.warnings(),
        error: result.as_ref().err().map(|e| e.to_string()),
        no_wait: args.no_wait,
    };
    report::emit(setup.format, &report);
    result.map(|()| ExitCode::SUCCESS)
}

/// The up pass over the config's graph; then what the config no longer has goes, once the rest is
/// in place.
async fn execute(
    setup: &Setup,
    graph: &Graph,
    ctx: &Arc<Ctx>,
    progress: &crate::progress::Progress,
    plan: &Plan,
    state: &State,
) -> Result<Vec<StepReport>, CommandError> {
    let deletable: Vec<Key> = plan.resources.iter().filter(|r| r.action == Action::Delete).map(|r| r.name).collect();
    let beyond = resources::stack(&resources::covering(&setup.config, state), false)?;
    let (first, last): (Vec<Key>, Vec<Key>) = deletable.into_iter().partition(|k| deleted_before_the_up_pass(*k));
    let mut steps = vec![];
    if !first.is_empty() {
        let only = |n: &dyn crate::model::Resource| first.contains(&n.key());
        steps.extend(beyond.execute(Direction::Down, ctx.clone(), progress, setup.max_concurrency, &only).await);
    }
    steps.extend(graph.execute(Direction::Up, ctx.clone(), progress, setup.max_concurrency, &|_| true).await);
    // The rest of what the config no longer has goes once everything else is in place.
    if !last.is_empty() && check_steps(&steps).is_ok() {
        let only = |n: &dyn crate::model::Resource| last.contains(&n.key());
        steps.extend(beyond.execute(Direction::Down, ctx.clone(), progress, setup.max_concurrency, &only).await);
    }
    Ok(steps)
}

impl ConfigSwitch {
    /// Ask on a terminal before applying another config than the last one; refuse off one.
    fn confirm(&self, stack: &str) -> Result<(), CommandError> {
        let question = format!(
            "This run uses {}, but {} was applied last ({}). Apply {} anyway? Type the stack name to confirm: ",
            self.now, self.last_applied, self.last_applied_at, self.now
        );
        let refusal = format!(
            "refusing to apply {} over {} (applied last, {}) without confirmation: pass the same --config, or --yes",
            self.now, self.last_applied, self.last_applied_at
        );
        confirm(&question, stack, &refusal)
    }
}

async fn record_applied(store: &Store, source: &ConfigSource) -> Result<(), CommandError> {
    let applied = Applied {
        config: source.path.clone(),
        sha256: source.sha256.clone(),
        at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    store
        .update(|state| {
            let same = state.applied.as_ref().is_some_and(|a| a.config == applied.config && a.sha256 == applied.sha256);
            if same || state.resources.is_empty() {
                return false;
            }
            state.applied = Some(applied);
            true
        })
        .await?;
    Ok(())
}
