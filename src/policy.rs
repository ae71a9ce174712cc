//! The least-privilege IAM policy for a set of commands on a config, built from the actions the
//! resources, the commands and the state backend declare (`access`): never from a hand-kept list.
//!
//! Statements are grouped by service (each `Sid` starts with it) and, within a service, by what
//! scopes them, since an IAM condition applies to a whole statement: actions that take no
//! resource-level permission (`Resource: "*"`), actions on the stack's own ARNs, on resources
//! carrying the stack's tag, creates that must send it, tags only as part of a create, and roles
//! passed to one service.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::access::{Condition, On, Permission, Verb};
use crate::context::STACK_TAG;

/// The commands a policy can be asked for, in the order `--commands` documents them.
pub const COMMANDS: &[&str] = &["up", "down", "status", "deploy", "rollback", "logs", "list"];

/// What a command does to the stack's resources (see [`Verb`]); `list` and `logs` also declare
/// their own reads.
pub fn verbs(command: &str) -> &'static [Verb] {
    match command {
        "up" => &[Verb::Find, Verb::Create, Verb::Update, Verb::Delete, Verb::State],
        // The leak check after the teardown lists the region's resources of each kind.
        "down" => &[Verb::Find, Verb::Delete, Verb::Inspect, Verb::State],
        "status" => &[Verb::Find, Verb::Inspect, Verb::State],
        "deploy" | "rollback" => &[Verb::Find, Verb::Update, Verb::Inspect, Verb::State],
        // Only the log group's own lookup, which `Declarations::logs` holds.
        "logs" => &[Verb::State],
        "list" => &[Verb::Find],
        _ => &[],
    }
}

/// What fills the ARN patterns' placeholders.
#[derive(Debug, Clone)]
pub struct Target {
    pub partition: String,
    pub region: String,
    /// `*` when the account is unknown.
    pub account: String,
    pub stack: String,
    /// The S3 state's bucket and key, when the state lives in S3.
    pub state: Option<(String, String)>,
}

/// `value` (a string or a list of them) holds a string `matches` accepts.
pub fn any_of(value: Option<&Value>, matches: impl Fn(&str) -> bool) -> bool {
    match value {
        Some(Value::String(s)) => matches(s),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(matches),
        _ => false,
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A policy document's statements (one, or a list of them).
pub fn statements(doc: &Value) -> Vec<Value> {
    match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
        None => vec![],
    }
}

/// The partition a region is in.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("eu-isoe-") {
        "aws-iso-e"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

impl Target {
    pub fn fill(&self, pattern: &str, stack: &str) -> String {
        let (bucket, key) = self.state.clone().unwrap_or_default();
        pattern
            .replace("{partition}", &self.partition)
            .replace("{region}", &self.region)
            .replace("{account}", &self.account)
            .replace("{stack}", stack)
            .replace("{state_bucket}", &bucket)
            .replace("{state_key}", &key)
    }
}

/// One permission with its placeholders filled: for `list`, every stack (`{stack}` is `*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    service: String,
    scope: Scope,
    action: String,
    resource: String,
}

/// What scopes a statement, besides its resources.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    AnyResource,
    StackResources,
    /// `aws:ResourceTag` (`None`: any stack's, for `list`).
    Tagged(Option<String>),
    /// `aws:RequestTag`.
    CreateTagged(String),
    /// `<service>:CreateAction`: grouped, the creates are one condition's values.
    TagOnCreate,
    PassedTo(String),
    ServiceLinked(String),
}

impl Scope {
    /// `any`: on `*`, the actions taking no resource-level permission, though scoped by a condition.
    fn sid(&self, service: &str, any: bool) -> String {
        let any = if any && *self != Scope::AnyResource { "AnyResource" } else { "" };
        format!("{}{}{any}", pascal(service), self.suffix())
    }

