//! IAM roles for the tasks, with inline least-privilege policies (no AWS-managed policies, so the
//! grants are exactly what is written here).

use aws_sdk_iam::types::Tag;
use serde_json::{json, Value};

use crate::context::{keys, Ctx, Outcome};
use crate::error::{ignore_not_found, AwsContext, StackError};
use crate::progress::Line;
use crate::resources::Inspection;

pub const POLICY_NAME: &str = "fargate-stack";

/// Item-level DynamoDB actions: read and write items, nothing that changes or drops the table.
pub const TABLE_ITEM_ACTIONS: &[&str] = &[
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Used by ECS to pull the image and ship logs.
    Execution,
    /// Assumed by the application: the table's items only.
    Task,
}

impl Role {
    pub fn key(self) -> &'static str {
        match self {
            Role::Execution => keys::EXECUTION_ROLE,
            Role::Task => keys::TASK_ROLE,
        }
    }

    pub fn name(self, ctx: &Ctx) -> String {
        match self {
            Role::Execution => ctx.name("execution-role"),
            Role::Task => ctx.name("task-role"),
        }
    }
}

/// `arn:<partition>:<service>:<region>:<account>:...` -> (partition, account).
fn partition_and_account(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn").then(|| (parts[1].to_string(), parts[4].to_string()))
}

/// Only ECS tasks of this account may assume the roles (guards against the confused deputy).
pub fn trust_policy(account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }]
    })
}

/// The registry repository ARN when the image lives in ECR, else None (public registries need no grant).
pub fn ecr_repository_arn(image: &str, partition: &str) -> Option<String> {
    let (host, rest) = image.split_once('/')?;
    let labels: Vec<&str> = host.split('.').collect();
    // <account>.dkr.ecr.<region>.amazonaws.com[.cn]
    if labels.len() < 6 || labels[1] != "dkr" || labels[2] != "ecr" {
        return None;
    }
    let repository = rest.split(['@', ':']).next()?;
    Some(format!("arn:{partition}:ecr:{}:{}:repository/{repository}", labels[3], labels[0]))
}

