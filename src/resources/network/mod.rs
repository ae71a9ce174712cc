//! VPC, subnets, internet gateway, elastic IPs, NAT gateways (zonal here, regional in
//! [`regional_nat`]) and route tables.

mod regional_nat;

use async_trait::async_trait;
use aws_sdk_ec2::operation::create_nat_gateway::builders::CreateNatGatewayFluentBuilder;
use aws_sdk_ec2::types::{
    Address, AttributeBooleanValue, DomainType, Filter, InternetGateway as Igw, NatGateway as Nat, NatGatewayState,
    ResourceType, RouteTable as Rt, Subnet as Sn, Tag, TagSpecification, Vpc as VpcObject, VpcAttributeName,
};
use futures::future::BoxFuture;

use crate::access::{self, arn, Permission};
use crate::aws::Clients;
use crate::bill::{items, Charge, Quantity, Unit};
use crate::config::{Config, NatMode};
use crate::error::{found, ignore_not_found, returned, AwsContext, StackError};
use crate::model::{
    after, Attr, Change, Changed, Dep, Diff, Edge, Field, Indexed, Key, Kind, Lifecycle, Managed, NoField, Nodes,
    Outcome, Record, Removal, Scope, Shape, Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::ec2::{
    self, any_stack, check, filter, locate, name_holders, sightings, tag_filters, tag_spec, Ec2Object, Within, ANYWHERE,
};
use crate::state::location::{tag_value, STATE_TAG};
use crate::wait::{self, budget, Poll};

pub use regional_nat::{
    RegionalNatGateway, REGIONAL_ELASTIC_IP, REGIONAL_NAT_AZ_HOUR, REGIONAL_NAT_DATA, REGIONAL_NAT_GATEWAY,
};

/// Why a changed CIDR or zone count is refused, and what to do instead.
const NEW_NETWORK: &str = "AWS cannot change a VPC's CIDR in place, and the stack's subnets, NAT and load balancer \
     are laid out for its zones: either change means a new VPC with everything in it (subnets, NAT gateway, security \
     groups, a load balancer with a new address, the tasks), which `up` does not replace under a running service. Put \
     network.cidr and network.az_count back (nothing was changed; the stack keeps running); to move, stand up a second \
     stack with the new network (another `name`) and move the traffic to it";

pub const VPC: Key = Key::new("vpc", Kind::new("ec2:vpc"));
pub const INTERNET_GATEWAY: Key = Key::new("internet-gateway", Kind::new("ec2:internet-gateway"));
const SUBNET: Kind = Kind::new("ec2:subnet");
pub const PUBLIC_SUBNET: Indexed = Indexed::new("subnet-public-", SUBNET);
pub const PRIVATE_SUBNET: Indexed = Indexed::new("subnet-private-", SUBNET);
const ROUTE_TABLE: Kind = Kind::new("ec2:route-table");
pub const PUBLIC_ROUTE_TABLE: Key = Key::new("route-table-public", ROUTE_TABLE);
pub const PRIVATE_ROUTE_TABLE: Indexed = Indexed::new("route-table-private-", ROUTE_TABLE);
pub const ELASTIC_IP: Indexed = Indexed::new("elastic-ip-", Kind::new("ec2:elastic-ip"));
pub const NAT_GATEWAY: Indexed = Indexed::new("nat-gateway-", Kind::new("ec2:nat-gateway"));

/// The VPC's CIDR and the number of AZs it was built for (a changed `az_count` is refused).
pub const VPC_CIDR: Attr = Attr::new(VPC, "cidr");
pub const VPC_AZ_COUNT: Attr = Attr::new(VPC, "az_count");

/// How many public subnets, private subnets, zonal NAT gateways, private route tables and
/// regional NAT addresses the shape holds (the config's, or more that `down` or a changed
/// `network.nat` must still delete), and whether it holds the regional NAT gateway.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counts {
    azs: u8,
    privates: u8,
    nats: u8,
    tables: u8,
    regional_addresses: u8,
    regional: bool,
    /// The private route tables the config routes its private subnets through (the others go).
    routed: u8,
}

fn counts(shape: &Shape) -> Counts {
    let net = &shape.config().network;
    let regional_azs = if net.nat() == NatMode::Regional { net.az_count } else { 0 };
    let regional_addresses = shape.count(regional_azs, &[REGIONAL_ELASTIC_IP]);
    let regional = regional_addresses > 0 || shape.holds(REGIONAL_NAT_GATEWAY);
    let nats = shape.count(net.nat_gateway_count(), &[NAT_GATEWAY, ELASTIC_IP]);
    let tables = shape.count(net.private_route_tables(), &[PRIVATE_ROUTE_TABLE]).max(nats).max(u8::from(regional));
    // Every table routes to a NAT gateway the graph holds (see `private_table`).
    let nats = if regional { nats } else { nats.max(tables) };
    // With `nat = "none"` the tasks run in the public subnets: no private ones are declared.
    let private_azs = if net.private_tasks() { net.az_count } else { 0 };
    let privates = shape.count(private_azs, &[PRIVATE_SUBNET]).max(nats).max(tables);
    let azs = shape.count(net.az_count, &[PUBLIC_SUBNET]).max(privates);
    Counts { azs, privates, nats, tables, regional_addresses, regional, routed: net.private_route_tables() }
}

/// The VPC (first: everything else is in it).
pub fn vpc(shape: &Shape, nodes: &mut Nodes) {
    let Counts { azs, privates, tables, regional, .. } = counts(shape);
    nodes.managed(Vpc { azs, privates, tables, regional });
}

/// The internet gateway, the subnets, the NAT gateways with their addresses, the route tables.
pub fn network(shape: &Shape, nodes: &mut Nodes) {
    let counts = counts(shape);
    let Counts { azs, privates, nats, tables, regional_addresses, regional, .. } = counts;
    nodes.managed(InternetGateway { nats, regional });
    for i in 0..azs {
        nodes.managed(Subnet { public: true, index: i, nats });
    }
    for i in 0..privates {
        nodes.managed(Subnet { public: false, index: i, nats });
    }
    nodes.managed(RouteTable::public(azs));
    for i in 0..nats {
        nodes.managed(ElasticIp { index: i, regional: false });
        nodes.managed(NatGateway { index: i });
    }
    for i in 0..regional_addresses {
        nodes.managed(ElasticIp { index: i, regional: true });
    }
    if regional {
        nodes.managed(RegionalNatGateway { addresses: regional_addresses });
    }
    for j in 0..tables {
        nodes.managed(private_table(shape.config(), counts, j));
    }
}