    fn suffix(&self) -> String {
        match self {
            Scope::AnyResource => "NoResourceLevel".to_string(),
            Scope::StackResources => "StackResources".to_string(),
            Scope::Tagged(Some(_)) => "TaggedWithStack".to_string(),
            Scope::Tagged(None) => "TaggedWithAnyStack".to_string(),
            Scope::CreateTagged(_) => "CreateWithStackTag".to_string(),
            Scope::TagOnCreate => "TagOnCreate".to_string(),
            Scope::PassedTo(to) => format!("PassRoleTo{}", pascal(to.trim_end_matches(".amazonaws.com"))),
            Scope::ServiceLinked(to) => {
                format!("ServiceLinkedRoleFor{}", pascal(to.trim_end_matches(".amazonaws.com")))
            }
        }
    }
}

/// `application-autoscaling` -> `ApplicationAutoscaling`, `ecs.application-autoscaling` ->
/// `EcsApplicationAutoscaling`.
fn pascal(name: &str) -> String {
    name.split(['-', '.'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

fn grant(target: &Target, p: &Permission, stack: &str) -> Grant {
    let (service, _) = p.action.split_once(':').unwrap_or((p.action, ""));
    let resource = match &p.on {
        On::Any => "*".to_string(),
        On::Arn(arn) => target.fill(arn, stack),
    };
    let tag = (stack != "*").then(|| stack.to_string());
    let scope = match p.condition {
        Condition::None if p.on == On::Any => Scope::AnyResource,
        Condition::None => Scope::StackResources,
        Condition::ResourceTag => Scope::Tagged(tag),
        // A create for any stack's name (`list` never creates): the tag must still be sent.
        Condition::RequestTag => Scope::CreateTagged(tag.unwrap_or_else(|| "*".into())),
        Condition::CreateAction(_) => Scope::TagOnCreate,
        Condition::PassedTo(to) => Scope::PassedTo(to.into()),
        Condition::ServiceLinked(to) => Scope::ServiceLinked(to.into()),
    };
    Grant { service: service.to_string(), scope, action: p.action.to_string(), resource }
}

/// The declared permissions each command needs: `resources` are the stack's nodes' (and the
/// deploy steps'), `list` the command's own, `logs` the command's own and its log group's lookup,
/// `state` the S3 backend's.
pub struct Declarations {
    pub resources: Vec<Permission>,
    /// What `down` looks for beyond the config: every resource a stack of its name could have
    /// (a config that shrank, a state that records more).
    pub discoverable: Vec<Permission>,
    pub list: Vec<Permission>,
    pub logs: Vec<Permission>,
    pub state: Vec<Permission>,
}

/// IAM's limit on a managed policy, counted without whitespace.
pub const MANAGED_POLICY_LIMIT: usize = 6_144;

/// `document` as several documents, each under [`MANAGED_POLICY_LIMIT`] characters without
/// whitespace (IAM's count), its statements kept whole and in order (a statement's `Sid` stays
/// unique across them): what `policy --split` prints, one managed policy each.
pub fn split(document: &Value) -> Vec<Value> {
    let size = |v: &Value| v.to_string().len();
    let wrap = |statements: Vec<Value>| json!({"Version": "2012-10-17", "Statement": statements});
    let mut documents = vec![];
    let mut current: Vec<Value> = vec![];
    let statements = document["Statement"].as_array().cloned().unwrap_or_default();
    for statement in statements.into_iter().flat_map(|s| fitted(s, &size)) {
        let mut candidate = current.clone();
        candidate.push(statement.clone());
        if !current.is_empty() && size(&wrap(candidate.clone())) >= MANAGED_POLICY_LIMIT {
            documents.push(wrap(std::mem::take(&mut current)));
            current.push(statement);
        } else {
            current = candidate;
        }
    }
    if !current.is_empty() {
        documents.push(wrap(current));
    }
    documents
}

/// A statement too large for one document alone, as several with its actions shared out (`Sid`s
/// numbered); any other as it is.
fn fitted(statement: Value, size: &dyn Fn(&Value) -> usize) -> Vec<Value> {
    let alone = json!({"Version": "2012-10-17", "Statement": [statement.clone()]});
    let actions = statement["Action"].as_array().cloned().unwrap_or_default();
    if size(&alone) < MANAGED_POLICY_LIMIT || actions.len() < 2 {
        return vec![statement];
    }
    let (first, second) = actions.split_at(actions.len() / 2);
    let sid = statement["Sid"].as_str().unwrap_or_default().to_string();
    [(first, "A"), (second, "B")]
        .into_iter()
        .flat_map(|(part, suffix)| {
            let mut half = statement.clone();
            half["Action"] = json!(part);
            half["Sid"] = json!(format!("{sid}{suffix}"));
            fitted(half, size)
        })
        .collect()
}

/// A statement's actions and resources.
type Statement = (BTreeSet<String>, BTreeSet<String>);

/// The policy document for `commands` on `target`.
pub fn document(commands: &[&str], declared: &Declarations, target: &Target) -> Value {
    let mut grants: BTreeSet<Grant> = BTreeSet::new();
    let mut creates: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for command in commands {
        let verbs = verbs(command);
        let stack = if *command == "list" { "*" } else { target.stack.as_str() };
        let nodes = if *command == "down" { &declared.discoverable } else { &declared.resources };
        let mut own: Vec<&Permission> = nodes.iter().filter(|p| verbs.contains(&p.verb)).collect();
        match *command {
            "list" => own.extend(&declared.list),
            "logs" => own.extend(&declared.logs),
            _ => {}
        }
        if target.state.is_some() {
            own.extend(&declared.state);
        }
        for p in own.into_iter().filter(|p| p.verb != Verb::State || target.state.is_some()) {
            if let Condition::CreateAction(create) = p.condition {
                creates.entry(p.action.split(':').next().unwrap_or_default().to_string()).or_default().insert(create);
            }
            grants.insert(grant(target, p, stack));
        }
    }
    // Actions on `*` apart from those on ARNs, or the `*` would widen the others to everything.
    // Each action on exactly the resources declared for it: actions that share their resources
    // share a statement, so that no action reaches another action's resources (the state bucket
    // must not get the access-log bucket's DeleteBucket).
    let mut by_action: BTreeMap<(String, Scope, bool), BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for g in grants {
        let any = g.resource == "*";
        let actions = by_action.entry((g.service.clone(), g.scope.clone(), any)).or_default();
        actions.entry(g.action).or_default().insert(g.resource);
    }
    let mut statements: Vec<Value> = vec![];
    for ((service, scope, any), actions) in by_action {
        let mut by_resources: BTreeMap<BTreeSet<String>, Statement> = BTreeMap::new();
        for (action, resources) in actions {
            let (grouped, on) = by_resources.entry(resources.clone()).or_default();
            grouped.insert(action);
            on.extend(resources);
        }
        for (n, (actions, resources)) in by_resources.into_values().enumerate() {
            let sid = scope.sid(&service, any);
            let mut s = json!({
                "Sid": if n == 0 { sid } else { format!("{sid}{}", n + 1) },
                "Effect": "Allow",
                "Action": actions.into_iter().collect::<Vec<_>>(),
                "Resource": resources.into_iter().collect::<Vec<_>>(),
            });
            if let Some(condition) = condition(&service, &scope, &creates) {
                s["Condition"] = condition;
            }
            statements.push(s);
        }
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

fn condition(service: &str, scope: &Scope, creates: &BTreeMap<String, BTreeSet<&str>>) -> Option<Value> {
    let tag = |key: &str, value: &str| {
        let op = if value.contains('*') { "StringLike" } else { "StringEquals" };
        json!({ op: { format!("{key}/{STACK_TAG}"): value } })
    };
    Some(match scope {
        Scope::AnyResource | Scope::StackResources => return None,
        Scope::Tagged(Some(stack)) => tag("aws:ResourceTag", stack),
        Scope::Tagged(None) => tag("aws:ResourceTag", "*"),
        Scope::CreateTagged(stack) => tag("aws:RequestTag", stack),
        Scope::TagOnCreate => {
            let actions: Vec<&str> = creates.get(service).map(|c| c.iter().copied().collect()).unwrap_or_default();
            json!({ "StringEquals": { format!("{service}:CreateAction"): actions } })
        }
        Scope::PassedTo(to) => json!({ "StringEquals": { "iam:PassedToService": to } }),
        Scope::ServiceLinked(to) => json!({ "StringEquals": { "iam:AWSServiceName": to } }),
    })
}

/// Every action a policy document allows.
pub fn actions(document: &Value) -> BTreeSet<String> {
    document["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests;
