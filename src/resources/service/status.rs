//! What the service is doing, as `status`, the rollout wait and `deploy` show it: its deployments,
//! its events, and why tasks stopped.

use aws_sdk_ecs::types::Service as ServiceObject;

use serde::Serialize;

use std::collections::BTreeMap;

use super::{describe_service, is_live, live_strategy, service_name, SERVICE};
use crate::error::{found, AwsContext, StackError};
use crate::model::Scope;
use crate::resources::cluster::stack_cluster;
use crate::resources::load_balancer::{target_health, TARGET_GROUP};
use crate::resources::task_definition::image::{self, Choice};
use crate::resources::task_definition::{definition, image_of, revision, TASK_DEFINITION};

/// One deployment of the service: PRIMARY is the newest; ACTIVE ones still run older tasks.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    /// `family:revision`.
    pub task_definition: String,
    #[serde(skip)]
    pub task_definition_arn: String,
    /// The app container's image (filled in by `status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed: i32,
    /// IN_PROGRESS, COMPLETED or FAILED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// A service event, as ECS words it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventView {
    pub at: String,
    pub message: String,
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
    /// PRIMARY first, then the ACTIVE ones still running older tasks.
    pub deployments: Vec<DeploymentView>,
    /// Newest first, as ECS returns them (at most 100).
    pub events: Vec<EventView>,
    /// How the tasks reach out: see [`egress`].
    pub egress: &'static str,
    /// The deployment strategy (`ROLLING`, `CANARY`, `LINEAR`, `BLUE_GREEN`), when ECS reports one.
    #[serde(skip)]
    pub strategy: Option<String>,
    /// The production listener rule ECS shifts traffic on (non-rolling strategies).
    #[serde(skip)]
    pub production_rule: Option<String>,
    /// The target groups its load balancer entry names: the primary and (non-rolling strategies)
    /// the alternate one; after a switch the alternate one serves (ECS may swap the two).
    #[serde(skip)]
    pub target_groups: Vec<String>,
    /// The alarms its deployments watch.
    #[serde(skip)]
    pub alarms: Vec<String>,
}

/// How the running service's tasks reach the internet, as `status` shows it (`network.nat`).
pub fn egress(s: &ServiceObject) -> &'static str {
    let vpc = s.network_configuration().and_then(|n| n.awsvpc_configuration());
    if vpc.and_then(|v| v.assign_public_ip()) == Some(&aws_sdk_ecs::types::AssignPublicIp::Enabled) {
        "public IP per task in the public subnets (nat = none)"
    } else {
        "private subnets, out through NAT"
    }
}

/// RFC 3339 in UTC to the millisecond, as `logs` prints times.
fn timestamp(t: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    let t = t?;
    let utc = chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())?;
    Some(utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

impl ServiceView {
    fn of(s: &ServiceObject) -> ServiceView {
        let mut deployments: Vec<DeploymentView> = s
            .deployments()
            .iter()
            .map(|d| DeploymentView {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                task_definition: revision(d.task_definition().unwrap_or_default()).to_string(),
                task_definition_arn: d.task_definition().unwrap_or_default().to_string(),
                image: None,
                desired: d.desired_count(),
                running: d.running_count(),
                pending: d.pending_count(),
                failed: d.failed_tasks(),
                rollout: d.rollout_state().map(|r| r.as_str().to_string()),
                rollout_reason: d.rollout_state_reason().map(str::to_string),
                created_at: timestamp(d.created_at()),
            })
            .collect();
        // PRIMARY first, then the others newest first.
        deployments.sort_by(|a, b| {
            (b.status == "PRIMARY").cmp(&(a.status == "PRIMARY")).then(b.created_at.cmp(&a.created_at))
        });
        let primary = deployments.iter().find(|d| d.status == "PRIMARY");
        let advanced = s.load_balancers().first().and_then(|l| l.advanced_configuration());
        ServiceView {
            status: s.status().unwrap_or_default().to_string(),
            desired: s.desired_count(),
            running: s.running_count(),
            pending: s.pending_count(),
            rollout: primary.and_then(|d| d.rollout.clone()),
            rollout_reason: primary.and_then(|d| d.rollout_reason.clone()),
            primary_task_definition: primary
                .map(|d| d.task_definition_arn.clone())
                .filter(|t| !t.is_empty())
                .or(s.task_definition().map(str::to_string))
                .unwrap_or_default(),
            task_definition: s.task_definition().unwrap_or_default().to_string(),
            events: s
                .events()
                .iter()
                .map(|e| EventView {
                    at: timestamp(e.created_at()).unwrap_or_default(),
                    message: e.message().unwrap_or_default().to_string(),
                })
                .collect(),
            deployments,
            egress: egress(s),
            strategy: s.deployment_configuration().and_then(|d| d.strategy()).map(|d| d.as_str().to_string()),
            production_rule: advanced.and_then(|a| a.production_listener_rule()).map(str::to_string),
            target_groups: live_target_groups(s),
            alarms: s
                .deployment_configuration()
                .and_then(|d| d.alarms())
                .filter(|a| a.enable())
                .map(|a| a.alarm_names().to_vec())
                .unwrap_or_default(),
        }
    }

    /// The newest `n` events, oldest first (they read as a story that ends now).
    pub fn last_events(&self, n: usize) -> Vec<EventView> {
        let mut events: Vec<EventView> = self.events.iter().take(n).cloned().collect();
        events.reverse();
        events
    }
}

/// The target groups the service's load balancer entry names: its target group and (non-rolling
/// strategies) the alternate one, each once.
pub fn live_target_groups(s: &ServiceObject) -> Vec<String> {
    let Some(lb) = s.load_balancers().first() else { return vec![] };
    let alternate = lb.advanced_configuration().and_then(|a| a.alternate_target_group_arn());
    let mut groups: Vec<String> =
        [lb.target_group_arn(), alternate].into_iter().flatten().map(str::to_string).collect();
    groups.dedup();
    groups
}

pub async fn service_view(ctx: &Scope<'_>) -> Result<Option<ServiceView>, StackError> {
    Ok(describe_service(ctx).await?.filter(is_live).map(|s| ServiceView::of(&s)))
}

/// Where the service's tasks run: its capacity provider strategy (or launch type) and, with a
/// strategy, how many running tasks each provider has.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CapacityView {
    pub strategy: String,
    /// Provider -> running (or starting) tasks; empty without a strategy.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, usize>,
}