/// Private route table `j`: the config's tables share the private subnets out (`i % routed == j`)
/// and route to the config's NAT (the regional one for every AZ, else zonal NAT `j`); a table the
/// config no longer has keeps no subnet (they move to the config's tables before it goes) and its
/// own NAT gateway, which goes with it.
fn private_table(config: &Config, counts: Counts, j: u8) -> RouteTable {
    let regional_target =
        (config.network.nat() == NatMode::Regional && j == 0) || (counts.regional && j >= counts.nats);
    let target = if regional_target { REGIONAL_NAT_GATEWAY } else { NAT_GATEWAY.at(j) };
    RouteTable::private(j, counts.privates, counts.routed, target)
}

/// The stack's VPC, as what sits in it is checked against.
pub fn in_stack_vpc(ctx: &Scope<'_>) -> Within {
    Within::Vpc(ctx.id(VPC))
}

/// A part of the network the config no longer has: refused like a replacement (the number of AZs
/// cannot shrink in place).
fn removed(key: Key, field: &str, to: u8) -> Removal {
    let from = key.index().map_or(0, |i| i + 1);
    Removal::Refused(Change { field: field.into(), from: format!("{from} or more"), to: to.to_string(), replace: true })
}

/// A NAT gateway, its address, its private route table or a private subnet the config's
/// `network.nat` no longer has (in an AZ the VPC still spans): deleted once the up pass has moved
/// the routes and the service's tasks to the new egress path. Beyond `az_count`: refused.
fn removed_by_nat_mode(key: Key, config: &Config) -> Removal {
    let index = key.index().unwrap_or(0) as u8;
    if index < config.network.az_count {
        Removal::AfterUp
    } else {
        removed(key, "network.az_count", config.network.az_count)
    }
}

/// The region's available zones, looked up once per run.
#[derive(Default)]
struct Zones(tokio::sync::OnceCell<Vec<String>>);

/// The first `az_count` available zones of the region, looked up once per run.
pub async fn availability_zones(ctx: &Scope<'_>) -> Result<Vec<String>, StackError> {
    let zones = ctx.run::<Zones>();
    let found = zones
        .0
        .get_or_try_init(|| async {
            let out = ctx
                .aws
                .ec2
                .describe_availability_zones()
                .filters(filter("state", "available"))
                .send()
                .await
                .ctx("describe availability zones of", ctx.region)?;
            let mut zones: Vec<String> = out
                .availability_zones()
                .iter()
                .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
                .filter_map(|z| z.zone_name().map(str::to_string))
                .collect();
            zones.sort();
            let wanted = ctx.config.network.az_count as usize;
            if zones.len() < wanted {
                return Err(StackError::Refused(format!(
                    "network.az_count = {wanted} but region {} has {} available zones ({})",
                    ctx.region,
                    zones.len(),
                    zones.join(", ")
                )));
            }
            zones.truncate(wanted);
            Ok(zones)
        })
        .await?;
    Ok(found.clone())
}

/// Every tagged object the paginated `describe` call lists, as sightings of `kind`.
macro_rules! sweep {
    ($name:ident, $call:ident, $filter:ident, $kind:expr, $what:expr) => {
        fn $name(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
            Box::pin(async move {
                let all = c.ec2.$call().$filter(any_stack()).into_paginator().items().send().try_collect().await;
                Ok(sightings($kind, &all.ctx("describe", $what)?))
            })
        }
    };
}

sweep!(sweep_vpcs, describe_vpcs, filters, VPC.kind(), "tagged VPCs");
sweep!(sweep_subnets, describe_subnets, filters, SUBNET, "tagged subnets");
sweep!(sweep_gateways, describe_internet_gateways, filters, INTERNET_GATEWAY.kind(), "tagged internet gateways");
sweep!(sweep_route_tables, describe_route_tables, filters, ROUTE_TABLE, "tagged route tables");

/// NAT gateways not yet deleted (a `deleting` one is not active), with when they were created.
fn sweep_nat_gateways(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let all = c.ec2.describe_nat_gateways().filter(any_stack()).into_paginator().items().send().try_collect().await;
        let all: Vec<Nat> = all.ctx("describe", "tagged NAT gateways")?;
        let alive: Vec<Nat> = all.into_iter().filter(|n| n.state() != Some(&NatGatewayState::Deleted)).collect();
        Ok(sightings(NAT_GATEWAY.kind(), &alive)
            .into_iter()
            .zip(&alive)
            .map(|(s, n)| {
                s.created(n.create_time().map(|t| t.secs())).active(n.state() != Some(&NatGatewayState::Deleting))
            })
            .collect())
    })
}

fn sweep_addresses(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let out = c.ec2.describe_addresses().filters(any_stack()).send().await.ctx("describe", "tagged Elastic IPs")?;
        Ok(sightings(ELASTIC_IP.kind(), out.addresses()))
    })
}

/// Describe EC2 objects by IDs or filters: `describe!(ctx.aws.ec2.describe_vpcs(), set_vpc_ids, vpcs, "VPC")`.
macro_rules! describe {
    ($call:expr, $ids:ident, $list:ident, $what:expr) => {
        |ids: Vec<String>, filters: Vec<Filter>| async move {
            let out = $call.$ids(Some(ids)).set_filters(Some(filters)).send().await.ctx("describe", $what)?;
            Ok(out.$list().to_vec())
        }
    };
}

// ---------------------------------------------------------------- VPC

pub struct Vpc {
    pub azs: u8,
    pub privates: u8,
    pub tables: u8,
    pub regional: bool,
}

pub struct VpcLive {
    vpc: VpcObject,
    dns_support: bool,
    dns_hostnames: bool,
}

async fn dns_setting(ctx: &Scope<'_>, id: &str, attribute: VpcAttributeName) -> Result<bool, StackError> {
    let out = ctx
        .aws
        .ec2
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(attribute.clone())
        .send()
        .await
        .ctx("describe the DNS settings of", id)?;
    let value = match attribute {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(value.and_then(|v| v.value()).unwrap_or(false))
}

async fn dns_settings(ctx: &Scope<'_>, id: &str) -> Result<(bool, bool), StackError> {
    tokio::try_join!(
        dns_setting(ctx, id, VpcAttributeName::EnableDnsSupport),
        dns_setting(ctx, id, VpcAttributeName::EnableDnsHostnames)
    )
}

fn on_off(value: bool) -> &'static str {
    if value {
        "on"
    } else {
        "off"
    }
}

/// What the VPC can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum VpcField {
    Cidr,
    AzCount,
    DnsSupport,
    DnsHostnames,
}

