//! Security groups: the ALB's (open on the listener port), the tasks' (reachable only from the
//! ALB), and the VPC's default group emptied of rules.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType, SecurityGroup, UserIdGroupPair};

use crate::context::{keys, Ctx, Outcome};
use crate::error::{ignore_not_found, AwsContext, StackError};
use crate::progress::Line;
use crate::resources::network::{tag_filters, tag_spec};
use crate::resources::Inspection;
use crate::wait::{self, budget};

const ANYWHERE: &str = "0.0.0.0/0";

fn tcp_from_cidr(port: u32, cidr: &str, description: &str) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port as i32)
        .to_port(port as i32)
        .ip_ranges(IpRange::builder().cidr_ip(cidr).description(description).build())
        .build()
}

fn tcp_with_group(port: u32, group: &str, description: &str) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port as i32)
        .to_port(port as i32)
        .user_id_group_pairs(UserIdGroupPair::builder().group_id(group).description(description).build())
        .build()
}

/// The ALB group's one ingress rule.
fn alb_ingress(listener_port: u32) -> IpPermission {
    tcp_from_cidr(listener_port, ANYWHERE, "HTTP from the internet")
}

/// The ALB group's one egress rule: to the tasks' port.
fn alb_egress(container_port: u32, task_group: &str) -> IpPermission {
    tcp_with_group(container_port, task_group, "to the tasks")
}

/// The task group's one ingress rule: from the ALB group only.
fn task_ingress(container_port: u32, alb_group: &str) -> IpPermission {
    tcp_with_group(container_port, alb_group, "from the load balancer")
}

fn all_traffic_anywhere() -> IpPermission {
    IpPermission::builder().ip_protocol("-1").ip_ranges(IpRange::builder().cidr_ip(ANYWHERE).build()).build()
}

async fn describe(ctx: &Ctx, id: &str) -> Result<Option<SecurityGroup>, StackError> {
    match ctx.aws.ec2.describe_security_groups().group_ids(id).send().await.ctx("describe", id) {
        Ok(out) => Ok(out.security_groups().first().cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The recorded group if it exists, else one found by tag (recorded at once).
async fn locate(ctx: &Ctx, key: &str) -> Result<Option<SecurityGroup>, StackError> {
    if let Some(id) = ctx.id(key) {
        if let Some(group) = describe(ctx, &id).await? {
            return Ok(Some(group));
        }
    }
    let out = ctx
        .aws
        .ec2
        .describe_security_groups()
        .set_filters(Some(tag_filters(ctx, key)))
        .send()
        .await
        .ctx("find by tag", key)?;
    match out.security_groups().first() {
        Some(group) => {
            ctx.record(key, "ec2:security-group", group.group_id().unwrap_or_default(), &[])?;
            Ok(Some(group.clone()))
        }
        None => {
            ctx.forget(key)?;
            Ok(None)
        }
    }
}

/// A rule reduced to what identifies it, for comparing described rules with wanted ones.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RuleShape {
    protocol: String,
    ports: Option<(i32, i32)>,
    cidrs: BTreeSet<String>,
    ipv6: BTreeSet<String>,
    groups: BTreeSet<String>,
    prefix_lists: BTreeSet<String>,
}

fn shape(p: &IpPermission) -> RuleShape {
    let protocol = p.ip_protocol().unwrap_or_default().to_string();
    RuleShape {
        ports: if protocol == "-1" { None } else { Some((p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1))) },
        protocol,
        cidrs: p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(str::to_string)).collect(),
        ipv6: p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6().map(str::to_string)).collect(),
        groups: p.user_id_group_pairs().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
        prefix_lists: p.prefix_list_ids().iter().filter_map(|l| l.prefix_list_id().map(str::to_string)).collect(),
    }
}

/// Is `rules` exactly the one `wanted` rule?
fn exactly(rules: &[IpPermission], wanted: &IpPermission) -> bool {
    rules.len() == 1 && shape(&rules[0]) == shape(wanted)
}

#[derive(Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

