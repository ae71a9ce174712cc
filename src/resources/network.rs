//! VPC, subnets, internet gateway, elastic IPs, NAT gateways and route tables.

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, NatGatewayState, ResourceType, Tag, TagSpecification,
};

use crate::context::{keys, Ctx, Outcome, RESOURCE_TAG, STACK_TAG};
use crate::error::{ignore_not_found, AwsContext, StackError};
use crate::progress::Line;
use crate::resources::Inspection;
use crate::wait::{self, budget, Poll};

const ANYWHERE: &str = "0.0.0.0/0";

/// The tag specification for an EC2 create call: tags exist from the first instant.
pub fn tag_spec(ctx: &Ctx, rtype: ResourceType, key: &str, name: &str) -> TagSpecification {
    let tags = ctx.tags(key, name).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    TagSpecification::builder().resource_type(rtype).set_tags(Some(tags)).build()
}

/// Filters that find the resource `key` of this stack by its tags.
pub fn tag_filters(ctx: &Ctx, key: &str) -> Vec<Filter> {
    vec![
        Filter::builder().name(format!("tag:{STACK_TAG}")).values(ctx.stack()).build(),
        Filter::builder().name(format!("tag:{RESOURCE_TAG}")).values(key).build(),
    ]
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// How a resource is looked up: by its recorded ID, or by its tags (after a lost or interrupted run).
enum Lookup<'a> {
    Id(&'a str),
    Tags(&'a str),
}

/// The kinds of EC2 resources in this module, with their describe calls.
#[derive(Clone, Copy)]
enum Kind {
    Vpc,
    Subnet,
    InternetGateway,
    RouteTable,
    ElasticIp,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Vpc => "ec2:vpc",
            Kind::Subnet => "ec2:subnet",
            Kind::InternetGateway => "ec2:internet-gateway",
            Kind::RouteTable => "ec2:route-table",
            Kind::ElasticIp => "ec2:elastic-ip",
        }
    }
}

/// Find the IDs of live resources of `kind`. Not-found errors mean none.
async fn find(ctx: &Ctx, kind: Kind, lookup: Lookup<'_>) -> Result<Vec<String>, StackError> {
    let ec2 = &ctx.aws.ec2;
    let (filters, ids): (Vec<Filter>, Vec<String>) = match lookup {
        Lookup::Id(id) => (vec![], vec![id.to_string()]),
        Lookup::Tags(key) => (tag_filters(ctx, key), vec![]),
    };
    let what = format!("{} {}", kind.label(), ids.first().map(String::as_str).unwrap_or("by tag"));
    let result = match kind {
        Kind::Vpc => ec2
            .describe_vpcs()
            .set_filters(Some(filters))
            .set_vpc_ids(Some(ids))
            .send()
            .await
            .ctx("describe", &what)
            .map(|o| o.vpcs().iter().filter_map(|v| v.vpc_id().map(str::to_string)).collect()),
        Kind::Subnet => ec2
            .describe_subnets()
            .set_filters(Some(filters))
            .set_subnet_ids(Some(ids))
            .send()
            .await
            .ctx("describe", &what)
            .map(|o| o.subnets().iter().filter_map(|s| s.subnet_id().map(str::to_string)).collect()),
        Kind::InternetGateway => ec2
            .describe_internet_gateways()
            .set_filters(Some(filters))
            .set_internet_gateway_ids(Some(ids))
            .send()
            .await
            .ctx("describe", &what)
            .map(|o| {
                o.internet_gateways().iter().filter_map(|g| g.internet_gateway_id().map(str::to_string)).collect()
            }),
        Kind::RouteTable => ec2
            .describe_route_tables()
            .set_filters(Some(filters))
            .set_route_table_ids(Some(ids))
            .send()
            .await
            .ctx("describe", &what)
            .map(|o| o.route_tables().iter().filter_map(|t| t.route_table_id().map(str::to_string)).collect()),
        Kind::ElasticIp => ec2
            .describe_addresses()
            .set_filters(Some(filters))
            .set_allocation_ids(Some(ids))
            .send()
            .await
            .ctx("describe", &what)
            .map(|o| o.addresses().iter().filter_map(|a| a.allocation_id().map(str::to_string)).collect()),
    };
    match result {
        Err(e) if e.is_not_found() => Ok(vec![]),
        other => other,
    }
}

