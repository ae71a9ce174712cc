//! `[[autoscaling.schedule]]` as Application Auto Scaling scheduled actions on the service's
//! scalable target: each entry one action named `<stack>-schedule-<name>`, which at its cron
//! (in its time zone) sets the target's range, e.g. 0..=0 at night and back in the morning. The
//! actions of the stack are one resource (`scheduled-actions`): they are made, compared and
//! deleted together, and the plan and `status` show each entry's change on its own line.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{ScalableTargetAction, ScheduledAction};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;

use crate::access::{arn, Permission};
use crate::aws::Clients;
use crate::bill::Charge;
use crate::config::{next_change, Config, ScheduleEntry};
use crate::error::{ignore_not_found, AwsContext, StackError};
use crate::model::{
    before, Changed, Dep, Edge, Field, Key, Kind, Managed, Nodes, Outcome, Record, Removal, Scope, Shape, Sighting,
    Sweep,
};
use crate::progress::Line;
use crate::resources::autoscaling::{resource_id, stack_of, DIMENSION, NAMESPACE, SCALABLE_TARGET};
use crate::resources::cluster::CLUSTER;
use crate::wait::{self, budget};

const SCHEDULED_ACTION: Kind = Kind::new("application-autoscaling:scheduled-action");
/// Every scheduled action of the stack (one per `[[autoscaling.schedule]]` entry).
pub const SCHEDULED_ACTIONS: Key = Key::new("scheduled-actions", SCHEDULED_ACTION);

/// With `[[autoscaling.schedule]]` entries, or while the state records the actions (or they may
/// be found).
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    let wanted = shape.config().autoscaling.as_ref().is_some_and(|a| !a.schedule.is_empty());
    if wanted || shape.discovering_all() || shape.holds(SCHEDULED_ACTIONS) {
        nodes.managed(ScheduledActions);
    }
}

/// `<stack>-schedule-`: what every action of the stack is named with.
fn prefix(stack: &str) -> String {
    format!("{stack}-schedule-")
}

/// The action name of an entry.
fn action_name(stack: &str, entry: &ScheduleEntry) -> String {
    format!("{}{}", prefix(stack), entry.name)
}

/// One scheduled action, in comparable words.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    schedule: String,
    timezone: String,
    min: Option<i32>,
    max: Option<i32>,
}

impl Action {
    fn of(action: &ScheduledAction) -> Action {
        let range = action.scalable_target_action();
        Action {
            schedule: action.schedule().to_string(),
            // Absent: AWS's default, UTC.
            timezone: action.timezone().unwrap_or("UTC").to_string(),
            min: range.and_then(ScalableTargetAction::min_capacity),
            max: range.and_then(ScalableTargetAction::max_capacity),
        }
    }

    fn wanted(entry: &ScheduleEntry) -> Action {
        Action {
            schedule: entry.expression(),
            timezone: entry.timezone.clone(),
            min: Some(entry.min_count as i32),
            max: Some(entry.max_count as i32),
        }
    }

    fn text(&self) -> String {
        let count = |c: Option<i32>| c.map_or("unchanged".to_string(), |c| c.to_string());
        format!("{} {}, min {}, max {}", self.schedule, self.timezone, count(self.min), count(self.max))
    }
}

/// The stack's actions as AWS has them, by name.
pub struct ActionsLive {
    actions: BTreeMap<String, Action>,
}

/// What the config asks for, by action name.
fn wanted<'a>(ctx: &Scope<'a>) -> BTreeMap<String, (&'a ScheduleEntry, Action)> {
    let entries = ctx.config.autoscaling.as_ref().map(|a| a.schedule.as_slice()).unwrap_or_default();
    entries.iter().map(|e| (action_name(ctx.stack(), e), (e, Action::wanted(e)))).collect()
}

/// The actions named for the stack on its scalable target (the filters are AWS's: checked again).
async fn describe(ctx: &Scope<'_>) -> Result<BTreeMap<String, Action>, StackError> {
    let resource_id = resource_id(ctx);
    let prefix = prefix(ctx.stack());
    let mut pages = ctx
        .aws
        .autoscaling
        .describe_scheduled_actions()
        .service_namespace(NAMESPACE)
        .resource_id(&resource_id)
        .scalable_dimension(DIMENSION)
        .into_paginator()
        .send();
    let mut found = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx("describe the scheduled actions of", &resource_id)?;
        for action in page.scheduled_actions() {
            let ours = action.resource_id() == resource_id
                && action.scalable_dimension() == Some(&DIMENSION)
                && action.scheduled_action_name().starts_with(&prefix);
            if ours {
                found.insert(action.scheduled_action_name().to_string(), Action::of(action));
            }
        }
    }
    Ok(found)
}

