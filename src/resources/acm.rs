//! What the resources that deal with ACM certificates share (the certificate, its validation
//! record, the HTTPS listener): describing a certificate, the certificates of a domain, and the
//! others of the account a validation record serves.

use aws_sdk_acm::types::{CertificateDetail, CertificateStatus, CertificateSummary, CertificateType};

use crate::error::{found, AwsContext, StackError};
use crate::model::Scope;

/// Every status, so that ListCertificates leaves none out.
const ALL_STATUSES: &[CertificateStatus] = &[
    CertificateStatus::PendingValidation,
    CertificateStatus::Issued,
    CertificateStatus::Inactive,
    CertificateStatus::Expired,
    CertificateStatus::ValidationTimedOut,
    CertificateStatus::Revoked,
    CertificateStatus::Failed,
];

pub async fn describe(ctx: &Scope<'_>, arn: &str) -> Result<Option<CertificateDetail>, StackError> {
    let out =
        found(ctx.aws.acm.describe_certificate().certificate_arn(arn).send().await.ctx("describe certificate", arn))?;
    Ok(out.and_then(|o| o.certificate().cloned()))
}

/// The validation CNAME ACM asks for: (name, value), once ACM shows it.
pub fn validation_record(detail: &CertificateDetail) -> Option<(String, String)> {
    let domain = detail.domain_name()?;
    let option = detail.domain_validation_options().iter().find(|o| o.domain_name() == domain)?;
    let record = option.resource_record()?;
    Some((record.name().to_string(), record.value().to_string()))
}

/// The ARN of every certificate of the account and region, whatever its status.
pub async fn every_certificate(c: &crate::aws::Clients) -> Result<Vec<String>, StackError> {
    let mut pages =
        c.acm.list_certificates().set_certificate_statuses(Some(ALL_STATUSES.to_vec())).into_paginator().send();
    let mut arns = vec![];
    while let Some(page) = pages.next().await {
        let page = page.ctx("list", "certificates")?;
        arns.extend(page.certificate_summary_list().iter().filter_map(|c| c.certificate_arn().map(str::to_string)));
    }
    Ok(arns)
}

/// Every page of the certificates in `statuses` (listed for `domain`, which names the error).
async fn summaries(
    ctx: &Scope<'_>,
    statuses: &[CertificateStatus],
    domain: &str,
) -> Result<Vec<CertificateSummary>, StackError> {
    let mut pages =
        ctx.aws.acm.list_certificates().set_certificate_statuses(Some(statuses.to_vec())).into_paginator().send();
    let mut all = vec![];
    while let Some(page) = pages.next().await {
        all.extend(page.ctx("list certificates for", domain)?.certificate_summary_list().iter().cloned());
    }
    Ok(all)
}

/// Certificates of this account and region whose domain is `domain`, by ARN.
pub async fn certificates_for(ctx: &Scope<'_>, domain: &str) -> Result<Vec<String>, StackError> {
    Ok(summaries(ctx, ALL_STATUSES, domain)
        .await?
        .iter()
        .filter(|summary| summary.domain_name() == Some(domain))
        .map(|summary| summary.certificate_arn().unwrap_or_default().to_string())
        .collect())
}

/// Other certificates of this account and region that ACM validates (and renews) with the same
/// CNAME as `domain`'s: those it issues for the domain itself or its wildcard, pending or issued.
pub async fn others_validated_by(ctx: &Scope<'_>, domain: &str, ours: Option<&str>) -> Result<Vec<String>, StackError> {
    let wildcard = format!("*.{domain}");
    let named = |names: &[&str]| names.iter().any(|n| *n == domain || *n == wildcard);
    // Imported certificates are not validated (nor renewed) by ACM.
    let validated = |t: Option<&CertificateType>| t == Some(&CertificateType::AmazonIssued);
    let mut others = vec![];
    let listed = summaries(ctx, &[CertificateStatus::Issued, CertificateStatus::PendingValidation], domain).await?;
    for summary in &listed {
        let arn = summary.certificate_arn().unwrap_or_default();
        if Some(arn) == ours {
            continue;
        }
        let mut names: Vec<&str> = summary.domain_name().into_iter().collect();
        names.extend(summary.subject_alternative_name_summaries().iter().map(String::as_str));
        let more_names = summary.has_additional_subject_alternative_names() == Some(true);
        // The summary decides when it says it all; else the full description does.
        let relies = match (summary.r#type(), more_names) {
            (Some(t), false) => named(&names) && validated(Some(t)),
            _ if !named(&names) && !more_names => false,
            _ => describe(ctx, arn).await?.is_some_and(|d| {
                let mut all: Vec<&str> = d.domain_name().into_iter().collect();
                all.extend(d.subject_alternative_names().iter().map(String::as_str));
                named(&all) && validated(d.r#type())
            }),
        };
        if relies {
            others.push(arn.to_string());
        }
    }
    Ok(others)
}
