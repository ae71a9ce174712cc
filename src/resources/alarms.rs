//! The deploy alarms (`[deploy] alarms`): CloudWatch metric alarms on the target group that the
//! ECS service's deployments watch (`deploymentConfiguration.alarms`, rollback on ALARM): the
//! tasks' 5xx rate (metric math: 100 × HTTPCode_Target_5XX_Count / RequestCount), the unhealthy
//! hosts, and with `p99_latency_ms` the p99 of TargetResponseTime. Each is named `<stack>-<what>`,
//! tagged, and changed in place by PutMetricAlarm (which overwrites the whole definition and keeps
//! the state); a replaced target group moves them onto the new one's dimensions. With a strategy
//! that shifts traffic (canary, linear, blue_green) the new revision's tasks serve from the
//! alternate target group, and after a switch it serves everything: each alarm then watches both
//! target groups (metric math over the two; rolling keeps the single target group's definitions).

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, StateValue, Tag,
};
use futures::future::BoxFuture;

use crate::access::{self, arn, Permission, STACK};
use crate::aws::Clients;
use crate::bill::{items, Charge, Quantity, Unit};
use crate::config::Config;
use crate::error::{found, returned, AwsContext, StackError};
use crate::model::tags::Seen;
use crate::model::{
    made_for, Changed, Dep, Diff, Field, Key, Kind, Managed, Nodes, Outcome, Record, Scope, Shape, Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::load_balancer::{LOAD_BALANCER, TARGET_GROUP};
use crate::resources::tags::TagPairs;
use crate::resources::traffic::{alternate_target_group_name, ALTERNATE_TARGET_GROUP};

const ALARM: Kind = Kind::new("cloudwatch:alarm");
pub const ERROR_RATE_ALARM: Key = Key::new("alarm-5xx-rate", ALARM);
pub const UNHEALTHY_HOSTS_ALARM: Key = Key::new("alarm-unhealthy-hosts", ALARM);
pub const LATENCY_ALARM: Key = Key::new("alarm-p99-latency", ALARM);
/// Every alarm a stack can have: what the service's deployments may watch.
pub const ALARMS: [Key; 3] = [ERROR_RATE_ALARM, UNHEALTHY_HOSTS_ALARM, LATENCY_ALARM];

/// The load balancer's metrics, per minute.
const NAMESPACE: &str = "AWS/ApplicationELB";
const PERIOD_SECONDS: i32 = 60;
/// No requests, or no datapoint yet: not a failing deploy.
const MISSING_DATA: &str = "notBreaching";

/// What an alarm watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    ErrorRate,
    UnhealthyHosts,
    Latency,
}

impl Watch {
    const ALL: [Watch; 3] = [Watch::ErrorRate, Watch::UnhealthyHosts, Watch::Latency];

    fn key(self) -> Key {
        match self {
            Watch::ErrorRate => ERROR_RATE_ALARM,
            Watch::UnhealthyHosts => UNHEALTHY_HOSTS_ALARM,
            Watch::Latency => LATENCY_ALARM,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Watch::ErrorRate => "5xx-rate",
            Watch::UnhealthyHosts => "unhealthy-hosts",
            Watch::Latency => "p99-latency",
        }
    }

    fn name(self, stack: &str) -> String {
        format!("{stack}-{}", self.suffix())
    }

    /// The config asks for it.
    fn configured(self, config: &Config) -> bool {
        config.deploy.alarms && (self != Watch::Latency || config.deploy.p99_latency_ms.is_some())
    }

    /// The threshold in the metric's unit (percent, hosts, seconds).
    fn threshold(self, config: &Config) -> f64 {
        let deploy = &config.deploy;
        match self {
            Watch::ErrorRate => deploy.error_rate_percent,
            Watch::UnhealthyHosts => deploy.unhealthy_hosts as f64,
            Watch::Latency => deploy.p99_latency_ms.unwrap_or_default() as f64 / 1000.0,
        }
    }

