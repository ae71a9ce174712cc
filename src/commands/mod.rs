//! The commands, each a flow on top of the resource model (`resources::stack`), the graph and the
//! state, ending in one report.

pub mod access_check;
pub mod completions;
pub mod cost;
pub mod deploy;
pub mod down;
pub mod init;
pub mod list;
pub mod logs;
pub mod policy;
pub mod rollback;
pub mod rollout;
pub mod state_command;
pub mod state_home;
pub mod status;
pub mod unlock;
pub mod up;
pub mod verify;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::aws::{self, AwsTarget, Clients};
use crate::bill::{live, BilledLine, PriceError, Prices};
use crate::cli::{Cli, Command, DownArgs, OutputFormat, PriceSource, StatusArgs, VerifyArgs};
use crate::commands::cost::Bill;
use crate::config::{Config, ConfigSource};
use crate::context::Ctx;
use crate::error::{AwsContext, StackError};
use crate::graph::{GraphError, StepReport, StepResult};
use crate::model::{Health, Inspection, Key, Kind};
use crate::progress::{Mode, Progress};
use crate::report::{self, ErrorBody};
pub use crate::resources::outputs::Outputs;
use crate::state::s3::Bucket;
use crate::state::{self, LocalBackend, S3Backend, State, StateError, StateLocation, Store};
use crate::url_check;

/// Exit codes: 0 ok, 1 error, 2 usage (clap), 3 `status` found the stack missing parts, drifted,
/// or deployed without a state here.
pub const EXIT_ATTENTION: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Stack(Box<StackError>),
    #[error("internal error: the resource graph is invalid: {0}")]
    Graph(#[from] GraphError),
    #[error("no AWS region: pass --region, set AWS_REGION, or set `region` in the config")]
    NoRegion,
    #[error("{0}")]
    Usage(String),
    #[error("{failed} of {total} steps failed:\n{details}")]
    Steps { failed: usize, total: usize, details: String },
    /// Every failed step was denied by IAM: one line, the actions and what to do.
    #[error(
        "not allowed to perform {actions} ({steps}); nothing else failed and the state records what was done: \
         the next run with the permission goes on from here. {hint}",
        hint = crate::error::aws::POLICY_HINT
    )]
    Denied { actions: String, steps: String },
    #[error("{0}")]
    Refused(String),
    /// The command needs a deployed stack (a state recording it, or its log group).
    #[error("{0}")]
    NotDeployed(String),
    /// The stack's resources say its state lives at another location than this run's.
    #[error("{0}")]
    StateElsewhere(String),
    /// Already reported in the command's own result document; the message is for stderr.
    #[error("{0}")]
    Reported(String),
}

impl From<StackError> for CommandError {
    fn from(e: StackError) -> CommandError {
        CommandError::Stack(Box::new(e))
    }
}

impl CommandError {
    /// The error as a JSON body.
    pub fn body(&self) -> ErrorBody {
        let (kind, code) = match self {
            CommandError::Config(_) => ("config", None),
            CommandError::State(_) => ("state", None),
            CommandError::Stack(e) => match e.as_ref() {
                StackError::Refused(_) => ("refused", None),
                StackError::NotOurs { .. } => ("not_ours", None),
                StackError::Blocked { .. } => ("blocked", None),
                other => ("aws", other.code().map(str::to_string)),
            },
            CommandError::Graph(_) => ("internal", None),
            CommandError::NoRegion | CommandError::Usage(_) => ("usage", None),
            CommandError::Steps { .. } => ("steps", None),
            CommandError::Denied { .. } => ("denied", None),
            CommandError::Refused(_) => ("refused", None),
            CommandError::NotDeployed(_) => ("not_deployed", None),
            CommandError::StateElsewhere(_) => ("state_elsewhere", None),
            CommandError::Reported(_) => ("failed", None),
        };
        ErrorBody { kind, message: self.to_string(), code }
    }
}

