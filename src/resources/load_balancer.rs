//! The internet-facing application load balancer, its target group (type ip, for awsvpc tasks)
//! and the HTTP listener (forwarding, or redirecting to HTTPS). The HTTPS listener is in
//! `listener_https`.

use std::future::Future;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, IpAddressType, Listener as ListenerObject, LoadBalancer as Lb,
    LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum,
    RedirectActionConfig, RedirectActionStatusCodeEnum, TargetGroup as Tg, TargetGroupAttribute, TargetHealthStateEnum,
    TargetTypeEnum,
};
use futures::future::BoxFuture;

use crate::access::{self, arn, global_arn, Condition, Permission, STACK};
use crate::aws::Clients;
use crate::bill::{items, Charge, Quantity, Unit};
use crate::config::Config;
use crate::config::HTTPS_PORT;
use crate::error::{found, ignore_not_found, returned, AwsContext, StackError};
use crate::model::{
    after, before, made_for, owner_tags, tags::Seen, Attr, Changed, Dep, Diff, Edge, Field, Inspection, Key, Kind,
    Lifecycle, Managed, Nodes, Outcome, Record, Scope, Shape, Sighting, Sweep, Wait,
};
use crate::progress::Line;
use crate::resources::access_logs::{check_given_bucket, ACCESS_LOG_BUCKET};
use crate::resources::ec2::{filter, wait_enis_released};
use crate::resources::network::{INTERNET_GATEWAY, PUBLIC_SUBNET, VPC};
use crate::resources::security::ALB_SECURITY_GROUP;
use crate::resources::tags::TagPairs;
use crate::wait::{self, budget, Poll};

use crate::resources::serving::{
    alternate_target_group_name, switching_from_alternate, target_group_name_in, ALTERNATE_TARGET_GROUP,
    TARGET_GROUP_NAME,
};
pub use crate::resources::serving::{rule_routes, PRODUCTION_RULE, REPLACES_PORT, TARGET_GROUP, TARGET_GROUP_PORT};
pub const LOAD_BALANCER: Key = Key::new("load-balancer", Kind::new("elbv2:load-balancer"));
pub(crate) const LISTENER_KIND: Kind = Kind::new("elbv2:listener");
pub const LISTENER: Key = Key::new("listener", LISTENER_KIND);
/// Wait: the load balancer left `provisioning`.
pub const LOAD_BALANCER_ACTIVE: Key = Key::new("load-balancer-active", Kind::WAIT);

/// While `up` replaces the target group (a new container port): the old one's ARN, name (and port),
/// set before the new one is created, cleared once the old one is deleted ([`TargetGroup::finish_up`]).
const REPLACES: Attr = Attr::new(TARGET_GROUP, "replaces");
const REPLACES_NAME: Attr = Attr::new(TARGET_GROUP, "replaces_name");
pub const LOAD_BALANCER_NAME: Attr = Attr::new(LOAD_BALANCER, "name");
pub const DNS_NAME: Attr = Attr::new(LOAD_BALANCER, "dns_name");
pub const CANONICAL_ZONE: Attr = Attr::new(LOAD_BALANCER, "canonical_zone");
pub const LISTENER_PORT: Attr = Attr::new(LISTENER, "port");

/// The target group, the load balancer and the HTTP listener.
pub fn declare(_shape: &Shape, nodes: &mut Nodes) {
    nodes.managed(TargetGroup);
    nodes.managed(LoadBalancer);
    nodes.managed(Listener);
}

/// The wait for the load balancer to be active, which the service's health waits for.
pub fn active(shape: &Shape, nodes: &mut Nodes) {
    if shape.waits() {
        nodes.wait(ActiveWait);
    }
}

const DELETION_PROTECTION: &str = "deletion_protection.enabled";
const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";

const ACCESS_LOGS: &str = "access_logs.s3.enabled";
const ACCESS_LOGS_BUCKET: &str = "access_logs.s3.bucket";
const ACCESS_LOGS_PREFIX: &str = "access_logs.s3.prefix";

/// Load balancer attributes we set: drop malformed headers (request smuggling), deletion
/// protection as the config says (on by default), the idle timeout, and access logs: to the stack's own bucket
/// (`own_bucket`: its name once it exists), to the config's, or off.
fn lb_attributes_wanted(config: &Config, own_bucket: Option<String>) -> Vec<(&'static str, String)> {
    let lb = &config.load_balancer;
    let protection = if lb.deletion_protection { "true" } else { "false" };
    let mut wanted = vec![
        ("routing.http.drop_invalid_header_fields.enabled", "true".to_string()),
        (DELETION_PROTECTION, protection.to_string()),
        (IDLE_TIMEOUT, lb.idle_timeout_seconds.to_string()),
    ];
    let logs_to = match lb.given_access_log_bucket() {
        Some(given) => Some((given.bucket.clone(), given.prefix.clone())),
        None if lb.owns_access_log_bucket() => {
            Some((own_bucket.unwrap_or_else(|| "(the stack's access-log bucket)".into()), String::new()))
        }
        None => None,
    };
    match logs_to {
        Some((bucket, prefix)) => wanted.extend([
            (ACCESS_LOGS, "true".to_string()),
            (ACCESS_LOGS_BUCKET, bucket),
            (ACCESS_LOGS_PREFIX, prefix),
        ]),
        None => wanted.push((ACCESS_LOGS, "false".to_string())),
    }
    wanted
}
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// The load balancer's name: `<stack>-alb`.
pub fn load_balancer_name(stack: &str) -> String {
    format!("{stack}-alb")
}

/// The target group's name: `<stack>-tg`.
pub fn target_group_name(stack: &str) -> String {
    format!("{stack}-tg")
}

/// The name a replacement of the target group takes when the one it replaces has the usual name
/// (and the other way round): `<stack>-tg2`, as short as the load balancer's name.
pub(crate) fn replacement_target_group_name(stack: &str) -> String {
    format!("{stack}-tg2")
}

/// The stack a target group's name is made for, under any of its names: the target group's, its
/// replacement's, and the alternate one's (`[deploy] strategy`).
pub(crate) fn stack_of_target_group(name: &str) -> Option<String> {
    made_for(name, target_group_name)
        .or_else(|| made_for(name, replacement_target_group_name))
        .or_else(|| made_for(name, crate::resources::serving::alternate_target_group_name))
}

/// The stack's address: HTTPS on its domain once the alias record points it at the load balancer
/// (`alias`, the recorded name), HTTPS on the load balancer's name once its HTTPS listener exists,
/// else HTTP on `port`.
pub fn url(dns_name: Option<&str>, port: u32, https_listener: bool, alias: Option<&str>) -> Option<String> {
    match (alias, https_listener) {
        (Some(name), true) => Some(format!("https://{}", name.trim_end_matches('.'))),
        (None, true) => dns_name.map(|d| format!("https://{d}")),
        _ => dns_name.map(|d| if port == 80 { format!("http://{d}") } else { format!("http://{d}:{port}") }),
    }
}

/// The tags of ELB resources by ARN (DescribeTags takes at most 20 ARNs).
pub(crate) async fn tags_of(
    c: &Clients,
    arns: Vec<String>,
    what: &str,
) -> Result<Vec<(String, Vec<(String, String)>)>, StackError> {
    let mut all = vec![];
    for chunk in arns.chunks(20) {
        let out = c.elb.describe_tags().set_resource_arns(Some(chunk.to_vec())).send().await;
        for d in out.ctx("describe the tags of", what)?.tag_descriptions() {
            let tags = d.tags().pairs().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            all.push((d.resource_arn().unwrap_or_default().to_string(), tags));
        }
    }
    Ok(all)
}

