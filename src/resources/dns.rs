//! Route 53: the hosted zone of `https.domain` (found, never created or deleted), the CNAME that
//! validates the certificate, and the alias A record that points the domain at the load balancer.
//!
//! Records carry no tags. A record is the stack's when the state records it (and it still holds
//! what fargate-stack wrote), or, to adopt one, when it holds exactly what fargate-stack would
//! write. A record of the same name holding anything else is never overwritten nor deleted: `up`
//! refuses before any change.

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change as RecordChange, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet,
    RrType,
};

use crate::access::{arn, global_arn, Permission};
use crate::bill::{items, Charge, Unit};
use crate::config::Config;
use crate::error::{AwsContext, StackError};
use crate::model::{
    after, before, Attr, Changed, Dep, Diff, Edge, Field, Inspection, Key, Kind, Lifecycle, Managed, Nodes, Outcome,
    Record, Scope, Shape, Sweep,
};
use crate::progress::Line;
use crate::resources::acm;
use crate::resources::certificate::{
    self, requested_domain, CERTIFICATE, CERTIFICATE_ISSUED, VALIDATION_NAME, VALIDATION_VALUE,
};
use crate::resources::listener_https::LISTENER_HTTPS;
use crate::resources::load_balancer::{CANONICAL_ZONE, DNS_NAME, LOAD_BALANCER};
use crate::wait::{self, budget, Poll};

const RECORD: Kind = Kind::new("route53:record");
/// The CNAME that proves to ACM that the domain is ours.
pub const VALIDATION_RECORD: Key = Key::new("dns-validation-record", RECORD);
/// The alias A record from `https.domain` to the load balancer.
pub const ALIAS_RECORD: Key = Key::new("dns-alias-record", RECORD);

const VALIDATION_ZONE: Attr = Attr::new(VALIDATION_RECORD, "zone");
const VALIDATION_TYPE: Attr = Attr::new(VALIDATION_RECORD, "type");
const VALIDATION_WRITTEN: Attr = Attr::new(VALIDATION_RECORD, "value");
/// Set when `up` wrote it (rather than adopting one that validates other certificates too).
const VALIDATION_CREATED: Attr = Attr::new(VALIDATION_RECORD, "created");
pub const ALIAS_ZONE: Attr = Attr::new(ALIAS_RECORD, "zone");
const ALIAS_TYPE: Attr = Attr::new(ALIAS_RECORD, "type");
const ALIAS_TARGET: Attr = Attr::new(ALIAS_RECORD, "target");
const ALIAS_TARGET_ZONE: Attr = Attr::new(ALIAS_RECORD, "target_zone");
/// While `up` replaces a record (a new domain or zone): the old one's name, zone and what
/// fargate-stack wrote there, set before the new one is written, cleared once the old one is
/// deleted (`finish_up`).
const VALIDATION_REPLACES: Attr = Attr::new(VALIDATION_RECORD, "replaces");
const VALIDATION_REPLACES_ZONE: Attr = Attr::new(VALIDATION_RECORD, "replaces_zone");
const VALIDATION_REPLACES_VALUE: Attr = Attr::new(VALIDATION_RECORD, "replaces_value");
const VALIDATION_REPLACES_CREATED: Attr = Attr::new(VALIDATION_RECORD, "replaces_created");
const ALIAS_REPLACES: Attr = Attr::new(ALIAS_RECORD, "replaces");
const ALIAS_REPLACES_ZONE: Attr = Attr::new(ALIAS_RECORD, "replaces_zone");
const ALIAS_REPLACES_TARGET: Attr = Attr::new(ALIAS_RECORD, "replaces_target");
const ALIAS_REPLACES_TARGET_ZONE: Attr = Attr::new(ALIAS_RECORD, "replaces_target_zone");

/// The certificate's validation record (after the certificate): with a requested certificate, and
/// while the state records it.
pub fn validation(shape: &Shape, nodes: &mut Nodes) {
    if certificate::requested(shape) || shape.holds(VALIDATION_RECORD) {
        nodes.managed(ValidationRecord);
    }
}

/// The alias record (after the HTTPS listener): for `https.domain`, whichever certificate is
/// served, and while the state records it.
pub fn alias(shape: &Shape, nodes: &mut Nodes) {
    let domain = shape.config().https.as_ref().is_some_and(|h| h.domain.is_some());
    if domain || certificate::requested(shape) || shape.holds(ALIAS_RECORD) {
        nodes.managed(AliasRecord);
    }
}

/// What a record can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordField {
    HostedZone,
    Domain,
    Value,
    AliasTarget,
}

impl Field for RecordField {
    fn label(&self) -> String {
        match self {
            RecordField::HostedZone => "https.hosted_zone_id",
            RecordField::Domain => "https.domain",
            RecordField::Value => "value",
            RecordField::AliasTarget => "alias target",
        }
        .into()
    }
}

/// What a record calls: its zone found (never created), its record set listed and changed.
fn record_permissions() -> Vec<Permission> {
    let zone = global_arn("route53", false, "hostedzone/*");
    vec![
        Permission::find("route53:ListHostedZonesByName"),
        Permission::find("route53:GetHostedZone").on(zone.clone()),
        Permission::find("route53:ListResourceRecordSets").on(zone.clone()),
        Permission::create("route53:ChangeResourceRecordSets").on(zone.clone()),
        Permission::update("route53:ChangeResourceRecordSets").on(zone.clone()),
        Permission::delete("route53:ChangeResourceRecordSets").on(zone),
    ]
}

