//! ECS's traffic shifting, for a `[deploy] strategy` of canary, linear or blue_green: the
//! alternate target group the new revision's tasks start in, the production listener rule ECS
//! moves the traffic with (forward only, weighted to both target groups, on the traffic listener),
//! and the infrastructure role ECS assumes to do so. The service names all three in its
//! `loadBalancers[].advancedConfiguration`; rolling needs none of them, and `up` deletes them once
//! the service no longer names them (the service goes first: `gone_before`).

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, PathPatternConditionConfig, Rule, RuleCondition, TargetGroupTuple,
};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::access::{self, arn, global_arn, Condition, Permission, Verb, STACK};
use crate::aws::Clients;
use crate::bill::Charge;
use crate::config::Config;
use crate::error::{found, ignore_not_found, returned, AwsContext, StackError};
use crate::model::{
    before, made_for, owner_tags, tags::Seen, Attr, Changed, Dep, Diff, Edge, Field, Key, Kind, Lifecycle, Managed,
    Nodes, Outcome, Record, Scope, Shape, Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::iam::{self, arn_home, ArnHome, RoleField, RoleLive};
use crate::resources::listener_https::LISTENER_HTTPS;
use crate::resources::load_balancer::{
    check_tags, create_target_group, delete_target_group, elb_retag, elb_tags, find_target_group_at,
    load_balancer_name, not_found, replacement_target_group_name, show_action, sweep_target_groups, tags_of,
    target_group_diff, target_group_name, target_group_permissions, update_target_group, TargetGroupField, TgLive,
    LISTENER, LOAD_BALANCER, TARGET_GROUP,
};
use crate::resources::network::VPC;
use crate::resources::tags::TagPairs;

use crate::resources::serving::{
    alternate_name_beside, switching_from_alternate, target_group_name_in, TARGET_GROUP_NAME,
};
pub use crate::resources::serving::{alternate_target_group_name, ALTERNATE_TARGET_GROUP, PRODUCTION_RULE};

pub const INFRASTRUCTURE_ROLE: Key = Key::new("role-infrastructure", Kind::new("iam:role"));
pub const INFRASTRUCTURE_ROLE_ARN: Attr = Attr::new(INFRASTRUCTURE_ROLE, "arn");
/// The listener the production rule is on.
const RULE_LISTENER: Attr = Attr::new(PRODUCTION_RULE, "listener");

/// The production rule's priority: the last of any rule (a rule of the user's with a lower number
/// goes first), before the listener's default action.
const RULE_PRIORITY: i32 = 50_000;
const EVERY_PATH: &str = "/*";

/// The infrastructure role's name: `<stack>-ecs-infrastructure`.
pub fn infrastructure_role_name(stack: &str) -> String {
    format!("{stack}-ecs-infrastructure")
}

/// The three, with a strategy that shifts traffic, or while recorded (for `up` to delete them once
/// the service no longer names them, and for `down`), or for `down --name`.
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    let wanted = shape.config().deploy.strategy.shifts_traffic() || shape.discovering_all();
    if wanted || shape.holds(ALTERNATE_TARGET_GROUP) {
        nodes.managed(AlternateTargetGroup);
    }
    if wanted || shape.holds(INFRASTRUCTURE_ROLE) {
        nodes.managed(InfrastructureRole);
    }
    if wanted || shape.holds(PRODUCTION_RULE) {
        nodes.managed(ProductionRule);
    }
}

/// The listener production traffic arrives on: the HTTPS one with `[https]` (the HTTP one then
/// redirects to it; `config` refuses a strategy with an HTTP listener that forwards beside it).
fn traffic_listener(config: &Config) -> Key {
    if config.https.is_some() {
        LISTENER_HTTPS
    } else {
        LISTENER
    }
}

// ---------------------------------------------------------------- the alternate target group

/// The second target group: as the stack's target group in every setting, the new revision's
/// tasks start in it during a deployment (then the two take turns).
pub struct AlternateTargetGroup;