/// Sightings of `kind` for (ARN, name, created) triples, with their tags.
async fn tagged_sightings(
    c: &Clients,
    kind: Kind,
    found: Vec<(String, String, Option<i64>)>,
    stack_of: fn(&str) -> Option<String>,
    what: &str,
) -> Result<Vec<Sighting>, StackError> {
    let tags = tags_of(c, found.iter().map(|(arn, _, _)| arn.clone()).collect(), what).await?;
    Ok(found
        .into_iter()
        .map(|(arn, name, created)| {
            let own = tags.iter().find(|(a, _)| *a == arn).map(|(_, t)| t.as_slice()).unwrap_or_default();
            Sighting::new(kind, &name).named(&name, stack_of).owned(owner_tags(own.pairs())).created(created)
        })
        .collect())
}

/// Every load balancer named as a stack's, with its tags and when it was created.
fn sweep_load_balancers(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c.elb.describe_load_balancers().into_paginator().items().send().try_collect().await;
        let found = all
            .ctx("describe", "load balancers")?
            .into_iter()
            .filter(|lb| lb.load_balancer_name().is_some_and(|n| made_for(n, load_balancer_name).is_some()))
            .map(|lb| {
                let name = lb.load_balancer_name().unwrap_or_default().to_string();
                (lb.load_balancer_arn().unwrap_or_default().to_string(), name, lb.created_time().map(|t| t.secs()))
            })
            .collect();
        let stack_of = |n: &str| made_for(n, load_balancer_name);
        tagged_sightings(c, LOAD_BALANCER.kind(), found, stack_of, "load balancers").await
    })
}

/// Every target group named as a stack's, with its tags.
pub(crate) fn sweep_target_groups(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c.elb.describe_target_groups().into_paginator().items().send().try_collect().await;
        let found = all
            .ctx("describe", "target groups")?
            .into_iter()
            .filter(|tg| tg.target_group_name().is_some_and(|n| stack_of_target_group(n).is_some()))
            .map(|tg| {
                let name = tg.target_group_name().unwrap_or_default().to_string();
                (tg.target_group_arn().unwrap_or_default().to_string(), name, None)
            })
            .collect();
        tagged_sightings(c, TARGET_GROUP.kind(), found, stack_of_target_group, "target groups").await
    })
}

/// Every listener of a load balancer named as a stack's, with its tags; named for that stack.
pub(crate) fn sweep_listeners(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c.elb.describe_load_balancers().into_paginator().items().send().try_collect().await;
        let mut sightings = vec![];
        for lb in all.ctx("describe", "load balancers")? {
            let Some(stack) = lb.load_balancer_name().and_then(|n| made_for(n, load_balancer_name)) else { continue };
            let arn = lb.load_balancer_arn().unwrap_or_default();
            let out = found(
                c.elb.describe_listeners().load_balancer_arn(arn).send().await.ctx("describe the listeners of", arn),
            )?;
            let arns: Vec<String> =
                out.iter().flat_map(|o| o.listeners()).filter_map(|l| l.listener_arn().map(str::to_string)).collect();
            for (listener, tags) in tags_of(c, arns, "listeners").await? {
                let sighting = Sighting::new(LISTENER_KIND, &listener).owned(owner_tags(tags.pairs()));
                sightings.push(Sighting { named_for: Some(stack.clone()), ..sighting });
            }
        }
        Ok(sightings)
    })
}

/// The load balancer's ARN pattern.
pub(crate) fn load_balancer_arn() -> String {
    arn("elasticloadbalancing", &format!("loadbalancer/app/{}/*", load_balancer_name(STACK)))
}

/// What a listener (HTTP or HTTPS) calls: found on the load balancer, created on it with the
/// stack's tags, changed and deleted by its own ARN.
pub(crate) fn listener_permissions() -> Vec<Permission> {
    let listener = arn("elasticloadbalancing", &format!("listener/app/{}/*/*", load_balancer_name(STACK)));
    vec![
        Permission::find("elasticloadbalancing:DescribeListeners"),
        Permission::find("elasticloadbalancing:DescribeTags"),
        Permission::create("elasticloadbalancing:CreateListener").on(load_balancer_arn()).tagged(),
        Permission::create("elasticloadbalancing:CreateListener").on(listener.clone()).tagging(),
        access::tags_on_create("elasticloadbalancing:AddTags", "CreateListener", listener.clone()),
        access::retagging("elasticloadbalancing:AddTags", listener.clone()),
        access::retagging("elasticloadbalancing:RemoveTags", listener.clone()),
        Permission::update("elasticloadbalancing:ModifyListener").on(listener.clone()).tagged(),
        Permission::delete("elasticloadbalancing:DeleteListener").on(listener).tagged(),
    ]
}

/// Check the tags of an ELB resource (one DescribeTags call), on our side.
pub(crate) async fn check_tags(ctx: &Scope<'_>, key: Key, arn: &str, what: &str) -> Result<(), StackError> {
    let out = ctx.aws.elb.describe_tags().resource_arns(arn).send().await.ctx("describe the tags of", what)?;
    let description = out.tag_descriptions().iter().find(|d| d.resource_arn() == Some(arn));
    let tags = description.map(|d| d.tags()).unwrap_or_default();
    ctx.run::<Seen>().note(arn, tags.pairs());
    // The stack's two target groups take each other's role when a switch to rolling keeps the
    // alternate one (its tag follows in the same `up`): either tag is the stack's target group.
    let twin = match key {
        TARGET_GROUP => Some(ALTERNATE_TARGET_GROUP),
        ALTERNATE_TARGET_GROUP => Some(TARGET_GROUP),
        _ => None,
    };
    if twin.is_some_and(|twin| ctx.owns(twin, tags.pairs()).is_ok()) {
        return Ok(());
    }
    ctx.owned(key, format!("{} {what}", key.kind()), tags.pairs())
}

/// An ELB resource's tags for the `[tags]` sync: as `check_tags` read them in this run's `find`.
pub(crate) async fn elb_tags(ctx: &Scope<'_>, arn: &str) -> Result<Option<Vec<(String, String)>>, StackError> {
    if let Some(seen) = ctx.run::<Seen>().get(arn) {
        return Ok(Some(seen));
    }
    Ok(tags_of(ctx.aws, vec![arn.to_string()], arn).await?.into_iter().next().map(|(_, tags)| tags))
}

/// Keep the user's tags in step on an ELB resource: AddTags puts (and overwrites), RemoveTags takes
/// keys off.
pub(crate) async fn elb_retag(
    ctx: &Scope<'_>,
    arn: &str,
    put: &[(String, String)],
    remove: &[String],
) -> Result<(), StackError> {
    if !put.is_empty() {
        let tags =
            put.iter().map(|(k, v)| aws_sdk_elasticloadbalancingv2::types::Tag::builder().key(k).value(v).build());
        ctx.aws.elb.add_tags().resource_arns(arn).set_tags(Some(tags.collect())).send().await.ctx("tag", arn)?;
    }
    if !remove.is_empty() {
        let call = ctx.aws.elb.remove_tags().resource_arns(arn).set_tag_keys(Some(remove.to_vec()));
        call.send().await.ctx("untag", arn)?;
    }
    Ok(())
}

