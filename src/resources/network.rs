//! VPC, subnets, internet gateway, elastic IPs, NAT gateways and route tables.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Address, AttributeBooleanValue, DomainType, Filter, InternetGateway as Igw, NatGateway as Nat, NatGatewayState,
    ResourceType, RouteTable as Rt, Subnet as Sn, Tag, TagSpecification, Vpc as VpcObject, VpcAttributeName,
};

use crate::context::Ctx;
use crate::error::{found, ignore_not_found, AwsContext, StackError};
use crate::model::{after, Change, Diff, Edge, Key, Managed, Outcome, Record};
use crate::progress::Line;
use crate::resources::ec2::{check, filter, locate, tag_filters, tag_spec, Ec2Object, Scope, ANYWHERE};
use crate::state::location::{tag_value, STATE_TAG};
use crate::wait::{self, budget, Poll};

/// Describe EC2 objects by IDs or filters: `describe!(ctx, describe_vpcs, set_vpc_ids, vpcs)`.
macro_rules! describe {
    ($ctx:expr, $call:ident, $ids:ident, $list:ident, $what:expr) => {
        |ids: Vec<String>, filters: Vec<Filter>| async move {
            let out =
                $ctx.aws.ec2.$call().$ids(Some(ids)).set_filters(Some(filters)).send().await.ctx("describe", $what)?;
            Ok(out.$list().to_vec())
        }
    };
}

// ---------------------------------------------------------------- VPC

pub struct Vpc {
    pub azs: u8,
    pub nats: u8,
}

pub struct VpcLive {
    vpc: VpcObject,
    dns_support: bool,
    dns_hostnames: bool,
}

