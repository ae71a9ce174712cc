//! The DynamoDB table: on-demand, deletion protection on, point-in-time recovery as the config says
//! (on by default), never dropped silently with data in it.

use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType as DynamoKeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ScalarAttributeType, Select, SseSpecification, SseStatus, SseType, TableDescription,
    TableStatus,
};
use futures::future::BoxFuture;
use futures::StreamExt;

use crate::access::{self, arn, Permission, STACK};
use crate::aws::Clients;
use crate::bill::{items, Charge, Unit};
use crate::config::{Config, KeyAttribute};
use crate::error::{found, ignore_not_found, returned, AwsContext, StackError};
use crate::model::{
    made_for, owner_tags, tags::Seen, Attr, Changed, Dep, Diff, Field, Health, Inspection, Key, Kind, Lifecycle,
    Managed, Nodes, Outcome, Prepared, Record, Retention, Scope, Shape, Sighting, Sweep, RETAINED,
};
use crate::progress::Line;
use crate::resources::kms::{check_key, key_permissions, KMS_REQUESTS};
use crate::resources::tags::TagPairs;
use crate::wait::{self, budget, Poll};

pub const TABLE: Key = Key::new("table", Kind::new("dynamodb:table"));
pub const TABLE_ARN: Attr = Attr::new(TABLE, "arn");
const KEY_SIGNATURE: Attr = Attr::new(TABLE, "keys");
/// Set when `down --retain-table` kept it.
const TABLE_RETAINED: Attr = Attr::new(TABLE, RETAINED);
const BACKUP_ARN: Attr = Attr::new(TABLE, "backup_arn");
/// Point-in-time recovery as last seen: `on` or `off`.
const RECOVERY: Attr = Attr::new(TABLE, "point_in_time_recovery");

/// The old table's name while a replacement (`up --replace table`) is under way: set before the new
/// table is created, cleared once the old one is out of the stack ([`Table::finish_up`]).
const REPLACES: Attr = Attr::new(TABLE, "replaces");
/// Its ARN: the task role grants it too until the replacement is done (old tasks use it).
pub const REPLACED_TABLE_ARN: Attr = Attr::new(TABLE, "replaces_arn");

/// What `up` says when the table's keys change: DynamoDB fixes them when the table is created, and
/// a new table would not hold the items. Never `down`: that takes the service down, and the next
/// `up` would refuse the same change.
const NEW_KEYS: &str = "A table's keys are fixed when DynamoDB creates it: new keys need a new table, and a new \
     table would not hold the old one's items. Run `fargate-stack up --replace table` to create a new table \
     `<stack>-messages-<UTC time>` with the new keys and roll the service onto it (task role and a new task \
     definition revision, rolling deployment: the service keeps running); the old table is kept as it is, with \
     its items and deletion protection, outside the stack, and `up` says how to copy the items over. Or put \
     table.partition_key and table.sort_key back as they were (nothing was changed; the service keeps running on \
     the table)";

pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    // The catalog (`Shape::everything`) holds every declaration.
    nodes.managed(Table { customer_key: shape.config().table.kms_key_arn.is_some() || shape.is_everything() });
}

/// The table's name: `<stack>-messages` (a replacement's: `<stack>-messages-<UTC time>`).
pub fn table_name(stack: &str) -> String {
    format!("{stack}-messages")
}

/// The stack a table's name is made for: `<stack>-messages`, or a replacement's
/// `<stack>-messages-YYYYmmddHHMMSS`.
fn stack_of_table(name: &str) -> Option<String> {
    let replacement = name.rsplit_once('-').filter(|(_, t)| t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()));
    made_for(replacement.map_or(name, |(base, _)| base), table_name)
}

/// Every table named as a stack's, with its tags and when it was created.
fn sweep_tables(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let names = c.dynamodb.list_tables().into_paginator().items().send().try_collect().await;
        let names: Vec<String> = names.ctx("list", "DynamoDB tables")?;
        let checks = names.into_iter().filter(|n| stack_of_table(n).is_some()).map(|name| async move {
            let described =
                found(c.dynamodb.describe_table().table_name(&name).send().await.ctx("describe table", &name))?;
            let Some(table) = described.and_then(|d| d.table().cloned()) else { return Ok(None) };
            let Some(arn) = table.table_arn() else { return Ok(None) };
            let tags = c.dynamodb.list_tags_of_resource().resource_arn(arn).send().await;
            let tags = found(tags.ctx("list the tags of", &name))?.map(|t| t.tags().to_vec()).unwrap_or_default();
            let sighting = Sighting::new(TABLE.kind(), &name)
                .named(&name, stack_of_table)
                .owned(owner_tags(tags.pairs()))
                .created(table.creation_date_time().map(|t| t.secs()));
            Ok::<_, StackError>(Some(sighting))
        });
        let all: Vec<Result<Option<Sighting>, StackError>> =
            futures::stream::iter(checks).buffer_unordered(8).collect().await;
        Ok(all.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect())
    })
}

