//! The three commands, each a flow on top of `graph` and `resources`.

pub mod down;
pub mod status;
pub mod up;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::aws::{self, AwsTarget, Clients};
use crate::cli::{Cli, Command, DownArgs, OutputFormat};
use crate::config::Config;
use crate::context::{keys, Ctx, DownOptions};
use crate::error::StackError;
use crate::graph::{StepReport, StepResult};
use crate::progress::Mode;
use crate::resources::cluster;
use crate::state::StateFile;

/// Exit codes: 0 ok, 1 error, 2 usage (clap), 3 `status` found something missing or drifted.
pub const EXIT_DRIFT: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("no AWS region: pass --region, set AWS_REGION, or set `region` in the config")]
    NoRegion,
    #[error("{failed} of {total} steps failed:\n{details}")]
    Steps { failed: usize, total: usize, details: String },
    #[error("{0}")]
    Refused(String),
}

/// What every command starts from: the validated config, the region, the clients.
pub struct Setup {
    pub config: Config,
    pub region: String,
    pub clients: Clients,
    pub state_path: PathBuf,
    pub mode: Mode,
    pub json: bool,
    pub max_concurrency: usize,
}

impl Setup {
    pub async fn new(cli: &Cli) -> Result<Setup, CommandError> {
        // Config first: bad input fails before any AWS call.
        let mut config = Config::load(cli.config.as_deref())?;
        if let Command::Down(DownArgs { name: Some(name), .. }) = &cli.command {
            config = config.with_name(name)?;
        }
        let target = AwsTarget {
            region: cli.region.clone(),
            profile: cli.profile.clone(),
            endpoint_url: cli.endpoint_url.clone(),
        };
        let sdk = aws::sdk_config(&target, config.region.as_deref()).await;
        let region = sdk.region().map(|r| r.to_string()).ok_or(CommandError::NoRegion)?;
        let state_path =
            cli.state.clone().unwrap_or_else(|| PathBuf::from(".fargate-stack").join(format!("{}.json", config.name)));
        let json = cli.output == OutputFormat::Json;
        Ok(Setup {
            clients: Clients::new(&sdk),
            config,
            region,
            state_path,
            mode: Mode::detect(json),
            json,
            max_concurrency: cli.max_concurrency as usize,
        })
    }

    pub fn context(&self, state: StateFile, down: DownOptions) -> Arc<Ctx> {
        Arc::new(Ctx::new(self.config.clone(), self.region.clone(), self.clients.clone(), state, down))
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode, CommandError> {
    let setup = Setup::new(&cli).await?;
    match &cli.command {
        Command::Up(args) => up::run(&setup, args).await,
        Command::Down(args) => down::run(&setup, args).await,
        Command::Status => status::run(&setup).await,
    }
}

/// Say that the last run on this state died part-way (its work is picked up from the state file).
pub fn report_interrupted(setup: &Setup, holder: &str) {
    let message = format!(
        "the last run on {} ({holder}) did not finish; continuing from what it recorded",
        setup.state_path.display()
    );
    if setup.json {
        println!("{}", serde_json::json!({"event": "note", "message": message}));
    } else {
        eprintln!("note: {message}");
    }
}

/// The stack's outputs, from the state and the config.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Outputs {
    pub url: Option<String>,
    pub alb_dns_name: Option<String>,
    pub table_name: Option<String>,
    pub cluster_name: Option<String>,
    pub service_name: Option<String>,
}

pub fn outputs(ctx: &Ctx) -> Outputs {
    let dns = ctx.attr(keys::LOAD_BALANCER, "dns_name");
    let port = ctx.config.load_balancer.listener_port;
    Outputs {
        url: dns.as_ref().map(|d| if port == 80 { format!("http://{d}") } else { format!("http://{d}:{port}") }),
        alb_dns_name: dns,
        table_name: ctx.id(keys::TABLE),
        cluster_name: ctx.id(keys::CLUSTER),
        service_name: ctx
            .attr(keys::SERVICE, "name")
            .or_else(|| ctx.id(keys::SERVICE).map(|_| cluster::service_name(ctx))),
    }
}

pub fn print_outputs(outputs: &Outputs) {
    let rows = [
        ("url", &outputs.url),
        ("alb_dns_name", &outputs.alb_dns_name),
        ("table_name", &outputs.table_name),
        ("cluster_name", &outputs.cluster_name),
        ("service_name", &outputs.service_name),
    ];
    for (name, value) in rows {
        if let Some(value) = value {
            println!("  {name:<14} {value}");
        }
    }
}

/// Step reports as JSON-able rows.
#[derive(Debug, Serialize)]
pub struct StepRow {
    pub name: String,
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::context::Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

pub fn step_rows(reports: &[StepReport]) -> Vec<StepRow> {
    reports
        .iter()
        .map(|r| {
            let (result, outcome, error) = match &r.result {
                StepResult::Done(o) => ("ok", Some(*o), None),
                StepResult::Failed(e) => ("failed", None, Some(e.clone())),
                StepResult::Blocked(e) => ("blocked", None, Some(e.clone())),
            };
            StepRow { name: r.key.clone(), result, outcome, error, elapsed_ms: r.elapsed.as_millis() as u64 }
        })
        .collect()
}

/// Turn failed steps into one error that lists each failure (the root causes, not what they blocked).
pub fn check_reports(reports: &[StepReport]) -> Result<(), CommandError> {
    let failures: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.result {
            StepResult::Failed(e) => Some(format!("  {}: {e}", r.key)),
            _ => None,
        })
        .collect();
    let blocked = reports.iter().filter(|r| matches!(r.result, StepResult::Blocked(_))).count();
    if failures.is_empty() {
        return Ok(());
    }
    let mut details = failures.join("\n");
    if blocked > 0 {
        details.push_str(&format!("\n  ({blocked} dependent steps did not run)"));
    }
    Err(CommandError::Steps { failed: failures.len(), total: reports.len(), details })
}

/// Counts of outcomes for a summary line, e.g. "3 created, 20 unchanged".
pub fn summary(reports: &[StepReport]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in reports {
        let word = match &r.result {
            StepResult::Done(o) => o.word(),
            StepResult::Failed(_) => "failed",
            StepResult::Blocked(_) => "blocked",
        };
        *counts.entry(word).or_default() += 1;
    }
    counts.iter().map(|(w, n)| format!("{n} {w}")).collect::<Vec<_>>().join(", ")
}