/// The hosted zone of `https.domain`, looked up once per run.
#[derive(Default)]
struct HostedZone(tokio::sync::OnceCell<Zone>);

/// TTL of the validation CNAME (what ACM's console writes).
const VALIDATION_TTL: i64 = 300;

/// A public hosted zone: its ID (without `/hostedzone/`) and its name (a lower-case FQDN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: String,
    pub name: String,
}

/// A name as Route 53 lists it: lower case, with the trailing dot, `\052` read as `*`.
pub fn fqdn(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase().replace("\\052", "*");
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}

/// An alias target's DNS name compared as AWS means it (`dualstack.` is the same load balancer).
fn alias_name(dns: &str) -> String {
    let name = fqdn(dns);
    name.strip_prefix("dualstack.").map(str::to_string).unwrap_or(name)
}

/// Is `name` inside `zone` (or its apex)?
fn within(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

fn zone_id(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

/// The hosted zone the stack's records go in: `https.hosted_zone_id`, else the public zone whose
/// name is the longest suffix of `https.domain`. Looked up once per run; none, several, a private
/// zone or one that does not hold the domain is `Blocked` (before any change).
pub async fn zone(ctx: &Scope<'_>, domain: &str) -> Result<Zone, StackError> {
    ctx.run::<HostedZone>().0.get_or_try_init(|| resolve_zone(ctx, domain)).await.cloned()
}

async fn resolve_zone(ctx: &Scope<'_>, domain: &str) -> Result<Zone, StackError> {
    let name = fqdn(domain);
    let blocked = |reason: String| StackError::Blocked { resource: format!("https.domain {domain}"), reason };
    if let Some(id) = ctx.config.https.as_ref().and_then(|h| h.hosted_zone_id.as_deref()) {
        let out = ctx.aws.route53.get_hosted_zone().id(id).send().await.ctx("describe hosted zone", id);
        let out = match out {
            Err(e) if e.has_code(&["NoSuchHostedZone"]) => {
                return Err(blocked(format!("https.hosted_zone_id {id}: no such hosted zone in this account")))
            }
            other => other?,
        };
        let zone = out.hosted_zone().ok_or_else(|| blocked(format!("hosted zone {id}: not described")))?;
        let zone_name = fqdn(zone.name());
        if zone.config().is_some_and(|c| c.private_zone()) {
            return Err(blocked(format!(
                "https.hosted_zone_id {id} ({zone_name}) is a private zone: ACM validates through public DNS"
            )));
        }
        if !within(&name, &zone_name) {
            return Err(blocked(format!("https.hosted_zone_id {id} is {zone_name}, which does not hold {name}")));
        }
        return Ok(Zone { id: zone_id(zone.id()), name: zone_name });
    }
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    for start in 0..labels.len() {
        let suffix = format!("{}.", labels[start..].join("."));
        let zones = public_zones_named(ctx, &suffix).await?;
        match zones.len() {
            0 => continue,
            1 => return Ok(zones.into_iter().next().expect("one")),
            _ => {
                return Err(blocked(format!(
                    "{} public hosted zones are named {suffix} ({}): set https.hosted_zone_id to the one to use",
                    zones.len(),
                    zones.iter().map(|z| z.id.as_str()).collect::<Vec<_>>().join(", ")
                )))
            }
        }
    }
    Err(blocked(format!(
        "no public hosted zone of this account is named {name} or a parent of it: create one (and delegate \
         the domain to it), or set https.hosted_zone_id"
    )))
}

/// The public zones named exactly `name` (zones are listed in name order from `name` on).
async fn public_zones_named(ctx: &Scope<'_>, name: &str) -> Result<Vec<Zone>, StackError> {
    let mut zones = vec![];
    let mut next: Option<(String, Option<String>)> = None;
    loop {
        let call = ctx.aws.route53.list_hosted_zones_by_name().max_items(100);
        let call = match &next {
            Some((dns, id)) => call.dns_name(dns).set_hosted_zone_id(id.clone()),
            None => call.dns_name(name),
        };
        let out = call.send().await.ctx("list hosted zones named", name)?;
        let mut past = false;
        for zone in out.hosted_zones() {
            if fqdn(zone.name()) != name {
                past = true;
                break;
            }
            if !zone.config().is_some_and(|c| c.private_zone()) {
                zones.push(Zone { id: zone_id(zone.id()), name: name.to_string() });
            }
        }
        if past || !out.is_truncated() {
            return Ok(zones);
        }
        match out.next_dns_name() {
            Some(dns) => next = Some((dns.to_string(), out.next_hosted_zone_id().map(str::to_string))),
            None => return Ok(zones),
        }
    }
}

/// Every record set of exactly `name` in the zone (none if the zone itself is gone).
async fn record_sets(ctx: &Scope<'_>, zone: &str, name: &str) -> Result<Vec<ResourceRecordSet>, StackError> {
    let out = ctx
        .aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .max_items(20)
        .send()
        .await
        .ctx("list the records of", name);
    match out {
        Err(e) if e.has_code(&["NoSuchHostedZone"]) => Ok(vec![]),
        Err(e) => Err(e),
        Ok(out) => Ok(out.resource_record_sets().iter().filter(|s| fqdn(s.name()) == name).cloned().collect()),
    }
}

/// The simple (no routing policy) record of `name` and `rtype`, if any.
fn simple<'a>(sets: &'a [ResourceRecordSet], rtype: &RrType) -> Option<&'a ResourceRecordSet> {
    sets.iter().find(|s| s.r#type() == rtype && s.set_identifier().is_none())
}

fn values(set: &ResourceRecordSet) -> Vec<String> {
    set.resource_records().iter().map(|r| fqdn(r.value())).collect()
}

/// What a record holds, for messages: its values or its alias target.
fn shown(set: &ResourceRecordSet) -> String {
    match set.alias_target() {
        Some(alias) => format!("an alias to {} (zone {})", fqdn(alias.dns_name()), alias.hosted_zone_id()),
        None => values(set).join(", "),
    }
}

fn build_error(what: &str, e: impl std::fmt::Display) -> StackError {
    StackError::Failed { resource: what.to_string(), message: format!("cannot build the change: {e}") }
}

/// Send one change to the zone; returns the change ID to wait on.
async fn change(
    ctx: &Scope<'_>,
    line: &Line,
    zone: &str,
    action: ChangeAction,
    set: ResourceRecordSet,
) -> Result<String, StackError> {
    let what = format!("{} {} record {}", action.as_str(), set.r#type().as_str(), set.name());
    let change =
        RecordChange::builder().action(action).resource_record_set(set).build().map_err(|e| build_error(&what, e))?;
    let batch = ChangeBatch::builder()
        .comment(format!("fargate-stack {}", ctx.stack()))
        .changes(change)
        .build()
        .map_err(|e| build_error(&what, e))?;
    // Route 53 takes one change at a time per zone: PriorRequestNotComplete means "again shortly".
    let out = wait::retry_codes(line, &what, budget::PROPAGATION, &["PriorRequestNotComplete"], || async {
        ctx.aws
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch.clone())
            .send()
            .await
            .ctx("change", &what)
    })
    .await?;
    Ok(out.change_info().map(|c| c.id().to_string()).unwrap_or_default())
}

/// Wait until the change reached every Route 53 name server.
async fn in_sync(ctx: &Scope<'_>, line: &Line, change_id: &str, name: &str) -> Result<(), StackError> {
    if change_id.is_empty() {
        return Ok(());
    }
    wait::until(line, name, "be in sync on Route 53's name servers", budget::DNS_CHANGE, || async {
        let out = ctx.aws.route53.get_change().id(change_id).send().await.ctx("check Route 53 change", change_id)?;
        Ok(match out.change_info().map(|c| c.status()) {
            Some(ChangeStatus::Insync) => Poll::Ready(()),
            _ => Poll::Pending("Route 53 change pending".into()),
        })
    })
    .await
}

/// A record cannot move to another zone: a zone named in the config other than the record's is a
/// replacement.
fn moved(ctx: &Scope<'_>, diff: &mut Diff<RecordField>, live: &RecordLive) {
    if let Some(zone) = ctx.config.https.as_ref().and_then(|h| h.hosted_zone_id.as_deref()) {
        diff.replace(RecordField::HostedZone, live.zone.as_str(), zone);
    }
}

/// A DELETE whose record is already gone (or changed meanwhile) answers InvalidChangeBatch.
fn already_gone(e: &StackError) -> bool {
    e.has_code(&["InvalidChangeBatch"]) && e.message().is_some_and(|m| m.contains("not found"))
}

/// A record the stack owns or would own.
pub struct RecordLive {
    zone: String,
    set: ResourceRecordSet,
    /// It still holds what fargate-stack wrote (or would write): deleting it harms no one.
    ours: bool,
}

// ---------------------------------------------------------------- the validation record

/// The CNAME ACM asks for. On AWS it is the same for every certificate of the account for the
/// domain, so another certificate may rely on it too: `down` deletes it only if `up` created it
/// and no other certificate of the domain still needs it.
pub struct ValidationRecord;

/// The record ACM asks for: (name, value), recorded with the certificate once ACM shows it.
fn wanted_validation(ctx: &Scope<'_>) -> Option<(String, String)> {
    let name = ctx.attr(VALIDATION_NAME)?;
    let value = ctx.attr(VALIDATION_VALUE)?;
    Some((fqdn(&name), fqdn(&value)))
}

fn validation_set(name: &str, value: &str) -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(VALIDATION_TTL)
        .resource_records(ResourceRecord::builder().value(value).build().expect("value is set"))
        .build()
        .expect("name and type are set")
}