async fn dns_setting(ctx: &Ctx, id: &str, attribute: VpcAttributeName) -> Result<bool, StackError> {
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

async fn dns_settings(ctx: &Ctx, id: &str) -> Result<(bool, bool), StackError> {
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

const DNS_SUPPORT: &str = "dns support";
const DNS_HOSTNAMES: &str = "dns hostnames";

#[async_trait]
impl Managed for Vpc {
    type Live = VpcLive;

    fn key(&self) -> Key {
        Key::Vpc
    }

    fn needs(&self) -> Vec<Key> {
        vec![]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        const INSIDE: &str = "DeleteVpc fails with DependencyViolation while anything is left in the VPC";
        let mut edges = vec![];
        for i in 0..self.azs {
            edges.push(after(Key::PublicSubnet(i), INSIDE));
            edges.push(after(Key::PrivateSubnet(i), INSIDE));
        }
        for j in 0..self.nats {
            edges.push(after(Key::PrivateRouteTable(j), INSIDE));
        }
        edges.extend([
            after(Key::PublicRouteTable, INSIDE),
            after(Key::InternetGateway, "DeleteVpc fails while an internet gateway is attached"),
            after(Key::AlbSecurityGroup, INSIDE),
            after(Key::TaskSecurityGroup, INSIDE),
            after(Key::TargetGroup, "a target group is bound to its VPC"),
        ]);
        edges
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<VpcLive>, StackError> {
        // With a recorded ID, the DNS settings are read in the same round as the VPC.
        let recorded = ctx.id(Key::Vpc);
        let (vpc, settings) = tokio::join!(
            locate(ctx, Key::Vpc, Scope::Tags, describe!(ctx, describe_vpcs, set_vpc_ids, vpcs, "VPC")),
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

    fn record(&self, ctx: &Ctx, live: &VpcLive) -> Record {
        // What the VPC was built for, kept from its creation (a changed az_count is refused).
        let azs = ctx.attr(Key::Vpc, "az_count").unwrap_or_else(|| ctx.config.network.az_count.to_string());
        Record::id(live.vpc.object_id()).with("cidr", live.vpc.cidr_block().unwrap_or_default()).with("az_count", azs)
    }

    fn diff(&self, ctx: &Ctx, live: &VpcLive) -> Result<Vec<Change>, StackError> {
        let net = &ctx.config.network;
        let built_for = ctx.attr(Key::Vpc, "az_count").unwrap_or_else(|| net.az_count.to_string());
        let mut diff = Diff::new();
        diff.replace("network.cidr", live.vpc.cidr_block().unwrap_or_default(), &net.cidr.to_string())
            .replace("network.az_count", &built_for, &net.az_count.to_string())
            // Fargate tasks resolve the registry and DynamoDB through the VPC's DNS.
            .field(DNS_SUPPORT, on_off(live.dns_support), "on")
            .field(DNS_HOSTNAMES, on_off(live.dns_hostnames), "on");
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<VpcLive, StackError> {
        let out = ctx
            .aws
            .ec2
            .create_vpc()
            .cidr_block(ctx.config.network.cidr.to_string())
            .tag_specifications(vpc_tags(ctx))
            .send()
            .await
            .ctx("create", "VPC")?;
        let vpc = out
            .vpc()
            .cloned()
            .ok_or_else(|| StackError::Failed { resource: "VPC".into(), message: "create returned no VPC".into() })?;
        // A new VPC resolves names but gives no DNS hostnames.
        Ok(VpcLive { vpc, dns_support: true, dns_hostnames: false })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        line: &Line,
        live: &VpcLive,
        changes: &[Change],
    ) -> Result<Option<VpcLive>, StackError> {
        let id = live.vpc.object_id();
        for change in changes {
            let call = ctx.aws.ec2.modify_vpc_attribute().vpc_id(id);
            let on = Some(AttributeBooleanValue::builder().value(true).build());
            let call = match change.field.as_str() {
                DNS_SUPPORT => call.set_enable_dns_support(on),
                DNS_HOSTNAMES => call.set_enable_dns_hostnames(on),
                _ => continue,
            };
            // A VPC created a moment ago may not be visible to every EC2 endpoint yet.
            wait::retry_while(line, id, budget::PROPAGATION, StackError::is_not_found, || async {
                call.clone().send().await.ctx("turn DNS on for", id)
            })
            .await?;
        }
        Ok(None)
    }

    async fn destroy(&self, ctx: &Ctx, line: &Line, live: VpcLive) -> Result<Outcome, StackError> {
        let id = live.vpc.object_id();
        wait::retry_codes(line, id, budget::NETWORK, &["DependencyViolation"], || async {
            ignore_not_found(ctx.aws.ec2.delete_vpc().vpc_id(id).send().await.ctx("delete", id).map(drop))
        })
        .await?;
        Ok(Outcome::Deleted)
    }
}

/// The VPC's tags: the stack's, and where its state lives (see `state::location::STATE_TAG`).
fn vpc_tags(ctx: &Ctx) -> TagSpecification {
    let mut spec = tag_spec(ctx, ResourceType::Vpc, Key::Vpc, &ctx.name("vpc"));
    let state = Tag::builder().key(STATE_TAG).value(tag_value(ctx.store().location())).build();
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

    fn key(&self) -> Key {
        if self.public {
            Key::PublicSubnet(self.index)
        } else {
            Key::PrivateSubnet(self.index)
        }
    }

    fn needs(&self) -> Vec<Key> {
        vec![Key::Vpc]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        if !self.public {
            return vec![after(
                Key::Service,
                "the tasks' network interfaces sit in it until they stop and are released",
            )];
        }
        let mut edges = vec![after(
            Key::LoadBalancer,
            "the load balancer's network interfaces sit in it until they are released, minutes after the load balancer",
        )];
        if self.index < self.nats {
            edges.push(after(Key::NatGateway(self.index), "the NAT gateway sits in it until it is deleted"));
        }
        edges
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<Sn>, StackError> {
        locate(ctx, self.key(), Scope::StackVpc, describe!(ctx, describe_subnets, set_subnet_ids, subnets, "subnet"))
            .await
    }

    fn record(&self, _ctx: &Ctx, live: &Sn) -> Record {
        Record::id(live.object_id())
            .with("az", live.availability_zone().unwrap_or_default())
            .with("cidr", live.cidr_block().unwrap_or_default())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<Sn, StackError> {
        let key = self.key();
        let vpc = ctx.need(Key::Vpc, key)?;
        let i = self.index as usize;
        let az = ctx.availability_zones().await?[i].clone();
        let plan = ctx.config.subnet_plan().expect("validated config has a subnet plan");
        let cidr = if self.public { plan.public[i] } else { plan.private[i] }.to_string();
        let out = ctx
            .aws
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(&cidr)
            .availability_zone(&az)
            .tag_specifications(tag_spec(ctx, ResourceType::Subnet, key, &ctx.name(&format!("{key}-{az}"))))
            .send()
            .await
            .ctx("create", &key.to_string())?;
        out.subnet().cloned().ok_or_else(|| StackError::Failed {
            resource: key.to_string(),
            message: "create returned no subnet".into(),
        })
    }

    async fn destroy(&self, ctx: &Ctx, line: &Line, live: Sn) -> Result<Outcome, StackError> {
        let id = live.object_id();
        wait::retry_codes(line, id, budget::NETWORK, &["DependencyViolation"], || async {
            ignore_not_found(ctx.aws.ec2.delete_subnet().subnet_id(id).send().await.ctx("delete", id).map(drop))
        })
        .await?;
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- internet gateway

pub struct InternetGateway {
    pub nats: u8,
}

fn attached_vpc(igw: &Igw) -> Option<&str> {
    igw.attachments()
        .iter()
        .filter(|a| a.state().is_some_and(|s| matches!(s.as_str(), "available" | "attached" | "attaching")))
        .find_map(|a| a.vpc_id())
}

const ATTACHED_TO: &str = "attached to";

#[async_trait]
impl Managed for InternetGateway {
    type Live = Igw;

    fn key(&self) -> Key {
        Key::InternetGateway
    }

    fn needs(&self) -> Vec<Key> {
        vec![Key::Vpc]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        let mut edges: Vec<Edge> = (0..self.nats)
            .map(|j| {
                after(Key::NatGateway(j), "DetachInternetGateway fails while a NAT gateway's public address is mapped")
            })
            .collect();
        edges.push(after(
            Key::LoadBalancer,
            "DetachInternetGateway fails while an internet-facing load balancer's public addresses are mapped",
        ));
        edges
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<Igw>, StackError> {
        let igw = locate(
            ctx,
            Key::InternetGateway,
            Scope::Tags,
            describe!(ctx, describe_internet_gateways, set_internet_gateway_ids, internet_gateways, "internet gateway"),
        )
        .await?;
        // Attached to another VPC than ours: not the stack's gateway any more.
        if let (Some(igw), Some(vpc)) = (&igw, ctx.id(Key::Vpc)) {
            if let Some(other) = attached_vpc(igw).filter(|v| *v != vpc) {
                return Err(
                    ctx.not_ours(format!("internet gateway {}", igw.object_id()), format!("attached to {other}"))
                );
            }
        }
        Ok(igw)
    }

    fn record(&self, _ctx: &Ctx, live: &Igw) -> Record {
        Record::id(live.object_id())
    }

    fn diff(&self, ctx: &Ctx, live: &Igw) -> Result<Vec<Change>, StackError> {
        let vpc = ctx.need(Key::Vpc, Key::InternetGateway)?;
        let mut diff = Diff::new();
        diff.field(ATTACHED_TO, attached_vpc(live).unwrap_or("nothing"), vpc.as_str());
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<Igw, StackError> {
        let out = ctx
            .aws
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(ctx, ResourceType::InternetGateway, Key::InternetGateway, &ctx.name("igw")))
            .send()
            .await
            .ctx("create", "internet gateway")?;
        out.internet_gateway().cloned().ok_or_else(|| StackError::Failed {
            resource: "internet gateway".into(),
            message: "create returned nothing".into(),
        })
    }

    async fn update(&self, ctx: &Ctx, line: &Line, live: &Igw, _changes: &[Change]) -> Result<Option<Igw>, StackError> {
        let (id, vpc) = (live.object_id(), ctx.need(Key::Vpc, Key::InternetGateway)?);
        line.start("attaching");
        wait::retry_while(line, id, budget::PROPAGATION, StackError::is_not_found, || async {
            ctx.aws.ec2.attach_internet_gateway().internet_gateway_id(id).vpc_id(&vpc).send().await.ctx("attach", id)
        })
        .await?;
        Ok(None)
    }

    async fn destroy(&self, ctx: &Ctx, line: &Line, live: Igw) -> Result<Outcome, StackError> {
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

pub struct ElasticIp {
    pub index: u8,
}

#[async_trait]
impl Managed for ElasticIp {
    type Live = Address;

    fn key(&self) -> Key {
        Key::ElasticIp(self.index)
    }

    fn needs(&self) -> Vec<Key> {
        vec![]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![after(Key::NatGateway(self.index), "ReleaseAddress fails while the NAT gateway holding it is not deleted")]
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<Address>, StackError> {
        locate(
            ctx,
            self.key(),
            Scope::Tags,
            describe!(ctx, describe_addresses, set_allocation_ids, addresses, "elastic IP"),
        )
        .await
    }

    fn record(&self, _ctx: &Ctx, live: &Address) -> Record {
        Record::id(live.object_id()).with("public_ip", live.public_ip().unwrap_or_default())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<Address, StackError> {
        let key = self.key();
        let out = ctx
            .aws
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tag_spec(
                ctx,
                ResourceType::ElasticIp,
                key,
                &ctx.name(&format!("nat-eip-{}", self.index + 1)),
            ))
            .send()
            .await
            .ctx("allocate", &key.to_string())?;
        Ok(Address::builder()
            .set_allocation_id(out.allocation_id().map(str::to_string))
            .set_public_ip(out.public_ip().map(str::to_string))
            .build())
    }

    async fn destroy(&self, ctx: &Ctx, line: &Line, live: Address) -> Result<Outcome, StackError> {
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

async fn describe_nats(ctx: &Ctx, ids: Vec<String>, filters: Vec<Filter>) -> Result<Vec<Nat>, StackError> {
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

#[async_trait]
impl Managed for NatGateway {
    type Live = Nat;

    fn key(&self) -> Key {
        Key::NatGateway(self.index)
    }

    fn needs(&self) -> Vec<Key> {
        vec![Key::ElasticIp(self.index), Key::PublicSubnet(self.index), Key::InternetGateway]
    }

    /// Only gateways that are or will be available count; a failed one is replaced.
    async fn find(&self, ctx: &Ctx) -> Result<Option<Nat>, StackError> {
        locate(ctx, self.key(), Scope::StackVpc, |ids, filters| async move {
            Ok(describe_nats(ctx, ids, filters).await?.into_iter().filter(nat_alive).collect())
        })
        .await
    }

    fn record(&self, _ctx: &Ctx, live: &Nat) -> Record {
        Record::id(live.object_id())
    }

    fn pending(&self, _ctx: &Ctx, live: &Nat) -> Option<String> {
        (live.state() != Some(&NatGatewayState::Available)).then(|| nat_state(live).to_string())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<Nat, StackError> {
        let key = self.key();
        let subnet = ctx.need(Key::PublicSubnet(self.index), key)?;
        let allocation = ctx.need(Key::ElasticIp(self.index), key)?;
        let vpc = ctx.need(Key::Vpc, key)?;
        // A failed gateway is terminal; its replacement needs a new client token (the old one
        // would return the failed gateway).
        let tagged = describe_nats(ctx, vec![], tag_filters(ctx, key)).await?;
        let failed = tagged
            .iter()
            .filter(|n| n.state() == Some(&NatGatewayState::Failed) && check(ctx, key, Scope::StackVpc, *n).is_ok())
            .count();
        let out = ctx
            .aws
            .ec2
            .create_nat_gateway()
            .subnet_id(&subnet)
            .allocation_id(&allocation)
            // The same token on a retried create (in this VPC) returns the same gateway.
            .client_token(format!("{}-{key}-{vpc}-{failed}", ctx.stack()))
            .tag_specifications(tag_spec(
                ctx,
                ResourceType::Natgateway,
                key,
                &ctx.name(&format!("nat-{}", self.index + 1)),
            ))
            .send()
            .await
            .ctx("create", &key.to_string())?;
        out.nat_gateway()
            .cloned()
            .ok_or_else(|| StackError::Failed { resource: key.to_string(), message: "create returned nothing".into() })
    }

    /// A private route through a NAT gateway that is not available black-holes the image pulls.
    async fn ready(&self, ctx: &Ctx, line: &Line, live: &Nat) -> Result<(), StackError> {
        let id = live.object_id();
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
                Some(n) => {
                    Err(StackError::Failed { resource: id.to_string(), message: format!("is {}", nat_state(&n)) })
                }
                None => {
                    Err(StackError::Failed { resource: id.to_string(), message: "disappeared while pending".into() })
                }
            }
        })
        .await
    }

    /// Deletes this gateway and any earlier (failed) one of the same key, and waits until they
    /// are gone: the elastic IP and the internet gateway wait for that.
    async fn destroy(&self, ctx: &Ctx, line: &Line, live: Nat) -> Result<Outcome, StackError> {
        let key = self.key();
        let mut ids = vec![live.object_id().to_string()];
        for nat in describe_nats(ctx, vec![], tag_filters(ctx, key)).await? {
            let owned = check(ctx, key, Scope::StackVpc, &nat).is_ok();
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
                Ok(
                    match found(describe_nats(ctx, vec![id.clone()], vec![]).await)?.and_then(|n| n.into_iter().next())
                    {
                        Some(n) if n.state() != Some(&NatGatewayState::Deleted) => {
                            Poll::Pending(nat_state(&n).to_string())
                        }
                        _ => Poll::Ready(()),
                    },
                )
            })
            .await?;
        }
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- route tables

/// The public route table (default route to the internet gateway, the public subnets) or private
/// table `j` (default route to NAT `j`, the private subnets `i` with `i % nat_gateways == j`).
pub struct RouteTable {
    key: Key,
    target: Key,
    subnets: Vec<Key>,
    suffix: String,
}

impl RouteTable {
    pub fn public(azs: u8) -> RouteTable {
        RouteTable {
            key: Key::PublicRouteTable,
            target: Key::InternetGateway,
            subnets: (0..azs).map(Key::PublicSubnet).collect(),
            suffix: "public-rt".into(),
        }
    }

    pub fn private(j: u8, azs: u8, nats: u8) -> RouteTable {
        RouteTable {
            key: Key::PrivateRouteTable(j),
            target: Key::NatGateway(j),
            subnets: (0..azs).filter(|i| i % nats == j).map(Key::PrivateSubnet).collect(),
            suffix: format!("private-rt-{}", j + 1),
        }
    }
}

const DEFAULT_ROUTE: &str = "route 0.0.0.0/0";

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

fn association_field(subnet: Key) -> String {
    format!("{subnet} association")
}

#[async_trait]
impl Managed for RouteTable {
    type Live = Rt;

    fn key(&self) -> Key {
        self.key
    }

    fn needs(&self) -> Vec<Key> {
        let mut needs = vec![self.target];
        needs.extend(&self.subnets);
        needs
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<Rt>, StackError> {
        locate(
            ctx,
            self.key,
            Scope::StackVpc,
            describe!(ctx, describe_route_tables, set_route_table_ids, route_tables, "route table"),
        )
        .await
    }

    fn record(&self, _ctx: &Ctx, live: &Rt) -> Record {
        Record::id(live.object_id())
    }

    fn diff(&self, ctx: &Ctx, live: &Rt) -> Result<Vec<Change>, StackError> {
        let target = ctx.need(self.target, self.key)?;
        let mut diff = Diff::new();
        diff.field(DEFAULT_ROUTE, &route_target(live), &target);
        let associated: Vec<&str> = live.associations().iter().filter_map(|a| a.subnet_id()).collect();
        for &subnet in &self.subnets {
            if let Some(id) = ctx.id(subnet) {
                let have = if associated.contains(&id.as_str()) { "yes" } else { "no" };
                diff.field(&association_field(subnet), have, "yes");
            }
        }
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<Rt, StackError> {
        let vpc = ctx.need(Key::Vpc, self.key)?;
        let out = ctx
            .aws
            .ec2
            .create_route_table()
            .vpc_id(&vpc)
            .tag_specifications(tag_spec(ctx, ResourceType::RouteTable, self.key, &ctx.name(&self.suffix)))
            .send()
            .await
            .ctx("create", &self.key.to_string())?;
        out.route_table().cloned().ok_or_else(|| StackError::Failed {
            resource: self.key.to_string(),
            message: "create returned nothing".into(),
        })
    }

    async fn update(&self, ctx: &Ctx, line: &Line, live: &Rt, changes: &[Change]) -> Result<Option<Rt>, StackError> {
        let id = live.object_id();
        if changes.iter().any(|c| c.field == DEFAULT_ROUTE) {
            let target = ctx.need(self.target, self.key)?;
            let via_nat = matches!(self.target, Key::NatGateway(_));
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
            if !changes.iter().any(|c| c.field == association_field(subnet_key)) {
                continue;
            }
            let subnet = ctx.need(subnet_key, self.key)?;
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

    async fn destroy(&self, ctx: &Ctx, line: &Line, live: Rt) -> Result<Outcome, StackError> {
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
            [(Key::NatGateway(0), "nat-new"), (Key::PrivateSubnet(0), "subnet-a"), (Key::PrivateSubnet(1), "subnet-b")]
        {
            c.record(key, &Record::id(id)).await.unwrap();
        }
        let rt = RouteTable::private(0, 2, 1);
        assert!(rt.diff(&c, &table(Some(("nat-new", "active")), &["subnet-a", "subnet-b"])).unwrap().is_empty());
        let changes = rt.diff(&c, &table(Some(("nat-old", "blackhole")), &["subnet-a"])).unwrap();
        let text: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(text, ["route 0.0.0.0/0: nat-old (blackhole) → nat-new", "subnet-private-2 association: no → yes"]);
        assert_eq!(rt.diff(&c, &table(None, &[])).unwrap()[0].to_string(), "route 0.0.0.0/0: none → nat-new");
    }

    #[test]
    fn private_tables_route_their_own_azs_subnets() {
        assert_eq!(RouteTable::private(1, 4, 2).subnets, [Key::PrivateSubnet(1), Key::PrivateSubnet(3)]);
        assert_eq!(RouteTable::private(0, 3, 1).subnets.len(), 3);
    }
}
