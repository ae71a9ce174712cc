//! What the load balancer sends requests to: the target group's key and the ports the tasks serve
//! on, read by the target group (which records them) and the security groups (which let them in);
//! and, with a `[deploy] strategy` that shifts traffic, the production listener rule that routes
//! instead of the traffic listener's default action (read by the listeners, made in `traffic`).

use crate::model::{Attr, Key, Kind, Scope};

pub const TARGET_GROUP: Key = Key::new("target-group", Kind::new("elbv2:target-group"));
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
