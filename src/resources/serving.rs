//! What the load balancer sends requests to: the target group's key and the ports the tasks serve
//! on, read by the target group (which records them) and the security groups (which let them in);
//! and, with a `[deploy] strategy` that shifts traffic, the production listener rule that routes
//! instead of the traffic listener's default action (read by the listeners, made in `traffic`).

use crate::error::{found, AwsContext, StackError};
use crate::model::{Attr, Key, Kind, Scope};

pub const TARGET_GROUP: Key = Key::new("target-group", Kind::new("elbv2:target-group"));
/// The target group's name (`<stack>-tg`, its replacement's, or the alternate one's name once a
/// switch to rolling kept the group that served).
pub const TARGET_GROUP_NAME: Attr = Attr::new(TARGET_GROUP, "name");
/// The second target group of a `[deploy] strategy` that shifts traffic.
pub const ALTERNATE_TARGET_GROUP: Key = Key::new("target-group-alternate", Kind::new("elbv2:target-group"));
/// The port of the target group the service is on.
pub const TARGET_GROUP_PORT: Attr = Attr::new(TARGET_GROUP, "port");
/// While `up` replaces the target group (a new container port): the old one's port, until the old
/// target group is deleted.
pub const REPLACES_PORT: Attr = Attr::new(TARGET_GROUP, "replaces_port");
/// The listener rule ECS shifts production traffic with (canary, linear, blue_green).
pub const PRODUCTION_RULE: Key = Key::new("listener-rule-production", Kind::new("elbv2:listener-rule"));

/// The production rule routes the traffic listener's requests (the config asks for a strategy
/// that shifts traffic, and the rule is made): its default action only answers what no rule takes.
pub fn rule_routes(ctx: &Scope<'_>) -> bool {
    ctx.config.deploy.strategy.shifts_traffic() && ctx.id(PRODUCTION_RULE).is_some()
}

/// The ports the load balancer sends to: the config's container port and, while the target group
/// is being replaced, the one the running tasks still serve on, until the old target group is gone:
/// tasks on either port stay reachable throughout.
pub fn serving_ports(ctx: &Scope<'_>) -> Vec<u32> {
    let recorded = [TARGET_GROUP_PORT, REPLACES_PORT].map(|attr| ctx.attr(attr).and_then(|p| p.parse::<u32>().ok()));
    let mut ports: Vec<u32> =
        std::iter::once(ctx.config.service.container_port).chain(recorded.into_iter().flatten()).collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The alternate target group's name: `<stack>-tg-alt`, which neither the target group's name
/// (`-tg`) nor its replacement's (`-tg2`) can be, for any stack.
pub fn alternate_target_group_name(stack: &str) -> String {
    format!("{stack}-tg-alt")
}

/// The alternate target group's name for a target group named `primary`: `<stack>-tg-alt`, or
/// `<stack>-tg` when the target group has the alternate's name (a switch to rolling kept the group
/// that served, and the strategy came back).
pub fn alternate_name_beside(stack: &str, primary: Option<&str>) -> String {
    let alternate = alternate_target_group_name(stack);
    match primary {
        Some(name) if name == alternate => format!("{stack}-tg"),
        _ => alternate,
    }
}

/// A switch to a strategy that does not shift traffic (rolling) while the production rule still
/// sends the traffic to the other target group than the recorded one (after a canary, linear or
/// blue/green deployment ECS leaves the alternate one serving): (the serving group's ARN, the
/// other one's). The serving group becomes the target group, so that the service's
/// UpdateService names the group its tasks serve in and no task moves (ECS, too, keeps the load
/// balancer configuration that serves when it migrates a service to rolling); the other one is
/// then the idle alternate group, deleted once the rule is gone. None once the recorded target
/// group serves, with a strategy, or without a rule.
pub async fn switching_from_alternate(ctx: &Scope<'_>) -> Result<Option<(String, String)>, StackError> {
    if ctx.config.deploy.strategy.shifts_traffic() || ctx.attr(REPLACES_PORT).is_some() {
        return Ok(None);
    }
    let (Some(rule), Some(recorded)) = (ctx.id(PRODUCTION_RULE), ctx.id(TARGET_GROUP)) else { return Ok(None) };
    let out = ctx.aws.elb.describe_rules().rule_arns(&rule).send().await;
    let Some(out) = found(out.ctx("describe the production rule", &rule))? else { return Ok(None) };
    let groups: Vec<(String, i32)> = out
        .rules()
        .iter()
        .flat_map(|r| r.actions())
        .filter_map(|a| a.forward_config())
        .flat_map(|c| c.target_groups())
        .filter_map(|t| Some((t.target_group_arn()?.to_string(), t.weight().unwrap_or(1))))
        .collect();
    Ok(serving_other_than(&groups, &recorded))
}

/// Of a rule's weighted groups: the one with more weight than `recorded` has, and the other.
fn serving_other_than(groups: &[(String, i32)], recorded: &str) -> Option<(String, String)> {
    let [(a, wa), (b, wb)] = groups else { return None };
    let weight = |arn: &str| if arn == a { *wa } else { *wb };
    let (serving, other) = if wa > wb { (a, b) } else { (b, a) };
    (serving != recorded
        && (other == recorded || !groups.iter().any(|(g, _)| g == recorded))
        && weight(serving) > weight(other))
    .then(|| (serving.clone(), other.clone()))
}

/// A target group's name from its ARN (`…:targetgroup/NAME/ID`).
pub fn target_group_name_in(arn: &str) -> &str {
    arn.rsplit('/').nth(1).unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_the_rule_serves_from_is_kept_on_a_switch_to_rolling() {
        let (tg, alt) = ("arn:x:targetgroup/app-tg/1".to_string(), "arn:x:targetgroup/app-tg-alt/2".to_string());
        let shifted = [(tg.clone(), 0), (alt.clone(), 100)];
        assert_eq!(serving_other_than(&shifted, &tg), Some((alt.clone(), tg.clone())), "the alternate serves");
        assert_eq!(serving_other_than(&shifted, &alt), None, "already kept (a resumed switch)");
        assert_eq!(serving_other_than(&[(tg.clone(), 100), (alt.clone(), 0)], &tg), None, "nothing moved");
        assert_eq!(serving_other_than(&[(tg.clone(), 50), (alt.clone(), 50)], &tg), None, "no group serves alone");
        assert_eq!(alternate_name_beside("app", Some("app-tg-alt")), "app-tg");
        assert_eq!(alternate_name_beside("app", Some("app-tg")), "app-tg-alt");
        assert_eq!(alternate_name_beside("app", None), "app-tg-alt");
        assert_eq!(target_group_name_in(&alt), "app-tg-alt");
    }
}