impl ValidationRecord {
    /// The record at `name` in `zone`, judged against the recorded or wanted value.
    async fn look(
        ctx: &Scope<'_>,
        zone: &str,
        name: &str,
        recorded: Option<String>,
    ) -> Result<Option<RecordLive>, StackError> {
        let sets = record_sets(ctx, zone, name).await?;
        let Some(set) = simple(&sets, &RrType::Cname) else { return Ok(None) };
        let have = values(set);
        let wanted = wanted_validation(ctx).map(|(_, v)| v);
        let ours = [recorded.as_deref().map(fqdn), wanted.clone()].iter().flatten().any(|v| have == [v.clone()]);
        if !ours && recorded.is_none() {
            return Err(ctx.not_ours(
                format!("route53:record {name} CNAME"),
                format!(
                    "it holds {}, not the certificate's validation value {}",
                    have.join(", "),
                    wanted.unwrap_or_default()
                ),
            ));
        }
        Ok(Some(RecordLive { zone: zone.to_string(), set: set.clone(), ours }))
    }
}

#[async_trait]
impl Managed for ValidationRecord {
    type Live = RecordLive;
    type Field = RecordField;

    fn sweep(&self) -> Sweep {
        Sweep::Unlisted("a record carries no tag and its domain is in the config: the HTTPS tests check the zone")
    }

