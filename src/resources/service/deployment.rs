//! A deployment as it happens, for the rollout wait: its phase, the production traffic on the old
//! and new revision, the bake time left, the tasks of each, and, when ECS rolled it back because an
//! alarm went into ALARM, which alarm, its value and its threshold.
//!
//! Non-rolling strategies (canary, linear, blue/green): ECS's service deployment
//! (ListServiceDeployments, DescribeServiceDeployments: `lifecycleStage`, `status`, the target and
//! source revisions' task counts) and the weights of the production listener rule (DescribeRules),
//! which ECS moves during the deploy. Rolling: DescribeServices' deployments (new tasks starting,
//! old ones stopping). Reading them is best effort: a deploy never fails because it could not be
//! shown.

use std::sync::Mutex;
use std::time::Instant;

use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
use aws_sdk_ecs::types::{DeploymentStrategy, ServiceDeployment, ServiceDeploymentLifecycleStage as Stage};
use serde::Serialize;

use super::service_name;
use super::status::ServiceView;
use crate::error::{AwsContext, StackError};
use crate::model::Scope;
use crate::progress::Line;
use crate::resources::cluster::stack_cluster;
use crate::resources::task_definition::revision;

/// Production traffic, in percent, on the revision being replaced and on the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub old: u32,
    pub new: u32,
}

/// Running tasks of the revision(s) being replaced and of the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Running {
    pub old: i32,
    pub new: i32,
}

/// One look at the deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// ECS's `lifecycleStage` in lower snake case (`scale_up`, `production_traffic_shift`,
    /// `bake_time`, `clean_up`...); for a rolling deployment `scale_up` (new tasks starting),
    /// `clean_up` (old tasks stopping) or `rollback`.
    pub phase: String,
    /// The deployment's status, lower case (`in_progress`, `rollback_in_progress`, `successful`...).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// Seconds left of the bake under way (BAKE_TIME, or a canary's or linear step's bake).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake_remaining_s: Option<u64>,
    pub running: Running,
}

impl Phase {
    /// The progress line's text: `production_traffic_shift (in_progress): traffic 95/5 old/new, tasks 2/2 old/new, bake 2m50s left`.
    pub fn text(&self) -> String {
        let mut parts = vec![];
        if let Some(t) = self.traffic {
            parts.push(format!("traffic {}% old / {}% new", t.old, t.new));
        }
        parts.push(format!("tasks {} old / {} new", self.running.old, self.running.new));
        if let Some(left) = self.bake_remaining_s {
            // In steps of 10 s: one line per step, not one per poll.
            let left = left.div_ceil(10) * 10;
            parts.push(format!("bake {}m{:02}s left", left / 60, left % 60));
        }
        format!("{} ({}): {}", self.phase, self.status, parts.join(", "))
    }

    /// The `deploy_phase` event (`--output json`).
    pub fn event(&self, stack: &str, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
        let mut event = serde_json::json!({ "event": "deploy_phase", "stack": stack });
        if let (Some(out), Ok(serde_json::Value::Object(fields))) = (event.as_object_mut(), serde_json::to_value(self))
        {
            out.extend(fields);
            out.insert("at".into(), at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string().into());
        }
        event
    }

    /// The same phase as `other` but for the bake countdown: no new event.
    fn same(&self, other: &Phase) -> bool {
        (&self.phase, &self.status, self.traffic, self.running)
            == (&other.phase, &other.status, other.traffic, other.running)
    }
}

/// `PRODUCTION_TRAFFIC_SHIFT` -> `production_traffic_shift`.
fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// A rolling deployment from DescribeServices: the PRIMARY deployment's tasks are the new ones.
pub fn rolling_phase(view: &ServiceView) -> Phase {
    let primary = view.deployments.iter().find(|d| d.status == "PRIMARY");
    let new = primary.map_or(0, |d| d.running);
    let old = view.deployments.iter().filter(|d| d.status != "PRIMARY").map(|d| d.running).sum();
    let rollout = primary.and_then(|d| d.rollout.as_deref()).unwrap_or("IN_PROGRESS");
    let phase = if rollout == "FAILED" {
        "rollback"
    } else if primary.is_some_and(|d| d.running < d.desired) {
        "scale_up"
    } else if old > 0 {
        "clean_up"
    } else {
        "completed"
    };
    Phase {
        phase: phase.into(),
        status: lower(rollout),
        traffic: None,
        bake_remaining_s: None,
        running: Running { old, new },
    }
}

