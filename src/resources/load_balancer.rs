//! The internet-facing application load balancer, its target group (type ip, for awsvpc tasks)
//! and the HTTP listener.

use std::future::Future;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, IpAddressType, Listener as ListenerObject, LoadBalancer as Lb, LoadBalancerAttribute,
    LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum, TargetGroup as Tg,
    TargetGroupAttribute, TargetHealthStateEnum, TargetTypeEnum,
};

use crate::context::Ctx;
use crate::error::{found, ignore_not_found, AwsContext, StackError};
use crate::model::{after, Change, Diff, Edge, Key, Managed, Outcome, Record, Wait};
use crate::progress::Line;
use crate::resources::ec2::{filter, wait_enis_released};
use crate::wait::{self, budget, Poll};

/// Load balancer attributes we set: drop malformed headers (request smuggling), and nothing else.
const LB_ATTRIBUTES: &[(&str, &str)] = &[("routing.http.drop_invalid_header_fields.enabled", "true")];
const HEALTHY_HTTP_CODES: &str = "200-399";
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

pub fn load_balancer_name(ctx: &Ctx) -> String {
    ctx.name("alb")
}

pub fn target_group_name(ctx: &Ctx) -> String {
    ctx.name("tg")
}

/// Check the tags of an ELB resource (one DescribeTags call), on our side.
async fn check_tags(ctx: &Ctx, key: Key, arn: &str, what: &str) -> Result<(), StackError> {
    let out = ctx.aws.elb.describe_tags().resource_arns(arn).send().await.ctx("describe the tags of", what)?;
    let description = out.tag_descriptions().iter().find(|d| d.resource_arn() == Some(arn));
    let tags = description.map(|d| d.tags()).unwrap_or_default();
    ctx.owns(key, tags.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
        .map_err(|why| ctx.not_ours(format!("{} {what}", key.kind()), why))
}

/// In this stack's VPC?
fn check_vpc(ctx: &Ctx, key: Key, vpc: Option<&str>, what: &str) -> Result<(), StackError> {
    match (ctx.id(Key::Vpc), vpc) {
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
    ctx: &Ctx,
    key: Key,
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
    let recorded = ctx.id(key);
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

pub struct TgLive {
    tg: Tg,
    deregistration_delay: Option<String>,
}

async fn describe_tg(ctx: &Ctx, arn: Option<&str>, name: &str) -> Result<Option<Tg>, StackError> {
    let call = ctx.aws.elb.describe_target_groups();
    let call = match arn {
        Some(arn) => call.target_group_arns(arn),
        None => call.names(name),
    };
    Ok(found(call.send().await.ctx("describe target group", name))?.and_then(|o| o.target_groups().first().cloned()))
}

async fn deregistration_delay(ctx: &Ctx, arn: &str) -> Result<Option<String>, StackError> {
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

    fn key(&self) -> Key {
        Key::TargetGroup
    }

    fn needs(&self) -> Vec<Key> {
        vec![Key::Vpc]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![
            after(Key::Listener, "DeleteTargetGroup fails with ResourceInUse while a listener forwards to it"),
            after(Key::Service, "the service's targets drain from it until the tasks stop"),
        ]
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<TgLive>, StackError> {
        let name = ctx.attr(Key::TargetGroup, "name").unwrap_or_else(|| target_group_name(ctx));
        let name = name.as_str();
        let found = find_elb(
            ctx,
            Key::TargetGroup,
            name,
            |arn: Option<String>| async move { describe_tg(ctx, arn.as_deref(), name).await },
            |tg: &Tg| (tg.target_group_arn().unwrap_or_default().to_string(), tg.vpc_id().map(str::to_string)),
            |arn| async move { deregistration_delay(ctx, &arn).await },
        )
        .await?;
        Ok(found.map(|(tg, deregistration_delay)| TgLive { tg, deregistration_delay }))
    }

    fn record(&self, _ctx: &Ctx, live: &TgLive) -> Record {
        Record::id(live.tg.target_group_arn().unwrap_or_default())
            .with("name", live.tg.target_group_name().unwrap_or_default())
            .with("port", live.tg.port().unwrap_or_default().to_string())
    }

    fn diff(&self, ctx: &Ctx, live: &TgLive) -> Result<Vec<Change>, StackError> {
        let (tg, lb) = (&live.tg, &ctx.config.load_balancer);
        let n = |v: Option<i32>| v.map_or("none".into(), |v| v.to_string());
        let mut diff = Diff::new();
        diff.replace("service.container_port", &n(tg.port()), &ctx.config.service.container_port.to_string())
            .replace("target type", tg.target_type().map_or("none", |t| t.as_str()), "ip")
            .field(
                "service.health_check_path",
                tg.health_check_path().unwrap_or("none"),
                ctx.config.service.health_check_path.as_str(),
            )
            .field(
                "load_balancer.health_check_interval_seconds",
                &n(tg.health_check_interval_seconds()),
                &lb.health_check_interval_seconds.to_string(),
            )
            .field(
                "load_balancer.health_check_timeout_seconds",
                &n(tg.health_check_timeout_seconds()),
                &lb.health_check_timeout_seconds.to_string(),
            )
            .field(
                "load_balancer.healthy_threshold",
                &n(tg.healthy_threshold_count()),
                &lb.healthy_threshold.to_string(),
            )
            .field(
                "load_balancer.unhealthy_threshold",
                &n(tg.unhealthy_threshold_count()),
                &lb.unhealthy_threshold.to_string(),
            )
            .field(
                "load_balancer.deregistration_delay_seconds",
                live.deregistration_delay.as_deref().unwrap_or("none"),
                lb.deregistration_delay_seconds.to_string().as_str(),
            );
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<TgLive, StackError> {
        let name = target_group_name(ctx);
        let vpc = ctx.need(Key::Vpc, Key::TargetGroup)?;
        let lb = &ctx.config.load_balancer;
        let out = ctx
            .aws
            .elb
            .create_target_group()
            .name(&name)
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
            .matcher(Matcher::builder().http_code(HEALTHY_HTTP_CODES).build())
            .set_tags(Some(ctx.sdk_tags(Key::TargetGroup, &name)))
            .send()
            .await
            .ctx("create target group", &name)?;
        let tg = out.target_groups().first().cloned();
        let tg =
            tg.ok_or_else(|| StackError::Failed { resource: name, message: "create returned no target group".into() })?;
        // AWS's default delay until the update sets ours.
        Ok(TgLive { tg, deregistration_delay: Some("300".into()) })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _line: &Line,
        live: &TgLive,
        changes: &[Change],
    ) -> Result<Option<TgLive>, StackError> {
        let arn = live.tg.target_group_arn().unwrap_or_default();
        let lb = &ctx.config.load_balancer;
        if changes.iter().any(|c| c.field != "load_balancer.deregistration_delay_seconds") {
            ctx.aws
                .elb
                .modify_target_group()
                .target_group_arn(arn)
                .health_check_path(&ctx.config.service.health_check_path)
                .health_check_interval_seconds(lb.health_check_interval_seconds as i32)
                .health_check_timeout_seconds(lb.health_check_timeout_seconds as i32)
                .healthy_threshold_count(lb.healthy_threshold as i32)
                .unhealthy_threshold_count(lb.unhealthy_threshold as i32)
                .send()
                .await
                .ctx("update the health check of", arn)?;
        }
        if changes.iter().any(|c| c.field == "load_balancer.deregistration_delay_seconds") {
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
        Ok(None)
    }

    async fn destroy(&self, ctx: &Ctx, line: &Line, live: TgLive) -> Result<Outcome, StackError> {
        let arn = live.tg.target_group_arn().unwrap_or_default();
        // ResourceInUse until the listener (and the load balancer) is gone.
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
        .await?;
        Ok(Outcome::Deleted)
    }
}

/// (healthy targets, registered targets) of the target group.
pub async fn target_health(ctx: &Ctx, arn: &str) -> Result<(u32, u32), StackError> {
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

pub struct LoadBalancer {
    pub azs: u8,
}

pub struct LbLive {
    lb: Lb,
    attributes: Vec<(String, String)>,
}

async fn describe_lb(ctx: &Ctx, arn: Option<&str>, name: &str) -> Result<Option<Lb>, StackError> {
    let call = ctx.aws.elb.describe_load_balancers();
    let call = match arn {
        Some(arn) => call.load_balancer_arns(arn),
        None => call.names(name),
    };
    Ok(found(call.send().await.ctx("describe load balancer", name))?.and_then(|o| o.load_balancers().first().cloned()))
}

async fn lb_attributes(ctx: &Ctx, arn: &str) -> Result<Vec<(String, String)>, StackError> {
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

    fn key(&self) -> Key {
        Key::LoadBalancer
    }

    fn needs(&self) -> Vec<Key> {
        // An internet-facing load balancer needs an attached internet gateway.
        let mut needs = vec![Key::AlbSecurityGroup, Key::InternetGateway];
        needs.extend((0..self.azs).map(Key::PublicSubnet));
        needs
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<LbLive>, StackError> {
        let name = ctx.attr(Key::LoadBalancer, "name").unwrap_or_else(|| load_balancer_name(ctx));
        let name = name.as_str();
        let found = find_elb(
            ctx,
            Key::LoadBalancer,
            name,
            |arn: Option<String>| async move { describe_lb(ctx, arn.as_deref(), name).await },
            |lb: &Lb| (lb.load_balancer_arn().unwrap_or_default().to_string(), lb.vpc_id().map(str::to_string)),
            |arn| async move { lb_attributes(ctx, &arn).await },
        )
        .await?;
        Ok(found.map(|(lb, attributes)| LbLive { lb, attributes }))
    }

    fn record(&self, _ctx: &Ctx, live: &LbLive) -> Record {
        Record::id(live.lb.load_balancer_arn().unwrap_or_default())
            .with("name", live.lb.load_balancer_name().unwrap_or_default())
            .with("dns_name", live.lb.dns_name().unwrap_or_default())
    }

    fn diff(&self, _ctx: &Ctx, live: &LbLive) -> Result<Vec<Change>, StackError> {
        let mut diff = Diff::new();
        for (key, want) in LB_ATTRIBUTES {
            let have = live.attributes.iter().find(|(k, _)| k == key).map_or("unset", |(_, v)| v.as_str());
            diff.field(key, have, *want);
        }
        Ok(diff.into_changes())
    }

    fn pending(&self, _ctx: &Ctx, live: &LbLive) -> Option<String> {
        match lb_state(&live.lb) {
            Some(LoadBalancerStateEnum::Active) | None => None,
            Some(state) => Some(state.as_str().to_string()),
        }
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<LbLive, StackError> {
        let name = load_balancer_name(ctx);
        let subnets = (0..ctx.config.network.az_count)
            .map(|i| ctx.need(Key::PublicSubnet(i), Key::LoadBalancer))
            .collect::<Result<Vec<_>, _>>()?;
        let group = ctx.need(Key::AlbSecurityGroup, Key::LoadBalancer)?;
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
            .set_tags(Some(ctx.sdk_tags(Key::LoadBalancer, &name)))
            .send()
            .await
            .ctx("create load balancer", &name)?;
        let lb = out.load_balancers().first().cloned();
        let lb = lb
            .ok_or_else(|| StackError::Failed { resource: name, message: "create returned no load balancer".into() })?;
        Ok(LbLive { lb, attributes: vec![] })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _line: &Line,
        live: &LbLive,
        changes: &[Change],
    ) -> Result<Option<LbLive>, StackError> {
        let arn = live.lb.load_balancer_arn().unwrap_or_default();
        let attributes = changes
            .iter()
            .filter_map(|c| LB_ATTRIBUTES.iter().find(|(k, _)| *k == c.field))
            .map(|(k, v)| LoadBalancerAttribute::builder().key(*k).value(*v).build())
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
    async fn destroy(&self, ctx: &Ctx, line: &Line, live: LbLive) -> Result<Outcome, StackError> {
        let arn = live.lb.load_balancer_arn().unwrap_or_default();
        let name = live.lb.load_balancer_name().unwrap_or_default();
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
        ctx.forget(Key::LoadBalancer).await?;
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
    fn key(&self) -> Key {
        Key::LoadBalancerActive
    }

    fn needs(&self) -> Vec<Key> {
        vec![Key::LoadBalancer]
    }

    async fn wait(&self, ctx: &Ctx, line: &Line) -> Result<(), StackError> {
        let arn = ctx.need(Key::LoadBalancer, self.key())?;
        let name = load_balancer_name(ctx);
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

pub struct Listener;

/// The stack's listener: the one on the configured port, else the recorded one (whose port the
/// config changed).
async fn find_listener(ctx: &Ctx, lb_arn: &str) -> Result<Option<ListenerObject>, StackError> {
    let port = ctx.config.load_balancer.listener_port as i32;
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
    let recorded = ctx.id(Key::Listener);
    let listener = out
        .listeners()
        .iter()
        .find(|l| recorded.is_some() && l.listener_arn() == recorded.as_deref())
        .or_else(|| out.listeners().iter().find(|l| l.port() == Some(port)));
    Ok(listener.cloned())
}

fn forwards_to(listener: &ListenerObject) -> Option<&str> {
    listener
        .default_actions()
        .iter()
        .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
        .and_then(|a| a.target_group_arn())
}

fn forward_to(tg_arn: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(tg_arn).build()
}

#[async_trait]
impl Managed for Listener {
    type Live = ListenerObject;

    fn key(&self) -> Key {
        Key::Listener
    }

    fn needs(&self) -> Vec<Key> {
        vec![Key::LoadBalancer, Key::TargetGroup]
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<ListenerObject>, StackError> {
        let Some(lb) = ctx.id(Key::LoadBalancer) else { return Ok(None) };
        let Some(listener) = find_listener(ctx, &lb).await? else { return Ok(None) };
        let arn = listener.listener_arn().unwrap_or_default();
        check_tags(ctx, Key::Listener, arn, arn).await?;
        Ok(Some(listener))
    }

    fn record(&self, _ctx: &Ctx, live: &ListenerObject) -> Record {
        Record::id(live.listener_arn().unwrap_or_default()).with("port", live.port().unwrap_or_default().to_string())
    }

    fn diff(&self, ctx: &Ctx, live: &ListenerObject) -> Result<Vec<Change>, StackError> {
        let tg = ctx.need(Key::TargetGroup, Key::Listener)?;
        let mut diff = Diff::new();
        diff.field(
            "load_balancer.listener_port",
            &live.port().unwrap_or_default().to_string(),
            &ctx.config.load_balancer.listener_port.to_string(),
        )
        .field("forwards to", forwards_to(live).unwrap_or("nothing"), tg.as_str());
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<ListenerObject, StackError> {
        let lb = ctx.need(Key::LoadBalancer, Key::Listener)?;
        let tg = ctx.need(Key::TargetGroup, Key::Listener)?;
        let port = ctx.config.load_balancer.listener_port as i32;
        let out = ctx
            .aws
            .elb
            .create_listener()
            .load_balancer_arn(&lb)
            .protocol(ProtocolEnum::Http)
            .port(port)
            .default_actions(forward_to(&tg))
            .set_tags(Some(ctx.sdk_tags(Key::Listener, &ctx.name(&format!("listener-{port}")))))
            .send()
            .await
            .ctx("create listener on", &load_balancer_name(ctx))?;
        out.listeners().first().cloned().ok_or_else(|| StackError::Failed {
            resource: "listener".into(),
            message: "create returned nothing".into(),
        })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _line: &Line,
        live: &ListenerObject,
        _changes: &[Change],
    ) -> Result<Option<ListenerObject>, StackError> {
        let arn = live.listener_arn().unwrap_or_default();
        let tg = ctx.need(Key::TargetGroup, Key::Listener)?;
        let out = ctx
            .aws
            .elb
            .modify_listener()
            .listener_arn(arn)
            .port(ctx.config.load_balancer.listener_port as i32)
            .default_actions(forward_to(&tg))
            .send()
            .await
            .ctx("update listener", arn)?;
        Ok(out.listeners().first().cloned())
    }

    async fn destroy(&self, ctx: &Ctx, _line: &Line, live: ListenerObject) -> Result<Outcome, StackError> {
        let arn = live.listener_arn().unwrap_or_default();
        ignore_not_found(
            ctx.aws.elb.delete_listener().listener_arn(arn).send().await.ctx("delete listener", arn).map(drop),
        )?;
        Ok(Outcome::Deleted)
    }
}