/// What `down` was asked to do with the data (its flags), set by the command for the run.
#[derive(Debug, Clone, Default)]
pub struct DataPolicy {
    pub delete_data: bool,
    pub retain_table: bool,
    pub no_backup: bool,
}

/// What `down` does with the table; decided before anything is deleted.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TablePlan {
    #[default]
    Absent,
    DeleteEmpty,
    DeleteWithData {
        items: u64,
        backup: bool,
    },
    Retain,
}

/// This run's decision, kept from `prepare_teardown` to `destroy`.
#[derive(Default)]
struct Decided(Mutex<TablePlan>);

async fn describe(ctx: &Scope<'_>, name: &str) -> Result<Option<TableDescription>, StackError> {
    Ok(found(ctx.aws.dynamodb.describe_table().table_name(name).send().await.ctx("describe table", name))?
        .and_then(|out| out.table().cloned()))
}

/// The key schema as one comparable string, e.g. `id:S,created_at:N`.
fn live_signature(table: &TableDescription) -> String {
    let type_of = |name: &str| {
        table
            .attribute_definitions()
            .iter()
            .find(|a| a.attribute_name() == name)
            .map(|a| a.attribute_type().as_str().to_string())
            .unwrap_or_default()
    };
    [DynamoKeyType::Hash, DynamoKeyType::Range]
        .iter()
        .filter_map(|kind| table.key_schema().iter().find(|k| k.key_type() == kind))
        .map(|k| format!("{}:{}", k.attribute_name(), type_of(k.attribute_name())))
        .collect::<Vec<_>>()
        .join(",")
}

