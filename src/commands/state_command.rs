//! `state init`: an S3 bucket made the way a state bucket should be (versioning, default
//! encryption, public access blocked, TLS only); an existing bucket is only checked, never changed.
//! `state push` / `state pull`: move a stack's state from a local file to S3 and back, under both
//! locks, never overwriting a different state.

use std::path::PathBuf;
use std::process::ExitCode;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::{InitArgs, MoveArgs, StateCommand};
use crate::commands::{state_home, CommandError, Setup, EXIT_ATTENTION};
use crate::report::{self, Report, Text};
use crate::resources::network;
use crate::state::location::check_bucket_name;
use crate::state::location::STATE_TAG;
use crate::state::pointer::{self, Pointer};
use crate::state::s3::{classify, Failure, Refused};
use crate::state::{Backend, LocalBackend, S3Backend, State, StateError, StateLocation};

pub async fn run(setup: &Setup, command: &StateCommand) -> Result<ExitCode, CommandError> {
    match command {
        StateCommand::Init(args) => init(setup, args).await,
        StateCommand::Push(args) => push(setup, args).await,
        StateCommand::Pull(args) => pull(setup, args).await,
    }
}

// ---------------------------------------------------------------- init

/// One setting a state bucket should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    Versioning,
    Encryption,
    PublicAccessBlock,
    TlsOnlyPolicy,
}

impl Setting {
    const ALL: [Setting; 4] =
        [Setting::PublicAccessBlock, Setting::Versioning, Setting::Encryption, Setting::TlsOnlyPolicy];

    fn label(self) -> &'static str {
        match self {
            Setting::Versioning => "versioning",
            Setting::Encryption => "default encryption",
            Setting::PublicAccessBlock => "public access blocked",
            Setting::TlsOnlyPolicy => "TLS-only bucket policy",
        }
    }

    /// Why a state bucket needs it.
    fn why(self) -> &'static str {
        match self {
            Setting::Versioning => "every earlier state stays recoverable",
            Setting::Encryption => "states are encrypted at rest",
            Setting::PublicAccessBlock => "no policy or ACL can make states public",
            Setting::TlsOnlyPolicy => "requests without TLS are refused",
        }
    }

    /// How to add it by hand, for a bucket that exists (this tool never changes one).
    fn fix(self, bucket: &str, partition: &str) -> String {
        match self {
            Setting::Versioning => {
                format!("aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled")
            }
            Setting::Encryption => format!(
                "aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration \
                 '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}'"
            ),
            Setting::PublicAccessBlock => format!(
                "aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration \
                 BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
            ),
            Setting::TlsOnlyPolicy => format!(
                "add this statement to the bucket policy (aws s3api get-bucket-policy / put-bucket-policy --bucket {bucket}): {}",
                tls_statement(bucket, partition)
            ),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SettingCheck {
    pub setting: Setting,
    pub ok: bool,
    /// What the bucket has (e.g. `Enabled`, `AES256`), or why it could not be checked.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct InitReport {
    pub bucket: String,
    pub region: String,
    /// The account the bucket belongs to, named in every state call (`ExpectedBucketOwner`).
    pub owner: String,
    /// This run created the bucket (false: it existed and was only checked).
    pub created: bool,
    pub ok: bool,
    pub settings: Vec<SettingCheck>,
    /// The `--state` value (or `FARGATE_STACK_STATE`, or `state` in the config) that keeps each
    /// stack's state here.
    pub state: String,
}

impl Report for InitReport {
    const COMMAND: &'static str = "state init";

    fn render(&self, text: &mut Text) {
        text.line(if self.created {
            format!("created bucket {} in {} for fargate-stack states", self.bucket, self.region)
        } else {
            format!("bucket {} exists in {}: checked it, changed nothing", self.bucket, self.region)
        });
        let rows: Vec<Vec<String>> = self
            .settings
            .iter()
            .map(|s| {
                vec![
                    format!("  {}", s.setting.label()),
                    if s.ok { "ok".into() } else { "MISSING".into() },
                    // What it does when on; what is lost when off.
                    if s.ok {
                        format!("{} ({})", s.detail, s.setting.why())
                    } else {
                        format!("{}: needed so that {}", s.detail, s.setting.why())
                    },
                ]
            })
            .collect();
        text.table(&rows);
        text.line(format!(
            "owner: account {} (every state call names it: should the bucket name ever be another account's, S3 \
             refuses the call)",
            self.owner
        ));
        for s in self.settings.iter().filter(|s| !s.ok) {
            if let Some(fix) = &s.fix {
                text.line(format!("to add {}: {fix}", s.setting.label()));
            }
        }
        let how = format!("--state {0}  (or FARGATE_STACK_STATE={0}, or state = \"{0}\" in the config)", self.state);
        text.line(if self.ok {
            format!("use it with: {how}")
        } else {
            format!("not ready for states: once the settings marked MISSING are added, use it with: {how}")
        });
    }
}

/// The AWS partition of a region, for ARNs.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Deny every request to the bucket and its objects that does not use TLS.
fn tls_statement(bucket: &str, partition: &str) -> Value {
    json!({
        "Sid": "DenyRequestsWithoutTLS",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:{partition}:s3:::{bucket}"), format!("arn:{partition}:s3:::{bucket}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    })
}

fn tls_policy(bucket: &str, partition: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [tls_statement(bucket, partition)]}).to_string()
}