/// The live ID of `key`: the recorded one if it still exists, else one found by tag (recorded
/// at once, so an interrupted run's resource is adopted, never duplicated).
async fn locate(ctx: &Ctx, kind: Kind, key: &str) -> Result<Option<String>, StackError> {
    if let Some(id) = ctx.id(key) {
        if !find(ctx, kind, Lookup::Id(&id)).await?.is_empty() {
            return Ok(Some(id));
        }
    }
    let found = find(ctx, kind, Lookup::Tags(key)).await?;
    match found.first() {
        Some(id) => {
            ctx.record(key, kind.label(), id, &[])?;
            Ok(Some(id.clone()))
        }
        None => {
            ctx.forget(key)?;
            Ok(None)
        }
    }
}

async fn inspect_kind(ctx: &Ctx, kind: Kind, key: &str) -> Result<Inspection, StackError> {
    let Some(id) = ctx.id(key) else { return Ok(Inspection::not_recorded()) };
    Ok(if find(ctx, kind, Lookup::Id(&id)).await?.is_empty() {
        Inspection::missing(Some(id), "deleted outside fargate-stack")
    } else {
        Inspection::ok(id)
    })
}

// ---------------------------------------------------------------- VPC

pub async fn ensure_vpc(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::VPC;
    let cidr = ctx.config.network.cidr.to_string();
    if let Some(id) = locate(ctx, Kind::Vpc, key).await? {
        let out = ctx.aws.ec2.describe_vpcs().vpc_ids(&id).send().await.ctx("describe", &id)?;
        let live = out.vpcs().first().and_then(|v| v.cidr_block()).unwrap_or_default().to_string();
        if live != cidr {
            return Err(StackError::Refused(format!(
                "VPC {id} has CIDR {live} but network.cidr is {cidr}; changing it replaces the VPC and everything in it: \
                 run `fargate-stack down`, then `up`"
            )));
        }
        if ctx.attr(key, "cidr").is_none() {
            ctx.set_attr(key, "cidr", &live)?;
        }
        return Ok(Outcome::Unchanged);
    }
    line.start("creating");
    let out = ctx
        .aws
        .ec2
        .create_vpc()
        .cidr_block(&cidr)
        .tag_specifications(tag_spec(ctx, ResourceType::Vpc, key, &ctx.name("vpc")))
        .send()
        .await
        .ctx("create", "VPC")?;
    let id = out.vpc().and_then(|v| v.vpc_id()).unwrap_or_default().to_string();
    ctx.record(key, Kind::Vpc.label(), &id, &[("cidr", cidr), ("az_count", ctx.config.network.az_count.to_string())])?;
    // Fargate tasks resolve the registry and DynamoDB through the VPC's DNS.
    for hostnames in [false, true] {
        let call = ctx.aws.ec2.modify_vpc_attribute().vpc_id(&id);
        let value = Some(AttributeBooleanValue::builder().value(true).build());
        let call = if hostnames { call.set_enable_dns_hostnames(value) } else { call.set_enable_dns_support(value) };
        wait::retry_while(line, &id, budget::PROPAGATION, StackError::is_not_found, || async {
            call.clone().send().await.ctx("enable DNS on", &id)
        })
        .await?;
    }
    Ok(Outcome::Created)
}