    /// A threshold as the config writes it.
    fn show_threshold(self, threshold: f64) -> String {
        match self {
            Watch::ErrorRate => format!("{threshold} % 5xx (deploy.error_rate_percent)"),
            Watch::UnhealthyHosts => format!("{threshold} unhealthy hosts (deploy.unhealthy_hosts)"),
            Watch::Latency => format!("{} ms (deploy.p99_latency_ms)", (threshold * 1000.0).round()),
        }
    }

    fn comparison(self) -> ComparisonOperator {
        match self {
            Watch::UnhealthyHosts => ComparisonOperator::GreaterThanOrEqualToThreshold,
            _ => ComparisonOperator::GreaterThanThreshold,
        }
    }

    /// The metrics CloudWatch bills the alarm for: a metric-math alarm bills each metric it uses
    /// (each twice when it watches both target groups).
    fn billed_metrics(self, config: &Config) -> f64 {
        let groups = if config.deploy.strategy.shifts_traffic() { 2.0 } else { 1.0 };
        match self {
            Watch::ErrorRate => 2.0 * groups,
            _ => groups,
        }
    }
}

/// The alarms the service's deployments watch with this config, by name.
pub fn attached(stack: &str, config: &Config) -> Vec<String> {
    Watch::ALL.into_iter().filter(|w| w.configured(config)).map(|w| w.name(stack)).collect()
}

/// The ARN pattern of the stack's alarms (`alarm:<stack>-*`): every name `attached` gives.
pub fn alarm_arn() -> String {
    arn("cloudwatch", &format!("alarm:{STACK}-*"))
}

/// Each alarm the config asks for, or the state records (or that may be found).
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    for watch in Watch::ALL {
        if watch.configured(shape.config()) || shape.discovering_all() || shape.holds(watch.key()) {
            nodes.managed(Alarm { watch });
        }
    }
}

/// The metric dimensions of a target group and its load balancer, from their ARNs
/// (`…:targetgroup/NAME/ID` → `targetgroup/NAME/ID`, `…:loadbalancer/app/NAME/ID` → `app/NAME/ID`).
fn dimensions(target_group: &str, load_balancer: &str) -> Vec<Dimension> {
    let tail = |arn: &str, marker: &str| arn.split_once(marker).map_or(arn.to_string(), |(_, rest)| rest.to_string());
    vec![
        Dimension::builder()
            .name("TargetGroup")
            .value(format!("targetgroup/{}", tail(target_group, ":targetgroup/")))
            .build(),
        Dimension::builder().name("LoadBalancer").value(tail(load_balancer, ":loadbalancer/")).build(),
    ]
}

/// Dimensions as the plan shows them (the load balancer once, each target group).
fn show_dimensions(dims: &[Dimension]) -> String {
    let mut shown: Vec<String> =
        dims.iter().map(|d| format!("{}={}", d.name().unwrap_or_default(), d.value().unwrap_or_default())).collect();
    shown.sort();
    shown.dedup();
    shown.join(", ")
}

/// The dimensions an alarm watches: its own, or those of every metric of its metric-math queries.
fn live_dimensions(alarm: &MetricAlarm) -> Vec<Dimension> {
    let metrics = alarm.metrics().iter().filter_map(|q| q.metric_stat().and_then(|s| s.metric()));
    alarm.dimensions().iter().chain(metrics.flat_map(|m| m.dimensions())).cloned().collect()
}

fn metric_stat(name: &str, stat: &str, dims: &[Dimension]) -> MetricStat {
    let metric = Metric::builder().namespace(NAMESPACE).metric_name(name).set_dimensions(Some(dims.to_vec())).build();
    MetricStat::builder().metric(metric).period(PERIOD_SECONDS).stat(stat).build()
}

/// The 5xx rate's queries: the two counts, and the percent the alarm watches.
fn error_rate_queries(dims: &[Dimension]) -> Vec<MetricDataQuery> {
    let count = |id: &str, name: &str| {
        MetricDataQuery::builder().id(id).metric_stat(metric_stat(name, "Sum", dims)).return_data(false).build()
    };
    vec![
        count("errors", "HTTPCode_Target_5XX_Count"),
        count("requests", "RequestCount"),
        MetricDataQuery::builder()
            .id("rate")
            .expression("100 * errors / requests")
            .label("5xx rate (%)")
            .return_data(true)
            .build(),
    ]
}