/// What every command starts from: the validated config, the region, the clients.
pub struct Setup {
    pub config: Config,
    pub source: ConfigSource,
    pub region: String,
    pub clients: Clients,
    /// Where the stack's state lives: `--state` > `FARGATE_STACK_STATE` > the config's `state` >
    /// `.fargate-stack/<name>.json`.
    pub state: StateLocation,
    /// The local file that pointed to `state` (left by `state push`), when it did.
    pub pointer: Option<PathBuf>,
    /// The command, as a lock names it.
    pub command: &'static str,
    pub mode: Mode,
    pub format: OutputFormat,
    pub max_concurrency: usize,
    /// `--state-bucket-owner`, else (once asked for) the account of the credentials.
    bucket_owner: tokio::sync::OnceCell<String>,
    /// `--lock-timeout`: how long to wait for a lock another run holds.
    pub lock_timeout: Duration,
    /// `--prices`: the bill's prices from the table or the Price List API.
    pub prices: PriceSource,
    /// `--prices live`: the prices fetched for this run's bill (see [`Setup::fetch_prices`]).
    live_prices: tokio::sync::OnceCell<Result<Prices, PriceError>>,
    /// The AWS endpoint override (`--endpoint-url`, `AWS_ENDPOINT_URL`): an emulator.
    pub endpoint_url: Option<String>,
}

impl Setup {
    pub async fn new(cli: &Cli) -> Result<Setup, CommandError> {
        // Config first: bad input fails before any AWS call.
        let (mut config, source) = Config::load(cli.config.as_deref())?;
        if let Command::Down(DownArgs { name: Some(name), .. }) | Command::Status(StatusArgs { name: Some(name), .. }) =
            &cli.command
        {
            config = config.with_name(name)?;
        }
        if let Some(profile) = &cli.profile {
            if !aws::profile_exists(profile).await {
                return Err(CommandError::Usage(format!(
                    "AWS profile {profile:?} does not exist in ~/.aws/config or ~/.aws/credentials (or AWS_CONFIG_FILE / \
                     AWS_SHARED_CREDENTIALS_FILE); check the name, or run `aws configure --profile {profile}`"
                )));
            }
        }
        if let Some(url) = &cli.endpoint_url {
            aws::check_endpoint(url).map_err(CommandError::Usage)?;
        }
        let target = AwsTarget {
            region: cli.region.clone(),
            profile: cli.profile.clone(),
            endpoint_url: cli.endpoint_url.clone(),
        };
        let sdk = aws::sdk_config(&target, config.region.as_deref()).await;
        let region = sdk.region().map(|r| r.to_string()).ok_or(CommandError::NoRegion)?;
        let state = state_location(cli.state.as_deref(), &config, &source)?;
        let (state, pointer) = follow_pointer(state, &config.name, &region)?;
        Ok(Setup {
            clients: Clients::new(&sdk),
            config,
            source,
            region,
            state,
            pointer,
            command: cli.command.name(),
            mode: Mode::detect(cli.output == OutputFormat::Json),
            format: cli.output,
            max_concurrency: cli.max_concurrency as usize,
            bucket_owner: tokio::sync::OnceCell::new_with(cli.state_bucket_owner.clone()),
            lock_timeout: cli.lock_timeout,
            prices: cli.prices,
            live_prices: tokio::sync::OnceCell::new(),
            endpoint_url: sdk.endpoint_url().map(str::to_string),
        })
    }

    /// What the command line asks of the URL check after a rollout.
    pub fn asked(&self, args: &VerifyArgs) -> url_check::Asked {
        url_check::Asked {
            skip: args.no_verify,
            pins: args.resolve.clone(),
            budget: args.verify_timeout,
            endpoint: self.endpoint_url.clone(),
        }
    }

    /// With `--prices live`: asks the Price List API for every key `bills` hold (once a run).
    pub async fn fetch_prices(&self, bills: &[&[BilledLine]]) {
        if self.prices != PriceSource::Live {
            return;
        }
        let keys: BTreeSet<String> = bills.iter().flat_map(|b| b.iter().map(|l| l.item.clone())).collect();
        self.live_prices
            .get_or_init(|| async {
                let fetched = live::fetch(&self.clients, &self.region, &keys).await;
                let at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
                fetched
                    .map_err(|e| PriceError::Live(e.to_string()))
                    .and_then(|l| Prices::live(&self.region, &keys, &l, at))
            })
            .await;
    }

