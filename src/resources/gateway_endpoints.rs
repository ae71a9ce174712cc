//! VPC gateway endpoints for S3 and DynamoDB on the stack's private route tables: AWS adds a route
//! to the service's prefix list in each table, so that the tasks' table calls and ECR's image
//! layers (served from S3) go to the service without passing the NAT gateway (whose traffic bills
//! per GB). Gateway endpoints are free. `[network] gateway_endpoints = false` leaves them out, and
//! `up` then removes what an earlier run made. The route tables are those the network family
//! declares for the config: with no private route table, there is no endpoint.

use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, VpcEndpoint, VpcEndpointType};
use futures::future::BoxFuture;

use crate::access::{self, arn, Permission};
use crate::aws::Clients;
use crate::bill::Charge;
use crate::config::Config;
use crate::error::{found, AwsContext, StackError};
use crate::model::{
    before, Attr, Changed, Dep, Diff, Edge, Field, Health, Inspection, Key, Kind, Managed, Nodes, Outcome, Record,
    Scope, Shape, Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::ec2::{self, any_stack, filter, locate, sightings, tag_spec, Ec2Object};
use crate::resources::network::{self, in_stack_vpc, PRIVATE_ROUTE_TABLE, VPC};
use crate::resources::tags::TagPairs;

const ENDPOINT: Kind = Kind::new("ec2:vpc-endpoint");
pub const S3_ENDPOINT: Key = Key::new("gateway-endpoint-s3", ENDPOINT);
pub const DYNAMODB_ENDPOINT: Key = Key::new("gateway-endpoint-dynamodb", ENDPOINT);
/// The AWS-managed prefix list (`pl-…`) of each endpoint's service: what the endpoint's routes
/// and the tasks' egress rules name.
pub const S3_PREFIX_LIST: Attr = Attr::new(S3_ENDPOINT, "prefix_list");
pub const DYNAMODB_PREFIX_LIST: Attr = Attr::new(DYNAMODB_ENDPOINT, "prefix_list");

/// Both endpoints, and the prefix list each records.
pub const ENDPOINTS: [(Key, Attr); 2] = [(S3_ENDPOINT, S3_PREFIX_LIST), (DYNAMODB_ENDPOINT, DYNAMODB_PREFIX_LIST)];

/// The prefix lists of the endpoints the stack records, for the tasks' egress rules (none when
/// the config has no endpoints, turned off or without private route tables: `up` removes them
/// after the rules).
pub fn prefix_lists(ctx: &Scope<'_>) -> Vec<String> {
    if !wanted(ctx.config) {
        return vec![];
    }
    ENDPOINTS.iter().filter_map(|(_, attr)| ctx.attr(*attr)).collect()
}

/// The services AWS offers gateway endpoints for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    S3,
    DynamoDb,
}

impl Service {
    fn key(self) -> Key {
        match self {
            Service::S3 => S3_ENDPOINT,
            Service::DynamoDb => DYNAMODB_ENDPOINT,
        }
    }

    fn prefix_list(self) -> Attr {
        match self {
            Service::S3 => S3_PREFIX_LIST,
            Service::DynamoDb => DYNAMODB_PREFIX_LIST,
        }
    }

    /// `com.amazonaws.<region>.s3`: the endpoint service's name, which is also its prefix list's.
    fn name(self, region: &str) -> String {
        let service = match self {
            Service::S3 => "s3",
            Service::DynamoDb => "dynamodb",
        };
        format!("com.amazonaws.{region}.{service}")
    }
}

/// The private route tables the network family declares for this config (none with no private
/// subnets routed through a NAT gateway): the tables the endpoints route.
fn configured_tables(config: &Config) -> Vec<Key> {
    let mut nodes = Nodes::default();
    network::network(&Shape::of(config), &mut nodes);
    nodes.list.iter().map(|n| n.key()).filter(|k| PRIVATE_ROUTE_TABLE.contains(*k)).collect()
}