/// The key schema the config asks for, as [`live_signature`] writes it.
pub fn wanted_signature(config: &Config) -> String {
    [Some(&config.table.partition_key), config.table.sort_key.as_ref()]
        .into_iter()
        .flatten()
        .map(|k: &KeyAttribute| format!("{}:{}", k.name, k.kind.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

fn is_on_demand(table: &TableDescription) -> bool {
    // Tables created on demand may omit the summary in some answers.
    table.billing_mode_summary().and_then(|b| b.billing_mode()).is_none_or(|m| *m == BillingMode::PayPerRequest)
}

/// `customer_key`: the config names a KMS key of the user's (its checks and grants are declared only then).
pub struct Table {
    customer_key: bool,
}

pub struct TableLive {
    name: String,
    table: TableDescription,
    /// Point-in-time recovery on (DescribeContinuousBackups; a table just created has it off).
    recovery: bool,
}

/// Whether point-in-time recovery is on.
async fn recovery_of(ctx: &Scope<'_>, name: &str) -> Result<bool, StackError> {
    let out = ctx.aws.dynamodb.describe_continuous_backups().table_name(name).send().await;
    let Some(out) = found(out.ctx("describe the continuous backups of table", name))? else { return Ok(false) };
    let status = out
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status());
    Ok(matches!(status, Some(PointInTimeRecoveryStatus::Enabled)))
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// The key the table is encrypted with, as the plan shows it: a KMS key's ARN (a customer-managed
/// key, or the AWS managed `aws/dynamodb` one), else DynamoDB's AWS owned key.
fn encryption_of(table: &TableDescription) -> String {
    let sse = table.sse_description();
    let on = sse.and_then(|s| s.status()).is_some_and(|s| matches!(s, SseStatus::Enabled | SseStatus::Updating));
    match sse.filter(|s| on && s.sse_type() == Some(&SseType::Kms)).and_then(|s| s.kms_master_key_arn()) {
        Some(key) => format!("KMS key {key}"),
        None => AWS_OWNED_KEY.into(),
    }
}

const AWS_OWNED_KEY: &str = "AWS owned key";

/// The config's key, as [`encryption_of`] shows it.
fn wanted_encryption(config: &Config) -> String {
    config.table.kms_key_arn.as_ref().map_or(AWS_OWNED_KEY.into(), |key| format!("KMS key {key}"))
}

/// CreateTable's and UpdateTable's encryption: the config's key, or back to the AWS owned key.
fn sse_specification(config: &Config) -> SseSpecification {
    match &config.table.kms_key_arn {
        Some(key) => SseSpecification::builder().enabled(true).sse_type(SseType::Kms).kms_master_key_id(key).build(),
        None => SseSpecification::builder().enabled(false).build(),
    }
}

/// What the table can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum TableField {
    Keys,
    Protection,
    Billing,
    Recovery,
    Encryption,
}

impl Field for TableField {
    fn label(&self) -> String {
        match self {
            TableField::Keys => "table keys",
            TableField::Protection => "deletion protection",
            TableField::Billing => "billing",
            TableField::Recovery => "table.point_in_time_recovery",
            TableField::Encryption => "table.kms_key_arn",
        }
        .into()
    }
}

#[async_trait]
impl Managed for Table {
    type Live = TableLive;
    type Field = TableField;

    async fn tags(&self, ctx: &Scope<'_>, live: &TableLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        let arn = live.table.table_arn().unwrap_or_default();
        if let Some(seen) = ctx.run::<Seen>().get(arn) {
            return Ok(Some(seen));
        }
        let out = ctx.aws.dynamodb.list_tags_of_resource().resource_arn(arn).send().await;
        let tags = found(out.ctx("list the tags of table", arn))?;
        Ok(tags.map(|t| t.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &TableLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        let arn = live.table.table_arn().unwrap_or_default();
        if !put.is_empty() {
            let tags = put.iter().map(|(k, v)| {
                aws_sdk_dynamodb::types::Tag::builder().key(k).value(v).build().expect("key and value are set")
            });
            let call = ctx.aws.dynamodb.tag_resource().resource_arn(arn).set_tags(Some(tags.collect()));
            call.send().await.ctx("tag table", arn)?;
        }
        if !remove.is_empty() {
            let call = ctx.aws.dynamodb.untag_resource().resource_arn(arn).set_tag_keys(Some(remove.to_vec()));
            call.send().await.ctx("untag table", arn)?;
        }
        Ok(())
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_tables)
    }

    fn permissions(&self) -> Vec<Permission> {
        // A replacement's name extends the table's (`-<UTC time>`).
        let table = arn("dynamodb", &format!("table/{}*", table_name(STACK)));
        let key = arn("kms", "key/*");
        let mut permissions = vec![];
        if self.customer_key {
            // With `table.kms_key_arn`, DynamoDB uses the key on the caller's behalf: it creates a
            // grant on it, and encrypts the table's key with it.
            permissions.extend([
                Permission::create("kms:CreateGrant").on(key.clone()).implied(),
                Permission::create("kms:GenerateDataKey").on(key.clone()).implied(),
                Permission::create("kms:Decrypt").on(key.clone()).implied(),
                Permission::update("kms:CreateGrant").on(key.clone()).implied(),
                Permission::update("kms:GenerateDataKey").on(key.clone()).implied(),
                Permission::update("kms:Decrypt").on(key).implied(),
            ]);
            permissions.extend(key_permissions());
        }
        permissions.extend([
            Permission::find("dynamodb:DescribeTable").on(table.clone()),
            Permission::find("dynamodb:ListTagsOfResource").on(table.clone()),
            // The tables named as stacks' (`list`, the leak check), and a replacement's when no
            // state records the table.
            Permission::find("dynamodb:ListTables"),
            Permission::create("dynamodb:CreateTable").on(table.clone()).tagging(),
            access::tags_with("dynamodb:TagResource", table.clone()),
            access::retagging("dynamodb:TagResource", table.clone()),
            access::retagging("dynamodb:UntagResource", table.clone()),
            Permission::find("dynamodb:DescribeContinuousBackups").on(table.clone()),
            Permission::update("dynamodb:UpdateTable").on(table.clone()).tagged(),
            Permission::update("dynamodb:UpdateContinuousBackups").on(table.clone()).tagged(),
            // `up --replace table`: the old table's items counted, and it is taken out of the stack.
            Permission::update("dynamodb:Scan").on(table.clone()).tagged(),
            Permission::update("dynamodb:UntagResource").on(table.clone()).tagged(),
            // ... or on `down`, when the replacement did not finish.
            Permission::delete("dynamodb:UntagResource").on(table.clone()).tagged(),
            // `down` counts the items before it deletes anything, and again once the tasks stopped.
            Permission::delete("dynamodb:Scan").on(table.clone()).tagged(),
            Permission::delete("dynamodb:CreateBackup").on(table.clone()).tagged(),
            Permission::delete("dynamodb:UpdateTable").on(table.clone()).tagged(),
            Permission::delete("dynamodb:DeleteTable").on(table).tagged(),
        ]);
        permissions
    }

    /// On demand: requests and storage by use, and the backups `down --delete-data` makes.
    fn billing(&self, config: &Config) -> Vec<Charge> {
        let mut charges = vec![
            Charge::usage(items::DYNAMODB_WRITES, Unit::MillionRequests, "table writes"),
            Charge::usage(items::DYNAMODB_READS, Unit::MillionRequests, "table reads"),
            Charge::usage(items::DYNAMODB_STORAGE, Unit::GbMonth, "table storage"),
            Charge::usage(items::DYNAMODB_BACKUP, Unit::GbMonth, "backups made by `down --delete-data`"),
        ];
        if config.table.point_in_time_recovery {
            charges.push(Charge::usage(
                items::DYNAMODB_RECOVERY,
                Unit::GbMonth,
                "point-in-time recovery (per GB of table size)",
            ));
        }
        if config.table.kms_key_arn.is_some() {
            charges.push(Charge::usage(
                KMS_REQUESTS,
                Unit::MillionRequests,
                "KMS requests DynamoDB makes with table.kms_key_arn (the key's own $1 a month is billed to you)",
            ));
        }
        charges
    }

    /// A key of the user's must exist, be enabled and encrypt before anything is made.
    async fn preflight(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        match &ctx.config.table.kms_key_arn {
            Some(key) => check_key(ctx, "table.kms_key_arn", key, None).await,
            None => Ok(()),
        }
    }

    fn cost_note(&self, config: &Config, found: &Inspection) -> Option<String> {
        let changes = found.status == Health::Missing || found.changes.iter().any(|c| c.field == "table.kms_key_arn");
        (changes && config.table.kms_key_arn.is_some()).then(|| {
            "the table is encrypted with your KMS key (table.kms_key_arn): KMS bills $0.03 per 10,000 requests              DynamoDB makes with it; the key itself ($1 a month) is yours"
                .to_string()
        })
    }

    fn key(&self) -> Key {
        TABLE
    }

    fn needs(&self) -> Vec<Dep> {
        vec![]
    }

    // The tasks, which may write items until they stop, say so themselves (the service).

    /// Never `down`: that would take the service down, and the next `up` would refuse the same.
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            retention: Some(Retention {
                kept: "the table was kept (deletion protection on); the state file records it",
                status: "only table {id} is left, kept by `down --retain-table` (deletion protection on)",
                list: "only the table is left (down --retain-table)",
            }),
            advice: Some(NEW_KEYS),
            replaceable: true,
            ..Lifecycle::default()
        }
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<TableLive>, StackError> {
        let name = match ctx.id(TABLE) {
            Some(id) => id,
            None => latest_replacement(ctx).await?.unwrap_or_else(|| table_name(ctx.stack())),
        };
        // With the ARN recorded, the tags are read in the same round as the table.
        let recorded_arn = ctx.attr(TABLE_ARN);
        let tags_of = |arn: String| async move {
            let out = ctx
                .aws
                .dynamodb
                .list_tags_of_resource()
                .resource_arn(&arn)
                .send()
                .await
                .ctx("list the tags of table", &arn)?;
            Ok::<_, StackError>(
                out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect::<Vec<_>>(),
            )
        };
        let (table, early_tags) = tokio::join!(describe(ctx, &name), async {
            match &recorded_arn {
                Some(arn) => Some(found(tags_of(arn.clone()).await)),
                None => None,
            }
        });
        let Some(table) = table?.filter(|t| t.table_status() != Some(&TableStatus::Deleting)) else { return Ok(None) };
        let arn = table.table_arn().unwrap_or_default().to_string();
        let tags = match early_tags {
            Some(Ok(Some(tags))) if recorded_arn.as_deref() == Some(arn.as_str()) => tags,
            _ => tags_of(arn.clone()).await?,
        };
        ctx.owned(TABLE, format!("table {name}"), tags.pairs())?;
        ctx.run::<Seen>().note(&arn, tags.pairs());
        let recovery = recovery_of(ctx, &name).await?;
        Ok(Some(TableLive { name, table, recovery }))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &TableLive) -> Record {
        Record::id(&live.name)
            .with(TABLE_ARN, live.table.table_arn().unwrap_or_default())
            .with(KEY_SIGNATURE, live_signature(&live.table))
            .with(RECOVERY, on_off(live.recovery))
    }

    fn diff(&self, ctx: &Scope<'_>, live: &TableLive) -> Result<Vec<Changed<TableField>>, StackError> {
        let protected = live.table.deletion_protection_enabled() == Some(true);
        let mut diff = Diff::new();
        diff.replace(TableField::Keys, &live_signature(&live.table), &wanted_signature(ctx.config))
            .field(TableField::Protection, if protected { "on" } else { "off" }, "on")
            .field(
                TableField::Billing,
                if is_on_demand(&live.table) { "on-demand" } else { "provisioned" },
                "on-demand",
            )
            .field(TableField::Recovery, on_off(live.recovery), on_off(ctx.config.table.point_in_time_recovery))
            .field(TableField::Encryption, &encryption_of(&live.table), &wanted_encryption(ctx.config));
        Ok(diff.into_changes())
    }

    fn pending(&self, _ctx: &Scope<'_>, live: &TableLive) -> Option<String> {
        match live.table.table_status() {
            Some(TableStatus::Active) => None,
            Some(status) => Some(status.as_str().to_lowercase()),
            None => Some("unknown".into()),
        }
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<TableLive, StackError> {
        // The recorded name: a replacement's is recorded before it is created.
        let name = ctx.id(TABLE).unwrap_or_else(|| table_name(ctx.stack()));
        let keys = [(&ctx.config.table.partition_key, DynamoKeyType::Hash)]
            .into_iter()
            .chain(ctx.config.table.sort_key.as_ref().map(|k| (k, DynamoKeyType::Range)));
        let (mut attributes, mut schema) = (vec![], vec![]);
        for (key, kind) in keys {
            attributes.push(
                AttributeDefinition::builder()
                    .attribute_name(&key.name)
                    .attribute_type(ScalarAttributeType::from(key.kind.as_str()))
                    .build()
                    .expect("attribute has name and type"),
            );
            schema.push(
                KeySchemaElement::builder()
                    .attribute_name(&key.name)
                    .key_type(kind)
                    .build()
                    .expect("key has name and type"),
            );
        }
        let out = ctx
            .aws
            .dynamodb
            .create_table()
            .table_name(&name)
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(schema))
            .billing_mode(BillingMode::PayPerRequest)
            .deletion_protection_enabled(true)
            .set_sse_specification(ctx.config.table.kms_key_arn.is_some().then(|| sse_specification(ctx.config)))
            .set_tags(Some(ctx.sdk_tags(&name)))
            .send()
            .await
            .ctx("create table", &name);
        let table = match out {
            Ok(out) => out.table_description().cloned(),
            // Created by an interrupted run a moment ago: take it if it is ours.
            Err(e) if e.has_code(&["ResourceInUseException"]) => return self.find(ctx).await?.ok_or(e),
            Err(e) => return Err(e),
        };
        let table = returned(table, name.clone(), "create returned no table")?;
        // Point-in-time recovery is a separate call once the table is ACTIVE: `update` turns it on.
        Ok(TableLive { name, table, recovery: false })
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &TableLive,
        changes: &[Changed<TableField>],
    ) -> Result<Option<TableLive>, StackError> {
        // UpdateTable is refused while the table is CREATING.
        self.ready(ctx, line, live).await?;
        let mut call = ctx.aws.dynamodb.update_table().table_name(&live.name);
        let (mut table_changed, mut recovery_changed, mut encryption_changed) = (false, false, false);
        for change in changes {
            match change.field {
                TableField::Protection => call = call.deletion_protection_enabled(true),
                TableField::Billing => call = call.billing_mode(BillingMode::PayPerRequest),
                TableField::Recovery => recovery_changed = true,
                TableField::Encryption => encryption_changed = true,
                // A replacement: refused before any update.
                TableField::Keys => continue,
            }
            table_changed |= matches!(change.field, TableField::Protection | TableField::Billing);
        }
        if table_changed {
            call.send().await.ctx("update table", &live.name)?;
        }
        // In place (the table stays ACTIVE while DynamoDB re-encrypts its keys), in a call of its
        // own: UpdateTable takes one kind of change at a time.
        if encryption_changed {
            self.ready(ctx, line, live).await?;
            let call = ctx.aws.dynamodb.update_table().table_name(&live.name);
            call.sse_specification(sse_specification(ctx.config))
                .send()
                .await
                .ctx("change the key of table", &live.name)?;
        }
        if recovery_changed {
            set_recovery(ctx, line, &live.name, ctx.config.table.point_in_time_recovery).await?;
            ctx.set_attr(RECOVERY, on_off(ctx.config.table.point_in_time_recovery)).await?;
        }
        Ok(None)
    }

    async fn ready(&self, ctx: &Scope<'_>, line: &Line, live: &TableLive) -> Result<(), StackError> {
        let name = &live.name;
        wait::until(line, name, "become ACTIVE", budget::TABLE, || async {
            Ok(match describe(ctx, name).await?.as_ref().and_then(|t| t.table_status()) {
                Some(TableStatus::Active) => Poll::Ready(()),
                Some(status) => Poll::Pending(status.as_str().to_lowercase()),
                None => Poll::Pending("creating".into()),
            })
        })
        .await
    }

    /// A new table `<stack>-messages-<UTC time>` with the config's keys; the old one stays as it is
    /// (the service runs on it until its rollout ends) and leaves the stack in [`Table::finish_up`].
    async fn replace(&self, ctx: &Scope<'_>, line: &Line, live: TableLive) -> Result<TableLive, StackError> {
        // One replacement at a time: an earlier one that did not finish is finished first.
        self.finish_up(ctx).await?;
        let new = format!("{}-{}", table_name(ctx.stack()), chrono::Utc::now().format("%Y%m%d%H%M%S"));
        // Recorded before the call: a run killed from here on creates this name (`create` takes the
        // recorded one) and ends by taking the old table out of the stack.
        let old_arn = live.table.table_arn().unwrap_or_default();
        ctx.record(&Record::id(&new).with(REPLACES, &live.name).with(REPLACED_TABLE_ARN, old_arn)).await?;
        line.start("creating the replacement");
        let created = self.create(ctx, line).await?;
        self.ready(ctx, line, &created).await?;
        Ok(created)
    }

    fn unfinished(&self, ctx: &Scope<'_>) -> Option<String> {
        let old = ctx.attr(REPLACES)?;
        let new = ctx.id(TABLE).unwrap_or_default();
        Some(format!(
            "an interrupted `up --replace table` began replacing table {old} by {new} (keys {}) and did not finish: \
             the next `up` (no --replace needed) creates {new} if it is not there yet, rolls the service onto it, \
             then takes {old} out of the stack, kept with its items, and says how to move them",
            wanted_signature(ctx.config)
        ))
    }

    /// After a replacement, once the service runs on the new table: the old one leaves the stack
    /// with its items (its fargate-stack tags removed, so `down` and `list` no longer count it),
    /// and the run says where it is and how to move the items.
    async fn finish_up(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        release_replaced(ctx, false).await
    }

    /// `down` after a replacement that did not finish: the table it replaced leaves the stack too,
    /// kept with its items.
    async fn settle_gone(&self, ctx: &Scope<'_>, _line: &Line) -> Result<(), StackError> {
        release_replaced(ctx, true).await
    }

    /// Decided before anything is deleted: a table with data is refused unless `--delete-data`
    /// (or `--retain-table`) says what to do with it.
    async fn prepare_teardown(&self, ctx: &Scope<'_>) -> Result<Option<Prepared>, StackError> {
        let plan = plan_delete(ctx).await?;
        let prepared = prepared(&plan);
        *ctx.run::<Decided>().0.lock().expect("table plan") = plan;
        Ok(prepared)
    }

    /// What `down` does here was decided before anything was deleted ([`plan_delete`]).
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: TableLive) -> Result<Outcome, StackError> {
        let name = &live.name;
        release_replaced(ctx, true).await?;
        // A table still CREATING (a killed `up`) answers neither the count nor the deletion yet.
        self.ready(ctx, line, &live).await?;
        let plan = ctx.run::<Decided>().0.lock().expect("table plan").clone();
        match plan {
            TablePlan::Retain => {
                ctx.set_attr(TABLE_RETAINED, "true").await?;
                line.done("retained", "deletion protection stays on");
                return Ok(Outcome::Retained);
            }
            TablePlan::DeleteWithData { backup: true, .. } => {
                line.start("backing up");
                let backup_name = format!("{name}-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
                let out = ctx
                    .aws
                    .dynamodb
                    .create_backup()
                    .table_name(name)
                    .backup_name(&backup_name)
                    .send()
                    .await
                    .ctx("back up table", name)?;
                let arn = out.backup_details().map(|d| d.backup_arn().to_string()).unwrap_or_default();
                ctx.set_attr(BACKUP_ARN, &arn).await?;
                line.done("backed up", &arn);
                ctx.note(format!("table backup: {arn}"));
            }
            // Counted empty before `down` began, but the tasks could write until they stopped:
            // count again now that they have.
            TablePlan::DeleteEmpty | TablePlan::Absent => {
                let (items, _) = count_items(ctx, name).await?;
                if items > 0 {
                    return Err(StackError::Refused(format!(
                        "table {name} received {} while the service was stopping; it was not deleted. \
                         Run `down --delete-data` to back it up and delete it, or `down --retain-table` to keep it",
                        crate::report::count(items, "item")
                    )));
                }
            }
            TablePlan::DeleteWithData { backup: false, .. } => {}
        }
        line.start("deleting");
        if live.table.deletion_protection_enabled() == Some(true) {
            ignore_not_found(
                ctx.aws
                    .dynamodb
                    .update_table()
                    .table_name(name)
                    .deletion_protection_enabled(false)
                    .send()
                    .await
                    .ctx("lift the deletion protection of table", name)
                    .map(drop),
            )?;
        }
        wait::retry_codes(line, name, budget::TABLE, &["ResourceInUseException"], || async {
            ignore_not_found(
                ctx.aws.dynamodb.delete_table().table_name(name).send().await.ctx("delete table", name).map(drop),
            )
        })
        .await?;
        wait::until(line, name, "be deleted", budget::TABLE, || async {
            Ok(match describe(ctx, name).await? {
                None => Poll::Ready(()),
                Some(t) => Poll::Pending(t.table_status().map(|s| s.as_str().to_lowercase()).unwrap_or_default()),
            })
        })
        .await?;
        Ok(Outcome::Deleted)
    }
}

/// With no state: the newest replacement table (`up --replace table`) that carries this stack's tag,
/// if there is one (the table it replaced left the stack).
async fn latest_replacement(ctx: &Scope<'_>) -> Result<Option<String>, StackError> {
    let prefix = format!("{}-", table_name(ctx.stack()));
    let names = ctx.aws.dynamodb.list_tables().into_paginator().items().send().try_collect().await;
    let names: Vec<String> = names.ctx("list", "DynamoDB tables")?;
    let mut replacements: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && stack_of_table(n).as_deref() == Some(ctx.stack()))
        .collect();
    replacements.sort_unstable_by(|a, b| b.cmp(a));
    for name in replacements {
        let Some(arn) = describe(ctx, &name).await?.and_then(|t| t.table_arn().map(str::to_string)) else { continue };
        let tags = ctx.aws.dynamodb.list_tags_of_resource().resource_arn(&arn).send().await;
        let tags = tags.ctx("list the tags of table", &name)?;
        let pairs = tags.tags().iter().map(|t| (t.key(), t.value()));
        if ctx.owns(TABLE, pairs).is_ok() {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// The table a replacement took over from leaves the stack, kept as it is: once `up` is done with
/// the replacement, or on `down` (`teardown`) when it did not finish. The run says where it is.
async fn release_replaced(ctx: &Scope<'_>, teardown: bool) -> Result<(), StackError> {
    let Some(old) = ctx.attr(REPLACES) else { return Ok(()) };
    let new = ctx.id(TABLE).unwrap_or_default();
    let Some(table) = describe(ctx, &old).await? else {
        ctx.note(format!("table {old}, replaced by {new}, no longer exists: nothing of it was kept"));
        return ctx.set_attrs(&[(REPLACES, None), (REPLACED_TABLE_ARN, None)]).await.map_err(StackError::from);
    };
    let kept = release(ctx, &old, &table).await?;
    let delete = format!(
        "delete {old}: `aws dynamodb update-table --table-name {old} --no-deletion-protection-enabled` and `aws \
         dynamodb delete-table --table-name {old}`; until then it bills its storage"
    );
    let new_keys = wanted_signature(ctx.config);
    ctx.note(if teardown {
        format!(
            "table {old}, which an unfinished `up --replace table` was replacing by {new}: {kept}. Once done, {delete}"
        )
    } else {
        format!(
            "table {old} was replaced by {new} (keys {new_keys}): {kept}. To move the items, read them with `aws \
             dynamodb scan --table-name {old} --output json` and write each to {new} with `aws dynamodb put-item \
             --table-name {new} --item ITEM`, giving it the new key attributes ({new_keys}). Then {delete}"
        )
    });
    ctx.set_attrs(&[(REPLACES, None), (REPLACED_TABLE_ARN, None)]).await?;
    Ok(())
}

/// Take the replaced table `old` out of the stack, as it is: its fargate-stack tags removed. Returns
/// what is kept, in words.
async fn release(ctx: &Scope<'_>, old: &str, table: &TableDescription) -> Result<String, StackError> {
    let arn = table.table_arn().unwrap_or_default();
    let tags = ctx.aws.dynamodb.list_tags_of_resource().resource_arn(arn).send().await;
    let tags = tags.ctx("list the tags of table", old)?;
    let ours: Vec<String> =
        tags.tags().iter().map(|t| t.key().to_string()).filter(|k| k.starts_with("fargate-stack:")).collect();
    if !ours.is_empty() {
        let untag = ctx.aws.dynamodb.untag_resource().resource_arn(arn).set_tag_keys(Some(ours)).send().await;
        untag.ctx("take out of the stack table", old)?;
    }
    let (items, exact) = count_items(ctx, old).await?;
    let count = crate::report::count(items, "item");
    let count = if exact { count } else { format!("at least {count}") };
    Ok(format!(
        "{old} is kept as it was, with its {count} (keys {}), deletion protection on, outside stack {} (its \
         fargate-stack tags were removed: `down` and `list` leave it)",
        live_signature(table),
        ctx.stack()
    ))
}

/// Turn point-in-time recovery on or off. AWS refuses it for a while after the table is created
/// (ContinuousBackupsUnavailableException: backups are still being enabled): retried.
async fn set_recovery(ctx: &Scope<'_>, line: &Line, name: &str, on: bool) -> Result<(), StackError> {
    let spec = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(on)
        .build()
        .expect("point_in_time_recovery_enabled is set");
    wait::retry_codes(line, name, budget::TABLE, &["ContinuousBackupsUnavailableException"], || async {
        ctx.aws
            .dynamodb
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(spec.clone())
            .send()
            .await
            .ctx("set the point-in-time recovery of table", name)
            .map(drop)
    })
    .await
}

/// Items in the table: the count, and whether it is exact (a scan cut off gives a lower bound).
pub async fn count_items(ctx: &Scope<'_>, name: &str) -> Result<(u64, bool), StackError> {
    let mut count = 0u64;
    let mut start = None;
    for _page in 0..1000 {
        let out = ctx
            .aws
            .dynamodb
            .scan()
            .table_name(name)
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .ctx("count the items of table", name)?;
        count += out.count() as u64;
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok((count, true));
        }
    }
    Ok((count, false))
}

/// What `down` will do with the table; decided before anything is deleted, so that a refusal
/// leaves the stack whole.
pub async fn plan_delete(ctx: &Scope<'_>) -> Result<TablePlan, StackError> {
    let live = match (Table { customer_key: false }).find(ctx).await {
        Ok(live) => live,
        // Someone else's table of that name: `down` leaves it alone.
        Err(StackError::NotOurs { .. }) if ctx.id(TABLE).is_none() => None,
        Err(e) => return Err(e),
    };
    let Some(live) = live else { return Ok(TablePlan::Absent) };
    let policy = ctx.run::<DataPolicy>();
    if policy.retain_table {
        return Ok(TablePlan::Retain);
    }
    // Still CREATING (a killed `up`): it holds nothing yet, and `destroy` counts again once ACTIVE.
    if live.table.table_status() == Some(&TableStatus::Creating) {
        return Ok(TablePlan::DeleteEmpty);
    }
    let (items, exact) = count_items(ctx, &live.name).await?;
    if items == 0 {
        return Ok(TablePlan::DeleteEmpty);
    }
    if !policy.delete_data {
        let count = crate::report::count(items, "item");
        let count = if exact { count } else { format!("at least {count}") };
        return Err(StackError::Refused(format!(
            "table {} holds {count}; nothing was deleted. Run `down --delete-data` to back it up and delete it \
             (add --no-backup to skip the backup), or `down --retain-table` to keep it",
            live.name
        )));
    }
    Ok(TablePlan::DeleteWithData { items, backup: !policy.no_backup })
}

/// What the plan adds to `down`'s confirmation and progress.
fn prepared(plan: &TablePlan) -> Option<Prepared> {
    match plan {
        TablePlan::DeleteWithData { items, backup } => Some(Prepared {
            confirm: Some(format!(
                "the table holds {items} items and will be deleted {}",
                if *backup { "after an on-demand backup" } else { "WITHOUT a backup" }
            )),
            progress: Some(format!(
                "the table holds {items} items; deleting it {} (--delete-data)",
                if *backup { "after an on-demand backup" } else { "without a backup (--no-backup)" }
            )),
        }),
        TablePlan::Retain => {
            Some(Prepared { confirm: Some("the table is kept (--retain-table)".into()), progress: None })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use aws_sdk_dynamodb::types::{BillingModeSummary, KeySchemaElement};

    fn described(keys: &[(&str, &str, DynamoKeyType)]) -> TableDescription {
        let mut t = TableDescription::builder();
        for (name, kind, key_type) in keys {
            t = t
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(*name)
                        .attribute_type(ScalarAttributeType::from(*kind))
                        .build()
                        .unwrap(),
                )
                .key_schema(
                    KeySchemaElement::builder().attribute_name(*name).key_type(key_type.clone()).build().unwrap(),
                );
        }
        t.billing_mode_summary(BillingModeSummary::builder().billing_mode(BillingMode::PayPerRequest).build()).build()
    }

    #[test]
    fn key_signatures_compare_what_the_config_asks_for() {
        let config = Config::parse("t", DEFAULT_TOML).unwrap();
        assert_eq!(wanted_signature(&config), "id:S,created_at:N");
        let live = described(&[("created_at", "N", DynamoKeyType::Range), ("id", "S", DynamoKeyType::Hash)]);
        assert_eq!(live_signature(&live), "id:S,created_at:N", "hash key first, whatever order AWS lists");
        assert_eq!(live_signature(&described(&[("id", "S", DynamoKeyType::Hash)])), "id:S");
        assert!(is_on_demand(&live));
    }

    #[test]
    fn a_replacement_table_is_named_for_its_stack() {
        assert_eq!(stack_of_table("app-messages").as_deref(), Some("app"));
        assert_eq!(stack_of_table("app-messages-20261203071500").as_deref(), Some("app"));
        assert_eq!(stack_of_table("app-2-messages-20261203071500").as_deref(), Some("app-2"));
        assert_eq!(stack_of_table("app-messages-2026").as_deref(), None);
        assert_eq!(stack_of_table("app-messages-x").as_deref(), None);
    }
}
