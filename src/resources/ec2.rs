//! What the EC2 resources share: tags from the first instant, and the lookup by recorded ID or by
//! tag, with the ownership check made here, on our side, whatever filter EC2 applied.

use std::future::Future;

use aws_sdk_ec2::types::{
    Address, Filter, InternetGateway, NatGateway, ResourceType, RouteTable, SecurityGroup, Subnet, Tag,
    TagSpecification, Vpc,
};

use crate::context::{RESOURCE_TAG, STACK_TAG};
use crate::error::{found, AwsContext, StackError};
use crate::model::{owner_tags, Key, Kind, Scope, Sighting};
use crate::progress::Line;
use crate::resources::tags::TagPairs;
use crate::wait::{self, budget, Poll};

pub const ANYWHERE: &str = "0.0.0.0/0";

/// The tag specification for a create call: the resource is findable by tag from its first instant.
pub fn tag_spec(ctx: &Scope<'_>, rtype: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder().resource_type(rtype).set_tags(Some(ctx.sdk_tags(name))).build()
}

/// An EC2 object's tags, as the `[tags]` sync reads them (from the describe call `find` made).
pub fn tags_of<T: Ec2Object>(object: &T) -> Option<Vec<(String, String)>> {
    Some(object.tag_pairs().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// Keep the user's tags in step on an EC2 object: CreateTags puts (and overwrites) values, DeleteTags
/// takes keys off. Both act on the one object (its stack tag is the policy's condition).
pub async fn retag<T: Ec2Object>(
    ctx: &Scope<'_>,
    object: &T,
    put: &[(String, String)],
    remove: &[String],
) -> Result<(), StackError> {
    let id = object.object_id();
    if !put.is_empty() {
        let tags = put.iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
        ctx.aws.ec2.create_tags().resources(id).set_tags(Some(tags.collect())).send().await.ctx("tag", id)?;
    }
    if !remove.is_empty() {
        let tags = remove.iter().map(|k| Tag::builder().key(k).build());
        ctx.aws.ec2.delete_tags().resources(id).set_tags(Some(tags.collect())).send().await.ctx("untag", id)?;
    }
    Ok(())
}

/// Filters that ask EC2 for the resource `key` of this stack (a hint: the answer is checked).
pub fn tag_filters(ctx: &Scope<'_>, key: Key) -> Vec<Filter> {
    vec![filter(&format!("tag:{STACK_TAG}"), ctx.stack()), filter(&format!("tag:{RESOURCE_TAG}"), &key.to_string())]
}

/// Objects carrying a stack's tag, whichever stack's (for sweeps, and `list`).
pub fn any_stack() -> Filter {
    Filter::builder().name("tag-key").values(STACK_TAG).build()
}

/// EC2 objects as sightings of `kind`, with what their tags say of their owner.
pub fn sightings<T: Ec2Object>(kind: Kind, objects: &[T]) -> Vec<Sighting> {
    objects.iter().map(|o| Sighting::new(kind, o.object_id()).owned(owner_tags(o.tag_pairs()))).collect()
}

pub fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// An EC2 object as the ownership check sees it.
pub trait Ec2Object: Send + Sync {
    fn object_id(&self) -> &str;
    fn tag_pairs(&self) -> Vec<(&str, &str)>;
    /// The VPC it belongs to, for VPC-scoped objects.
    fn vpc_of(&self) -> Option<&str> {
        None
    }
}

macro_rules! ec2_object {
    ($t:ty, $id:ident, $vpc:expr) => {
        impl Ec2Object for $t {
            fn object_id(&self) -> &str {
                self.$id().unwrap_or_default()
            }
            fn tag_pairs(&self) -> Vec<(&str, &str)> {
                self.tags().pairs()
            }
            fn vpc_of(&self) -> Option<&str> {
                let vpc: fn(&Self) -> Option<&str> = $vpc;
                vpc(self)
            }
        }
    };
}

ec2_object!(Vpc, vpc_id, |v| v.vpc_id());
ec2_object!(Subnet, subnet_id, |s| s.vpc_id());
ec2_object!(RouteTable, route_table_id, |t| t.vpc_id());
ec2_object!(NatGateway, nat_gateway_id, |n| n.vpc_id());
ec2_object!(SecurityGroup, group_id, |g| g.vpc_id());
ec2_object!(Address, allocation_id, |_| None);
ec2_object!(InternetGateway, internet_gateway_id, |_| None);

/// Where an object must be to be ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Within {
    /// Not in a VPC (elastic IPs, the internet gateway): the tags decide.
    Tags,
    /// In this stack's VPC (its recorded ID, if known), and tagged.
    Vpc(Option<String>),
}

/// Wait until no network interface matches `filters` (those of a deleted load balancer, or of
/// stopped tasks, are released minutes later and block their subnets and security groups). Read
/// calls only: what waits for this can then delete at the first try. Best effort: past the budget
/// those deletes retry on their own.
pub async fn wait_enis_released(ctx: &Scope<'_>, line: &Line, owner: &str, filters: Vec<Filter>) {
    let released = wait::until(line, owner, "release its network interfaces", budget::PROPAGATION, || async {
        let out = ctx
            .aws
            .ec2
            .describe_network_interfaces()
            .set_filters(Some(filters.clone()))
            .send()
            .await
            .ctx("describe the network interfaces of", owner)?;
        let left = out.network_interfaces().len();
        Ok(if left == 0 { Poll::Ready(()) } else { Poll::Pending(format!("{left} network interfaces left")) })
    })
    .await;
    if let Err(e) = released {
        tracing::warn!("{e}; continuing, the deletes that wait for them retry");
    }
}

/// The network interfaces matching `filters`, each as `eni-… (description; type; requester)`: what
/// a refused delete names once its wait is over, so that the user sees what holds the resource.
pub async fn enis_holding(ctx: &Scope<'_>, filters: Vec<Filter>) -> Result<Vec<String>, StackError> {
    let out = ctx
        .aws
        .ec2
        .describe_network_interfaces()
        .set_filters(Some(filters))
        .send()
        .await
        .ctx("describe", "network interfaces")?;
    Ok(out
        .network_interfaces()
        .iter()
        .map(|eni| {
            let mut about = vec![eni.description().unwrap_or("no description").to_string()];
            about.extend(eni.interface_type().map(|t| format!("type {}", t.as_str())));
            about.extend(eni.requester_id().map(|r| format!("requested by {r}")));
            format!("network interface {} ({})", eni.network_interface_id().unwrap_or("?"), about.join("; "))
        })
        .collect())
}

/// A resource that AWS refuses to delete because something uses it: the error names what does
/// (`after`: how long the run waited for it to go, if it did).
pub fn held(what: &str, after: Option<std::time::Duration>, mut by: Vec<String>) -> StackError {
    if by.is_empty() {
        by.push("nothing EC2 lists now (an interface being released: run down again)".into());
    }
    let after = after.map(|d| format!(" after {}s", d.as_secs())).unwrap_or_default();
    StackError::Failed {
        resource: what.to_string(),
        message: format!(
            "cannot be deleted{after}: in use by {}; delete or change them, then run down again",
            by.join(", ")
        ),
    }
}

/// A delete's wait on DependencyViolation that ran out of budget becomes an error naming the
/// network interfaces (`filters`) that still hold `what`.
pub async fn name_holders<T>(
    ctx: &Scope<'_>,
    what: &str,
    filters: Vec<Filter>,
    result: Result<T, StackError>,
) -> Result<T, StackError> {
    match result {
        Err(StackError::Timeout { waited, .. }) => Err(held(what, Some(waited), enis_holding(ctx, filters).await?)),
        other => other,
    }
}

/// Why `object` is not this stack's resource `key`, if it is not.
pub fn check(ctx: &Scope<'_>, key: Key, within: &Within, object: &impl Ec2Object) -> Result<(), String> {
    ctx.owns(key, object.tag_pairs())?;
    if let Within::Vpc(ours) = within {
        let ours = ours.as_deref().ok_or("the stack's VPC is not known")?;
        match object.vpc_of() {
            Some(vpc) if vpc == ours => {}
            Some(vpc) => return Err(format!("in {vpc}, not the stack's {ours}")),
            None => return Err("in no VPC".into()),
        }
    }
    Ok(())
}

/// The live object `key`: the recorded one if EC2 still has it, else one found by tag.
/// `describe(ids, filters)` lists candidates; each one is checked here. A recorded object that
/// fails the check is an error; a tagged candidate that fails (a filter EC2 did not apply) is
/// reported and skipped.
pub async fn locate<T, F, Fut>(ctx: &Scope<'_>, key: Key, within: Within, describe: F) -> Result<Option<T>, StackError>
where
    T: Ec2Object,
    F: Fn(Vec<String>, Vec<Filter>) -> Fut,
    Fut: Future<Output = Result<Vec<T>, StackError>>,
{
    if let Some(id) = ctx.id(key) {
        let recorded = found(describe(vec![id.clone()], vec![]).await)?.unwrap_or_default();
        if let Some(object) = recorded.into_iter().find(|o| o.object_id() == id) {
            check(ctx, key, &within, &object).map_err(|why| ctx.not_ours(format!("{} {id}", key.kind()), why))?;
            return Ok(Some(object));
        }
    }
    let candidates = found(describe(vec![], tag_filters(ctx, key)).await)?.unwrap_or_default();
    let mut ours = None;
    for object in candidates {
        match check(ctx, key, &within, &object) {
            Ok(()) if ours.is_none() => ours = Some(object),
            Ok(()) => ctx.warn(format!(
                "{key}: {} also carries this stack's tags; using {}",
                object.object_id(),
                ours.as_ref().map(|o: &T| o.object_id()).unwrap_or_default()
            )),
            // Another resource of this stack: the filter was not applied, nothing to report.
            Err(_) if ctx.owns(key, object.tag_pairs()).is_err() && is_ours_elsewhere(ctx, &object) => {}
            Err(why) => ctx.warn(format!("ignored {} {}: {why}", key.kind(), object.object_id())),
        }
    }
    Ok(ours)
}

/// Tagged as another resource of this same stack.
fn is_ours_elsewhere(ctx: &Scope<'_>, object: &impl Ec2Object) -> bool {
    object.tag_pairs().iter().any(|(k, v)| *k == STACK_TAG && *v == ctx.stack())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests_support::ctx_named;
    use crate::model::Record;
    use crate::resources::network::{NAT_GATEWAY, VPC};
    use aws_sdk_ec2::types::Tag;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn nat(id: &str, vpc: &str, stack: &str, key: &str) -> NatGateway {
        NatGateway::builder()
            .nat_gateway_id(id)
            .vpc_id(vpc)
            .tags(Tag::builder().key(STACK_TAG).value(stack).build())
            .tags(Tag::builder().key(RESOURCE_TAG).value(key).build())
            .build()
    }

    /// A describe that ignores the tag filter, as the emulator does for NAT gateways.
    fn all(
        nats: Vec<NatGateway>,
    ) -> impl Fn(Vec<String>, Vec<Filter>) -> std::future::Ready<Result<Vec<NatGateway>, StackError>> {
        move |ids, _| {
            let list =
                nats.iter().filter(|n| ids.is_empty() || ids.contains(&n.object_id().to_string())).cloned().collect();
            std::future::ready(Ok(list))
        }
    }

    #[tokio::test]
    async fn a_filter_that_was_not_applied_never_hands_us_another_stacks_resource() {
        let app = ctx_named("app");
        app.record(VPC, &Record::id("vpc-app")).await.unwrap();
        let within = || Within::Vpc(Some("vpc-app".into()));
        let world = vec![
            nat("nat-other", "vpc-app2", "app-2", "nat-gateway-1"),
            nat("nat-second", "vpc-app", "app", "nat-gateway-2"),
            nat("nat-mine", "vpc-app", "app", "nat-gateway-1"),
        ];
        let found = locate(&app.scope(), NAT_GATEWAY.at(0), within(), all(world.clone())).await.unwrap();
        assert_eq!(found.unwrap().object_id(), "nat-mine");
        let warnings = app.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("nat-other") && warnings[0].contains("app-2"), "{warnings:?}");
        // Tagged ours, but in another VPC: not ours either.
        let moved = vec![nat("nat-moved", "vpc-elsewhere", "app", "nat-gateway-1")];
        assert!(locate(&app.scope(), NAT_GATEWAY.at(0), within(), all(moved)).await.unwrap().is_none());
        // Nothing of ours at all: app-2's gateway is not adopted.
        let only_other = vec![nat("nat-other", "vpc-app2", "app-2", "nat-gateway-1")];
        assert!(locate(&app.scope(), NAT_GATEWAY.at(0), within(), all(only_other)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_recorded_object_that_is_not_ours_is_an_error_and_a_gone_one_is_looked_for_by_tag() {
        let app = ctx_named("app");
        app.record(VPC, &Record::id("vpc-app")).await.unwrap();
        let within = || Within::Vpc(Some("vpc-app".into()));
        app.record(NAT_GATEWAY.at(0), &Record::id("nat-other")).await.unwrap();
        let world = vec![nat("nat-other", "vpc-app2", "app-2", "nat-gateway-1")];
        let err = locate(&app.scope(), NAT_GATEWAY.at(0), within(), all(world)).await.unwrap_err();
        assert!(matches!(err, StackError::NotOurs { .. }), "{err}");
        let calls = AtomicUsize::new(0);
        let gone = locate(&app.scope(), NAT_GATEWAY.at(0), within(), |ids: Vec<String>, _| {
            calls.fetch_add(1, Ordering::SeqCst);
            let list = if ids.is_empty() { vec![nat("nat-new", "vpc-app", "app", "nat-gateway-1")] } else { vec![] };
            std::future::ready(Ok::<_, StackError>(list))
        })
        .await
        .unwrap();
        assert_eq!(gone.unwrap().object_id(), "nat-new");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