/// Does the policy deny, to everyone, every S3 action on the bucket's objects without TLS?
fn denies_insecure_transport(policy: &str, bucket: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else { return false };
    let list = |v: &Value| -> Vec<Value> {
        match v {
            Value::Array(items) => items.clone(),
            Value::Null => vec![],
            other => vec![other.clone()],
        }
    };
    let strings =
        |v: &Value| -> Vec<String> { list(v).iter().filter_map(|x| x.as_str().map(str::to_string)).collect() };
    list(&doc["Statement"]).iter().any(|st| {
        let everyone = st["Principal"] == "*" || strings(&st["Principal"]["AWS"]).iter().any(|p| p == "*");
        let all_actions = strings(&st["Action"]).iter().any(|a| a == "s3:*" || a == "*");
        let objects = strings(&st["Resource"]).iter().any(|r| {
            r == "*"
                || r.strip_prefix("arn:")
                    .and_then(|r| r.split_once(":s3:::"))
                    .is_some_and(|(_, b)| b == format!("{bucket}/*"))
        });
        let insecure = list(&st["Condition"]["Bool"]["aws:SecureTransport"])
            .iter()
            .any(|v| v == &Value::Bool(false) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("false")));
        st["Effect"] == "Deny" && everyone && all_actions && objects && insecure
    })
}

