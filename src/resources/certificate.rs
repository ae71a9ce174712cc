//! The ACM certificate requested for `https.domain` (DNS validation), and the wait until ACM
//! issues it.

use async_trait::async_trait;
use aws_sdk_acm::types::{CertificateDetail, CertificateStatus, ValidationMethod};
use futures::future::BoxFuture;

use crate::access::{self, arn, Permission};
use crate::aws::Clients;
use crate::bill::Charge;
use crate::config::Config;
use crate::error::{AwsContext, StackError};
use crate::model::{
    owner_tags, tags::Seen, Attr, Changed, Dep, Diff, Field, Inspection, Key, Kind, Lifecycle, Managed, Nodes, Outcome,
    Record, Scope, Shape, Sighting, Sweep, Wait,
};
use crate::progress::Line;
use crate::resources::acm::{certificates_for, describe, every_certificate, validation_record};
use crate::resources::load_balancer::{load_balancer_name, LOAD_BALANCER, LOAD_BALANCER_NAME};
use crate::resources::tags::TagPairs;
use crate::wait::{self, budget, Poll};

pub const CERTIFICATE: Key = Key::new("certificate", Kind::new("acm:certificate"));
/// Wait: ACM issued the certificate (minutes on AWS).
pub const CERTIFICATE_ISSUED: Key = Key::new("certificate-issued", Kind::WAIT);
pub const DOMAIN: Attr = Attr::new(CERTIFICATE, "domain");
/// The validation CNAME ACM asks for, recorded once ACM shows it.
pub const VALIDATION_NAME: Attr = Attr::new(CERTIFICATE, "validation_name");
pub const VALIDATION_VALUE: Attr = Attr::new(CERTIFICATE, "validation_value");
/// While `up` replaces the certificate (a new `https.domain`): the old one's ARN and domain, set
/// before the new one is requested, cleared once the old one is deleted ([`Certificate::finish_up`]).
pub const REPLACES: Attr = Attr::new(CERTIFICATE, "replaces");
const REPLACES_DOMAIN: Attr = Attr::new(CERTIFICATE, "replaces_domain");

/// A certificate is requested for `https.domain` (unless `https.certificate_arn` gives one), or one
/// is recorded that must be deleted.
pub fn requested(shape: &Shape) -> bool {
    shape.config().https.as_ref().is_some_and(|h| h.domain.is_some() && h.certificate_arn.is_none())
        || shape.holds(CERTIFICATE)
}

/// The certificate requested for `https.domain`, first: validation takes minutes, beside the network.
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    if requested(shape) {
        nodes.managed(Certificate);
    }
}

/// The wait for its issue, whenever a certificate is requested: the HTTPS listener needs it.
pub fn issued(shape: &Shape, nodes: &mut Nodes) {
    if requested(shape) {
        nodes.wait(IssuedWait);
    }
}

/// The domain the stack requests its certificate for: the config's, else (a config that no
/// longer asks for it) the one recorded with the certificate.
pub fn requested_domain(ctx: &Scope<'_>) -> Option<String> {
    ctx.config.https.as_ref().and_then(|h| h.domain.clone()).or_else(|| ctx.attr(DOMAIN))
}

/// Every certificate of the account and region (any status), with its tags.
fn sweep_certificates(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let mut sightings = vec![];
        for arn in every_certificate(c).await? {
            let tags = c.acm.list_tags_for_certificate().certificate_arn(&arn).send().await;
            let tags = crate::error::found(tags.ctx("list the tags of", &arn))?;
            let tags = tags.map(|t| t.tags().to_vec()).unwrap_or_default();
            sightings.push(Sighting::new(CERTIFICATE.kind(), &arn).owned(owner_tags(tags.pairs())));
        }
        Ok(sightings)
    })
}