/// The config asks for the endpoints and its network has route tables for them.
fn wanted(config: &Config) -> bool {
    config.network.gateway_endpoints && !configured_tables(config).is_empty()
}

/// Both endpoints when the config has them on and the network has private route tables, or while
/// the state records either (or they may be found).
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    let config = shape.config();
    let tables = configured_tables(config);
    let on = wanted(config);
    for service in [Service::S3, Service::DynamoDb] {
        if on || shape.discovering_all() || shape.holds(service.key()) {
            let tables = if on { tables.clone() } else { vec![] };
            nodes.managed(GatewayEndpoint { service, tables });
        }
    }
}

/// Every gateway endpoint carrying a stack's tag (deleted ones, which AWS lists for a while, aside).
fn sweep_endpoints(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let call = c.ec2.describe_vpc_endpoints().filters(any_stack()).filters(filter("vpc-endpoint-type", "Gateway"));
        let all: Vec<VpcEndpoint> =
            call.into_paginator().items().send().try_collect().await.ctx("describe", "tagged VPC endpoints")?;
        let live: Vec<VpcEndpoint> = all.into_iter().filter(|e| !is_gone(e)).collect();
        Ok(sightings(ENDPOINT, &live))
    })
}

impl Ec2Object for VpcEndpoint {
    fn object_id(&self) -> &str {
        self.vpc_endpoint_id().unwrap_or_default()
    }

    fn tag_pairs(&self) -> Vec<(&str, &str)> {
        self.tags().pairs()
    }

    fn vpc_of(&self) -> Option<&str> {
        self.vpc_id()
    }
}

/// The endpoint's state in lower case: EC2 answers `available` for endpoints where the SDK's
/// enum spells `Available`, so the SDK's variants never match what AWS sends.
fn state_of(endpoint: &VpcEndpoint) -> String {
    endpoint.state().map(|s| s.as_str().to_lowercase()).unwrap_or_default()
}

/// Deleted, or on its way: AWS lists such an endpoint for a while after the delete.
fn is_gone(endpoint: &VpcEndpoint) -> bool {
    matches!(state_of(endpoint).as_str(), "deleted" | "deleting")
}

/// The route tables an endpoint routes, as a sorted list for the plan.
fn listed(ids: &[String]) -> String {
    let mut ids = ids.to_vec();
    ids.sort();
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// What to add and what to remove to go from `have` to `want`.
fn route_table_moves(have: &[String], want: &[String]) -> (Vec<String>, Vec<String>) {
    let add = want.iter().filter(|t| !have.contains(t)).cloned().collect();
    let remove = have.iter().filter(|t| !want.contains(t)).cloned().collect();
    (add, remove)
}

/// An error AWS reports in a call's `Unsuccessful` list rather than as the call's error; an
/// endpoint already gone is what a delete wants.
fn unsuccessful(what: &str, items: &[aws_sdk_ec2::types::UnsuccessfulItem]) -> Result<(), StackError> {
    let Some(item) = items.first() else { return Ok(()) };
    let (code, message) =
        item.error().map(|e| (e.code().unwrap_or("?"), e.message().unwrap_or(""))).unwrap_or(("?", ""));
    if code.ends_with(".NotFound") {
        return Ok(());
    }
    Err(StackError::Failed { resource: what.to_string(), message: format!("{code}: {message}") })
}

/// The endpoint as found, with its service's prefix list.
pub struct EndpointLive {
    endpoint: VpcEndpoint,
    prefix_list: Option<String>,
}

/// One gateway endpoint; `tables` are the private route tables the config's network has (none when
/// the config no longer asks for it).
pub struct GatewayEndpoint {
    service: Service,
    tables: Vec<Key>,
}

/// What a gateway endpoint can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointField {
    RouteTables,
}

impl Field for EndpointField {
    fn label(&self) -> String {
        "route tables".into()
    }
}