pub async fn delete_vpc(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let Some(id) = locate(ctx, Kind::Vpc, keys::VPC).await? else { return Ok(Outcome::Absent) };
    line.start("deleting");
    // DependencyViolation while ENIs of the ALB and tasks are still being released.
    wait::retry_codes(line, &id, budget::NETWORK, &["DependencyViolation"], || async {
        ignore_not_found(ctx.aws.ec2.delete_vpc().vpc_id(&id).send().await.ctx("delete", &id).map(drop))
    })
    .await?;
    ctx.forget(keys::VPC)?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_vpc(ctx: &Ctx) -> Result<Inspection, StackError> {
    inspect_kind(ctx, Kind::Vpc, keys::VPC).await
}

// ---------------------------------------------------------------- subnets

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Public,
    Private,
}

impl Tier {
    pub fn key(self, i: usize) -> String {
        match self {
            Tier::Public => keys::public_subnet(i),
            Tier::Private => keys::private_subnet(i),
        }
    }
}

pub async fn ensure_subnet(ctx: &Ctx, line: &Line, tier: Tier, i: usize) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = tier.key(i);
    if locate(ctx, Kind::Subnet, &key).await?.is_some() {
        return Ok(Outcome::Unchanged);
    }
    let vpc = ctx.need(keys::VPC, &key)?;
    let az = ctx.availability_zones().await?[i].clone();
    let plan = ctx.config.subnet_plan().expect("validated config has a subnet plan");
    let cidr = match tier {
        Tier::Public => plan.public[i],
        Tier::Private => plan.private[i],
    }
    .to_string();
    line.start("creating");
    let out = ctx
        .aws
        .ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block(&cidr)
        .availability_zone(&az)
        .tag_specifications(tag_spec(ctx, ResourceType::Subnet, &key, &ctx.name(&format!("{key}-{az}"))))
        .send()
        .await
        .ctx("create", &key)?;
    let id = out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default().to_string();
    ctx.record(&key, Kind::Subnet.label(), &id, &[("az", az), ("cidr", cidr)])?;
    Ok(Outcome::Created)
}

