//! The HTTPS listener on 443, with the stack's certificate (requested for `https.domain`, or given
//! by ARN) and `https.ssl_policy`, and what `status` says about that certificate.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Certificate as ListenerCertificate, Listener as ListenerObject, ProtocolEnum,
};
use serde::Serialize;

use crate::access::{arn, Permission};
use crate::bill::Charge;
use crate::config::Config;
use crate::config::HTTPS_PORT;
use crate::error::{returned, AwsContext, StackError};
use crate::model::{
    before, Attr, Changed, Dep, Diff, Edge, Field, Key, Managed, Nodes, Outcome, Record, Scope, Shape, Sweep,
};
use crate::progress::Line;
use crate::resources::acm;
use crate::resources::certificate::{CERTIFICATE, CERTIFICATE_ISSUED};
use crate::resources::load_balancer::{
    check_tags, default_action, delete_listener, elb_retag, elb_tags, find_listener, listener_permissions,
    load_balancer_name, serving_action, show_action, sweep_listeners, LISTENER, LISTENER_KIND, LOAD_BALANCER,
    TARGET_GROUP,
};
use crate::resources::serving::PRODUCTION_RULE;
use crate::wait::{self, budget};

pub const LISTENER_HTTPS: Key = Key::new("listener-https", LISTENER_KIND);
const PORT: Attr = Attr::new(LISTENER_HTTPS, "port");
const SERVED: Attr = Attr::new(LISTENER_HTTPS, "certificate");

/// `status` warns when the certificate expires within this many days (ACM renews DNS-validated
/// certificates from 60 days before; still unrenewed at 30 means renewal is failing).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The HTTPS listener, with `[https]`, or while one is recorded (or may be found) that `down` or
/// `up` must delete.
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    let https = shape.config().https.as_ref();
    if https.is_some() || shape.holds(LISTENER_HTTPS) || shape.discovering_all() {
        nodes.managed(ListenerHttps { redirect: https.is_some_and(|h| h.redirect_http) });
    }
}

/// HTTPS on 443 with the stack's certificate (requested for `https.domain`, or given by ARN) and
/// `https.ssl_policy`, forwarding to the target group.
pub struct ListenerHttps {
    /// The HTTP listener redirects here, so it waits for this one: redirecting before HTTPS
    /// answers would break HTTP, and the service needs a listener that forwards to its target group.
    redirect: bool,
}

/// What the HTTPS listener can differ in.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpsField {
    Port,
    Protocol,
    Certificate,
    SslPolicy,
    DefaultAction,
}

impl Field for HttpsField {
    fn label(&self) -> String {
        match self {
            HttpsField::Port => "port",
            HttpsField::Protocol => "protocol",
            HttpsField::Certificate => "certificate",
            HttpsField::SslPolicy => "https.ssl_policy",
            HttpsField::DefaultAction => "default action",
        }
        .into()
    }
}

/// The certificate the HTTPS listener should serve.
fn wanted_certificate(ctx: &Scope<'_>) -> Result<String, StackError> {
    match ctx.config.https.as_ref().and_then(|h| h.certificate_arn.clone()) {
        Some(given) => Ok(given),
        None => ctx.need(CERTIFICATE),
    }
}

fn served_certificate(listener: &ListenerObject) -> Option<&str> {
    listener.certificates().iter().find(|c| c.is_default() != Some(false)).and_then(|c| c.certificate_arn())
}

/// Why a listener cannot use the certificate given by `https.certificate_arn`, if it cannot.
async fn given_certificate_problem(ctx: &Scope<'_>, arn: &str) -> Result<Option<String>, StackError> {
    let region = arn.split(':').nth(3).unwrap_or_default();
    if region != ctx.region {
        return Ok(Some(format!(
            "it is in {region} and the stack in {}: a load balancer uses certificates of its own region",
            ctx.region
        )));
    }
    let domain = ctx.config.https.as_ref().and_then(|h| h.domain.as_deref());
    Ok(match acm::describe(ctx, arn).await? {
        None => Some("ACM has no such certificate in this account".into()),
        Some(detail) => match detail.status().map(|s| s.as_str()) {
            Some("ISSUED") => match domain {
                // `https.domain` beside it: its record points at a listener that must serve it.
                Some(domain) if !covers(&detail, domain) => Some(format!(
                    "it does not cover https.domain {domain} (it is for {}): browsers would refuse the name",
                    names_of(&detail).join(", ")
                )),
                _ => None,
            },
            other => {
                Some(format!("it is {}: a listener needs an ISSUED certificate", other.unwrap_or("of unknown status")))
            }
        },
    })
}

/// The names a certificate is for: its domain and its alternative names.
fn names_of(detail: &aws_sdk_acm::types::CertificateDetail) -> Vec<String> {
    let mut names: Vec<String> = detail.domain_name().into_iter().map(str::to_string).collect();
    for name in detail.subject_alternative_names() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// A certificate covers `domain` when one of its names is it, or a wildcard one label above it
/// (`*.example.com` covers `api.example.com`, not `example.com` or `a.b.example.com`).
fn covers(detail: &aws_sdk_acm::types::CertificateDetail, domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    names_of(detail).iter().any(|name| {
        let name = name.to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(parent) => domain.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => name == domain,
        }
    })
}