#[async_trait]
impl Managed for AlternateTargetGroup {
    type Live = TgLive;
    type Field = TargetGroupField;

    fn key(&self) -> Key {
        ALTERNATE_TARGET_GROUP
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_target_groups)
    }

    fn permissions(&self) -> Vec<Permission> {
        target_group_permissions(&alternate_target_group_name(STACK))
    }

    /// Target groups bill nothing of their own.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    /// The target group: its name decides this one's, and this one is never it.
    fn needs(&self) -> Vec<Dep> {
        vec![VPC.into(), TARGET_GROUP.into()]
    }

    /// The production rule, on a switch to rolling: which group is idle.
    fn reads(&self) -> Vec<Dep> {
        vec![Dep::IfPresent(PRODUCTION_RULE)]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![before(VPC, "a target group is bound to its VPC")]
    }

    /// A new container port cannot be given to it in place, and ECS may be serving from it.
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            advice: Some(
                "set [deploy] strategy = \"rolling\" and run `up` (the target group that serves stays, the other \
                 one is deleted), change the port and run `up`, then set the strategy back",
            ),
            ..Lifecycle::default()
        }
    }

    fn removal_note(&self, _found: &crate::model::Inspection) -> Option<String> {
        Some("deleted once the service no longer names it (strategy rolling)".into())
    }

    /// On a switch to rolling, the group the production rule does not serve from (the target
    /// group becomes the one that serves); else by its recorded ARN, or by the name beside the
    /// target group's, never the target group itself.
    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<TgLive>, StackError> {
        if let Some((_, idle)) = switching_from_alternate(ctx).await? {
            let name = target_group_name_in(&idle).to_string();
            return find_target_group_at(ctx, ALTERNATE_TARGET_GROUP, Some(idle), &name).await;
        }
        let primary = ctx.id(TARGET_GROUP);
        let recorded = ctx.id(ALTERNATE_TARGET_GROUP).filter(|arn| Some(arn) != primary.as_ref());
        let name = alternate_name_beside(ctx.stack(), ctx.attr(TARGET_GROUP_NAME).as_deref());
        let found = find_target_group_at(ctx, ALTERNATE_TARGET_GROUP, recorded, &name).await?;
        Ok(found.filter(|live| live.tg.target_group_arn() != primary.as_deref()))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &TgLive) -> Record {
        Record::id(live.tg.target_group_arn().unwrap_or_default())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &TgLive) -> Result<Vec<Changed<TargetGroupField>>, StackError> {
        Ok(target_group_diff(ctx, live))
    }

    async fn tags(&self, ctx: &Scope<'_>, live: &TgLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        elb_tags(ctx, live.tg.target_group_arn().unwrap_or_default()).await
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &TgLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        elb_retag(ctx, live.tg.target_group_arn().unwrap_or_default(), put, remove).await
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<TgLive, StackError> {
        let name = alternate_name_beside(ctx.stack(), ctx.attr(TARGET_GROUP_NAME).as_deref());
        create_target_group(ctx, &name).await
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &TgLive,
        changes: &[Changed<TargetGroupField>],
    ) -> Result<Option<TgLive>, StackError> {
        update_target_group(ctx, live, changes).await?;
        Ok(None)
    }

    /// ResourceInUse while the production rule forwards to it: the rule goes first.
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: TgLive) -> Result<Outcome, StackError> {
        delete_target_group(ctx, line, live.tg.target_group_arn().unwrap_or_default()).await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- the infrastructure role

/// The role ECS assumes to move the production rule's weights and (de)register the tasks in the
/// two target groups: `AmazonECSInfrastructureRolePolicyForLoadBalancers`'s ALB actions, inline and
/// scoped to the stack's load balancer and target groups.
pub struct InfrastructureRole;

/// ECS (`ecs.amazonaws.com`, as AWS's guide for the infrastructure role trusts it).
fn infrastructure_trust() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowAccessToECSForInfrastructureManagement",
            "Effect": "Allow",
            "Principal": {"Service": "ecs.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The managed policy's statements for an Application Load Balancer, on the stack's resources
/// only (`home`: where the load balancer lives).
pub fn infrastructure_policy(stack: &str, home: &ArnHome) -> Value {
    let ArnHome { partition, region, account } = home;
    let elb = |resource: String| format!("arn:{partition}:elasticloadbalancing:{region}:{account}:{resource}");
    let lb = load_balancer_name(stack);
    let groups: Vec<String> =
        [target_group_name(stack), replacement_target_group_name(stack), alternate_target_group_name(stack)]
            .into_iter()
            .map(|name| elb(format!("targetgroup/{name}/*")))
            .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ELBReadOperations",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetHealth"
                ],
                "Resource": "*"
            },
            {
                "Sid": "TargetGroupOperations",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                "Resource": groups
            },
            {
                "Sid": "ALBModifyListeners",
                "Effect": "Allow",
                "Action": "elasticloadbalancing:ModifyListener",
                "Resource": elb(format!("listener/app/{lb}/*/*"))
            },
            {
                "Sid": "ALBModifyRules",
                "Effect": "Allow",
                "Action": "elasticloadbalancing:ModifyRule",
                "Resource": elb(format!("listener-rule/app/{lb}/*/*/*"))
            }
        ]
    })
}

