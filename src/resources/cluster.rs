//! The ECS cluster the service runs in, with Container Insights as the config says (on by default),
//! and the Fargate capacity providers: FARGATE and FARGATE_SPOT are always associated (free, and
//! no task runs on them unless the service's strategy says so), so a service switches to Spot and
//! back without the cluster changing first: ECS refuses to remove a provider a service still uses,
//! and to use one the cluster does not have.

use async_trait::async_trait;
use aws_sdk_ecs::types::{Cluster as ClusterObject, ClusterField, ClusterSetting, ClusterSettingName};
use futures::future::BoxFuture;

use crate::access::{self, arn, global_arn, Condition, Permission, STACK};
use crate::aws::Clients;
use crate::bill::{items, Charge, Unit};
use crate::config::{Config, ON_DEMAND_PROVIDER, SPOT_PROVIDER};
use crate::error::{found, returned, AwsContext, StackError};
use crate::model::{
    made_for, owner_tags, Attr, Changed, Dep, Diff, Field, Key, Kind, Managed, Nodes, Outcome, Record, Scope, Shape,
    Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::tags::TagPairs;
use crate::wait::{self, budget};

pub const CLUSTER: Key = Key::new("cluster", Kind::new("ecs:cluster"));
const CLUSTER_ARN: Attr = Attr::new(CLUSTER, "arn");
/// The `containerInsights` setting as last seen.
const INSIGHTS: Attr = Attr::new(CLUSTER, "container_insights");
/// The capacity providers associated with the cluster, as last seen.
const PROVIDERS: Attr = Attr::new(CLUSTER, "capacity_providers");

/// The providers the cluster offers its service.
const CAPACITY_PROVIDERS: [&str; 2] = [ON_DEMAND_PROVIDER, SPOT_PROVIDER];

pub fn declare(_shape: &Shape, nodes: &mut Nodes) {
    nodes.managed(Cluster);
}

/// The cluster's name: `<stack>-cluster`.
pub fn cluster_name(stack: &str) -> String {
    format!("{stack}-cluster")
}

/// Every active cluster, with its tags.
fn sweep_clusters(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let arns =
            c.ecs.list_clusters().into_paginator().items().send().try_collect().await.ctx("list", "ECS clusters")?;
        let mut sightings = vec![];
        // DescribeClusters takes at most 100 clusters.
        for chunk in arns.chunks(100) {
            let out = c
                .ecs
                .describe_clusters()
                .set_clusters(Some(chunk.to_vec()))
                .include(ClusterField::Tags)
                .send()
                .await
                .ctx("describe", "ECS clusters")?;
            for cluster in out.clusters().iter().filter(|c| c.status() == Some("ACTIVE")) {
                let name = cluster.cluster_name().unwrap_or_default();
                let sighting = Sighting::new(CLUSTER.kind(), name)
                    .named(name, |n| made_for(n, cluster_name))
                    .owned(owner_tags(cluster.tags().pairs()));
                sightings.push(sighting);
            }
        }
        Ok(sightings)
    })
}

/// The stack's cluster: the recorded one, else the one its name gives.
pub fn stack_cluster(ctx: &Scope<'_>) -> String {
    ctx.id(CLUSTER).unwrap_or_else(|| cluster_name(ctx.stack()))
}

pub struct Cluster;

