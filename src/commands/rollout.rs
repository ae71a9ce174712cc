//! What `deploy` and `rollback` share: put a task definition revision in place, roll the service
//! onto it and wait exactly as `up` does (rollout completed, every task running, every target
//! healthy; a deployment the circuit breaker rolled back is a failure). When the service does not
//! end up on the new revision (a refused call, or the circuit breaker rolled it back), the state is
//! put back to what the service runs, so `status` and the next `up` see the truth.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::TaskDefinition as Definition;
use serde::Serialize;

use crate::access::Verb;
use crate::commands::{access_check, check_steps, verify, CommandError, Setup};
use crate::context::Ctx;
use crate::error::StackError;
use crate::graph::{Direction, Graph, StepReport};
use crate::model::{Driven, Resource, Stepping, Waiting};
use crate::progress::Progress;
use crate::report::Text;
use crate::resources::service::deployment::{self, AlarmTrip};
use crate::resources::service::status::{self as status_view, EventView, StoppedTask};
use crate::resources::task_definition::{self, image, revision, TASK_DEFINITION};
use crate::resources::{iam, service};
use crate::state::Recorded;
use crate::url_check::{self, UrlCheck};

/// What the service moves to.
pub enum Move {
    /// `deploy`: a revision equal to the recorded one but for this image.
    Deploy { image: String },
    /// `rollback`: an earlier revision, and the history of completed revisions from then on.
    Rollback { to: Box<Definition>, history: String },
}

pub struct Options {
    /// Start new tasks even if the service already runs the revision.
    pub force: bool,
    pub no_wait: bool,
    /// The URL check once the rollout completed (not with `no_wait`).
    pub verify: url_check::Asked,
}

/// The result of a `deploy` or `rollback`, in both commands' reports.
#[derive(Debug, Serialize)]
pub struct Rolled {
    pub event: &'static str,
    pub stack: String,
    pub region: String,
    pub ok: bool,
    pub elapsed_ms: u64,
    /// The image the service is meant to run now, and its revision (`family:revision`).
    pub image: String,
    pub task_definition: String,
    pub previous_image: String,
    pub previous_task_definition: String,
    /// Waited for the rollout to complete.
    pub waited: bool,
    pub steps: Vec<StepReport>,
    /// On failure: what the service runs, and the state says, now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
    /// On failure: the service's last events and stopped tasks, which usually say why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stopped_tasks: Vec<StoppedTask>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a later `up` does with this image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The check that the URL answers, once the rollout completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_check: Option<UrlCheck>,
    /// On failure: the alarm ECS rolled the deployment back on, its value and threshold, and the
    /// revision serving again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmTrip>,
}

impl Rolled {
    /// A move that could not start (its sequence is not a valid graph: an internal error).
    fn failed(setup: &Setup, e: &CommandError) -> Rolled {
        Rolled {
            event: "result",
            stack: setup.config.name.clone(),
            region: setup.region.clone(),
            ok: false,
            elapsed_ms: 0,
            image: String::new(),
            task_definition: String::new(),
            previous_image: String::new(),
            previous_task_definition: String::new(),
            waited: false,
            steps: vec![],
            restored: None,
            events: vec![],
            stopped_tasks: vec![],
            error: Some(e.to_string()),
            note: None,
            url_check: None,
            alarm: None,
        }
    }

    /// `deploy` or `rollback`, for the summary line.
    pub fn render(&self, text: &mut Text, command: &str) {
        // A failed URL check comes after a completed rollout: what runs now is said first.
        let url_failed = self.url_check.as_ref().is_some_and(|c| c.failure().is_some());
        if self.ok || url_failed {
            let (image, revision) = (&self.image, &self.task_definition);
            let before = format!("{} ({})", self.previous_task_definition, self.previous_image);
            // Its rollout completed, but it does not answer: not a success.
            let unanswered = if url_failed { "; its rollout completed but its URL does not answer" } else { "" };
            text.line(match command {
                "rollback" => {
                    format!(
                        "rolled stack {} in {} back to {revision} ({image}) from {before}{unanswered}",
                        self.stack, self.region
                    )
                }
                _ if revision == &self.previous_task_definition => {
                    format!("stack {} in {} runs {image} ({revision}); nothing to deploy", self.stack, self.region)
                }
                _ => format!(
                    "deployed {image} to stack {} in {} as {revision} (it ran {before}){unanswered}",
                    self.stack, self.region
                ),
            });
            if !self.waited {
                text.line("  (not waited for the new tasks to be healthy: see `fargate-stack status`)");
            }
            if let Some(summary) = self.url_check.as_ref().filter(|_| self.ok).and_then(UrlCheck::summary) {
                text.line(format!("  url check: {summary}"));
            }
        }
        if let Some(restored) = &self.restored {
            text.line(format!("  {restored}"));
        }
        if !self.events.is_empty() {
            text.line("last service events:");
            for e in &self.events {
                text.line(format!("  {}  {}", e.at, e.message));
            }
        }
        if !self.stopped_tasks.is_empty() {
            text.line("stopped tasks:");
            for t in &self.stopped_tasks {
                text.line(format!("  {}  {}  {}", t.stopped_at.as_deref().unwrap_or("-"), t.task_id, t.reason));
            }
        }
        if let Some(note) = &self.note {
            text.line(format!("  {note}"));
        }
    }
}