    /// The bill of `lines` (old → new against `before`) at this run's prices: the table's, or
    /// those [`Setup::fetch_prices`] fetched.
    pub fn bill(&self, lines: &[BilledLine], before: Option<&[BilledLine]>) -> Bill {
        let prices = match self.prices {
            PriceSource::Table => Prices::for_region(&self.region),
            PriceSource::Live => self.live_prices.get().cloned().unwrap_or_else(|| {
                Err(PriceError::Live("not fetched before the bill was made (a bug: please report it)".into()))
            }),
        };
        Bill::new(prices, lines, before)
    }

    pub fn location(&self) -> String {
        self.state.to_string()
    }

    /// The bucket of an S3 state location, in this run's region, owned by the account states are
    /// kept in.
    pub async fn bucket(&self, name: &str) -> Result<Bucket, CommandError> {
        Ok(Bucket::new(&self.clients.s3, name, &self.region, self.bucket_owner().await?))
    }

    /// The account state buckets must belong to: `--state-bucket-owner`, else the caller's own
    /// (GetCallerIdentity, which needs no permission). Neither the bucket (whose owner would be
    /// the one to trust) nor a file on this machine (absent on a fresh CI runner) is asked.
    pub async fn bucket_owner(&self) -> Result<&str, CommandError> {
        Ok(self.bucket_owner.get_or_try_init(|| self.caller_account()).await?)
    }

    /// The caller's own account, whatever `--state-bucket-owner` says.
    pub async fn caller_account(&self) -> Result<String, CommandError> {
        let me = self.clients.sts.get_caller_identity().send().await;
        let me = me.ctx("find the account of", "the credentials in use (sts:GetCallerIdentity)")?;
        Ok(me.account().unwrap_or_default().to_string())
    }

    /// The recorded state, unlocked, for commands that change nothing. None when there is none.
    pub async fn read_state(&self) -> Result<Option<State>, CommandError> {
        let state = match &self.state {
            StateLocation::Local(path) => state::local::read(path)?,
            StateLocation::S3 { bucket, key } => {
                self.bucket(bucket).await?.read_state(key).await?.map(|(state, _)| state)
            }
        };
        let Some(state) = state else { return Ok(None) };
        state.check_matches(&self.location(), &self.config.name, &self.region)?;
        Ok(Some(state))
    }

    /// A read-only context over `state`: lookups may record what they find, in memory only.
    pub fn read_only(&self, state: State) -> Arc<Ctx> {
        self.context(Store::read_only(self.location(), state))
    }

    /// The state, locked for this run, written after every change.
    pub async fn open_state(&self) -> Result<Store, CommandError> {
        match &self.state {
            StateLocation::Local(path) => {
                let (backend, state, interrupted) = self
                    .locking(&self.location(), || async { LocalBackend::open(path, &self.config.name, &self.region) })
                    .await?;
                Ok(Store::writable(Arc::new(backend), state, interrupted))
            }
            StateLocation::S3 { bucket, key } => {
                let bucket = self.bucket(bucket).await?;
                let (backend, state) = self
                    .locking(&self.location(), || S3Backend::open(bucket.clone(), key, &self.config.name, self.command))
                    .await?;
                Ok(Store::writable(Arc::new(backend), state, None))
            }
        }
    }

