//! The VPC's flow logs (Security Hub EC2.6): a log group of their own with a retention, the role
//! the flow logs service delivers with (trusted for this account's flow logs only, allowed to
//! write to that group only), and the flow log itself. `[flow_logs] enabled = false` leaves them
//! out, and `up` then removes what an earlier run made.

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::LogGroup as Group;
use aws_sdk_ec2::types::{
    FlowLog as FlowLogObject, FlowLogsResourceType, LogDestinationType, ResourceType, TrafficType as Ec2Traffic,
};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::access::{self, arn, global_arn, Condition, Permission, STACK};
use crate::aws::Clients;
use crate::bill::{items, Charge, Unit};
use crate::config::Config;
use crate::error::{found, AwsContext, StackError};
use crate::model::{
    before, made_for, Attr, Changed, Dep, Diff, Edge, Field, Health, Inspection, Key, Kind, Managed, Nodes, Outcome,
    Record, Scope, Shape, Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::ec2::{self, any_stack, sightings, tag_spec, Ec2Object, Within};
use crate::resources::iam::{self, arn_home, ArnHome, RoleField, RoleLive};
use crate::resources::kms::KMS_REQUESTS;
use crate::resources::logs::{self, group_arn};
use crate::resources::network::VPC;
use crate::resources::tags::TagPairs;

pub const FLOW_LOG_GROUP: Key = Key::new("flow-log-group", Kind::new("logs:log-group"));
pub const FLOW_LOG_ROLE: Key = Key::new("role-flow-logs", Kind::new("iam:role"));
pub const FLOW_LOG: Key = Key::new("flow-log", Kind::new("ec2:flow-log"));
pub const FLOW_LOG_GROUP_ARN: Attr = Attr::new(FLOW_LOG_GROUP, "arn");
pub const FLOW_LOG_ROLE_ARN: Attr = Attr::new(FLOW_LOG_ROLE, "arn");

/// The three, when the config has them on, or while the state records any (or they may be found).
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    let on = shape.config().flow_logs.enabled;
    if !on && !shape.discovering_all() && !shape.holds_any(&[FLOW_LOG_GROUP, FLOW_LOG_ROLE, FLOW_LOG]) {
        return;
    }
    // The catalog (`Shape::everything`) holds every declaration.
    nodes.managed(FlowLogGroup { customer_key: shape.config().logs.kms_key_arn.is_some() || shape.is_everything() });
    nodes.managed(FlowLogRole);
    nodes.managed(FlowLog);
}

/// The flow logs' group: `/vpc/<stack>/flow-logs`.
pub fn group_name(stack: &str) -> String {
    format!("/vpc/{stack}/flow-logs")
}

/// The role the flow logs service delivers with: `<stack>-flow-logs` (not `-role`, which the
/// task definition may pass to ECS tasks).
pub fn role_name(stack: &str) -> String {
    format!("{stack}-flow-logs")
}

/// The flow logs service, delivering for this account's flow logs in this region only (the
/// confused deputy), as AWS's flow logs guidance pairs the conditions.
pub fn trust_policy(home: &ArnHome) -> Value {
    iam::service_trust("vpc-flow-logs.amazonaws.com", home, "ec2:vpc-flow-log/*")
}

/// Writing to the flow logs' group and its streams, nothing else. No `logs:CreateLogGroup`: the
/// stack makes the group, and a flow log still delivering after `down` cannot bring it back.
pub fn delivery_policy(group_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DeliverFlowLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
            "Resource": [group_arn, format!("{group_arn}:*")]
        }]
    })
}

/// Every log group named as a stack's flow logs' group.
fn sweep_groups(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let call = c.logs.describe_log_groups().log_group_name_prefix("/vpc/");
        let all = call.into_paginator().items().send().try_collect().await.ctx("describe", "log groups")?;
        Ok(all
            .iter()
            .filter_map(|g| {
                let name = g.log_group_name()?;
                made_for(name, group_name)?;
                let sighting = Sighting::new(FLOW_LOG_GROUP.kind(), name).named(name, |n| made_for(n, group_name));
                Some(Sighting { resource: Some(FLOW_LOG_GROUP.to_string()), ..sighting })
            })
            .collect())
    })
}

