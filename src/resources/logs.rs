//! The CloudWatch log group the containers write to, with a retention, encrypted with the user's KMS
//! key when `[logs] kms_key_arn` names one (else CloudWatch's own encryption). The awslogs driver
//! writes through CloudWatch Logs, which uses the key under the key's policy: the tasks' roles need
//! no KMS permission.

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::LogGroup as Group;
use futures::future::BoxFuture;

use crate::access::{self, arn, Permission, STACK};
use crate::aws::Clients;
use crate::bill::{items, Charge, Unit};
use crate::config::{Config, AUDIT_RETENTION_DAYS};
use crate::error::{found, ignore_not_found, AwsContext, StackError};
use crate::model::{
    made_for, tags::Seen, Attr, Changed, Dep, Diff, Field, Health, Inspection, Key, Kind, Managed, Nodes, Outcome,
    Record, Scope, Shape, Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::kms::{check_key, key_permissions, KMS_REQUESTS};
use crate::resources::tags::TagPairs;

pub const LOG_GROUP: Key = Key::new("log-group", Kind::new("logs:log-group"));
pub const LOG_GROUP_ARN: Attr = Attr::new(LOG_GROUP, "arn");

pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    // The catalog (`Shape::everything`) holds every declaration.
    nodes.managed(LogGroup { customer_key: shape.config().logs.kms_key_arn.is_some() || shape.is_everything() });
}

/// The log group's name: `/ecs/<stack>`.
pub fn log_group_name(stack: &str) -> String {
    format!("/ecs/{stack}")
}

/// Every log group named as a stack's, with when it was created.
fn sweep_groups(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c
            .logs
            .describe_log_groups()
            .log_group_name_prefix(log_group_name(""))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await;
        Ok(all
            .ctx("describe", "log groups")?
            .iter()
            .filter_map(|g| {
                let name = g.log_group_name()?;
                let sighting = Sighting::new(LOG_GROUP.kind(), name).named(name, |n| made_for(n, log_group_name));
                Some(
                    Sighting { resource: Some(LOG_GROUP.to_string()), ..sighting }
                        .created(g.creation_time().map(|ms| ms / 1000)),
                )
            })
            .collect())
    })
}

async fn describe(ctx: &Scope<'_>, name: &str) -> Result<Option<Group>, StackError> {
    let out =
        ctx.aws.logs.describe_log_groups().log_group_name_prefix(name).send().await.ctx("describe log group", name)?;
    // The prefix also matches other stacks' groups (`/ecs/app` and `/ecs/app-2`): exact name only.
    Ok(out.log_groups().iter().find(|g| g.log_group_name() == Some(name)).cloned())
}

/// The group's ARN without the `:*` suffix some APIs add.
pub fn group_arn(group: &Group) -> String {
    group
        .log_group_arn()
        .map(str::to_string)
        .or_else(|| group.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .unwrap_or_default()
}

fn retention(days: Option<i32>) -> String {
    days.map_or("never expire".into(), |d| format!("{d} days"))
}

/// `customer_key`: the config names a KMS key of the user's (its checks and calls are declared only
/// then; [`LogGroup::PLAIN`] for the lookups of other commands).
pub struct LogGroup {
    customer_key: bool,
}

impl LogGroup {
    pub const PLAIN: LogGroup = LogGroup { customer_key: false };
}

/// What keeping the logs `days` costs, and what Security Hub says about it.
pub fn retention_note(days: u32) -> String {
    let audit = if days >= AUDIT_RETENTION_DAYS {
        format!("{days} days meets Security Hub CloudWatch.16 (at least {AUDIT_RETENTION_DAYS})")
    } else {
        format!("below {AUDIT_RETENTION_DAYS} days Security Hub CloudWatch.16 fails")
    };
    format!(
        "the log group keeps {days} days of logs: storage (about $0.03 per GB-month) grows to {days} days of what the containers write, beside ingestion ($0.50 per GB); {audit}; [logs] retention_days sets it"
    )
}

/// What the log group can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum LogsField {
    Retention,
    Encryption,
}

impl Field for LogsField {
    fn label(&self) -> String {
        match self {
            LogsField::Retention => "logs.retention_days",
            LogsField::Encryption => "logs.kms_key_arn",
        }
        .into()
    }
}

/// The key a group is encrypted with, as the plan shows it.
pub fn encryption(key: Option<&str>) -> String {
    key.map_or("CloudWatch's own encryption".into(), |k| format!("KMS key {k}"))
}

/// The service principal that uses a log group's key: CloudWatch Logs of the region.
fn logs_service(region: &str) -> String {
    format!("logs.{region}.amazonaws.com")
}

#[async_trait]
impl Managed for LogGroup {
    type Live = Group;
    type Field = LogsField;

    async fn tags(&self, ctx: &Scope<'_>, live: &Group) -> Result<Option<Vec<(String, String)>>, StackError> {
        group_tags(ctx, live).await
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &Group,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        retag_group(ctx, live, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_groups)
    }

