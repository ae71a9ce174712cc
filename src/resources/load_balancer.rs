//! The internet-facing application load balancer, its target group (type ip, for awsvpc tasks)
//! and the HTTP listener.

use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, IpAddressType, LoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerStateEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum, Tag, TargetGroup, TargetGroupAttribute,
    TargetHealthStateEnum, TargetTypeEnum,
};

use crate::context::{keys, Ctx, Outcome};
use crate::error::{ignore_not_found, AwsContext, StackError};
use crate::progress::Line;
use crate::resources::Inspection;
use crate::wait::{self, budget, Poll};

/// Load balancer attributes we set: drop malformed headers (request smuggling), and nothing else.
const LB_ATTRIBUTES: &[(&str, &str)] = &[("routing.http.drop_invalid_header_fields.enabled", "true")];
const HEALTHY_HTTP_CODES: &str = "200-399";

pub fn load_balancer_name(ctx: &Ctx) -> String {
    ctx.name("alb")
}

pub fn target_group_name(ctx: &Ctx) -> String {
    ctx.name("tg")
}

fn tags(ctx: &Ctx, key: &str, name: &str) -> Vec<Tag> {
    ctx.tags(key, name).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

async fn describe_lb(ctx: &Ctx, name: &str) -> Result<Option<LoadBalancer>, StackError> {
    match ctx.aws.elb.describe_load_balancers().names(name).send().await.ctx("describe load balancer", name) {
        Ok(out) => Ok(out.load_balancers().first().cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn describe_lb_arn(ctx: &Ctx, arn: &str) -> Result<Option<LoadBalancer>, StackError> {
    match ctx.aws.elb.describe_load_balancers().load_balancer_arns(arn).send().await.ctx("describe load balancer", arn)
    {
        Ok(out) => Ok(out.load_balancers().first().cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn lb_state(lb: &LoadBalancer) -> Option<&LoadBalancerStateEnum> {
    lb.state().and_then(|s| s.code())
}

pub async fn ensure_load_balancer(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::LOAD_BALANCER;
    let name = load_balancer_name(ctx);
    let (lb, mut outcome) = match describe_lb(ctx, &name).await? {
        Some(lb) => (lb, Outcome::Unchanged),
        None => {
            let subnets = (0..ctx.config.network.az_count as usize)
                .map(|i| ctx.need(&keys::public_subnet(i), key))
                .collect::<Result<Vec<_>, _>>()?;
            let group = ctx.need(keys::ALB_SG, key)?;
            line.start("creating");
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
                .set_tags(Some(tags(ctx, key, &name)))
                .send()
                .await
                .ctx("create load balancer", &name)?;
            let lb = out.load_balancers().first().cloned();
            (
                lb.ok_or_else(|| StackError::Failed {
                    resource: name.clone(),
                    message: "create returned no load balancer".into(),
                })?,
                Outcome::Created,
            )
        }
    };
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    ctx.record(
        key,
        "elbv2:load-balancer",
        &arn,
        &[("name", name.clone()), ("dns_name", lb.dns_name().unwrap_or_default().to_string())],
    )?;
    let missing = missing_lb_attributes(ctx, &arn).await?;
    if !missing.is_empty() {
        ctx.aws
            .elb
            .modify_load_balancer_attributes()
            .load_balancer_arn(&arn)
            .set_attributes(Some(missing))
            .send()
            .await
            .ctx("set the attributes of", &name)?;
        if outcome == Outcome::Unchanged {
            outcome = Outcome::Updated;
        }
    }
    Ok(outcome)
}

/// The attributes we set that the load balancer does not have (yet).
async fn missing_lb_attributes(ctx: &Ctx, arn: &str) -> Result<Vec<LoadBalancerAttribute>, StackError> {
    let current = ctx
        .aws
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .ctx("describe the attributes of", arn)?;
    Ok(LB_ATTRIBUTES
        .iter()
        .filter(|(k, v)| !current.attributes().iter().any(|a| a.key() == Some(*k) && a.value() == Some(*v)))
        .map(|(k, v)| LoadBalancerAttribute::builder().key(*k).value(*v).build())
        .collect())
}

/// Wait until the load balancer is active (2-3 minutes on AWS). The listener and the service may
/// be created meanwhile; only health checks need it.
pub async fn wait_load_balancer_active(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let arn = ctx.need(keys::LOAD_BALANCER, "load balancer wait")?;
    line.start("checking");
    wait::until(line, &load_balancer_name(ctx), "become active", budget::ALB_ACTIVE, || async {
        let lb = describe_lb_arn(ctx, &arn).await?;
        match lb.as_ref().and_then(lb_state) {
            Some(LoadBalancerStateEnum::Active) => Ok(Poll::Ready(())),
            Some(LoadBalancerStateEnum::Failed) => Err(StackError::Failed {
                resource: load_balancer_name(ctx),
                message: format!(
                    "failed: {}",
                    lb.as_ref().and_then(|l| l.state()).and_then(|s| s.reason()).unwrap_or("no reason given")
                ),
            }),
            Some(state) => Ok(Poll::Pending(state.as_str().to_string())),
            None if lb.is_none() => {
                Err(StackError::Failed { resource: load_balancer_name(ctx), message: "disappeared".into() })
            }
            None => Ok(Poll::Pending("provisioning".into())),
        }
    })
    .await?;
    Ok(Outcome::Waited)
}

pub async fn delete_load_balancer(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let name = ctx.attr(keys::LOAD_BALANCER, "name").unwrap_or_else(|| load_balancer_name(ctx));
    let lb = match ctx.id(keys::LOAD_BALANCER) {
        Some(arn) => describe_lb_arn(ctx, &arn).await?,
        None => describe_lb(ctx, &name).await?,
    };
    let Some(lb) = lb else {
        ctx.forget(keys::LOAD_BALANCER)?;
        return Ok(Outcome::Absent);
    };
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    line.start("deleting");
    ignore_not_found(
        ctx.aws
            .elb
            .delete_load_balancer()
            .load_balancer_arn(&arn)
            .send()
            .await
            .ctx("delete load balancer", &name)
            .map(drop),
    )?;
    wait::until(line, &name, "be deleted", budget::ALB_DELETED, || async {
        Ok(match describe_lb_arn(ctx, &arn).await? {
            None => Poll::Ready(()),
            Some(lb) => {
                Poll::Pending(lb_state(&lb).map(|s| s.as_str().to_string()).unwrap_or_else(|| "deleting".into()))
            }
        })
    })
    .await?;
    ctx.forget(keys::LOAD_BALANCER)?;
    // Its network interfaces are released asynchronously and block the security group, subnet
    // and VPC deletes. Wait for them here (best effort: those deletes retry anyway).
    let description = format!("ELB {}", arn.split_once(":loadbalancer/").map(|(_, s)| s).unwrap_or(&name));
    let waited = wait::until(line, &name, "release its network interfaces", budget::PROPAGATION, || async {
        let out = ctx
            .aws
            .ec2
            .describe_network_interfaces()
            .filters(Filter::builder().name("description").values(&description).build())
            .send()
            .await
            .ctx("describe the network interfaces of", &name)?;
        let left = out.network_interfaces().len();
        Ok(if left == 0 { Poll::Ready(()) } else { Poll::Pending(format!("{left} network interfaces left")) })
    })
    .await;
    if let Err(e) = waited {
        tracing::warn!("{e}; continuing, later deletes retry");
    }
    Ok(Outcome::Deleted)
}

async fn describe_tg(ctx: &Ctx, name: &str) -> Result<Option<TargetGroup>, StackError> {
    match ctx.aws.elb.describe_target_groups().names(name).send().await.ctx("describe target group", name) {
        Ok(out) => Ok(out.target_groups().first().cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Health check settings that differ from the config, as readable field names.
fn health_check_drift(ctx: &Ctx, tg: &TargetGroup) -> Vec<&'static str> {
    let lb = &ctx.config.load_balancer;
    let mut drift = vec![];
    if tg.health_check_path() != Some(ctx.config.service.health_check_path.as_str()) {
        drift.push("health_check_path");
    }
    if tg.health_check_interval_seconds() != Some(lb.health_check_interval_seconds as i32) {
        drift.push("health_check_interval_seconds");
    }
    if tg.health_check_timeout_seconds() != Some(lb.health_check_timeout_seconds as i32) {
        drift.push("health_check_timeout_seconds");
    }
    if tg.healthy_threshold_count() != Some(lb.healthy_threshold as i32) {
        drift.push("healthy_threshold");
    }
    if tg.unhealthy_threshold_count() != Some(lb.unhealthy_threshold as i32) {
        drift.push("unhealthy_threshold");
    }
    drift
}

pub async fn ensure_target_group(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::TARGET_GROUP;
    let name = target_group_name(ctx);
    let lb = &ctx.config.load_balancer;
    let port = ctx.config.service.container_port as i32;
    let (tg, mut outcome) = match describe_tg(ctx, &name).await? {
        Some(tg) => (tg, Outcome::Unchanged),
        None => {
            let vpc = ctx.need(keys::VPC, key)?;
            line.start("creating");
            let out = ctx
                .aws
                .elb
                .create_target_group()
                .name(&name)
                .protocol(ProtocolEnum::Http)
                .port(port)
                .vpc_id(&vpc)
                .target_type(TargetTypeEnum::Ip)
                .health_check_protocol(ProtocolEnum::Http)
                .health_check_path(&ctx.config.service.health_check_path)
                .health_check_interval_seconds(lb.health_check_interval_seconds as i32)
                .health_check_timeout_seconds(lb.health_check_timeout_seconds as i32)
                .healthy_threshold_count(lb.healthy_threshold as i32)
                .unhealthy_threshold_count(lb.unhealthy_threshold as i32)
                .matcher(Matcher::builder().http_code(HEALTHY_HTTP_CODES).build())
                .set_tags(Some(tags(ctx, key, &name)))
                .send()
                .await
                .ctx("create target group", &name)?;
            let tg = out.target_groups().first().cloned();
            (
                tg.ok_or_else(|| StackError::Failed {
                    resource: name.clone(),
                    message: "create returned no target group".into(),
                })?,
                Outcome::Created,
            )
        }
    };
    let arn = tg.target_group_arn().unwrap_or_default().to_string();
    ctx.record(
        key,
        "elbv2:target-group",
        &arn,
        &[("name", name.clone()), ("port", tg.port().unwrap_or_default().to_string())],
    )?;
    if tg.port() != Some(port) || tg.target_type() != Some(&TargetTypeEnum::Ip) {
        return Err(StackError::Refused(format!(
            "target group {name} forwards to port {:?} ({:?}); the config asks for port {port} (ip). \
             Changing it replaces the target group: run `down`, then `up`",
            tg.port(),
            tg.target_type().map(|t| t.as_str())
        )));
    }
    if !health_check_drift(ctx, &tg).is_empty() {
        ctx.aws
            .elb
            .modify_target_group()
            .target_group_arn(&arn)
            .health_check_path(&ctx.config.service.health_check_path)
            .health_check_interval_seconds(lb.health_check_interval_seconds as i32)
            .health_check_timeout_seconds(lb.health_check_timeout_seconds as i32)
            .healthy_threshold_count(lb.healthy_threshold as i32)
            .unhealthy_threshold_count(lb.unhealthy_threshold as i32)
            .send()
            .await
            .ctx("update the health check of", &name)?;
        if outcome == Outcome::Unchanged {
            outcome = Outcome::Updated;
        }
    }
    let delay = lb.deregistration_delay_seconds.to_string();
    if deregistration_delay(ctx, &arn).await? != Some(delay.clone()) {
        ctx.aws
            .elb
            .modify_target_group_attributes()
            .target_group_arn(&arn)
            .attributes(
                TargetGroupAttribute::builder().key("deregistration_delay.timeout_seconds").value(&delay).build(),
            )
            .send()
            .await
            .ctx("set the deregistration delay of", &name)?;
        if outcome == Outcome::Unchanged {
            outcome = Outcome::Updated;
        }
    }
    Ok(outcome)
}

async fn deregistration_delay(ctx: &Ctx, arn: &str) -> Result<Option<String>, StackError> {
    let attributes = ctx
        .aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .ctx("describe the attributes of", arn)?;
    Ok(attributes
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value().map(str::to_string)))
}

pub async fn delete_target_group(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let name = target_group_name(ctx);
    let arn = match ctx.id(keys::TARGET_GROUP) {
        Some(arn) => Some(arn),
        None => describe_tg(ctx, &name).await?.and_then(|t| t.target_group_arn().map(str::to_string)),
    };
    let Some(arn) = arn else { return Ok(Outcome::Absent) };
    line.start("deleting");
    // ResourceInUse until the listener (and the load balancer) is gone.
    let outcome = wait::retry_codes(line, &name, budget::PROPAGATION, &["ResourceInUse"], || async {
        match ctx.aws.elb.delete_target_group().target_group_arn(&arn).send().await.ctx("delete target group", &name) {
            Err(e) if e.is_not_found() => Ok(Outcome::Absent),
            other => other.map(|_| Outcome::Deleted),
        }
    })
    .await?;
    ctx.forget(keys::TARGET_GROUP)?;
    Ok(outcome)
}

/// A listener of the load balancer.
struct ListenerView {
    arn: String,
    port: i32,
    forwards_to: Option<String>,
}

/// The stack's listener: the one on the configured port, else the recorded one (whose port the
/// config changed).
async fn find_listener(ctx: &Ctx, lb_arn: &str) -> Result<Option<ListenerView>, StackError> {
    let port = ctx.config.load_balancer.listener_port as i32;
    let out = match ctx
        .aws
        .elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .ctx("describe the listeners of", lb_arn)
    {
        Ok(out) => out,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let recorded = ctx.id(keys::LISTENER);
    let listener = out
        .listeners()
        .iter()
        .find(|l| l.port() == Some(port))
        .or_else(|| out.listeners().iter().find(|l| recorded.is_some() && l.listener_arn() == recorded.as_deref()));
    Ok(listener.map(|l| ListenerView {
        arn: l.listener_arn().unwrap_or_default().to_string(),
        port: l.port().unwrap_or_default(),
        forwards_to: l
            .default_actions()
            .iter()
            .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
            .and_then(|a| a.target_group_arn().map(str::to_string)),
    }))
}

fn forward_to(tg_arn: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(tg_arn).build()
}

pub async fn ensure_listener(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::LISTENER;
    let lb_arn = ctx.need(keys::LOAD_BALANCER, key)?;
    let tg_arn = ctx.need(keys::TARGET_GROUP, key)?;
    let port = ctx.config.load_balancer.listener_port as i32;
    let (arn, outcome) = match find_listener(ctx, &lb_arn).await? {
        Some(l) if l.port == port && l.forwards_to.as_deref() == Some(tg_arn.as_str()) => (l.arn, Outcome::Unchanged),
        Some(l) => {
            line.start("updating");
            ctx.aws
                .elb
                .modify_listener()
                .listener_arn(&l.arn)
                .port(port)
                .default_actions(forward_to(&tg_arn))
                .send()
                .await
                .ctx("update listener", &l.arn)?;
            (l.arn, Outcome::Updated)
        }
        None => {
            line.start("creating");
            let out = ctx
                .aws
                .elb
                .create_listener()
                .load_balancer_arn(&lb_arn)
                .protocol(ProtocolEnum::Http)
                .port(port)
                .default_actions(forward_to(&tg_arn))
                .set_tags(Some(tags(ctx, key, &ctx.name(&format!("listener-{port}")))))
                .send()
                .await
                .ctx("create listener on", &load_balancer_name(ctx))?;
            (out.listeners().first().and_then(|l| l.listener_arn()).unwrap_or_default().to_string(), Outcome::Created)
        }
    };
    ctx.record(key, "elbv2:listener", &arn, &[("port", port.to_string())])?;
    Ok(outcome)
}

pub async fn delete_listener(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let Some(arn) = ctx.id(keys::LISTENER) else { return Ok(Outcome::Absent) };
    line.start("deleting");
    let gone = ctx.aws.elb.delete_listener().listener_arn(&arn).send().await.ctx("delete listener", &arn);
    let outcome = match gone {
        Err(e) if e.is_not_found() => Outcome::Absent,
        other => {
            other?;
            Outcome::Deleted
        }
    };
    ctx.forget(keys::LISTENER)?;
    Ok(outcome)
}

/// (healthy targets, registered targets) of the target group.
pub async fn target_health(ctx: &Ctx) -> Result<(u32, u32), StackError> {
    let arn = ctx.need(keys::TARGET_GROUP, "target health")?;
    let out = ctx
        .aws
        .elb
        .describe_target_health()
        .target_group_arn(&arn)
        .send()
        .await
        .ctx("describe the target health of", &arn)?;
    let all = out.target_health_descriptions();
    let healthy = all
        .iter()
        .filter(|d| d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy))
        .count();
    Ok((healthy as u32, all.len() as u32))
}

pub async fn inspect_load_balancer(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(arn) = ctx.id(keys::LOAD_BALANCER) else { return Ok(Inspection::not_recorded()) };
    let (lb, attributes) = tokio::join!(describe_lb_arn(ctx, &arn), missing_lb_attributes(ctx, &arn));
    Ok(match lb? {
        None => Inspection::missing(Some(arn), "deleted outside fargate-stack"),
        Some(lb) => match lb_state(&lb) {
            Some(LoadBalancerStateEnum::Active) | None => {
                let missing = attributes?;
                if missing.is_empty() {
                    Inspection::ok(arn)
                } else {
                    let keys: Vec<&str> = missing.iter().filter_map(|a| a.key()).collect();
                    Inspection::drifted(arn, format!("attributes differ: {}", keys.join(", ")))
                }
            }
            Some(s) if *s == LoadBalancerStateEnum::Provisioning => Inspection::pending(arn, "provisioning"),
            Some(s) => Inspection::drifted(arn, format!("state {}", s.as_str())),
        },
    })
}

pub async fn inspect_target_group(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(arn) = ctx.id(keys::TARGET_GROUP) else { return Ok(Inspection::not_recorded()) };
    let name = ctx.attr(keys::TARGET_GROUP, "name").unwrap_or_else(|| target_group_name(ctx));
    let (tg, delay_now) = tokio::join!(describe_tg(ctx, &name), deregistration_delay(ctx, &arn));
    Ok(match tg? {
        Some(tg) if tg.target_group_arn() == Some(arn.as_str()) => {
            let mut drift = health_check_drift(ctx, &tg);
            let delay = ctx.config.load_balancer.deregistration_delay_seconds.to_string();
            if delay_now? != Some(delay) {
                drift.push("deregistration_delay_seconds");
            }
            if drift.is_empty() {
                Inspection::ok(arn)
            } else {
                Inspection::drifted(arn, format!("differs: {}", drift.join(", ")))
            }
        }
        _ => Inspection::missing(Some(arn), "deleted outside fargate-stack"),
    })
}

pub async fn inspect_listener(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(arn) = ctx.id(keys::LISTENER) else { return Ok(Inspection::not_recorded()) };
    let Some(lb_arn) = ctx.id(keys::LOAD_BALANCER) else {
        return Ok(Inspection::missing(Some(arn), "its load balancer is gone"));
    };
    let port = ctx.config.load_balancer.listener_port;
    Ok(match find_listener(ctx, &lb_arn).await? {
        None => Inspection::missing(Some(arn), format!("no listener on port {port}")),
        Some(l) if l.arn != arn => Inspection::drifted(l.arn, "replaced outside fargate-stack"),
        Some(l) if l.port != port as i32 => {
            Inspection::drifted(arn, format!("listens on port {}, config says {port}", l.port))
        }
        Some(l) if l.forwards_to != ctx.id(keys::TARGET_GROUP) => {
            Inspection::drifted(arn, "does not forward to the stack's target group")
        }
        Some(_) => Inspection::ok(arn),
    })
}
