//! The ECS service behind the load balancer, and the wait for a healthy rollout.

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration, LaunchType, LoadBalancer,
    NetworkConfiguration, PropagateTags, Service as ServiceObject, ServiceField,
};

use crate::context::Ctx;
use crate::error::{found, AwsContext, StackError};
use crate::model::{after, Change, Diff, Edge, Key, Managed, Outcome, Record, Wait};
use crate::progress::Line;
use crate::resources::cluster::{cluster_name, owned};
use crate::resources::ec2::{filter, wait_enis_released};
use crate::resources::load_balancer::target_health;
pub mod status;

use crate::resources::task_definition::{note_completed, revision, CONTAINER_NAME};
use crate::wait::{self, budget, Poll};
use status::service_view;

pub fn service_name(ctx: &Ctx) -> String {
    ctx.name("service")
}

pub struct Service {
    pub azs: u8,
    pub nats: u8,
    /// Registered with Application Auto Scaling (the graph has its scalable target).
    pub autoscaled: bool,
}

/// The service and what `status` needs to judge it.
pub struct ServiceLive {
    service: ServiceObject,
    healthy_targets: u32,
}

/// The stack's service as ECS describes it, whatever its status.
pub(crate) async fn describe_service(ctx: &Ctx) -> Result<Option<ServiceObject>, StackError> {
    let cluster = ctx.id(Key::Cluster).unwrap_or_else(|| cluster_name(ctx));
    let name = service_name(ctx);
    let out = found(
        ctx.aws
            .ecs
            .describe_services()
            .cluster(&cluster)
            .services(&name)
            .include(ServiceField::Tags)
            .send()
            .await
            .ctx("describe service", &name),
    )?;
    Ok(out.and_then(|o| o.services().iter().find(|s| s.service_name() == Some(name.as_str())).cloned()))
}

pub(crate) fn is_live(service: &ServiceObject) -> bool {
    service.status().is_some_and(|s| s != "INACTIVE")
}

/// A deterministic client token, so a create retried after a lost response returns the same service.
fn client_token(ctx: &Ctx, task_definition: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}\n{}\n{task_definition}", ctx.stack(), ctx.region));
    format!("fargate-stack-{}", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>())
}

/// Wait until the stack's service is INACTIVE or gone (DRAINING lasts the deregistration delay).
async fn wait_service_gone(ctx: &Ctx, line: &Line) -> Result<(), StackError> {
    wait::until(line, &service_name(ctx), "be deleted", budget::SERVICE, || async {
        Ok(match describe_service(ctx).await? {
            Some(s) if is_live(&s) => Poll::Pending(s.status().unwrap_or_default().to_lowercase()),
            _ => Poll::Ready(()),
        })
    })
    .await
}

#[async_trait]
impl Managed for Service {
    type Live = ServiceLive;

    fn key(&self) -> Key {
        Key::Service
    }

    fn needs(&self) -> Vec<Key> {
        let mut needs = vec![Key::Cluster, Key::TaskDefinition, Key::TaskSecurityGroup, Key::Listener];
        needs.extend((0..self.azs).map(Key::PrivateSubnet));
        // Tasks in private subnets pull their image through the NAT route.
        needs.extend((0..self.nats).map(Key::PrivateRouteTable));
        needs
    }

    fn teardown_after(&self) -> Vec<Edge> {
        if !self.autoscaled {
            return vec![];
        }
        vec![after(
            Key::ScalableTarget,
            "deregistered first: the autoscaler would scale the service up again while it drains, and a \
             target outlives its deleted service in Application Auto Scaling",
        )]
    }

