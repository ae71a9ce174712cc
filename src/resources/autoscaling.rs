//! Application Auto Scaling of the service: the scalable target (the service's desired count,
//! between `autoscaling.min_count` and `max_count`) and one target-tracking policy per metric the
//! config names. The autoscaler owns the desired count inside that range; `cluster::Service` only
//! brings it back when it is outside.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ScalableTarget as Target, ScalingPolicy,
    ServiceNamespace, SuspendedState, TargetTrackingScalingPolicyConfiguration,
};
use futures::future::BoxFuture;

use crate::access::{self, arn, global_arn, Condition, Permission, Verb};
use crate::aws::Clients;
use crate::bill::{items, Charge, Quantity, Unit};
use crate::config::{AutoscalingConfig, Config};
use crate::error::{found, ignore_not_found, AwsContext, StackError};
use crate::model::{
    after, before, made_for, tags::Seen, Attr, Changed, Dep, Diff, Edge, Field, Key, Kind, Managed, Nodes, Outcome,
    Record, Removal, Scope, Shape, Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::cluster::{stack_cluster, CLUSTER};
use crate::resources::load_balancer::{LISTENER, LOAD_BALANCER, TARGET_GROUP};
use crate::resources::service::status::ScalingRange;
use crate::resources::service::{service_name, SERVICE};
use crate::resources::tags::TagPairs;
use crate::wait::{self, budget, Poll};

/// The service registered with Application Auto Scaling (ecs:service:DesiredCount).
pub const SCALABLE_TARGET: Key = Key::new("scalable-target", Kind::new("application-autoscaling:scalable-target"));
const SCALING_POLICY: Kind = Kind::new("application-autoscaling:scaling-policy");
/// Target tracking on the service's average CPU.
pub const CPU_POLICY: Key = Key::new("scaling-policy-cpu", SCALING_POLICY);
/// Target tracking on the load balancer's requests per target.
pub const REQUESTS_POLICY: Key = Key::new("scaling-policy-requests", SCALING_POLICY);

const RESOURCE_ID: Attr = Attr::new(SCALABLE_TARGET, "resource_id");
pub const MIN_COUNT: Attr = Attr::new(SCALABLE_TARGET, "min_count");
pub const MAX_COUNT: Attr = Attr::new(SCALABLE_TARGET, "max_count");

/// The scalable target and its policies, with `[autoscaling]`, or while the state records them (or
/// they may be found). Without either, a `down` that may meet a target no state recorded (a run
/// killed right after registering it) looks for it.
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    let config = shape.config().autoscaling.as_ref();
    let everything = shape.discovering_all();
    if config.is_none() && !everything && !shape.holds_any(&[SCALABLE_TARGET, CPU_POLICY, REQUESTS_POLICY]) {
        if shape.probes() && shape.records(SERVICE) {
            nodes.probe(ScalableTarget { policies: vec![] });
        }
        return;
    }
    let mut policies = vec![Policy::Cpu];
    if config.is_some_and(|a| a.requests_per_target.is_some()) || everything || shape.holds(REQUESTS_POLICY) {
        policies.push(Policy::Requests);
    }
    let keys = policies.iter().map(Managed::key).collect();
    nodes.managed(ScalableTarget { policies: keys });
    for policy in policies {
        nodes.managed(policy);
    }
}

pub const NAMESPACE: ServiceNamespace = ServiceNamespace::Ecs;
pub const DIMENSION: ScalableDimension = ScalableDimension::EcsServiceDesiredCount;

/// `service/<cluster>/<service>`: the service as Application Auto Scaling names it.
pub fn resource_id(ctx: &Scope<'_>) -> String {
    format!("service/{}/{}", stack_cluster(ctx), service_name(ctx.stack()))
}

/// The range Application Auto Scaling keeps the service's desired count in, as recorded when its
/// target was found (`found` says whether a live check found a resource).
pub fn range(ctx: &Scope<'_>, found: &dyn Fn(Key) -> bool) -> Option<ScalingRange> {
    if !found(SCALABLE_TARGET) {
        return None;
    }
    let bound = |attr| ctx.attr(attr)?.parse().ok();
    Some(ScalingRange { min: bound(MIN_COUNT)?, max: bound(MAX_COUNT)? })
}

