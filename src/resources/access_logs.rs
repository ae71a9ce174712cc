//! The S3 bucket the load balancer writes its access logs to (Security Hub ELB.5), when the stack
//! owns it: private (public access blocked, BucketOwnerEnforced), SSE-S3 encrypted (the only
//! encryption ELB access logs support), TLS only, ELB allowed to write under `AWSLogs/<account>/`,
//! each log expired after `load_balancer.access_logs_expiration_days`. `down` deletes it only when
//! it is empty, or with `--delete-data` (emptied first); else it keeps it and says so. A bucket the
//! config names is the user's: checked ([`check_given_bucket`]), never changed or deleted.

use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration, Delete, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectIdentifier, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::access::{self, global_arn, Permission, STACK};
use crate::aws::Clients;
use crate::bill::{items, Charge, Unit};
use crate::config::Config;
use crate::context::STACK_TAG;
use crate::error::aws::POLICY_HINT;
use crate::error::{found, AwsContext, StackError};
use crate::model::{
    owner_tags, Attr, Changed, Dep, Diff, Field, Health, Inspection, Key, Kind, Lifecycle, Managed, Nodes, Outcome,
    Record, Retention, Scope, Shape, Sighting, Sweep, RETAINED,
};
use crate::policy::{any_of, glob, partition, statements};
use crate::progress::Line;
use crate::resources::table::DataPolicy;
use crate::resources::tags::TagPairs;

pub const ACCESS_LOG_BUCKET: Key = Key::new("access-log-bucket", Kind::new("s3:bucket"));
/// Set when `down` kept it because it holds logs.
const BUCKET_RETAINED: Attr = Attr::new(ACCESS_LOG_BUCKET, RETAINED);

/// The stack's own bucket, when the config asks for it or a state records it.
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    if shape.config().load_balancer.owns_access_log_bucket()
        || shape.discovering_all()
        || shape.holds(ACCESS_LOG_BUCKET)
    {
        nodes.managed(AccessLogBucket);
    }
}

const NAME_INFIX: &str = "-alb-logs-";

/// The bucket's name, unique in S3's global namespace: `<stack>-alb-logs-<account>-<region>`
/// (at most 20 + 10 + 12 + 1 + 14 = 57 of S3's 63 characters).
pub fn bucket_name(stack: &str, account: &str, region: &str) -> String {
    format!("{stack}{NAME_INFIX}{account}-{region}")
}

/// The stack a bucket of this region is named for.
fn stack_of(name: &str, region: &str) -> Option<String> {
    let rest = name.strip_suffix(region)?.strip_suffix('-')?;
    let (stack, account) = rest.rsplit_once(NAME_INFIX)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !stack.is_empty()).then(|| stack.to_string())
}

/// The caller's account, asked once a run (GetCallerIdentity needs no permission).
#[derive(Default)]
struct Account(tokio::sync::OnceCell<String>);

async fn account(ctx: &Scope<'_>) -> Result<String, StackError> {
    let cell = ctx.run::<Account>();
    let account = cell
        .0
        .get_or_try_init(|| async {
            let me = ctx.aws.sts.get_caller_identity().send().await.ctx("find the account of", "the credentials")?;
            Ok::<_, StackError>(me.account().unwrap_or_default().to_string())
        })
        .await?;
    Ok(account.clone())
}

/// Who writes the logs, as AWS documents it per region ("Enable access logs for your Application
/// Load Balancer", step 2): in the Regions available before August 2022, the Elastic Load Balancing
/// account of the region; in every later Region, the log delivery service principal.
fn elb_principal(region: &str) -> Value {
    const ELB_ACCOUNTS: &[(&str, &str)] = &[
        ("us-east-1", "127311923021"),
        ("us-east-2", "033677994240"),
        ("us-west-1", "027434742980"),
        ("us-west-2", "797873946194"),
        ("af-south-1", "098369216593"),
        ("ap-east-1", "754344448648"),
        ("ap-southeast-3", "589379963580"),
        ("ap-south-1", "718504428378"),
        ("ap-northeast-3", "383597477331"),
        ("ap-northeast-2", "600734575887"),
        ("ap-southeast-1", "114774131450"),
        ("ap-southeast-2", "783225319266"),
        ("ap-northeast-1", "582318560864"),
        ("ca-central-1", "985666609251"),
        ("eu-central-1", "054676820928"),
        ("eu-west-1", "156460612806"),
        ("eu-west-2", "652711504416"),
        ("eu-south-1", "635631232127"),
        ("eu-west-3", "009996457667"),
        ("eu-north-1", "897822967062"),
        ("me-south-1", "076674570225"),
        ("sa-east-1", "507241528517"),
        ("us-gov-west-1", "048591011584"),
        ("us-gov-east-1", "190560391635"),
        ("cn-north-1", "638102146993"),
        ("cn-northwest-1", "037604701340"),
    ];
    match ELB_ACCOUNTS.iter().find(|(r, _)| *r == region) {
        Some((_, elb)) => json!({ "AWS": format!("arn:{}:iam::{elb}:root", partition(region)) }),
        None => json!({ "Service": "logdelivery.elasticloadbalancing.amazonaws.com" }),
    }
}