    /// The ACTIVE service (one that is DRAINING from an earlier delete is on its way out).
    async fn find(&self, ctx: &Ctx) -> Result<Option<ServiceLive>, StackError> {
        let tg = ctx.id(Key::TargetGroup);
        let health = async {
            match &tg {
                Some(arn) => target_health(ctx, arn).await.map(|(healthy, _)| healthy).unwrap_or(0),
                None => 0,
            }
        };
        let (service, healthy_targets) = tokio::join!(describe_service(ctx), health);
        let Some(service) = service?.filter(|s| s.status() == Some("ACTIVE")) else { return Ok(None) };
        owned(ctx, Key::Service, &service_name(ctx), service.tags())?;
        Ok(Some(ServiceLive { service, healthy_targets }))
    }

    fn record(&self, ctx: &Ctx, live: &ServiceLive) -> Record {
        let cluster = ctx.id(Key::Cluster).unwrap_or_else(|| cluster_name(ctx));
        Record::id(live.service.service_arn().unwrap_or_default())
            .with("name", service_name(ctx))
            .with("cluster", cluster)
    }

    fn diff(&self, ctx: &Ctx, live: &ServiceLive) -> Result<Vec<Change>, StackError> {
        let task_definition = ctx.need(Key::TaskDefinition, Key::Service)?;
        let have = live.service.desired_count().max(0) as u32;
        let mut diff = Diff::new();
        diff.field(&desired_count_field(ctx), &have.to_string(), &wanted_desired_count(ctx, have).to_string()).field(
            "task definition",
            revision(live.service.task_definition().unwrap_or("none")),
            revision(&task_definition),
        );
        Ok(diff.into_changes())
    }

    fn pending(&self, _ctx: &Ctx, live: &ServiceLive) -> Option<String> {
        let s = &live.service;
        let desired = s.desired_count().max(0) as u32;
        if s.running_count() < s.desired_count() || s.deployments().len() > 1 {
            Some(format!("running {}/{}", s.running_count(), s.desired_count()))
        } else if live.healthy_targets < desired {
            // Running tasks do not serve until the load balancer finds them healthy.
            Some(format!("healthy targets {}/{desired}", live.healthy_targets))
        } else {
            None
        }
    }