/// What the watcher remembers between looks: when the stage and the traffic split were first
/// seen (bakes count from there), and which target group served when the deployment was first
/// seen (the old revision's).
#[derive(Default)]
struct Memory {
    deployment: String,
    stage: Option<(String, Instant)>,
    traffic: Option<(Traffic, Instant)>,
    old_target_group: Option<String>,
    last: Option<Phase>,
}

/// Shows a deployment's phases on its own progress line (`deployment`) and as `deploy_phase`
/// events, one per change seen.
pub struct Watcher {
    line: Line,
    memory: Mutex<Memory>,
}

impl Watcher {
    pub fn new(wait_line: &Line) -> Watcher {
        Watcher { line: wait_line.sibling("deployment"), memory: Mutex::new(Memory::default()) }
    }

    /// Look at the deployment once and show what changed. `view` is the service as just described.
    pub async fn look(&self, ctx: &Scope<'_>, view: &ServiceView) -> Option<Phase> {
        let phase = match view.strategy.as_deref() {
            None | Some("ROLLING") => Some(rolling_phase(view)),
            Some(_) => match latest(ctx).await {
                Ok(Some(deployment)) => {
                    let weights = match &view.production_rule {
                        Some(rule) => rule_weights(ctx, rule).await.unwrap_or_default(),
                        None => vec![],
                    };
                    Some(self.staged(&deployment, &weights))
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!("service deployments: {e}");
                    None
                }
            },
        };
        if let Some(phase) = &phase {
            self.show(ctx.stack(), phase.clone());
        }
        phase
    }

    /// The rollout completed: the line ends with its last phase.
    pub fn done(&self) {
        let last = self.memory.lock().expect("watcher lock").last.as_ref().map(Phase::text);
        if let Some(last) = last {
            self.line.done("completed", &last);
        }
    }

    fn show(&self, stack: &str, phase: Phase) {
        let mut memory = self.memory.lock().expect("watcher lock");
        if memory.last.as_ref().is_some_and(|l| l.same(&phase)) {
            self.line.waiting(&phase.text());
            return;
        }
        if memory.last.is_none() {
            self.line.start("watching");
        }
        self.line.waiting(&phase.text());
        self.line.event(phase.event(stack, chrono::Utc::now()));
        memory.last = Some(phase);
    }

    /// A non-rolling deployment's phase from ECS's service deployment and the rule's weights.
    fn staged(&self, d: &ServiceDeployment, weights: &[(String, i32)]) -> Phase {
        let now = Instant::now();
        let mut memory = self.memory.lock().expect("watcher lock");
        let arn = d.service_deployment_arn().unwrap_or_default();
        if memory.deployment != arn {
            let last = memory.last.take();
            *memory = Memory { deployment: arn.to_string(), last, ..Memory::default() };
        }
        let stage = d.lifecycle_stage().map(|s| s.as_str().to_string()).unwrap_or_default();
        if memory.stage.as_ref().is_none_or(|(s, _)| *s != stage) {
            memory.stage = Some((stage.clone(), now));
        }
        let target = d.target_service_revision();
        let running = Running {
            old: d.source_service_revisions().iter().map(|r| r.running_task_count()).sum(),
            new: target.map_or(0, |t| t.running_task_count()),
        };
        if memory.old_target_group.is_none() {
            memory.old_target_group = weights.iter().max_by_key(|(_, w)| *w).map(|(tg, _)| tg.clone());
        }
        let traffic = traffic(weights, memory.old_target_group.as_deref());
        if let Some(t) = traffic {
            if memory.traffic.as_ref().is_none_or(|(seen, _)| *seen != t) {
                memory.traffic = Some((t, now));
            }
        }
        let bake = bake_seconds(d, &stage, traffic);
        let since = if Stage::from(stage.as_str()) == Stage::BakeTime { memory.stage.as_ref() } else { None }
            .map(|(_, at)| *at)
            .or(memory.traffic.as_ref().map(|(_, at)| *at).filter(|_| bake.is_some()));
        let bake_remaining_s = bake.zip(since).map(|(total, since)| total.saturating_sub(since.elapsed().as_secs()));
        Phase {
            phase: lower(&stage),
            status: lower(d.status().map(|s| s.as_str()).unwrap_or("IN_PROGRESS")),
            traffic,
            bake_remaining_s,
            running,
        }
    }
}