/// Where ELB writes: `<bucket>/<prefix>/AWSLogs/<account>/*`.
fn log_objects(bucket: &str, prefix: &str, account: &str, region: &str) -> String {
    let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
    format!("arn:{}:s3:::{bucket}/{prefix}AWSLogs/{account}/*", partition(region))
}

/// The stack's bucket policy: ELB may write its logs; nothing may reach the bucket without TLS.
fn bucket_policy(bucket: &str, account: &str, region: &str) -> String {
    let bucket_arn = format!("arn:{}:s3:::{bucket}", partition(region));
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ElbWritesAccessLogs",
                "Effect": "Allow",
                "Principal": elb_principal(region),
                "Action": "s3:PutObject",
                "Resource": log_objects(bucket, "", account, region),
            },
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn.clone(), format!("{bucket_arn}/*")],
                "Condition": { "Bool": { "aws:SecureTransport": "false" } },
            },
        ],
    })
    .to_string()
}

/// Does `policy` let ELB put a log object under `prefix`: an Allow of `s3:PutObject` to the
/// region's ELB principal on that key, and no Deny without a condition on it?
pub fn grants_elb_write(policy: &str, bucket: &str, prefix: &str, account: &str, region: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else { return false };
    let object = log_objects(bucket, prefix, account, region).replace('*', "elasticloadbalancing/x.log.gz");
    let principal = elb_principal(region);
    let statements = statements(&doc);
    let covers = |st: &Value| {
        let action = any_of(st.get("Action"), |a| glob(&a.to_ascii_lowercase(), "s3:putobject"));
        let resource = any_of(st.get("Resource"), |r| glob(r, &object));
        let who = match st.get("Principal") {
            Some(Value::String(s)) => s == "*",
            Some(p) => principal.as_object().into_iter().flatten().any(|(kind, want)| {
                let want = want.as_str().unwrap_or_default();
                let elb_account = want.split(':').nth(4).unwrap_or("-");
                any_of(p.get(kind), |have| have == want || have == elb_account || have == "*")
            }),
            None => false,
        };
        action && resource && who
    };
    let effect = |st: &Value, e: &str| st.get("Effect").and_then(Value::as_str) == Some(e);
    let allowed = statements.iter().any(|st| effect(st, "Allow") && st.get("Condition").is_none() && covers(st));
    let denied = statements.iter().any(|st| effect(st, "Deny") && st.get("Condition").is_none() && covers(st));
    allowed && !denied
}

/// `up`, before any change, with `access_logs = { bucket, prefix }`: the user's bucket lets ELB
/// write there (AWS would refuse the load balancer's attributes with "Access Denied for bucket").
pub async fn check_given_bucket(ctx: &Scope<'_>) -> Result<(), StackError> {
    let Some(given) = ctx.config.load_balancer.given_access_log_bucket() else { return Ok(()) };
    let account = account(ctx).await?;
    let bucket = given.bucket.as_str();
    let policy = ctx.aws.s3.get_bucket_policy().bucket(bucket).send().await;
    let policy = match policy.ctx("read the policy of bucket", bucket) {
        Ok(out) => out.policy().map(str::to_string),
        Err(e) if e.has_code(&["NoSuchBucketPolicy"]) => None,
        Err(e) if e.has_code(&["NoSuchBucket"]) => {
            return Err(StackError::Refused(format!(
                "load_balancer.access_logs: bucket {bucket} does not exist; create it in {} or set access_logs = true \
                 for a bucket of the stack's own",
                ctx.region
            )))
        }
        Err(e) => return Err(e),
    };
    if policy.as_deref().is_some_and(|p| grants_elb_write(p, bucket, &given.prefix, &account, ctx.region)) {
        return Ok(());
    }
    let statement = json!({
        "Effect": "Allow",
        "Principal": elb_principal(ctx.region),
        "Action": "s3:PutObject",
        "Resource": log_objects(bucket, &given.prefix, &account, ctx.region),
    });
    Err(StackError::Refused(format!(
        "load_balancer.access_logs: the policy of bucket {bucket} does not let Elastic Load Balancing write the \
         access logs (AWS refuses them with \"Access Denied for bucket\"); nothing was changed. Add this statement \
         to it: {statement}"
    )))
}

