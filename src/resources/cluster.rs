//! ECS: the cluster, the Fargate task definition and the service behind the load balancer, and
//! the wait for a healthy rollout.

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Cluster as ClusterObject, Compatibility, ContainerDefinition,
    DeploymentCircuitBreaker, DeploymentConfiguration, KeyValuePair, LaunchType, LoadBalancer, LogConfiguration,
    LogDriver, NetworkConfiguration, NetworkMode, PortMapping, PropagateTags, Service as ServiceObject, ServiceField,
    TaskDefinition as Definition, TaskDefinitionField, TaskDefinitionStatus, TransportProtocol,
};

use crate::context::Ctx;
use crate::error::{found, AwsContext, StackError};
use crate::model::{after, Change, Diff, Edge, Key, Managed, Outcome, Record, Wait};
use crate::progress::Line;
use crate::resources::ec2::{filter, wait_enis_released};
use crate::resources::load_balancer::target_health;
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

fn owned<'a>(
    ctx: &Ctx,
    key: Key,
    what: &str,
    tags: impl IntoIterator<Item = &'a aws_sdk_ecs::types::Tag>,
) -> Result<(), StackError> {
    let tags = tags.into_iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
    ctx.owns(key, tags).map_err(|why| ctx.not_ours(format!("{} {what}", key.kind()), why))
}

// ---------------------------------------------------------------- cluster

pub struct Cluster;

#[async_trait]
impl Managed for Cluster {
    type Live = ClusterObject;

    fn key(&self) -> Key {
        Key::Cluster
    }

