//! What a resource asks of IAM, declared beside the calls it makes: for each verb, every action it
//! calls, the resources the action acts on (an ARN pattern, or `*` where the action takes no
//! resource-level permission), and the condition that keeps it to the stack's own resources.
//! A least-privilege policy for a set of commands is built from these declarations alone (the
//! resources' verbs the commands use, and the commands' own reads); a unit test checks that every
//! SDK call in the source is declared.
//!
//! ARN patterns hold placeholders filled in for a stack: `{partition}`, `{region}`, `{account}`,
//! `{stack}` (the stack's name, which prefixes every resource name; `list`, which looks at every
//! stack, needs it to be `*`), and for a state in S3 `{state_bucket}` and `{state_key}`.

use std::fmt;

/// What a command does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// Look it up (by recorded ID, tag or name) and read what the plan compares: every command.
    Find,
    /// `up` makes it (and what it needs to make it).
    Create,
    /// `up` (or `deploy`, `rollback`) changes it in place.
    Update,
    /// `down` (or `up`, for what the config no longer has) deletes it.
    Delete,
    /// `status`, `deploy`, `rollback`, `logs`, `list` read more than the plan compares.
    Inspect,
    /// Reading, locking and writing the state (in S3).
    State,
    /// `state init`, `push`, `pull`: setting up a state bucket, moving a state (no `policy` command
    /// covers them; the README's "IAM permissions the state needs" lists them).
    Admin,
}

/// The resources an action may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum On {
    /// `*`: the action takes no resource-level permission.
    Any,
    /// An ARN pattern with placeholders (see the module's doc).
    Arn(String),
}

/// What keeps an action to the stack: a condition on its tag, or what a role may be passed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// None beyond the resource pattern.
    None,
    /// `aws:ResourceTag/fargate-stack:stack` is the stack: the resource carries its tag.
    ResourceTag,
    /// `aws:RequestTag/fargate-stack:stack` is the stack: the create call sends its tag.
    RequestTag,
    /// `iam:PassedToService`: the role may be passed to this service only.
    PassedTo(&'static str),
    /// `iam:AWSServiceName`: the service-linked role of this service only.
    ServiceLinked(&'static str),
    /// `<service>:CreateAction` (`ec2:`, `ecs:`, `elasticloadbalancing:`): tags only as part of
    /// this create.
    CreateAction(&'static str),
}

/// One IAM action a resource needs, for one verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub verb: Verb,
    /// `service:Action`.
    pub action: &'static str,
    pub on: On,
    pub condition: Condition,
    /// AWS checks it on our behalf: nothing in the source calls it (tags sent with a create,
    /// passing a role, a service-linked role made by the first use of a service).
    pub implied: bool,
}

impl Permission {
    pub fn new(verb: Verb, action: &'static str) -> Permission {
        Permission { verb, action, on: On::Any, condition: Condition::None, implied: false }
    }

    pub fn find(action: &'static str) -> Permission {
        Permission::new(Verb::Find, action)
    }

    pub fn create(action: &'static str) -> Permission {
        Permission::new(Verb::Create, action)
    }

    pub fn update(action: &'static str) -> Permission {
        Permission::new(Verb::Update, action)
    }

    pub fn delete(action: &'static str) -> Permission {
        Permission::new(Verb::Delete, action)
    }

    pub fn inspect(action: &'static str) -> Permission {
        Permission::new(Verb::Inspect, action)
    }

    /// On the resources the ARN pattern names.
    pub fn on(mut self, arn: impl Into<String>) -> Permission {
        self.on = On::Arn(arn.into());
        self
    }

    /// On resources carrying the stack's tag.
    pub fn tagged(mut self) -> Permission {
        self.condition = Condition::ResourceTag;
        self
    }

    /// Creating resources with the stack's tag.
    pub fn tagging(mut self) -> Permission {
        self.condition = Condition::RequestTag;
        self
    }

    pub fn when(mut self, condition: Condition) -> Permission {
        self.condition = condition;
        self
    }

    /// Checked by AWS on our behalf (see [`Permission::implied`]).
    pub fn implied(mut self) -> Permission {
        self.implied = true;
        self
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = match &self.on {
            On::Any => "*",
            On::Arn(arn) => arn,
        };
        write!(f, "{:?} {} on {on}", self.verb, self.action)?;
        match self.condition {
            Condition::None => Ok(()),
            c => write!(f, " when {c:?}"),
        }
    }
}

/// A regional ARN pattern: `arn:{partition}:<service>:{region}:{account}:<resource>`.
pub fn arn(service: &str, resource: &str) -> String {
    format!("arn:{{partition}}:{service}:{{region}}:{{account}}:{resource}")
}

/// An ARN pattern of a global service (IAM, Route 53): no region.
pub fn global_arn(service: &str, account: bool, resource: &str) -> String {
    let account = if account { "{account}" } else { "" };
    format!("arn:{{partition}}:{service}::{account}:{resource}")
}

/// The stack's name, as ARN patterns hold it.
pub const STACK: &str = "{stack}";

/// The tags a create call sends with it (`ec2:CreateTags`, `ecs:TagResource`, ...), allowed only as
/// part of `create` on `arn`.
pub fn tags_on_create(tagging: &'static str, create: &'static str, arn: String) -> Permission {
    Permission::create(tagging).on(arn).when(Condition::CreateAction(create)).implied()
}

/// The stack's tags sent with a create on `arn` whose service checks them as the create itself
/// (`iam:TagRole`, `logs:TagResource`, `dynamodb:TagResource`, ...).
pub fn tags_with(tagging: &'static str, arn: String) -> Permission {
    Permission::create(tagging).on(arn).tagging().implied()
}

/// Keeping the user's `[tags]` in step on a resource that exists (`up` puts changed values and
/// takes off the keys the config dropped): the tagging or untagging `action` on `arn`, only on what
/// carries the stack's tag.
pub fn retagging(action: &'static str, arn: String) -> Permission {
    Permission::update(action).on(arn).tagged()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_hold_placeholders_for_the_stack() {
        assert_eq!(
            arn("dynamodb", "table/{stack}-messages"),
            "arn:{partition}:dynamodb:{region}:{account}:table/{stack}-messages"
        );
        assert_eq!(global_arn("iam", true, "role/x"), "arn:{partition}:iam::{account}:role/x");
        assert_eq!(global_arn("route53", false, "hostedzone/*"), "arn:{partition}:route53:::hostedzone/*");
        let p = Permission::create("ec2:CreateVpc").on(arn("ec2", "vpc/*")).tagging();
        assert_eq!(
            p.to_string(),
            "Create ec2:CreateVpc on arn:{partition}:ec2:{region}:{account}:vpc/* when RequestTag"
        );
    }
}