/// Every bucket of this region named as a stack's access-log bucket, with its tags.
fn sweep_buckets(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let client = &c.s3;
        let region = client.config().region().map(|r| r.to_string()).unwrap_or_default();
        let out = c.s3.list_buckets().send().await.ctx("list", "S3 buckets")?;
        let mut sightings = vec![];
        for bucket in out.buckets() {
            let Some(name) = bucket.name() else { continue };
            let Some(stack) = stack_of(name, &region) else { continue };
            let tags = tags_of(c, name).await?;
            let sighting = Sighting::new(ACCESS_LOG_BUCKET.kind(), name)
                .named(name, |_| Some(stack.clone()))
                .owned(owner_tags(tags.pairs()))
                .created(bucket.creation_date().map(|t| t.secs()));
            sightings.push(Sighting { resource: Some(ACCESS_LOG_BUCKET.to_string()), ..sighting });
        }
        Ok(sightings)
    })
}

/// The bucket's tags (none: an empty list).
async fn tags_of(c: &Clients, bucket: &str) -> Result<Vec<Tag>, StackError> {
    match c.s3.get_bucket_tagging().bucket(bucket).send().await.ctx("read the tags of bucket", bucket) {
        Ok(out) => Ok(out.tag_set().to_vec()),
        Err(e) if e.has_code(&["NoSuchTagSet", "NoSuchBucket"]) => Ok(vec![]),
        Err(e) => Err(e),
    }
}

/// What a bucket's settings are, as the plan compares them.
pub struct BucketLive {
    name: String,
    tags: Vec<Tag>,
    policy: Option<String>,
    encryption: String,
    public_access_blocked: bool,
    ownership: String,
    expiration_days: Option<i32>,
}

/// A missing configuration (`NoSuch...`) as `None`.
fn unset<T>(result: Result<T, StackError>, codes: &[&str]) -> Result<Option<T>, StackError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.has_code(codes) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Read the settings fargate-stack makes, in one round.
async fn settings(ctx: &Scope<'_>, name: &str, owner: &str) -> Result<BucketLive, StackError> {
    let s3 = &ctx.aws.s3;
    let (policy, encryption, block, ownership, lifecycle) = tokio::join!(
        s3.get_bucket_policy().bucket(name).expected_bucket_owner(owner).send(),
        s3.get_bucket_encryption().bucket(name).expected_bucket_owner(owner).send(),
        s3.get_public_access_block().bucket(name).expected_bucket_owner(owner).send(),
        s3.get_bucket_ownership_controls().bucket(name).expected_bucket_owner(owner).send(),
        s3.get_bucket_lifecycle_configuration().bucket(name).expected_bucket_owner(owner).send(),
    );
    let policy = unset(policy.ctx("read the policy of bucket", name), &["NoSuchBucketPolicy"])?;
    let encryption = unset(
        encryption.ctx("read the encryption of bucket", name),
        &["ServerSideEncryptionConfigurationNotFoundError"],
    )?;
    let block =
        unset(block.ctx("read the public access block of bucket", name), &["NoSuchPublicAccessBlockConfiguration"])?;
    let ownership =
        unset(ownership.ctx("read the object ownership of bucket", name), &["OwnershipControlsNotFoundError"])?;
    let lifecycle = unset(lifecycle.ctx("read the lifecycle of bucket", name), &["NoSuchLifecycleConfiguration"])?;
    let algorithms = sse_algorithms(encryption.as_ref().and_then(|e| e.server_side_encryption_configuration()));
    let blocked = block.as_ref().and_then(|b| b.public_access_block_configuration()).is_some_and(|c| {
        [c.block_public_acls(), c.ignore_public_acls(), c.block_public_policy(), c.restrict_public_buckets()]
            .iter()
            .all(|v| *v == Some(true))
    });
    let rules = ownership.as_ref().and_then(|o| o.ownership_controls()).map(|c| c.rules()).unwrap_or_default();
    let expiration = lifecycle
        .as_ref()
        .map(|l| l.rules())
        .unwrap_or_default()
        .iter()
        .filter(|r| r.status() == &ExpirationStatus::Enabled)
        .find_map(|r| r.expiration().and_then(|e| e.days()));
    Ok(BucketLive {
        name: name.to_string(),
        tags: vec![],
        policy: policy.and_then(|p| p.policy().map(str::to_string)),
        encryption: if algorithms.is_empty() { "none".into() } else { algorithms.join(", ") },
        public_access_blocked: blocked,
        ownership: rules.first().map_or("none".into(), |r| r.object_ownership().as_str().to_string()),
        expiration_days: expiration,
    })
}

