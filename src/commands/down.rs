//! `down`: delete everything the state records (or, with `--name` and no state, everything found
//! by tag and name that passes the ownership check), each resource as soon as what must go before
//! it is gone.

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::access::Verb;
use crate::cli::DownArgs;
use crate::commands::access_check;
use crate::commands::{check_steps, confirm, inspect, state_home, summary, CommandError, Setup, StackState};
use crate::context::Ctx;
use crate::graph::{Direction, Graph, StepReport};
use crate::model::{Health, Shape};
use crate::report::{self, Report, Text};
use crate::resources::{self, table::DataPolicy};
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
    /// How each resource kept on purpose says so.
    #[serde(skip)]
    pub kept: Vec<&'static str>,
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
        for kept in &self.kept {
            text.line(format!("  {kept}"));
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
    let graph = match &recorded {
        Some(state) => with_probes(setup, state).await?,
        None if args.name.is_some() => resources::stack(&Shape::discovering(&setup.config))?,
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
    let options =
        DataPolicy { delete_data: args.delete_data, retain_table: args.retain_table, no_backup: args.no_backup };
    // A permission missing for a deletion stops the run before the first one, not halfway.
    let deletions = access_check::declared(&graph, &[Verb::Delete]);
    access_check::before_changes(setup, &deletions, &setup.progress(&[])).await?;
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
        match resources::stack(&Shape::covering(&setup.config, &locked)) {
            Ok(graph) => graph,
            Err(e) => {
                store.release().await;
                return Err(e.into());
            }
        }
    };
    let ctx = setup.context(store);
    ctx.set_run(options);
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
            kept: vec![],
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
    options: &DataPolicy,
) -> Result<(), CommandError> {
    let preview = setup.context(Store::read_only(setup.location(), state));
    preview.set_run(options.clone());
    let prepared = prepare(graph, &preview).await?;
    let rows = inspect(setup, graph, preview.clone()).await?;
    let existing: Vec<String> = rows
        .iter()
        .filter(|r| r.status != Health::Missing)
        .map(|r| {
            // Anyone who can tag a resource can make it look like the stack's: say which are only that.
            let found = if r.recorded { "" } else { " (found by tag or name; not in the state)" };
            format!("  {} {}{found}", r.name, r.id.clone().unwrap_or_default())
        })
        .collect();
    let mut listing = format!(
        "{} resources of stack {} in {}:\n{}",
        existing.len(),
        setup.config.name,
        setup.region,
        existing.join("\n")
    );
    for line in prepared.iter().filter_map(|p| p.confirm.as_ref()) {
        listing.push_str(&format!("\n{line}"));
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
    // Found by tag first what others are checked against or found through (the VPC, the
    // certificate for its validation record), when the state does not record them.
    for node in graph.nodes().iter().filter(|n| n.lifecycle().found_first) {
        if ctx.id(node.key()).is_none() {
            node.inspect(ctx).await?;
        }
    }
    // Decide what needs deciding before deleting anything: a refusal must leave the stack whole.
    for note in prepare(graph, ctx).await?.into_iter().filter_map(|p| p.progress) {
        progress.note(&note);
    }
    let steps = graph.execute(Direction::Down, ctx.clone(), &progress, setup.max_concurrency, &|n| !n.is_wait()).await;
    let result = check_steps(&steps);
    // What an `up` that did not finish made is gone with the rest: its mark goes too.
    if result.is_ok() && !ctx.store().remove_if_empty().await? {
        ctx.store().update(|state| state.unfinished.take().is_some()).await?;
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
        kept: graph
            .nodes()
            .iter()
            .filter(|n| left.contains_key(&n.key().to_string()))
            .filter_map(|n| n.lifecycle().retention.map(|r| r.kept))
            .collect(),
        notes: ctx.notes(),
        warnings: ctx.warnings(),
        error: result.as_ref().err().map(|e| e.to_string()),
        hint: None,
    };
    report::emit(setup.format, &report);
    result.map(|()| ExitCode::SUCCESS)
}

/// What each resource decided before `down` deletes anything (the table with data: refused
/// unless the flags say what to do with it).
async fn prepare(graph: &Graph, ctx: &Arc<Ctx>) -> Result<Vec<crate::model::Prepared>, CommandError> {
    let mut prepared = vec![];
    for node in graph.nodes() {
        prepared.extend(node.prepare_teardown(ctx).await?);
    }
    Ok(prepared)
}

/// The graph covering what the state records, and what AWS has though no state records it (a run
/// killed right after making it, and the config changed since): each such probe is looked for,
/// and kept only if found, since it would outlive what it belongs to.
async fn with_probes(setup: &Setup, state: &State) -> Result<Graph, CommandError> {
    let probing = resources::stack(&Shape::covering(&setup.config, state).probing())?;
    let ctx = setup.read_only(state.clone());
    let mut found = vec![];
    for &key in probing.probes() {
        let node = probing.get(key).expect("a probe is a node");
        if node.inspect(&ctx).await?.status != Health::Missing {
            found.push(key);
        }
    }
    Ok(resources::stack(&Shape::covering(&setup.config, state).with_found(found))?)
}