    fn permissions(&self) -> Vec<Permission> {
        let group = arn("logs", &format!("log-group:{}", log_group_name(STACK)));
        let mut permissions = group_permissions(group.clone());
        if self.customer_key {
            permissions.extend(group_key_permissions(group));
        }
        permissions
    }

    /// Ingestion and storage by use; with a key of the user's, the KMS requests CloudWatch makes.
    fn billing(&self, config: &Config) -> Vec<Charge> {
        let mut charges = vec![
            Charge::usage(items::LOGS_INGESTION, Unit::Gb, "logs ingested"),
            Charge::usage(items::LOGS_STORAGE, Unit::GbMonth, "logs stored"),
        ];
        if config.logs.kms_key_arn.is_some() {
            charges.push(Charge::usage(
                KMS_REQUESTS,
                Unit::MillionRequests,
                "KMS requests CloudWatch Logs makes with logs.kms_key_arn (the key's own $1 a month is billed to you)",
            ));
        }
        charges
    }

    /// A key of the user's must exist, be enabled, encrypt, and let CloudWatch Logs use it (AWS
    /// refuses the key otherwise) before anything is made.
    async fn preflight(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        match &ctx.config.logs.kms_key_arn {
            Some(key) => check_key(ctx, "logs.kms_key_arn", key, Some(&logs_service(ctx.region))).await,
            None => Ok(()),
        }
    }

    fn key(&self) -> Key {
        LOG_GROUP
    }

    /// The retention is a trade-off between the audit trail and the storage bill: said where it is
    /// set, whichever way it goes.
    fn cost_note(&self, config: &Config, found: &Inspection) -> Option<String> {
        (found.status == Health::Missing || !found.changes.is_empty()).then(|| {
            let note = retention_note(config.logs.retention_days);
            match config.logs.kms_key_arn {
                Some(_) => format!(
                    "{note}; encrypted with your KMS key (logs.kms_key_arn): KMS bills $0.03 per 10,000 requests \
                     CloudWatch Logs makes with it, the key itself ($1 a month) is yours"
                ),
                None => note,
            }
        })
    }

    fn needs(&self) -> Vec<Dep> {
        vec![]
    }

    // The tasks, which write their last logs until they stop, say so themselves (the service).

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Group>, StackError> {
        let name = ctx.id(LOG_GROUP).unwrap_or_else(|| log_group_name(ctx.stack()));
        find_group(ctx, LOG_GROUP, &name).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &Group) -> Record {
        Record::id(live.log_group_name().unwrap_or_default()).with(LOG_GROUP_ARN, group_arn(live))
    }