    /// Take a lock with `open`; while another run holds it, try again until `--lock-timeout`
    /// has passed, saying who holds it (again whenever the holder changes).
    pub async fn locking<T, F, Fut>(&self, location: &str, mut open: F) -> Result<T, StateError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StateError>>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(250);
        let mut shown: Option<String> = None;
        loop {
            let err = match open().await {
                Err(e) if e.lock_holder().is_some() => e,
                other => return other,
            };
            let holder = err.lock_holder().unwrap_or_default().to_string();
            let left = self.lock_timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                if shown.is_some() {
                    let waited = started.elapsed().as_secs();
                    eprintln!("gave up waiting for the lock on {location} after {waited}s (--lock-timeout)");
                }
                return Err(err);
            }
            if shown.as_deref() != Some(holder.as_str()) {
                Progress::new(self.mode, &[]).note(&format!(
                    "state {location} is locked by another fargate-stack run: {holder}; waiting for it (up to {}s more, \
                     --lock-timeout)",
                    left.as_secs_f64().ceil() as u64
                ));
                shown = Some(holder);
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    pub fn context(&self, store: Store) -> Arc<Ctx> {
        Arc::new(Ctx::new(self.config.clone(), self.region.clone(), self.clients.clone(), store))
    }

    /// Progress for a run over `keys`, with AWS retries shown on it.
    pub fn progress(&self, keys: &[Key]) -> Progress {
        let names: Vec<String> = keys.iter().map(Key::to_string).collect();
        let progress = Progress::new(self.mode, &names);
        let notes = progress.clone();
        aws::on_retry(move |message| notes.note(&message));
        progress
    }

    /// Say that the last run on this state died part-way (its work is picked up from the state).
    pub fn report_interrupted(&self, store: &Store, progress: &Progress) {
        if let Some(holder) = store.interrupted() {
            progress.note(&format!(
                "note: the last run on {} ({holder}) did not finish; continuing from what it recorded",
                store.location()
            ));
        }
    }
}

/// `--state` (or `FARGATE_STACK_STATE`), else the config's `state` (a relative path is relative to
/// the config file), else the default local file.
fn state_location(given: Option<&str>, config: &Config, source: &ConfigSource) -> Result<StateLocation, StateError> {
    if let Some(value) = given.filter(|v| !v.is_empty()) {
        return StateLocation::parse(value, &config.name, None);
    }
    match &config.state {
        Some(value) => {
            let config_dir =
                (source.path != crate::config::BUILT_IN).then(|| Path::new(&source.path)).and_then(Path::parent);
            StateLocation::parse(value, &config.name, config_dir)
        }
        None => Ok(StateLocation::default_for(&config.name)),
    }
}

/// A local state location that holds the pointer `state push` left is the S3 location it names.
fn follow_pointer(
    location: StateLocation,
    stack: &str,
    region: &str,
) -> Result<(StateLocation, Option<PathBuf>), StateError> {
    let StateLocation::Local(path) = &location else { return Ok((location, None)) };
    let Some(pointer) = state::pointer::read(path)? else { return Ok((location, None)) };
    let origin = path.display().to_string();
    pointer.check_matches(&origin, stack, region)?;
    let to = StateLocation::parse(&pointer.moved_to, stack, None)?;
    if !to.is_remote() {
        return Err(StateError::Corrupt { path: origin, message: format!("it points to {to}, not to S3") });
    }
    Ok((to, Some(path.clone())))
}

/// Run the command; under `--output json` an error is a JSON document on stdout as well. Ctrl-C or
/// SIGTERM stops it as a kill would (the state holds everything done so far), but first gives up
/// the S3 lock, so that the next run need not `unlock`.
pub async fn run(cli: Cli) -> Result<ExitCode, CommandError> {
    let command = cli.command.name();
    let format = cli.output;
    // Needs no config, no region, no AWS.
    if let Command::Completions(args) = &cli.command {
        return completions::run(format, args);
    }
    let work = async {
        // Needs no region and no AWS, but its errors are reported like any command's.
        if let Command::Init(args) = &cli.command {
            return init::run(format, cli.config.as_deref(), args);
        }
        let setup = Setup::new(&cli).await?;
        match &cli.command {
            Command::Up(args) => up::run(&setup, args).await,
            Command::Down(args) => down::run(&setup, args).await,
            Command::Status(args) => status::run(&setup, args).await,
            Command::Logs(args) => logs::run(&setup, args).await,
            Command::Deploy(args) => deploy::run(&setup, args).await,
            Command::Rollback(args) => rollback::run(&setup, args).await,
            Command::List => list::run(&setup).await,
            Command::Policy(args) => policy::run(&setup, args).await,
            Command::Unlock(args) => unlock::run(&setup, args).await,
            Command::State(command) => state_command::run(&setup, command).await,
            Command::Completions(_) | Command::Init(_) => unreachable!("handled above"),
        }
    };
    tokio::pin!(work);
    let result = tokio::select! {
        result = &mut work => result,
        signal = interrupted(&cli.command) => {
            for location in state::s3::release_held_locks().await {
                eprintln!("interrupted by {signal}: released the lock on {location}");
            }
            let message = format!(
                "interrupted by {signal}: stopped; the state records everything done so far: run the command again to continue"
            );
            if format == OutputFormat::Json {
                report::emit_error(command, ErrorBody { kind: "interrupted", message: message.clone(), code: None });
            }
            eprintln!("{message}");
            // Exit here, as a kill would: a local lock file keeps the holder's name, so the next
            // run says this one did not finish.
            std::process::exit(130);
        }
    };
    // A failed step is already in the command's own report.
    if let (Err(e), OutputFormat::Json) = (&result, format) {
        if !matches!(e, CommandError::Steps { .. } | CommandError::Denied { .. } | CommandError::Reported(_)) {
            report::emit_error(command, e.body());
        }
    }
    result
}

/// Ctrl-C, or SIGTERM (how CI systems cancel a job). `logs --follow` ends on them itself, with
/// exit 0: for it they are not an interruption.
async fn interrupted(command: &Command) -> &'static str {
    if matches!(command, Command::Logs(_)) {
        return std::future::pending().await;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}

/// The overall state of a stack, one spelling everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StackState {
    /// Nothing of it exists.
    NotDeployed,
    /// Every resource exists and matches the config.
    Up,
    /// Everything exists; AWS is still settling something (tasks starting, a NAT pending).
    Deploying,
    /// Everything exists, something differs from the config.
    Drifted,
    /// Some resources are missing.
    Partial,
    /// Resources exist, but no state here records them (run `up` to adopt, or `down --name`).
    Untracked,
    /// Only the table is left, kept on purpose by `down --retain-table`.
    Retained,
}