/// The split of the production rule's weights between the old target group (the one that served
/// when the deployment was first seen) and the other.
fn traffic(weights: &[(String, i32)], old_target_group: Option<&str>) -> Option<Traffic> {
    let total: i32 = weights.iter().map(|(_, w)| (*w).max(0)).sum();
    let old_tg = old_target_group?;
    if total == 0 || weights.len() < 2 {
        return None;
    }
    let old: i32 = weights.iter().filter(|(tg, _)| tg == old_tg).map(|(_, w)| (*w).max(0)).sum();
    let old = (old as f64 * 100.0 / total as f64).round() as u32;
    Some(Traffic { old, new: 100 - old })
}

/// The length, in seconds, of the bake under way: BAKE_TIME's `bakeTimeInMinutes`, or during the
/// production traffic shift a canary's (or linear step's) bake while traffic is split.
fn bake_seconds(d: &ServiceDeployment, stage: &str, traffic: Option<Traffic>) -> Option<u64> {
    let config = d.deployment_configuration()?;
    let minutes = match Stage::from(stage) {
        Stage::BakeTime => config.bake_time_in_minutes(),
        Stage::ProductionTrafficShift if traffic.is_some_and(|t| t.new > 0 && t.new < 100) => match config.strategy() {
            Some(DeploymentStrategy::Canary) => {
                config.canary_configuration().and_then(|c| c.canary_bake_time_in_minutes())
            }
            Some(DeploymentStrategy::Linear) => {
                config.linear_configuration().and_then(|c| c.step_bake_time_in_minutes())
            }
            _ => None,
        },
        _ => None,
    }?;
    Some(minutes.max(0) as u64 * 60)
}

/// The service's newest service deployment (ListServiceDeployments, DescribeServiceDeployments).
async fn latest(ctx: &Scope<'_>) -> Result<Option<ServiceDeployment>, StackError> {
    let cluster = stack_cluster(ctx);
    let name = service_name(ctx.stack());
    let listed = ctx
        .aws
        .ecs
        .list_service_deployments()
        .cluster(&cluster)
        .service(&name)
        .send()
        .await
        .ctx("list the service deployments of", &name)?;
    let newest =
        listed.service_deployments().iter().max_by_key(|b| b.started_at().or(b.created_at()).map(|t| t.secs()));
    let Some(arn) = newest.and_then(|b| b.service_deployment_arn()) else { return Ok(None) };
    let out = ctx
        .aws
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .ctx("describe the service deployment of", &name)?;
    Ok(out.service_deployments().first().cloned())
}

/// The production rule's forward weights: (target group ARN, weight).
async fn rule_weights(ctx: &Scope<'_>, rule: &str) -> Result<Vec<(String, i32)>, StackError> {
    let out = ctx.aws.elb.describe_rules().rule_arns(rule).send().await.ctx("describe the production rule", rule)?;
    let groups = out
        .rules()
        .iter()
        .flat_map(|r| r.actions())
        .filter_map(|a| a.forward_config())
        .flat_map(|f| f.target_groups())
        .map(|g| (g.target_group_arn().unwrap_or_default().to_string(), g.weight().unwrap_or(0)))
        .collect();
    Ok(groups)
}

/// A deployment ECS rolled back because an alarm went into ALARM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmTrip {
    pub alarm: String,
    /// The metric's value that crossed the threshold, when CloudWatch says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// CloudWatch's StateReason.
    pub reason: String,
    /// The revision serving again (`family:revision`).
    pub serving: String,
}

impl AlarmTrip {
    /// `rolled back by ECS because alarm s-5xx-rate went into ALARM (value 7.5, threshold 5);
    /// app:3 serves again`.
    pub fn message(&self, failed: &str) -> String {
        let show = |v: Option<f64>| v.map_or("unknown".to_string(), |v| v.to_string());
        format!(
            "deployment of {failed} was rolled back by ECS because alarm {} went into ALARM (value {}, threshold {}: \
             {}); {} serves again",
            self.alarm,
            show(self.value),
            show(self.threshold),
            self.reason,
            self.serving
        )
    }
}