    fn permissions(&self) -> Vec<Permission> {
        let mut permissions = record_permissions();
        // Kept while another certificate of the account still validates through it.
        permissions.push(Permission::delete("acm:ListCertificates"));
        permissions.push(Permission::delete("acm:DescribeCertificate").on(arn("acm", "certificate/*")));
        permissions
    }

    /// Queried by ACM to validate and renew the certificate.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![Charge::usage(items::ROUTE53_QUERIES, Unit::MillionRequests, "DNS queries of the validation record")]
    }

    fn key(&self) -> Key {
        VALIDATION_RECORD
    }

    fn needs(&self) -> Vec<Dep> {
        vec![Dep::IfPresent(CERTIFICATE)]
    }

    /// ACM validates through it: the wait for the certificate's issue comes after it.
    fn needed_by(&self) -> Vec<Dep> {
        vec![Dep::IfPresent(CERTIFICATE_ISSUED)]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![after(
            Dep::IfPresent(CERTIFICATE),
            "ACM validates the certificate (and renews it) through this record while it exists",
        )]
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle { found_first: true, replaced_by_up: true, ..Lifecycle::default() }
    }

    /// It goes with the certificate it validates: nothing a client sees.
    fn replacement_note(&self, found: &Inspection) -> Option<String> {
        let why: Vec<String> = found.changes.iter().filter(|c| c.replace).map(ToString::to_string).collect();
        let name = found.id.as_deref()?.trim_end_matches('.');
        (!why.is_empty()).then(|| {
            format!(
                "replace the validation record {name} ({}): the new certificate's record is written beside it, \
                 then {name}'s is deleted with the old certificate",
                why.join("; ")
            )
        })
    }

    fn unfinished(&self, ctx: &Scope<'_>) -> Option<String> {
        let old = ctx.attr(VALIDATION_REPLACES)?;
        Some(format!(
            "an interrupted `up` began replacing the validation record {old}: the next `up` writes the new \
             certificate's, then deletes {old}'s with the old certificate"
        ))
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<RecordLive>, StackError> {
        let key = self.key();
        if let (Some(name), Some(zone)) = (ctx.id(key), ctx.attr(VALIDATION_ZONE)) {
            if let Some(live) = Self::look(ctx, &zone, &fqdn(&name), ctx.attr(VALIDATION_WRITTEN)).await? {
                return Ok(Some(live));
            }
        }
        let (Some((name, _)), Some(domain)) = (wanted_validation(ctx), requested_domain(ctx)) else {
            return Ok(None);
        };
        let zone = zone(ctx, &domain).await?;
        Self::look(ctx, &zone.id, &name, None).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &RecordLive) -> Record {
        let mut record =
            Record::id(fqdn(live.set.name())).with(VALIDATION_ZONE, &live.zone).with(VALIDATION_TYPE, "CNAME");
        // What someone else wrote over it is not what fargate-stack wrote.
        if live.ours {
            record = record.with(VALIDATION_WRITTEN, values(&live.set).join(","));
        }
        record
    }

    fn diff(&self, ctx: &Scope<'_>, live: &RecordLive) -> Result<Vec<Changed<RecordField>>, StackError> {
        let mut diff = Diff::new();
        moved(ctx, &mut diff, live);
        if let Some((name, value)) = wanted_validation(ctx) {
            // A new certificate's (a new domain's) record has another name.
            diff.replace(RecordField::Domain, &fqdn(live.set.name()), &name);
            diff.field(RecordField::Value, &values(&live.set).join(", "), &value);
        }
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<RecordLive, StackError> {
        let key = self.key();
        let (name, value) = wanted_validation(ctx).ok_or_else(|| StackError::MissingDependency {
            needed: "certificate.validation_name".into(),
            by: key.to_string(),
        })?;
        let domain = requested_domain(ctx)
            .ok_or_else(|| StackError::MissingDependency { needed: "https.domain".into(), by: key.to_string() })?;
        let zone = zone(ctx, &domain).await?;
        // ACM shows the record only after the request, so it is first looked for here. One that
        // is already there with this value validates other certificates too: adopted, not ours
        // to delete.
        if let Some(existing) = Self::look(ctx, &zone.id, &name, None).await? {
            return Ok(existing);
        }
        // Recorded as created before it is written: a run killed in between finds it again and
        // knows that `down` may delete it.
        ctx.record(
            &Record::id(&name)
                .with(VALIDATION_ZONE, &zone.id)
                .with(VALIDATION_TYPE, "CNAME")
                .with(VALIDATION_WRITTEN, &value)
                .with(VALIDATION_CREATED, "true"),
        )
        .await?;
        let set = validation_set(&name, &value);
        match change(ctx, line, &zone.id, ChangeAction::Create, set.clone()).await {
            Ok(_) => {}
            // Written meanwhile (by a run that was killed): the same value is the same record.
            Err(e) if e.message().is_some_and(|m| m.contains("already exists")) => {
                return Self::look(ctx, &zone.id, &name, Some(value)).await?.ok_or(e);
            }
            Err(e) => return Err(e),
        }
        Ok(RecordLive { zone: zone.id, set, ours: true })
    }

    /// The new record written beside the old one, which is recorded as replaced before: ACM
    /// validates the new certificate through the new one, and the old one goes in `finish_up`.
    async fn replace(&self, ctx: &Scope<'_>, line: &Line, live: RecordLive) -> Result<RecordLive, StackError> {
        let old = (fqdn(live.set.name()), live.zone.clone());
        let recorded = ctx.attr(VALIDATION_REPLACES).zip(ctx.attr(VALIDATION_REPLACES_ZONE));
        if recorded.as_ref().is_some_and(|r| *r != old) {
            self.finish_up(ctx).await?;
        }
        // A resumed replacement keeps what the first attempt recorded of the old record.
        if recorded.as_ref() != Some(&old) {
            let written = live.ours.then(|| values(&live.set).join(","));
            ctx.set_attrs(&[
                (VALIDATION_REPLACES, Some(old.0)),
                (VALIDATION_REPLACES_ZONE, Some(old.1)),
                (VALIDATION_REPLACES_VALUE, written),
                (VALIDATION_REPLACES_CREATED, ctx.attr(VALIDATION_CREATED)),
                (VALIDATION_WRITTEN, None),
                (VALIDATION_CREATED, None),
            ])
            .await?;
        }
        self.create(ctx, line).await
    }

    /// After a replacement: the old record is deleted if `up` wrote it and no other certificate of
    /// the account (than the one replaced) validates through it.
    async fn finish_up(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        let Some((old, zone)) = ctx.attr(VALIDATION_REPLACES).zip(ctx.attr(VALIDATION_REPLACES_ZONE)) else {
            return Ok(());
        };
        let current = ctx.id(VALIDATION_RECORD).zip(ctx.attr(VALIDATION_ZONE));
        let written = ctx.attr(VALIDATION_REPLACES_VALUE);
        if current.as_ref() != Some(&(old.clone(), zone.clone())) {
            if let Some(live) = Self::look(ctx, &zone, &old, written.clone()).await? {
                let replaced = ctx.attr(certificate::REPLACES);
                let domain = old.trim_end_matches('.').split_once('.').map(|(_, d)| d.to_string()).unwrap_or_default();
                let mut others = acm::others_validated_by(ctx, &domain, ctx.id(CERTIFICATE).as_deref()).await?;
                others.retain(|o| Some(o) != replaced.as_ref());
                if !live.ours || written.is_none() {
                    ctx.warn(format!("left DNS record {old} alone: it no longer holds the value fargate-stack wrote"));
                } else if ctx.attr(VALIDATION_REPLACES_CREATED).as_deref() != Some("true") || !others.is_empty() {
                    ctx.note(format!("kept DNS record {old}: it validates other certificates of this account"));
                } else {
                    match change(ctx, &Line::hidden(), &zone, ChangeAction::Delete, live.set.clone()).await {
                        Err(e) if already_gone(&e) => {}
                        other => drop(other?),
                    }
                    ctx.note(format!("DNS record {old} deleted: it validated the replaced certificate"));
                }
            }
        }
        ctx.set_attrs(&[
            (VALIDATION_REPLACES, None),
            (VALIDATION_REPLACES_ZONE, None),
            (VALIDATION_REPLACES_VALUE, None),
            (VALIDATION_REPLACES_CREATED, None),
        ])
        .await?;
        Ok(())
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &RecordLive,
        _changes: &[Changed<RecordField>],
    ) -> Result<Option<RecordLive>, StackError> {
        let (name, value) = wanted_validation(ctx).ok_or_else(|| StackError::MissingDependency {
            needed: "certificate.validation_name".into(),
            by: self.key().to_string(),
        })?;
        let set = validation_set(&name, &value);
        change(ctx, line, &live.zone, ChangeAction::Upsert, set.clone()).await?;
        Ok(Some(RecordLive { zone: live.zone.clone(), set, ours: true }))
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: RecordLive) -> Result<Outcome, StackError> {
        let name = fqdn(live.set.name());
        // A replacement that did not finish: the record it replaces is the old one (if written by
        // `up`), deleted first as `up` would have; or this one, if the new one was not yet made.
        let replaced = ctx.attr(VALIDATION_REPLACES).is_some_and(|old| old == name);
        let created = ctx.attr(if replaced { VALIDATION_REPLACES_CREATED } else { VALIDATION_CREATED });
        self.finish_up(ctx).await?;
        if !live.ours {
            ctx.warn(format!("left DNS record {name} alone: it no longer holds the value fargate-stack wrote"));
            return Ok(Outcome::LeftAlone);
        }
        if created.as_deref() != Some("true") {
            ctx.note(format!(
                "kept DNS record {name}: it existed before this stack used it (ACM validates every certificate of \
                 this account for the domain with it)"
            ));
            return Ok(Outcome::LeftAlone);
        }
        let domain = name.trim_end_matches('.').split_once('.').map(|(_, d)| d.to_string()).unwrap_or_default();
        let others = acm::others_validated_by(ctx, &domain, ctx.id(CERTIFICATE).as_deref()).await?;
        if !others.is_empty() {
            ctx.note(format!(
                "kept DNS record {name}: certificate {} of this account still validates (and renews) through it",
                others.join(", ")
            ));
            return Ok(Outcome::LeftAlone);
        }
        match change(ctx, line, &live.zone, ChangeAction::Delete, live.set.clone()).await {
            Err(e) if already_gone(&e) => {}
            other => drop(other?),
        }
        Ok(Outcome::Deleted)
    }
}

// ---------------------------------------------------------------- the alias record

/// `https.domain` → the load balancer: an alias A record (the load balancer is IPv4-only).
pub struct AliasRecord;

/// (DNS name, canonical hosted zone) of the stack's load balancer.
fn wanted_alias(ctx: &Scope<'_>) -> Option<(String, String)> {
    let dns = ctx.attr(DNS_NAME)?;
    let zone = ctx.attr(CANONICAL_ZONE)?;
    Some((alias_name(&dns), zone))
}

fn alias_of(set: &ResourceRecordSet) -> Option<(String, String)> {
    set.alias_target().map(|a| (alias_name(a.dns_name()), a.hosted_zone_id().to_string()))
}

fn alias_set(name: &str, dns: &str, zone: &str) -> Result<ResourceRecordSet, StackError> {
    let target = AliasTarget::builder()
        .dns_name(dns)
        .hosted_zone_id(zone)
        .evaluate_target_health(false)
        .build()
        .map_err(|e| build_error(name, e))?;
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .alias_target(target)
        .build()
        .map_err(|e| build_error(name, e))
}

/// This stack's alias record at the name (and zone) the config asks for, none, or a refusal
/// when a record someone else wrote is there.
async fn alias_at_wanted_name(ctx: &Scope<'_>) -> Result<Option<RecordLive>, StackError> {
    let Some(domain) = requested_domain(ctx) else { return Ok(None) };
    let name = fqdn(&domain);
    let zone = zone(ctx, &domain).await?;
    let sets = record_sets(ctx, &zone.id, &name).await?;
    let not_ours = |set: &ResourceRecordSet| {
        ctx.not_ours(
            format!("route53:record {name} {}", set.r#type().as_str()),
            format!("it points to {}, not this stack's load balancer", shown(set)),
        )
    };
    // A CNAME (or a routing-policy record) of the name would answer instead of ours.
    if let Some(set) = sets.iter().find(|s| s.r#type() == &RrType::Cname || s.set_identifier().is_some()) {
        return Err(not_ours(set));
    }
    if let Some(set) = sets.iter().find(|s| s.r#type() == &RrType::Aaaa) {
        if alias_of(set).is_none() || alias_of(set) != wanted_alias(ctx) {
            return Err(not_ours(set));
        }
    }
    match simple(&sets, &RrType::A) {
        None => Ok(None),
        Some(set) if alias_of(set).is_some() && alias_of(set) == wanted_alias(ctx) => {
            Ok(Some(RecordLive { zone: zone.id, set: set.clone(), ours: true }))
        }
        Some(set) => Err(not_ours(set)),
    }
}

#[async_trait]
impl Managed for AliasRecord {
    type Live = RecordLive;
    type Field = RecordField;

    fn sweep(&self) -> Sweep {
        Sweep::Unlisted("a record carries no tag and its domain is in the config: the HTTPS tests check the zone")
    }

    fn permissions(&self) -> Vec<Permission> {
        let change = global_arn("route53", false, "change/*");
        let mut permissions = record_permissions();
        // Waits until the change reached every name server.
        permissions.push(Permission::create("route53:GetChange").on(change.clone()));
        permissions.push(Permission::update("route53:GetChange").on(change));
        permissions
    }

    /// Alias queries to a load balancer are free.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        ALIAS_RECORD
    }

    fn needs(&self) -> Vec<Dep> {
        // The name resolves once the load balancer answers HTTPS on it.
        vec![LOAD_BALANCER.into(), LISTENER_HTTPS.into()]
    }

    /// The domain it is for, recorded with the certificate when the config no longer names it.
    fn reads(&self) -> Vec<Dep> {
        vec![Dep::IfPresent(CERTIFICATE)]
    }

    /// Not an AWS constraint: the domain must never point at a load balancer that is gone (its
    /// DNS name would dangle).
    fn gone_before(&self) -> Vec<Edge> {
        vec![before(LOAD_BALANCER, "the domain's alias record points at it until it is removed")]
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle { found_first: true, replaced_by_up: true, ..Lifecycle::default() }
    }

    /// Deleting the alias record takes the name off the internet: the plan says so.
    fn removal_note(&self, found: &Inspection) -> Option<String> {
        let name = found.id.as_deref()?.trim_end_matches('.');
        Some(format!(
            "no longer in the config: {name} stops resolving once it is deleted (clients must use the load \
             balancer's name); keep https.domain = \"{name}\" (beside https.certificate_arn, for a certificate \
             that covers it) to keep it"
        ))
    }

    /// The one effect a user sees: the old name stops resolving.
    fn replacement_note(&self, found: &Inspection) -> Option<String> {
        let why: Vec<String> = found.changes.iter().filter(|c| c.replace).map(ToString::to_string).collect();
        let name = found.id.as_deref()?.trim_end_matches('.');
        let renamed = found.changes.iter().any(|c| c.replace && c.field == RecordField::Domain.label());
        let effect = if renamed {
            format!("{name}'s record is deleted: {name} stops resolving (clients must use the new name)")
        } else {
            format!("the old zone's is deleted: {name} resolves through the zone its domain is delegated to")
        };
        (!why.is_empty()).then(|| {
            format!(
                "replace the alias record {name} ({}): a record's name and zone cannot change; the new one is \
                 written once HTTPS serves the certificate, then {effect}",
                why.join("; ")
            )
        })
    }

    fn unfinished(&self, ctx: &Scope<'_>) -> Option<String> {
        let old = ctx.attr(ALIAS_REPLACES)?;
        Some(format!(
            "an interrupted `up` began replacing the alias record {old}: the next `up` writes the new one, then \
             deletes {old}'s"
        ))
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<RecordLive>, StackError> {
        let key = self.key();
        let recorded_target = ctx.attr(ALIAS_TARGET).zip(ctx.attr(ALIAS_TARGET_ZONE));
        if let (Some(name), Some(zone)) = (ctx.id(key), ctx.attr(ALIAS_ZONE)) {
            let sets = record_sets(ctx, &zone, &fqdn(&name)).await?;
            if let Some(set) = simple(&sets, &RrType::A) {
                let have = alias_of(set);
                let ours = have.is_some() && (have == recorded_target || have == wanted_alias(ctx));
                // A new domain or zone: a record someone else has there is refused before any change.
                let wanted = requested_domain(ctx).zip(ctx.config.https.as_ref().map(|h| h.hosted_zone_id.clone()));
                if wanted.is_some_and(|(d, z)| fqdn(&d) != fqdn(&name) || z.is_some_and(|z| z != zone)) {
                    alias_at_wanted_name(ctx).await?;
                }
                return Ok(Some(RecordLive { zone, set: set.clone(), ours }));
            }
        }
        alias_at_wanted_name(ctx).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &RecordLive) -> Record {
        let mut record = Record::id(fqdn(live.set.name())).with(ALIAS_ZONE, &live.zone).with(ALIAS_TYPE, "A");
        if let (true, Some((dns, zone))) = (live.ours, alias_of(&live.set)) {
            record = record.with(ALIAS_TARGET, dns).with(ALIAS_TARGET_ZONE, zone);
        }
        record
    }

    fn diff(&self, ctx: &Scope<'_>, live: &RecordLive) -> Result<Vec<Changed<RecordField>>, StackError> {
        let dns = ctx.need_attr(DNS_NAME)?;
        let zone = ctx.need_attr(CANONICAL_ZONE)?;
        let mut diff = Diff::new();
        moved(ctx, &mut diff, live);
        if let Some(domain) = ctx.config.https.as_ref().and_then(|h| h.domain.as_deref()) {
            diff.replace(RecordField::Domain, &fqdn(live.set.name()), &fqdn(domain));
        }
        let target = format!("an alias to {} (zone {zone})", alias_name(&dns));
        diff.field(RecordField::AliasTarget, &shown(&live.set), &target);
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<RecordLive, StackError> {
        let key = self.key();
        let domain = requested_domain(ctx)
            .ok_or_else(|| StackError::MissingDependency { needed: "https.domain".into(), by: key.to_string() })?;
        let dns = ctx.need_attr(DNS_NAME)?;
        let target_zone = ctx.need_attr(CANONICAL_ZONE)?;
        let zone = zone(ctx, &domain).await?;
        let name = fqdn(&domain);
        let set = alias_set(&name, &fqdn(&dns), &target_zone)?;
        // CREATE, not UPSERT: a record someone wrote since the check is never overwritten.
        let change_id = change(ctx, line, &zone.id, ChangeAction::Create, set.clone()).await?;
        let live = RecordLive { zone: zone.id, set, ours: true };
        ctx.record(&self.record(ctx, &live)).await?;
        in_sync(ctx, line, &change_id, &name).await?;
        Ok(live)
    }

    /// The record for the new domain (or zone) written beside the old one, which is recorded as
    /// replaced before; the old one goes in `finish_up`, after the listener serves the new
    /// certificate.
    async fn replace(&self, ctx: &Scope<'_>, line: &Line, live: RecordLive) -> Result<RecordLive, StackError> {
        let old = (fqdn(live.set.name()), live.zone.clone());
        let recorded = ctx.attr(ALIAS_REPLACES).zip(ctx.attr(ALIAS_REPLACES_ZONE));
        if recorded.as_ref().is_some_and(|r| *r != old) {
            self.finish_up(ctx).await?;
        }
        if recorded.as_ref() != Some(&old) {
            let target = live.ours.then(|| alias_of(&live.set)).flatten();
            ctx.set_attrs(&[
                (ALIAS_REPLACES, Some(old.0)),
                (ALIAS_REPLACES_ZONE, Some(old.1)),
                (ALIAS_REPLACES_TARGET, target.as_ref().map(|t| t.0.clone())),
                (ALIAS_REPLACES_TARGET_ZONE, target.map(|t| t.1)),
            ])
            .await?;
        }
        // Written by a run killed before it recorded it: taken back.
        match alias_at_wanted_name(ctx).await? {
            Some(live) => Ok(live),
            None => self.create(ctx, line).await,
        }
    }

    /// After a replacement: the old name's record is deleted (it stops resolving), if it still
    /// points where fargate-stack pointed it.
    async fn finish_up(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        let Some((old, zone)) = ctx.attr(ALIAS_REPLACES).zip(ctx.attr(ALIAS_REPLACES_ZONE)) else {
            return Ok(());
        };
        let current = ctx.id(ALIAS_RECORD).zip(ctx.attr(ALIAS_ZONE));
        if current.as_ref() != Some(&(old.clone(), zone.clone())) {
            let written = ctx.attr(ALIAS_REPLACES_TARGET).zip(ctx.attr(ALIAS_REPLACES_TARGET_ZONE));
            let sets = record_sets(ctx, &zone, &old).await?;
            match simple(&sets, &RrType::A) {
                Some(set) if written.is_some() && alias_of(set) == written => {
                    match change(ctx, &Line::hidden(), &zone, ChangeAction::Delete, set.clone()).await {
                        Err(e) if already_gone(&e) => {}
                        other => drop(other?),
                    }
                    let new = current.map(|c| c.0).unwrap_or_default();
                    ctx.note(format!(
                        "DNS record {old} deleted: {old} no longer resolves; {new} points to the load balancer"
                    ));
                }
                Some(set) => ctx.warn(format!(
                    "left DNS record {old} alone: it now points to {}, not what fargate-stack wrote",
                    shown(set)
                )),
                None => {}
            }
        }
        ctx.set_attrs(&[
            (ALIAS_REPLACES, None),
            (ALIAS_REPLACES_ZONE, None),
            (ALIAS_REPLACES_TARGET, None),
            (ALIAS_REPLACES_TARGET_ZONE, None),
        ])
        .await?;
        Ok(())
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &RecordLive,
        _changes: &[Changed<RecordField>],
    ) -> Result<Option<RecordLive>, StackError> {
        let dns = ctx.need_attr(DNS_NAME)?;
        let target_zone = ctx.need_attr(CANONICAL_ZONE)?;
        let name = fqdn(live.set.name());
        let set = alias_set(&name, &fqdn(&dns), &target_zone)?;
        let change_id = change(ctx, line, &live.zone, ChangeAction::Upsert, set.clone()).await?;
        let live = RecordLive { zone: live.zone.clone(), set, ours: true };
        ctx.record(&self.record(ctx, &live)).await?;
        in_sync(ctx, line, &change_id, &name).await?;
        Ok(Some(live))
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: RecordLive) -> Result<Outcome, StackError> {
        let name = fqdn(live.set.name());
        // A replacement that did not finish: the old name's record goes too.
        self.finish_up(ctx).await?;
        if !live.ours {
            ctx.warn(format!(
                "left DNS record {name} alone: it now points to {}, not what fargate-stack wrote",
                shown(&live.set)
            ));
            return Ok(Outcome::LeftAlone);
        }
        match change(ctx, line, &live.zone, ChangeAction::Delete, live.set.clone()).await {
            Err(e) if already_gone(&e) => {}
            other => drop(other?),
        }
        Ok(Outcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_as_route53_lists_them() {
        assert_eq!(fqdn("API.Example.com"), "api.example.com.");
        assert_eq!(fqdn("api.example.com."), "api.example.com.");
        assert_eq!(fqdn("\\052.example.com."), "*.example.com.");
        assert_eq!(
            alias_name("dualstack.app-alb-1.us-east-1.elb.amazonaws.com"),
            "app-alb-1.us-east-1.elb.amazonaws.com."
        );
        assert!(within("api.example.com.", "example.com."));
        assert!(within("example.com.", "example.com."));
        assert!(!within("api.badexample.com.", "example.com."), "a suffix of labels, not of characters");
        assert_eq!(zone_id("/hostedzone/Z123"), "Z123");
    }

    #[test]
    fn a_record_set_shows_what_it_holds() {
        let cname = validation_set("_a.api.example.com.", "_b.acm-validations.aws.");
        assert_eq!(values(&cname), ["_b.acm-validations.aws."]);
        let alias = alias_set("api.example.com.", "app-alb-1.us-east-1.elb.amazonaws.com.", "Z35SXDOTRQ7X7K").unwrap();
        assert_eq!(shown(&alias), "an alias to app-alb-1.us-east-1.elb.amazonaws.com. (zone Z35SXDOTRQ7X7K)");
        assert_eq!(alias_of(&alias), Some(("app-alb-1.us-east-1.elb.amazonaws.com.".into(), "Z35SXDOTRQ7X7K".into())));
        assert!(simple(std::slice::from_ref(&cname), &RrType::A).is_none());
        assert!(simple(&[cname], &RrType::Cname).is_some());
    }
}
