//! The command line: global flags and the subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  fargate-stack up                          # create the built-in stack in your default region
  fargate-stack --region eu-west-1 status   # what is running, checked live
  fargate-stack --config prod.toml up --dry-run
  fargate-stack deploy --image nginx:1.28   # ship an image (what CI does on every commit)
  fargate-stack logs --follow               # the service's logs, as they come
  fargate-stack rollback                    # back to the previous revision that rolled out
  fargate-stack down --yes                  # delete it all (refuses if the table holds items)

A team sharing stacks (state in S3, locked with conditional writes):
  fargate-stack state init s3://my-team-state     # once: a versioned, encrypted, private bucket
  export FARGATE_STACK_STATE=s3://my-team-state/stacks/
  fargate-stack up                          # state at s3://my-team-state/stacks/<name>.json
  fargate-stack list                        # every stack in the region, found by its tag

Against a local emulator:
  fargate-stack --endpoint-url http://127.0.0.1:5000 up --no-wait";

/// Stand up, inspect and tear down a containerised web service on AWS: a VPC over two AZs with a
/// NAT gateway, an internet-facing load balancer, an ECS Fargate service, a DynamoDB table, IAM
/// roles and a log group, through the AWS SDK directly (no CloudFormation).
#[derive(Debug, Parser)]
#[command(name = "fargate-stack", version, about, long_about, after_help = EXAMPLES)]
pub struct Cli {
    /// Stack config (TOML). Default: ./fargate-stack.toml if present, else the built-in stack.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where the state recording what the stack owns lives: a file, or s3://BUCKET/KEY (shared,
    /// locked). s3://BUCKET[/PREFIX/] keeps it at <PREFIX>/<name>.json. Default: the config's
    /// `state`, else .fargate-stack/<name>.json
    #[arg(long, global = true, value_name = "FILE|S3_URI", env = "FARGATE_STACK_STATE")]
    pub state: Option<String>,

    /// The AWS account an S3 state bucket must belong to; every S3 call names it, so a bucket of the
    /// same name in another account is refused. Default: the account of the credentials in use.
    #[arg(long, global = true, value_name = "ACCOUNT_ID", env = "FARGATE_STACK_STATE_BUCKET_OWNER", value_parser = account_id)]
    pub state_bucket_owner: Option<String>,

    /// Send every AWS call to this endpoint (an emulator). AWS_ENDPOINT_URL works too.
    #[arg(long, global = true, value_name = "URL", value_parser = endpoint_url)]
    pub endpoint_url: Option<String>,

    /// AWS region. Default: the config's `region`, then AWS_REGION / the profile's region.
    #[arg(long, global = true, value_name = "R", value_parser = region)]
    pub region: Option<String>,

    /// Named AWS profile (from ~/.aws/config), e.g. for SSO.
    #[arg(long, global = true, value_name = "P")]
    pub profile: Option<String>,

    /// `text` for people (progress on stderr), `json` for programs (JSON on stdout only).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More detail: -v shows AWS error details, -vv the SDK's own logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Most resources worked on (or checked) at once; 1 runs everything in sequence.
    #[arg(long, global = true, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_concurrency: u16,

    /// How long to wait for a state lock another run holds (30s, 5m, 1h), showing the holder while
    /// waiting, as Terraform's -lock-timeout. Default 0s: fail at once.
    #[arg(long, global = true, value_name = "DURATION", default_value = "0s", value_parser = duration)]
    pub lock_timeout: std::time::Duration,

