//! Security groups: the ALB's (open on the listener port), the tasks' (reachable only from the
//! ALB), and the VPC's default group emptied of rules.

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, SecurityGroup, UserIdGroupPair,
};
use futures::future::BoxFuture;

use crate::access::{arn, Permission};
use crate::aws::Clients;
use crate::bill::Charge;
use crate::config::{Config, TaskEgress};
use crate::error::{found, ignore_not_found, AwsContext, StackError};
use crate::model::{
    after, before, Changed, Dep, Diff, Edge, Field, Key, Kind, Lifecycle, Managed, Nodes, Outcome, Record, Scope,
    Shape, Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::ec2::{
    self, any_stack, check, enis_holding, filter, held, locate, sightings, tag_spec, Ec2Object, ANYWHERE,
};
use crate::resources::gateway_endpoints;
use crate::resources::network::{in_stack_vpc, VPC};
use crate::resources::serving::{serving_ports, TARGET_GROUP};
use crate::wait::{self, budget, Poll};

const SECURITY_GROUP: Kind = Kind::new("ec2:security-group");
pub const DEFAULT_SECURITY_GROUP: Key = Key::new("default-security-group", SECURITY_GROUP);
pub const ALB_SECURITY_GROUP: Key = Key::new("security-group-alb", SECURITY_GROUP);
pub const TASK_SECURITY_GROUP: Key = Key::new("security-group-task", SECURITY_GROUP);

/// The VPC's default group, emptied (right after the VPC).
pub fn vpc_default_group(_shape: &Shape, nodes: &mut Nodes) {
    nodes.managed(DefaultGroup);
}

/// The load balancer's group and the tasks' group.
pub fn groups(_shape: &Shape, nodes: &mut Nodes) {
    nodes.managed(AlbGroup);
    nodes.managed(TaskGroup);
}

/// What a group's rules can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum RulesField {
    Ingress,
    Egress,
    /// The load balancer group's egress rule to the tasks' group, which the tasks' group owns.
    AlbEgress,
}

impl Field for RulesField {
    fn label(&self) -> String {
        match self {
            RulesField::Ingress => "ingress",
            RulesField::Egress => "egress",
            RulesField::AlbEgress => "load balancer egress",
        }
        .into()
    }
}

/// What the groups call: the same for the three (the VPC's default group is only emptied, but
/// it is looked for, emptied and found with the same calls).
fn group_permissions() -> Vec<Permission> {
    let group = arn("ec2", "security-group/*");
    vec![
        Permission::find("ec2:DescribeSecurityGroups"),
        // A delete refused past its wait names the interfaces that still use the group.
        Permission::delete("ec2:DescribeNetworkInterfaces"),
        Permission::create("ec2:CreateSecurityGroup").on(group.clone()).tagging(),
        Permission::create("ec2:CreateSecurityGroup").on(arn("ec2", "vpc/*")).tagged(),
        crate::access::tags_on_create("ec2:CreateTags", "CreateSecurityGroup", group.clone()),
        crate::access::retagging("ec2:CreateTags", group.clone()),
        crate::access::retagging("ec2:DeleteTags", group.clone()),
        Permission::update("ec2:AuthorizeSecurityGroupIngress").on(group.clone()).tagged(),
        Permission::update("ec2:AuthorizeSecurityGroupEgress").on(group.clone()).tagged(),
        Permission::update("ec2:RevokeSecurityGroupIngress").on(group.clone()).tagged(),
        Permission::update("ec2:RevokeSecurityGroupEgress").on(group.clone()).tagged(),
        // The task group's delete first removes the load balancer group's egress rule to it.
        Permission::delete("ec2:RevokeSecurityGroupEgress").on(group.clone()).tagged(),
        Permission::delete("ec2:DeleteSecurityGroup").on(group).tagged(),
    ]
}

/// Every group carrying a stack's tag (the VPCs' default groups carry none).
fn sweep_groups(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all =
            c.ec2.describe_security_groups().filters(any_stack()).into_paginator().items().send().try_collect().await;
        Ok(sightings(SECURITY_GROUP, &all.ctx("describe", "tagged security groups")?))
    })
}

const INSIDE_THE_VPC: &str = "DeleteVpc fails with DependencyViolation while anything is left in the VPC";

/// A rule reduced to what identifies it: comparable, printable, and sendable back to EC2.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    protocol: String,
    ports: Option<(i32, i32)>,
    cidrs: BTreeSet<String>,
    ipv6: BTreeSet<String>,
    groups: BTreeSet<String>,
    prefix_lists: BTreeSet<String>,
}

