//! The resource model. Every resource of the stack is declared once, as a [`Managed`] type that
//! says how to find it (with the ownership check), what it needs, what must be gone before it can
//! be deleted, how it differs from the config (and which differences need a replacement), and how
//! to create, update and delete it. [`Driven`] turns that into the three verbs the commands use
//! (`inspect`, `ensure`, `delete`), so the plan, `up`, `status` and `down` cannot disagree.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Serialize, Serializer};

use crate::context::Ctx;
use crate::error::StackError;
use crate::progress::Line;

/// Most availability zones (and so subnets, NAT gateways, private route tables) a stack spans.
pub const MAX_INDEXED: u8 = 6;

/// One logical resource of the stack: the state file key, the progress line, the status row.
/// Indexed resources count from 0 here and from 1 in their names (`subnet-public-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Vpc,
    DefaultSecurityGroup,
    InternetGateway,
    PublicSubnet(u8),
    PrivateSubnet(u8),
    PublicRouteTable,
    ElasticIp(u8),
    NatGateway(u8),
    PrivateRouteTable(u8),
    AlbSecurityGroup,
    TaskSecurityGroup,
    Table,
    LogGroup,
    ExecutionRole,
    TaskRole,
    Cluster,
    TaskDefinition,
    TargetGroup,
    LoadBalancer,
    Listener,
    Service,
    /// The service registered with Application Auto Scaling (ecs:service:DesiredCount).
    ScalableTarget,
    /// Target tracking on the service's average CPU.
    CpuScalingPolicy,
    /// Target tracking on the load balancer's requests per target.
    RequestsScalingPolicy,
    /// Wait: the load balancer left `provisioning`.
    LoadBalancerActive,
    /// Wait: the service's rollout completed with every target healthy.
    ServiceHealthy,
    /// The ACM certificate requested for `https.domain`.
    Certificate,
    /// The CNAME that proves to ACM that the domain is ours.
    ValidationRecord,
    /// Wait: ACM issued the certificate (minutes on AWS).
    CertificateIssued,
    /// The HTTPS listener on 443.
    ListenerHttps,
    /// The alias A record from `https.domain` to the load balancer.
    AliasRecord,
}

/// Names of the keys without an index, in both directions.
const PLAIN: &[(Key, &str)] = &[
    (Key::Vpc, "vpc"),
    (Key::DefaultSecurityGroup, "default-security-group"),
    (Key::InternetGateway, "internet-gateway"),
    (Key::PublicRouteTable, "route-table-public"),
    (Key::AlbSecurityGroup, "security-group-alb"),
    (Key::TaskSecurityGroup, "security-group-task"),
    (Key::Table, "table"),
    (Key::LogGroup, "log-group"),
    (Key::ExecutionRole, "role-execution"),
    (Key::TaskRole, "role-task"),
    (Key::Cluster, "cluster"),
    (Key::TaskDefinition, "task-definition"),
    (Key::TargetGroup, "target-group"),
    (Key::LoadBalancer, "load-balancer"),
    (Key::Listener, "listener"),
    (Key::Service, "service"),
    (Key::ScalableTarget, "scalable-target"),
    (Key::CpuScalingPolicy, "scaling-policy-cpu"),
    (Key::RequestsScalingPolicy, "scaling-policy-requests"),
    (Key::LoadBalancerActive, "load-balancer-active"),
    (Key::ServiceHealthy, "service-healthy"),
    (Key::Certificate, "certificate"),
    (Key::ValidationRecord, "dns-validation-record"),
    (Key::CertificateIssued, "certificate-issued"),
    (Key::ListenerHttps, "listener-https"),
    (Key::AliasRecord, "dns-alias-record"),
];