/// The algorithms of a bucket's default encryption rules (none: not configured).
pub fn sse_algorithms(config: Option<&ServerSideEncryptionConfiguration>) -> Vec<String> {
    config
        .map(|c| c.rules())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().as_str().to_string())
        .collect()
}

/// The policy as a comparable value (key order and spacing aside).
fn normalized(policy: Option<&str>) -> String {
    policy.and_then(|p| serde_json::from_str::<Value>(p).ok()).map_or("none".into(), |v| v.to_string())
}

pub struct AccessLogBucket;

/// What the bucket can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketField {
    Tags,
    PublicAccessBlock,
    Ownership,
    Encryption,
    Policy,
    Expiration,
}

impl Field for BucketField {
    fn label(&self) -> String {
        match self {
            BucketField::Tags => "tags",
            BucketField::PublicAccessBlock => "public access block",
            BucketField::Ownership => "object ownership",
            BucketField::Encryption => "default encryption",
            BucketField::Policy => "bucket policy",
            BucketField::Expiration => "load_balancer.access_logs_expiration_days",
        }
        .into()
    }
}

/// The bucket's whole tag set for `PutBucketTagging` (which replaces it): ours, and every tag
/// someone else put there, kept as it is.
fn kept_and_ours(ctx: &Scope<'_>, live: &BucketLive) -> Vec<Tag> {
    let ours: Vec<Tag> = ctx.sdk_tags(&live.name);
    let others = live.tags.iter().filter(|t| !ours.iter().any(|o| o.key() == t.key())).cloned();
    ours.iter().cloned().chain(others).collect()
}

