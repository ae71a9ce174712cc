//! ECS: the cluster, the Fargate task definition and the service behind the load balancer.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, DeploymentCircuitBreaker,
    DeploymentConfiguration, KeyValuePair, LaunchType, LoadBalancer, LogConfiguration, LogDriver, NetworkConfiguration,
    NetworkMode, PortMapping, PropagateTags, Service, ServiceField, Tag, TaskDefinition, TaskDefinitionField,
    TaskDefinitionStatus, TransportProtocol,
};

use crate::context::{keys, Ctx, Outcome};
use crate::error::{AwsContext, StackError};
use crate::progress::Line;
use crate::resources::Inspection;
use crate::wait::{self, budget, Poll};

pub const CONTAINER_NAME: &str = "app";

pub fn cluster_name(ctx: &Ctx) -> String {
    ctx.name("cluster")
}

pub fn service_name(ctx: &Ctx) -> String {
    ctx.name("service")
}

pub fn family(ctx: &Ctx) -> String {
    ctx.name("server")
}

fn tags(ctx: &Ctx, key: &str, name: &str) -> Vec<Tag> {
    ctx.tags(key, name).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

// ---------------------------------------------------------------- cluster

async fn cluster_status(ctx: &Ctx, name: &str) -> Result<Option<(String, String)>, StackError> {
    let out = ctx.aws.ecs.describe_clusters().clusters(name).send().await.ctx("describe cluster", name)?;
    Ok(out
        .clusters()
        .iter()
        .find(|c| c.cluster_name() == Some(name))
        .map(|c| (c.cluster_arn().unwrap_or_default().to_string(), c.status().unwrap_or_default().to_string())))
}

pub async fn ensure_cluster(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let name = cluster_name(ctx);
    let (arn, outcome) = match cluster_status(ctx, &name).await? {
        Some((arn, status)) if status == "ACTIVE" || status == "PROVISIONING" => (arn, Outcome::Unchanged),
        _ => {
            line.start("creating");
            let out = ctx
                .aws
                .ecs
                .create_cluster()
                .cluster_name(&name)
                .set_tags(Some(tags(ctx, keys::CLUSTER, &name)))
                .send()
                .await
                .ctx("create cluster", &name)?;
            (out.cluster().and_then(|c| c.cluster_arn()).unwrap_or_default().to_string(), Outcome::Created)
        }
    };
    ctx.record(keys::CLUSTER, "ecs:cluster", &name, &[("arn", arn)])?;
    Ok(outcome)
}

pub async fn delete_cluster(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let name = ctx.id(keys::CLUSTER).unwrap_or_else(|| cluster_name(ctx));
    match cluster_status(ctx, &name).await? {
        Some((_, status)) if status != "INACTIVE" => {}
        _ => {
            ctx.forget(keys::CLUSTER)?;
            return Ok(Outcome::Absent);
        }
    }
    line.start("deleting");
    // Refused while a service is still draining or tasks are stopping.
    let transient = [
        "ClusterContainsServicesException",
        "ClusterContainsTasksException",
        "UpdateInProgressException",
        "ResourceInUseException",
    ];
    let result = wait::retry_codes(line, &name, budget::SERVICE, &transient, || async {
        ctx.aws.ecs.delete_cluster().cluster(&name).send().await.ctx("delete cluster", &name).map(drop)
    })
    .await;
    match result {
        Err(e) if e.is_not_found() => {}
        other => other?,
    }
    ctx.forget(keys::CLUSTER)?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_cluster(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(name) = ctx.id(keys::CLUSTER) else { return Ok(Inspection::not_recorded()) };
    Ok(match cluster_status(ctx, &name).await? {
        Some((_, s)) if s == "ACTIVE" => Inspection::ok(name),
        Some((_, s)) if s == "PROVISIONING" => Inspection::pending(name, "provisioning"),
        Some((_, s)) => Inspection::missing(Some(name), format!("status {s}")),
        None => Inspection::missing(Some(name), "deleted outside fargate-stack"),
    })
}

// ---------------------------------------------------------------- task definition

/// The task definition the config asks for, as comparable fields.
#[derive(Debug, PartialEq)]
struct TaskShape {
    image: String,
    cpu: String,
    memory: String,
    port: i32,
    environment: Vec<(String, String)>,
    execution_role: String,
    task_role: String,
    log_group: String,
}

fn wanted_shape(ctx: &Ctx) -> Result<TaskShape, StackError> {
    let by = keys::TASK_DEFINITION;
    let table = ctx.need(keys::TABLE, by)?;
    Ok(TaskShape {
        image: ctx.config.service.image.clone(),
        cpu: ctx.config.service.cpu.to_string(),
        memory: ctx.config.service.memory.to_string(),
        port: ctx.config.service.container_port as i32,
        environment: ctx.config.container_environment(&table).into_iter().collect(),
        execution_role: ctx.need_attr(keys::EXECUTION_ROLE, "arn", by)?,
        task_role: ctx.need_attr(keys::TASK_ROLE, "arn", by)?,
        log_group: ctx.need(keys::LOG_GROUP, by)?,
    })
}

fn shape_of(def: &TaskDefinition) -> TaskShape {
    let container = def.container_definitions().iter().find(|c| c.name() == Some(CONTAINER_NAME));
    let mut environment: Vec<(String, String)> = container
        .map(|c| {
            c.environment()
                .iter()
                .map(|kv| (kv.name().unwrap_or_default().to_string(), kv.value().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    environment.sort();
    TaskShape {
        image: container.and_then(|c| c.image()).unwrap_or_default().to_string(),
        cpu: def.cpu().unwrap_or_default().to_string(),
        memory: def.memory().unwrap_or_default().to_string(),
        port: container.and_then(|c| c.port_mappings().first()).and_then(|p| p.container_port()).unwrap_or_default(),
        environment,
        execution_role: def.execution_role_arn().unwrap_or_default().to_string(),
        task_role: def.task_role_arn().unwrap_or_default().to_string(),
        log_group: container
            .and_then(|c| c.log_configuration())
            .and_then(|l| l.options())
            .and_then(|o| o.get("awslogs-group"))
            .cloned()
            .unwrap_or_default(),
    }
}

fn shape_diff(have: &TaskShape, want: &TaskShape) -> Vec<&'static str> {
    let mut diff = vec![];
    if have.image != want.image {
        diff.push("image");
    }
    if have.cpu != want.cpu {
        diff.push("cpu");
    }
    if have.memory != want.memory {
        diff.push("memory");
    }
    if have.port != want.port {
        diff.push("container_port");
    }
    if have.environment != want.environment {
        diff.push("environment");
    }
    if have.execution_role != want.execution_role || have.task_role != want.task_role {
        diff.push("roles");
    }
    if have.log_group != want.log_group {
        diff.push("log group");
    }
    diff
}

async fn describe_task_definition(ctx: &Ctx, id: &str) -> Result<Option<TaskDefinition>, StackError> {
    let out = ctx
        .aws
        .ecs
        .describe_task_definition()
        .task_definition(id)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .ctx("describe task definition", id);
    match out {
        Ok(out) => Ok(out.task_definition().cloned()),
        // ECS answers ClientException for an unknown family or revision.
        Err(e) if e.is_not_found() || e.has_code(&["ClientException"]) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn ensure_task_definition(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::TASK_DEFINITION;
    let want = wanted_shape(ctx)?;
    // The recorded revision, else the family's latest (left by an interrupted run), if it matches.
    for candidate in ctx.id(key).into_iter().chain([family(ctx)]) {
        if let Some(def) = describe_task_definition(ctx, &candidate).await? {
            let active = def.status() == Some(&TaskDefinitionStatus::Active);
            if active && shape_diff(&shape_of(&def), &want).is_empty() {
                let arn = def.task_definition_arn().unwrap_or_default();
                ctx.record(key, "ecs:task-definition", arn, &[("family", family(ctx))])?;
                return Ok(Outcome::Unchanged);
            }
        }
    }
    line.start("registering");
    let table = ctx.need(keys::TABLE, key)?;
    let environment = ctx
        .config
        .container_environment(&table)
        .into_iter()
        .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
        .collect();
    let logs = LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .options("awslogs-group", &want.log_group)
        .options("awslogs-region", &ctx.region)
        .options("awslogs-stream-prefix", ctx.stack())
        .build()
        .expect("log driver is set");
    let container = ContainerDefinition::builder()
        .name(CONTAINER_NAME)
        .image(&want.image)
        .essential(true)
        .port_mappings(PortMapping::builder().container_port(want.port).protocol(TransportProtocol::Tcp).build())
        .set_environment(Some(environment))
        .log_configuration(logs)
        .build();
    let family = family(ctx);
    let out = ctx
        .aws
        .ecs
        .register_task_definition()
        .family(&family)
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu(&want.cpu)
        .memory(&want.memory)
        .execution_role_arn(&want.execution_role)
        .task_role_arn(&want.task_role)
        .container_definitions(container)
        .set_tags(Some(tags(ctx, key, &family)))
        .send()
        .await
        .ctx("register task definition", &family)?;
    let arn = out.task_definition().and_then(|d| d.task_definition_arn()).unwrap_or_default().to_string();
    let existed = ctx.id(key).is_some();
    ctx.record(key, "ecs:task-definition", &arn, &[("family", family)])?;
    Ok(if existed { Outcome::Updated } else { Outcome::Created })
}

/// Deregister every active revision of the stack's family, then delete them.
pub async fn delete_task_definitions(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let family = ctx.attr(keys::TASK_DEFINITION, "family").unwrap_or_else(|| family(ctx));
    let mut outcome = Outcome::Absent;
    let mut inactive = vec![];
    for status in [TaskDefinitionStatus::Active, TaskDefinitionStatus::Inactive] {
        let mut next = None;
        loop {
            let out = ctx
                .aws
                .ecs
                .list_task_definitions()
                .family_prefix(&family)
                .status(status.clone())
                .set_next_token(next)
                .send()
                .await
                .ctx("list task definitions of", &family)?;
            for arn in out.task_definition_arns() {
                // family_prefix also matches longer families; keep ours only.
                if !arn.rsplit_once('/').is_some_and(|(_, rev)| rev.rsplit_once(':').is_some_and(|(f, _)| f == family))
                {
                    continue;
                }
                if status == TaskDefinitionStatus::Active {
                    line.start("deregistering");
                    ctx.aws
                        .ecs
                        .deregister_task_definition()
                        .task_definition(arn)
                        .send()
                        .await
                        .ctx("deregister", arn)?;
                    outcome = Outcome::Deleted;
                }
                inactive.push(arn.clone());
            }
            next = out.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
    }
    // Deregistered revisions stay listable until deleted (best effort: an older API surface may lack it).
    for chunk in inactive.chunks(10) {
        let deleted = ctx
            .aws
            .ecs
            .delete_task_definitions()
            .set_task_definitions(Some(chunk.to_vec()))
            .send()
            .await
            .ctx("delete task definitions of", &family);
        if let Err(e) = deleted {
            tracing::warn!("{e}");
        }
    }
    ctx.forget(keys::TASK_DEFINITION)?;
    Ok(outcome)
}

pub async fn inspect_task_definition(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(arn) = ctx.id(keys::TASK_DEFINITION) else { return Ok(Inspection::not_recorded()) };
    let Some(def) = describe_task_definition(ctx, &arn).await? else {
        return Ok(Inspection::missing(Some(arn), "deleted outside fargate-stack"));
    };
    if def.status() != Some(&TaskDefinitionStatus::Active) {
        return Ok(Inspection::missing(Some(arn), "deregistered"));
    }
    Ok(match wanted_shape(ctx) {
        Ok(want) => {
            let diff = shape_diff(&shape_of(&def), &want);
            if diff.is_empty() {
                Inspection::ok(arn)
            } else {
                Inspection::drifted(arn, format!("differs from the config: {}", diff.join(", ")))
            }
        }
        Err(_) => Inspection::ok(arn),
    })
}

// ---------------------------------------------------------------- service

async fn describe_service(ctx: &Ctx) -> Result<Option<Service>, StackError> {
    let cluster = ctx.id(keys::CLUSTER).unwrap_or_else(|| cluster_name(ctx));
    let name = service_name(ctx);
    let out = match ctx
        .aws
        .ecs
        .describe_services()
        .cluster(&cluster)
        .services(&name)
        .include(ServiceField::Tags)
        .send()
        .await
        .ctx("describe service", &name)
    {
        Ok(out) => out,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(out.services().iter().find(|s| s.service_name() == Some(name.as_str())).cloned())
}

fn is_live(service: &Service) -> bool {
    service.status().is_some_and(|s| s != "INACTIVE")
}

/// A deterministic client token, so a create retried after a lost response returns the same service.
fn client_token(ctx: &Ctx, task_definition: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (ctx.stack(), &ctx.region, task_definition).hash(&mut h);
    format!("fargate-stack-{:016x}", h.finish())
}

pub async fn ensure_service(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::SERVICE;
    let cluster = ctx.need(keys::CLUSTER, key)?;
    let task_definition = ctx.need(keys::TASK_DEFINITION, key)?;
    let desired = ctx.config.service.desired_count as i32;
    let name = service_name(ctx);
    let existing = describe_service(ctx).await?;
    if let Some(service) = existing.as_ref().filter(|s| s.status() == Some("ACTIVE")) {
        let arn = service.service_arn().unwrap_or_default().to_string();
        ctx.record(key, "ecs:service", &arn, &[("name", name.clone()), ("cluster", cluster.clone())])?;
        let stale_definition = service.task_definition() != Some(task_definition.as_str());
        if !stale_definition && service.desired_count() == desired {
            return Ok(Outcome::Unchanged);
        }
        line.start("updating");
        let mut update = ctx.aws.ecs.update_service().cluster(&cluster).service(&name).desired_count(desired);
        if stale_definition {
            update = update.task_definition(&task_definition);
        }
        update.send().await.ctx("update service", &name)?;
        return Ok(Outcome::Updated);
    }
    if existing.as_ref().is_some_and(is_live) {
        // DRAINING from an earlier delete: a new service of the same name must wait for it.
        wait_service_gone(ctx, line, &name).await?;
    }
    let private_subnets = (0..ctx.config.network.az_count as usize)
        .map(|i| ctx.need(&keys::private_subnet(i), key))
        .collect::<Result<Vec<_>, _>>()?;
    let task_group = ctx.need(keys::TASK_SG, key)?;
    let target_group = ctx.need(keys::TARGET_GROUP, key)?;
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
    line.start("creating");
    let create = || async {
        ctx.aws
            .ecs
            .create_service()
            .cluster(&cluster)
            .service_name(&name)
            .task_definition(&task_definition)
            .desired_count(desired)
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
            .set_tags(Some(tags(ctx, key, &name)))
            .client_token(client_token(ctx, &task_definition))
            .send()
            .await
            .ctx("create service", &name)
    };
    // Right after the roles are created ECS may not be able to assume them yet, and right after
    // the listener is created the target group may not show its load balancer yet.
    let propagating = |e: &StackError| {
        e.has_code(&["InvalidParameterException"])
            && e.message().is_some_and(|m| {
                let m = m.to_lowercase();
                m.contains("unable to assume") || m.contains("does not have an associated load balancer")
            })
    };
    let out = wait::retry_while(line, &name, budget::IAM_PROPAGATION, propagating, create).await?;
    let arn = out.service().and_then(|s| s.service_arn()).unwrap_or_default().to_string();
    ctx.record(key, "ecs:service", &arn, &[("name", name), ("cluster", cluster)])?;
    Ok(Outcome::Created)
}

/// Wait until the stack's service is INACTIVE or gone (DRAINING lasts the deregistration delay).
async fn wait_service_gone(ctx: &Ctx, line: &Line, name: &str) -> Result<(), StackError> {
    wait::until(line, name, "be deleted", budget::SERVICE, || async {
        Ok(match describe_service(ctx).await? {
            Some(s) if is_live(&s) => Poll::Pending(s.status().unwrap_or_default().to_lowercase()),
            _ => Poll::Ready(()),
        })
    })
    .await
}

pub async fn delete_service(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let name = service_name(ctx);
    let cluster = ctx.id(keys::CLUSTER).unwrap_or_else(|| cluster_name(ctx));
    let Some(service) = describe_service(ctx).await?.filter(is_live) else {
        ctx.forget(keys::SERVICE)?;
        return Ok(Outcome::Absent);
    };
    line.start("deleting");
    if service.status() == Some("ACTIVE") {
        if service.desired_count() > 0 {
            ctx.aws
                .ecs
                .update_service()
                .cluster(&cluster)
                .service(&name)
                .desired_count(0)
                .send()
                .await
                .ctx("scale to 0", &name)?;
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
        match deleted {
            Err(e) if e.is_not_found() => {}
            other => other?,
        }
    }
    // DRAINING lasts the target group's deregistration delay.
    wait_service_gone(ctx, line, &name).await?;
    ctx.forget(keys::SERVICE)?;
    Ok(Outcome::Deleted)
}

/// What the service is doing, for the rollout wait and `status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServiceView {
    pub status: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// The rollout state of the PRIMARY deployment (IN_PROGRESS, COMPLETED, FAILED).
    pub rollout: Option<String>,
    pub rollout_reason: Option<String>,
    pub primary_task_definition: String,
    /// The task definition the service is set to run (what the last create/update asked for).
    pub task_definition: String,
    pub deployments: usize,
}

pub async fn service_view(ctx: &Ctx) -> Result<Option<ServiceView>, StackError> {
    Ok(describe_service(ctx).await?.filter(is_live).map(|s| {
        let primary = s.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
        ServiceView {
            status: s.status().unwrap_or_default().to_string(),
            desired: s.desired_count(),
            running: s.running_count(),
            pending: s.pending_count(),
            rollout: primary.and_then(|d| d.rollout_state()).map(|r| r.as_str().to_string()),
            rollout_reason: primary.and_then(|d| d.rollout_state_reason()).map(str::to_string),
            primary_task_definition: primary
                .and_then(|d| d.task_definition())
                .or(s.task_definition())
                .unwrap_or_default()
                .to_string(),
            deployments: s.deployments().len(),
            task_definition: s.task_definition().unwrap_or_default().to_string(),
        }
    }))
}

pub async fn inspect_service(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(arn) = ctx.id(keys::SERVICE) else { return Ok(Inspection::not_recorded()) };
    let Some(view) = service_view(ctx).await? else {
        return Ok(Inspection::missing(Some(arn), "deleted outside fargate-stack"));
    };
    if view.status != "ACTIVE" {
        return Ok(Inspection::missing(Some(arn), view.status.to_lowercase()));
    }
    if view.desired != ctx.config.service.desired_count as i32 {
        return Ok(Inspection::drifted(
            arn,
            format!("desired count {}, config says {}", view.desired, ctx.config.service.desired_count),
        ));
    }
    if ctx.id(keys::TASK_DEFINITION).is_some_and(|t| t != view.task_definition) {
        return Ok(Inspection::drifted(arn, "runs another task definition"));
    }
    if view.running < view.desired || view.deployments > 1 {
        return Ok(Inspection::pending(arn, format!("running {}/{}", view.running, view.desired)));
    }
    Ok(Inspection::ok(arn))
}