impl Rule {
    fn tcp(port: u32) -> Rule {
        Rule {
            protocol: "tcp".into(),
            ports: Some((port as i32, port as i32)),
            cidrs: BTreeSet::new(),
            ipv6: BTreeSet::new(),
            groups: BTreeSet::new(),
            prefix_lists: BTreeSet::new(),
        }
    }

    fn from_anywhere(port: u32) -> Rule {
        Rule { cidrs: [ANYWHERE.to_string()].into(), ..Rule::tcp(port) }
    }

    fn with_group(port: u32, group: &str) -> Rule {
        Rule { groups: [group.to_string()].into(), ..Rule::tcp(port) }
    }

    fn all_traffic_anywhere() -> Rule {
        Rule { protocol: "-1".into(), ports: None, cidrs: [ANYWHERE.to_string()].into(), ..Rule::tcp(0) }
    }

    fn to_cidr(protocol: &str, port: u32, cidr: String) -> Rule {
        Rule { protocol: protocol.into(), cidrs: [cidr].into(), ..Rule::tcp(port) }
    }

    fn of(p: &IpPermission) -> Rule {
        let protocol = p.ip_protocol().unwrap_or_default().to_string();
        Rule {
            ports: (protocol != "-1").then(|| (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1))),
            protocol,
            cidrs: p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(str::to_string)).collect(),
            ipv6: p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6().map(str::to_string)).collect(),
            groups: p.user_id_group_pairs().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
            prefix_lists: p.prefix_list_ids().iter().filter_map(|l| l.prefix_list_id().map(str::to_string)).collect(),
        }
    }

    /// The permission EC2 takes: only what identifies the rule (described rules carry more).
    fn permission(&self) -> IpPermission {
        let mut b = IpPermission::builder().ip_protocol(&self.protocol);
        if let Some((from, to)) = self.ports {
            b = b.from_port(from).to_port(to);
        }
        for c in &self.cidrs {
            b = b.ip_ranges(IpRange::builder().cidr_ip(c).build());
        }
        for c in &self.ipv6 {
            b = b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build());
        }
        for g in &self.groups {
            b = b.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build());
        }
        for l in &self.prefix_lists {
            b = b.prefix_list_ids(PrefixListId::builder().prefix_list_id(l).build());
        }
        b.build()
    }

    fn references(&self, group: &str) -> bool {
        self.groups.contains(group)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ports {
            None => write!(f, "all traffic")?,
            Some((a, b)) if a == b => write!(f, "{} {a}", self.protocol)?,
            Some((a, b)) => write!(f, "{} {a}-{b}", self.protocol)?,
        }
        let peers: Vec<&String> =
            self.cidrs.iter().chain(&self.ipv6).chain(&self.groups).chain(&self.prefix_lists).collect();
        if !peers.is_empty() {
            write!(f, " {}", peers.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(","))?;
        }
        Ok(())
    }
}

/// A set of rules as the plan shows it: `tcp 80 0.0.0.0/0`, or `none`.
fn show(rules: &[Rule]) -> String {
    if rules.is_empty() {
        "none".into()
    } else {
        rules.iter().map(Rule::to_string).collect::<Vec<_>>().join(", ")
    }
}

fn rules(permissions: &[IpPermission]) -> Vec<Rule> {
    let mut rules: Vec<Rule> = permissions.iter().map(Rule::of).collect();
    rules.sort();
    rules
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Ingress,
    Egress,
}

impl Flow {
    fn current(self, group: &SecurityGroup) -> Vec<Rule> {
        rules(match self {
            Flow::Ingress => group.ip_permissions(),
            Flow::Egress => group.ip_permissions_egress(),
        })
    }

    async fn revoke(self, ctx: &Scope<'_>, id: &str, rules: &[Rule]) -> Result<(), StackError> {
        if rules.is_empty() {
            return Ok(());
        }
        let permissions = Some(rules.iter().map(Rule::permission).collect());
        let result = match self {
            Flow::Ingress => ctx
                .aws
                .ec2
                .revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(permissions)
                .send()
                .await
                .ctx("remove ingress rules from", id)
                .map(drop),
            Flow::Egress => ctx
                .aws
                .ec2
                .revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(permissions)
                .send()
                .await
                .ctx("remove egress rules from", id)
                .map(drop),
        };
        match result {
            Err(e) if e.has_code(&["InvalidPermission.NotFound"]) || e.is_not_found() => Ok(()),
            other => other,
        }
    }