/// In this stack's VPC?
fn check_vpc(ctx: &Scope<'_>, key: Key, vpc: Option<&str>, what: &str) -> Result<(), StackError> {
    match (ctx.id(VPC), vpc) {
        (Some(ours), Some(theirs)) if ours != theirs => {
            Err(ctx.not_ours(format!("{} {what}", key.kind()), format!("in {theirs}, not the stack's {ours}")))
        }
        _ => Ok(()),
    }
}

/// A load balancer or target group: by its recorded ARN (described, tag-checked and its attributes
/// read in one round), else by name; then checked to carry this stack's tag and sit in its VPC.
/// `describe(Some(arn))` / `describe(None)` look it up; `ids` gives its ARN and VPC; `read` its extras.
async fn find_elb<T, A, D, DF, R, RF>(
    ctx: &Scope<'_>,
    key: Key,
    recorded: Option<String>,
    name: &str,
    describe: D,
    ids: fn(&T) -> (String, Option<String>),
    read: R,
) -> Result<Option<(T, A)>, StackError>
where
    D: Fn(Option<String>) -> DF,
    DF: Future<Output = Result<Option<T>, StackError>>,
    R: Fn(String) -> RF,
    RF: Future<Output = Result<A, StackError>>,
{
    let (found, early) = match &recorded {
        Some(arn) => {
            let (found, checked, extra) =
                tokio::join!(describe(Some(arn.clone())), check_tags(ctx, key, arn, name), read(arn.clone()));
            match found? {
                Some(found) => (Some(found), Some((checked, extra))),
                None => (describe(None).await?, None),
            }
        }
        None => (describe(None).await?, None),
    };
    let Some(found) = found else { return Ok(None) };
    let (arn, vpc) = ids(&found);
    let (checked, extra) = match early {
        Some(early) if recorded.as_deref() == Some(arn.as_str()) => early,
        _ => tokio::join!(check_tags(ctx, key, &arn, name), read(arn.clone())),
    };
    checked?;
    check_vpc(ctx, key, vpc.as_deref(), name)?;
    Ok(Some((found, extra?)))
}

// ---------------------------------------------------------------- target group

pub struct TargetGroup;

/// What the target group can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetGroupField {
    ContainerPort,
    TargetType,
    HealthCheckPath,
    HealthCheckInterval,
    HealthCheckTimeout,
    HealthyThreshold,
    UnhealthyThreshold,
    DeregistrationDelay,
    HealthCheckMatcher,
    /// Its `fargate-stack:resource` tag, after the two target groups took each other's role.
    Role,
}

impl Field for TargetGroupField {
    fn label(&self) -> String {
        match self {
            TargetGroupField::ContainerPort => "service.container_port",
            TargetGroupField::TargetType => "target type",
            TargetGroupField::HealthCheckPath => "service.health_check_path",
            TargetGroupField::HealthCheckInterval => "load_balancer.health_check_interval_seconds",
            TargetGroupField::HealthCheckTimeout => "load_balancer.health_check_timeout_seconds",
            TargetGroupField::HealthyThreshold => "load_balancer.healthy_threshold",
            TargetGroupField::UnhealthyThreshold => "load_balancer.unhealthy_threshold",
            TargetGroupField::DeregistrationDelay => "load_balancer.deregistration_delay_seconds",
            TargetGroupField::HealthCheckMatcher => "load_balancer.health_check_matcher",
            TargetGroupField::Role => "role tag (the group that serves stays the target group: no task moves)",
        }
        .into()
    }
}

pub struct TgLive {
    pub(crate) tg: Tg,
    deregistration_delay: Option<String>,
    /// Its `fargate-stack:resource` tag: which of the stack's two target groups it was made as.
    role: Option<String>,
    /// Found as the group that serves on a switch to rolling (see `switching_from_alternate`).
    kept: bool,
}

async fn describe_tg(ctx: &Scope<'_>, arn: Option<&str>, name: &str) -> Result<Option<Tg>, StackError> {
    let call = ctx.aws.elb.describe_target_groups();
    let call = match arn {
        Some(arn) => call.target_group_arns(arn),
        None => call.names(name),
    };
    Ok(found(call.send().await.ctx("describe target group", name))?.and_then(|o| o.target_groups().first().cloned()))
}

async fn deregistration_delay(ctx: &Scope<'_>, arn: &str) -> Result<Option<String>, StackError> {
    let out = ctx
        .aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .ctx("describe the attributes of", arn)?;
    Ok(out
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
        .and_then(|a| a.value().map(str::to_string)))
}

#[async_trait]
impl Managed for TargetGroup {
    type Live = TgLive;
    type Field = TargetGroupField;

    async fn tags(&self, ctx: &Scope<'_>, live: &TgLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        elb_tags(ctx, live.tg.target_group_arn().unwrap_or_default()).await
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &TgLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        elb_retag(ctx, live.tg.target_group_arn().unwrap_or_default(), put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_target_groups)
    }

    fn permissions(&self) -> Vec<Permission> {
        let mut permissions = target_group_permissions(&target_group_name(STACK));
        // The alternate group's name once a switch to rolling kept it (the production rule's
        // weights say which group serves).
        permissions.extend(target_group_permissions(&alternate_target_group_name(STACK)));
        permissions.push(Permission::find("elasticloadbalancing:DescribeRules"));
        // Its targets' health, which the service's checks and the rollout wait read.
        permissions.push(Permission::find("elasticloadbalancing:DescribeTargetHealth"));
        permissions
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        TARGET_GROUP
    }

    fn needs(&self) -> Vec<Dep> {
        vec![VPC.into()]
    }

    /// The production rule, on a switch to rolling: which group serves.
    fn reads(&self) -> Vec<Dep> {
        vec![Dep::IfPresent(PRODUCTION_RULE)]
    }

    fn note(&self, _ctx: &Scope<'_>, live: &TgLive) -> Option<String> {
        live.kept.then(|| {
            format!(
                "{} serves (the last deployment's group): the switch to rolling keeps it, so no task moves; the idle \
                 group is deleted once the production rule is gone",
                live.tg.target_group_name().unwrap_or_default()
            )
        })
    }

    /// What else forwards to it or drains from it (the HTTPS listener, the service) says so itself.
    fn teardown_after(&self) -> Vec<Edge> {
        vec![after(LISTENER, "DeleteTargetGroup fails with ResourceInUse while a listener forwards to it")]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![before(VPC, "a target group is bound to its VPC")]
    }

