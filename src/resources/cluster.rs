//! The ECS cluster the service runs in.

use async_trait::async_trait;
use aws_sdk_ecs::types::Cluster as ClusterObject;

use crate::context::Ctx;
use crate::error::{found, AwsContext, StackError};
use crate::model::{after, Edge, Key, Managed, Outcome, Record};
use crate::progress::Line;
use crate::wait::{self, budget};

pub fn cluster_name(ctx: &Ctx) -> String {
    ctx.name("cluster")
}

pub(crate) fn owned<'a>(
    ctx: &Ctx,
    key: Key,
    what: &str,
    tags: impl IntoIterator<Item = &'a aws_sdk_ecs::types::Tag>,
) -> Result<(), StackError> {
    let tags = tags.into_iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
    ctx.owns(key, tags).map_err(|why| ctx.not_ours(format!("{} {what}", key.kind()), why))
}

// ---------------------------------------------------------------- cluster

pub struct Cluster;

#[async_trait]
impl Managed for Cluster {
    type Live = ClusterObject;

    fn key(&self) -> Key {
        Key::Cluster
    }

    fn needs(&self) -> Vec<Key> {
        vec![]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![after(
            Key::Service,
            "DeleteCluster fails with ClusterContainsServicesException while a service is active or draining",
        )]
    }

    async fn find(&self, ctx: &Ctx) -> Result<Option<ClusterObject>, StackError> {
        let name = ctx.id(Key::Cluster).unwrap_or_else(|| cluster_name(ctx));
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
            owned(ctx, Key::Cluster, &name, cluster.tags())?;
        }
        Ok(cluster)
    }

    fn record(&self, _ctx: &Ctx, live: &ClusterObject) -> Record {
        Record::id(live.cluster_name().unwrap_or_default()).with("arn", live.cluster_arn().unwrap_or_default())
    }

    fn pending(&self, _ctx: &Ctx, live: &ClusterObject) -> Option<String> {
        (live.status() == Some("PROVISIONING")).then(|| "provisioning".to_string())
    }

    async fn create(&self, ctx: &Ctx, _line: &Line) -> Result<ClusterObject, StackError> {
        let name = cluster_name(ctx);
        let out = ctx
            .aws
            .ecs
            .create_cluster()
            .cluster_name(&name)
            .set_tags(Some(ctx.sdk_tags(Key::Cluster, &name)))
            .send()
            .await
            .ctx("create cluster", &name)?;
        out.cluster()
            .cloned()
            .ok_or_else(|| StackError::Failed { resource: name, message: "create returned no cluster".into() })
    }

    async fn destroy(&self, ctx: &Ctx, line: &Line, live: ClusterObject) -> Result<Outcome, StackError> {
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