    async fn authorize(self, ctx: &Scope<'_>, id: &str, rule: &Rule) -> Result<(), StackError> {
        let result = match self {
            Flow::Ingress => ctx
                .aws
                .ec2
                .authorize_security_group_ingress()
                .group_id(id)
                .ip_permissions(rule.permission())
                .send()
                .await
                .ctx("add an ingress rule to", id)
                .map(drop),
            Flow::Egress => ctx
                .aws
                .ec2
                .authorize_security_group_egress()
                .group_id(id)
                .ip_permissions(rule.permission())
                .send()
                .await
                .ctx("add an egress rule to", id)
                .map(drop),
        };
        match result {
            Err(e) if e.has_code(&["InvalidPermission.Duplicate"]) => Ok(()),
            other => other,
        }
    }

    /// Make the group's rules in this direction exactly `wanted`.
    async fn converge(self, ctx: &Scope<'_>, group: &SecurityGroup, wanted: &[Rule]) -> Result<(), StackError> {
        let id = group.object_id();
        let current = self.current(group);
        let unwanted: Vec<Rule> = current.iter().filter(|r| !wanted.contains(r)).cloned().collect();
        self.revoke(ctx, id, &unwanted).await?;
        for rule in wanted.iter().filter(|r| !current.contains(r)) {
            self.authorize(ctx, id, rule).await?;
        }
        Ok(())
    }
}

/// Record `flow` of `group` as a change if it is not exactly `wanted`.
fn compare(diff: &mut Diff<RulesField>, field: RulesField, flow: Flow, group: &SecurityGroup, wanted: &[Rule]) {
    let mut wanted = wanted.to_vec();
    wanted.sort();
    diff.field(field, &show(&flow.current(group)), &show(&wanted));
}

async fn describe_group(ctx: &Scope<'_>, id: &str) -> Result<Option<SecurityGroup>, StackError> {
    let out = found(ctx.aws.ec2.describe_security_groups().group_ids(id).send().await.ctx("describe", id))?;
    Ok(out.and_then(|o| o.security_groups().first().cloned()))
}

async fn find_group(ctx: &Scope<'_>, key: Key) -> Result<Option<SecurityGroup>, StackError> {
    locate(ctx, key, in_stack_vpc(ctx), |ids, filters| async move {
        let out = ctx
            .aws
            .ec2
            .describe_security_groups()
            .set_group_ids(Some(ids))
            .set_filters(Some(filters))
            .send()
            .await
            .ctx("describe", "security group")?;
        Ok(out.security_groups().to_vec())
    })
    .await
}

async fn create_group(
    ctx: &Scope<'_>,
    line: &Line,
    suffix: &str,
    description: &str,
) -> Result<SecurityGroup, StackError> {
    let key = ctx.key();
    let vpc = ctx.need(VPC)?;
    let name = ctx.name(suffix);
    let out = ctx
        .aws
        .ec2
        .create_security_group()
        .group_name(&name)
        .description(description)
        .vpc_id(&vpc)
        .tag_specifications(tag_spec(ctx, ResourceType::SecurityGroup, &name))
        .send()
        .await
        .ctx("create", &key.to_string())?;
    let id = out.group_id().unwrap_or_default().to_string();
    // Read it back for the default egress rule AWS adds, once the new ID is visible.
    wait::until(line, &id, "become visible", budget::PROPAGATION, || async {
        Ok(match describe_group(ctx, &id).await? {
            Some(group) => Poll::Ready(group),
            None => Poll::Pending("not visible yet".into()),
        })
    })
    .await
}

/// What EC2 answers while something still uses a group.
const IN_USE: &[&str] = &["DependencyViolation", "InvalidGroup.InUse"];

/// The groups (other than `id`) with a rule that references `id`, in either direction. The filters
/// are a hint: the rules are checked on our side.
async fn referencing_groups(ctx: &Scope<'_>, id: &str) -> Result<Vec<SecurityGroup>, StackError> {
    let mut groups: Vec<SecurityGroup> = vec![];
    for name in ["ip-permission.group-id", "egress.ip-permission.group-id"] {
        let out = ctx
            .aws
            .ec2
            .describe_security_groups()
            .filters(filter(name, id))
            .send()
            .await
            .ctx("find the rules that reference", id)?;
        for group in out.security_groups() {
            let new = groups.iter().all(|g| g.object_id() != group.object_id());
            if group.object_id() != id && new && !referencing_rules(group, id).is_empty() {
                groups.push(group.clone());
            }
        }
    }
    Ok(groups)
}

