//! `policy`: the least-privilege IAM policy document for some commands on this config (see
//! `crate::policy`), with the account, region and partition of this run.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use crate::access::Permission;
use crate::cli::{PolicyArgs, PriceSource};
use crate::commands::{list, logs, state_home, CommandError, Setup};
use crate::config::Config;
use crate::model::{Managed, Resource, Shape, Stepping};
use crate::policy::{self, Declarations, Target};
use crate::resources::{self, service, task_definition};
use crate::state::StateLocation;

/// How long to wait for the credentials' account before printing `*` for it.
const ACCOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the commands declare for this config: the stack's nodes as `up` builds them (with its
/// waits, and what it probes for), the steps of `deploy` and `rollback`, the lookup and tag of
/// the VPC naming the state's home, and the commands' own; for `down`, every resource a stack of
/// the config's name could have.
pub fn declarations(config: &Config) -> Result<Declarations, CommandError> {
    let graph = resources::stack(&Shape::of(config).with_waits(true).probing())?;
    let mut resources: Vec<Permission> = graph.nodes().iter().flat_map(|n| n.permissions()).collect();
    let base = aws_sdk_ecs::types::TaskDefinition::builder().build();
    resources.extend(Stepping(task_definition::Deploy { base, image: None }).permissions());
    resources.extend(Stepping(service::Roll { runs: String::new(), force: false }).permissions());
    resources.extend(state_home::permissions());
    resources.extend(crate::commands::access_check::permissions());
    let mut logs = logs::permissions();
    logs.extend(
        Managed::permissions(&resources::logs::LogGroup::PLAIN)
            .into_iter()
            .filter(|p| p.verb == crate::access::Verb::Find),
    );
    let discovering = resources::stack(&Shape::discovering(config).with_waits(true))?;
    let mut discoverable: Vec<Permission> = discovering.nodes().iter().flat_map(|n| n.permissions()).collect();
    discoverable.extend(state_home::permissions());
    discoverable.extend(crate::commands::access_check::permissions());
    Ok(Declarations {
        resources,
        discoverable,
        list: list::permissions(),
        logs,
        state: crate::state::s3::permissions(),
    })
}

pub async fn run(setup: &Setup, args: &PolicyArgs) -> Result<ExitCode, CommandError> {
    let account = match &args.account {
        Some(account) => account.clone(),
        None => match tokio::time::timeout(ACCOUNT_TIMEOUT, setup.caller_account()).await {
            Ok(Ok(account)) if !account.is_empty() => account,
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no answer".into(),
                };
                eprintln!(
                    "notice: the account is `*` in the ARNs: the credentials' account is unknown ({why}); pass \
                     --account ID to scope them to one account"
                );
                "*".into()
            }
        },
    };
    let state = match &setup.state {
        StateLocation::S3 { bucket, key } => Some((bucket.clone(), key.clone())),
        StateLocation::Local(_) => None,
    };
    let target = Target {
        partition: policy::partition(&setup.region).into(),
        region: setup.region.clone(),
        account,
        stack: setup.config.name.clone(),
        state,
    };
    let commands: Vec<&str> = args.commands.iter().map(String::as_str).collect();
    let mut declared = declarations(&setup.config)?;
    if setup.prices == PriceSource::Live {
        declared.resources.extend(crate::bill::live::permissions());
    }
    let document = policy::document(&commands, &declared, &target);
    // A reader that stops early (`| head`) is no error.
    let document = if args.split { serde_json::Value::from(policy::split(&document)) } else { document };
    let text = serde_json::to_string_pretty(&document).expect("a JSON value prints");
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(ExitCode::SUCCESS)
}