/// Make the group's rules in `direction` exactly `wanted`: revoke anything else, add it if missing.
async fn converge_rules(
    ctx: &Ctx,
    id: &str,
    direction: Direction,
    current: &[IpPermission],
    wanted: IpPermission,
) -> Result<bool, StackError> {
    if exactly(current, &wanted) {
        return Ok(false);
    }
    let wanted_shape = shape(&wanted);
    let unwanted: Vec<IpPermission> = current.iter().filter(|p| shape(p) != wanted_shape).cloned().collect();
    if !unwanted.is_empty() {
        let unwanted = strip_empty(&unwanted);
        let result = match direction {
            Direction::Ingress => ctx
                .aws
                .ec2
                .revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(unwanted))
                .send()
                .await
                .ctx("remove ingress rules from", id)
                .map(drop),
            Direction::Egress => ctx
                .aws
                .ec2
                .revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(unwanted))
                .send()
                .await
                .ctx("remove egress rules from", id)
                .map(drop),
        };
        match result {
            Err(e) if e.has_code(&["InvalidPermission.NotFound"]) => {}
            other => other?,
        }
    }
    if !current.iter().any(|p| shape(p) == wanted_shape) {
        match direction {
            Direction::Ingress => authorize_ingress(ctx, id, wanted).await?,
            Direction::Egress => authorize_egress(ctx, id, wanted).await?,
        }
    }
    Ok(true)
}

async fn create_group(ctx: &Ctx, key: &str, suffix: &str, description: &str) -> Result<SecurityGroup, StackError> {
    let vpc = ctx.need(keys::VPC, key)?;
    let name = ctx.name(suffix);
    let out = ctx
        .aws
        .ec2
        .create_security_group()
        .group_name(&name)
        .description(description)
        .vpc_id(&vpc)
        .tag_specifications(tag_spec(ctx, ResourceType::SecurityGroup, key, &name))
        .send()
        .await
        .ctx("create", key)?;
    let id = out.group_id().unwrap_or_default().to_string();
    ctx.record(key, "ec2:security-group", &id, &[])?;
    // Read it back for its default egress rule; retry while the new ID propagates.
    let line = Line::hidden();
    wait::retry_while(&line, &id, budget::PROPAGATION, StackError::is_not_found, || async {
        describe(ctx, &id).await?.ok_or_else(|| StackError::Aws {
            action: "describe".into(),
            resource: id.clone(),
            code: "InvalidGroup.NotFound".into(),
            message: "not visible yet".into(),
            detail: String::new(),
        })
    })
    .await
}

async fn authorize_ingress(ctx: &Ctx, id: &str, permission: IpPermission) -> Result<(), StackError> {
    match ctx
        .aws
        .ec2
        .authorize_security_group_ingress()
        .group_id(id)
        .ip_permissions(permission)
        .send()
        .await
        .ctx("add an ingress rule to", id)
    {
        Err(e) if e.has_code(&["InvalidPermission.Duplicate"]) => Ok(()),
        other => other.map(drop),
    }
}

async fn authorize_egress(ctx: &Ctx, id: &str, permission: IpPermission) -> Result<(), StackError> {
    match ctx
        .aws
        .ec2
        .authorize_security_group_egress()
        .group_id(id)
        .ip_permissions(permission)
        .send()
        .await
        .ctx("add an egress rule to", id)
    {
        Err(e) if e.has_code(&["InvalidPermission.Duplicate"]) => Ok(()),
        other => other.map(drop),
    }
}

async fn revoke_egress(ctx: &Ctx, id: &str, permission: IpPermission) -> Result<(), StackError> {
    match ctx
        .aws
        .ec2
        .revoke_security_group_egress()
        .group_id(id)
        .ip_permissions(permission)
        .send()
        .await
        .ctx("remove an egress rule from", id)
    {
        Err(e) if e.has_code(&["InvalidPermission.NotFound"]) || e.is_not_found() => Ok(()),
        other => other.map(drop),
    }
}

/// ALB group: HTTP from anywhere on the listener port; egress only to the task group (added by
/// `ensure_task_group`, which knows both groups).
pub async fn ensure_alb_group(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::ALB_SG;
    let port = ctx.config.load_balancer.listener_port;
    let (group, mut outcome) = match locate(ctx, key).await? {
        Some(group) => (group, Outcome::Unchanged),
        None => {
            line.start("creating");
            (
                create_group(ctx, key, "alb", "fargate-stack load balancer: HTTP from the internet").await?,
                Outcome::Created,
            )
        }
    };
    let id = group.group_id().unwrap_or_default().to_string();
    if converge_rules(ctx, &id, Direction::Ingress, group.ip_permissions(), alb_ingress(port)).await? {
        outcome = bump(outcome);
    }
    // Egress (only to the task group) is set by `ensure_task_group`; here only the default
    // all-traffic rule AWS adds to a new group goes.
    let open: Vec<IpPermission> =
        group.ip_permissions_egress().iter().filter(|p| shape(p) == shape(&all_traffic_anywhere())).cloned().collect();
    if !open.is_empty() {
        revoke_egress(ctx, &id, all_traffic_anywhere()).await?;
        outcome = bump(outcome);
    }
    Ok(outcome)
}