pub async fn delete_subnet(ctx: &Ctx, line: &Line, key: &str) -> Result<Outcome, StackError> {
    let Some(id) = locate(ctx, Kind::Subnet, key).await? else { return Ok(Outcome::Absent) };
    line.start("deleting");
    wait::retry_codes(line, &id, budget::NETWORK, &["DependencyViolation"], || async {
        ignore_not_found(ctx.aws.ec2.delete_subnet().subnet_id(&id).send().await.ctx("delete", &id).map(drop))
    })
    .await?;
    ctx.forget(key)?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_subnet(ctx: &Ctx, key: &str) -> Result<Inspection, StackError> {
    inspect_kind(ctx, Kind::Subnet, key).await
}

// ---------------------------------------------------------------- internet gateway

pub async fn ensure_internet_gateway(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::IGW;
    let vpc = ctx.need(keys::VPC, key)?;
    let mut outcome = Outcome::Unchanged;
    let id = match locate(ctx, Kind::InternetGateway, key).await? {
        Some(id) => id,
        None => {
            line.start("creating");
            let out = ctx
                .aws
                .ec2
                .create_internet_gateway()
                .tag_specifications(tag_spec(ctx, ResourceType::InternetGateway, key, &ctx.name("igw")))
                .send()
                .await
                .ctx("create", "internet gateway")?;
            let id = out.internet_gateway().and_then(|g| g.internet_gateway_id()).unwrap_or_default().to_string();
            ctx.record(key, Kind::InternetGateway.label(), &id, &[])?;
            outcome = Outcome::Created;
            id
        }
    };
    if attached_vpc(ctx, &id).await?.as_deref() != Some(vpc.as_str()) {
        line.start("attaching");
        wait::retry_while(line, &id, budget::PROPAGATION, StackError::is_not_found, || async {
            ctx.aws.ec2.attach_internet_gateway().internet_gateway_id(&id).vpc_id(&vpc).send().await.ctx("attach", &id)
        })
        .await?;
        outcome = Outcome::Created.max_with(outcome);
    }
    Ok(outcome)
}

async fn attached_vpc(ctx: &Ctx, igw: &str) -> Result<Option<String>, StackError> {
    let out = ctx.aws.ec2.describe_internet_gateways().internet_gateway_ids(igw).send().await.ctx("describe", igw)?;
    Ok(out
        .internet_gateways()
        .iter()
        .flat_map(|g| g.attachments())
        .filter(|a| a.state().is_some_and(|s| s.as_str() == "available" || s.as_str() == "attached"))
        .find_map(|a| a.vpc_id().map(str::to_string)))
}

pub async fn delete_internet_gateway(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    let Some(id) = locate(ctx, Kind::InternetGateway, keys::IGW).await? else { return Ok(Outcome::Absent) };
    line.start("deleting");
    if let Some(vpc) = attached_vpc(ctx, &id).await? {
        // DependencyViolation while a NAT gateway's public address is still mapped.
        wait::retry_codes(line, &id, budget::NETWORK, &["DependencyViolation"], || async {
            match ctx
                .aws
                .ec2
                .detach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(&vpc)
                .send()
                .await
                .ctx("detach", &id)
            {
                Err(e) if e.has_code(&["Gateway.NotAttached"]) || e.is_not_found() => Ok(()),
                other => other.map(drop),
            }
        })
        .await?;
    }
    wait::retry_codes(line, &id, budget::NETWORK, &["DependencyViolation"], || async {
        ignore_not_found(
            ctx.aws.ec2.delete_internet_gateway().internet_gateway_id(&id).send().await.ctx("delete", &id).map(drop),
        )
    })
    .await?;
    ctx.forget(keys::IGW)?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_internet_gateway(ctx: &Ctx) -> Result<Inspection, StackError> {
    let Some(id) = ctx.id(keys::IGW) else { return Ok(Inspection::not_recorded()) };
    let attached = match attached_vpc(ctx, &id).await {
        Err(e) if e.is_not_found() => return Ok(Inspection::missing(Some(id), "deleted outside fargate-stack")),
        other => other?,
    };
    Ok(if attached == ctx.id(keys::VPC) {
        Inspection::ok(id)
    } else {
        Inspection::drifted(id, "not attached to the stack's VPC")
    })
}

// ---------------------------------------------------------------- elastic IPs and NAT gateways

pub async fn ensure_elastic_ip(ctx: &Ctx, line: &Line, i: usize) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::elastic_ip(i);
    if locate(ctx, Kind::ElasticIp, &key).await?.is_some() {
        return Ok(Outcome::Unchanged);
    }
    line.start("allocating");
    let out = ctx
        .aws
        .ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tag_spec(ctx, ResourceType::ElasticIp, &key, &ctx.name(&format!("nat-eip-{}", i + 1))))
        .send()
        .await
        .ctx("allocate", &key)?;
    let id = out.allocation_id().unwrap_or_default().to_string();
    ctx.record(&key, Kind::ElasticIp.label(), &id, &[("public_ip", out.public_ip().unwrap_or_default().to_string())])?;
    Ok(Outcome::Created)
}