/// The stack of a service's resource ID, `service/<stack>-cluster/<stack>-service`.
pub fn stack_of(resource_id: &str) -> Option<String> {
    let (_, service) = resource_id.strip_prefix("service/")?.split_once('/')?;
    made_for(service, service_name)
}

/// Every scalable target of an ECS service (registered by anyone), named for the stack of its
/// service.
fn sweep_targets(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let call = c.autoscaling.describe_scalable_targets().service_namespace(NAMESPACE);
        let all = call.into_paginator().items().send().try_collect().await.ctx("describe", "scalable targets")?;
        Ok(all
            .iter()
            .filter_map(|t| {
                let sighting = Sighting::new(SCALABLE_TARGET.kind(), t.resource_id());
                let named_for = stack_of(t.resource_id())?;
                Some(Sighting { named_for: Some(named_for), resource: Some(SCALABLE_TARGET.to_string()), ..sighting })
            })
            .collect())
    })
}

/// Every scaling policy of an ECS service, named for the stack of its service.
fn sweep_policies(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let call = c.autoscaling.describe_scaling_policies().service_namespace(NAMESPACE);
        let all = call.into_paginator().items().send().try_collect().await.ctx("describe", "scaling policies")?;
        Ok(all
            .iter()
            .filter_map(|p| {
                let stack = stack_of(p.resource_id())?;
                let key = [Policy::Cpu, Policy::Requests]
                    .into_iter()
                    .find(|policy| p.policy_name() == format!("{stack}-{}", policy.suffix()))
                    .map(|policy| policy.key().to_string());
                let sighting = Sighting::new(SCALING_POLICY, p.policy_name());
                Some(Sighting { named_for: Some(stack), resource: key, ..sighting })
            })
            .collect())
    })
}

/// `up` creates these only from a config with `[autoscaling]`.
fn required<'a>(ctx: &Scope<'a>, key: Key) -> Result<&'a AutoscalingConfig, StackError> {
    ctx.config.autoscaling.as_ref().ok_or_else(|| StackError::Failed {
        resource: key.to_string(),
        message: "cannot be created without [autoscaling] in the config".into(),
    })
}

// ---------------------------------------------------------------- scalable target

/// The service's desired count, registered with Application Auto Scaling.
pub struct ScalableTarget {
    /// The policies in the graph: each goes before its target.
    pub policies: Vec<Key>,
}

pub struct TargetLive {
    arn: String,
    resource_id: String,
    min: i32,
    max: i32,
    /// Which scaling activities someone suspended (`in`, `out`, `scheduled`).
    suspended: Vec<&'static str>,
}

impl TargetLive {
    fn of(target: &Target) -> TargetLive {
        let state = target.suspended_state();
        let on = |f: fn(&SuspendedState) -> Option<bool>| state.and_then(f).unwrap_or(false);
        let suspended = [
            (on(SuspendedState::dynamic_scaling_in_suspended), "in"),
            (on(SuspendedState::dynamic_scaling_out_suspended), "out"),
            (on(SuspendedState::scheduled_scaling_suspended), "scheduled"),
        ]
        .into_iter()
        .filter_map(|(set, what)| set.then_some(what))
        .collect();
        TargetLive {
            arn: target.scalable_target_arn().unwrap_or_default().to_string(),
            resource_id: target.resource_id().to_string(),
            min: target.min_capacity(),
            max: target.max_capacity(),
            suspended,
        }
    }

    fn suspended(&self) -> String {
        if self.suspended.is_empty() {
            "none".into()
        } else {
            self.suspended.join(", ")
        }
    }
}

/// The registered target of the stack's service, whoever registered it.
async fn describe_target(ctx: &Scope<'_>, resource_id: &str) -> Result<Option<Target>, StackError> {
    let out = ctx
        .aws
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(NAMESPACE)
        .resource_ids(resource_id)
        .scalable_dimension(DIMENSION)
        .send()
        .await
        .ctx("describe the scalable target of", resource_id)?;
    // The filter is AWS's: checked again here.
    Ok(out
        .scalable_targets()
        .iter()
        .find(|t| {
            t.resource_id() == resource_id
                && t.scalable_dimension() == &DIMENSION
                && t.service_namespace() == &NAMESPACE
        })
        .cloned())
}