impl Field for VpcField {
    fn label(&self) -> String {
        match self {
            VpcField::Cidr => "network.cidr",
            VpcField::AzCount => "network.az_count",
            VpcField::DnsSupport => "dns support",
            VpcField::DnsHostnames => "dns hostnames",
        }
        .into()
    }
}

#[async_trait]
impl Managed for Vpc {
    type Live = VpcLive;
    type Field = VpcField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &VpcLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(&live.vpc))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &VpcLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, &live.vpc, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_vpcs)
    }

    fn permissions(&self) -> Vec<Permission> {
        let vpc = arn("ec2", "vpc/*");
        vec![
            Permission::find("ec2:DescribeVpcs"),
            Permission::find("ec2:DescribeVpcAttribute").on(vpc.clone()),
            // The preflight of `up`, and the zones the subnets go in.
            Permission::create("ec2:DescribeAvailabilityZones"),
            Permission::create("ec2:CreateVpc").on(vpc.clone()).tagging(),
            access::tags_on_create("ec2:CreateTags", "CreateVpc", vpc.clone()),
            access::retagging("ec2:CreateTags", vpc.clone()),
            access::retagging("ec2:DeleteTags", vpc.clone()),
            Permission::update("ec2:ModifyVpcAttribute").on(vpc.clone()).tagged(),
            Permission::delete("ec2:DeleteVpc").on(vpc).tagged(),
            // A delete refused past its wait names the interfaces still in the VPC.
            Permission::delete("ec2:DescribeNetworkInterfaces"),
        ]
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        VPC
    }

    fn needs(&self) -> Vec<Dep> {
        vec![]
    }

    fn lifecycle(&self) -> Lifecycle {
        // What sits in it is checked to be in it.
        Lifecycle { found_first: true, advice: Some(NEW_NETWORK), ..Lifecycle::default() }
    }

    /// An `az_count` the region cannot hold is refused before any change.
    async fn preflight(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        availability_zones(ctx).await.map(drop)
    }

    fn teardown_after(&self) -> Vec<Edge> {
        const INSIDE: &str = "DeleteVpc fails with DependencyViolation while anything is left in the VPC";
        let mut edges = vec![];
        for i in 0..self.azs {
            edges.push(after(PUBLIC_SUBNET.at(i), INSIDE));
        }
        for i in 0..self.privates {
            edges.push(after(PRIVATE_SUBNET.at(i), INSIDE));
        }
        for j in 0..self.tables {
            edges.push(after(PRIVATE_ROUTE_TABLE.at(j), INSIDE));
        }
        if self.regional {
            edges.push(after(REGIONAL_NAT_GATEWAY, INSIDE));
        }
        // What else sits in it (security groups, the target group) says so itself.
        edges.extend([
            after(PUBLIC_ROUTE_TABLE, INSIDE),
            after(INTERNET_GATEWAY, "DeleteVpc fails while an internet gateway is attached"),
        ]);
        edges
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<VpcLive>, StackError> {
        // With a recorded ID, the DNS settings are read in the same round as the VPC.
        let recorded = ctx.id(VPC);
        let (vpc, settings) = tokio::join!(
            locate(ctx, VPC, Within::Tags, describe!(ctx.aws.ec2.describe_vpcs(), set_vpc_ids, vpcs, "VPC")),
            async {
                match &recorded {
                    Some(id) => Some(found(dns_settings(ctx, id).await)),
                    None => None,
                }
            }
        );
        let Some(vpc) = vpc? else { return Ok(None) };
        let (dns_support, dns_hostnames) = match settings {
            Some(Ok(Some(settings))) if recorded.as_deref() == Some(vpc.object_id()) => settings,
            _ => dns_settings(ctx, vpc.object_id()).await?,
        };
        Ok(Some(VpcLive { vpc, dns_support, dns_hostnames }))
    }

    fn record(&self, ctx: &Scope<'_>, live: &VpcLive) -> Record {
        // What the VPC was built for, kept from its creation (a changed az_count is refused).
        let azs = ctx.attr(VPC_AZ_COUNT).unwrap_or_else(|| ctx.config.network.az_count.to_string());
        Record::id(live.vpc.object_id())
            .with(VPC_CIDR, live.vpc.cidr_block().unwrap_or_default())
            .with(VPC_AZ_COUNT, azs)
    }

    fn diff(&self, ctx: &Scope<'_>, live: &VpcLive) -> Result<Vec<Changed<VpcField>>, StackError> {
        let net = &ctx.config.network;
        let built_for = ctx.attr(VPC_AZ_COUNT).unwrap_or_else(|| net.az_count.to_string());
        let mut diff = Diff::new();
        diff.replace(VpcField::Cidr, live.vpc.cidr_block().unwrap_or_default(), &net.cidr.to_string())
            .replace(VpcField::AzCount, &built_for, &net.az_count.to_string())
            // Fargate tasks resolve the registry and DynamoDB through the VPC's DNS.
            .field(VpcField::DnsSupport, on_off(live.dns_support), "on")
            .field(VpcField::DnsHostnames, on_off(live.dns_hostnames), "on");
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<VpcLive, StackError> {
        let out = ctx
            .aws
            .ec2
            .create_vpc()
            .cidr_block(ctx.config.network.cidr.to_string())
            .tag_specifications(vpc_tags(ctx))
            .send()
            .await
            .ctx("create", "VPC")?;
        let vpc = returned(out.vpc().cloned(), "VPC", "create returned no VPC")?;
        // A new VPC resolves names but gives no DNS hostnames.
        Ok(VpcLive { vpc, dns_support: true, dns_hostnames: false })
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &VpcLive,
        changes: &[Changed<VpcField>],
    ) -> Result<Option<VpcLive>, StackError> {
        let id = live.vpc.object_id();
        for change in changes {
            let call = ctx.aws.ec2.modify_vpc_attribute().vpc_id(id);
            let on = Some(AttributeBooleanValue::builder().value(true).build());
            let call = match change.field {
                VpcField::DnsSupport => call.set_enable_dns_support(on),
                VpcField::DnsHostnames => call.set_enable_dns_hostnames(on),
                // Replacements: refused before any update.
                VpcField::Cidr | VpcField::AzCount => continue,
            };
            // A VPC created a moment ago may not be visible to every EC2 endpoint yet.
            wait::retry_while(line, id, budget::PROPAGATION, StackError::is_not_found, || async {
                call.clone().send().await.ctx("turn DNS on for", id)
            })
            .await?;
        }
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: VpcLive) -> Result<Outcome, StackError> {
        let id = live.vpc.object_id();
        let deleted = wait::retry_codes(line, id, budget::NETWORK, &["DependencyViolation"], || async {
            ignore_not_found(ctx.aws.ec2.delete_vpc().vpc_id(id).send().await.ctx("delete", id).map(drop))
        })
        .await;
        name_holders(ctx, &format!("VPC {id}"), vec![filter("vpc-id", id)], deleted).await?;
        Ok(Outcome::Deleted)
    }
}

/// The VPC's tags: the stack's, and where its state lives (see `state::location::STATE_TAG`).
fn vpc_tags(ctx: &Scope<'_>) -> TagSpecification {
    let mut spec = tag_spec(ctx, ResourceType::Vpc, &ctx.name("vpc"));
    let state = Tag::builder().key(STATE_TAG).value(tag_value(&ctx.state_location())).build();
    spec.tags.get_or_insert_with(Vec::new).push(state);
    spec
}

// ---------------------------------------------------------------- subnets

pub struct Subnet {
    pub public: bool,
    pub index: u8,
    pub nats: u8,
}

#[async_trait]
impl Managed for Subnet {
    type Live = Sn;
    type Field = NoField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &Sn) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(live))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &Sn,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, live, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_subnets)
    }

    fn permissions(&self) -> Vec<Permission> {
        let subnet = arn("ec2", "subnet/*");
        vec![
            Permission::find("ec2:DescribeSubnets"),
            Permission::create("ec2:CreateSubnet").on(subnet.clone()).tagging(),
            Permission::create("ec2:CreateSubnet").on(arn("ec2", "vpc/*")).tagged(),
            access::tags_on_create("ec2:CreateTags", "CreateSubnet", subnet.clone()),
            access::retagging("ec2:CreateTags", subnet.clone()),
            access::retagging("ec2:DeleteTags", subnet.clone()),
            Permission::delete("ec2:DeleteSubnet").on(subnet).tagged(),
            // A delete refused past its wait names the interfaces still in the subnet.
            Permission::delete("ec2:DescribeNetworkInterfaces"),
        ]
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        if self.public {
            PUBLIC_SUBNET.at(self.index)
        } else {
            PRIVATE_SUBNET.at(self.index)
        }
    }

    fn needs(&self) -> Vec<Dep> {
        vec![VPC.into()]
    }

    /// What runs in it (the load balancer, the tasks) says so itself.
    fn teardown_after(&self) -> Vec<Edge> {
        if self.public && self.index < self.nats {
            return vec![after(NAT_GATEWAY.at(self.index), "the NAT gateway sits in it until it is deleted")];
        }
        vec![]
    }

    fn removal(&self, config: &Config) -> Removal {
        if self.public {
            removed(self.key(), "network.az_count", config.network.az_count)
        } else {
            removed_by_nat_mode(self.key(), config)
        }
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Sn>, StackError> {
        locate(
            ctx,
            self.key(),
            in_stack_vpc(ctx),
            describe!(ctx.aws.ec2.describe_subnets(), set_subnet_ids, subnets, "subnet"),
        )
        .await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &Sn) -> Record {
        Record::id(live.object_id())
            .with_fact("az", live.availability_zone().unwrap_or_default())
            .with_fact("cidr", live.cidr_block().unwrap_or_default())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<Sn, StackError> {
        let key = self.key();
        let vpc = ctx.need(VPC)?;
        let i = self.index as usize;
        let az = availability_zones(ctx).await?[i].clone();
        let plan = ctx.config.subnet_plan().expect("validated config has a subnet plan");
        let cidr = if self.public { plan.public[i] } else { plan.private[i] }.to_string();
        let out = ctx
            .aws
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(&cidr)
            .availability_zone(&az)
            .tag_specifications(tag_spec(ctx, ResourceType::Subnet, &ctx.name(&format!("{key}-{az}"))))
            .send()
            .await
            .ctx("create", &key.to_string())?;
        returned(out.subnet().cloned(), key.to_string(), "create returned no subnet")
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: Sn) -> Result<Outcome, StackError> {
        let id = live.object_id();
        let deleted = wait::retry_codes(line, id, budget::NETWORK, &["DependencyViolation"], || async {
            ignore_not_found(ctx.aws.ec2.delete_subnet().subnet_id(id).send().await.ctx("delete", id).map(drop))
        })
        .await;
        name_holders(ctx, &format!("subnet {id}"), vec![filter("subnet-id", id)], deleted).await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- internet gateway

pub struct InternetGateway {
    pub nats: u8,
    pub regional: bool,
}

fn attached_vpc(igw: &Igw) -> Option<&str> {
    igw.attachments()
        .iter()
        .filter(|a| a.state().is_some_and(|s| matches!(s.as_str(), "available" | "attached" | "attaching")))
        .find_map(|a| a.vpc_id())
}

/// What the internet gateway can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum IgwField {
    AttachedTo,
}

impl Field for IgwField {
    fn label(&self) -> String {
        "attached to".into()
    }
}

#[async_trait]
impl Managed for InternetGateway {
    type Live = Igw;
    type Field = IgwField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &Igw) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(live))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &Igw,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, live, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_gateways)
    }

    fn permissions(&self) -> Vec<Permission> {
        let igw = arn("ec2", "internet-gateway/*");
        vec![
            Permission::find("ec2:DescribeInternetGateways"),
            Permission::create("ec2:CreateInternetGateway").on(igw.clone()).tagging(),
            access::tags_on_create("ec2:CreateTags", "CreateInternetGateway", igw.clone()),
            access::retagging("ec2:CreateTags", igw.clone()),
            access::retagging("ec2:DeleteTags", igw.clone()),
            Permission::update("ec2:AttachInternetGateway").on(igw.clone()).tagged(),
            Permission::update("ec2:AttachInternetGateway").on(arn("ec2", "vpc/*")).tagged(),
            Permission::delete("ec2:DetachInternetGateway").on(igw.clone()).tagged(),
            Permission::delete("ec2:DetachInternetGateway").on(arn("ec2", "vpc/*")).tagged(),
            Permission::delete("ec2:DeleteInternetGateway").on(igw).tagged(),
        ]
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        INTERNET_GATEWAY
    }

    fn needs(&self) -> Vec<Dep> {
        vec![VPC.into()]
    }

    /// An internet-facing load balancer's addresses say so themselves.
    fn teardown_after(&self) -> Vec<Edge> {
        const MAPPED: &str = "DetachInternetGateway fails while a NAT gateway's public address is mapped";
        let mut edges: Vec<Edge> = (0..self.nats).map(|j| after(NAT_GATEWAY.at(j), MAPPED)).collect();
        if self.regional {
            edges.push(after(REGIONAL_NAT_GATEWAY, MAPPED));
        }
        edges
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Igw>, StackError> {
        let igw = locate(
            ctx,
            INTERNET_GATEWAY,
            Within::Tags,
            describe!(
                ctx.aws.ec2.describe_internet_gateways(),
                set_internet_gateway_ids,
                internet_gateways,
                "internet gateway"
            ),
        )
        .await?;
        // Attached to another VPC than ours: not the stack's gateway any more.
        if let (Some(igw), Some(vpc)) = (&igw, ctx.id(VPC)) {
            if let Some(other) = attached_vpc(igw).filter(|v| *v != vpc) {
                return Err(
                    ctx.not_ours(format!("internet gateway {}", igw.object_id()), format!("attached to {other}"))
                );
            }
        }
        Ok(igw)
    }

    fn record(&self, _ctx: &Scope<'_>, live: &Igw) -> Record {
        Record::id(live.object_id())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &Igw) -> Result<Vec<Changed<IgwField>>, StackError> {
        let vpc = ctx.need(VPC)?;
        let mut diff = Diff::new();
        diff.field(IgwField::AttachedTo, attached_vpc(live).unwrap_or("nothing"), vpc.as_str());
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<Igw, StackError> {
        let out = ctx
            .aws
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(ctx, ResourceType::InternetGateway, &ctx.name("igw")))
            .send()
            .await
            .ctx("create", "internet gateway")?;
        returned(out.internet_gateway().cloned(), "internet gateway", "create returned nothing")
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &Igw,
        _changes: &[Changed<IgwField>],
    ) -> Result<Option<Igw>, StackError> {
        let (id, vpc) = (live.object_id(), ctx.need(VPC)?);
        line.start("attaching");
        wait::retry_while(line, id, budget::PROPAGATION, StackError::is_not_found, || async {
            ctx.aws.ec2.attach_internet_gateway().internet_gateway_id(id).vpc_id(&vpc).send().await.ctx("attach", id)
        })
        .await?;
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: Igw) -> Result<Outcome, StackError> {
        let id = live.object_id();
        if let Some(vpc) = attached_vpc(&live) {
            // DependencyViolation while a NAT gateway's or the load balancer's public address is mapped.
            wait::retry_codes(line, id, budget::NETWORK, &["DependencyViolation"], || async {
                let detached = ctx
                    .aws
                    .ec2
                    .detach_internet_gateway()
                    .internet_gateway_id(id)
                    .vpc_id(vpc)
                    .send()
                    .await
                    .ctx("detach", id);
                match detached {
                    Err(e) if e.has_code(&["Gateway.NotAttached"]) || e.is_not_found() => Ok(()),
                    other => other.map(drop),
                }
            })
            .await?;
        }
        wait::retry_codes(line, id, budget::NETWORK, &["DependencyViolation"], || async {
            ignore_not_found(
                ctx.aws.ec2.delete_internet_gateway().internet_gateway_id(id).send().await.ctx("delete", id).map(drop),
            )
        })
        .await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- elastic IPs

/// A zonal NAT gateway's address, or (`regional`) the regional NAT gateway's address in AZ `index`.
pub struct ElasticIp {
    pub index: u8,
    pub regional: bool,
}

impl ElasticIp {
    /// The NAT gateway holding it.
    fn holder(&self) -> Key {
        if self.regional {
            REGIONAL_NAT_GATEWAY
        } else {
            NAT_GATEWAY.at(self.index)
        }
    }
}

#[async_trait]
impl Managed for ElasticIp {
    type Live = Address;
    type Field = NoField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &Address) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(live))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &Address,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, live, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_addresses)
    }

    fn permissions(&self) -> Vec<Permission> {
        let eip = arn("ec2", "elastic-ip/*");
        vec![
            Permission::find("ec2:DescribeAddresses"),
            Permission::create("ec2:AllocateAddress").on(eip.clone()).tagging(),
            access::tags_on_create("ec2:CreateTags", "AllocateAddress", eip.clone()),
            access::retagging("ec2:CreateTags", eip.clone()),
            access::retagging("ec2:DeleteTags", eip.clone()),
            Permission::delete("ec2:ReleaseAddress").on(eip).tagged(),
        ]
    }

    /// A public IPv4 address bills by the hour whether or not it is in use.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        let what = if self.regional {
            format!("public IPv4 address of the regional NAT gateway in AZ {}", self.index + 1)
        } else {
            format!("public IPv4 address of NAT gateway {}", self.index + 1)
        };
        vec![Charge::running(items::PUBLIC_IPV4_HOUR, Unit::Hour, Quantity::fixed(1.0), what)]
    }

    fn key(&self) -> Key {
        if self.regional {
            REGIONAL_ELASTIC_IP.at(self.index)
        } else {
            ELASTIC_IP.at(self.index)
        }
    }

    fn needs(&self) -> Vec<Dep> {
        vec![]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![after(self.holder(), "ReleaseAddress fails while the NAT gateway holding it is not deleted")]
    }

    fn removal(&self, config: &Config) -> Removal {
        removed_by_nat_mode(self.key(), config)
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Address>, StackError> {
        locate(
            ctx,
            self.key(),
            Within::Tags,
            describe!(ctx.aws.ec2.describe_addresses(), set_allocation_ids, addresses, "elastic IP"),
        )
        .await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &Address) -> Record {
        Record::id(live.object_id()).with_fact("public_ip", live.public_ip().unwrap_or_default())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<Address, StackError> {
        let key = self.key();
        let out = ctx
            .aws
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tag_spec(
                ctx,
                ResourceType::ElasticIp,
                &ctx.name(&format!("nat-eip-{}{}", if self.regional { "regional-" } else { "" }, self.index + 1)),
            ))
            .send()
            .await
            .ctx("allocate", &key.to_string())?;
        Ok(Address::builder()
            .set_allocation_id(out.allocation_id().map(str::to_string))
            .set_public_ip(out.public_ip().map(str::to_string))
            .build())
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: Address) -> Result<Outcome, StackError> {
        let id = live.object_id();
        // Its NAT gateway is deleted by now, but for a short while EC2 may still see the address as
        // in use by it (InvalidIPAddress.InUse), or as held by the NAT service (AuthFailure).
        wait::retry_codes(
            line,
            id,
            budget::PROPAGATION,
            &["InvalidIPAddress.InUse", "DependencyViolation", "AuthFailure"],
            || async {
                ignore_not_found(
                    ctx.aws.ec2.release_address().allocation_id(id).send().await.ctx("release", id).map(drop),
                )
            },
        )
        .await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- NAT gateways

pub struct NatGateway {
    pub index: u8,
}

fn nat_alive(nat: &Nat) -> bool {
    matches!(nat.state(), Some(NatGatewayState::Pending | NatGatewayState::Available))
}

fn nat_state(nat: &Nat) -> &str {
    nat.state().map(|s| s.as_str()).unwrap_or("unknown")
}

async fn describe_nats(ctx: &Scope<'_>, ids: Vec<String>, filters: Vec<Filter>) -> Result<Vec<Nat>, StackError> {
    let out = ctx
        .aws
        .ec2
        .describe_nat_gateways()
        .set_nat_gateway_ids(Some(ids))
        .set_filter(Some(filters))
        .send()
        .await
        .ctx("describe", "NAT gateway")?;
    Ok(out.nat_gateways().to_vec())
}

/// A NAT gateway's actions: made tagged in `made_in` (a zonal one's subnet, the regional one's
/// VPC) with the stack's Elastic IPs, found, and deleted.
fn nat_permissions(made_in: &str) -> Vec<Permission> {
    let nat = arn("ec2", "natgateway/*");
    vec![
        Permission::find("ec2:DescribeNatGateways"),
        Permission::create("ec2:CreateNatGateway").on(nat.clone()).tagging(),
        Permission::create("ec2:CreateNatGateway").on(arn("ec2", made_in)).tagged(),
        Permission::create("ec2:CreateNatGateway").on(arn("ec2", "elastic-ip/*")).tagged(),
        access::tags_on_create("ec2:CreateTags", "CreateNatGateway", nat.clone()),
        access::retagging("ec2:CreateTags", nat.clone()),
        access::retagging("ec2:DeleteTags", nat.clone()),
        Permission::delete("ec2:DeleteNatGateway").on(nat).tagged(),
    ]
}

#[async_trait]
impl Managed for NatGateway {
    type Live = Nat;
    type Field = NoField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &Nat) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(live))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &Nat,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, live, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_nat_gateways)
    }

    fn permissions(&self) -> Vec<Permission> {
        nat_permissions("subnet/*")
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        let what = format!("NAT gateway {}", self.index + 1);
        vec![
            Charge::running(items::NAT_GATEWAY_HOUR, Unit::Hour, Quantity::fixed(1.0), what.clone()),
            Charge::usage(items::NAT_GATEWAY_DATA, Unit::Gb, format!("data processed by {what}")),
        ]
    }

    fn key(&self) -> Key {
        NAT_GATEWAY.at(self.index)
    }

    fn needs(&self) -> Vec<Dep> {
        vec![ELASTIC_IP.at(self.index).into(), PUBLIC_SUBNET.at(self.index).into(), INTERNET_GATEWAY.into()]
    }

    fn reads(&self) -> Vec<Dep> {
        vec![VPC.into()]
    }

    fn removal(&self, config: &Config) -> Removal {
        removed_by_nat_mode(self.key(), config)
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Nat>, StackError> {
        find_nat(ctx, self.key()).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &Nat) -> Record {
        Record::id(live.object_id())
    }

    fn pending(&self, _ctx: &Scope<'_>, live: &Nat) -> Option<String> {
        (live.state() != Some(&NatGatewayState::Available)).then(|| nat_state(live).to_string())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<Nat, StackError> {
        let key = self.key();
        let subnet = ctx.need(PUBLIC_SUBNET.at(self.index))?;
        let allocation = ctx.need(ELASTIC_IP.at(self.index))?;
        let call = ctx.aws.ec2.create_nat_gateway().subnet_id(&subnet).allocation_id(&allocation);
        send_create(ctx, key, call, &format!("nat-{}", self.index + 1)).await
    }

    /// A private route through a NAT gateway that is not available black-holes the image pulls.
    async fn ready(&self, ctx: &Scope<'_>, line: &Line, live: &Nat) -> Result<(), StackError> {
        wait_available(ctx, line, live.object_id()).await
    }

    /// Deletes this gateway and any earlier (failed) one of the same key, and waits until they
    /// are gone: the elastic IP and the internet gateway wait for that.
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: Nat) -> Result<Outcome, StackError> {
        delete_nats(ctx, line, self.key(), live).await
    }
}

