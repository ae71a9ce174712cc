//! The DynamoDB table: on-demand, deletion protection on, never dropped silently with data in it.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType as DynamoKeyType, ScalarAttributeType, Select,
    TableDescription, TableStatus, Tag,
};

use crate::config::KeyAttribute;
use crate::context::{keys, Ctx, Outcome};
use crate::error::{ignore_not_found, AwsContext, StackError};
use crate::progress::Line;
use crate::resources::Inspection;
use crate::wait::{self, budget, Poll};

pub fn table_name(ctx: &Ctx) -> String {
    ctx.name("messages")
}

async fn describe(ctx: &Ctx, name: &str) -> Result<Option<TableDescription>, StackError> {
    match ctx.aws.dynamodb.describe_table().table_name(name).send().await.ctx("describe table", name) {
        Ok(out) => Ok(out.table().cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn key_schema(table: &TableDescription) -> (Option<(String, String)>, Option<(String, String)>) {
    let type_of = |name: &str| {
        table
            .attribute_definitions()
            .iter()
            .find(|a| a.attribute_name() == name)
            .map(|a| a.attribute_type().as_str().to_string())
            .unwrap_or_default()
    };
    let find = |kind: DynamoKeyType| {
        table
            .key_schema()
            .iter()
            .find(|k| *k.key_type() == kind)
            .map(|k| (k.attribute_name().to_string(), type_of(k.attribute_name())))
    };
    (find(DynamoKeyType::Hash), find(DynamoKeyType::Range))
}

fn wanted_schema(ctx: &Ctx) -> (Option<(String, String)>, Option<(String, String)>) {
    let pair = |k: &KeyAttribute| (k.name.clone(), k.kind.as_str().to_string());
    (Some(pair(&ctx.config.table.partition_key)), ctx.config.table.sort_key.as_ref().map(pair))
}

/// The key schema as one comparable string, e.g. `id:S,created_at:N`.
pub fn schema_signature(schema: &(Option<(String, String)>, Option<(String, String)>)) -> String {
    [&schema.0, &schema.1]
        .iter()
        .filter_map(|k| k.as_ref().map(|(n, t)| format!("{n}:{t}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// The key schema the config asks for, as `schema_signature` writes it.
pub fn wanted_signature(config: &crate::config::Config) -> String {
    let pair = |k: &KeyAttribute| (k.name.clone(), k.kind.as_str().to_string());
    schema_signature(&(Some(pair(&config.table.partition_key)), config.table.sort_key.as_ref().map(pair)))
}

fn describe_schema(schema: &(Option<(String, String)>, Option<(String, String)>)) -> String {
    let part =
        |k: &Option<(String, String)>| k.as_ref().map(|(n, t)| format!("{n} ({t})")).unwrap_or_else(|| "none".into());
    format!("partition key {}, sort key {}", part(&schema.0), part(&schema.1))
}

pub async fn ensure_table(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let name = table_name(ctx);
    let (existing, outcome) = match describe(ctx, &name).await? {
        Some(table) if table.table_status() != Some(&TableStatus::Deleting) => (table, Outcome::Unchanged),
        _ => {
            line.start("creating");
            (create(ctx, &name).await?, Outcome::Created)
        }
    };
    let arn = existing.table_arn().unwrap_or_default().to_string();
    let (have, want) = (key_schema(&existing), wanted_schema(ctx));
    ctx.record(keys::TABLE, "dynamodb:table", &name, &[("arn", arn), ("keys", schema_signature(&have))])?;
    if have != want {
        return Err(StackError::Refused(format!(
            "table {name} has {} but the config asks for {}; changing keys replaces the table and its data. \
             Export the data, run `fargate-stack down --delete-data`, then `up`.",
            describe_schema(&have),
            describe_schema(&want)
        )));
    }
    wait::until(line, &name, "become ACTIVE", budget::TABLE, || async {
        let table = describe(ctx, &name).await?;
        Ok(match table.as_ref().and_then(|t| t.table_status()) {
            Some(TableStatus::Active) => Poll::Ready(()),
            Some(status) => Poll::Pending(status.as_str().to_lowercase()),
            None => Poll::Pending("creating".into()),
        })
    })
    .await?;
    Ok(outcome)
}

async fn create(ctx: &Ctx, name: &str) -> Result<TableDescription, StackError> {
    let mut attributes = vec![];
    let mut schema = vec![];
    let keys = [(&ctx.config.table.partition_key, DynamoKeyType::Hash)]
        .into_iter()
        .chain(ctx.config.table.sort_key.as_ref().map(|k| (k, DynamoKeyType::Range)));
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
    let tags = ctx
        .tags(keys::TABLE, name)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("tag has key and value"))
        .collect();
    let out = ctx
        .aws
        .dynamodb
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(schema))
        .billing_mode(BillingMode::PayPerRequest)
        .deletion_protection_enabled(true)
        .set_tags(Some(tags))
        .send()
        .await;
    match out.ctx("create table", name) {
        Ok(out) => out.table_description().cloned().ok_or_else(|| StackError::Failed {
            resource: name.to_string(),
            message: "create returned no table".into(),
        }),
        // Created by an interrupted run a moment ago: adopt it.
        Err(e) if e.has_code(&["ResourceInUseException"]) => describe(ctx, name).await?.ok_or(e),
        Err(e) => Err(e),
    }
}

/// Items in the table: 0, or a lower bound when the scan is cut off.
pub async fn count_items(ctx: &Ctx, name: &str) -> Result<(u64, bool), StackError> {
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

/// What `down` will do with the table; checked before anything is deleted.
#[derive(Debug, Clone, PartialEq)]
pub enum TablePlan {
    Absent,
    DeleteEmpty,
    DeleteWithData { items: u64, backup: bool },
    Retain,
}

pub async fn plan_delete(ctx: &Ctx) -> Result<TablePlan, StackError> {
    // By name when the state does not record it (an interrupted run, or `down --name`).
    let name = ctx.id(keys::TABLE).unwrap_or_else(|| table_name(ctx));
    if describe(ctx, &name).await?.is_none() {
        return Ok(TablePlan::Absent);
    }
    if ctx.down.retain_table {
        return Ok(TablePlan::Retain);
    }
    let (items, exact) = count_items(ctx, &name).await?;
    if items == 0 {
        return Ok(TablePlan::DeleteEmpty);
    }
    if !ctx.down.delete_data {
        let count = if exact { items.to_string() } else { format!("at least {items}") };
        return Err(StackError::Refused(format!(
            "table {name} holds {count} items; nothing was deleted. Run `down --delete-data` to back it up and delete it \
             (add --no-backup to skip the backup), or `down --retain-table` to keep it"
        )));
    }
    Ok(TablePlan::DeleteWithData { items, backup: !ctx.down.no_backup })
}

pub async fn delete_table(ctx: &Ctx, line: &Line, plan: &TablePlan) -> Result<Outcome, StackError> {
    let name = ctx.id(keys::TABLE).unwrap_or_else(|| table_name(ctx));
    match plan {
        TablePlan::Absent => {
            ctx.forget(keys::TABLE)?;
            return Ok(Outcome::Absent);
        }
        TablePlan::Retain => {
            if ctx.id(keys::TABLE).is_none() {
                let arn =
                    describe(ctx, &name).await?.and_then(|t| t.table_arn().map(str::to_string)).unwrap_or_default();
                ctx.record(keys::TABLE, "dynamodb:table", &name, &[("arn", arn)])?;
            }
            ctx.set_attr(keys::TABLE, "retained", "true")?;
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
                .table_name(&name)
                .backup_name(&backup_name)
                .send()
                .await
                .ctx("back up table", &name)?;
            let arn = out.backup_details().map(|d| d.backup_arn().to_string()).unwrap_or_default();
            ctx.set_attr(keys::TABLE, "backup_arn", &arn)?;
            line.done("backed up", &arn);
            ctx.note(format!("table backup: {arn}"));
        }
        TablePlan::DeleteWithData { backup: false, .. } | TablePlan::DeleteEmpty => {}
    }
    line.start("deleting");
    if describe(ctx, &name).await?.is_some_and(|t| t.deletion_protection_enabled() == Some(true)) {
        ignore_not_found(
            ctx.aws
                .dynamodb
                .update_table()
                .table_name(&name)
                .deletion_protection_enabled(false)
                .send()
                .await
                .ctx("lift deletion protection of table", &name)
                .map(drop),
        )?;
    }
    wait::retry_codes(line, &name, budget::TABLE, &["ResourceInUseException"], || async {
        ignore_not_found(
            ctx.aws.dynamodb.delete_table().table_name(&name).send().await.ctx("delete table", &name).map(drop),
        )
    })
    .await?;
    wait::until(line, &name, "be deleted", budget::TABLE, || async {
        Ok(match describe(ctx, &name).await? {
            None => Poll::Ready(()),
            Some(t) => Poll::Pending(t.table_status().map(|s| s.as_str().to_lowercase()).unwrap_or_default()),
        })
    })
    .await?;
    ctx.forget(keys::TABLE)?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_table(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(name) = ctx.id(keys::TABLE) else { return Ok(Inspection::not_recorded()) };
    Ok(match describe(ctx, &name).await? {
        None => Inspection::missing(Some(name), "deleted outside fargate-stack"),
        Some(t) => match t.table_status() {
            Some(TableStatus::Active) if key_schema(&t) != wanted_schema(ctx) => {
                Inspection::drifted(name, format!("keys are {}", describe_schema(&key_schema(&t))))
            }
            Some(TableStatus::Active) if t.deletion_protection_enabled() != Some(true) => {
                Inspection::drifted(name, "deletion protection is off")
            }
            Some(TableStatus::Active) => Inspection::ok(name),
            Some(TableStatus::Deleting) => Inspection::missing(Some(name), "deleting"),
            Some(s) => Inspection::pending(name, s.as_str().to_lowercase()),
            None => Inspection::pending(name, "unknown"),
        },
    })
}