/// Its tags, or `None` when AWS no longer knows the ARN.
async fn target_tags(ctx: &Scope<'_>, arn: &str) -> Result<Option<HashMap<String, String>>, StackError> {
    let out = ctx.aws.autoscaling.list_tags_for_resource().resource_arn(arn).send().await;
    Ok(found(out.ctx("list the tags of", arn))?.map(|o| o.tags().cloned().unwrap_or_default()))
}

fn check_tags(ctx: &Scope<'_>, live: &TargetLive, tags: Option<HashMap<String, String>>) -> Result<(), StackError> {
    let what = format!("{} of {}", SCALABLE_TARGET.kind(), live.resource_id);
    // Targets registered before ARNs existed (2023) cannot carry tags: not registered by this tool.
    if live.arn.is_empty() {
        return Err(ctx.not_ours(what, "no ARN, so no tags".into()));
    }
    let tags = tags.unwrap_or_default();
    ctx.owned(SCALABLE_TARGET, what, tags.pairs())
}

/// Register (or update) the target: the range, and scaling resumed if someone suspended it. Just
/// after CreateService, Application Auto Scaling may not see the service yet; the first
/// registration in an account also creates its service-linked role, which takes a moment.
async fn register(
    ctx: &Scope<'_>,
    line: &Line,
    want: &AutoscalingConfig,
    tags: Option<HashMap<String, String>>,
) -> Result<String, StackError> {
    let resource_id = resource_id(ctx);
    let resumed = SuspendedState::builder()
        .dynamic_scaling_in_suspended(false)
        .dynamic_scaling_out_suspended(false)
        .scheduled_scaling_suspended(false)
        .build();
    let not_yet = |e: &StackError| {
        e.has_code(&["ValidationException"])
            && e.message()
                .is_some_and(|m| m.contains("ECS service doesn't exist") || m.contains("Unable to assume IAM role"))
    };
    let out = wait::retry_while(line, &resource_id, budget::IAM_PROPAGATION, not_yet, || async {
        ctx.aws
            .autoscaling
            .register_scalable_target()
            .service_namespace(NAMESPACE)
            .resource_id(&resource_id)
            .scalable_dimension(DIMENSION)
            .min_capacity(want.min_count as i32)
            .max_capacity(want.max_count as i32)
            .suspended_state(resumed.clone())
            // Tags only when it is created: AWS ignores them on an update.
            .set_tags(tags.clone())
            .send()
            .await
            .ctx("register the scalable target", &resource_id)
    })
    .await?;
    Ok(out.scalable_target_arn().unwrap_or_default().to_string())
}

/// What the scalable target can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetField {
    MinCount,
    MaxCount,
    Suspended,
    /// The config no longer has `[autoscaling]`.
    Removed,
}

impl Field for TargetField {
    fn label(&self) -> String {
        match self {
            TargetField::MinCount => "autoscaling.min_count",
            TargetField::MaxCount => "autoscaling.max_count",
            TargetField::Suspended => "suspended scaling",
            TargetField::Removed => "[autoscaling]",
        }
        .into()
    }
}

/// Removed from the config: deleted before the up pass, not after it, since while the service is
/// registered with Application Auto Scaling the autoscaler moves the desired count that the up
/// pass puts back to `service.desired_count`.
fn removed_first(_config: &Config) -> Removal {
    Removal::BeforeUp
}

#[async_trait]
impl Managed for ScalableTarget {
    type Live = TargetLive;
    type Field = TargetField;