impl StackState {
    pub fn word(self) -> &'static str {
        match self {
            StackState::NotDeployed => "not deployed",
            StackState::Up => "up",
            StackState::Deploying => "deploying",
            StackState::Drifted => "drifted",
            StackState::Partial => "partial",
            StackState::Untracked => "untracked",
            StackState::Retained => "retained",
        }
    }

    /// Judged from the live rows of a stack that has a state.
    pub fn of(rows: &[ResourceRow]) -> StackState {
        let count = |h: Health| rows.iter().filter(|r| r.status == h).count();
        if count(Health::Missing) == rows.len() {
            StackState::NotDeployed
        } else if count(Health::Missing) > 0 {
            StackState::Partial
        } else if count(Health::Drifted) > 0 {
            StackState::Drifted
        } else if count(Health::Pending) > 0 {
            StackState::Deploying
        } else {
            StackState::Up
        }
    }

    pub fn needs_attention(self) -> bool {
        matches!(self, StackState::Drifted | StackState::Partial | StackState::Untracked)
    }
}

/// One resource as `status` and the plan show it.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceRow {
    pub name: Key,
    pub kind: Kind,
    #[serde(flatten)]
    pub inspection: Inspection,
}

impl std::ops::Deref for ResourceRow {
    type Target = Inspection;
    fn deref(&self) -> &Inspection {
        &self.inspection
    }
}

/// Check every resource of `graph` live; the first AWS error fails the command.
pub async fn inspect(
    setup: &Setup,
    graph: &crate::graph::Graph,
    ctx: Arc<Ctx>,
) -> Result<Vec<ResourceRow>, CommandError> {
    let mut rows = vec![];
    for (name, kind, result) in graph.inspect_all(ctx, setup.max_concurrency).await {
        rows.push(ResourceRow { name, kind, inspection: result? });
    }
    Ok(rows)
}