    /// Where the bill's prices come from (plans and `status`): `table`, the repository's price
    /// table; `live`, the AWS Price List API (pricing:GetProducts, asked in us-east-1), the table's
    /// price for a key it does not answer, marked so.
    #[arg(long, global = true, value_enum, default_value_t = PriceSource::Table)]
    pub prices: PriceSource,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PriceSource {
    Table,
    Live,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the stack, or whatever of it is missing, and wait until the service is healthy.
    #[command(
        after_help = "Example:\n  fargate-stack up                  # prints the URL and the table name when done\n  fargate-stack up --dry-run        # show what would change, change nothing\n  fargate-stack up --replace table  # new table keys: a new table, the old one kept with its items"
    )]
    Up(UpArgs),
    /// Delete everything the state file records, in a safe order.
    #[command(
        after_help = "Example:\n  fargate-stack down                 # asks for confirmation on a terminal\n  fargate-stack down --yes --retain-table\n\nA table that holds items is never deleted unless --delete-data is given (a backup is made first\nunless --no-backup); --retain-table keeps it with deletion protection on."
    )]
    Down(DownArgs),
    /// Show every resource's live status, the service's rollout and last events, and the stack's
    /// outputs. Exit 0 when all is ok, 3 when something is missing or drifted, 1 on error.
    #[command(
        after_help = "Examples:\n  fargate-stack status\n  fargate-stack status --events 20     # why did the last deploy fail?\n  fargate-stack status --output json | jq .outputs.url"
    )]
    Status(StatusArgs),
    /// Print the service's log events (CloudWatch Logs), oldest first: `time  task-id  message`.
    #[command(
        after_help = "Examples:\n  fargate-stack logs                          # the last 10 minutes\n  fargate-stack logs --since 2h --filter ERROR\n  fargate-stack logs --since 2026-11-25T17:00:00Z\n  fargate-stack logs --follow                 # keep printing new events until Ctrl-C\n  fargate-stack logs --output json | jq -r .message"
    )]
    Logs(LogsArgs),
    /// Ship an image: register a task definition revision equal to the running one but for the
    /// image, roll the service onto it and wait until it is healthy. A later `up` keeps it unless
    /// the config's service.image changes.
    #[command(
        after_help = "Examples:\n  fargate-stack deploy --image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:$GIT_SHA\n  fargate-stack deploy --image nginx:1.28 --no-wait\n  fargate-stack deploy --image nginx:latest --force   # start new tasks to pull a tag that moved\n\nA deployment the circuit breaker rolls back is a failure (exit 1); the stack keeps running\nthe previous revision and the state says so."
    )]
    Deploy(DeployArgs),
    /// Roll the service back to the previous task definition revision that completed a rollout.
    #[command(
        after_help = "Examples:\n  fargate-stack rollback\n  fargate-stack rollback --no-wait\n\nEach rollback goes one completed revision further back; `deploy --image` goes forward again."
    )]
    Rollback(RollbackArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  fargate-stack completions bash > ~/.local/share/bash-completion/completions/fargate-stack\n  fargate-stack completions zsh > \"${fpath[1]}/_fargate-stack\"\n  fargate-stack completions fish > ~/.config/fish/completions/fargate-stack.fish"
    )]
    Completions(CompletionsArgs),
    /// Every fargate-stack stack in the region, found by its `fargate-stack:stack` tag (no state
    /// needed): name, status (up, deploying, partial, drifted, retained), URL and creation time.
    #[command(
        after_help = "Example:\n  fargate-stack --region eu-west-1 list\n  fargate-stack list --output json | jq -r '.stacks[].name'"
    )]
    List,
    /// Print the least-privilege IAM policy document for the given commands on this config, built
    /// from the actions each resource declares (attach it to the role CI runs fargate-stack with).
    #[command(
        after_help = "Examples:\n  fargate-stack policy > policy.json\n  fargate-stack policy --commands deploy,status --account 123456789012\n  aws iam put-role-policy --role-name ci-deployer --policy-name fargate-stack --policy-document file://policy.json\n\nThe account comes from --account, else from the credentials (sts:GetCallerIdentity, which needs no\npermission), else it is `*` with a notice on stderr."
    )]
    Policy(PolicyArgs),
    /// Remove the lock a run that died left on an S3 state, after showing who held it. Only the
    /// lock with this ID is removed.
    #[command(
        after_help = "Example:\n  fargate-stack --state s3://my-team-state/stacks/app.json unlock 8c1d2f3a-...\n\nThe ID is in the error of the run that found the state locked. Make sure the holder is not running."
    )]
    Unlock(UnlockArgs),
    /// Set up and move state: `state init` (an S3 bucket for states), `state push` / `state pull`
    /// (move a local state to S3 and back).
    #[command(subcommand)]
    State(StateCommand),
    /// Write a starter config: every key the README documents, commented, with its default (the
    /// built-in stack's), to ./fargate-stack.toml or the --config path. Refuses to overwrite a file.
    #[command(
        after_help = "Examples:\n  fargate-stack init --name shop-prod --image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4\n  fargate-stack init --name shop-prod --domain api.example.com\n  fargate-stack --config prod.toml init\n  fargate-stack up --dry-run        # the file as written passes as it is"
    )]
    Init(InitConfigArgs),
}

