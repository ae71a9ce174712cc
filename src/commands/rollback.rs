//! `rollback`: the service back onto the previous task definition revision that completed a
//! rollout. `up`, `deploy` and `rollback` append a revision to the state's history when their wait
//! sees its rollout complete; a rollback drops the revision it leaves from that history, so a second
//! rollback goes one further back (and `deploy --image` goes forward again).

use std::process::ExitCode;

use aws_sdk_ecs::types::TaskDefinitionStatus;
use serde::Serialize;

use crate::cli::RollbackArgs;
use crate::commands::deploy::require_state;
use crate::commands::rollout::{self, Move, Options, Rolled};
use crate::commands::{CommandError, Setup};
use crate::report::{self, Report, Text};
use crate::resources::task_definition::{self, revision};

#[derive(Debug, Serialize)]
pub struct RollbackReport(pub Rolled);

impl Report for RollbackReport {
    const COMMAND: &'static str = "rollback";

    fn render(&self, text: &mut Text) {
        self.0.render(text, "rollback");
    }
}

/// The revision to go back to, and the history that ends with it. `recorded` is the revision the
/// state records, `service_runs` the one the service is set to run.
///
/// Normally the completed revision before the recorded one (or the last completed one, if the
/// recorded one never completed: a deploy that failed or is still rolling out). But a recorded
/// revision that is the last completed one while the service runs another is a rollback that was
/// interrupted before the service moved: it is finished, not skipped.
pub fn target(history: &[String], recorded: &str, service_runs: &str) -> Option<(String, Vec<String>)> {
    if recorded != service_runs && history.last().map(String::as_str) == Some(recorded) {
        return Some((recorded.to_string(), history.to_vec()));
    }
    let before = match history.iter().rposition(|r| r == recorded) {
        Some(i) => &history[..i],
        None => history,
    };
    before.last().map(|t| (t.clone(), before.to_vec()))
}

pub async fn run(setup: &Setup, args: &RollbackArgs) -> Result<ExitCode, CommandError> {
    require_state(setup).await?;
    let ctx = setup.context(setup.open_state().await?);
    let result = async {
        let (snapshot, base, service_runs) = rollout::current(setup, &ctx).await?;
        let history = task_definition::completed_revisions(&ctx.scope());
        let Some((to, history)) = target(&history, &snapshot.id, &service_runs) else {
            let known: Vec<&str> = history.iter().map(|r| revision(r)).collect();
            return Err(CommandError::Refused(format!(
                "nothing to roll back to: no revision before {} completed a rollout (completed: {}). `up`, \
                 `deploy` and `rollback` remember a revision once they saw its rollout complete (not with --no-wait)",
                revision(&snapshot.id),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        };
        let definition = task_definition::definition(&ctx.scope(), &to)
            .await?
            .filter(|d| d.status() == Some(&TaskDefinitionStatus::Active));
        let Some(definition) = definition else {
            return Err(CommandError::Refused(format!(
                "cannot roll back to {}: it was deregistered outside fargate-stack",
                revision(&to)
            )));
        };
        let mv = Move::Rollback { to: Box::new(definition), history: history.join(" ") };
        let options = Options { force: false, no_wait: args.no_wait, verify: setup.asked(&args.verify) };
        let (rolled, result) = rollout::roll(setup, &ctx, snapshot, &base, &service_runs, mv, options).await;
        report::emit(setup.format, &RollbackReport(rolled));
        result.map(|()| ExitCode::SUCCESS)
    }
    .await;
    ctx.store().release().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(revs: &[&str]) -> Vec<String> {
        revs.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn rollback_goes_to_the_completed_revision_before_the_current_one() {
        let history = h(&["r1", "r2", "r3"]);
        assert_eq!(target(&history, "r3", "r3"), Some(("r2".into(), h(&["r1", "r2"]))));
        // Twice: one further back each time.
        assert_eq!(target(&h(&["r1", "r2"]), "r2", "r2"), Some(("r1".into(), h(&["r1"]))));
        assert_eq!(target(&h(&["r1"]), "r1", "r1"), None, "nothing before the first");
        assert_eq!(target(&[], "r1", "r1"), None);
        // The recorded revision never completed (a deploy that failed, or one still rolling out):
        // the last that did, whatever the service runs now.
        assert_eq!(target(&history, "r4", "r4"), Some(("r3".into(), history.clone())));
        assert_eq!(target(&history, "r4", "r3"), Some(("r3".into(), history.clone())), "circuit breaker went back");
        // A rollback to r2 killed before the service moved (it still runs r3): finished, not skipped.
        assert_eq!(target(&h(&["r1", "r2"]), "r2", "r3"), Some(("r2".into(), h(&["r1", "r2"]))));
    }
}