impl GatewayEndpoint {
    /// The IDs of the route tables it must route (each one made before it: `needs`).
    fn wanted_tables(&self, ctx: &Scope<'_>) -> Result<Vec<String>, StackError> {
        self.tables.iter().map(|k| ctx.need(*k)).collect()
    }

    /// The region's prefix list of the service (AWS-managed, there whether or not an endpoint is).
    async fn prefix_list(&self, ctx: &Scope<'_>) -> Result<Option<String>, StackError> {
        let name = self.service.name(ctx.region);
        let out = ctx
            .aws
            .ec2
            .describe_prefix_lists()
            .filters(filter("prefix-list-name", &name))
            .send()
            .await
            .ctx("describe the prefix list", &name)?;
        Ok(out
            .prefix_lists()
            .iter()
            .find(|p| p.prefix_list_name() == Some(&name))
            .and_then(|p| p.prefix_list_id())
            .map(str::to_string))
    }

    async fn describe(&self, ctx: &Scope<'_>, id: &str) -> Result<Option<VpcEndpoint>, StackError> {
        let out = found(ctx.aws.ec2.describe_vpc_endpoints().vpc_endpoint_ids(id).send().await.ctx("describe", id))?;
        Ok(out.and_then(|o| o.vpc_endpoints().iter().find(|e| e.object_id() == id && !is_gone(e)).cloned()))
    }
}