/// The stack's NAT gateway of `key` in its VPC: only one that is or will be available counts (a
/// failed one is replaced).
async fn find_nat(ctx: &Scope<'_>, key: Key) -> Result<Option<Nat>, StackError> {
    locate(ctx, key, in_stack_vpc(ctx), |ids, filters| async move {
        Ok(describe_nats(ctx, ids, filters).await?.into_iter().filter(nat_alive).collect())
    })
    .await
}

/// Creates NAT gateway `key` with `call`, tagged and named `name`: the same client token on a
/// retried create (in this VPC) returns the same gateway; a failed gateway is terminal, and its
/// replacement needs a new token (the old one would return the failed gateway).
async fn send_create(
    ctx: &Scope<'_>,
    key: Key,
    call: CreateNatGatewayFluentBuilder,
    name: &str,
) -> Result<Nat, StackError> {
    let vpc = ctx.need(VPC)?;
    let within = in_stack_vpc(ctx);
    let tagged = describe_nats(ctx, vec![], tag_filters(ctx, key)).await?;
    let failed = tagged
        .iter()
        .filter(|n| n.state() == Some(&NatGatewayState::Failed) && check(ctx, key, &within, *n).is_ok())
        .count();
    let out = call
        .client_token(format!("{}-{key}-{vpc}-{failed}", ctx.stack()))
        .tag_specifications(tag_spec(ctx, ResourceType::Natgateway, &ctx.name(name)))
        .send()
        .await
        .ctx("create", &key.to_string())?;
    returned(out.nat_gateway().cloned(), key.to_string(), "create returned nothing")
}