    async fn create(&self, ctx: &Ctx, line: &Line) -> Result<ServiceLive, StackError> {
        let key = Key::Service;
        // DRAINING from an earlier delete: a new service of the same name must wait for it.
        if describe_service(ctx).await?.as_ref().is_some_and(is_live) {
            wait_service_gone(ctx, line).await?;
            line.start("creating");
        }
        let cluster = ctx.need(Key::Cluster, key)?;
        let task_definition = ctx.need(Key::TaskDefinition, key)?;
        let name = service_name(ctx);
        let private_subnets =
            (0..self.azs).map(|i| ctx.need(Key::PrivateSubnet(i), key)).collect::<Result<Vec<_>, _>>()?;
        let task_group = ctx.need(Key::TaskSecurityGroup, key)?;
        let target_group = ctx.need(Key::TargetGroup, key)?;
        let lb = &ctx.config.load_balancer;
        // Time for a new task to pass its first health checks before ECS judges it.
        let grace = (lb.health_check_interval_seconds * lb.healthy_threshold + 10) as i32;
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(private_subnets))
                    .security_groups(task_group)
                    .assign_public_ip(AssignPublicIp::Disabled)
                    .build()
                    .expect("subnets are set"),
            )
            .build();
        let deployment = DeploymentConfiguration::builder()
            .deployment_circuit_breaker(DeploymentCircuitBreaker::builder().enable(true).rollback(true).build())
            .maximum_percent(200)
            .minimum_healthy_percent(100)
            .build();
        let create = || async {
            ctx.aws
                .ecs
                .create_service()
                .cluster(&cluster)
                .service_name(&name)
                .task_definition(&task_definition)
                .desired_count(ctx.config.service.desired_count as i32)
                .launch_type(LaunchType::Fargate)
                .network_configuration(network.clone())
                .load_balancers(
                    LoadBalancer::builder()
                        .target_group_arn(&target_group)
                        .container_name(CONTAINER_NAME)
                        .container_port(ctx.config.service.container_port as i32)
                        .build(),
                )
                .deployment_configuration(deployment.clone())
                .health_check_grace_period_seconds(grace)
                .propagate_tags(PropagateTags::Service)
                .enable_ecs_managed_tags(true)
                .set_tags(Some(ctx.sdk_tags(key, &name)))
                .client_token(client_token(ctx, &task_definition))
                .send()
                .await
                .ctx("create service", &name)
        };
        // Right after the roles are created ECS may not be able to assume them yet, and right
        // after the listener is created the target group may not show its load balancer yet.
        let propagating = |e: &StackError| {
            e.has_code(&["InvalidParameterException"])
                && e.message().is_some_and(|m| {
                    let m = m.to_lowercase();
                    m.contains("unable to assume") || m.contains("does not have an associated load balancer")
                })
        };
        let out = wait::retry_while(line, &name, budget::IAM_PROPAGATION, propagating, create).await?;
        let service = out
            .service()
            .cloned()
            .ok_or_else(|| StackError::Failed { resource: name, message: "create returned no service".into() })?;
        Ok(ServiceLive { service, healthy_targets: 0 })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _line: &Line,
        live: &ServiceLive,
        changes: &[Change],
    ) -> Result<Option<ServiceLive>, StackError> {
        let cluster = ctx.need(Key::Cluster, Key::Service)?;
        let name = service_name(ctx);
        let mut update = ctx.aws.ecs.update_service().cluster(&cluster).service(&name);
        for change in changes {
            match change.field.as_str() {
                field if field == desired_count_field(ctx) => {
                    let have = live.service.desired_count().max(0) as u32;
                    update = update.desired_count(wanted_desired_count(ctx, have) as i32);
                }
                "task definition" => update = update.task_definition(ctx.need(Key::TaskDefinition, Key::Service)?),
                _ => {}
            }
        }
        let out = update.send().await.ctx("update service", &name)?;
        Ok(out.service().cloned().map(|service| ServiceLive { service, healthy_targets: live.healthy_targets }))
    }

    /// Scale to 0, delete, and wait until it is gone: draining lasts the deregistration delay.
    async fn destroy(&self, ctx: &Ctx, line: &Line, live: ServiceLive) -> Result<Outcome, StackError> {
        let cluster = ctx.id(Key::Cluster).unwrap_or_else(|| cluster_name(ctx));
        let name = service_name(ctx);
        if live.service.desired_count() > 0 {
            found(
                ctx.aws
                    .ecs
                    .update_service()
                    .cluster(&cluster)
                    .service(&name)
                    .desired_count(0)
                    .send()
                    .await
                    .ctx("scale to 0", &name),
            )?;
        }
        let transient = |e: &StackError| {
            e.has_code(&["InvalidParameterException"])
                && e.message().is_some_and(|m| m.contains("deployments are active") || m.contains("dependent object"))
        };
        let deleted = wait::retry_while(line, &name, budget::SERVICE, transient, || async {
            ctx.aws
                .ecs
                .delete_service()
                .cluster(&cluster)
                .service(&name)
                .force(true)
                .send()
                .await
                .ctx("delete service", &name)
                .map(drop)
        })
        .await;
        found(deleted)?;
        wait_service_gone(ctx, line).await?;
        // The private subnets and the task group wait for the tasks' network interfaces to go.
        if let (Some(group), Some(vpc)) = (ctx.id(Key::TaskSecurityGroup), ctx.id(Key::Vpc)) {
            wait_enis_released(ctx, line, &name, vec![filter("group-id", &group), filter("vpc-id", &vpc)]).await;
        }
        Ok(Outcome::Deleted)
    }

    /// Not ACTIVE, but maybe still DRAINING from an earlier `down`: what waits for the service to
    /// be gone (its subnets, its security group) must wait for that too.
    async fn settle_gone(&self, ctx: &Ctx, line: &Line) -> Result<(), StackError> {
        if describe_service(ctx).await?.as_ref().is_some_and(is_live) {
            line.start("deleting");
            wait_service_gone(ctx, line).await?;
        }
        Ok(())
    }
}

