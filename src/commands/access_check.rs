//! `up`'s early access check: before the first change, IAM's policy simulator is asked whether the
//! caller may do what the plan needs (`iam:SimulatePrincipalPolicy` on the caller's own identity),
//! so that a missing permission fails the run before anything is made rather than halfway. When the
//! simulator cannot be asked (the call is denied, the identity is not a user or role), `up` says so
//! and goes on: each call's own denial still names what is missing.

use aws_sdk_iam::types::PolicyEvaluationDecisionType;

use std::collections::BTreeMap;

use crate::access::{global_arn, On, Permission, Verb};
use crate::aws::Clients;
use crate::commands::{CommandError, Setup};
use crate::error::aws::POLICY_HINT;
use crate::error::AwsContext;
use crate::graph::Graph;
use crate::policy::Target;
use crate::progress::Progress;

/// The simulator's own permission, on the caller's identity (a user or a role of the account):
/// asked by every command that changes something (`up`, `down`, `deploy`, `rollback`).
pub fn permissions() -> Vec<Permission> {
    let mut permissions = vec![];
    for verb in [Verb::Create, Verb::Update, Verb::Delete] {
        for who in ["user/*", "role/*"] {
            permissions.push(Permission::new(verb, "iam:SimulatePrincipalPolicy").on(global_arn("iam", true, who)));
        }
    }
    permissions
}

/// The actions of `verbs` the nodes of `graph` declare.
pub fn declared(graph: &Graph, verbs: &[Verb]) -> Vec<Permission> {
    graph.nodes().iter().flat_map(|n| n.permissions()).filter(|p| verbs.contains(&p.verb)).collect()
}

/// Before the first change of a run: stop it, naming what IAM's simulator says is denied of
/// `needed`; when the simulator cannot be asked, say so and go on (each call's own denial still
/// names what is missing).
pub async fn before_changes(setup: &Setup, needed: &[Permission], progress: &Progress) -> Result<(), CommandError> {
    if needed.is_empty() {
        return Ok(());
    }
    match check(&setup.clients, &setup.region, &setup.config.name, needed).await {
        Checked::Allowed => Ok(()),
        Checked::Denied { principal, actions } => Err(CommandError::Refused(Checked::refusal(&principal, &actions))),
        Checked::Skipped(why) => {
            progress.note(&format!("notice: the access check before any change was skipped: {why}"));
            Ok(())
        }
    }
}

/// What the check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// Every action is allowed (or depends on a condition the simulator cannot evaluate).
    Allowed,
    /// These are denied whatever the request: `up` stops before any change.
    Denied { principal: String, actions: Vec<String> },
    /// The simulator could not be asked: why.
    Skipped(String),
}

impl Checked {
    /// The one error line of a denial.
    pub fn refusal(principal: &str, actions: &[String]) -> String {
        format!(
            "not allowed to perform {} (IAM's policy simulator for {principal}, asked before any change; nothing \
             was changed). {POLICY_HINT}",
            actions.join(", ")
        )
    }
}

/// The identity the simulator takes for the caller: a user as is, an assumed role's role (without
/// its path, which the session ARN does not carry).
pub fn principal(caller: &str) -> Option<String> {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    let [_, partition, service, _, account, resource] = parts.as_slice() else { return None };
    match *service {
        "iam" if resource.starts_with("user/") || resource.starts_with("role/") => Some(caller.to_string()),
        "sts" => {
            let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
            Some(format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        _ => None,
    }
}

/// Ask the simulator about `permissions` for the caller, each on the resources its declaration
/// names (filled for `stack` in `region`): the simulator matches a policy's resource patterns
/// against them, as it does not against a bare `*`.
pub async fn check(clients: &Clients, region: &str, stack: &str, permissions: &[Permission]) -> Checked {
    let caller = match clients.sts.get_caller_identity().send().await {
        Ok(me) => me.arn().unwrap_or_default().to_string(),
        Err(e) => return Checked::Skipped(format!("the caller's identity is unknown ({e})")),
    };
    let Some(principal) = principal(&caller) else {
        return Checked::Skipped(format!("{caller} is not a user or role the simulator takes"));
    };
    let parts: Vec<&str> = principal.split(':').collect();
    let target = Target {
        partition: parts[1].to_string(),
        region: region.to_string(),
        account: parts[4].to_string(),
        stack: stack.to_string(),
        state: None,
    };
    let mut by_resource: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    for p in permissions {
        let resource = match &p.on {
            On::Any => None,
            On::Arn(pattern) => Some(target.fill(pattern, stack)),
        };
        let actions = by_resource.entry(resource).or_default();
        if !actions.iter().any(|a| a == p.action) {
            actions.push(p.action.to_string());
        }
    }
    let mut denied = vec![];
    for (resource, chunk) in by_resource.iter().flat_map(|(r, actions)| actions.chunks(100).map(move |c| (r, c))) {
        let mut marker: Option<String> = None;
        loop {
            let out = clients
                .iam
                .simulate_principal_policy()
                .policy_source_arn(&principal)
                .set_action_names(Some(chunk.to_vec()))
                .set_resource_arns(resource.clone().map(|r| vec![r]))
                .set_marker(marker.clone())
                .send()
                .await
                .ctx("simulate the policy of", &principal);
            let out = match out {
                Ok(out) => out,
                Err(e) => return Checked::Skipped(e.to_string()),
            };
            for result in out.evaluation_results() {
                // A decision that hangs on a condition the simulator was not given (the stack's tag,
                // the service a role is passed to) is AWS's to make on the call itself.
                if result.eval_decision() != &PolicyEvaluationDecisionType::Allowed
                    && result.missing_context_values().is_empty()
                {
                    denied.push(result.eval_action_name().to_string());
                }
            }
            marker = out.marker().map(str::to_string).filter(|_| out.is_truncated());
            if marker.is_none() {
                break;
            }
        }
    }
    denied.sort();
    denied.dedup();
    if denied.is_empty() {
        Checked::Allowed
    } else {
        Checked::Denied { principal, actions: denied }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_principal_is_the_user_or_the_assumed_role() {
        let user = "arn:aws:iam::123456789012:user/ci";
        assert_eq!(principal(user).as_deref(), Some(user));
        assert_eq!(
            principal("arn:aws:sts::123456789012:assumed-role/deployer/gh-run-42").as_deref(),
            Some("arn:aws:iam::123456789012:role/deployer")
        );
        assert_eq!(principal("arn:aws:sts::123456789012:federated-user/bob"), None);
        assert_eq!(principal("arn:aws:iam::123456789012:root"), None);
        let e = Checked::refusal(user, &["ecs:CreateService".into()]);
        assert!(e.starts_with("not allowed to perform ecs:CreateService (") && e.ends_with(POLICY_HINT), "{e}");
    }
}
