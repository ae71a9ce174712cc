//! `down`: delete everything the state file records, in the reverse dependency order.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use serde_json::json;

use crate::cli::DownArgs;
use crate::commands::{check_reports, step_rows, summary, CommandError, Setup};
use crate::context::{keys, DownOptions};
use crate::graph::{self, Direction};
use crate::progress::Progress;
use crate::resources::table::{self, TablePlan};
use crate::state::{self, StateFile};

pub async fn run(setup: &Setup, args: &DownArgs) -> Result<ExitCode, CommandError> {
    let recorded = state::read(&setup.state_path)?;
    if let Some(recorded) = &recorded {
        state::check_matches(&setup.state_path, recorded, &setup.config.name, &setup.region)?;
    }
    let recorded = recorded.filter(|s| !s.resources.is_empty());
    // With no state, `--name` asks to find the stack's resources by tag and name.
    let discover = recorded.is_none() && args.name.is_some();
    let graph_config = match &recorded {
        Some(recorded) => graph::covering(&setup.config, recorded),
        None if discover => graph::discovering(&setup.config),
        None => {
            report_nothing(setup);
            return Ok(ExitCode::SUCCESS);
        }
    };
    if !args.yes {
        let what = match &recorded {
            Some(r) => format!("{} resources recorded in {}", r.resources.len(), setup.state_path.display()),
            None => "no state file: every resource tagged or named for it".to_string(),
        };
        confirm(setup, &what)?;
    }
    let state = StateFile::open(&setup.state_path, &setup.config.name, &setup.region)?;
    if let Some(holder) = state.interrupted() {
        super::report_interrupted(setup, holder);
    }
    let options =
        DownOptions { delete_data: args.delete_data, retain_table: args.retain_table, no_backup: args.no_backup };
    let ctx = setup.context(state, options);
    // Decide about the table before deleting anything: a refusal must leave the stack whole.
    let table_plan = table::plan_delete(&ctx).await?;
    if let TablePlan::DeleteWithData { items, backup } = &table_plan {
        let name = ctx.id(keys::TABLE).unwrap_or_default();
        let how = if *backup { "after an on-demand backup" } else { "without a backup (--no-backup)" };
        eprintln!("table {name} holds {items} items; deleting it {how} (--delete-data)");
    }
    let nodes = graph::stack(&graph_config, table_plan, false);
    let names: Vec<String> = nodes.iter().filter(|n| n.down.is_some()).map(|n| n.key.clone()).collect();
    let progress = Progress::new(setup.mode, &names);
    progress.note(&format!("fargate-stack down: stack {} in {}", setup.config.name, setup.region));
    let reports = graph::execute(&nodes, Direction::Down, ctx.clone(), &progress, setup.max_concurrency).await;
    progress.finish();
    let result = check_reports(&reports);
    let left = ctx.snapshot();
    let retained = left.attr(keys::TABLE, "retained").is_some();
    let notes = ctx.notes();
    if result.is_ok() {
        ctx.remove_state_if_empty()?;
    }
    if setup.json {
        println!(
            "{}",
            json!({
                "event": "result",
                "command": "down",
                "ok": result.is_ok(),
                "stack": setup.config.name,
                "region": setup.region,
                "elapsed_ms": progress.elapsed().as_millis() as u64,
                "steps": step_rows(&reports),
                "retained": left.resources.keys().collect::<Vec<_>>(),
                "notes": notes,
                "error": result.as_ref().err().map(|e| e.to_string()),
            })
        );
    } else {
        eprintln!(
            "{} in {:.1}s: {}",
            if result.is_ok() { "done" } else { "failed" },
            progress.elapsed().as_secs_f64(),
            summary(&reports)
        );
        if result.is_ok() {
            println!("stack {} is down in {}", setup.config.name, setup.region);
            if retained {
                println!(
                    "  table {} was kept (deletion protection on); the state file records it",
                    left.id(keys::TABLE).unwrap_or_default()
                );
            }
        }
    }
    if !setup.json {
        for note in &notes {
            println!("  {note}");
        }
    }
    result.map(|()| ExitCode::SUCCESS)
}

fn report_nothing(setup: &Setup) {
    if setup.json {
        println!(
            "{}",
            json!({"event": "result", "command": "down", "ok": true, "stack": setup.config.name, "region": setup.region, "steps": []})
        );
    } else {
        println!(
            "stack {} in {}: nothing to delete (no state at {}; `down --name {}` finds a stack's resources by tag and name)",
            setup.config.name,
            setup.region,
            setup.state_path.display(),
            setup.config.name
        );
    }
}

/// Ask on a terminal; refuse when nobody can answer.
fn confirm(setup: &Setup, what: &str) -> Result<(), CommandError> {
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::Refused(format!(
            "refusing to delete stack {} without confirmation: stdin is not a terminal; pass --yes",
            setup.config.name
        )));
    }
    eprint!("Delete stack {} in {} ({what})? Type the stack name to confirm: ", setup.config.name, setup.region);
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CommandError::Refused(format!("cannot read the answer: {e}")))?;
    if answer.trim() != setup.config.name {
        return Err(CommandError::Refused("not confirmed; nothing was deleted".into()));
    }
    Ok(())
}