/// Every role named as a stack's flow logs' role.
fn sweep_roles(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c.iam.list_roles().into_paginator().items().send().try_collect().await.ctx("list", "IAM roles")?;
        Ok(all
            .iter()
            .filter(|r| made_for(r.role_name(), role_name).is_some())
            .map(|r| {
                let sighting =
                    Sighting::new(FLOW_LOG_ROLE.kind(), r.role_name()).named(r.role_name(), |n| made_for(n, role_name));
                Sighting { resource: Some(FLOW_LOG_ROLE.to_string()), ..sighting }
            })
            .collect())
    })
}

/// Every flow log carrying a stack's tag.
fn sweep_flow_logs(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c.ec2.describe_flow_logs().filter(any_stack()).into_paginator().items().send().try_collect().await;
        Ok(sightings(FLOW_LOG.kind(), &all.ctx("describe", "tagged flow logs")?))
    })
}

// ---------------------------------------------------------------- the log group

/// The flow logs' group; encrypted with `[logs] kms_key_arn` when the config names a key (the key
/// the stack's log groups share, checked once by the containers' group).
pub struct FlowLogGroup {
    customer_key: bool,
}

/// What the flow logs' group can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupField {
    Retention,
    Encryption,
}

impl Field for GroupField {
    fn label(&self) -> String {
        match self {
            GroupField::Retention => "flow_logs.retention_days",
            GroupField::Encryption => "logs.kms_key_arn",
        }
        .into()
    }
}

#[async_trait]
impl Managed for FlowLogGroup {
    type Live = Group;
    type Field = GroupField;

    async fn tags(&self, ctx: &Scope<'_>, live: &Group) -> Result<Option<Vec<(String, String)>>, StackError> {
        logs::group_tags(ctx, live).await
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &Group,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        logs::retag_group(ctx, live, put, remove).await
    }