impl AccessLogBucket {
    async fn put(
        &self,
        ctx: &Scope<'_>,
        live: &BucketLive,
        owner: &str,
        field: &BucketField,
    ) -> Result<(), StackError> {
        let (s3, name) = (&ctx.aws.s3, live.name.as_str());
        let what = field.label();
        let sent = match field {
            BucketField::Tags => {
                let tagging = Tagging::builder().set_tag_set(Some(kept_and_ours(ctx, live))).build().expect("tags set");
                let call = s3.put_bucket_tagging().bucket(name).expected_bucket_owner(owner);
                call.tagging(tagging).send().await.map(drop).ctx("set the", &what)
            }
            BucketField::PublicAccessBlock => {
                let all = PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build();
                let call = s3.put_public_access_block().bucket(name).expected_bucket_owner(owner);
                call.public_access_block_configuration(all).send().await.map(drop).ctx("set the", &what)
            }
            BucketField::Ownership => {
                let rule = OwnershipControlsRule::builder().object_ownership(ObjectOwnership::BucketOwnerEnforced);
                let controls = OwnershipControls::builder().rules(rule.build().expect("set")).build().expect("set");
                let call = s3.put_bucket_ownership_controls().bucket(name).expected_bucket_owner(owner);
                call.ownership_controls(controls).send().await.map(drop).ctx("set the", &what)
            }
            BucketField::Encryption => {
                let sse = ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256);
                let rule = ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(sse.build().expect("set"));
                let config = ServerSideEncryptionConfiguration::builder().rules(rule.build()).build().expect("set");
                let call = s3.put_bucket_encryption().bucket(name).expected_bucket_owner(owner);
                call.server_side_encryption_configuration(config).send().await.map(drop).ctx("set the", &what)
            }
            BucketField::Policy => {
                let policy = bucket_policy(name, owner, ctx.region);
                let call = s3.put_bucket_policy().bucket(name).expected_bucket_owner(owner);
                call.policy(policy).send().await.map(drop).ctx("set the", &what)
            }
            BucketField::Expiration => {
                let days = ctx.config.load_balancer.access_logs_expiration_days as i32;
                let rule = LifecycleRule::builder()
                    .id("expire-access-logs")
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .expiration(LifecycleExpiration::builder().days(days).build())
                    .build()
                    .expect("set");
                let config = BucketLifecycleConfiguration::builder().rules(rule).build().expect("set");
                let call = s3.put_bucket_lifecycle_configuration().bucket(name).expected_bucket_owner(owner);
                call.lifecycle_configuration(config).send().await.map(drop).ctx("set the", &what)
            }
        };
        sent.map_err(|e| match e {
            StackError::Aws { action, code, message, detail, .. } => {
                StackError::Aws { action, resource: format!("{what} of bucket {name}"), code, message, detail }
            }
            other => other,
        })
    }

    /// Delete every object (`--delete-data`): the bucket has no versioning, so that is all of it.
    async fn empty(&self, ctx: &Scope<'_>, name: &str, owner: &str) -> Result<usize, StackError> {
        let mut deleted = 0;
        loop {
            let page = ctx.aws.s3.list_objects_v2().bucket(name).expected_bucket_owner(owner).send().await;
            let page = page.ctx("list the objects of bucket", name)?;
            let keys: Vec<ObjectIdentifier> = page
                .contents()
                .iter()
                .filter_map(|o| ObjectIdentifier::builder().set_key(o.key().map(str::to_string)).build().ok())
                .collect();
            if keys.is_empty() {
                return Ok(deleted);
            }
            deleted += keys.len();
            let batch = Delete::builder().set_objects(Some(keys)).quiet(true).build().expect("objects set");
            let call = ctx.aws.s3.delete_objects().bucket(name).expected_bucket_owner(owner);
            call.delete(batch).send().await.ctx("delete the objects of bucket", name)?;
        }
    }
}

#[async_trait]
impl Managed for AccessLogBucket {
    type Live = BucketLive;
    type Field = BucketField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &BucketLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(Some(live.tags.pairs().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &BucketLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        // PutBucketTagging replaces the whole set: read as it is now (an update of this run may have
        // put the tool's own tags back), changed only in the keys the sync names.
        let owner = account(ctx).await?;
        let now = tags_of(ctx.aws, &live.name).await?;
        let kept = now.into_iter().filter(|t| !remove.iter().chain(put.iter().map(|(k, _)| k)).any(|k| k == t.key()));
        let put = put.iter().map(|(k, v)| Tag::builder().key(k).value(v).build().expect("key and value are set"));
        let tagging = Tagging::builder().set_tag_set(Some(kept.chain(put).collect())).build().expect("tags set");
        let call = ctx.aws.s3.put_bucket_tagging().bucket(&live.name).expected_bucket_owner(owner);
        call.tagging(tagging).send().await.map(drop).ctx("set the tags of bucket", &live.name)
    }

    fn key(&self) -> Key {
        ACCESS_LOG_BUCKET
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_buckets)
    }

    fn permissions(&self) -> Vec<Permission> {
        let bucket = global_arn("s3", false, &bucket_name(STACK, "{account}", "{region}"));
        let objects = format!("{bucket}/*");
        vec![
            Permission::find("s3:ListAllMyBuckets"),
            Permission::find("s3:ListBucket").on(bucket.clone()),
            Permission::find("s3:GetBucketTagging").on(bucket.clone()),
            Permission::find("s3:GetBucketPolicy").on(bucket.clone()),
            Permission::find("s3:GetEncryptionConfiguration").on(bucket.clone()),
            Permission::find("s3:GetBucketPublicAccessBlock").on(bucket.clone()),
            Permission::find("s3:GetBucketOwnershipControls").on(bucket.clone()),
            Permission::find("s3:GetLifecycleConfiguration").on(bucket.clone()),
            Permission::create("s3:CreateBucket").on(bucket.clone()).tagging(),
            access::tags_with("s3:TagResource", bucket.clone()),
            // CreateBucket's ObjectOwnership is authorised as this action.
            Permission::create("s3:PutBucketOwnershipControls").on(bucket.clone()).implied(),
            Permission::update("s3:PutBucketTagging").on(bucket.clone()),
            Permission::update("s3:PutBucketPublicAccessBlock").on(bucket.clone()),
            Permission::update("s3:PutBucketOwnershipControls").on(bucket.clone()),
            Permission::update("s3:PutEncryptionConfiguration").on(bucket.clone()),
            Permission::update("s3:PutBucketPolicy").on(bucket.clone()),
            Permission::update("s3:PutLifecycleConfiguration").on(bucket.clone()),
            Permission::delete("s3:ListBucket").on(bucket.clone()),
            Permission::delete("s3:DeleteObject").on(objects),
            Permission::delete("s3:DeleteBucket").on(bucket),
        ]
    }

