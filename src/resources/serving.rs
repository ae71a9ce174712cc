//! What the load balancer sends requests to: the target group's key and the ports the tasks serve
//! on, read by the target group (which records them) and the security groups (which let them in).

use crate::model::{Attr, Key, Kind, Scope};

pub const TARGET_GROUP: Key = Key::new("target-group", Kind::new("elbv2:target-group"));
/// The port of the target group the service is on.
pub const TARGET_GROUP_PORT: Attr = Attr::new(TARGET_GROUP, "port");
/// While `up` replaces the target group (a new container port): the old one's port, until the old
/// target group is deleted.
pub const REPLACES_PORT: Attr = Attr::new(TARGET_GROUP, "replaces_port");

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