#[derive(Debug, Args)]
pub struct InitConfigArgs {
    /// The stack's name (1-20 chars of a-z, 0-9, '-'). Default: the built-in stack's.
    #[arg(long, value_name = "NAME", value_parser = stack_name)]
    pub name: Option<String>,
    /// The image the service runs. Default: the built-in stack's (nginx).
    #[arg(long, value_name = "REF", value_parser = image)]
    pub image: Option<String>,
    /// Serve HTTPS on this name: `[https] domain`, certificate and alias record through Route 53.
    #[arg(long, value_name = "D", value_parser = domain)]
    pub domain: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The lock ID, as printed by the run that found the state locked.
    #[arg(value_name = "LOCK_ID")]
    pub lock_id: String,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Create an S3 bucket for states (versioning, default encryption, public access blocked, TLS
    /// only) in the run's region; for a bucket that exists, only check those settings and say
    /// what is missing (exit 3). Nothing in an existing bucket is changed.
    #[command(after_help = "Example:\n  fargate-stack --region eu-west-1 state init s3://my-team-state/stacks")]
    Init(InitArgs),
    /// Move the local state of the stack to the S3 location (--state, FARGATE_STACK_STATE or the
    /// config's `state`), under both locks. Refuses to overwrite a different state there.
    #[command(after_help = "Example:\n  fargate-stack --state s3://my-team-state/stacks/ state push")]
    Push(MoveArgs),
    /// Move the stack's state from the S3 location back to a local file, under both locks.
    /// Refuses to overwrite a different local state.
    #[command(after_help = "Example:\n  fargate-stack --state s3://my-team-state/stacks/ state pull")]
    Pull(MoveArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// s3://BUCKET or s3://BUCKET/PREFIX
    #[arg(value_name = "S3_URI")]
    pub uri: String,
}

#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The local state file. Default: .fargate-stack/<name>.json
    #[arg(long, value_name = "FILE")]
    pub local: Option<PathBuf>,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Up(args) if args.dry_run => "plan",
            Command::Up(_) => "up",
            Command::Down(_) => "down",
            Command::Status(_) => "status",
            Command::Logs(_) => "logs",
            Command::Deploy(_) => "deploy",
            Command::Rollback(_) => "rollback",
            Command::Completions(_) => "completions",
            Command::List => "list",
            Command::Policy(_) => "policy",
            Command::Unlock(_) => "unlock",
            Command::State(StateCommand::Init(_)) => "state init",
            Command::State(StateCommand::Push(_)) => "state push",
            Command::State(StateCommand::Pull(_)) => "state pull",
            Command::Init(_) => "init",
        }
    }
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The commands the policy must suffice for (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "up,down,status,deploy,rollback,logs,list",
          value_parser = clap::builder::PossibleValuesParser::new(crate::policy::COMMANDS))]
    pub commands: Vec<String>,
    /// The account the stack lives in (12 digits); default: the credentials' account.
    #[arg(long, value_name = "ID", value_parser = account_id)]
    pub account: Option<String>,
    /// Print a JSON array of documents, each under IAM's 6,144-character limit of a managed policy.
    #[arg(long)]
    pub split: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How many of the service's latest events to show.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(0..=100))]
    pub events: u16,
    /// The stack of this name (instead of the config's). With no state for it, its resources are
    /// found by their `fargate-stack:stack` tag and their names, as `down --name` finds them.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Events from this long ago (30s, 10m, 2h, 7d) or since this time (2026-11-25T17:00:00Z, a
    /// date-time without zone is UTC, or a date).
    #[arg(long, value_name = "WHEN", default_value = "10m", value_parser = since)]
    pub since: Since,
    /// Keep printing new events (polling about every 2 s) until Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
    /// Only events matching this CloudWatch Logs filter pattern (e.g. ERROR, "GET /api", or a
    /// JSON pattern such as { $.level = "error" }).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The image to run, e.g. nginx:1.28 or 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1a2b3c.
    #[arg(long, value_name = "REF", value_parser = image, required_unless_present = "restart")]
    pub image: Option<String>,
    /// Start new tasks of the running revision, same image: they read `[service.secrets]` again
    /// (a rotated password), and pull a moved tag again.
    #[arg(long, conflicts_with = "image")]
    pub restart: bool,
    /// Return once the service is updated; don't wait for the new tasks to be healthy.
    #[arg(long)]
    pub no_wait: bool,
    /// Start new tasks even if the service already runs this image (a moved tag is pulled again).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Return once the service is updated; don't wait for the tasks to be healthy.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