/// Turn failed steps into one error listing each root cause (not what they blocked).
pub fn check_steps(steps: &[StepReport]) -> Result<(), CommandError> {
    let failed: Vec<(&Key, &String)> = steps
        .iter()
        .filter_map(|s| match &s.result {
            StepResult::Failed { error } => Some((&s.key, error)),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let denied: Vec<&str> = failed.iter().filter_map(|(_, e)| crate::error::aws::denied_in(e)).collect();
    if denied.len() == failed.len() {
        let actions: std::collections::BTreeSet<&str> = denied.into_iter().collect();
        let keys: Vec<String> = failed.iter().map(|(k, _)| k.to_string()).collect();
        let steps = format!("{} of {} steps: {}", keys.len(), steps.len(), keys.join(", "));
        return Err(CommandError::Denied { actions: actions.into_iter().collect::<Vec<_>>().join(", "), steps });
    }
    let failures: Vec<String> = failed.iter().map(|(key, error)| format!("  {key}: {error}")).collect();
    let blocked = steps.iter().filter(|s| matches!(s.result, StepResult::Blocked { .. })).count();
    let mut details = failures.join("\n");
    if blocked > 0 {
        details.push_str(&format!("\n  ({blocked} dependent steps did not run)"));
    }
    Err(CommandError::Steps { failed: failures.len(), total: steps.len(), details })
}

/// Counts of outcomes for a summary line, e.g. "3 created, 20 unchanged".
pub fn summary(steps: &[StepReport]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in steps {
        *counts.entry(s.result.word()).or_default() += 1;
    }
    counts.iter().map(|(w, n)| format!("{n} {w}")).collect::<Vec<_>>().join(", ")
}

/// Ask on a terminal (on stderr, answer on stdin); refuse when nobody can answer.
pub fn confirm(question: &str, expected: &str, refusal: &str) -> Result<(), CommandError> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::Refused(refusal.to_string()));
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CommandError::Refused(format!("cannot read the answer: {e}")))?;
    if answer.trim() != expected {
        return Err(CommandError::Refused("not confirmed; nothing was changed".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;

    #[test]
    fn steps_denied_by_iam_fail_in_one_line_naming_the_action() {
        let report = |key: Key, error: &str| StepReport {
            key,
            result: StepResult::Failed { error: error.into() },
            elapsed: Duration::ZERO,
        };
        let denied = format!(
            "create subnet: UnauthorizedOperation: not allowed to perform ec2:CreateSubnet. {}",
            crate::error::aws::POLICY_HINT
        );
        let vpc = crate::resources::network::VPC;
        let table = crate::resources::table::TABLE;
        let e = check_steps(&[report(vpc, &denied), report(table, &denied)]).unwrap_err().to_string();
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.starts_with("not allowed to perform ec2:CreateSubnet (2 of 2 steps: vpc, table)"), "{e}");
        assert!(e.ends_with(crate::error::aws::POLICY_HINT), "{e}");
        // With another failure among them, each is listed.
        let e = check_steps(&[report(vpc, &denied), report(table, "create table: LimitExceeded: x")]).unwrap_err();
        assert!(matches!(e, CommandError::Steps { failed: 2, .. }), "{e}");
    }

    #[test]
    fn the_state_location_is_the_flag_then_the_environment_then_the_config_then_the_default() {
        let config = |state: Option<&str>| {
            let mut c = Config::parse("t", DEFAULT_TOML).unwrap();
            c.state = state.map(str::to_string);
            c
        };
        let file = ConfigSource { path: "/repo/infra/prod.toml".into(), sha256: String::new() };
        let built_in = ConfigSource { path: crate::config::BUILT_IN.into(), sha256: String::new() };
        let s3 = |key: &str| StateLocation::S3 { bucket: "team-state".into(), key: key.into() };
        // --state or FARGATE_STACK_STATE (clap folds the two) wins over the config.
        let given = state_location(Some("s3://team-state/x.json"), &config(Some("local.json")), &file).unwrap();
        assert_eq!(given, s3("x.json"));
        // An empty variable counts as unset.
        assert_eq!(
            state_location(Some(""), &config(Some("s3://team-state/")), &file).unwrap(),
            s3("simple-ecs-dev.json")
        );
        // A relative path in the config is relative to the config file.
        assert_eq!(
            state_location(None, &config(Some("states/")), &file).unwrap(),
            StateLocation::Local("/repo/infra/states/simple-ecs-dev.json".into())
        );
        assert_eq!(
            state_location(None, &config(Some("states/")), &built_in).unwrap(),
            StateLocation::Local("states/simple-ecs-dev.json".into())
        );
        assert_eq!(state_location(None, &config(None), &file).unwrap(), StateLocation::default_for("simple-ecs-dev"));
        assert!(state_location(Some("s3://"), &config(None), &file).is_err());
    }
}