/// The queries of an alarm over both target groups (`groups`: the dimensions of each), per metric
/// `id1`, `id2`, and the expression the alarm watches (ReturnData on it only). A target group
/// without a datapoint counts as 0 (FILL): one that serves nothing does not hide the other.
/// - 5xx rate: the errors of both over the requests of both (no requests: 0 / 0 gives no
///   datapoint, missing data is not breaching);
/// - unhealthy hosts: the sum (a task is registered in one of the two, so the sum counts the
///   service's unhealthy tasks as the single target group does with rolling, where MAX would let
///   one unhealthy in each pass a threshold of 2);
/// - p99 latency: the slower target group's p99 (the p99 of the combined traffic cannot be
///   computed from the two).
fn combined_queries(watch: Watch, groups: &[Vec<Dimension>]) -> Vec<MetricDataQuery> {
    let mut queries = vec![];
    let mut query = |prefix: &str, name: &str, stat: &str| -> Vec<String> {
        let ids: Vec<String> = (1..=groups.len()).map(|i| format!("{prefix}{i}")).collect();
        for (id, dims) in ids.iter().zip(groups) {
            let stat = metric_stat(name, stat, dims);
            queries.push(MetricDataQuery::builder().id(id).metric_stat(stat).return_data(false).build());
        }
        ids.iter().map(|id| format!("FILL({id}, 0)")).collect()
    };
    let (id, expression, label) = match watch {
        Watch::ErrorRate => {
            let errors = query("errors", "HTTPCode_Target_5XX_Count", "Sum").join(" + ");
            let requests = query("requests", "RequestCount", "Sum").join(" + ");
            ("rate", format!("100 * ({errors}) / ({requests})"), "5xx rate (%), both target groups")
        }
        Watch::UnhealthyHosts => {
            let hosts = query("unhealthy", "UnHealthyHostCount", "Maximum").join(" + ");
            ("hosts", hosts, "unhealthy hosts, both target groups")
        }
        Watch::Latency => {
            let each = query("latency", "TargetResponseTime", "p99").join(", ");
            ("slowest", format!("MAX([{each}])"), "p99 latency (s), the slower target group")
        }
    };
    let result = MetricDataQuery::builder().id(id).expression(expression).label(label).return_data(true).build();
    queries.push(result);
    queries
}

/// What the alarm evaluates, as the plan shows it (beside its threshold, datapoints, dimensions).
fn show_definition(alarm: &MetricAlarm) -> String {
    let watched = if alarm.metrics().is_empty() {
        let stat = alarm.extended_statistic().map(str::to_string);
        let stat = stat.or_else(|| alarm.statistic().map(|s| s.as_str().to_string())).unwrap_or_default();
        format!("{stat} of {}", alarm.metric_name().unwrap_or_default())
    } else {
        let expression = alarm.metrics().iter().find(|q| q.return_data() == Some(true)).and_then(|q| q.expression());
        expression.unwrap_or("?").to_string()
    };
    let comparison = alarm.comparison_operator().map(|c| c.as_str()).unwrap_or_default();
    let missing = alarm.treat_missing_data().unwrap_or("missing");
    format!("{watched}, {comparison}, missing data {missing}")
}

