//! `deploy --image REF`: what CI runs on every commit (`deploy --restart`: new tasks, same image). Registers a task definition revision equal
//! to the recorded one but for the image, rolls the service onto it and waits as `up` does. The
//! state records the deployed image, so a later `up` keeps it unless the config's `service.image`
//! changed since it was last applied (see `task_definition::image`).

use std::process::ExitCode;

use serde::Serialize;

use crate::cli::DeployArgs;
use crate::commands::rollout::{self, Move, Options, Rolled};
use crate::commands::{state_home, CommandError, Setup};
use crate::report::{self, Report, Text};
use crate::resources::task_definition;
use crate::state::location::LOCAL_TAG_VALUE;

#[derive(Debug, Serialize)]
pub struct DeployReport(pub Rolled);

impl Report for DeployReport {
    const COMMAND: &'static str = "deploy";

    fn render(&self, text: &mut Text) {
        self.0.render(text, "deploy");
    }
}

/// A state that records something, or why there is nothing to deploy to: the stack is not
/// deployed, or it runs and its state is not here (then where it is).
pub async fn require_state(setup: &Setup) -> Result<(), CommandError> {
    let (state, home) = tokio::try_join!(setup.read_state(), state_home::check(setup))?;
    match (state, home) {
        (Some(state), _) if !state.resources.is_empty() => Ok(()),
        (_, Some(home)) => Err(CommandError::StateElsewhere(format!(
            "stack {} runs in {} (its VPC {} found by its tags), but no state at {} records it: {}",
            setup.config.name,
            setup.region,
            home.vpc,
            setup.location(),
            match home.tag.as_deref() {
                Some(LOCAL_TAG_VALUE) => {
                    "its VPC says its state is a local file: run where that file is (or, if it is lost, \
                     `fargate-stack up` here adopts the stack first)"
                }
                _ => "no location is recorded on it: `fargate-stack up` here adopts the stack first",
            }
        ))),
        _ => Err(CommandError::NotDeployed(format!(
            "stack {} is not deployed in {} (no state at {}, no VPC tagged with its name); run `fargate-stack up` \
             first",
            setup.config.name,
            setup.region,
            setup.location()
        ))),
    }
}

pub async fn run(setup: &Setup, args: &DeployArgs) -> Result<ExitCode, CommandError> {
    require_state(setup).await?;
    let ctx = setup.context(setup.open_state().await?);
    let result = async {
        let (snapshot, base, service_runs) = rollout::current(setup, &ctx).await?;
        // `--restart`: the running image again, rolled even though nothing changed.
        let image = args.image.clone().unwrap_or_else(|| task_definition::image_of(&base));
        let options =
            Options { force: args.force || args.restart, no_wait: args.no_wait, verify: setup.asked(&args.verify) };
        let mv = Move::Deploy { image };
        let (rolled, result) = rollout::roll(setup, &ctx, snapshot, &base, &service_runs, mv, options).await;
        report::emit(setup.format, &DeployReport(rolled));
        result.map(|()| ExitCode::SUCCESS)
    }
    .await;
    ctx.store().release().await;
    result
}
