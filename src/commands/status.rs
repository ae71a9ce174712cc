//! `status` (and `up --dry-run`): every resource checked live against AWS, read-only.

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::commands::{outputs, print_outputs, CommandError, Outputs, Setup, EXIT_DRIFT};
use crate::context::{keys, Ctx, DownOptions};
use crate::graph;
use crate::resources::table::TablePlan;
use crate::resources::{cluster, load_balancer, Health, Inspection};
use crate::state::{self, State, StateFile};

#[derive(Debug, Serialize)]
pub struct ResourceRow {
    pub name: String,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: Health,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Serialize, Default)]
pub struct ServiceSummary {
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub healthy_targets: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
}

/// The state as recorded, or None when nothing is deployed.
fn load(setup: &Setup) -> Result<Option<State>, CommandError> {
    let Some(state) = state::read(&setup.state_path)? else { return Ok(None) };
    state::check_matches(&setup.state_path, &state, &setup.config.name, &setup.region)?;
    Ok(Some(state))
}

fn read_only_ctx(setup: &Setup, state: State) -> Arc<Ctx> {
    setup.context(StateFile::read_only(&setup.state_path, state), DownOptions::default())
}

async fn inspect(ctx: Arc<Ctx>, setup: &Setup) -> Result<Vec<ResourceRow>, CommandError> {
    let nodes = graph::stack(&setup.config, TablePlan::Absent, false);
    let mut rows = vec![];
    for (name, kind, result) in graph::inspect_all(&nodes, ctx, setup.max_concurrency).await {
        let inspection: Inspection = result?;
        rows.push(ResourceRow { name, kind, id: inspection.id, status: inspection.status, detail: inspection.detail });
    }
    Ok(rows)
}

async fn service_summary(ctx: &Ctx) -> Result<Option<ServiceSummary>, CommandError> {
    if ctx.id(keys::SERVICE).is_none() {
        return Ok(None);
    }
    let health = async {
        match ctx.id(keys::TARGET_GROUP) {
            Some(_) => load_balancer::target_health(ctx).await.map(|(h, _)| h).unwrap_or(0),
            None => 0,
        }
    };
    let (view, healthy) = tokio::join!(cluster::service_view(ctx), health);
    let Some(view) = view? else { return Ok(None) };
    Ok(Some(ServiceSummary {
        desired: view.desired,
        running: view.running,
        pending: view.pending,
        healthy_targets: healthy,
        rollout: view.rollout,
    }))
}

/// Every resource's live status and the service's counts, all checked concurrently.
pub async fn live(ctx: Arc<Ctx>, setup: &Setup) -> Result<(Vec<ResourceRow>, Option<ServiceSummary>), CommandError> {
    let (rows, service) = tokio::join!(inspect(ctx.clone(), setup), service_summary(&ctx));
    let (mut rows, service) = (rows?, service?);
    // Running tasks are not serving until the load balancer finds them healthy.
    if let (Some(s), Some(row)) = (&service, rows.iter_mut().find(|r| r.name == keys::SERVICE)) {
        if row.status == Health::Ok && s.healthy_targets < s.desired.max(0) as u32 {
            row.status = Health::Pending;
            row.detail = format!("healthy targets {}/{}", s.healthy_targets, s.desired);
        }
    }
    Ok((rows, service))
}

pub async fn run(setup: &Setup) -> Result<ExitCode, CommandError> {
    let state = load(setup)?.filter(|s| !s.resources.is_empty());
    let Some(state) = state else {
        if setup.json {
            println!("{}", serde_json::to_string_pretty(&json!({"stack": setup.config.name, "region": setup.region, "deployed": false, "resources": [], "outputs": Outputs::default()})).expect("json"));
        } else {
            println!(
                "stack {} in {}: not deployed (no state at {})",
                setup.config.name,
                setup.region,
                setup.state_path.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let retained_only = state.resources.len() == 1 && state.attr(keys::TABLE, "retained").is_some();
    let ctx = read_only_ctx(setup, state);
    let (rows, service) = live(ctx.clone(), setup).await?;
    let outputs = outputs(&ctx);
    let bad = rows.iter().any(|r| matches!(r.status, Health::Missing | Health::Drifted));
    if setup.json {
        let doc = json!({
            "stack": setup.config.name,
            "region": setup.region,
            "deployed": !retained_only,
            "resources": rows,
            "outputs": outputs,
            "service": service,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        let worst = if bad {
            "needs attention"
        } else if rows.iter().any(|r| r.status == Health::Pending) {
            "deploying"
        } else {
            "ok"
        };
        println!("stack {} in {}: {worst}", setup.config.name, setup.region);
        print_table(&rows);
        if let Some(s) = &service {
            println!(
                "\nservice: desired {}, running {}, pending {}, healthy targets {}{}",
                s.desired,
                s.running,
                s.pending,
                s.healthy_targets,
                s.rollout.as_deref().map(|r| format!(", rollout {}", r.to_lowercase())).unwrap_or_default()
            );
        }
        println!("\noutputs:");
        print_outputs(&outputs);
    }
    Ok(if bad { ExitCode::from(EXIT_DRIFT) } else { ExitCode::SUCCESS })
}

fn print_table(rows: &[ResourceRow]) {
    let w_name = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(8);
    let w_kind = rows.iter().map(|r| r.kind.len()).max().unwrap_or(4).max(4);
    println!("{:<w_name$}  {:<w_kind$}  {:<8}  ID", "RESOURCE", "KIND", "STATUS");
    for r in rows {
        let status =
            serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let mut id = r.id.clone().unwrap_or_else(|| "-".into());
        if !r.detail.is_empty() {
            id = format!("{id}  ({})", r.detail);
        }
        println!("{:<w_name$}  {:<w_kind$}  {:<8}  {id}", r.name, r.kind, status);
    }
}

/// `up --dry-run`: what `up` would do to each resource, from a live read-only check.
pub async fn plan(setup: &Setup) -> Result<ExitCode, CommandError> {
    let state = load(setup)?.unwrap_or_else(|| State::new(&setup.config.name, &setup.region));
    let ctx = read_only_ctx(setup, state);
    let rows = inspect(ctx, setup).await?;
    let action = |r: &ResourceRow| match r.status {
        Health::Ok => "unchanged",
        Health::Pending => "wait",
        Health::Drifted => "update",
        Health::Missing => "create",
    };
    let changes = rows.iter().filter(|r| matches!(r.status, Health::Missing | Health::Drifted)).count();
    if setup.json {
        let plan: Vec<_> = rows
            .iter()
            .map(|r| json!({"name": r.name, "kind": r.kind, "action": action(r), "detail": r.detail}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({"stack": setup.config.name, "region": setup.region, "dry_run": true, "changes": changes, "plan": plan})).expect("json"));
    } else {
        println!("plan for stack {} in {} (dry run: nothing is changed)", setup.config.name, setup.region);
        let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(8);
        for r in &rows {
            let detail =
                if r.detail.is_empty() || r.status == Health::Ok { String::new() } else { format!("  ({})", r.detail) };
            println!("  {:<9} {:<w$}{detail}", action(r), r.name);
        }
        println!("{changes} to create or update");
    }
    Ok(ExitCode::SUCCESS)
}