    async fn tags(&self, ctx: &Scope<'_>, live: &TargetLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        if let Some(seen) = ctx.run::<Seen>().get(&live.arn) {
            return Ok(Some(seen));
        }
        let tags = if live.arn.is_empty() { None } else { target_tags(ctx, &live.arn).await? };
        Ok(tags.map(|t| t.into_iter().collect()))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &TargetLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        let arn = &live.arn;
        if !put.is_empty() {
            let call =
                ctx.aws.autoscaling.tag_resource().resource_arn(arn).set_tags(Some(put.iter().cloned().collect()));
            call.send().await.ctx("tag", arn)?;
        }
        if !remove.is_empty() {
            let call = ctx.aws.autoscaling.untag_resource().resource_arn(arn).set_tag_keys(Some(remove.to_vec()));
            call.send().await.ctx("untag", arn)?;
        }
        Ok(())
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_targets)
    }

    fn permissions(&self) -> Vec<Permission> {
        let target = arn("application-autoscaling", "scalable-target/*");
        vec![
            Permission::find("application-autoscaling:DescribeScalableTargets"),
            Permission::find("application-autoscaling:ListTagsForResource").on(target.clone()),
            Permission::create("application-autoscaling:RegisterScalableTarget").on(target.clone()).tagging(),
            access::tags_with("application-autoscaling:TagResource", target.clone()),
            access::retagging("application-autoscaling:TagResource", target.clone()),
            access::retagging("application-autoscaling:UntagResource", target.clone()),
            // The first registration of an account makes its service-linked role, through which
            // Application Auto Scaling reads and updates the service.
            Permission::create("iam:CreateServiceLinkedRole")
                .on(global_arn("iam", true, "role/aws-service-role/ecs.application-autoscaling.amazonaws.com/*"))
                .when(Condition::ServiceLinked("ecs.application-autoscaling.amazonaws.com"))
                .implied(),
            Permission::update("application-autoscaling:RegisterScalableTarget").on(target.clone()).tagged(),
            Permission::delete("application-autoscaling:DeregisterScalableTarget").on(target).tagged(),
            Permission::delete("application-autoscaling:DescribeScalableTargets"),
        ]
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        SCALABLE_TARGET
    }

    fn needs(&self) -> Vec<Dep> {
        vec![SERVICE.into()]
    }

    fn reads(&self) -> Vec<Dep> {
        vec![CLUSTER.into()]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![before(
            SERVICE,
            "deregistered first: the autoscaler would scale the service up again while it drains, and a \
             target outlives its deleted service in Application Auto Scaling",
        )]
    }

    fn removal(&self, config: &Config) -> Removal {
        removed_first(config)
    }

    fn teardown_after(&self) -> Vec<Edge> {
        self.policies
            .iter()
            .map(|&policy| {
                after(
                    policy,
                    "a policy belongs to its target: DeregisterScalableTarget deletes it too, so it is deleted \
                     (and forgotten) first",
                )
            })
            .collect()
    }

    /// By the service's resource ID (there is at most one target per service and dimension), then
    /// this stack's tag on its ARN.
    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<TargetLive>, StackError> {
        let resource_id = resource_id(ctx);
        let recorded = ctx.id(SCALABLE_TARGET);
        // Recorded: describe and tags in one round. Otherwise the tags of what the describe finds.
        let (target, tags) = match &recorded {
            Some(arn) => {
                let (target, tags) = tokio::join!(describe_target(ctx, &resource_id), target_tags(ctx, arn));
                (target?, Some(tags))
            }
            None => (describe_target(ctx, &resource_id).await?, None),
        };
        let Some(target) = target else { return Ok(None) };
        let live = TargetLive::of(&target);
        let tags = match tags {
            Some(tags) if recorded.as_deref() == Some(live.arn.as_str()) => tags?,
            _ if live.arn.is_empty() => None,
            _ => target_tags(ctx, &live.arn).await?,
        };
        if let Some(tags) = &tags {
            ctx.run::<Seen>().note(&live.arn, tags.pairs());
        }
        check_tags(ctx, &live, tags)?;
        Ok(Some(live))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &TargetLive) -> Record {
        Record::id(&live.arn)
            .with(RESOURCE_ID, &live.resource_id)
            .with(MIN_COUNT, live.min.to_string())
            .with(MAX_COUNT, live.max.to_string())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &TargetLive) -> Result<Vec<Changed<TargetField>>, StackError> {
        let Some(want) = &ctx.config.autoscaling else {
            let from = format!("min {}, max {}", live.min, live.max);
            return Ok(vec![Changed::new(TargetField::Removed, from, "absent (`up` deregisters the service)", false)]);
        };
        let mut diff = Diff::new();
        // A range a scheduled entry set (0..=0 at night) is the schedule's doing, not drift.
        let scheduled = live.min >= 0 && live.max >= 0 && want.is_configured_range(live.min as u32, live.max as u32);
        if !scheduled {
            diff.field(TargetField::MinCount, &live.min.to_string(), &want.min_count.to_string()).field(
                TargetField::MaxCount,
                &live.max.to_string(),
                &want.max_count.to_string(),
            );
        }
        diff.field(TargetField::Suspended, live.suspended().as_str(), "none");
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<TargetLive, StackError> {
        let want = required(ctx, SCALABLE_TARGET)?;
        ctx.need(SERVICE)?;
        let tags = ctx.tags(&ctx.name("service-scaling")).into_iter().collect();
        let arn = register(ctx, line, want, Some(tags)).await?;
        Ok(TargetLive {
            arn,
            resource_id: resource_id(ctx),
            min: want.min_count as i32,
            max: want.max_count as i32,
            suspended: vec![],
        })
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        _live: &TargetLive,
        _changes: &[Changed<TargetField>],
    ) -> Result<Option<TargetLive>, StackError> {
        register(ctx, line, required(ctx, SCALABLE_TARGET)?, None).await?;
        Ok(None)
    }

    /// Deregister (its policies and their alarms go with it), and wait until AWS no longer lists
    /// it, so that nothing of the stack is left in Application Auto Scaling.
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: TargetLive) -> Result<Outcome, StackError> {
        let resource_id = &live.resource_id;
        ignore_not_found(
            ctx.aws
                .autoscaling
                .deregister_scalable_target()
                .service_namespace(NAMESPACE)
                .resource_id(resource_id)
                .scalable_dimension(DIMENSION)
                .send()
                .await
                .ctx("deregister the scalable target", resource_id)
                .map(drop),
        )?;
        wait::until(line, resource_id, "be deregistered", budget::PROPAGATION, || async {
            Ok(match describe_target(ctx, resource_id).await? {
                Some(_) => Poll::Pending("deregistering".into()),
                None => Poll::Ready(()),
            })
        })
        .await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- scaling policies

/// A target-tracking policy on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// ECSServiceAverageCPUUtilization at `autoscaling.cpu_target_percent`.
    Cpu,
    /// ALBRequestCountPerTarget of the stack's target group at `autoscaling.requests_per_target`.
    Requests,
}