/// The alarm a config asks for, as DescribeAlarms would answer it (for the comparison): on the
/// one target group (`groups` has one), or on both.
fn wanted(watch: Watch, config: &Config, groups: &[Vec<Dimension>]) -> MetricAlarm {
    let deploy = &config.deploy;
    let alarm = MetricAlarm::builder()
        .threshold(watch.threshold(config))
        .evaluation_periods(deploy.datapoints as i32)
        .datapoints_to_alarm(deploy.datapoints as i32)
        .comparison_operator(watch.comparison())
        .treat_missing_data(MISSING_DATA);
    let [dims] = groups else { return alarm.set_metrics(Some(combined_queries(watch, groups))).build() };
    let stat = |alarm: aws_sdk_cloudwatch::types::builders::MetricAlarmBuilder, name: &str| {
        alarm.namespace(NAMESPACE).metric_name(name).set_dimensions(Some(dims.to_vec())).period(PERIOD_SECONDS)
    };
    match watch {
        Watch::ErrorRate => alarm.set_metrics(Some(error_rate_queries(dims))).build(),
        Watch::UnhealthyHosts => {
            stat(alarm, "UnHealthyHostCount").statistic(aws_sdk_cloudwatch::types::Statistic::Maximum).build()
        }
        Watch::Latency => stat(alarm, "TargetResponseTime").extended_statistic("p99").build(),
    }
}

fn datapoints(alarm: &MetricAlarm) -> String {
    format!(
        "{} of {} minutes",
        alarm.datapoints_to_alarm().or(alarm.evaluation_periods()).unwrap_or_default(),
        alarm.evaluation_periods().unwrap_or_default()
    )
}

/// Every metric alarm named as one of a stack's.
fn sweep_alarms(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let call = c.cloudwatch.describe_alarms().alarm_types(AlarmType::MetricAlarm);
        let pages: Vec<_> = call.into_paginator().send().try_collect().await.ctx("describe", "CloudWatch alarms")?;
        let mut sightings = vec![];
        for alarm in pages.iter().flat_map(|p| p.metric_alarms()) {
            let Some(name) = alarm.alarm_name() else { continue };
            for watch in Watch::ALL {
                let make: fn(&str) -> String = match watch {
                    Watch::ErrorRate => |s: &str| Watch::ErrorRate.name(s),
                    Watch::UnhealthyHosts => |s: &str| Watch::UnhealthyHosts.name(s),
                    Watch::Latency => |s: &str| Watch::Latency.name(s),
                };
                if made_for(name, make).is_some() {
                    let sighting = Sighting::new(ALARM, name).named(name, |n| made_for(n, make));
                    sightings.push(Sighting { resource: Some(watch.key().to_string()), ..sighting });
                }
            }
        }
        Ok(sightings)
    })
}

/// One deploy alarm of the stack.
pub struct Alarm {
    watch: Watch,
}

/// What an alarm can differ in; each is changed in place by PutMetricAlarm.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmField {
    Threshold,
    Datapoints,
    /// The target group and load balancer it watches (a replaced target group moves it).
    Dimensions,
    /// The metric, statistic or expression, comparison and missing-data treatment.
    Definition,
}

impl Field for AlarmField {
    fn label(&self) -> String {
        match self {
            AlarmField::Threshold => "threshold",
            AlarmField::Datapoints => "deploy.datapoints",
            AlarmField::Dimensions => "target group watched",
            AlarmField::Definition => "what it evaluates",
        }
        .into()
    }
}

impl Alarm {
    fn name(&self, ctx: &Scope<'_>) -> String {
        ctx.id(self.watch.key()).unwrap_or_else(|| self.watch.name(ctx.stack()))
    }

    /// The dimensions of each target group it watches: the stack's, and with a strategy that
    /// shifts traffic the alternate one (`planned`: named as it will be while not made yet).
    fn wanted_groups(&self, ctx: &Scope<'_>, planned: bool) -> Result<Vec<Vec<Dimension>>, StackError> {
        let load_balancer = ctx.need(LOAD_BALANCER)?;
        let mut groups = vec![dimensions(&ctx.need(TARGET_GROUP)?, &load_balancer)];
        if ctx.config.deploy.strategy.shifts_traffic() {
            let alternate = match ctx.id(ALTERNATE_TARGET_GROUP) {
                None if planned => format!("{}/(new)", alternate_target_group_name(ctx.stack())),
                _ => ctx.need(ALTERNATE_TARGET_GROUP)?,
            };
            groups.push(dimensions(&alternate, &load_balancer));
        }
        Ok(groups)
    }