/// The cluster's `containerInsights` setting; a cluster without it has Container Insights off
/// (unless the account's default turns it on, which DescribeClusters then reports as the setting).
/// ECS tags as (key, value) pairs, for the `[tags]` sync.
pub(crate) fn ecs_pairs(tags: &[aws_sdk_ecs::types::Tag]) -> Option<Vec<(String, String)>> {
    Some(tags.pairs().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// Keep the user's tags in step on an ECS resource (the cluster, the service, the task definition's
/// current revision): TagResource puts (and overwrites), UntagResource takes keys off.
pub(crate) async fn ecs_retag(
    ctx: &Scope<'_>,
    arn: &str,
    put: &[(String, String)],
    remove: &[String],
) -> Result<(), StackError> {
    if !put.is_empty() {
        let tags = put.iter().map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
        ctx.aws.ecs.tag_resource().resource_arn(arn).set_tags(Some(tags.collect())).send().await.ctx("tag", arn)?;
    }
    if !remove.is_empty() {
        let call = ctx.aws.ecs.untag_resource().resource_arn(arn).set_tag_keys(Some(remove.to_vec()));
        call.send().await.ctx("untag", arn)?;
    }
    Ok(())
}

fn insights_of(cluster: &ClusterObject) -> &str {
    cluster
        .settings()
        .iter()
        .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
        .and_then(|s| s.value())
        .unwrap_or("disabled")
}

fn insights_setting(config: &Config) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(config.cluster.container_insights.as_str())
        .build()
}

/// The cluster's capacity providers, sorted, as one line.
fn providers_of(cluster: &ClusterObject) -> String {
    let mut providers: Vec<&str> = cluster.capacity_providers().iter().map(String::as_str).collect();
    providers.sort_unstable();
    if providers.is_empty() {
        "none".into()
    } else {
        providers.join(", ")
    }
}

/// What the cluster can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterDiff {
    Insights,
    CapacityProviders,
}

impl Field for ClusterDiff {
    fn label(&self) -> String {
        match self {
            ClusterDiff::Insights => "cluster.container_insights".into(),
            ClusterDiff::CapacityProviders => "cluster capacity providers".into(),
        }
    }
}

#[async_trait]
impl Managed for Cluster {
    type Live = ClusterObject;
    type Field = ClusterDiff;

    async fn tags(&self, _ctx: &Scope<'_>, live: &ClusterObject) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ecs_pairs(live.tags()))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &ClusterObject,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ecs_retag(ctx, live.cluster_arn().unwrap_or_default(), put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_clusters)
    }

    fn permissions(&self) -> Vec<Permission> {
        let cluster = arn("ecs", &format!("cluster/{}", cluster_name(STACK)));
        vec![
            Permission::find("ecs:DescribeClusters").on(cluster.clone()),
            // The clusters of the region (`list`, the leak check).
            Permission::inspect("ecs:ListClusters"),
            Permission::inspect("ecs:DescribeClusters").on(arn("ecs", "cluster/*")),
            Permission::create("ecs:CreateCluster").on(cluster.clone()).tagging(),
            access::tags_on_create("ecs:TagResource", "CreateCluster", cluster.clone()),
            access::retagging("ecs:TagResource", cluster.clone()),
            access::retagging("ecs:UntagResource", cluster.clone()),
            // ECS makes its service-linked role on an account's first cluster.
            Permission::create("iam:CreateServiceLinkedRole")
                .on(global_arn("iam", true, "role/aws-service-role/ecs.amazonaws.com/*"))
                .when(Condition::ServiceLinked("ecs.amazonaws.com"))
                .implied(),
            Permission::update("ecs:UpdateClusterSettings").on(cluster.clone()).tagged(),
            Permission::update("ecs:PutClusterCapacityProviders").on(cluster.clone()).tagged(),
            Permission::delete("ecs:DeleteCluster").on(cluster).tagged(),
        ]
    }

    /// Container Insights bills the metrics it publishes (and their log events) by use.
    fn billing(&self, config: &Config) -> Vec<Charge> {
        use crate::config::ContainerInsights::*;
        match config.cluster.container_insights {
            Disabled => vec![],
            Enabled | Enhanced => {
                vec![Charge::usage(items::CONTAINER_INSIGHTS, Unit::Month, "Container Insights metrics (per metric)")]
            }
        }
    }

    fn key(&self) -> Key {
        CLUSTER
    }

    fn needs(&self) -> Vec<Dep> {
        vec![]
    }