pub fn execution_policy(image: &str, log_group_arn: &str) -> Value {
    let partition = partition_and_account(log_group_arn).map(|(p, _)| p).unwrap_or_else(|| "aws".into());
    let mut statements = vec![json!({
        "Sid": "WriteLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": format!("{log_group_arn}:log-stream:*")
    })];
    if let Some(repository) = ecr_repository_arn(image, &partition) {
        statements.push(
            json!({"Sid": "EcrToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}),
        );
        statements.push(json!({
            "Sid": "PullImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": repository
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

pub fn task_policy(table_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TableItems",
            "Effect": "Allow",
            "Action": TABLE_ITEM_ACTIONS,
            "Resource": [table_arn, format!("{table_arn}/index/*")]
        }]
    })
}

/// The policy this role should carry, from what the state already holds.
fn wanted_policy(ctx: &Ctx, role: Role) -> Result<(Value, String), StackError> {
    let key = role.key();
    let source_arn = match role {
        Role::Execution => ctx.need_attr(keys::LOG_GROUP, "arn", key)?,
        Role::Task => ctx.need_attr(keys::TABLE, "arn", key)?,
    };
    let account = partition_and_account(&source_arn).map(|(_, a)| a).unwrap_or_default();
    let policy = match role {
        Role::Execution => execution_policy(&ctx.config.service.image, &source_arn),
        Role::Task => task_policy(&source_arn),
    };
    Ok((policy, account))
}

/// IAM returns policy documents URL-encoded.
fn decode_document(document: &str) -> Option<Value> {
    let decoded = percent_encoding::percent_decode_str(document).decode_utf8().ok()?;
    serde_json::from_str(&decoded).ok()
}

async fn current_policy(ctx: &Ctx, name: &str) -> Result<Option<Value>, StackError> {
    match ctx
        .aws
        .iam
        .get_role_policy()
        .role_name(name)
        .policy_name(POLICY_NAME)
        .send()
        .await
        .ctx("read the policy of role", name)
    {
        Ok(out) => Ok(decode_document(out.policy_document())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn ensure_role(ctx: &Ctx, line: &Line, role: Role) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = role.key();
    let name = role.name(ctx);
    let (policy, account) = wanted_policy(ctx, role)?;
    let mut outcome = Outcome::Unchanged;
    let arn = match ctx.aws.iam.get_role().role_name(&name).send().await.ctx("read role", &name) {
        Ok(out) => out.role().map(|r| r.arn().to_string()).unwrap_or_default(),
        Err(e) if e.is_not_found() => {
            line.start("creating");
            let tags = ctx
                .tags(key, &name)
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("tag"))
                .collect();
            let created = ctx
                .aws
                .iam
                .create_role()
                .role_name(&name)
                .description(format!("fargate-stack {}: {key}", ctx.stack()))
                .assume_role_policy_document(trust_policy(&account).to_string())
                .set_tags(Some(tags))
                .send()
                .await
                .ctx("create role", &name);
            outcome = Outcome::Created;
            match created {
                Ok(out) => out.role().map(|r| r.arn().to_string()).unwrap_or_default(),
                // Created by an interrupted run a moment ago.
                Err(e) if e.has_code(&["EntityAlreadyExists"]) => ctx
                    .aws
                    .iam
                    .get_role()
                    .role_name(&name)
                    .send()
                    .await
                    .ctx("read role", &name)?
                    .role()
                    .map(|r| r.arn().to_string())
                    .unwrap_or_default(),
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    ctx.record(key, "iam:role", &name, &[("arn", arn)])?;
    if current_policy(ctx, &name).await?.as_ref() != Some(&policy) {
        ctx.aws
            .iam
            .put_role_policy()
            .role_name(&name)
            .policy_name(POLICY_NAME)
            .policy_document(policy.to_string())
            .send()
            .await
            .ctx("write the policy of role", &name)?;
        if outcome == Outcome::Unchanged {
            outcome = Outcome::Updated;
        }
    }
    Ok(outcome)
}

pub async fn delete_role(ctx: &Ctx, line: &Line, role: Role) -> Result<Outcome, StackError> {
    let name = ctx.id(role.key()).unwrap_or_else(|| role.name(ctx));
    let policies =
        match ctx.aws.iam.list_role_policies().role_name(&name).send().await.ctx("list the policies of role", &name) {
            Ok(out) => out.policy_names().to_vec(),
            Err(e) if e.is_not_found() => {
                ctx.forget(role.key())?;
                return Ok(Outcome::Absent);
            }
            Err(e) => return Err(e),
        };
    line.start("deleting");
    for policy in policies {
        ignore_not_found(
            ctx.aws
                .iam
                .delete_role_policy()
                .role_name(&name)
                .policy_name(&policy)
                .send()
                .await
                .ctx("delete the policy of role", &name)
                .map(drop),
        )?;
    }
    let attached = ctx
        .aws
        .iam
        .list_attached_role_policies()
        .role_name(&name)
        .send()
        .await
        .ctx("list managed policies of role", &name);
    if let Ok(attached) = attached {
        for policy in attached.attached_policies() {
            if let Some(arn) = policy.policy_arn() {
                ignore_not_found(
                    ctx.aws
                        .iam
                        .detach_role_policy()
                        .role_name(&name)
                        .policy_arn(arn)
                        .send()
                        .await
                        .ctx("detach a policy from role", &name)
                        .map(drop),
                )?;
            }
        }
    }
    ignore_not_found(ctx.aws.iam.delete_role().role_name(&name).send().await.ctx("delete role", &name).map(drop))?;
    ctx.forget(role.key())?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_role(ctx: &Ctx, role: Role) -> Result<Inspection, StackError> {
    let Some(name) = ctx.id(role.key()) else { return Ok(Inspection::not_recorded()) };
    let (role_found, current) =
        tokio::join!(ctx.aws.iam.get_role().role_name(&name).send(), current_policy(ctx, &name));
    match role_found.ctx("read role", &name) {
        Err(e) if e.is_not_found() => return Ok(Inspection::missing(Some(name), "deleted outside fargate-stack")),
        other => drop(other?),
    }
    let Ok((wanted, _)) = wanted_policy(ctx, role) else { return Ok(Inspection::ok(name)) };
    Ok(if current?.as_ref() == Some(&wanted) {
        Inspection::ok(name)
    } else {
        Inspection::drifted(name, format!("inline policy {POLICY_NAME} differs"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_policy_is_item_level_on_the_table_only() {
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/s-messages";
        let p = task_policy(arn);
        let statements = p["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        let actions: Vec<&str> =
            statements[0]["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert!(actions.iter().all(|a| a.starts_with("dynamodb:") && !a.contains('*')));
        for forbidden in ["dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:CreateTable", "dynamodb:*"] {
            assert!(!actions.contains(&forbidden), "{forbidden}");
        }
        assert_eq!(statements[0]["Resource"], json!([arn, format!("{arn}/index/*")]));
    }

    #[test]
    fn execution_policy_grants_logs_and_only_ecr_when_needed() {
        let logs = "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/s";
        let p = execution_policy("nginx:latest", logs);
        assert_eq!(p["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(p["Statement"][0]["Resource"], format!("{logs}:log-stream:*"));
        let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app/web:1.0";
        let p = execution_policy(ecr, logs);
        let s = p["Statement"].as_array().unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[2]["Resource"], "arn:aws:ecr:us-east-1:123456789012:repository/app/web");
    }

    #[test]
    fn trust_is_ecs_tasks_of_this_account() {
        let t = trust_policy("123456789012");
        assert_eq!(t["Statement"][0]["Principal"]["Service"], "ecs-tasks.amazonaws.com");
        assert_eq!(t["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"], "123456789012");
    }

    #[test]
    fn decodes_url_encoded_documents() {
        let v = decode_document("%7B%22a%22%3A%201%7D").unwrap();
        assert_eq!(v, json!({"a": 1}));
        assert_eq!(decode_document("{\"a\":1}").unwrap(), json!({"a": 1}));
    }
}