pub async fn delete_elastic_ip(ctx: &Ctx, line: &Line, i: usize) -> Result<Outcome, StackError> {
    let key = keys::elastic_ip(i);
    let Some(id) = locate(ctx, Kind::ElasticIp, &key).await? else { return Ok(Outcome::Absent) };
    line.start("releasing");
    // Refused while a NAT gateway that used it is still deleting.
    wait::retry_codes(
        line,
        &id,
        budget::NETWORK,
        &["InvalidIPAddress.InUse", "DependencyViolation", "AuthFailure"],
        || async {
            ignore_not_found(
                ctx.aws.ec2.release_address().allocation_id(&id).send().await.ctx("release", &id).map(drop),
            )
        },
    )
    .await?;
    ctx.forget(&key)?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_elastic_ip(ctx: &Ctx, i: usize) -> Result<Inspection, StackError> {
    inspect_kind(ctx, Kind::ElasticIp, &keys::elastic_ip(i)).await
}

/// A NAT gateway as `describe_nat_gateways` shows it.
struct Nat {
    id: String,
    state: NatGatewayState,
    failure: String,
}

async fn find_nats(ctx: &Ctx, lookup: Lookup<'_>) -> Result<Vec<Nat>, StackError> {
    let mut call = ctx.aws.ec2.describe_nat_gateways();
    call = match lookup {
        Lookup::Id(id) => call.nat_gateway_ids(id),
        Lookup::Tags(key) => call.set_filter(Some(tag_filters(ctx, key))),
    };
    let out = match call.send().await.ctx("describe", "NAT gateway") {
        Err(e) if e.is_not_found() => return Ok(vec![]),
        other => other?,
    };
    Ok(out
        .nat_gateways()
        .iter()
        .map(|n| Nat {
            id: n.nat_gateway_id().unwrap_or_default().to_string(),
            state: n.state().cloned().unwrap_or(NatGatewayState::Pending),
            failure: format!("{}: {}", n.failure_code().unwrap_or("failed"), n.failure_message().unwrap_or("")),
        })
        .collect())
}

fn nat_alive(nat: &Nat) -> bool {
    matches!(nat.state, NatGatewayState::Pending | NatGatewayState::Available)
}

pub async fn ensure_nat_gateway(ctx: &Ctx, line: &Line, i: usize) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = keys::nat_gateway(i);
    let recorded = match ctx.id(&key) {
        Some(id) => find_nats(ctx, Lookup::Id(&id)).await?.into_iter().find(nat_alive),
        None => None,
    };
    let (existing, generation) = match recorded {
        Some(nat) => (Some(nat), 0),
        None => {
            let tagged = find_nats(ctx, Lookup::Tags(&key)).await?;
            // A failed gateway is terminal: it is replaced, under a new client token (the old
            // token would return the failed one).
            let failed = tagged.iter().filter(|n| n.state == NatGatewayState::Failed).count();
            (tagged.into_iter().find(nat_alive), failed)
        }
    };
    let (id, outcome) = match existing {
        Some(nat) => {
            ctx.record(&key, "ec2:nat-gateway", &nat.id, &[])?;
            (nat.id, Outcome::Unchanged)
        }
        None => {
            let subnet = ctx.need(&keys::public_subnet(i), &key)?;
            let allocation = ctx.need(&keys::elastic_ip(i), &key)?;
            let vpc = ctx.need(keys::VPC, &key)?;
            line.start("creating");
            let out = ctx
                .aws
                .ec2
                .create_nat_gateway()
                .subnet_id(&subnet)
                .allocation_id(&allocation)
                // Same token on a retried create (within this VPC) returns the same gateway.
                .client_token(format!("{}-{key}-{vpc}-{generation}", ctx.stack()))
                .tag_specifications(tag_spec(ctx, ResourceType::Natgateway, &key, &ctx.name(&format!("nat-{}", i + 1))))
                .send()
                .await
                .ctx("create", &key)?;
            let id = out.nat_gateway().and_then(|n| n.nat_gateway_id()).unwrap_or_default().to_string();
            ctx.record(&key, "ec2:nat-gateway", &id, &[])?;
            (id, Outcome::Created)
        }
    };
    // Private routes through a NAT that is not available black-hole the tasks' image pulls.
    wait::until(line, &id, "become available", budget::NAT_AVAILABLE, || async {
        let nat = find_nats(ctx, Lookup::Id(&id)).await?.into_iter().next();
        match nat {
            Some(n) if n.state == NatGatewayState::Available => Ok(Poll::Ready(())),
            Some(n) if n.state == NatGatewayState::Failed => Err(StackError::Failed {
                resource: id.clone(),
                message: format!("failed: {}; run `up` again to replace it", n.failure),
            }),
            Some(n) if nat_alive(&n) => Ok(Poll::Pending(n.state.as_str().to_string())),
            Some(n) => Err(StackError::Failed { resource: id.clone(), message: format!("is {}", n.state.as_str()) }),
            None => Err(StackError::Failed { resource: id.clone(), message: "disappeared while pending".into() }),
        }
    })
    .await?;
    Ok(outcome)
}