#[async_trait]
impl Managed for GatewayEndpoint {
    type Live = EndpointLive;
    type Field = EndpointField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &EndpointLive) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(&live.endpoint))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &EndpointLive,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, &live.endpoint, put, remove).await
    }

    fn key(&self) -> Key {
        self.service.key()
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_endpoints)
    }

    fn permissions(&self) -> Vec<Permission> {
        let endpoint = arn("ec2", "vpc-endpoint/*");
        let table = arn("ec2", "route-table/*");
        vec![
            Permission::find("ec2:DescribeVpcEndpoints"),
            // The service's prefix list, recorded for the tasks' egress rules.
            Permission::find("ec2:DescribePrefixLists"),
            Permission::create("ec2:DescribePrefixLists"),
            Permission::create("ec2:CreateVpcEndpoint").on(endpoint.clone()).tagging(),
            Permission::create("ec2:CreateVpcEndpoint").on(arn("ec2", "vpc/*")).tagged(),
            Permission::create("ec2:CreateVpcEndpoint").on(table.clone()).tagged(),
            access::tags_on_create("ec2:CreateTags", "CreateVpcEndpoint", endpoint.clone()),
            access::retagging("ec2:CreateTags", endpoint.clone()),
            access::retagging("ec2:DeleteTags", endpoint.clone()),
            Permission::update("ec2:ModifyVpcEndpoint").on(endpoint.clone()).tagged(),
            Permission::update("ec2:ModifyVpcEndpoint").on(table).tagged(),
            Permission::delete("ec2:DeleteVpcEndpoints").on(endpoint).tagged(),
        ]
    }

    /// Gateway endpoints bill nothing, neither by the hour nor by the GB (interface endpoints
    /// do); what they carry no longer bills as NAT processing.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn needs(&self) -> Vec<Dep> {
        vec![VPC.into(), Dep::Every(PRIVATE_ROUTE_TABLE)]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![
            before(VPC, "AWS refuses to delete a VPC that still has endpoints (DependencyViolation)"),
            before(
                PRIVATE_ROUTE_TABLE,
                "a route table deleted first leaves the endpoint naming a table that is gone, which a later \
                 change of the endpoint fails on",
            ),
        ]
    }

    fn cost_note(&self, _config: &Config, found: &Inspection) -> Option<String> {
        (found.status == Health::Missing && self.service == Service::S3).then(|| {
            "gateway endpoints for S3 and DynamoDB are free; the image layers and table calls they carry no longer \
             bill as NAT gateway data processing (per GB, see below); [network] gateway_endpoints = false turns \
             them off"
                .to_string()
        })
    }

    fn removal_note(&self, _found: &Inspection) -> Option<String> {
        Some("S3 and DynamoDB traffic from the tasks goes through the NAT gateway again (billed per GB)".into())
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<EndpointLive>, StackError> {
        let name = self.service.name(ctx.region);
        let endpoint = locate(ctx, self.key(), in_stack_vpc(ctx), |ids, mut filters| {
            let name = name.clone();
            async move {
                if !ids.is_empty() {
                    return Ok(self.describe(ctx, &ids[0]).await?.into_iter().collect());
                }
                filters.push(filter("service-name", &name));
                let call = ctx.aws.ec2.describe_vpc_endpoints().set_filters(Some(filters));
                let out = call.send().await.ctx("describe", "VPC endpoints")?;
                Ok(out
                    .vpc_endpoints()
                    .iter()
                    .filter(|e| !is_gone(e) && e.service_name() == Some(&name))
                    .cloned()
                    .collect())
            }
        })
        .await?;
        let Some(endpoint) = endpoint else { return Ok(None) };
        let prefix_list = match ctx.attr(self.service.prefix_list()) {
            Some(recorded) => Some(recorded),
            None => self.prefix_list(ctx).await?,
        };
        Ok(Some(EndpointLive { endpoint, prefix_list }))
    }

    fn record(&self, _ctx: &Scope<'_>, live: &EndpointLive) -> Record {
        let record = Record::id(live.endpoint.object_id());
        match &live.prefix_list {
            Some(pl) => record.with(self.service.prefix_list(), pl),
            None => record,
        }
    }

    fn diff(&self, ctx: &Scope<'_>, live: &EndpointLive) -> Result<Vec<Changed<EndpointField>>, StackError> {
        let mut diff = Diff::new();
        let want = self.wanted_tables(ctx)?;
        diff.field(EndpointField::RouteTables, &listed(live.endpoint.route_table_ids()), &listed(&want));
        Ok(diff.into_changes())
    }

    fn pending(&self, _ctx: &Scope<'_>, live: &EndpointLive) -> Option<String> {
        let state = state_of(&live.endpoint);
        (!state.is_empty() && state != "available").then_some(state)
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<EndpointLive, StackError> {
        let (vpc, tables) = (ctx.need(VPC)?, self.wanted_tables(ctx)?);
        let service = self.service.name(ctx.region);
        let prefix_list = self.prefix_list(ctx).await?;
        let out = ctx
            .aws
            .ec2
            .create_vpc_endpoint()
            .vpc_endpoint_type(VpcEndpointType::Gateway)
            .vpc_id(&vpc)
            .service_name(&service)
            .set_route_table_ids(Some(tables))
            .tag_specifications(tag_spec(ctx, ResourceType::VpcEndpoint, &ctx.name(&self.key().to_string())))
            .send()
            .await
            .ctx("create the gateway endpoint for", &service)?;
        let endpoint = out.vpc_endpoint().cloned().ok_or_else(|| StackError::Failed {
            resource: format!("gateway endpoint for {service}"),
            message: "create returned no VPC endpoint".into(),
        })?;
        Ok(EndpointLive { endpoint, prefix_list })
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &EndpointLive,
        _changes: &[Changed<EndpointField>],
    ) -> Result<Option<EndpointLive>, StackError> {
        let id = live.endpoint.object_id();
        let (add, remove) = route_table_moves(live.endpoint.route_table_ids(), &self.wanted_tables(ctx)?);
        let call = ctx.aws.ec2.modify_vpc_endpoint().vpc_endpoint_id(id);
        let call = call.set_add_route_table_ids(Some(add).filter(|a| !a.is_empty()));
        let call = call.set_remove_route_table_ids(Some(remove).filter(|r| !r.is_empty()));
        call.send().await.ctx("change the route tables of", id)?;
        Ok(None)
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: EndpointLive) -> Result<Outcome, StackError> {
        let id = live.endpoint.object_id();
        let out = found(ctx.aws.ec2.delete_vpc_endpoints().vpc_endpoint_ids(id).send().await.ctx("delete", id))?;
        out.map_or(Ok(()), |o| unsuccessful(id, o.unsuccessful()))?;
        Ok(Outcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use crate::resources::stack;
    use aws_sdk_ec2::types::State as EndpointState;

    fn config(from: &str, to: &str) -> Config {
        let text = DEFAULT_TOML.replace(from, to);
        assert_ne!(text, DEFAULT_TOML, "{from}");
        Config::parse("t", &text).unwrap()
    }

    #[test]
    fn on_by_default_on_every_private_route_table_and_gone_before_them_and_the_vpc() {
        let c = config("nat = \"single\"", "nat = \"per_az\"");
        let graph = stack(&Shape::of(&c)).unwrap();
        for key in [S3_ENDPOINT, DYNAMODB_ENDPOINT] {
            let needs = graph.needs_of(key);
            assert!(needs.contains(&VPC), "{needs:?}");
            for table in [PRIVATE_ROUTE_TABLE.at(0), PRIVATE_ROUTE_TABLE.at(1)] {
                assert!(needs.contains(&table), "{key} routes {table}");
                assert!(graph.teardown_after(table).contains(&key), "{key} is gone before {table}");
            }
            assert!(graph.teardown_after(VPC).contains(&key));
        }
        assert_eq!(configured_tables(&c), [PRIVATE_ROUTE_TABLE.at(0), PRIVATE_ROUTE_TABLE.at(1)]);
    }

    #[test]
    fn off_leaves_them_out_but_down_and_up_still_cover_what_the_state_records() {
        use crate::state::{Recorded, State};
        let off = config("gateway_endpoints = true ", "gateway_endpoints = false");
        for key in [S3_ENDPOINT, DYNAMODB_ENDPOINT] {
            assert!(stack(&Shape::of(&off)).unwrap().get(key).is_none(), "{key}");
            assert!(stack(&Shape::discovering(&off)).unwrap().get(key).is_some(), "down --name looks for {key}");
        }
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        let entry = Recorded { kind: ENDPOINT.label().into(), id: "vpce-1".into(), attrs: Default::default() };
        state.resources.insert(S3_ENDPOINT.to_string(), entry);
        let covered = stack(&Shape::covering(&off, &state)).unwrap();
        assert!(covered.get(S3_ENDPOINT).is_some() && covered.get(DYNAMODB_ENDPOINT).is_none());
        let bad = DEFAULT_TOML.replace("gateway_endpoints = true ", "gateway_endpoints = \"yes\"");
        assert!(Config::parse("t", &bad).unwrap_err().to_string().contains("gateway_endpoints"));
    }

    #[test]
    fn service_names_are_the_regions_and_moves_are_the_difference() {
        assert_eq!(Service::S3.name("eu-west-1"), "com.amazonaws.eu-west-1.s3");
        assert_eq!(Service::DynamoDb.name("us-east-2"), "com.amazonaws.us-east-2.dynamodb");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (add, remove) = route_table_moves(&s(&["rtb-a", "rtb-b"]), &s(&["rtb-b", "rtb-c"]));
        assert_eq!((add, remove), (s(&["rtb-c"]), s(&["rtb-a"])));
        assert_eq!(listed(&s(&["rtb-b", "rtb-a"])), "rtb-a, rtb-b");
        assert_eq!(listed(&[]), "none");
    }

    #[test]
    fn deleted_endpoints_are_not_found() {
        let e = |s: &str| VpcEndpoint::builder().vpc_endpoint_id("vpce-1").state(EndpointState::from(s)).build();
        assert!(is_gone(&e("deleted")) && is_gone(&e("Deleting")));
        assert!(!is_gone(&e("available")) && !is_gone(&e("Pending")));
        assert_eq!(state_of(&e("available")), "available", "as EC2 spells it");
    }
}
