//! `down`: delete everything the state records (or, with `--name` and no state, everything found
//! by tag and name that passes the ownership check), each resource as soon as what must go before
//! it is gone.

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::cli::DownArgs;
use crate::commands::{check_steps, confirm, inspect, state_home, summary, CommandError, Setup, StackState};
use crate::config::Config;
use crate::context::{Ctx, DownOptions, TablePlan};
use crate::graph::{Direction, Graph, StepReport};
use crate::model::{Health, Key};
use crate::report::{self, Report, Text};
use crate::resources::{self, table};
use crate::state::{State, Store};

#[derive(Debug, Serialize)]
pub struct DownReport {
    pub event: &'static str,
    pub stack: String,
    pub region: String,
    pub ok: bool,
    /// The stack after the run: `not_deployed`, `retained` (the table kept), or `partial`.
    pub state: StackState,
    pub elapsed_ms: u64,
    pub steps: Vec<StepReport>,
    /// What the state still records (the table, with `--retain-table`).
    pub retained: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Report for DownReport {
    const COMMAND: &'static str = "down";

    fn render(&self, text: &mut Text) {
        if let Some(hint) = &self.hint {
            text.line(format!("stack {} in {}: {hint}", self.stack, self.region));
            return;
        }
        if self.ok {
            text.line(format!("stack {} is down in {}", self.stack, self.region));
        }
        if self.retained.iter().any(|k| k == "table") {
            text.line("  the table was kept (deletion protection on); the state file records it");
        }
        for note in &self.notes {
            text.line(format!("  {note}"));
        }
    }
}

pub async fn run(setup: &Setup, args: &DownArgs) -> Result<ExitCode, CommandError> {
    // A stack whose state lives elsewhere is taken down from there, so that state does not go on
    // recording what is gone.
    let (read, _) = tokio::try_join!(setup.read_state(), state_home::check(setup))?;
    // A state that records nothing: a `down` that was stopped between its last write and the
    // state's deletion (two calls apart with the state in S3).
    let empty = read.as_ref().is_some_and(|s| s.resources.is_empty());
    let recorded = read.filter(|s| !s.resources.is_empty());
    // With no state, `--name` asks to find the stack's resources by tag and name.
    let graph_config = match &recorded {
        Some(state) => resources::covering(&setup.config, state),
        None if args.name.is_some() => resources::discovering(&setup.config),
        None => {
            if empty {
                let store = setup.open_state().await?;
                let removed = store.remove_if_empty().await;
                store.release().await;
                removed?;
            }
            report::emit(setup.format, &DownReport::nothing_recorded(setup, empty));
            return Ok(ExitCode::SUCCESS);
        }
    };
    let graph_config = match &recorded {
        Some(state) => with_unrecorded_scaling(setup, graph_config, state).await?,
        None => graph_config,
    };
    let graph = resources::stack(&graph_config, false)?;
    let options =
        DownOptions { delete_data: args.delete_data, retain_table: args.retain_table, no_backup: args.no_backup };
    if !args.yes {
        let state = recorded.clone().unwrap_or_else(|| State::new(&setup.config.name, &setup.region));
        confirm_deletion(setup, &graph, state, &options).await?;
    }
    let store = setup.open_state().await?;
    // What the state records once it is locked: another run may have changed it since it was read.
    let locked = store.snapshot();
    let graph = if locked.resources.is_empty() || Some(&locked) == recorded.as_ref() {
        graph
    } else {
        match resources::stack(&resources::covering(&setup.config, &locked), false) {
            Ok(graph) => graph,
            Err(e) => {
                store.release().await;
                return Err(e.into());
            }
        }
    };
    let ctx = setup.context(store, options);
    let result = teardown(setup, &graph, &ctx).await;
    ctx.store().release().await;
    result
}

impl DownReport {
    /// `removed_empty`: the state recorded nothing and was deleted.
    fn nothing_recorded(setup: &Setup, removed_empty: bool) -> DownReport {
        DownReport {
            event: "result",
            stack: setup.config.name.clone(),
            region: setup.region.clone(),
            ok: true,
            state: StackState::NotDeployed,
            elapsed_ms: 0,
            steps: vec![],
            retained: vec![],
            notes: vec![],
            warnings: vec![],
            error: None,
            hint: Some(format!(
                "nothing to delete ({} at {}; `fargate-stack status` looks for it by tag, and \
                 `down --name {}` finds a stack's resources by tag and name)",
                if removed_empty { "the state recorded nothing and was removed" } else { "no state" },
                setup.location(),
                setup.config.name
            )),
        }
    }
}

/// Show what would go (and refuse on a table with data) before asking anything; ask on a
/// terminal, refuse (with the same list) off one.
async fn confirm_deletion(
    setup: &Setup,
    graph: &Graph,
    state: State,
    options: &DownOptions,
) -> Result<(), CommandError> {
    let preview = setup.context(Store::read_only(setup.location(), state), options.clone());
    let table_plan = table::plan_delete(&preview).await?;
    let rows = inspect(setup, graph, preview.clone()).await?;
    let existing: Vec<String> = rows
        .iter()
        .filter(|r| r.status != Health::Missing)
        .map(|r| format!("  {} {}", r.name, r.id.clone().unwrap_or_default()))
        .collect();
    let mut listing = format!(
        "{} resources of stack {} in {}:\n{}",
        existing.len(),
        setup.config.name,
        setup.region,
        existing.join("\n")
    );
    match table_plan {
        TablePlan::DeleteWithData { items, backup } => listing.push_str(&format!(
            "\nthe table holds {} and will be deleted {}",
            report::count(items, "item"),
            if backup { "after an on-demand backup" } else { "WITHOUT a backup" }
        )),
        TablePlan::Retain => listing.push_str("\nthe table is kept (--retain-table)"),
        _ => {}
    }
    confirm(
        &format!("{listing}\nDelete them? Type the stack name to confirm: "),
        &setup.config.name,
        &format!("refusing to delete without confirmation: stdin is not a terminal; pass --yes\n{listing}"),
    )
}

/// Delete everything, each resource once what must go before it is gone.
async fn teardown(setup: &Setup, graph: &Graph, ctx: &Arc<Ctx>) -> Result<ExitCode, CommandError> {
    let progress = setup.progress(&graph.keys());
    progress.note(&format!("fargate-stack down: stack {} in {}", setup.config.name, setup.region));
    setup.report_interrupted(ctx.store(), &progress);
    // Found by tag first, so that what sits in it can be checked to be in the stack's VPC. The
    // certificate's validation record is found through the certificate, so both are found before
    // the certificate goes.
    for anchor in [Key::Vpc, Key::LoadBalancer, Key::Certificate, Key::ValidationRecord, Key::AliasRecord] {
        if let (None, Some(node)) = (ctx.id(anchor), graph.get(anchor)) {
            node.inspect(ctx).await?;
        }
    }
    // Decide about the table before deleting anything: a refusal must leave the stack whole.
    let table_plan = table::plan_delete(ctx).await?;
    if let TablePlan::DeleteWithData { items, backup } = &table_plan {
        let how = if *backup { "after an on-demand backup" } else { "without a backup (--no-backup)" };
        progress.note(&format!("the table holds {}; deleting it {how} (--delete-data)", report::count(*items, "item")));
    }
    *ctx.table_plan.lock().expect("table plan") = table_plan;
    let steps = graph.execute(Direction::Down, ctx.clone(), &progress, setup.max_concurrency, &|n| !n.is_wait()).await;
    let result = check_steps(&steps);
    if result.is_ok() {
        ctx.store().remove_if_empty().await?;
    }
    let verdict = if result.is_ok() { "done" } else { "failed" };
    progress.note(&format!("{verdict} in {:.1}s: {}", progress.elapsed().as_secs_f64(), summary(&steps)));
    for warning in ctx.warnings() {
        progress.note(&format!("warning: {warning}"));
    }
    let left = ctx.snapshot().resources;
    let state = match (&result, left.is_empty()) {
        (Err(_), _) => StackState::Partial,
        (Ok(()), true) => StackState::NotDeployed,
        (Ok(()), false) => StackState::Retained,
    };
    let report = DownReport {
        event: "result",
        stack: setup.config.name.clone(),
        region: setup.region.clone(),
        ok: result.is_ok(),
        state,
        elapsed_ms: progress.elapsed().as_millis() as u64,
        steps,
        retained: left.keys().cloned().collect(),
        notes: ctx.notes(),
        warnings: ctx.warnings(),
        error: result.as_ref().err().map(|e| e.to_string()),
        hint: None,
    };
    report::emit(setup.format, &report);
    result.map(|()| ExitCode::SUCCESS)
}

/// Also the service's scalable target when the state does not record one but AWS has it (a run
/// killed right after registering it, and the config's `[autoscaling]` removed since): it would
/// outlive the service in Application Auto Scaling.
async fn with_unrecorded_scaling(setup: &Setup, config: Config, state: &State) -> Result<Config, CommandError> {
    if config.autoscaling.is_some() || state.get(&Key::Service.to_string()).is_none() {
        return Ok(config);
    }
    let mut probe = config.clone();
    resources::with_autoscaling(&mut probe, false);
    let graph = resources::stack(&probe, false)?;
    let target = graph.get(Key::ScalableTarget).expect("the probe has a scalable target");
    let found = target.inspect(&setup.read_only(state.clone())).await?.status != Health::Missing;
    Ok(if found { probe } else { config })
}