pub async fn delete_nat_gateway(ctx: &Ctx, line: &Line, i: usize) -> Result<Outcome, StackError> {
    let key = keys::nat_gateway(i);
    let mut ids: Vec<String> = ctx.id(&key).into_iter().collect();
    for nat in find_nats(ctx, Lookup::Tags(&key)).await? {
        if nat.state != NatGatewayState::Deleted && !ids.contains(&nat.id) {
            ids.push(nat.id);
        }
    }
    let mut outcome = Outcome::Absent;
    for id in ids {
        let Some(nat) = find_nats(ctx, Lookup::Id(&id)).await?.into_iter().next() else { continue };
        if nat.state == NatGatewayState::Deleted {
            continue;
        }
        line.start("deleting");
        if nat.state != NatGatewayState::Deleting {
            ignore_not_found(
                ctx.aws.ec2.delete_nat_gateway().nat_gateway_id(&id).send().await.ctx("delete", &id).map(drop),
            )?;
        }
        wait::until(line, &id, "be deleted", budget::NAT_DELETED, || async {
            Ok(match find_nats(ctx, Lookup::Id(&id)).await?.into_iter().next() {
                None => Poll::Ready(()),
                Some(n) if n.state == NatGatewayState::Deleted => Poll::Ready(()),
                Some(n) => Poll::Pending(n.state.as_str().to_string()),
            })
        })
        .await?;
        outcome = Outcome::Deleted;
    }
    ctx.forget(&key)?;
    Ok(outcome)
}

pub async fn inspect_nat_gateway(ctx: &Ctx, i: usize) -> Result<Inspection, StackError> {
    let Some(id) = ctx.id(&keys::nat_gateway(i)) else { return Ok(Inspection::not_recorded()) };
    Ok(match find_nats(ctx, Lookup::Id(&id)).await?.into_iter().next() {
        Some(n) if n.state == NatGatewayState::Available => Inspection::ok(id),
        Some(n) if n.state == NatGatewayState::Pending => Inspection::pending(id, "pending"),
        Some(n) => Inspection::missing(Some(id), format!("state {}", n.state.as_str())),
        None => Inspection::missing(Some(id), "deleted outside fargate-stack"),
    })
}

// ---------------------------------------------------------------- route tables

/// The route table `key` with a default route and the given subnet associations.
pub struct RouteTableSpec {
    pub key: String,
    pub name: String,
    pub target: RouteTarget,
    pub subnet_keys: Vec<String>,
}

pub enum RouteTarget {
    InternetGateway(String),
    NatGateway(String),
}

impl RouteTarget {
    fn id(&self) -> &str {
        match self {
            RouteTarget::InternetGateway(id) | RouteTarget::NatGateway(id) => id,
        }
    }
}

pub fn public_route_table(ctx: &Ctx) -> Result<RouteTableSpec, StackError> {
    let key = keys::PUBLIC_RT.to_string();
    Ok(RouteTableSpec {
        target: RouteTarget::InternetGateway(ctx.need(keys::IGW, &key)?),
        subnet_keys: (0..ctx.config.network.az_count as usize).map(keys::public_subnet).collect(),
        name: ctx.name("public-rt"),
        key,
    })
}

/// Private route table `j` sends the private subnets `i` with `i % nat_gateways == j` to NAT `j`.
pub fn private_route_table(ctx: &Ctx, j: usize) -> Result<RouteTableSpec, StackError> {
    let key = keys::private_rt(j);
    let nats = ctx.config.network.nat_gateways as usize;
    Ok(RouteTableSpec {
        target: RouteTarget::NatGateway(ctx.need(&keys::nat_gateway(j), &key)?),
        subnet_keys: (0..ctx.config.network.az_count as usize)
            .filter(|i| i % nats == j)
            .map(keys::private_subnet)
            .collect(),
        name: ctx.name(&format!("private-rt-{}", j + 1)),
        key,
    })
}