    fn key(&self) -> Key {
        FLOW_LOG_GROUP
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_groups)
    }

    fn permissions(&self) -> Vec<Permission> {
        let group = arn("logs", &format!("log-group:{}", group_name(STACK)));
        let mut permissions = logs::group_permissions(group.clone());
        if self.customer_key {
            permissions.extend(logs::group_key_permissions(group));
        }
        permissions
    }

    /// Ingestion is the flow log's; the group stores what it keeps; with a key of the user's, the
    /// KMS requests CloudWatch makes.
    fn billing(&self, config: &Config) -> Vec<Charge> {
        let mut charges = vec![Charge::usage(items::LOGS_STORAGE, Unit::GbMonth, "flow logs stored")];
        if config.logs.kms_key_arn.is_some() {
            let what = "KMS requests CloudWatch Logs makes for the flow logs with logs.kms_key_arn";
            charges.push(Charge::usage(KMS_REQUESTS, Unit::MillionRequests, what));
        }
        charges
    }

    fn needs(&self) -> Vec<Dep> {
        vec![]
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Group>, StackError> {
        let name = ctx.id(FLOW_LOG_GROUP).unwrap_or_else(|| group_name(ctx.stack()));
        logs::find_group(ctx, FLOW_LOG_GROUP, &name).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &Group) -> Record {
        Record::id(live.log_group_name().unwrap_or_default()).with(FLOW_LOG_GROUP_ARN, group_arn(live))
    }

    fn diff(&self, ctx: &Scope<'_>, live: &Group) -> Result<Vec<Changed<GroupField>>, StackError> {
        let mut diff = Diff::new();
        let wanted = logs::retention_days(ctx.config.flow_logs.retention_days);
        diff.field(GroupField::Retention, &logs::retention_of(live), &wanted).field(
            GroupField::Encryption,
            &logs::encryption(live.kms_key_id()),
            &logs::encryption(ctx.config.logs.kms_key_arn.as_deref()),
        );
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<Group, StackError> {
        let key = ctx.config.logs.kms_key_arn.as_deref();
        logs::create_group(ctx, FLOW_LOG_GROUP, &group_name(ctx.stack()), key).await
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &Group,
        changes: &[Changed<GroupField>],
    ) -> Result<Option<Group>, StackError> {
        for change in changes {
            match change.field {
                GroupField::Retention => logs::set_retention(ctx, live, ctx.config.flow_logs.retention_days).await?,
                GroupField::Encryption => {
                    let name = live.log_group_name().unwrap_or_default();
                    logs::set_group_key(ctx, name, ctx.config.logs.kms_key_arn.as_deref()).await?
                }
            }
        }
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: Group) -> Result<Outcome, StackError> {
        logs::delete_group(ctx, &live).await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- the delivery role

pub struct FlowLogRole;

/// Its inline policy and trust policy, from the group's ARN.
fn wanted_role(ctx: &Scope<'_>) -> Result<(Value, Value), StackError> {
    let group = ctx.need_attr(FLOW_LOG_GROUP_ARN)?;
    let home = arn_home(&group).unwrap_or_default();
    Ok((delivery_policy(&group), trust_policy(&home)))
}

#[async_trait]
impl Managed for FlowLogRole {
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
        iam::retag_role(ctx, live, put, remove).await
    }

    fn key(&self) -> Key {
        FLOW_LOG_ROLE
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_roles)
    }

    fn permissions(&self) -> Vec<Permission> {
        iam::role_permissions(global_arn("iam", true, &format!("role/{}", role_name(STACK))))
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn needs(&self) -> Vec<Dep> {
        vec![FLOW_LOG_GROUP.into()]
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<RoleLive>, StackError> {
        let name = ctx.id(FLOW_LOG_ROLE).unwrap_or_else(|| role_name(ctx.stack()));
        iam::read_role(ctx, FLOW_LOG_ROLE, &name).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &RoleLive) -> Record {
        Record::id(&live.name).with(FLOW_LOG_ROLE_ARN, &live.arn)
    }

    fn diff(&self, ctx: &Scope<'_>, live: &RoleLive) -> Result<Vec<Changed<RoleField>>, StackError> {
        let (policy, trust) = wanted_role(ctx)?;
        Ok(iam::role_diff(ctx, live, &policy, &trust))
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<RoleLive, StackError> {
        let (_, trust) = wanted_role(ctx)?;
        iam::create_role(ctx, FLOW_LOG_ROLE, &role_name(ctx.stack()), &trust).await
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &RoleLive,
        changes: &[Changed<RoleField>],
    ) -> Result<Option<RoleLive>, StackError> {
        let (policy, trust) = wanted_role(ctx)?;
        iam::update_role(ctx, live, changes, &policy, &trust).await?;
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: RoleLive) -> Result<Outcome, StackError> {
        iam::delete_role(ctx, &live).await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- the flow log

pub struct FlowLog;

impl Ec2Object for FlowLogObject {
    fn object_id(&self) -> &str {
        self.flow_log_id().unwrap_or_default()
    }

    fn tag_pairs(&self) -> Vec<(&str, &str)> {
        self.tags().pairs()
    }

    /// The VPC it logs.
    fn vpc_of(&self) -> Option<&str> {
        self.resource_id().filter(|r| r.starts_with("vpc-"))
    }
}

/// What the flow log can differ in. AWS cannot change a flow log: any change is a new one.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowLogField {
    TrafficType,
    Destination,
    DeliveryRole,
}

impl Field for FlowLogField {
    fn label(&self) -> String {
        match self {
            FlowLogField::TrafficType => "flow_logs.traffic_type",
            FlowLogField::Destination => "log group",
            FlowLogField::DeliveryRole => "delivery role",
        }
        .into()
    }
}

fn traffic(ctx: &Scope<'_>) -> Ec2Traffic {
    Ec2Traffic::from(ctx.config.flow_logs.traffic_type.as_str())
}

/// An error AWS reports in a call's `Unsuccessful` list rather than as the call's error.
fn unsuccessful(what: &str, items: &[aws_sdk_ec2::types::UnsuccessfulItem]) -> Result<(), StackError> {
    let Some(item) = items.first() else { return Ok(()) };
    let (code, message) =
        item.error().map(|e| (e.code().unwrap_or("?"), e.message().unwrap_or(""))).unwrap_or(("?", ""));
    // A flow log already gone is what a delete wants.
    if code.ends_with(".NotFound") {
        return Ok(());
    }
    Err(StackError::Failed { resource: what.to_string(), message: format!("{code}: {message}") })
}

async fn delete_flow_log(ctx: &Scope<'_>, id: &str) -> Result<(), StackError> {
    let deleted = found(ctx.aws.ec2.delete_flow_logs().flow_log_ids(id).send().await.ctx("delete flow log", id))?;
    deleted.map_or(Ok(()), |out| unsuccessful(id, out.unsuccessful()))
}

#[async_trait]
impl Managed for FlowLog {
    type Live = FlowLogObject;
    type Field = FlowLogField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &FlowLogObject) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(live))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &FlowLogObject,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, live, put, remove).await
    }

    fn key(&self) -> Key {
        FLOW_LOG
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_flow_logs)
    }

    fn permissions(&self) -> Vec<Permission> {
        let flow_log = arn("ec2", "vpc-flow-log/*");
        let role = global_arn("iam", true, &format!("role/{}", role_name(STACK)));
        let mut permissions = vec![Permission::find("ec2:DescribeFlowLogs")];
        // A changed flow log is replaced: `update` deletes and creates too.
        for verb in [access::Verb::Create, access::Verb::Update] {
            permissions.extend([
                Permission::new(verb, "ec2:CreateFlowLogs").on(flow_log.clone()).tagging(),
                Permission::new(verb, "ec2:CreateFlowLogs").on(arn("ec2", "vpc/*")).tagged(),
                Permission::new(verb, "ec2:CreateTags")
                    .on(flow_log.clone())
                    .when(Condition::CreateAction("CreateFlowLogs"))
                    .implied(),
                Permission::new(verb, "iam:PassRole")
                    .on(role.clone())
                    .when(Condition::PassedTo("vpc-flow-logs.amazonaws.com"))
                    .implied(),
            ]);
        }
        permissions.push(access::retagging("ec2:CreateTags", flow_log.clone()));
        permissions.push(access::retagging("ec2:DeleteTags", flow_log.clone()));
        permissions.push(Permission::update("ec2:DeleteFlowLogs").on(flow_log.clone()).tagged());
        permissions.push(Permission::delete("ec2:DeleteFlowLogs").on(flow_log).tagged());
        permissions
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![Charge::usage(items::FLOW_LOGS_INGESTION, Unit::Gb, "flow logs ingested (vended logs)")]
    }

    fn needs(&self) -> Vec<Dep> {
        vec![VPC.into(), FLOW_LOG_GROUP.into(), FLOW_LOG_ROLE.into()]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![
            before(VPC, "a flow log outlives its VPC in no state AWS documents: removed while the VPC is known"),
            before(FLOW_LOG_GROUP, "a live flow log keeps delivering to its group"),
            before(FLOW_LOG_ROLE, "a live flow log delivers with its role; without it, delivery fails"),
        ]
    }

    /// Flow logs bill what the VPC's traffic writes: said where they are made.
    fn cost_note(&self, _config: &Config, found: &Inspection) -> Option<String> {
        (found.status == Health::Missing).then(|| {
            "the VPC's flow logs bill by traffic: about $0.50 per GB ingested as vended logs (less above 10 TB a \
             month) plus storage for flow_logs.retention_days; [flow_logs] enabled = false turns them off \
             (Security Hub EC2.6 then fails)"
                .to_string()
        })
    }

    fn removal_note(&self, _found: &Inspection) -> Option<String> {
        Some("the VPC's traffic is no longer recorded (Security Hub EC2.6 fails)".into())
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<FlowLogObject>, StackError> {
        let within = Within::Vpc(ctx.id(VPC));
        crate::resources::ec2::locate(ctx, FLOW_LOG, within, |ids, filters| async move {
            let out = ctx
                .aws
                .ec2
                .describe_flow_logs()
                .set_flow_log_ids(Some(ids))
                .set_filter(Some(filters))
                .send()
                .await
                .ctx("describe", "flow log")?;
            Ok(out.flow_logs().to_vec())
        })
        .await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &FlowLogObject) -> Record {
        Record::id(live.object_id())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &FlowLogObject) -> Result<Vec<Changed<FlowLogField>>, StackError> {
        let role = ctx.need_attr(FLOW_LOG_ROLE_ARN)?;
        let group = ctx.need(FLOW_LOG_GROUP)?;
        let mut diff = Diff::new();
        let have = live.traffic_type().map(|t| t.as_str()).unwrap_or("none");
        diff.field(FlowLogField::TrafficType, have, traffic(ctx).as_str());
        diff.field(FlowLogField::Destination, live.log_group_name().unwrap_or("none"), group.as_str());
        diff.field(FlowLogField::DeliveryRole, live.deliver_logs_permission_arn().unwrap_or("none"), role.as_str());
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<FlowLogObject, StackError> {
        let (vpc, group, role) = (ctx.need(VPC)?, ctx.need(FLOW_LOG_GROUP)?, ctx.need_attr(FLOW_LOG_ROLE_ARN)?);
        let name = ctx.name("flow-log");
        let created = ctx
            .aws
            .ec2
            .create_flow_logs()
            .resource_type(FlowLogsResourceType::Vpc)
            .resource_ids(&vpc)
            .traffic_type(traffic(ctx))
            .log_destination_type(LogDestinationType::CloudWatchLogs)
            .log_group_name(&group)
            .deliver_logs_permission_arn(&role)
            .tag_specifications(tag_spec(ctx, ResourceType::VpcFlowLog, &name))
            .send()
            .await
            .ctx("create the flow log of", &vpc);
        let out = match created {
            // Made by an interrupted run a moment ago: found by its tag if it is ours.
            Err(e) if e.has_code(&["FlowLogAlreadyExists"]) => return self.find(ctx).await?.ok_or(e),
            other => other?,
        };
        unsuccessful(&format!("flow log of {vpc}"), out.unsuccessful())?;
        let id = out.flow_log_ids().first().ok_or_else(|| StackError::Failed {
            resource: format!("flow log of {vpc}"),
            message: "create returned no flow log ID".into(),
        })?;
        // What was asked is what AWS made: no describe that may not see it yet.
        Ok(FlowLogObject::builder()
            .flow_log_id(id)
            .resource_id(&vpc)
            .traffic_type(traffic(ctx))
            .log_destination_type(LogDestinationType::CloudWatchLogs)
            .log_group_name(&group)
            .deliver_logs_permission_arn(&role)
            .set_tags(Some(ctx.sdk_tags(&name)))
            .build())
    }

    /// A new flow log in place of the old one (AWS modifies none); the old one goes first, since
    /// AWS refuses a second flow log of the VPC to the same group.
    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &FlowLogObject,
        _changes: &[Changed<FlowLogField>],
    ) -> Result<Option<FlowLogObject>, StackError> {
        delete_flow_log(ctx, live.object_id()).await?;
        Ok(Some(self.create(ctx, line).await?))
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: FlowLogObject) -> Result<Outcome, StackError> {
        delete_flow_log(ctx, live.object_id()).await?;
        Ok(Outcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_is_the_flow_logs_services_for_this_account_and_writes_to_its_group_only() {
        let group = "arn:aws-cn:logs:cn-north-1:123456789012:log-group:/vpc/app/flow-logs";
        let t = trust_policy(&arn_home(group).unwrap());
        assert_eq!(t["Statement"][0]["Principal"]["Service"], "vpc-flow-logs.amazonaws.com");
        let condition = &t["Statement"][0]["Condition"];
        assert_eq!(condition["StringEquals"]["aws:SourceAccount"], "123456789012");
        assert_eq!(condition["ArnLike"]["aws:SourceArn"], "arn:aws-cn:ec2:cn-north-1:123456789012:vpc-flow-log/*");
        let p = delivery_policy(group);
        assert_eq!(p["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(p["Statement"][0]["Resource"], json!([group, format!("{group}:*")]));
        let actions = p["Statement"][0]["Action"].as_array().unwrap();
        assert!(actions.iter().all(|a| a.as_str().unwrap().starts_with("logs:") && !a.as_str().unwrap().contains('*')));
        assert!(!actions.contains(&json!("logs:CreateLogGroup")), "a deleted group cannot come back");
    }

    fn config(section: &str) -> Config {
        Config::parse("t", &crate::config::DEFAULT_TOML.replace("enabled = true ", section)).unwrap()
    }

    #[test]
    fn on_by_default_after_the_vpc_group_and_role_and_gone_before_them() {
        use crate::resources::stack;
        let graph = stack(&Shape::of(&config("enabled = true "))).unwrap();
        assert_eq!(graph.needs_of(FLOW_LOG), [VPC, FLOW_LOG_GROUP, FLOW_LOG_ROLE]);
        assert_eq!(graph.needs_of(FLOW_LOG_ROLE), [FLOW_LOG_GROUP], "its policy names the group");
        assert!(graph.needs_of(FLOW_LOG_GROUP).is_empty());
        for used in [VPC, FLOW_LOG_GROUP, FLOW_LOG_ROLE] {
            assert!(graph.teardown_after(used).contains(&FLOW_LOG), "{used}");
        }
        assert!(graph.teardown_after(FLOW_LOG).is_empty(), "deleted first");
    }

    #[test]
    fn the_section_is_checked_before_any_call() {
        let bad = |from: &str, to: &str| {
            let text = crate::config::DEFAULT_TOML.replace(from, to);
            assert_ne!(text, crate::config::DEFAULT_TOML, "{from}");
            Config::parse("t", &text).unwrap_err().to_string()
        };
        let err =
            bad("retention_days = 365          # like [logs]: one of CloudWatch's fixed values", "retention_days = 10");
        assert!(err.contains("flow_logs.retention_days: 10: CloudWatch accepts 1, 3"), "{err}");
        assert!(bad("traffic_type = \"ALL\"", "traffic_type = \"all\"").contains("traffic_type"));
        assert!(bad("enabled = true ", "enabled = \"no\"").contains("enabled"));
        let absent = crate::config::DEFAULT_TOML.replace("[flow_logs]", "# [flow_logs]");
        let absent = absent.replace("enabled = true ", "# ").replace("traffic_type = ", "# ");
        let absent = absent.replace("retention_days = 365          # like [logs]", "# ");
        let c = Config::parse("t", &absent).unwrap();
        assert!(c.flow_logs.enabled && c.flow_logs.retention_days == 365, "absent: on, a year");
    }

    #[test]
    fn off_leaves_them_out_but_down_and_up_still_cover_what_the_state_records() {
        use crate::resources::stack;
        use crate::state::{Recorded, State};
        let off = config("enabled = false");
        for key in [FLOW_LOG_GROUP, FLOW_LOG_ROLE, FLOW_LOG] {
            assert!(stack(&Shape::of(&off)).unwrap().get(key).is_none(), "{key}");
            assert!(stack(&Shape::discovering(&off)).unwrap().get(key).is_some(), "down --name looks for {key}");
        }
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        let entry = Recorded { kind: FLOW_LOG.kind().label().into(), id: "fl-1".into(), attrs: Default::default() };
        state.resources.insert(FLOW_LOG.to_string(), entry);
        let covered = stack(&Shape::covering(&off, &state)).unwrap();
        assert!(covered.get(FLOW_LOG).is_some() && covered.get(FLOW_LOG_ROLE).is_some());
    }

    #[test]
    fn names_tell_their_stack() {
        assert_eq!(made_for(&group_name("app-2"), group_name), Some("app-2".into()));
        assert_eq!(made_for("/vpc/app/other", group_name), None);
        assert_eq!(made_for(&role_name("app"), role_name), Some("app".into()));
        assert_eq!(made_for("app-task-role", role_name), None);
    }

    #[test]
    fn an_unsuccessful_item_is_an_error_unless_the_flow_log_is_already_gone() {
        use aws_sdk_ec2::types::{UnsuccessfulItem, UnsuccessfulItemError};
        let item = |code: &str| {
            UnsuccessfulItem::builder()
                .resource_id("fl-1")
                .error(UnsuccessfulItemError::builder().code(code).message("m").build())
                .build()
        };
        assert!(unsuccessful("fl-1", &[]).is_ok());
        assert!(unsuccessful("fl-1", &[item("InvalidFlowLogId.NotFound")]).is_ok());
        let err = unsuccessful("fl-1", &[item("400")]).unwrap_err();
        assert!(err.to_string().contains("400: m"), "{err}");
    }
}