/// RequestCertificate's idempotency token: the same for a stack, domain and region, so a retried
/// or resumed request within AWS's hour gets the same certificate. 32 hex characters (the API's
/// limit, `\w+`).
pub fn idempotency_token(stack: &str, domain: &str, region: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("fargate-stack\n{stack}\n{domain}\n{region}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

async fn owned(ctx: &Scope<'_>, arn: &str) -> Result<Result<(), String>, StackError> {
    let out = ctx.aws.acm.list_tags_for_certificate().certificate_arn(arn).send().await.ctx("list the tags of", arn)?;
    ctx.run::<Seen>().note(arn, out.tags().pairs());
    Ok(ctx.owns(CERTIFICATE, out.tags().pairs()))
}

fn status_of(detail: &CertificateDetail) -> &str {
    detail.status().map_or("unknown", |s| s.as_str())
}

// ---------------------------------------------------------------- the requested certificate

pub struct Certificate;

/// What the certificate can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum CertificateField {
    Domain,
}

impl Field for CertificateField {
    fn label(&self) -> String {
        "https.domain".into()
    }
}

#[async_trait]
impl Managed for Certificate {
    type Live = CertificateDetail;
    type Field = CertificateField;

    async fn tags(
        &self,
        ctx: &Scope<'_>,
        live: &CertificateDetail,
    ) -> Result<Option<Vec<(String, String)>>, StackError> {
        let arn = live.certificate_arn().unwrap_or_default();
        if let Some(seen) = ctx.run::<Seen>().get(arn) {
            return Ok(Some(seen));
        }
        let out = ctx.aws.acm.list_tags_for_certificate().certificate_arn(arn).send().await;
        let tags = crate::error::found(out.ctx("list the tags of", arn))?;
        Ok(tags.map(|t| t.tags().pairs().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &CertificateDetail,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        let arn = live.certificate_arn().unwrap_or_default();
        if !put.is_empty() {
            let tags = put
                .iter()
                .map(|(k, v)| aws_sdk_acm::types::Tag::builder().key(k).value(v).build().expect("key is set"));
            let call = ctx.aws.acm.add_tags_to_certificate().certificate_arn(arn).set_tags(Some(tags.collect()));
            call.send().await.ctx("tag", arn)?;
        }
        if !remove.is_empty() {
            let tags = remove.iter().map(|k| aws_sdk_acm::types::Tag::builder().key(k).build().expect("key is set"));
            let call = ctx.aws.acm.remove_tags_from_certificate().certificate_arn(arn).set_tags(Some(tags.collect()));
            call.send().await.ctx("untag", arn)?;
        }
        Ok(())
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_certificates)
    }

    fn permissions(&self) -> Vec<Permission> {
        let certificate = arn("acm", "certificate/*");
        vec![
            Permission::find("acm:DescribeCertificate").on(certificate.clone()),
            Permission::find("acm:ListTagsForCertificate").on(certificate.clone()),
            Permission::find("acm:ListCertificates"),
            Permission::create("acm:RequestCertificate").tagging(),
            access::tags_with("acm:AddTagsToCertificate", certificate.clone()),
            access::retagging("acm:AddTagsToCertificate", certificate.clone()),
            access::retagging("acm:RemoveTagsFromCertificate", certificate.clone()),
            Permission::create("acm:DescribeCertificate").on(certificate.clone()),
            Permission::delete("acm:DeleteCertificate").on(certificate).tagged(),
        ]
    }

    /// A public ACM certificate costs nothing.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        CERTIFICATE
    }

    fn needs(&self) -> Vec<Dep> {
        // Requested at once: validation takes minutes, in parallel with the network.
        vec![]
    }

    /// Which load balancer may use it (in its `destroy`).
    fn reads(&self) -> Vec<Dep> {
        vec![LOAD_BALANCER.into()]
    }

    // The HTTPS listener, which uses it, says it goes first.

    /// Its validation record is found through it. It holds no data: `up` replaces it itself, the
    /// new one issued and served before the old one goes.
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle { found_first: true, replaced_by_up: true, ..Lifecycle::default() }
    }

    fn replacement_note(&self, found: &Inspection) -> Option<String> {
        let why: Vec<String> = found.changes.iter().filter(|c| c.replace).map(ToString::to_string).collect();
        (!why.is_empty()).then(|| {
            format!(
                "replace the certificate ({}): a certificate's names are fixed; a new one is requested and \
                 validated, the HTTPS listener moves to it once issued, then the old one and its validation record \
                 are deleted: HTTPS is served throughout",
                why.join("; ")
            )
        })
    }

    fn unfinished(&self, ctx: &Scope<'_>) -> Option<String> {
        let old = ctx.attr(REPLACES)?;
        let domain = ctx.attr(REPLACES_DOMAIN).unwrap_or_default();
        Some(if ctx.id(CERTIFICATE).as_deref() == Some(old.as_str()) {
            format!(
                "an interrupted `up` began replacing certificate {old} ({domain}) and requested no replacement yet: \
                 the next `up` requests it, moves the HTTPS listener to it once issued, then deletes {old}"
            )
        } else {
            format!(
                "an interrupted `up` replaced certificate {old} ({domain}) and did not finish: the next `up` moves \
                 the HTTPS listener to the new one where it is not yet, then deletes {old}"
            )
        })
    }

    /// The recorded certificate, else one for the domain carrying this stack's tags (a request
    /// whose answer a killed run never read).
    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<CertificateDetail>, StackError> {
        if let Some(arn) = ctx.id(CERTIFICATE) {
            if let Some(detail) = describe(ctx, &arn).await? {
                owned(ctx, &arn).await?.map_err(|why| ctx.not_ours(format!("acm:certificate {arn}"), why))?;
                return Ok(Some(detail));
            }
        }
        // Without a domain there is nothing to look for (a config that never asked for one).
        let Some(domain) = requested_domain(ctx) else { return Ok(None) };
        let mut ours: Vec<CertificateDetail> = vec![];
        for arn in certificates_for(ctx, &domain).await? {
            match owned(ctx, &arn).await? {
                Ok(()) => ours.extend(describe(ctx, &arn).await?),
                Err(why) if why.starts_with("tagged") => {
                    ctx.warn(format!("ignored certificate {arn} for {domain} while looking for this stack's: {why}"))
                }
                // Untagged: the user's own certificate for the domain, not a candidate.
                Err(_) => {}
            }
        }
        // An issued one first, then one on its way.
        let rank = |d: &CertificateDetail| match d.status() {
            Some(CertificateStatus::Issued) => 0,
            Some(CertificateStatus::PendingValidation) => 1,
            _ => 2,
        };
        ours.sort_by_key(rank);
        let mut ours = ours.into_iter();
        let chosen = ours.next();
        for extra in ours {
            ctx.warn(format!(
                "certificate {} also carries this stack's tags; using {}",
                extra.certificate_arn().unwrap_or_default(),
                chosen.as_ref().and_then(|c| c.certificate_arn()).unwrap_or_default()
            ));
        }
        Ok(chosen)
    }

    fn record(&self, _ctx: &Scope<'_>, live: &CertificateDetail) -> Record {
        let mut record =
            Record::id(live.certificate_arn().unwrap_or_default()).with(DOMAIN, live.domain_name().unwrap_or_default());
        if let Some((name, value)) = validation_record(live) {
            record = record.with(VALIDATION_NAME, name).with(VALIDATION_VALUE, value);
        }
        record
    }

    fn diff(&self, ctx: &Scope<'_>, live: &CertificateDetail) -> Result<Vec<Changed<CertificateField>>, StackError> {
        let mut diff = Diff::new();
        if let Some(wanted) = ctx.config.https.as_ref().and_then(|h| h.domain.as_deref()) {
            // A certificate's names are fixed when it is requested.
            diff.replace(CertificateField::Domain, live.domain_name().unwrap_or_default(), wanted);
        }
        Ok(diff.into_changes())
    }

    /// A new certificate for the new domain, recorded as replacing the old one before it is
    /// requested (the request's token makes a resumed run get the same one); the old one goes in
    /// [`Certificate::finish_up`], once the listener serves the new one.
    async fn replace(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: CertificateDetail,
    ) -> Result<CertificateDetail, StackError> {
        let old = live.certificate_arn().unwrap_or_default().to_string();
        // One replacement at a time: an earlier one that did not finish is finished first.
        if ctx.attr(REPLACES).is_some_and(|r| r != old) {
            self.finish_up(ctx).await?;
        }
        let domain = live.domain_name().unwrap_or_default().to_string();
        ctx.set_attrs(&[
            (REPLACES, Some(old)),
            (REPLACES_DOMAIN, Some(domain)),
            (VALIDATION_NAME, None),
            (VALIDATION_VALUE, None),
        ])
        .await?;
        self.create(ctx, line).await
    }

    /// After a replacement: the old certificate is deleted once the listener no longer uses it
    /// (ACM refuses while it does, and for a few seconds after).
    async fn finish_up(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        let Some(old) = ctx.attr(REPLACES) else { return Ok(()) };
        // Else the run stopped before it requested the replacement: nothing to finish.
        if ctx.id(CERTIFICATE).as_deref() != Some(old.as_str()) {
            if let Some(detail) = describe(ctx, &old).await? {
                self.destroy(ctx, &Line::hidden(), detail).await?;
            }
            let domain = ctx.attr(DOMAIN).unwrap_or_default();
            ctx.note(format!("certificate {old} deleted: replaced by the one for {domain}, which HTTPS serves"));
        }
        ctx.set_attrs(&[(REPLACES, None), (REPLACES_DOMAIN, None)]).await?;
        Ok(())
    }

    fn pending(&self, _ctx: &Scope<'_>, live: &CertificateDetail) -> Option<String> {
        match live.status() {
            Some(CertificateStatus::Issued) => None,
            Some(CertificateStatus::PendingValidation) => Some("pending validation".into()),
            _ => Some(status_of(live).to_lowercase()),
        }
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<CertificateDetail, StackError> {
        let domain = requested_domain(ctx)
            .ok_or_else(|| StackError::MissingDependency { needed: "https.domain".into(), by: "certificate".into() })?;
        let arn = request(ctx, &domain, &idempotency_token(ctx.stack(), &domain, ctx.region)).await?;
        match visible(ctx, line, &arn).await? {
            Some(detail) => Ok(detail),
            // The token answered with a certificate that no longer exists (deleted within the
            // hour the token lasts): ask once more under a token of this moment.
            None => {
                let fresh = idempotency_token(ctx.stack(), &domain, &format!("{}@{}", ctx.region, chrono::Utc::now()));
                let arn = request(ctx, &domain, &fresh).await?;
                visible(ctx, line, &arn).await?.ok_or_else(|| StackError::Failed {
                    resource: arn,
                    message: "requested, but ACM does not know it".into(),
                })
            }
        }
    }

    /// Usable once ACM shows the validation record (a few seconds after the request), which the
    /// next step writes into the zone.
    async fn ready(&self, ctx: &Scope<'_>, line: &Line, live: &CertificateDetail) -> Result<(), StackError> {
        if validation_record(live).is_some() || live.status() == Some(&CertificateStatus::Issued) {
            return Ok(());
        }
        let arn = live.certificate_arn().unwrap_or_default();
        let (name, value) = wait::until(line, arn, "show its DNS validation record", budget::PROPAGATION, || async {
            let detail = describe(ctx, arn).await?.ok_or_else(|| StackError::Failed {
                resource: arn.to_string(),
                message: "disappeared while waiting for its validation record".into(),
            })?;
            Ok(match validation_record(&detail) {
                Some(record) => Poll::Ready(record),
                None => Poll::Pending("waiting for ACM's validation record".into()),
            })
        })
        .await?;
        ctx.set_attr(VALIDATION_NAME, &name).await?;
        ctx.set_attr(VALIDATION_VALUE, &value).await?;
        Ok(())
    }

    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: CertificateDetail) -> Result<Outcome, StackError> {
        let arn = live.certificate_arn().unwrap_or_default();
        // A replacement that did not finish: the certificate it replaces goes too (before its
        // validation record, which is kept while a certificate validates through it).
        if let Some(old) = ctx.attr(REPLACES).filter(|old| old.as_str() != arn) {
            if let Some(detail) = describe(ctx, &old).await? {
                self.destroy(ctx, &Line::hidden(), detail).await?;
            }
            ctx.set_attrs(&[(REPLACES, None), (REPLACES_DOMAIN, None)]).await?;
        }
        let lb_name = ctx.attr(LOAD_BALANCER_NAME).unwrap_or_else(|| load_balancer_name(ctx.stack()));
        let ours = format!("/app/{lb_name}/");
        let elsewhere: Vec<&String> = live.in_use_by().iter().filter(|user| !user.contains(&ours)).collect();
        if !elsewhere.is_empty() {
            return Err(StackError::Failed {
                resource: format!("certificate {arn}"),
                message: format!(
                    "is in use by {}, which is not this stack's: remove it from there, then run `down` again",
                    elsewhere.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        // AWS keeps it in use for a few seconds after the listener is gone.
        wait::retry_codes(line, arn, budget::CERTIFICATE_RELEASE, &["ResourceInUseException"], || async {
            crate::error::ignore_not_found(
                ctx.aws
                    .acm
                    .delete_certificate()
                    .certificate_arn(arn)
                    .send()
                    .await
                    .ctx("delete certificate", arn)
                    .map(drop),
            )
        })
        .await?;
        Ok(Outcome::Deleted)
    }
}

async fn request(ctx: &Scope<'_>, domain: &str, token: &str) -> Result<String, StackError> {
    let tags = ctx.sdk_tags::<aws_sdk_acm::types::Tag>(&ctx.name("certificate"));
    let out = ctx
        .aws
        .acm
        .request_certificate()
        .domain_name(domain)
        .validation_method(ValidationMethod::Dns)
        .idempotency_token(token)
        .set_tags(Some(tags))
        .send()
        .await
        .ctx("request a certificate for", domain)?;
    out.certificate_arn().map(str::to_string).ok_or_else(|| StackError::Failed {
        resource: format!("certificate for {domain}"),
        message: "RequestCertificate returned no ARN".into(),
    })
}

/// The certificate, once DescribeCertificate knows it; None if it stays unknown.
async fn visible(ctx: &Scope<'_>, line: &Line, arn: &str) -> Result<Option<CertificateDetail>, StackError> {
    let seen = wait::until(line, arn, "become visible", budget::CERTIFICATE_VISIBLE, || async {
        Ok(match describe(ctx, arn).await? {
            Some(detail) => Poll::Ready(detail),
            None => Poll::Pending("not visible yet".into()),
        })
    })
    .await;
    match seen {
        Ok(detail) => Ok(Some(detail)),
        Err(StackError::Timeout { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- the wait for issue

/// Wait until ACM issues the certificate: once the validation record resolves, usually a few
/// minutes on AWS. Only the HTTPS listener waits for it.
pub struct IssuedWait;

#[async_trait]
impl Wait for IssuedWait {
    fn permissions(&self) -> Vec<Permission> {
        vec![Permission::create("acm:DescribeCertificate").on(arn("acm", "certificate/*"))]
    }
    fn key(&self) -> Key {
        CERTIFICATE_ISSUED
    }

    /// ACM validates through the validation record, which says it comes first.
    fn needs(&self) -> Vec<Dep> {
        vec![]
    }

    fn reads(&self) -> Vec<Dep> {
        vec![CERTIFICATE.into()]
    }

    async fn wait(&self, ctx: &Scope<'_>, line: &Line) -> Result<(), StackError> {
        let arn = ctx.need(CERTIFICATE)?;
        let domain = ctx.attr(DOMAIN).unwrap_or_default();
        wait::until(line, &arn, "be issued", budget::CERTIFICATE_ISSUED, || async {
            let detail = describe(ctx, &arn).await?.ok_or_else(|| StackError::Failed {
                resource: format!("certificate {arn}"),
                message: "disappeared while waiting for it to be issued".into(),
            })?;
            match detail.status() {
                Some(CertificateStatus::Issued) => Ok(Poll::Ready(())),
                Some(CertificateStatus::PendingValidation) | None => {
                    Ok(Poll::Pending(format!("pending validation of {domain}: ACM checks the DNS record")))
                }
                Some(other) => Err(StackError::Failed {
                    resource: format!("certificate {arn}"),
                    message: format!(
                        "is {}{}; a new one is needed: remove [https] and run `up` to delete it, then add it again",
                        other.as_str(),
                        detail.failure_reason().map(|r| format!(" ({})", r.as_str())).unwrap_or_default()
                    ),
                }),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_stable_per_stack_domain_and_region_and_fits_the_api() {
        let t = idempotency_token("app", "api.example.com", "us-east-1");
        assert_eq!(t, idempotency_token("app", "api.example.com", "us-east-1"));
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(t, idempotency_token("app-2", "api.example.com", "us-east-1"));
        assert_ne!(t, idempotency_token("app", "www.example.com", "us-east-1"));
        assert_ne!(t, idempotency_token("app", "api.example.com", "eu-west-1"));
    }
}
