//! The CloudWatch log group the containers write to, with a retention.

use aws_sdk_cloudwatchlogs::types::LogGroup;

use crate::context::{keys, Ctx, Outcome};
use crate::error::{ignore_not_found, AwsContext, StackError};
use crate::progress::Line;
use crate::resources::Inspection;

pub fn log_group_name(ctx: &Ctx) -> String {
    format!("/ecs/{}", ctx.stack())
}

async fn describe(ctx: &Ctx, name: &str) -> Result<Option<LogGroup>, StackError> {
    let out =
        ctx.aws.logs.describe_log_groups().log_group_name_prefix(name).send().await.ctx("describe log group", name)?;
    Ok(out.log_groups().iter().find(|g| g.log_group_name() == Some(name)).cloned())
}

/// The group's ARN without the `:*` suffix some APIs add.
fn arn_of(group: &LogGroup) -> String {
    group
        .log_group_arn()
        .map(str::to_string)
        .or_else(|| group.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .unwrap_or_default()
}

pub async fn ensure_log_group(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let name = log_group_name(ctx);
    let retention = ctx.config.logs.retention_days as i32;
    let (group, mut outcome) = match describe(ctx, &name).await? {
        Some(group) => (group, Outcome::Unchanged),
        None => {
            line.start("creating");
            let tags = ctx.tags(keys::LOG_GROUP, &name).into_iter().collect();
            match ctx
                .aws
                .logs
                .create_log_group()
                .log_group_name(&name)
                .set_tags(Some(tags))
                .send()
                .await
                .ctx("create log group", &name)
            {
                Err(e) if e.has_code(&["ResourceAlreadyExistsException"]) => {}
                other => drop(other?),
            }
            let group = describe(ctx, &name).await?.ok_or_else(|| StackError::Failed {
                resource: name.clone(),
                message: "was created but cannot be described".into(),
            })?;
            (group, Outcome::Created)
        }
    };
    ctx.record(keys::LOG_GROUP, "logs:log-group", &name, &[("arn", arn_of(&group))])?;
    if group.retention_in_days() != Some(retention) {
        ctx.aws
            .logs
            .put_retention_policy()
            .log_group_name(&name)
            .retention_in_days(retention)
            .send()
            .await
            .ctx("set the retention of log group", &name)?;
        if outcome == Outcome::Unchanged {
            outcome = Outcome::Updated;
        }
    }
    Ok(outcome)
}

pub async fn delete_log_group(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let name = ctx.id(keys::LOG_GROUP).unwrap_or_else(|| log_group_name(ctx));
    if describe(ctx, &name).await?.is_none() {
        ctx.forget(keys::LOG_GROUP)?;
        return Ok(Outcome::Absent);
    }
    line.start("deleting");
    ignore_not_found(
        ctx.aws.logs.delete_log_group().log_group_name(&name).send().await.ctx("delete log group", &name).map(drop),
    )?;
    ctx.forget(keys::LOG_GROUP)?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_log_group(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(name) = ctx.id(keys::LOG_GROUP) else { return Ok(Inspection::not_recorded()) };
    Ok(match describe(ctx, &name).await? {
        None => Inspection::missing(Some(name), "deleted outside fargate-stack"),
        Some(g) if g.retention_in_days() != Some(ctx.config.logs.retention_days as i32) => Inspection::drifted(
            name,
            format!(
                "retention {} days, config says {}",
                g.retention_in_days().map_or("never expire".into(), |d| d.to_string()),
                ctx.config.logs.retention_days
            ),
        ),
        Some(_) => Inspection::ok(name),
    })
}