/// Create or replace one action (PutScheduledAction is both). Right after its target is
/// registered AWS may not see the target yet.
async fn put(ctx: &Scope<'_>, line: &Line, name: &str, entry: &ScheduleEntry) -> Result<(), StackError> {
    let resource_id = resource_id(ctx);
    let range = ScalableTargetAction::builder()
        .min_capacity(entry.min_count as i32)
        .max_capacity(entry.max_count as i32)
        .build();
    let not_yet = |e: &StackError| e.has_code(&["ObjectNotFoundException"]);
    wait::retry_while(line, name, budget::IAM_PROPAGATION, not_yet, || async {
        ctx.aws
            .autoscaling
            .put_scheduled_action()
            .service_namespace(NAMESPACE)
            .resource_id(&resource_id)
            .scalable_dimension(DIMENSION)
            .scheduled_action_name(name)
            .schedule(entry.expression())
            .timezone(&entry.timezone)
            .scalable_target_action(range.clone())
            .send()
            .await
            .ctx("put scheduled action", name)
    })
    .await?;
    Ok(())
}

async fn delete(ctx: &Scope<'_>, name: &str) -> Result<(), StackError> {
    let resource_id = resource_id(ctx);
    ignore_not_found(
        ctx.aws
            .autoscaling
            .delete_scheduled_action()
            .service_namespace(NAMESPACE)
            .resource_id(&resource_id)
            .scalable_dimension(DIMENSION)
            .scheduled_action_name(name)
            .send()
            .await
            .ctx("delete scheduled action", name)
            .map(drop),
    )
}

/// Every scheduled action on an ECS service (made by anyone), named for the stack of its service.
fn sweep_actions(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let call = c.autoscaling.describe_scheduled_actions().service_namespace(NAMESPACE);
        let all = call.into_paginator().items().send().try_collect().await.ctx("describe", "scheduled actions")?;
        Ok(all
            .iter()
            .filter_map(|a| {
                let stack = stack_of(a.resource_id())?;
                let ours = a.scheduled_action_name().starts_with(&prefix(&stack));
                let sighting = Sighting::new(SCHEDULED_ACTION, a.scheduled_action_name());
                let resource = ours.then(|| SCHEDULED_ACTIONS.to_string());
                Some(Sighting { named_for: Some(stack), resource, ..sighting })
            })
            .collect())
    })
}

/// An entry of the schedule (by its name in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleField(String);

impl Field for ScheduleField {
    fn label(&self) -> String {
        format!("autoscaling.schedule {:?}", self.0)
    }
}

/// The stack's scheduled actions.
pub struct ScheduledActions;

#[async_trait]
impl Managed for ScheduledActions {
    type Live = ActionsLive;
    type Field = ScheduleField;

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_actions)
    }

    fn permissions(&self) -> Vec<Permission> {
        let target = arn("application-autoscaling", "scalable-target/*");
        vec![
            Permission::find("application-autoscaling:DescribeScheduledActions"),
            Permission::create("application-autoscaling:PutScheduledAction").on(target.clone()).tagged(),
            Permission::update("application-autoscaling:PutScheduledAction").on(target.clone()).tagged(),
            Permission::update("application-autoscaling:DeleteScheduledAction").on(target.clone()).tagged(),
            Permission::delete("application-autoscaling:DeleteScheduledAction").on(target).tagged(),
        ]
    }

    /// The actions bill nothing; the tasks' hours under the schedule are the service's.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        SCHEDULED_ACTIONS
    }

    fn needs(&self) -> Vec<Dep> {
        vec![SCALABLE_TARGET.into()]
    }

    fn reads(&self) -> Vec<Dep> {
        vec![CLUSTER.into()]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![before(
            SCALABLE_TARGET,
            "an action belongs to its target: DeregisterScalableTarget deletes it too, so it is deleted (and \
             forgotten) first",
        )]
    }

    /// Before the up pass, like the target: an action firing while `up` runs would move the range
    /// the up pass sets.
    fn removal(&self, _config: &Config) -> Removal {
        Removal::BeforeUp
    }

    /// By name prefix under the stack's scalable target, whose tags were checked (actions carry
    /// none).
    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<ActionsLive>, StackError> {
        if ctx.id(SCALABLE_TARGET).is_none() {
            return Ok(None);
        }
        let actions = describe(ctx).await?;
        Ok((!actions.is_empty()).then_some(ActionsLive { actions }))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &ActionsLive) -> Record {
        Record::id(live.actions.keys().cloned().collect::<Vec<_>>().join(","))
    }

    fn diff(&self, ctx: &Scope<'_>, live: &ActionsLive) -> Result<Vec<Changed<ScheduleField>>, StackError> {
        let want = wanted(ctx);
        let entry_name = |name: &str| name.strip_prefix(&prefix(ctx.stack())).unwrap_or(name).to_string();
        let mut changes = vec![];
        for (name, (_, action)) in &want {
            let have = live.actions.get(name);
            if have != Some(action) {
                let from = have.map_or("absent".to_string(), Action::text);
                changes.push(Changed::new(ScheduleField(entry_name(name)), from, action.text(), false));
            }
        }
        for (name, have) in live.actions.iter().filter(|(name, _)| !want.contains_key(*name)) {
            let to = "absent (`up` deletes the scheduled action)";
            changes.push(Changed::new(ScheduleField(entry_name(name)), have.text(), to, false));
        }
        Ok(changes)
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<ActionsLive, StackError> {
        ctx.need(SCALABLE_TARGET)?;
        let want = wanted(ctx);
        if want.is_empty() {
            return Err(StackError::Failed {
                resource: SCHEDULED_ACTIONS.to_string(),
                message: "cannot be created without [[autoscaling.schedule]] in the config".into(),
            });
        }
        for (name, (entry, _)) in &want {
            put(ctx, line, name, entry).await?;
        }
        Ok(ActionsLive { actions: want.into_iter().map(|(name, (_, action))| (name, action)).collect() })
    }

    /// Put what differs or is missing, delete what the config no longer has.
    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &ActionsLive,
        _changes: &[Changed<ScheduleField>],
    ) -> Result<Option<ActionsLive>, StackError> {
        let want = wanted(ctx);
        for (name, (entry, action)) in &want {
            if live.actions.get(name) != Some(action) {
                put(ctx, line, name, entry).await?;
            }
        }
        for name in live.actions.keys().filter(|name| !want.contains_key(*name)) {
            delete(ctx, name).await?;
        }
        Ok(Some(ActionsLive { actions: want.into_iter().map(|(name, (_, action))| (name, action)).collect() }))
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: ActionsLive) -> Result<Outcome, StackError> {
        for name in live.actions.keys() {
            delete(ctx, name).await?;
        }
        Ok(Outcome::Deleted)
    }
}