    /// It holds no data: `up` replaces it itself, the new one in use before the old one goes.
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle { replaced_by_up: true, ..Lifecycle::default() }
    }

    fn replacement_note(&self, found: &Inspection) -> Option<String> {
        let why: Vec<String> = found.changes.iter().filter(|c| c.replace).map(ToString::to_string).collect();
        let name = found.id.as_deref().map_or("target group", target_group_name_in);
        (!why.is_empty()).then(|| {
            format!(
                "replace target group {name} ({}): AWS cannot change it in place; a new one is created, the \
                 listeners and the service move to it, then the old one is deleted: no downtime, no data involved",
                why.join("; ")
            )
        })
    }

    fn unfinished(&self, ctx: &Scope<'_>) -> Option<String> {
        let old = ctx.attr(REPLACES)?;
        let old_name = ctx.attr(REPLACES_NAME).unwrap_or_else(|| old.clone());
        let port = ctx.attr(REPLACES_PORT).unwrap_or_default();
        let new_port = ctx.config.service.container_port;
        Some(if ctx.id(TARGET_GROUP).as_deref() == Some(old.as_str()) {
            format!(
                "an interrupted `up` began replacing target group {old_name} (port {port}) and made no replacement \
                 yet: the next `up` creates it (port {new_port}) and moves the listeners and the service to it before \
                 deleting {old_name}"
            )
        } else {
            let new_name = ctx.attr(TARGET_GROUP_NAME).unwrap_or_default();
            format!(
                "an interrupted `up` replaced target group {old_name} (port {port}) by {new_name} and did not finish: \
                 the next `up` moves the listeners and the service to {new_name} where they are not yet, then deletes \
                 {old_name} (and the old port's security group rules) once no target is left in it"
            )
        })
    }

    /// On a switch to rolling, the group the production rule serves from; else by its recorded
    /// ARN or name; with none recorded, under any of its names (the one tagged as the target
    /// group first).
    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<TgLive>, StackError> {
        if let Some((serving, _)) = switching_from_alternate(ctx).await? {
            let found = find_target_group_at(ctx, TARGET_GROUP, Some(serving.clone()), target_group_name_in(&serving));
            return Ok(found.await?.map(|live| TgLive { kept: true, ..live }));
        }
        let stack = ctx.stack();
        let names = match ctx.attr(TARGET_GROUP_NAME) {
            Some(name) => vec![name],
            None => {
                vec![target_group_name(stack), replacement_target_group_name(stack), alternate_target_group_name(stack)]
            }
        };
        let mut first = None;
        for name in &names {
            let Some(found) = find_target_group(ctx, TARGET_GROUP, name).await? else { continue };
            if found.role.as_deref() == Some(TARGET_GROUP.to_string().as_str()) || ctx.id(TARGET_GROUP).is_some() {
                return Ok(Some(found));
            }
            first = first.or(Some(found));
        }
        Ok(first)
    }

    fn record(&self, _ctx: &Scope<'_>, live: &TgLive) -> Record {
        Record::id(live.tg.target_group_arn().unwrap_or_default())
            .with(TARGET_GROUP_NAME, live.tg.target_group_name().unwrap_or_default())
            .with(TARGET_GROUP_PORT, live.tg.port().unwrap_or_default().to_string())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &TgLive) -> Result<Vec<Changed<TargetGroupField>>, StackError> {
        Ok(target_group_diff(ctx, live))
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<TgLive, StackError> {
        create_target_group(ctx, &target_group_name(ctx.stack())).await
    }

    /// A new target group under the name the current one does not have, recorded as replacing it
    /// before it is made: the listeners and the service move to it in this pass, and the old one
    /// goes in [`TargetGroup::finish_up`], once nothing uses it.
    async fn replace(&self, ctx: &Scope<'_>, line: &Line, live: TgLive) -> Result<TgLive, StackError> {
        let old = live.tg.target_group_arn().unwrap_or_default().to_string();
        // One replacement at a time: an earlier one that did not finish is finished first.
        if ctx.attr(REPLACES).is_some_and(|r| r != old) {
            self.finish_up(ctx).await?;
        }
        let old_name = live.tg.target_group_name().unwrap_or_default().to_string();
        let stack = ctx.stack();
        // (`-tg-alt` once a switch to rolling kept the alternate group: `-tg2`.)
        let new_name = if old_name == replacement_target_group_name(stack) {
            target_group_name(stack)
        } else {
            replacement_target_group_name(stack)
        };
        let port = live.tg.port().unwrap_or_default().to_string();
        ctx.set_attrs(&[(REPLACES, Some(old)), (REPLACES_NAME, Some(old_name)), (REPLACES_PORT, Some(port))]).await?;
        line.start("creating the replacement");
        // Made by a run killed before it recorded it: taken back if ours and as the config says.
        if let Some(made) = describe_tg(ctx, None, &new_name).await? {
            let arn = made.target_group_arn().unwrap_or_default().to_string();
            check_tags(ctx, TARGET_GROUP, &arn, &new_name).await?;
            let wanted_port = Some(ctx.config.service.container_port as i32);
            if made.port() == wanted_port && made.target_type() == Some(&TargetTypeEnum::Ip) {
                let deregistration_delay = deregistration_delay(ctx, &arn).await?;
                let role = Some(TARGET_GROUP.to_string());
                return Ok(TgLive { tg: made, deregistration_delay, role, kept: false });
            }
            delete_target_group(ctx, line, &arn).await?;
        }
        create_target_group(ctx, &new_name).await
    }

    /// After a replacement: the old target group is deleted once no listener forwards to it and
    /// no target is left in it (with `--no-wait` the old tasks may still drain: the next `up` does it).
    async fn finish_up(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        let Some(old) = ctx.attr(REPLACES) else { return Ok(()) };
        let old_name = ctx.attr(REPLACES_NAME).unwrap_or_else(|| old.clone());
        let clear = [(REPLACES, None), (REPLACES_NAME, None), (REPLACES_PORT, None)];
        // Else the run stopped before it made the replacement: nothing to finish.
        if ctx.id(TARGET_GROUP).as_deref() != Some(old.as_str()) {
            if let Some((_, registered @ 1..)) = found(target_health(ctx, &old).await)? {
                ctx.note(format!(
                    "target group {old_name}: {} still in it (the old tasks draining): the next `up` deletes it",
                    crate::report::count(registered as u64, "target")
                ));
                return Ok(());
            }
            delete_target_group(ctx, &Line::hidden(), &old).await?;
            let new_name = ctx.attr(TARGET_GROUP_NAME).unwrap_or_default();
            ctx.note(format!("target group {old_name} deleted: replaced by {new_name}, which the service uses"));
        }
        ctx.set_attrs(&clear).await?;
        Ok(())
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &TgLive,
        changes: &[Changed<TargetGroupField>],
    ) -> Result<Option<TgLive>, StackError> {
        update_target_group(ctx, live, changes).await?;
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: TgLive) -> Result<Outcome, StackError> {
        // ResourceInUse until the listener (and the load balancer) is gone.
        delete_target_group(ctx, line, live.tg.target_group_arn().unwrap_or_default()).await?;
        Ok(Outcome::Deleted)
    }
}

/// What a target group of the stack named `name` calls: found, made with the stack's tags,
/// changed and deleted by its own ARN.
pub(crate) fn target_group_permissions(name: &str) -> Vec<Permission> {
    let tg = arn("elasticloadbalancing", &format!("targetgroup/{name}/*"));
    vec![
        Permission::find("elasticloadbalancing:DescribeTargetGroups"),
        Permission::find("elasticloadbalancing:DescribeTags"),
        Permission::find("elasticloadbalancing:DescribeTargetGroupAttributes"),
        Permission::create("elasticloadbalancing:CreateTargetGroup").on(tg.clone()).tagging(),
        access::tags_on_create("elasticloadbalancing:AddTags", "CreateTargetGroup", tg.clone()),
        access::retagging("elasticloadbalancing:AddTags", tg.clone()),
        access::retagging("elasticloadbalancing:RemoveTags", tg.clone()),
        Permission::update("elasticloadbalancing:ModifyTargetGroup").on(tg.clone()).tagged(),
        Permission::update("elasticloadbalancing:ModifyTargetGroupAttributes").on(tg.clone()).tagged(),
        Permission::delete("elasticloadbalancing:DeleteTargetGroup").on(tg).tagged(),
    ]
}