/// The check that the stack's URL answers once a rollout completed (`up`, `deploy`, `rollback`).
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Don't check that the stack's URL answers (a status under 500) once the rollout completed.
    #[arg(long)]
    pub no_verify: bool,
    /// For the URL check, connect to ADDR for HOST on PORT, as curl's --resolve (`*` as HOST: any
    /// name): private DNS, or a local stand-in for the load balancer behind an emulator.
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = pin, conflicts_with = "no_verify")]
    pub resolve: Vec<crate::url_check::Pin>,
    /// How long the URL check may take (a new load balancer's name takes a minute or two to
    /// resolve; each attempt waits at most 10 s): 1s to 1h.
    #[arg(long, value_name = "DURATION", default_value = crate::url_check::DEFAULT_BUDGET, value_parser = verify_budget,
          conflicts_with = "no_verify")]
    pub verify_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Where `logs` starts: a while ago, or a moment in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Ago(std::time::Duration),
    At(chrono::DateTime<chrono::Utc>),
}

impl Since {
    /// The start, in milliseconds since the epoch, as of `now`.
    pub fn start_ms(self, now: chrono::DateTime<chrono::Utc>) -> i64 {
        match self {
            Since::Ago(d) => now.timestamp_millis() - d.as_millis() as i64,
            Since::At(t) => t.timestamp_millis(),
        }
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Show what would be created or changed; make no change.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply a config other than the one last applied to this stack without asking.
    #[arg(long, short)]
    pub yes: bool,
    /// Return once everything is created; don't wait for the tasks to run and pass health checks.
    #[arg(long)]
    pub no_wait: bool,
    /// Take over resources that carry the stack's tag but that no state records (the state was lost,
    /// or is kept elsewhere): needed off a terminal, asked for on one. `--yes` does not imply it.
    /// Resuming a run that did not finish needs neither.
    #[arg(long)]
    pub adopt: bool,
    /// With --dry-run, exit as Terraform's -detailed-exitcode: 0 no changes, 2 changes, 1 error
    /// (a refused or blocked plan included).
    #[arg(long, requires = "dry_run")]
    pub detailed_exitcode: bool,
    /// Replace this resource where its change needs a new one instead of refusing: `table` (new
    /// keys: a new table, the service rolled onto it, the old one kept with its items outside the
    /// stack).
    #[arg(long, value_name = "RESOURCE")]
    pub replace: Vec<String>,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Don't ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Delete the table even if it holds items (after an on-demand backup, unless --no-backup).
    #[arg(long, conflicts_with = "retain_table")]
    pub delete_data: bool,
    /// Keep the table (deletion protection stays on); delete everything else.
    #[arg(long)]
    pub retain_table: bool,
    /// Delete the stack of this name (instead of the config's). With no state file, its resources
    /// are found by their `fargate-stack:stack` tag and their names, so nothing is orphaned.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// With --delete-data: skip the backup.
    #[arg(long, requires = "delete_data")]
    pub no_backup: bool,
}

pub fn parse() -> Cli {
    Cli::parse()
}

/// `0s`, `30s`, `10m`, `2h`, `7d`, `1w`.
fn duration(value: &str) -> Result<std::time::Duration, String> {
    const EXPECTED: &str = "expected a duration such as 0s, 30s, 10m, 2h or 7d";
    let value = value.trim();
    let unit = value.chars().last().filter(|c| c.is_ascii_alphabetic()).ok_or(EXPECTED)?;
    let n = value[..value.len() - 1].parse::<u64>().map_err(|_| EXPECTED)?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(EXPECTED.into()),
    };
    Ok(std::time::Duration::from_secs(n.saturating_mul(seconds)))
}

/// The URL check's budget: a duration from 1s to 1h.
fn verify_budget(value: &str) -> Result<std::time::Duration, String> {
    let budget = duration(value)?;
    if budget.is_zero() || budget > crate::url_check::MAX_BUDGET {
        return Err("expected a duration from 1s to 1h, such as 90s or 5m (--no-verify skips the check)".into());
    }
    Ok(budget)
}

/// `HOST:PORT:ADDR`, as curl's --resolve.
fn pin(value: &str) -> Result<crate::url_check::Pin, String> {
    crate::url_check::Pin::parse(value)
}

/// `30s`, `10m`, `2h`, `7d`, or an ISO-8601 date-time (with a zone, or UTC) or date.
fn since(value: &str) -> Result<Since, String> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    const EXPECTED: &str =
        "expected a duration such as 30s, 10m, 2h or 7d, or an ISO-8601 time such as 2026-11-25T17:00:00Z";
    let value = value.trim();
    if let Ok(ago) = duration(value) {
        return Ok(Since::Ago(ago));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(Since::At(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, format) {
            return Ok(Since::At(Utc.from_utc_datetime(&t)));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(Since::At(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))));
    }
    Err(EXPECTED.into())
}