/// An indexed key's constructor and name prefix.
type Indexed = (fn(u8) -> Key, &'static str);

/// Prefixes of the indexed keys.
const INDEXED: &[Indexed] = &[
    (Key::PublicSubnet, "subnet-public-"),
    (Key::PrivateSubnet, "subnet-private-"),
    (Key::ElasticIp, "elastic-ip-"),
    (Key::NatGateway, "nat-gateway-"),
    (Key::PrivateRouteTable, "route-table-private-"),
];

impl Key {
    pub fn kind(self) -> Kind {
        match self {
            Key::Vpc => Kind::Vpc,
            Key::DefaultSecurityGroup | Key::AlbSecurityGroup | Key::TaskSecurityGroup => Kind::SecurityGroup,
            Key::InternetGateway => Kind::InternetGateway,
            Key::PublicSubnet(_) | Key::PrivateSubnet(_) => Kind::Subnet,
            Key::PublicRouteTable | Key::PrivateRouteTable(_) => Kind::RouteTable,
            Key::ElasticIp(_) => Kind::ElasticIp,
            Key::NatGateway(_) => Kind::NatGateway,
            Key::Table => Kind::Table,
            Key::LogGroup => Kind::LogGroup,
            Key::ExecutionRole | Key::TaskRole => Kind::Role,
            Key::Cluster => Kind::Cluster,
            Key::TaskDefinition => Kind::TaskDefinition,
            Key::TargetGroup => Kind::TargetGroup,
            Key::LoadBalancer => Kind::LoadBalancer,
            Key::Listener | Key::ListenerHttps => Kind::Listener,
            Key::Service => Kind::Service,
            Key::Certificate => Kind::Certificate,
            Key::ValidationRecord | Key::AliasRecord => Kind::Record,
            Key::ScalableTarget => Kind::ScalableTarget,
            Key::CpuScalingPolicy | Key::RequestsScalingPolicy => Kind::ScalingPolicy,
            Key::LoadBalancerActive | Key::ServiceHealthy | Key::CertificateIssued => Kind::Wait,
        }
    }

    /// The index of an indexed key (0-based).
    pub fn index(self) -> Option<usize> {
        match self {
            Key::PublicSubnet(i)
            | Key::PrivateSubnet(i)
            | Key::ElasticIp(i)
            | Key::NatGateway(i)
            | Key::PrivateRouteTable(i) => Some(i as usize),
            _ => None,
        }
    }

    fn indexed_parts(self) -> Option<(&'static str, u8)> {
        let i = self.index()? as u8;
        let constructor = INDEXED.iter().find(|(make, _)| make(i) == self)?;
        Some((constructor.1, i))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((prefix, i)) = self.indexed_parts() {
            return write!(f, "{prefix}{}", i + 1);
        }
        let name = PLAIN.iter().find(|(k, _)| k == self).map(|(_, n)| *n).expect("every plain key is named");
        f.write_str(name)
    }
}

impl FromStr for Key {
    type Err = String;

    fn from_str(s: &str) -> Result<Key, String> {
        if let Some((key, _)) = PLAIN.iter().find(|(_, n)| *n == s) {
            return Ok(*key);
        }
        for (make, prefix) in INDEXED {
            if let Some(n) = s.strip_prefix(prefix).and_then(|n| n.parse::<u8>().ok()) {
                if (1..=MAX_INDEXED).contains(&n) {
                    return Ok(make(n - 1));
                }
            }
        }
        Err(format!("unknown resource key {s:?}"))
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The AWS type of a resource, shown as `service:type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vpc,
    SecurityGroup,
    InternetGateway,
    Subnet,
    RouteTable,
    ElasticIp,
    NatGateway,
    Table,
    LogGroup,
    Role,
    Cluster,
    TaskDefinition,
    TargetGroup,
    LoadBalancer,
    Listener,
    Service,
    Certificate,
    Record,
    ScalableTarget,
    ScalingPolicy,
    Wait,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Vpc => "ec2:vpc",
            Kind::SecurityGroup => "ec2:security-group",
            Kind::InternetGateway => "ec2:internet-gateway",
            Kind::Subnet => "ec2:subnet",
            Kind::RouteTable => "ec2:route-table",
            Kind::ElasticIp => "ec2:elastic-ip",
            Kind::NatGateway => "ec2:nat-gateway",
            Kind::Table => "dynamodb:table",
            Kind::LogGroup => "logs:log-group",
            Kind::Role => "iam:role",
            Kind::Cluster => "ecs:cluster",
            Kind::TaskDefinition => "ecs:task-definition",
            Kind::TargetGroup => "elbv2:target-group",
            Kind::LoadBalancer => "elbv2:load-balancer",
            Kind::Listener => "elbv2:listener",
            Kind::Service => "ecs:service",
            Kind::Certificate => "acm:certificate",
            Kind::Record => "route53:record",
            Kind::ScalableTarget => "application-autoscaling:scalable-target",
            Kind::ScalingPolicy => "application-autoscaling:scaling-policy",
            Kind::Wait => "wait",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// One difference between a live resource and the config: `from` is what AWS has, `to` what the
/// config asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
    /// AWS cannot make this change in place: the resource (and its data) would be replaced.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} → {}", self.field, self.from, self.to)
    }
}

/// Collects the differences between what AWS has and what the config asks for.
#[derive(Debug, Default)]
pub struct Diff(Vec<Change>);

impl Diff {
    pub fn new() -> Diff {
        Diff::default()
    }

    /// Record `field` if `have` and `want` differ; changed in place.
    pub fn field<T: PartialEq + fmt::Display + ?Sized>(&mut self, field: &str, have: &T, want: &T) -> &mut Diff {
        self.push(field, have, want, false)
    }

    /// Record `field` if `have` and `want` differ; the change needs the resource replaced.
    pub fn replace<T: PartialEq + fmt::Display + ?Sized>(&mut self, field: &str, have: &T, want: &T) -> &mut Diff {
        self.push(field, have, want, true)
    }

    fn push<T: PartialEq + fmt::Display + ?Sized>(
        &mut self,
        field: &str,
        have: &T,
        want: &T,
        replace: bool,
    ) -> &mut Diff {
        if have != want {
            self.0.push(Change { field: field.to_string(), from: have.to_string(), to: want.to_string(), replace });
        }
        self
    }

    pub fn into_changes(self) -> Vec<Change> {
        self.0
    }
}

/// What a step did, for the summary and the JSON result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Deleted,
    Absent,
    Retained,
    Waited,
    /// Found by name but not carrying this stack's tag: not ours, not touched.
    LeftAlone,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
            Outcome::Absent => "already gone",
            Outcome::Retained => "retained",
            Outcome::Waited => "ready",
            Outcome::LeftAlone => "left alone",
        }
    }
}

/// Live status of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Missing,
    Drifted,
    Pending,
}

impl Health {
    pub fn word(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Missing => "missing",
            Health::Drifted => "drifted",
            Health::Pending => "pending",
        }
    }
}

/// What a live check of one resource found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    pub status: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// How it differs from the config (drifted), as old → new.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Recorded in the state file before this check (false: found by tag or name, or absent).
    pub recorded: bool,
    /// Why `up` cannot create or change it (something that is not ours is in the way, or AWS
    /// would refuse): `up` stops before any change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

impl Inspection {
    pub fn missing(id: Option<String>, recorded: bool, detail: impl Into<String>) -> Inspection {
        Inspection { status: Health::Missing, id, detail: detail.into(), changes: vec![], recorded, blocked: None }
    }

    /// Missing (or not usable) because of `why`, which `up` cannot get past.
    pub fn blocked(id: Option<String>, recorded: bool, why: String) -> Inspection {
        Inspection { blocked: Some(why.clone()), ..Inspection::missing(id, recorded, why) }
    }

    pub fn found(id: String, recorded: bool, changes: Vec<Change>, pending: Option<String>) -> Inspection {
        let (status, detail) = match (changes.is_empty(), pending) {
            (false, _) => (Health::Drifted, changes.iter().map(Change::to_string).collect::<Vec<_>>().join("; ")),
            (true, Some(state)) => (Health::Pending, state),
            (true, None) => (Health::Ok, String::new()),
        };
        Inspection { status, id: Some(id), detail, changes, recorded, blocked: None }
    }

    /// Changes `up` refuses to make because they replace the resource.
    pub fn replacements(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.replace)
    }
}

/// A teardown constraint: `key` must be gone before this resource is deleted, because `why`.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub key: Key,
    pub why: &'static str,
}

pub fn after(key: Key, why: &'static str) -> Edge {
    Edge { key, why }
}

/// What is written to the state file for a resource: its AWS identifier and a few facts.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub id: String,
    pub attrs: Vec<(&'static str, String)>,
}

impl Record {
    pub fn id(id: impl Into<String>) -> Record {
        Record { id: id.into(), attrs: vec![] }
    }

    pub fn with(mut self, attr: &'static str, value: impl Into<String>) -> Record {
        self.attrs.push((attr, value.into()));
        self
    }
}

/// One resource of the stack, declared once. Implementations live in `resources/`.
#[async_trait]
pub trait Managed: Send + Sync + 'static {
    /// What a describe call returns for it (plus whatever else the checks need).
    type Live: Send + Sync + 'static;

    fn key(&self) -> Key;

    /// What must be up before it is created (and recorded before it can be compared).
    fn needs(&self) -> Vec<Key>;

    /// What must be gone before it can be deleted, each with the reason AWS gives.
    fn teardown_after(&self) -> Vec<Edge> {
        vec![]
    }

    /// The live resource: the recorded one if AWS still has it, else one found by tag or name.
    /// Every candidate passes the ownership check here (this stack's tag, this stack's VPC);
    /// one that fails is reported and left alone, whatever filter AWS applied.
    async fn find(&self, ctx: &Ctx) -> Result<Option<Self::Live>, StackError>;

    /// What to record in the state file.
    fn record(&self, ctx: &Ctx, live: &Self::Live) -> Record;

    /// How the live resource differs from the config. Changes marked `replace` are refused.
    fn diff(&self, _ctx: &Ctx, _live: &Self::Live) -> Result<Vec<Change>, StackError> {
        Ok(vec![])
    }

    /// AWS is still settling it (e.g. `pending`): shown by `status`, waited for by `ready`.
    fn pending(&self, _ctx: &Ctx, _live: &Self::Live) -> Option<String> {
        None
    }

    async fn create(&self, ctx: &Ctx, line: &Line) -> Result<Self::Live, StackError>;

    /// Apply `changes` in place. Returns the new live resource when its identity changed (a new
    /// task definition revision).
    async fn update(
        &self,
        _ctx: &Ctx,
        _line: &Line,
        _live: &Self::Live,
        changes: &[Change],
    ) -> Result<Option<Self::Live>, StackError> {
        Err(StackError::Refused(format!(
            "{}: {} cannot be changed in place",
            self.key(),
            changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>().join(", ")
        )))
    }

    /// Wait until it can be used (a NAT gateway available, a table ACTIVE).
    async fn ready(&self, _ctx: &Ctx, _line: &Line, _live: &Self::Live) -> Result<(), StackError> {
        Ok(())
    }

    /// Delete it; `Deleted` unless it is kept on purpose (`Retained`).
    async fn destroy(&self, ctx: &Ctx, line: &Line, live: Self::Live) -> Result<Outcome, StackError>;

    /// `down` found nothing to delete: wait for whatever is still on its way out (a service
    /// draining after an interrupted `down`), since what comes after it waits for that.
    async fn settle_gone(&self, _ctx: &Ctx, _line: &Line) -> Result<(), StackError> {
        Ok(())
    }
}

/// A node of the stack's graph: a resource or a wait.
#[async_trait]
pub trait Resource: Send + Sync {
    fn key(&self) -> Key;
    fn needs(&self) -> Vec<Key>;
    fn teardown_after(&self) -> Vec<Edge>;
    /// A wait has nothing to inspect or delete.
    fn is_wait(&self) -> bool {
        false
    }
    async fn inspect(&self, ctx: &Ctx) -> Result<Inspection, StackError>;
    async fn ensure(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError>;
    async fn delete(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError>;
}

/// A wait that ends `up` (or lets what needs it start): nothing to inspect or delete.
#[async_trait]
pub trait Wait: Send + Sync + 'static {
    fn key(&self) -> Key;
    fn needs(&self) -> Vec<Key>;
    /// Wait until AWS is ready; the error says what was last seen.
    async fn wait(&self, ctx: &Ctx, line: &Line) -> Result<(), StackError>;
}

/// Drives a [`Wait`] as a graph node.
pub struct Waiting<W>(pub W);

#[async_trait]
impl<W: Wait> Resource for Waiting<W> {
    fn key(&self) -> Key {
        self.0.key()
    }

    fn needs(&self) -> Vec<Key> {
        self.0.needs()
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![]
    }

    fn is_wait(&self) -> bool {
        true
    }

    async fn inspect(&self, _ctx: &Ctx) -> Result<Inspection, StackError> {
        Ok(Inspection::missing(None, false, "a wait"))
    }

    async fn ensure(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
        line.start("checking");
        self.0.wait(ctx, line).await?;
        Ok(Outcome::Waited)
    }

    async fn delete(&self, _ctx: &Ctx, _line: &Line) -> Result<Outcome, StackError> {
        Ok(Outcome::Absent)
    }
}

/// Drives a [`Managed`] resource through the three verbs.
pub struct Driven<M>(pub M);

/// The refusal `up` gives for changes that need a replacement.
pub fn refusal(key: Key, changes: &[&Change]) -> StackError {
    let list = changes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; ");
    StackError::Refused(format!(
        "{key}: {list}: this replaces it (and what depends on it); run `fargate-stack down` \
         (with --retain-table to keep the table's data), then `up`"
    ))
}

#[async_trait]
impl<M: Managed> Resource for Driven<M> {
    fn key(&self) -> Key {
        self.0.key()
    }

    fn needs(&self) -> Vec<Key> {
        self.0.needs()
    }

    fn teardown_after(&self) -> Vec<Edge> {
        self.0.teardown_after()
    }

    async fn inspect(&self, ctx: &Ctx) -> Result<Inspection, StackError> {
        let key = self.0.key();
        let recorded = ctx.id(key);
        let live = match self.0.find(ctx).await {
            Ok(live) => live,
            // In the way of `up`: reported here, refused by `up` before it changes anything.
            Err(e @ (StackError::NotOurs { .. } | StackError::Blocked { .. })) => {
                return Ok(Inspection::blocked(recorded.clone(), recorded.is_some(), e.to_string()))
            }
            Err(e) => return Err(e),
        };
        let Some(live) = live else {
            let detail = if recorded.is_some() { "deleted outside fargate-stack" } else { "not created" };
            return Ok(Inspection::missing(recorded.clone(), recorded.is_some(), detail));
        };
        // Known from here on (in memory only for read-only runs), so dependents can be compared.
        let record = self.0.record(ctx, &live);
        ctx.record(key, &record).await?;
        // A resource that cannot be compared because what it refers to is missing is reported
        // by that missing resource, not as drift here.
        let changes = match self.0.diff(ctx, &live) {
            _ if !ctx.compares_config => vec![],
            Err(StackError::MissingDependency { .. }) => vec![],
            other => other?,
        };
        Ok(Inspection::found(record.id, recorded.is_some(), changes, self.0.pending(ctx, &live)))
    }

    async fn ensure(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
        let key = self.0.key();
        line.start("checking");
        let (mut live, created) = match self.0.find(ctx).await? {
            Some(live) => (live, false),
            None => {
                line.start("creating");
                (self.0.create(ctx, line).await?, true)
            }
        };
        // Recorded the moment it is known, before anything else can fail.
        ctx.record(key, &self.0.record(ctx, &live)).await?;
        let changes = self.0.diff(ctx, &live)?;
        let replaced: Vec<&Change> = changes.iter().filter(|c| c.replace).collect();
        if !replaced.is_empty() {
            return Err(refusal(key, &replaced));
        }
        if !changes.is_empty() {
            line.start(if created { "configuring" } else { "updating" });
            if let Some(new) = self.0.update(ctx, line, &live, &changes).await? {
                live = new;
                ctx.record(key, &self.0.record(ctx, &live)).await?;
            }
        }
        self.0.ready(ctx, line, &live).await?;
        Ok(if created {
            Outcome::Created
        } else if changes.is_empty() {
            Outcome::Unchanged
        } else {
            Outcome::Updated
        })
    }

    async fn delete(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
        let key = self.0.key();
        let recorded = ctx.id(key).is_some();
        let live = match self.0.find(ctx).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                self.0.settle_gone(ctx, line).await?;
                ctx.forget(key).await?;
                return Ok(Outcome::Absent);
            }
            // Found by name only, without this stack's tag: someone else's.
            Err(e @ StackError::NotOurs { .. }) if !recorded => {
                ctx.warn(e.to_string());
                line.done("left alone", "not ours");
                return Ok(Outcome::LeftAlone);
            }
            // Never recorded, and what it would be looked for in is not there: nothing of ours.
            Err(StackError::Blocked { .. }) if !recorded => {
                ctx.forget(key).await?;
                return Ok(Outcome::Absent);
            }
            Err(e) => return Err(e),
        };
        line.start("deleting");
        let outcome = self.0.destroy(ctx, line, live).await?;
        if outcome != Outcome::Retained {
            ctx.forget(key).await?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_names() {
        let mut all = PLAIN.iter().map(|(k, _)| *k).collect::<Vec<_>>();
        for (make, _) in INDEXED {
            all.extend((0..MAX_INDEXED).map(make));
        }
        for key in all {
            assert_eq!(key.to_string().parse::<Key>(), Ok(key), "{key}");
        }
        assert_eq!(Key::PublicSubnet(0).to_string(), "subnet-public-1");
        assert_eq!(Key::PrivateRouteTable(1).to_string(), "route-table-private-2");
        assert!("subnet-public-0".parse::<Key>().is_err());
        assert!("subnet-public-7".parse::<Key>().is_err());
        assert!("nonsense".parse::<Key>().is_err());
    }

    #[test]
    fn every_key_has_a_kind_label() {
        assert_eq!(Key::NatGateway(0).kind().label(), "ec2:nat-gateway");
        assert_eq!(Key::ServiceHealthy.kind(), Kind::Wait);
        assert_eq!(serde_json::to_string(&Key::ElasticIp(2)).unwrap(), "\"elastic-ip-3\"");
        assert_eq!(Key::ScalableTarget.kind().label(), "application-autoscaling:scalable-target");
        assert_eq!(Key::RequestsScalingPolicy.to_string(), "scaling-policy-requests");
        assert_eq!(Key::CpuScalingPolicy.kind().label(), "application-autoscaling:scaling-policy");
    }

    #[test]
    fn diff_records_only_differences_and_marks_replacements() {
        let mut d = Diff::new();
        d.field("image", "nginx:1", "nginx:1").field("image", "nginx:1", "nginx:2").replace("cidr", "a", "b");
        let changes = d.into_changes();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].to_string(), "image: nginx:1 → nginx:2");
        assert!(!changes[0].replace && changes[1].replace);
    }

    #[test]
    fn inspection_status_follows_changes_then_pending() {
        let change = Change { field: "f".into(), from: "a".into(), to: "b".into(), replace: false };
        assert_eq!(Inspection::found("i".into(), true, vec![change.clone()], Some("p".into())).status, Health::Drifted);
        assert_eq!(Inspection::found("i".into(), true, vec![], Some("p".into())).status, Health::Pending);
        assert_eq!(Inspection::found("i".into(), true, vec![], None).status, Health::Ok);
    }
}