/// How a target group of the stack (the primary or the alternate one) differs from the config.
pub(crate) fn target_group_diff(ctx: &Scope<'_>, live: &TgLive) -> Vec<Changed<TargetGroupField>> {
    use TargetGroupField as F;
    let (tg, lb) = (&live.tg, &ctx.config.load_balancer);
    let n = |v: Option<i32>| v.map_or("none".into(), |v| v.to_string());
    let mut diff = Diff::new();
    diff.replace(F::ContainerPort, &n(tg.port()), &ctx.config.service.container_port.to_string())
        .replace(F::TargetType, tg.target_type().map_or("none", |t| t.as_str()), "ip")
        .field(
            F::HealthCheckPath,
            tg.health_check_path().unwrap_or("none"),
            ctx.config.service.health_check_path.as_str(),
        )
        .field(
            F::HealthCheckInterval,
            &n(tg.health_check_interval_seconds()),
            &lb.health_check_interval_seconds.to_string(),
        )
        .field(
            F::HealthCheckTimeout,
            &n(tg.health_check_timeout_seconds()),
            &lb.health_check_timeout_seconds.to_string(),
        )
        .field(F::HealthyThreshold, &n(tg.healthy_threshold_count()), &lb.healthy_threshold.to_string())
        .field(F::UnhealthyThreshold, &n(tg.unhealthy_threshold_count()), &lb.unhealthy_threshold.to_string())
        .field(
            F::HealthCheckMatcher,
            tg.matcher().and_then(|m| m.http_code()).unwrap_or("none"),
            lb.health_check_matcher.as_str(),
        )
        .field(
            F::DeregistrationDelay,
            live.deregistration_delay.as_deref().unwrap_or("none"),
            lb.deregistration_delay_seconds.to_string().as_str(),
        );
    if let Some(role) = &live.role {
        diff.field(F::Role, role, &ctx.key().to_string());
    }
    diff.into_changes()
}

/// A target group of the stack named `name`, found as `key` (by its recorded ARN, else by name),
/// checked to carry the stack's tag and sit in its VPC.
pub(crate) async fn find_target_group(ctx: &Scope<'_>, key: Key, name: &str) -> Result<Option<TgLive>, StackError> {
    find_target_group_at(ctx, key, ctx.id(key), name).await
}

/// A target group of the stack found as `key` by the ARN given (else by name), as
/// [`find_target_group`] does with the recorded one.
pub(crate) async fn find_target_group_at(
    ctx: &Scope<'_>,
    key: Key,
    arn: Option<String>,
    name: &str,
) -> Result<Option<TgLive>, StackError> {
    let found = find_elb(
        ctx,
        key,
        arn,
        name,
        |arn: Option<String>| async move { describe_tg(ctx, arn.as_deref(), name).await },
        |tg: &Tg| (tg.target_group_arn().unwrap_or_default().to_string(), tg.vpc_id().map(str::to_string)),
        |arn| async move { deregistration_delay(ctx, &arn).await },
    )
    .await?;
    Ok(found.map(|(tg, deregistration_delay)| {
        let arn = tg.target_group_arn().unwrap_or_default();
        let tags = ctx.run::<Seen>().get(arn).unwrap_or_default();
        let role = tags.into_iter().find(|(k, _)| k == crate::context::RESOURCE_TAG).map(|(_, v)| v);
        TgLive { tg, deregistration_delay, role, kept: false }
    }))
}

/// Changes a target group of the stack in place: its health check, its deregistration delay.
pub(crate) async fn update_target_group(
    ctx: &Scope<'_>,
    live: &TgLive,
    changes: &[Changed<TargetGroupField>],
) -> Result<(), StackError> {
    let arn = live.tg.target_group_arn().unwrap_or_default();
    let lb = &ctx.config.load_balancer;
    let delay = |c: &Changed<TargetGroupField>| c.field == TargetGroupField::DeregistrationDelay;
    let role = |c: &Changed<TargetGroupField>| c.field == TargetGroupField::Role;
    if changes.iter().any(role) {
        let tag = (crate::context::RESOURCE_TAG.to_string(), ctx.key().to_string());
        elb_retag(ctx, arn, &[tag], &[]).await?;
    }
    if !changes.iter().all(|c| delay(c) || role(c)) {
        ctx.aws
            .elb
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_path(&ctx.config.service.health_check_path)
            .health_check_interval_seconds(lb.health_check_interval_seconds as i32)
            .health_check_timeout_seconds(lb.health_check_timeout_seconds as i32)
            .healthy_threshold_count(lb.healthy_threshold as i32)
            .unhealthy_threshold_count(lb.unhealthy_threshold as i32)
            .matcher(Matcher::builder().http_code(&lb.health_check_matcher).build())
            .send()
            .await
            .ctx("update the health check of", arn)?;
    }
    if changes.iter().any(delay) {
        ctx.aws
            .elb
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key(DEREGISTRATION_DELAY)
                    .value(lb.deregistration_delay_seconds.to_string())
                    .build(),
            )
            .send()
            .await
            .ctx("set the deregistration delay of", arn)?;
    }
    Ok(())
}

/// A target group named `name` as the config says, with the stack's tags.
pub(crate) async fn create_target_group(ctx: &Scope<'_>, name: &str) -> Result<TgLive, StackError> {
    let vpc = ctx.need(VPC)?;
    let lb = &ctx.config.load_balancer;
    let out = ctx
        .aws
        .elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(ctx.config.service.container_port as i32)
        .vpc_id(&vpc)
        .target_type(TargetTypeEnum::Ip)
        .health_check_protocol(ProtocolEnum::Http)
        .health_check_path(&ctx.config.service.health_check_path)
        .health_check_interval_seconds(lb.health_check_interval_seconds as i32)
        .health_check_timeout_seconds(lb.health_check_timeout_seconds as i32)
        .healthy_threshold_count(lb.healthy_threshold as i32)
        .unhealthy_threshold_count(lb.unhealthy_threshold as i32)
        .matcher(Matcher::builder().http_code(&lb.health_check_matcher).build())
        .set_tags(Some(ctx.sdk_tags(name)))
        .send()
        .await
        .ctx("create target group", name)?;
    let tg = returned(out.target_groups().first().cloned(), name, "create returned no target group")?;
    // AWS's default delay until the update sets ours.
    Ok(TgLive { tg, deregistration_delay: Some("300".into()), role: Some(ctx.key().to_string()), kept: false })
}

/// Delete a target group: ResourceInUse while a listener or rule still forwards to it.
pub(crate) async fn delete_target_group(ctx: &Scope<'_>, line: &Line, arn: &str) -> Result<(), StackError> {
    wait::retry_codes(line, arn, budget::PROPAGATION, &["ResourceInUse"], || async {
        ignore_not_found(
            ctx.aws
                .elb
                .delete_target_group()
                .target_group_arn(arn)
                .send()
                .await
                .ctx("delete target group", arn)
                .map(drop),
        )
    })
    .await
}

/// (healthy targets, registered targets) of the target group.
pub async fn target_health(ctx: &Scope<'_>, arn: &str) -> Result<(u32, u32), StackError> {
    let out = ctx
        .aws
        .elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .ctx("describe the target health of", arn)?;
    let all = out.target_health_descriptions();
    let healthy = all
        .iter()
        .filter(|d| d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy))
        .count();
    Ok((healthy as u32, all.len() as u32))
}