/// Task group: the container port from the ALB group only; egress open (image pulls through the
/// NAT, DynamoDB). Also the ALB group's one egress rule, to this group.
pub async fn ensure_task_group(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::TASK_SG;
    let port = ctx.config.service.container_port;
    let alb_group = ctx.need(keys::ALB_SG, key)?;
    let (group, mut outcome) = match locate(ctx, key).await? {
        Some(group) => (group, Outcome::Unchanged),
        None => {
            line.start("creating");
            (
                create_group(ctx, key, "task", "fargate-stack tasks: container port from the load balancer only")
                    .await?,
                Outcome::Created,
            )
        }
    };
    let id = group.group_id().unwrap_or_default().to_string();
    if converge_rules(ctx, &id, Direction::Ingress, group.ip_permissions(), task_ingress(port, &alb_group)).await? {
        outcome = bump(outcome);
    }
    if converge_rules(ctx, &id, Direction::Egress, group.ip_permissions_egress(), all_traffic_anywhere()).await? {
        outcome = bump(outcome);
    }
    let alb = describe(ctx, &alb_group)
        .await?
        .ok_or_else(|| StackError::MissingDependency { needed: keys::ALB_SG.into(), by: key.into() })?;
    if converge_rules(ctx, &alb_group, Direction::Egress, alb.ip_permissions_egress(), alb_egress(port, &id)).await? {
        outcome = bump(outcome);
    }
    Ok(outcome)
}

fn bump(outcome: Outcome) -> Outcome {
    if outcome == Outcome::Unchanged {
        Outcome::Updated
    } else {
        outcome
    }
}

/// Delete a group. The two groups reference each other, and AWS refuses to delete a referenced
/// group, so the task group first drops the ALB group's egress rule to it.
pub async fn delete_group(ctx: &Ctx, line: &Line, key: &str) -> Result<Outcome, StackError> {
    let Some(group) = locate(ctx, key).await? else { return Ok(Outcome::Absent) };
    let id = group.group_id().unwrap_or_default().to_string();
    line.start("deleting");
    if key == keys::TASK_SG {
        if let Some(alb_id) = ctx.id(keys::ALB_SG) {
            if let Some(alb) = describe(ctx, &alb_id).await? {
                for rule in alb.ip_permissions_egress() {
                    if rule.user_id_group_pairs().iter().any(|p| p.group_id() == Some(id.as_str())) {
                        revoke_egress(ctx, &alb_id, rule.clone()).await?;
                    }
                }
            }
        }
    }
    // DependencyViolation while ENIs of the ALB or the tasks linger (up to ~15 minutes on AWS).
    wait::retry_codes(line, &id, budget::SECURITY_GROUP, &["DependencyViolation", "InvalidGroup.InUse"], || async {
        ignore_not_found(ctx.aws.ec2.delete_security_group().group_id(&id).send().await.ctx("delete", &id).map(drop))
    })
    .await?;
    ctx.forget(key)?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_group(ctx: &Ctx, key: &str) -> Result<Inspection, StackError> {
    let Some(id) = ctx.id(key) else { return Ok(Inspection::not_recorded()) };
    let Some(group) = describe(ctx, &id).await? else {
        return Ok(Inspection::missing(Some(id), "deleted outside fargate-stack"));
    };
    let listener_port = ctx.config.load_balancer.listener_port;
    let port = ctx.config.service.container_port;
    let (ingress, egress) = (group.ip_permissions(), group.ip_permissions_egress());
    let drift = if key == keys::ALB_SG {
        let task = ctx.id(keys::TASK_SG).unwrap_or_default();
        if !exactly(ingress, &alb_ingress(listener_port)) {
            Some(format!("ingress is not exactly port {listener_port} from {ANYWHERE}"))
        } else if !exactly(egress, &alb_egress(port, &task)) {
            Some(format!("egress is not exactly port {port} to the task group"))
        } else {
            None
        }
    } else {
        let alb = ctx.id(keys::ALB_SG).unwrap_or_default();
        if !exactly(ingress, &task_ingress(port, &alb)) {
            Some(format!("ingress is not exactly port {port} from the ALB group"))
        } else if !exactly(egress, &all_traffic_anywhere()) {
            Some("egress differs from all traffic to anywhere".into())
        } else {
            None
        }
    };
    Ok(match drift {
        Some(detail) => Inspection::drifted(id, detail),
        None => Inspection::ok(id),
    })
}

async fn default_group(ctx: &Ctx, vpc: &str) -> Result<Option<SecurityGroup>, StackError> {
    let out = ctx
        .aws
        .ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(Filter::builder().name("group-name").values("default").build())
        .send()
        .await
        .ctx("describe the default security group of", vpc)?;
    Ok(out.security_groups().first().cloned())
}

/// Remove every rule of the VPC's default group, so nothing placed in it by mistake is reachable.
pub async fn empty_default_group(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let vpc = ctx.need(keys::VPC, keys::DEFAULT_SG)?;
    let group = wait::retry_while(
        line,
        &vpc,
        budget::PROPAGATION,
        |e| e.has_code(&["DefaultGroupNotYetVisible"]),
        || async {
            default_group(ctx, &vpc).await?.ok_or_else(|| StackError::Aws {
                action: "find".into(),
                resource: format!("default security group of {vpc}"),
                code: "DefaultGroupNotYetVisible".into(),
                message: "not visible yet".into(),
                detail: String::new(),
            })
        },
    )
    .await?;
    let id = group.group_id().unwrap_or_default().to_string();
    ctx.record(keys::DEFAULT_SG, "ec2:security-group", &id, &[])?;
    let mut outcome = Outcome::Unchanged;
    if !group.ip_permissions().is_empty() {
        line.start("removing rules");
        match ctx
            .aws
            .ec2
            .revoke_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(strip_empty(group.ip_permissions())))
            .send()
            .await
            .ctx("remove ingress rules from", &id)
        {
            Err(e) if e.has_code(&["InvalidPermission.NotFound"]) => {}
            other => drop(other?),
        }
        outcome = Outcome::Updated;
    }
    if !group.ip_permissions_egress().is_empty() {
        line.start("removing rules");
        match ctx
            .aws
            .ec2
            .revoke_security_group_egress()
            .group_id(&id)
            .set_ip_permissions(Some(strip_empty(group.ip_permissions_egress())))
            .send()
            .await
            .ctx("remove egress rules from", &id)
        {
            Err(e) if e.has_code(&["InvalidPermission.NotFound"]) => {}
            other => drop(other?),
        }
        outcome = Outcome::Updated;
    }
    Ok(outcome)
}

