//! What `deploy` and `rollback` share: put a task definition revision in place, roll the service
//! onto it and wait exactly as `up` does (rollout completed, every task running, every target
//! healthy; a deployment the circuit breaker rolled back is a failure). When the service does not
//! end up on the new revision (a refused call, or the circuit breaker rolled it back), the state is
//! put back to what the service runs, so `status` and the next `up` see the truth.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::TaskDefinition as Definition;
use serde::Serialize;

use crate::commands::{check_steps, CommandError, Setup};
use crate::context::Ctx;
use crate::error::StackError;
use crate::graph::{StepReport, StepResult};
use crate::model::{Driven, Key, Outcome, Record, Resource};
use crate::progress::{Line, Progress};
use crate::report::Text;
use crate::resources::cluster::{self, revision, EventView, StoppedTask};
use crate::resources::{iam, image};
use crate::state::Recorded;

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
}

impl Rolled {
    /// `deploy` or `rollback`, for the summary line.
    pub fn render(&self, text: &mut Text, command: &str) {
        if self.ok {
            let (image, revision) = (&self.image, &self.task_definition);
            let before = format!("{} ({})", self.previous_task_definition, self.previous_image);
            text.line(match command {
                "rollback" => {
                    format!("rolled stack {} in {} back to {revision} ({image}) from {before}", self.stack, self.region)
                }
                _ if revision == &self.previous_task_definition => {
                    format!("stack {} in {} runs {image} ({revision}); nothing to deploy", self.stack, self.region)
                }
                _ => format!(
                    "deployed {image} to stack {} in {} as {revision} (it ran {before})",
                    self.stack, self.region
                ),
            });
            if !self.waited {
                text.line("  (not waited for the new tasks to be healthy: see `fargate-stack status`)");
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
        .recorded(Key::TaskDefinition)
        .ok_or_else(|| not_up(&format!("no task definition is recorded in {}", setup.location())))?;
    if ctx.id(Key::Service).is_none() {
        return Err(not_up(&format!("no service is recorded in {}", setup.location())));
    }
    let base = cluster::definition(ctx, &recorded.id)
        .await?
        .ok_or_else(|| not_up(&format!("task definition {} no longer exists", revision(&recorded.id))))?;
    let view = cluster::service_view(ctx)
        .await?
        .ok_or_else(|| not_up(&format!("service {} no longer exists", cluster::service_name(ctx))))?;
    Ok((recorded, base, view.task_definition))
}

/// Steps run one after the other, each with its progress line; after a failure the rest are
/// reported blocked.
struct Steps {
    lines: Vec<(Key, Line)>,
    reports: Vec<StepReport>,
}

impl Steps {
    fn new(progress: &Progress, keys: &[Key]) -> Steps {
        Steps { lines: keys.iter().map(|k| (*k, progress.line(&k.to_string()))).collect(), reports: vec![] }
    }

    fn line(&self, key: Key) -> Line {
        self.lines.iter().find(|(k, _)| *k == key).map(|(_, l)| l.clone()).expect("a line per step")
    }

    /// Run one step unless an earlier one failed. True if it succeeded.
    async fn run<F>(&mut self, key: Key, step: F) -> bool
    where
        F: std::future::Future<Output = Result<Outcome, StackError>>,
    {
        let line = self.line(key);
        if let Some(failed) = self.reports.iter().find(|r| !matches!(r.result, StepResult::Done { .. })) {
            let waits_for = match failed.result {
                StepResult::Blocked { waits_for } => waits_for,
                _ => failed.key,
            };
            line.skipped(&format!("waits for {waits_for}"));
            self.reports.push(StepReport {
                key,
                result: StepResult::Blocked { waits_for },
                elapsed: Default::default(),
            });
            return false;
        }
        let started = Instant::now();
        let result = match step.await {
            Ok(outcome) => {
                line.done(outcome.word(), "");
                StepResult::Done { outcome }
            }
            Err(e) => {
                line.failed(&e.to_string());
                StepResult::Failed { error: e.to_string() }
            }
        };
        let ok = matches!(result, StepResult::Done { .. });
        self.reports.push(StepReport { key, result, elapsed: started.elapsed() });
        ok
    }
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
    let base_image = cluster::image_of(base);
    let mut keys = vec![Key::ExecutionRole, Key::TaskDefinition, Key::Service];
    if !options.no_wait {
        keys.push(Key::ServiceHealthy);
    }
    let progress = setup.progress(&keys);
    setup.report_interrupted(ctx.store(), &progress);
    let mut steps = Steps::new(&progress, &keys);
    let target_image = match &mv {
        Move::Deploy { image } => image.clone(),
        Move::Rollback { to, .. } => cluster::image_of(to),
    };
    let result: Result<(), CommandError> = async {
        let next = intended_record(&setup.config.service.image, &snapshot, &base_image, &target_image, &mv);
        // First in the state: the execution role's policy follows the image (an ECR repository
        // needs a pull grant), and a run killed from here on is completed by `up` or a rerun.
        ctx.put_record(Key::TaskDefinition, next).await?;
        let line = steps.line(Key::ExecutionRole);
        steps.run(Key::ExecutionRole, async { Driven(iam::Role::Execution).ensure(ctx, &line).await }).await;
        let line = steps.line(Key::TaskDefinition);
        steps
            .run(Key::TaskDefinition, async {
                let Move::Deploy { image } = &mv else { return Ok(Outcome::Updated) };
                if *image == base_image {
                    return Ok(Outcome::Unchanged);
                }
                line.start("registering");
                let def = cluster::register_with_image(ctx, base, image).await?;
                let family = def.family().unwrap_or_default().to_string();
                let record = Record::id(def.task_definition_arn().unwrap_or_default())
                    .with("family", family)
                    .with("image", image.clone());
                ctx.record(Key::TaskDefinition, &record).await?;
                Ok(Outcome::Created)
            })
            .await;
        let line = steps.line(Key::Service);
        steps
            .run(Key::Service, async {
                let target = ctx.need(Key::TaskDefinition, Key::Service)?;
                if target == service_runs && !options.force {
                    return Ok(Outcome::Unchanged);
                }
                line.start("updating");
                cluster::roll_service(ctx, &target, options.force).await?;
                Ok(Outcome::Updated)
            })
            .await;
        if !options.no_wait {
            let line = steps.line(Key::ServiceHealthy);
            steps
                .run(Key::ServiceHealthy, async {
                    line.start("checking");
                    cluster::wait_rollout(ctx, &line).await?;
                    Ok(Outcome::Waited)
                })
                .await;
        }
        check_steps(&steps.reports)
    }
    .await;
    let mut rolled = Rolled {
        event: "result",
        stack: setup.config.name.clone(),
        region: setup.region.clone(),
        ok: result.is_ok(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        image: target_image,
        task_definition: revision(&ctx.id(Key::TaskDefinition).unwrap_or_default()).to_string(),
        previous_image: base_image,
        previous_task_definition: revision(&snapshot.id).to_string(),
        waited: !options.no_wait,
        steps: steps.reports,
        restored: None,
        events: vec![],
        stopped_tasks: vec![],
        error: result.as_ref().err().map(|e| e.to_string()),
        note: None,
    };
    if result.is_ok() {
        rolled.note = image::wanted(ctx).note().map(|n| format!("a later `up`: {n}"));
    } else {
        let follow = (!options.no_wait).then_some(&progress);
        explain_failure(ctx, &snapshot, &mut rolled, follow).await;
    }
    progress.note(&format!("{} in {:.1}s", if rolled.ok { "done" } else { "failed" }, started.elapsed().as_secs_f64()));
    (rolled, result)
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
    let applied = snapshot.attrs.get(image::CONFIG_IMAGE).cloned().unwrap_or_else(|| {
        if snapshot.attrs.contains_key(image::DEPLOYED_IMAGE) {
            config_image.to_string()
        } else {
            base_image.to_string()
        }
    });
    let mut next = snapshot.clone();
    next.attrs.insert(image::DEPLOYED_IMAGE.into(), target_image.to_string());
    next.attrs.insert(image::CONFIG_IMAGE.into(), applied);
    if let Move::Rollback { to, history } = mv {
        next.id = to.task_definition_arn().unwrap_or_default().to_string();
        next.attrs.insert("image".into(), target_image.to_string());
        next.attrs.insert(cluster::COMPLETED_REVISIONS.into(), history.clone());
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
    if let Ok(Some(view)) = cluster::service_view(ctx).await {
        rolled.events = view.last_events(5);
    }
    rolled.stopped_tasks = cluster::stopped_tasks(ctx, 3).await.unwrap_or_default();
    rolled.task_definition = revision(&ctx.id(Key::TaskDefinition).unwrap_or_default()).to_string();
    match settled {
        Ok(Some(back)) => {
            rolled.restored = Some(match follow {
                Some(progress) => back.follow(ctx, progress).await,
                None => back.says("is putting", "follow it with `fargate-stack status`"),
            })
        }
        Ok(None) => {}
        Err(e) => rolled.restored = Some(format!("could not put the state back: {e}")),
    }
}

/// The revision the circuit breaker put the service back on (the state now records it).
struct PutBack {
    arn: String,
    image: String,
}

impl PutBack {
    fn says(&self, doing: &str, then: &str) -> String {
        format!(
            "the circuit breaker {doing} the service back on {} ({}), and the state records it: {then}",
            revision(&self.arn),
            self.image
        )
    }

    /// Wait, within [`ROLLBACK_WAIT`], until the old revision serves again: its deployment
    /// completed, every task running, every target healthy. Says how it ended.
    async fn follow(&self, ctx: &Ctx, progress: &Progress) -> String {
        let line = progress.line("service-rolled-back");
        line.start("checking");
        match tokio::time::timeout(ROLLBACK_WAIT, cluster::wait_rollout(ctx, &line)).await {
            Ok(Ok(())) => {
                line.done("ready", "");
                self.says("put", "it serves again (its deployment completed, every task runs, every target is healthy)")
            }
            Ok(Err(e)) => {
                line.failed(&e.to_string());
                self.says("is putting", &format!("its rollback has not completed ({e}); see `fargate-stack status`"))
            }
            Err(_) => {
                let seen = match cluster::service_view(ctx).await {
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
    let wanted = ctx.id(Key::TaskDefinition).unwrap_or_default();
    let Some(view) = cluster::service_view(ctx).await? else { return Ok(None) };
    let runs = view.task_definition;
    if runs == wanted {
        return Ok(None);
    }
    let image = if runs == snapshot.id {
        ctx.put_record(Key::TaskDefinition, snapshot.clone()).await?;
        snapshot.attrs.get("image").cloned().unwrap_or_default()
    } else {
        // The circuit breaker went back further than the recorded revision.
        let image = cluster::definition(ctx, &runs).await?.map(|d| cluster::image_of(&d)).unwrap_or_default();
        let mut record = snapshot.clone();
        record.id = runs.clone();
        record.attrs.insert("image".into(), image.clone());
        record.attrs.insert(image::DEPLOYED_IMAGE.into(), image.clone());
        ctx.put_record(Key::TaskDefinition, record).await?;
        image
    };
    Ok(Some(PutBack { arn: runs, image }))
}
