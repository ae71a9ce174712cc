//! `[load_balancer]`: the HTTP listener's port, the target group's health checks, and where the
//! access logs go.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerConfig {
    #[serde(default = "defaults::port")]
    pub listener_port: u32,
    #[serde(default = "defaults::health_check_interval")]
    pub health_check_interval_seconds: u32,
    #[serde(default = "defaults::health_check_timeout")]
    pub health_check_timeout_seconds: u32,
    #[serde(default = "defaults::healthy_threshold")]
    pub healthy_threshold: u32,
    #[serde(default = "defaults::unhealthy_threshold")]
    pub unhealthy_threshold: u32,
    #[serde(default = "defaults::deregistration_delay")]
    pub deregistration_delay_seconds: u32,
    /// AWS refuses to delete the load balancer while it is on (Security Hub ELB.6); `down` turns it
    /// off first, for the stack's own load balancer only.
    #[serde(default = "defaults::deletion_protection")]
    pub deletion_protection: bool,
    /// Access logs to S3 (Security Hub ELB.5): `true` (a bucket of the stack's own), `false`, or a
    /// given bucket `{ bucket = "...", prefix = "..." }`.
    #[serde(default)]
    pub access_logs: AccessLogs,
    /// Days the stack's own access-log bucket keeps a log before S3 expires it.
    #[serde(default = "defaults::access_logs_expiration")]
    pub access_logs_expiration_days: u32,
    /// Seconds a connection may stay idle before the load balancer closes it.
    #[serde(default = "defaults::idle_timeout")]
    pub idle_timeout_seconds: u32,
    /// The HTTP codes the target group's health check counts as healthy: "200", "200,204",
    /// "200-399".
    #[serde(default = "defaults::health_check_matcher")]
    pub health_check_matcher: String,
    /// A REGIONAL AWS WAF web ACL of the user's to associate with the load balancer (Security Hub
    /// ELB.16); absent: none. The ACL is never changed or deleted, only the association.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waf_web_acl_arn: Option<String>,
}

/// The parts of a WAF web ACL's ARN:
/// `arn:<partition>:wafv2:<region>:<account>:regional/webacl/<name>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAclArn {
    pub region: String,
    pub account: String,
    pub name: String,
    pub id: String,
}

/// Parse a web ACL's ARN; a CLOUDFRONT (`global/`) one is refused: an ALB takes a REGIONAL one.
pub fn parse_web_acl_arn(arn: &str) -> Result<WebAclArn, String> {
    const FORM: &str = "the ARN of a REGIONAL web ACL: arn:aws:wafv2:REGION:ACCOUNT:regional/webacl/NAME/ID";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else { return Err(FORM.into()) };
    let partition_ok = ["aws", "aws-cn", "aws-us-gov"].contains(&partition);
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let region_ok =
        !region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if prefix != "arn" || !partition_ok || service != "wafv2" || !region_ok || !account_ok {
        return Err(FORM.into());
    }
    let segments: Vec<&str> = resource.split('/').collect();
    let [scope, "webacl", name, id] = segments[..] else { return Err(FORM.into()) };
    if scope == "global" {
        return Err("a CLOUDFRONT (global) web ACL; a load balancer takes a REGIONAL one, of the stack's region".into());
    }
    let name_ok =
        (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    let id_ok = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if scope != "regional" || !name_ok || !id_ok {
        return Err(FORM.into());
    }
    Ok(WebAclArn { region: region.into(), account: account.into(), name: name.into(), id: id.into() })
}

/// `load_balancer.access_logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AccessLogs {
    /// On, to a bucket the stack creates and owns (`true`), or off.
    Switch(bool),
    /// On, to the user's bucket: checked, never changed or deleted.
    Given(GivenBucket),
}

impl Default for AccessLogs {
    fn default() -> AccessLogs {
        AccessLogs::Switch(true)
    }
}

/// A bucket of the user's for the access logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenBucket {
    pub bucket: String,
    /// Where in the bucket: `<prefix>/AWSLogs/<account>/...`; empty: at the top.
    #[serde(default)]
    pub prefix: String,
}

impl LoadBalancerConfig {
    /// The stack makes and owns the access-log bucket.
    pub fn owns_access_log_bucket(&self) -> bool {
        self.access_logs == AccessLogs::Switch(true)
    }

    /// The user's bucket, when the config names one.
    pub fn given_access_log_bucket(&self) -> Option<&GivenBucket> {
        match &self.access_logs {
            AccessLogs::Given(given) => Some(given),
            AccessLogs::Switch(_) => None,
        }
    }
}

/// S3's rules for a general purpose bucket's name.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let chars_ok = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ends_ok =
        name.starts_with(|c: char| c.is_ascii_alphanumeric()) && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&name.len()) || !chars_ok || !ends_ok || name.contains("..") {
        return Err("an S3 bucket name: 3-63 characters of a-z, 0-9, '-' and '.', starting and ending with a letter \
                    or digit"
            .into());
    }
    Ok(())
}