fn wanted_role(ctx: &Scope<'_>) -> Result<(Value, Value), StackError> {
    let home = arn_home(&ctx.need(LOAD_BALANCER)?).unwrap_or_default();
    Ok((infrastructure_policy(ctx.stack(), &home), infrastructure_trust()))
}

/// Every role named as a stack's infrastructure role.
fn sweep_roles(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c.iam.list_roles().into_paginator().items().send().try_collect().await.ctx("list", "IAM roles")?;
        Ok(all
            .iter()
            .filter(|r| made_for(r.role_name(), infrastructure_role_name).is_some())
            .map(|r| {
                let sighting = Sighting::new(INFRASTRUCTURE_ROLE.kind(), r.role_name())
                    .named(r.role_name(), |n| made_for(n, infrastructure_role_name));
                Sighting { resource: Some(INFRASTRUCTURE_ROLE.to_string()), ..sighting }
            })
            .collect())
    })
}

#[async_trait]
impl Managed for InfrastructureRole {
    type Live = RoleLive;
    type Field = RoleField;

    fn key(&self) -> Key {
        INFRASTRUCTURE_ROLE
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_roles)
    }

    /// Its own calls, and passing it to ECS (CreateService / UpdateService name it in the
    /// service's `advancedConfiguration`: IAM checks iam:PassRole on the caller).
    fn permissions(&self) -> Vec<Permission> {
        let role = global_arn("iam", true, &format!("role/{}", infrastructure_role_name(STACK)));
        let mut permissions = iam::role_permissions(role.clone());
        for verb in [Verb::Create, Verb::Update] {
            permissions.push(
                Permission::new(verb, "iam:PassRole")
                    .on(role.clone())
                    .when(Condition::PassedTo("ecs.amazonaws.com"))
                    .implied(),
            );
        }
        permissions
    }

    /// IAM bills nothing.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn needs(&self) -> Vec<Dep> {
        vec![LOAD_BALANCER.into()]
    }

    fn removal_note(&self, _found: &crate::model::Inspection) -> Option<String> {
        Some("deleted once the service no longer names it (strategy rolling)".into())
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<RoleLive>, StackError> {
        let name = ctx.id(INFRASTRUCTURE_ROLE).unwrap_or_else(|| infrastructure_role_name(ctx.stack()));
        iam::read_role(ctx, INFRASTRUCTURE_ROLE, &name).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &RoleLive) -> Record {
        Record::id(&live.name).with(INFRASTRUCTURE_ROLE_ARN, &live.arn)
    }

    fn diff(&self, ctx: &Scope<'_>, live: &RoleLive) -> Result<Vec<Changed<RoleField>>, StackError> {
        let (policy, trust) = wanted_role(ctx)?;
        Ok(iam::role_diff(ctx, live, &policy, &trust))
    }

    async fn tags(&self, _ctx: &Scope<'_>, live: &RoleLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(Some(live.tags.clone()))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &RoleLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        iam::retag_role(ctx, live, put, remove).await
    }

    /// Made without its policy, which the update that follows writes.
    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<RoleLive, StackError> {
        let (_, trust) = wanted_role(ctx)?;
        iam::create_role(ctx, INFRASTRUCTURE_ROLE, &infrastructure_role_name(ctx.stack()), &trust).await
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &RoleLive,
        changes: &[Changed<RoleField>],
    ) -> Result<Option<RoleLive>, StackError> {
        let (policy, trust) = wanted_role(ctx)?;
        iam::update_role(ctx, live, changes, &policy, &trust).await?;
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: RoleLive) -> Result<Outcome, StackError> {
        iam::delete_role(ctx, &live).await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- the production rule

/// The rule on the traffic listener that forwards every path to both target groups, weighted
/// 100/0 when made; ECS moves the weights during a deployment. While it routes, the listener's
/// default action answers 404 (what no rule takes).
pub struct ProductionRule;

/// What the rule can differ in. Its weights are ECS's to move: not compared.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleField {
    /// The listener it is on (the HTTPS one with `[https]`): a rule cannot move.
    Listener,
    /// Forward to exactly the stack's two target groups.
    Action,
    /// Every path.
    Condition,
}

impl Field for RuleField {
    fn label(&self) -> String {
        match self {
            RuleField::Listener => "listener (https)",
            RuleField::Action => "action",
            RuleField::Condition => "condition",
        }
        .into()
    }
}

/// The rule as DescribeRules answers it, and the listener it was found on.
pub struct RuleLive {
    rule: Rule,
    listener: String,
}

fn every_path() -> RuleCondition {
    let paths = PathPatternConditionConfig::builder().values(EVERY_PATH).build();
    RuleCondition::builder().field("path-pattern").path_pattern_config(paths).build()
}

/// Forward to both target groups, `serving` with all the traffic.
fn forward_both(serving: &str, other: &str) -> Action {
    let tuple = |arn: &str, weight: i32| TargetGroupTuple::builder().target_group_arn(arn).weight(weight).build();
    let config =
        ForwardActionConfig::builder().target_groups(tuple(serving, 100)).target_groups(tuple(other, 0)).build();
    Action::builder().r#type(ActionTypeEnum::Forward).forward_config(config).build()
}

/// The target groups a forward action sends to, sorted; another action as the plan shows it.
fn show_forward(actions: &[Action]) -> String {
    let Some(action) = actions.iter().min_by_key(|a| a.order().unwrap_or(0)) else { return "none".into() };
    if action.r#type() != Some(&ActionTypeEnum::Forward) {
        return show_action(Some(action));
    }
    let groups: Vec<&str> = match action.forward_config() {
        Some(config) => config.target_groups().iter().filter_map(|t| t.target_group_arn()).collect(),
        None => action.target_group_arn().into_iter().collect(),
    };
    let mut names: Vec<&str> = groups.iter().map(|arn| target_group_name_in(arn)).collect();
    names.sort_unstable();
    names.dedup();
    format!("forward to {}", names.join(" + "))
}