    // DeleteCluster fails while a service is active or draining: the service says so itself.

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<ClusterObject>, StackError> {
        let name = stack_cluster(ctx);
        let out = ctx
            .aws
            .ecs
            .describe_clusters()
            .clusters(&name)
            .include(ClusterField::Tags)
            .include(ClusterField::Settings)
            .send()
            .await
            .ctx("describe cluster", &name)?;
        let cluster = out
            .clusters()
            .iter()
            .find(|c| c.cluster_name() == Some(name.as_str()) && matches!(c.status(), Some("ACTIVE" | "PROVISIONING")))
            .cloned();
        if let Some(cluster) = &cluster {
            ctx.owned(CLUSTER, format!("{} {name}", CLUSTER.kind()), cluster.tags().pairs())?;
        }
        Ok(cluster)
    }

    fn record(&self, _ctx: &Scope<'_>, live: &ClusterObject) -> Record {
        Record::id(live.cluster_name().unwrap_or_default())
            .with(CLUSTER_ARN, live.cluster_arn().unwrap_or_default())
            .with(INSIGHTS, insights_of(live))
            .with(PROVIDERS, providers_of(live))
    }

    fn diff(&self, ctx: &Scope<'_>, live: &ClusterObject) -> Result<Vec<Changed<ClusterDiff>>, StackError> {
        let mut diff = Diff::new();
        diff.field(ClusterDiff::Insights, insights_of(live), ctx.config.cluster.container_insights.as_str()).field(
            ClusterDiff::CapacityProviders,
            &providers_of(live),
            &CAPACITY_PROVIDERS.join(", "),
        );
        Ok(diff.into_changes())
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        _line: &Line,
        live: &ClusterObject,
        changes: &[Changed<ClusterDiff>],
    ) -> Result<Option<ClusterObject>, StackError> {
        let name = live.cluster_name().unwrap_or_default();
        let mut cluster = None;
        for change in changes {
            let out = match change.field {
                ClusterDiff::Insights => {
                    ctx.aws
                        .ecs
                        .update_cluster_settings()
                        .cluster(name)
                        .settings(insights_setting(ctx.config))
                        .send()
                        .await
                        .ctx("set the Container Insights of cluster", name)?
                        .cluster
                }
                // No default strategy: the service names its own (or runs by launch type).
                ClusterDiff::CapacityProviders => {
                    ctx.aws
                        .ecs
                        .put_cluster_capacity_providers()
                        .cluster(name)
                        .set_capacity_providers(Some(CAPACITY_PROVIDERS.map(String::from).to_vec()))
                        .set_default_capacity_provider_strategy(Some(vec![]))
                        .send()
                        .await
                        .ctx("associate the Fargate capacity providers with cluster", name)?
                        .cluster
                }
            };
            cluster = out.or(cluster);
        }
        Ok(cluster)
    }

    fn pending(&self, _ctx: &Scope<'_>, live: &ClusterObject) -> Option<String> {
        (live.status() == Some("PROVISIONING")).then(|| "provisioning".to_string())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<ClusterObject, StackError> {
        let name = cluster_name(ctx.stack());
        let out = ctx
            .aws
            .ecs
            .create_cluster()
            .cluster_name(&name)
            .settings(insights_setting(ctx.config))
            .set_capacity_providers(Some(CAPACITY_PROVIDERS.map(String::from).to_vec()))
            .set_tags(Some(ctx.sdk_tags(&name)))
            .send()
            .await
            .ctx("create cluster", &name)?;
        returned(out.cluster().cloned(), name, "create returned no cluster")
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: ClusterObject) -> Result<Outcome, StackError> {
        let name = live.cluster_name().unwrap_or_default();
        // Refused while a service is still draining or its tasks are stopping.
        let busy = [
            "ClusterContainsServicesException",
            "ClusterContainsTasksException",
            "UpdateInProgressException",
            "ResourceInUseException",
        ];
        let deleted = wait::retry_codes(line, name, budget::SERVICE, &busy, || async {
            ctx.aws.ecs.delete_cluster().cluster(name).send().await.ctx("delete cluster", name).map(drop)
        })
        .await;
        found(deleted)?;
        Ok(Outcome::Deleted)
    }
}
