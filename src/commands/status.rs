//! `status`: every resource checked live against AWS, read-only. Without a state file the stack
//! is looked for by tag and name, as `up` would adopt it.

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::commands::{inspect, CommandError, Outputs, ResourceRow, Setup, StackState, EXIT_ATTENTION};
use crate::context::Ctx;
use crate::model::{Health, Key};
use crate::report::{self, Report, Text};
use crate::resources::{self, cluster, load_balancer};
use crate::state::s3::LockInfo;
use crate::state::{State, StateLocation};

#[derive(Debug, Serialize, Default)]
pub struct ServiceSummary {
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub healthy_targets: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
}

impl ServiceSummary {
    pub async fn of(ctx: &Ctx) -> Result<Option<ServiceSummary>, CommandError> {
        if ctx.id(Key::Service).is_none() {
            return Ok(None);
        }
        let health = async {
            match ctx.id(Key::TargetGroup) {
                Some(arn) => load_balancer::target_health(ctx, &arn).await.map(|(h, _)| h).unwrap_or(0),
                None => 0,
            }
        };
        let (view, healthy_targets) = tokio::join!(cluster::service_view(ctx), health);
        Ok(view?.map(|view| ServiceSummary {
            desired: view.desired,
            running: view.running,
            pending: view.pending,
            healthy_targets,
            rollout: view.rollout,
        }))
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
    pub outputs: Outputs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The lock on an S3 state: a run going on, or one that died (then `unlock` removes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockInfo>,
}

impl Report for StatusReport {
    const COMMAND: &'static str = "status";

    fn render(&self, text: &mut Text) {
        text.line(format!("stack {} in {}: {}", self.stack, self.region, self.state.word()));
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
            text.line(format!(
                "service: desired {}, running {}, pending {}, healthy targets {}{}",
                s.desired,
                s.running,
                s.pending,
                s.healthy_targets,
                s.rollout.as_deref().map(|r| format!(", rollout {}", r.to_lowercase())).unwrap_or_default()
            ));
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

pub async fn run(setup: &Setup) -> Result<ExitCode, CommandError> {
    let report = status(setup).await?;
    report::emit(setup.format, &report);
    Ok(if report.state.needs_attention() { ExitCode::from(EXIT_ATTENTION) } else { ExitCode::SUCCESS })
}

pub async fn status(setup: &Setup) -> Result<StatusReport, CommandError> {
    // The lock is read beside the state, without taking it.
    let (state, lock) = tokio::try_join!(setup.read_state(), async {
        match &setup.state {
            StateLocation::S3 { bucket, key } => {
                Ok(setup.bucket(bucket).read_lock(key).await?.and_then(|(info, _)| info))
            }
            StateLocation::Local(_) => Ok::<_, CommandError>(None),
        }
    })?;
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
    let service = if retained { None } else { ServiceSummary::of(&ctx).await? };
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
        let state = StackState::of(&rows);
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
        hint,
        lock,
    })
}