/// An image reference, checked like the config's `service.image`.
fn image(value: &str) -> Result<String, String> {
    crate::config::validate_image(value).map(|()| value.to_string())
}

/// A stack name, checked like the config's `name`.
fn stack_name(value: &str) -> Result<String, String> {
    crate::config::Config::valid_name(value).map(|()| value.to_string())
}

/// A domain, checked like the config's `https.domain`.
fn domain(value: &str) -> Result<String, String> {
    crate::config::check_domain(value).map(|()| value.to_string())
}

fn region(value: &str) -> Result<String, String> {
    if crate::config::is_region_name(value) {
        Ok(value.to_string())
    } else {
        Err("expected an AWS region name such as us-east-1".into())
    }
}

/// An AWS account ID: 12 digits.
fn account_id(value: &str) -> Result<String, String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_string())
    } else {
        Err("expected an AWS account ID: 12 digits, such as 123456789012".into())
    }
}

/// `http(s)://host[:port][/path]`: anything else would be blamed on credentials by the SDK.
fn endpoint_url(value: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected http://HOST[:PORT] or https://HOST[:PORT]";
    let rest = value.strip_prefix("http://").or_else(|| value.strip_prefix("https://")).ok_or(EXPECTED)?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || port.is_empty() => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok && !value.contains(char::is_whitespace) {
        Ok(value.to_string())
    } else {
        Err(EXPECTED.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn regions_and_endpoints_are_checked_on_the_command_line() {
        assert!(Cli::try_parse_from(["fargate-stack", "--region", "nowhere-9", "status"]).is_err());
        assert!(Cli::try_parse_from(["fargate-stack", "--region", "eu-west-1", "status"]).is_ok());
        for bad in ["127.0.0.1:5000", "ftp://x", "http://", "http://host:0", "http://host:99999", "http://a b"] {
            assert!(Cli::try_parse_from(["fargate-stack", "--endpoint-url", bad, "status"]).is_err(), "{bad}");
        }
        for good in ["http://127.0.0.1:5000", "https://example.com", "http://localhost:4566/"] {
            assert!(Cli::try_parse_from(["fargate-stack", "--endpoint-url", good, "status"]).is_ok(), "{good}");
        }
    }

    #[test]
    fn since_reads_durations_and_times() {
        use chrono::TimeZone;
        let ago = |s: u64| Since::Ago(std::time::Duration::from_secs(s));
        assert_eq!(since("30s"), Ok(ago(30)));
        assert_eq!(since("10m"), Ok(ago(600)));
        assert_eq!(since("2h"), Ok(ago(7200)));
        assert_eq!(since("7d"), Ok(ago(7 * 86_400)));
        let at = |h: u32, m: u32| Since::At(chrono::Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap());
        assert_eq!(since("2026-11-25T17:00:00Z"), Ok(at(17, 0)));
        assert_eq!(since("2026-11-25T18:00:00+01:00"), Ok(at(17, 0)), "zones are honoured");
        assert_eq!(since("2026-11-25T17:00:00"), Ok(at(17, 0)), "no zone: UTC");
        assert_eq!(since("2026-11-25"), Ok(at(0, 0)));
        for bad in ["", "10", "m", "10x", "-5m", "yesterday", "2026-13-01"] {
            assert!(since(bad).is_err(), "{bad}");
        }
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 17, 10, 0).unwrap();
        assert_eq!(ago(600).start_ms(now), at(17, 0).start_ms(now));
    }

    #[test]
    fn operating_commands_parse() {
        let cli = Cli::try_parse_from(["fargate-stack", "logs", "--since", "2h", "-f", "--filter", "ERROR"]).unwrap();
        let Command::Logs(args) = cli.command else { panic!("logs") };
        assert!(args.follow && args.filter.as_deref() == Some("ERROR"));
        let cli = Cli::try_parse_from(["fargate-stack", "status"]).unwrap();
        assert!(matches!(cli.command, Command::Status(StatusArgs { events: 5, name: None })));
        let cli = Cli::try_parse_from(["fargate-stack", "status", "--name", "app-2"]).unwrap();
        assert!(matches!(cli.command, Command::Status(StatusArgs { name: Some(ref n), .. }) if n == "app-2"));
        assert!(Cli::try_parse_from(["fargate-stack", "status", "--events", "101"]).is_err());
        assert!(Cli::try_parse_from(["fargate-stack", "deploy"]).is_err(), "--image is required");
        assert!(Cli::try_parse_from(["fargate-stack", "deploy", "--image", "nginx latest"]).is_err());
        assert!(Cli::try_parse_from(["fargate-stack", "deploy", "--image", "nginx:1.28", "--no-wait"]).is_ok());
        assert!(Cli::try_parse_from(["fargate-stack", "completions", "fish"]).is_ok());
        assert!(Cli::try_parse_from(["fargate-stack", "completions", "tcsh"]).is_err());
        assert!(Cli::try_parse_from(["fargate-stack", "up", "--dry-run", "--detailed-exitcode"]).is_ok());
        assert!(Cli::try_parse_from(["fargate-stack", "up", "--detailed-exitcode"]).is_err(), "a plan's exit code");
    }

    #[test]
    fn url_check_flags_are_checked_on_the_command_line() {
        let cli =
            Cli::try_parse_from(["fargate-stack", "deploy", "--restart", "--resolve", "*:8080:127.0.0.1"]).unwrap();
        let Command::Deploy(args) = cli.command else { panic!("deploy") };
        assert_eq!(args.verify.resolve[0].to_string(), "*:8080:127.0.0.1");
        assert_eq!(args.verify.verify_timeout, std::time::Duration::from_secs(300), "5 minutes by default");
        let cli = Cli::try_parse_from(["fargate-stack", "up", "--verify-timeout", "90s", "--resolve", "a.b:443:[::1]"]);
        let Command::Up(args) = cli.unwrap().command else { panic!("up") };
        assert_eq!(args.verify.verify_timeout, std::time::Duration::from_secs(90));
        assert!(Cli::try_parse_from(["fargate-stack", "rollback", "--no-verify"]).is_ok());
        for bad in [
            &["up", "--verify-timeout", "0s"][..],
            &["up", "--verify-timeout", "2h"],
            &["up", "--verify-timeout", "soon"],
            &["up", "--resolve", "lb.example:80"],
            &["up", "--resolve", "lb.example:80:not-an-address"],
            &["rollback", "--no-verify", "--resolve", "*:80:127.0.0.1"],
        ] {
            let args = [&["fargate-stack"][..], bad].concat();
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn data_flags_conflict() {
        assert!(Cli::try_parse_from(["fargate-stack", "down", "--delete-data", "--retain-table"]).is_err());
        assert!(Cli::try_parse_from(["fargate-stack", "down", "--no-backup"]).is_err());
        assert!(Cli::try_parse_from(["fargate-stack", "down", "--delete-data", "--no-backup"]).is_ok());
        let cli =
            Cli::try_parse_from(["fargate-stack", "status", "--output", "json", "--region", "us-west-2"]).unwrap();
        assert_eq!(cli.output, OutputFormat::Json);
    }

    #[test]
    fn lock_timeouts_are_durations() {
        let cli = Cli::try_parse_from(["fargate-stack", "up", "--lock-timeout", "5m"]).unwrap();
        assert_eq!(cli.lock_timeout, std::time::Duration::from_secs(300));
        let cli = Cli::try_parse_from(["fargate-stack", "status"]).unwrap();
        assert_eq!(cli.lock_timeout, std::time::Duration::ZERO, "fails at once by default");
        for bad in ["5", "5x", "-1s", "soon"] {
            assert!(Cli::try_parse_from(["fargate-stack", "--lock-timeout", bad, "up"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn state_commands_parse() {
        let cli = Cli::try_parse_from(["fargate-stack", "--state", "s3://b/k.json", "unlock", "abc"]).unwrap();
        assert_eq!(cli.state.as_deref(), Some("s3://b/k.json"));
        assert!(matches!(cli.command, Command::Unlock(UnlockArgs { ref lock_id }) if lock_id == "abc"));
        assert!(Cli::try_parse_from(["fargate-stack", "unlock"]).is_err(), "the lock ID is required");
        let cli = Cli::try_parse_from(["fargate-stack", "state", "init", "s3://b"]).unwrap();
        assert_eq!(cli.command.name(), "state init");
        let cli = Cli::try_parse_from(["fargate-stack", "state", "push", "--local", "x.json"]).unwrap();
        assert_eq!(cli.command.name(), "state push");
        assert_eq!(Cli::try_parse_from(["fargate-stack", "list"]).unwrap().command.name(), "list");
    }
}