/// The recorded task definition and service, or why this stack cannot be deployed to.
pub async fn current(setup: &Setup, ctx: &Ctx) -> Result<(Recorded, Definition, String), CommandError> {
    let not_up = |what: &str| {
        CommandError::NotDeployed(format!(
            "stack {} in {}: {what}; run `fargate-stack up` first",
            setup.config.name, setup.region
        ))
    };
    let recorded = ctx
        .recorded(TASK_DEFINITION)
        .ok_or_else(|| not_up(&format!("no task definition is recorded in {}", setup.location())))?;
    if ctx.id(service::SERVICE).is_none() {
        return Err(not_up(&format!("no service is recorded in {}", setup.location())));
    }
    let view = ctx.scope();
    let base = task_definition::definition(&view, &recorded.id)
        .await?
        .ok_or_else(|| not_up(&format!("task definition {} no longer exists", revision(&recorded.id))))?;
    let service = status_view::service_view(&view)
        .await?
        .ok_or_else(|| not_up(&format!("service {} no longer exists", service::service_name(ctx.stack()))))?;
    Ok((recorded, base, service.task_definition))
}

/// The move as one declared sequence of graph nodes, run in order (a failure blocks the rest):
/// the execution role (its policy follows the image), the revision, the service rolled onto it,
/// and (unless `no_wait`) the wait for the rollout.
fn sequence(
    base: &Definition,
    service_runs: &str,
    mv: &Move,
    options: &Options,
    secrets: bool,
) -> Result<Graph, CommandError> {
    let image = match mv {
        Move::Deploy { image } => Some(image.clone()),
        Move::Rollback { .. } => None,
    };
    let mut nodes: Vec<Arc<dyn Resource>> = vec![
        Arc::new(Driven(iam::Role::Execution { secrets })),
        Arc::new(Stepping(task_definition::Deploy { base: base.clone(), image })),
        Arc::new(Stepping(service::Roll { runs: service_runs.to_string(), force: options.force })),
    ];
    if !options.no_wait {
        nodes.push(Arc::new(Waiting(service::HealthyWait)));
    }
    Ok(Graph::sequence(nodes)?)
}

