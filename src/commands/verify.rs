//! The URL check (see `url_check`) as `up`, `deploy` and `rollback` run it once their rollout
//! completed: skipped when asked to, against an emulator without a pin, or when the service is set
//! to run no task (one note says so); else made on a `url-check` progress line, its failure a failed
//! run that says what runs.

use crate::commands::{CommandError, Outputs};
use crate::context::Ctx;
use crate::progress::Progress;
use crate::resources::service::status as status_view;
use crate::resources::task_definition::{completed_revisions, revision, COMPLETED_REVISIONS, TASK_DEFINITION};
use crate::url_check::{self, Asked, UrlCheck};

/// The check after a rollout completed: skipped when asked to, or with one note when nothing real
/// can answer; else made, on a `url-check` progress line.
pub async fn after_rollout(ctx: &Ctx, asked: &Asked, progress: &Progress) -> UrlCheck {
    let Some(url) = Outputs::of(ctx).url else {
        return UrlCheck::skipped("", "the state records no load balancer name");
    };
    if asked.skip {
        return UrlCheck::skipped(&url, "--no-verify");
    }
    if let (Some(endpoint), true) = (&asked.endpoint, asked.pins.is_empty()) {
        let why = format!(
            "the AWS endpoint is {endpoint}, so the load balancer's name is the emulator's, not a real one; \
             --resolve HOST:PORT:ADDR checks it against a stand-in"
        );
        progress.note(&format!("url check skipped: {why}"));
        return UrlCheck::skipped(&url, &why);
    }
    // A schedule that scales to 0 at night, or desired_count = 0: the load balancer can only answer
    // 503, and that is what was asked for.
    if let Ok(Some(service)) = status_view::service_view(&ctx.scope()).await {
        if service.desired == 0 {
            let why = "the service is set to run no task (desired count 0): the load balancer has nothing to \
                       send the request to";
            progress.note(&format!("url check skipped: {why}"));
            return UrlCheck::skipped(&url, why);
        }
    }
    let line = progress.line("url-check");
    line.start("checking");
    let checked = url_check::check(&url, &asked.pins, asked.budget, &|detail| line.waiting(detail)).await;
    match (checked.failure(), checked.summary()) {
        (Some(error), _) => line.failed(error),
        (None, Some(summary)) => line.done("answered", &summary),
        (None, None) => line.done("answered", ""),
    }
    checked
}

/// The run's error when the check failed: `done` says what the rollout left running.
pub fn failed(checked: &UrlCheck, done: &str) -> Option<CommandError> {
    let failure = checked.failure()?;
    Some(CommandError::Reported(format!(
        "{done}; but its URL does not answer: {failure}. `rollback` does not count it as a revision to go back to"
    )))
}

/// The check failed: the recorded revision's rollout completed, but it did not answer, so it is
/// not a revision `rollback` may go back to (it leaves the history of completed revisions; the
/// state still records it as what runs). Best effort: the failure is already the run's.
pub async fn forget_unanswered(ctx: &Ctx) {
    let view = ctx.scope();
    let Some(arn) = view.id(TASK_DEFINITION) else { return };
    let history = completed_revisions(&view);
    if history.contains(&arn) {
        let kept: Vec<String> = history.into_iter().filter(|r| *r != arn).collect();
        if let Err(e) = view.set_attr(COMPLETED_REVISIONS, &kept.join(" ")).await {
            tracing::warn!("could not drop {} from the completed revisions: {e}", revision(&arn));
        }
    }
}