/// Waits until NAT gateway `id` is available; a failed one names AWS's reason.
async fn wait_available(ctx: &Scope<'_>, line: &Line, id: &str) -> Result<(), StackError> {
    wait::until(line, id, "become available", budget::NAT_AVAILABLE, || async {
        match describe_nats(ctx, vec![id.to_string()], vec![]).await?.into_iter().next() {
            Some(n) if n.state() == Some(&NatGatewayState::Available) => Ok(Poll::Ready(())),
            Some(n) if n.state() == Some(&NatGatewayState::Failed) => Err(StackError::Failed {
                resource: id.to_string(),
                message: format!(
                    "failed: {}: {}; run `up` again to replace it",
                    n.failure_code().unwrap_or("failed"),
                    n.failure_message().unwrap_or("")
                ),
            }),
            Some(n) if nat_alive(&n) => Ok(Poll::Pending(nat_state(&n).to_string())),
            Some(n) => Err(StackError::Failed { resource: id.to_string(), message: format!("is {}", nat_state(&n)) }),
            None => Err(StackError::Failed { resource: id.to_string(), message: "disappeared while pending".into() }),
        }
    })
    .await
}

/// Deletes `live` and any earlier (failed) gateway of `key`, and waits until they are gone.
async fn delete_nats(ctx: &Scope<'_>, line: &Line, key: Key, live: Nat) -> Result<Outcome, StackError> {
    let mut ids = vec![live.object_id().to_string()];
    let within = in_stack_vpc(ctx);
    for nat in describe_nats(ctx, vec![], tag_filters(ctx, key)).await? {
        let owned = check(ctx, key, &within, &nat).is_ok();
        if owned && nat.state() != Some(&NatGatewayState::Deleted) && !ids.iter().any(|i| i == nat.object_id()) {
            ids.push(nat.object_id().to_string());
        }
    }
    for id in &ids {
        let state = describe_nats(ctx, vec![id.clone()], vec![]).await;
        let Some(nat) = found(state)?.and_then(|n| n.into_iter().next()) else { continue };
        if !matches!(nat.state(), Some(NatGatewayState::Deleting | NatGatewayState::Deleted)) {
            ignore_not_found(
                ctx.aws.ec2.delete_nat_gateway().nat_gateway_id(id).send().await.ctx("delete", id).map(drop),
            )?;
        }
    }
    for id in &ids {
        wait::until(line, id, "be deleted", budget::NAT_DELETED, || async {
            Ok(match found(describe_nats(ctx, vec![id.clone()], vec![]).await)?.and_then(|n| n.into_iter().next()) {
                Some(n) if n.state() != Some(&NatGatewayState::Deleted) => Poll::Pending(nat_state(&n).to_string()),
                _ => Poll::Ready(()),
            })
        })
        .await?;
    }
    Ok(Outcome::Deleted)
}