/// `s3://BUCKET[/PREFIX]` → the bucket and the `--state` value for stacks kept under it.
fn parse_init_uri(uri: &str) -> Result<(String, String), CommandError> {
    let bad = |reason: String| CommandError::State(StateError::BadLocation { value: uri.to_string(), reason });
    let rest = uri
        .strip_prefix("s3://")
        .or_else(|| uri.strip_prefix("S3://"))
        .ok_or_else(|| bad("`state init` takes s3://BUCKET or s3://BUCKET/PREFIX".into()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    check_bucket_name(bucket).map_err(bad)?;
    let prefix = prefix.trim_end_matches('/');
    let state = if prefix.is_empty() { format!("s3://{bucket}/") } else { format!("s3://{bucket}/{prefix}/") };
    // The same checks as any state location.
    StateLocation::parse(&state, "stack", None)?;
    Ok((bucket.to_string(), state))
}

async fn init(setup: &Setup, args: &InitArgs) -> Result<ExitCode, CommandError> {
    let (bucket, state) = parse_init_uri(&args.uri)?;
    let s3 = &setup.clients.s3;
    let region = setup.region.as_str();
    let uri = format!("s3://{bucket}");
    let owner = setup.bucket_owner().await?.to_string();
    let exists = match s3.head_bucket().bucket(&bucket).expected_bucket_owner(&owner).send().await {
        Ok(out) => match out.bucket_region() {
            Some(r) if r != region => {
                return Err(StateError::WrongRegion {
                    bucket: bucket.clone(),
                    bucket_region: r.to_string(),
                    region: region.to_string(),
                }
                .into())
            }
            _ => true,
        },
        Err(err) => match classify(err, &bucket, region, "check the bucket", &uri, "s3:ListBucket on the bucket") {
            Failure::Refused(Refused::Missing) => false,
            Failure::Fatal(e @ StateError::Denied { .. }) => {
                return Err(setup.bucket(&bucket).await?.foreign().await.unwrap_or(e).into())
            }
            Failure::Fatal(e) => return Err(e.into()),
            Failure::Refused(Refused::Precondition) | Failure::Race => {
                return Err(StateError::Remote {
                    action: "check the bucket",
                    object: uri,
                    message: "S3 answered HeadBucket with a conflict".into(),
                }
                .into())
            }
        },
    };
    let mut problems: Vec<(Setting, String)> = vec![];
    if !exists {
        // A new bucket is the caller's: it cannot be the account named by --state-bucket-owner.
        let caller = setup.caller_account().await?;
        if caller != owner {
            return Err(CommandError::Usage(format!(
                "bucket {bucket} does not exist, and `state init` would create it in your account {caller}, not in \
                 account {owner} (--state-bucket-owner): run it with credentials of account {owner}, or without \
                 --state-bucket-owner"
            )));
        }
        create_bucket(setup, &bucket).await?;
        // Public access is blocked before the policy goes on, so the bucket is never open.
        for setting in Setting::ALL {
            if let Err(e) = apply(setup, &bucket, &owner, setting).await {
                problems.push((setting, e));
            }
        }
    }
    let mut settings = vec![];
    for setting in Setting::ALL {
        let (ok, detail) = match problems.iter().find(|(s, _)| *s == setting) {
            Some((_, why)) => (false, format!("could not be set: {why}")),
            None => check(setup, &bucket, &owner, setting).await?,
        };
        let fix = (!ok).then(|| setting.fix(&bucket, partition(region)));
        settings.push(SettingCheck { setting, ok, detail, fix });
    }
    let ok = settings.iter().all(|s| s.ok);
    let report = InitReport { bucket, region: region.to_string(), owner, created: !exists, ok, settings, state };
    report::emit(setup.format, &report);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(EXIT_ATTENTION) })
}

async fn create_bucket(setup: &Setup, bucket: &str) -> Result<(), CommandError> {
    let region = setup.region.as_str();
    let mut call = setup.clients.s3.create_bucket().bucket(bucket);
    // us-east-1 is S3's default location and takes no constraint.
    if region != "us-east-1" {
        call = call.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build(),
        );
    }
    match call.send().await {
        Ok(_) => Ok(()),
        Err(err) if err.code() == Some("BucketAlreadyExists") => Err(CommandError::Refused(format!(
            "bucket name {bucket} is taken by another AWS account (bucket names are global): choose another name"
        ))),
        Err(err) if err.code() == Some("InvalidBucketName") => Err(StateError::BadLocation {
            value: format!("s3://{bucket}"),
            reason: format!("S3 refuses the bucket name: {}", err.message().unwrap_or("InvalidBucketName")),
        }
        .into()),
        Err(err) => {
            match classify(err, bucket, region, "create bucket", &format!("s3://{bucket}"), "s3:CreateBucket") {
                Failure::Fatal(e) => Err(e.into()),
                _ => Err(CommandError::Refused(format!("S3 refused to create bucket {bucket}"))),
            }
        }
    }
}