/// The value and threshold an alarm's state reason gives: StateReasonData's JSON (the newest
/// evaluated datapoint, else the last recent one; its `threshold`), else the StateReason text
/// (`... [7.5 (03/12/26 20:01:00), ...] was greater than the threshold (5.0)`); the alarm's
/// own Threshold first.
pub fn value_and_threshold(
    reason: Option<&str>,
    data: Option<&str>,
    threshold: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    let data: Option<serde_json::Value> = data.and_then(|d| serde_json::from_str(d).ok());
    let from_data = data.as_ref().and_then(|d| {
        let evaluated = d["evaluatedDatapoints"].as_array().and_then(|a| a.first()).and_then(|p| p["value"].as_f64());
        evaluated.or_else(|| d["recentDatapoints"].as_array().and_then(|a| a.last()).and_then(|v| v.as_f64()))
    });
    let from_text = reason.and_then(|r| {
        let inside = r.split_once('[')?.1;
        inside.split([' ', ',', ']']).next()?.parse::<f64>().ok()
    });
    let text_threshold = reason.and_then(|r| {
        let after = r.split_once("threshold (")?.1;
        after.split_once(')')?.0.parse::<f64>().ok()
    });
    let threshold = threshold.or_else(|| data.as_ref().and_then(|d| d["threshold"].as_f64())).or(text_threshold);
    (from_data.or(from_text), threshold)
}

/// Which alarm made ECS roll the deployment back, if one did: the newest service deployment's
/// triggered alarms (every strategy, rolling included), else one of `watched` in ALARM when ECS
/// does not answer that. `serving` is the revision the service runs again.
pub async fn alarm_trip(ctx: &Scope<'_>, watched: &[String], serving: &str) -> Option<AlarmTrip> {
    let (triggered, said_by_ecs) = match latest(ctx).await {
        Ok(Some(d)) => (d.alarms().map(|a| a.triggered_alarm_names().to_vec()).unwrap_or_default(), true),
        Ok(None) => (vec![], true),
        Err(e) => {
            tracing::debug!("service deployments: {e}");
            (watched.to_vec(), false)
        }
    };
    if triggered.is_empty() {
        return None;
    }
    let alarms = describe_alarms(ctx, &triggered).await.unwrap_or_default();
    // ECS named it: that alarm, whatever its state now; else one that is in ALARM.
    let alarm = alarms
        .iter()
        .find(|a| a.state_value() == Some(&StateValue::Alarm))
        .or_else(|| alarms.first().filter(|_| said_by_ecs))?;
    let (value, threshold) = value_and_threshold(alarm.state_reason(), alarm.state_reason_data(), alarm.threshold());
    Some(AlarmTrip {
        alarm: alarm.alarm_name().unwrap_or_default().to_string(),
        value,
        threshold,
        reason: alarm.state_reason().unwrap_or_default().to_string(),
        serving: revision(serving).to_string(),
    })
}