// ---------------------------------------------------------------- route tables

/// The public route table (default route to the internet gateway, the public subnets) or private
/// table `j` (default route to a NAT gateway, the private subnets `i` with `i % routed == j`).
pub struct RouteTable {
    key: Key,
    target: Key,
    subnets: Vec<Key>,
    suffix: String,
}

impl RouteTable {
    pub fn public(azs: u8) -> RouteTable {
        RouteTable {
            key: PUBLIC_ROUTE_TABLE,
            target: INTERNET_GATEWAY,
            subnets: (0..azs).map(|i| PUBLIC_SUBNET.at(i)).collect(),
            suffix: "public-rt".into(),
        }
    }

    /// Table `j` of the `routed` the config has (none of the subnets when `j` is beyond them),
    /// its default route to `target`.
    pub fn private(j: u8, azs: u8, routed: u8, target: Key) -> RouteTable {
        let subnets = if j < routed {
            (0..azs).filter(|i| i % routed == j).map(|i| PRIVATE_SUBNET.at(i)).collect()
        } else {
            vec![]
        };
        RouteTable { key: PRIVATE_ROUTE_TABLE.at(j), target, subnets, suffix: format!("private-rt-{}", j + 1) }
    }
}

/// What a route table can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteField {
    DefaultRoute,
    Association(Key),
}