#[async_trait]
impl Managed for ListenerHttps {
    type Live = ListenerObject;
    type Field = HttpsField;

    async fn tags(&self, ctx: &Scope<'_>, live: &ListenerObject) -> Result<Option<Vec<(String, String)>>, StackError> {
        elb_tags(ctx, live.listener_arn().unwrap_or_default()).await
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &ListenerObject,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        elb_retag(ctx, live.listener_arn().unwrap_or_default(), put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_listeners)
    }

    fn permissions(&self) -> Vec<Permission> {
        let mut permissions = listener_permissions();
        // A certificate given by ARN is checked (issued, in the region) before any change, and
        // `status` reports the one it serves.
        permissions.push(Permission::find("acm:DescribeCertificate").on(arn("acm", "certificate/*")));
        permissions.push(Permission::inspect("acm:DescribeCertificate").on(arn("acm", "certificate/*")));
        permissions
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        LISTENER_HTTPS
    }

    fn needs(&self) -> Vec<Dep> {
        // A requested certificate: AWS refuses one that is not issued yet (UnsupportedCertificate).
        vec![LOAD_BALANCER.into(), TARGET_GROUP.into(), Dep::IfPresent(CERTIFICATE_ISSUED)]
    }

    /// With a strategy that shifts traffic, the production rule routes instead of its default action.
    fn reads(&self) -> Vec<Dep> {
        vec![Dep::IfPresent(CERTIFICATE), Dep::IfPresent(PRODUCTION_RULE)]
    }