fn show_conditions(conditions: &[RuleCondition]) -> String {
    let shown: Vec<String> = conditions
        .iter()
        .map(|c| {
            let values = c.path_pattern_config().map(|p| p.values()).filter(|v| !v.is_empty()).unwrap_or(c.values());
            format!("{} {}", c.field().unwrap_or("?"), values.join(","))
        })
        .collect();
    shown.join("; ")
}

/// Of the stack's two target groups, the one the rule gives the most traffic (the primary one
/// when it names neither).
fn serving_target_group(rule: &Rule, primary: &str, alternate: &str) -> String {
    let weighted = rule.actions().iter().filter_map(|a| a.forward_config()).flat_map(|c| c.target_groups());
    weighted
        .filter(|t| [primary, alternate].contains(&t.target_group_arn().unwrap_or_default()))
        .max_by_key(|t| t.weight().unwrap_or(0))
        .and_then(|t| t.target_group_arn())
        .unwrap_or(primary)
        .to_string()
}

async fn describe_rules(ctx: &Scope<'_>, listener: Option<&str>, rule: Option<&str>) -> Result<Vec<Rule>, StackError> {
    let call = ctx.aws.elb.describe_rules().set_listener_arn(listener.map(str::to_string));
    let call = call.set_rule_arns(rule.map(|r| vec![r.to_string()]));
    let out = found(call.send().await.ctx("describe the rules of", listener.or(rule).unwrap_or_default()))?;
    Ok(out.map(|o| o.rules().to_vec()).unwrap_or_default())
}