impl Field for RouteField {
    fn label(&self) -> String {
        match self {
            RouteField::DefaultRoute => "route 0.0.0.0/0".into(),
            RouteField::Association(subnet) => format!("{subnet} association"),
        }
    }
}

fn default_route(table: &Rt) -> Option<&aws_sdk_ec2::types::Route> {
    table.routes().iter().find(|r| r.destination_cidr_block() == Some(ANYWHERE))
}

/// The default route's target as `status` shows it (`blackhole` when its target is gone).
fn route_target(table: &Rt) -> String {
    match default_route(table) {
        None => "none".into(),
        Some(r) if r.state().is_some_and(|s| s.as_str() == "blackhole") => {
            format!("{} (blackhole)", r.gateway_id().or(r.nat_gateway_id()).unwrap_or("?"))
        }
        Some(r) => r.gateway_id().or(r.nat_gateway_id()).unwrap_or("?").to_string(),
    }
}

#[async_trait]
impl Managed for RouteTable {
    type Live = Rt;
    type Field = RouteField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &Rt) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(live))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &Rt,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, live, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_route_tables)
    }

    fn permissions(&self) -> Vec<Permission> {
        let table = arn("ec2", "route-table/*");
        vec![
            Permission::find("ec2:DescribeRouteTables"),
            Permission::create("ec2:CreateRouteTable").on(table.clone()).tagging(),
            Permission::create("ec2:CreateRouteTable").on(arn("ec2", "vpc/*")).tagged(),
            access::tags_on_create("ec2:CreateTags", "CreateRouteTable", table.clone()),
            access::retagging("ec2:CreateTags", table.clone()),
            access::retagging("ec2:DeleteTags", table.clone()),
            Permission::update("ec2:CreateRoute").on(table.clone()).tagged(),
            Permission::update("ec2:ReplaceRoute").on(table.clone()).tagged(),
            Permission::update("ec2:AssociateRouteTable").on(table.clone()).tagged(),
            Permission::update("ec2:AssociateRouteTable").on(arn("ec2", "subnet/*")).tagged(),
            Permission::update("ec2:ReplaceRouteTableAssociation").on(table.clone()).tagged(),
            Permission::delete("ec2:DisassociateRouteTable").on(table.clone()).tagged(),
            Permission::delete("ec2:DeleteRouteTable").on(table).tagged(),
        ]
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        self.key
    }

    fn needs(&self) -> Vec<Dep> {
        let mut needs = vec![self.target.into()];
        needs.extend(self.subnets.iter().map(|&s| Dep::from(s)));
        needs
    }

    fn reads(&self) -> Vec<Dep> {
        vec![VPC.into()]
    }

    fn removal(&self, config: &Config) -> Removal {
        match self.key.index() {
            Some(_) => removed_by_nat_mode(self.key, config),
            None => Removal::AfterUp,
        }
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Rt>, StackError> {
        locate(
            ctx,
            self.key,
            in_stack_vpc(ctx),
            describe!(ctx.aws.ec2.describe_route_tables(), set_route_table_ids, route_tables, "route table"),
        )
        .await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &Rt) -> Record {
        Record::id(live.object_id())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &Rt) -> Result<Vec<Changed<RouteField>>, StackError> {
        // A target never made yet (a plan switching `network.nat`): the route moves to the new one.
        let target = ctx.id(self.target).unwrap_or_else(|| format!("new {}", self.target));
        let mut diff = Diff::new();
        diff.field(RouteField::DefaultRoute, &route_target(live), &target);
        let associated: Vec<&str> = live.associations().iter().filter_map(|a| a.subnet_id()).collect();
        for &subnet in &self.subnets {
            if let Some(id) = ctx.id(subnet) {
                let have = if associated.contains(&id.as_str()) { "yes" } else { "no" };
                diff.field(RouteField::Association(subnet), have, "yes");
            }
        }
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<Rt, StackError> {
        let vpc = ctx.need(VPC)?;
        let out = ctx
            .aws
            .ec2
            .create_route_table()
            .vpc_id(&vpc)
            .tag_specifications(tag_spec(ctx, ResourceType::RouteTable, &ctx.name(&self.suffix)))
            .send()
            .await
            .ctx("create", &self.key.to_string())?;
        returned(out.route_table().cloned(), self.key.to_string(), "create returned nothing")
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &Rt,
        changes: &[Changed<RouteField>],
    ) -> Result<Option<Rt>, StackError> {
        let id = live.object_id();
        if changes.iter().any(|c| c.field == RouteField::DefaultRoute) {
            let target = ctx.need(self.target)?;
            let via_nat = self.target != INTERNET_GATEWAY;
            let replace = default_route(live).is_some();
            line.start("routing");
            // The target was created a moment ago: retry while it propagates.
            wait::retry_while(line, id, budget::PROPAGATION, StackError::is_not_found, || async {
                if replace {
                    let call = ctx.aws.ec2.replace_route().route_table_id(id).destination_cidr_block(ANYWHERE);
                    let call = if via_nat { call.nat_gateway_id(&target) } else { call.gateway_id(&target) };
                    call.send().await.ctx("replace the default route of", id).map(drop)
                } else {
                    let call = ctx.aws.ec2.create_route().route_table_id(id).destination_cidr_block(ANYWHERE);
                    let call = if via_nat { call.nat_gateway_id(&target) } else { call.gateway_id(&target) };
                    match call.send().await.ctx("add the default route to", id) {
                        Err(e) if e.has_code(&["RouteAlreadyExists"]) => Ok(()),
                        other => other.map(drop),
                    }
                }
            })
            .await?;
        }
        for &subnet_key in &self.subnets {
            if !changes.iter().any(|c| c.field == RouteField::Association(subnet_key)) {
                continue;
            }
            let subnet = ctx.need(subnet_key)?;
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
                        .route_table_id(id)
                        .send()
                        .await
                        .ctx("move the route table association of", &subnet)?;
                }
                None => {
                    ctx.aws
                        .ec2
                        .associate_route_table()
                        .route_table_id(id)
                        .subnet_id(&subnet)
                        .send()
                        .await
                        .ctx("associate a route table with", &subnet)?;
                }
            }
        }
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: Rt) -> Result<Outcome, StackError> {
        let id = live.object_id();
        for association in live.associations().iter().filter(|a| a.main() != Some(true)) {
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
        wait::retry_codes(line, id, budget::NETWORK, &["DependencyViolation"], || async {
            ignore_not_found(
                ctx.aws.ec2.delete_route_table().route_table_id(id).send().await.ctx("delete", id).map(drop),
            )
        })
        .await?;
        Ok(Outcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests_support::ctx;
    use aws_sdk_ec2::types::{Route, RouteState, RouteTableAssociation};

    fn table(target: Option<(&str, &str)>, subnets: &[&str]) -> Rt {
        let mut t = Rt::builder().route_table_id("rtb-1").vpc_id("vpc-1");
        if let Some((gateway, state)) = target {
            t = t.routes(
                Route::builder()
                    .destination_cidr_block(ANYWHERE)
                    .nat_gateway_id(gateway)
                    .state(RouteState::from(state))
                    .build(),
            );
        }
        for s in subnets {
            t = t.associations(RouteTableAssociation::builder().subnet_id(*s).build());
        }
        t.build()
    }

    #[tokio::test]
    async fn a_route_table_diff_names_the_route_target_and_each_missing_association() {
        let c = ctx();
        for (key, id) in
            [(NAT_GATEWAY.at(0), "nat-new"), (PRIVATE_SUBNET.at(0), "subnet-a"), (PRIVATE_SUBNET.at(1), "subnet-b")]
        {
            c.record(key, &Record::id(id)).await.unwrap();
        }
        // A plan switching to a NAT gateway not made yet names the move.
        let regional = RouteTable::private(0, 2, 1, REGIONAL_NAT_GATEWAY);
        let scope =
            c.scope_of(regional.key(), crate::model::Declared { needs: regional.needs(), ..Default::default() });
        let moved = regional.diff(&scope, &table(Some(("nat-new", "active")), &["subnet-a", "subnet-b"])).unwrap();
        assert_eq!(moved[0].change.to_string(), "route 0.0.0.0/0: nat-new → new nat-gateway-regional");
        let rt = RouteTable::private(0, 2, 1, NAT_GATEWAY.at(0));
        let c = c.scope_of(rt.key(), crate::model::Declared { needs: rt.needs(), ..Default::default() });
        assert!(rt.diff(&c, &table(Some(("nat-new", "active")), &["subnet-a", "subnet-b"])).unwrap().is_empty());
        let changes = rt.diff(&c, &table(Some(("nat-old", "blackhole")), &["subnet-a"])).unwrap();
        assert_eq!(changes[1].field, RouteField::Association(PRIVATE_SUBNET.at(1)), "update dispatches on it");
        let text: Vec<String> = changes.iter().map(|c| c.change.to_string()).collect();
        assert_eq!(text, ["route 0.0.0.0/0: nat-old (blackhole) → nat-new", "subnet-private-2 association: no → yes"]);
        assert_eq!(rt.diff(&c, &table(None, &[])).unwrap()[0].change.to_string(), "route 0.0.0.0/0: none → nat-new");
    }

    #[test]
    fn private_tables_route_their_own_azs_subnets() {
        assert_eq!(
            RouteTable::private(1, 4, 2, NAT_GATEWAY.at(1)).subnets,
            [PRIVATE_SUBNET.at(1), PRIVATE_SUBNET.at(3)]
        );
        assert_eq!(RouteTable::private(0, 3, 1, REGIONAL_NAT_GATEWAY).subnets.len(), 3);
        assert!(
            RouteTable::private(1, 2, 1, NAT_GATEWAY.at(1)).subnets.is_empty(),
            "a table the config left keeps none"
        );
        assert!(RouteTable::private(0, 2, 0, NAT_GATEWAY.at(0)).subnets.is_empty(), "nat = none routes none");
    }
}