    async fn describe(&self, ctx: &Scope<'_>, name: &str) -> Result<Option<MetricAlarm>, StackError> {
        let call = ctx.aws.cloudwatch.describe_alarms().alarm_names(name).alarm_types(AlarmType::MetricAlarm);
        let out = call.send().await.ctx("describe alarm", name)?;
        Ok(out.metric_alarms().iter().find(|a| a.alarm_name() == Some(name)).cloned())
    }

    /// PutMetricAlarm with the whole definition: creates it (with the stack's tags), or overwrites
    /// it in place (AWS ignores tags then, and keeps the alarm's state).
    async fn put(&self, ctx: &Scope<'_>, name: &str, tags: bool) -> Result<(), StackError> {
        let want = wanted(self.watch, ctx.config, &self.wanted_groups(ctx, false)?);
        let description = format!(
            "fargate-stack {}: rolls back the service's deployment when in ALARM ([deploy] in the config)",
            ctx.stack()
        );
        let call = ctx
            .aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description(description)
            .set_threshold(want.threshold())
            .set_evaluation_periods(want.evaluation_periods())
            .set_datapoints_to_alarm(want.datapoints_to_alarm())
            .set_comparison_operator(want.comparison_operator().cloned())
            .set_treat_missing_data(want.treat_missing_data().map(str::to_string))
            .set_namespace(want.namespace().map(str::to_string))
            .set_metric_name(want.metric_name().map(str::to_string))
            .set_statistic(want.statistic().cloned())
            .set_extended_statistic(want.extended_statistic().map(str::to_string))
            .set_period(want.period())
            .set_dimensions((!want.dimensions().is_empty()).then(|| want.dimensions().to_vec()))
            .set_metrics((!want.metrics().is_empty()).then(|| want.metrics().to_vec()))
            .set_tags(tags.then(|| ctx.sdk_tags(name)));
        call.send().await.ctx("put alarm", name).map(drop)
    }
}

#[async_trait]
impl Managed for Alarm {
    type Live = MetricAlarm;
    type Field = AlarmField;