async fn capacity_view(ctx: &Scope<'_>) -> Result<Option<CapacityView>, StackError> {
    let Some(service) = describe_service(ctx).await?.filter(is_live) else { return Ok(None) };
    let strategy = live_strategy(&service);
    if service.capacity_provider_strategy().is_empty() {
        return Ok(Some(CapacityView { strategy, tasks: BTreeMap::new() }));
    }
    let cluster = stack_cluster(ctx);
    let name = service_name(ctx.stack());
    let listed = ctx.aws.ecs.list_tasks().cluster(&cluster).service_name(&name).into_paginator().items().send();
    let arns: Vec<String> = found(listed.try_collect().await.ctx("list the tasks of", &name))?.unwrap_or_default();
    let mut tasks = BTreeMap::new();
    for chunk in arns.chunks(100) {
        let call = ctx.aws.ecs.describe_tasks().cluster(&cluster).set_tasks(Some(chunk.to_vec()));
        let out = call.send().await.ctx("describe the tasks of", &name)?;
        for t in out.tasks().iter().filter(|t| t.desired_status() == Some("RUNNING")) {
            *tasks.entry(t.capacity_provider_name().unwrap_or("none").to_string()).or_insert(0) += 1;
        }
    }
    Ok(Some(CapacityView { strategy, tasks }))
}

/// The service's recently stopped tasks (ECS keeps them about an hour), newest first: why a task
/// did not start or stopped (CannotPullContainerError, failed health checks...). Tasks the
/// scheduler replaced in a deploy or a scale-in are routine and left out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoppedTask {
    pub task_id: String,
    pub task_definition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    pub reason: String,
}