/// Move the service to the revision `mv` describes, from the recorded `snapshot` (revision `base`,
/// which the service is set to run as `service_runs`).
pub async fn roll(
    setup: &Setup,
    ctx: &Arc<Ctx>,
    snapshot: Recorded,
    base: &Definition,
    service_runs: &str,
    mv: Move,
    options: Options,
) -> (Rolled, Result<(), CommandError>) {
    let started = Instant::now();
    let base_image = task_definition::image_of(base);
    let target_image = match &mv {
        Move::Deploy { image } => image.clone(),
        Move::Rollback { to, .. } => task_definition::image_of(to),
    };
    let graph = match sequence(base, service_runs, &mv, &options, !setup.config.service.secrets.is_empty()) {
        Ok(graph) => graph,
        Err(e) => return (Rolled::failed(setup, &e), Err(e)),
    };
    let progress = setup.progress(&graph.keys());
    setup.report_interrupted(ctx.store(), &progress);
    let mut steps = vec![];
    let result: Result<(), CommandError> = async {
        // A permission missing for the move stops it before the new revision is registered.
        let needed = access_check::declared(&graph, &[Verb::Create, Verb::Update]);
        access_check::before_changes(setup, &needed, &progress).await?;
        let next = intended_record(&setup.config.service.image, &snapshot, &base_image, &target_image, &mv);
        // First in the state: the execution role's policy follows the image (an ECR repository
        // needs a pull grant), and a run killed from here on is completed by `up` or a rerun.
        ctx.put_record(TASK_DEFINITION, next).await?;
        steps = graph.execute(Direction::Up, ctx.clone(), &progress, setup.max_concurrency, &|_| true).await;
        check_steps(&steps)
    }
    .await;
    let mut rolled = Rolled {
        event: "result",
        stack: setup.config.name.clone(),
        region: setup.region.clone(),
        ok: result.is_ok(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        image: target_image,
        task_definition: revision(&ctx.id(TASK_DEFINITION).unwrap_or_default()).to_string(),
        previous_image: base_image,
        previous_task_definition: revision(&snapshot.id).to_string(),
        waited: !options.no_wait,
        steps,
        restored: None,
        events: vec![],
        stopped_tasks: vec![],
        error: result.as_ref().err().map(|e| e.to_string()),
        note: None,
        url_check: None,
        alarm: None,
    };
    let mut result = result;
    if result.is_ok() {
        rolled.note = image::wanted(&ctx.scope()).note().map(|n| format!("a later `up`: {n}"));
        if !options.no_wait {
            result = verify(ctx, &mut rolled, &options.verify, &progress).await;
        }
    } else {
        let follow = (!options.no_wait).then_some(&progress);
        explain_failure(ctx, &snapshot, &mut rolled, follow).await;
    }
    progress.note(&format!("{} in {:.1}s", if rolled.ok { "done" } else { "failed" }, started.elapsed().as_secs_f64()));
    (rolled, result)
}

/// The URL check after a completed rollout; a failure names what runs (the rollout's revision,
/// which the state records).
async fn verify(
    ctx: &Ctx,
    rolled: &mut Rolled,
    asked: &url_check::Asked,
    progress: &Progress,
) -> Result<(), CommandError> {
    let checked = verify::after_rollout(ctx, asked, progress).await;
    let done = format!(
        "the rollout completed: stack {} runs {} ({}), every task running and every target healthy, and the state \
         records it",
        rolled.stack, rolled.task_definition, rolled.image
    );
    let failure = verify::failed(&checked, &done);
    if failure.is_some() {
        verify::forget_unanswered(ctx).await;
    }
    rolled.url_check = Some(checked);
    match failure {
        Some(e) => {
            rolled.ok = false;
            rolled.error = Some(e.to_string());
            Err(e)
        }
        None => Ok(()),
    }
}

/// What the state records for the task definition once the move is made: the image it runs and
/// the config's image at the last `up` (so that `up` keeps what was deployed, see `image.rs`).
fn intended_record(
    config_image: &str,
    snapshot: &Recorded,
    base_image: &str,
    target_image: &str,
    mv: &Move,
) -> Recorded {
    // The config's image at the last `up`, if no run recorded it yet: the recorded revision's,
    // unless a deploy (which records it) came before.
    let applied = snapshot.attrs.get(image::CONFIG_IMAGE.name).cloned().unwrap_or_else(|| {
        if snapshot.attrs.contains_key(image::DEPLOYED_IMAGE.name) {
            config_image.to_string()
        } else {
            base_image.to_string()
        }
    });
    let mut next = snapshot.clone();
    next.attrs.insert(image::DEPLOYED_IMAGE.name.into(), target_image.to_string());
    next.attrs.insert(image::CONFIG_IMAGE.name.into(), applied);
    if let Move::Rollback { to, history } = mv {
        next.id = to.task_definition_arn().unwrap_or_default().to_string();
        next.attrs.insert(task_definition::IMAGE.name.into(), target_image.to_string());
        next.attrs.insert(task_definition::COMPLETED_REVISIONS.name.into(), history.clone());
    }
    next
}

/// How long a failed `deploy` or `rollback` waits for the circuit breaker's rollback to serve the
/// old revision again (a rollback is a deployment: tasks start, targets pass their health checks).
const ROLLBACK_WAIT: Duration = Duration::from_secs(10 * 60);

/// After a failed move: put the state back to what the service runs (and, when the run waits,
/// wait until that serves again), and gather what explains the failure (best effort: the failure
/// itself is already known).
async fn explain_failure(ctx: &Ctx, snapshot: &Recorded, rolled: &mut Rolled, follow: Option<&Progress>) {
    let settled = settle_state(ctx, snapshot).await;
    // The events of the failure, before those of the rollback.
    let view = ctx.scope();
    if let Ok(Some(service)) = status_view::service_view(&view).await {
        rolled.events = service.last_events(5);
    }
    rolled.stopped_tasks = status_view::stopped_tasks(&view, 3).await.unwrap_or_default();
    rolled.task_definition = revision(&ctx.id(TASK_DEFINITION).unwrap_or_default()).to_string();
    if let Ok(Some(back)) = &settled {
        let watched = status_view::service_view(&view).await.ok().flatten().map(|s| s.alarms).unwrap_or_default();
        rolled.alarm = deployment::alarm_trip(&view, &watched, &back.arn).await;
    }
    let alarm = rolled.alarm.as_ref().map(|a| a.alarm.clone());
    match settled {
        Ok(Some(mut back)) => {
            back.alarm = alarm;
            rolled.restored = Some(match follow {
                Some(progress) => back.follow(ctx, progress).await,
                None => back.says("is putting", "follow it with `fargate-stack status`"),
            })
        }
        Ok(None) => {}
        Err(e) => rolled.restored = Some(format!("could not put the state back: {e}")),
    }
}

/// The revision ECS put the service back on (the state now records it), and the alarm that made
/// it (else the circuit breaker did).
struct PutBack {
    arn: String,
    image: String,
    alarm: Option<String>,
}

impl PutBack {
    fn says(&self, doing: &str, then: &str) -> String {
        let who = match &self.alarm {
            Some(alarm) => format!("ECS ({alarm} in ALARM)"),
            None => "the circuit breaker".into(),
        };
        format!(
            "{who} {doing} the service back on {} ({}), and the state records it: {then}",
            revision(&self.arn),
            self.image
        )
    }

    /// Wait, within [`ROLLBACK_WAIT`], until the old revision serves again: its deployment
    /// completed, every task running, every target healthy. Says how it ended.
    async fn follow(&self, ctx: &Ctx, progress: &Progress) -> String {
        let line = progress.line("service-rolled-back");
        line.start("checking");
        match tokio::time::timeout(ROLLBACK_WAIT, Waiting(service::HealthyWait).ensure(ctx, &line)).await {
            Ok(Ok(_)) => {
                line.done("ready", "");
                self.says("put", "it serves again (its deployment completed, every task runs, every target is healthy)")
            }
            Ok(Err(e)) => {
                line.failed(&e.to_string());
                self.says("is putting", &format!("its rollback has not completed ({e}); see `fargate-stack status`"))
            }
            Err(_) => {
                let seen = match status_view::service_view(&ctx.scope()).await {
                    Ok(Some(v)) => format!(
                        "running {}/{}, rollout {}",
                        v.running,
                        v.desired,
                        v.rollout.as_deref().unwrap_or("unknown").to_lowercase()
                    ),
                    _ => "its state unknown".into(),
                };
                let waited = ROLLBACK_WAIT.as_secs() / 60;
                line.failed(&format!("still rolling back after {waited} min ({seen})"));
                self.says(
                    "is putting",
                    &format!(
                        "still rolling back after {waited} min ({seen}); follow it with `fargate-stack status` until \
                         the rollout is completed"
                    ),
                )
            }
        }
    }
}

/// After a failure: make the state record what the service is set to run. Says what, if that
/// differs from what was being rolled out.
async fn settle_state(ctx: &Ctx, snapshot: &Recorded) -> Result<Option<PutBack>, StackError> {
    let wanted = ctx.id(TASK_DEFINITION).unwrap_or_default();
    let view = ctx.scope();
    let Some(service) = status_view::service_view(&view).await? else { return Ok(None) };
    let runs = service.task_definition;
    if runs == wanted {
        return Ok(None);
    }
    let image = if runs == snapshot.id {
        ctx.put_record(TASK_DEFINITION, snapshot.clone()).await?;
        snapshot.attrs.get(task_definition::IMAGE.name).cloned().unwrap_or_default()
    } else {
        // The circuit breaker went back further than the recorded revision.
        let image =
            task_definition::definition(&view, &runs).await?.map(|d| task_definition::image_of(&d)).unwrap_or_default();
        let mut record = snapshot.clone();
        record.id = runs.clone();
        record.attrs.insert(task_definition::IMAGE.name.into(), image.clone());
        record.attrs.insert(image::DEPLOYED_IMAGE.name.into(), image.clone());
        ctx.put_record(TASK_DEFINITION, record).await?;
        image
    };
    Ok(Some(PutBack { arn: runs, image, alarm: None }))
}
