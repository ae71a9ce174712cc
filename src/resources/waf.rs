//! The association of a user's AWS WAF web ACL with the stack's load balancer
//! (`[load_balancer] waf_web_acl_arn`, Security Hub ELB.16). The web ACL is the user's: checked
//! before any change (a REGIONAL ACL of the stack's region that exists), never changed or deleted;
//! only the association is the stack's. `up` associates it (and puts it back when another ACL, or
//! none, is found on the load balancer), removing the key disassociates it, and `down` removes the
//! association before the load balancer goes. WAF is its own AWS service (`wafv2`), hence its own
//! module rather than a part of the load balancer's.

use async_trait::async_trait;
use aws_sdk_wafv2::types::Scope as WafScope;

use crate::access::{arn, Permission};
use crate::bill::{Charge, Unit};
use crate::config::{parse_web_acl_arn, Config};
use crate::error::{AwsContext, StackError};
use crate::model::{
    before, Changed, Dep, Diff, Edge, Field, Health, Inspection, Key, Kind, Managed, Nodes, Outcome, Record, Scope,
    Shape, Sweep,
};
use crate::progress::Line;
use crate::resources::load_balancer::{load_balancer_arn, LOAD_BALANCER};
use crate::wait::{self, budget};

pub const WAF_ASSOCIATION: Key = Key::new("waf-association", Kind::new("wafv2:web-acl-association"));

/// AWS WAF's request charge, per million requests the web ACL inspects.
pub const WAF_REQUESTS: &str = "waf:requests";

/// What WAF answers for a web ACL or a resource it does not know.
const NONEXISTENT: &[&str] = &["WAFNonexistentItemException"];

/// The association, when the config names a web ACL or a state records one. Without either, `down`
/// does not look for one: AWS drops an association with the load balancer.
pub fn declare(shape: &Shape, nodes: &mut Nodes) {
    if shape.config().load_balancer.waf_web_acl_arn.is_some() || shape.holds(WAF_ASSOCIATION) {
        nodes.managed(WafAssociation);
    }
}

/// `up`, before any change: the config's web ACL is a REGIONAL one of the stack's region, and
/// exists (GetWebACL). AWS would refuse the association only once the rest is made.
async fn check_web_acl(ctx: &Scope<'_>, acl: &str) -> Result<(), StackError> {
    const KEY: &str = "load_balancer.waf_web_acl_arn";
    let parsed = parse_web_acl_arn(acl).map_err(|reason| StackError::Refused(format!("{KEY}: {acl}: {reason}")))?;
    if parsed.region != ctx.region {
        return Err(StackError::Refused(format!(
            "{KEY}: web ACL {} is in {}; a load balancer takes a web ACL of its own region ({}); nothing was changed",
            parsed.name, parsed.region, ctx.region
        )));
    }
    let call = ctx.aws.wafv2.get_web_acl().name(&parsed.name).id(&parsed.id).scope(WafScope::Regional);
    match call.send().await.ctx("read web ACL", acl) {
        Ok(_) => Ok(()),
        Err(e) if e.has_code(NONEXISTENT) => Err(StackError::Refused(format!(
            "{KEY}: web ACL {acl} does not exist in {} (WAFNonexistentItemException); nothing was changed",
            ctx.region
        ))),
        Err(e) => Err(e),
    }
}

/// The web ACL associated with the load balancer: its ARN.
pub struct Associated {
    acl: String,
}

pub struct WafAssociation;

/// What the association can differ in: which web ACL.
#[derive(Debug, Clone, PartialEq)]
pub enum WafField {
    WebAcl,
}

impl Field for WafField {
    fn label(&self) -> String {
        "load_balancer.waf_web_acl_arn".into()
    }
}

