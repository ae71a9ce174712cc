//! The ACM certificate requested for `https.domain` (DNS validation), the wait until ACM issues it,
//! and what `status` says about the stack's certificate (requested or given by ARN).

use async_trait::async_trait;
use aws_sdk_acm::types::{CertificateDetail, CertificateStatus, ValidationMethod};
use serde::Serialize;

use crate::context::Ctx;
use crate::error::{AwsContext, StackError};
use crate::model::{after, Change, Diff, Edge, Key, Managed, Outcome, Record, Wait};
use crate::progress::Line;
use crate::resources::acm::{describe, requested_domain, validation_record};
use crate::wait::{self, budget, Poll};

/// `status` warns when the certificate expires within this many days (ACM renews DNS-validated
/// certificates from 60 days before; still unrenewed at 30 means renewal is failing).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// RequestCertificate's idempotency token: the same for a stack, domain and region, so a retried
/// or resumed request within AWS's hour gets the same certificate. 32 hex characters (the API's
/// limit, `\w+`).
pub fn idempotency_token(stack: &str, domain: &str, region: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("fargate-stack\n{stack}\n{domain}\n{region}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

async fn owned(ctx: &Ctx, arn: &str) -> Result<Result<(), String>, StackError> {
    let out = ctx.aws.acm.list_tags_for_certificate().certificate_arn(arn).send().await.ctx("list the tags of", arn)?;
    Ok(ctx.owns(Key::Certificate, out.tags().iter().map(|t| (t.key(), t.value().unwrap_or_default()))))
}

fn status_of(detail: &CertificateDetail) -> &str {
    detail.status().map_or("unknown", |s| s.as_str())
}

// ---------------------------------------------------------------- the requested certificate

pub struct Certificate;

#[async_trait]
impl Managed for Certificate {
    type Live = CertificateDetail;

    fn key(&self) -> Key {
        Key::Certificate
    }

    fn needs(&self) -> Vec<Key> {
        // Requested at once: validation takes minutes, in parallel with the network.
        vec![]
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![after(Key::ListenerHttps, "DeleteCertificate fails with ResourceInUseException while a listener uses it")]
    }

    /// The recorded certificate, else one for the domain carrying this stack's tags (a request
    /// whose answer a killed run never read).
    async fn find(&self, ctx: &Ctx) -> Result<Option<CertificateDetail>, StackError> {
        if let Some(arn) = ctx.id(Key::Certificate) {
            if let Some(detail) = describe(ctx, &arn).await? {
                owned(ctx, &arn).await?.map_err(|why| ctx.not_ours(format!("acm:certificate {arn}"), why))?;
                return Ok(Some(detail));
            }
        }
        // Without a domain there is nothing to look for (a config that never asked for one).
        let Some(domain) = requested_domain(ctx) else { return Ok(None) };
        let mut ours: Vec<CertificateDetail> = vec![];
        for arn in crate::resources::acm::certificates_for(ctx, &domain).await? {
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

    fn record(&self, _ctx: &Ctx, live: &CertificateDetail) -> Record {
        let mut record = Record::id(live.certificate_arn().unwrap_or_default())
            .with("domain", live.domain_name().unwrap_or_default());
        if let Some((name, value)) = validation_record(live) {
            record = record.with("validation_name", name).with("validation_value", value);
        }
        record
    }

    fn diff(&self, ctx: &Ctx, live: &CertificateDetail) -> Result<Vec<Change>, StackError> {
        let mut diff = Diff::new();
        if let Some(wanted) = ctx.config.https.as_ref().and_then(|h| h.domain.as_deref()) {
            // A certificate's names are fixed when it is requested.
            diff.replace("https.domain", live.domain_name().unwrap_or_default(), wanted);
        }
        Ok(diff.into_changes())
    }

    fn pending(&self, _ctx: &Ctx, live: &CertificateDetail) -> Option<String> {
        match live.status() {
            Some(CertificateStatus::Issued) => None,
            Some(CertificateStatus::PendingValidation) => Some("pending validation".into()),
            _ => Some(status_of(live).to_lowercase()),
        }
    }

    async fn create(&self, ctx: &Ctx, line: &Line) -> Result<CertificateDetail, StackError> {
        let domain = requested_domain(ctx)
            .ok_or_else(|| StackError::MissingDependency { needed: "https.domain".into(), by: "certificate".into() })?;
        let arn = request(ctx, &domain, &idempotency_token(ctx.stack(), &domain, &ctx.region)).await?;
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
    async fn ready(&self, ctx: &Ctx, line: &Line, live: &CertificateDetail) -> Result<(), StackError> {
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
        ctx.set_attr(Key::Certificate, "validation_name", &name).await?;
        ctx.set_attr(Key::Certificate, "validation_value", &value).await?;
        Ok(())
    }

    async fn destroy(&self, ctx: &Ctx, line: &Line, live: CertificateDetail) -> Result<Outcome, StackError> {
        let arn = live.certificate_arn().unwrap_or_default();
        let lb_name = ctx.attr(Key::LoadBalancer, "name").unwrap_or_else(|| ctx.name("alb"));
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

async fn request(ctx: &Ctx, domain: &str, token: &str) -> Result<String, StackError> {
    let tags = ctx.sdk_tags::<aws_sdk_acm::types::Tag>(Key::Certificate, &ctx.name("certificate"));
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
async fn visible(ctx: &Ctx, line: &Line, arn: &str) -> Result<Option<CertificateDetail>, StackError> {
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
    fn key(&self) -> Key {
        Key::CertificateIssued
    }

    fn needs(&self) -> Vec<Key> {
        vec![Key::ValidationRecord]
    }

    async fn wait(&self, ctx: &Ctx, line: &Line) -> Result<(), StackError> {
        let arn = ctx.need(Key::Certificate, self.key())?;
        let domain = ctx.attr(Key::Certificate, "domain").unwrap_or_default();
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

// ---------------------------------------------------------------- what status says

/// The stack's certificate as `status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateSummary {
    pub arn: String,
    /// `requested` (by fargate-stack, for `https.domain`) or `given` (`https.certificate_arn`).
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal: Option<String>,
    /// The stack's HTTPS listener serves it.
    pub in_use_by_listener: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Something `up` cannot fix by itself: the stack needs attention.
    #[serde(skip)]
    pub problem: bool,
}

/// Warnings about a certificate, and whether one of them is a problem: not issued, expiring
/// soon, not served by the stack's listener.
pub fn assess(status: &str, days_left: Option<i64>, in_use: bool, listener_exists: bool) -> (Vec<String>, bool) {
    let mut warnings = vec![];
    let mut problem = false;
    match status {
        "ISSUED" => {}
        "PENDING_VALIDATION" => warnings.push("not issued yet: ACM is validating the domain".into()),
        other => {
            warnings.push(format!("{other}: a listener cannot use it"));
            problem = true;
        }
    }
    if let Some(days) = days_left {
        if days < 0 {
            warnings.push(format!("expired {} days ago", -days));
            problem = true;
        } else if days < EXPIRY_WARNING_DAYS {
            warnings.push(format!("expires in {days} days"));
        }
    }
    if listener_exists && !in_use && status == "ISSUED" {
        warnings.push("the stack's HTTPS listener does not use it".into());
        problem = true;
    }
    (warnings, problem)
}

/// The certificate the stack's HTTPS listener should serve, checked live; None without [https].
pub async fn summary(ctx: &Ctx) -> Result<Option<CertificateSummary>, StackError> {
    let given = ctx.config.https.as_ref().and_then(|h| h.certificate_arn.clone());
    let (arn, source) = match (ctx.id(Key::Certificate), given) {
        (_, Some(arn)) => (arn, "given"),
        (Some(arn), None) => (arn, "requested"),
        (None, None) => return Ok(None),
    };
    let Some(detail) = describe(ctx, &arn).await? else {
        return Ok(Some(CertificateSummary {
            arn,
            source,
            domain: None,
            status: "NOT_FOUND".into(),
            not_after: None,
            days_left: None,
            renewal: None,
            in_use_by_listener: false,
            warnings: vec!["ACM does not know this certificate".into()],
            problem: true,
        }));
    };
    let now = chrono::Utc::now().timestamp();
    let days_left = detail.not_after().map(|t| (t.secs() - now).div_euclid(86_400));
    let not_after = detail
        .not_after()
        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    // AWS lists the load balancers using it (moto: the listeners).
    let users: Vec<Option<String>> = vec![ctx.id(Key::LoadBalancer), ctx.id(Key::ListenerHttps)];
    let in_use = detail.in_use_by().iter().any(|u| users.iter().flatten().any(|ours| ours == u));
    let listener_exists = ctx.id(Key::ListenerHttps).is_some();
    let status = status_of(&detail).to_string();
    let (warnings, problem) = assess(&status, days_left, in_use, listener_exists);
    Ok(Some(CertificateSummary {
        arn,
        source,
        domain: detail.domain_name().map(str::to_string),
        status,
        not_after,
        days_left,
        renewal: detail.renewal_summary().map(|r| r.renewal_status().as_str().to_string()),
        in_use_by_listener: in_use,
        warnings,
        problem,
    }))
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

    #[test]
    fn assessment_warns_on_expiry_and_flags_what_up_cannot_fix() {
        assert_eq!(assess("ISSUED", Some(300), true, true), (vec![], false));
        let (w, problem) = assess("ISSUED", Some(12), true, true);
        assert_eq!(w, ["expires in 12 days"]);
        assert!(!problem, "a warning, not a failure");
        assert!(assess("ISSUED", Some(29), true, true).0.len() == 1);
        assert!(assess("ISSUED", Some(30), true, true).0.is_empty());
        assert!(assess("EXPIRED", Some(-3), true, true).1);
        assert!(assess("ISSUED", Some(200), false, true).1, "not served by our listener");
        assert!(!assess("ISSUED", Some(200), false, false).1, "no listener yet: nothing to serve it");
        let (w, problem) = assess("PENDING_VALIDATION", None, false, false);
        assert!(!problem && w[0].contains("validating"), "{w:?}");
    }
}