    fn needs(&self) -> Vec<Key> {
        vec![]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![after(
            Key::Service,
            "DeleteCluster fails with ClusterContainsServicesException while a service is active or draining",
        )]
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<ClusterObject>, StackError> {
        let name = ctx.id(Key::Cluster).unwrap_or_else(|| cluster_name(ctx));
        let out = ctx
            .aws
            .ecs
            .describe_clusters()
            .clusters(&name)
            .include(aws_sdk_ecs::types::ClusterField::Tags)
            .send()
            .await
            .ctx("describe cluster", &name)?;
        let cluster = out
            .clusters()
            .iter()
            .find(|c| c.cluster_name() == Some(name.as_str()) && matches!(c.status(), Some("ACTIVE" | "PROVISIONING")))
            .cloned();
        if let Some(cluster) = &cluster {
            owned(ctx, Key::Cluster, &name, cluster.tags())?;
        }
        Ok(cluster)
    }

    fn record(&self, _ctx: &Ctx, live: &ClusterObject) -> Record {
        Record::id(live.cluster_name().unwrap_or_default()).with("arn", live.cluster_arn().unwrap_or_default())
    }

    fn pending(&self, _ctx: &Ctx, live: &ClusterObject) -> Option<String> {
        (live.status() == Some("PROVISIONING")).then(|| "provisioning".to_string())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<ClusterObject, StackError> {
        let name = cluster_name(ctx);
        let out = ctx
            .aws
            .ecs
            .create_cluster()
            .cluster_name(&name)
            .set_tags(Some(ctx.sdk_tags(Key::Cluster, &name)))
            .send()
            .await
            .ctx("create cluster", &name)?;
        out.cluster()
            .cloned()
            .ok_or_else(|| StackError::Failed { resource: name, message: "create returned no cluster".into() })
    }

    async fn destroy(&self, ctx: &Ctx, line: &Line, live: ClusterObject) -> Result<Outcome, StackError> {
        let name = live.cluster_name().unwrap_or_default();
        // Refused while a service is still draining or its tasks are stopping.
        let busy = [
            "ClusterContainsServicesException",
            "ClusterContainsTasksException",
            "UpdateInProgressException",
            "ResourceInUseException",
        ];
        let deleted = wait::retry_codes(line, name, budget::SERVICE, &busy, || async {
            ctx.aws.ecs.delete_cluster().cluster(name).send().await.ctx("delete cluster", name).map(drop)
        })
        .await;
        found(deleted)?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- task definition

/// The task definition's fields that the config decides, as comparable, printable values.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    image: String,
    cpu: String,
    memory: String,
    port: String,
    environment: String,
    execution_role: String,
    task_role: String,
    log_group: String,
}

impl Shape {
    fn wanted(ctx: &Ctx) -> Result<Shape, StackError> {
        let by = Key::TaskDefinition;
        let table = ctx.need(Key::Table, by)?;
        Ok(Shape {
            image: ctx.config.service.image.clone(),
            cpu: ctx.config.service.cpu.to_string(),
            memory: ctx.config.service.memory.to_string(),
            port: ctx.config.service.container_port.to_string(),
            environment: show_environment(ctx.config.container_environment(&table).into_iter()),
            execution_role: ctx.need_attr(Key::ExecutionRole, "arn", by)?,
            task_role: ctx.need_attr(Key::TaskRole, "arn", by)?,
            log_group: ctx.need(Key::LogGroup, by)?,
        })
    }

    fn of(def: &Definition) -> Shape {
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
        Shape {
            image: container.and_then(|c| c.image()).unwrap_or_default().to_string(),
            cpu: def.cpu().unwrap_or_default().to_string(),
            memory: def.memory().unwrap_or_default().to_string(),
            port: container
                .and_then(|c| c.port_mappings().first())
                .and_then(|p| p.container_port())
                .map(|p| p.to_string())
                .unwrap_or_default(),
            environment: show_environment(environment.into_iter()),
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

    fn diff(&self, want: &Shape) -> Vec<Change> {
        let mut diff = Diff::new();
        diff.field("service.image", &self.image, &want.image)
            .field("service.cpu", &self.cpu, &want.cpu)
            .field("service.memory", &self.memory, &want.memory)
            .field("service.container_port", &self.port, &want.port)
            .field("service.environment", &self.environment, &want.environment)
            .field("execution role", &self.execution_role, &want.execution_role)
            .field("task role", &self.task_role, &want.task_role)
            .field("log group", &self.log_group, &want.log_group);
        diff.into_changes()
    }
}

fn show_environment(vars: impl Iterator<Item = (String, String)>) -> String {
    let mut vars: Vec<String> = vars.map(|(k, v)| format!("{k}={v}")).collect();
    vars.sort();
    format!("{{{}}}", vars.join(", "))
}

async fn describe_definition(
    ctx: &Ctx,
    id: &str,
) -> Result<Option<(Definition, Vec<aws_sdk_ecs::types::Tag>)>, StackError> {
    let out =
        ctx.aws.ecs.describe_task_definition().task_definition(id).include(TaskDefinitionField::Tags).send().await;
    match out.ctx("describe task definition", id) {
        Ok(out) => Ok(out.task_definition().cloned().map(|d| (d, out.tags().to_vec()))),
        // ECS answers ClientException for an unknown family or revision.
        Err(e) if e.is_not_found() || e.has_code(&["ClientException"]) => Ok(None),
        Err(e) => Err(e),
    }
}

pub struct TaskDefinition;

#[async_trait]
impl Managed for TaskDefinition {
    type Live = Definition;

    fn key(&self) -> Key {
        Key::TaskDefinition
    }

    fn needs(&self) -> Vec<Key> {
        vec![Key::ExecutionRole, Key::TaskRole, Key::LogGroup, Key::Table]
    }

    /// The recorded revision, else the family's latest (left by an interrupted run).
    async fn find(&self, ctx: &Ctx) -> Result<Option<Definition>, StackError> {
        let family = ctx.attr(Key::TaskDefinition, "family").unwrap_or_else(|| family(ctx));
        for candidate in ctx.id(Key::TaskDefinition).into_iter().chain([family]) {
            if let Some((def, tags)) = describe_definition(ctx, &candidate).await? {
                if def.status() == Some(&TaskDefinitionStatus::Active) {
                    owned(ctx, Key::TaskDefinition, &candidate, &tags)?;
                    return Ok(Some(def));
                }
            }
        }
        Ok(None)
    }

    fn record(&self, ctx: &Ctx, live: &Definition) -> Record {
        Record::id(live.task_definition_arn().unwrap_or_default())
            .with("family", live.family().map_or_else(|| family(ctx), str::to_string))
    }

    fn diff(&self, ctx: &Ctx, live: &Definition) -> Result<Vec<Change>, StackError> {
        Ok(Shape::of(live).diff(&Shape::wanted(ctx)?))
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<Definition, StackError> {
        register(ctx).await
    }

    /// A task definition revision never changes: a new one is registered.
    async fn update(
        &self,
        ctx: &Ctx,
        line: &Line,
        _live: &Definition,
        _changes: &[Change],
    ) -> Result<Option<Definition>, StackError> {
        line.start("registering");
        Ok(Some(register(ctx).await?))
    }

    /// Deregister every active revision of the family, then delete them all.
    async fn destroy(&self, ctx: &Ctx, line: &Line, live: Definition) -> Result<Outcome, StackError> {
        let family = live.family().map_or_else(|| family(ctx), str::to_string);
        let mut deregistered = vec![];
        for status in [TaskDefinitionStatus::Active, TaskDefinitionStatus::Inactive] {
            let mut pages = ctx
                .aws
                .ecs
                .list_task_definitions()
                .family_prefix(&family)
                .status(status.clone())
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.ctx("list the task definitions of", &family)?;
                // family_prefix also matches longer families: keep ours only.
                for arn in page.task_definition_arns().iter().filter(|arn| family_of(arn) == Some(family.as_str())) {
                    if status == TaskDefinitionStatus::Active {
                        line.start("deregistering");
                        ctx.aws
                            .ecs
                            .deregister_task_definition()
                            .task_definition(arn)
                            .send()
                            .await
                            .ctx("deregister", arn)?;
                    }
                    deregistered.push(arn.clone());
                }
            }
        }
        // Deregistered revisions stay listed until deleted.
        for chunk in deregistered.chunks(10) {
            ctx.aws
                .ecs
                .delete_task_definitions()
                .set_task_definitions(Some(chunk.to_vec()))
                .send()
                .await
                .ctx("delete the task definitions of", &family)?;
        }
        Ok(Outcome::Deleted)
    }
}

/// `arn:...:task-definition/<family>:<revision>` -> family.
fn family_of(arn: &str) -> Option<&str> {
    arn.rsplit_once('/').and_then(|(_, rev)| rev.rsplit_once(':')).map(|(family, _)| family)
}

async fn register(ctx: &Ctx) -> Result<Definition, StackError> {
    let want = Shape::wanted(ctx)?;
    let table = ctx.need(Key::Table, Key::TaskDefinition)?;
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
        .port_mappings(
            PortMapping::builder()
                .container_port(ctx.config.service.container_port as i32)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
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
        .set_tags(Some(ctx.sdk_tags(Key::TaskDefinition, &family)))
        .send()
        .await
        .ctx("register task definition", &family)?;
    out.task_definition()
        .cloned()
        .ok_or_else(|| StackError::Failed { resource: family, message: "register returned nothing".into() })
}

// ---------------------------------------------------------------- service

pub struct Service {
    pub azs: u8,
    pub nats: u8,
}

/// The service and what `status` needs to judge it.
pub struct ServiceLive {
    service: ServiceObject,
    healthy_targets: u32,
}

/// The stack's service as ECS describes it, whatever its status.
async fn describe_service(ctx: &Ctx) -> Result<Option<ServiceObject>, StackError> {
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

fn is_live(service: &ServiceObject) -> bool {
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
        let mut diff = Diff::new();
        diff.field(
            "service.desired_count",
            &live.service.desired_count().to_string(),
            &ctx.config.service.desired_count.to_string(),
        )
        .field(
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
                "service.desired_count" => update = update.desired_count(ctx.config.service.desired_count as i32),
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

/// `arn:...:task-definition/app-server:7` -> `app-server:7`.
fn revision(arn: &str) -> &str {
    arn.rsplit_once('/').map_or(arn, |(_, r)| r)
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

/// Wait until the primary deployment completed, every task runs and every target is healthy.
/// A deployment the circuit breaker rolled back is a failure, even though the service is stable.
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
        let name = service_name(ctx);
        let wanted_definition = ctx.need(Key::TaskDefinition, self.key())?;
        let target_group = ctx.need(Key::TargetGroup, self.key())?;
        wait::until(line, &name, "run every task with healthy targets", budget::SERVICE, || async {
            let Some(view) = service_view(ctx).await? else {
                return Err(StackError::Failed { resource: name.clone(), message: "disappeared".into() });
            };
            if view.rollout.as_deref() == Some("FAILED") || view.primary_task_definition != wanted_definition {
                return Err(StackError::Failed {
                    resource: name.clone(),
                    message: format!(
                        "deployment failed and was rolled back by the circuit breaker: {}",
                        view.rollout_reason.as_deref().unwrap_or("no reason given")
                    ),
                });
            }
            let (healthy, _) = target_health(ctx, &target_group).await?;
            let desired = view.desired.max(0) as u32;
            let completed = view.rollout.as_deref().is_none_or(|r| r == "COMPLETED") && view.deployments <= 1;
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
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definition_changes_read_old_to_new() {
        let have = Shape {
            image: "nginx:latest".into(),
            cpu: "256".into(),
            memory: "512".into(),
            port: "80".into(),
            environment: "{A=1}".into(),
            execution_role: "r1".into(),
            task_role: "r2".into(),
            log_group: "/ecs/s".into(),
        };
        let want = Shape { image: "nginx:1.27".into(), environment: "{A=2}".into(), ..have.clone() };
        let text: Vec<String> = have.diff(&want).iter().map(|c| c.to_string()).collect();
        assert_eq!(text, ["service.image: nginx:latest → nginx:1.27", "service.environment: {A=1} → {A=2}"]);
        assert!(have.diff(&have.clone()).is_empty());
    }

    #[test]
    fn families_and_revisions_are_read_from_arns() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/app-server:7";
        assert_eq!(family_of(arn), Some("app-server"));
        assert_eq!(revision(arn), "app-server:7");
        assert_eq!(family_of("arn:aws:ecs:us-east-1:1:task-definition/app-server-x:1"), Some("app-server-x"));
    }
}
