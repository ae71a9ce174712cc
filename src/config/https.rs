//! `[https]`: a certificate given by ARN or requested for a domain, the zone of its records, the
//! TLS policy.

use serde::{Deserialize, Serialize};

use super::{is_region_name, Config, ConfigError, Invalid};

/// The `[https]` section: a certificate given by ARN, or one requested for `domain` and validated
/// through Route 53 (with an alias record to the load balancer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    #[serde(default)]
    pub certificate_arn: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
    #[serde(default = "defaults::redirect_http")]
    pub redirect_http: bool,
    #[serde(default = "defaults::ssl_policy")]
    pub ssl_policy: String,
}

impl HttpsConfig {
    /// `[https]` with only `domain` set, the rest as defaulted (a stack judged by its certificate).
    pub fn for_domain(domain: String) -> HttpsConfig {
        HttpsConfig {
            certificate_arn: None,
            domain: Some(domain),
            hosted_zone_id: None,
            redirect_http: defaults::redirect_http(),
            ssl_policy: defaults::ssl_policy(),
        }
    }
}

/// The HTTPS listener's port: fixed, it is what `https://` means.
pub const HTTPS_PORT: u32 = 443;

/// The ELB predefined security policies an HTTPS listener of an ALB accepts, TLS 1.2 at least.
pub const SSL_POLICIES: &[&str] = &[
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-2019-08",
];

/// The predefined policies that still allow TLS 1.0 or 1.1 (ELB.17 wants TLS 1.2 at least):
/// refused by validation, with the reason, rather than as unknown.
pub const OUTDATED_SSL_POLICIES: &[&str] = &[
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-TLS-1-0-2015-04",
    "ELBSecurityPolicy-2015-05",
];

mod defaults {
    pub fn redirect_http() -> bool {
        true
    }
    pub fn ssl_policy() -> String {
        "ELBSecurityPolicy-TLS13-1-2-2021-06".into()
    }
}

impl Config {
    /// `[https]`: one certificate source, a domain, a zone, a policy, and a listener port that is not 443.
    pub(super) fn validate_https(&self, https: &HttpsConfig, invalid: &Invalid) -> Result<(), ConfigError> {
        // Both: the given certificate is served and the domain pointed at the load balancer (no
        // certificate requested); the listener checks before any change that the certificate covers it.
        if https.certificate_arn.is_none() && https.domain.is_none() {
            return Err(invalid(
                "https",
                "a section without certificate_arn or domain".into(),
                "give `https.certificate_arn` (an existing ACM certificate), `https.domain` (a certificate is \
                 requested and validated through Route 53), or both (the given certificate, and the domain's \
                 record in Route 53)"
                    .into(),
            ));
        }
        if let Some(arn) = &https.certificate_arn {
            check_certificate_arn(arn)
                .map_err(|reason| invalid("https.certificate_arn", format!("{arn:?}"), reason))?;
            if let (Some(arn_region), Some(region)) = (arn.split(':').nth(3), &self.region) {
                if arn_region != region {
                    return Err(invalid(
                        "https.certificate_arn",
                        format!("{arn:?}"),
                        format!("the certificate is in {arn_region} but the stack in {region}: a load balancer uses certificates of its own region"),
                    ));
                }
            }
        }
        if let Some(domain) = &https.domain {
            check_domain(domain).map_err(|reason| invalid("https.domain", format!("{domain:?}"), reason))?;
        }
        if let Some(zone) = &https.hosted_zone_id {
            if https.domain.is_none() {
                return Err(invalid(
                    "https.hosted_zone_id",
                    format!("{zone:?}"),
                    "only with `https.domain` (with certificate_arn, fargate-stack makes no DNS records)".into(),
                ));
            }
            let ok = !zone.is_empty()
                && zone.len() <= 32
                && zone.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !ok {
                return Err(invalid(
                    "https.hosted_zone_id",
                    format!("{zone:?}"),
                    "expected a Route 53 hosted zone ID such as \"Z0123456789ABCDEFGHIJ\" (without /hostedzone/)"
                        .into(),
                ));
            }
        }
        check_ssl_policy(https, invalid)?;
        if self.load_balancer.listener_port == HTTPS_PORT {
            return Err(invalid(
                "load_balancer.listener_port",
                HTTPS_PORT.to_string(),
                "with [https] port 443 is the HTTPS listener's; keep the HTTP listener on another port (80)".into(),
            ));
        }
        Ok(())
    }
}

/// A predefined ELB policy, and not one that allows TLS 1.0 or 1.1 (Security Hub ELB.17).
fn check_ssl_policy(https: &HttpsConfig, invalid: &Invalid) -> Result<(), ConfigError> {
    if OUTDATED_SSL_POLICIES.contains(&https.ssl_policy.as_str()) {
        return Err(invalid(
            "https.ssl_policy",
            format!("{:?}", https.ssl_policy),
            "allows TLS 1.0 or 1.1, which Security Hub flags (ELB.17) and browsers no longer offer; use a \
             TLS 1.2+ policy such as \"ELBSecurityPolicy-TLS13-1-2-2021-06\" (the default)"
                .into(),
        ));
    }
    if !SSL_POLICIES.contains(&https.ssl_policy.as_str()) {
        return Err(invalid(
            "https.ssl_policy",
            format!("{:?}", https.ssl_policy),
            format!("expected one of the ELB predefined policies: {}", SSL_POLICIES.join(", ")),
        ));
    }
    Ok(())
}

/// `arn:<partition>:acm:<region>:<account>:certificate/<id>`.
fn check_certificate_arn(arn: &str) -> Result<(), String> {
    const HINT: &str =
        "expected an ACM certificate ARN such as \"arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-...\"";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "acm"
        && is_region_name(parts[3])
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("certificate/")
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if ok {
        Ok(())
    } else {
        Err(HINT.into())
    }
}

/// A fully qualified domain name ACM can issue a certificate for and Route 53 can hold an alias for.
pub fn check_domain(domain: &str) -> Result<(), String> {
    if domain.starts_with("*.") {
        return Err(
            "a wildcard is not supported: name the host the service answers on, e.g. \"api.example.com\"".into()
        );
    }
    if domain.ends_with('.') {
        return Err("write the name without the trailing dot".into());
    }
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("use lower case: {:?}", domain.to_ascii_lowercase()));
    }
    // ACM puts the first name of a certificate in its subject's CN: at most 64 characters.
    if domain.len() > 64 {
        return Err("at most 64 characters (ACM's limit for a certificate's domain name)".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld_ok = labels.last().is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_lowercase()));
    if labels.len() < 2 || !labels.iter().all(label_ok) || !tld_ok {
        return Err(
            "expected a fully qualified domain name such as \"api.example.com\" (labels of a-z, 0-9 and '-')".into()
        );
    }
    Ok(())
}