/// What ELB accepts as an access-log prefix: no slash at either end, no `AWSLogs`.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let chars_ok = prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./!*'()".contains(&b));
    if prefix.len() > 200 || !chars_ok || prefix.starts_with('/') || prefix.ends_with('/') {
        return Err("at most 200 characters of a-z, A-Z, 0-9 and -_./!*'(), no '/' at either end".into());
    }
    if prefix.contains("AWSLogs") {
        return Err("ELB adds AWSLogs/<account>/ itself; a prefix may not contain \"AWSLogs\"".into());
    }
    Ok(())
}

/// What ELB takes as an HTTP target group's success codes: codes of 200 to 499, as a list ("200,202")
/// or a range ("200-299").
pub fn check_matcher(matcher: &str) -> Result<(), String> {
    const RULE: &str = "HTTP codes of 200 to 499: one (\"200\"), a list (\"200,202\") or a range (\"200-299\")";
    let code = |c: &str| c.len() == 3 && c.parse::<u16>().is_ok_and(|c| (200..=499).contains(&c));
    let ok = match matcher.split_once('-') {
        Some((low, high)) => code(low) && code(high) && low < high,
        None => !matcher.is_empty() && matcher.split(',').all(code),
    };
    if ok {
        Ok(())
    } else {
        Err(RULE.into())
    }
}

/// `[load_balancer]` absent: as an empty one.
impl Default for LoadBalancerConfig {
    fn default() -> LoadBalancerConfig {
        LoadBalancerConfig {
            listener_port: defaults::port(),
            health_check_interval_seconds: defaults::health_check_interval(),
            health_check_timeout_seconds: defaults::health_check_timeout(),
            healthy_threshold: defaults::healthy_threshold(),
            unhealthy_threshold: defaults::unhealthy_threshold(),
            deregistration_delay_seconds: defaults::deregistration_delay(),
            deletion_protection: defaults::deletion_protection(),
            access_logs: AccessLogs::default(),
            access_logs_expiration_days: defaults::access_logs_expiration(),
            idle_timeout_seconds: defaults::idle_timeout(),
            health_check_matcher: defaults::health_check_matcher(),
            waf_web_acl_arn: None,
        }
    }
}

mod defaults {
    pub fn idle_timeout() -> u32 {
        60
    }
    pub fn health_check_matcher() -> String {
        "200-399".into()
    }
    pub fn access_logs_expiration() -> u32 {
        90
    }
    pub fn deletion_protection() -> bool {
        true
    }
    pub fn port() -> u32 {
        80
    }
    pub fn health_check_interval() -> u32 {
        10
    }
    pub fn health_check_timeout() -> u32 {
        5
    }
    pub fn healthy_threshold() -> u32 {
        2
    }
    pub fn unhealthy_threshold() -> u32 {
        3
    }
    pub fn deregistration_delay() -> u32 {
        30
    }
}

impl Config {
    /// `[load_balancer]`: health checks, deregistration delay.
    pub(super) fn validate_load_balancer(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let lb = &self.load_balancer;
        let ranges: [(&'static str, u32, u32, u32); 7] = [
            ("load_balancer.health_check_interval_seconds", lb.health_check_interval_seconds, 5, 300),
            ("load_balancer.health_check_timeout_seconds", lb.health_check_timeout_seconds, 2, 120),
            ("load_balancer.healthy_threshold", lb.healthy_threshold, 2, 10),
            ("load_balancer.unhealthy_threshold", lb.unhealthy_threshold, 2, 10),
            ("load_balancer.deregistration_delay_seconds", lb.deregistration_delay_seconds, 0, 3600),
            ("load_balancer.access_logs_expiration_days", lb.access_logs_expiration_days, 1, 3650),
            ("load_balancer.idle_timeout_seconds", lb.idle_timeout_seconds, 1, 4000),
        ];
        for (key, value, min, max) in ranges {
            if value < min || value > max {
                return Err(invalid(key, value.to_string(), format!("must be between {min} and {max}")));
            }
        }
        if lb.health_check_timeout_seconds >= lb.health_check_interval_seconds {
            return Err(invalid(
                "load_balancer.health_check_timeout_seconds",
                lb.health_check_timeout_seconds.to_string(),
                "must be less than load_balancer.health_check_interval_seconds".into(),
            ));
        }
        check_matcher(&lb.health_check_matcher).map_err(|reason| {
            invalid("load_balancer.health_check_matcher", format!("{:?}", lb.health_check_matcher), reason)
        })?;
        if let Some(given) = lb.given_access_log_bucket() {
            check_bucket_name(&given.bucket)
                .map_err(|reason| invalid("load_balancer.access_logs", format!("bucket {:?}", given.bucket), reason))?;
            check_prefix(&given.prefix)
                .map_err(|reason| invalid("load_balancer.access_logs", format!("prefix {:?}", given.prefix), reason))?;
        }
        if let Some(arn) = &lb.waf_web_acl_arn {
            parse_web_acl_arn(arn)
                .map_err(|reason| invalid("load_balancer.waf_web_acl_arn", format!("{arn:?}"), reason))?;
        }
        Ok(())
    }
}