/// A policy as AWS has it, in comparable words.
pub struct PolicyLive {
    arn: String,
    shape: PolicyShape,
}

#[derive(Debug, Clone, PartialEq)]
struct PolicyShape {
    policy_type: String,
    metric: String,
    /// `app/<lb>/<id>/targetgroup/<tg>/<id>` for the requests metric, else "none".
    label: String,
    target: String,
    scale_in_cooldown: String,
    scale_out_cooldown: String,
    scale_in: &'static str,
}

/// A target value as a user writes it: `60`, not `60.0`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        value.to_string()
    }
}

/// `arn:...:loadbalancer/app/<name>/<id>` and `arn:...:targetgroup/<name>/<id>` ->
/// `app/<name>/<id>/targetgroup/<name>/<id>`: how CloudWatch names the pair's request count.
pub fn resource_label(lb_arn: &str, tg_arn: &str) -> Option<String> {
    let lb = lb_arn.split_once(":loadbalancer/")?.1;
    let tg = tg_arn.rsplit_once(':')?.1;
    (lb.starts_with("app/") && tg.starts_with("targetgroup/")).then(|| format!("{lb}/{tg}"))
}

impl Policy {
    fn suffix(self) -> &'static str {
        match self {
            Policy::Cpu => "cpu",
            Policy::Requests => "requests",
        }
    }

    /// Its recorded name, metric and target value.
    fn attrs(self) -> (Attr, Attr, Attr) {
        let key = self.key();
        (Attr::new(key, "name"), Attr::new(key, "metric"), Attr::new(key, "target"))
    }

    fn name(self, ctx: &Scope<'_>) -> String {
        ctx.name(self.suffix())
    }

    fn metric(self) -> MetricType {
        match self {
            Policy::Cpu => MetricType::EcsServiceAverageCpuUtilization,
            Policy::Requests => MetricType::AlbRequestCountPerTarget,
        }
    }

    fn target_config_key(self) -> &'static str {
        match self {
            Policy::Cpu => "autoscaling.cpu_target_percent",
            Policy::Requests => "autoscaling.requests_per_target",
        }
    }

    /// The value the policy holds its metric at, if the config asks for this policy.
    fn target_value(self, scaling: &AutoscalingConfig) -> Option<u32> {
        match self {
            Policy::Cpu => Some(scaling.cpu_target_percent),
            Policy::Requests => scaling.requests_per_target,
        }
    }

    /// What the config asks for; `None` when it no longer asks for this policy.
    fn wanted(self, ctx: &Scope<'_>) -> Result<Option<PolicyShape>, StackError> {
        let Some(scaling) = &ctx.config.autoscaling else { return Ok(None) };
        let Some(target) = self.target_value(scaling) else { return Ok(None) };
        let label = match self {
            Policy::Cpu => "none".to_string(),
            Policy::Requests => {
                let lb = ctx.need(LOAD_BALANCER)?;
                let tg = ctx.need(TARGET_GROUP)?;
                resource_label(&lb, &tg).ok_or_else(|| StackError::Failed {
                    resource: self.key().to_string(),
                    message: format!("cannot name the request count of load balancer {lb} and target group {tg}"),
                })?
            }
        };
        Ok(Some(PolicyShape {
            policy_type: PolicyType::TargetTrackingScaling.as_str().to_string(),
            metric: self.metric().as_str().to_string(),
            label,
            target: target.to_string(),
            scale_in_cooldown: scaling.scale_in_cooldown_seconds.to_string(),
            scale_out_cooldown: scaling.scale_out_cooldown_seconds.to_string(),
            scale_in: "enabled",
        }))
    }

    /// The config no longer asks for it.
    fn unwanted(self, ctx: &Scope<'_>) -> StackError {
        StackError::Failed {
            resource: self.key().to_string(),
            message: match ctx.config.autoscaling {
                None => "the config has no [autoscaling]".into(),
                Some(_) => "the config has no autoscaling.requests_per_target".into(),
            },
        }
    }

    fn shape_of(policy: &ScalingPolicy) -> PolicyShape {
        let tracking = policy.target_tracking_scaling_policy_configuration();
        let spec = tracking.and_then(|t| t.predefined_metric_specification());
        let seconds = |v: Option<i32>| v.map_or("none".to_string(), |v| v.to_string());
        PolicyShape {
            policy_type: policy.policy_type().as_str().to_string(),
            metric: spec
                .map_or_else(|| "custom or none".to_string(), |s| s.predefined_metric_type().as_str().to_string()),
            label: spec.and_then(|s| s.resource_label()).unwrap_or("none").to_string(),
            target: tracking.map_or("none".to_string(), |t| number(t.target_value())),
            scale_in_cooldown: seconds(tracking.and_then(|t| t.scale_in_cooldown())),
            scale_out_cooldown: seconds(tracking.and_then(|t| t.scale_out_cooldown())),
            scale_in: if tracking.and_then(|t| t.disable_scale_in()).unwrap_or(false) { "disabled" } else { "enabled" },
        }
    }

    /// Create or replace the policy (PutScalingPolicy is both). Right after its target is
    /// registered AWS may not see the target yet, and the alarms it creates for the policy need the
    /// service-linked role's permissions to have propagated.
    async fn put(self, ctx: &Scope<'_>, line: &Line, want: &PolicyShape) -> Result<String, StackError> {
        let scaling = required(ctx, self.key())?;
        let name = self.name(ctx);
        let resource_id = resource_id(ctx);
        let mut metric = PredefinedMetricSpecification::builder().predefined_metric_type(self.metric());
        if want.label != "none" {
            metric = metric.resource_label(&want.label);
        }
        let target = self.target_value(scaling).ok_or_else(|| self.unwanted(ctx))?;
        let tracking = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(target as f64)
            .predefined_metric_specification(metric.build().expect("the metric type is set"))
            .scale_in_cooldown(scaling.scale_in_cooldown_seconds as i32)
            .scale_out_cooldown(scaling.scale_out_cooldown_seconds as i32)
            .disable_scale_in(false)
            .build()
            .expect("the target value is set");
        let not_yet = |e: &StackError| {
            e.has_code(&["ObjectNotFoundException"])
                || (e.has_code(&["FailedResourceAccessException"])
                    && e.message().is_some_and(|m| {
                        m.contains("is not authorized") || m.contains("Rate exceeded") || m.contains("token included")
                    }))
        };
        let out = wait::retry_while(line, &name, budget::IAM_PROPAGATION, not_yet, || async {
            ctx.aws
                .autoscaling
                .put_scaling_policy()
                .policy_name(&name)
                .service_namespace(NAMESPACE)
                .resource_id(&resource_id)
                .scalable_dimension(DIMENSION)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(tracking.clone())
                .send()
                .await
                .ctx("put scaling policy", &name)
        })
        .await?;
        Ok(out.policy_arn().to_string())
    }
}