// ---------------------------------------------------------------- load balancer

pub struct LoadBalancer;

/// What the load balancer can differ in: the attributes fargate-stack sets.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadBalancerField {
    Attribute(&'static str),
}

impl Field for LoadBalancerField {
    /// The config's key for an attribute the config sets alone; AWS's name for the others.
    fn label(&self) -> String {
        let LoadBalancerField::Attribute(key) = self;
        match *key {
            IDLE_TIMEOUT => "load_balancer.idle_timeout_seconds",
            DELETION_PROTECTION => "load_balancer.deletion_protection",
            other => other,
        }
        .to_string()
    }
}

pub struct LbLive {
    lb: Lb,
    attributes: Vec<(String, String)>,
}

async fn describe_lb(ctx: &Scope<'_>, arn: Option<&str>, name: &str) -> Result<Option<Lb>, StackError> {
    let call = ctx.aws.elb.describe_load_balancers();
    let call = match arn {
        Some(arn) => call.load_balancer_arns(arn),
        None => call.names(name),
    };
    Ok(found(call.send().await.ctx("describe load balancer", name))?.and_then(|o| o.load_balancers().first().cloned()))
}

async fn lb_attributes(ctx: &Scope<'_>, arn: &str) -> Result<Vec<(String, String)>, StackError> {
    let out = ctx
        .aws
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .ctx("describe the attributes of", arn)?;
    Ok(out
        .attributes()
        .iter()
        .map(|a| (a.key().unwrap_or_default().to_string(), a.value().unwrap_or_default().to_string()))
        .collect())
}

fn lb_state(lb: &Lb) -> Option<&LoadBalancerStateEnum> {
    lb.state().and_then(|s| s.code())
}

#[async_trait]
impl Managed for LoadBalancer {
    type Live = LbLive;
    type Field = LoadBalancerField;

    async fn tags(&self, ctx: &Scope<'_>, live: &LbLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        elb_tags(ctx, live.lb.load_balancer_arn().unwrap_or_default()).await
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &LbLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        elb_retag(ctx, live.lb.load_balancer_arn().unwrap_or_default(), put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_load_balancers)
    }

    fn permissions(&self) -> Vec<Permission> {
        let lb = load_balancer_arn();
        vec![
            Permission::find("elasticloadbalancing:DescribeLoadBalancers"),
            Permission::find("elasticloadbalancing:DescribeTags"),
            Permission::find("elasticloadbalancing:DescribeLoadBalancerAttributes"),
            Permission::create("elasticloadbalancing:CreateLoadBalancer").on(lb.clone()).tagging(),
            access::tags_on_create("elasticloadbalancing:AddTags", "CreateLoadBalancer", lb.clone()),
            access::retagging("elasticloadbalancing:AddTags", lb.clone()),
            access::retagging("elasticloadbalancing:RemoveTags", lb.clone()),
            // ELB makes its service-linked role on an account's first load balancer.
            Permission::create("iam:CreateServiceLinkedRole")
                .on(global_arn("iam", true, "role/aws-service-role/elasticloadbalancing.amazonaws.com/*"))
                .when(Condition::ServiceLinked("elasticloadbalancing.amazonaws.com"))
                .implied(),
            Permission::update("elasticloadbalancing:ModifyLoadBalancerAttributes").on(lb.clone()).tagged(),
            // `down` lifts the deletion protection of the stack's own load balancer first.
            Permission::delete("elasticloadbalancing:ModifyLoadBalancerAttributes").on(lb.clone()).tagged(),
            Permission::delete("elasticloadbalancing:DeleteLoadBalancer").on(lb).tagged(),
            Permission::delete("elasticloadbalancing:DescribeLoadBalancers"),
            // Its network interfaces, released before its subnets, group and gateway go.
            Permission::delete("ec2:DescribeNetworkInterfaces"),
        ]
    }

    /// By the hour and by capacity units; and, as every public IPv4 address bills by the hour, one
    /// per AZ it spans.
    fn billing(&self, config: &Config) -> Vec<Charge> {
        let azs = config.network.az_count as f64;
        vec![
            Charge::running(items::ALB_HOUR, Unit::Hour, Quantity::fixed(1.0), "application load balancer"),
            Charge::usage(items::ALB_LCU, Unit::LcuHour, "load balancer capacity units"),
            Charge::running(
                items::PUBLIC_IPV4_HOUR,
                Unit::Hour,
                Quantity::fixed(azs),
                "public IPv4 addresses of the load balancer (one per AZ)",
            ),
        ]
    }

    fn key(&self) -> Key {
        LOAD_BALANCER
    }

    fn needs(&self) -> Vec<Dep> {
        // An internet-facing load balancer needs an attached internet gateway; access logs need
        // their bucket, whose policy AWS checks when they are turned on.
        vec![
            ALB_SECURITY_GROUP.into(),
            INTERNET_GATEWAY.into(),
            PUBLIC_SUBNET.into(),
            Dep::IfPresent(ACCESS_LOG_BUCKET),
        ]
    }

    /// A bucket of the user's must let ELB write before anything is made.
    async fn preflight(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        check_given_bucket(ctx).await
    }

    fn reads(&self) -> Vec<Dep> {
        vec![VPC.into()]
    }

    fn lifecycle(&self) -> crate::model::Lifecycle {
        // Its listeners are found on it.
        crate::model::Lifecycle { found_first: true, ..Default::default() }
    }

