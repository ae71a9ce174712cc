//! `up`: create what is missing, in dependency order, concurrently; wait for a healthy service.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use crate::cli::UpArgs;
use crate::commands::{check_reports, outputs, print_outputs, status, step_rows, summary, CommandError, Setup};
use crate::config::Config;
use crate::context::{keys, DownOptions, Outcome};
use crate::graph::{self, Direction, StepReport, StepResult};
use crate::progress::Progress;
use crate::resources::table::{self, TablePlan};
use crate::resources::Health;
use crate::state::{State, StateFile};

pub async fn run(setup: &Setup, args: &UpArgs) -> Result<ExitCode, CommandError> {
    if args.dry_run {
        return status::plan(setup).await;
    }
    let state = StateFile::open(&setup.state_path, &setup.config.name, &setup.region)?;
    if let Some(holder) = state.interrupted() {
        super::report_interrupted(setup, holder);
    }
    let refused = replacements(&setup.config, state.state());
    if !refused.is_empty() {
        return Err(CommandError::Refused(format!(
            "{}; these need the stack replaced: run `fargate-stack down` (with --retain-table to keep the table's data), then `up`",
            refused.join("; ")
        )));
    }
    let ctx = setup.context(state, DownOptions::default());
    let started = std::time::Instant::now();
    // Converged already? One round of concurrent describe calls, and no change at all. Beside
    // it, refuse an az_count the region cannot hold before anything is created.
    let converged = async {
        if ctx.snapshot().resources.is_empty() {
            return Ok(false);
        }
        let (rows, _) = status::live(ctx.clone(), setup).await?;
        Ok::<_, CommandError>(
            rows.iter().all(|r| r.status == Health::Ok || (args.no_wait && r.status == Health::Pending)),
        )
    };
    let (zones, converged) = tokio::join!(ctx.availability_zones(), converged);
    zones?;
    let converged = converged?;
    let (reports, elapsed) = if converged {
        let nodes = graph::stack(&setup.config, TablePlan::Absent, false);
        let reports: Vec<StepReport> = nodes
            .iter()
            .map(|n| StepReport {
                key: n.key.clone(),
                result: StepResult::Done(Outcome::Unchanged),
                elapsed: Duration::ZERO,
            })
            .collect();
        (reports, started.elapsed())
    } else {
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
        (reports, progress.elapsed())
    };
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
                "elapsed_ms": elapsed.as_millis() as u64,
                "steps": step_rows(&reports),
                "outputs": outputs,
                "error": result.as_ref().err().map(|e| e.to_string()),
            })
        );
    } else {
        let what = if converged { "nothing to change".to_string() } else { summary(&reports) };
        eprintln!("{} in {:.1}s: {what}", if result.is_ok() { "done" } else { "failed" }, elapsed.as_secs_f64());
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

/// Config changes that would replace resources `up` only updates in place, as messages.
fn replacements(config: &Config, state: &State) -> Vec<String> {
    let count = |prefix: &str| state.resources.keys().filter(|k| k.starts_with(prefix)).count();
    let mut refused = vec![];
    // What the VPC was built for (a run killed part-way records fewer subnets, and that is fine).
    if let Some(azs) = state.attr(keys::VPC, "az_count") {
        if azs != config.network.az_count.to_string() {
            refused.push(format!(
                "network.az_count changed from {azs} to {}: the subnets, the load balancer and the tasks would move",
                config.network.az_count
            ));
        }
    }
    let nats = count("nat-gateway-");
    if nats > config.network.nat_gateways as usize {
        refused.push(format!("network.nat_gateways lowered from {nats} to {}", config.network.nat_gateways));
    }
    if let Some(port) = state.attr(keys::TARGET_GROUP, "port") {
        if port != config.service.container_port.to_string() {
            refused.push(format!(
                "service.container_port changed from {port} to {}: the target group would be replaced",
                config.service.container_port
            ));
        }
    }
    if let Some(keys) = state.attr(keys::TABLE, "keys") {
        let wanted = table::wanted_signature(config);
        if keys != wanted {
            refused.push(format!(
                "the table's keys changed from {keys} to {wanted}: the table and its data would be replaced"
            ));
        }
    }
    if let Some(cidr) = state.attr(keys::VPC, "cidr") {
        if cidr != config.network.cidr.to_string() {
            refused.push(format!(
                "network.cidr changed from {cidr} to {}: the VPC and everything in it would be replaced",
                config.network.cidr
            ));
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use crate::state::Recorded;

    fn state_with(keys: &[(&str, &[(&str, &str)])]) -> State {
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        for (key, attrs) in keys {
            let attrs = attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            state.resources.insert(key.to_string(), Recorded { kind: "k".into(), id: "i".into(), attrs });
        }
        state
    }

    #[test]
    fn refuses_changes_that_replace_the_network() {
        let config = Config::parse("t", DEFAULT_TOML).unwrap();
        let same = state_with(&[
            ("vpc", &[("cidr", "10.0.0.0/16"), ("az_count", "2")]),
            ("subnet-public-1", &[]),
            ("subnet-public-2", &[]),
            ("nat-gateway-1", &[]),
        ]);
        assert!(replacements(&config, &same).is_empty());
        let partial = state_with(&[("vpc", &[("cidr", "10.0.0.0/16"), ("az_count", "2")]), ("subnet-public-1", &[])]);
        assert!(replacements(&config, &partial).is_empty(), "an interrupted run continues");
        assert!(replacements(&config, &State::new("s", "r")).is_empty(), "a new stack replaces nothing");
        let other_cidr = state_with(&[("vpc", &[("cidr", "10.1.0.0/16")])]);
        assert!(replacements(&config, &other_cidr)[0].contains("network.cidr changed from 10.1.0.0/16 to 10.0.0.0/16"));
        let three = state_with(&[("vpc", &[("az_count", "3")])]);
        assert!(replacements(&config, &three)[0].contains("network.az_count changed from 3 to 2"));
        let port = state_with(&[("target-group", &[("port", "8080")])]);
        assert!(replacements(&config, &port)[0].contains("service.container_port changed from 8080 to 80"));
        let keys = state_with(&[("table", &[("keys", "id:S")])]);
        assert!(replacements(&config, &keys)[0].contains("keys changed from id:S to id:S,created_at:N"));
        let same_keys = state_with(&[("table", &[("keys", "id:S,created_at:N")]), ("target-group", &[("port", "80")])]);
        assert!(replacements(&config, &same_keys).is_empty());
        let two_nats = state_with(&[("nat-gateway-1", &[]), ("nat-gateway-2", &[])]);
        assert!(replacements(&config, &two_nats)[0].contains("network.nat_gateways lowered from 2 to 1"));
    }
}
