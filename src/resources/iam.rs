//! IAM roles for the tasks, with inline least-privilege policies (no AWS-managed policies, so the
//! grants are exactly what is written here).

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::access::{self, global_arn, Permission, STACK};
use crate::aws::Clients;
use crate::bill::Charge;
use crate::config::Config;
use crate::error::{found, ignore_not_found, AwsContext, StackError};
use crate::model::{
    made_for, Attr, Changed, Dep, Diff, Field, Key, Kind, Managed, Nodes, Outcome, Record, Scope, Shape, Sighting,
    Sweep,
};
use crate::progress::Line;
use crate::resources::logs::LOG_GROUP_ARN;
use crate::resources::secrets;
use crate::resources::table::{REPLACED_TABLE_ARN, TABLE_ARN};
use crate::resources::tags::TagPairs;
use crate::resources::task_definition::image::{self, TASK_DEFINITION};

const ROLE: Kind = Kind::new("iam:role");
pub const EXECUTION_ROLE: Key = Key::new("role-execution", ROLE);
pub const TASK_ROLE: Key = Key::new("role-task", ROLE);
pub const EXECUTION_ROLE_ARN: Attr = Attr::new(EXECUTION_ROLE, "arn");
pub const TASK_ROLE_ARN: Attr = Attr::new(TASK_ROLE, "arn");

pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    let secrets = shape.is_everything() || !shape.config().service.secrets.is_empty();
    nodes.managed(Role::Execution { secrets });
    nodes.managed(Role::Task);
}

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
    /// Used by ECS to pull the image and ship logs (and read `[service.secrets]`, which the tool
    /// then looks up: `secrets`).
    Execution { secrets: bool },
    /// Assumed by the application: the table's items only.
    Task,
}

impl Role {
    fn role_key(self) -> Key {
        match self {
            Role::Execution { .. } => EXECUTION_ROLE,
            Role::Task => TASK_ROLE,
        }
    }

    /// The role's name: `<stack>-execution-role` or `<stack>-task-role`.
    pub fn name(self, stack: &str) -> String {
        match self {
            Role::Execution { .. } => format!("{stack}-execution-role"),
            Role::Task => format!("{stack}-task-role"),
        }
    }
}

/// Every role named as a stack's execution or task role.
fn sweep_roles(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c.iam.list_roles().into_paginator().items().send().try_collect().await.ctx("list", "IAM roles")?;
        let mut sightings = vec![];
        for role in all {
            for kind in [Role::Execution { secrets: false }, Role::Task] {
                let make: fn(&str) -> String = match kind {
                    Role::Execution { .. } => |s| Role::Execution { secrets: false }.name(s),
                    Role::Task => |s| Role::Task.name(s),
                };
                if let Some(stack) = made_for(role.role_name(), make) {
                    let sighting =
                        Sighting::new(ROLE, role.role_name()).named(role.role_name(), |_| Some(stack.clone()));
                    sightings.push(Sighting { resource: Some(kind.role_key().to_string()), ..sighting });
                }
            }
        }
        Ok(sightings)
    })
}

/// Where a resource lives, read from its ARN: what the trust policy's conditions name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArnHome {
    pub partition: String,
    pub region: String,
    pub account: String,
}

/// `arn:<partition>:<service>:<region>:<account>:...` -> its partition, region and account.
pub fn arn_home(arn: &str) -> Option<ArnHome> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn").then(|| ArnHome {
        partition: parts[1].to_string(),
        region: parts[3].to_string(),
        account: parts[4].to_string(),
    })
}

/// Only ECS, acting for this account in this region, may have tasks assume the roles (the
/// confused deputy): `aws:SourceAccount` beside `aws:SourceArn`, as AWS's ECS guidance pairs them.
pub fn trust_policy(home: &ArnHome) -> Value {
    service_trust("ecs-tasks.amazonaws.com", home, "ecs:*")
}