    fn needed_by(&self) -> Vec<Dep> {
        if self.redirect {
            vec![LISTENER.into()]
        } else {
            vec![]
        }
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![
            before(TARGET_GROUP, "DeleteTargetGroup fails with ResourceInUse while a listener forwards to it"),
            before(
                Dep::IfPresent(CERTIFICATE),
                "DeleteCertificate fails with ResourceInUseException while a listener uses it",
            ),
        ]
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<ListenerObject>, StackError> {
        let given = ctx.config.https.as_ref().and_then(|h| h.certificate_arn.clone());
        let problem = async {
            match &given {
                Some(arn) => given_certificate_problem(ctx, arn).await,
                None => Ok(None),
            }
        };
        let listener = async {
            match ctx.id(LOAD_BALANCER) {
                Some(lb) => find_listener(ctx, LISTENER_HTTPS, &lb, HTTPS_PORT).await,
                None => Ok(None),
            }
        };
        let (problem, listener) = tokio::join!(problem, listener);
        let listener = listener?;
        if let Some(listener) = &listener {
            let arn = listener.listener_arn().unwrap_or_default();
            check_tags(ctx, LISTENER_HTTPS, arn, arn).await?;
        }
        // Checked before any change: a listener that does not serve it yet could not be given it.
        if let (Some(problem), Some(arn)) = (problem?, &given) {
            if listener.as_ref().and_then(served_certificate) != Some(arn.as_str()) {
                return Err(StackError::Blocked { resource: format!("https.certificate_arn {arn}"), reason: problem });
            }
        }
        Ok(listener)
    }

    fn record(&self, _ctx: &Scope<'_>, live: &ListenerObject) -> Record {
        Record::id(live.listener_arn().unwrap_or_default())
            .with(PORT, live.port().unwrap_or_default().to_string())
            .with(SERVED, served_certificate(live).unwrap_or_default())
    }

    fn diff(&self, ctx: &Scope<'_>, live: &ListenerObject) -> Result<Vec<Changed<HttpsField>>, StackError> {
        // Only being deleted (the config no longer has [https]): nothing to compare with.
        let Some(https) = &ctx.config.https else { return Ok(vec![]) };
        let tg = ctx.need(TARGET_GROUP)?;
        let certificate = wanted_certificate(ctx)?;
        let mut diff = Diff::new();
        diff.field(HttpsField::Port, &live.port().unwrap_or_default().to_string(), &HTTPS_PORT.to_string())
            .field(HttpsField::Protocol, live.protocol().map_or("none", |p| p.as_str()), "HTTPS")
            .field(HttpsField::Certificate, served_certificate(live).unwrap_or("none"), certificate.as_str())
            .field(HttpsField::SslPolicy, live.ssl_policy().unwrap_or("none"), https.ssl_policy.as_str())
            .field(
                HttpsField::DefaultAction,
                &show_action(default_action(live)),
                &show_action(Some(&serving_action(ctx, &tg))),
            );
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<ListenerObject, StackError> {
        let lb = ctx.need(LOAD_BALANCER)?;
        let tg = ctx.need(TARGET_GROUP)?;
        let certificate = wanted_certificate(ctx)?;
        let policy = ctx.config.https.as_ref().map(|h| h.ssl_policy.clone()).unwrap_or_default();
        let name = ctx.name(&format!("listener-{HTTPS_PORT}"));
        // ELB sees a newly issued ACM certificate a little after ACM says ISSUED.
        let out = wait::retry_codes(
            line,
            &name,
            budget::PROPAGATION,
            &["CertificateNotFound", "UnsupportedCertificate"],
            || async {
                ctx.aws
                    .elb
                    .create_listener()
                    .load_balancer_arn(&lb)
                    .protocol(ProtocolEnum::Https)
                    .port(HTTPS_PORT as i32)
                    .certificates(ListenerCertificate::builder().certificate_arn(&certificate).build())
                    .ssl_policy(&policy)
                    .default_actions(serving_action(ctx, &tg))
                    .set_tags(Some(ctx.sdk_tags(&name)))
                    .send()
                    .await
                    .ctx("create the HTTPS listener on", &load_balancer_name(ctx.stack()))
            },
        )
        .await?;
        returned(out.listeners().first().cloned(), "listener-https", "create returned nothing")
    }

    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        live: &ListenerObject,
        _changes: &[Changed<HttpsField>],
    ) -> Result<Option<ListenerObject>, StackError> {
        let arn = live.listener_arn().unwrap_or_default();
        let tg = ctx.need(TARGET_GROUP)?;
        let certificate = wanted_certificate(ctx)?;
        let policy = ctx.config.https.as_ref().map(|h| h.ssl_policy.clone()).unwrap_or_default();
        let out = wait::retry_codes(
            line,
            arn,
            budget::PROPAGATION,
            &["CertificateNotFound", "UnsupportedCertificate"],
            || async {
                ctx.aws
                    .elb
                    .modify_listener()
                    .listener_arn(arn)
                    .port(HTTPS_PORT as i32)
                    .protocol(ProtocolEnum::Https)
                    .certificates(ListenerCertificate::builder().certificate_arn(&certificate).build())
                    .ssl_policy(&policy)
                    .default_actions(serving_action(ctx, &tg))
                    .send()
                    .await
                    .ctx("update the HTTPS listener", arn)
            },
        )
        .await?;
        Ok(out.listeners().first().cloned())
    }

    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: ListenerObject) -> Result<Outcome, StackError> {
        delete_listener(ctx, &live).await
    }
}

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
pub async fn summary(ctx: &Scope<'_>) -> Result<Option<CertificateSummary>, StackError> {
    let given = ctx.config.https.as_ref().and_then(|h| h.certificate_arn.clone());
    let (arn, source) = match (ctx.id(CERTIFICATE), given) {
        (_, Some(arn)) => (arn, "given"),
        (Some(arn), None) => (arn, "requested"),
        (None, None) => return Ok(None),
    };
    let Some(detail) = acm::describe(ctx, &arn).await? else {
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
    let users: Vec<Option<String>> = vec![ctx.id(LOAD_BALANCER), ctx.id(LISTENER_HTTPS)];
    let in_use = detail.in_use_by().iter().any(|u| users.iter().flatten().any(|ours| ours == u));
    let listener_exists = ctx.id(LISTENER_HTTPS).is_some();
    let status = detail.status().map_or("unknown", |s| s.as_str()).to_string();
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

    #[test]
    fn a_given_certificate_covers_its_names_and_one_label_under_a_wildcard() {
        let detail = aws_sdk_acm::types::CertificateDetail::builder()
            .domain_name("api.example.com")
            .subject_alternative_names("*.shop.example.com")
            .subject_alternative_names("api.example.com")
            .build();
        assert_eq!(names_of(&detail), ["api.example.com", "*.shop.example.com"]);
        assert!(covers(&detail, "api.example.com") && covers(&detail, "API.example.com."));
        assert!(covers(&detail, "eu.shop.example.com"));
        for not in ["shop.example.com", "a.eu.shop.example.com", "www.example.com", "example.com"] {
            assert!(!covers(&detail, not), "{not}");
        }
    }

    #[test]
    fn with_a_given_certificate_and_a_domain_only_the_alias_record_is_made() {
        use crate::config::{Config, DEFAULT_TOML};
        use crate::model::Shape;
        use crate::resources::certificate::CERTIFICATE;
        use crate::resources::dns::{ALIAS_RECORD, VALIDATION_RECORD};
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666";
        let https = |section: &str| Config::parse("t", &format!("{DEFAULT_TOML}\n[https]\n{section}\n")).unwrap();
        let has = |c: &Config, key: Key| crate::resources::stack(&Shape::of(c)).unwrap().get(key).is_some();
        let both = https(&format!("certificate_arn = \"{arn}\"\ndomain = \"api.example.com\""));
        assert!(has(&both, ALIAS_RECORD) && has(&both, LISTENER_HTTPS));
        assert!(!has(&both, CERTIFICATE) && !has(&both, VALIDATION_RECORD), "nothing requested");
        let given = https(&format!("certificate_arn = \"{arn}\""));
        assert!(!has(&given, ALIAS_RECORD) && !has(&given, CERTIFICATE));
        let domain = https("domain = \"api.example.com\"");
        assert!(has(&domain, ALIAS_RECORD) && has(&domain, CERTIFICATE) && has(&domain, VALIDATION_RECORD));
    }
}
