//! `list`: every fargate-stack stack in the region, found by the `fargate-stack:stack` tag whether
//! or not a state is at hand, each judged by the same live inspection `status` makes.
//!
//! Stacks are found through their anchors (the VPC by a tag-key filter; the ECS cluster, the
//! DynamoDB table and the load balancer by their names and tags), every candidate checked on our
//! side. Each stack is then inspected as `status` would without a state: found by tag and name,
//! with the ownership checks. Only the stack of the config at hand is compared with a config
//! (drift); the others are judged on what exists and what AWS is still settling.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use aws_sdk_ec2::types::Filter;
use futures::StreamExt;
use serde::Serialize;

use crate::access::{self, Permission};
use crate::commands::{inspect, CommandError, ResourceRow, Setup, StackState};
use crate::config::Config;
use crate::context::{Ctx, STACK_TAG};
use crate::error::AwsContext;
use crate::model::{owner_tags, Health, Indexed, Key, Shape};
use crate::report::{self, Report, Text};
use crate::resources::cluster::{cluster_name, CLUSTER};
use crate::resources::listener_https::LISTENER_HTTPS;
use crate::resources::load_balancer::{self, load_balancer_name, DNS_NAME, LISTENER_PORT, LOAD_BALANCER};
use crate::resources::logs::log_group_name;
use crate::resources::network::{ELASTIC_IP, NAT_GATEWAY, PRIVATE_SUBNET, PUBLIC_SUBNET, VPC};
use crate::resources::table::{table_name, TABLE};
use crate::resources::tags::TagPairs;
use crate::resources::{self, dns};
use crate::state::{State, Store};

/// Stacks inspected at once (each inspection is itself concurrent).
const STACKS_AT_ONCE: usize = 4;