/// The rules of `group` that reference the group `id`.
fn referencing_rules(group: &SecurityGroup, id: &str) -> Vec<(Flow, Rule)> {
    [Flow::Ingress, Flow::Egress]
        .into_iter()
        .flat_map(|flow| flow.current(group).into_iter().filter(|r| r.references(id)).map(move |r| (flow, r)))
        .collect()
}

/// Each rule that references `id`, named with its group and who owns that group.
fn describe_references(groups: &[SecurityGroup], id: &str) -> Vec<String> {
    let mut named = vec![];
    for group in groups {
        let owner = match group.tag_pairs().iter().find(|(k, _)| *k == crate::context::STACK_TAG) {
            Some((_, stack)) => format!("stack {stack}'s"),
            None => "carrying no stack tag".to_string(),
        };
        let name = group.group_name().unwrap_or_default();
        for (flow, rule) in referencing_rules(group, id) {
            let direction = if flow == Flow::Ingress { "ingress" } else { "egress" };
            named.push(format!("{direction} rule {rule} of group {} ({name}, {owner})", group.object_id()));
        }
    }
    named
}

/// Delete the group, waiting while AWS releases the network interfaces that use it (the load
/// balancer's and the tasks', up to ~15 minutes after they go). A rule of another group that
/// references it does not go by waiting: the run stops at once naming it; past the budget, it
/// names the interfaces that still hold the group.
async fn delete_group(ctx: &Scope<'_>, line: &Line, id: &str) -> Result<(), StackError> {
    let what = format!("security group {id}");
    let deleted = wait::retry_codes(line, id, budget::SECURITY_GROUP, IN_USE, || async {
        match ignore_not_found(
            ctx.aws.ec2.delete_security_group().group_id(id).send().await.ctx("delete", id).map(drop),
        ) {
            Err(e) if e.has_code(IN_USE) => {
                let rules = describe_references(&referencing_groups(ctx, id).await?, id);
                if rules.is_empty() {
                    Err(e)
                } else {
                    Err(held(&what, None, rules))
                }
            }
            other => other,
        }
    })
    .await;
    match deleted {
        Err(StackError::Timeout { waited, .. }) => {
            let mut holders = enis_holding(ctx, vec![filter("group-id", id)]).await?;
            holders.extend(describe_references(&referencing_groups(ctx, id).await?, id));
            Err(held(&what, Some(waited), holders))
        }
        other => other,
    }
}

// ---------------------------------------------------------------- the load balancer's group

/// HTTP (and HTTPS) from anywhere on the listener ports; egress only to the task group (the rule itself is
/// added by [`TaskGroup`], which is created after this group).
pub struct AlbGroup;

/// Exactly the ports that have listeners: HTTP, and HTTPS with [https].
fn alb_ingress(ctx: &Scope<'_>) -> Vec<Rule> {
    let mut rules = vec![Rule::from_anywhere(ctx.config.load_balancer.listener_port)];
    if ctx.config.https.is_some() {
        rules.push(Rule::from_anywhere(crate::config::HTTPS_PORT));
    }
    rules
}

fn alb_egress(ctx: &Scope<'_>, task_group: &str) -> Vec<Rule> {
    serving_ports(ctx).into_iter().map(|port| Rule::with_group(port, task_group)).collect()
}

/// An old port's rules stayed while the target group was replaced: dropped once it is done.
#[derive(Default)]
struct OldPortKept(std::sync::atomic::AtomicBool);

