//! The ECS cluster the service runs in.

use async_trait::async_trait;
use aws_sdk_ecs::types::Cluster as ClusterObject;
use futures::future::BoxFuture;

use crate::access::{self, arn, global_arn, Condition, Permission, STACK};
use crate::aws::Clients;
use crate::bill::Charge;
use crate::config::Config;
use crate::error::{found, returned, AwsContext, StackError};
use crate::model::{
    made_for, owner_tags, Attr, Dep, Key, Kind, Managed, NoField, Nodes, Outcome, Record, Scope, Shape, Sighting, Sweep,
};
use crate::progress::Line;
use crate::resources::tags::TagPairs;
use crate::wait::{self, budget};

pub const CLUSTER: Key = Key::new("cluster", Kind::new("ecs:cluster"));
const CLUSTER_ARN: Attr = Attr::new(CLUSTER, "arn");

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
                .include(aws_sdk_ecs::types::ClusterField::Tags)
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

#[async_trait]
impl Managed for Cluster {
    type Live = ClusterObject;
    type Field = NoField;

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
            // ECS makes its service-linked role on an account's first cluster.
            Permission::create("iam:CreateServiceLinkedRole")
                .on(global_arn("iam", true, "role/aws-service-role/ecs.amazonaws.com/*"))
                .when(Condition::ServiceLinked("ecs.amazonaws.com"))
                .implied(),
            Permission::delete("ecs:DeleteCluster").on(cluster).tagged(),
        ]
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
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
            .include(aws_sdk_ecs::types::ClusterField::Tags)
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
        Record::id(live.cluster_name().unwrap_or_default()).with(CLUSTER_ARN, live.cluster_arn().unwrap_or_default())
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
