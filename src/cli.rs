//! The command line: global flags and the subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  fargate-stack up                          # create the built-in stack in your default region
  fargate-stack --region eu-west-1 status   # what is running, checked live
  fargate-stack --config prod.toml up --dry-run
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

    #[command(subcommand)]
    pub command: Command,
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
        after_help = "Example:\n  fargate-stack up            # prints the URL and the table name when done\n  fargate-stack up --dry-run  # show what would change, change nothing"
    )]
    Up(UpArgs),
    /// Delete everything the state file records, in a safe order.
    #[command(
        after_help = "Example:\n  fargate-stack down                 # asks for confirmation on a terminal\n  fargate-stack down --yes --retain-table\n\nA table that holds items is never deleted unless --delete-data is given (a backup is made first\nunless --no-backup); --retain-table keeps it with deletion protection on."
    )]
    Down(DownArgs),
    /// Show every resource's live status and the stack's outputs. Exit 0 when all is ok, 3 when
    /// something is missing or drifted, 1 on error.
    #[command(after_help = "Example:\n  fargate-stack status\n  fargate-stack status --output json | jq .outputs.url")]
    Status,
    /// Every fargate-stack stack in the region, found by its `fargate-stack:stack` tag (no state
    /// needed): name, status (up, deploying, partial, drifted, retained), URL and creation time.
    #[command(
        after_help = "Example:\n  fargate-stack --region eu-west-1 list\n  fargate-stack list --output json | jq -r '.stacks[].name'"
    )]
    List,
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
            Command::Status => "status",
            Command::List => "list",
            Command::Unlock(_) => "unlock",
            Command::State(StateCommand::Init(_)) => "state init",
            Command::State(StateCommand::Push(_)) => "state push",
            Command::State(StateCommand::Pull(_)) => "state pull",
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

fn region(value: &str) -> Result<String, String> {
    if crate::config::is_region_name(value) {
        Ok(value.to_string())
    } else {
        Err("expected an AWS region name such as us-east-1".into())
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
    fn data_flags_conflict() {
        assert!(Cli::try_parse_from(["fargate-stack", "down", "--delete-data", "--retain-table"]).is_err());
        assert!(Cli::try_parse_from(["fargate-stack", "down", "--no-backup"]).is_err());
        assert!(Cli::try_parse_from(["fargate-stack", "down", "--delete-data", "--no-backup"]).is_ok());
        let cli =
            Cli::try_parse_from(["fargate-stack", "status", "--output", "json", "--region", "us-west-2"]).unwrap();
        assert_eq!(cli.output, OutputFormat::Json);
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