#[derive(Debug, Serialize)]
pub struct StackRow {
    pub name: String,
    pub status: StackState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The earliest creation time AWS reports among the stack's NAT gateways, load balancer,
    /// table and log group (UTC, RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Resources found, of those the stack has when complete.
    pub resources: usize,
    pub expected: usize,
    /// Whether drift was judged: only for the stack of the config at hand.
    pub drift_checked: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct ListReport {
    pub region: String,
    pub stacks: Vec<StackRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Report for ListReport {
    const COMMAND: &'static str = "list";

    fn render(&self, text: &mut Text) {
        if self.stacks.is_empty() {
            text.line(format!("no fargate-stack stacks in {}", self.region));
        } else {
            let mut rows =
                vec![vec!["STACK".to_string(), "STATUS".into(), "RESOURCES".into(), "CREATED".into(), "URL".into()]];
            for s in &self.stacks {
                rows.push(vec![
                    s.name.clone(),
                    s.status.word().to_string(),
                    format!("{}/{}", s.resources, s.expected),
                    s.created.clone().unwrap_or_else(|| "-".into()),
                    s.url.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            text.table(&rows);
            let unchecked = self.stacks.iter().filter(|s| !s.drift_checked).count();
            if unchecked > 0 {
                text.line(format!(
                    "({unchecked} stacks not compared with a config: drift is judged only for the stack of the config \
                     at hand; run `fargate-stack --config ... status` for one)"
                ));
            }
        }
        for warning in &self.warnings {
            text.line(format!("warning: {warning}"));
        }
    }
}

/// What the region tells about one stack before it is inspected.
#[derive(Debug, Default)]
struct Found {
    /// Its tagged subnets, NAT gateways and elastic IPs: how many AZs and NAT gateways it has.
    parts: Vec<Key>,
    created: Option<i64>,
}

impl Found {
    fn created_at(&mut self, secs: Option<i64>) {
        if let Some(secs) = secs {
            self.created = Some(self.created.map_or(secs, |c| c.min(secs)));
        }
    }
}

/// A candidate anchor: `(stack, resource)` tags, checked on our side to be the stack's `key`
/// whose name is `name_of(stack)` (when the resource has a name).
struct Sighting {
    stack: Option<String>,
    resource: Option<String>,
    key: Key,
    name: Option<String>,
    name_of: fn(&str) -> String,
    created: Option<i64>,
}

fn tag_key_filter() -> Filter {
    Filter::builder().name("tag-key").values(STACK_TAG).build()
}

/// What `list` calls to find the stacks of the region; it then inspects each as `status` does
/// (every resource's `Find`, for every stack name: `{stack}` is `*`).
pub fn permissions() -> Vec<Permission> {
    let table = access::arn("dynamodb", &format!("table/{}", table_name("*")));
    vec![
        Permission::inspect("ec2:DescribeVpcs"),
        Permission::inspect("ec2:DescribeSubnets"),
        Permission::inspect("ec2:DescribeNatGateways"),
        Permission::inspect("ec2:DescribeAddresses"),
        Permission::inspect("ecs:ListClusters"),
        Permission::inspect("ecs:DescribeClusters").on(access::arn("ecs", "cluster/*")),
        Permission::inspect("dynamodb:ListTables"),
        Permission::inspect("dynamodb:DescribeTable").on(table.clone()),
        Permission::inspect("dynamodb:ListTagsOfResource").on(table),
        Permission::inspect("elasticloadbalancing:DescribeLoadBalancers"),
        Permission::inspect("elasticloadbalancing:DescribeTags"),
        Permission::inspect("logs:DescribeLogGroups"),
    ]
}

pub async fn run(setup: &Setup) -> Result<ExitCode, CommandError> {
    let report = list(setup).await?;
    report::emit(setup.format, &report);
    Ok(ExitCode::SUCCESS)
}

pub async fn list(setup: &Setup) -> Result<ListReport, CommandError> {
    let (found, warnings) = discover(setup).await?;
    let rows: Vec<Result<StackRow, CommandError>> = futures::stream::iter(found)
        .map(|(name, found)| async move { inspect_stack(setup, &name, found).await })
        .buffered(STACKS_AT_ONCE)
        .collect()
        .await;
    let stacks = rows.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(ListReport { region: setup.region.clone(), stacks, warnings })
}

/// Every stack name the region's tagged anchors carry, with the shape and age they show.
async fn discover(setup: &Setup) -> Result<(BTreeMap<String, Found>, Vec<String>), CommandError> {
    let (vpcs, subnets, nats, addresses, clusters, tables, balancers, log_groups) = tokio::try_join!(
        vpcs(setup),
        shapes(setup),
        nat_gateways(setup),
        addresses(setup),
        clusters(setup),
        tables(setup),
        load_balancers(setup),
        log_groups(setup),
    )?;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    let mut warnings = vec![];
    for s in vpcs.into_iter().chain(clusters).chain(tables).chain(balancers) {
        let Some(stack) = s.stack.clone() else { continue };
        let what = format!("{} {}", s.key.kind(), s.name.clone().unwrap_or_default()).trim().to_string();
        if Config::valid_name(&stack).is_err() {
            warnings.push(format!("{what} is tagged {STACK_TAG}={stack:?}, which is not a stack name; left out"));
            continue;
        }
        if s.resource.as_deref() != Some(s.key.to_string().as_str()) {
            continue;
        }
        if s.name.as_ref().is_some_and(|n| *n != (s.name_of)(&stack)) {
            warnings.push(format!(
                "{what} is tagged {STACK_TAG}={stack} but is not named {}; left out",
                (s.name_of)(&stack)
            ));
            continue;
        }
        found.entry(stack).or_default().created_at(s.created);
    }
    // Shape and age from the parts of stacks found above (a NAT alone does not make a stack).
    for (stack, key, created) in subnets.into_iter().chain(nats).chain(addresses) {
        let Some(f) = found.get_mut(&stack) else { continue };
        f.parts.push(key);
        f.created_at(created);
    }
    for (name, created) in log_groups {
        if let Some(f) = found.iter_mut().find(|(stack, _)| log_group_name(stack) == name).map(|(_, f)| f) {
            f.created_at(created);
        }
    }
    Ok((found, warnings))
}

fn secs(t: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    t.map(|t| t.secs())
}

async fn vpcs(setup: &Setup) -> Result<Vec<Sighting>, CommandError> {
    let ec2 = &setup.clients.ec2;
    let all = ec2.describe_vpcs().filters(tag_key_filter()).into_paginator().items().send().try_collect().await;
    Ok(all
        .ctx("describe", "tagged VPCs")?
        .iter()
        .map(|v| {
            let (stack, resource) = owner_tags(v.tags().pairs());
            Sighting { stack, resource, key: VPC, name: None, name_of: |s| s.to_string(), created: None }
        })
        .collect())
}

/// (stack, key, created) of every tagged subnet: how many AZs each stack spans.
async fn shapes(setup: &Setup) -> Result<Vec<(String, Key, Option<i64>)>, CommandError> {
    let ec2 = &setup.clients.ec2;
    let all = ec2.describe_subnets().filters(tag_key_filter()).into_paginator().items().send().try_collect().await;
    Ok(all
        .ctx("describe", "tagged subnets")?
        .iter()
        .filter_map(|s| {
            let (stack, resource) = owner_tags(s.tags().pairs());
            Some((stack?, part(&resource?, &[PUBLIC_SUBNET, PRIVATE_SUBNET])?, None))
        })
        .collect())
}

/// The key of the families named `resource`, if it is one.
fn part(resource: &str, families: &[Indexed]) -> Option<Key> {
    families.iter().find_map(|f| f.parse(resource))
}

async fn nat_gateways(setup: &Setup) -> Result<Vec<(String, Key, Option<i64>)>, CommandError> {
    let ec2 = &setup.clients.ec2;
    let all = ec2.describe_nat_gateways().filter(tag_key_filter()).into_paginator().items().send().try_collect().await;
    Ok(all
        .ctx("describe", "tagged NAT gateways")?
        .iter()
        .filter(|n| !matches!(n.state().map(|s| s.as_str()), Some("deleted" | "deleting")))
        .filter_map(|n| {
            let (stack, resource) = owner_tags(n.tags().pairs());
            Some((stack?, part(&resource?, &[NAT_GATEWAY])?, secs(n.create_time())))
        })
        .collect())
}

async fn addresses(setup: &Setup) -> Result<Vec<(String, Key, Option<i64>)>, CommandError> {
    let out = setup.clients.ec2.describe_addresses().filters(tag_key_filter()).send().await;
    Ok(out
        .ctx("describe", "tagged Elastic IPs")?
        .addresses()
        .iter()
        .filter_map(|a| {
            let (stack, resource) = owner_tags(a.tags().pairs());
            Some((stack?, part(&resource?, &[ELASTIC_IP])?, None))
        })
        .collect())
}

async fn clusters(setup: &Setup) -> Result<Vec<Sighting>, CommandError> {
    let ecs = &setup.clients.ecs;
    let arns = ecs.list_clusters().into_paginator().items().send().try_collect().await.ctx("list", "ECS clusters")?;
    let mut sightings = vec![];
    // DescribeClusters takes at most 100 clusters.
    for chunk in arns.chunks(100) {
        let out = ecs
            .describe_clusters()
            .set_clusters(Some(chunk.to_vec()))
            .include(aws_sdk_ecs::types::ClusterField::Tags)
            .send()
            .await
            .ctx("describe", "ECS clusters")?;
        for c in out.clusters().iter().filter(|c| c.status() == Some("ACTIVE")) {
            let (stack, resource) = owner_tags(c.tags().pairs());
            sightings.push(Sighting {
                stack,
                resource,
                key: CLUSTER,
                name: c.cluster_name().map(str::to_string),
                name_of: cluster_name,
                created: None,
            });
        }
    }
    Ok(sightings)
}

/// Tables named as a stack's table, with their tags and creation time.
async fn tables(setup: &Setup) -> Result<Vec<Sighting>, CommandError> {
    let dynamodb = &setup.clients.dynamodb;
    let names =
        dynamodb.list_tables().into_paginator().items().send().try_collect().await.ctx("list", "DynamoDB tables")?;
    let candidates: Vec<String> = names.into_iter().filter(|n| n.ends_with(&table_name(""))).collect();
    let checks = candidates.into_iter().map(|name| async move {
        let described =
            crate::error::found(dynamodb.describe_table().table_name(&name).send().await.ctx("describe table", &name))?;
        let Some(table) = described.and_then(|d| d.table().cloned()) else { return Ok(None) };
        let Some(arn) = table.table_arn() else { return Ok(None) };
        let tags = crate::error::found(
            dynamodb.list_tags_of_resource().resource_arn(arn).send().await.ctx("list the tags of", &name),
        )?;
        let tags = tags.map(|t| t.tags().to_vec()).unwrap_or_default();
        let (stack, resource) = owner_tags(tags.pairs());
        Ok::<_, CommandError>(Some(Sighting {
            stack,
            resource,
            key: TABLE,
            name: Some(name),
            name_of: table_name,
            created: secs(table.creation_date_time()),
        }))
    });
    let results: Vec<Result<Option<Sighting>, CommandError>> =
        futures::stream::iter(checks).buffer_unordered(setup.max_concurrency.max(1)).collect().await;
    Ok(results.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect())
}

/// Load balancers named as a stack's, with their tags and creation time.
async fn load_balancers(setup: &Setup) -> Result<Vec<Sighting>, CommandError> {
    let elb = &setup.clients.elb;
    let all = elb
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx("describe", "load balancers")?;
    let candidates: Vec<_> = all
        .into_iter()
        .filter(|lb| lb.load_balancer_name().is_some_and(|n| n.ends_with(&load_balancer_name(""))))
        .collect();
    let mut sightings = vec![];
    // DescribeTags takes at most 20 ARNs.
    for chunk in candidates.chunks(20) {
        let arns: Vec<String> = chunk.iter().filter_map(|lb| lb.load_balancer_arn().map(str::to_string)).collect();
        let out = elb
            .describe_tags()
            .set_resource_arns(Some(arns))
            .send()
            .await
            .ctx("describe the tags of", "load balancers")?;
        for lb in chunk {
            let tags = out
                .tag_descriptions()
                .iter()
                .find(|d| d.resource_arn() == lb.load_balancer_arn())
                .map(|d| d.tags().to_vec())
                .unwrap_or_default();
            let (stack, resource) = owner_tags(tags.pairs());
            sightings.push(Sighting {
                stack,
                resource,
                key: LOAD_BALANCER,
                name: lb.load_balancer_name().map(str::to_string),
                name_of: load_balancer_name,
                created: secs(lb.created_time()),
            });
        }
    }
    Ok(sightings)
}

/// `/ecs/*` log groups and their creation times (for the stacks' age).
async fn log_groups(setup: &Setup) -> Result<Vec<(String, Option<i64>)>, CommandError> {
    let logs = &setup.clients.logs;
    let all = logs
        .describe_log_groups()
        .log_group_name_prefix(log_group_name(""))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .ctx("describe", "log groups")?;
    Ok(all
        .iter()
        .filter_map(|g| Some((g.log_group_name()?.to_string(), g.creation_time().map(|ms| ms / 1000))))
        .collect())
}

/// One stack, inspected live as `status` does without a state.
async fn inspect_stack(setup: &Setup, name: &str, found: Found) -> Result<StackRow, CommandError> {
    let own = name == setup.config.name;
    let mut config = if own { setup.config.clone() } else { setup.config.with_name(name)? };
    if !own {
        // Whether another stack has HTTPS or autoscaling, and how many AZs and NAT gateways it
        // was built with, is in its own config: judge the part every stack has (and the parts
        // found), rather than call it partial for lacking what ours has.
        config.https = None;
        config.autoscaling = None;
        config.network.az_count = 2;
        config.network.nat_gateways = 1;
    }
    // The shape the stack was built with: at least what the config says, and what was found.
    let graph = resources::stack(&Shape::of(&config).with_found(found.parts.iter().copied()))?;
    let store = Store::read_only(setup.location(), State::new(name, &setup.region));
    let mut ctx = Ctx::new(config, setup.region.clone(), setup.clients.clone(), store);
    ctx.compares_config = own;
    let ctx = Arc::new(ctx);
    let mut rows: Vec<ResourceRow> = inspect(setup, &graph, ctx.clone()).await?;
    if own {
        // The first round found each resource by tag and name and compared it with what was known
        // so far (a security group's rules name a group found later). Compared again with all known.
        rows = inspect(setup, &graph, ctx.clone()).await?;
    }
    let present: Vec<&ResourceRow> = rows.iter().filter(|r| r.status != Health::Missing).collect();
    // Only what `down` keeps on purpose is left (the table, `--retain-table`).
    let kept: Vec<&'static str> = present
        .iter()
        .map(|r| graph.get(r.name).and_then(|n| n.lifecycle().retention).map(|k| k.list))
        .collect::<Option<_>>()
        .unwrap_or_default();
    let status = if !kept.is_empty() { StackState::Retained } else { StackState::of(&rows) };
    let url = match status {
        StackState::Retained => None,
        _ => stack_url(&ctx),
    };
    Ok(StackRow {
        name: name.to_string(),
        status,
        url,
        created: found
            .created
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        resources: present.len(),
        expected: rows.len(),
        drift_checked: own,
        detail: detail(status, &rows, &kept),
    })
}

/// What `list` says beside a stack's status.
fn detail(status: StackState, rows: &[ResourceRow], kept: &[&str]) -> String {
    match status {
        StackState::Partial => {
            let missing: Vec<String> =
                rows.iter().filter(|r| r.status == Health::Missing).map(|r| r.name.to_string()).collect();
            format!("missing: {}", missing.join(", "))
        }
        StackState::Deploying | StackState::Drifted => rows
            .iter()
            .filter(|r| matches!(r.status, Health::Pending | Health::Drifted))
            .map(|r| format!("{}: {}", r.name, r.detail))
            .collect::<Vec<_>>()
            .join("; "),
        StackState::Retained => kept.join("; "),
        _ => String::new(),
    }
}

/// Where a stack found by `list` answers, from what its inspection recorded (the listener's port
/// as found, since another stack's config is not at hand).
fn stack_url(ctx: &Ctx) -> Option<String> {
    let view = ctx.scope();
    let port = view.attr(LISTENER_PORT).and_then(|p| p.parse().ok()).unwrap_or(80);
    let https = view.id(LISTENER_HTTPS).is_some();
    load_balancer::url(view.attr(DNS_NAME).as_deref(), port, https, view.id(dns::ALIAS_RECORD).as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_creation_time_wins() {
        let mut f = Found::default();
        f.created_at(None);
        f.created_at(Some(200));
        f.created_at(Some(100));
        f.created_at(Some(300));
        assert_eq!(f.created, Some(100));
    }

    #[test]
    fn stack_tags_are_read_exactly() {
        let resource = crate::context::RESOURCE_TAG;
        let tags = [(STACK_TAG, "app"), (resource, "vpc"), ("Name", "app-vpc"), ("fargate-stack:stackx", "no")];
        assert_eq!(owner_tags(tags), (Some("app".into()), Some("vpc".into())));
        assert_eq!(owner_tags([("Name", "x")]), (None, None));
    }
}
