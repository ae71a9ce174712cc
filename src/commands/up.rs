//! `up`: create what is missing, in dependency order, concurrently; wait for a healthy service.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::UpArgs;
use crate::commands::{check_reports, outputs, print_outputs, status, step_rows, summary, CommandError, Setup};
use crate::context::DownOptions;
use crate::graph::{self, Direction};
use crate::progress::Progress;
use crate::resources::table::TablePlan;
use crate::state::StateFile;

pub async fn run(setup: &Setup, args: &UpArgs) -> Result<ExitCode, CommandError> {
    if args.dry_run {
        return status::plan(setup).await;
    }
    let state = StateFile::open(&setup.state_path, &setup.config.name, &setup.region)?;
    let ctx = setup.context(state, DownOptions::default());
    let nodes = graph::stack(&setup.config, TablePlan::Absent, !args.no_wait);
    let names: Vec<String> = nodes.iter().map(|n| n.key.clone()).collect();
    let progress = Progress::new(setup.mode, &names);
    progress.note(&format!(
        "fargate-stack up: stack {} in {} (state {})",
        setup.config.name,
        setup.region,
        setup.state_path.display()
    ));
    let reports = graph::execute(&nodes, Direction::Up, ctx.clone(), &progress, setup.max_concurrency).await;
    progress.finish();
    let outputs = outputs(&ctx);
    let result = check_reports(&reports);
    if setup.json {
        println!(
            "{}",
            json!({
                "event": "result",
                "command": "up",
                "ok": result.is_ok(),
                "stack": setup.config.name,
                "region": setup.region,
                "elapsed_ms": progress.elapsed().as_millis() as u64,
                "steps": step_rows(&reports),
                "outputs": outputs,
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
            println!("stack {} is up in {}", setup.config.name, setup.region);
            print_outputs(&outputs);
            if args.no_wait {
                println!("  (not waited for the service to become healthy: see `fargate-stack status`)");
            }
        }
    }
    result.map(|()| ExitCode::SUCCESS)
}