/// Put one setting on a bucket this run created; the error as a line.
async fn apply(setup: &Setup, bucket: &str, owner: &str, setting: Setting) -> Result<(), String> {
    let s3 = &setup.clients.s3;
    let sent = match setting {
        Setting::PublicAccessBlock => s3
            .put_public_access_block()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| (e.code().map(str::to_string), error_text(&e))),
        Setting::Versioning => s3
            .put_bucket_versioning()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| (e.code().map(str::to_string), error_text(&e))),
        Setting::Encryption => {
            let by_default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build()
                .expect("the algorithm is set");
            let configuration = ServerSideEncryptionConfiguration::builder()
                .rules(ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build())
                .build()
                .expect("the rules are set");
            s3.put_bucket_encryption()
                .bucket(bucket)
                .expected_bucket_owner(owner)
                .server_side_encryption_configuration(configuration)
                .send()
                .await
                .map(drop)
                .map_err(|e| (e.code().map(str::to_string), error_text(&e)))
        }
        Setting::TlsOnlyPolicy => s3
            .put_bucket_policy()
            .bucket(bucket)
            .expected_bucket_owner(owner)
            .policy(tls_policy(bucket, partition(&setup.region)))
            .send()
            .await
            .map(drop)
            .map_err(|e| (e.code().map(str::to_string), error_text(&e))),
    };
    sent.map_err(|(code, message)| format!("{}: {message}", code.unwrap_or_else(|| "error".into())))
}

/// AWS's message, or what the SDK says went wrong (an answer it could not read, a dead connection).
fn error_text<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    const MAX: usize = 200;
    match err.message() {
        Some(message) => message.to_string(),
        None => {
            let text = DisplayErrorContext(err).to_string();
            match text.char_indices().nth(MAX) {
                Some((cut, _)) => format!("{}… (-v for details)", &text[..cut]),
                None => text,
            }
        }
    }
}

/// Whether default encryption is configured, and with which algorithms.
fn encryption(config: Option<&ServerSideEncryptionConfiguration>) -> (bool, String) {
    let algorithms = crate::resources::access_logs::sse_algorithms(config);
    (!algorithms.is_empty(), if algorithms.is_empty() { "no rule".into() } else { algorithms.join(", ") })
}

/// Whether all four public access blocks are on, else which are off.
fn public_access_block(c: Option<&PublicAccessBlockConfiguration>) -> (bool, String) {
    let flags = [
        ("BlockPublicAcls", c.and_then(|c| c.block_public_acls())),
        ("IgnorePublicAcls", c.and_then(|c| c.ignore_public_acls())),
        ("BlockPublicPolicy", c.and_then(|c| c.block_public_policy())),
        ("RestrictPublicBuckets", c.and_then(|c| c.restrict_public_buckets())),
    ];
    let off: Vec<&str> = flags.iter().filter(|(_, v)| *v != Some(true)).map(|(n, _)| *n).collect();
    (off.is_empty(), if off.is_empty() { "all four on".into() } else { format!("off: {}", off.join(", ")) })
}

/// Whether the bucket has the setting, and what it has.
async fn check(setup: &Setup, bucket: &str, owner: &str, setting: Setting) -> Result<(bool, String), CommandError> {
    let s3 = &setup.clients.s3;
    // A setting never configured answers with its own "not found" code; no permission to read it
    // is reported as unknown, not as an error of the whole check.
    let unknown = |code: Option<&str>, message: String, permission: &str| -> Result<(bool, String), CommandError> {
        match code {
            Some("NoSuchBucket") => {
                Err(StateError::NoBucket { bucket: bucket.to_string(), location: format!("s3://{bucket}") }.into())
            }
            Some(
                "ServerSideEncryptionConfigurationNotFoundError"
                | "NoSuchPublicAccessBlockConfiguration"
                | "NoSuchBucketPolicy",
            ) => Ok((false, "not configured".into())),
            Some("AccessDenied") => Ok((false, format!("cannot check it: no permission ({permission})"))),
            _ => Ok((false, format!("cannot check it: {}: {}", code.unwrap_or("error"), message))),
        }
    };
    match setting {
        Setting::Versioning => {
            match s3.get_bucket_versioning().bucket(bucket).expected_bucket_owner(owner).send().await {
                Ok(out) => {
                    let status = out.status().map_or("never enabled", |s| s.as_str()).to_string();
                    Ok((out.status() == Some(&BucketVersioningStatus::Enabled), status))
                }
                Err(e) => unknown(e.code(), error_text(&e), "s3:GetBucketVersioning"),
            }
        }
        Setting::Encryption => {
            match s3.get_bucket_encryption().bucket(bucket).expected_bucket_owner(owner).send().await {
                Ok(out) => Ok(encryption(out.server_side_encryption_configuration())),
                Err(e) => unknown(e.code(), error_text(&e), "s3:GetEncryptionConfiguration"),
            }
        }
        Setting::PublicAccessBlock => {
            match s3.get_public_access_block().bucket(bucket).expected_bucket_owner(owner).send().await {
                Ok(out) => Ok(public_access_block(out.public_access_block_configuration())),
                Err(e) => unknown(e.code(), error_text(&e), "s3:GetBucketPublicAccessBlock"),
            }
        }
        Setting::TlsOnlyPolicy => match s3.get_bucket_policy().bucket(bucket).expected_bucket_owner(owner).send().await
        {
            Ok(out) => {
                let ok = out.policy().is_some_and(|p| denies_insecure_transport(p, bucket));
                Ok((
                    ok,
                    if ok {
                        "denies aws:SecureTransport = false".into()
                    } else {
                        "no statement denying requests without TLS".into()
                    },
                ))
            }
            Err(e) => unknown(e.code(), error_text(&e), "s3:GetBucketPolicy"),
        },
    }
}