#[async_trait]
impl Managed for AlbGroup {
    type Live = SecurityGroup;
    type Field = RulesField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &SecurityGroup) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(live))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &SecurityGroup,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, live, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_groups)
    }

    fn permissions(&self) -> Vec<Permission> {
        group_permissions()
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        ALB_SECURITY_GROUP
    }

    fn needs(&self) -> Vec<Dep> {
        vec![VPC.into()]
    }

    fn reads(&self) -> Vec<Dep> {
        vec![TASK_SECURITY_GROUP.into(), TARGET_GROUP.into()]
    }

    /// The load balancer, whose network interfaces use it, says so itself.
    fn teardown_after(&self) -> Vec<Edge> {
        vec![after(
            TASK_SECURITY_GROUP,
            "the task group's ingress rule references it, and EC2 refuses to delete a referenced group",
        )]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![before(VPC, INSIDE_THE_VPC)]
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<SecurityGroup>, StackError> {
        find_group(ctx, self.key()).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &SecurityGroup) -> Record {
        Record::id(live.object_id())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &SecurityGroup) -> Result<Vec<Changed<RulesField>>, StackError> {
        let egress: Vec<Rule> = ctx.id(TASK_SECURITY_GROUP).map(|task| alb_egress(ctx, &task)).unwrap_or_default();
        let mut diff = Diff::new();
        compare(&mut diff, RulesField::Ingress, Flow::Ingress, live, &alb_ingress(ctx));
        compare(&mut diff, RulesField::Egress, Flow::Egress, live, &egress);
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<SecurityGroup, StackError> {
        create_group(ctx, line, "alb", "fargate-stack load balancer: HTTP from the internet").await
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &SecurityGroup,
        changes: &[Changed<RulesField>],
    ) -> Result<Option<SecurityGroup>, StackError> {
        for change in changes {
            match change.field {
                RulesField::Ingress => Flow::Ingress.converge(ctx, live, &alb_ingress(ctx)).await?,
                RulesField::Egress => {
                    let egress: Vec<Rule> =
                        ctx.id(TASK_SECURITY_GROUP).map(|t| alb_egress(ctx, &t)).unwrap_or_default();
                    Flow::Egress.converge(ctx, live, &egress).await?
                }
                RulesField::AlbEgress => {}
            }
        }
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: SecurityGroup) -> Result<Outcome, StackError> {
        delete_group(ctx, line, live.object_id()).await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- the tasks' group

/// The container port from the ALB group only; egress as `network.task_egress` says (by default
/// HTTPS and DNS only). It also owns the ALB group's one egress rule, to this group.
pub struct TaskGroup;

pub struct TaskGroupLive {
    group: SecurityGroup,
    alb: Option<SecurityGroup>,
}

fn task_ingress(ctx: &Scope<'_>, alb: &str) -> Vec<Rule> {
    let ports = serving_ports(ctx);
    if ports.len() > 1 {
        ctx.run::<OldPortKept>().0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    ports.into_iter().map(|port| Rule::with_group(port, alb)).collect()
}

/// `network.task_egress`: restricted to HTTPS anywhere (image pulls, AWS APIs through the NAT), to
/// the gateway endpoints' prefix lists (`prefix_lists`: S3 and DynamoDB, named so that the traffic
/// they carry stays allowed without the anywhere rule) and DNS to the VPC's resolver, or open.
fn task_egress(config: &Config, prefix_lists: Vec<String>) -> Vec<Rule> {
    match config.network.task_egress {
        TaskEgress::Open => vec![Rule::all_traffic_anywhere()],
        TaskEgress::Restricted => {
            let resolver = format!("{}/32", config.dns_resolver());
            let https = Rule { prefix_lists: prefix_lists.into_iter().collect(), ..Rule::from_anywhere(HTTPS) };
            vec![https, Rule::to_cidr("tcp", DNS, resolver.clone()), Rule::to_cidr("udp", DNS, resolver)]
        }
    }
}

/// The tasks' egress as the config and the gateway endpoints recorded so far say.
fn wanted_task_egress(ctx: &Scope<'_>) -> Vec<Rule> {
    task_egress(ctx.config, gateway_endpoints::prefix_lists(ctx))
}

const HTTPS: u32 = 443;
const DNS: u32 = 53;

#[async_trait]
impl Managed for TaskGroup {
    type Live = TaskGroupLive;
    type Field = RulesField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &TaskGroupLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(&live.group))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &TaskGroupLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, &live.group, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_groups)
    }

    fn permissions(&self) -> Vec<Permission> {
        group_permissions()
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        TASK_SECURITY_GROUP
    }

    /// The gateway endpoints, when the stack has them: their prefix lists are egress peers.
    fn needs(&self) -> Vec<Dep> {
        let endpoints = gateway_endpoints::ENDPOINTS.map(|(key, _)| Dep::IfPresent(key));
        [vec![ALB_SECURITY_GROUP.into()], endpoints.to_vec()].concat()
    }

    fn reads(&self) -> Vec<Dep> {
        vec![VPC.into(), TARGET_GROUP.into()]
    }

    /// The service, whose tasks' network interfaces use it, says so itself.
    fn gone_before(&self) -> Vec<Edge> {
        vec![before(VPC, INSIDE_THE_VPC)]
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<TaskGroupLive>, StackError> {
        let alb = async {
            match ctx.id(ALB_SECURITY_GROUP) {
                Some(id) => describe_group(ctx, &id).await,
                None => Ok(None),
            }
        };
        let (group, alb) = tokio::join!(find_group(ctx, self.key()), alb);
        Ok(group?.map(|group| TaskGroupLive { group, alb: alb.ok().flatten() }))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &TaskGroupLive) -> Record {
        Record::id(live.group.object_id())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &TaskGroupLive) -> Result<Vec<Changed<RulesField>>, StackError> {
        let alb = ctx.need(ALB_SECURITY_GROUP)?;
        let mut diff = Diff::new();
        compare(&mut diff, RulesField::Ingress, Flow::Ingress, &live.group, &task_ingress(ctx, &alb));
        compare(&mut diff, RulesField::Egress, Flow::Egress, &live.group, &wanted_task_egress(ctx));
        if let Some(alb_group) = &live.alb {
            let wanted = alb_egress(ctx, live.group.object_id());
            compare(&mut diff, RulesField::AlbEgress, Flow::Egress, alb_group, &wanted);
        }
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<TaskGroupLive, StackError> {
        let group =
            create_group(ctx, line, "task", "fargate-stack tasks: container port from the load balancer only").await?;
        let alb = describe_group(ctx, &ctx.need(ALB_SECURITY_GROUP)?).await?;
        Ok(TaskGroupLive { group, alb })
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &TaskGroupLive,
        changes: &[Changed<RulesField>],
    ) -> Result<Option<TaskGroupLive>, StackError> {
        let alb = ctx.need(ALB_SECURITY_GROUP)?;
        for change in changes {
            match change.field {
                RulesField::Ingress => Flow::Ingress.converge(ctx, &live.group, &task_ingress(ctx, &alb)).await?,
                RulesField::Egress => Flow::Egress.converge(ctx, &live.group, &wanted_task_egress(ctx)).await?,
                RulesField::AlbEgress => {
                    if let Some(alb_group) = &live.alb {
                        Flow::Egress.converge(ctx, alb_group, &alb_egress(ctx, live.group.object_id())).await?;
                    }
                }
            }
        }
        Ok(None)
    }

    /// After a target group replacement (the target group finished first): the old port's rules go,
    /// from this group's ingress and the load balancer group's egress. A run killed before this
    /// leaves them to the next `up`, which finds them as drift.
    async fn finish_up(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        if !ctx.run::<OldPortKept>().0.load(std::sync::atomic::Ordering::Relaxed) || serving_ports(ctx).len() > 1 {
            return Ok(());
        }
        let Some(live) = self.find(ctx).await? else { return Ok(()) };
        let changes = self.diff(ctx, &live)?;
        if !changes.is_empty() {
            self.update(ctx, &Line::hidden(), &live, &changes).await?;
        }
        Ok(())
    }

    /// AWS refuses to delete a group another group's rule references: the ALB group's egress
    /// rule to this one goes first.
    /// The group referencing it is found by its rules, not by the state: a `down` without a state
    /// has not looked the load balancer's group up yet. Only the stack's own group is changed.
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: TaskGroupLive) -> Result<Outcome, StackError> {
        let id = live.group.object_id();
        for holder in referencing_groups(ctx, id).await? {
            if check(ctx, ALB_SECURITY_GROUP, &in_stack_vpc(ctx), &holder).is_err() {
                continue;
            }
            for flow in [Flow::Ingress, Flow::Egress] {
                let referencing: Vec<Rule> = flow.current(&holder).into_iter().filter(|r| r.references(id)).collect();
                flow.revoke(ctx, holder.object_id(), &referencing).await?;
            }
        }
        delete_group(ctx, line, id).await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- the VPC's default group

/// AWS creates it with the VPC and deletes it with the VPC; we only empty it, so that nothing
/// placed in it by mistake is reachable.
pub struct DefaultGroup;

async fn default_group(ctx: &Scope<'_>, vpc: &str) -> Result<Option<SecurityGroup>, StackError> {
    let out = ctx
        .aws
        .ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc))
        .filters(filter("group-name", "default"))
        .send()
        .await
        .ctx("describe the default security group of", vpc)?;
    // Checked here too: in our VPC, and the default one.
    Ok(out.security_groups().iter().find(|g| g.vpc_id() == Some(vpc) && g.group_name() == Some("default")).cloned())
}

#[async_trait]
impl Managed for DefaultGroup {
    type Live = SecurityGroup;
    type Field = RulesField;

    fn sweep(&self) -> Sweep {
        Sweep::Unlisted("AWS makes it with the VPC and deletes it with the VPC; it carries no tag")
    }

    fn permissions(&self) -> Vec<Permission> {
        group_permissions()
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        DEFAULT_SECURITY_GROUP
    }

    fn needs(&self) -> Vec<Dep> {
        vec![VPC.into()]
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<SecurityGroup>, StackError> {
        match ctx.id(VPC) {
            Some(vpc) => default_group(ctx, &vpc).await,
            None => Ok(None),
        }
    }

    fn record(&self, _ctx: &Scope<'_>, live: &SecurityGroup) -> Record {
        Record::id(live.object_id())
    }

    fn diff(&self, _ctx: &Scope<'_>, live: &SecurityGroup) -> Result<Vec<Changed<RulesField>>, StackError> {
        let mut diff = Diff::new();
        compare(&mut diff, RulesField::Ingress, Flow::Ingress, live, &[]);
        compare(&mut diff, RulesField::Egress, Flow::Egress, live, &[]);
        Ok(diff.into_changes())
    }

    /// Nothing to create: wait until EC2 shows the group it made with the VPC.
    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<SecurityGroup, StackError> {
        let vpc = ctx.need(VPC)?;
        line.start("checking");
        let group = wait::until(line, &vpc, "show its default security group", budget::PROPAGATION, || async {
            Ok(match default_group(ctx, &vpc).await? {
                Some(group) => Poll::Ready(group),
                None => Poll::Pending("not visible yet".into()),
            })
        })
        .await?;
        Ok(group)
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &SecurityGroup,
        _changes: &[Changed<RulesField>],
    ) -> Result<Option<SecurityGroup>, StackError> {
        line.start("removing rules");
        for flow in [Flow::Ingress, Flow::Egress] {
            flow.revoke(ctx, live.object_id(), &flow.current(live)).await?;
        }
        Ok(None)
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle { made_with: Some(VPC), ..Lifecycle::default() }
    }

    /// It goes with its VPC (DeleteSecurityGroup refuses a default group).
    async fn destroy(&self, _ctx: &Scope<'_>, _line: &Line, _live: SecurityGroup) -> Result<Outcome, StackError> {
        Ok(Outcome::GoesWithVpc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(rules: Vec<IpPermission>) -> SecurityGroup {
        SecurityGroup::builder().group_id("sg-1").set_ip_permissions(Some(rules)).build()
    }

    #[test]
    fn rules_compare_by_what_identifies_them_and_print_readably() {
        let described_rule = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(80)
            .to_port(80)
            .ip_ranges(IpRange::builder().cidr_ip(ANYWHERE).description("HTTP from the internet").build())
            .build();
        assert_eq!(Rule::of(&described_rule), Rule::from_anywhere(80));
        assert_eq!(Rule::from_anywhere(80).to_string(), "tcp 80 0.0.0.0/0");
        assert_eq!(Rule::all_traffic_anywhere().to_string(), "all traffic 0.0.0.0/0");
        assert_eq!(Rule::of(&Rule::with_group(80, "sg-9").permission()), Rule::with_group(80, "sg-9"));
    }

    #[test]
    fn a_rule_that_holds_a_group_is_named_with_its_group_and_owner() {
        let tag = aws_sdk_ec2::types::Tag::builder().key(crate::context::STACK_TAG).value("probe-2").build();
        let holder = SecurityGroup::builder()
            .group_id("sg-alb")
            .group_name("probe-2-alb")
            .tags(tag)
            .ip_permissions_egress(Rule::with_group(80, "sg-task").permission())
            .ip_permissions_egress(Rule::all_traffic_anywhere().permission())
            .build();
        let untagged = SecurityGroup::builder()
            .group_id("sg-x")
            .group_name("hand-made")
            .ip_permissions(Rule::with_group(80, "sg-task").permission())
            .build();
        assert_eq!(
            describe_references(&[holder.clone(), untagged], "sg-task"),
            [
                "egress rule tcp 80 sg-task of group sg-alb (probe-2-alb, stack probe-2's)",
                "ingress rule tcp 80 sg-task of group sg-x (hand-made, carrying no stack tag)"
            ]
        );
        assert!(referencing_rules(&holder, "sg-other").is_empty());
        let error = held("security group sg-task", None, describe_references(&[holder], "sg-task")).to_string();
        assert!(error.starts_with("security group sg-task cannot be deleted: in use by egress rule"), "{error}");
    }

    #[test]
    fn the_task_group_waits_for_the_gateway_endpoints_it_names_when_the_stack_has_them() {
        use crate::resources::gateway_endpoints::{DYNAMODB_ENDPOINT, S3_ENDPOINT};
        use crate::resources::stack;
        let parse = |text: &str| Config::parse("t", text).unwrap();
        let on = parse(crate::config::DEFAULT_TOML);
        let needs = stack(&crate::model::Shape::of(&on)).unwrap().needs_of(TASK_SECURITY_GROUP);
        assert!(needs.contains(&S3_ENDPOINT) && needs.contains(&DYNAMODB_ENDPOINT), "{needs:?}");
        let off = parse(&crate::config::DEFAULT_TOML.replace("gateway_endpoints = true ", "gateway_endpoints = false"));
        let needs = stack(&crate::model::Shape::of(&off)).unwrap().needs_of(TASK_SECURITY_GROUP);
        assert_eq!(needs, [ALB_SECURITY_GROUP], "without them, as before");
    }

    #[test]
    fn task_egress_is_https_and_the_vpc_resolver_unless_open() {
        let config = |cidr: &str, egress: &str| {
            let text = crate::config::DEFAULT_TOML
                .replace("cidr = \"10.0.0.0/16\"", &format!("cidr = \"{cidr}\""))
                .replace("task_egress = \"restricted\"", &format!("task_egress = \"{egress}\""));
            Config::parse("t", &text)
        };
        let shown = |c: &Config, lists: &[&str]| {
            let mut rules = task_egress(c, lists.iter().map(|l| l.to_string()).collect());
            rules.sort();
            show(&rules)
        };
        let restricted = config("10.20.0.0/16", "restricted").unwrap();
        assert_eq!(shown(&restricted, &[]), "tcp 53 10.20.0.2/32, tcp 443 0.0.0.0/0, udp 53 10.20.0.2/32");
        // With the gateway endpoints, their prefix lists are named peers of the HTTPS rule.
        let with_endpoints = shown(&restricted, &["pl-63a5400a", "pl-02cd2c6b"]);
        assert_eq!(
            with_endpoints,
            "tcp 53 10.20.0.2/32, tcp 443 0.0.0.0/0,pl-02cd2c6b,pl-63a5400a, udp 53 10.20.0.2/32"
        );
        let open = config("10.0.0.0/16", "open").unwrap();
        assert_eq!(shown(&open, &["pl-63a5400a"]), "all traffic 0.0.0.0/0");
        // An existing stack's open rule is an in-place change shown old to new.
        let group = SecurityGroup::builder()
            .group_id("sg-1")
            .ip_permissions_egress(Rule::all_traffic_anywhere().permission())
            .build();
        let mut diff = Diff::new();
        compare(&mut diff, RulesField::Egress, Flow::Egress, &group, &task_egress(&restricted, vec![]));
        let changes = diff.into_changes();
        assert_eq!(
            changes[0].change.to_string(),
            "egress: all traffic 0.0.0.0/0 → tcp 53 10.20.0.2/32, tcp 443 0.0.0.0/0, udp 53 10.20.0.2/32"
        );
        assert!(!changes[0].change.replace);
        let e = config("10.0.0.0/16", "closed").unwrap_err().to_string();
        assert!(e.contains("network.task_egress") && e.contains("restricted"), "{e}");
    }

    #[test]
    fn an_extra_rule_is_drift_shown_old_to_new() {
        let ssh = Rule::from_anywhere(22).permission();
        let group = described(vec![Rule::from_anywhere(80).permission(), ssh]);
        let mut diff = Diff::new();
        compare(&mut diff, RulesField::Ingress, Flow::Ingress, &group, &[Rule::from_anywhere(80)]);
        let changes = diff.into_changes();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].change.to_string(), "ingress: tcp 22 0.0.0.0/0, tcp 80 0.0.0.0/0 → tcp 80 0.0.0.0/0");
        let mut same = Diff::new();
        compare(
            &mut same,
            RulesField::Ingress,
            Flow::Ingress,
            &described(vec![Rule::from_anywhere(80).permission()]),
            &[Rule::from_anywhere(80)],
        );
        assert!(same.into_changes().is_empty());
    }
}
