//! `list`: every fargate-stack stack in the region, found by the `fargate-stack:stack` tag whether
//! or not a state is at hand, each judged by the same live inspection `status` makes.
//!
//! Stacks are found through their anchors (the VPC by a tag-key filter; the ECS cluster, the
//! DynamoDB table and the load balancer by their names and tags), every candidate checked on our
//! side. Each stack is then inspected as `status` would without a state: found by tag and name,
//! with the ownership checks. Only the stack of the config at hand is compared with a config
//! (drift); the others are judged on what exists and what AWS is still settling, and on the facts
//! their own resources carry (an HTTPS listener, a certificate requested for a domain), never on
//! the config of the directory `list` runs in.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use crate::access::{self, Permission};
use crate::commands::{inspect, CommandError, ResourceRow, Setup, StackState};
use crate::config::{Config, HttpsConfig};
use crate::context::{Ctx, STACK_TAG};
use crate::error::AwsContext;
use crate::model::{Health, Indexed, Key, Kind, Shape, Sighting};
use crate::report::{self, Report, Text};
use crate::resources::certificate::CERTIFICATE;
use crate::resources::cluster::{cluster_name, CLUSTER};
use crate::resources::gateway_endpoints::{ENDPOINTS, S3_ENDPOINT};
use crate::resources::listener_https::LISTENER_HTTPS;
use crate::resources::load_balancer::{self, load_balancer_name, DNS_NAME, LISTENER_PORT, LOAD_BALANCER};
use crate::resources::logs::LOG_GROUP;
use crate::resources::network::{ELASTIC_IP, NAT_GATEWAY, PRIVATE_SUBNET, PUBLIC_SUBNET, REGIONAL_ELASTIC_IP, VPC};
use crate::resources::table::{table_name, TABLE};
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
    /// The ARN of its certificate (requested for `https.domain`), found by its tags.
    certificate: Option<String>,
}

impl Found {
    fn created_at(&mut self, secs: Option<i64>) {
        if let Some(secs) = secs {
            self.created = Some(self.created.map_or(secs, |c| c.min(secs)));
        }
    }
}