/// Every non-default rule on a listener of a load balancer named as a stack's, with its tags: a
/// stack's by its tag only (a rule of the user's on the stack's listener is not the stack's).
fn sweep_rules(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c.elb.describe_load_balancers().into_paginator().items().send().try_collect().await;
        let mut sightings = vec![];
        for lb in all.ctx("describe", "load balancers")? {
            if lb.load_balancer_name().is_none_or(|n| made_for(n, load_balancer_name).is_none()) {
                continue;
            }
            let arn = lb.load_balancer_arn().unwrap_or_default();
            let listeners = c.elb.describe_listeners().load_balancer_arn(arn).send().await;
            let listeners = found(listeners.ctx("describe the listeners of", arn))?;
            for listener in listeners.iter().flat_map(|o| o.listeners()).filter_map(|l| l.listener_arn()) {
                let rules = c.elb.describe_rules().listener_arn(listener).send().await;
                let rules = found(rules.ctx("describe the rules of", listener))?;
                let arns: Vec<String> = rules
                    .iter()
                    .flat_map(|o| o.rules())
                    .filter(|r| r.is_default() != Some(true))
                    .filter_map(|r| r.rule_arn().map(str::to_string))
                    .collect();
                for (rule, tags) in tags_of(c, arns, "listener rules").await? {
                    sightings.push(Sighting::new(PRODUCTION_RULE.kind(), &rule).owned(owner_tags(tags.pairs())));
                }
            }
        }
        Ok(sightings)
    })
}

impl ProductionRule {
    /// The rule on `listener` tagged as this stack's production rule, if any (a rule of someone
    /// else's on it is left alone).
    async fn adopt(&self, ctx: &Scope<'_>, listener: &str) -> Result<Option<Rule>, StackError> {
        let rules: Vec<Rule> = describe_rules(ctx, Some(listener), None)
            .await?
            .into_iter()
            .filter(|r| r.is_default() != Some(true))
            .collect();
        let arns = rules.iter().filter_map(|r| r.rule_arn().map(str::to_string)).collect();
        for (arn, tags) in tags_of(ctx.aws, arns, "listener rules").await? {
            let pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            if ctx.owned(PRODUCTION_RULE, format!("listener rule {arn}"), pairs.clone()).is_ok() {
                ctx.run::<Seen>().note(&arn, pairs);
                return Ok(rules.into_iter().find(|r| r.rule_arn() == Some(arn.as_str())));
            }
        }
        Ok(None)
    }

    /// The listener's default action while the rule routes: 404 for what no rule takes.
    async fn answer_404_by_default(&self, ctx: &Scope<'_>, listener: &str) -> Result<(), StackError> {
        let call = ctx.aws.elb.modify_listener().listener_arn(listener).default_actions(not_found());
        call.send().await.ctx("set the default action of listener", listener).map(drop)
    }
}

#[async_trait]
impl Managed for ProductionRule {
    type Live = RuleLive;
    type Field = RuleField;