// ---------------------------------------------------------------- push / pull

/// What `state push` / `state pull` moved.
#[derive(Debug, Serialize)]
pub struct MoveReport {
    pub stack: String,
    pub from: String,
    pub to: String,
    pub resources: usize,
    /// False when the destination already held exactly this state.
    pub written: bool,
    /// Where the moved-away local file was kept (`state push`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// The pointer to the new location left at the local state's path (`state push`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The stack's VPC, now tagged with where its state lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tagged: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PushReport {
    #[serde(flatten)]
    pub moved: MoveReport,
}

#[derive(Debug, Serialize)]
pub struct PullReport {
    #[serde(flatten)]
    pub moved: MoveReport,
}

impl Report for PushReport {
    const COMMAND: &'static str = "state push";

    fn render(&self, text: &mut Text) {
        self.moved.render(text);
    }
}

impl Report for PullReport {
    const COMMAND: &'static str = "state pull";

    fn render(&self, text: &mut Text) {
        self.moved.render(text);
    }
}

impl MoveReport {
    fn render(&self, text: &mut Text) {
        let how = if self.written { "moved" } else { "already there; removed the source" };
        text.line(format!(
            "state of stack {} ({} resources) {how}: {} → {}",
            self.stack, self.resources, self.from, self.to
        ));
        if let Some(backup) = &self.backup {
            text.line(format!("  the local file was kept as {backup} (read by nothing; delete it when you like)"));
        }
        if let Some(pointer) = &self.pointer {
            text.line(format!(
                "  {pointer} now points to {0}: runs in this directory use it; elsewhere run with --state {0} (or \
                 FARGATE_STACK_STATE, or `state` in the config)",
                self.to
            ));
        }
        if let Some(vpc) = &self.tagged {
            text.line(format!("  the stack's VPC {vpc} now says its state lives at {} ({STATE_TAG})", self.to));
        }
    }
}

/// The S3 location of this run (a push's destination, a pull's source).
fn remote(setup: &Setup, verb: &str) -> Result<(String, String), CommandError> {
    match &setup.state {
        StateLocation::S3 { bucket, key } => Ok((bucket.clone(), key.clone())),
        StateLocation::Local(_) => Err(CommandError::Usage(format!(
            "`state {verb}` needs the S3 location: pass --state s3://BUCKET/KEY (or set FARGATE_STACK_STATE, or \
             `state` in the config)"
        ))),
    }
}

fn local_path(setup: &Setup, args: &MoveArgs) -> PathBuf {
    args.local.clone().unwrap_or_else(|| match StateLocation::default_for(&setup.config.name) {
        StateLocation::Local(path) => path,
        StateLocation::S3 { .. } => unreachable!("the default is local"),
    })
}