/// Described rules carry `userId` and empty lists; send back only what identifies the rule.
fn strip_empty(rules: &[IpPermission]) -> Vec<IpPermission> {
    rules
        .iter()
        .map(|p| {
            let mut b = IpPermission::builder().set_ip_protocol(p.ip_protocol().map(str::to_string));
            if p.ip_protocol() != Some("-1") {
                b = b.set_from_port(p.from_port()).set_to_port(p.to_port());
            }
            for r in p.ip_ranges() {
                b = b.ip_ranges(IpRange::builder().set_cidr_ip(r.cidr_ip().map(str::to_string)).build());
            }
            for r in p.ipv6_ranges() {
                b = b.ipv6_ranges(
                    aws_sdk_ec2::types::Ipv6Range::builder().set_cidr_ipv6(r.cidr_ipv6().map(str::to_string)).build(),
                );
            }
            for g in p.user_id_group_pairs() {
                b = b.user_id_group_pairs(
                    UserIdGroupPair::builder().set_group_id(g.group_id().map(str::to_string)).build(),
                );
            }
            for l in p.prefix_list_ids() {
                b = b.prefix_list_ids(
                    aws_sdk_ec2::types::PrefixListId::builder()
                        .set_prefix_list_id(l.prefix_list_id().map(str::to_string))
                        .build(),
                );
            }
            b.build()
        })
        .collect()
}

pub async fn inspect_default_group(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(vpc) = ctx.id(keys::VPC) else { return Ok(Inspection::not_recorded()) };
    Ok(match default_group(ctx, &vpc).await? {
        None => Inspection::missing(None, "the VPC has no default group"),
        Some(g) if g.ip_permissions().is_empty() && g.ip_permissions_egress().is_empty() => {
            Inspection::ok(g.group_id().unwrap_or_default())
        }
        Some(g) => Inspection::drifted(g.group_id().unwrap_or_default(), "has rules"),
    })
}

/// The default group goes with its VPC; forgetting it is all there is to do.
pub async fn forget_default_group(ctx: &Ctx) -> Result<Outcome, StackError> {
    ctx.forget(keys::DEFAULT_SG)?;
    Ok(Outcome::Absent)
}