impl WafAssociation {
    /// AWS WAF answers WAFUnavailableEntityException while the load balancer is still
    /// provisioning (`up --no-wait` does not wait for it to be active): retried until it is.
    async fn associate(&self, ctx: &Scope<'_>, line: &Line, acl: &str) -> Result<(), StackError> {
        let lb = ctx.need(LOAD_BALANCER)?;
        let unavailable = |e: &StackError| e.has_code(&["WAFUnavailableEntityException"]);
        wait::retry_while(line, acl, budget::ALB_ACTIVE, unavailable, || async {
            let call = ctx.aws.wafv2.associate_web_acl().web_acl_arn(acl).resource_arn(&lb);
            call.send().await.ctx("associate web ACL", acl).map(drop)
        })
        .await
    }

    fn wanted(ctx: &Scope<'_>) -> Result<String, StackError> {
        ctx.config.load_balancer.waf_web_acl_arn.clone().ok_or_else(|| {
            StackError::Refused("load_balancer.waf_web_acl_arn is not set: no web ACL to associate".into())
        })
    }
}

#[async_trait]
impl Managed for WafAssociation {
    type Live = Associated;
    type Field = WafField;

    fn key(&self) -> Key {
        WAF_ASSOCIATION
    }

    fn sweep(&self) -> Sweep {
        Sweep::Unlisted(
            "an association is no object of its own: it is found on the stack's load balancer \
             (GetWebACLForResource), and AWS drops it with the load balancer",
        )
    }

    /// The web ACL is any of the user's regional ones; the load balancer is the stack's. Associating
    /// and disassociating an ALB also checks `elasticloadbalancing:SetWebACL` on it.
    fn permissions(&self) -> Vec<Permission> {
        let acl = arn("wafv2", "regional/webacl/*/*");
        let lb = load_balancer_arn();
        vec![
            Permission::find("wafv2:GetWebACLForResource").on(lb.clone()),
            // GetWebACLForResource reads the associated ACL through GetWebACL; the preflight reads
            // the config's.
            Permission::find("wafv2:GetWebACL").on(acl.clone()),
            Permission::create("wafv2:AssociateWebACL").on(acl.clone()),
            Permission::create("wafv2:AssociateWebACL").on(lb.clone()),
            Permission::create("elasticloadbalancing:SetWebACL").on(lb.clone()).tagged().implied(),
            Permission::update("wafv2:AssociateWebACL").on(acl),
            Permission::update("wafv2:AssociateWebACL").on(lb.clone()),
            Permission::update("elasticloadbalancing:SetWebACL").on(lb.clone()).tagged().implied(),
            Permission::delete("wafv2:DisassociateWebACL").on(lb.clone()),
            Permission::delete("elasticloadbalancing:SetWebACL").on(lb).tagged().implied(),
        ]
    }