/// The desired count the service should have now. With `[autoscaling]` the autoscaler owns it
/// inside `[min_count, max_count]` and only a count outside is brought back, to the nearest bound;
/// without, it is `service.desired_count`.
fn wanted_desired_count(ctx: &Ctx, have: u32) -> u32 {
    match &ctx.config.autoscaling {
        Some(scaling) => scaling.clamp(have),
        None => ctx.config.service.desired_count,
    }
}

/// How a desired count change reads: against the config's count, or the autoscaling range.
fn desired_count_field(ctx: &Ctx) -> String {
    match &ctx.config.autoscaling {
        Some(s) => format!("desired count (autoscaling range {}..={})", s.min_count, s.max_count),
        None => "service.desired_count".to_string(),
    }
}
/// Point the service at a task definition revision (`force`: start new tasks even if it is the
/// one it runs, e.g. to pull a tag that moved).
pub async fn roll_service(ctx: &Ctx, task_definition: &str, force: bool) -> Result<(), StackError> {
    let cluster = ctx.need(Key::Cluster, Key::Service)?;
    let name = service_name(ctx);
    ctx.aws
        .ecs
        .update_service()
        .cluster(&cluster)
        .service(&name)
        .task_definition(task_definition)
        .force_new_deployment(force)
        .send()
        .await
        .ctx("update service", &name)?;
    Ok(())
}

/// Wait until the service's rollout onto the recorded task definition completed, every task
/// runs and every target is healthy; then remember the revision as completed (for `rollback`).
/// A deployment the circuit breaker rolled back is a failure, even though the service is stable.
pub async fn wait_rollout(ctx: &Ctx, line: &Line) -> Result<(), StackError> {
    let by = Key::ServiceHealthy;
    let name = service_name(ctx);
    let wanted_definition = ctx.need(Key::TaskDefinition, by)?;
    let target_group = ctx.need(Key::TargetGroup, by)?;
    wait::until(line, &name, "run every task with healthy targets", budget::SERVICE, || async {
        let Some(view) = service_view(ctx).await? else {
            return Err(StackError::Failed { resource: name.clone(), message: "disappeared".into() });
        };
        if view.rollout.as_deref() == Some("FAILED") || view.primary_task_definition != wanted_definition {
            let reason = view.rollout_reason.as_deref().unwrap_or("no reason given");
            let message = if view.primary_task_definition != wanted_definition {
                format!(
                    "deployment of {} failed and was rolled back to {} by the circuit breaker: {reason}",
                    revision(&wanted_definition),
                    revision(&view.primary_task_definition)
                )
            } else {
                format!("deployment of {} failed: {reason}", revision(&wanted_definition))
            };
            return Err(StackError::Failed { resource: name.clone(), message });
        }
        let (healthy, _) = target_health(ctx, &target_group).await?;
        let desired = view.desired.max(0) as u32;
        let completed = view.rollout.as_deref().is_none_or(|r| r == "COMPLETED") && view.deployments.len() <= 1;
        if completed && view.running >= view.desired && healthy >= desired {
            return Ok(Poll::Ready(()));
        }
        Ok(Poll::Pending(format!(
            "running {}/{}, healthy {}/{}, rollout {}",
            view.running,
            view.desired,
            healthy,
            desired,
            view.rollout.as_deref().unwrap_or("unknown").to_lowercase()
        )))
    })
    .await?;
    note_completed(ctx, &wanted_definition).await?;
    Ok(())
}

/// Wait until the primary deployment completed, every task runs and every target is healthy.
pub struct HealthyWait;

#[async_trait]
impl Wait for HealthyWait {
    fn key(&self) -> Key {
        Key::ServiceHealthy
    }

    fn needs(&self) -> Vec<Key> {
        vec![Key::Service, Key::LoadBalancerActive]
    }

    async fn wait(&self, ctx: &Ctx, line: &Line) -> Result<(), StackError> {
        wait_rollout(ctx, line).await
    }
}