pub async fn ensure_route_table(ctx: &Ctx, line: &Line, spec: RouteTableSpec) -> Result<Outcome, StackError> {
    line.start("checking");
    let key = spec.key.as_str();
    let vpc = ctx.need(keys::VPC, key)?;
    let mut outcome = Outcome::Unchanged;
    let id = match locate(ctx, Kind::RouteTable, key).await? {
        Some(id) => id,
        None => {
            line.start("creating");
            let out = ctx
                .aws
                .ec2
                .create_route_table()
                .vpc_id(&vpc)
                .tag_specifications(tag_spec(ctx, ResourceType::RouteTable, key, &spec.name))
                .send()
                .await
                .ctx("create", key)?;
            let id = out.route_table().and_then(|t| t.route_table_id()).unwrap_or_default().to_string();
            ctx.record(key, Kind::RouteTable.label(), &id, &[])?;
            outcome = Outcome::Created;
            id
        }
    };
    let table = ctx.aws.ec2.describe_route_tables().route_table_ids(&id).send().await.ctx("describe", &id)?;
    let table = table
        .route_tables()
        .first()
        .cloned()
        .ok_or_else(|| StackError::Failed { resource: id.clone(), message: "disappeared".into() })?;
    let default_route = table.routes().iter().find(|r| r.destination_cidr_block() == Some(ANYWHERE));
    let route_ok = default_route.is_some_and(|r| {
        let target = r.gateway_id().or(r.nat_gateway_id());
        target == Some(spec.target.id()) && r.state().is_none_or(|s| s.as_str() == "active")
    });
    if !route_ok {
        line.start("routing");
        let replace = default_route.is_some();
        wait::retry_while(line, &id, budget::PROPAGATION, StackError::is_not_found, || async {
            if replace {
                let call = ctx.aws.ec2.replace_route().route_table_id(&id).destination_cidr_block(ANYWHERE);
                let call = match &spec.target {
                    RouteTarget::InternetGateway(g) => call.gateway_id(g),
                    RouteTarget::NatGateway(n) => call.nat_gateway_id(n),
                };
                call.send().await.ctx("replace default route of", &id).map(drop)
            } else {
                let call = ctx.aws.ec2.create_route().route_table_id(&id).destination_cidr_block(ANYWHERE);
                let call = match &spec.target {
                    RouteTarget::InternetGateway(g) => call.gateway_id(g),
                    RouteTarget::NatGateway(n) => call.nat_gateway_id(n),
                };
                match call.send().await.ctx("add default route to", &id) {
                    Err(e) if e.has_code(&["RouteAlreadyExists"]) => Ok(()),
                    other => other.map(drop),
                }
            }
        })
        .await?;
        outcome = Outcome::Created.max_with(outcome);
    }
    let associated: Vec<&str> = table.associations().iter().filter_map(|a| a.subnet_id()).collect();
    for subnet_key in &spec.subnet_keys {
        let subnet = ctx.need(subnet_key, key)?;
        if associated.contains(&subnet.as_str()) {
            continue;
        }
        line.start("associating");
        // A subnet is associated with one table at most: move it if it sits elsewhere.
        let elsewhere = ctx
            .aws
            .ec2
            .describe_route_tables()
            .filters(filter("association.subnet-id", &subnet))
            .send()
            .await
            .ctx("describe route tables of", &subnet)?;
        let existing = elsewhere
            .route_tables()
            .iter()
            .flat_map(|t| t.associations())
            .find(|a| a.subnet_id() == Some(subnet.as_str()) && a.main() != Some(true))
            .and_then(|a| a.route_table_association_id().map(str::to_string));
        match existing {
            Some(association) => {
                ctx.aws
                    .ec2
                    .replace_route_table_association()
                    .association_id(association)
                    .route_table_id(&id)
                    .send()
                    .await
                    .ctx("move route table association of", &subnet)?;
            }
            None => {
                ctx.aws
                    .ec2
                    .associate_route_table()
                    .route_table_id(&id)
                    .subnet_id(&subnet)
                    .send()
                    .await
                    .ctx("associate route table with", &subnet)?;
            }
        }
        outcome = Outcome::Created.max_with(outcome);
    }
    Ok(outcome)
}