pub async fn stopped_tasks(ctx: &Scope<'_>, limit: usize) -> Result<Vec<StoppedTask>, StackError> {
    let cluster = stack_cluster(ctx);
    let name = service_name(ctx.stack());
    let listed = found(
        ctx.aws
            .ecs
            .list_tasks()
            .cluster(&cluster)
            .service_name(&name)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
            .max_results(100)
            .send()
            .await
            .ctx("list the stopped tasks of", &name),
    )?;
    let arns: Vec<String> = listed.map(|l| l.task_arns().to_vec()).unwrap_or_default();
    if arns.is_empty() {
        return Ok(vec![]);
    }
    let mut tasks = vec![];
    for chunk in arns.chunks(100) {
        let out = ctx
            .aws
            .ecs
            .describe_tasks()
            .cluster(&cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .ctx("describe the stopped tasks of", &name)?;
        for t in out.tasks() {
            // The task's reason, else its container's (CannotPullContainerError is often there).
            let routine = t.stop_code() == Some(&aws_sdk_ecs::types::TaskStopCode::ServiceSchedulerInitiated)
                && t.stopped_reason().is_some_and(|r| r.starts_with("Scaling activity initiated by"));
            if routine {
                continue;
            }
            let container_reason = t.containers().iter().find_map(|c| c.reason()).map(str::to_string);
            let reason = match (t.stopped_reason(), container_reason) {
                (Some(task), Some(container)) if !task.contains(&container) => format!("{task}: {container}"),
                (Some(task), _) => task.to_string(),
                (None, Some(container)) => container,
                (None, None) => "no reason given".to_string(),
            };
            tasks.push(StoppedTask {
                task_id: t.task_arn().and_then(|a| a.rsplit('/').next()).unwrap_or_default().to_string(),
                task_definition: revision(t.task_definition_arn().unwrap_or_default()).to_string(),
                stopped_at: timestamp(t.stopped_at().or(t.stopping_at())),
                stop_code: t.stop_code().map(|c| c.as_str().to_string()),
                reason,
            });
        }
    }
    tasks.sort_by(|a, b| b.stopped_at.cmp(&a.stopped_at));
    tasks.truncate(limit);
    Ok(tasks)
}

#[derive(Debug, Serialize, Default)]
pub struct ServiceSummary {
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub healthy_targets: u32,
    /// The PRIMARY deployment's rollout state (IN_PROGRESS, COMPLETED, FAILED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// The range Application Auto Scaling keeps `desired` in, when the service is registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<ScalingRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_reason: Option<String>,
    /// The image the PRIMARY deployment runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Which image the stack wants and why (the config's, or one `deploy` shipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_choice: Option<Choice>,
    /// PRIMARY first, then ACTIVE deployments still running older tasks.
    pub deployments: Vec<DeploymentView>,
    /// The last `--events N` service events, oldest first.
    pub events: Vec<EventView>,
    /// The last few stopped tasks (ECS keeps them about an hour) with why they stopped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stopped_tasks: Vec<StoppedTask>,
    /// The capacity provider strategy (or launch type) and the tasks on each provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityView>,
    /// How the tasks reach out (`network.nat`): through NAT, or with a public IP each.
    pub egress: &'static str,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
pub struct ScalingRange {
    pub min: u32,
    pub max: u32,
}

impl ServiceSummary {
    /// What the service is doing, with the last `events` events and up to `stopped` stopped
    /// tasks (none without events); `autoscaling` is the range its desired count is kept in.
    pub async fn of(
        ctx: &Scope<'_>,
        events: usize,
        stopped: usize,
        autoscaling: Option<ScalingRange>,
    ) -> Result<Option<ServiceSummary>, StackError> {
        if ctx.id(SERVICE).is_none() {
            return Ok(None);
        }
        let health = async {
            let Some(arn) = ctx.id(TARGET_GROUP) else { return 0 };
            let mut healthy = target_health(ctx, &arn).await.map(|(h, _)| h).unwrap_or(0);
            // After a blue/green or canary switch the alternate target group serves.
            let live = describe_service(ctx).await.ok().flatten();
            for other in live.iter().flat_map(live_target_groups).filter(|t| *t != arn) {
                healthy += target_health(ctx, &other).await.map(|(h, _)| h).unwrap_or(0);
            }
            healthy
        };
        let stopped = async {
            if events > 0 {
                stopped_tasks(ctx, stopped).await
            } else {
                Ok(vec![])
            }
        };
        let (view, healthy_targets, stopped, capacity) =
            tokio::join!(service_view(ctx), health, stopped, capacity_view(ctx));
        let Some(view) = view? else { return Ok(None) };
        let mut deployments = view.deployments.clone();
        // The image of each deployment's revision (usually one or two revisions).
        let images =
            futures::future::join_all(deployments.iter().map(|d| definition(ctx, &d.task_definition_arn))).await;
        for (d, def) in deployments.iter_mut().zip(images) {
            d.image = def?.map(|def| image_of(&def));
        }
        let image = deployments.iter().find(|d| d.status == "PRIMARY").and_then(|d| d.image.clone());
        let choice = image::wanted(ctx);
        Ok(Some(ServiceSummary {
            desired: view.desired,
            running: view.running,
            pending: view.pending,
            healthy_targets,
            rollout: view.rollout.clone(),
            rollout_reason: view.rollout_reason.clone(),
            image,
            image_choice: ctx.id(TASK_DEFINITION).map(|_| choice),
            events: view.last_events(events),
            deployments,
            stopped_tasks: stopped?,
            capacity: capacity?,
            autoscaling,
            egress: view.egress,
        }))
    }
}