/// Tag the stack's VPC (the recorded one, else the one found by tag) with the state's new home.
async fn retag(setup: &Setup, state: &State, location: &str) -> Result<Option<String>, CommandError> {
    let vpc = match state.id(&network::VPC.to_string()) {
        Some(vpc) => Some(vpc),
        None => state_home::find(setup).await?.map(|home| home.vpc),
    };
    let Some(vpc) = vpc else { return Ok(None) };
    match state_home::set(setup, &vpc, location).await {
        Ok(()) => Ok(Some(vpc)),
        // A recorded VPC deleted outside the tool: nothing to tag.
        Err(CommandError::Stack(e)) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn push(setup: &Setup, args: &MoveArgs) -> Result<ExitCode, CommandError> {
    let (bucket, key) = remote(setup, "push")?;
    let path = local_path(setup, args);
    let (stack, region) = (&setup.config.name, &setup.region);
    if let Some(pointer) = pointer::read(&path)? {
        return Err(CommandError::Usage(format!(
            "no local state at {}: nothing to push (it is the pointer to {} that `state push` left)",
            path.display(),
            pointer.moved_to
        )));
    }
    let local_location = path.display().to_string();
    let (local, state, interrupted) =
        setup.locking(&local_location, || async { LocalBackend::open(&path, stack, region) }).await?;
    if !local.exists() {
        local.release().await;
        return Err(CommandError::Usage(format!("no local state at {}: nothing to push", path.display())));
    }
    if let Some(holder) = interrupted {
        eprintln!("note: the last run on {} ({holder}) did not finish; pushing what it recorded", path.display());
    }
    let result = async {
        let bucket = setup.bucket(&bucket).await?;
        let (s3, existing) =
            setup.locking(&setup.location(), || S3Backend::open(bucket.clone(), &key, stack, setup.command)).await?;
        let moved = async {
            let written = if !s3.exists() {
                s3.save(&state).await?;
                true
            } else if existing == state {
                false
            } else {
                return Err(CommandError::Refused(format!(
                    "{} already holds a different state of stack {stack} ({} resources, local {} has {}): nothing was \
                     moved; `state pull` it, or compare the two and remove one",
                    s3.location(),
                    existing.resources.len(),
                    path.display(),
                    state.resources.len()
                )));
            };
            // The stack's resources say where its state lives, before this directory stops holding it.
            let tagged = retag(setup, &state, &s3.location()).await?;
            let backup = local.set_aside("pushed")?;
            pointer::write(&path, &Pointer::new(stack, region, &s3.location()))?;
            Ok(MoveReport {
                stack: stack.clone(),
                from: path.display().to_string(),
                to: s3.location(),
                resources: state.resources.len(),
                written,
                backup: Some(backup.display().to_string()),
                pointer: Some(path.display().to_string()),
                tagged,
            })
        }
        .await;
        s3.release().await;
        moved
    }
    .await;
    local.release().await;
    report::emit(setup.format, &PushReport { moved: result? });
    Ok(ExitCode::SUCCESS)
}

async fn pull(setup: &Setup, args: &MoveArgs) -> Result<ExitCode, CommandError> {
    let (bucket, key) = remote(setup, "pull")?;
    let path = local_path(setup, args);
    let (stack, region) = (&setup.config.name, &setup.region);
    let bucket = setup.bucket(&bucket).await?;
    let (s3, state) =
        setup.locking(&setup.location(), || S3Backend::open(bucket.clone(), &key, stack, setup.command)).await?;
    let result = async {
        if !s3.exists() {
            return Err(CommandError::Usage(format!("no state at {}: nothing to pull", s3.location())));
        }
        // The pointer a push left here gives way to the state it points to.
        if let Some(pointer) = pointer::read(&path)? {
            if pointer.moved_to != s3.location() {
                return Err(CommandError::Refused(format!(
                    "{} points to {}, not {}: nothing was moved; pull from that location, or remove the pointer",
                    path.display(),
                    pointer.moved_to,
                    s3.location()
                )));
            }
            std::fs::remove_file(&path).map_err(|source| StateError::Io {
                action: "remove",
                path: path.clone(),
                source,
            })?;
        }
        let local_location = path.display().to_string();
        let (local, existing, _) =
            setup.locking(&local_location, || async { LocalBackend::open(&path, stack, region) }).await?;
        let moved = async {
            let written = if !local.exists() {
                local.save(&state).await?;
                true
            } else if existing == state {
                false
            } else {
                return Err(CommandError::Refused(format!(
                    "{} already holds a different state of stack {stack} ({} resources, {} has {}): nothing was \
                     moved; compare the two and remove one",
                    path.display(),
                    existing.resources.len(),
                    s3.location(),
                    state.resources.len()
                )));
            };
            let tagged = retag(setup, &state, &path.display().to_string()).await?;
            s3.remove().await?;
            Ok(MoveReport {
                stack: stack.clone(),
                from: s3.location(),
                to: path.display().to_string(),
                resources: state.resources.len(),
                written,
                backup: None,
                pointer: None,
                tagged,
            })
        }
        .await;
        local.release().await;
        moved
    }
    .await;
    s3.release().await;
    report::emit(setup.format, &PullReport { moved: result? });
    Ok(ExitCode::SUCCESS)
}

/// What `state init` calls on the bucket (HeadBucket is authorised as s3:ListBucket); `push` and
/// `pull` use the S3 backend's and re-tag the VPC (`state_home`).
pub fn permissions() -> Vec<crate::access::Permission> {
    let bucket = "arn:{partition}:s3:::{state_bucket}";
    [
        "s3:ListBucket",
        "s3:CreateBucket",
        "s3:PutBucketPublicAccessBlock",
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketVersioning",
        "s3:GetBucketVersioning",
        "s3:PutEncryptionConfiguration",
        "s3:GetEncryptionConfiguration",
        "s3:PutBucketPolicy",
        "s3:GetBucketPolicy",
    ]
    .into_iter()
    .map(|action| crate::access::Permission::new(crate::access::Verb::Admin, action).on(bucket))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_policy_is_recognized_and_others_are_not() {
        let ours = tls_policy("team-state", "aws");
        assert!(denies_insecure_transport(&ours, "team-state"));
        assert!(!denies_insecure_transport(&ours, "other-bucket"), "another bucket's statement");
        // The shapes people write by hand: a single statement, {"AWS": "*"}, a boolean, a list of actions.
        let by_hand = r#"{"Statement": {"Effect": "Deny", "Principal": {"AWS": ["*"]}, "Action": ["s3:*"],
            "Resource": "arn:aws:s3:::team-state/*", "Condition": {"Bool": {"aws:SecureTransport": false}}}}"#;
        assert!(denies_insecure_transport(by_hand, "team-state"));
        let allow = ours.replace("Deny", "Allow");
        assert!(!denies_insecure_transport(&allow, "team-state"));
        let only_gets = ours.replace("\"s3:*\"", "\"s3:GetObject\"");
        assert!(!denies_insecure_transport(&only_gets, "team-state"));
        assert!(!denies_insecure_transport("not json", "team-state"));
        assert!(tls_policy("b", partition("cn-north-1")).contains("arn:aws-cn:s3:::b/*"));
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }

    #[test]
    fn init_takes_a_bucket_and_an_optional_prefix() {
        assert_eq!(parse_init_uri("s3://team-state").unwrap(), ("team-state".into(), "s3://team-state/".into()));
        assert_eq!(
            parse_init_uri("s3://team-state/envs/prod/").unwrap(),
            ("team-state".into(), "s3://team-state/envs/prod/".into())
        );
        for bad in ["team-state", "s3://", "s3://Team", "s3://team-state//x", "gs://team-state"] {
            assert!(parse_init_uri(bad).is_err(), "{bad}");
        }
        let fix = Setting::TlsOnlyPolicy.fix("b", "aws");
        assert!(fix.contains("aws:SecureTransport") && fix.contains("arn:aws:s3:::b/*"), "{fix}");
    }
}