    fn key(&self) -> Key {
        PRODUCTION_RULE
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_rules)
    }

    fn permissions(&self) -> Vec<Permission> {
        let lb = load_balancer_name(STACK);
        let listener = arn("elasticloadbalancing", &format!("listener/app/{lb}/*/*"));
        let rule = arn("elasticloadbalancing", &format!("listener-rule/app/{lb}/*/*/*"));
        vec![
            Permission::find("elasticloadbalancing:DescribeRules"),
            Permission::find("elasticloadbalancing:DescribeTags"),
            // The rules on the listeners of the load balancers named as stacks' (the leak check).
            Permission::inspect("elasticloadbalancing:DescribeLoadBalancers"),
            Permission::inspect("elasticloadbalancing:DescribeListeners"),
            Permission::create("elasticloadbalancing:CreateRule").on(listener.clone()).tagged(),
            Permission::create("elasticloadbalancing:CreateRule").on(rule.clone()).tagging(),
            access::tags_on_create("elasticloadbalancing:AddTags", "CreateRule", rule.clone()),
            // The traffic listener's default action becomes 404 once the rule routes.
            Permission::create("elasticloadbalancing:ModifyListener").on(listener).tagged(),
            access::retagging("elasticloadbalancing:AddTags", rule.clone()),
            access::retagging("elasticloadbalancing:RemoveTags", rule.clone()),
            Permission::update("elasticloadbalancing:ModifyRule").on(rule.clone()).tagged(),
            Permission::delete("elasticloadbalancing:DeleteRule").on(rule).tagged(),
        ]
    }

    /// A listener rule has no price of its own; it adds to the load balancer's capacity units only
    /// through rule evaluations, of which the first 10 per request are free: one rule adds nothing.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn needs(&self) -> Vec<Dep> {
        vec![LISTENER.into(), Dep::IfPresent(LISTENER_HTTPS), TARGET_GROUP.into(), ALTERNATE_TARGET_GROUP.into()]
    }

    fn gone_before(&self) -> Vec<Edge> {
        const FORWARDS: &str = "DeleteTargetGroup fails with ResourceInUse while a rule forwards to it";
        vec![
            before(TARGET_GROUP, FORWARDS),
            before(ALTERNATE_TARGET_GROUP, FORWARDS),
            before(LISTENER, "a rule sits on its listener"),
            before(Dep::IfPresent(LISTENER_HTTPS), "a rule sits on its listener"),
        ]
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            advice: Some(
                "set [deploy] strategy = \"rolling\" and run `up` (the rule is deleted), change [https] and run `up`, \
                 then set the strategy back",
            ),
            ..Lifecycle::default()
        }
    }

    fn removal_note(&self, _found: &crate::model::Inspection) -> Option<String> {
        Some("the listener's default action forwards to the target group again first".into())
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<RuleLive>, StackError> {
        if let Some(arn) = ctx.id(PRODUCTION_RULE) {
            if let Some(rule) = describe_rules(ctx, None, Some(&arn)).await?.into_iter().next() {
                check_tags(ctx, PRODUCTION_RULE, &arn, &arn).await?;
                let listener = ctx.attr(RULE_LISTENER).unwrap_or_default();
                return Ok(Some(RuleLive { rule, listener }));
            }
        }
        let Some(listener) = ctx.id(traffic_listener(ctx.config)) else { return Ok(None) };
        Ok(self.adopt(ctx, &listener).await?.map(|rule| RuleLive { rule, listener }))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &RuleLive) -> Record {
        Record::id(live.rule.rule_arn().unwrap_or_default()).with(RULE_LISTENER, &live.listener)
    }

    /// Forward to exactly the two target groups, on every path, on the traffic listener; the
    /// weights are ECS's (whichever group serves after a deployment is not drift).
    fn diff(&self, ctx: &Scope<'_>, live: &RuleLive) -> Result<Vec<Changed<RuleField>>, StackError> {
        let (primary, alternate) = (ctx.need(TARGET_GROUP)?, ctx.need(ALTERNATE_TARGET_GROUP)?);
        let listener = ctx.need(traffic_listener(ctx.config))?;
        let mut diff = Diff::new();
        diff.replace(RuleField::Listener, &live.listener, &listener)
            .field(
                RuleField::Action,
                &show_forward(live.rule.actions()),
                &show_forward(&[forward_both(&primary, &alternate)]),
            )
            .field(RuleField::Condition, &show_conditions(live.rule.conditions()), &show_conditions(&[every_path()]));
        Ok(diff.into_changes())
    }

    async fn tags(&self, ctx: &Scope<'_>, live: &RuleLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        elb_tags(ctx, live.rule.rule_arn().unwrap_or_default()).await
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &RuleLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        elb_retag(ctx, live.rule.rule_arn().unwrap_or_default(), put, remove).await
    }

    /// All the traffic to the target group, none to the alternate one; then the listener's default
    /// action answers 404 (the rule takes every path).
    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<RuleLive, StackError> {
        let (primary, alternate) = (ctx.need(TARGET_GROUP)?, ctx.need(ALTERNATE_TARGET_GROUP)?);
        let listener = ctx.need(traffic_listener(ctx.config))?;
        let out = ctx
            .aws
            .elb
            .create_rule()
            .listener_arn(&listener)
            .priority(RULE_PRIORITY)
            .conditions(every_path())
            .actions(forward_both(&primary, &alternate))
            .set_tags(Some(ctx.sdk_tags(&ctx.name("production-rule"))))
            .send()
            .await
            .ctx("create the production rule on", &listener)?;
        let rule = returned(out.rules().first().cloned(), "production rule", "create returned no rule")?;
        let live = RuleLive { rule, listener: listener.clone() };
        ctx.record(&self.record(ctx, &live)).await?;
        self.answer_404_by_default(ctx, &listener).await?;
        Ok(live)
    }

    /// Forward to both again, the group serving now keeping all the traffic.
    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &RuleLive,
        _changes: &[Changed<RuleField>],
    ) -> Result<Option<RuleLive>, StackError> {
        let (primary, alternate) = (ctx.need(TARGET_GROUP)?, ctx.need(ALTERNATE_TARGET_GROUP)?);
        let serving = serving_target_group(&live.rule, &primary, &alternate);
        let other = if serving == primary { alternate } else { primary };
        let arn = live.rule.rule_arn().unwrap_or_default();
        let call =
            ctx.aws.elb.modify_rule().rule_arn(arn).conditions(every_path()).actions(forward_both(&serving, &other));
        call.send().await.ctx("update the production rule", arn)?;
        Ok(None)
    }

    /// The listener already forwards by default again (`up` changed it before deleting this; `down`
    /// deletes it).
    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: RuleLive) -> Result<Outcome, StackError> {
        let arn = live.rule.rule_arn().unwrap_or_default();
        ignore_not_found(
            ctx.aws.elb.delete_rule().rule_arn(arn).send().await.ctx("delete the production rule", arn).map(drop),
        )?;
        Ok(Outcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use crate::model::Removal;
    use crate::resources::service::SERVICE;
    use crate::resources::stack;
    use crate::state::{Recorded, State};

    fn config(strategy: &str, extra: &str) -> Config {
        let text = DEFAULT_TOML.replace("strategy = \"rolling\"", &format!("strategy = \"{strategy}\""));
        Config::parse("t", &format!("{text}\n{extra}")).unwrap()
    }

    const KEYS: [Key; 3] = [ALTERNATE_TARGET_GROUP, PRODUCTION_RULE, INFRASTRUCTURE_ROLE];

    #[test]
    fn a_shifting_strategy_orders_its_three_before_the_service_and_after_it_down() {
        let rolling = stack(&Shape::of(&config("rolling", ""))).unwrap();
        assert!(KEYS.iter().all(|k| rolling.get(*k).is_none()), "rolling needs none");
        for strategy in ["canary", "linear", "blue_green"] {
            let graph = stack(&Shape::of(&config(strategy, ""))).unwrap();
            let service = graph.needs_of(SERVICE);
            assert!(KEYS.iter().all(|k| service.contains(k)), "{strategy}: {service:?}");
            let rule = graph.needs_of(PRODUCTION_RULE);
            for need in [LISTENER, TARGET_GROUP, ALTERNATE_TARGET_GROUP] {
                assert!(rule.contains(&need), "{need}");
            }
            assert!(graph.teardown_after(ALTERNATE_TARGET_GROUP).contains(&PRODUCTION_RULE), "ResourceInUse");
            assert!(graph.teardown_after(TARGET_GROUP).contains(&PRODUCTION_RULE));
            for key in KEYS {
                assert!(graph.teardown_after(key).contains(&SERVICE), "{key}: the service names it until it goes");
            }
        }
        // With [https] the rule waits for the HTTPS listener and goes on it.
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
        let https = config("canary", &format!("[https]\ncertificate_arn = \"{arn}\"\n"));
        assert_eq!(traffic_listener(&https), LISTENER_HTTPS);
        assert!(stack(&Shape::of(&https)).unwrap().needs_of(PRODUCTION_RULE).contains(&LISTENER_HTTPS));
        assert_eq!(traffic_listener(&config("canary", "")), LISTENER);
    }

    #[test]
    fn back_to_rolling_the_recorded_three_are_deleted_after_the_up_pass() {
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        for key in KEYS {
            let entry = Recorded { kind: key.kind().label().into(), id: "i".into(), attrs: Default::default() };
            state.resources.insert(key.to_string(), entry);
        }
        let rolling = config("rolling", "");
        let graph = stack(&Shape::covering(&rolling, &state)).unwrap();
        for key in KEYS {
            assert_eq!(graph.get(key).map(|n| n.removal(&rolling)), Some(Removal::AfterUp), "{key}");
        }
        let all = stack(&Shape::discovering(&rolling)).unwrap();
        assert!(KEYS.iter().all(|k| all.get(*k).is_some()), "down --name finds them");
    }

    #[test]
    fn names_never_collide_with_another_stacks_target_groups_and_the_policy_is_the_stacks() {
        use crate::resources::load_balancer::stack_of_target_group;
        assert_eq!(stack_of_target_group(&alternate_target_group_name("app")).as_deref(), Some("app"));
        assert_eq!(stack_of_target_group("app-tg-alt-tg").as_deref(), Some("app-tg-alt"));
        assert_eq!(stack_of_target_group("app-tg2").as_deref(), Some("app"));
        assert!(alternate_target_group_name(&"a".repeat(20)).len() <= 32, "ELB's limit");
        assert!(infrastructure_role_name(&"a".repeat(20)).len() <= 64, "IAM's limit");
        let home = ArnHome { partition: "aws".into(), region: "us-east-1".into(), account: "1".into() };
        let policy = infrastructure_policy("app", &home).to_string();
        for scoped in [
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/app-tg-alt/*",
            "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/app-alb/*/*/*",
            "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/app-alb/*/*",
        ] {
            assert!(policy.contains(scoped), "{scoped}: {policy}");
        }
        assert!(!policy.contains("targetgroup/*/*"), "never every target group");
    }

    #[test]
    fn the_rule_is_compared_on_its_two_groups_not_their_weights() {
        let (tg, alt) = ("arn:x:targetgroup/app-tg/1", "arn:x:targetgroup/app-tg-alt/2");
        let made = forward_both(tg, alt);
        let shifted = forward_both(alt, tg);
        assert_eq!(
            show_forward(std::slice::from_ref(&made)),
            show_forward(std::slice::from_ref(&shifted)),
            "ECS moved the weights"
        );
        assert_eq!(show_forward(&[made]), "forward to app-tg + app-tg-alt");
        let rule = Rule::builder().actions(shifted).build();
        assert_eq!(serving_target_group(&rule, tg, alt), alt, "the alternate serves after a shift");
        assert_eq!(show_forward(&[not_found()]), "fixed-response 404");
        assert_eq!(show_conditions(&[every_path()]), "path-pattern /*");
    }
}