    fn diff(&self, ctx: &Scope<'_>, live: &Group) -> Result<Vec<Changed<LogsField>>, StackError> {
        let mut diff = Diff::new();
        diff.field(LogsField::Retention, &retention_of(live), &retention_days(ctx.config.logs.retention_days)).field(
            LogsField::Encryption,
            &encryption(live.kms_key_id()),
            &encryption(ctx.config.logs.kms_key_arn.as_deref()),
        );
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<Group, StackError> {
        create_group(ctx, LOG_GROUP, &log_group_name(ctx.stack()), ctx.config.logs.kms_key_arn.as_deref()).await
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &Group,
        changes: &[Changed<LogsField>],
    ) -> Result<Option<Group>, StackError> {
        let name = live.log_group_name().unwrap_or_default();
        for change in changes {
            match change.field {
                LogsField::Retention => set_retention(ctx, live, ctx.config.logs.retention_days).await?,
                LogsField::Encryption => set_group_key(ctx, name, ctx.config.logs.kms_key_arn.as_deref()).await?,
            }
        }
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: Group) -> Result<Outcome, StackError> {
        delete_group(ctx, &live).await?;
        Ok(Outcome::Deleted)
    }
}

/// What every log group of the stack calls, on the groups `group` (an ARN pattern) names.
pub fn group_permissions(group: String) -> Vec<Permission> {
    vec![
        Permission::find("logs:DescribeLogGroups"),
        Permission::find("logs:ListTagsForResource").on(group.clone()),
        Permission::create("logs:CreateLogGroup").on(group.clone()).tagging(),
        access::tags_with("logs:TagResource", group.clone()),
        access::retagging("logs:TagResource", group.clone()),
        access::retagging("logs:UntagResource", group.clone()),
        Permission::update("logs:PutRetentionPolicy").on(group.clone()),
        Permission::delete("logs:DeleteLogGroup").on(group),
    ]
}

/// What a group encrypted with the user's key (`[logs] kms_key_arn`, every group of the stack)
/// calls besides `group_permissions`: the key's checks, and setting or removing it in place.
pub fn group_key_permissions(group: String) -> Vec<Permission> {
    let mut permissions = key_permissions();
    permissions.push(Permission::update("logs:AssociateKmsKey").on(group.clone()));
    permissions.push(Permission::update("logs:DisassociateKmsKey").on(group));
    permissions
}

/// Sets the group `name`'s key to `key`, or back to CloudWatch's own encryption, in place: new
/// events are encrypted with the new key (or none); what is stored stays readable.
pub async fn set_group_key(ctx: &Scope<'_>, name: &str, key: Option<&str>) -> Result<(), StackError> {
    let logs = &ctx.aws.logs;
    match key {
        Some(key) => {
            let call = logs.associate_kms_key().log_group_name(name).kms_key_id(key);
            call.send().await.ctx("set the KMS key of log group", name)?;
        }
        None => {
            let call = logs.disassociate_kms_key().log_group_name(name);
            call.send().await.ctx("remove the KMS key of log group", name)?;
        }
    }
    Ok(())
}

// What every log group of the stack shares (the containers' here, the VPC's flow logs'), each
// checked against the resource `key` that owns it.

/// The group `name`, if CloudWatch has it and it passes the ownership check as `key`.
pub async fn find_group(ctx: &Scope<'_>, key: Key, name: &str) -> Result<Option<Group>, StackError> {
    let Some(group) = describe(ctx, name).await? else { return Ok(None) };
    let arn = group_arn(&group);
    let tags = found(
        ctx.aws.logs.list_tags_for_resource().resource_arn(&arn).send().await.ctx("list the tags of log group", name),
    )?;
    let tags = tags.and_then(|t| t.tags().cloned()).unwrap_or_default();
    ctx.owned(key, format!("log group {name}"), tags.pairs())?;
    ctx.run::<Seen>().note(&arn, tags.pairs());
    Ok(Some(group))
}

/// A group's tags for the `[tags]` sync: as `find_group` read them in this run.
pub async fn group_tags(ctx: &Scope<'_>, group: &Group) -> Result<Option<Vec<(String, String)>>, StackError> {
    let arn = group_arn(group);
    if let Some(seen) = ctx.run::<Seen>().get(&arn) {
        return Ok(Some(seen));
    }
    let out = ctx.aws.logs.list_tags_for_resource().resource_arn(&arn).send().await;
    let tags = found(out.ctx("list the tags of log group", &arn))?;
    Ok(tags.map(|t| t.tags().cloned().unwrap_or_default().into_iter().collect()))
}

/// Keep the user's tags in step on a log group: TagResource puts (and overwrites), UntagResource
/// takes keys off.
pub async fn retag_group(
    ctx: &Scope<'_>,
    group: &Group,
    put: &[(String, String)],
    remove: &[String],
) -> Result<(), StackError> {
    let arn = group_arn(group);
    if !put.is_empty() {
        let call = ctx.aws.logs.tag_resource().resource_arn(&arn).set_tags(Some(put.iter().cloned().collect()));
        call.send().await.ctx("tag log group", &arn)?;
    }
    if !remove.is_empty() {
        let call = ctx.aws.logs.untag_resource().resource_arn(&arn).set_tag_keys(Some(remove.to_vec()));
        call.send().await.ctx("untag log group", &arn)?;
    }
    Ok(())
}

/// Creates the group `name` with the stack's tags, encrypted with `kms_key` if given (and takes it
/// if an interrupted run made it).
pub async fn create_group(ctx: &Scope<'_>, key: Key, name: &str, kms_key: Option<&str>) -> Result<Group, StackError> {
    let tags = ctx.tags(name).into_iter().collect();
    match ctx
        .aws
        .logs
        .create_log_group()
        .log_group_name(name)
        .set_kms_key_id(kms_key.map(str::to_string))
        .set_tags(Some(tags))
        .send()
        .await
        .ctx("create log group", name)
    {
        // Created by an interrupted run a moment ago: take it if it is ours.
        Err(e) if e.has_code(&["ResourceAlreadyExistsException"]) => return find_group(ctx, key, name).await?.ok_or(e),
        other => drop(other?),
    }
    describe(ctx, name).await?.ok_or_else(|| StackError::Failed {
        resource: name.into(),
        message: "was created but cannot be described".into(),
    })
}

/// A group's retention, as the plan shows it.
pub fn retention_of(group: &Group) -> String {
    retention(group.retention_in_days())
}

/// `days` as the plan shows a retention.
pub fn retention_days(days: u32) -> String {
    retention(Some(days as i32))
}

pub async fn set_retention(ctx: &Scope<'_>, group: &Group, days: u32) -> Result<(), StackError> {
    let name = group.log_group_name().unwrap_or_default();
    ctx.aws
        .logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days as i32)
        .send()
        .await
        .ctx("set the retention of log group", name)
        .map(drop)
}

pub async fn delete_group(ctx: &Scope<'_>, group: &Group) -> Result<(), StackError> {
    let name = group.log_group_name().unwrap_or_default();
    ignore_not_found(
        ctx.aws.logs.delete_log_group().log_group_name(name).send().await.ctx("delete log group", name).map(drop),
    )
}