/// What `list` calls to find the stacks of the region (the sweeps of its anchors' and parts'
/// kinds); it then inspects each as `status` does (every resource's `Find`, for every stack name:
/// `{stack}` is `*`).
pub fn permissions() -> Vec<Permission> {
    let table = access::arn("dynamodb", &format!("table/{}", table_name("*")));
    vec![
        Permission::inspect("ec2:DescribeVpcs"),
        Permission::inspect("ec2:DescribeSubnets"),
        Permission::inspect("ec2:DescribeNatGateways"),
        Permission::inspect("ec2:DescribeAddresses"),
        Permission::inspect("ec2:DescribeVpcEndpoints"),
        Permission::inspect("ecs:ListClusters"),
        Permission::inspect("ecs:DescribeClusters").on(access::arn("ecs", "cluster/*")),
        Permission::inspect("dynamodb:ListTables"),
        Permission::inspect("dynamodb:DescribeTable").on(table.clone()),
        Permission::inspect("dynamodb:ListTagsOfResource").on(table),
        Permission::inspect("elasticloadbalancing:DescribeLoadBalancers"),
        Permission::inspect("elasticloadbalancing:DescribeTags"),
        Permission::inspect("logs:DescribeLogGroups"),
        // Whether a stack serves HTTPS, and for which domain: its listeners and certificate.
        Permission::inspect("elasticloadbalancing:DescribeListeners"),
        Permission::inspect("acm:ListCertificates"),
        Permission::inspect("acm:ListTagsForCertificate").on(access::arn("acm", "certificate/*")),
        Permission::inspect("acm:DescribeCertificate").on(access::arn("acm", "certificate/*")),
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

/// How a stack's resource is named, from the stack's name.
type NameOf = fn(&str) -> String;

/// What finds a stack: its VPC (by tag), its cluster, table and load balancer (by name and tag),
/// each checked on our side to be the stack's resource of that key and name.
const ANCHORS: &[(Key, Option<NameOf>)] =
    &[(VPC, None), (CLUSTER, Some(cluster_name)), (TABLE, Some(table_name)), (LOAD_BALANCER, Some(load_balancer_name))];

/// What shows a found stack's shape: how many AZs and NAT gateways its tagged parts have (a
/// regional NAT gateway's addresses bring the gateway).
const PARTS: &[Indexed] = &[PUBLIC_SUBNET, PRIVATE_SUBNET, NAT_GATEWAY, ELASTIC_IP, REGIONAL_ELASTIC_IP];

/// Every stack name the region's tagged anchors carry, with the shape and age they show.
async fn discover(setup: &Setup) -> Result<(BTreeMap<String, Found>, Vec<String>), CommandError> {
    let mut kinds: Vec<Kind> = ANCHORS.iter().map(|(k, _)| k.kind()).collect();
    kinds.extend(PARTS.iter().map(|f| f.kind()));
    kinds.extend([LOG_GROUP.kind(), LISTENER_HTTPS.kind(), CERTIFICATE.kind(), S3_ENDPOINT.kind()]);
    let sightings = resources::sightings(&setup.clients, &kinds).await?;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    let mut warnings = vec![];
    for (key, name_of) in ANCHORS {
        for s in sightings.iter().filter(|s| s.kind == key.kind()) {
            match anchor(s, *key, *name_of) {
                Ok(Some(stack)) => found.entry(stack).or_default().created_at(s.created),
                Ok(None) => {}
                Err(warning) => warnings.push(warning),
            }
        }
    }
    // Shape and age from the parts of stacks found above (a NAT alone does not make a stack).
    for s in sightings.iter().filter(|s| s.active) {
        let (Some(stack), Some(resource)) = (&s.stack, &s.resource) else { continue };
        let Some(part) = PARTS.iter().filter(|f| f.kind() == s.kind).find_map(|f| f.parse(resource)) else { continue };
        if let Some(f) = found.get_mut(stack) {
            f.parts.push(part);
            f.created_at(s.created);
        }
    }
    // What the stack serves, as its own resources say.
    for s in sightings.iter().filter(|s| s.active) {
        let (Some(stack), Some(resource)) = (&s.stack, &s.resource) else { continue };
        let Some(f) = found.get_mut(stack) else { continue };
        if *resource == LISTENER_HTTPS.to_string() {
            f.parts.push(LISTENER_HTTPS);
        } else if let Some(endpoint) = ENDPOINTS.iter().map(|(k, _)| *k).find(|k| *resource == k.to_string()) {
            // The judged base has no NAT, so no private route tables to put endpoints on: found ones count.
            f.parts.push(endpoint);
        } else if *resource == CERTIFICATE.to_string() && s.kind == CERTIFICATE.kind() {
            f.certificate = Some(s.id.clone());
        }
    }
    for s in sightings.iter().filter(|s| s.kind == LOG_GROUP.kind()) {
        if let Some(f) = s.named_for.as_ref().and_then(|stack| found.get_mut(stack)) {
            f.created_at(s.created);
        }
    }
    Ok((found, warnings))
}

/// The stack `s` is an anchor of, if it is `key` of a stack named as `name_of` says; `Err`: a
/// warning about a tag that cannot be right.
fn anchor(s: &Sighting, key: Key, name_of: Option<NameOf>) -> Result<Option<String>, String> {
    let Some(stack) = s.stack.clone() else { return Ok(None) };
    let what = format!("{} {}", key.kind(), s.name.clone().unwrap_or_default()).trim().to_string();
    if Config::valid_name(&stack).is_err() {
        return Err(format!("{what} is tagged {STACK_TAG}={stack:?}, which is not a stack name; left out"));
    }
    if s.resource.as_deref() != Some(key.to_string().as_str()) {
        return Ok(None);
    }
    match name_of {
        Some(name_of) if s.name.as_ref().is_some_and(|n| *n != name_of(&stack)) => {
            Err(format!("{what} is tagged {STACK_TAG}={stack} but is not named {}; left out", name_of(&stack)))
        }
        _ => Ok(Some(stack)),
    }
}

/// One stack, inspected live as `status` does without a state.
async fn inspect_stack(setup: &Setup, name: &str, found: Found) -> Result<StackRow, CommandError> {
    let own = name == setup.config.name;
    let mut config = if own { setup.config.clone() } else { setup.config.with_name(name)? };
    if !own {
        // Whether another stack has autoscaling, and how many AZs and NAT gateways it was built
        // with, is in its own config: judge the part every stack has (and the parts found), rather
        // than call it partial for lacking what ours has. HTTPS is judged by what it carries: a
        // certificate requested for a domain (so its records are looked for too), an HTTPS listener.
        config.https = match &found.certificate {
            Some(arn) => certificate_domain(setup, arn).await?.map(HttpsConfig::for_domain),
            None => None,
        };
        config.autoscaling = None;
        config.network.az_count = 2;
        // No NAT: the public part every mode has; the NAT gateways and private subnets found add theirs.
        config.network.nat = Some(crate::config::NatMode::None);
        config.network.nat_gateways = None;
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

/// The domain a stack's certificate was requested for (none if it is gone meanwhile).
async fn certificate_domain(setup: &Setup, arn: &str) -> Result<Option<String>, CommandError> {
    let out = setup.clients.acm.describe_certificate().certificate_arn(arn).send().await.ctx("describe", arn);
    Ok(crate::error::found(out)?.and_then(|o| o.certificate().and_then(|c| c.domain_name()).map(str::to_string)))
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
        assert_eq!(crate::model::owner_tags(tags), (Some("app".into()), Some("vpc".into())));
        assert_eq!(crate::model::owner_tags([("Name", "x")]), (None, None));
    }

    #[test]
    fn an_anchor_is_a_stacks_resource_of_its_key_and_name() {
        let sighting = |stack: &str, resource: &str, name: &str| {
            Sighting::new(TABLE.kind(), name).named(name, |_| None).owned((Some(stack.into()), Some(resource.into())))
        };
        assert_eq!(anchor(&sighting("app", "table", "app-messages"), TABLE, Some(table_name)), Ok(Some("app".into())));
        assert_eq!(anchor(&sighting("app", "log-group", "app-messages"), TABLE, Some(table_name)), Ok(None));
        assert!(anchor(&sighting("app", "table", "other-messages"), TABLE, Some(table_name))
            .unwrap_err()
            .contains("not named app-messages"));
        assert!(anchor(&sighting("Not A Name", "table", "x"), TABLE, Some(table_name))
            .unwrap_err()
            .contains("not a stack name"));
    }
}