pub async fn delete_route_table(ctx: &Ctx, line: &Line, key: &str) -> Result<Outcome, StackError> {
    let Some(id) = locate(ctx, Kind::RouteTable, key).await? else { return Ok(Outcome::Absent) };
    line.start("deleting");
    let table = ctx.aws.ec2.describe_route_tables().route_table_ids(&id).send().await.ctx("describe", &id)?;
    for association in table.route_tables().iter().flat_map(|t| t.associations()) {
        if association.main() == Some(true) {
            continue;
        }
        if let Some(association_id) = association.route_table_association_id() {
            ignore_not_found(
                ctx.aws
                    .ec2
                    .disassociate_route_table()
                    .association_id(association_id)
                    .send()
                    .await
                    .ctx("disassociate", association_id)
                    .map(drop),
            )?;
        }
    }
    wait::retry_codes(line, &id, budget::NETWORK, &["DependencyViolation"], || async {
        ignore_not_found(ctx.aws.ec2.delete_route_table().route_table_id(&id).send().await.ctx("delete", &id).map(drop))
    })
    .await?;
    ctx.forget(key)?;
    Ok(Outcome::Deleted)
}

pub async fn inspect_route_table(
    ctx: &Ctx,
    spec: Result<RouteTableSpec, StackError>,
    key: &str,
) -> Result<Inspection, StackError> {
    let Some(id) = ctx.id(key) else { return Ok(Inspection::not_recorded()) };
    let table = match ctx.aws.ec2.describe_route_tables().route_table_ids(&id).send().await.ctx("describe", &id) {
        Err(e) if e.is_not_found() => return Ok(Inspection::missing(Some(id), "deleted outside fargate-stack")),
        other => other?,
    };
    let Some(table) = table.route_tables().first() else {
        return Ok(Inspection::missing(Some(id), "deleted outside fargate-stack"));
    };
    let Ok(spec) = spec else { return Ok(Inspection::drifted(id, "its route target is not in the state file")) };
    let route = table.routes().iter().find(|r| r.destination_cidr_block() == Some(ANYWHERE));
    match route {
        None => return Ok(Inspection::drifted(id, "no default route")),
        Some(r) if r.gateway_id().or(r.nat_gateway_id()) != Some(spec.target.id()) => {
            return Ok(Inspection::drifted(id, "default route points elsewhere"))
        }
        Some(r) if r.state().is_some_and(|s| s.as_str() == "blackhole") => {
            return Ok(Inspection::drifted(id, "default route is a black hole"))
        }
        _ => {}
    }
    let associated: Vec<&str> = table.associations().iter().filter_map(|a| a.subnet_id()).collect();
    for subnet_key in &spec.subnet_keys {
        if let Some(subnet) = ctx.id(subnet_key) {
            if !associated.contains(&subnet.as_str()) {
                return Ok(Inspection::drifted(id, format!("{subnet_key} is not associated")));
            }
        }
    }
    Ok(Inspection::ok(id))
}

trait MaxWith {
    fn max_with(self, other: Outcome) -> Outcome;
}

impl MaxWith for Outcome {
    /// Created wins over Updated wins over Unchanged.
    fn max_with(self, other: Outcome) -> Outcome {
        if other == Outcome::Created {
            Outcome::Created
        } else if self == Outcome::Created && other == Outcome::Unchanged {
            Outcome::Updated
        } else {
            self
        }
    }
}