    /// WAF's request charge for what the ACL inspects; the ACL's own monthly charges are the user's.
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![Charge::usage(
            WAF_REQUESTS,
            Unit::MillionRequests,
            "WAF requests inspected (the web ACL's own $5 a month and $1 per rule a month are billed to its owner, \
             you, whether or not the stack uses it)",
        )]
    }

    fn needs(&self) -> Vec<Dep> {
        vec![LOAD_BALANCER.into()]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![before(
            LOAD_BALANCER,
            "DisassociateWebACL needs the load balancer: once it is deleted the association the state records \
             can no longer be removed, only dropped by AWS with it",
        )]
    }

    async fn preflight(&self, ctx: &Scope<'_>) -> Result<(), StackError> {
        match &ctx.config.load_balancer.waf_web_acl_arn {
            Some(acl) => check_web_acl(ctx, acl).await,
            None => Ok(()),
        }
    }

    fn cost_note(&self, _config: &Config, found: &Inspection) -> Option<String> {
        (found.status == Health::Missing).then(|| {
            "the web ACL inspects every request to the load balancer: AWS WAF bills $0.60 per million requests; the \
             ACL itself ($5 a month, $1 per rule a month) is yours and billed to you as before"
                .to_string()
        })
    }

    fn removal_note(&self, _found: &Inspection) -> Option<String> {
        Some("the load balancer is no longer protected by the web ACL (the ACL itself is kept: it is yours)".into())
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Associated>, StackError> {
        let Some(lb) = ctx.id(LOAD_BALANCER) else { return Ok(None) };
        let out = ctx.aws.wafv2.get_web_acl_for_resource().resource_arn(&lb).send().await;
        match out.ctx("read the web ACL of", &lb) {
            Ok(out) => Ok(out.web_acl().map(|acl| Associated { acl: acl.arn().to_string() })),
            // The load balancer is gone, and the association with it.
            Err(e) if e.has_code(NONEXISTENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn record(&self, _ctx: &Scope<'_>, live: &Associated) -> Record {
        Record::id(&live.acl)
    }

    fn diff(&self, ctx: &Scope<'_>, live: &Associated) -> Result<Vec<Changed<WafField>>, StackError> {
        let mut diff = Diff::new();
        if let Some(want) = &ctx.config.load_balancer.waf_web_acl_arn {
            diff.field(WafField::WebAcl, &live.acl, want);
        }
        Ok(diff.into_changes())
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<Associated, StackError> {
        let acl = Self::wanted(ctx)?;
        self.associate(ctx, line, &acl).await?;
        Ok(Associated { acl })
    }

    /// Another web ACL is on the load balancer: AssociateWebACL puts the config's in its place.
    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        _live: &Associated,
        _changes: &[Changed<WafField>],
    ) -> Result<Option<Associated>, StackError> {
        let acl = Self::wanted(ctx)?;
        self.associate(ctx, line, &acl).await?;
        Ok(Some(Associated { acl }))
    }

    /// Only the association: the web ACL is the user's.
    async fn destroy(&self, ctx: &Scope<'_>, _line: &Line, live: Associated) -> Result<Outcome, StackError> {
        let Some(lb) = ctx.id(LOAD_BALANCER) else { return Ok(Outcome::Deleted) };
        let out = ctx.aws.wafv2.disassociate_web_acl().resource_arn(&lb).send().await;
        match out.ctx("disassociate web ACL", &live.acl) {
            Ok(_) => Ok(Outcome::Deleted),
            Err(e) if e.has_code(NONEXISTENT) => Ok(Outcome::Deleted),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use crate::resources::stack;

    const ACL: &str = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/edge/1b2c3d4e-0000-4000-8000-123456789abc";

    fn with_acl(arn: &str) -> Result<Config, crate::config::ConfigError> {
        let text = DEFAULT_TOML.replace("[load_balancer]\n", &format!("[load_balancer]\nwaf_web_acl_arn = {arn:?}\n"));
        Config::parse("t", &text)
    }

    #[test]
    fn absent_by_default_and_gone_before_the_load_balancer_when_set() {
        let default = Config::parse("t", DEFAULT_TOML).unwrap();
        assert!(stack(&Shape::of(&default)).unwrap().get(WAF_ASSOCIATION).is_none());
        assert!(stack(&Shape::discovering(&default)).unwrap().get(WAF_ASSOCIATION).is_none(), "down --name");
        assert!(stack(&Shape::everything(&default)).unwrap().get(WAF_ASSOCIATION).is_some(), "the catalog");
        let c = with_acl(ACL).unwrap();
        let graph = stack(&Shape::of(&c)).unwrap();
        assert_eq!(graph.needs_of(WAF_ASSOCIATION), [LOAD_BALANCER]);
        assert!(graph.teardown_after(LOAD_BALANCER).contains(&WAF_ASSOCIATION));
    }

    #[test]
    fn the_key_takes_a_regional_web_acl_arn_only() {
        let parsed = parse_web_acl_arn(ACL).unwrap();
        assert_eq!((parsed.region.as_str(), parsed.name.as_str()), ("us-east-1", "edge"));
        let global = ACL.replace("regional/", "global/");
        for bad in [global.as_str(), "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/x/y", "edge", ""] {
            let err = with_acl(bad).unwrap_err().to_string();
            assert!(err.contains("load_balancer.waf_web_acl_arn"), "{bad}: {err}");
        }
        assert!(with_acl(&global).unwrap_err().to_string().contains("CLOUDFRONT"));
        assert!(with_acl(&ACL.replace("wafv2", "waf")).is_err());
        assert!(with_acl(&ACL.replace("123456789012", "1234")).is_err());
    }
}