/// The next change of the range among the actions AWS has for the stack.
#[derive(Debug, Clone, Serialize)]
pub struct NextChange {
    /// When, in UTC (RFC 3339).
    pub at: String,
    /// When, in the action's time zone.
    pub local: String,
    pub timezone: String,
    /// The entry's name (its action is `<stack>-schedule-<name>`).
    pub name: String,
    pub min_count: u32,
    pub max_count: u32,
}

/// What `status` shows: the next scheduled change of the range, from the actions as AWS has them
/// (`found`: whether the live check found them).
pub async fn next_scheduled_change(ctx: &Scope<'_>, found: bool) -> Result<Option<NextChange>, StackError> {
    if !found || ctx.id(SCALABLE_TARGET).is_none() {
        return Ok(None);
    }
    let prefix = prefix(ctx.stack());
    let entries: Vec<ScheduleEntry> = describe(ctx)
        .await?
        .into_iter()
        .filter_map(|(name, a)| {
            Some(ScheduleEntry {
                name: name.strip_prefix(&prefix)?.to_string(),
                cron: a.schedule,
                min_count: u32::try_from(a.min?).ok()?,
                max_count: u32::try_from(a.max?).ok()?,
                timezone: a.timezone,
            })
        })
        .collect();
    Ok(upcoming(&entries, Utc::now()))
}

fn upcoming(entries: &[ScheduleEntry], now: DateTime<Utc>) -> Option<NextChange> {
    let (at, entry) = next_change(entries, now)?;
    let zone: chrono_tz::Tz = entry.timezone.parse().ok()?;
    Some(NextChange {
        at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        local: at.with_timezone(&zone).format("%a %Y-%m-%d %H:%M").to_string(),
        timezone: entry.timezone.clone(),
        name: entry.name.clone(),
        min_count: entry.min_count,
        max_count: entry.max_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_change_reads_in_the_entrys_zone() {
        let entry = ScheduleEntry {
            name: "night".into(),
            cron: "cron(0 20 ? * MON-FRI *)".into(),
            min_count: 0,
            max_count: 0,
            timezone: "Europe/Berlin".into(),
        };
        let now = DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z").unwrap().with_timezone(&Utc);
        let next = upcoming(std::slice::from_ref(&entry), now).unwrap();
        assert_eq!(next.at, "2026-12-03T19:00:00Z");
        assert_eq!(next.local, "Thu 2026-12-03 20:00");
        assert_eq!((next.name.as_str(), next.min_count, next.max_count), ("night", 0, 0));
        assert_eq!(action_name("app", &entry), "app-schedule-night");
        assert_eq!(Action::wanted(&entry).text(), "cron(0 20 ? * MON-FRI *) Europe/Berlin, min 0, max 0");
    }
}