    /// Storage by use: what the load balancer writes, kept for the expiration's days.
    fn billing(&self, config: &Config) -> Vec<Charge> {
        let days = config.load_balancer.access_logs_expiration_days;
        vec![Charge::usage(items::S3_STORAGE, Unit::GbMonth, format!("access logs stored ({days} days)"))]
    }

    fn needs(&self) -> Vec<Dep> {
        vec![]
    }

    // The load balancer, which writes into it until it is deleted, says so itself.

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            retention: Some(Retention {
                kept: "the access-log bucket was kept: it holds logs (`down --delete-data` empties and deletes it); \
                       the state file records it",
                status: "only access-log bucket {id} is left, kept because it holds logs (`down --delete-data` \
                         deletes it)",
                list: "only the access-log bucket is left (it holds logs)",
            }),
            ..Lifecycle::default()
        }
    }

    fn cost_note(&self, config: &Config, found: &Inspection) -> Option<String> {
        let days = config.load_balancer.access_logs_expiration_days;
        (found.status == Health::Missing || !found.changes.is_empty()).then(|| {
            format!(
                "the load balancer's access logs (Security Hub ELB.5) go to an S3 bucket of the stack's own: storage \
                 (about $0.023 per GB-month) of {days} days of logs; [load_balancer] access_logs_expiration_days sets \
                 it, access_logs = false turns them off"
            )
        })
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<BucketLive>, StackError> {
        let owner = account(ctx).await?;
        let recorded = ctx.id(ACCESS_LOG_BUCKET);
        let name = recorded.clone().unwrap_or_else(|| bucket_name(ctx.stack(), &owner, ctx.region));
        let head = ctx.aws.s3.head_bucket().bucket(&name).expected_bucket_owner(&owner).send().await;
        match found(head.ctx("find bucket", &name)) {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            // S3 answers 403 without saying why: the caller may not look (s3:ListBucket), or the
            // name (global) is another account's, which `ExpectedBucketOwner` refuses alike.
            Err(StackError::Aws { action, resource, code, detail, .. }) if code == "AccessDenied" => {
                let message = format!(
                    "not allowed to perform s3:ListBucket on arn:aws:s3:::{name}, or the bucket belongs to another \
                     AWS account (S3 answers HeadBucket 403 without saying which). {POLICY_HINT}"
                );
                return Err(StackError::Aws { action, resource, code, message, detail });
            }
            Err(e) => return Err(e),
        }
        let tags = tags_of(ctx.aws, &name).await?;
        // A bucket in this account, of this stack's own name (it holds the account and region),
        // that carries no stack tag at all, and that the state records or a killed run may have
        // made: this stack's, its tags not put yet (a run killed between CreateBucket and
        // PutBucketTagging where the tags sent with the create were not kept). The diff puts them
        // back. Another stack's tag is refused as always.
        let untagged = !tags.pairs().iter().any(|(k, _)| *k == STACK_TAG);
        let ours_untagged = untagged && (recorded.is_some() || ctx.resuming());
        if !ours_untagged {
            ctx.owned(ACCESS_LOG_BUCKET, format!("bucket {name}"), tags.pairs())?;
        }
        Ok(Some(BucketLive { tags, ..settings(ctx, &name, &owner).await? }))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &BucketLive) -> Record {
        Record::id(&live.name)
    }

    fn diff(&self, ctx: &Scope<'_>, live: &BucketLive) -> Result<Vec<Changed<BucketField>>, StackError> {
        let account = ctx.run::<Account>().0.get().cloned().unwrap_or_default();
        let wanted_policy = bucket_policy(&live.name, &account, ctx.region);
        let days = ctx.config.load_balancer.access_logs_expiration_days;
        let on_off = |on: bool| if on { "all blocked" } else { "not all blocked" };
        // The tool's own tags here; the user's `[tags]` are kept in step by `tags`/`retag`.
        let wanted_tags: Vec<(String, String)> =
            ctx.tags(&live.name).into_iter().filter(|(k, _)| !ctx.config.tags.contains_key(k)).collect();
        let tag_list = |pairs: Vec<(&str, &str)>| {
            let mut shown: Vec<String> = pairs
                .into_iter()
                .filter(|(k, _)| wanted_tags.iter().any(|(w, _)| w == k))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            shown.sort();
            shown.join(", ")
        };
        let wanted_pairs = wanted_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut diff = Diff::new();
        diff.field(BucketField::Tags, &tag_list(live.tags.pairs()), &tag_list(wanted_pairs))
            .field(BucketField::PublicAccessBlock, on_off(live.public_access_blocked), on_off(true))
            .field(BucketField::Ownership, &live.ownership, &ObjectOwnership::BucketOwnerEnforced.as_str().to_string())
            .field(BucketField::Encryption, &live.encryption, &ServerSideEncryption::Aes256.as_str().to_string())
            .field(BucketField::Policy, &normalized(live.policy.as_deref()), &normalized(Some(&wanted_policy)))
            .field(
                BucketField::Expiration,
                &live.expiration_days.map_or("never".into(), |d| format!("{d} days")),
                &format!("{days} days"),
            );
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<BucketLive, StackError> {
        let owner = account(ctx).await?;
        let name = bucket_name(ctx.stack(), &owner, ctx.region);
        let tags: Vec<Tag> = ctx.sdk_tags(&name);
        // Tagged as it is made, so that a run killed right after finds it as the stack's.
        let mut configuration = CreateBucketConfiguration::builder().set_tags(Some(tags));
        // us-east-1 is S3's default location and takes no constraint.
        if ctx.region != "us-east-1" {
            configuration = configuration.location_constraint(BucketLocationConstraint::from(ctx.region));
        }
        let created = ctx
            .aws
            .s3
            .create_bucket()
            .bucket(&name)
            .create_bucket_configuration(configuration.build())
            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
            .send()
            .await
            .ctx("create bucket", &name);
        match created {
            // Made by an interrupted run a moment ago: take it if it is ours.
            Err(e) if e.has_code(&["BucketAlreadyOwnedByYou"]) => return self.find(ctx).await?.ok_or(e),
            Err(e) if e.has_code(&["BucketAlreadyExists"]) => {
                return Err(ctx.not_ours(format!("bucket {name}"), "the name is taken by another AWS account".into()))
            }
            other => drop(other?),
        }
        // Everything else is set by the update that follows; the tags as S3 kept them (a service
        // that ignores tags on CreateBucket, as the emulator does, gets them from the update).
        let tags = tags_of(ctx.aws, &name).await?;
        Ok(BucketLive {
            name,
            tags,
            policy: None,
            encryption: "none".into(),
            public_access_blocked: false,
            ownership: ObjectOwnership::BucketOwnerEnforced.as_str().into(),
            expiration_days: None,
        })
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &BucketLive,
        changes: &[Changed<BucketField>],
    ) -> Result<Option<BucketLive>, StackError> {
        let owner = account(ctx).await?;
        // In the order of the enum: public access blocked before a policy is set.
        for field in [
            BucketField::Tags,
            BucketField::PublicAccessBlock,
            BucketField::Ownership,
            BucketField::Encryption,
            BucketField::Policy,
            BucketField::Expiration,
        ] {
            if changes.iter().any(|c| c.field == field) {
                self.put(ctx, live, &owner, &field).await?;
            }
        }
        Ok(None)
    }

    /// Deleted when empty, or emptied first with `--delete-data`; else kept, and said so.
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: BucketLive) -> Result<Outcome, StackError> {
        let owner = account(ctx).await?;
        let name = &live.name;
        if ctx.run::<DataPolicy>().delete_data {
            line.start("emptying");
            let deleted = self.empty(ctx, name, &owner).await?;
            if deleted > 0 {
                ctx.note(format!(
                    "bucket {name}: {} deleted (--delete-data)",
                    crate::report::count(deleted as u64, "log object")
                ));
            }
        }
        let deleted = ctx.aws.s3.delete_bucket().bucket(name).expected_bucket_owner(&owner).send().await;
        match found(deleted.ctx("delete bucket", name)) {
            Ok(_) => Ok(Outcome::Deleted),
            Err(e) if e.has_code(&["NoSuchBucket"]) => Ok(Outcome::Deleted),
            Err(e) if e.has_code(&["BucketNotEmpty"]) => {
                ctx.set_attr(BUCKET_RETAINED, "true").await?;
                line.done("retained", "holds logs; down --delete-data deletes it");
                ctx.note(format!(
                    "bucket {name} holds access logs and was kept; `down --delete-data` empties and deletes it"
                ));
                Ok(Outcome::Retained)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_fits_s3_and_tells_its_stack() {
        let name = bucket_name("abcdefghij-klmnopqrs", "123456789012", "ap-southeast-3");
        assert!(name.len() <= 63, "{name}");
        crate::config::check_bucket_name(&name).unwrap();
        assert_eq!(stack_of(&name, "ap-southeast-3").as_deref(), Some("abcdefghij-klmnopqrs"));
        assert_eq!(stack_of(&name, "us-east-1"), None, "another region's");
        assert_eq!(stack_of("app-alb-logs-12345-us-east-1", "us-east-1"), None, "not an account");
        assert_eq!(stack_of("my-bucket", "us-east-1"), None);
    }

    #[test]
    fn the_policy_names_the_regions_elb_account_or_the_log_delivery_service() {
        let old = bucket_policy("b", "111122223333", "us-east-1");
        assert!(
            old.contains("arn:aws:iam::127311923021:root") && old.contains("arn:aws:s3:::b/AWSLogs/111122223333/*")
        );
        let new = bucket_policy("b", "111122223333", "ap-southeast-7");
        assert!(new.contains("logdelivery.elasticloadbalancing.amazonaws.com"), "{new}");
        for region in ["us-east-1", "ap-southeast-7", "us-gov-west-1"] {
            let policy = bucket_policy("b", "111122223333", region);
            assert!(grants_elb_write(&policy, "b", "", "111122223333", region), "{region}");
        }
    }

    #[test]
    fn a_given_policy_must_let_elb_put_under_the_prefix() {
        let allow = |principal: Value, resource: &str| {
            json!({"Statement": [{"Effect": "Allow", "Principal": principal, "Action": ["s3:PutObject"],
                                 "Resource": resource}]})
            .to_string()
        };
        let elb = json!({"AWS": "127311923021"});
        let ok = allow(elb.clone(), "arn:aws:s3:::logs/alb/AWSLogs/111122223333/*");
        assert!(grants_elb_write(&ok, "logs", "alb", "111122223333", "us-east-1"));
        assert!(!grants_elb_write(&ok, "logs", "other", "111122223333", "us-east-1"), "another prefix");
        assert!(!grants_elb_write(&ok, "logs", "alb", "444455556666", "us-east-1"), "another account's logs");
        assert!(!grants_elb_write(&ok, "logs", "alb", "111122223333", "eu-west-1"), "another region's ELB account");
        let wide = allow(json!({"AWS": "arn:aws:iam::127311923021:root"}), "arn:aws:s3:::logs/*");
        assert!(grants_elb_write(&wide, "logs", "alb", "111122223333", "us-east-1"));
        let service =
            allow(json!({"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}), "arn:aws:s3:::logs/*");
        assert!(grants_elb_write(&service, "logs", "", "111122223333", "ap-southeast-7"));
        assert!(!grants_elb_write(&service, "logs", "", "111122223333", "us-east-1"), "not what us-east-1 uses");
        let mut denied: Value = serde_json::from_str(&wide).unwrap();
        denied["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::logs/*"}));
        assert!(!grants_elb_write(&denied.to_string(), "logs", "alb", "111122223333", "us-east-1"));
        assert!(!grants_elb_write("not json", "logs", "", "1", "us-east-1"));
    }

    #[test]
    fn globs_match_as_iam_does() {
        assert!(glob("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y"));
        assert!(glob("s3:put*", "s3:putobject") && glob("*", "anything"));
        assert!(!glob("arn:aws:s3:::b", "arn:aws:s3:::b/x"));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
    }
}