/// What a policy can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyField {
    PolicyType,
    Metric,
    Label,
    /// The config key of its target value.
    Target(&'static str),
    ScaleInCooldown,
    ScaleOutCooldown,
    ScaleIn,
    /// The config no longer asks for it: `[autoscaling]` or its target key is gone.
    Removed(&'static str),
}

impl Field for PolicyField {
    fn label(&self) -> String {
        match self {
            PolicyField::PolicyType => "policy type",
            PolicyField::Metric => "metric",
            PolicyField::Label => "load balancer and target group",
            PolicyField::Target(key) | PolicyField::Removed(key) => key,
            PolicyField::ScaleInCooldown => "autoscaling.scale_in_cooldown_seconds",
            PolicyField::ScaleOutCooldown => "autoscaling.scale_out_cooldown_seconds",
            PolicyField::ScaleIn => "scale-in",
        }
        .into()
    }
}

#[async_trait]
impl Managed for Policy {
    type Live = PolicyLive;
    type Field = PolicyField;

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_policies)
    }

    fn permissions(&self) -> Vec<Permission> {
        let target = arn("application-autoscaling", "scalable-target/*");
        // Target tracking makes (and deletes) its CloudWatch alarms with the caller's permissions.
        let alarms = arn("cloudwatch", "alarm:TargetTracking-*");
        let mut permissions = vec![Permission::find("application-autoscaling:DescribeScalingPolicies")];
        for verb in [Verb::Create, Verb::Update] {
            permissions
                .push(Permission::new(verb, "application-autoscaling:PutScalingPolicy").on(target.clone()).tagged());
            permissions.push(Permission::new(verb, "cloudwatch:PutMetricAlarm").on(alarms.clone()).implied());
            permissions.push(Permission::new(verb, "cloudwatch:DescribeAlarms").implied());
        }
        permissions.push(Permission::delete("application-autoscaling:DeleteScalingPolicy").on(target).tagged());
        permissions.push(Permission::delete("cloudwatch:DeleteAlarms").on(alarms).implied());
        permissions
    }

    /// The two alarms (high and low) target tracking keeps for the policy.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        let what = format!("CloudWatch alarms of {}", self.key());
        vec![Charge::running(items::CLOUDWATCH_ALARM, Unit::Month, Quantity::fixed(2.0), what)]
    }

    fn key(&self) -> Key {
        match self {
            Policy::Cpu => CPU_POLICY,
            Policy::Requests => REQUESTS_POLICY,
        }
    }

    fn needs(&self) -> Vec<Dep> {
        match self {
            Policy::Cpu => vec![SCALABLE_TARGET.into()],
            // Its metric is the request count of the target group behind the load balancer, which
            // exists only once a listener forwards to it.
            Policy::Requests => {
                vec![SCALABLE_TARGET.into(), LOAD_BALANCER.into(), TARGET_GROUP.into(), LISTENER.into()]
            }
        }
    }

    fn reads(&self) -> Vec<Dep> {
        vec![CLUSTER.into()]
    }

    fn removal(&self, config: &Config) -> Removal {
        removed_first(config)
    }

    /// By name under the stack's scalable target (policies carry no tags: the target's were checked).
    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<PolicyLive>, StackError> {
        if ctx.id(SCALABLE_TARGET).is_none() {
            return Ok(None);
        }
        let name = self.name(ctx);
        let resource_id = resource_id(ctx);
        let mut pages = ctx
            .aws
            .autoscaling
            .describe_scaling_policies()
            .service_namespace(NAMESPACE)
            .resource_id(&resource_id)
            .scalable_dimension(DIMENSION)
            .policy_names(&name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.ctx("describe scaling policy", &name)?;
            // The filters are AWS's (and moto ignores the name): checked again here.
            let policy = page.scaling_policies().iter().find(|p| {
                p.policy_name() == name && p.resource_id() == resource_id && p.scalable_dimension() == &DIMENSION
            });
            if let Some(policy) = policy {
                return Ok(Some(PolicyLive { arn: policy.policy_arn().to_string(), shape: Policy::shape_of(policy) }));
            }
        }
        Ok(None)
    }

    fn record(&self, ctx: &Scope<'_>, live: &PolicyLive) -> Record {
        let (name, metric, target) = self.attrs();
        Record::id(&live.arn)
            .with(name, self.name(ctx))
            .with(metric, &live.shape.metric)
            .with(target, &live.shape.target)
    }

    fn diff(&self, ctx: &Scope<'_>, live: &PolicyLive) -> Result<Vec<Changed<PolicyField>>, StackError> {
        use PolicyField as F;
        let have = &live.shape;
        let Some(want) = self.wanted(ctx)? else {
            let gone = if ctx.config.autoscaling.is_none() { "[autoscaling]" } else { self.target_config_key() };
            let from = format!("{} {}", have.metric, have.target);
            return Ok(vec![Changed::new(F::Removed(gone), from, "absent (`up` removes the policy)", false)]);
        };
        let mut diff = Diff::new();
        diff.field(F::PolicyType, &have.policy_type, &want.policy_type)
            .field(F::Metric, &have.metric, &want.metric)
            .field(F::Label, &have.label, &want.label)
            .field(F::Target(self.target_config_key()), &have.target, &want.target)
            .field(F::ScaleInCooldown, &have.scale_in_cooldown, &want.scale_in_cooldown)
            .field(F::ScaleOutCooldown, &have.scale_out_cooldown, &want.scale_out_cooldown)
            .field(F::ScaleIn, have.scale_in, want.scale_in);
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<PolicyLive, StackError> {
        ctx.need(SCALABLE_TARGET)?;
        let want = self.wanted(ctx)?.ok_or_else(|| self.unwanted(ctx))?;
        let arn = self.put(ctx, line, &want).await?;
        Ok(PolicyLive { arn, shape: want })
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &PolicyLive,
        _changes: &[Changed<PolicyField>],
    ) -> Result<Option<PolicyLive>, StackError> {
        let want = self.wanted(ctx)?.ok_or_else(|| self.unwanted(ctx))?;
        let arn = self.put(ctx, line, &want).await?;
        Ok((arn != live.arn).then_some(PolicyLive { arn, shape: want }))
    }

    /// Delete it (and the alarms AWS made for it).
    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, _live: PolicyLive) -> Result<Outcome, StackError> {
        let name = self.name(ctx);
        let resource_id = resource_id(ctx);
        ignore_not_found(
            ctx.aws
                .autoscaling
                .delete_scaling_policy()
                .policy_name(&name)
                .service_namespace(NAMESPACE)
                .resource_id(&resource_id)
                .scalable_dimension(DIMENSION)
                .send()
                .await
                .ctx("delete scaling policy", &name)
                .map(drop),
        )?;
        Ok(Outcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_metric_names_the_load_balancer_and_its_target_group() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/app-alb/50dc6c495c0c9188";
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app-tg/943f017f100becff";
        assert_eq!(
            resource_label(lb, tg).as_deref(),
            Some("app/app-alb/50dc6c495c0c9188/targetgroup/app-tg/943f017f100becff")
        );
        assert_eq!(
            resource_label("arn:x:loadbalancer/net/n/1", tg),
            None,
            "network load balancers have no such metric"
        );
        assert_eq!(resource_label("nonsense", tg), None);
    }

    #[test]
    fn target_values_read_as_written() {
        assert_eq!(number(60.0), "60");
        assert_eq!(number(1000.0), "1000");
        assert_eq!(number(62.5), "62.5");
    }

    #[test]
    fn a_stack_owns_only_its_own_target() {
        let app = crate::context::tests_support::ctx_named("app");
        let live = |arn: &str| TargetLive {
            arn: arn.into(),
            resource_id: "service/app-cluster/app-service".into(),
            min: 1,
            max: 2,
            suspended: vec![],
        };
        let tags = |stack: &str| {
            Some(HashMap::from([
                ("fargate-stack:stack".to_string(), stack.to_string()),
                ("fargate-stack:resource".to_string(), "scalable-target".to_string()),
            ]))
        };
        assert!(check_tags(&app.scope(), &live("arn:t"), tags("app")).is_ok());
        assert!(matches!(check_tags(&app.scope(), &live("arn:t"), tags("app-2")), Err(StackError::NotOurs { .. })));
        assert!(check_tags(&app.scope(), &live("arn:t"), None).is_err(), "untagged: registered by someone else");
        assert!(check_tags(&app.scope(), &live(""), tags("app")).is_err(), "no ARN: registered before tags existed");
        assert_eq!(resource_id(&app.scope()), "service/app-cluster/app-service");
    }
}