    /// Its network interfaces and public addresses hold the subnets, its group and the gateway.
    fn gone_before(&self) -> Vec<Edge> {
        vec![
            before(
                INTERNET_GATEWAY,
                "DetachInternetGateway fails while an internet-facing load balancer's public addresses are mapped",
            ),
            before(
                PUBLIC_SUBNET,
                "the load balancer's network interfaces sit in it until they are released, minutes after the load balancer",
            ),
            before(ALB_SECURITY_GROUP, "the load balancer's network interfaces use it until they are released"),
            before(
                Dep::IfPresent(ACCESS_LOG_BUCKET),
                "the load balancer writes its access logs into the bucket until it is deleted",
            ),
        ]
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<LbLive>, StackError> {
        let name = ctx.attr(LOAD_BALANCER_NAME).unwrap_or_else(|| load_balancer_name(ctx.stack()));
        let name = name.as_str();
        let found = find_elb(
            ctx,
            LOAD_BALANCER,
            ctx.id(LOAD_BALANCER),
            name,
            |arn: Option<String>| async move { describe_lb(ctx, arn.as_deref(), name).await },
            |lb: &Lb| (lb.load_balancer_arn().unwrap_or_default().to_string(), lb.vpc_id().map(str::to_string)),
            |arn| async move { lb_attributes(ctx, &arn).await },
        )
        .await?;
        Ok(found.map(|(lb, attributes)| LbLive { lb, attributes }))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &LbLive) -> Record {
        Record::id(live.lb.load_balancer_arn().unwrap_or_default())
            .with(LOAD_BALANCER_NAME, live.lb.load_balancer_name().unwrap_or_default())
            .with(DNS_NAME, live.lb.dns_name().unwrap_or_default())
            .with(CANONICAL_ZONE, live.lb.canonical_hosted_zone_id().unwrap_or_default())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &LbLive) -> Result<Vec<Changed<LoadBalancerField>>, StackError> {
        let mut diff = Diff::new();
        for (key, want) in lb_attributes_wanted(ctx.config, ctx.id(ACCESS_LOG_BUCKET)) {
            // AWS reports an unset access-log switch as absent, which is off.
            let unset = if key == ACCESS_LOGS { "false" } else { "unset" };
            let have = live.attributes.iter().find(|(k, _)| k == key).map_or(unset, |(_, v)| v.as_str());
            diff.field(LoadBalancerField::Attribute(key), have, &want);
        }
        Ok(diff.into_changes())
    }

    fn pending(&self, _ctx: &Scope<'_>, live: &LbLive) -> Option<String> {
        match lb_state(&live.lb) {
            Some(LoadBalancerStateEnum::Active) | None => None,
            Some(state) => Some(state.as_str().to_string()),
        }
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<LbLive, StackError> {
        let name = load_balancer_name(ctx.stack());
        let subnets =
            (0..ctx.config.network.az_count).map(|i| ctx.need(PUBLIC_SUBNET.at(i))).collect::<Result<Vec<_>, _>>()?;
        let group = ctx.need(ALB_SECURITY_GROUP)?;
        let out = ctx
            .aws
            .elb
            .create_load_balancer()
            .name(&name)
            .set_subnets(Some(subnets))
            .security_groups(group)
            .scheme(LoadBalancerSchemeEnum::InternetFacing)
            .r#type(LoadBalancerTypeEnum::Application)
            .ip_address_type(IpAddressType::Ipv4)
            .set_tags(Some(ctx.sdk_tags(&name)))
            .send()
            .await
            .ctx("create load balancer", &name)?;
        let lb = returned(out.load_balancers().first().cloned(), name, "create returned no load balancer")?;
        Ok(LbLive { lb, attributes: vec![] })
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &LbLive,
        changes: &[Changed<LoadBalancerField>],
    ) -> Result<Option<LbLive>, StackError> {
        let arn = live.lb.load_balancer_arn().unwrap_or_default();
        let wanted = lb_attributes_wanted(ctx.config, ctx.id(ACCESS_LOG_BUCKET));
        let attributes = changes
            .iter()
            .filter_map(|c| wanted.iter().find(|(k, _)| c.field == LoadBalancerField::Attribute(k)))
            .map(|(k, v)| LoadBalancerAttribute::builder().key(*k).value(v).build())
            .collect();
        ctx.aws
            .elb
            .modify_load_balancer_attributes()
            .load_balancer_arn(arn)
            .set_attributes(Some(attributes))
            .send()
            .await
            .ctx("set the attributes of", arn)?;
        Ok(None)
    }

    /// Delete it and wait until it is gone and its network interfaces are released: the public
    /// subnets, the ALB group and the internet gateway wait for that.
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: LbLive) -> Result<Outcome, StackError> {
        let arn = live.lb.load_balancer_arn().unwrap_or_default();
        let name = live.lb.load_balancer_name().unwrap_or_default();
        // Ours (`find` checked its tags): AWS refuses to delete it while protected, so `down` lifts
        // the protection first, and says so.
        if live.attributes.iter().any(|(k, v)| k == DELETION_PROTECTION && v == "true") {
            line.start("turning deletion protection off");
            let off = LoadBalancerAttribute::builder().key(DELETION_PROTECTION).value("false").build();
            let lifted =
                ctx.aws.elb.modify_load_balancer_attributes().load_balancer_arn(arn).attributes(off).send().await;
            ignore_not_found(lifted.ctx("turn off the deletion protection of", name).map(drop))?;
            ctx.note(format!("load balancer {name}: deletion protection turned off to delete it"));
        }
        ignore_not_found(
            ctx.aws
                .elb
                .delete_load_balancer()
                .load_balancer_arn(arn)
                .send()
                .await
                .ctx("delete load balancer", name)
                .map(drop),
        )?;
        wait::until(line, name, "be deleted", budget::ALB_DELETED, || async {
            Ok(match describe_lb(ctx, Some(arn), name).await? {
                None => Poll::Ready(()),
                Some(lb) => {
                    Poll::Pending(lb_state(&lb).map(|s| s.as_str().to_string()).unwrap_or_else(|| "deleting".into()))
                }
            })
        })
        .await?;
        ctx.forget().await?;
        let description = format!("ELB {}", arn.split_once(":loadbalancer/").map(|(_, s)| s).unwrap_or(name));
        wait_enis_released(ctx, line, name, vec![filter("description", &description)]).await;
        Ok(Outcome::Deleted)
    }
}

/// Wait until the load balancer is active (2-3 minutes on AWS). The listener and the service may
/// be created meanwhile; only the health checks need it.
pub struct ActiveWait;

#[async_trait]
impl Wait for ActiveWait {
    fn permissions(&self) -> Vec<Permission> {
        vec![Permission::create("elasticloadbalancing:DescribeLoadBalancers")]
    }
    fn key(&self) -> Key {
        LOAD_BALANCER_ACTIVE
    }

    fn needs(&self) -> Vec<Dep> {
        vec![LOAD_BALANCER.into()]
    }

    async fn wait(&self, ctx: &Scope<'_>, line: &Line) -> Result<(), StackError> {
        let arn = ctx.need(LOAD_BALANCER)?;
        let name = load_balancer_name(ctx.stack());
        wait::until(line, &name, "become active", budget::ALB_ACTIVE, || async {
            let lb = describe_lb(ctx, Some(&arn), &name).await?;
            match lb.as_ref().map(lb_state) {
                Some(Some(LoadBalancerStateEnum::Active)) => Ok(Poll::Ready(())),
                Some(Some(LoadBalancerStateEnum::Failed)) => Err(StackError::Failed {
                    resource: name.clone(),
                    message: format!(
                        "failed: {}",
                        lb.as_ref().and_then(|l| l.state()).and_then(|s| s.reason()).unwrap_or("no reason given")
                    ),
                }),
                Some(Some(state)) => Ok(Poll::Pending(state.as_str().to_string())),
                Some(None) => Ok(Poll::Pending("provisioning".into())),
                None => Err(StackError::Failed { resource: name.clone(), message: "disappeared".into() }),
            }
        })
        .await
    }
}

// ---------------------------------------------------------------- listener

/// The HTTP listener on `load_balancer.listener_port`: it forwards to the target group, or, with
/// `https.redirect_http`, answers 301 to the same URL on HTTPS.
pub struct Listener;

/// The stack's listener on `port`: the recorded one (whose port the config may have changed),
/// else the one on the port.
pub(crate) async fn find_listener(
    ctx: &Scope<'_>,
    key: Key,
    lb_arn: &str,
    port: u32,
) -> Result<Option<ListenerObject>, StackError> {
    let out = found(
        ctx.aws
            .elb
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .send()
            .await
            .ctx("describe the listeners of", lb_arn),
    )?;
    let Some(out) = out else { return Ok(None) };
    let recorded = ctx.id(key);
    let listener = out
        .listeners()
        .iter()
        .find(|l| recorded.is_some() && l.listener_arn() == recorded.as_deref())
        .or_else(|| out.listeners().iter().find(|l| l.port() == Some(port as i32)));
    Ok(listener.cloned())
}

pub(crate) fn forward_to(tg_arn: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(tg_arn).build()
}

/// 404 for what no rule takes: the traffic listener's default action while the production rule
/// routes (a default forward to one target group would be wrong once ECS switched to the other).
pub(crate) fn not_found() -> Action {
    let config = FixedResponseActionConfig::builder().status_code("404").content_type("text/plain").build();
    Action::builder().r#type(ActionTypeEnum::FixedResponse).fixed_response_config(config).build()
}

/// The default action of a listener that serves the stack: forward to the target group, or 404
/// while the production rule routes ([`rule_routes`]).
pub(crate) fn serving_action(ctx: &Scope<'_>, tg_arn: &str) -> Action {
    if rule_routes(ctx) {
        not_found()
    } else {
        forward_to(tg_arn)
    }
}

/// 301 to the same host, path and query on HTTPS.
fn redirect_to_https() -> Action {
    let config = RedirectActionConfig::builder()
        .protocol("HTTPS")
        .port(HTTPS_PORT.to_string())
        .host("#{host}")
        .path("/#{path}")
        .query("#{query}")
        .status_code(RedirectActionStatusCodeEnum::Http301)
        .build();
    Action::builder().r#type(ActionTypeEnum::Redirect).redirect_config(config).build()
}

/// A default action as the plan shows it.
pub(crate) fn show_action(action: Option<&Action>) -> String {
    let Some(action) = action else { return "none".into() };
    match action.r#type() {
        Some(ActionTypeEnum::Forward) => format!("forward to {}", action.target_group_arn().unwrap_or("nothing")),
        Some(ActionTypeEnum::Redirect) => match action.redirect_config() {
            Some(r) => format!(
                "redirect {} to {}://{}:{}{}?{}",
                r.status_code().map_or("HTTP_302", |c| c.as_str()),
                r.protocol().unwrap_or("#{protocol}"),
                r.host().unwrap_or("#{host}"),
                r.port().unwrap_or("#{port}"),
                r.path().unwrap_or("/#{path}"),
                r.query().unwrap_or("#{query}")
            ),
            None => "redirect".into(),
        },
        Some(ActionTypeEnum::FixedResponse) => {
            format!("fixed-response {}", action.fixed_response_config().and_then(|f| f.status_code()).unwrap_or("none"))
        }
        Some(other) => other.as_str().to_string(),
        None => "unknown".into(),
    }
}