async fn describe_alarms(ctx: &Scope<'_>, names: &[String]) -> Result<Vec<MetricAlarm>, StackError> {
    let out = ctx
        .aws
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .send()
        .await
        .ctx("describe the alarms", &names.join(", "))?;
    Ok(out.metric_alarms().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::service::status::DeploymentView;

    #[test]
    fn the_alarm_value_and_threshold_come_from_the_reason_data_else_the_reason_text() {
        let reason = "Threshold Crossed: 2 out of the last 2 datapoints [7.5 (03/12/26 20:01:00), 6.0 (03/12/26 \
                      20:00:00)] were greater than the threshold (5.0) (minimum 2 datapoints for OK -> ALARM \
                      transition).";
        let data = r#"{"version":"1.0","queryDate":"2026-12-03T20:02:10.000+0000","startDate":"2026-12-03T20:00:00.000+0000","period":60,"recentDatapoints":[6.0,7.5],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2026-12-03T20:01:00.000+0000","value":7.5},{"timestamp":"2026-12-03T20:00:00.000+0000","value":6.0}]}"#;
        assert_eq!(value_and_threshold(Some(reason), Some(data), Some(5.0)), (Some(7.5), Some(5.0)));
        // No data: the reason's text (the newest datapoint comes first).
        assert_eq!(value_and_threshold(Some(reason), None, None), (Some(7.5), Some(5.0)));
        // Only recent datapoints: the last is the newest.
        let recent = r#"{"recentDatapoints":[1.0,9.25],"threshold":2.0}"#;
        assert_eq!(value_and_threshold(None, Some(recent), None), (Some(9.25), Some(2.0)));
        // A state set by hand with nothing to parse: the alarm's threshold only.
        assert_eq!(value_and_threshold(Some("set by a test"), Some("{}"), Some(1.0)), (None, Some(1.0)));
    }

    #[test]
    fn a_trip_names_the_alarm_its_value_threshold_and_what_serves_again() {
        let trip = AlarmTrip {
            alarm: "s-5xx-rate".into(),
            value: Some(7.5),
            threshold: Some(5.0),
            reason: "Threshold Crossed".into(),
            serving: "s-app:3".into(),
        };
        let m = trip.message("s-app:4");
        for part in ["s-app:4", "alarm s-5xx-rate", "value 7.5", "threshold 5", "s-app:3 serves again"] {
            assert!(m.contains(part), "{part} in {m}");
        }
    }

    #[test]
    fn phases_read_as_one_line_and_one_event() {
        let phase = Phase {
            phase: "production_traffic_shift".into(),
            status: "in_progress".into(),
            traffic: Some(Traffic { old: 95, new: 5 }),
            bake_remaining_s: Some(171),
            running: Running { old: 2, new: 2 },
        };
        assert_eq!(
            phase.text(),
            "production_traffic_shift (in_progress): traffic 95% old / 5% new, tasks 2 old / 2 new, bake 3m00s left"
        );
        let at = chrono::DateTime::from_timestamp(1_796_328_000, 0).unwrap();
        let event = phase.event("s", at);
        assert_eq!(event["event"], "deploy_phase");
        assert_eq!(event["stack"], "s");
        assert_eq!(event["phase"], "production_traffic_shift");
        assert_eq!(event["traffic"], serde_json::json!({"old": 95, "new": 5}));
        assert_eq!(event["bake_remaining_s"], 171);
        assert_eq!(event["running"], serde_json::json!({"old": 2, "new": 2}));
        assert!(event["at"].as_str().unwrap().ends_with('Z'));
        // The countdown alone is no new event.
        assert!(phase.same(&Phase { bake_remaining_s: Some(3), ..phase.clone() }));
        assert!(!phase.same(&Phase { traffic: Some(Traffic { old: 0, new: 100 }), ..phase.clone() }));
        let rolling = Phase { traffic: None, bake_remaining_s: None, ..phase };
        assert!(!rolling.event("s", at).as_object().unwrap().contains_key("traffic"));
    }

    #[test]
    fn traffic_is_the_share_of_the_target_group_that_served_first() {
        let w = |a: i32, b: i32| vec![("tg-a".to_string(), a), ("tg-b".to_string(), b)];
        assert_eq!(traffic(&w(95, 5), Some("tg-a")), Some(Traffic { old: 95, new: 5 }));
        // After a blue/green switch the alternate serves: from b to a, old is b.
        assert_eq!(traffic(&w(100, 0), Some("tg-b")), Some(Traffic { old: 0, new: 100 }));
        assert_eq!(traffic(&w(0, 0), Some("tg-a")), None);
        assert_eq!(traffic(&[("tg-a".into(), 100)], Some("tg-a")), None, "a rule that is not ours");
    }

    #[test]
    fn a_rolling_deployment_starts_new_tasks_then_stops_old_ones() {
        let d = |status: &str, desired, running, rollout: &str| DeploymentView {
            status: status.into(),
            desired,
            running,
            rollout: Some(rollout.into()),
            ..DeploymentView::default()
        };
        let view = |deployments| ServiceView { deployments, ..ServiceView::default() };
        let starting = rolling_phase(&view(vec![d("PRIMARY", 2, 1, "IN_PROGRESS"), d("ACTIVE", 2, 2, "COMPLETED")]));
        assert_eq!((starting.phase.as_str(), starting.running), ("scale_up", Running { old: 2, new: 1 }));
        let stopping = rolling_phase(&view(vec![d("PRIMARY", 2, 2, "IN_PROGRESS"), d("ACTIVE", 0, 1, "COMPLETED")]));
        assert_eq!(stopping.phase, "clean_up");
        let failed = rolling_phase(&view(vec![d("PRIMARY", 2, 0, "FAILED")]));
        assert_eq!((failed.phase.as_str(), failed.status.as_str()), ("rollback", "failed"));
    }
}