/// A role `service` may assume only when acting for this account, for its resources matching
/// `arn:<partition>:<source>` in this region and account (`source`: `ecs:*`, `ec2:vpc-flow-log/*`).
pub fn service_trust(service: &str, home: &ArnHome, source: &str) -> Value {
    let ArnHome { partition, region, account } = home;
    let (source_service, resource) = source.split_once(':').unwrap_or((source, "*"));
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": format!("arn:{partition}:{source_service}:{region}:{account}:{resource}")}
            }
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

/// Logs, the image's ECR repository if it has one, and the `[service.secrets]` grants (`secrets`).
pub fn execution_policy(image: &str, log_group_arn: &str, secrets: Vec<Value>) -> Value {
    let partition = arn_home(log_group_arn).map(|h| h.partition).unwrap_or_else(|| "aws".into());
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
    statements.extend(secrets);
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// What the ECS Exec agent in a task opens its SSM session channels with (AWS gives these no
/// resource-level scope).
pub const EXEC_ACTIONS: [&str; 4] = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
];

/// Item access to the stack's table; during `up --replace table` to the replaced one too (`also`),
/// which the tasks of the old revision use until the rollout ends. With ECS Exec (`exec`), the
/// agent's session channels.
pub fn task_policy(table_arn: &str, also: Option<&str>, exec: bool) -> Value {
    let resources: Vec<String> =
        [Some(table_arn), also].into_iter().flatten().flat_map(|a| [a.to_string(), format!("{a}/index/*")]).collect();
    let mut statements = vec![json!({
        "Sid": "TableItems",
        "Effect": "Allow",
        "Action": TABLE_ITEM_ACTIONS,
        "Resource": resources
    })];
    if exec {
        statements.push(json!({"Sid": "ExecSessions", "Effect": "Allow", "Action": EXEC_ACTIONS, "Resource": "*"}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The inline policy and the stack's home (for the trust policy) this role should have, from
/// what the state already holds.
fn wanted_policy(ctx: &Scope<'_>, role: Role) -> Result<(Value, ArnHome), StackError> {
    let source_arn = match role {
        Role::Execution { .. } => ctx.need_attr(LOG_GROUP_ARN)?,
        Role::Task => ctx.need_attr(TABLE_ARN)?,
    };
    let home = arn_home(&source_arn).unwrap_or_default();
    let policy = match role {
        // The image the stack runs: a `deploy` may have shipped one from another ECR repository.
        Role::Execution { .. } => {
            let grants = secrets::looked_up(ctx, "the execution role")?.grants();
            execution_policy(&image::wanted(ctx).image, &source_arn, grants)
        }
        Role::Task => {
            task_policy(&source_arn, ctx.attr(REPLACED_TABLE_ARN).as_deref(), ctx.config.service.enable_execute_command)
        }
    };
    Ok((policy, home))
}

/// IAM returns policy documents URL-encoded.
fn decode_document(document: &str) -> Option<Value> {
    let decoded = percent_encoding::percent_decode_str(document).decode_utf8().ok()?;
    serde_json::from_str(&decoded).ok()
}

/// A role as IAM has it: what every role of the stack is compared on.
pub struct RoleLive {
    pub name: String,
    pub arn: String,
    pub trust: Option<Value>,
    pub policy: Option<Value>,
    pub managed: Vec<String>,
    /// The permissions boundary's policy ARN, if the role has one.
    pub boundary: Option<String>,
    /// Its tags (GetRole answers them).
    pub tags: Vec<(String, String)>,
}

/// What a role can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum RoleField {
    InlinePolicy,
    TrustPolicy,
    ManagedPolicies,
    PermissionsBoundary,
}

impl Field for RoleField {
    fn label(&self) -> String {
        match self {
            RoleField::InlinePolicy => "inline policy",
            RoleField::TrustPolicy => "trust policy",
            RoleField::ManagedPolicies => "managed policies",
            RoleField::PermissionsBoundary => "iam.permissions_boundary",
        }
        .into()
    }
}

fn differs(have: Option<&Value>, want: &Value) -> (&'static str, &'static str) {
    match have {
        None => ("none", "as configured"),
        Some(v) if v == want => ("as configured", "as configured"),
        Some(_) => ("different", "as configured"),
    }
}

/// The role `name`, if IAM has it and it passes the ownership check as `key`.
pub async fn read_role(ctx: &Scope<'_>, key: Key, name: &str) -> Result<Option<RoleLive>, StackError> {
    let iam = &ctx.aws.iam;
    let (described, policy, managed) = tokio::join!(
        iam.get_role().role_name(name).send(),
        iam.get_role_policy().role_name(name).policy_name(POLICY_NAME).send(),
        iam.list_attached_role_policies().role_name(name).send(),
    );
    let Some(described) = found(described.ctx("read role", name))? else { return Ok(None) };
    let Some(r) = described.role() else { return Ok(None) };
    ctx.owned(key, format!("role {name}"), r.tags().pairs())?;
    let policy = found(policy.ctx("read the policy of role", name))?.and_then(|p| decode_document(p.policy_document()));
    let managed = found(managed.ctx("list the managed policies of role", name))?
        .map(|m| m.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok(Some(RoleLive {
        name: name.to_string(),
        arn: r.arn().to_string(),
        trust: r.assume_role_policy_document().and_then(decode_document),
        policy,
        managed,
        boundary: r.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_string),
        tags: r.tags().pairs().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }))
}

#[async_trait]
impl Managed for Role {
    type Live = RoleLive;
    type Field = RoleField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &RoleLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(Some(live.tags.clone()))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &RoleLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        retag_role(ctx, live, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_roles)
    }

    fn permissions(&self) -> Vec<Permission> {
        let mut permissions = role_permissions(global_arn("iam", true, &format!("role/{}", self.name(STACK))));
        // `[service.secrets]` looked up (metadata only, never a value) when the config has any:
        // see `secrets`.
        if let Role::Execution { secrets: true } = self {
            permissions.push(Permission::find("ssm:DescribeParameters"));
            permissions
                .push(Permission::find("secretsmanager:DescribeSecret").on(access::arn("secretsmanager", "secret:*")));
        }
        permissions
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        self.role_key()
    }

    fn needs(&self) -> Vec<Dep> {
        match self {
            Role::Execution { .. } => vec![crate::resources::logs::LOG_GROUP.into()],
            Role::Task => vec![crate::resources::table::TABLE.into()],
        }
    }

    /// The execution role's policy follows the image the stack runs (see `task_definition::image`).
    fn reads(&self) -> Vec<Dep> {
        match self {
            Role::Execution { .. } => vec![TASK_DEFINITION.into()],
            Role::Task => vec![],
        }
    }

    // The tasks run with it until they stop (image pulls, logs, the table): the service says so.

    /// A `[service.secrets]` reference to a parameter or secret that does not exist is refused
    /// before any change.
    async fn preflight(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        match self {
            Role::Execution { .. } => secrets::lookup(ctx).await?.refusal().map_or(Ok(()), Err),
            Role::Task => Ok(()),
        }
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<RoleLive>, StackError> {
        if matches!(self, Role::Execution { .. }) {
            // What the policy grants is compared once this is known.
            secrets::lookup(ctx).await?;
        }
        let name = ctx.id(self.role_key()).unwrap_or_else(|| self.name(ctx.stack()));
        read_role(ctx, self.role_key(), &name).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &RoleLive) -> Record {
        let arn = match self {
            Role::Execution { .. } => EXECUTION_ROLE_ARN,
            Role::Task => TASK_ROLE_ARN,
        };
        Record::id(&live.name).with(arn, &live.arn)
    }

    fn diff(&self, ctx: &Scope<'_>, live: &RoleLive) -> Result<Vec<Changed<RoleField>>, StackError> {
        let (policy, home) = wanted_policy(ctx, *self)?;
        Ok(role_diff(ctx, live, &policy, &trust_policy(&home)))
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<RoleLive, StackError> {
        let (_, home) = wanted_policy(ctx, *self)?;
        create_role(ctx, self.role_key(), &self.name(ctx.stack()), &trust_policy(&home)).await
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &RoleLive,
        changes: &[Changed<RoleField>],
    ) -> Result<Option<RoleLive>, StackError> {
        let (policy, home) = wanted_policy(ctx, *self)?;
        update_role(ctx, live, changes, &policy, &trust_policy(&home)).await?;
        Ok(None)
    }

    /// After `up --replace table`, once the service runs on the new table: the task role no longer
    /// grants the replaced one.
    async fn finish_up(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        if *self != Role::Task || ctx.attr(REPLACED_TABLE_ARN).is_none() {
            return Ok(());
        }
        let policy = task_policy(&ctx.need_attr(TABLE_ARN)?, None, ctx.config.service.enable_execute_command);
        let policy = policy.to_string();
        let name = ctx.need(TASK_ROLE)?;
        let put = ctx.aws.iam.put_role_policy().role_name(&name).policy_name(POLICY_NAME).policy_document(policy);
        put.send().await.ctx("write the policy of role", &name)?;
        Ok(())
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: RoleLive) -> Result<Outcome, StackError> {
        delete_role(ctx, &live).await?;
        Ok(Outcome::Deleted)
    }
}

/// What every role of the stack calls, on the roles `role` (an ARN pattern) names.
pub fn role_permissions(role: String) -> Vec<Permission> {
    vec![
        Permission::find("iam:GetRole").on(role.clone()),
        Permission::find("iam:GetRolePolicy").on(role.clone()),
        Permission::find("iam:ListAttachedRolePolicies").on(role.clone()),
        // The roles named as stacks' (the leak check).
        Permission::inspect("iam:ListRoles"),
        Permission::create("iam:CreateRole").on(role.clone()).tagging(),
        access::tags_with("iam:TagRole", role.clone()),
        access::retagging("iam:TagRole", role.clone()),
        access::retagging("iam:UntagRole", role.clone()),
        Permission::update("iam:PutRolePolicy").on(role.clone()).tagged(),
        Permission::update("iam:UpdateAssumeRolePolicy").on(role.clone()).tagged(),
        Permission::update("iam:DetachRolePolicy").on(role.clone()).tagged(),
        Permission::update("iam:PutRolePermissionsBoundary").on(role.clone()).tagged(),
        Permission::update("iam:DeleteRolePermissionsBoundary").on(role.clone()).tagged(),
        Permission::delete("iam:ListRolePolicies").on(role.clone()),
        Permission::delete("iam:DeleteRolePolicy").on(role.clone()).tagged(),
        Permission::delete("iam:DetachRolePolicy").on(role.clone()).tagged(),
        Permission::delete("iam:DeleteRole").on(role).tagged(),
    ]
}

// What every role of the stack shares (the tasks' here, the flow logs' role), each with its own
// trust and inline policy, and the config's permissions boundary.

/// How `live` differs from a role with `policy` inline, trusting as `trust`, no managed policies
/// and the config's permissions boundary.
pub fn role_diff(ctx: &Scope<'_>, live: &RoleLive, policy: &Value, trust: &Value) -> Vec<Changed<RoleField>> {
    let mut diff = Diff::new();
    let (have, want) = differs(live.policy.as_ref(), policy);
    diff.field(RoleField::InlinePolicy, have, want);
    let (have, want) = differs(live.trust.as_ref(), trust);
    diff.field(RoleField::TrustPolicy, have, want);
    let managed = if live.managed.is_empty() { "none".to_string() } else { live.managed.join(", ") };
    diff.field(RoleField::ManagedPolicies, managed.as_str(), "none");
    let boundary = |b: Option<&String>| b.cloned().unwrap_or_else(|| "none".into());
    diff.field(
        RoleField::PermissionsBoundary,
        &boundary(live.boundary.as_ref()),
        &boundary(ctx.config.iam.permissions_boundary.as_ref()),
    );
    diff.into_changes()
}

/// Creates the role `name` trusting as `trust`, with the stack's tags and the config's boundary
/// (and takes it if an interrupted run made it); its inline policy is written by the update.
pub async fn create_role(ctx: &Scope<'_>, key: Key, name: &str, trust: &Value) -> Result<RoleLive, StackError> {
    let created = ctx
        .aws
        .iam
        .create_role()
        .role_name(name)
        .description(format!("fargate-stack {}: {key}", ctx.stack()))
        .assume_role_policy_document(trust.to_string())
        .set_permissions_boundary(ctx.config.iam.permissions_boundary.clone())
        .set_tags(Some(ctx.sdk_tags(name)))
        .send()
        .await
        .ctx("create role", name);
    match created {
        Ok(out) => Ok(RoleLive {
            name: name.to_string(),
            arn: out.role().map(|r| r.arn().to_string()).unwrap_or_default(),
            trust: Some(trust.clone()),
            policy: None,
            managed: vec![],
            boundary: ctx.config.iam.permissions_boundary.clone(),
            tags: ctx.tags(name),
        }),
        // Created by an interrupted run a moment ago (and checked to be ours).
        Err(e) if e.has_code(&["EntityAlreadyExists"]) => read_role(ctx, key, name).await?.ok_or(e),
        Err(e) => Err(e),
    }
}

/// Keep the user's tags in step on a role: TagRole puts (and overwrites), UntagRole takes keys off.
pub async fn retag_role(
    ctx: &Scope<'_>,
    live: &RoleLive,
    put: &[(String, String)],
    remove: &[String],
) -> Result<(), StackError> {
    let name = &live.name;
    if !put.is_empty() {
        let tags = put
            .iter()
            .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().expect("key and value are set"));
        ctx.aws.iam.tag_role().role_name(name).set_tags(Some(tags.collect())).send().await.ctx("tag role", name)?;
    }
    if !remove.is_empty() {
        let call = ctx.aws.iam.untag_role().role_name(name).set_tag_keys(Some(remove.to_vec()));
        call.send().await.ctx("untag role", name)?;
    }
    Ok(())
}

/// Applies `changes` to `live`: its inline `policy`, its `trust`, no managed policies, the boundary.
pub async fn update_role(
    ctx: &Scope<'_>,
    live: &RoleLive,
    changes: &[Changed<RoleField>],
    policy: &Value,
    trust: &Value,
) -> Result<(), StackError> {
    let name = &live.name;
    let iam = &ctx.aws.iam;
    for change in changes {
        match change.field {
            RoleField::InlinePolicy => {
                iam.put_role_policy()
                    .role_name(name)
                    .policy_name(POLICY_NAME)
                    .policy_document(policy.to_string())
                    .send()
                    .await
                    .ctx("write the policy of role", name)?;
            }
            RoleField::TrustPolicy => {
                iam.update_assume_role_policy()
                    .role_name(name)
                    .policy_document(trust.to_string())
                    .send()
                    .await
                    .ctx("write the trust policy of role", name)?;
            }
            RoleField::ManagedPolicies => detach_managed(ctx, name, &live.managed).await?,
            RoleField::PermissionsBoundary => set_boundary(ctx, name).await?,
        }
    }
    Ok(())
}

/// Deletes a role with everything IAM wants gone first (its policies).
pub async fn delete_role(ctx: &Scope<'_>, live: &RoleLive) -> Result<(), StackError> {
    let name = &live.name;
    let iam = &ctx.aws.iam;
    // IAM refuses to delete a role that still has policies: list them all, and fail loudly
    // if that is not possible rather than leave the role behind.
    let inline = found(iam.list_role_policies().role_name(name).send().await.ctx("list the policies of role", name))?
        .map(|out| out.policy_names().to_vec())
        .unwrap_or_default();
    for policy in inline {
        ignore_not_found(
            iam.delete_role_policy()
                .role_name(name)
                .policy_name(&policy)
                .send()
                .await
                .ctx("delete the policy of role", name)
                .map(drop),
        )?;
    }
    detach_managed(ctx, name, &live.managed).await?;
    ignore_not_found(iam.delete_role().role_name(name).send().await.ctx("delete role", name).map(drop))
}

/// The config's permissions boundary on the role, or none.
async fn set_boundary(ctx: &Scope<'_>, name: &str) -> Result<(), StackError> {
    let iam = &ctx.aws.iam;
    match &ctx.config.iam.permissions_boundary {
        Some(arn) => iam
            .put_role_permissions_boundary()
            .role_name(name)
            .permissions_boundary(arn)
            .send()
            .await
            .ctx("set the permissions boundary of role", name)
            .map(drop),
        None => ignore_not_found(
            iam.delete_role_permissions_boundary()
                .role_name(name)
                .send()
                .await
                .ctx("remove the permissions boundary of role", name)
                .map(drop),
        ),
    }
}

async fn detach_managed(ctx: &Scope<'_>, name: &str, arns: &[String]) -> Result<(), StackError> {
    for arn in arns {
        ignore_not_found(
            ctx.aws
                .iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .ctx("detach a policy from role", name)
                .map(drop),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_policy_is_item_level_on_the_table_only() {
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/s-messages";
        let p = task_policy(arn, None, false);
        let statements = p["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        let actions: Vec<&str> =
            statements[0]["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert!(actions.iter().all(|a| a.starts_with("dynamodb:") && !a.contains('*')));
        for forbidden in ["dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:CreateTable", "dynamodb:*"] {
            assert!(!actions.contains(&forbidden), "{forbidden}");
        }
        assert_eq!(statements[0]["Resource"], json!([arn, format!("{arn}/index/*")]));
        let old = "arn:aws:dynamodb:us-east-1:123456789012:table/s-messages-x";
        let both = task_policy(arn, Some(old), false);
        assert_eq!(
            both["Statement"][0]["Resource"],
            json!([arn, format!("{arn}/index/*"), old, format!("{old}/index/*")])
        );
        // ECS Exec adds exactly the agent's four channel actions, nothing else.
        let exec = task_policy(arn, None, true);
        assert_eq!(exec["Statement"][0], p["Statement"][0]);
        assert_eq!(exec["Statement"][1]["Action"], json!(EXEC_ACTIONS));
        assert_eq!(exec["Statement"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn execution_policy_grants_logs_and_only_ecr_when_needed() {
        let logs = "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/s";
        let p = execution_policy("nginx:latest", logs, vec![]);
        assert_eq!(p["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(p["Statement"][0]["Resource"], format!("{logs}:log-stream:*"));
        let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app/web:1.0";
        let p = execution_policy(ecr, logs, vec![]);
        let s = p["Statement"].as_array().unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[2]["Resource"], "arn:aws:ecr:us-east-1:123456789012:repository/app/web");
    }

    #[test]
    fn trust_is_ecs_tasks_of_this_account_and_region() {
        let home = arn_home("arn:aws-cn:dynamodb:cn-north-1:123456789012:table/s-messages").unwrap();
        let t = trust_policy(&home);
        assert_eq!(t["Statement"][0]["Principal"]["Service"], "ecs-tasks.amazonaws.com");
        let condition = &t["Statement"][0]["Condition"];
        assert_eq!(condition["StringEquals"]["aws:SourceAccount"], "123456789012");
        assert_eq!(condition["ArnLike"]["aws:SourceArn"], "arn:aws-cn:ecs:cn-north-1:123456789012:*");
    }

    #[test]
    fn decodes_url_encoded_documents() {
        let v = decode_document("%7B%22a%22%3A%201%7D").unwrap();
        assert_eq!(v, json!({"a": 1}));
        assert_eq!(decode_document("{\"a\":1}").unwrap(), json!({"a": 1}));
    }
}