pub(crate) fn default_action(listener: &ListenerObject) -> Option<&Action> {
    listener.default_actions().iter().min_by_key(|a| a.order().unwrap_or(0))
}

/// What the HTTP listener should do.
fn http_action(ctx: &Scope<'_>, tg_arn: &str) -> Action {
    if ctx.config.https.as_ref().is_some_and(|h| h.redirect_http) {
        redirect_to_https()
    } else {
        serving_action(ctx, tg_arn)
    }
}

/// What the HTTP listener can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenerField {
    Port,
    DefaultAction,
}

impl Field for ListenerField {
    fn label(&self) -> String {
        match self {
            ListenerField::Port => "load_balancer.listener_port",
            ListenerField::DefaultAction => "default action",
        }
        .into()
    }
}

#[async_trait]
impl Managed for Listener {
    type Live = ListenerObject;
    type Field = ListenerField;

    async fn tags(&self, ctx: &Scope<'_>, live: &ListenerObject) -> Result<Option<Vec<(String, String)>>, StackError> {
        elb_tags(ctx, live.listener_arn().unwrap_or_default()).await
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &ListenerObject,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        elb_retag(ctx, live.listener_arn().unwrap_or_default(), put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_listeners)
    }

    fn permissions(&self) -> Vec<Permission> {
        listener_permissions()
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        LISTENER
    }

    /// With a redirect, the HTTPS listener it redirects to comes first (it says so itself).
    fn needs(&self) -> Vec<Dep> {
        vec![LOAD_BALANCER.into(), TARGET_GROUP.into()]
    }

    /// With a strategy that shifts traffic, the production rule routes instead of its default action.
    fn reads(&self) -> Vec<Dep> {
        vec![Dep::IfPresent(PRODUCTION_RULE)]
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<ListenerObject>, StackError> {
        let Some(lb) = ctx.id(LOAD_BALANCER) else { return Ok(None) };
        let port = ctx.config.load_balancer.listener_port;
        let Some(listener) = find_listener(ctx, LISTENER, &lb, port).await? else { return Ok(None) };
        let arn = listener.listener_arn().unwrap_or_default();
        check_tags(ctx, LISTENER, arn, arn).await?;
        Ok(Some(listener))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &ListenerObject) -> Record {
        Record::id(live.listener_arn().unwrap_or_default())
            .with(LISTENER_PORT, live.port().unwrap_or_default().to_string())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &ListenerObject) -> Result<Vec<Changed<ListenerField>>, StackError> {
        let tg = ctx.need(TARGET_GROUP)?;
        let mut diff = Diff::new();
        diff.field(
            ListenerField::Port,
            &live.port().unwrap_or_default().to_string(),
            &ctx.config.load_balancer.listener_port.to_string(),
        )
        .field(
            ListenerField::DefaultAction,
            &show_action(default_action(live)),
            &show_action(Some(&http_action(ctx, &tg))),
        );
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<ListenerObject, StackError> {
        let lb = ctx.need(LOAD_BALANCER)?;
        let tg = ctx.need(TARGET_GROUP)?;
        let port = ctx.config.load_balancer.listener_port as i32;
        let out = ctx
            .aws
            .elb
            .create_listener()
            .load_balancer_arn(&lb)
            .protocol(ProtocolEnum::Http)
            .port(port)
            .default_actions(http_action(ctx, &tg))
            .set_tags(Some(ctx.sdk_tags(&ctx.name(&format!("listener-{port}")))))
            .send()
            .await
            .ctx("create listener on", &load_balancer_name(ctx.stack()))?;
        returned(out.listeners().first().cloned(), "listener", "create returned nothing")
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &ListenerObject,
        _changes: &[Changed<ListenerField>],
    ) -> Result<Option<ListenerObject>, StackError> {
        let arn = live.listener_arn().unwrap_or_default();
        let tg = ctx.need(TARGET_GROUP)?;
        let out = ctx
            .aws
            .elb
            .modify_listener()
            .listener_arn(arn)
            .port(ctx.config.load_balancer.listener_port as i32)
            .default_actions(http_action(ctx, &tg))
            .send()
            .await
            .ctx("update listener", arn)?;
        Ok(out.listeners().first().cloned())
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: ListenerObject) -> Result<Outcome, StackError> {
        delete_listener(ctx, &live).await
    }
}

pub(crate) async fn delete_listener(ctx: &Scope<'_>, live: &ListenerObject) -> Result<Outcome, StackError> {
    let arn = live.listener_arn().unwrap_or_default();
    ignore_not_found(
        ctx.aws.elb.delete_listener().listener_arn(arn).send().await.ctx("delete listener", arn).map(drop),
    )?;
    Ok(Outcome::Deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_target_group_is_named_for_its_stack_and_never_for_another() {
        assert_eq!(stack_of_target_group("app-tg").as_deref(), Some("app"));
        assert_eq!(stack_of_target_group("app-tg2").as_deref(), Some("app"));
        // A stack whose name extends another's keeps its own target groups.
        assert_eq!(stack_of_target_group("app-tg2-tg").as_deref(), Some("app-tg2"));
        assert_eq!(stack_of_target_group("app-alb"), None);
        // The longest stack name (20) leaves both names within ELB's 32 characters.
        assert!(replacement_target_group_name(&"a".repeat(20)).len() <= 32);
    }
}