    fn key(&self) -> Key {
        self.watch.key()
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_alarms)
    }

    fn permissions(&self) -> Vec<Permission> {
        let alarm = alarm_arn();
        vec![
            // Lists by name (and every alarm for `list`): no resource-level permission.
            Permission::find("cloudwatch:DescribeAlarms"),
            Permission::find("cloudwatch:ListTagsForResource").on(alarm.clone()),
            Permission::create("cloudwatch:PutMetricAlarm").on(alarm.clone()).tagging(),
            access::tags_with("cloudwatch:TagResource", alarm.clone()),
            Permission::update("cloudwatch:PutMetricAlarm").on(alarm.clone()).tagged(),
            access::retagging("cloudwatch:TagResource", alarm.clone()),
            access::retagging("cloudwatch:UntagResource", alarm.clone()),
            Permission::delete("cloudwatch:DeleteAlarms").on(alarm).tagged(),
        ]
    }

    /// A standard-resolution alarm bills each metric it evaluates, by the month.
    fn billing(&self, config: &Config) -> Vec<Charge> {
        let what = format!("CloudWatch alarm {} ([deploy] alarms)", self.watch.suffix());
        vec![Charge::running(
            items::CLOUDWATCH_ALARM,
            Unit::Month,
            Quantity::fixed(self.watch.billed_metrics(config)),
            what,
        )]
    }

    fn needs(&self) -> Vec<Dep> {
        vec![TARGET_GROUP.into(), LOAD_BALANCER.into(), Dep::IfPresent(ALTERNATE_TARGET_GROUP)]
    }

    fn removal_note(&self, _found: &crate::model::Inspection) -> Option<String> {
        Some(
            "the service's deployments no longer watch it: a bad release is rolled back only by the circuit breaker"
                .into(),
        )
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<MetricAlarm>, StackError> {
        let name = self.name(ctx);
        let Some(alarm) = self.describe(ctx, &name).await? else { return Ok(None) };
        let arn = alarm.alarm_arn().unwrap_or_default();
        let call = ctx.aws.cloudwatch.list_tags_for_resource().resource_arn(arn);
        // Deleted between the two calls: gone.
        let Some(tags) = found(call.send().await.ctx("list the tags of alarm", &name))? else { return Ok(None) };
        ctx.owned(self.key(), format!("CloudWatch alarm {name}"), tags.tags().pairs())?;
        ctx.run::<Seen>().note(arn, tags.tags().pairs());
        Ok(Some(alarm))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &MetricAlarm) -> Record {
        Record::id(live.alarm_name().unwrap_or_default()).with_fact("arn", live.alarm_arn().unwrap_or_default())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &MetricAlarm) -> Result<Vec<Changed<AlarmField>>, StackError> {
        let groups = self.wanted_groups(ctx, true)?;
        let want = wanted(self.watch, ctx.config, &groups);
        let threshold = |a: &MetricAlarm| self.watch.show_threshold(a.threshold().unwrap_or_default());
        let mut diff = Diff::new();
        diff.field(AlarmField::Threshold, &threshold(live), &threshold(&want))
            .field(AlarmField::Datapoints, &datapoints(live), &datapoints(&want))
            .field(AlarmField::Dimensions, &show_dimensions(&live_dimensions(live)), &show_dimensions(&groups.concat()))
            .field(AlarmField::Definition, &show_definition(live), &show_definition(&want));
        Ok(diff.into_changes())
    }

    /// Its tags for the `[tags]` sync: as `find` read them in this run.
    async fn tags(&self, ctx: &Scope<'_>, live: &MetricAlarm) -> Result<Option<Vec<(String, String)>>, StackError> {
        let arn = live.alarm_arn().unwrap_or_default();
        if let Some(seen) = ctx.run::<Seen>().get(arn) {
            return Ok(Some(seen));
        }
        let out = ctx.aws.cloudwatch.list_tags_for_resource().resource_arn(arn).send().await;
        let tags = found(out.ctx("list the tags of alarm", arn))?;
        Ok(tags.map(|t| t.tags().pairs().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }

    /// TagResource puts (and overwrites), UntagResource takes keys off.
    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &MetricAlarm,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        let arn = live.alarm_arn().unwrap_or_default();
        if !put.is_empty() {
            let tags = put.iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
            let call = ctx.aws.cloudwatch.tag_resource().resource_arn(arn).set_tags(Some(tags.collect()));
            call.send().await.ctx("tag alarm", arn)?;
        }
        if !remove.is_empty() {
            let call = ctx.aws.cloudwatch.untag_resource().resource_arn(arn).set_tag_keys(Some(remove.to_vec()));
            call.send().await.ctx("untag alarm", arn)?;
        }
        Ok(())
    }

    /// Its state, for `status`: INSUFFICIENT_DATA until CloudWatch has datapoints, ALARM with why.
    fn note(&self, _ctx: &Scope<'_>, live: &MetricAlarm) -> Option<String> {
        let state = live.state_value()?;
        Some(match (state, live.state_reason()) {
            (StateValue::Alarm, Some(reason)) => format!("state ALARM: {reason}"),
            (state, _) => format!("state {}", state.as_str()),
        })
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<MetricAlarm, StackError> {
        let name = self.watch.name(ctx.stack());
        self.put(ctx, &name, true).await?;
        returned(self.describe(ctx, &name).await?, name, "was created but cannot be described")
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &MetricAlarm,
        _changes: &[Changed<AlarmField>],
    ) -> Result<Option<MetricAlarm>, StackError> {
        self.put(ctx, live.alarm_name().unwrap_or_default(), false).await?;
        Ok(None)
    }

    /// DeleteAlarms ignores names it does not have.
    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: MetricAlarm) -> Result<Outcome, StackError> {
        let name = live.alarm_name().unwrap_or_default();
        ctx.aws.cloudwatch.delete_alarms().alarm_names(name).send().await.ctx("delete alarm", name)?;
        Ok(Outcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use crate::resources::stack;
    use crate::state::{Recorded, State};

    fn config(extra: &str) -> Config {
        Config::parse("t", &DEFAULT_TOML.replace("datapoints = 2 ", &format!("datapoints = 2\n{extra}"))).unwrap()
    }

    #[test]
    fn on_by_default_two_alarms_and_latency_only_when_configured() {
        let c = config("");
        assert_eq!(attached("app", &c), ["app-5xx-rate", "app-unhealthy-hosts"]);
        let graph = stack(&Shape::of(&c)).unwrap();
        assert!(graph.get(ERROR_RATE_ALARM).is_some() && graph.get(LATENCY_ALARM).is_none());
        let needs = graph.needs_of(ERROR_RATE_ALARM);
        assert!(needs.contains(&TARGET_GROUP) && needs.contains(&LOAD_BALANCER), "{needs:?}");
        let latency = config("p99_latency_ms = 800");
        assert_eq!(attached("app", &latency).len(), 3);
        assert_eq!(Watch::Latency.threshold(&latency), 0.8);
        let off = Config::parse("t", &DEFAULT_TOML.replace("alarms = true ", "alarms = false")).unwrap();
        assert!(attached("app", &off).is_empty());
        assert!(stack(&Shape::of(&off)).unwrap().get(ERROR_RATE_ALARM).is_none());
        // Recorded: still covered, for `up` to delete after the service stopped watching it.
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        let entry =
            Recorded { kind: ALARM.label().into(), id: "simple-ecs-dev-5xx-rate".into(), attrs: Default::default() };
        state.resources.insert(ERROR_RATE_ALARM.to_string(), entry);
        assert!(stack(&Shape::covering(&off, &state)).unwrap().get(ERROR_RATE_ALARM).is_some());
        assert!(stack(&Shape::discovering(&off)).unwrap().get(LATENCY_ALARM).is_some(), "down --name");
    }

    #[test]
    fn bad_thresholds_fail_naming_the_key() {
        for (from, to, key) in [
            ("error_rate_percent = 5.0", "error_rate_percent = 0.0", "deploy.error_rate_percent"),
            ("error_rate_percent = 5.0", "error_rate_percent = 101.0", "deploy.error_rate_percent"),
            ("unhealthy_hosts = 1 ", "unhealthy_hosts = 0 ", "deploy.unhealthy_hosts"),
            ("datapoints = 2 ", "datapoints = 61 ", "deploy.datapoints"),
            ("datapoints = 2 ", "datapoints = 2\np99_latency_ms = 0 ", "deploy.p99_latency_ms"),
        ] {
            let text = DEFAULT_TOML.replace(from, to);
            assert_ne!(text, DEFAULT_TOML, "{from}");
            let err = Config::parse("t", &text).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn dimensions_come_from_the_arns_and_the_definition_reads_back() {
        let tg = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/app-tg2/abc";
        let lb = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/app-alb/def";
        let dims = dimensions(tg, lb);
        assert_eq!(show_dimensions(&dims), "LoadBalancer=app/app-alb/def, TargetGroup=targetgroup/app-tg2/abc");
        let c = config("");
        let rate = wanted(Watch::ErrorRate, &c, std::slice::from_ref(&dims));
        assert_eq!(show_dimensions(&live_dimensions(&rate)), show_dimensions(&dims), "from the math's metrics");
        assert_eq!(show_definition(&rate), "100 * errors / requests, GreaterThanThreshold, missing data notBreaching");
        let hosts = wanted(Watch::UnhealthyHosts, &c, std::slice::from_ref(&dims));
        assert_eq!(
            show_definition(&hosts),
            "Maximum of UnHealthyHostCount, GreaterThanOrEqualToThreshold, missing data notBreaching"
        );
        assert_eq!(datapoints(&hosts), "2 of 2 minutes");
        assert_eq!(Watch::Latency.show_threshold(0.8), "800 ms (deploy.p99_latency_ms)");
        assert_eq!(made_for("app-2-5xx-rate", |s| Watch::ErrorRate.name(s)), Some("app-2".into()));
    }

    #[test]
    fn with_a_traffic_shifting_strategy_each_alarm_watches_both_target_groups_and_the_switch_is_a_diff() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/app-alb/def";
        let primary = dimensions("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/app-tg/abc", lb);
        let alternate = dimensions("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/app-tg-alt/xyz", lb);
        let both = [primary.clone(), alternate.clone()];
        let c = config("p99_latency_ms = 800");
        let shown = |a: &MetricAlarm| (show_dimensions(&live_dimensions(a)), show_definition(a));
        let two_groups = "LoadBalancer=app/app-alb/def, TargetGroup=targetgroup/app-tg-alt/xyz, \
                          TargetGroup=targetgroup/app-tg/abc";
        for (watch, expression, stats) in [
            (
                Watch::ErrorRate,
                "100 * (FILL(errors1, 0) + FILL(errors2, 0)) / (FILL(requests1, 0) + FILL(requests2, 0))",
                ["Sum", "Sum", "Sum", "Sum"].as_slice(),
            ),
            (Watch::UnhealthyHosts, "FILL(unhealthy1, 0) + FILL(unhealthy2, 0)", &["Maximum", "Maximum"]),
            (Watch::Latency, "MAX([FILL(latency1, 0), FILL(latency2, 0)])", &["p99", "p99"]),
        ] {
            let one = wanted(watch, &c, std::slice::from_ref(&primary));
            let two = wanted(watch, &c, &both);
            let (dims, definition) = shown(&two);
            assert_eq!(dims, two_groups, "{watch:?}");
            assert!(definition.starts_with(&format!("{expression}, {}", watch.comparison().as_str())), "{definition}");
            // CloudWatch: ReturnData on the expression only; every metric per minute.
            let returned: Vec<_> = two.metrics().iter().filter(|q| q.return_data() == Some(true)).collect();
            assert!(returned.len() == 1 && returned[0].expression().is_some(), "{watch:?}");
            let metric_stats: Vec<_> = two.metrics().iter().filter_map(|q| q.metric_stat()).collect();
            assert_eq!(metric_stats.iter().map(|m| m.stat().unwrap()).collect::<Vec<_>>(), stats, "{watch:?}");
            assert!(metric_stats.iter().all(|m| m.period() == Some(PERIOD_SECONDS)));
            assert!(two.namespace().is_none() && two.dimensions().is_empty(), "metric math: no metric of its own");
            // Rolling's alarm reads back as the single target group's; the switch either way
            // changes what it watches and evaluates (the diff's two fields), thresholds kept.
            assert_eq!(shown(&one).0, show_dimensions(&primary));
            assert_ne!(shown(&one).0, dims);
            assert_ne!(shown(&one).1, definition);
            assert_eq!(one.threshold(), two.threshold());
        }
        // Rolling's definitions are those of before strategies (existing stacks see no diff).
        assert_eq!(
            show_definition(&wanted(Watch::Latency, &c, std::slice::from_ref(&primary))),
            "p99 of TargetResponseTime, GreaterThanThreshold, missing data notBreaching"
        );
        let canary =
            Config::parse("t", &DEFAULT_TOML.replace("strategy = \"rolling\"", "strategy = \"canary\"")).unwrap();
        assert_eq!(
            (Watch::ErrorRate.billed_metrics(&canary), Watch::UnhealthyHosts.billed_metrics(&canary)),
            (4.0, 2.0)
        );
        assert_eq!(Watch::ErrorRate.billed_metrics(&c), 2.0);
        // Its node waits for the alternate target group, whose ARN it reads.
        let needs = stack(&Shape::of(&canary)).unwrap().needs_of(UNHEALTHY_HOSTS_ALARM);
        assert!(needs.contains(&ALTERNATE_TARGET_GROUP) && needs.contains(&TARGET_GROUP), "{needs:?}");
    }
}
